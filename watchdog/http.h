/* http.h - HTTP vocabulary shared by the server and the modes: status
 * texts, header names, dates, sizes and content sniffing. No I/O.
 */
#ifndef FW_HTTP_H
#define FW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Reason phrase of a status code ("Not Found"); "Unknown" if none. */
const char *fw_http_reason(int status);

/* Writes name[0..len) in Go's canonical header form into out (same
 * length): first letter and each letter after '-' upper case, the rest
 * lower case. A name holding a byte outside the token set is copied as
 * sent (Go's rule). out may equal name. */
void fw_http_canonical(const char *name, size_t len, char *out);

/* Case-insensitive comparison of a header name with a literal. */
bool fw_http_name_is(const char *name, size_t len, const char *lit);

/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into
 * out, which must hold FW_HTTP_DATE_LEN bytes with the NUL. */
#define FW_HTTP_DATE_LEN 30
void fw_http_date(time_t t, char *out);

/* Formats a byte count as Go's units.HumanSize does for the request log:
 * decimal units, 4 significant digits, no space ("0B", "512B", "1.5kB",
 * "12.35MB"); a negative size gives "-1B". out holds >= 16 bytes. */
void fw_http_human_size(int64_t bytes, char *out, size_t out_len);

/* Guesses a Content-Type from the first bytes of a body (spec 10):
 * returns a static string, or NULL for an empty body. */
const char *fw_http_sniff(const char *body, size_t len);

/* Lower-case method label for metrics ("get", ..., "unknown"). */
const char *fw_http_method_label(const char *method);

#endif
