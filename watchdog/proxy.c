/* proxy.c - http mode's reverse proxy (spec 6.2, 6.3).
 *
 * A request takes a keep-alive connection to the least busy worker from
 * its pool (or dials one), sends the head, streams the body with
 * back-pressure, parses the response with http-parser and streams it to
 * the client as it comes. A pooled connection that fails before any
 * response byte is retried once on a fresh one for idempotent bodyless
 * requests. The workers' processes are upstream.c's.
 */
#include "proxy.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "upstream.h"

#define FW_UP_HIGH (256 * 1024)      /* pause the client above this */
#define FW_UP_LOW (64 * 1024)        /* resume it below this */
#define FW_UP_HEAD_MAX (1024 * 1024) /* upstream response head limit */
#define FW_POOL_MAX 256              /* idle connections per worker */
#define FW_MAX_HEADERS 256           /* response headers passed on */

struct fw_upconn {
    uv_tcp_t tcp;                /* data = this */
    uv_connect_t connect;        /* data = this */
    struct fw_worker *w;
    struct preq *pr;             /* request served; NULL when idle */
    struct fw_list idle;         /* in the worker's pool while linked */
    http_parser parser;          /* parser.data = this */
    struct fw_buf head;          /* response header bytes */
    struct fw_fields fields;     /* their places in head */
    bool reused;                 /* came from the pool */
    bool got_bytes;              /* a response byte arrived */
    bool interim;                /* the response parsed is a 1xx */
    bool done;                   /* the response is complete */
};

struct preq {
    struct fw_request *r;        /* NULL once the client is gone */
    struct fw_upconn *uc;        /* connection in use, or NULL */
    struct fw_worker *w;         /* counted in its outstanding */
    uv_timer_t deadline;         /* exec_timeout / X-Timeout; data = this */
    struct fw_buf body;          /* buffered body (http_buffer_req_body) */
    struct fw_list wait;         /* in px.waiting while linked */
    bool buffering;              /* body buffered before sending */
    bool chunked_up;             /* body sent chunked upstream */
    bool body_end;               /* the client's body is complete */
    bool responded;              /* response head sent to the client */
    bool stream;                 /* event stream: deadline ends at head */
    bool retried;                /* one retry spent */
    bool finished;               /* preq_finish ran */
    bool upgrade;                /* the client asked for Upgrade */
    bool tunnel;                 /* 101 answered: bytes both ways */
};

struct up_write {
    uv_write_t req;              /* data = the connection */
    char data[];                 /* the bytes, owned */
};

static struct {
    uv_loop_t *loop;
    const struct fw_config *cfg;
    struct fw_list waiting;      /* requests held until a worker is ready */
    bool gone;                   /* the function's server is gone */
    char rbuf[64 * 1024];        /* upstream reads, parsed at once */
} px;

static http_parser_settings up_settings;

static void acquire(struct preq *pr);
static void on_up_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void upconn_close(struct fw_upconn *uc);
static void fail(struct preq *pr, int status);

/* ---- the request's lifetime ----------------------------------------- */

static void on_preq_closed(uv_handle_t *h)
{
    struct preq *pr = h->data;

    fw_buf_release(&pr->body);
    free(pr);
}

/* The wait list: requests held, in order, until a worker is ready. */
static void wait_for_worker(struct preq *pr)
{
    fw_list_push_back(&px.waiting, &pr->wait);
}

/* The first request held, taken off the wait list; NULL when none. */
static struct preq *first_waiting(void)
{
    struct fw_list *n = px.waiting.next;

    if (n == &px.waiting)
        return NULL;
    fw_list_remove(n);
    return fw_list_entry(n, struct preq, wait);
}

/* The pool: a worker's idle keep-alive connections, newest first (the
 * warmest; the oldest are the first the upstream closes). */
static bool pool(struct fw_upconn *uc)
{
    struct fw_worker *w = uc->w;
    int err;

    if (!w->ready || w->n_idle >= FW_POOL_MAX ||
        uv_is_closing((uv_handle_t *)&uc->tcp))
        return false;
    /* Reading, so that the upstream's close is seen while idle. A slow
     * client may have stopped it (on_up_body) right before the end. */
    err = uv_read_start((uv_stream_t *)&uc->tcp, on_up_alloc, on_up_read);
    if (err < 0 && err != UV_EALREADY)
        return false;
    uc->reused = true;
    fw_list_push_front(&w->idle, &uc->idle);
    w->n_idle++;
    return true;
}

