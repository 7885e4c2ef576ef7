/* runner.c - fork modes: one child per request (spec 5).
 *
 * streaming pipes the body into the child as it arrives and its stdout
 * out as the response, with back-pressure both ways; serializing and
 * classic buffer the body, run the child and answer once it is done.
 * Each child leads its own process group, so a timeout or a vanished
 * client kills everything it started. Forking and reaping are proc.c's.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cgi.h"
#include "http.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"
#include "sandbox.h"

#define FW_STDIN_HIGH (256 * 1024)  /* pause the client above this */
#define FW_STDIN_LOW (64 * 1024)    /* and resume it below this */
#define FW_OUT_READ (256 * 1024)    /* one read of the child's output */
#define FW_OUT_COPY (FW_OUT_READ / 2) /* shorter reads are copied out */
#define FW_PIPE_BYTES (1024 * 1024) /* pipe buffer asked for, both ways */
#define FW_EXIT_GRACE_MS 100        /* then kill what holds the pipes */
#define FW_ERROR_TEXT 512

struct fw_run {
    struct fw_request *req;      /* NULL once the request is gone */
    struct fw_proc proc;         /* registered while the child lives */
    uv_pipe_t in;                /* child's stdin, write end */
    uv_pipe_t out;               /* child's stdout, read end */
    uv_pipe_t err;               /* child's stderr, read end */
    uv_timer_t timer;            /* exec_timeout, then the exit grace */
    int open_handles;            /* free(this) when it reaches 0 */
    bool spawned;                /* a child was started */
    bool exited;                 /* and has been reaped */
    bool timed_out;              /* exec_timeout killed it */
    bool body_end;               /* the request body is complete */
    bool responded;              /* streaming: response head sent */
    bool released;               /* run_release started */
    int wait_status;
    size_t in_writes;            /* stdin writes queued */
    char *rbuf;                  /* FW_OUT_READ, lent to each pipe read;
                                    NULL once given away with output */
    struct fw_buf body;          /* buffered modes: the request body */
    struct fw_buf output;        /* buffered modes: the child's output */
    struct fw_lines lines;       /* stderr relay to the log */
    char error[FW_ERROR_TEXT];   /* why it failed, in Go's words */
    struct fw_list link;         /* in rs.runs, for kill_all */
};

struct in_write {
    uv_write_t req;              /* data = the run */
    char data[];                 /* the bytes, owned */
};

static struct {
    uv_loop_t *loop;
    const struct fw_config *cfg;
    char **base_env;             /* the watchdog's environment */
    char path[PATH_MAX + 64];    /* fprocess's executable, once found */
    struct fw_list runs;         /* every run not yet freed */
    size_t active;
} rs = { .runs = FW_LIST_INIT(rs.runs) };

static void run_release(struct fw_run *run);
static void maybe_finish(struct fw_run *run);
static void close_stdin(struct fw_run *run);
static void resume_output(struct fw_run *run);
static bool send_head(struct fw_run *run);

static bool buffered(void)
{
    return rs.cfg->mode != FW_MODE_STREAMING;
}

static bool classic(void)
{
    return rs.cfg->mode == FW_MODE_CLASSIC;
}

static bool combined(void)
{
    return buffered() && rs.cfg->combine_output;
}

static bool is_open(uv_handle_t *h)
{
    return h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h);
}

/* ---- closing ---------------------------------------------------------- */

static void on_run_closed(uv_handle_t *h)
{
    struct fw_run *run = h->data;

    if (--run->open_handles > 0)
        return;
    fw_list_remove(&run->link);
    fw_buf_release(&run->body);
    fw_buf_release(&run->output);
    fw_lines_release(&run->lines);
    free(run->rbuf);
    free(run);
}

static void close_handle(struct fw_run *run, void *handle)
{
    uv_handle_t *h = handle;

    if (is_open(h))
        uv_close(h, on_run_closed);
    (void)run;
}

/* Ends the child's process group: what it left behind after it exited,
 * or all of it after a timeout, a client gone or the drain deadline. */
static void stop_group(struct fw_run *run)
{
    fw_proc_stop_group(run->proc.pid,
                       (uint64_t)rs.cfg->exec_timeout_grace_ms);
}

