/* fuzz_common.h - what the libFuzzer targets share: a loopback client
 * socket and a reader that splits what a client received into HTTP
 * responses (http-parser, HTTP_RESPONSE) for the targets' checks.
 */
#ifndef FZ_COMMON_H
#define FZ_COMMON_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define FZ_MAX_MSGS 1024      /* responses kept per input */
#define FZ_TURNS 20000        /* loop turns before an input counts as hung */

/* Stops the process with a message, as a crash libFuzzer reports. */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define FZ_CHECK(cond, ...)                                                \
    do {                                                                   \
        if (!(cond))                                                       \
            fz_fail("check failed: " #cond ": " __VA_ARGS__);              \
    } while (0)

/* A non-blocking TCP socket connected to 127.0.0.1:port; aborts on
 * failure (the machine, not the input, is broken then). */
int fz_connect(int port);

/* The port a bound libuv TCP handle listens on. */
int fz_port_of(const void *tcp_handle);

/* Writes what the socket takes of p[*done..len); true once all is out
 * or the peer is gone. */
bool fz_send_some(int fd, const uint8_t *p, size_t len, size_t *done);

/* Reads what is available into out; true at EOF or on an error
 * (*reset: the error was ECONNRESET). */
bool fz_recv_some(int fd, struct fw_buf *out, bool *reset);

/* One response as a client sees it. */
struct fz_msg {
    int status;
    unsigned short http_major, http_minor;
    struct fw_buf head;       /* "name\0value\0" for every header */
    size_t n_headers;
    struct fw_buf body;       /* de-chunked */
    bool complete;            /* message_complete was seen */
    bool upgrade;             /* the parser stopped at an upgrade */
};

struct fz_reader {
    http_parser parser;
    struct fz_msg *msgs;      /* heap, FZ_MAX_MSGS */
    size_t n;                 /* messages begun */
    bool overflow;            /* more than FZ_MAX_MSGS */
    bool error;               /* http-parser failed (not at EOF) */
    bool eof_error;           /* the stream ended inside a message */
    size_t tail;              /* bytes after an upgrade head */
    bool in_value;            /* the last header piece was a value */
    bool in_trailers;         /* the head is complete */
    /* Asked at each head: has the response to the n-th request no body
     * (HEAD)? May be NULL. */
    bool (*no_body)(void *ctx, size_t index);
    void *ctx;
};

/* Parses the whole of p[0..len) and the EOF. Interim responses (1xx
 * other than 101) are dropped from msgs. */
void fz_reader_run(struct fz_reader *rd, const char *p, size_t len,
                   bool (*no_body)(void *ctx, size_t index), void *ctx);
void fz_reader_release(struct fz_reader *rd);

/* The i-th header of m with this name (case-insensitive), NULL if none;
 * *count gets how many there are when count is not NULL. */
const char *fz_msg_header(const struct fz_msg *m, const char *name,
                          size_t *count);

#endif