static void unpool(struct fw_upconn *uc)
{
    if (!fw_list_linked(&uc->idle))
        return;
    fw_list_remove(&uc->idle);
    uc->w->n_idle--;
}

/* The newest idle connection of w, or NULL. */
static struct fw_upconn *pooled(struct fw_worker *w)
{
    if (fw_list_empty(&w->idle))
        return NULL;
    return fw_list_entry(w->idle.next, struct fw_upconn, idle);
}

/* The request is over for us: the connection goes back to the pool or
 * is closed, the timer and memory go. */
static void preq_finish(struct preq *pr, bool reuse)
{
    struct fw_upconn *uc = pr->uc;

    if (pr->finished)
        return;
    pr->finished = true;
    fw_list_remove(&pr->wait);
    if (pr->r)
        pr->r->data = NULL;
    pr->r = NULL;
    if (pr->w)
        pr->w->outstanding--;
    if (uc) {
        uc->pr = NULL;
        pr->uc = NULL;
        if (!reuse || !pool(uc))
            upconn_close(uc);
    }
    uv_close((uv_handle_t *)&pr->deadline, on_preq_closed);
}

/* Spec 6.3: 500 when the upstream refused or reset, 504 past the
 * deadline, both with of-watchdog's headers; a response under way can
 * only be cut. */
static void fail(struct preq *pr, int status)
{
    struct fw_request *r = pr->r;
    char secs[32];
    struct fw_hdr hdrs[] = {
        { "X-Duration-Seconds", secs },
        { "X-Openfaas-Internal", "of-watchdog" },
    };

    if (r == NULL) {
        preq_finish(pr, false);
        return;
    }
    if (pr->responded) {
        fw_log(FW_INFO, "%s %s - upstream response cut short", r->method,
               r->target);
        preq_finish(pr, false);
        fw_response_abort(r);
        return;
    }
    fw_http_duration(r->start_ns, secs, sizeof(secs));
    preq_finish(pr, false);
    fw_response_send(r, status, hdrs, 2, NULL, 0);
}

static void on_deadline(uv_timer_t *t)
{
    struct preq *pr = t->data;

    if (pr->r) {
        fw_metrics_upstream_error(FW_UPSTREAM_TIMEOUT);
        fw_log(FW_INFO, "%s %s - upstream deadline passed", pr->r->method,
               pr->r->target);
    }
    fail(pr, 504);
}

/* ---- writing upstream ------------------------------------------------- */

static void on_up_written(uv_write_t *w, int status)
{
    struct fw_upconn *uc = w->data;
    struct preq *pr = uc->pr;

    free(w);
    if (pr == NULL)
        return;
    if (status < 0) {
        /* The upstream went away: its read side reports the outcome. */
        return;
    }
    if (pr->r && uc->tcp.write_queue_size < FW_UP_LOW)
        fw_request_resume(pr->r);
}

/* Sends p[0..len) and q[0..qlen) to the upstream, copying what cannot be
 * written at once. */
static int up_write(struct fw_upconn *uc, const char *p, size_t len,
                    const char *q, size_t qlen)
{
    uv_buf_t bufs[2] = { uv_buf_init((char *)p, (unsigned)len),
                         uv_buf_init((char *)q, (unsigned)qlen) };
    struct up_write *w;
    size_t done = 0, total = len + qlen;
    int n;

    if (uc->tcp.write_queue_size == 0) {
        n = uv_try_write((uv_stream_t *)&uc->tcp, bufs, qlen ? 2 : 1);
        if (n < 0 && n != UV_EAGAIN)
            return n;
        done = n > 0 ? (size_t)n : 0;
        if (done == total)
            return 0;
    }
    w = malloc(sizeof(*w) + total - done);
    if (w == NULL)
        return UV_ENOMEM;
    if (done < len) {
        memcpy(w->data, p + done, len - done);
        if (qlen > 0)    /* q may be NULL then */
            memcpy(w->data + len - done, q, qlen);
    } else {
        memcpy(w->data, q + (done - len), total - done);
    }
    bufs[0] = uv_buf_init(w->data, (unsigned)(total - done));
    w->req.data = uc;
    n = uv_write(&w->req, (uv_stream_t *)&uc->tcp, bufs, 1, on_up_written);
    if (n < 0)
        free(w);
    return n;
}

