/* metrics.c - the watchdog's metrics (spec 10): the Go watchdogs' http_*
 * families with their names, labels and buckets, fwatchdog_* families
 * for children, bytes, 429s and the upstream, and process_* read from
 * /proc at scrape time. Values live in static memory; the hooks are
 * called by server, response, runner and proxy. The listener and HTTP
 * parsing are server.c's (its admin listener); this file answers there.
 */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "log.h"
#include "server.h"

#define FW_METRICS_TIMEOUT_MS 500      /* spec 10: the listener's timeouts */
#define FW_METRICS_MAX_BYTES (4 << 20) /* cap of one exposition */
#define FW_MAX_SERIES 256              /* (code, method) pairs kept */
#define FW_MAX_BUCKETS 16

/* Bucket bounds, each with its "le" text as Go prints it. */
struct bounds {
    size_t n;
    double le[FW_MAX_BUCKETS];
    const char *text[FW_MAX_BUCKETS];
};

/* prometheus.DefBuckets, the Go watchdogs' request durations. */
static const struct bounds request_bounds = {
    11,
    { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 },
    { "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
      "5", "10" },
};

/* A fork and exec takes a few hundred microseconds to milliseconds. */
static const struct bounds spawn_bounds = {
    11,
    { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
      0.25 },
    { "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
      "0.025", "0.05", "0.1", "0.25" },
};

struct histogram {
    uint64_t counts[FW_MAX_BUCKETS + 1]; /* per bucket, not cumulative;
                                            [n] is +Inf */
    uint64_t count;              /* observations */
    double sum;                  /* of the observed values */
};

/* Lower-case method labels, sorted as Go sorts label values; the last is
 * every other method (spec 10). */
static const char *const methods[] = {
    "connect", "delete", "get", "head", "notify", "options", "patch",
    "post", "put", "trace", "unknown",
};
#define FW_N_METHODS (sizeof(methods) / sizeof(methods[0]))

/* One (code, method) series of http_requests_total and
 * http_request_duration_seconds: the counter is the histogram's count. */
struct series {
    int code;                    /* status, 100..999 (or 499 and so on) */
    unsigned method;             /* index in methods[] */
    struct histogram duration;   /* seconds */
};

static const char *const exit_classes[] = { "0", "nonzero", "signal" };
static const char *const kill_reasons[] = { "timeout", "client_abort",
                                            "shutdown" };
static const char *const conn_kinds[] = { "new", "reused" };
static const char *const upstream_errors[] = { "connection", "timeout",
                                               "bad_response",
                                               "unavailable" };

static struct {
    bool on;                     /* counting at all */
    bool children;               /* fork modes: fwatchdog_children_* */
    bool upstream;               /* http mode: fwatchdog_upstream_* */
    double start_time;           /* process_start_time_seconds */
    int64_t in_flight;           /* http_requests_in_flight */
    struct series series[FW_MAX_SERIES]; /* sorted by code, method */
    size_t n_series;
    size_t last;                 /* the series hit last, a cheap cache */
    bool series_full;            /* logged once */
    uint64_t rejected;           /* 429s from max_inflight */
    uint64_t bytes_in;           /* request bodies */
    uint64_t bytes_out;          /* response bodies */
    uint64_t started;            /* children */
    uint64_t failed;             /* children that could not start */
    uint64_t exited[3];          /* by exit_classes */
    uint64_t killed[3];          /* by kill_reasons */
    struct histogram spawn;      /* seconds from asking to exec */
    uint64_t upstream_conns[2];  /* by conn_kinds */
    uint64_t upstream_err[4];    /* by upstream_errors */
} mx;

/* ---- recording -------------------------------------------------------- */

