/* check_cgi.c - cgi.c: the child's CGI environment (spec 5.1: names,
 * values, classic extras, forged headers, de-duplication against the base
 * environment), the classic marshal_request JSON (spec 5.4) byte for
 * byte, and percent-decoding. Requests are filled in by hand.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cgi.h"
#include "server.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define H(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }
#define HEADERS(...) ((const struct fw_header[]){ __VA_ARGS__ })
#define NH(...) (sizeof(HEADERS(__VA_ARGS__)) / sizeof(struct fw_header))
/* REQ(method, path, query, H(...), ...) */
#define REQ(m, p, q, ...) \
    make_req(m, p, q, HEADERS(__VA_ARGS__), NH(__VA_ARGS__))

static char *const base_env[] = { "PATH=/usr/bin:/bin", "HOME=/root",
                                  "fprocess=cat", NULL };

static struct fw_env env;
static struct fw_buf json;

static void setup(void)
{
    memset(&env, 0, sizeof(env));
    fw_buf_init(&json, 0);
}

static void teardown(void)
{
    fw_env_release(&env);
    fw_buf_release(&json);
}

static struct fw_request make_req(const char *method, const char *path,
                                  const char *query,
                                  const struct fw_header *h, size_t n)
{
    struct fw_request r;

    memset(&r, 0, sizeof(r));
    r.method = method;
    r.path = path;
    r.query = query;
    r.target = path;
    r.headers = h;
    r.n_headers = n;
    r.http_major = 1;
    r.http_minor = 1;
    r.content_length = -1;
    return r;
}

/* The value of name in env.envp, NULL if absent; fails if it appears
 * more than once. */
static const char *get(const char *name)
{
    size_t len = strlen(name);
    const char *found = NULL;
    char *const *e;

    ck_assert_ptr_nonnull(env.envp);
    for (e = env.envp; *e; e++) {
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
            ck_assert_msg(found == NULL, "%s appears twice", name);
            found = *e + len + 1;
        }
    }
    return found;
}

static void expect(const char *name, const char *value)
{
    const char *v = get(name);

    ck_assert_msg(v != NULL, "%s is missing", name);
    ck_assert_str_eq(v, value);
}

static void expect_absent(const char *name)
{
    const char *v = get(name);

    ck_assert_msg(v == NULL, "%s=%s should not be there", name, v);
}

/* No name appears twice in env.envp. */
static void expect_unique_names(void)
{
    char *const *a, *const *b;

    for (a = env.envp; *a; a++) {
        size_t len = strcspn(*a, "=");

        for (b = a + 1; *b; b++)
            ck_assert_msg(strncmp(*a, *b, len) != 0 || (*b)[len] != '=',
                          "%.*s appears twice", (int)len, *a);
    }
}

/* The number of Http_* entries. */
static int count_http(void)
{
    char *const *e;
    int n = 0;

    for (e = env.envp; *e; e++)
        n += strncmp(*e, "Http_", 5) == 0;
    return n;
}

static void build(const struct fw_request *r, bool classic, long long len)
{
    ck_assert_int_eq(fw_env_build(&env, base_env, r, classic, true, len), 0);
    expect_unique_names();
}

/* ---- computed variables -------------------------------------------------- */

START_TEST(method_and_decoded_path_are_set)
{
    struct fw_request r = REQ("POST", "/a%20b/c", "", H("Accept", "*/*"));

    build(&r, false, 0);
    expect("Http_Method", "POST");
    expect("Http_Path", "/a b/c");
}
END_TEST

START_TEST(path_keeps_invalid_escapes)
{
    struct fw_request r = REQ("GET", "/x%zz/%4/%41%2f%", "", H("A", "1"));

    build(&r, false, 0);
    expect("Http_Path", "/x%zz/%4/A/%");
}
END_TEST

START_TEST(query_is_set_raw_only_when_not_empty)
{
    struct fw_request r = REQ("GET", "/", "", H("A", "1"));

    build(&r, false, 0);
    expect_absent("Http_Query");
    fw_env_release(&env);
    r.query = "a=1&b=%20+c";
    build(&r, false, 0);
    expect("Http_Query", "a=1&b=%20+c");
}
END_TEST

