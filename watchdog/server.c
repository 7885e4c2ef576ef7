/* server.c - HTTP/1.1 on libuv and http-parser.
 *
 * Owns every client connection: reading and parsing requests, the
 * limits of spec section 11, read and write timeouts, keep-alive and the
 * in-flight cap. Listening, accepting and the drain are listener.c's,
 * writing responses is response.c's; what a request does is left to the
 * handlers of server.h. A connection
 * serves one request at a time; bytes of the next (pipelined) request
 * wait in its read buffer while the parser is paused.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"

struct fw_server_state fw_srv = { .conns = FW_LIST_INIT(fw_srv.conns) };


static void update_reading(struct fw_conn *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void request_reset(struct fw_conn *c);

/* ---- connection lifetime -------------------------------------------- */

void fw_server_check_idle(void)
{
    void (*cb)(void) = fw_srv.on_idle;

    if (cb && fw_srv.n_conns == 0 && !fw_srv.listening) {
        fw_srv.on_idle = NULL;
        cb();
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    struct fw_conn *c = h->data;

    if (--c->open_handles > 0)
        return;
    fw_list_remove(&c->link);
    if (!c->admin)
        fw_srv.n_conns--;
    fw_buf_release(&c->head);
    fw_fields_release(&c->fields);
    fw_buf_release(&c->out_head);
    free(c->headers);
    free(c->alt_target);
    free(c->rbuf);
    if (c->writable) {
        close(c->writable_fd);
        free(c->writable);
    }
    free(c);
    fw_server_check_idle();
}

/* The code metrics record for a request that ends without a response:
 * nginx's 499 for a client that left, else what a proxy would answer. */
static int abort_status(const struct fw_conn *c, enum fw_abort why)
{
    if (c->status)
        return c->status;
    return why == FW_ABORT_CLIENT ? 499
           : why == FW_ABORT_TIMEOUT ? 504 : 503;
}

/* Detaches the handler and tells it the request is gone. */
void fw_conn_abort_handler(struct fw_conn *c, enum fw_abort why)
{
    const struct fw_handler *h = c->handler;

    if (h == NULL)
        return;
    c->handler = NULL;
    if (c->is_function) {
        c->is_function = false;
        fw_srv.inflight--;
        /* A request that ends early is logged too, as metrics count it. */
        fw_conn_log_request(c, abort_status(c, why));
    }
    if (c->observed) {
        c->observed = false;
        fw_metrics_request_end(c->req.method, abort_status(c, why),
                               c->req.start_ns);
    }
    if (h->on_abort)
        h->on_abort(&c->req, why);
}

void fw_conn_close_for(struct fw_conn *c, enum fw_abort why)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->closing = true;
    fw_conn_abort_handler(c, why);
    fw_conn_stop_file(c);
    if (c->writable) {
        c->open_handles++;
        uv_close((uv_handle_t *)c->writable, on_conn_closed);
    }
    uv_close((uv_handle_t *)&c->read_timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->write_timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

void fw_conn_close(struct fw_conn *c)
{
    fw_conn_close_for(c, FW_ABORT_CLIENT);
}

static void on_linger_timeout(uv_timer_t *t)
{
    fw_conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct fw_conn *c = req->data;

    if (status < 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
        fw_conn_close(c);
        return;
    }
    /* Our side is done. Read and drop what the client still sends until
     * its FIN, so closing does not reset a response it has not read. */
    c->lingering = true;
    c->rpos = c->rlen = 0;
    update_reading(c);
    uv_timer_start(&c->read_timer, on_linger_timeout, FW_LINGER_MS, 0);
}

/* Closes after the queued writes have left. */
void fw_conn_finish(struct fw_conn *c)
{
    int err;

    if (c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->write_timer);
    uv_timer_stop(&c->read_timer);
    c->shutdown.data = c;
    err = uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown);
    if (err < 0)
        fw_conn_close(c);
}

/* ---- parsing ---------------------------------------------------------- */

/* The admin listener has its own, short timeouts (spec 10). */
static uint64_t read_timeout_ms(const struct fw_conn *c)
{
    return (uint64_t)(c->admin ? fw_srv.admin_timeout_ms
                               : fw_srv.cfg.read_timeout_ms);
}

static int64_t write_timeout_ms(const struct fw_conn *c)
{
    return c->admin ? fw_srv.admin_timeout_ms : fw_srv.cfg.write_timeout_ms;
}

static void request_reset(struct fw_conn *c)
{
    fw_buf_reset(&c->head);
    fw_fields_reset(&c->fields);
    fw_buf_reset(&c->out_head);
    free(c->headers);
    c->headers = NULL;
    free(c->alt_target);
    c->alt_target = NULL;
    memset(&c->req, 0, sizeof(c->req));
    c->req.conn = c;
    c->target_len = 0;
    c->in_request = false;
    c->head_done = false;
    c->body_done = false;
    c->response_done = false;
    c->paused = false;
    c->want_drain = false;
    c->observed = false;
    c->quiet = false;
    c->continue_sent = false;
    c->expect_continue = false;
    c->status = 0;
    c->head_pending = false;
    c->head_started = false;
    c->chunked_out = false;
    c->close_delimited = false;
    c->out_length = -1;
    c->body_bytes = 0;
    c->body_in_bytes = 0;
    http_parser_pause(&c->parser, 0);
}

static void on_read_timeout(uv_timer_t *t)
{
    struct fw_conn *c = t->data;

    /* Idle keep-alive connections and requests that arrive too slowly
     * are closed, as Go's ReadTimeout does; the classic watchdog answers
     * a body that stops coming with 400 and the read error. */
    if (c->in_request)
        fw_log(FW_DEBUG, "read_timeout: closing a slow client");
    if (c->handler && !c->head_started && fw_srv.cfg.late_body_status &&
        !c->admin) {
        fw_conn_send_error_for(c, FW_ABORT_TIMEOUT,
                               fw_srv.cfg.late_body_status,
                               "read: i/o timeout\n");
        return;
    }
    fw_conn_close_for(c, FW_ABORT_TIMEOUT);
}

static void on_write_timeout(uv_timer_t *t)
{
    struct fw_conn *c = t->data;

    fw_log(FW_INFO, "%s %s - write_timeout passed, closing connection",
           c->req.method, c->req.target);
    fw_conn_close_for(c, FW_ABORT_TIMEOUT);
}

static int on_message_begin(http_parser *p)
{
    struct fw_conn *c = p->data;

    c->in_request = true;
    c->used = true;
    return 0;
}

static int append_head(struct fw_conn *c, const char *at, size_t len)
{
    return fw_buf_append(&c->head, at, len) < 0 ? -1 : 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct fw_conn *c = p->data;

    c->target_len += len;
    return append_head(c, at, len);
}

/* Trailers of a chunked body come through these too: they are dropped
 * (no mode passes trailers on), and must not grow the head buffer the
 * request's headers point into. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct fw_conn *c = p->data;

    return c->head_done ? 0 : fw_fields_name(&c->fields, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct fw_conn *c = p->data;

    return c->head_done ? 0 : fw_fields_value(&c->fields, at, len);
}

/* Turns the offsets into the request's pointers, once the head buffer
 * has stopped growing. */
static int build_request(struct fw_conn *c)
{
    const struct fw_field *o = fw_fields_list(&c->fields);
    size_t i, n = fw_fields_count(&c->fields);
    size_t path_at, query_at;
    const char *q;
    char *base;

    append_head(c, "", 1);     /* ends the target or the last value */
    /* Path and query are copied from the target into the same buffer:
     * make room first, so that growing it cannot free their source. */
    if (fw_buf_reserve(&c->head, c->target_len + 2) < 0)
        return -ENOBUFS;
    base = c->head.data;
    q = c->target_len ? memchr(base, '?', c->target_len) : NULL;
    path_at = c->head.len;
    append_head(c, base, q ? (size_t)(q - base) : c->target_len);
    append_head(c, "", 1);
    query_at = c->head.len;
    if (q)
        append_head(c, q + 1, c->target_len - (size_t)(q - base) - 1);
    append_head(c, "", 1);
    if (c->head.failed)
        return -ENOBUFS;
    c->headers = calloc(n ? n : 1, sizeof(*c->headers));
    if (c->headers == NULL)
        return -ENOMEM;
    base = c->head.data;
    for (i = 0; i < n; i++) {
        c->headers[i].name = base + o[i].name;
        c->headers[i].name_len = o[i].name_len;
        /* An empty value never got a value callback. */
        c->headers[i].value = o[i].value ? base + o[i].value : "";
        c->headers[i].value_len = o[i].value_len;
    }
    c->req.target = base;
    c->req.path = base + path_at;
    c->req.query = base + query_at;
    c->req.headers = c->headers;
    c->req.n_headers = n;
    return 0;
}

const struct fw_header *fw_request_header(const struct fw_request *r,
                                          const char *name)
{
    size_t i;

    for (i = 0; i < r->n_headers; i++)
        if (fw_http_name_is(r->headers[i].name, r->headers[i].name_len,
                            name))
            return &r->headers[i];
    return NULL;
}

static bool value_is(const struct fw_header *h, const char *lit)
{
    return h && fw_http_name_is(h->value, h->value_len, lit);
}

static void send_continue(struct fw_conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";

    if (c->continue_sent)
        return;
    c->continue_sent = true;
    /* Written before any response bytes, so ordering holds. */
    if (fw_conn_write(c, NULL, line, sizeof(line) - 1, false) < 0)
        fw_conn_close(c);
}

static void reject_inflight(struct fw_conn *c)
{
    static const struct fw_hdr hdrs[] = {
        { "Content-Type", "text/plain" },
        { "X-Openfaas-Internal", "faas-middleware" },
    };
    char body[96];
    int n = snprintf(body, sizeof(body),
                     "Concurrent request limit exceeded. Max concurrent "
                     "requests: %" PRId64 "\n", fw_srv.cfg.max_inflight);

    fw_metrics_rejected();
    c->handler = fw_srv.cfg.function;  /* owned by the server for a moment */
    fw_response_send(&c->req, 429, hdrs, 2, body, (size_t)n);
}

/* Picks the handler; answers 429 itself when over max_inflight. */
static void route(struct fw_conn *c)
{
    const struct fw_request *r = &c->req;
    const struct fw_header *ua = fw_request_header(r, "User-Agent");

    if (c->admin) {
        c->quiet = true;
        c->handler = fw_srv.admin_handler;
        c->handler->on_head(&c->req);
        return;
    }
    c->quiet = ua && ua->value_len >= 10 &&
               memcmp(ua->value, "kube-probe", 10) == 0;
    if (strcmp(r->path, "/_/health") == 0 ||
        strcmp(r->path, "/_/ready") == 0) {
        c->quiet = true;
        c->handler = fw_srv.cfg.probes;
        c->handler->on_head(&c->req);
        return;
    }
    c->observed = true;
    fw_metrics_request_begin();
    if (fw_srv.cfg.max_inflight > 0 && fw_srv.inflight >= fw_srv.cfg.max_inflight) {
        reject_inflight(c);
        return;
    }
    c->is_function = true;
    fw_srv.inflight++;
    if (c->expect_continue)
        send_continue(c);
    c->handler = fw_srv.cfg.function;
    c->handler->on_head(&c->req);
}

/* Go's httpguts.ValidHostHeader: the bytes a Host value may hold. */
static bool valid_host(const struct fw_header *h)
{
    static const char extra[] = "!$%&'()*+,-.:;=[]_~";
    size_t i;

    for (i = 0; i < h->value_len; i++) {
        unsigned char ch = (unsigned char)h->value[i];

        if (!(ch >= 0x80 || (ch >= '0' && ch <= '9') ||
              (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch != '\0' && strchr(extra, ch))))
            return false;
    }
    return true;
}

static size_t count_headers(const struct fw_request *r, const char *name)
{
    size_t i, n = 0;

    for (i = 0; i < r->n_headers; i++)
        n += fw_http_name_is(r->headers[i].name, r->headers[i].name_len,
                             name);
    return n;
}

/* http-parser lets spaces into a header name (and takes
 * "Transfer-Encoding :" for framing where a lookup by name, ours or the
 * proxy's hop-by-hop filter, misses it) and control bytes, NUL too, into
 * the start of a value. Go's server refuses both, with these words. */
static const char *invalid_field(const struct fw_request *r)
{
    size_t i;

    for (i = 0; i < r->n_headers; i++) {
        const struct fw_header *h = &r->headers[i];

        if (!fw_http_is_token(h->name, h->name_len))
            return "400 Bad Request: invalid header name";
        if (!fw_http_is_field_value(h->value, h->value_len))
            return "400 Bad Request: invalid header value";
    }
    return NULL;
}

/* Go's url.ParseRequestURI refuses control bytes in the target;
 * http-parser lets a tab through. */
static bool target_has_ctl(const char *t)
{
    for (; *t; t++)
        if ((unsigned char)*t < 0x20 || *t == 0x7f)
            return true;
    return false;
}

static int check_head(struct fw_conn *c)
{
    const struct fw_request *r = &c->req;
    const struct fw_header *te = fw_request_header(r, "Transfer-Encoding");
    const struct fw_header *host = fw_request_header(r, "Host");

    /* http-parser takes a request line without a version for HTTP/0.9
     * and any digits for one; Go's server answers as below. */
    if (r->http_major == 0 && r->http_minor == 9) {
        fw_conn_send_error(c, 400, "400 Bad Request: malformed HTTP version");
        return -1;
    }
    if (r->http_major != 1) {
        fw_conn_send_error(c, 505, "505 HTTP Version Not Supported: "
                           "unsupported protocol version");
        return -1;
    }
    if (invalid_field(r)) {
        fw_conn_send_error(c, 400, invalid_field(r));
        return -1;
    }
    if (target_has_ctl(r->target)) {
        fw_conn_send_error(c, 400, "400 Bad Request");
        return -1;
    }
    if (r->http_major == 1 && r->http_minor >= 1 && host == NULL) {
        fw_conn_send_error(c, 400, "400 Bad Request: missing required Host header");
        return -1;
    }
    if (host && (count_headers(r, "Host") > 1 || !valid_host(host))) {
        fw_conn_send_error(c, 400, "400 Bad Request: malformed Host header");
        return -1;
    }
    /* Go's rule: one Transfer-Encoding, and it is chunked; with two
     * lines a proxy in front may read the first while the parser keeps
     * the last (request smuggling). */
    if (te && (!value_is(te, "chunked") || !r->chunked ||
               count_headers(r, "Transfer-Encoding") > 1)) {
        fw_conn_send_error(c, 501, "501 Not Implemented: unsupported "
                           "transfer encoding");
        return -1;
    }
    /* http-parser takes what follows a CONNECT head for the tunnel, never
     * for a body: one announced would not reach the function. */
    if (c->parser.method == HTTP_CONNECT &&
        (r->chunked || r->content_length > 0)) {
        fw_conn_send_error(c, 400, "400 Bad Request: CONNECT with a body");
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct fw_conn *c = p->data;
    struct fw_request *r = &c->req;
    const struct fw_header *expect;

    c->head_done = true;
    if (build_request(c) < 0) {
        fw_conn_send_error(c, 431, "431 Request Header Fields Too Large");
        return -1;
    }
    r->method = http_method_str((enum http_method)p->method);
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    r->content_length = (p->flags & F_CONTENTLENGTH) ? (int64_t)p->content_length
                                                     : -1;
    r->head_only = p->method == HTTP_HEAD;
    r->start_ns = uv_hrtime();
    c->keep_alive = http_should_keep_alive(p) && !fw_srv.no_keepalive;
    expect = fw_request_header(r, "Expect");
    c->expect_continue = r->http_minor >= 1 && value_is(expect,
                                                        "100-continue") &&
                         (r->chunked || r->content_length > 0);
    if (check_head(c) < 0)
        return -1;
    if (write_timeout_ms(c) > 0)
        uv_timer_start(&c->write_timer, on_write_timeout,
                       (uint64_t)write_timeout_ms(c), 0);
    route(c);
    return c->closing ? -1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct fw_conn *c = p->data;

    if (c->handler && c->handler->on_body) {
        c->body_in_bytes += (int64_t)len;
        if (c->observed)
            fw_metrics_bytes_in(len);
        c->handler->on_body(&c->req, at, len);
    }
    /* Otherwise the response has ended: the rest of the body is read and
     * dropped, so the connection stays usable; read_timeout bounds it. */
    if (c->closing)
        return -1;
    if (c->paused)
        http_parser_pause(p, 1);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct fw_conn *c = p->data;

    c->body_done = true;
    uv_timer_stop(&c->read_timer);
    if (c->handler && c->handler->on_body_end)
        c->handler->on_body_end(&c->req);
    if (c->closing)
        return -1;
    if (p->upgrade)
        c->keep_alive = false;   /* no upgrade support in this mode */
    /* Stop here until the response has ended and the client reads. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- reading ---------------------------------------------------------- */

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void parse_error(struct fw_conn *c, enum http_errno e)
{
    if (c->closing)
        return;
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        fw_conn_send_error(c, 431, "431 Request Header Fields Too Large");
        break;
    case HPE_CB_url:
    case HPE_CB_header_field:
    case HPE_CB_header_value:
        /* Our callbacks fail only when the head outgrows its cap. */
        fw_conn_send_error(c, 431, "431 Request Header Fields Too Large");
        break;
    case HPE_INVALID_TRANSFER_ENCODING:
        fw_conn_send_error(c, 501, "501 Not Implemented: unsupported "
                           "transfer encoding");
        break;
    default:
        fw_log(FW_DEBUG, "bad request: %s", http_errno_description(e));
        fw_conn_send_error(c, 400, "400 Bad Request");
        break;
    }
}

/* Called when a request and its response are both complete. */
static bool next_request(struct fw_conn *c)
{
    if (!c->keep_alive || fw_srv.no_keepalive) {
        fw_conn_finish(c);
        return false;
    }
    request_reset(c);
    uv_timer_start(&c->read_timer, on_read_timeout, read_timeout_ms(c), 0);
    return true;
}

/* Parses what is buffered, as far as the connection's state allows. */
static void feed(struct fw_conn *c)
{
    c->in_feed = true;
    while (!c->closing && !c->paused) {
        enum http_errno e;
        size_t n;

        if (c->body_done) {
            if (!c->response_done ||
                c->tcp.write_queue_size > FW_WRITE_HIGH)
                break;    /* wait for the response, or for the client */
            if (!next_request(c))
                break;
        }
        if (c->rpos == c->rlen)
            break;
        http_parser_pause(&c->parser, 0);
        n = http_parser_execute(&c->parser, &settings, c->rbuf + c->rpos,
                                c->rlen - c->rpos);
        c->rpos += n;
        e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            parse_error(c, e);
            break;
        }
    }
    c->in_feed = false;
    if (c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
    update_reading(c);
}

void fw_conn_pump(struct fw_conn *c)
{
    if (c->tunnel)
        update_reading(c);
    else if (!c->in_feed && !c->closing)
        feed(c);
}

static void update_reading(struct fw_conn *c)
{
    bool want;
    int err;

    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->lingering)
        want = true;
    else
        want = !c->closing && !c->paused &&
               (c->rlen < FW_READ_BYTES || c->rpos > 0);
    if (want == c->reading)
        return;
    if (want) {
        err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (err < 0) {
            fw_conn_close(c);
            return;
        }
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = want;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct fw_conn *c = h->data;

    (void)hint;
    if (c->lingering || c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    } else if (c->rpos > 0 && c->rlen == FW_READ_BYTES) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    /* len 0 makes libuv report UV_ENOBUFS: the buffer is full. */
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(FW_READ_BYTES - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fw_conn *c = s->data;

    (void)buf;
    if (n > 0 && c->tunnel) {
        if (c->observed)
            fw_metrics_bytes_in((size_t)n);
        if (c->handler && c->handler->on_body)
            c->handler->on_body(&c->req, c->rbuf + c->rlen, (size_t)n);
        return;
    } else if (n > 0) {
        if (c->lingering)
            return;
        c->rlen += (size_t)n;
        fw_conn_pump(c);
    } else if (n == UV_ENOBUFS) {
        /* Pipelined bytes wait for the response before them. */
        c->reading = true;
        update_reading(c);
    } else if (n < 0) {
        /* EOF or error: the client is gone, and so is its request. */
        if (n != UV_EOF)
            fw_log(FW_DEBUG, "client read: %s", uv_strerror((int)n));
        fw_conn_close(c);
    }
}

int fw_request_tunnel(struct fw_request *r)
{
    struct fw_conn *c = r->conn;

    c->tunnel = true;
    c->keep_alive = false;
    uv_timer_stop(&c->write_timer);    /* a tunnel lasts as long as it may */
    uv_timer_stop(&c->read_timer);
    /* The 101 goes now: either side may wait for it before speaking. */
    if (c->head_pending && fw_conn_write(c, NULL, NULL, 0, false) < 0) {
        fw_conn_close(c);
        return UV_EPIPE;
    }
    if (c->rpos < c->rlen && c->handler && c->handler->on_body) {
        /* Bytes the client sent after its head belong to the tunnel. */
        size_t at = c->rpos;

        c->rpos = c->rlen;
        c->handler->on_body(r, c->rbuf + at, c->rlen - at);
    }
    c->rpos = c->rlen = 0;
    update_reading(c);
    return 0;
}

int fw_request_forward(struct fw_request *r, const struct fw_handler *h,
                       const char *target)
{
    struct fw_conn *c = r->conn;
    size_t len = strlen(target);
    const char *q = strchr(target, '?');
    size_t path_len = q ? (size_t)(q - target) : len;
    char *p = malloc(2 * len + 3);

    if (p == NULL) {
        fw_response_send(r, 500, NULL, 0, NULL, 0);
        return -ENOMEM;
    }
    memcpy(p, target, len + 1);
    memcpy(p + len + 1, target, path_len);
    p[len + 1 + path_len] = '\0';
    strcpy(p + len + 2 + path_len, q ? q + 1 : "");
    free(c->alt_target);
    c->alt_target = p;
    r->target = p;
    r->path = p + len + 1;
    r->query = p + len + 2 + path_len;
    c->handler = h;
    h->on_head(r);
    return 0;
}

/* ---- back-pressure from handlers ------------------------------------- */

void fw_request_pause(struct fw_request *r)
{
    struct fw_conn *c = r->conn;

    c->paused = true;
    if (c->in_feed)
        http_parser_pause(&c->parser, 1);
    update_reading(c);
}

void fw_request_resume(struct fw_request *r)
{
    struct fw_conn *c = r->conn;

    if (!c->paused)
        return;
    c->paused = false;
    fw_conn_pump(c);
}

/* ---- connections ------------------------------------------------------ */

/* A new connection, its socket not yet attached: the caller accepts
 * into c->tcp, then calls fw_conn_start(). admin: from the admin listener.
 * NULL when out of memory. */
struct fw_conn *fw_conn_new(bool admin)
{
    struct fw_conn *c = calloc(1, sizeof(*c));

    if (c)
        c->rbuf = malloc(FW_READ_BYTES);
    if (c == NULL || c->rbuf == NULL) {
        fw_log(FW_ERROR, "accept: out of memory");
        free(c);
        return NULL;
    }
    uv_tcp_init(fw_srv.loop, &c->tcp);
    uv_timer_init(fw_srv.loop, &c->read_timer);
    uv_timer_init(fw_srv.loop, &c->write_timer);
    c->tcp.data = c->read_timer.data = c->write_timer.data = c;
    c->open_handles = 3;
    c->admin = admin;
    fw_list_push_back(&fw_srv.conns, &c->link);
    if (!admin)
        fw_srv.n_conns++;
    /* The parser holds the head to FW_HEAD_MAX bytes; the buffer also
     * takes the copies of path and query (build_request). */
    fw_buf_init(&c->head, 2 * FW_HEAD_MAX + 16);
    fw_fields_init(&c->fields, &c->head, FW_HEAD_MAX);
    fw_buf_init(&c->out_head, 0);
    http_parser_set_max_header_size(FW_HEAD_MAX);    /* a global */
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->keep_alive = true;
    c->file_fd = -1;
    return c;
}

void fw_conn_start(struct fw_conn *c)
{
    uint64_t wait_ms = read_timeout_ms(c);

    /* Accepted while draining: its request must come soon. */
    if (fw_srv.on_idle && !c->admin && wait_ms > FW_DRAIN_FIRST_MS)
        wait_ms = FW_DRAIN_FIRST_MS;
    uv_tcp_nodelay(&c->tcp, 1);
    request_reset(c);
    uv_timer_start(&c->read_timer, on_read_timeout, wait_ms, 0);
    update_reading(c);
}

/* Draining: a fresh connection's request must come within ms. */
void fw_conn_expect_request(struct fw_conn *c, uint64_t ms)
{
    uv_timer_start(&c->read_timer, on_read_timeout, ms, 0);
}
