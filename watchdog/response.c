/* response.c - writing responses: the head (formatted lazily, so a body
 * complete before the first write goes out with Content-Length), chunked
 * or close-delimited framing, back-pressure marks, the end of a response
 * and what the connection does next, file bodies with sendfile(2), and
 * the errors the server answers itself. Reading and parsing are
 * server.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"

struct out_req {
    uv_write_t req;              /* data = connection */
    char *owned;                 /* body memory, freed after the write */
    char *head;                  /* response head, freed after the write */
    char frame[24];              /* chunk size line or terminator */
};

/* ---- file bodies ------------------------------------------------------ */

void fw_conn_stop_file(struct fw_conn *c)
{
    if (c->file_fd >= 0) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    if (c->writable && !uv_is_closing((uv_handle_t *)c->writable))
        uv_poll_stop(c->writable);
}

/* ---- writing ---------------------------------------------------------- */

static const char *http_date(void)
{
    time_t now = time(NULL);

    if (now != fw_srv.date_at) {
        fw_http_date(now, fw_srv.date);
        fw_srv.date_at = now;
    }
    return fw_srv.date;
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
        fw_conn_close(c);
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
        fw_conn_pump(c);
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

/* Not uv_buf_init, whose unsigned int would cut a body buffered in the
 * fork modes (no cap) at 4 GiB. On Unix uv_buf_t.len is a size_t, the
 * kernel takes at most 2 GiB per writev, and libuv goes on with the
 * rest of a partly written buffer, so any length works. */
static uv_buf_t whole_buf(const char *p, size_t len)
{
    return (uv_buf_t){ .base = (char *)p, .len = len };
}

/* Queues up to three pieces: pending head, framing and data. Takes
 * ownership of owned (also on failure). */
int fw_conn_write(struct fw_conn *c, char *owned, const char *p,
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
        bufs[n++] = whole_buf(o->head, c->out_head.len);
        fw_buf_steal(&c->out_head);
    }
    if (c->chunked_out && len > 0) {
        int m = snprintf(o->frame, sizeof(o->frame), "%zx\r\n", len);

        bufs[n++] = uv_buf_init(o->frame, (unsigned)m);
    }
    if (len > 0)
        bufs[n++] = whole_buf(p, len);
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
    if (fw_srv.no_keepalive)
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
    if (c->observed)
        fw_metrics_bytes_out(len);
    err = fw_conn_write(c, owned, p, len, false);
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

/* The access log (log_requests): the Go watchdogs' line, which is also
 * the msg of log_format=json. */
void fw_conn_log_request(struct fw_conn *c, int status)
{
    const struct fw_request *r = &c->req;
    const struct fw_header *id = fw_request_header(r, "X-Call-Id");
    char size[16], call[96] = "", text[4096];
    struct fw_access a = {
        .method = r->method,
        .target = r->target,
        .status = status,
        .duration_s = (double)(uv_hrtime() - r->start_ns) / 1e9,
        .bytes_in = c->body_in_bytes,
        .bytes_out = c->body_bytes,
        .call_id = id ? id->value : NULL,
        .call_id_len = id ? id->value_len : 0,
    };

    if (!fw_srv.cfg.log_requests || c->quiet)
        return;
    fw_http_human_size(c->body_bytes, size, sizeof(size));
    if (fw_srv.cfg.log_callid)
        snprintf(call, sizeof(call), " [%.*s]",
                 id ? (int)(id->value_len > 80 ? 80 : id->value_len) : 4,
                 id ? id->value : "none");
    if (fw_srv.cfg.log_reason)
        snprintf(text, sizeof(text),
                 "%s %s - %d %s - ContentLength: %s (%.4fs)%s", r->method,
                 r->target, status, fw_http_reason(status), size,
                 a.duration_s, call);
    else
        snprintf(text, sizeof(text),
                 "%s %s - %d - ContentLength: %s (%.4fs)%s", r->method,
                 r->target, status, size, a.duration_s, call);
    fw_log_access(&a, text);
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
        fw_srv.inflight--;
    }
    if (c->observed) {
        c->observed = false;
        fw_metrics_request_end(c->req.method, c->status, c->req.start_ns);
    }
    fw_conn_log_request(c, c->status);
    if (!c->body_done && c->expect_continue && !c->continue_sent)
        c->keep_alive = false;   /* the client may never send the body */
    if (!c->keep_alive || fw_srv.no_keepalive) {
        fw_conn_finish(c);
        return;
    }
    /* The parser moves on to the next request, once the rest of this
     * body has been read and dropped. */
    c->paused = false;
    fw_conn_pump(c);
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
    err = fw_conn_write(c, NULL, NULL, 0, true);
    if (err < 0) {
        fw_conn_close(c);
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
        fw_conn_write(c, NULL, NULL, 0, false);
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
        fw_conn_close(c);
        return;
    }
    if (len > 0 && !r->head_only) {
        copy = malloc(len);
        if (copy == NULL) {
            fw_conn_close(c);
            return;
        }
        memcpy(copy, body, len);
    }
    if (copy && fw_conn_write(c, copy, copy, len, false) < 0) {
        fw_conn_close(c);
        return;
    }
    if (copy && c->observed)
        fw_metrics_bytes_out(len);
    c->body_bytes = (int64_t)len;
    fw_response_end(r);
}

