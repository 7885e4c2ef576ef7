/* buf.c - growable byte buffer with a hard cap (see buf.h). */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fw_buf_init(struct fw_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void fw_buf_release(struct fw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

void fw_buf_reset(struct fw_buf *b)
{
    b->len = 0;
    b->failed = false;
}

int fw_buf_reserve(struct fw_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > SIZE_MAX - b->len - 1)
        goto overflow;
    need = b->len + extra;
    if (b->max && need > b->max)
        goto overflow;
    if (need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need + 1 && cap <= SIZE_MAX / 2)
        cap *= 2;
    if (cap < need + 1)
        cap = need + 1;    /* doubling would overflow */
    p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;

overflow:
    b->failed = true;
    return -ENOBUFS;
}

int fw_buf_append(struct fw_buf *b, const void *p, size_t len)
{
    int err;

    if (len == 0)
        return 0;
    err = fw_buf_reserve(b, len);
    if (err < 0)
        return err;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';    /* reserve keeps room for it */
    return 0;
}

int fw_buf_appendf(struct fw_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, err;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return -EINVAL;
    }
    err = fw_buf_reserve(b, (size_t)n);
    if (err < 0)
        return err;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *fw_buf_steal(struct fw_buf *b)
{
    char *p = b->data;

    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
