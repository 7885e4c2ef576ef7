/* check_metrics.c - metrics.c: the Prometheus text format (HELP and TYPE
 * before samples, well-formed sample lines), histogram buckets (le is
 * inclusive, cumulative counts, sum and count), label rendering and
 * ordering of the (code, method) series, the families each mode has, and
 * that metrics_port=0 counts nothing.
 */
#include <check.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "metrics.h"

#define MS (1000ull * 1000ull)
#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static struct fw_buf out;

static void setup(void)
{
    fw_metrics_reset(FW_MODE_STREAMING);
    fw_buf_init(&out, 0);
}

static void teardown(void)
{
    fw_buf_release(&out);
}

/* The exposition as a NUL-terminated string (owned by out). */
static const char *render(void)
{
    fw_buf_reset(&out);
    ck_assert_int_eq(fw_metrics_render(&out), 0);
    ck_assert_int_eq(fw_buf_append(&out, "", 1), 0);
    return out.data;
}

/* The value of the sample line that starts with "series ", or -1. */
static double sample(const char *series)
{
    const char *text = render();
    size_t n = strlen(series);
    const char *p = text;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return -1;
}

static bool has_line_starting(const char *prefix)
{
    const char *text = render();
    const char *p = text;
    size_t n = strlen(prefix);

    while ((p = strstr(p, prefix)) != NULL) {
        if (p == text || p[-1] == '\n')
            return true;
        p += n;
    }
    return false;
}

static bool name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

/* Checks one sample line: name, optional {k="v",...}, one space, a
 * number. Returns the length of the metric name. */
static size_t check_sample(const char *line, size_t len)
{
    size_t i = 0, name_len;
    char num[64];
    char *end;

    while (i < len && name_char(line[i], i == 0))
        i++;
    ck_assert_msg(i > 0, "no metric name: %.*s", (int)len, line);
    name_len = i;
    if (i < len && line[i] == '{') {
        i++;
        while (i < len && line[i] != '}') {
            size_t k = i;

            while (i < len && name_char(line[i], i == k))
                i++;
            ck_assert_msg(i > k && i + 1 < len && line[i] == '=' &&
                          line[i + 1] == '"', "bad label: %.*s", (int)len,
                          line);
            i += 2;
            while (i < len && line[i] != '"')
                i++;
            ck_assert_msg(i < len, "open label value: %.*s", (int)len, line);
            i++;
            if (i < len && line[i] == ',')
                i++;
        }
        ck_assert_msg(i < len, "open label set: %.*s", (int)len, line);
        i++;
    }
    ck_assert_msg(i < len && line[i] == ' ', "no value: %.*s", (int)len,
                  line);
    i++;
    ck_assert_uint_lt(len - i, sizeof(num));
    memcpy(num, line + i, len - i);
    num[len - i] = '\0';
    if (strcmp(num, "+Inf") != 0 && strcmp(num, "NaN") != 0) {
        strtod(num, &end);
        ck_assert_msg(*end == '\0' && end != num, "bad value: %.*s",
                      (int)len, line);
    }
    return name_len;
}

/* Every family: "# HELP name text", "# TYPE name type", then samples of
 * name (histograms: _bucket, _sum, _count); no name twice. */
static void check_format(const char *text)
{
    char family[128] = "", type[16] = "", seen[8192] = " ";
    const char *p = text;

    ck_assert_msg(*text != '\0', "empty exposition");
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len;

        ck_assert_msg(nl != NULL, "last line has no newline");
        len = (size_t)(nl - p);
        if (strncmp(p, "# HELP ", 7) == 0) {
            char key[140];

            ck_assert_int_eq(sscanf(p + 7, "%127s", family), 1);
            snprintf(key, sizeof(key), " %s ", family);
            ck_assert_msg(strstr(seen, key) == NULL, "family twice: %s",
                          family);
            ck_assert_uint_lt(strlen(seen) + strlen(key), sizeof(seen));
            strcat(seen, key + 1);
            ck_assert_uint_gt(len, 8 + strlen(family));  /* has a text */
            type[0] = '\0';
        } else if (strncmp(p, "# TYPE ", 7) == 0) {
            char name[128];

            ck_assert_int_eq(sscanf(p + 7, "%127s %15s", name, type), 2);
            ck_assert_str_eq(name, family);
            ck_assert_msg(strcmp(type, "counter") == 0 ||
                          strcmp(type, "gauge") == 0 ||
                          strcmp(type, "histogram") == 0, "type %s", type);
        } else {
            size_t n = check_sample(p, len);
            size_t f = strlen(family);

            ck_assert_msg(type[0] != '\0', "sample before TYPE: %.*s",
                          (int)len, p);
            ck_assert_msg(n >= f && strncmp(p, family, f) == 0,
                          "sample outside its family %s: %.*s", family,
                          (int)len, p);
            if (strcmp(type, "histogram") == 0)
                ck_assert_msg(strncmp(p + f, "_bucket{", 8) == 0 ||
                              strncmp(p + f, "_sum", 4) == 0 ||
                              strncmp(p + f, "_count", 6) == 0,
                              "histogram sample: %.*s", (int)len, p);
            else
                ck_assert_uint_eq(n, f);
            if (strcmp(type, "counter") == 0)
                ck_assert_msg(f > 6 && strcmp(family + f - 6, "_total") == 0,
                              "counter without _total: %s", family);
        }
        p = nl + 1;
    }
}

