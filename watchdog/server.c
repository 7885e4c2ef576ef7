/* server.c - HTTP/1.1 on libuv and http-parser.
 *
 * Owns the listener and every client connection: reading and parsing
 * requests, the limits of spec section 11, read and write timeouts,
 * keep-alive and the in-flight cap. Writing responses is response.c's;
 * what a request does is left to the handlers of server.h. A connection
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

struct fw_server_state fw_srv;

static http_parser_settings settings;

static void update_reading(struct fw_conn *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void request_reset(struct fw_conn *c);

/* ---- connection lifetime -------------------------------------------- */

static void check_idle(void)
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
    if (c->prev)
        c->prev->next = c->next;
    else
        fw_srv.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
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
    check_idle();
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
    }
    if (h->on_abort)
        h->on_abort(&c->req, why);
}

static void conn_close_for(struct fw_conn *c, enum fw_abort why)
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
    conn_close_for(c, FW_ABORT_CLIENT);
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
    c->body_done = false;
    c->response_done = false;
    c->paused = false;
    c->want_drain = false;
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
    if (c->handler && !c->head_started && fw_srv.cfg.late_body_status) {
        fw_conn_send_error(c, fw_srv.cfg.late_body_status, "read: i/o timeout\n");
        return;
    }
    conn_close_for(c, FW_ABORT_TIMEOUT);
}

static void on_write_timeout(uv_timer_t *t)
{
    struct fw_conn *c = t->data;

    fw_log(FW_INFO, "%s %s - write_timeout passed, closing connection",
           c->req.method, c->req.target);
    conn_close_for(c, FW_ABORT_TIMEOUT);
}

