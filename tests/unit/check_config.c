/* check_config.c - config.c: every variable, alias, default and bad value
 * of spec section 2, mode selection (spec 1, D1), durations and the
 * fprocess word splitting of spec 5.1. The environment is a table.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

struct env {
    const char *name;
    const char *value;
};

/* ENV({"fprocess", "cat"}, ...): a NULL-ended table for one test. */
#define ENV(...) ((const struct env[]){ __VA_ARGS__, { NULL, NULL } })
#define FP { "fprocess", "cat" }

static struct fw_config cfg;
static char err[256];
static char warnings[8][512];
static int nwarn;

static const char *table_lookup(const char *name, void *ctx)
{
    const struct env *e;

    for (e = ctx; e->name; e++)
        if (strcmp(e->name, name) == 0)
            return e->value;
    return NULL;
}

static void on_warn(const char *line)
{
    if (nwarn < 8)
        snprintf(warnings[nwarn], sizeof(warnings[0]), "%s", line);
    nwarn++;
}

static int load(const struct env *env)
{
    fw_config_release(&cfg);
    nwarn = 0;
    memset(err, 'x', sizeof(err));
    return fw_config_load(&cfg, table_lookup, (void *)env, on_warn, err,
                          sizeof(err));
}

static void teardown(void)
{
    fw_config_release(&cfg);
}

static void expect_ok(const struct env *env)
{
    int rc = load(env);

    ck_assert_msg(rc == 0, "load failed: %d %s", rc, err);
    ck_assert_str_eq(err, "");
}

/* A fatal error: -EINVAL, exactly this line, cfg released and zeroed. */
static void expect_fatal(const struct env *env, const char *line)
{
    static const struct fw_config zero;

    ck_assert_int_eq(load(env), -EINVAL);
    ck_assert_str_eq(err, line);
    ck_assert_int_eq(memcmp(&cfg, &zero, sizeof(cfg)), 0);
}

static void expect_one_warning(const char *line)
{
    ck_assert_int_eq(nwarn, 1);
    ck_assert_str_eq(warnings[0], line);
}

/* Loads the table and checks one field: LOAD_EQ(port, 8080, FP);
 * LOAD_WARNS also counts the warnings of that load. */
#define LOAD_EQ(field, want, ...)                                            \
    do {                                                                     \
        expect_ok(ENV(__VA_ARGS__));                                         \
        ck_assert_int_eq(cfg.field, want);                                   \
    } while (0)
#define LOAD_WARNS(n, field, want, ...)                                      \
    do {                                                                     \
        LOAD_EQ(field, want, __VA_ARGS__);                                   \
        ck_assert_int_eq(nwarn, n);                                          \
    } while (0)
#define LOAD_STR(field, want, ...)                                           \
    do {                                                                     \
        expect_ok(ENV(__VA_ARGS__));                                         \
        ck_assert_str_eq(cfg.field, want);                                   \
    } while (0)

/* ---- defaults ------------------------------------------------------------ */

START_TEST(streaming_defaults_match_the_spec)
{
    LOAD_EQ(mode, FW_MODE_STREAMING, FP);
    ck_assert_ptr_null(cfg.mode_trigger);
    ck_assert_str_eq(cfg.fprocess, "cat");
    ck_assert_str_eq(cfg.argv[0], "cat");
    ck_assert_ptr_null(cfg.argv[1]);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_int_eq(cfg.metrics_port, 8081);
    ck_assert_ptr_null(cfg.upstream_url);
    ck_assert_str_eq(cfg.content_type, "application/octet-stream");
    ck_assert_ptr_null(cfg.ready_path);
    ck_assert_str_eq(cfg.static_path, "/home/app/public");
    ck_assert_str_eq(cfg.tmpdir, "/tmp");
    ck_assert_int_eq(cfg.exec_timeout_ms, 30000);
    ck_assert_int_eq(cfg.read_timeout_ms, 30000);
    ck_assert_int_eq(cfg.write_timeout_ms, 30000);
    ck_assert_int_eq(cfg.healthcheck_interval_ms, 30000);
    ck_assert_int_eq(cfg.max_inflight, 0);
    ck_assert_int_eq(cfg.log_buffer_size, 65536);
    ck_assert(!cfg.suppress_lock && cfg.prefix_logs && !cfg.log_callid);
    ck_assert(!cfg.http_buffer_req_body && cfg.cgi_headers);
    ck_assert(!cfg.marshal_request && !cfg.combine_output);
    ck_assert(!cfg.write_debug && !cfg.debug_headers);
    ck_assert_int_eq(nwarn, 0);
}
END_TEST

START_TEST(classic_defaults_differ_as_the_spec_says)
{
    LOAD_EQ(mode, FW_MODE_CLASSIC, FP, { "mode", "classic" });
    ck_assert_ptr_null(cfg.mode_trigger);
    ck_assert_int_eq(cfg.exec_timeout_ms, 0);
    ck_assert_ptr_null(cfg.content_type);
    ck_assert(cfg.combine_output && cfg.cgi_headers);
    ck_assert(!cfg.write_debug && !cfg.marshal_request && !cfg.debug_headers);
    ck_assert_int_eq(cfg.write_timeout_ms, 30000);
    ck_assert_int_eq(cfg.read_timeout_ms, 30000);
}
END_TEST

START_TEST(serializing_defaults_do_not_combine_output)
{
    LOAD_EQ(mode, FW_MODE_SERIALIZING, FP, { "mode", "serializing" });
    ck_assert(!cfg.combine_output);
    ck_assert_int_eq(cfg.exec_timeout_ms, 30000);
    ck_assert_str_eq(cfg.content_type, "application/octet-stream");
}
END_TEST