static void observe(struct histogram *h, const struct bounds *b, double v)
{
    size_t i = 0;

    while (i < b->n && v > b->le[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

static unsigned method_index(const char *m)
{
    const char *label = fw_http_method_label(m);
    unsigned i;

    for (i = 0; i < FW_N_METHODS - 1; i++)
        if (strcmp(label, methods[i]) == 0)
            return i;
    return FW_N_METHODS - 1;
}

static int series_cmp(const struct series *s, int code, unsigned method)
{
    if (s->code != code)
        return s->code < code ? -1 : 1;
    return s->method < method ? -1 : s->method > method;
}

/* The series of (code, method), created in order on first use; NULL
 * when FW_MAX_SERIES are taken (a misbehaving upstream's statuses). */
static struct series *find_series(int code, unsigned method)
{
    size_t i;

    if (mx.last < mx.n_series &&
        series_cmp(&mx.series[mx.last], code, method) == 0)
        return &mx.series[mx.last];
    for (i = 0; i < mx.n_series; i++) {
        int c = series_cmp(&mx.series[i], code, method);

        if (c == 0) {
            mx.last = i;
            return &mx.series[i];
        }
        if (c > 0)
            break;
    }
    if (mx.n_series == FW_MAX_SERIES) {
        if (!mx.series_full)
            fw_log(FW_ERROR, "metrics: more than %d code and method pairs, "
                   "not counting new ones", FW_MAX_SERIES);
        mx.series_full = true;
        return NULL;
    }
    memmove(&mx.series[i + 1], &mx.series[i],
            (mx.n_series - i) * sizeof(mx.series[0]));
    memset(&mx.series[i], 0, sizeof(mx.series[i]));
    mx.series[i].code = code;
    mx.series[i].method = method;
    mx.n_series++;
    mx.last = i;
    return &mx.series[i];
}

void fw_metrics_request_begin(void)
{
    if (mx.on)
        mx.in_flight++;
}

void fw_metrics_request_end(const char *method, int status,
                            uint64_t start_ns)
{
    struct series *s;

    if (!mx.on)
        return;
    mx.in_flight--;
    s = find_series(status, method_index(method));
    if (s)
        observe(&s->duration, &request_bounds,
                (double)(uv_hrtime() - start_ns) / 1e9);
}

void fw_metrics_rejected(void)
{
    if (!mx.on)
        return;
    mx.rejected++;
}

void fw_metrics_bytes_in(size_t len)
{
    if (!mx.on)
        return;
    mx.bytes_in += len;
}

void fw_metrics_bytes_out(size_t len)
{
    if (!mx.on)
        return;
    mx.bytes_out += len;
}

void fw_metrics_child_started(uint64_t spawn_ns)
{
    if (!mx.on)
        return;
    mx.started++;
    observe(&mx.spawn, &spawn_bounds, (double)spawn_ns / 1e9);
}

void fw_metrics_child_failed(void)
{
    if (!mx.on)
        return;
    mx.failed++;
}

void fw_metrics_child_exited(int wait_status)
{
    if (!mx.on)
        return;
    if (WIFSIGNALED(wait_status))
        mx.exited[2]++;
    else
        mx.exited[WEXITSTATUS(wait_status) != 0]++;
}

void fw_metrics_child_killed(enum fw_kill_reason why)
{
    if (!mx.on)
        return;
    mx.killed[why]++;
}

void fw_metrics_upstream_conn(bool reused)
{
    if (!mx.on)
        return;
    mx.upstream_conns[reused]++;
}

void fw_metrics_upstream_error(enum fw_upstream_error what)
{
    if (!mx.on)
        return;
    mx.upstream_err[what]++;
}

/* ---- the text format -------------------------------------------------- */

/* The shortest text that reads back as v (Go's FormatFloat 'g', -1,
 * but integers in full). */
static void append_double(struct fw_buf *b, double v)
{
    char s[32];
    int prec;

    if (isnan(v)) {
        fw_buf_append(b, "NaN", 3);
        return;
    }
    if (isinf(v)) {
        fw_buf_append(b, v > 0 ? "+Inf" : "-Inf", 4);
        return;
    }
    if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
        v == (double)(long long)v) {
        /* Integral (bytes, fds): whole digits, not 2e+06. */
        fw_buf_appendf(b, "%.0f", v);
        return;
    }
    for (prec = 1; prec < 17; prec++) {
        snprintf(s, sizeof(s), "%.*g", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    if (prec == 17)
        snprintf(s, sizeof(s), "%.17g", v);
    fw_buf_append(b, s, strlen(s));
}

static void family(struct fw_buf *b, const char *name, const char *type,
                   const char *help)
{
    fw_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                   type);
}

static void counter(struct fw_buf *b, const char *name, const char *help,
                    uint64_t v)
{
    family(b, name, "counter", help);
    fw_buf_appendf(b, "%s %" PRIu64 "\n", name, v);
}

static void gauge(struct fw_buf *b, const char *name, const char *help,
                  double v)
{
    family(b, name, "gauge", help);
    fw_buf_appendf(b, "%s ", name);
    append_double(b, v);
    fw_buf_append(b, "\n", 1);
}

/* A counter with one label, every value from the start. The values are
 * ours (no quote, backslash or newline), so they need no escaping. */
static void counter_vec(struct fw_buf *b, const char *name,
                        const char *help, const char *label,
                        const char *const *values, const uint64_t *v,
                        size_t n)
{
    size_t i;

    family(b, name, "counter", help);
    for (i = 0; i < n; i++)
        fw_buf_appendf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label,
                       values[i], v[i]);
}

/* One histogram's series; labels is "" or `k="v",` pairs ending in a
 * comma, so "le" can follow. */
static void histogram_series(struct fw_buf *b, const char *name,
                             const char *labels, const struct bounds *bd,
                             const struct histogram *h)
{
    uint64_t cum = 0;
    size_t i, n = strlen(labels);

    for (i = 0; i <= bd->n; i++) {
        cum += h->counts[i];
        fw_buf_appendf(b, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n", name,
                       labels, i < bd->n ? bd->text[i] : "+Inf", cum);
    }
    /* Without "le", the trailing comma goes (or the braces, if empty). */
    if (n > 0)
        fw_buf_appendf(b, "%s_sum{%.*s} ", name, (int)(n - 1), labels);
    else
        fw_buf_appendf(b, "%s_sum ", name);
    append_double(b, h->sum);
    if (n > 0)
        fw_buf_appendf(b, "\n%s_count{%.*s} %" PRIu64 "\n", name,
                       (int)(n - 1), labels, h->count);
    else
        fw_buf_appendf(b, "\n%s_count %" PRIu64 "\n", name, h->count);
}

/* The Go watchdogs' families, exactly (spec 10). Vectors appear on first
 * use, as client_golang's do. */
static void render_http(struct fw_buf *b)
{
    char labels[64];
    size_t i;

    if (mx.n_series > 0) {
        family(b, "http_request_duration_seconds", "histogram",
               "Seconds spent serving HTTP requests.");
        for (i = 0; i < mx.n_series; i++) {
            const struct series *s = &mx.series[i];

            snprintf(labels, sizeof(labels), "code=\"%d\",method=\"%s\",",
                     s->code, methods[s->method]);
            histogram_series(b, "http_request_duration_seconds", labels,
                             &request_bounds, &s->duration);
        }
        family(b, "http_requests_total", "counter",
               "total HTTP requests processed");
        for (i = 0; i < mx.n_series; i++)
            fw_buf_appendf(b, "http_requests_total{code=\"%d\","
                           "method=\"%s\"} %" PRIu64 "\n",
                           mx.series[i].code,
                           methods[mx.series[i].method],
                           mx.series[i].duration.count);
    }
    gauge(b, "http_requests_in_flight", "total HTTP requests in-flight",
          (double)mx.in_flight);
}

static void render_own(struct fw_buf *b)
{
    if (mx.children) {
        counter(b, "fwatchdog_children_started_total",
                "Function processes started.", mx.started);
        counter(b, "fwatchdog_children_failed_to_start_total",
                "Function processes that could not be started.",
                mx.failed);
        counter_vec(b, "fwatchdog_children_exited_total",
                    "Function processes reaped, by exit status class.",
                    "class", exit_classes, mx.exited, 3);
        counter_vec(b, "fwatchdog_children_killed_total",
                    "Function processes killed by the watchdog, by reason.",
                    "reason", kill_reasons, mx.killed, 3);
        family(b, "fwatchdog_child_spawn_seconds", "histogram",
               "Seconds from starting a function process to its exec.");
        histogram_series(b, "fwatchdog_child_spawn_seconds", "",
                         &spawn_bounds, &mx.spawn);
    }
    if (mx.upstream) {
        counter_vec(b, "fwatchdog_upstream_requests_total",
                    "Requests sent to the function's server, by connection.",
                    "connection", conn_kinds, mx.upstream_conns, 2);
        counter_vec(b, "fwatchdog_upstream_errors_total",
                    "Requests the function's server failed, by kind.",
                    "kind", upstream_errors, mx.upstream_err, 4);
    }
    counter(b, "fwatchdog_request_bytes_total",
            "Request body bytes received on the function path.",
            mx.bytes_in);
    counter(b, "fwatchdog_response_bytes_total",
            "Response body bytes sent on the function path.", mx.bytes_out);
    counter(b, "fwatchdog_requests_rejected_total",
            "Requests answered 429 because max_inflight was reached.",
            mx.rejected);
    counter(b, "fwatchdog_log_dropped_lines_total",
            "Log lines dropped because the log output was stalled.",
            fw_log_dropped_lines());
}

/* ---- process metrics -------------------------------------------------- */

struct self_stat {
    unsigned long utime, stime;  /* clock ticks */
    unsigned long long start;    /* clock ticks after boot */
    unsigned long vsize;         /* bytes */
    long rss;                    /* pages */
};

/* Reads /proc/self/stat: procfs answers from memory, so this does not
 * block the loop (client_golang reads the same files per scrape). */
static int read_self_stat(struct self_stat *st)
{
    char text[1024];
    const char *p;
    ssize_t n;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    text[n] = '\0';
    /* The command name may hold spaces and parentheses: skip to the
     * last ')'; then come field 3 (state) and on. */
    p = strrchr(text, ')');
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
               "%*d %*d %*d %*d %*d %*d %llu %lu %ld", &st->utime,
               &st->stime, &st->start, &st->vsize, &st->rss) != 5)
        return -EIO;
    return 0;
}

