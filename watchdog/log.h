/* log.h - the watchdog's own log lines and the relay of children's
 * output, each a whole line in one write().
 */
#ifndef FW_LOG_H
#define FW_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fw_log_level { FW_DEBUG, FW_INFO, FW_ERROR };

/* Sets what fw_log prints: lines below min_level are dropped. */
void fw_log_init(enum fw_log_level min_level);

/* Prints "YYYY/MM/DD HH:MM:SS <message>" on stderr, local time, as one
 * line in one write(). */
void fw_log(enum fw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Splits a child's output stream into lines for the log (spec 9). */
struct fw_lines {
    int fd;              /* where lines go: 1 or 2 */
    const char *label;   /* "stderr" or "stdout" */
    bool prefix;         /* prefix_logs: timestamp and label */
    size_t max_line;     /* longest line relayed whole; 0 = unlimited */
    char *part;          /* heap: the unfinished line, NULL when none */
    size_t part_len;     /* bytes in part */
    size_t part_cap;     /* bytes allocated for part */
};

/* Fills l; max_line < 0 means unlimited. */
void fw_lines_init(struct fw_lines *l, int fd, const char *label,
                   bool prefix, int64_t max_line);

/* Relays every complete line of p[0..len) and keeps the rest; a line
 * reaching max_line bytes is emitted in pieces of that size. */
void fw_lines_feed(struct fw_lines *l, const char *p, size_t len);

/* Emits a final unterminated line, if any, and frees l's memory. */
void fw_lines_release(struct fw_lines *l);

/* Writes one line (the newline is added) with the prefix rules of l. */
void fw_lines_emit(const struct fw_lines *l, const char *p, size_t len);

#endif
