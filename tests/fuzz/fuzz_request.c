/* fuzz_request.c - libFuzzer target for the request path: the input is
 * what one client sends on one connection (pipelined requests, chunked
 * bodies, garbage), through the real listener, parser and response
 * writer of server.c and response.c, to a recording handler.
 *
 * The handler checks what reaches it (NUL-terminated strings, a body as
 * long as its Content-Length, callbacks in order) and answers each
 * request by echoing its body in a way the first byte of its path picks
 * ('e' early, 'c' chunked, 'a' aborted, 'p' paused, 'h' with the
 * request's Content-Length, else whole). The client then checks that it
 * got one well-formed HTTP/1.1 answer per request, in order, bodies
 * intact, and at most one error from the server after them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "conn.h"
#include "fuzz_common.h"
#include "log.h"
#include "server.h"

#define MAX_RECS 1024

struct rec {
    bool head_only;              /* HEAD */
    char mode;                   /* how the handler answers */
    int64_t content_length;
    bool chunked;
    struct fw_buf body;          /* bytes seen by on_body */
    bool body_ended;             /* on_body_end ran */
    bool aborted;                /* on_abort ran */
    bool done;                   /* the handler ended or aborted the reply */
    bool cut;                    /* ... with fw_response_abort */
    int status;                  /* what it answered */
    const char *fixed;           /* body sent instead of the echo */
};

static struct {
    uv_loop_t loop;
    int port;
    struct rec recs[MAX_RECS];
    size_t n;
    struct fw_request *paused;   /* resumed on the next loop turn */
} fz;

/* ---- the handler ------------------------------------------------------ */

static struct rec *rec_of(struct fw_request *r)
{
    struct rec *rec = r->data;

    FZ_CHECK(rec >= fz.recs && rec < fz.recs + fz.n, "request data lost");
    return rec;
}

static void check_strings(const struct fw_request *r)
{
    size_t i, plen = strlen(r->path);

    FZ_CHECK(r->method && *r->method, "no method");
    FZ_CHECK(strncmp(r->target, r->path, plen) == 0, "path %s", r->path);
    FZ_CHECK(r->target[plen] == '\0' || r->target[plen] == '?', "path end");
    if (r->target[plen] == '?')
        FZ_CHECK(strcmp(r->query, r->target + plen + 1) == 0, "query");
    else
        FZ_CHECK(*r->query == '\0', "query without '?'");
    for (i = 0; i < r->n_headers; i++) {
        const struct fw_header *h = &r->headers[i];

        FZ_CHECK(h->name_len > 0, "empty header name");
        FZ_CHECK(h->name[h->name_len] == '\0', "name not NUL-terminated");
        FZ_CHECK(h->value[h->value_len] == '\0', "value not NUL-terminated");
        FZ_CHECK(strlen(h->name) == h->name_len, "NUL inside a name");
        FZ_CHECK(strlen(h->value) == h->value_len, "NUL inside a value");
    }
}

/* What the head says about the body must match the request fields. */
static void check_framing(const struct fw_request *r)
{
    const struct fw_header *te = fw_request_header(r, "Transfer-Encoding");
    const struct fw_header *cl = fw_request_header(r, "Content-Length");

    /* As Go: any HTTP/1.x, served as 1.1 from 1.1 up. */
    FZ_CHECK(r->http_major == 1, "version %d.%d", r->http_major,
             r->http_minor);
    if (r->http_minor >= 1)
        FZ_CHECK(fw_request_header(r, "Host") != NULL, "1.1 without Host");
    FZ_CHECK(!(r->chunked && r->content_length >= 0), "chunked with length");
    FZ_CHECK(r->chunked == (te != NULL), "Transfer-Encoding but not chunked");
    if (te)
        FZ_CHECK(strcasecmp(te->value, "chunked") == 0, "TE %s", te->value);
    if (r->content_length >= 0) {
        char *end;
        unsigned long long v;

        FZ_CHECK(cl != NULL, "length without Content-Length");
        v = strtoull(cl->value, &end, 10);
        FZ_CHECK(v == (unsigned long long)r->content_length,
                 "Content-Length %s, length %lld", cl->value,
                 (long long)r->content_length);
    } else if (!r->chunked) {
        FZ_CHECK(cl == NULL, "Content-Length %s ignored", cl->value);
    }
}

