/* upstream.c - the function processes of http mode (spec 6.1).
 *
 * Each worker is one copy of fprocess in its own process group, with a
 * stdin pipe that stays open (some servers exit on EOF) and its stdout
 * and stderr relayed to ours line by line. A worker is ready once a TCP
 * connect to its port succeeds (polled every 50 ms). One worker that dies
 * is the spec's case: health 503, drain, exit 1 so the orchestrator
 * restarts the container. With http_workers > 1 a dead worker is started
 * again with back-off while the others serve.
 */
#include "upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FW_PROBE_MS 50               /* readiness poll interval */
#define FW_DAEMON_GRACE_MS 1000      /* for a daemon to bind, after exit 0 */
#define FW_PROBE_TIMEOUT_MS 2000     /* one probe, connect to answer */
#define FW_RESTART_MIN_MS 100        /* first restart delay */
#define FW_RESTART_MAX_MS 5000       /* longest restart delay */
#define FW_STOP_GRACE_MS 10000       /* SIGTERM, then SIGKILL */
#define FW_MAX_WORKERS 64
#define FW_MAX_ADDRS 4               /* of the host's, tried in turn */

static struct {
    uv_loop_t *loop;
    const struct fw_config *cfg;
    struct fw_worker *workers;   /* heap, n of them */
    size_t n;
    char host[256];              /* upstream_url host */
    char hostport[300];          /* host:port, for a missing Host */
    char base[1024];             /* upstream_url path, no trailing '/' */
    int port;                    /* upstream_url port */
    struct sockaddr_storage addrs[FW_MAX_ADDRS]; /* the host's, port 0 */
    size_t n_addrs;
    char path[PATH_MAX + 64];    /* fprocess, resolved */
    void (*on_ready)(void);
    void (*on_fatal)(void);
    bool stopping;
    uv_timer_t kill_timer;       /* stop: SIGKILL after the grace */
    void (*on_stopped)(void);
    int open_handles;            /* handles still closing at stop */
    bool closing_all;            /* stop: every worker gone, closing */
} us;

static void start_worker(struct fw_worker *w);
static void start_probe(uv_timer_t *t);

/* ---- upstream_url ----------------------------------------------------- */

/* config.c has checked the form: http://host:port[/path]. */
static int parse_url(const char *url)
{
    const char *h = url + strlen("http://"), *colon, *slash;

    slash = strchr(h, '/');
    if (slash == NULL)
        slash = h + strlen(h);
    colon = memrchr(h, ':', (size_t)(slash - h));
    if (colon == NULL || colon == h || (size_t)(colon - h) >= sizeof(us.host))
        return -EINVAL;
    memcpy(us.host, h, (size_t)(colon - h));
    us.host[colon - h] = '\0';
    if (us.host[0] == '[') {    /* [::1] */
        memmove(us.host, us.host + 1, strlen(us.host));
        us.host[strcspn(us.host, "]")] = '\0';
    }
    us.port = atoi(colon + 1);
    snprintf(us.hostport, sizeof(us.hostport), "%.*s", (int)(slash - h), h);
    snprintf(us.base, sizeof(us.base), "%s", slash);
    return us.port > 0 && us.port < 65536 ? 0 : -EINVAL;
}

/* Worker w is to be reached at the host's address number at. */
static void use_addr(struct fw_worker *w, size_t at)
{
    w->addr_at = at;
    w->addr = us.addrs[at];
    if (w->addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&w->addr)->sin6_port = htons(w->port);
    else
        ((struct sockaddr_in *)&w->addr)->sin_port = htons(w->port);
}

/* Before the loop runs, so a blocking lookup is fine. Every address is
 * kept: "localhost" gives ::1 first where /etc/hosts lists it (as in
 * most containers), and a server listening on 0.0.0.0 only refuses
 * that one. The readiness probe goes through them (probe_done). */
static int resolve(void)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
    size_t i;
    int err;

    err = getaddrinfo(us.host, NULL, &hints, &res);
    if (err != 0) {
        fw_log(FW_ERROR, "upstream_url: cannot resolve %s: %s", us.host,
               gai_strerror(err));
        return -EINVAL;
    }
    us.n_addrs = 0;
    for (ai = res; ai && us.n_addrs < FW_MAX_ADDRS; ai = ai->ai_next)
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            ai->ai_addrlen <= sizeof(us.addrs[0]))
            memcpy(&us.addrs[us.n_addrs++], ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(res);
    if (us.n_addrs == 0) {
        fw_log(FW_ERROR, "upstream_url: %s has no IPv4 or IPv6 address",
               us.host);
        return -EINVAL;
    }
    for (i = 0; i < us.n; i++) {
        us.workers[i].port = us.port + (int)i;
        use_addr(&us.workers[i], 0);
    }
    return 0;
}

