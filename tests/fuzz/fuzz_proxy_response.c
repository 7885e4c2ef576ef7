/* fuzz_proxy_response.c - libFuzzer target for http mode's response
 * path: the input is what the function's own server answers. A client
 * sends one request through the real server and proxy (server.c,
 * response.c, proxy.c) to an upstream in this process that answers
 * every connection with the input and closes its side.
 *
 * The first input byte picks the request (GET, HEAD, POST with a
 * length, POST chunked, GET with Upgrade, GET for an event stream,
 * chunked with http_buffer_req_body, Connection: close); the rest is
 * the upstream's answer. upstream.c is replaced by the stand-ins below
 * (one worker, always ready, at the fake upstream), as it would start
 * processes.
 *
 * Checks: the client gets one well-formed HTTP/1.1 response. Where
 * http-parser reads the input as a complete response, the client gets
 * its status and body, its end-to-end headers, and no hop-by-hop ones;
 * where it reads a head and a cut body, a prefix of that body; where it
 * finds no head, a 500 from the proxy.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "conn.h"
#include "fuzz_common.h"
#include "http.h"
#include "log.h"
#include "proxy.h"
#include "server.h"
#include "upstream.h"

#define MAX_UP 8                 /* upstream connections per input */

struct upstream_conn {
    int fd;                      /* -1 when closed */
    size_t sent;                 /* answer bytes written */
    bool answering;              /* the request's head has arrived */
    bool shut;                   /* our side is shut down */
    struct fw_buf in;            /* what the proxy sent */
};

static struct {
    uv_loop_t loop;
    int port;                    /* the watchdog's */
    int up_fd;                   /* the fake upstream's listener */
    struct fw_config cfg;        /* what proxy.c reads */
    struct fw_worker worker;     /* the one stand-in worker */
    struct upstream_conn up[MAX_UP];
    size_t n_up;
    const uint8_t *answer;       /* the input's answer */
    size_t answer_len;
    bool head_request;
} fz;

/* ---- upstream.c's stand-ins ---------------------------------------------- */

struct fw_worker *fw_upstream_pick(void)
{
    return &fz.worker;
}

size_t fw_upstream_count(void)
{
    return 1;
}

struct fw_worker *fw_upstream_worker(size_t i)
{
    return i == 0 ? &fz.worker : NULL;
}

size_t fw_upstream_ready(void)
{
    return 1;
}

const char *fw_upstream_base(void)
{
    return "";
}

const char *fw_upstream_host(void)
{
    return "127.0.0.1";
}

/* ---- the fake upstream ---------------------------------------------------- */

static void upstream_start(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);

    fz.up_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fz.up_fd < 0 || bind(fz.up_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(fz.up_fd, 64) < 0 ||
        getsockname(fz.up_fd, (struct sockaddr *)&a, &len) < 0)
        fz_fail("upstream listener: %s", strerror(errno));
    memcpy(&fz.worker.addr, &a, sizeof(a));
    fz.worker.ready = true;
    fz.worker.running = true;
    fw_list_init(&fz.worker.idle);
}

static void upstream_close(struct upstream_conn *u)
{
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    fw_buf_release(&u->in);
}

/* One turn: accept, read, answer with the input once a head is in,
 * then shut down our side and wait for the proxy to close. */