/* ---- format ----------------------------------------------------------- */

START_TEST(fresh_exposition_is_well_formed)
{
    check_format(render());
}
END_TEST

START_TEST(exposition_with_every_kind_is_well_formed)
{
    static const enum fw_mode modes[] = {
        FW_MODE_STREAMING, FW_MODE_CLASSIC, FW_MODE_HTTP, FW_MODE_STATIC,
    };
    size_t i;

    for (i = 0; i < 4; i++) {
        fw_metrics_reset(modes[i]);
        fw_metrics_request_begin();
        fw_metrics_request_end("GET", 200, uv_hrtime());
        fw_metrics_request_begin();
        fw_metrics_request_end("PROPFIND", 500, uv_hrtime() - 20 * MS);
        fw_metrics_child_started(MS);
        fw_metrics_child_exited(0);
        fw_metrics_upstream_conn(true);
        fw_metrics_upstream_error(FW_UPSTREAM_TIMEOUT);
        check_format(render());
    }
}
END_TEST

START_TEST(go_families_keep_their_names_types_and_help)
{
    fw_metrics_request_begin();
    fw_metrics_request_end("GET", 200, uv_hrtime());
    ck_assert(has_line_starting("# HELP http_requests_total total HTTP "
                                "requests processed\n# TYPE "
                                "http_requests_total counter\n"));
    ck_assert(has_line_starting("# HELP http_request_duration_seconds "
                                "Seconds spent serving HTTP requests.\n"
                                "# TYPE http_request_duration_seconds "
                                "histogram\n"));
    ck_assert(has_line_starting("# HELP http_requests_in_flight total HTTP "
                                "requests in-flight\n# TYPE "
                                "http_requests_in_flight gauge\n"));
}
END_TEST

START_TEST(request_vectors_appear_on_first_use_and_gauge_at_once)
{
    ck_assert(!has_line_starting("# HELP http_requests_total"));
    ck_assert(!has_line_starting("# HELP http_request_duration_seconds"));
    ck_assert(sample("http_requests_in_flight") == 0);
}
END_TEST

START_TEST(process_metrics_are_read_at_scrape_time)
{
    ck_assert(sample("process_resident_memory_bytes") > 0);
    ck_assert(sample("process_virtual_memory_bytes") > 0);
    ck_assert(sample("process_open_fds") >= 3);
    ck_assert(sample("process_max_fds") > 0);
    ck_assert(sample("process_cpu_seconds_total") >= 0);
    /* After 2020 and not in the future. */
    ck_assert(sample("process_start_time_seconds") > 1.5e9);
    ck_assert(sample("process_start_time_seconds") <= (double)time(NULL) + 1);
}
END_TEST

START_TEST(whole_numbers_print_in_full)
{
    const char *text = render();

    /* 2e+06 would parse, but Prometheus users read these. */
    ck_assert_ptr_null(strstr(strstr(text, "\nprocess_resident_memory_bytes "),
                              "e+"));
}
END_TEST

START_TEST(render_fails_cleanly_past_the_cap)
{
    struct fw_buf small;

    fw_buf_init(&small, 100);
    ck_assert_int_lt(fw_metrics_render(&small), 0);
    ck_assert(small.failed);
    fw_buf_release(&small);
}
END_TEST

/* ---- histograms ------------------------------------------------------- */

START_TEST(le_is_inclusive_and_buckets_cumulate)
{
    fw_metrics_child_started(MS);             /* exactly 0.001 */
    fw_metrics_child_started(20 * MS);        /* 0.02 */
    fw_metrics_child_started(10000 * MS);     /* 10 s: only +Inf */
    ck_assert(sample("fwatchdog_child_spawn_seconds_bucket{le=\"0.0005\"}")
              == 0);
    ck_assert(sample("fwatchdog_child_spawn_seconds_bucket{le=\"0.001\"}")
              == 1);
    ck_assert(sample("fwatchdog_child_spawn_seconds_bucket{le=\"0.01\"}")
              == 1);
    ck_assert(sample("fwatchdog_child_spawn_seconds_bucket{le=\"0.025\"}")
              == 2);
    ck_assert(sample("fwatchdog_child_spawn_seconds_bucket{le=\"0.25\"}")
              == 2);
    ck_assert(sample("fwatchdog_child_spawn_seconds_bucket{le=\"+Inf\"}")
              == 3);
    ck_assert(sample("fwatchdog_child_spawn_seconds_count") == 3);
    ck_assert_double_eq_tol(sample("fwatchdog_child_spawn_seconds_sum"),
                            10.021, 1e-9);
    ck_assert(sample("fwatchdog_children_started_total") == 3);
}
END_TEST

