/* syntax.h - value syntaxes shared by configuration and other modules:
 * Go durations and the words of fprocess.
 */
#ifndef FW_SYNTAX_H
#define FW_SYNTAX_H

#include <stddef.h>
#include <stdint.h>

/* Go's strconv.Atoi on 64 bits: an optional sign and decimal digits,
 * nothing else. Returns 0 and *out, -EINVAL or -ERANGE. */
int fw_int_parse(const char *s, int64_t *out);

/* Parses a duration as the Go watchdogs do: a bare non-negative integer
 * is seconds, otherwise a Go duration ("1m30s", "500ms", "1.5h").
 * Returns 0 and *ms (rounded down to milliseconds; negative values are
 * kept) or -EINVAL. */
int fw_duration_parse(const char *s, int64_t *ms);

/* Formats ms as Go's time.Duration.String() does ("30s", "1m30s",
 * "1h0m0s", "500ms", "0s") into out[out_len]. */
void fw_duration_format(int64_t ms, char *out, size_t out_len);

/* Splits a command line per spec 5.1 (quotes, backslashes, no shell).
 * Returns a NULL-ended array in one allocation (free() it once) or NULL
 * with *err set to one of the messages below, told apart by pointer. */
char **fw_argv_split(const char *line, const char **err);

extern const char fw_split_unbalanced[];    /* "unbalanced quote" */
extern const char fw_split_backslash[];     /* "trailing backslash" */
extern const char fw_split_empty[];         /* "empty" */

#endif
