/* server.c - HTTP/1.1 on libuv and http-parser.
 *
 * Owns the listener and every client connection: reading and parsing
 * requests, the limits of spec section 11, read and write timeouts,
 * keep-alive, the in-flight cap and the framing of responses. What a
 * request does is left to the handlers of server.h. A connection serves
 * one request at a time; bytes of the next (pipelined) request wait in
 * its read buffer while the parser is paused.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"
#include "log.h"

#define FW_READ_BYTES (64 * 1024)        /* per-connection read buffer */
#define FW_HEAD_MAX (1024 * 1024 + 4096) /* request head limit, spec 11 */
#define FW_WRITE_HIGH (256 * 1024)       /* pause producers above this */
#define FW_WRITE_LOW (64 * 1024)         /* and resume them below this */
#define FW_LINGER_MS 2000                /* wait for the client's FIN */

struct fw_conn {
    uv_tcp_t tcp;                /* client socket, data = this */
    uv_timer_t read_timer;       /* read_timeout, idle limit, linger */
    uv_timer_t write_timer;      /* write_timeout of the request */
    uv_shutdown_t shutdown;      /* graceful close after the last write */
    int open_handles;            /* free(this) when it reaches 0 */
    struct fw_conn *prev, *next; /* all connections, for drain */

    http_parser parser;          /* parser.data = this */
    char *rbuf;                  /* FW_READ_BYTES, [rpos, rlen) unparsed */
    size_t rpos;
    size_t rlen;
    bool reading;                /* uv_read_start is in effect */
    bool in_feed;                /* inside http_parser_execute */

    struct fw_request req;       /* the live request */
    struct fw_buf head;          /* target and headers, NUL-separated */
    struct fw_fields fields;     /* the headers' places in head */
    struct fw_header *headers;   /* heap, built at head complete */
    char *alt_target;            /* heap: target, '\0', path, '\0', query
                                    of a forwarded request */
    size_t target_len;           /* bytes of the target in head */

    const struct fw_handler *handler; /* NULL when no one owns the reply */
    bool in_request;             /* message begun, not yet finished */
    bool body_done;              /* message complete */
    bool response_done;          /* handler ended the response */
    bool paused;                 /* handler asked for back-pressure */
    bool want_drain;             /* handler saw fw_response_busy */
    bool is_function;            /* counted in-flight, logged */
    bool quiet;                  /* no request log line */
    bool continue_sent;          /* "100 Continue" written */
    bool expect_continue;        /* client sent Expect: 100-continue */
    bool keep_alive;             /* connection survives the response */
    bool closing;                /* conn_close or shutdown started */
    bool lingering;              /* shut down, dropping what arrives */
    bool tunnel;                 /* after 101: raw bytes both ways */

    /* The response: head formatted lazily so a body that is complete
     * before the first write can go out with Content-Length. */
    int status;
    struct fw_buf out_head;      /* "HTTP/1.1 ..." head, unsent */
    bool head_pending;           /* out_head not written yet */
    bool head_started;           /* fw_response_head was called */
    bool chunked_out;            /* chunked framing */
    bool close_delimited;        /* HTTP/1.0 without length: close ends */
    int64_t out_length;          /* Content-Length promised, or -1 */
    int64_t body_bytes;          /* body bytes queued */
    size_t frame_at;             /* offset of the chunked framing line */

    /* A file body sent with sendfile(2) (static mode). */
    int file_fd;                 /* owned while sending, else -1 */
    int64_t file_off;            /* next byte of the file to send */
    int64_t file_left;           /* bytes still to send */
    uv_poll_t *writable;         /* heap: waits for room in the socket,
                                    on a dup of its fd; NULL until used */
    int writable_fd;             /* that dup, owned by the poll handle */
};

struct out_req {
    uv_write_t req;              /* data = connection */
    char *owned;                 /* body memory, freed after the write */
    char *head;                  /* response head, freed after the write */
    char frame[24];              /* chunk size line or terminator */
};

