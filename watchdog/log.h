/* log.h - the watchdog's own log lines, the access log and the relay of
 * children's output, each a whole line, as text or as JSON (spec 9).
 *
 * Lines are formatted on the caller's thread and, once fw_log_start has
 * run, queued for a writer thread: a stalled stdout or stderr reader
 * costs dropped lines (fw_log_dropped_lines), never a stalled loop.
 * Before fw_log_start and after fw_log_stop lines are written at once.
 * Every function but fw_log_dropped_lines belongs to one thread (the
 * loop's).
 */
#ifndef FW_LOG_H
#define FW_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum fw_log_level { FW_DEBUG, FW_INFO, FW_ERROR };

#define FW_LOG_QUEUE_BYTES (1024 * 1024) /* lines waiting for the writer */
#define FW_LOG_FLUSH_MS 1000             /* longest flush at fw_log_stop */

/* Sets what fw_log prints: lines below min_level are dropped. Until
 * fw_log_start, lines are written at once. */
void fw_log_init(enum fw_log_level min_level);

/* json: one JSON object per line from now on (log_format=json); else
 * the Go watchdogs' text lines. */
void fw_log_set_json(bool json);

/* Starts the writer thread; from now on lines wait in a queue of at most
 * max_queued_bytes (a longer line is taken only into an empty queue)
 * and a line that does not fit is dropped and counted. Returns 0 or
 * -errno (lines are then still written at once). */
int fw_log_start(size_t max_queued_bytes);

/* After fw_log_start: wakes the writer once per turn of loop, before it
 * waits, instead of once per line (a line waits at most one turn; a
 * half-full queue wakes it at once). The handle is closed with the
 * loop's others; lines then wake it one by one again. Returns 0 or a
 * libuv error (lines then wake it one by one). */
int fw_log_attach(uv_loop_t *loop);

/* Writes what is queued, for at most FW_LOG_FLUSH_MS if the reader has
 * stalled (what is left is dropped and counted), joins the writer and
 * frees the queue. Lines logged later are written at once. Idempotent. */
void fw_log_stop(void);

/* Lines dropped so far because the queue was full, memory ran out, a
 * write failed or fw_log_stop gave up. Any thread. */
uint64_t fw_log_dropped_lines(void);

/* Prints "YYYY/MM/DD HH:MM:SS <message>" on stderr, local time, as one
 * line; with JSON {"time","level","msg"}. */
void fw_log(enum fw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One function request, for the access log. */
struct fw_access {
    const char *method;          /* "GET" */
    const char *target;          /* as sent, NUL-terminated */
    int status;                  /* response status */
    double duration_s;           /* head received to response end */
    int64_t bytes_in;            /* request body bytes received */
    int64_t bytes_out;           /* response body bytes sent */
    const char *call_id;         /* X-Call-Id value, NULL when absent */
    size_t call_id_len;
};

/* Logs a request at FW_INFO: text is the Go watchdogs' line, printed as
 * it is; with JSON it is the msg of an object holding every field of a. */
void fw_log_access(const struct fw_access *a, const char *text);

/* Writes p[0..len) into out as the inside of a JSON string: quote,
 * backslash and control bytes escaped, each byte that is not part of
 * valid UTF-8 replaced by \ufffd. out may be NULL. Returns the bytes
 * written (at most 6 * len). */
size_t fw_log_json_escape(const char *p, size_t len, char *out);

/* Splits a child's output stream into lines for the log (spec 9). */
struct fw_lines {
    int fd;              /* where lines go: 1 or 2 */
    const char *label;   /* "stderr" or "stdout" */
    bool prefix;         /* prefix_logs: timestamp and label */
    size_t max_line;     /* longest line relayed whole; 0 = unlimited */
    char *part;          /* heap: the unfinished line, NULL when none */
    size_t part_len;     /* bytes in part */
    size_t part_cap;     /* bytes allocated for part */
    char *call_id;       /* heap: the request's X-Call-Id, or NULL */
};

/* Fills l; max_line < 0 means unlimited. */
void fw_lines_init(struct fw_lines *l, int fd, const char *label,
                   bool prefix, int64_t max_line);

/* With JSON, every line of l carries "call_id": id[0..len) (a request's
 * X-Call-Id), copied. Out of memory, or with text, lines go without it. */
void fw_lines_set_call_id(struct fw_lines *l, const char *id, size_t len);

/* Relays every complete line of p[0..len) and keeps the rest; a line
 * reaching max_line bytes is emitted in pieces of that size. */
void fw_lines_feed(struct fw_lines *l, const char *p, size_t len);

/* Emits a final unterminated line, if any, and frees l's memory. */
void fw_lines_release(struct fw_lines *l);

/* Writes one line (the newline is added) with the prefix rules of l;
 * with JSON {"time","stream","msg"[,"call_id"]} whatever the prefix. */
void fw_lines_emit(const struct fw_lines *l, const char *p, size_t len);

#endif