static void reply_whole(struct fw_request *r, struct rec *rec,
                        const char *body, size_t len)
{
    static const struct fw_hdr hdrs[] = { { "X-Fuzz", "whole" } };

    rec->done = true;
    rec->status = 200;
    fw_response_send(r, 200, hdrs, 1, body, len);
}

static void on_head(struct fw_request *r)
{
    struct rec *rec;

    check_strings(r);
    check_framing(r);
    FZ_CHECK(fz.n < MAX_RECS, "too many requests");
    rec = &fz.recs[fz.n++];
    memset(rec, 0, sizeof(*rec));
    fw_buf_init(&rec->body, 0);
    rec->head_only = r->head_only;
    rec->mode = r->path[0] ? r->path[1] : 0;
    rec->content_length = r->content_length;
    rec->chunked = r->chunked;
    r->data = rec;
    switch (rec->mode) {
    case 'e':
        rec->fixed = "early";
        reply_whole(r, rec, "early", 5);
        break;
    case 'c':
        rec->status = 201;
        if (fw_response_head(r, 201, NULL, 0, -1) < 0)
            fz_fail("fw_response_head");
        break;
    case 'h':
        rec->status = 202;
        if (fw_response_head(r, 202, NULL, 0, r->content_length) < 0)
            fz_fail("fw_response_head");
        break;
    case 'p':
        fw_request_pause(r);
        fz.paused = r;
        break;
    }
}

static void on_body(struct fw_request *r, const char *p, size_t len)
{
    struct rec *rec = rec_of(r);

    FZ_CHECK(!rec->done && !rec->aborted, "body after the response ended");
    FZ_CHECK(!rec->body_ended, "body after its end");
    FZ_CHECK(len > 0, "empty body piece");
    fw_buf_append(&rec->body, p, len);
    if (rec->content_length >= 0)
        FZ_CHECK((int64_t)rec->body.len <= rec->content_length,
                 "body longer than Content-Length");
    if (rec->mode == 'c' || rec->mode == 'h')
        fw_response_write_copy(r, p, len);
}

static void on_body_end(struct fw_request *r)
{
    struct rec *rec = rec_of(r);

    FZ_CHECK(!rec->done && !rec->aborted, "body end after response end");
    FZ_CHECK(!rec->body_ended, "two body ends");
    rec->body_ended = true;
    if (rec->content_length >= 0)
        FZ_CHECK((int64_t)rec->body.len == rec->content_length,
                 "body %zu bytes, Content-Length %lld", rec->body.len,
                 (long long)rec->content_length);
    else if (!rec->chunked)
        FZ_CHECK(rec->body.len == 0, "body without framing");
    switch (rec->mode) {
    case 'c':
    case 'h':
        rec->done = true;
        fw_response_end(r);
        break;
    case 'a':
        rec->done = rec->cut = true;
        rec->status = 203;
        fw_response_head(r, 203, NULL, 0, -1);
        fw_response_write_copy(r, "cut", 3);
        fw_response_abort(r);
        break;
    default:
        reply_whole(r, rec, rec->body.data, rec->body.len);
        break;
    }
}

static void on_abort(struct fw_request *r, enum fw_abort why)
{
    struct rec *rec = rec_of(r);

    (void)why;
    FZ_CHECK(!rec->done, "abort after the response ended");
    FZ_CHECK(!rec->aborted, "two aborts");
    rec->aborted = true;
    if (fz.paused == r)
        fz.paused = NULL;
}

static const struct fw_handler handler = {
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_abort = on_abort,
};

/* ---- the client's view ------------------------------------------------ */

static bool no_body(void *ctx, size_t index)
{
    (void)ctx;
    return index < fz.n && fz.recs[index].head_only;
}

static bool is_server_error(int status)
{
    return status == 400 || status == 431 || status == 501 || status == 505;
}