START_TEST(transfer_encoding_is_set_only_for_chunked)
{
    struct fw_request r = REQ("POST", "/", "", H("A", "1"));

    build(&r, false, 0);
    expect_absent("Http_Transfer_Encoding");
    fw_env_release(&env);
    r.chunked = true;
    build(&r, false, 0);
    expect("Http_Transfer_Encoding", "chunked");
}
END_TEST

START_TEST(plain_request_has_only_method_and_path)
{
    struct fw_request r = REQ("GET", "/", "", H("X-Only", "1"));

    r.n_headers = 0;
    build(&r, false, 0);
    ck_assert_int_eq(count_http(), 2);
    expect("Http_Method", "GET");
    expect("Http_Path", "/");
}
END_TEST

/* ---- header variables ---------------------------------------------------- */

static const struct {
    const char *sent;
    const char *var;
} names[] = {
    { "x-foo-bar", "Http_X_Foo_Bar" },
    { "X-FOO-BAR", "Http_X_Foo_Bar" },
    { "content-type", "Http_Content_Type" },
    { "user-Agent", "Http_User_Agent" },
    { "x_under", "Http_X_under" },
    { "a", "Http_A" },
    { "x-1st-2nd", "Http_X_1st_2nd" },
};

START_TEST(header_names_are_canonical_with_underscores)
{
    struct fw_header h = { names[_i].sent, strlen(names[_i].sent), "v", 1 };
    struct fw_request r = make_req("GET", "/", "", &h, 1);

    build(&r, false, 0);
    expect(names[_i].var, "v");
    ck_assert_int_eq(count_http(), 3);
}
END_TEST

START_TEST(header_value_is_copied_as_sent)
{
    struct fw_request r = REQ("GET", "/", "", H("X-Empty", ""),
                              H("X-Spaces", "a  b=c;d"));

    build(&r, false, 0);
    expect("Http_X_Empty", "");
    expect("Http_X_Spaces", "a  b=c;d");
}
END_TEST

START_TEST(first_value_wins_for_repeated_headers)
{
    struct fw_request r = REQ("GET", "/", "", H("X-A", "first"),
                              H("x-a", "second"), H("X-B", "1"),
                              H("X-A", "third"), H("X-B", "2"));

    build(&r, false, 0);
    expect("Http_X_A", "first");
    expect("Http_X_B", "1");
    ck_assert_int_eq(count_http(), 4);
}
END_TEST

START_TEST(forged_computed_headers_are_dropped)
{
    struct fw_request r = REQ("GET", "/real", "",
                              H("Method", "evil"), H("path", "/evil"),
                              H("QUERY", "evil=1"), H("Host", "evil.com"),
                              H("Transfer-Encoding", "chunked"),
                              H("X-Fine", "ok"));

    build(&r, false, 0);
    expect("Http_Method", "GET");
    expect("Http_Path", "/real");
    expect_absent("Http_Query");
    expect_absent("Http_Host");
    expect_absent("Http_Transfer_Encoding");
    expect("Http_X_Fine", "ok");
    ck_assert_int_eq(count_http(), 3);
}
END_TEST

START_TEST(forged_headers_are_dropped_in_classic_too)
{
    struct fw_request r = REQ("PUT", "/real", "q=1", H("Query", "evil=1"),
                              H("Method", "evil"), H("Host", "good.com"),
                              H("ContentLength", "999"));

    r.chunked = true;
    build(&r, true, -1);
    expect("Http_Method", "PUT");
    expect("Http_Query", "q=1");
    expect("Http_Host", "good.com");
    expect("Http_ContentLength", "-1");
    expect_absent("Http_Contentlength");
    expect("Http_Transfer_Encoding", "chunked");
}
END_TEST

START_TEST(content_length_header_gives_http_content_length)
{
    struct fw_request r = REQ("POST", "/", "", H("content-length", "42"));

    r.content_length = 42;
    build(&r, false, 1234);
    expect("Http_Content_Length", "42");
    expect_absent("Http_ContentLength");
}
END_TEST