/* ---- handles ------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
    if (--us.open_handles == 0 && us.closing_all && us.on_stopped) {
        void (*cb)(void) = us.on_stopped;

        us.on_stopped = NULL;
        cb();
    }
}

static void close_handle(void *handle)
{
    uv_handle_t *h = handle;

    if (h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h)) {
        us.open_handles++;
        uv_close(h, on_handle_closed);
    }
}

static void on_pipe_closed(uv_handle_t *h)
{
    /* Zeroed, so a restart can tell the handle is free again. */
    memset(h, 0, sizeof(uv_pipe_t));
    on_handle_closed(h);
}

static void close_pipe(uv_pipe_t *p)
{
    uv_handle_t *h = (uv_handle_t *)p;

    if (h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h)) {
        us.open_handles++;
        uv_close(h, on_pipe_closed);
    }
}

static bool pipes_free(const struct fw_worker *w)
{
    return w->in.type == UV_UNKNOWN_HANDLE &&
           w->out.type == UV_UNKNOWN_HANDLE &&
           w->err.type == UV_UNKNOWN_HANDLE;
}

/* ---- output relay ------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char chunk[64 * 1024];    /* relayed before the next read */

    (void)h;
    (void)hint;
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void on_output(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fw_worker *w = s->data;
    struct fw_lines *l = s == (uv_stream_t *)&w->out ? &w->out_lines
                                                     : &w->err_lines;

    if (n > 0) {
        fw_lines_feed(l, buf->base, (size_t)n);
    } else if (n < 0) {
        fw_lines_release(l);
        close_pipe((uv_pipe_t *)s);
    }
}

/* ---- readiness ------------------------------------------------------- */

static void on_probe_closed(uv_handle_t *h)
{
    struct fw_worker *w = h->data;

    w->probing = false;
    memset(&w->probe, 0, sizeof(w->probe));
    on_handle_closed(h);
}

/* w->timer paces probes and restarts, and times the probe in flight;
 * probe_done stops it only in that last role, never a pending restart
 * (a probe may end after its worker died). */
static void on_probe_timeout(uv_timer_t *t);

static void worker_timer(struct fw_worker *w, uv_timer_cb cb, uint64_t ms)
{
    w->timing_probe = cb == on_probe_timeout;
    uv_timer_start(&w->timer, cb, ms, 0);
}

static void worker_timer_stop(struct fw_worker *w)
{
    w->timing_probe = false;
    uv_timer_stop(&w->timer);
}

/* Closing the probe cancels its connect and write, whose callbacks
 * then see UV_ECANCELED and report nothing. */
static void close_probe(struct fw_worker *w)
{
    if (w->probing && !uv_is_closing((uv_handle_t *)&w->probe)) {
        us.open_handles++;
        uv_close((uv_handle_t *)&w->probe, on_probe_closed);
    }
}

static void probe_done(struct fw_worker *w, bool ok)
{
    if (w->timing_probe)
        worker_timer_stop(w);
    close_probe(w);
    if (w->daemon_check && !us.stopping) {
        /* Spec 6.1: exit 0 with the port still accepting connections
         * means the function daemonised; Go carries on, and so do we.
         * Every address is tried, for a grace in which a daemon may
         * still be binding (its launcher need not wait for it). */
        if (!ok && uv_now(us.loop) < w->daemon_deadline) {
            use_addr(w, (w->addr_at + 1) % us.n_addrs);
            worker_timer(w, start_probe, FW_PROBE_MS);
            return;
        }
        w->daemon_check = false;
        if (!ok) {
            fw_log(FW_ERROR, "upstream exited (exit status 0): stopping");
            if (us.on_fatal)
                us.on_fatal();
            return;
        }
        fw_log(FW_ERROR, "warning: upstream exited with status 0 but its "
               "port still accepts connections: it has daemonised, "
               "carrying on");
        /* It may have exited before any probe found it ready: the
         * daemon is probed on as the worker was. */
        w->daemonised = true;
        if (us.cfg->ready_path) {
            worker_timer(w, start_probe, 0);
            return;
        }
    } else if (us.stopping || !(w->running || w->daemonised) || w->ready) {
        return;    /* (a cancelled probe write reports after success) */
    } else if (!ok) {
        /* The next probe tries the host's next address. */
        use_addr(w, (w->addr_at + 1) % us.n_addrs);
        worker_timer(w, start_probe, FW_PROBE_MS);
        return;
    }
    w->ready = true;
    w->restarts = 0;
    fw_log(FW_INFO, "upstream %d ready on port %d", w->index, w->port);
    if (us.on_ready)
        us.on_ready();
}

