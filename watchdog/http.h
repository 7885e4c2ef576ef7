/* http.h - HTTP vocabulary shared by the server and the modes: status
 * texts, header names, dates, sizes and content sniffing. No I/O.
 */
#ifndef FW_HTTP_H
#define FW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

/* Reason phrase of a status code ("Not Found"); "Unknown" if none. */
const char *fw_http_reason(int status);

/* Writes name[0..len) in Go's canonical header form into out (same
 * length): first letter and each letter after '-' upper case, the rest
 * lower case. A name holding a byte outside the token set is copied as
 * sent (Go's rule). out may equal name. */
void fw_http_canonical(const char *name, size_t len, char *out);

/* True when p[0..len) is a non-empty RFC 9110 token (a valid header
 * name), as Go's httpguts.ValidHeaderFieldName. */
bool fw_http_is_token(const char *p, size_t len);

/* True when p[0..len) may be a field value: no control byte but HTAB
 * (Go's httpguts.ValidHeaderFieldValue; bytes from 0x80 are allowed). */
bool fw_http_is_field_value(const char *p, size_t len);

/* Case-insensitive comparison of a header name with a literal. */
bool fw_http_name_is(const char *name, size_t len, const char *lit);

/* SipHash-2-4 of name[0..len) with ASCII letters folded to lower case,
 * under a key drawn from getrandom() at first use: a client cannot choose
 * names that collide in a table (hash flooding). */
uint64_t fw_http_name_hash(const char *name, size_t len);

/* Fixes the key (tests, for the reference vectors). */
void fw_http_hash_key(uint64_t k0, uint64_t k1);

/* A set of header names (or Connection tokens) compared as HTTP compares
 * them, case-insensitively; the bytes stay the caller's. For the places
 * that would otherwise compare every header of a request with every
 * other: a head may carry tens of thousands. */
struct fw_name_slot {
    const char *name;            /* NULL: a free slot */
    size_t len;
    size_t tag;                  /* what the caller stored with it */
};

struct fw_names {
    struct fw_name_slot *slot;   /* NULL while empty */
    size_t mask;
};

/* Makes room for max names; 0 or -ENOMEM. A set made for max 0 holds
 * nothing and allocates nothing. */
int fw_names_init(struct fw_names *s, size_t max);
void fw_names_release(struct fw_names *s);

/* Adds name[0..len) with tag unless an equal name is in: returns the tag
 * of the name in the set, tag itself if it is new. At most max adds. */
size_t fw_names_add(struct fw_names *s, const char *name, size_t len,
                    size_t tag);

/* True when an equal name is in the set. */
bool fw_names_has(const struct fw_names *s, const char *name, size_t len);

/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into
 * out, which must hold FW_HTTP_DATE_LEN bytes with the NUL. */
#define FW_HTTP_DATE_LEN 30
void fw_http_date(time_t t, char *out);

/* Formats a byte count as Go's units.HumanSize does for the request log:
 * decimal units, 4 significant digits, no space ("0B", "512B", "1.5kB",
 * "12.35MB"); a negative size gives "-1B". out holds >= 16 bytes. */
void fw_http_human_size(int64_t bytes, char *out, size_t out_len);

/* Formats the seconds since start_ns (a uv_hrtime() value) as Go's
 * X-Duration-Seconds: six decimals ("0.004187"). out holds >= 24 bytes. */
void fw_http_duration(uint64_t start_ns, char *out, size_t out_len);

/* Guesses a Content-Type from the first bytes of a body (spec 10):
 * returns a static string, or NULL for an empty body. */
const char *fw_http_sniff(const char *body, size_t len);

/* Lower-case method label for metrics ("get", ..., "unknown"). */
const char *fw_http_method_label(const char *method);

/* Header lines as http-parser hands them over, in pieces: each name and
 * value is appended to *bytes behind a NUL (which ends what came before)
 * and its place recorded as offsets, since bytes may move as it grows. */
struct fw_field {
    uint32_t name;               /* offset of the name in bytes */
    uint32_t name_len;
    uint32_t value;              /* offset of the value; 0 = empty */
    uint32_t value_len;
};

struct fw_fields {
    struct fw_buf *bytes;        /* not owned: names and values go here */
    struct fw_buf offsets;       /* struct fw_field[], owned */
    bool in_value;               /* the last piece was a value */
};

/* Fills f for pieces appended to bytes; at most max_bytes of offsets. */
void fw_fields_init(struct fw_fields *f, struct fw_buf *bytes,
                    size_t max_bytes);
void fw_fields_reset(struct fw_fields *f);
void fw_fields_release(struct fw_fields *f);

/* on_header_field and on_header_value: 0, or -1 when a buffer is full. */
int fw_fields_name(struct fw_fields *f, const char *at, size_t len);
int fw_fields_value(struct fw_fields *f, const char *at, size_t len);

/* The fields so far: count, and the array (valid until the next piece). */
size_t fw_fields_count(const struct fw_fields *f);
const struct fw_field *fw_fields_list(const struct fw_fields *f);

#endif