/* The name buffer holds "Http_" and 256 bytes: the longest name taken
 * must fit with its NUL (an off-by-one shows under ASan). */
START_TEST(long_header_name_fits_its_buffer)
{
    char name[257], var[5 + 256 + 1];
    struct fw_header h = { name, 256, "v", 1 };
    struct fw_request r = make_req("GET", "/", "", &h, 1);

    memset(name, 'a', 256);
    name[256] = '\0';
    memcpy(var, "Http_A", 6);
    memset(var + 6, 'a', 255);
    var[5 + 256] = '\0';
    build(&r, false, 0);
    expect(var, "v");
}
END_TEST

/* ---- classic extras ------------------------------------------------------ */

START_TEST(classic_sets_both_content_lengths_from_the_body)
{
    struct fw_request r = REQ("POST", "/", "", H("Content-Length", "99"));

    r.content_length = 99;
    build(&r, true, 12);
    expect("Http_ContentLength", "12");
    expect("Http_Content_Length", "12");
}
END_TEST

START_TEST(classic_chunked_body_length_is_minus_one)
{
    struct fw_request r = REQ("POST", "/", "", H("A", "1"));

    r.chunked = true;
    build(&r, true, -1);
    expect("Http_ContentLength", "-1");
    expect("Http_Content_Length", "-1");
    expect("Http_Transfer_Encoding", "chunked");
}
END_TEST

START_TEST(classic_without_body_has_length_zero)
{
    struct fw_request r = REQ("GET", "/", "", H("A", "1"));

    build(&r, true, 0);
    expect("Http_ContentLength", "0");
    expect("Http_Content_Length", "0");
}
END_TEST

START_TEST(classic_sets_host_only_when_not_empty)
{
    struct fw_request r = REQ("GET", "/", "", H("host", "example.com:8080"));

    build(&r, true, 0);
    expect("Http_Host", "example.com:8080");
    fw_env_release(&env);
    r = REQ("GET", "/", "", H("Host", ""));
    build(&r, true, 0);
    expect_absent("Http_Host");
    fw_env_release(&env);
    r = REQ("GET", "/", "", H("Accept", "*/*"));
    build(&r, true, 0);
    expect_absent("Http_Host");
}
END_TEST

START_TEST(non_classic_has_no_host_and_no_contentlength)
{
    struct fw_request r = REQ("GET", "/", "", H("Host", "example.com"));

    build(&r, false, 5);
    expect_absent("Http_Host");
    expect_absent("Http_ContentLength");
    expect_absent("Http_Content_Length");
}
END_TEST

/* ---- the base environment ------------------------------------------------ */

START_TEST(without_cgi_the_env_is_exactly_the_base)
{
    struct fw_request r = REQ("GET", "/x", "a=1", H("X-A", "1"),
                              H("Host", "h"));
    int i, classic;

    for (classic = 0; classic < 2; classic++) {
        ck_assert_int_eq(fw_env_build(&env, base_env, &r, classic, false, 3),
                         0);
        for (i = 0; base_env[i]; i++)
            ck_assert_ptr_eq(env.envp[i], base_env[i]);
        ck_assert_ptr_null(env.envp[i]);
        fw_env_release(&env);
    }
}
END_TEST

START_TEST(empty_base_gives_only_the_cgi_set)
{
    char *const empty[] = { NULL };
    struct fw_request r = REQ("GET", "/", "", H("X-A", "1"));

    ck_assert_int_eq(fw_env_build(&env, empty, &r, false, true, 0), 0);
    ck_assert_int_eq(count_http(), 3);
    ck_assert_ptr_null(env.envp[3]);
}
END_TEST