static void on_probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct fw_worker *w = h->data;

    (void)hint;
    *buf = uv_buf_init(w->probe_status + w->probe_len,
                       (unsigned)(sizeof(w->probe_status) - 1 -
                                  w->probe_len));
}

/* ready_path: the worker is ready once it answers it with 2xx. */
static void on_probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fw_worker *w = s->data;
    const char *st = w->probe_status;

    (void)buf;
    if (n > 0)
        w->probe_len += (size_t)n;
    if (n < 0 || w->probe_len >= 12) {
        /* "HTTP/1.1 200" */
        probe_done(w, w->probe_len >= 12 && strncmp(st, "HTTP/1.", 7) == 0 &&
                          st[9] == '2');
    }
}

/* A write or connect cancelled by probe_done's close has been decided:
 * reporting it again would count the probe twice. */
static void on_probe_written(uv_write_t *req, int status)
{
    struct fw_worker *w = req->data;

    if (status < 0 && status != UV_ECANCELED)
        probe_done(w, false);
}

static void on_probe(uv_connect_t *req, int status)
{
    struct fw_worker *w = req->data;
    uv_buf_t b;

    if (status == UV_ECANCELED)
        return;
    if (status < 0 || us.cfg->ready_path == NULL || w->daemon_check) {
        probe_done(w, status == 0);
        return;
    }
    snprintf(w->probe_req_text, sizeof(w->probe_req_text),
             "GET %s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
             us.base, us.cfg->ready_path, us.hostport);
    b = uv_buf_init(w->probe_req_text, (unsigned)strlen(w->probe_req_text));
    w->probe_len = 0;
    w->probe_write.data = w;
    if (uv_write(&w->probe_write, (uv_stream_t *)&w->probe, &b, 1,
                 on_probe_written) < 0 ||
        uv_read_start((uv_stream_t *)&w->probe, on_probe_alloc,
                      on_probe_read) < 0)
        probe_done(w, false);
}

/* A probe that neither connects nor answers (a full accept queue, a
 * ready_path that hangs) fails, and the next one is scheduled. */
static void on_probe_timeout(uv_timer_t *t)
{
    probe_done(t->data, false);
}

static void start_probe(uv_timer_t *t)
{
    struct fw_worker *w = t->data;

    if (us.stopping || !(w->running || w->daemon_check || w->daemonised))
        return;
    if (w->probing) {
        /* The last probe is still closing: come back shortly. */
        worker_timer(w, start_probe, FW_PROBE_MS);
        return;
    }
    if (uv_tcp_init(us.loop, &w->probe) < 0) {
        worker_timer(w, start_probe, FW_PROBE_MS);
        return;
    }
    w->probe.data = w;
    w->probing = true;
    w->probe_req.data = w;
    if (uv_tcp_connect(&w->probe_req, &w->probe,
                       (struct sockaddr *)&w->addr, on_probe) < 0) {
        us.open_handles++;
        uv_close((uv_handle_t *)&w->probe, on_probe_closed);
        worker_timer(w, start_probe, FW_PROBE_MS);
        return;
    }
    worker_timer(w, on_probe_timeout, FW_PROBE_TIMEOUT_MS);
}

/* ---- life and death ----------------------------------------------------- */

/* Stop: every worker has exited; close what is left, then on_stopped. */
static void close_rest(void)
{
    size_t i;

    us.closing_all = true;
    uv_timer_stop(&us.kill_timer);
    us.open_handles++;    /* held while the closes below are started */
    for (i = 0; i < us.n; i++) {
        close_pipe(&us.workers[i].in);
        close_pipe(&us.workers[i].out);
        close_pipe(&us.workers[i].err);
        close_probe(&us.workers[i]);
        close_handle(&us.workers[i].timer);
    }
    close_handle(&us.kill_timer);
    on_handle_closed(NULL);
}