/* Spec 6.2: hop-by-hop headers go no further. */
static bool hop_by_hop(const char *name, size_t len)
{
    static const char *const names[] = {
        "Connection", "Keep-Alive", "Proxy-Connection",
        "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade",
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (fw_http_name_is(name, len, names[i]))
            return true;
    return false;
}

/* The next comma-separated token of list[*at..len), trimmed of blanks;
 * false at the end. Empty tokens (",,") are skipped. */
static bool next_token(const char *list, size_t len, size_t *at,
                       const char **tok, size_t *tok_len)
{
    const char *end = list + len;

    while (*at < len) {
        const char *p = list + *at;
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;

        *at = (size_t)(e - list) + (comma != NULL);
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > p) {
            *tok = p;
            *tok_len = (size_t)(e - p);
            return true;
        }
    }
    return false;
}

/* Does a Connection header of hs list name? For one name; filtering
 * every header goes through connection_tokens. */
static bool connection_lists(const struct fw_header *hs, size_t n,
                             const char *name, size_t len)
{
    const char *tok;
    size_t i, at, tok_len;

    for (i = 0; i < n; i++) {
        if (!fw_http_name_is(hs[i].name, hs[i].name_len, "Connection"))
            continue;
        for (at = 0; next_token(hs[i].value, hs[i].value_len, &at, &tok,
                                &tok_len);)
            if (tok_len == len && strncasecmp(tok, name, len) == 0)
                return true;
    }
    return false;
}

/* The names the Connection headers of hs list, hop-by-hop too (RFC 9110
 * 7.6.1), gathered into set so that filtering n headers costs O(n) even
 * when a client sends thousands of each. 0 or -ENOMEM. */
static int connection_tokens(struct fw_names *set,
                             const struct fw_header *hs, size_t n)
{
    const char *tok;
    size_t i, at, tok_len, max = 0;

    for (i = 0; i < n; i++)
        if (fw_http_name_is(hs[i].name, hs[i].name_len, "Connection"))
            for (at = 0; next_token(hs[i].value, hs[i].value_len, &at,
                                    &tok, &tok_len);)
                max++;
    if (fw_names_init(set, max) < 0)
        return -ENOMEM;
    for (i = 0; i < n; i++)
        if (fw_http_name_is(hs[i].name, hs[i].name_len, "Connection"))
            for (at = 0; next_token(hs[i].value, hs[i].value_len, &at,
                                    &tok, &tok_len);)
                fw_names_add(set, tok, tok_len, 0);
    return 0;
}

/* Not passed on: hop-by-hop headers, those the Connection headers list
 * (set), and framing, which the sender sets again. */
static bool dropped(const struct fw_header *h, const struct fw_names *set,
                    bool upgrade)
{
    if (upgrade && fw_http_name_is(h->name, h->name_len, "Upgrade"))
        return false;
    return hop_by_hop(h->name, h->name_len) ||
           fw_http_name_is(h->name, h->name_len, "Content-Length") ||
           fw_names_has(set, h->name, h->name_len);
}

static void build_head(struct preq *pr, struct fw_buf *b)
{
    const struct fw_request *r = pr->r;
    struct fw_names listed;
    bool has_host = false;
    size_t i;

    if (connection_tokens(&listed, r->headers, r->n_headers) < 0) {
        b->failed = true;
        return;
    }
    fw_buf_appendf(b, "%s %s%s HTTP/1.1\r\n", r->method, fw_upstream_base(),
                   r->target);
    for (i = 0; i < r->n_headers; i++) {
        const struct fw_header *h = &r->headers[i];

        if (dropped(h, &listed, pr->upgrade))
            continue;
        has_host |= fw_http_name_is(h->name, h->name_len, "Host");
        fw_buf_append(b, h->name, h->name_len);
        fw_buf_append(b, ": ", 2);
        fw_buf_append(b, h->value, h->value_len);
        fw_buf_append(b, "\r\n", 2);
    }
    fw_names_release(&listed);
    if (!has_host)
        fw_buf_appendf(b, "Host: %s\r\n", fw_upstream_host());
    if (pr->buffering)
        fw_buf_appendf(b, "Content-Length: %zu\r\n", pr->body.len);
    else if (r->content_length >= 0)
        fw_buf_appendf(b, "Content-Length: %" PRId64 "\r\n",
                       r->content_length);
    else if (r->chunked)
        fw_buf_append(b, "Transfer-Encoding: chunked\r\n", 28);
    if (pr->upgrade)
        fw_buf_append(b, "Connection: Upgrade\r\n", 21);
    fw_buf_append(b, "\r\n", 2);
}