/* Stops everything the run holds; memory goes with the last handle. */
static void run_release(struct fw_run *run)
{
    if (run->released)
        return;
    run->released = true;
    if (run->spawned && !run->exited) {
        fw_proc_forget(&run->proc);     /* reaped silently from now on */
        rs.active--;
    }
    if (run->spawned)
        stop_group(run);
    if (run->req)
        run->req->data = NULL;
    run->req = NULL;
    close_handle(run, &run->in);
    close_handle(run, &run->out);
    close_handle(run, &run->err);
    close_handle(run, &run->timer);
}

static void on_request_abort(struct fw_request *r, enum fw_abort why)
{
    struct fw_run *run = r->data;

    if (run == NULL)
        return;
    run->req = NULL;
    if (why == FW_ABORT_CLIENT && run->spawned && !run->exited)
        fw_metrics_child_killed(FW_KILL_CLIENT_ABORT);
    if (why != FW_ABORT_TIMEOUT || !run->spawned || run->exited) {
        run_release(run);    /* a client that left kills its child */
        return;
    }
    /* Spec 5.5: after write_timeout the child runs on until it exits or
     * exec_timeout ends it; its output is read and dropped meanwhile. */
    close_stdin(run);
    resume_output(run);
}

/* ---- answering -------------------------------------------------------- */

static const char *content_type(const struct fw_request *r,
                                const char *body, size_t len)
{
    const struct fw_header *h;

    if (rs.cfg->content_type)
        return rs.cfg->content_type;
    h = fw_request_header(r, "Content-Type");
    if (h)
        return h->value;
    return fw_http_sniff(body, len);
}

/* debug_headers (classic): headers on stdout as the classic watchdog
 * prints them, "[in] Content-Type=[text/plain]", the values of a
 * repeated name together. */
static void debug_line(struct fw_buf *line)
{
    struct fw_lines out;

    fw_lines_init(&out, 1, "stdout", false, -1);
    if (!line->failed)
        fw_lines_emit(&out, line->data, line->len);
    fw_buf_reset(line);
}

/* One line per name, in the order names first appear: next[] chains
 * each header to the next one of its name, found through a set of names
 * (a head may hold tens of thousands). Without memory, nothing. */
static void debug_request_headers(const struct fw_request *r)
{
    const struct fw_header *h = r->headers;
    size_t i, j, n = r->n_headers;
    size_t *next = calloc(2 * n + 1, sizeof(*next));
    size_t *last = next + n;    /* a first header's: its group's last;
                                   any other's: SIZE_MAX */
    struct fw_names names;
    struct fw_buf line;

    if (next == NULL || fw_names_init(&names, n) < 0) {
        free(next);
        return;
    }
    for (i = 0; i < n; i++) {
        size_t first = fw_names_add(&names, h[i].name, h[i].name_len, i);

        next[i] = SIZE_MAX;
        if (first != i) {
            next[last[first]] = i;
            last[i] = SIZE_MAX;
        }
        last[first] = i;
    }
    fw_names_release(&names);
    fw_buf_init(&line, 0);
    for (i = 0; i < n; i++) {
        if (last[i] == SIZE_MAX ||
            fw_http_name_is(h[i].name, h[i].name_len, "Host"))
            continue;    /* printed with the first; Go keeps Host apart */
        if (fw_buf_appendf(&line, "[in] %s=[", h[i].name) == 0)
            fw_http_canonical(line.data + 5, h[i].name_len, line.data + 5);
        for (j = i; j != SIZE_MAX; j = next[j])
            fw_buf_appendf(&line, "%s%s", j > i ? " " : "", h[j].value);
        fw_buf_append(&line, "]", 1);
        debug_line(&line);
    }
    fw_buf_release(&line);
    free(next);
}

static void debug_response_headers(const struct fw_hdr *hdrs, size_t n)
{
    struct fw_buf line;
    size_t i;

    fw_buf_init(&line, 0);
    for (i = 0; i < n; i++) {
        fw_buf_appendf(&line, "[out] %s=[%s]", hdrs[i].name, hdrs[i].value);
        debug_line(&line);
    }
    fw_buf_release(&line);
}