/* Entries of /proc/self/fd, less the one reading it; -1 if unreadable. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static void render_process(struct fw_buf *b)
{
    struct self_stat st;
    struct rlimit rl;
    long fds = open_fds();
    double ticks = (double)sysconf(_SC_CLK_TCK);

    if (read_self_stat(&st) == 0) {
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        fw_buf_append(b, "process_cpu_seconds_total ", 26);
        append_double(b, (double)(st.utime + st.stime) / ticks);
        fw_buf_append(b, "\n", 1);
        gauge(b, "process_resident_memory_bytes",
              "Resident memory size in bytes.",
              (double)st.rss * (double)sysconf(_SC_PAGESIZE));
        gauge(b, "process_virtual_memory_bytes",
              "Virtual memory size in bytes.", (double)st.vsize);
    }
    if (fds >= 0)
        gauge(b, "process_open_fds", "Number of open file descriptors.",
              (double)fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        gauge(b, "process_max_fds",
              "Maximum number of open file descriptors.",
              rl.rlim_cur == RLIM_INFINITY ? INFINITY
                                           : (double)rl.rlim_cur);
    if (mx.start_time > 0)
        gauge(b, "process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.",
              mx.start_time);
}

/* Wall-clock time of the process start: now, less how long ago it
 * started on the boot clock /proc counts in. */