START_TEST(cgi_entries_replace_base_entries_of_the_same_name)
{
    char *const base[] = { "A=1", "Http_Method=evil", "B=2",
                           "Http_X_Foo=base", "Http_Query=base",
                           "Http_Methods=kept", "C=3", NULL };
    struct fw_request r = REQ("GET", "/", "", H("x-foo", "header"));
    char *const *e;
    const char *order[] = { "A=1", "B=2", "Http_Query=base",
                            "Http_Methods=kept", "C=3" };
    int i = 0;

    ck_assert_int_eq(fw_env_build(&env, base, &r, false, true, 0), 0);
    expect_unique_names();
    expect("Http_Method", "GET");
    expect("Http_X_Foo", "header");
    /* Not redefined (no query): the base value stays. */
    expect("Http_Query", "base");
    expect("Http_Methods", "kept");
    /* Base entries that survive keep their order, before the CGI set. */
    for (e = env.envp; *e && i < N(order); e++)
        if (strcmp(*e, order[i]) == 0)
            i++;
    ck_assert_int_eq(i, N(order));
    ck_assert_str_eq(env.envp[0], "A=1");
    ck_assert_str_eq(env.envp[1], "B=2");
}
END_TEST

/* Spec 5.1: the result is de-duplicated, last wins. A base environment
 * can itself hold a name twice (execve allows it); getenv in the child
 * would see the first, where Go's exec (dedupEnv) keeps the last. */
START_TEST(duplicate_base_names_keep_the_last)
{
    char *const base[] = { "DUP=first", "X=1", "DUP=last", NULL };
    struct fw_request r = REQ("GET", "/", "", H("A", "1"));

    ck_assert_int_eq(fw_env_build(&env, base, &r, false, true, 0), 0);
    expect_unique_names();
    expect("DUP", "last");
}
END_TEST

START_TEST(release_frees_and_clears_envp)
{
    struct fw_request r = REQ("GET", "/", "", H("A", "1"));

    build(&r, true, 0);
    fw_env_release(&env);
    ck_assert_ptr_null(env.envp);
    ck_assert_ptr_null(env.store.data);
    fw_env_release(&env);
}
END_TEST

/* ---- marshal_request ----------------------------------------------------- */

static void marshal(const struct fw_request *r, const char *body, size_t len)
{
    ck_assert_int_eq(fw_cgi_marshal(&json, r, body, len), 0);
    ck_assert(!json.failed);
}

START_TEST(marshal_gives_go_json_for_a_small_request)
{
    struct fw_request r = REQ("POST", "/", "", H("content-type", "text/plain"),
                              H("x-b", "2"), H("Host", "example.com"),
                              H("X-B", "3"), H("accept", "*/*"));

    marshal(&r, "hi", 2);
    ck_assert_str_eq(json.data,
                     "{\"header\":{\"Accept\":[\"*/*\"],"
                     "\"Content-Type\":[\"text/plain\"],"
                     "\"X-B\":[\"2\",\"3\"]},"
                     "\"body\":{\"raw\":\"aGk=\"}}");
}
END_TEST

START_TEST(marshal_without_headers_or_body_gives_empty_objects)
{
    struct fw_request r = REQ("GET", "/", "", H("host", "h"));

    marshal(&r, "", 0);
    ck_assert_str_eq(json.data, "{\"header\":{},\"body\":{\"raw\":\"\"}}");
}
END_TEST

START_TEST(marshal_sorts_keys_bytewise_and_merges_case_variants)
{
    struct fw_request r = REQ("GET", "/", "", H("b", "1"), H("x-a", "2"),
                              H("aa", "3"), H("a-b", "4"), H("A", "5"),
                              H("X-A", "6"), H("B", "7"), H("X-a", "8"));

    marshal(&r, NULL, 0);
    ck_assert_str_eq(json.data,
                     "{\"header\":{\"A\":[\"5\"],\"A-B\":[\"4\"],"
                     "\"Aa\":[\"3\"],\"B\":[\"1\",\"7\"],"
                     "\"X-A\":[\"2\",\"6\",\"8\"]},"
                     "\"body\":{\"raw\":\"\"}}");
}
END_TEST

START_TEST(marshal_appends_to_what_the_buffer_holds)
{
    struct fw_request r = REQ("GET", "/", "", H("A", "1"));

    ck_assert_int_eq(fw_buf_append(&json, "pre:", 4), 0);
    marshal(&r, "a", 1);
    ck_assert_str_eq(json.data, "pre:{\"header\":{\"A\":[\"1\"]},"
                                "\"body\":{\"raw\":\"YQ==\"}}");
}
END_TEST