static void on_restart(uv_timer_t *t)
{
    struct fw_worker *w = t->data;

    if (!pipes_free(w)) {
        /* Something the old process started still holds its output:
         * its last unfinished lines go out on their own. */
        fw_lines_release(&w->out_lines);
        fw_lines_release(&w->err_lines);
        close_pipe(&w->out);
        close_pipe(&w->err);
        worker_timer(w, on_restart, FW_RESTART_MIN_MS);
        return;
    }
    start_worker(w);
}

static void on_worker_exit(struct fw_proc *p, int status)
{
    struct fw_worker *w = p->data;
    char why[64] = "exit status 0";
    uint64_t delay;

    w->running = false;
    w->ready = false;
    fw_proc_describe(status, why, sizeof(why));
    worker_timer_stop(w);
    close_probe(w);    /* its timeout was the timer just stopped */
    if (us.stopping) {
        size_t i;
        int running = 0;

        fw_log(FW_INFO, "upstream %d stopped: %s", w->index, why);
        fw_proc_kill_group(w->proc.pid, SIGKILL);
        for (i = 0; i < us.n; i++)
            running += us.workers[i].running;
        if (running == 0)
            close_rest();
        return;
    }
    close_pipe(&w->in);
    if (us.n == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        w->daemon_check = true;    /* see probe_done */
        w->daemon_deadline = uv_now(us.loop) + FW_DAEMON_GRACE_MS;
        start_probe(&w->timer);
        return;
    }
    if (us.n == 1) {
        /* Spec 6.1: report unhealthy, finish what is in flight, exit 1. */
        fw_log(FW_ERROR, "upstream exited (%s): stopping", why);
        if (us.on_fatal)
            us.on_fatal();
        return;
    }
    /* What it started goes with it: left running, a grandchild could
     * hold the worker's port, and the probes would take it for the new
     * worker. */
    fw_proc_kill_group(w->proc.pid, SIGKILL);
    delay = FW_RESTART_MIN_MS << (w->restarts < 6 ? w->restarts : 6);
    if (delay > FW_RESTART_MAX_MS)
        delay = FW_RESTART_MAX_MS;
    w->restarts++;
    fw_log(FW_ERROR, "upstream %d exited (%s): restarting in %llums",
           w->index, why, (unsigned long long)delay);
    worker_timer(w, on_restart, delay);
}

static int open_pipe(uv_pipe_t *h, int fd, struct fw_worker *w)
{
    int err = uv_pipe_init(us.loop, h, 0);

    if (err < 0) {
        close(fd);
        return err;
    }
    h->data = w;
    err = uv_pipe_open(h, fd);
    if (err < 0)
        close(fd);
    return err;
}

/* The environment of worker i: ours, plus PORT and port when there is
 * more than one worker (each listens on its own port). */
static char **worker_env(struct fw_worker *w, char *store, size_t len)
{
    extern char **environ;
    size_t n = 0, i, k = 0;
    char **env;

    while (environ[n])
        n++;
    env = calloc(n + 3, sizeof(char *));
    if (env == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (us.n > 1 && (strncmp(environ[i], "PORT=", 5) == 0 ||
                         strncmp(environ[i], "port=", 5) == 0))
            continue;
        env[k++] = environ[i];
    }
    if (us.n > 1) {
        snprintf(store, len, "PORT=%d", w->port);
        env[k++] = store;
        snprintf(store + len / 2, len / 2, "port=%d", w->port);
        env[k++] = store + len / 2;
    }
    return env;
}

static void start_worker(struct fw_worker *w)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    char store[64], why[64];
    char **env = worker_env(w, store, sizeof(store));
    struct fw_spawn s;
    int e = -ENOMEM;

    if (env == NULL)
        goto fail;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
        pipe2(err, O_CLOEXEC) < 0) {
        e = -errno;
        goto fail;
    }
    s = (struct fw_spawn){ .path = us.path, .argv = us.cfg->argv,
                           .envp = env,
                           .stdio = { in[0], out[1], err[1] } };
    w->proc.on_exit = on_worker_exit;
    w->proc.data = w;
    e = fw_proc_spawn(&w->proc, &s);
    if (e < 0)
        goto fail;
    close(in[0]);
    close(out[1]);
    close(err[1]);
    free(env);
    w->running = true;
    fw_log(FW_INFO, "upstream %d started: pid %d, port %d", w->index,
           (int)w->proc.pid, w->port);
    open_pipe(&w->in, in[1], w);
    if (open_pipe(&w->out, out[0], w) == 0)
        uv_read_start((uv_stream_t *)&w->out, on_alloc, on_output);
    if (open_pipe(&w->err, err[0], w) == 0)
        uv_read_start((uv_stream_t *)&w->err, on_alloc, on_output);
    worker_timer(w, start_probe, 0);
    return;