START_TEST(static_mode_needs_no_fprocess_and_ignores_it)
{
    LOAD_EQ(mode, FW_MODE_STATIC, { "mode", "static" });
    ck_assert_ptr_null(cfg.fprocess);
    ck_assert_ptr_null(cfg.argv);
    ck_assert_str_eq(cfg.static_path, "/home/app/public");
    expect_ok(ENV({ "mode", "static" }, { "fprocess", "python3 -c 'x" },
                  { "static_path", "/srv/www" }));
    ck_assert_ptr_null(cfg.fprocess);
    ck_assert_ptr_null(cfg.argv);
    ck_assert_str_eq(cfg.static_path, "/srv/www");
}
END_TEST

/* ---- mode selection ------------------------------------------------------ */

static const struct {
    const char *name;
    enum fw_mode mode;
} modes[] = {
    { "streaming", FW_MODE_STREAMING }, { "serializing", FW_MODE_SERIALIZING },
    { "classic", FW_MODE_CLASSIC },     { "http", FW_MODE_HTTP },
    { "static", FW_MODE_STATIC },
};

START_TEST(each_mode_name_selects_its_mode)
{
    LOAD_EQ(mode, modes[_i].mode, FP, { "mode", modes[_i].name },
            { "upstream_url", "http://127.0.0.1:5000" });
    ck_assert_str_eq(fw_mode_name(modes[_i].mode), modes[_i].name);
    ck_assert_ptr_null(cfg.mode_trigger);
}
END_TEST

static const char *const bad_modes[] = {
    "inproc", "afterburn", "Streaming", "classic ", "x",
};

START_TEST(unsupported_mode_is_fatal)
{
    char line[200];

    snprintf(line, sizeof(line),
             "mode: unsupported mode \"%s\" (expected streaming, "
             "serializing, classic, http or static)", bad_modes[_i]);
    expect_fatal(ENV(FP, { "mode", bad_modes[_i] }), line);
}
END_TEST

START_TEST(empty_mode_means_streaming)
{
    LOAD_EQ(mode, FW_MODE_STREAMING, FP, { "mode", "" });
    ck_assert_str_eq(fw_mode_name(99), "unknown");
}
END_TEST

/* Spec D1, in the order it lists the variables. */
static const char *const triggers[] = {
    "write_debug", "combine_output", "marshal_request", "debug_headers",
    "cgi_headers",
};

START_TEST(classic_variable_without_mode_selects_classic)
{
    LOAD_EQ(mode, FW_MODE_CLASSIC, FP, { triggers[_i], "false" });
    ck_assert_str_eq(cfg.mode_trigger, triggers[_i]);
    ck_assert_int_eq(cfg.exec_timeout_ms, 0);
    LOAD_EQ(mode, FW_MODE_STREAMING, FP, { triggers[_i], "" });
    ck_assert_ptr_null(cfg.mode_trigger);
    LOAD_EQ(mode, FW_MODE_STREAMING, FP, { triggers[_i], "true" },
            { "mode", "streaming" });
    ck_assert_ptr_null(cfg.mode_trigger);
    LOAD_EQ(mode, FW_MODE_SERIALIZING, FP, { triggers[_i], "true" },
            { "mode", "serializing" });
}
END_TEST

START_TEST(first_trigger_in_spec_order_is_reported)
{
    LOAD_STR(mode_trigger, "write_debug", FP, { "cgi_headers", "true" },
             { "write_debug", "x" });
    LOAD_STR(mode_trigger, "combine_output", FP, { "debug_headers", "1" },
             { "combine_output", "1" });
}
END_TEST

/* ---- fprocess ------------------------------------------------------------ */

START_TEST(function_process_wins_over_fprocess)
{
    LOAD_STR(fprocess, "wc -l", { "fprocess", "cat" },
             { "function_process", "wc -l" });
    ck_assert_str_eq(cfg.argv[0], "wc");
    ck_assert_str_eq(cfg.argv[1], "-l");
    ck_assert_ptr_null(cfg.argv[2]);
    LOAD_STR(fprocess, "env", { "function_process", "env" });
    LOAD_STR(fprocess, "cat", { "fprocess", "cat" },
             { "function_process", "" });
}
END_TEST

START_TEST(missing_fprocess_is_fatal)
{
    static const char line[] = "fprocess: missing (set fprocess or "
                               "function_process to the command to run)";

    expect_fatal(ENV({ "port", "8080" }), line);
    expect_fatal(ENV({ "fprocess", "" }), line);
    expect_fatal(ENV({ "mode", "http" }, { "upstream_url", "http://a:1" }),
                 line);
    expect_fatal(ENV({ "mode", "classic" }), line);
    expect_fatal(ENV({ "fprocess", " \t " }),
                 "fprocess: \" \\x09 \" holds no command (expected the "
                 "command to run)");
}
END_TEST

START_TEST(bad_fprocess_quoting_is_fatal)
{
    expect_fatal(ENV({ "fprocess", "python3 -c 'x" }),
                 "fprocess: unbalanced quote in \"python3 -c 'x\"");
    expect_fatal(ENV({ "function_process", "sh -c \"echo" }),
                 "function_process: unbalanced quote in \"sh -c \\\"echo\"");
    expect_fatal(ENV({ "fprocess", "cat \\" }),
                 "fprocess: trailing backslash in \"cat \\\\\"");
}
END_TEST

START_TEST(fprocess_is_split_into_words)
{
    LOAD_STR(fprocess, "python3 -c 'print(1)'  -u",
             { "fprocess", "python3 -c 'print(1)'  -u" });
    ck_assert_str_eq(cfg.argv[0], "python3");
    ck_assert_str_eq(cfg.argv[1], "-c");
    ck_assert_str_eq(cfg.argv[2], "print(1)");
    ck_assert_str_eq(cfg.argv[3], "-u");
    ck_assert_ptr_null(cfg.argv[4]);
}
END_TEST