static const struct {
    const char *body;
    size_t len;
    const char *raw;
} bodies[] = {
    { "", 0, "" },
    { "a", 1, "YQ==" },
    { "ab", 2, "YWI=" },
    { "abc", 3, "YWJj" },
    { "abcd", 4, "YWJjZA==" },
    { "\xfb\xff\xbf", 3, "+/+/" },
    { "\x00\x10\x83\x10\x51\x87", 6, "ABCDEFGH" },
};

START_TEST(marshal_body_is_padded_standard_base64)
{
    struct fw_request r = REQ("GET", "/", "", H("Host", "h"));
    char want[128];

    marshal(&r, bodies[_i].body, bodies[_i].len);
    snprintf(want, sizeof(want), "{\"header\":{},\"body\":{\"raw\":\"%s\"}}",
             bodies[_i].raw);
    ck_assert_str_eq(json.data, want);
}
END_TEST

static const struct {
    const char *value;
    const char *json;
} escapes[] = {
    { "a\"b\\c", "a\\\"b\\\\c" },
    { "<b>&amp;", "\\u003cb\\u003e\\u0026amp;" },
    { "\x01\x1f\x7f", "\\u0001\\u001f\x7f" },
    { "caf\xc3\xa9 /'", "caf\xc3\xa9 /'" },
};

START_TEST(marshal_escapes_strings_as_go_does)
{
    struct fw_header h = { "X-V", 3, escapes[_i].value,
                           strlen(escapes[_i].value) };
    struct fw_request r = make_req("GET", "/", "", &h, 1);
    char want[256];

    marshal(&r, "", 0);
    snprintf(want, sizeof(want),
             "{\"header\":{\"X-V\":[\"%s\"]},\"body\":{\"raw\":\"\"}}",
             escapes[_i].json);
    ck_assert_str_eq(json.data, want);
}
END_TEST

/* Go's encoder (encoding/json, appendString) writes \t \n \r in short
 * form; HTAB is legal inside a header value. */
START_TEST(marshal_escapes_tab_in_short_form_as_go_does)
{
    struct fw_request r = REQ("GET", "/", "", H("X-V", "a\tb"));

    marshal(&r, "", 0);
    ck_assert_str_eq(json.data, "{\"header\":{\"X-V\":[\"a\\tb\"]},"
                                "\"body\":{\"raw\":\"\"}}");
}
END_TEST

/* Go coerces strings to valid UTF-8 (each bad byte becomes \ufffd) and
 * escapes U+2028/U+2029; raw obs-text bytes would make the whole JSON
 * invalid UTF-8 for the function's parser. */
START_TEST(marshal_replaces_invalid_utf8_as_go_does)
{
    struct fw_request r = REQ("GET", "/", "", H("X-V", "caf\xe9 \xe2\x80\xa8"));

    marshal(&r, "", 0);
    ck_assert_str_eq(json.data,
                     "{\"header\":{\"X-V\":[\"caf\\ufffd \\u2028\"]},"
                     "\"body\":{\"raw\":\"\"}}");
}
END_TEST

/* Go's server removes Transfer-Encoding from Request.Header
 * (net/http transfer.go, fixTransferEncoding), so a chunked request's
 * marshal_request JSON has no such key. */
START_TEST(marshal_leaves_out_transfer_encoding_as_go_does)
{
    struct fw_request r = REQ("POST", "/", "",
                              H("Transfer-Encoding", "chunked"), H("X-A", "1"));

    r.chunked = true;
    marshal(&r, "x", 1);
    ck_assert_str_eq(json.data, "{\"header\":{\"X-A\":[\"1\"]},"
                                "\"body\":{\"raw\":\"eA==\"}}");
}
END_TEST