static void answer_classic(struct fw_run *run, bool failed)
{
    struct fw_request *r = run->req;
    struct fw_buf *o = &run->output;
    struct fw_hdr hdrs[2];
    char secs[32];
    size_t n = 0;

    if (run->timed_out) {
        hdrs[n++] = (struct fw_hdr){ "Content-Type",
                                     "text/plain; charset=utf-8" };
        fw_response_send(r, 408, hdrs, n, "Killed process.\n", 16);
        return;
    }
    if (failed) {
        struct fw_buf body;
        const char *ct;

        fw_buf_init(&body, 0);
        fw_buf_appendf(&body, "%s\n", run->error);
        fw_buf_append(&body, o->data, o->len);
        ct = fw_http_sniff(body.data, body.len);
        if (ct)
            hdrs[n++] = (struct fw_hdr){ "Content-Type", ct };
        fw_response_send(r, 500, hdrs, n, body.data, body.len);
        fw_buf_release(&body);
        return;
    }
    fw_http_duration(r->start_ns, secs, sizeof(secs));
    if (content_type(r, o->data, o->len))
        hdrs[n++] = (struct fw_hdr){ "Content-Type",
                                     content_type(r, o->data, o->len) };
    hdrs[n++] = (struct fw_hdr){ "X-Duration-Seconds", secs };
    if (rs.cfg->debug_headers)
        debug_response_headers(hdrs, n);
    fw_response_send(r, 200, hdrs, n, o->data, o->len);
}

static void answer_serializing(struct fw_run *run, bool failed)
{
    struct fw_request *r = run->req;
    char secs[32];
    struct fw_hdr hdrs[2] = {
        { "Content-Type", rs.cfg->content_type },
        { "X-Duration-Seconds", secs },
    };

    fw_http_duration(r->start_ns, secs, sizeof(secs));
    if (failed)
        fw_response_send(r, 500, hdrs, 2, run->error, strlen(run->error));
    else
        fw_response_send(r, 200, hdrs, 2, run->output.data,
                         run->output.len);
}

static void answer_streaming(struct fw_run *run, bool failed)
{
    struct fw_request *r = run->req;
    struct fw_hdr ct = { "Content-Type", rs.cfg->content_type };

    if (failed && run->responded) {
        /* Output began: only truncation can tell the client. */
        fw_response_abort(r);
    } else if (failed) {
        fw_response_send(r, 500, &ct, 1, run->error, strlen(run->error));
    } else if (run->responded || send_head(run)) {
        fw_response_end(r);
    }
}

static void log_outcome(struct fw_run *run, bool failed)
{
    const struct fw_config *cfg = rs.cfg;
    double secs = (double)(uv_hrtime() - run->req->start_ns) / 1e9;
    struct fw_lines out;

    if (failed && run->spawned)
        fw_log(FW_INFO, "%s: %s", cfg->fprocess, run->error);
    if (buffered() && cfg->write_debug && run->output.len > 0) {
        /* write_debug: the response body is copied to our stdout. */
        fw_lines_init(&out, 1, "stdout", false, -1);
        fw_lines_emit(&out, run->output.data, run->output.len);
    }
    if (!classic())
        return;
    if (cfg->write_debug)
        fw_log(FW_INFO, "Duration: %fs", secs);
    else
        fw_log(FW_INFO, "Wrote %zu Bytes - Duration: %fs", run->output.len,
               secs);
}

/* Child gone and its pipes drained (or never started): answer. */
static void finish(struct fw_run *run)
{
    bool failed = run->error[0] != '\0';

    if (!failed && run->spawned) {
        failed = fw_proc_describe(run->wait_status, run->error,
                                  sizeof(run->error));
        fw_sandbox_explain(run->wait_status, run->error, sizeof(run->error));
    }
    if (run->req) {
        log_outcome(run, failed);
        if (classic())
            answer_classic(run, failed);
        else if (buffered())
            answer_serializing(run, failed);
        else
            answer_streaming(run, failed);
    }
    run_release(run);
}

static void maybe_finish(struct fw_run *run)
{
    if (run->released)
        return;
    if (run->spawned && !run->exited)
        return;
    if (is_open((uv_handle_t *)&run->out) ||
        is_open((uv_handle_t *)&run->err))
        return;
    finish(run);
}

/* ---- the child's output ----------------------------------------------- */

