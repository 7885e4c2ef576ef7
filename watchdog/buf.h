/* buf.h - a growable byte buffer with a hard cap and a sticky failure
 * flag, so a run of appends can be checked once at the end.
 */
#ifndef FW_BUF_H
#define FW_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct fw_buf {
    char *data;      /* heap, owned; NULL while empty */
    size_t len;      /* bytes used */
    size_t cap;      /* bytes allocated */
    size_t max;      /* hard cap on len; 0 = none */
    bool failed;     /* an append hit max or ENOMEM; sticky */
};

/* Fills b as an empty buffer that will never hold more than max bytes
 * (0 = no cap). */
void fw_buf_init(struct fw_buf *b, size_t max);

/* Frees b's memory; b is empty (and reusable) afterwards. */
void fw_buf_release(struct fw_buf *b);

/* Appends; on overflow or ENOMEM sets b->failed and returns -ENOBUFS or
 * -ENOMEM, leaving the content as it was. */
int fw_buf_append(struct fw_buf *b, const void *p, size_t len);
int fw_buf_appendf(struct fw_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Makes sure len + extra bytes fit; 0 or -errno as above. */
int fw_buf_reserve(struct fw_buf *b, size_t extra);

/* Empties b but keeps its memory; clears the failure flag. */
void fw_buf_reset(struct fw_buf *b);

/* Hands the memory to the caller (who frees it) and empties b. */
char *fw_buf_steal(struct fw_buf *b);

#endif
