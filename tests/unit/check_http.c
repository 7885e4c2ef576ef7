/* check_http.c - http.c: reason phrases, canonical header names, dates,
 * sizes (spec 9), sniffing and method labels (spec 10).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- fw_http_reason ------------------------------------------------------ */

static const struct {
    int status;
    const char *text;
} reasons[] = {
    { 100, "Continue" },
    { 101, "Switching Protocols" },
    { 103, "Early Hints" },
    { 200, "OK" },
    { 204, "No Content" },
    { 206, "Partial Content" },
    { 301, "Moved Permanently" },
    { 304, "Not Modified" },
    { 308, "Permanent Redirect" },
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 408, "Request Timeout" },
    { 413, "Request Entity Too Large" },
    { 414, "Request URI Too Long" },
    { 416, "Requested Range Not Satisfiable" },
    { 418, "I'm a teapot" },
    { 425, "Too Early" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" },
    { 501, "Not Implemented" },
    { 502, "Bad Gateway" },
    { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
    { 511, "Network Authentication Required" },
    { 0, "Unknown" },
    { -1, "Unknown" },
    { 306, "Unknown" },
    { 599, "Unknown" },
    { 2000, "Unknown" },
};

START_TEST(reason_phrases_are_go_status_texts)
{
    ck_assert_str_eq(fw_http_reason(reasons[_i].status), reasons[_i].text);
}
END_TEST

/* ---- fw_http_canonical --------------------------------------------------- */

static const char *const canonical[][2] = {
    { "content-type", "Content-Type" },
    { "CONTENT-TYPE", "Content-Type" },
    { "Content-Type", "Content-Type" },
    { "x-call-id", "X-Call-Id" },
    { "accept-encoding", "Accept-Encoding" },
    { "www-authenticate", "Www-Authenticate" },
    { "x-1abc", "X-1abc" },
    { "a_b", "A_b" },
    { "contentlength", "Contentlength" },
    { "-foo", "-Foo" },
    { "foo--bar", "Foo--Bar" },
    { "x!#$%&'*+.^_`|~y", "X!#$%&'*+.^_`|~y" },
    { "foo bar", "foo bar" },
    { "content-type:", "content-type:" },
    { "x-\xc3\xb1", "x-\xc3\xb1" },
    { "x-(y)", "x-(y)" },
    { "a\"b", "a\"b" },
    { "", "" },
};

START_TEST(header_names_take_go_canonical_form)
{
    const char *in = canonical[_i][0];
    size_t len = strlen(in);
    char out[64];

    memset(out, '#', sizeof(out));
    fw_http_canonical(in, len, out);
    ck_assert_int_eq(memcmp(out, canonical[_i][1], len), 0);
    ck_assert_int_eq(out[len], '#');
}
END_TEST

START_TEST(canonical_form_works_in_place_and_within_len)
{
    char name[] = "x-forwarded-for: x";

    fw_http_canonical(name, 15, name);
    ck_assert_str_eq(name, "X-Forwarded-For: x");
    /* The byte at len (a space) must not stop canonicalisation. */
    memcpy(name, "ab cd", 6);
    fw_http_canonical(name, 2, name);
    ck_assert_str_eq(name, "Ab cd");
}
END_TEST

/* ---- fw_http_name_is ----------------------------------------------------- */

static const struct {
    const char *name;
    size_t len;
    const char *lit;
    bool want;
} names[] = {
    { "Content-Length", 14, "content-length", true },
    { "CONTENT-LENGTH", 14, "Content-Length", true },
    { "content-length", 14, "content-length", true },
    { "Content-Length", 7, "content-length", false },
    { "Content-Lengths", 15, "content-length", false },
    { "Content-Lengthxyz", 14, "content-length", true },
    { "Content_Length", 14, "content-length", false },
    { "Host", 4, "host", true },
    { "Hosts", 4, "host", true },
    { "Hast", 4, "host", false },
    { "", 0, "", true },
    { "", 0, "a", false },
    { "a", 1, "", false },
    { "[", 1, "{", false },
};

START_TEST(name_is_compares_ignoring_case)
{
    ck_assert_int_eq(fw_http_name_is(names[_i].name, names[_i].len,
                                     names[_i].lit), names[_i].want);
}
END_TEST

/* ---- fw_http_date -------------------------------------------------------- */

static const struct {
    time_t t;
    const char *text;
} dates[] = {
    { 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
    { 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },
    { 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
    { 1700000000, "Tue, 14 Nov 2023 22:13:20 GMT" },
    { 1719792000, "Mon, 01 Jul 2024 00:00:00 GMT" },
    { 1735689599, "Tue, 31 Dec 2024 23:59:59 GMT" },
    { 1742000000, "Sat, 15 Mar 2025 00:53:20 GMT" },
    { 1746000000, "Wed, 30 Apr 2025 08:00:00 GMT" },
    { 1760000000, "Thu, 09 Oct 2025 08:53:20 GMT" },
    { 4102444800, "Fri, 01 Jan 2100 00:00:00 GMT" },
};

START_TEST(dates_are_imf_fixdate)
{
    char out[FW_HTTP_DATE_LEN];

    memset(out, 'x', sizeof(out));
    fw_http_date(dates[_i].t, out);
    ck_assert_str_eq(out, dates[_i].text);
    ck_assert_uint_eq(strlen(out), FW_HTTP_DATE_LEN - 1);
}
END_TEST

START_TEST(unrepresentable_dates_give_the_epoch)
{
    char out[FW_HTTP_DATE_LEN];

    memset(out, 'x', sizeof(out));
    fw_http_date((time_t)INT64_MAX, out);
    ck_assert_str_eq(out, "Thu, 01 Jan 1970 00:00:00 GMT");
}
END_TEST

/* ---- fw_http_human_size -------------------------------------------------- */

static const struct {
    int64_t bytes;
    const char *text;
} sizes[] = {
    { 0, "0B" },
    { 1, "1B" },
    { 512, "512B" },
    { 999, "999B" },
    { 1000, "1kB" },
    { 1024, "1.024kB" },
    { 1500, "1.5kB" },
    { 10125, "10.12kB" },
    { 100000, "100kB" },
    { 999999, "1000kB" },
    { 12345678, "12.35MB" },
    { 1000000000, "1GB" },
    { INT64_C(123456789012), "123.5GB" },
    { INT64_C(1000000000000), "1TB" },
    { INT64_C(1000000000000000), "1PB" },
    { INT64_MAX, "9.223EB" },
    { -1, "-1B" },
    { -5, "-1B" },
    { INT64_MIN, "-1B" },
};

START_TEST(sizes_read_like_go_units_human_size)
{
    char out[16];

    memset(out, 'x', sizeof(out));
    fw_http_human_size(sizes[_i].bytes, out, sizeof(out));
    ck_assert_str_eq(out, sizes[_i].text);
}
END_TEST

START_TEST(human_size_truncates_to_the_buffer)
{
    char out[4];

    fw_http_human_size(12345678, out, sizeof(out));
    ck_assert_str_eq(out, "12.");
}
END_TEST

/* ---- fw_http_sniff ------------------------------------------------------- */

#define BODY(s) s, sizeof(s) - 1

static const struct {
    const char *body;
    size_t len;
    const char *type;
} sniffs[] = {
    { BODY("hello"), "text/plain; charset=utf-8" },
    { BODY("{\"a\": 1}\n"), "text/plain; charset=utf-8" },
    { BODY("   "), "text/plain; charset=utf-8" },
    { BODY("caf\xc3\xa9"), "text/plain; charset=utf-8" },
    { BODY("esc \x1b[0m"), "text/plain; charset=utf-8" },
    { BODY("<html>"), "text/html; charset=utf-8" },
    { BODY(" \t\r\n\x0c<HTML><body>"), "text/html; charset=utf-8" },
    { BODY("<!DOCTYPE html>"), "text/html; charset=utf-8" },
    { BODY("<!doctype HTML >"), "text/html; charset=utf-8" },
    { BODY("<head>"), "text/html; charset=utf-8" },
    { BODY("<script>"), "text/html; charset=utf-8" },
    { BODY("<iframe "), "text/html; charset=utf-8" },
    { BODY("<h1>x"), "text/html; charset=utf-8" },
    { BODY("<div>"), "text/html; charset=utf-8" },
    { BODY("<font>"), "text/html; charset=utf-8" },
    { BODY("<table>"), "text/html; charset=utf-8" },
    { BODY("<a href=x>"), "text/html; charset=utf-8" },
    { BODY("<style>"), "text/html; charset=utf-8" },
    { BODY("<title>"), "text/html; charset=utf-8" },
    { BODY("<b>"), "text/html; charset=utf-8" },
    { BODY("<body>"), "text/html; charset=utf-8" },
    { BODY("<br>"), "text/html; charset=utf-8" },
    { BODY("<p>x"), "text/html; charset=utf-8" },
    { BODY("<!-- c -->"), "text/html; charset=utf-8" },
    { BODY("<br/>"), "text/plain; charset=utf-8" },
    { BODY("<html"), "text/plain; charset=utf-8" },
    { BODY("<htm>"), "text/plain; charset=utf-8" },
    { BODY("<?xml version=\"1.0\"?>"), "text/xml; charset=utf-8" },
    { BODY("\n<?xml"), "text/xml; charset=utf-8" },
    { BODY("%PDF-1.4"), "application/pdf" },
    { BODY(" %PDF-1.4"), "text/plain; charset=utf-8" },
    { BODY("%!PS-Adobe-3.0"), "application/postscript" },
    { BODY("\xFE\xFF\0a"), "text/plain; charset=utf-16be" },
    { BODY("\xFF\xFE" "a\0"), "text/plain; charset=utf-16le" },
    { BODY("\xEF\xBB\xBFhi"), "text/plain; charset=utf-8" },
    { BODY("\xEF\xBB\xBF\x01"), "text/plain; charset=utf-8" },
    { BODY("GIF87a.."), "image/gif" },
    { BODY("GIF89a.."), "image/gif" },
    { BODY("\x89PNG\r\n\x1A\n\0\0"), "image/png" },
    { BODY("\xFF\xD8\xFF\xE0"), "image/jpeg" },
    { BODY("BM.."), "image/bmp" },
    { BODY("RIFF\x10\0\0\0WEBPVP8 "), "image/webp" },
    { BODY("\0\0\1\0\1\0"), "image/vnd.microsoft.icon" },
    { BODY("OggS\0\2"), "application/ogg" },
    { BODY("RIFF\x10\0\0\0WAVEfmt "), "audio/wave" },
    { BODY("\x1A\x45\xDF\xA3\x01"), "video/webm" },
    { BODY("Rar \x1A\x07\0\x01"), "application/x-rar-compressed" },
    { BODY("PK\x03\x04\x14\0"), "application/zip" },
    { BODY("\x1F\x8B\x08\0"), "application/x-gzip" },
    { BODY("\x1F\x8B\x09\0"), "application/octet-stream" },
    { BODY("\0\1"), "application/octet-stream" },
    { BODY("abc\x01"), "application/octet-stream" },
    { BODY("abc\x0b"), "application/octet-stream" },
    { BODY("abc\x1c"), "application/octet-stream" },
    { BODY("a\tb\nc\x0c\rd\x1b"), "text/plain; charset=utf-8" },
    { "<html>", 3, "text/plain; charset=utf-8" },
    { "\x89PNG", 4, "text/plain; charset=utf-8" },
    { "PK\x03\x04", 3, "application/octet-stream" },
};

START_TEST(sniffing_follows_go_detect_content_type)
{
    const char *type = fw_http_sniff(sniffs[_i].body, sniffs[_i].len);

    ck_assert_ptr_nonnull(type);
    ck_assert_str_eq(type, sniffs[_i].type);
}
END_TEST

START_TEST(empty_body_has_no_content_type)
{
    ck_assert_ptr_null(fw_http_sniff("", 0));
    ck_assert_ptr_null(fw_http_sniff("<html>", 0));
}
END_TEST

/* Only the first 512 bytes count, as in Go. */
START_TEST(sniffing_reads_only_512_bytes)
{
    char body[600];

    memset(body, 'a', sizeof(body));
    body[550] = '\x01';
    ck_assert_str_eq(fw_http_sniff(body, sizeof(body)),
                     "text/plain; charset=utf-8");
    body[511] = '\x01';
    ck_assert_str_eq(fw_http_sniff(body, sizeof(body)),
                     "application/octet-stream");
    memset(body, ' ', sizeof(body));
    memcpy(body + 510, "<p>", 3);
    ck_assert_str_eq(fw_http_sniff(body, sizeof(body)),
                     "text/plain; charset=utf-8");
    memcpy(body + 500, "<p>", 3);
    ck_assert_str_eq(fw_http_sniff(body, sizeof(body)),
                     "text/html; charset=utf-8");
}
END_TEST

/* ---- fw_http_method_label ------------------------------------------------ */

static const char *const methods[][2] = {
    { "GET", "get" },         { "get", "get" },
    { "HEAD", "head" },       { "head", "head" },
    { "POST", "post" },       { "post", "post" },
    { "PUT", "put" },         { "put", "put" },
    { "DELETE", "delete" },   { "delete", "delete" },
    { "CONNECT", "connect" }, { "connect", "connect" },
    { "OPTIONS", "options" }, { "options", "options" },
    { "TRACE", "trace" },     { "trace", "trace" },
    { "PATCH", "patch" },     { "patch", "patch" },
    { "NOTIFY", "notify" },   { "notify", "notify" },
    { "Get", "unknown" },     { "PROPFIND", "unknown" },
    { "GETX", "unknown" },    { "", "unknown" },
    { "M-SEARCH", "unknown" },
};

START_TEST(method_labels_are_promhttp_labels)
{
    ck_assert_str_eq(fw_http_method_label(methods[_i][0]), methods[_i][1]);
}
END_TEST

START_TEST(null_method_is_unknown)
{
    ck_assert_str_eq(fw_http_method_label(NULL), "unknown");
}
END_TEST

/* SipHash-2-4's reference vectors (key 00..0f, message 00..len-1): no
 * byte of them is an ASCII letter, so folding leaves them as they are. */
static const struct {
    size_t len;
    uint64_t hash;
} sip_vectors[] = {
    { 0, 0x726fdb47dd0e0e31ULL },
    { 1, 0x74f839c593dc67fdULL },
    { 8, 0x93f5f5799a932462ULL },
    { 15, 0xa129ca6149be45e5ULL },
};

START_TEST(name_hash_is_siphash_2_4)
{
    char msg[16];
    size_t i;

    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (char)i;
    fw_http_hash_key(0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL);
    ck_assert_uint_eq(fw_http_name_hash(msg, sip_vectors[_i].len),
                      sip_vectors[_i].hash);
}
END_TEST

START_TEST(name_hash_folds_case_only)
{
    uint64_t h;

    fw_http_hash_key(1, 2);
    h = fw_http_name_hash("Content-Type", 12);
    ck_assert_uint_eq(h, fw_http_name_hash("content-TYPE", 12));
    ck_assert_uint_ne(h, fw_http_name_hash("Content_Type", 12));
    fw_http_hash_key(1, 3);    /* another key, another table order */
    ck_assert_uint_ne(h, fw_http_name_hash("Content-Type", 12));
}
END_TEST

START_TEST(names_match_ignoring_case_and_keep_the_first_tag)
{
    struct fw_names set;

    ck_assert_int_eq(fw_names_init(&set, 4), 0);
    ck_assert_uint_eq(fw_names_add(&set, "X-One", 5, 0), 0);
    ck_assert_uint_eq(fw_names_add(&set, "x-two", 5, 1), 1);
    ck_assert_uint_eq(fw_names_add(&set, "X-ONE", 5, 2), 0);
    ck_assert_uint_eq(fw_names_add(&set, "X-On", 4, 3), 3);
    ck_assert(fw_names_has(&set, "x-one", 5));
    ck_assert(fw_names_has(&set, "X-Two", 5));
    ck_assert(!fw_names_has(&set, "X-Three", 7));
    ck_assert(!fw_names_has(&set, "X-On ", 5));
    fw_names_release(&set);
}
END_TEST

START_TEST(empty_set_allocates_nothing_and_holds_nothing)
{
    struct fw_names set;

    ck_assert_int_eq(fw_names_init(&set, 0), 0);
    ck_assert_ptr_null(set.slot);
    ck_assert(!fw_names_has(&set, "Connection", 10));
    fw_names_release(&set);
}
END_TEST

/* Filled to max, every name is still found (the table stays at most half
 * full, so probing ends). */
START_TEST(full_set_finds_every_name)
{
    enum { MAX = 5000 };
    static char names[MAX][8];
    struct fw_names set;
    size_t i;

    ck_assert_int_eq(fw_names_init(&set, MAX), 0);
    for (i = 0; i < MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "h%zu", i);
        ck_assert_uint_eq(fw_names_add(&set, names[i], strlen(names[i]), i),
                          i);
    }
    for (i = 0; i < MAX; i++) {
        names[i][0] = 'H';    /* the set keeps the caller's bytes */
        ck_assert(fw_names_has(&set, names[i], strlen(names[i])));
    }
    ck_assert(!fw_names_has(&set, "h5000", 5));
    fw_names_release(&set);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc;

    tc = tcase_create("reason");
    tcase_add_loop_test(tc, reason_phrases_are_go_status_texts, 0,
                        N(reasons));
    suite_add_tcase(s, tc);

    tc = tcase_create("headers");
    tcase_add_loop_test(tc, header_names_take_go_canonical_form, 0,
                        N(canonical));
    tcase_add_test(tc, canonical_form_works_in_place_and_within_len);
    tcase_add_loop_test(tc, name_is_compares_ignoring_case, 0, N(names));
    tcase_add_loop_test(tc, name_hash_is_siphash_2_4, 0, N(sip_vectors));
    tcase_add_test(tc, name_hash_folds_case_only);
    tcase_add_test(tc, names_match_ignoring_case_and_keep_the_first_tag);
    tcase_add_test(tc, empty_set_allocates_nothing_and_holds_nothing);
    tcase_add_test(tc, full_set_finds_every_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("date");
    tcase_add_loop_test(tc, dates_are_imf_fixdate, 0, N(dates));
    tcase_add_test(tc, unrepresentable_dates_give_the_epoch);
    suite_add_tcase(s, tc);

    tc = tcase_create("size");
    tcase_add_loop_test(tc, sizes_read_like_go_units_human_size, 0, N(sizes));
    tcase_add_test(tc, human_size_truncates_to_the_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("sniff");
    tcase_add_loop_test(tc, sniffing_follows_go_detect_content_type, 0,
                        N(sniffs));
    tcase_add_test(tc, empty_body_has_no_content_type);
    tcase_add_test(tc, sniffing_reads_only_512_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("method");
    tcase_add_loop_test(tc, method_labels_are_promhttp_labels, 0,
                        N(methods));
    tcase_add_test(tc, null_method_is_unknown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