static double start_time(void)
{
    struct self_stat st;
    struct timespec now, boot;

    if (read_self_stat(&st) < 0 || clock_gettime(CLOCK_REALTIME, &now) < 0 ||
        clock_gettime(CLOCK_BOOTTIME, &boot) < 0)
        return 0;
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9 -
           ((double)boot.tv_sec + (double)boot.tv_nsec / 1e9 -
            (double)st.start / (double)sysconf(_SC_CLK_TCK));
}

int fw_metrics_render(struct fw_buf *out)
{
    render_http(out);
    render_own(out);
    render_process(out);
    return out->failed ? -ENOMEM : 0;
}

/* ---- the endpoint ----------------------------------------------------- */

static void on_scrape(struct fw_request *r)
{
    static const struct fw_hdr text[] = {
        { "Content-Type", "text/plain; version=0.0.4; charset=utf-8" },
    };
    static const struct fw_hdr plain[] = {
        { "Content-Type", "text/plain; charset=utf-8" },
    };
    static const struct fw_hdr allow[] = {
        { "Allow", "GET, HEAD" },
    };
    struct fw_buf b;
    int err;

    if (strcmp(r->path, "/metrics") != 0) {
        fw_response_send(r, 404, plain, 1, "404 page not found\n", 19);
        return;
    }
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        fw_response_send(r, 405, allow, 1, NULL, 0);
        return;
    }
    fw_buf_init(&b, FW_METRICS_MAX_BYTES);
    err = fw_metrics_render(&b);
    if (err < 0) {
        fw_log(FW_ERROR, "metrics: %s", strerror(-err));
        fw_response_send(r, 500, NULL, 0, NULL, 0);
    } else {
        fw_response_send(r, 200, text, 1, b.data, b.len);
    }
    fw_buf_release(&b);
}

static const struct fw_handler scrape_handler = {
    .on_head = on_scrape,
};

/* ---- set-up ----------------------------------------------------------- */

static void set_mode(enum fw_mode mode)
{
    mx.on = true;
    mx.children = mode == FW_MODE_STREAMING ||
                  mode == FW_MODE_SERIALIZING || mode == FW_MODE_CLASSIC;
    mx.upstream = mode == FW_MODE_HTTP;
    mx.start_time = start_time();
}

void fw_metrics_reset(enum fw_mode mode)
{
    memset(&mx, 0, sizeof(mx));
    set_mode(mode);
}

int fw_metrics_start(const struct fw_config *cfg)
{
    int err;

    /* mx starts zeroed; not clearing it again keeps the untouched part
     * of the series table out of the resident set. */
    set_mode(cfg->mode);
    mx.on = cfg->metrics_port != 0;
    if (!mx.on)
        return 0;
    if (cfg->metrics_port == cfg->port) {
        fw_log(FW_ERROR, "metrics_port: %d is also port; metrics are off",
               cfg->metrics_port);
        mx.on = false;
        return -EADDRINUSE;
    }
    err = fw_server_listen_admin(cfg->metrics_port, &scrape_handler,
                                 FW_METRICS_TIMEOUT_MS);
    if (err < 0) {
        fw_log(FW_ERROR, "metrics_port: cannot listen on %d: %s; metrics "
               "are off, functions are still served", cfg->metrics_port,
               uv_strerror(err));
        mx.on = false;
        return err;
    }
    fw_log(FW_INFO, "Metrics listening on port: %d", cfg->metrics_port);
    return 0;
}

void fw_metrics_close(void)
{
    fw_server_close_admin();
}