/* Values in messages are quoted and cut, so a message is one line. */
START_TEST(messages_stay_on_one_short_line)
{
    char longer[300];
    int k;

    expect_fatal(ENV({ "fprocess", "a\n'b" }),
                 "fprocess: unbalanced quote in \"a\\x0a'b\"");
    memset(longer, 'a', sizeof(longer));
    longer[0] = '\'';
    longer[sizeof(longer) - 1] = '\0';
    ck_assert_int_eq(load(ENV({ "fprocess", longer })), -EINVAL);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_uint_lt(strlen(err), 140);
    ck_assert_ptr_nonnull(strstr(err, "aaa...\""));
    /* Escapes take four bytes: the cut must leave room for them at
     * every alignment. */
    for (k = 0; k < 4; k++) {
        memset(longer + 1, 'a', k);
        memset(longer + 1 + k, '\x01', sizeof(longer) - 2 - k);
        ck_assert_int_eq(load(ENV({ "fprocess", longer })), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "\\x01...\""));
        ck_assert_uint_lt(strlen(err), 140);
    }
}
END_TEST

/* ---- upstream_url and http mode ------------------------------------------ */

#define HTTP_MODE { "mode", "http" }

START_TEST(upstream_url_is_required_in_http_mode)
{
    static const char line[] = "upstream_url: missing (set upstream_url or "
                               "http_upstream_url to http://host:port)";

    expect_fatal(ENV(FP, HTTP_MODE), line);
    expect_fatal(ENV(FP, HTTP_MODE, { "upstream_url", "" }), line);
}
END_TEST

START_TEST(http_upstream_url_wins_over_upstream_url)
{
    LOAD_STR(upstream_url, "http://b:2", FP, HTTP_MODE,
             { "upstream_url", "http://a:1" },
             { "http_upstream_url", "http://b:2" });
    LOAD_STR(upstream_url, "http://b:2", FP, HTTP_MODE,
             { "http_upstream_url", "http://b:2" });
    LOAD_STR(upstream_url, "http://a:1", FP, HTTP_MODE,
             { "upstream_url", "http://a:1" });
    expect_fatal(ENV(FP, HTTP_MODE, { "upstream_url", "http://a:1" },
                     { "http_upstream_url", "b:2" }),
                 "http_upstream_url: \"b:2\" is not http://host:port[/path]");
}
END_TEST

static const char *const good_urls[][2] = {
    { "http://127.0.0.1:5000", "http://127.0.0.1:5000" },
    { "http://127.0.0.1:5000/", "http://127.0.0.1:5000" },
    { "http://localhost:3000//", "http://localhost:3000" },
    { "http://app:8082/api/v1/", "http://app:8082/api/v1" },
    { "HTTP://Host:1/Path", "http://Host:1/Path" },
    { "http://[::1]:65535", "http://[::1]:65535" },
    { "http://my_host.local:080", "http://my_host.local:080" },
};

START_TEST(good_upstream_url_is_kept_without_trailing_slash)
{
    LOAD_STR(upstream_url, good_urls[_i][1], FP, HTTP_MODE,
             { "upstream_url", good_urls[_i][0] });
}
END_TEST

static const char *const bad_urls[] = {
    "ftp://x", "https://a:443", "http://", "http://host", "http://host:",
    "http://:80", "http://host:0", "http://host:65536", "http://host:80x",
    "http://user@host:1", "http://h:1?q=1", "http://h:1/a#b", "http://[::1",
    "http://[]:1", "http://h:1/a b", "127.0.0.1:5000", "http:/h:1",
};

START_TEST(bad_upstream_url_is_fatal)
{
    char line[200];

    snprintf(line, sizeof(line),
             "upstream_url: \"%s\" is not http://host:port[/path]",
             bad_urls[_i]);
    expect_fatal(ENV(FP, HTTP_MODE, { "upstream_url", bad_urls[_i] }), line);
}
END_TEST

START_TEST(upstream_url_is_ignored_outside_http_mode)
{
    expect_ok(ENV(FP, { "upstream_url", "ftp://x" }));
    ck_assert_ptr_null(cfg.upstream_url);
}
END_TEST

static const struct {
    const char *buffer_http, *http_buffer_req_body;
    bool want;
} buffering[] = {
    { NULL, NULL, false },     { NULL, "true", true },
    { "1", NULL, true },       { "true", "false", true },
    { "false", "1", true },    { "yes", "TRUE", false },
    { "", "", false },
};

START_TEST(either_buffering_variable_enables_buffering)
{
    /* A NULL value reads as unset. */
    struct env env[] = {
        FP, HTTP_MODE, { "upstream_url", "http://a:1" },
        { "buffer_http", buffering[_i].buffer_http },
        { "http_buffer_req_body", buffering[_i].http_buffer_req_body },
        { NULL, NULL },
    };

    expect_ok(env);
    ck_assert_int_eq(cfg.http_buffer_req_body, buffering[_i].want);
    env[1].value = "streaming";
    expect_ok(env);
    ck_assert(!cfg.http_buffer_req_body);
}
END_TEST

/* ---- strings ------------------------------------------------------------- */

START_TEST(content_type_is_kept_and_empty_means_default)
{
    LOAD_STR(content_type, "text/plain", FP, { "content_type", "text/plain" });
    LOAD_STR(content_type, "application/octet-stream", FP,
             { "content_type", "" });
    LOAD_STR(content_type, "a/b", FP, { "mode", "classic" },
             { "content_type", "a/b" });
    expect_ok(ENV(FP, { "mode", "classic" }, { "content_type", "" }));
    ck_assert_ptr_null(cfg.content_type);
}
END_TEST

START_TEST(paths_are_kept)
{
    LOAD_STR(ready_path, "/ready", FP, { "ready_path", "/ready" },
             { "TMPDIR", "/run" }, { "static_path", "/srv" });
    ck_assert_str_eq(cfg.tmpdir, "/run");
    /* static_path is read in static mode only. */
    ck_assert_str_eq(cfg.static_path, "/home/app/public");
    expect_ok(ENV(FP, { "ready_path", "" }, { "TMPDIR", "" }));
    ck_assert_ptr_null(cfg.ready_path);
    ck_assert_str_eq(cfg.tmpdir, "/tmp");
}
END_TEST

