/* log.c - one whole line per write() on stderr (or stdout for relayed
 * child output). Writes are plain blocking write()s of short lines.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FW_LOG_LINE 4096

static enum fw_log_level min_level = FW_INFO;

void fw_log_init(enum fw_log_level level)
{
    min_level = level;
}

/* "YYYY/MM/DD HH:MM:SS ", formatted once a second (a line per request
 * would otherwise pay localtime and strftime each time). */
static size_t stamp(char *out, size_t len)
{
    static time_t at = -1;
    static char text[32];
    static size_t text_len;
    time_t now = time(NULL);
    struct tm tm;

    if (now != at) {
        localtime_r(&now, &tm);
        text_len = strftime(text, sizeof(text), "%Y/%m/%d %H:%M:%S ", &tm);
        at = now;
    }
    if (text_len >= len)
        return 0;
    memcpy(out, text, text_len + 1);
    return text_len;
}

/* Writes all of iov, retrying on EINTR and short writes. A log that
 * cannot be written is dropped: there is nowhere to report it. */
static void write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

void fw_log(enum fw_log_level level, const char *fmt, ...)
{
    char line[FW_LOG_LINE];
    size_t n;
    va_list ap;
    int m;

    if (level < min_level)
        return;
    n = stamp(line, sizeof(line));
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
    line[n++] = '\n';
    write_all(2, &(struct iovec){ line, n }, 1);
}

void fw_lines_init(struct fw_lines *l, int fd, const char *label,
                   bool prefix, int64_t max_line)
{
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->label = label;
    l->prefix = prefix;
    l->max_line = max_line < 0 ? 0 : (size_t)max_line;
}

void fw_lines_emit(const struct fw_lines *l, const char *p, size_t len)
{
    char head[64];
    struct iovec iov[4];
    int n = 0;

    if (l->prefix) {
        size_t h = stamp(head, sizeof(head));

        h += (size_t)snprintf(head + h, sizeof(head) - h, "%s: ", l->label);
        iov[n++] = (struct iovec){ head, h };
    }
    iov[n++] = (struct iovec){ (void *)p, len };
    iov[n++] = (struct iovec){ "\n", 1 };
    write_all(l->fd, iov, n);
}

/* Emits part + p[0..len) as one line and forgets part. */
static void emit_joined(struct fw_lines *l, const char *p, size_t len)
{
    char *joined;

    if (l->part_len == 0) {
        fw_lines_emit(l, p, len);
        return;
    }
    joined = malloc(l->part_len + len);
    if (joined == NULL) {
        /* Out of memory: two pieces are better than a lost line. */
        fw_lines_emit(l, l->part, l->part_len);
        fw_lines_emit(l, p, len);
    } else {
        memcpy(joined, l->part, l->part_len);
        memcpy(joined + l->part_len, p, len);
        fw_lines_emit(l, joined, l->part_len + len);
        free(joined);
    }
    l->part_len = 0;
}

static void keep_part(struct fw_lines *l, const char *p, size_t len)
{
    if (l->part_len + len > l->part_cap) {
        size_t cap = l->part_cap ? l->part_cap : 256;
        char *q;

        while (cap < l->part_len + len)
            cap *= 2;
        q = realloc(l->part, cap);
        if (q == NULL) {
            emit_joined(l, p, len);
            return;
        }
        l->part = q;
        l->part_cap = cap;
    }
    memcpy(l->part + l->part_len, p, len);
    l->part_len += len;
}

void fw_lines_feed(struct fw_lines *l, const char *p, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) : len;

        if (l->max_line && l->part_len + take > l->max_line) {
            /* A long line goes out in pieces of max_line bytes. */
            size_t piece = l->max_line - l->part_len;

            emit_joined(l, p, piece);
            p += piece;
            len -= piece;
            continue;
        }
        if (nl == NULL) {
            keep_part(l, p, len);
            return;
        }
        /* Go's bounded relay (bufio.ScanLines) drops the \r of CRLF. */
        emit_joined(l, p, take > 0 && l->max_line && p[take - 1] == '\r'
                              ? take - 1 : take);
        p += take + 1;
        len -= take + 1;
    }
}

void fw_lines_release(struct fw_lines *l)
{
    if (l->part_len > 0)
        fw_lines_emit(l, l->part, l->part_len);
    free(l->part);
    l->part = NULL;
    l->part_len = 0;
    l->part_cap = 0;
}