/* The connection is open: send the head (and a buffered body), then let
 * the client's body flow. */
static void send_request(struct preq *pr)
{
    struct fw_upconn *uc = pr->uc;
    struct fw_buf head;
    int err;

    fw_buf_init(&head, 0);
    build_head(pr, &head);
    pr->chunked_up = !pr->buffering && pr->r->content_length < 0 &&
                     pr->r->chunked;
    http_parser_init(&uc->parser, HTTP_RESPONSE);
    uc->parser.data = uc;
    fw_buf_reset(&uc->head);
    fw_fields_reset(&uc->fields);
    uc->got_bytes = uc->interim = uc->done = false;
    err = head.failed ? UV_ENOMEM
                      : up_write(uc, head.data, head.len, pr->body.data,
                                 pr->buffering ? pr->body.len : 0);
    fw_buf_release(&head);
    if (err < 0) {
        fail(pr, 500);
        return;
    }
    if (pr->buffering)
        fw_buf_release(&pr->body);
    else if (pr->r->content_length > 0 || pr->r->chunked || pr->upgrade)
        fw_request_resume(pr->r);
}

/* ---- connections -------------------------------------------------------- */

static void on_upconn_closed(uv_handle_t *h)
{
    struct fw_upconn *uc = h->data;

    fw_buf_release(&uc->head);
    fw_fields_release(&uc->fields);
    free(uc);
}

static void upconn_close(struct fw_upconn *uc)
{
    if (uv_is_closing((uv_handle_t *)&uc->tcp))
        return;
    unpool(uc);
    uv_close((uv_handle_t *)&uc->tcp, on_upconn_closed);
}

static bool idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
           strcmp(m, "OPTIONS") == 0 || strcmp(m, "TRACE") == 0 ||
           strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0;
}

/* The upstream closed or reset the connection, or could not be reached. */
static void upstream_failed(struct fw_upconn *uc, int err)
{
    struct preq *pr = uc->pr;
    const struct fw_request *r;

    if (pr == NULL) {
        upconn_close(uc);    /* an idle connection the upstream closed */
        return;
    }
    r = pr->r;
    if (r && uc->reused && !uc->got_bytes && !pr->retried &&
        !pr->responded && idempotent(r->method) &&
        r->content_length <= 0 && !r->chunked) {
        /* A kept-alive connection the upstream had already closed. */
        pr->retried = true;
        uc->pr = NULL;
        pr->uc = NULL;
        upconn_close(uc);
        pr->w->outstanding--;
        pr->w = NULL;
        acquire(pr);
        return;
    }
    if (r) {
        fw_metrics_upstream_error(FW_UPSTREAM_CONNECTION);
        fw_log(FW_INFO, "%s %s - upstream: %s", r->method, r->target,
               uv_strerror(err));
    }
    fail(pr, 500);
}

static void tunnel_to_client(struct fw_upconn *uc, const char *p,
                             size_t len)
{
    struct fw_request *r = uc->pr->r;

    if (fw_response_write_copy(r, p, len) < 0)
        return;    /* the server aborts: on_abort follows */
    if (fw_response_busy(r))
        uv_read_stop((uv_stream_t *)&uc->tcp);
}

static void on_up_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(px.rbuf, sizeof(px.rbuf));
}