/* ---- durations in the configuration -------------------------------------- */

START_TEST(exec_timeout_reads_durations)
{
    LOAD_EQ(exec_timeout_ms, 10000, FP, { "exec_timeout", "10" });
    LOAD_EQ(exec_timeout_ms, 60000, FP, { "exec_timeout", "1m" });
    LOAD_EQ(exec_timeout_ms, 0, FP, { "exec_timeout", "0" });
    LOAD_WARNS(0, exec_timeout_ms, 0, FP, { "exec_timeout", "-5s" });
    LOAD_EQ(exec_timeout_ms, 500, FP, { "exec_timeout", "500ms" },
            { "mode", "http" }, { "upstream_url", "http://a:1" });
}
END_TEST

START_TEST(bad_exec_timeout_falls_back_with_a_warning)
{
    LOAD_EQ(exec_timeout_ms, 30000, FP, { "exec_timeout", "abc" });
    expect_one_warning("exec_timeout: \"abc\" is not a duration (expected "
                       "30, 500ms or 1m30s); using 30s");
    LOAD_EQ(exec_timeout_ms, 0, FP, { "exec_timeout", "1x" },
            { "mode", "classic" });
    expect_one_warning("exec_timeout: \"1x\" is not a duration (expected "
                       "30, 500ms or 1m30s); using 0s");
}
END_TEST

START_TEST(read_timeout_must_be_positive)
{
    LOAD_EQ(read_timeout_ms, 15000, FP, { "read_timeout", "15s" });
    LOAD_EQ(read_timeout_ms, 30000, FP, { "read_timeout", "0" });
    expect_one_warning("read_timeout: \"0\" must be greater than 0; "
                       "using 30s");
    LOAD_WARNS(1, read_timeout_ms, 30000, FP, { "read_timeout", "-1s" });
    LOAD_WARNS(1, read_timeout_ms, 30000, FP, { "read_timeout", "1s " });
}
END_TEST

static const char *const fork_modes_but_classic[] = {
    "streaming", "serializing", "http", "static",
};

START_TEST(zero_write_timeout_is_fatal_outside_classic)
{
    expect_fatal(ENV(FP, { "write_timeout", "0" },
                     { "mode", fork_modes_but_classic[_i] },
                     { "upstream_url", "http://a:1" }),
                 "write_timeout: must be greater than 0 outside "
                 "mode=classic (got \"0\")");
    expect_fatal(ENV(FP, { "write_timeout", "-1s" },
                     { "mode", fork_modes_but_classic[_i] },
                     { "upstream_url", "http://a:1" }),
                 "write_timeout: must be greater than 0 outside "
                 "mode=classic (got \"-1s\")");
}
END_TEST

START_TEST(classic_accepts_zero_write_timeout)
{
    LOAD_EQ(write_timeout_ms, 0, FP, { "write_timeout", "0s" },
            { "mode", "classic" });
    ck_assert_int_eq(cfg.healthcheck_interval_ms, 0);
    LOAD_EQ(write_timeout_ms, 0, FP, { "write_timeout", "-3s" },
            { "cgi_headers", "1" });
    LOAD_EQ(write_timeout_ms, 120000, FP, { "write_timeout", "2m" });
    LOAD_WARNS(1, write_timeout_ms, 30000, FP, { "write_timeout", "soon" });
}
END_TEST

START_TEST(healthcheck_interval_defaults_to_write_timeout)
{
    LOAD_EQ(healthcheck_interval_ms, 10000, FP, { "write_timeout", "10" });
    LOAD_EQ(healthcheck_interval_ms, 5000, FP, { "write_timeout", "10" },
            { "healthcheck_interval", "5s" });
    LOAD_EQ(healthcheck_interval_ms, 0, FP, { "healthcheck_interval", "0" });
    LOAD_EQ(healthcheck_interval_ms, 90000, FP, { "write_timeout", "90s" },
            { "healthcheck_interval", "later" });
    expect_one_warning("healthcheck_interval: \"later\" is not a duration "
                       "(expected 30, 500ms or 1m30s); using 1m30s");
}
END_TEST

/* ---- integers ------------------------------------------------------------ */

START_TEST(max_inflight_reads_non_negative_integers)
{
    LOAD_EQ(max_inflight, 5, FP, { "max_inflight", "5" });
    LOAD_EQ(max_inflight, 3, FP, { "max_inflight", "+3" });
    LOAD_EQ(max_inflight, 0, FP, { "max_inflight", "-1" });
    expect_one_warning("max_inflight: \"-1\" is not a non-negative integer; "
                       "using 0");
    LOAD_WARNS(1, max_inflight, 0, FP, { "max_inflight", "1.5" });
    LOAD_WARNS(1, max_inflight, 0, FP, { "max_inflight", " 5" });
}
END_TEST

START_TEST(port_reads_1_to_65535)
{
    LOAD_EQ(port, 9090, FP, { "port", "9090" });
    LOAD_EQ(port, 1, FP, { "port", "1" });
    LOAD_EQ(port, 65535, FP, { "port", "65535" });
    LOAD_EQ(port, 8080, FP, { "port", "http" });
    expect_one_warning("port: \"http\" is not a non-negative integer; "
                       "using 8080");
    LOAD_WARNS(1, port, 8080, FP, { "port", "-1" });
    LOAD_WARNS(1, port, 8080, FP, { "port", "99999999999999999999" });
    expect_fatal(ENV(FP, { "port", "0" }),
                 "port: \"0\" is out of range (expected 1..65535)");
    expect_fatal(ENV(FP, { "port", "65536" }),
                 "port: \"65536\" is out of range (expected 1..65535)");
}
END_TEST