/* Both pipes read into run->rbuf: libuv calls on_alloc and then the read
 * callback with its bytes before it reads anything else (uv__read), and
 * each read callback is done with the block when it returns. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct fw_run *run = h->data;

    (void)hint;
    if (run->rbuf == NULL)
        run->rbuf = malloc(FW_OUT_READ);
    /* NULL gives UV_ENOBUFS in on_*_read: treated as an error. */
    *buf = uv_buf_init(run->rbuf, run->rbuf ? FW_OUT_READ : 0);
}

static void pipe_done(struct fw_run *run, uv_pipe_t *p, ssize_t n)
{
    if (n != UV_EOF) {
        fw_log(FW_ERROR, "read from function: %s", uv_strerror((int)n));
        /* Output cut short is no success: 500, or a truncated body. */
        if (p == &run->out && run->error[0] == '\0')
            snprintf(run->error, sizeof(run->error),
                     "read from function: %s", uv_strerror((int)n));
    }
    close_handle(run, p);
    maybe_finish(run);
}

/* fw_response_head failed (out of memory): no head is queued, so no body
 * may follow. Answers 500 instead (fw_response_send closes the
 * connection if that fails too) and stops the child. */
static void head_failed(struct fw_run *run)
{
    struct fw_request *r = run->req;
    struct fw_hdr ct = { "Content-Type", rs.cfg->content_type };

    snprintf(run->error, sizeof(run->error), "response head: %s",
             strerror(ENOMEM));
    fw_log(FW_ERROR, "%s %s: %s", r->method, r->target, run->error);
    r->data = NULL;    /* the request ends here, whichever way */
    run->req = NULL;
    fw_response_send(r, 500, &ct, 1, run->error, strlen(run->error));
    run_release(run);
}

/* Streaming: the 200 head, sent with the first output or at exit. False
 * when it could not be made; the request is gone then. */
static bool send_head(struct fw_run *run)
{
    struct fw_hdr ct = { "Content-Type", rs.cfg->content_type };

    if (fw_response_head(run->req, 200, &ct, 1, -1) < 0) {
        head_failed(run);
        return false;
    }
    run->responded = true;
    return true;
}

/* Queues n bytes read into run->rbuf (p). Back-pressure counts queued
 * bytes, not blocks: a short read handed over whole would hold 256 KiB
 * for a 100-byte line, hundreds of MiB before the high mark. It is
 * copied and the block kept for the next read; a long read takes the
 * block along, so a queued block is at least half full. */
static int stream_output(struct fw_run *run, char *p, size_t n)
{
    if (n < FW_OUT_COPY)
        return fw_response_write_copy(run->req, p, n);
    run->rbuf = NULL;
    return fw_response_write(run->req, p, p, n);
}

static void on_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fw_run *run = s->data;

    if (n < 0) {
        pipe_done(run, &run->out, n);
        return;
    }
    /* n == 0 is EAGAIN; without a request the output is dropped. */
    if (n == 0 || run->req == NULL)
        return;
    if (buffered()) {
        /* Out of memory: the rest is dropped and the answer is a 500,
         * never output with a hole in it. */
        if (!run->output.failed &&
            fw_buf_append(&run->output, buf->base, (size_t)n) < 0)
            snprintf(run->error, sizeof(run->error), "function output: %s",
                     strerror(ENOMEM));
        return;
    }
    if (!run->responded && !send_head(run))
        return;
    if (stream_output(run, buf->base, (size_t)n) < 0)
        return;    /* the server aborts the request: on_abort follows */
    if (fw_response_busy(run->req))
        uv_read_stop(s);
}

/* Reads the output again: after back-pressure, or to drop it once the
 * request is gone (it may be reading still: EALREADY). */
static void resume_output(struct fw_run *run)
{
    int err;

    if (!is_open((uv_handle_t *)&run->out))
        return;
    err = uv_read_start((uv_stream_t *)&run->out, on_alloc, on_out_read);
    if (err < 0 && err != UV_EALREADY)
        pipe_done(run, &run->out, err);
}

static void on_response_drain(struct fw_request *r)
{
    struct fw_run *run = r->data;

    if (run)
        resume_output(run);
}

static void on_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fw_run *run = s->data;

    if (n > 0)
        fw_lines_feed(&run->lines, buf->base, (size_t)n);
    else if (n < 0)
        pipe_done(run, &run->err, n);
}

/* ---- the child's input ------------------------------------------------ */