static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fw_upconn *uc = s->data;
    size_t done;

    if (n == 0)
        return;
    if (uc->pr == NULL) {
        /* Idle: EOF, an error or stray bytes all end its use. */
        upconn_close(uc);
        return;
    }
    if (uc->pr->tunnel) {
        struct fw_request *r = uc->pr->r;

        if (n < 0) {
            /* The upstream closed its side: so does the client's. */
            preq_finish(uc->pr, false);
            if (r)
                fw_response_end(r);
        } else if (r) {
            tunnel_to_client(uc, buf->base, (size_t)n);
        }
        return;
    }
    if (n < 0) {
        if (n == UV_EOF && uc->got_bytes) {
            /* A body delimited by the close ends here. */
            http_parser_execute(&uc->parser, &up_settings, NULL, 0);
            if (uc->done) {
                /* on_up_complete may have pooled it, but libuv reads no
                 * more after EOF: a pooled one would never be closed. */
                upconn_close(uc);
                return;
            }
        }
        upstream_failed(uc, (int)n);
        return;
    }
    uc->got_bytes = true;
    done = http_parser_execute(&uc->parser, &up_settings, buf->base,
                               (size_t)n);
    if (uc->pr && uc->pr->tunnel) {
        /* What followed the 101 head is already tunnel data. */
        if (done < (size_t)n && uc->pr->r)
            tunnel_to_client(uc, buf->base + done, (size_t)n - done);
        return;
    }
    if (uc->pr && !uc->done && HTTP_PARSER_ERRNO(&uc->parser) != HPE_OK &&
        HTTP_PARSER_ERRNO(&uc->parser) != HPE_PAUSED) {
        fw_metrics_upstream_error(FW_UPSTREAM_BAD_RESPONSE);
        fw_log(FW_INFO, "upstream sent a bad response: %s",
               http_errno_description(HTTP_PARSER_ERRNO(&uc->parser)));
        fail(uc->pr, 500);
    }
    (void)done;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct fw_upconn *uc = req->data;
    struct preq *pr = uc->pr;

    if (status < 0) {
        if (status != UV_ECANCELED)
            upstream_failed(uc, status);
        return;
    }
    if (pr == NULL) {
        upconn_close(uc);
        return;
    }
    uv_tcp_nodelay(&uc->tcp, 1);
    status = uv_read_start((uv_stream_t *)&uc->tcp, on_up_alloc, on_up_read);
    if (status < 0) {
        upstream_failed(uc, status);
        return;
    }
    send_request(pr);
}

static struct fw_upconn *dial(struct fw_worker *w)
{
    struct fw_upconn *uc = calloc(1, sizeof(*uc));

    if (uc == NULL)
        return NULL;
    uc->w = w;
    fw_buf_init(&uc->head, FW_UP_HEAD_MAX);
    fw_fields_init(&uc->fields, &uc->head, FW_UP_HEAD_MAX);
    fw_list_init(&uc->idle);
    if (uv_tcp_init(px.loop, &uc->tcp) < 0) {
        free(uc);
        return NULL;
    }
    uc->tcp.data = uc;
    uc->connect.data = uc;
    if (uv_tcp_connect(&uc->connect, &uc->tcp, (struct sockaddr *)&w->addr,
                       on_connect) < 0) {
        uv_close((uv_handle_t *)&uc->tcp, on_upconn_closed);
        return NULL;
    }
    return uc;
}

static void fail_unavailable(struct preq *pr)
{
    struct fw_request *r = pr->r;
    static const struct fw_hdr hdrs[] = {
        { "X-Openfaas-Internal", "of-watchdog" },
    };

    preq_finish(pr, false);
    if (r) {
        fw_metrics_upstream_error(FW_UPSTREAM_UNAVAILABLE);
        fw_response_send(r, 503, hdrs, 1, NULL, 0);
    }
}

void fw_proxy_gone(void)
{
    struct preq *pr;

    px.gone = true;
    while ((pr = first_waiting()) != NULL)
        fail_unavailable(pr);
}

/* Picks a worker and a connection for pr, or holds pr until a worker is
 * ready. */