START_TEST(marshal_into_a_full_buffer_fails_cleanly)
{
    struct fw_request r = REQ("GET", "/", "", H("X-A", "1"));
    struct fw_buf small;

    fw_buf_init(&small, 10);
    ck_assert_int_lt(fw_cgi_marshal(&small, &r, "abc", 3), 0);
    ck_assert(small.failed);
    ck_assert_uint_le(small.len, 10);
    fw_buf_release(&small);
}
END_TEST

/* ---- fw_cgi_unescape ----------------------------------------------------- */

static const struct {
    const char *in;
    const char *out;
} unescapes[] = {
    { "", "" },
    { "/plain/path", "/plain/path" },
    { "/a%20b", "/a b" },
    { "%41%42%43", "ABC" },
    { "%2f%2F", "//" },
    { "%e2%82%AC", "\xe2\x82\xac" },
    { "a+b", "a+b" },
    { "%", "%" },
    { "%4", "%4" },
    { "x%4", "x%4" },
    { "%zz", "%zz" },
    { "%4g", "%4g" },
    { "%g4", "%g4" },
    { "%%41", "%A" },
    { "%2", "%2" },
    { "100%", "100%" },
    { "%25%32%30", "%20" },
};

START_TEST(unescape_decodes_valid_escapes_and_keeps_the_rest)
{
    char out[64];

    memset(out, 'X', sizeof(out));
    fw_cgi_unescape(unescapes[_i].in, out);
    ck_assert_str_eq(out, unescapes[_i].out);
}
END_TEST

#define ADD(t) tcase_add_test(tc, t)
#define LOOP(t, table) tcase_add_loop_test(tc, t, 0, N(table))

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    return tc;
}

static void add_env_tests(Suite *s)
{
    TCase *tc = tcase(s, "computed");

    ADD(method_and_decoded_path_are_set);
    ADD(path_keeps_invalid_escapes);
    ADD(query_is_set_raw_only_when_not_empty);
    ADD(transfer_encoding_is_set_only_for_chunked);
    ADD(plain_request_has_only_method_and_path);
    tc = tcase(s, "headers");
    LOOP(header_names_are_canonical_with_underscores, names);
    ADD(header_value_is_copied_as_sent);
    ADD(first_value_wins_for_repeated_headers);
    ADD(forged_computed_headers_are_dropped);
    ADD(forged_headers_are_dropped_in_classic_too);
    ADD(content_length_header_gives_http_content_length);
    ADD(long_header_name_fits_its_buffer);
    tc = tcase(s, "classic");
    ADD(classic_sets_both_content_lengths_from_the_body);
    ADD(classic_chunked_body_length_is_minus_one);
    ADD(classic_without_body_has_length_zero);
    ADD(classic_sets_host_only_when_not_empty);
    ADD(non_classic_has_no_host_and_no_contentlength);
    tc = tcase(s, "base");
    ADD(without_cgi_the_env_is_exactly_the_base);
    ADD(empty_base_gives_only_the_cgi_set);
    ADD(cgi_entries_replace_base_entries_of_the_same_name);
    ADD(duplicate_base_names_keep_the_last);
    ADD(release_frees_and_clears_envp);
}

static void add_marshal_tests(Suite *s)
{
    TCase *tc = tcase(s, "marshal");

    ADD(marshal_gives_go_json_for_a_small_request);
    ADD(marshal_without_headers_or_body_gives_empty_objects);
    ADD(marshal_sorts_keys_bytewise_and_merges_case_variants);
    ADD(marshal_appends_to_what_the_buffer_holds);
    LOOP(marshal_body_is_padded_standard_base64, bodies);
    LOOP(marshal_escapes_strings_as_go_does, escapes);
    ADD(marshal_escapes_tab_in_short_form_as_go_does);
    ADD(marshal_replaces_invalid_utf8_as_go_does);
    ADD(marshal_leaves_out_transfer_encoding_as_go_does);
    ADD(marshal_into_a_full_buffer_fails_cleanly);
    tc = tcase(s, "unescape");
    LOOP(unescape_decodes_valid_escapes_and_keeps_the_rest, unescapes);
}

int main(void)
{
    Suite *s = suite_create("cgi");
    SRunner *sr;
    int failed;

    add_env_tests(s);
    add_marshal_tests(s);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