START_TEST(metrics_port_zero_turns_metrics_off)
{
    LOAD_EQ(metrics_port, 0, FP, { "metrics_port", "0" });
    LOAD_EQ(metrics_port, 9100, FP, { "metrics_port", "9100" });
    LOAD_EQ(metrics_port, 8081, FP, { "metrics_port", "x" });
    expect_one_warning("metrics_port: \"x\" is not a non-negative integer; "
                       "using 8081");
    LOAD_EQ(metrics_port, 8081, FP, { "metrics_port", "-5" });
    expect_fatal(ENV(FP, { "metrics_port", "70000" }),
                 "metrics_port: \"70000\" is out of range (expected "
                 "0..65535, 0 = off)");
}
END_TEST

START_TEST(log_buffer_size_must_be_an_integer)
{
    LOAD_EQ(log_buffer_size, 1024, FP, { "log_buffer_size", "1024" });
    LOAD_EQ(log_buffer_size, -1, FP, { "log_buffer_size", "-1" });
    LOAD_WARNS(0, log_buffer_size, 65536, FP, { "log_buffer_size", "" });
    expect_fatal(ENV(FP, { "log_buffer_size", "64k" }),
                 "log_buffer_size: \"64k\" is not an integer (expected "
                 "bytes; negative = unlimited)");
    expect_fatal(ENV(FP, { "log_buffer_size", "1.5" }),
                 "log_buffer_size: \"1.5\" is not an integer (expected "
                 "bytes; negative = unlimited)");
}
END_TEST

START_TEST(sandbox_sizes_take_units)
{
    LOAD_EQ(fprocess_max_memory, 0, FP);
    LOAD_EQ(fprocess_max_memory, 4096, FP, { "fprocess_max_memory", "4096" });
    LOAD_EQ(fprocess_max_memory, 64 << 20, FP,
            { "fprocess_max_memory", "64Mi" });
    LOAD_EQ(fprocess_max_memory, 512000000, FP,
            { "fprocess_max_memory", "512M" });
    LOAD_EQ(fprocess_max_memory, INT64_C(1) << 30, FP,
            { "fprocess_max_memory", "1Gi" });
    LOAD_EQ(fprocess_max_memory, 2000, FP, { "fprocess_max_memory", "2k" });
    expect_fatal(ENV(FP, { "fprocess_max_memory", "64MB" }),
                 "fprocess_max_memory: \"64MB\" is not a size (expected "
                 "bytes, or 64Mi, 512M, 1Gi)");
    expect_fatal(ENV(FP, { "fprocess_max_memory", "-1" }),
                 "fprocess_max_memory: \"-1\" is not a size (expected "
                 "bytes, or 64Mi, 512M, 1Gi)");
    expect_fatal(ENV(FP, { "fprocess_max_memory", "99999999999Gi" }),
                 "fprocess_max_memory: \"99999999999Gi\" is not a size "
                 "(expected bytes, or 64Mi, 512M, 1Gi)");
}
END_TEST

START_TEST(sandbox_counts_are_strict)
{
    LOAD_EQ(fprocess_max_open_files, 0, FP);
    LOAD_EQ(fprocess_max_open_files, 64, FP,
            { "fprocess_max_open_files", "64" });
    LOAD_EQ(fprocess_max_cpu_seconds, 5, FP,
            { "fprocess_max_cpu_seconds", "5" });
    LOAD_EQ(fprocess_max_processes, 9, FP,
            { "fprocess_max_processes", "9" });
    /* A typo must not silently lift a limit. */
    expect_fatal(ENV(FP, { "fprocess_max_cpu_seconds", "1m" }),
                 "fprocess_max_cpu_seconds: \"1m\" is not a non-negative "
                 "integer");
    expect_fatal(ENV(FP, { "fprocess_max_processes", "-2" }),
                 "fprocess_max_processes: \"-2\" is not a non-negative "
                 "integer");
}
END_TEST

START_TEST(sandbox_strings_and_grace)
{
    LOAD_EQ(exec_timeout_grace_ms, 0, FP);
    LOAD_EQ(exec_timeout_grace_ms, 2500, FP, { "exec_timeout_grace", "2.5s" });
    LOAD_EQ(fprocess_no_new_privs, false, FP);
    LOAD_EQ(fprocess_no_new_privs, true, FP,
            { "fprocess_no_new_privs", "true" });
    LOAD_STR(fprocess_user, "app:app", FP, { "fprocess_user", "app:app" });
    LOAD_STR(fprocess_workdir, "/home/app", FP,
             { "fprocess_workdir", "/home/app" });
}
END_TEST

START_TEST(log_format_is_text_or_json)
{
    LOAD_EQ(log_json, false, FP);
    LOAD_EQ(log_json, false, FP, { "log_format", "text" });
    LOAD_EQ(log_json, true, FP, { "log_format", "json" });
    expect_fatal(ENV(FP, { "log_format", "JSON" }),
                 "log_format: unsupported format \"JSON\" (expected text "
                 "or json)");
}
END_TEST

START_TEST(log_requests_is_a_go_boolean_defaulting_to_true)
{
    LOAD_WARNS(0, log_requests, true, FP);
    LOAD_WARNS(0, log_requests, false, FP, { "log_requests", "0" });
    LOAD_WARNS(0, log_requests, false, FP, { "log_requests", "False" });
    LOAD_WARNS(1, log_requests, true, FP, { "log_requests", "off" });
}
END_TEST

/* ---- booleans ------------------------------------------------------------ */

static const struct {
    const char *value;
    bool want;
} plain_bools[] = {
    { "true", true },  { "1", true },   { "TRUE", false }, { "True", false },
    { "yes", false },  { "0", false },  { "false", false }, { "t", false },
    { " true", false }, { "", false },
};

START_TEST(plain_booleans_are_true_or_1)
{
    LOAD_WARNS(0, suppress_lock, plain_bools[_i].want, FP,
               { "suppress_lock", plain_bools[_i].value });
}
END_TEST

static const struct {
    const char *value;
    int want; /* -1: unparsable, the default with a warning */
} go_bools[] = {
    { "1", 1 },  { "t", 1 },  { "T", 1 },  { "TRUE", 1 },  { "true", 1 },
    { "True", 1 }, { "0", 0 }, { "f", 0 }, { "F", 0 },     { "FALSE", 0 },
    { "false", 0 }, { "False", 0 }, { "yes", -1 }, { "tRUE", -1 },
    { "2", -1 },
};