static void on_writable(uv_poll_t *p, int status, int events)
{
    struct fw_conn *c = p->data;

    (void)events;
    if (status < 0) {
        fw_conn_close(c);
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
        err = uv_poll_init(fw_srv.loop, c->writable, c->writable_fd);
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

/* Sends what the socket takes of the file, at most FW_FILE_TURN bytes
 * per loop turn: a cold file is read from disk inside sendfile, on the
 * loop, and a socket buffer may take megabytes. Ends the response when
 * all of it has gone. */
#define FW_FILE_TURN (1 << 20)

static void send_file(struct fw_conn *c)
{
    size_t sent = 0;
    int sock, err;

    if (uv_fileno((uv_handle_t *)&c->tcp, &sock) < 0) {
        fw_conn_close(c);
        return;
    }
    while (c->file_left > 0) {
        off_t off = (off_t)c->file_off;
        size_t chunk = FW_FILE_TURN - sent;
        ssize_t n;

        if ((uint64_t)c->file_left < chunk)
            chunk = (size_t)c->file_left;
        n = sendfile(sock, c->file_fd, &off, chunk);
        if (n > 0) {
            c->file_off += n;
            c->file_left -= n;
            sent += (size_t)n;
            if (sent >= FW_FILE_TURN && c->file_left > 0) {
                /* The rest on a later turn (writable at once, most
                 * likely): other connections go first. */
                if (wait_writable(c) < 0)
                    fw_conn_close(c);
                return;
            }
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            err = wait_writable(c);
            if (err < 0)
                fw_conn_close(c);
            return;
        } else {
            /* The file shrank or the client left: cut the response. */
            fw_log(FW_DEBUG, "sendfile: %s",
                   n == 0 ? "file ended early" : strerror(errno));
            fw_conn_close(c);
            return;
        }
    }
    fw_conn_stop_file(c);
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
    if (c->observed)
        fw_metrics_bytes_out((size_t)len);
    err = fw_conn_write(c, NULL, NULL, 0, false);    /* the head, if pending */
    if (err < 0) {
        fw_conn_close(c);
        return err;
    }
    /* libuv wrote the head at once unless the socket was full. */
    if (c->tcp.write_queue_size == 0)
        send_file(c);
    return 0;
}

/* An error answered by the server itself, then the connection closes;
 * the handler hears why (conn.h). */
void fw_conn_send_error_for(struct fw_conn *c, enum fw_abort why, int status,
                            const char *body)
{
    static const struct fw_hdr hdrs[] = {
        { "Content-Type", "text/plain; charset=utf-8" },
    };
    size_t len = strlen(body);
    char *copy;

    if (!c->head_started)
        c->status = status;    /* what metrics record for the request */
    fw_conn_abort_handler(c, why);
    if (c->head_started || c->closing) {
        fw_conn_close(c);
        return;
    }
    c->keep_alive = false;
    c->status = status;
    c->head_started = true;
    copy = malloc(len);
    if (copy == NULL || format_head(c, hdrs, 1, (int64_t)len) < 0) {
        free(copy);
        fw_conn_close(c);
        return;
    }
    memcpy(copy, body, len);
    fw_conn_write(c, copy, copy, len, false);
    c->response_done = true;
    fw_conn_finish(c);
}

/* A malformed request or one over a limit. To the handler the client
 * broke the request off: a child it started is stopped, rather than run
 * on outside max_inflight once the slot is given back. */
void fw_conn_send_error(struct fw_conn *c, int status, const char *body)
{
    fw_conn_send_error_for(c, FW_ABORT_CLIENT, status, body);
}