/* prometheus.DefBuckets, in Go's spelling. */
static const char *const def_buckets[] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
    "5", "10", "+Inf",
};

START_TEST(request_durations_use_go_default_buckets)
{
    char series[160];

    /* 300 ms ago: between 0.25 and 0.5, with room for a slow machine. */
    fw_metrics_request_begin();
    fw_metrics_request_end("POST", 200, uv_hrtime() - 300 * MS);
    snprintf(series, sizeof(series), "http_request_duration_seconds_bucket"
             "{code=\"200\",method=\"post\",le=\"%s\"}", def_buckets[_i]);
    ck_assert_msg(sample(series) == (_i >= 6 ? 1 : 0), "%s = %g", series,
                  sample(series));
}
END_TEST

START_TEST(request_duration_has_sum_and_count)
{
    double sum;

    fw_metrics_request_begin();
    fw_metrics_request_end("GET", 200, uv_hrtime() - 300 * MS);
    sum = sample("http_request_duration_seconds_sum{code=\"200\","
                 "method=\"get\"}");
    ck_assert(sum >= 0.3 && sum < 0.5);
    ck_assert(sample("http_request_duration_seconds_count{code=\"200\","
                     "method=\"get\"}") == 1);
}
END_TEST

/* ---- labels ----------------------------------------------------------- */

START_TEST(code_and_method_labels_render_as_go_does)
{
    fw_metrics_request_begin();
    fw_metrics_request_end("GET", 200, uv_hrtime());
    fw_metrics_request_begin();
    fw_metrics_request_end("GET", 200, uv_hrtime());
    fw_metrics_request_begin();
    fw_metrics_request_end("PROPFIND", 429, uv_hrtime());
    fw_metrics_request_begin();
    fw_metrics_request_end("DELETE", 101, uv_hrtime());
    ck_assert(sample("http_requests_total{code=\"200\",method=\"get\"}")
              == 2);
    ck_assert(sample("http_requests_total{code=\"429\",method=\"unknown\"}")
              == 1);
    ck_assert(sample("http_requests_total{code=\"101\",method=\"delete\"}")
              == 1);
    ck_assert(sample("http_requests_in_flight") == 0);
}
END_TEST

START_TEST(series_are_sorted_by_code_then_method)
{
    const char *text, *a, *b, *c;

    fw_metrics_request_begin();
    fw_metrics_request_end("POST", 500, uv_hrtime());
    fw_metrics_request_begin();
    fw_metrics_request_end("POST", 200, uv_hrtime());
    fw_metrics_request_begin();
    fw_metrics_request_end("GET", 500, uv_hrtime());
    text = render();
    a = strstr(text, "http_requests_total{code=\"200\",method=\"post\"}");
    b = strstr(text, "http_requests_total{code=\"500\",method=\"get\"}");
    c = strstr(text, "http_requests_total{code=\"500\",method=\"post\"}");
    ck_assert(a && b && c && a < b && b < c);
}
END_TEST

START_TEST(in_flight_follows_begin_and_end)
{
    fw_metrics_request_begin();
    fw_metrics_request_begin();
    ck_assert(sample("http_requests_in_flight") == 2);
    fw_metrics_request_end("GET", 200, uv_hrtime());
    ck_assert(sample("http_requests_in_flight") == 1);
}
END_TEST

START_TEST(exit_status_classes)
{
    fw_metrics_child_exited(0);                /* exit 0 */
    fw_metrics_child_exited(3 << 8);           /* exit 3 */
    fw_metrics_child_exited(1 << 8);           /* exit 1 */
    fw_metrics_child_exited(9);                /* SIGKILL */
    ck_assert(sample("fwatchdog_children_exited_total{class=\"0\"}") == 1);
    ck_assert(sample("fwatchdog_children_exited_total{class=\"nonzero\"}")
              == 2);
    ck_assert(sample("fwatchdog_children_exited_total{class=\"signal\"}")
              == 1);
}
END_TEST