START_TEST(prefix_logs_and_log_callid_use_go_booleans)
{
    expect_ok(ENV(FP, { "prefix_logs", go_bools[_i].value },
                  { "log_callid", go_bools[_i].value }));
    if (go_bools[_i].want < 0) {
        ck_assert(cfg.prefix_logs);
        ck_assert(!cfg.log_callid);
        ck_assert_int_eq(nwarn, 2);
        ck_assert_ptr_nonnull(strstr(warnings[0], "prefix_logs: \""));
        ck_assert_ptr_nonnull(strstr(warnings[0], "is not a boolean "
                                     "(expected true or false); using true"));
        ck_assert_ptr_nonnull(strstr(warnings[1], "using false"));
    } else {
        ck_assert_int_eq(cfg.prefix_logs, go_bools[_i].want);
        ck_assert_int_eq(cfg.log_callid, go_bools[_i].want);
        ck_assert_int_eq(nwarn, 0);
    }
}
END_TEST

START_TEST(log_call_id_is_an_alias_of_log_callid)
{
    expect_ok(ENV(FP, { "log_call_id", "true" }));
    ck_assert(cfg.log_callid);
    expect_ok(ENV(FP, { "log_call_id", "true" }, { "log_callid", "false" }));
    ck_assert(!cfg.log_callid);
    expect_ok(ENV(FP, { "log_call_id", "maybe" }));
    ck_assert(!cfg.log_callid);
    expect_one_warning("log_call_id: \"maybe\" is not a boolean (expected "
                       "true or false); using false");
}
END_TEST

/* The five classic-only options all set to one value, and what each
 * reads as in each mode: exact "true" in classic, "true" or "1" where
 * serializing reads them, ignored (the default) elsewhere. */
static const struct {
    const char *mode, *value;
    bool cgi_headers, write_debug, marshal_request, debug_headers, combine;
} options[] = {
    { "classic", "1", false, false, false, false, false },
    { "classic", "true", true, true, true, true, true },
    { "classic", "false", false, false, false, false, false },
    { "", "1", false, false, false, false, false },
    { "", "true", true, true, true, true, true },
    { "serializing", "1", true, true, true, false, true },
    { "serializing", "false", true, false, false, false, false },
    { "streaming", "true", true, false, false, false, false },
    { "http", "true", true, false, false, false, false },
};

START_TEST(classic_options_read_per_mode)
{
    const char *v = options[_i].value;

    expect_ok(ENV(FP, { "mode", options[_i].mode }, { "cgi_headers", v },
                  { "write_debug", v }, { "marshal_request", v },
                  { "debug_headers", v }, { "combine_output", v },
                  { "upstream_url", "http://a:1" }));
    ck_assert_int_eq(cfg.cgi_headers, options[_i].cgi_headers);
    ck_assert_int_eq(cfg.write_debug, options[_i].write_debug);
    ck_assert_int_eq(cfg.marshal_request, options[_i].marshal_request);
    ck_assert_int_eq(cfg.debug_headers, options[_i].debug_headers);
    ck_assert_int_eq(cfg.combine_output, options[_i].combine);
}
END_TEST

START_TEST(jwt_auth_refuses_to_start)
{
    static const char line[] = "jwt_auth: not supported by fwatchdog "
                               "(refusing to serve unauthenticated)";

    expect_fatal(ENV(FP, { "jwt_auth", "true" }), line);
    expect_fatal(ENV(FP, { "jwt_auth", "1" }, { "mode", "classic" }), line);
    expect_ok(ENV(FP, { "jwt_auth", "false" }, { "jwt_auth_debug", "true" },
                  { "jwt_auth_local", "true" }));
    ck_assert_int_eq(nwarn, 0);
}
END_TEST

/* ---- the API around load ------------------------------------------------- */

START_TEST(small_or_missing_buffers_are_safe)
{
    void *bad = (void *)ENV(FP, { "mode", "x" });
    char small[8];

    memset(small, 'x', sizeof(small));
    ck_assert_int_eq(fw_config_load(&cfg, table_lookup, bad, NULL, small,
                                    sizeof(small)), -EINVAL);
    ck_assert_str_eq(small, "mode: u");
    ck_assert_int_eq(fw_config_load(&cfg, table_lookup, bad, NULL, NULL, 0),
                     -EINVAL);
    ck_assert_int_eq(fw_config_load(&cfg, table_lookup, bad, NULL, small, 0),
                     -EINVAL);
    ck_assert_str_eq(small, "mode: u");
    ck_assert_int_eq(fw_config_load(&cfg, table_lookup, (void *)ENV(FP,
                     { "port", "x" }), NULL, NULL, 0), 0);
    ck_assert_int_eq(cfg.port, 8080);
}
END_TEST

START_TEST(release_frees_and_zeroes)
{
    static const struct fw_config zero;

    expect_ok(ENV(FP, { "ready_path", "/r" }, { "mode", "static" }));
    fw_config_release(&cfg);
    ck_assert_int_eq(memcmp(&cfg, &zero, sizeof(cfg)), 0);
    fw_config_release(&cfg);
    ck_assert_int_eq(memcmp(&cfg, &zero, sizeof(cfg)), 0);
    expect_fatal(ENV(FP, { "ready_path", "/r" }, { "jwt_auth", "1" }),
                 "jwt_auth: not supported by fwatchdog (refusing to serve "
                 "unauthenticated)");
    ck_assert_ptr_null(cfg.ready_path);
}
END_TEST

