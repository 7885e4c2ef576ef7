/* http.c - HTTP vocabulary: reason phrases, canonical header names,
 * dates, human-readable sizes, content sniffing and metric labels.
 * Pure functions over bytes (the duration reads the clock); parsing and
 * I/O belong to server.c.
 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>

/* Go's net/http StatusText, which the request log repeats (spec 6.3); it
 * keeps older names than http_parser.h (413, 414, 416) and knows 418. */
static const struct reason {
    int status;
    const char *text;
} reasons[] = {
    { 100, "Continue" },
    { 101, "Switching Protocols" },
    { 102, "Processing" },
    { 103, "Early Hints" },
    { 200, "OK" },
    { 201, "Created" },
    { 202, "Accepted" },
    { 203, "Non-Authoritative Information" },
    { 204, "No Content" },
    { 205, "Reset Content" },
    { 206, "Partial Content" },
    { 207, "Multi-Status" },
    { 208, "Already Reported" },
    { 226, "IM Used" },
    { 300, "Multiple Choices" },
    { 301, "Moved Permanently" },
    { 302, "Found" },
    { 303, "See Other" },
    { 304, "Not Modified" },
    { 305, "Use Proxy" },
    { 307, "Temporary Redirect" },
    { 308, "Permanent Redirect" },
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 402, "Payment Required" },
    { 403, "Forbidden" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 406, "Not Acceptable" },
    { 407, "Proxy Authentication Required" },
    { 408, "Request Timeout" },
    { 409, "Conflict" },
    { 410, "Gone" },
    { 411, "Length Required" },
    { 412, "Precondition Failed" },
    { 413, "Request Entity Too Large" },
    { 414, "Request URI Too Long" },
    { 415, "Unsupported Media Type" },
    { 416, "Requested Range Not Satisfiable" },
    { 417, "Expectation Failed" },
    { 418, "I'm a teapot" },
    { 421, "Misdirected Request" },
    { 422, "Unprocessable Entity" },
    { 423, "Locked" },
    { 424, "Failed Dependency" },
    { 425, "Too Early" },
    { 426, "Upgrade Required" },
    { 428, "Precondition Required" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 451, "Unavailable For Legal Reasons" },
    { 500, "Internal Server Error" },
    { 501, "Not Implemented" },
    { 502, "Bad Gateway" },
    { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
    { 505, "HTTP Version Not Supported" },
    { 506, "Variant Also Negotiates" },
    { 507, "Insufficient Storage" },
    { 508, "Loop Detected" },
    { 510, "Not Extended" },
    { 511, "Network Authentication Required" },
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

const char *fw_http_reason(int status)
{
    size_t i;

    for (i = 0; i < COUNT_OF(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Unknown";
}

/* RFC 7230 tchar, the bytes Go's validHeaderFieldByte accepts. */
static bool is_token(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool fw_http_is_token(const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (!is_token((unsigned char)p[i]))
            return false;
    return len > 0;
}

bool fw_http_is_field_value(const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

void fw_http_canonical(const char *name, size_t len, char *out)
{
    bool upper = true;
    size_t i;

    for (i = 0; i < len; i++) {
        if (!is_token((unsigned char)name[i])) {
            memmove(out, name, len);
            return;
        }
    }
    for (i = 0; i < len; i++) {
        char c = name[i];

        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!upper && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[i] = c;
        upper = c == '-';
    }
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool fw_http_name_is(const char *name, size_t len, const char *lit)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (lit[i] == '\0' || ascii_lower(name[i]) != ascii_lower(lit[i]))
            return false;
    return lit[len] == '\0';
}

static struct {
    uint64_t k0, k1;
    bool set;
} hash_key;

void fw_http_hash_key(uint64_t k0, uint64_t k1)
{
    hash_key.k0 = k0;
    hash_key.k1 = k1;
    hash_key.set = true;
}

static void draw_key(void)
{
    uint64_t k[2];

    /* Never blocks; early in boot the pool may be short, and then time,
     * pid and the address space layout still keep it from a client. */
    if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
        k[0] = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        k[1] = (uint64_t)(uintptr_t)&hash_key ^ (uint64_t)time(NULL);
    }
    fw_http_hash_key(k[0], k[1]);
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

static void sip_word(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

uint64_t fw_http_name_hash(const char *name, size_t len)
{
    uint64_t v[4], m = 0;
    size_t i;

    if (!hash_key.set)
        draw_key();
    v[0] = 0x736f6d6570736575ULL ^ hash_key.k0;
    v[1] = 0x646f72616e646f6dULL ^ hash_key.k1;
    v[2] = 0x6c7967656e657261ULL ^ hash_key.k0;
    v[3] = 0x7465646279746573ULL ^ hash_key.k1;
    for (i = 0; i < len; i++) {
        m |= (uint64_t)(unsigned char)ascii_lower(name[i]) << (8 * (i % 8));
        if (i % 8 == 7) {
            sip_word(v, m);
            m = 0;
        }
    }
    sip_word(v, m | (uint64_t)len << 56);
    v[2] ^= 0xff;
    for (i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static bool same_name(const struct fw_name_slot *e, const char *name,
                      size_t len)
{
    size_t i;

    if (e->len != len)
        return false;
    for (i = 0; i < len; i++)
        if (ascii_lower(e->name[i]) != ascii_lower(name[i]))
            return false;
    return true;
}

int fw_names_init(struct fw_names *s, size_t max)
{
    size_t size = 16;

    s->slot = NULL;
    s->mask = 0;
    if (max == 0)
        return 0;
    while (size < 2 * max)    /* at most half full */
        size *= 2;
    s->slot = calloc(size, sizeof(*s->slot));
    if (s->slot == NULL)
        return -ENOMEM;
    s->mask = size - 1;
    return 0;
}

void fw_names_release(struct fw_names *s)
{
    free(s->slot);
    s->slot = NULL;
    s->mask = 0;
}

size_t fw_names_add(struct fw_names *s, const char *name, size_t len,
                    size_t tag)
{
    size_t i = fw_http_name_hash(name, len) & s->mask;

    for (; s->slot[i].name; i = (i + 1) & s->mask)
        if (same_name(&s->slot[i], name, len))
            return s->slot[i].tag;
    s->slot[i] = (struct fw_name_slot){ name, len, tag };
    return tag;
}

bool fw_names_has(const struct fw_names *s, const char *name, size_t len)
{
    size_t i;

    if (s->slot == NULL)
        return false;
    for (i = fw_http_name_hash(name, len) & s->mask; s->slot[i].name;
         i = (i + 1) & s->mask)
        if (same_name(&s->slot[i], name, len))
            return true;
    return false;
}

void fw_http_date(time_t t, char *out)
{
    static const char days[7][4] = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
    };
    static const char months[12][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    };
    struct tm tm;
    time_t epoch = 0;

    /* Fixed English names: strftime's %a and %b follow the locale. A
     * time gmtime_r cannot represent gives the epoch, not garbage. */
    if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 8099)
        gmtime_r(&epoch, &tm);
    snprintf(out, FW_HTTP_DATE_LEN, "%s, %02u %s %04u %02u:%02u:%02u GMT",
             days[(unsigned)tm.tm_wday % 7], (unsigned)tm.tm_mday % 100,
             months[(unsigned)tm.tm_mon % 12],
             (unsigned)(tm.tm_year + 1900) % 10000,
             (unsigned)tm.tm_hour % 100, (unsigned)tm.tm_min % 100,
             (unsigned)tm.tm_sec % 100);
}

void fw_http_human_size(int64_t bytes, char *out, size_t out_len)
{
    static const char *const units[] = {
        "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB",
    };
    double size = (double)bytes;
    size_t i = 0;

    /* Callers pass -1 for an unknown length; Go prints it as "-1B". */
    if (bytes < 0) {
        snprintf(out, out_len, "-1B");
        return;
    }
    while (size >= 1000.0 && i < COUNT_OF(units) - 1) {
        size /= 1000.0;
        i++;
    }
    /* Below 1000 with 4 significant digits %g never needs an exponent,
     * so C prints what Go's %.4g prints. */
    snprintf(out, out_len, "%.4g%s", size, units[i]);
}

/* ---- sniffing (spec 10, after Go's net/http DetectContentType) ----------- */

#define SNIFF_LEN 512

static const char *const html_tags[] = {
    "<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1",
    "<DIV", "<FONT", "<TABLE", "<A", "<STYLE", "<TITLE", "<B", "<BODY",
    "<BR", "<P", "<!--",
};

/* A byte pattern under a mask; skip_ws matches after leading blanks. */
static const struct signature {
    const char *pat;
    const char *mask; /* NULL = all 0xFF */
    size_t len;
    bool skip_ws;
    const char *type;
} signatures[] = {
    { "<?xml", NULL, 5, true, "text/xml; charset=utf-8" },
    { "%PDF-", NULL, 5, false, "application/pdf" },
    { "%!PS-Adobe-", NULL, 11, false, "application/postscript" },
    { "\xFE\xFF\0\0", "\xFF\xFF\0\0", 4, false,
      "text/plain; charset=utf-16be" },
    { "\xFF\xFE\0\0", "\xFF\xFF\0\0", 4, false,
      "text/plain; charset=utf-16le" },
    { "\xEF\xBB\xBF\0", "\xFF\xFF\xFF\0", 4, false,
      "text/plain; charset=utf-8" },
    { "GIF87a", NULL, 6, false, "image/gif" },
    { "GIF89a", NULL, 6, false, "image/gif" },
    { "\x89PNG\r\n\x1A\n", NULL, 8, false, "image/png" },
    { "\xFF\xD8\xFF", NULL, 3, false, "image/jpeg" },
    { "BM", NULL, 2, false, "image/bmp" },
    { "RIFF\0\0\0\0WEBPVP", "\xFF\xFF\xFF\xFF\0\0\0\0\xFF\xFF\xFF\xFF\xFF\xFF",
      14, false, "image/webp" },
    { "\0\0\1\0", NULL, 4, false, "image/vnd.microsoft.icon" },
    { "OggS\0", NULL, 5, false, "application/ogg" },
    { "RIFF\0\0\0\0WAVE", "\xFF\xFF\xFF\xFF\0\0\0\0\xFF\xFF\xFF\xFF", 12,
      false, "audio/wave" },
    { "\x1A\x45\xDF\xA3", NULL, 4, false, "video/webm" },
    { "Rar \x1A\x07\0", NULL, 7, false, "application/x-rar-compressed" },
    { "PK\x03\x04", NULL, 4, false, "application/zip" },
    { "\x1F\x8B\x08", NULL, 3, false, "application/x-gzip" },
};

static bool is_ws(char c)
{
    return c == '\t' || c == '\n' || c == '\x0c' || c == '\r' || c == ' ';
}

/* Go's htmlSig: the tag in any case, then a space or '>'. */
static bool is_html(const char *p, size_t len)
{
    size_t i, j;

    for (i = 0; i < COUNT_OF(html_tags); i++) {
        const char *tag = html_tags[i];
        size_t n = strlen(tag);

        if (len < n + 1 || (p[n] != ' ' && p[n] != '>'))
            continue;
        for (j = 0; j < n; j++) {
            char c = p[j];

            if (tag[j] >= 'A' && tag[j] <= 'Z')
                c = (char)(c & 0xDF);
            if (c != tag[j])
                break;
        }
        if (j == n)
            return true;
    }
    return false;
}

static bool sig_match(const struct signature *s, const char *p, size_t len)
{
    size_t i;

    if (len < s->len)
        return false;
    for (i = 0; i < s->len; i++) {
        unsigned char m = s->mask ? (unsigned char)s->mask[i] : 0xFF;

        if (((unsigned char)p[i] & m) != (unsigned char)s->pat[i])
            return false;
    }
    return true;
}

/* Bytes that make data binary (WHATWG mime sniffing, section 7.1). */
static bool is_binary(unsigned char c)
{
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1A) ||
           (c >= 0x1C && c <= 0x1F);
}

const char *fw_http_sniff(const char *body, size_t len)
{
    size_t ws = 0, i;

    if (len == 0)
        return NULL;
    if (len > SNIFF_LEN)
        len = SNIFF_LEN;
    while (ws < len && is_ws(body[ws]))
        ws++;
    if (is_html(body + ws, len - ws))
        return "text/html; charset=utf-8";
    for (i = 0; i < COUNT_OF(signatures); i++) {
        const struct signature *s = &signatures[i];
        size_t skip = s->skip_ws ? ws : 0;

        if (sig_match(s, body + skip, len - skip))
            return s->type;
    }
    for (i = ws; i < len; i++)
        if (is_binary((unsigned char)body[i]))
            return "application/octet-stream";
    return "text/plain; charset=utf-8";
}

const char *fw_http_method_label(const char *method)
{
    static const char *const labels[][2] = {
        { "GET", "get" },         { "HEAD", "head" },
        { "POST", "post" },       { "PUT", "put" },
        { "DELETE", "delete" },   { "CONNECT", "connect" },
        { "OPTIONS", "options" }, { "TRACE", "trace" },
        { "PATCH", "patch" },     { "NOTIFY", "notify" },
    };
    size_t i;

    /* promhttp accepts the upper- and the lower-case spelling only. */
    for (i = 0; method && i < COUNT_OF(labels); i++)
        if (strcmp(method, labels[i][0]) == 0 ||
            strcmp(method, labels[i][1]) == 0)
            return labels[i][1];
    return "unknown";
}

void fw_fields_init(struct fw_fields *f, struct fw_buf *bytes,
                    size_t max_bytes)
{
    f->bytes = bytes;
    fw_buf_init(&f->offsets, max_bytes);
    f->in_value = false;
}

void fw_fields_reset(struct fw_fields *f)
{
    fw_buf_reset(&f->offsets);
    f->in_value = false;
}

void fw_fields_release(struct fw_fields *f)
{
    fw_buf_release(&f->offsets);
}

size_t fw_fields_count(const struct fw_fields *f)
{
    return f->offsets.len / sizeof(struct fw_field);
}

const struct fw_field *fw_fields_list(const struct fw_fields *f)
{
    return (const struct fw_field *)(const void *)f->offsets.data;
}

static struct fw_field *last_field(struct fw_fields *f)
{
    return (struct fw_field *)(void *)f->offsets.data +
           fw_fields_count(f) - 1;
}

int fw_fields_name(struct fw_fields *f, const char *at, size_t len)
{
    if (fw_fields_count(f) == 0 || f->in_value) {
        struct fw_field field = { 0, 0, 0, 0 };

        /* A new field: the NUL ends whatever came before. */
        if (fw_buf_append(f->bytes, "", 1) < 0)
            return -1;
        field.name = (uint32_t)f->bytes->len;
        if (fw_buf_append(&f->offsets, &field, sizeof(field)) < 0)
            return -1;
        f->in_value = false;
    }
    last_field(f)->name_len += (uint32_t)len;
    return fw_buf_append(f->bytes, at, len) < 0 ? -1 : 0;
}

int fw_fields_value(struct fw_fields *f, const char *at, size_t len)
{
    struct fw_field *field;

    if (fw_fields_count(f) == 0)
        return -1;    /* http-parser never sends a value first */
    field = last_field(f);
    if (!f->in_value) {
        if (fw_buf_append(f->bytes, "", 1) < 0)
            return -1;
        field = last_field(f);
        field->value = (uint32_t)f->bytes->len;
        f->in_value = true;
    }
    field->value_len += (uint32_t)len;
    return fw_buf_append(f->bytes, at, len) < 0 ? -1 : 0;
}

void fw_http_duration(uint64_t start_ns, char *out, size_t out_len)
{
    uint64_t us = (uv_hrtime() - start_ns) / 1000;

    /* Six decimals as Go prints it, without floating point. */
    snprintf(out, out_len, "%llu.%06llu",
             (unsigned long long)(us / 1000000),
             (unsigned long long)(us % 1000000));
}