static int on_message_begin(http_parser *p)
{
    struct fw_conn *c = p->data;

    c->in_request = true;
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

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct fw_conn *c = p->data;

    return fw_fields_name(&c->fields, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct fw_conn *c = p->data;

    return fw_fields_value(&c->fields, at, len);
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

    c->handler = fw_srv.cfg.function;  /* owned by the server for a moment */
    fw_response_send(&c->req, 429, hdrs, 2, body, (size_t)n);
}

/* Picks the handler; answers 429 itself when over max_inflight. */
static void route(struct fw_conn *c)
{
    const struct fw_request *r = &c->req;
    const struct fw_header *ua = fw_request_header(r, "User-Agent");

    c->quiet = ua && ua->value_len >= 10 &&
               memcmp(ua->value, "kube-probe", 10) == 0;
    if (strcmp(r->path, "/_/health") == 0 ||
        strcmp(r->path, "/_/ready") == 0) {
        c->quiet = true;
        c->handler = fw_srv.cfg.probes;
        c->handler->on_head(&c->req);
        return;
    }
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

static int check_head(struct fw_conn *c)
{
    const struct fw_request *r = &c->req;
    const struct fw_header *te = fw_request_header(r, "Transfer-Encoding");
    const struct fw_header *host = fw_request_header(r, "Host");

    if (r->http_major == 1 && r->http_minor >= 1 && host == NULL) {
        fw_conn_send_error(c, 400, "400 Bad Request: missing required Host header");
        return -1;
    }
    if (host && (count_headers(r, "Host") > 1 || !valid_host(host))) {
        fw_conn_send_error(c, 400, "400 Bad Request: malformed Host header");
        return -1;
    }
    if (te && !value_is(te, "chunked")) {
        fw_conn_send_error(c, 501, "501 Not Implemented: unsupported "
                           "transfer encoding");
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct fw_conn *c = p->data;
    struct fw_request *r = &c->req;
    const struct fw_header *expect;

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
    if (fw_srv.cfg.write_timeout_ms > 0)
        uv_timer_start(&c->write_timer, on_write_timeout,
                       (uint64_t)fw_srv.cfg.write_timeout_ms, 0);
    route(c);
    return c->closing ? -1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct fw_conn *c = p->data;

    if (c->handler && c->handler->on_body) {
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
    uv_timer_start(&c->read_timer, on_read_timeout,
                   (uint64_t)fw_srv.cfg.read_timeout_ms, 0);
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

/* ---- listener --------------------------------------------------------- */

static void on_connection(uv_stream_t *l, int status)
{
    struct fw_conn *c;

    if (status < 0) {
        fw_log(FW_ERROR, "accept: %s", uv_strerror(status));
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c)
        c->rbuf = malloc(FW_READ_BYTES);
    if (c == NULL || c->rbuf == NULL) {
        fw_log(FW_ERROR, "accept: out of memory");
        free(c);
        return;
    }
    uv_tcp_init(fw_srv.loop, &c->tcp);
    uv_timer_init(fw_srv.loop, &c->read_timer);
    uv_timer_init(fw_srv.loop, &c->write_timer);
    c->tcp.data = c->read_timer.data = c->write_timer.data = c;
    c->open_handles = 3;
    c->next = fw_srv.conns;
    if (fw_srv.conns)
        fw_srv.conns->prev = c;
    fw_srv.conns = c;
    fw_srv.n_conns++;
    fw_buf_init(&c->head, FW_HEAD_MAX);
    fw_fields_init(&c->fields, &c->head, FW_HEAD_MAX);
    fw_buf_init(&c->out_head, 0);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->keep_alive = true;
    c->file_fd = -1;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        fw_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    request_reset(c);
    uv_timer_start(&c->read_timer, on_read_timeout,
                   (uint64_t)fw_srv.cfg.read_timeout_ms, 0);
    update_reading(c);
}

static int listen_on(int family, int port)
{
    struct sockaddr_storage addr;
    int err;

    if (family == AF_INET6)
        uv_ip6_addr("::", port, (struct sockaddr_in6 *)&addr);
    else
        uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)&addr);
    err = uv_tcp_init_ex(fw_srv.loop, &fw_srv.listener, (unsigned)family);
    if (err < 0)
        return err;
    err = uv_tcp_bind(&fw_srv.listener, (struct sockaddr *)&addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&fw_srv.listener, 1024, on_connection);
    if (err < 0)
        uv_close((uv_handle_t *)&fw_srv.listener, NULL);
    return err;
}

int fw_server_start(uv_loop_t *loop, const struct fw_server_config *cfg)
{
    int err;

    fw_srv.loop = loop;
    fw_srv.cfg = *cfg;
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    http_parser_set_max_header_size(FW_HEAD_MAX);

    err = listen_on(AF_INET6, cfg->port);
    if (err == UV_EAFNOSUPPORT || err == UV_EADDRNOTAVAIL) {
        /* No IPv6 here: the closed handle is reused after a loop turn. */
        uv_run(loop, UV_RUN_NOWAIT);
        err = listen_on(AF_INET, cfg->port);
    }
    if (err < 0)
        return err;
    fw_srv.listening = true;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
    fw_srv.listening = false;
    check_idle();
}

static void close_listener(void)
{
    if (fw_srv.listening && !uv_is_closing((uv_handle_t *)&fw_srv.listener))
        uv_close((uv_handle_t *)&fw_srv.listener, on_listener_closed);
}

void fw_server_stop_keepalive(void)
{
    fw_srv.no_keepalive = true;
}

void fw_server_drain(void (*on_idle)(void))
{
    struct fw_conn *c, *next;

    fw_srv.on_idle = on_idle;
    fw_srv.no_keepalive = true;
    close_listener();
    for (c = fw_srv.conns; c; c = next) {
        next = c->next;
        if (!c->in_request && c->handler == NULL && c->rpos == c->rlen)
            fw_conn_close(c);    /* idle keep-alive connection */
        else
            c->keep_alive = false;
    }
    check_idle();
}

void fw_server_close(void)
{
    struct fw_conn *c, *next;

    close_listener();
    for (c = fw_srv.conns; c; c = next) {
        next = c->next;
        conn_close_for(c, FW_ABORT_SHUTDOWN);
    }
}

int64_t fw_server_inflight(void)
{
    return fw_srv.inflight;
}

size_t fw_server_connections(void)
{
    return fw_srv.n_conns;
}