static void acquire(struct preq *pr)
{
    struct fw_worker *w = fw_upstream_pick();
    struct fw_upconn *uc;

    if (w == NULL && px.gone) {
        fail_unavailable(pr);
        return;
    }
    if (w == NULL) {
        wait_for_worker(pr);
        return;
    }
    pr->w = w;
    w->outstanding++;
    uc = pooled(w);
    fw_metrics_upstream_conn(uc != NULL);
    if (uc) {
        unpool(uc);
        uc->pr = pr;
        pr->uc = uc;
        send_request(pr);
        return;
    }
    uc = dial(w);
    if (uc == NULL) {
        fw_metrics_upstream_error(FW_UPSTREAM_CONNECTION);
        fail(pr, 500);
        return;
    }
    uc->pr = pr;
    pr->uc = uc;
}

void fw_proxy_dispatch_waiting(void)
{
    struct preq *pr;

    while (fw_upstream_ready() > 0 && (pr = first_waiting()) != NULL)
        acquire(pr);
}

/* ---- the response --------------------------------------------------- */

static int on_up_field(http_parser *p, const char *at, size_t len)
{
    struct fw_upconn *uc = p->data;

    return fw_fields_name(&uc->fields, at, len);
}

static int on_up_value(http_parser *p, const char *at, size_t len)
{
    struct fw_upconn *uc = p->data;

    return fw_fields_value(&uc->fields, at, len);
}

/* Copies the upstream's headers, minus hop-by-hop ones, into hdrs as
 * NUL-terminated strings in store. Returns how many. */
static size_t pass_headers(struct fw_upconn *uc, struct fw_hdr *hdrs,
                           size_t max, struct fw_buf *store, bool upgrade)
{
    const struct fw_field *o = fw_fields_list(&uc->fields);
    size_t i, n = 0, count = fw_fields_count(&uc->fields);
    size_t at[FW_MAX_HEADERS * 2];
    const char *base = uc->head.data;
    struct fw_header list[FW_MAX_HEADERS];
    struct fw_names listed;

    if (count == 0)
        return 0;
    if (count > FW_MAX_HEADERS)
        count = FW_MAX_HEADERS;
    for (i = 0; i < count; i++)
        list[i] = (struct fw_header){ base + o[i].name, o[i].name_len,
                                      base + o[i].value, o[i].value_len };
    if (connection_tokens(&listed, list, count) < 0) {
        store->failed = true;
        return 0;
    }
    for (i = 0; i < count && n < max; i++) {
        const struct fw_header *h = &list[i];

        /* Date: ours, as Go's server sets it. */
        if (dropped(h, &listed, upgrade) ||
            fw_http_name_is(h->name, h->name_len, "Date"))
            continue;
        at[2 * n] = store->len;
        fw_buf_append(store, h->name, h->name_len);
        fw_buf_append(store, "", 1);
        at[2 * n + 1] = store->len;
        fw_buf_append(store, h->value, h->value_len);
        fw_buf_append(store, "", 1);
        n++;
    }
    fw_names_release(&listed);
    for (i = 0; i < n && !store->failed; i++)
        hdrs[i] = (struct fw_hdr){ store->data + at[2 * i],
                                   store->data + at[2 * i + 1] };
    return store->failed ? 0 : n;
}

/* http-parser lets spaces into a header name and frames the body by
 * "Content-Length :" or "Transfer-Encoding :", which the filter above
 * would pass on next to our own framing. Go's client refuses such a
 * response; so do we (500). */
static bool valid_fields(const struct fw_upconn *uc)
{
    const struct fw_field *o = fw_fields_list(&uc->fields);
    size_t i, n = fw_fields_count(&uc->fields);

    for (i = 0; i < n; i++)
        if (!fw_http_is_token(uc->head.data + o[i].name, o[i].name_len) ||
            !fw_http_is_field_value(uc->head.data + o[i].value,
                                    o[i].value_len))
            return false;
    return true;
}

