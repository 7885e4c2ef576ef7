/* fuzz_common.c - the loopback client and response reader the fuzz
 * targets share (fuzz_common.h).
 */
#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

void fz_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* A blocking connect interrupted by a signal (libFuzzer's alarm, when
 * at thousands of connections a second a SYN meets a TIME_WAIT of the
 * same ports and is retried a second later) goes on in the kernel: wait
 * for it. */
static bool connect_finished(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int r, err = ETIMEDOUT;
    socklen_t len = sizeof(err);

    do
        r = poll(&p, 1, 10000);
    while (r < 0 && errno == EINTR);
    if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    errno = err;    /* for the caller's message */
    return err == 0;
}

int fz_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        fz_fail("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
        (errno != EINTR || !connect_finished(fd)))
        fz_fail("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int fz_port_of(const void *tcp_handle)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_tcp_getsockname(tcp_handle, (struct sockaddr *)&ss, &len) < 0)
        fz_fail("getsockname failed");
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

bool fz_send_some(int fd, const uint8_t *p, size_t len, size_t *done)
{
    while (*done < len) {
        ssize_t n = send(fd, p + *done, len - *done, MSG_NOSIGNAL);

        if (n > 0) {
            *done += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return false;
        } else {
            return true;    /* the peer is gone: nothing more will go */
        }
    }
    return true;
}

bool fz_recv_some(int fd, struct fw_buf *out, bool *reset)
{
    char buf[16384];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);

        if (n > 0) {
            if (fw_buf_append(out, buf, (size_t)n) < 0)
                fz_fail("client buffer full");
        } else if (n == 0) {
            return true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN) {
            return false;
        } else {
            *reset = *reset || errno == ECONNRESET;
            return true;
        }
    }
}

/* ---- the response reader ---------------------------------------------- */

static struct fz_msg *cur(struct fz_reader *rd)
{
    return rd->n && !rd->overflow ? &rd->msgs[rd->n - 1] : NULL;
}

/* Header callbacks after the head are a chunked body's trailers: not
 * kept. */
static struct fz_msg *in_head(struct fz_reader *rd)
{
    return rd->in_trailers ? NULL : cur(rd);
}

static int on_begin(http_parser *p)
{
    struct fz_reader *rd = p->data;
    struct fz_msg *m;

    if (rd->n == FZ_MAX_MSGS) {
        rd->overflow = true;
        return 0;
    }
    m = &rd->msgs[rd->n++];
    memset(m, 0, sizeof(*m));
    fw_buf_init(&m->head, 0);
    fw_buf_init(&m->body, 0);
    rd->in_value = false;
    rd->in_trailers = false;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct fz_reader *rd = p->data;
    struct fz_msg *m = in_head(rd);

    if (m == NULL)
        return 0;
    if (rd->in_value || m->n_headers == 0) {
        if (m->n_headers > 0)
            fw_buf_append(&m->head, "", 1);    /* ends the last value */
        m->n_headers++;
        rd->in_value = false;
    }
    fw_buf_append(&m->head, at, len);
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct fz_reader *rd = p->data;
    struct fz_msg *m = in_head(rd);

    if (m == NULL)
        return 0;
    if (!rd->in_value) {
        fw_buf_append(&m->head, "", 1);        /* ends the name */
        rd->in_value = true;
    }
    for (; len > 0; at++, len--)    /* http-parser lets a NUL start one */
        fw_buf_append(&m->head, *at ? at : "\x01", 1);
    return 0;
}

static int on_headers(http_parser *p)
{
    struct fz_reader *rd = p->data;
    struct fz_msg *m = cur(rd);
    bool interim = p->status_code / 100 == 1 && p->status_code != 101;

    if (m == NULL)
        return 0;
    if (m->n_headers > 0)
        fw_buf_append(&m->head, "", 1);
    rd->in_trailers = true;
    m->status = p->status_code;
    m->http_major = p->http_major;
    m->http_minor = p->http_minor;
    /* A 1xx has no body whatever its headers say (RFC 9110 15.2). */
    if (interim || (rd->no_body && rd->no_body(rd->ctx, rd->n - 1)))
        return 1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct fz_msg *m = cur(p->data);

    if (m)
        fw_buf_append(&m->body, at, len);
    return 0;
}

static int on_complete(http_parser *p)
{
    struct fz_reader *rd = p->data;
    struct fz_msg *m = cur(rd);

    if (m == NULL)
        return 0;
    m->complete = true;
    if (m->status / 100 == 1 && m->status != 101) {
        /* An interim response: drop it, the real one follows. */
        fw_buf_release(&m->head);
        fw_buf_release(&m->body);
        rd->n--;
    }
    return 0;
}

static const http_parser_settings reader_settings = {
    .on_message_begin = on_begin,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void reader_run(struct fz_reader *rd, const char *p, size_t len,
                       bool (*no_body)(void *ctx, size_t index), void *ctx,
                       bool lenient);

void fz_reader_run(struct fz_reader *rd, const char *p, size_t len,
                   bool (*no_body)(void *ctx, size_t index), void *ctx)
{
    reader_run(rd, p, len, no_body, ctx, false);
    /* http-parser counts any name that starts with "Transfer-Encoding"
     * ("Transfer-Encodingx", a token, end-to-end) as one, and then
     * refuses a Content-Length beside it. Read such a stream again,
     * leniently; the targets count the real framing headers. */
    if (HTTP_PARSER_ERRNO(&rd->parser) == HPE_UNEXPECTED_CONTENT_LENGTH) {
        fz_reader_release(rd);
        reader_run(rd, p, len, no_body, ctx, true);
    }
}

static void reader_run(struct fz_reader *rd, const char *p, size_t len,
                       bool (*no_body)(void *ctx, size_t index), void *ctx,
                       bool lenient)
{
    size_t done;

    memset(rd, 0, sizeof(*rd));
    rd->msgs = calloc(FZ_MAX_MSGS, sizeof(*rd->msgs));
    if (rd->msgs == NULL)
        fz_fail("out of memory");
    rd->no_body = no_body;
    rd->ctx = ctx;
    http_parser_init(&rd->parser, HTTP_RESPONSE);
    rd->parser.data = rd;
    rd->parser.lenient_http_headers = lenient;
    done = http_parser_execute(&rd->parser, &reader_settings, p, len);
    if (rd->parser.upgrade) {
        if (cur(rd))
            cur(rd)->upgrade = true;
        rd->tail = len - done;
        return;
    }
    if (HTTP_PARSER_ERRNO(&rd->parser) != HPE_OK) {
        rd->error = true;
        return;
    }
    http_parser_execute(&rd->parser, &reader_settings, NULL, 0);
    if (HTTP_PARSER_ERRNO(&rd->parser) != HPE_OK)
        rd->eof_error = true;
}

void fz_reader_release(struct fz_reader *rd)
{
    size_t i;

    for (i = 0; i < rd->n && i < FZ_MAX_MSGS; i++) {
        fw_buf_release(&rd->msgs[i].head);
        fw_buf_release(&rd->msgs[i].body);
    }
    free(rd->msgs);
    rd->msgs = NULL;
}

const char *fz_msg_header(const struct fz_msg *m, const char *name,
                          size_t *count)
{
    const char *p = m->head.data, *found = NULL;
    size_t i, n = 0;

    for (i = 0; i < m->n_headers; i++) {
        const char *value = p + strlen(p) + 1;

        if (strcasecmp(p, name) == 0) {
            if (found == NULL)
                found = value;
            n++;
        }
        p = value + strlen(value) + 1;
    }
    if (count)
        *count = n;
    return found;
}