static struct {
    uv_loop_t *loop;
    struct fw_server_config cfg;
    uv_tcp_t listener;           /* data = NULL */
    bool listening;
    struct fw_conn *conns;       /* list head */
    size_t n_conns;
    int64_t inflight;
    bool no_keepalive;           /* draining: close after each response */
    void (*on_idle)(void);       /* drain callback, once */
    char date[FW_HTTP_DATE_LEN]; /* cached Date value */
    time_t date_at;
} srv;

static http_parser_settings settings;

static void conn_close(struct fw_conn *c);
static void conn_finish(struct fw_conn *c);
static void update_reading(struct fw_conn *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void pump(struct fw_conn *c);
static void request_reset(struct fw_conn *c);

/* ---- connection lifetime -------------------------------------------- */

static void check_idle(void)
{
    void (*cb)(void) = srv.on_idle;

    if (cb && srv.n_conns == 0 && !srv.listening) {
        srv.on_idle = NULL;
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
        srv.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv.n_conns--;
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

static void stop_file(struct fw_conn *c)
{
    if (c->file_fd >= 0) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    if (c->writable && !uv_is_closing((uv_handle_t *)c->writable))
        uv_poll_stop(c->writable);
}

/* Detaches the handler and tells it the request is gone. */
static void abort_handler(struct fw_conn *c, enum fw_abort why)
{
    const struct fw_handler *h = c->handler;

    if (h == NULL)
        return;
    c->handler = NULL;
    if (c->is_function) {
        c->is_function = false;
        srv.inflight--;
    }
    if (h->on_abort)
        h->on_abort(&c->req, why);
}

static void conn_close_for(struct fw_conn *c, enum fw_abort why)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->closing = true;
    abort_handler(c, why);
    stop_file(c);
    if (c->writable) {
        c->open_handles++;
        uv_close((uv_handle_t *)c->writable, on_conn_closed);
    }
    uv_close((uv_handle_t *)&c->read_timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->write_timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void conn_close(struct fw_conn *c)
{
    conn_close_for(c, FW_ABORT_CLIENT);
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct fw_conn *c = req->data;

    if (status < 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
        conn_close(c);
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
static void conn_finish(struct fw_conn *c)
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
        conn_close(c);
}

/* ---- writing ---------------------------------------------------------- */

static const char *http_date(void)
{
    time_t now = time(NULL);

    if (now != srv.date_at) {
        fw_http_date(now, srv.date);
        srv.date_at = now;
    }
    return srv.date;
}

static void send_file(struct fw_conn *c);

static void on_written(uv_write_t *w, int status)
{
    struct out_req *o = (struct out_req *)w;
    struct fw_conn *c = w->data;

    free(o->owned);
    free(o->head);
    free(o);
    if (status < 0) {
        if (status != UV_ECANCELED)
            fw_log(FW_DEBUG, "client write: %s", uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->closing || c->tcp.write_queue_size > FW_WRITE_LOW)
        return;
    if (c->file_fd >= 0) {
        if (c->tcp.write_queue_size == 0)
            send_file(c);
        return;
    }
    if (c->handler && c->want_drain) {
        c->want_drain = false;
        if (c->handler->on_drain)
            c->handler->on_drain(&c->req);
    } else if (c->handler == NULL) {
        pump(c);
    }
}

/* Drops the first done bytes of bufs[0..*n); returns the bytes left. */
static size_t skip_written(uv_buf_t *bufs, unsigned *n, size_t done)
{
    unsigned i = 0, k;
    size_t left = 0;

    while (i < *n && done >= bufs[i].len)
        done -= bufs[i++].len;
    if (i < *n) {
        bufs[i].base += done;
        bufs[i].len -= done;
    }
    for (k = 0; i < *n; i++, k++) {
        bufs[k] = bufs[i];
        left += bufs[k].len;
    }
    *n = k;
    return left;
}

/* Queues up to three pieces: pending head, framing and data. Takes
 * ownership of owned (also on failure). */
static int queue_write(struct fw_conn *c, char *owned, const char *p,
                       size_t len, bool last)
{
    struct out_req *o;
    uv_buf_t bufs[4];
    unsigned n = 0;
    int err;

    if (c->closing) {
        free(owned);
        return UV_ECANCELED;
    }
    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        free(owned);
        return UV_ENOMEM;
    }
    o->owned = owned;
    if (c->head_pending) {
        c->head_pending = false;
        o->head = c->out_head.data;
        bufs[n++] = uv_buf_init(o->head, (unsigned)c->out_head.len);
        fw_buf_steal(&c->out_head);
    }
    if (c->chunked_out && len > 0) {
        int m = snprintf(o->frame, sizeof(o->frame), "%zx\r\n", len);

        bufs[n++] = uv_buf_init(o->frame, (unsigned)m);
    }
    if (len > 0)
        bufs[n++] = uv_buf_init((char *)p, (unsigned)len);
    if (c->chunked_out && (len > 0 || last))
        bufs[n++] = uv_buf_init((char *)(len > 0 && last ? "\r\n0\r\n\r\n"
                                         : len > 0 ? "\r\n" : "0\r\n\r\n"),
                                len > 0 && last ? 7 : len > 0 ? 2 : 5);
    if (n == 0) {
        free(o->owned);
        free(o);
        return 0;
    }
    if (c->tcp.write_queue_size == 0 && c->file_fd < 0) {
        /* Most responses fit in the socket at once: no queued copy. */
        int done = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);

        if (done > 0 && skip_written(bufs, &n, (size_t)done) == 0) {
            free(o->owned);
            free(o->head);
            free(o);
            return 0;
        }
        if (done < 0 && done != UV_EAGAIN) {
            free(o->owned);
            free(o->head);
            free(o);
            return done;
        }
    }
    o->req.data = c;
    err = uv_write(&o->req, (uv_stream_t *)&c->tcp, bufs, n, on_written);
    if (err < 0) {
        free(o->owned);
        free(o->head);
        free(o);
    }
    return err;
}

static bool no_body_status(int status)
{
    return (status >= 100 && status < 200) || status == 204 ||
           status == 304;
}

/* Formats the head now that the framing is known. */
static int format_head(struct fw_conn *c, const struct fw_hdr *hdrs,
                       size_t n, int64_t length)
{
    struct fw_buf *b = &c->out_head;
    size_t i;

    fw_buf_reset(b);
    fw_buf_appendf(b, "HTTP/1.1 %d %s\r\n", c->status,
                   fw_http_reason(c->status));
    for (i = 0; i < n; i++) {
        fw_buf_append(b, hdrs[i].name, strlen(hdrs[i].name));
        fw_buf_append(b, ": ", 2);
        fw_buf_append(b, hdrs[i].value, strlen(hdrs[i].value));
        fw_buf_append(b, "\r\n", 2);
    }
    fw_buf_append(b, "Date: ", 6);
    fw_buf_append(b, http_date(), FW_HTTP_DATE_LEN - 1);
    fw_buf_append(b, "\r\n", 2);
    c->out_length = length;
    c->chunked_out = false;
    c->close_delimited = false;
    if (no_body_status(c->status)) {
        /* no framing */
    } else if (length >= 0) {
        fw_buf_appendf(b, "Content-Length: %" PRId64 "\r\n", length);
    } else if (c->req.head_only) {
        /* HEAD of unknown length: neither, as Go does */
    } else if (c->req.http_major == 1 && c->req.http_minor >= 1) {
        c->frame_at = b->len;
        fw_buf_append(b, "Transfer-Encoding: chunked\r\n", 28);
        c->chunked_out = true;
    } else {
        c->close_delimited = true;
        c->keep_alive = false;
    }
    if (srv.no_keepalive)
        c->keep_alive = false;
    if (c->status == 101)
        c->keep_alive = false;    /* the handler sent Connection: Upgrade */
    else if (!c->keep_alive)
        fw_buf_append(b, "Connection: close\r\n", 19);
    else if (c->req.http_minor == 0)
        fw_buf_append(b, "Connection: keep-alive\r\n", 24);
    fw_buf_append(b, "\r\n", 2);
    if (b->failed)
        return UV_ENOMEM;
    c->head_pending = true;
    return 0;
}

int fw_response_head(struct fw_request *r, int status,
                     const struct fw_hdr *hdrs, size_t n_hdrs,
                     int64_t content_length)
{
    struct fw_conn *c = r->conn;

    c->status = status;
    c->head_started = true;
    return format_head(c, hdrs, n_hdrs, content_length);
}

int fw_response_write(struct fw_request *r, char *owned, const char *p,
                      size_t len)
{
    struct fw_conn *c = r->conn;
    int err;

    if (len == 0 || (!c->tunnel && (r->head_only ||
                                    no_body_status(c->status)))) {
        free(owned);
        return 0;
    }
    c->body_bytes += (int64_t)len;
    err = queue_write(c, owned, p, len, false);
    if (err < 0)
        fw_log(FW_DEBUG, "client write: %s", uv_strerror(err));
    return err;
}

int fw_response_write_copy(struct fw_request *r, const char *p, size_t len)
{
    char *copy;

    if (len == 0 || (r->head_only && !r->conn->tunnel))
        return 0;
    copy = malloc(len);
    if (copy == NULL)
        return UV_ENOMEM;
    memcpy(copy, p, len);
    return fw_response_write(r, copy, copy, len);
}

bool fw_response_busy(const struct fw_request *r)
{
    struct fw_conn *c = r->conn;

    if (c->tcp.write_queue_size <= FW_WRITE_HIGH)
        return false;
    c->want_drain = true;
    return true;
}

/* ---- ending a response ------------------------------------------------ */

static void log_request(struct fw_conn *c)
{
    const struct fw_request *r = &c->req;
    const struct fw_header *id;
    char size[16], call[96] = "";
    double secs = (double)(uv_hrtime() - r->start_ns) / 1e9;

    if (!srv.cfg.log_requests || c->quiet)
        return;
    fw_http_human_size(c->body_bytes, size, sizeof(size));
    if (srv.cfg.log_callid) {
        id = fw_request_header(r, "X-Call-Id");
        snprintf(call, sizeof(call), " [%.*s]",
                 id ? (int)(id->value_len > 80 ? 80 : id->value_len) : 4,
                 id ? id->value : "none");
    }
    if (srv.cfg.log_reason)
        fw_log(FW_INFO, "%s %s - %d %s - ContentLength: %s (%.4fs)%s",
               r->method, r->target, c->status, fw_http_reason(c->status),
               size, secs, call);
    else
        fw_log(FW_INFO, "%s %s - %d - ContentLength: %s (%.4fs)%s",
               r->method, r->target, c->status, size, secs, call);
}

/* The handler is done with the request; decide what the connection does
 * next. */
static void response_finished(struct fw_conn *c)
{
    c->handler = NULL;
    c->response_done = true;
    c->want_drain = false;
    uv_timer_stop(&c->write_timer);
    if (c->is_function) {
        c->is_function = false;
        srv.inflight--;
    }
    log_request(c);
    if (!c->body_done && c->expect_continue && !c->continue_sent)
        c->keep_alive = false;   /* the client may never send the body */
    if (!c->keep_alive || srv.no_keepalive) {
        conn_finish(c);
        return;
    }
    /* The parser moves on to the next request, once the rest of this
     * body has been read and dropped. */
    c->paused = false;
    pump(c);
}

static void settle_empty(struct fw_conn *c)
{
    static const char te[] = "Transfer-Encoding: chunked\r\n";
    static const char cl[] = "Content-Length: 0\r\n";
    struct fw_buf *b = &c->out_head;
    size_t tail = b->len - c->frame_at - (sizeof(te) - 1);

    if (fw_buf_reserve(b, sizeof(cl)) < 0)
        return;    /* keep the chunked head: still correct */
    memmove(b->data + c->frame_at + sizeof(cl) - 1,
            b->data + c->frame_at + sizeof(te) - 1, tail);
    memcpy(b->data + c->frame_at, cl, sizeof(cl) - 1);
    b->len = c->frame_at + sizeof(cl) - 1 + tail;
    c->chunked_out = false;
    c->out_length = 0;
}

void fw_response_end(struct fw_request *r)
{
    struct fw_conn *c = r->conn;
    int err;

    if (c->handler == NULL)
        return;
    if (!c->head_started) {
        c->status = 200;
        c->head_started = true;
        format_head(c, NULL, 0, 0);
    } else if (c->head_pending && c->chunked_out) {
        /* Nothing was written: Content-Length: 0 instead of chunks. */
        settle_empty(c);
    }
    err = queue_write(c, NULL, NULL, 0, true);
    if (err < 0) {
        conn_close(c);
        return;
    }
    if (c->close_delimited)
        c->keep_alive = false;
    response_finished(c);
}

void fw_response_abort(struct fw_request *r)
{
    struct fw_conn *c = r->conn;

    if (c->handler == NULL)
        return;
    c->keep_alive = false;
    if (c->head_pending) {
        /* Nothing reached the client yet: the head can still go, but the
         * body cannot be completed, so close without a terminator. */
        queue_write(c, NULL, NULL, 0, false);
    }
    c->chunked_out = false;
    response_finished(c);
}

void fw_response_send(struct fw_request *r, int status,
                      const struct fw_hdr *hdrs, size_t n_hdrs,
                      const char *body, size_t len)
{
    struct fw_conn *c = r->conn;
    char *copy = NULL;

    if (fw_response_head(r, status, hdrs, n_hdrs, (int64_t)len) < 0) {
        conn_close(c);
        return;
    }
    if (len > 0 && !r->head_only) {
        copy = malloc(len);
        if (copy == NULL) {
            conn_close(c);
            return;
        }
        memcpy(copy, body, len);
    }
    if (copy && queue_write(c, copy, copy, len, false) < 0) {
        conn_close(c);
        return;
    }
    c->body_bytes = (int64_t)len;
    fw_response_end(r);
}

static void on_writable(uv_poll_t *p, int status, int events)
{
    struct fw_conn *c = p->data;

    (void)events;
    if (status < 0) {
        conn_close(c);
        return;
    }
    uv_poll_stop(p);
    send_file(c);
}

/* Waits until the socket takes more. libuv has no such call for a TCP
 * handle, so a poll handle watches a dup of its fd (epoll keys on the
 * fd number, so both can be registered). */
static int wait_writable(struct fw_conn *c)
{
    int fd, err;

    if (c->writable == NULL) {
        err = uv_fileno((uv_handle_t *)&c->tcp, &fd);
        if (err < 0)
            return err;
        c->writable_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (c->writable_fd < 0)
            return -errno;
        c->writable = malloc(sizeof(*c->writable));
        if (c->writable == NULL) {
            close(c->writable_fd);
            return UV_ENOMEM;
        }
        err = uv_poll_init(srv.loop, c->writable, c->writable_fd);
        if (err < 0) {
            close(c->writable_fd);
            free(c->writable);
            c->writable = NULL;
            return err;
        }
        c->writable->data = c;
    }
    return uv_poll_start(c->writable, UV_WRITABLE, on_writable);
}

/* Sends what the socket takes of the file; ends the response when all
 * of it has gone. */
static void send_file(struct fw_conn *c)
{
    int sock, err;

    if (uv_fileno((uv_handle_t *)&c->tcp, &sock) < 0) {
        conn_close(c);
        return;
    }
    while (c->file_left > 0) {
        off_t off = (off_t)c->file_off;
        size_t chunk = c->file_left > (1 << 20) ? 1 << 20
                                                : (size_t)c->file_left;
        ssize_t n = sendfile(sock, c->file_fd, &off, chunk);

        if (n > 0) {
            c->file_off += n;
            c->file_left -= n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            err = wait_writable(c);
            if (err < 0)
                conn_close(c);
            return;
        } else {
            /* The file shrank or the client left: cut the response. */
            fw_log(FW_DEBUG, "sendfile: %s",
                   n == 0 ? "file ended early" : strerror(errno));
            conn_close(c);
            return;
        }
    }
    stop_file(c);
    c->chunked_out = false;
    fw_response_end(&c->req);
}

int fw_response_sendfile(struct fw_request *r, int fd, int64_t offset,
                         int64_t len)
{
    struct fw_conn *c = r->conn;
    int err;

    if (r->head_only || len == 0) {
        close(fd);
        fw_response_end(r);
        return 0;
    }
    c->file_fd = fd;
    c->file_off = offset;
    c->file_left = len;
    c->body_bytes += len;
    err = queue_write(c, NULL, NULL, 0, false);    /* the head, if pending */
    if (err < 0) {
        conn_close(c);
        return err;
    }
    /* libuv wrote the head at once unless the socket was full. */
    if (c->tcp.write_queue_size == 0)
        send_file(c);
    return 0;
}

/* An error answered by the server itself, then the connection closes. */
static void send_error(struct fw_conn *c, int status, const char *body)
{
    static const struct fw_hdr hdrs[] = {
        { "Content-Type", "text/plain; charset=utf-8" },
    };
    size_t len = strlen(body);
    char *copy;

    abort_handler(c, FW_ABORT_TIMEOUT);
    if (c->head_started || c->closing) {
        conn_close(c);
        return;
    }
    c->keep_alive = false;
    c->status = status;
    c->head_started = true;
    copy = malloc(len);
    if (copy == NULL || format_head(c, hdrs, 1, (int64_t)len) < 0) {
        free(copy);
        conn_close(c);
        return;
    }
    memcpy(copy, body, len);
    queue_write(c, copy, copy, len, false);
    c->response_done = true;
    conn_finish(c);
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
    if (c->handler && !c->head_started && srv.cfg.late_body_status) {
        send_error(c, srv.cfg.late_body_status, "read: i/o timeout\n");
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
    if (queue_write(c, NULL, line, sizeof(line) - 1, false) < 0)
        conn_close(c);
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
                     "requests: %" PRId64 "\n", srv.cfg.max_inflight);

    c->handler = srv.cfg.function;  /* owned by the server for a moment */
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
        c->handler = srv.cfg.probes;
        c->handler->on_head(&c->req);
        return;
    }
    if (srv.cfg.max_inflight > 0 && srv.inflight >= srv.cfg.max_inflight) {
        reject_inflight(c);
        return;
    }
    c->is_function = true;
    srv.inflight++;
    if (c->expect_continue)
        send_continue(c);
    c->handler = srv.cfg.function;
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
        send_error(c, 400, "400 Bad Request: missing required Host header");
        return -1;
    }
    if (host && (count_headers(r, "Host") > 1 || !valid_host(host))) {
        send_error(c, 400, "400 Bad Request: malformed Host header");
        return -1;
    }
    if (te && !value_is(te, "chunked")) {
        send_error(c, 501, "501 Not Implemented: unsupported "
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
        send_error(c, 431, "431 Request Header Fields Too Large");
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
    c->keep_alive = http_should_keep_alive(p) && !srv.no_keepalive;
    expect = fw_request_header(r, "Expect");
    c->expect_continue = r->http_minor >= 1 && value_is(expect,
                                                        "100-continue") &&
                         (r->chunked || r->content_length > 0);
    if (check_head(c) < 0)
        return -1;
    if (srv.cfg.write_timeout_ms > 0)
        uv_timer_start(&c->write_timer, on_write_timeout,
                       (uint64_t)srv.cfg.write_timeout_ms, 0);
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
        send_error(c, 431, "431 Request Header Fields Too Large");
        break;
    case HPE_CB_url:
    case HPE_CB_header_field:
    case HPE_CB_header_value:
        /* Our callbacks fail only when the head outgrows its cap. */
        send_error(c, 431, "431 Request Header Fields Too Large");
        break;
    case HPE_INVALID_TRANSFER_ENCODING:
        send_error(c, 501, "501 Not Implemented: unsupported "
                           "transfer encoding");
        break;
    default:
        fw_log(FW_DEBUG, "bad request: %s", http_errno_description(e));
        send_error(c, 400, "400 Bad Request");
        break;
    }
}

/* Called when a request and its response are both complete. */
static bool next_request(struct fw_conn *c)
{
    if (!c->keep_alive || srv.no_keepalive) {
        conn_finish(c);
        return false;
    }
    request_reset(c);
    uv_timer_start(&c->read_timer, on_read_timeout,
                   (uint64_t)srv.cfg.read_timeout_ms, 0);
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

static void pump(struct fw_conn *c)
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
            conn_close(c);
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
        pump(c);
    } else if (n == UV_ENOBUFS) {
        /* Pipelined bytes wait for the response before them. */
        c->reading = true;
        update_reading(c);
    } else if (n < 0) {
        /* EOF or error: the client is gone, and so is its request. */
        if (n != UV_EOF)
            fw_log(FW_DEBUG, "client read: %s", uv_strerror((int)n));
        conn_close(c);
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
    if (c->head_pending && queue_write(c, NULL, NULL, 0, false) < 0) {
        conn_close(c);
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
    pump(c);
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
    uv_tcp_init(srv.loop, &c->tcp);
    uv_timer_init(srv.loop, &c->read_timer);
    uv_timer_init(srv.loop, &c->write_timer);
    c->tcp.data = c->read_timer.data = c->write_timer.data = c;
    c->open_handles = 3;
    c->next = srv.conns;
    if (srv.conns)
        srv.conns->prev = c;
    srv.conns = c;
    srv.n_conns++;
    fw_buf_init(&c->head, FW_HEAD_MAX);
    fw_fields_init(&c->fields, &c->head, FW_HEAD_MAX);
    fw_buf_init(&c->out_head, 0);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->keep_alive = true;
    c->file_fd = -1;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    request_reset(c);
    uv_timer_start(&c->read_timer, on_read_timeout,
                   (uint64_t)srv.cfg.read_timeout_ms, 0);
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
    err = uv_tcp_init_ex(srv.loop, &srv.listener, (unsigned)family);
    if (err < 0)
        return err;
    err = uv_tcp_bind(&srv.listener, (struct sockaddr *)&addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&srv.listener, 1024, on_connection);
    if (err < 0)
        uv_close((uv_handle_t *)&srv.listener, NULL);
    return err;
}

int fw_server_start(uv_loop_t *loop, const struct fw_server_config *cfg)
{
    int err;

    srv.loop = loop;
    srv.cfg = *cfg;
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
    srv.listening = true;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
    srv.listening = false;
    check_idle();
}

static void close_listener(void)
{
    if (srv.listening && !uv_is_closing((uv_handle_t *)&srv.listener))
        uv_close((uv_handle_t *)&srv.listener, on_listener_closed);
}

void fw_server_stop_keepalive(void)
{
    srv.no_keepalive = true;
}

void fw_server_drain(void (*on_idle)(void))
{
    struct fw_conn *c, *next;

    srv.on_idle = on_idle;
    srv.no_keepalive = true;
    close_listener();
    for (c = srv.conns; c; c = next) {
        next = c->next;
        if (!c->in_request && c->handler == NULL && c->rpos == c->rlen)
            conn_close(c);    /* idle keep-alive connection */
        else
            c->keep_alive = false;
    }
    check_idle();
}

void fw_server_close(void)
{
    struct fw_conn *c, *next;

    close_listener();
    for (c = srv.conns; c; c = next) {
        next = c->next;
        conn_close_for(c, FW_ABORT_SHUTDOWN);
    }
}

int64_t fw_server_inflight(void)
{
    return srv.inflight;
}

size_t fw_server_connections(void)
{
    return srv.n_conns;
}