static int on_up_headers(http_parser *p)
{
    struct fw_upconn *uc = p->data;
    struct preq *pr = uc->pr;
    struct fw_hdr hdrs[FW_MAX_HEADERS + 1];
    struct fw_buf store;
    char secs[32];
    size_t n;
    int64_t len;
    int err;

    /* A 101 without Upgrade and Connection: upgrade switches nothing for
     * http-parser (p->upgrade), which would read the tunnel's bytes on
     * as HTTP: it is an interim response then. */
    bool upgrade = pr && pr->upgrade && p->status_code == 101 && p->upgrade;

    /* http-parser takes one to three digits; a status below 100 would
     * reach the client as "HTTP/1.1 0 Unknown". A bad response: 500, as
     * are header names that are not tokens and values with control
     * bytes (a NUL would reach the client). */
    if (p->status_code < 100 || !valid_fields(uc))
        return -1;
    if (p->status_code / 100 == 1 && !upgrade) {
        /* 100 Continue and friends: the real head follows. A 1xx has no
         * body (RFC 9110 15.2), whatever its Content-Length says; 1 tells
         * http-parser so, else its bytes would reach the client before
         * any head. */
        uc->interim = true;
        return 1;
    }
    if (pr == NULL || pr->r == NULL)
        return -1;
    fw_buf_init(&store, 0);
    n = pass_headers(uc, hdrs, FW_MAX_HEADERS - 1, &store, upgrade);
    fw_http_duration(pr->r->start_ns, secs, sizeof(secs));
    hdrs[n++] = (struct fw_hdr){ "X-Duration-Seconds", secs };
    if (upgrade) {
        /* Spec 6.3: a 101 turns both connections into one tunnel. */
        hdrs[n++] = (struct fw_hdr){ "Connection", "Upgrade" };
        pr->responded = pr->tunnel = true;
        uv_timer_stop(&pr->deadline);
        err = fw_response_head(pr->r, 101, hdrs, n, -1);
        fw_buf_release(&store);
        if (err < 0) {
            fail(pr, 500);    /* out of memory: the client's is cut */
            return -1;
        }
        fw_request_tunnel(pr->r);
        return 0;
    }
    len = (p->flags & F_CONTENTLENGTH) ? (int64_t)p->content_length : -1;
    pr->responded = true;
    if (pr->stream)
        uv_timer_stop(&pr->deadline);    /* spec 6.3: streams run on */
    err = fw_response_head(pr->r, p->status_code, hdrs, n, len);
    fw_buf_release(&store);
    if (err < 0) {
        fail(pr, 500);
        return -1;
    }
    /* A HEAD response has no body, whatever its headers say. */
    return pr->r->head_only ? 1 : 0;
}

static int on_up_body(http_parser *p, const char *at, size_t len)
{
    struct fw_upconn *uc = p->data;
    struct preq *pr = uc->pr;

    if (pr == NULL || pr->r == NULL)
        return -1;
    if (fw_response_write_copy(pr->r, at, len) < 0)
        return -1;
    if (fw_response_busy(pr->r))
        uv_read_stop((uv_stream_t *)&uc->tcp);    /* on_drain resumes */
    return 0;
}