static void upstream_turn(void)
{
    size_t i;
    int fd;

    while ((fd = accept4(fz.up_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        FZ_CHECK(fz.n_up < MAX_UP, "too many upstream connections");
        memset(&fz.up[fz.n_up], 0, sizeof(fz.up[0]));
        fz.up[fz.n_up].fd = fd;
        fw_buf_init(&fz.up[fz.n_up].in, 0);
        fz.n_up++;
    }
    for (i = 0; i < fz.n_up; i++) {
        struct upstream_conn *u = &fz.up[i];
        bool reset = false, eof;

        if (u->fd < 0)
            continue;
        eof = fz_recv_some(u->fd, &u->in, &reset);
        if (!u->answering && u->in.len &&
            memmem(u->in.data, u->in.len, "\r\n\r\n", 4))
            u->answering = true;
        if (u->answering && !u->shut &&
            fz_send_some(u->fd, fz.answer, fz.answer_len, &u->sent)) {
            shutdown(u->fd, SHUT_WR);
            u->shut = true;
        }
        if (eof)
            upstream_close(u);
    }
}

/* ---- the request ---------------------------------------------------------- */

static size_t build_request(unsigned variant, char *out, size_t len)
{
    static const char *const requests[] = {
        "GET /fn?q=1 HTTP/1.1\r\nHost: fn\r\nX-Call-Id: 7\r\n\r\n",
        "HEAD /fn HTTP/1.1\r\nHost: fn\r\n\r\n",
        "POST /fn HTTP/1.1\r\nHost: fn\r\nContent-Length: 5\r\n\r\nhello",
        "POST /fn HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: fn\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\n\r\n",
        "GET /sse HTTP/1.1\r\nHost: fn\r\nAccept: text/event-stream\r\n\r\n",
        "PUT /fn HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n",
        "GET /fn HTTP/1.0\r\nConnection: close\r\n\r\n",
    };

    return (size_t)snprintf(out, len, "%s", requests[variant % 8]);
}

/* ---- what the input says, read directly ---------------------------------- */

struct expect {
    struct fz_reader rd;         /* the input as one client would read it */
    const struct fz_msg *final;  /* its final response, or NULL */
    bool usable;                 /* simple enough to compare exactly */
};

static bool expect_no_body(void *ctx, size_t index)
{
    (void)ctx;
    (void)index;
    return fz.head_request;
}

static void read_input(struct expect *ex)
{
    fz_reader_run(&ex->rd, (const char *)fz.answer, fz.answer_len,
                  expect_no_body, NULL);
    ex->final = ex->rd.n > 0 ? &ex->rd.msgs[0] : NULL;
    /* 101 switches protocols: what follows is not HTTP, leave it be. */
    ex->usable = !ex->rd.overflow && !ex->rd.parser.upgrade &&
                 !(ex->final && ex->final->status == 101);
}

/* ---- checks ----------------------------------------------------------------- */

static bool hop_by_hop(const char *name)
{
    static const char *const names[] = {
        "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
        "Proxy-Authorization", "TE", "Trailer", "Upgrade",
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

static void check_headers(const struct fz_msg *got)
{
    const char *p = got->head.data;
    size_t i, n;

    for (i = 0; i < got->n_headers; i++) {
        const char *value = p + strlen(p) + 1;

        FZ_CHECK(got->status == 101 || !hop_by_hop(p), "%s passed on", p);
        FZ_CHECK(!strpbrk(value, "\r\n"), "line break in %s", p);
        p = value + strlen(value) + 1;
    }
    fz_msg_header(got, "Content-Length", &n);
    FZ_CHECK(n <= 1, "%zu Content-Length headers", n);
    fz_msg_header(got, "Transfer-Encoding", &i);
    FZ_CHECK(i <= 1, "%zu Transfer-Encoding headers", i);
    FZ_CHECK(n + i <= 1, "Content-Length and Transfer-Encoding");
    fz_msg_header(got, "Connection", &n);
    FZ_CHECK(n <= 1, "%zu Connection headers", n);
}

/* Names are tokens and values have no control bytes (the reader stores
 * a NUL in a value as \x01, a control byte too). */
static bool valid_fields(const struct fz_msg *m)
{
    const char *p = m->head.data;
    size_t i;

    for (i = 0; i < m->n_headers; i++) {
        const char *value = p + strlen(p) + 1;

        if (!fw_http_is_token(p, strlen(p)) ||
            !fw_http_is_field_value(value, strlen(value)))
            return false;
        p = value + strlen(value) + 1;
    }
    return true;
}

/* The client's response against what the input holds. */
static void check_against_input(const struct fz_msg *got,
                                const struct expect *ex)
{
    const struct fz_msg *want = ex->final;

    /* No head, or one the proxy must refuse (status below 100, a header
     * name that is not a token, a value with a control byte). */
    if (want == NULL || want->status < 100 || !valid_fields(want)) {
        FZ_CHECK(got->status == 500, "no head upstream, %d", got->status);
        FZ_CHECK(got->body.len == 0, "body on a proxy error");
        return;
    }
    if (got->status == 500 && want->status != 500 &&
        fz_msg_header(got, "X-Openfaas-Internal", NULL))
        return;    /* a head that failed the proxy's limits */
    FZ_CHECK(got->status == want->status, "status %d, upstream %d",
             got->status, want->status);
    if (fz.head_request || want->status == 204 || want->status == 304) {
        FZ_CHECK(got->body.len == 0, "body where none may be");
        return;
    }
    FZ_CHECK(got->body.len <= want->body.len, "longer body than upstream");
    FZ_CHECK(got->body.len == 0 ||
             memcmp(got->body.data, want->body.data, got->body.len) == 0,
             "body differs from upstream");
    if (want->complete && !ex->rd.error)
        FZ_CHECK(got->complete && got->body.len == want->body.len,
                 "upstream body complete (%zu), client got %zu%s",
                 want->body.len, got->body.len,
                 got->complete ? "" : " cut");
}

static bool client_no_body(void *ctx, size_t index)
{
    (void)ctx;
    (void)index;
    return fz.head_request;
}

static void check_client(const struct fw_buf *out, bool reset)
{
    struct fz_reader rd;
    struct expect ex;

    if (getenv("FZ_DEBUG"))    /* FZ_DEBUG=1: show what the client got */
        fprintf(stderr, "---- client received %zu bytes:\n%.*s\n----\n",
                out->len, (int)out->len, out->data ? out->data : "");
    fz_reader_run(&rd, out->data ? out->data : "", out->len, client_no_body,
                  NULL);
    read_input(&ex);
    if (!reset) {
        FZ_CHECK(!rd.error, "client cannot parse the response: %s",
                 http_errno_description(HTTP_PARSER_ERRNO(&rd.parser)));
        FZ_CHECK(rd.n == 1, "%zu responses to one request", rd.n);
    }
    if (rd.n >= 1) {
        const struct fz_msg *got = &rd.msgs[0];

        FZ_CHECK(got->http_major == 1 && got->http_minor == 1, "version");
        check_headers(got);
        if (ex.usable && !reset)
            check_against_input(got, &ex);
    }
    fz_reader_release(&ex.rd);
    fz_reader_release(&rd);
}

/* ---- the run ------------------------------------------------------------- */

static void start(void)
{
    struct fw_server_config scfg = {
        .port = 0,
        .read_timeout_ms = 60000,
        .write_timeout_ms = 60000,
        .function = &fw_proxy_handler,
        .probes = &fw_proxy_handler,
        .log_reason = true,
    };
    int err;

    fw_log_init(FW_ERROR);
    uv_loop_init(&fz.loop);
    upstream_start();
    fz.cfg.mode = FW_MODE_HTTP;
    fz.cfg.exec_timeout_ms = 0;
    fw_proxy_init(&fz.loop, &fz.cfg);
    err = fw_server_start(&fz.loop, &scfg);
    if (err < 0)
        fz_fail("fw_server_start: %s", uv_strerror(err));
    fz.port = fz_port_of(&fw_srv.listener);
}

static bool settled(void)
{
    size_t i;

    for (i = 0; i < fz.n_up; i++)
        if (fz.up[i].fd >= 0)
            return false;
    return fw_server_connections() == 0 &&
           fw_list_empty(&fz.worker.idle) && fz.worker.outstanding == 0;
}

static bool response_done(const struct fw_buf *out)
{
    struct fz_reader rd;
    bool done;

    /* Cheap enough for inputs this size: is one response complete? */
    fz_reader_run(&rd, out->data ? out->data : "", out->len, client_no_body,
                  NULL);
    done = (rd.n >= 1 && rd.msgs[0].complete && !rd.msgs[0].upgrade) ||
           rd.error;    /* no use waiting: check_client reports it */
    fz_reader_release(&rd);
    return done;
}

static void exchange(const char *req, size_t req_len, struct fw_buf *out,
                     bool *reset)
{
    int fd = fz_connect(fz.port);
    size_t sent = 0, seen = 0;
    bool eof = false;
    int turns;

    for (turns = 0; turns < FZ_TURNS; turns++) {
        if (fd >= 0 && sent < req_len)
            fz_send_some(fd, (const uint8_t *)req, req_len, &sent);
        uv_run(&fz.loop, UV_RUN_NOWAIT);
        upstream_turn();
        if (fd >= 0 && !eof) {
            eof = fz_recv_some(fd, out, reset);
            /* A keep-alive response ends where its framing says. */
            if (!eof && out->len != seen) {
                seen = out->len;
                eof = response_done(out);
            }
            if (eof) {
                close(fd);
                fd = -1;
            }
        }
        if (fd < 0 && settled())
            break;
    }
    if (turns == FZ_TURNS)
        fz_fail("hung: eof %d, connections %zu, upstream idle %d, "
                "outstanding %d, client got %zu bytes:\n%.*s", eof,
                fw_server_connections(), fz.worker.n_idle,
                fz.worker.outstanding, out->len, (int)out->len,
                out->data ? out->data : "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool started;
    struct fw_buf out;
    char req[512];
    size_t req_len;
    unsigned variant;
    bool reset = false;
    size_t i;

    if (size < 1)
        return 0;
    if (!started) {
        start();
        started = true;
    }
    variant = data[0] % 8;
    fz.answer = data + 1;
    fz.answer_len = size - 1;
    fz.head_request = variant == 1;
    fz.cfg.http_buffer_req_body = variant == 6;
    fz.n_up = 0;
    req_len = build_request(variant, req, sizeof(req));
    fw_buf_init(&out, 0);
    exchange(req, req_len, &out, &reset);
    for (i = 0; i < fz.n_up; i++)
        upstream_close(&fz.up[i]);
    check_client(&out, reset);
    fw_buf_release(&out);
    return 0;
}