/* One answer per request, in order; then at most one server error. */
static void check_responses(const struct fz_reader *rd, bool reset)
{
    size_t i;

    FZ_CHECK(!rd->overflow, "too many responses");
    for (i = 0; i < rd->n; i++) {
        const struct fz_msg *m = &rd->msgs[i];
        const struct rec *rec = i < fz.n ? &fz.recs[i] : NULL;
        bool last = i + 1 == rd->n;

        FZ_CHECK(m->http_major == 1 && m->http_minor == 1,
                 "response %zu is HTTP/%d.%d", i, m->http_major,
                 m->http_minor);
        FZ_CHECK(fz_msg_header(m, "Date", NULL), "response %zu: no Date", i);
        if (rec == NULL) {
            FZ_CHECK(last, "response %zu after the server's error", i);
            FZ_CHECK(is_server_error(m->status), "unexpected %d", m->status);
            continue;
        }
        if (rec->aborted && m->status != rec->status) {
            /* A bad chunk or the like: the server answers in its place. */
            FZ_CHECK(last && is_server_error(m->status), "response %zu: "
                     "%d for an aborted request", i, m->status);
            continue;
        }
        FZ_CHECK(m->status == rec->status, "response %zu: status %d, "
                 "handler sent %d", i, m->status, rec->status);
        if (!m->complete || rec->cut) {
            /* A cut response to HTTP/1.0 is close-delimited, so it may
             * look complete; either way nothing may follow it. */
            FZ_CHECK(last && (rec->cut || rec->aborted || reset),
                     "response %zu incomplete", i);
            continue;
        }
        if (rec->head_only || m->status == 204 || m->status == 304) {
            FZ_CHECK(m->body.len == 0, "HEAD response with a body");
        } else if (rec->fixed) {
            FZ_CHECK(m->body.len == strlen(rec->fixed) &&
                     memcmp(m->body.data, rec->fixed, m->body.len) == 0,
                     "response %zu: body changed", i);
        } else {
            FZ_CHECK(m->body.len == rec->body.len &&
                     (m->body.len == 0 ||
                      memcmp(m->body.data, rec->body.data, m->body.len) == 0),
                     "response %zu: %zu body bytes, request had %zu", i,
                     m->body.len, rec->body.len);
        }
    }
    if (reset || rd->error)
        return;
    /* Every request the handler answered in full has its response. */
    for (i = rd->n; i < fz.n; i++)
        FZ_CHECK(!fz.recs[i].done || fz.recs[i].cut,
                 "request %zu answered, response lost", i);
}

/* ---- the run ------------------------------------------------------------- */

static void start_server(void)
{
    struct fw_server_config cfg = {
        .port = 0,
        .read_timeout_ms = 60000,
        .write_timeout_ms = 60000,
        .function = &handler,
        .probes = &handler,
    };
    int err;

    fw_log_init(FW_ERROR);
    uv_loop_init(&fz.loop);
    err = fw_server_start(&fz.loop, &cfg);
    if (err < 0)
        fz_fail("fw_server_start: %s", uv_strerror(err));
    fz.port = fz_port_of(&fw_srv.listener);
}

/* Sends the input, half-closes, reads until the server has closed and
 * forgotten the connection. */
static void exchange(const uint8_t *data, size_t size, struct fw_buf *out,
                     bool *reset)
{
    int fd = fz_connect(fz.port);
    size_t sent = 0;
    bool all_sent = false, eof = false;
    int turns;

    for (turns = 0; turns < FZ_TURNS; turns++) {
        if (!all_sent && fz_send_some(fd, data, size, &sent)) {
            all_sent = true;
            shutdown(fd, SHUT_WR);
        }
        uv_run(&fz.loop, UV_RUN_NOWAIT);
        if (fz.paused) {
            struct fw_request *r = fz.paused;

            fz.paused = NULL;
            fw_request_resume(r);
        }
        if (!eof)
            eof = fz_recv_some(fd, out, reset);
        if (eof && fw_server_connections() == 0)
            break;
    }
    if (turns == FZ_TURNS)
        fz_fail("hung: sent %zu of %zu bytes, eof %d, connections %zu",
                sent, size, eof, fw_server_connections());
    close(fd);
    FZ_CHECK(fw_server_inflight() == 0, "in flight after the connection");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool started;
    struct fw_buf out;
    struct fz_reader rd;
    bool reset = false;
    size_t i;

    if (!started) {
        start_server();
        started = true;
    }
    fz.n = 0;
    fz.paused = NULL;
    fw_buf_init(&out, 0);
    exchange(data, size, &out, &reset);
    if (getenv("FZ_DEBUG"))    /* FZ_DEBUG=1: show what the client got */
        fprintf(stderr, "---- client received %zu bytes:\n%.*s\n----\n",
                out.len, (int)out.len, out.data ? out.data : "");
    fz_reader_run(&rd, out.data ? out.data : "", out.len, no_body, NULL);
    check_responses(&rd, reset);
    fz_reader_release(&rd);
    fw_buf_release(&out);
    for (i = 0; i < fz.n; i++)
        fw_buf_release(&fz.recs[i].body);
    return 0;
}