static int on_up_complete(http_parser *p)
{
    struct fw_upconn *uc = p->data;
    struct preq *pr = uc->pr;
    struct fw_request *r;
    bool keep;

    if (uc->interim) {
        uc->interim = false;
        fw_buf_reset(&uc->head);
        fw_fields_reset(&uc->fields);
        return 0;
    }
    if (pr && pr->tunnel)
        return 0;    /* http-parser stops here; the tunnel goes on */
    uc->done = true;
    if (pr == NULL)
        return -1;
    r = pr->r;
    keep = http_should_keep_alive(p) && pr->body_end;
    preq_finish(pr, keep);
    if (r)
        fw_response_end(r);
    /* Anything after the response on this connection is not ours. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- the handler ------------------------------------------------------ */

static bool is_stream(const struct fw_request *r)
{
    const struct fw_header *a = fw_request_header(r, "Accept");
    const struct fw_header *u = fw_request_header(r, "Upgrade");

    if (u && fw_http_name_is(u->value, u->value_len, "websocket"))
        return true;
    return a && (memmem(a->value, a->value_len, "text/event-stream", 17) ||
                 memmem(a->value, a->value_len, "application/x-ndjson", 20));
}

/* exec_timeout, lowered by a valid X-Timeout (spec 6.2). */
static int64_t timeout_ms(const struct fw_request *r)
{
    const struct fw_header *h = fw_request_header(r, "X-Timeout");
    int64_t limit = px.cfg->exec_timeout_ms, ms;
    char v[64];

    if (h && h->value_len < sizeof(v)) {
        memcpy(v, h->value, h->value_len);
        v[h->value_len] = '\0';
        if (fw_duration_parse(v, &ms) == 0 && ms > 0 &&
            (limit <= 0 || ms <= limit))
            limit = ms;
    }
    return limit;
}

static void on_head(struct fw_request *r)
{
    struct preq *pr = calloc(1, sizeof(*pr));
    int64_t ms;

    if (pr == NULL) {
        fw_response_send(r, 500, NULL, 0, NULL, 0);
        return;
    }
    pr->r = r;
    r->data = pr;
    fw_list_init(&pr->wait);
    fw_buf_init(&pr->body, 0);
    uv_timer_init(px.loop, &pr->deadline);
    pr->deadline.data = pr;
    pr->stream = is_stream(r);
    pr->upgrade = fw_request_header(r, "Upgrade") != NULL &&
                  connection_lists(r->headers, r->n_headers, "Upgrade", 7);
    pr->buffering = px.cfg->http_buffer_req_body && r->chunked;
    ms = timeout_ms(r);
    if (ms > 0)
        uv_timer_start(&pr->deadline, on_deadline, (uint64_t)ms, 0);
    if (pr->buffering)
        return;    /* acquire() once the whole body is here */
    if (r->content_length > 0 || r->chunked || pr->upgrade)
        fw_request_pause(r);    /* until the upstream connection is open */
    acquire(pr);
}

static void on_body(struct fw_request *r, const char *p, size_t len)
{
    struct preq *pr = r->data;
    char frame[24];
    int n, err;

    if (pr == NULL)
        return;
    if (pr->buffering) {
        if (fw_buf_append(&pr->body, p, len) < 0)
            fail(pr, 500);
        return;
    }
    if (pr->uc == NULL || len == 0)
        return;
    if (pr->tunnel) {
        err = up_write(pr->uc, p, len, NULL, 0);
    } else if (pr->chunked_up) {
        n = snprintf(frame, sizeof(frame), "%zx\r\n", len);
        err = up_write(pr->uc, frame, (size_t)n, p, len);
        if (err == 0)
            err = up_write(pr->uc, "\r\n", 2, NULL, 0);
    } else {
        err = up_write(pr->uc, p, len, NULL, 0);
    }
    if (err < 0) {
        upstream_failed(pr->uc, err);
        return;
    }
    if (pr->uc->tcp.write_queue_size > FW_UP_HIGH)
        fw_request_pause(r);
}

static void on_body_end(struct fw_request *r)
{
    struct preq *pr = r->data;

    if (pr == NULL)
        return;
    pr->body_end = true;
    if (pr->buffering) {
        acquire(pr);
        return;
    }
    if (pr->chunked_up && pr->uc &&
        up_write(pr->uc, "0\r\n\r\n", 5, NULL, 0) < 0)
        upstream_failed(pr->uc, UV_EPIPE);
}

static void on_drain(struct fw_request *r)
{
    struct preq *pr = r->data;

    int err;

    if (pr == NULL || pr->uc == NULL)
        return;
    err = uv_read_start((uv_stream_t *)&pr->uc->tcp, on_up_alloc,
                        on_up_read);
    if (err < 0 && err != UV_EALREADY)
        upstream_failed(pr->uc, err);
}

static void on_abort(struct fw_request *r, enum fw_abort why)
{
    struct preq *pr = r->data;

    (void)why;
    if (pr == NULL)
        return;
    pr->r = NULL;
    preq_finish(pr, false);    /* spec 6.2: abort the upstream request */
}

const struct fw_handler fw_proxy_handler = {
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_drain = on_drain,
    .on_abort = on_abort,
};

void fw_proxy_init(uv_loop_t *loop, const struct fw_config *cfg)
{
    px.loop = loop;
    fw_list_init(&px.waiting);
    px.cfg = cfg;
    up_settings.on_header_field = on_up_field;
    up_settings.on_header_value = on_up_value;
    up_settings.on_headers_complete = on_up_headers;
    up_settings.on_body = on_up_body;
    up_settings.on_message_complete = on_up_complete;
}

void fw_proxy_close(void)
{
    size_t i;

    for (i = 0; i < fw_upstream_count(); i++) {
        struct fw_worker *w = fw_upstream_worker(i);

        struct fw_upconn *uc;

        while ((uc = pooled(w)) != NULL)
            upconn_close(uc);    /* unpools it */
    }
}