static void close_stdin(struct fw_run *run)
{
    close_handle(run, &run->in);
    if (run->req && run->body_end == false)
        fw_request_resume(run->req);    /* the rest of the body is dropped */
}

static void on_in_written(uv_write_t *w, int status)
{
    struct fw_run *run = w->data;

    free(w);
    run->in_writes--;
    if (status < 0 && status != UV_ECANCELED) {
        /* EPIPE: the function does not read its input; that is allowed. */
        close_stdin(run);
        return;
    }
    if (!is_open((uv_handle_t *)&run->in))
        return;
    if (run->body_end && run->in_writes == 0)
        close_stdin(run);
    else if (run->req && run->in.write_queue_size < FW_STDIN_LOW)
        fw_request_resume(run->req);
}

static void feed_stdin(struct fw_run *run, const char *p, size_t len)
{
    struct in_write *w;
    /* Not uv_buf_init: its unsigned int would cut a buffered body over
     * 4 GiB. libuv writes a long buffer in as many parts as it takes. */
    uv_buf_t b = { .base = (char *)p, .len = len };
    size_t done = 0;
    int n;

    if (!is_open((uv_handle_t *)&run->in) || len == 0)
        return;
    if (run->in_writes == 0) {
        n = uv_try_write((uv_stream_t *)&run->in, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            close_stdin(run);   /* EPIPE: see on_in_written */
            return;
        }
        done = n > 0 ? (size_t)n : 0;
        if (done == len)
            return;
    }
    w = malloc(sizeof(*w) + len - done);
    if (w == NULL) {
        fw_log(FW_ERROR, "function stdin: out of memory");
        close_stdin(run);
        return;
    }
    memcpy(w->data, p + done, len - done);
    b = (uv_buf_t){ .base = w->data, .len = len - done };
    w->req.data = run;
    if (uv_write(&w->req, (uv_stream_t *)&run->in, &b, 1, on_in_written) < 0) {
        free(w);
        close_stdin(run);
        return;
    }
    run->in_writes++;
    if (run->req && run->in.write_queue_size > FW_STDIN_HIGH)
        fw_request_pause(run->req);
}

/* ---- starting the child ----------------------------------------------- */

static void on_exec_timeout(uv_timer_t *t)
{
    struct fw_run *run = t->data;

    if (fw_proc_has_exited(&run->proc))
        return;    /* in time: its exit is reported in this loop turn */
    run->timed_out = true;
    fw_metrics_child_killed(FW_KILL_TIMEOUT);
    fw_log(FW_INFO, "%s: exec_timeout reached, killing process group %d",
           rs.cfg->fprocess, (int)run->proc.pid);
    stop_group(run);
}

static void on_exit_grace(uv_timer_t *t)
{
    struct fw_run *run = t->data;

    /* The child is gone but something it started still holds a pipe:
     * spec 5.5 ends it, so EOF follows. */
    stop_group(run);
}

static void on_child_exit(struct fw_proc *p, int status)
{
    struct fw_run *run = p->data;

    run->exited = true;
    run->wait_status = status;
    rs.active--;
    fw_metrics_child_exited(status);
    uv_timer_stop(&run->timer);
    if (is_open((uv_handle_t *)&run->out) ||
        is_open((uv_handle_t *)&run->err))
        uv_timer_start(&run->timer, on_exit_grace, FW_EXIT_GRACE_MS, 0);
    maybe_finish(run);
}

static int open_pipe(struct fw_run *run, uv_pipe_t *h, int fd)
{
    int err = uv_pipe_init(rs.loop, h, 0);

    if (err < 0) {
        close(fd);
        return err;
    }
    h->data = run;
    run->open_handles++;
    err = uv_pipe_open(h, fd);
    if (err < 0)
        close(fd);    /* the handle did not take it */
    return err;
}

/* A pipe that cannot be read is closed at once, so the run does not wait
 * for an EOF that never comes; the child gets EPIPE. */
static void start_reading(struct fw_run *run, uv_pipe_t *p, int fd,
                          uv_read_cb on_read)
{
    int err = open_pipe(run, p, fd);

    if (err == 0)
        err = uv_read_start((uv_stream_t *)p, on_alloc, on_read);
    if (err < 0)
        pipe_done(run, p, err);
}