START_TEST(usage_lists_every_variable_and_option)
{
    static const char *const words[] = {
        "fprocess", "function_process", "mode", "port", "upstream_url",
        "http_upstream_url", "http_buffer_req_body", "buffer_http",
        "content_type", "exec_timeout", "read_timeout", "write_timeout",
        "healthcheck_interval", "suppress_lock", "max_inflight", "prefix_logs",
        "log_buffer_size", "log_callid", "log_call_id", "ready_path",
        "static_path", "cgi_headers", "marshal_request", "combine_output",
        "write_debug", "debug_headers", "jwt_auth", "jwt_auth_debug",
        "jwt_auth_local", "metrics_port", "TMPDIR", "-h, --help",
        "-version, --version", "-run-healthcheck, --run-healthcheck",
        "/home/app/public", "application/octet-stream", "65536", "8081",
        "= write_timeout",
    };
    char *text = NULL, *line;
    size_t len = 0, i;
    FILE *out = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(out);
    fw_config_usage(out);
    fclose(out);
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        ck_assert_msg(strstr(text, words[i]), "no %s in usage", words[i]);
    for (line = text; *line; line = strchr(line, '\n') + 1)
        ck_assert_uint_le(strcspn(line, "\n"), 80);
    free(text);
}
END_TEST

/* ---- fw_duration_parse --------------------------------------------------- */

static const struct {
    const char *in;
    int rc;
    int64_t ms;
} durations[] = {
    { "30", 0, 30000 }, { "0", 0, 0 }, { "500ms", 0, 500 },
    { "1m30s", 0, 90000 }, { "1.5h", 0, 5400000 }, { "-1s", 0, -1000 },
    { "10", 0, 10000 }, { "abc", -EINVAL, 0 }, { "1x", -EINVAL, 0 },
    { " 1s", -EINVAL, 0 }, { "1s ", -EINVAL, 0 }, { "", -EINVAL, 0 },
    { "\xc2\xb5s", -EINVAL, 0 }, { "2us", 0, 0 }, { "3\xc2\xb5s", 0, 0 },
    { "1h2m3.5s", 0, 3723500 }, { "3\xce\xbcs", 0, 0 },
    { "1500000us", 0, 1500 }, { "1500000000ns", 0, 1500 }, { "+30", 0, 30000 },
    { "+5s", 0, 5000 }, { "-5", -EINVAL, 0 }, { "-0", 0, 0 }, { "+0", 0, 0 },
    { ".5s", 0, 500 }, { "5.s", 0, 5000 }, { ".", -EINVAL, 0 },
    { ".s", -EINVAL, 0 }, { "-", -EINVAL, 0 }, { "+", -EINVAL, 0 },
    { "1", 0, 1000 }, { "-1.5h", 0, -5400000 }, { "5m0.5s", 0, 300500 },
    { "1h-1m", -EINVAL, 0 }, { "1H", -EINVAL, 0 }, { "1sec", -EINVAL, 0 },
    { "1e3s", -EINVAL, 0 }, { "0x10", -EINVAL, 0 },
    { "1.0000000001s", 0, 1000 }, { "2562047h", 0, INT64_C(9223369200000) },
    { "2562048h", -EINVAL, 0 }, { "9223372036", 0, INT64_C(9223372036000) },
    { "9223372037", -EINVAL, 0 }, { "99999999999999999999s", -EINVAL, 0 },
    { "0.0001s", 0, 0 }, { "1.999ms", 0, 1 }, { "-1.999ms", 0, -1 },
    { "00010", 0, 10000 },
    /* Fraction digits beyond what fits are dropped, as Go does. */
    { "1.00000000000000000000000001s", 0, 1000 },
    { "0.99999999999999999999999h", 0, 3600000 },
    /* Products that would wrap around 2^64 to small values. */
    { "18446744073709551620ns", -EINVAL, 0 }, { "5124096h", -EINVAL, 0 },
};

START_TEST(durations_parse_as_go_does)
{
    int64_t ms = -42;
    int rc = fw_duration_parse(durations[_i].in, &ms);

    ck_assert_msg(rc == durations[_i].rc, "\"%s\": rc %d", durations[_i].in,
                  rc);
    if (rc == 0)
        ck_assert_msg(ms == durations[_i].ms, "\"%s\": %lld ms",
                      durations[_i].in, (long long)ms);
    else
        ck_assert_int_eq(ms, -42);
}
END_TEST

static const struct {
    int64_t ms;
    const char *out;
} formats[] = {
    { 0, "0s" },           { 500, "500ms" },     { 30000, "30s" },
    { 90000, "1m30s" },    { 3600000, "1h0m0s" }, { 1500, "1.5s" },
    { 100, "100ms" },      { 1, "1ms" },         { 999, "999ms" },
    { 1000, "1s" },        { 60000, "1m0s" },    { 3723500, "1h2m3.5s" },
    { 1050, "1.05s" },     { 1001, "1.001s" },   { -1500, "-1.5s" },
    { -500, "-500ms" },    { 86400000, "24h0m0s" },
    { INT64_MIN, "-2562047788015h12m55.808s" },
};

START_TEST(durations_format_as_go_does)
{
    char out[32];

    memset(out, 'x', sizeof(out));
    fw_duration_format(formats[_i].ms, out, sizeof(out));
    ck_assert_str_eq(out, formats[_i].out);
}
END_TEST

START_TEST(duration_format_truncates_to_the_buffer)
{
    char out[4];

    fw_duration_format(90000, out, sizeof(out));
    ck_assert_str_eq(out, "1m3");
}
END_TEST

/* ---- fw_argv_split ------------------------------------------------------- */

#define W(...) { __VA_ARGS__, NULL }