fail:
    free(env);
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    fw_proc_strerror(e, why, sizeof(why));
    fw_log(FW_ERROR, "upstream %d: cannot start %s: %s", w->index,
           us.cfg->fprocess, why);
    if (us.n == 1 && us.on_fatal)
        us.on_fatal();
    else
        worker_timer(w, on_restart, FW_RESTART_MAX_MS);
}

int fw_upstream_start(uv_loop_t *loop, const struct fw_config *cfg,
                      void (*on_ready)(void), void (*on_fatal)(void))
{
    size_t i;
    int err;

    us.loop = loop;
    us.cfg = cfg;
    us.on_ready = on_ready;
    us.on_fatal = on_fatal;
    us.n = cfg->http_workers < 1 ? 1
           : cfg->http_workers > FW_MAX_WORKERS ? FW_MAX_WORKERS
                                                : (size_t)cfg->http_workers;
    if (parse_url(cfg->upstream_url) < 0) {
        fw_log(FW_ERROR, "upstream_url: cannot use \"%s\"",
               cfg->upstream_url);
        return -EINVAL;
    }
    us.workers = calloc(us.n, sizeof(*us.workers));
    if (us.workers == NULL)
        return -ENOMEM;
    for (i = 0; i < us.n; i++)
        fw_list_init(&us.workers[i].idle);    /* fw_proxy_close walks it */
    err = resolve();
    if (err < 0)
        return err;
    if (fw_proc_resolve_in(cfg->fprocess_workdir, cfg->argv[0], us.path,
                           sizeof(us.path)) < 0) {
        fw_log(FW_ERROR, "fprocess: %s", us.path);
        return -ENOENT;
    }
    uv_timer_init(loop, &us.kill_timer);
    for (i = 0; i < us.n; i++) {
        struct fw_worker *w = &us.workers[i];

        w->index = (int)i;
        fw_lines_init(&w->out_lines, 1, "stdout", cfg->prefix_logs,
                      cfg->log_buffer_size);
        fw_lines_init(&w->err_lines, 2, "stderr", cfg->prefix_logs,
                      cfg->log_buffer_size);
        uv_timer_init(loop, &w->timer);
        w->timer.data = w;
        start_worker(w);
        if (!w->running && us.n == 1)
            return -ECHILD;
    }
    return 0;
}

struct fw_worker *fw_upstream_pick(void)
{
    struct fw_worker *best = NULL;
    size_t i;

    for (i = 0; i < us.n; i++) {
        struct fw_worker *w = &us.workers[i];

        if (w->ready && (best == NULL || w->outstanding < best->outstanding))
            best = w;
    }
    return best;
}

size_t fw_upstream_count(void)
{
    return us.workers ? us.n : 0;
}

struct fw_worker *fw_upstream_worker(size_t i)
{
    return i < us.n ? &us.workers[i] : NULL;
}

size_t fw_upstream_ready(void)
{
    size_t i, n = 0;

    for (i = 0; i < us.n; i++)
        n += us.workers[i].ready;
    return n;
}

const char *fw_upstream_base(void)
{
    return us.base;
}

const char *fw_upstream_host(void)
{
    return us.hostport;
}

void fw_upstream_signal(int sig)
{
    size_t i;

    /* A daemon that stayed in its launcher's group gets them too. */
    for (i = 0; i < us.n; i++)
        if (us.workers[i].running || us.workers[i].daemon_check ||
            us.workers[i].daemonised)
            fw_proc_kill_group(us.workers[i].proc.pid, sig);
}

static void on_kill_timer(uv_timer_t *t)
{
    (void)t;
    fw_log(FW_INFO, "upstream still running after SIGTERM: SIGKILL");
    fw_upstream_signal(SIGKILL);
}

void fw_upstream_stop(void (*on_stopped)(void))
{
    size_t i;
    int running = 0;

    us.stopping = true;
    us.on_stopped = on_stopped;
    for (i = 0; i < us.n; i++) {
        struct fw_worker *w = &us.workers[i];

        w->ready = false;
        worker_timer_stop(w);
        running += w->running;
    }
    fw_upstream_signal(SIGTERM);
    if (running == 0) {
        close_rest();    /* a daemon is not waited for */
        return;
    }
    uv_timer_start(&us.kill_timer, on_kill_timer, FW_STOP_GRACE_MS, 0);
}