static void close_fds(int *fds, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Pipes for stdin, stdout and (unless combined) stderr; the child's ends
 * are [0] of in and [1] of the others. */
static int make_pipes(int in[2], int out[2], int err[2])
{
    in[0] = in[1] = out[0] = out[1] = err[0] = err[1] = -1;
    if (pipe2(in, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(out, O_CLOEXEC) < 0)
        goto fail;
    if (!combined() && pipe2(err, O_CLOEXEC) < 0)
        goto fail;
    /* Bigger pipes mean fewer wake-ups per MiB streamed; the kernel may
     * refuse (pipe-max-size, pipe-user-pages-soft): the default works. */
    fcntl(in[1], F_SETPIPE_SZ, FW_PIPE_BYTES);
    fcntl(out[0], F_SETPIPE_SZ, FW_PIPE_BYTES);
    return 0;

fail:
    {
        int e = -errno;

        close_fds(in, 2);
        close_fds(out, 2);
        return e;
    }
}

static int spawn(struct fw_run *run, const char *path)
{
    struct fw_request *r = run->req;
    struct fw_env env;
    struct fw_spawn s;
    int in[2], out[2], err[2], e;
    long long body_len = r->chunked ? -1
                         : r->content_length > 0 ? r->content_length : 0;
    uint64_t t0 = uv_hrtime();

    e = fw_env_build(&env, rs.base_env, r, classic(),
                     !classic() || rs.cfg->cgi_headers, body_len);
    if (e < 0)
        return e;
    e = make_pipes(in, out, err);
    if (e < 0)
        goto release_env;
    s = (struct fw_spawn){
        .path = path, .argv = rs.cfg->argv, .envp = env.envp,
        .stdio = { in[0], out[1], combined() ? out[1] : err[1] },
    };
    run->proc.on_exit = on_child_exit;
    run->proc.data = run;
    e = fw_proc_spawn(&run->proc, &s);
    close(in[0]);
    close(out[1]);
    if (err[1] >= 0)
        close(err[1]);
    fw_env_release(&env);
    if (e < 0) {
        close_fds((int[]){ in[1], out[0], err[0] }, 3);
        return e;
    }
    run->spawned = true;
    rs.active++;
    fw_metrics_child_started(uv_hrtime() - t0);
    /* From here the handles own the fds; a failure is a broken pipe. */
    if (open_pipe(run, &run->in, in[1]) < 0)
        close_handle(run, &run->in);    /* the body is dropped */
    start_reading(run, &run->out, out[0], on_out_read);
    if (err[0] >= 0)
        start_reading(run, &run->err, err[0], on_err_read);
    return 0;

release_env:
    fw_env_release(&env);
    return e;
}

/* Starts the child, or answers why it could not start. */
static void start(struct fw_run *run)
{
    char path[PATH_MAX + 64];
    int e;

    if (classic())
        fw_log(FW_INFO, "Forking fprocess.");
    if (rs.path[0]) {
        /* Found before: a PATH search costs a dozen stat calls. */
        memcpy(path, rs.path, sizeof(rs.path));
    } else if (fw_proc_resolve_in(rs.cfg->fprocess_workdir,
                                  rs.cfg->argv[0], path, sizeof(path)) < 0) {
        fw_metrics_child_failed();
        snprintf(run->error, sizeof(run->error), "%.500s", path);
        fw_log(FW_ERROR, "%s", run->error);
        finish(run);
        return;
    }
    e = spawn(run, path);
    if (e == -ENOENT || e == -EACCES)
        rs.path[0] = '\0';    /* it moved: search again next time */
    else if (e == 0 && !rs.path[0])
        memcpy(rs.path, path, sizeof(rs.path));
    if (e < 0) {
        char why[64];

        fw_metrics_child_failed();
        fw_proc_strerror(e, why, sizeof(why));
        snprintf(run->error, sizeof(run->error), "fork/exec %.400s: %s", path,
                 why);
        fw_log(FW_ERROR, "%s", run->error);
        finish(run);
        return;
    }
    if (rs.cfg->exec_timeout_ms > 0)
        uv_timer_start(&run->timer, on_exec_timeout,
                       (uint64_t)rs.cfg->exec_timeout_ms, 0);
}

/* ---- the request ------------------------------------------------------ */

static bool classic_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 ||
           strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
           strcmp(m, "DELETE") == 0;
}

static void on_head(struct fw_request *r)
{
    const struct fw_header *id;
    struct fw_run *run;

    if (classic() && !classic_method(r->method)) {
        fw_response_send(r, 405, NULL, 0, NULL, 0);
        return;
    }
    run = calloc(1, sizeof(*run));
    if (run == NULL) {
        fw_log(FW_ERROR, "%s %s: out of memory", r->method, r->target);
        fw_response_send(r, 500, NULL, 0, NULL, 0);
        return;
    }
    if (classic() && rs.cfg->debug_headers)
        debug_request_headers(r);
    run->req = r;
    r->data = run;
    fw_buf_init(&run->body, 0);
    fw_buf_init(&run->output, 0);
    fw_lines_init(&run->lines, 2, "stderr", rs.cfg->prefix_logs,
                  rs.cfg->log_buffer_size);
    id = fw_request_header(r, "X-Call-Id");
    if (id)
        fw_lines_set_call_id(&run->lines, id->value, id->value_len);
    uv_timer_init(rs.loop, &run->timer);
    run->timer.data = run;
    run->open_handles = 1;
    fw_list_push_back(&rs.runs, &run->link);
    if (!buffered())
        start(run);
}

static void on_body(struct fw_request *r, const char *p, size_t len)
{
    struct fw_run *run = r->data;

    if (run == NULL)
        return;
    if (!buffered())
        feed_stdin(run, p, len);
    else if (fw_buf_append(&run->body, p, len) < 0)
        fw_log(FW_ERROR, "%s %s: request body: out of memory", r->method,
               r->target);
}

static void on_body_end(struct fw_request *r)
{
    struct fw_run *run = r->data;
    int e;

    if (run == NULL)
        return;
    run->body_end = true;
    if (!buffered()) {
        if (run->in_writes == 0)
            close_stdin(run);
        return;
    }
    if (run->body.failed) {
        snprintf(run->error, sizeof(run->error), "request body: %s",
                 strerror(ENOMEM));
        finish(run);
        return;
    }
    if (rs.cfg->marshal_request) {
        struct fw_buf json;

        fw_buf_init(&json, 0);
        e = fw_cgi_marshal(&json, r, run->body.data, run->body.len);
        fw_buf_release(&run->body);
        run->body = json;
        if (e < 0) {
            snprintf(run->error, sizeof(run->error), "marshal_request: %s",
                     strerror(-e));
            finish(run);
            return;
        }
    }
    start(run);
    if (run->released || !run->spawned)
        return;
    feed_stdin(run, run->body.data, run->body.len);
    fw_buf_release(&run->body);
    if (run->in_writes == 0)
        close_stdin(run);
}

const struct fw_handler fw_runner_handler = {
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_drain = on_response_drain,
    .on_abort = on_request_abort,
};

/* ---- set-up ----------------------------------------------------------- */

extern char **environ;

int fw_runner_init(uv_loop_t *loop, const struct fw_config *cfg)
{
    size_t n = 0;

    rs.loop = loop;
    rs.cfg = cfg;
    while (environ[n])
        n++;
    rs.base_env = calloc(n + 1, sizeof(char *));
    if (rs.base_env == NULL)
        return -ENOMEM;
    /* The strings stay put: nothing calls setenv after start-up. */
    memcpy(rs.base_env, environ, n * sizeof(char *));
    return 0;
}

void fw_runner_release(void)
{
    free(rs.base_env);
    rs.base_env = NULL;
}

void fw_runner_kill_all(void)
{
    struct fw_list *n, *tmp;

    fw_list_each(n, tmp, &rs.runs) {
        struct fw_run *run = fw_list_entry(n, struct fw_run, link);

        if (run->spawned && !run->exited) {
            fw_metrics_child_killed(FW_KILL_SHUTDOWN);
            stop_group(run);
        }
    }
}

void fw_runner_close(void)
{
    struct fw_list *n, *tmp;

    /* Children whose requests are gone (write_timeout) may still run:
     * kill them and close their pipes so the loop can end. */
    fw_list_each(n, tmp, &rs.runs)
        run_release(fw_list_entry(n, struct fw_run, link));
}

size_t fw_runner_active(void)
{
    return rs.active;
}