static const struct {
    const char *line;
    const char *words[6];
} splits[] = {
    { "cat", W("cat") }, { "python3 index.py", W("python3", "index.py") },
    { "dotnet ./root.dll", W("dotnet", "./root.dll") },
    { "node  index.js", W("node", "index.js") },
    { "\tnode\tindex.js\t", W("node", "index.js") },
    { "  ls   -la  ", W("ls", "-la") },
    { "sh -c 'echo hi there'", W("sh", "-c", "echo hi there") },
    { "sh -c \"echo \\\"hi\\\" \\\\ \\$x\"",
      W("sh", "-c", "echo \"hi\" \\ \\$x") },
    { "a\\ b", W("a b") },          { "a\\'b", W("a'b") },
    { "'a'\"b\"c", W("abc") },      { "''", W("") },
    { "a '' \"\" b", W("a", "", "", "b") },
    { "'a\\b'", W("a\\b") },      { "'a\\\\b\\\"'", W("a\\\\b\\\"") },
    { "\"a'b\" 'a\"b'", W("a'b", "a\"b") },
    { "\"a\\nb\"", W("a\\nb") },     { "a\\\tb", W("a\tb") },
    { "'a  b'\t\"c\td\"", W("a  b", "c\td") },
};

START_TEST(argv_split_handles_words_quotes_and_escapes)
{
    const char *why = "unset";
    char **argv = fw_argv_split(splits[_i].line, &why);
    size_t n;

    ck_assert_ptr_nonnull(argv);
    ck_assert_ptr_null(why);
    for (n = 0; splits[_i].words[n]; n++) {
        ck_assert_ptr_nonnull(argv[n]);
        ck_assert_str_eq(argv[n], splits[_i].words[n]);
    }
    ck_assert_ptr_null(argv[n]);
    /* One block: the strings follow the pointer array. */
    for (n = 0; argv[n]; n++)
        ck_assert((char *)argv[n] > (char *)&argv[n]);
    free(argv);
}
END_TEST

static const struct {
    const char *line;
    const char *why;
} split_errors[] = {
    { "'abc", "unbalanced quote" },  { "\"abc", "unbalanced quote" },
    { "a \"b\\\"", "unbalanced quote" },
    { "python3 -c 'x", "unbalanced quote" },
    { "'a'b'", "unbalanced quote" }, { "abc\\", "trailing backslash" },
    { "", "empty" }, { "   ", "empty" }, { "\t \t", "empty" },
    { NULL, "empty" },
};

START_TEST(argv_split_rejects_bad_lines)
{
    const char *why = NULL;

    ck_assert_ptr_null(fw_argv_split(split_errors[_i].line, &why));
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, split_errors[_i].why);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define ADD(t) tcase_add_test(tc, t)
#define LOOP(t, table) tcase_add_loop_test(tc, t, 0, N(table))

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, NULL, teardown);
    suite_add_tcase(s, tc);
    return tc;
}

static void add_mode_tests(Suite *s)
{
    TCase *tc = tcase(s, "defaults");

    ADD(streaming_defaults_match_the_spec);
    ADD(classic_defaults_differ_as_the_spec_says);
    ADD(serializing_defaults_do_not_combine_output);
    ADD(static_mode_needs_no_fprocess_and_ignores_it);
    tc = tcase(s, "mode");
    LOOP(each_mode_name_selects_its_mode, modes);
    LOOP(unsupported_mode_is_fatal, bad_modes);
    ADD(empty_mode_means_streaming);
    LOOP(classic_variable_without_mode_selects_classic, triggers);
    ADD(first_trigger_in_spec_order_is_reported);
    tc = tcase(s, "fprocess");
    ADD(function_process_wins_over_fprocess);
    ADD(missing_fprocess_is_fatal);
    ADD(bad_fprocess_quoting_is_fatal);
    ADD(fprocess_is_split_into_words);
    ADD(messages_stay_on_one_short_line);
    tc = tcase(s, "http");
    ADD(upstream_url_is_required_in_http_mode);
    ADD(http_upstream_url_wins_over_upstream_url);
    LOOP(good_upstream_url_is_kept_without_trailing_slash, good_urls);
    LOOP(bad_upstream_url_is_fatal, bad_urls);
    ADD(upstream_url_is_ignored_outside_http_mode);
    LOOP(either_buffering_variable_enables_buffering, buffering);
}

static void add_value_tests(Suite *s)
{
    TCase *tc = tcase(s, "values");

    ADD(content_type_is_kept_and_empty_means_default);
    ADD(paths_are_kept);
    ADD(exec_timeout_reads_durations);
    ADD(bad_exec_timeout_falls_back_with_a_warning);
    ADD(read_timeout_must_be_positive);
    LOOP(zero_write_timeout_is_fatal_outside_classic, fork_modes_but_classic);
    ADD(classic_accepts_zero_write_timeout);
    ADD(healthcheck_interval_defaults_to_write_timeout);
    ADD(max_inflight_reads_non_negative_integers);
    ADD(port_reads_1_to_65535);
    ADD(metrics_port_zero_turns_metrics_off);
    ADD(log_buffer_size_must_be_an_integer);
    ADD(sandbox_sizes_take_units);
    ADD(sandbox_counts_are_strict);
    ADD(sandbox_strings_and_grace);
    ADD(log_format_is_text_or_json);
    ADD(log_requests_is_a_go_boolean_defaulting_to_true);
    tc = tcase(s, "booleans");
    LOOP(plain_booleans_are_true_or_1, plain_bools);
    LOOP(prefix_logs_and_log_callid_use_go_booleans, go_bools);
    ADD(log_call_id_is_an_alias_of_log_callid);
    LOOP(classic_options_read_per_mode, options);
    ADD(jwt_auth_refuses_to_start);
    tc = tcase(s, "api");
    ADD(small_or_missing_buffers_are_safe);
    ADD(release_frees_and_zeroes);
    ADD(usage_lists_every_variable_and_option);
    tc = tcase(s, "duration");
    LOOP(durations_parse_as_go_does, durations);
    LOOP(durations_format_as_go_does, formats);
    ADD(duration_format_truncates_to_the_buffer);
    tc = tcase(s, "argv");
    LOOP(argv_split_handles_words_quotes_and_escapes, splits);
    LOOP(argv_split_rejects_bad_lines, split_errors);
}

int main(void)
{
    Suite *s = suite_create("config");
    SRunner *sr;
    int failed;

    add_mode_tests(s);
    add_value_tests(s);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