START_TEST(fixed_label_values_are_there_from_the_start)
{
    ck_assert(sample("fwatchdog_children_killed_total{reason=\"timeout\"}")
              == 0);
    ck_assert(sample("fwatchdog_children_killed_total{reason="
                     "\"client_abort\"}") == 0);
    fw_metrics_child_killed(FW_KILL_CLIENT_ABORT);
    ck_assert(sample("fwatchdog_children_killed_total{reason="
                     "\"client_abort\"}") == 1);
}
END_TEST

START_TEST(counters_count)
{
    fw_metrics_rejected();
    fw_metrics_bytes_in(10);
    fw_metrics_bytes_in(5);
    fw_metrics_bytes_out(7);
    fw_metrics_child_failed();
    ck_assert(sample("fwatchdog_requests_rejected_total") == 1);
    ck_assert(sample("fwatchdog_request_bytes_total") == 15);
    ck_assert(sample("fwatchdog_response_bytes_total") == 7);
    ck_assert(sample("fwatchdog_children_failed_to_start_total") == 1);
    ck_assert(sample("fwatchdog_log_dropped_lines_total") >= 0);
}
END_TEST

/* ---- modes and off ---------------------------------------------------- */

START_TEST(http_mode_has_upstream_families_and_no_children)
{
    fw_metrics_reset(FW_MODE_HTTP);
    fw_metrics_upstream_conn(false);
    fw_metrics_upstream_conn(true);
    fw_metrics_upstream_conn(true);
    fw_metrics_upstream_error(FW_UPSTREAM_CONNECTION);
    ck_assert(sample("fwatchdog_upstream_requests_total{connection=\"new\"}")
              == 1);
    ck_assert(sample("fwatchdog_upstream_requests_total{connection="
                     "\"reused\"}") == 2);
    ck_assert(sample("fwatchdog_upstream_errors_total{kind=\"connection\"}")
              == 1);
    ck_assert(sample("fwatchdog_upstream_errors_total{kind=\"timeout\"}")
              == 0);
    ck_assert(!has_line_starting("fwatchdog_children_started_total"));
}
END_TEST

START_TEST(fork_modes_have_no_upstream_families)
{
    ck_assert(!has_line_starting("fwatchdog_upstream_requests_total"));
    ck_assert(has_line_starting("fwatchdog_children_started_total"));
}
END_TEST

START_TEST(metrics_port_zero_counts_nothing)
{
    struct fw_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = FW_MODE_STREAMING;
    cfg.port = 8080;
    cfg.metrics_port = 0;
    ck_assert_int_eq(fw_metrics_start(&cfg), 0);
    fw_metrics_request_begin();
    fw_metrics_request_end("GET", 200, uv_hrtime());
    fw_metrics_child_started(MS);
    ck_assert(!has_line_starting("http_requests_total"));
    ck_assert(sample("http_requests_in_flight") == 0);
    ck_assert(sample("fwatchdog_children_started_total") == 0);
}
END_TEST

START_TEST(metrics_port_equal_to_port_is_refused)
{
    struct fw_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = FW_MODE_STREAMING;
    cfg.port = 8080;
    cfg.metrics_port = 8080;
    ck_assert_int_lt(fw_metrics_start(&cfg), 0);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc;

    tc = tcase_create("format");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fresh_exposition_is_well_formed);
    tcase_add_test(tc, exposition_with_every_kind_is_well_formed);
    tcase_add_test(tc, go_families_keep_their_names_types_and_help);
    tcase_add_test(tc, request_vectors_appear_on_first_use_and_gauge_at_once);
    tcase_add_test(tc, process_metrics_are_read_at_scrape_time);
    tcase_add_test(tc, whole_numbers_print_in_full);
    tcase_add_test(tc, render_fails_cleanly_past_the_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("histogram");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, le_is_inclusive_and_buckets_cumulate);
    tcase_add_loop_test(tc, request_durations_use_go_default_buckets, 0,
                        N(def_buckets));
    tcase_add_test(tc, request_duration_has_sum_and_count);
    suite_add_tcase(s, tc);

    tc = tcase_create("labels");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, code_and_method_labels_render_as_go_does);
    tcase_add_test(tc, series_are_sorted_by_code_then_method);
    tcase_add_test(tc, in_flight_follows_begin_and_end);
    tcase_add_test(tc, exit_status_classes);
    tcase_add_test(tc, fixed_label_values_are_there_from_the_start);
    tcase_add_test(tc, counters_count);
    suite_add_tcase(s, tc);

    tc = tcase_create("modes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, http_mode_has_upstream_families_and_no_children);
    tcase_add_test(tc, fork_modes_have_no_upstream_families);
    tcase_add_test(tc, metrics_port_zero_counts_nothing);
    tcase_add_test(tc, metrics_port_equal_to_port_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
