/* config.c - struct fw_config from the environment (spec section 2).
 *
 * The settings table below is the only place that names an environment
 * variable: its aliases, default, the modes that read it and its --help
 * line. Parsing only: nothing here opens files, sockets or logs; warnings
 * go to the caller's warn() and fatal errors into one line of err.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

enum kind {
    MODE,     /* enum fw_mode: spec 1 and D1 */
    COMMAND,  /* char *, also split into cfg->argv (spec 5.1) */
    URL,      /* char *, http://host:port[/path] */
    STRING,   /* char * */
    DURATION, /* int64_t milliseconds */
    COUNT,    /* int64_t >= 0 */
    PORT,     /* int, 1..65535 */
    BYTES,    /* int64_t, any integer; not an integer is fatal */
    SIZE,     /* int64_t >= 0, bytes with k M G Ki Mi Gi; bad is fatal */
    BOOL,     /* "true" or "1" */
    GO_BOOL,  /* Go's strconv.ParseBool set */
    FORMAT,   /* bool: "json" true, "text" false; anything else is fatal */
    REFUSED,  /* a feature fwatchdog lacks: true is fatal */
    IGNORED,  /* accepted for compatibility, no effect */
};

enum flag {
    ALIAS_WINS = 1 << 0,      /* alias overrides name (Go's order) */
    ALIAS_EITHER = 1 << 1,    /* BOOL: true under either name enables */
    CLASSIC_TRIGGER = 1 << 2, /* present without mode selects classic (D1) */
    CLASSIC_EXACT = 1 << 3,   /* BOOL in classic: only "true" is true */
    REQUIRED = 1 << 4,        /* unset in a mode that reads it is fatal */
    POSITIVE = 1 << 5,        /* DURATION <= 0 falls back to the default */
    NONZERO = 1 << 6,         /* DURATION <= 0 is fatal outside classic */
    ZERO_OFF = 1 << 7,        /* PORT: 0 turns the listener off */
    FIELD_DEFAULT = 1 << 8,   /* default is the value of default_field */
    STRICT = 1 << 9,          /* COUNT: a bad value is fatal, not ignored */
};

#define MODE_BIT(m) (1u << (m))
#define IN(m) MODE_BIT(FW_MODE_##m)
#define FORK (IN(STREAMING) | IN(SERIALIZING) | IN(CLASSIC))
#define ALL (FORK | IN(HTTP) | IN(STATIC))
#define FIELD(f) offsetof(struct fw_config, f)

struct setting {
    const char *name;     /* environment variable */
    const char *alias;    /* second name or NULL; name wins unless ALIAS_* */
    enum kind kind;
    unsigned flags;       /* enum flag bits */
    unsigned modes;       /* MODE_BITs that read it; others get the default */
    const char *fallback; /* default, parsed like user input; NULL = none */
    const char *classic;  /* default in classic if different; "" = none */
    size_t offset;        /* offsetof(struct fw_config, field) */
    size_t default_field; /* with FIELD_DEFAULT: an earlier row's field */
    const char *help;     /* meaning, for --help; '\n' breaks the line */
};

/* Rows are loaded in this order (mode first), so a FIELD_DEFAULT row
 * must come after the row it copies. The CLASSIC_TRIGGER rows are in the
 * order spec D1 lists them: the first present one is reported. */
static const struct setting settings[] = {
    { .name = "mode", .kind = MODE, .modes = ALL, .fallback = "streaming",
      .offset = FIELD(mode),
      .help = "streaming, serializing, classic, http or\n"
              "static; unset: streaming, or classic if\n"
              "a classic-only variable is set" },
    { .name = "fprocess", .alias = "function_process", .kind = COMMAND,
      .flags = ALIAS_WINS | REQUIRED, .modes = ALL & ~IN(STATIC),
      .offset = FIELD(fprocess), .help = "command to run, split into words; "
      "quotes\nand backslashes work as in sh" },
    { .name = "port", .kind = PORT, .modes = ALL, .fallback = "8080",
      .offset = FIELD(port), .help = "TCP port of the function listener" },
    { .name = "metrics_port", .kind = PORT, .flags = ZERO_OFF, .modes = ALL,
      .fallback = "8081", .offset = FIELD(metrics_port),
      .help = "port of GET /metrics (Prometheus\ntext); 0 = off" },
    { .name = "upstream_url", .alias = "http_upstream_url", .kind = URL,
      .flags = ALIAS_WINS | REQUIRED, .modes = IN(HTTP),
      .offset = FIELD(upstream_url),
      .help = "http://host:port[/path] of the\nfunction's own server" },
    { .name = "http_workers", .kind = COUNT, .modes = IN(HTTP),
      .fallback = "1", .offset = FIELD(http_workers),
      .help = "copies of fprocess to start; worker i\n"
              "gets PORT = the upstream port + i" },
    { .name = "http_buffer_req_body", .alias = "buffer_http", .kind = BOOL,
      .flags = ALIAS_EITHER, .modes = IN(HTTP), .fallback = "false",
      .offset = FIELD(http_buffer_req_body),
      .help = "send chunked request bodies upstream\nwith Content-Length" },
    { .name = "content_type", .kind = STRING, .modes = FORK,
      .fallback = "application/octet-stream", .classic = "",
      .offset = FIELD(content_type), .help = "response Content-Type; "
      "classic: the\nrequest's, else sniffed, when unset" },
    { .name = "exec_timeout", .kind = DURATION, .modes = FORK | IN(HTTP),
      .fallback = "30s", .classic = "0s", .offset = FIELD(exec_timeout_ms),
      .help = "hard time limit per request; 0 = none" },
    { .name = "read_timeout", .kind = DURATION, .flags = POSITIVE,
      .modes = ALL, .fallback = "30s", .offset = FIELD(read_timeout_ms),
      .help = "time to receive a request; also the\nkeep-alive idle limit" },
    { .name = "write_timeout", .kind = DURATION, .flags = NONZERO,
      .modes = ALL, .fallback = "30s", .offset = FIELD(write_timeout_ms),
      .help = "time to answer a request; also the\nlongest drain; 0 only "
      "in classic" },
    { .name = "healthcheck_interval", .kind = DURATION,
      .flags = FIELD_DEFAULT, .modes = ALL,
      .offset = FIELD(healthcheck_interval_ms),
      .default_field = FIELD(write_timeout_ms),
      .help = "wait after SIGTERM before the listener\ncloses; 0 = none" },
    { .name = "max_inflight", .kind = COUNT, .modes = ALL, .fallback = "0",
      .offset = FIELD(max_inflight), .help = "concurrent requests, then "
      "429; 0 = any" },
    { .name = "suppress_lock", .kind = BOOL, .modes = ALL,
      .fallback = "false", .offset = FIELD(suppress_lock),
      .help = "do not write the lock file" },
    { .name = "TMPDIR", .kind = STRING, .modes = ALL, .fallback = "/tmp",
      .offset = FIELD(tmpdir), .help = "directory of the lock file .lock" },
    { .name = "ready_path", .kind = STRING, .modes = ALL,
      .offset = FIELD(ready_path), .help = "function path /_/ready asks; "
      "unset:\n/_/ready answers 200 itself" },
    { .name = "static_path", .kind = STRING, .modes = IN(STATIC),
      .fallback = "/home/app/public", .offset = FIELD(static_path),
      .help = "directory to serve" },
    { .name = "static_listing", .kind = BOOL, .modes = IN(STATIC),
      .fallback = "false", .offset = FIELD(static_listing),
      .help = "list a directory that has no\nindex.html, as Go's file server "
              "does;\nfalse: 403" },
    { .name = "prefix_logs", .kind = GO_BOOL, .modes = ALL,
      .fallback = "true", .offset = FIELD(prefix_logs),
      .help = "prefix relayed lines with the time and\n"
              "the stream name; Go booleans: 1 t T TRUE\n"
              "true True 0 f F FALSE false False" },
    { .name = "log_buffer_size", .kind = BYTES, .modes = ALL,
      .fallback = "65536", .offset = FIELD(log_buffer_size),
      .help = "longest relayed line in bytes;\nnegative = unlimited" },
    { .name = "log_callid", .alias = "log_call_id", .kind = GO_BOOL,
      .modes = ALL, .fallback = "false", .offset = FIELD(log_callid),
      .help = "append [X-Call-Id] to request lines;\nGo booleans as above" },
    { .name = "log_requests", .kind = GO_BOOL, .modes = ALL,
      .fallback = "true", .offset = FIELD(log_requests),
      .help = "one access-log line per function\nrequest; Go booleans as "
              "above" },
    { .name = "log_format", .kind = FORMAT, .modes = ALL, .fallback = "text",
      .offset = FIELD(log_json),
      .help = "text (the Go watchdogs' lines) or json\n(one object per "
              "line)" },
    { .name = "write_debug", .kind = BOOL,
      .flags = CLASSIC_TRIGGER | CLASSIC_EXACT,
      .modes = IN(CLASSIC) | IN(SERIALIZING), .fallback = "false",
      .offset = FIELD(write_debug), .help = "copy responses to stdout, "
      "log errors" },
    { .name = "combine_output", .kind = BOOL,
      .flags = CLASSIC_TRIGGER | CLASSIC_EXACT,
      .modes = IN(CLASSIC) | IN(SERIALIZING), .fallback = "false",
      .classic = "true", .offset = FIELD(combine_output),
      .help = "append stderr to the response body" },
    { .name = "marshal_request", .kind = BOOL,
      .flags = CLASSIC_TRIGGER | CLASSIC_EXACT,
      .modes = IN(CLASSIC) | IN(SERIALIZING), .fallback = "false",
      .offset = FIELD(marshal_request), .help = "stdin: JSON of the "
      "headers and body" },
    { .name = "debug_headers", .kind = BOOL,
      .flags = CLASSIC_TRIGGER | CLASSIC_EXACT, .modes = IN(CLASSIC),
      .fallback = "false", .offset = FIELD(debug_headers),
      .help = "print request and response headers\non stdout" },
    { .name = "cgi_headers", .kind = BOOL,
      .flags = CLASSIC_TRIGGER | CLASSIC_EXACT, .modes = IN(CLASSIC),
      .fallback = "true", .offset = FIELD(cgi_headers),
      .help = "pass headers as Http_* variables" },
    { .name = "exec_timeout_grace", .kind = DURATION, .modes = FORK,
      .fallback = "0s", .offset = FIELD(exec_timeout_grace_ms),
      .help = "on a timeout, a client gone or the\n"
              "drain deadline: SIGTERM the child's\n"
              "group, SIGKILL after this; 0 = SIGKILL\n"
              "at once" },
    { .name = "fprocess_user", .kind = STRING, .modes = FORK | IN(HTTP),
      .offset = FIELD(fprocess_user), .help = "run children as this user: "
      "name, uid,\nname:group or uid:gid; needs root\n"
      "(or to be that user already)" },
    { .name = "fprocess_workdir", .kind = STRING, .modes = FORK | IN(HTTP),
      .offset = FIELD(fprocess_workdir), .help = "children's working "
      "directory; unset:\nthe watchdog's. A relative fprocess\n"
      "(./handler) is found there" },
    { .name = "fprocess_no_new_privs", .kind = BOOL,
      .modes = FORK | IN(HTTP), .fallback = "false",
      .offset = FIELD(fprocess_no_new_privs), .help = "PR_SET_NO_NEW_PRIVS "
      "for children:\nsetuid binaries gain nothing" },
    { .name = "fprocess_max_memory", .kind = SIZE, .modes = FORK | IN(HTTP),
      .fallback = "0", .offset = FIELD(fprocess_max_memory),
      .help = "address space per child (RLIMIT_AS):\n"
              "bytes, or 64Mi, 512M, 1Gi; 0 = none" },
    { .name = "fprocess_max_cpu_seconds", .kind = COUNT, .flags = STRICT,
      .modes = FORK | IN(HTTP), .fallback = "0",
      .offset = FIELD(fprocess_max_cpu_seconds),
      .help = "CPU seconds per child (RLIMIT_CPU);\n0 = none" },
    { .name = "fprocess_max_open_files", .kind = COUNT, .flags = STRICT,
      .modes = FORK | IN(HTTP), .fallback = "0",
      .offset = FIELD(fprocess_max_open_files),
      .help = "open files per child (RLIMIT_NOFILE);\n0 = none" },
    { .name = "fprocess_max_processes", .kind = COUNT, .flags = STRICT,
      .modes = FORK | IN(HTTP), .fallback = "0",
      .offset = FIELD(fprocess_max_processes),
      .help = "processes of the children's user\n(RLIMIT_NPROC; root is "
              "exempt); 0 = none" },
    { .name = "jwt_auth", .kind = REFUSED, .modes = ALL, .fallback = "false",
      .help = "not supported: true refuses to start" },
    { .name = "jwt_auth_debug", .kind = IGNORED, .help = "ignored" },
    { .name = "jwt_auth_local", .kind = IGNORED, .help = "ignored" },
};

#define SETTINGS_END (settings + sizeof(settings) / sizeof(settings[0]))

static const char *const mode_names[] = {
    [FW_MODE_STREAMING] = "streaming",
    [FW_MODE_SERIALIZING] = "serializing",
    [FW_MODE_CLASSIC] = "classic",
    [FW_MODE_HTTP] = "http",
    [FW_MODE_STATIC] = "static",
};

#define NMODES (sizeof(mode_names) / sizeof(mode_names[0]))

struct loader {
    struct fw_config *cfg; /* being filled */
    fw_getenv_fn lookup;
    void *ctx;             /* lookup's */
    void (*warn)(const char *line);
    char *err;             /* the caller's, err_len bytes */
    size_t err_len;
};

/* Values go into messages quoted like Go's %q, cut short, so that a
 * message stays one line whatever the environment holds. */
#define QUOTED_MAX 96

static const char *quote(const char *s, char *buf, size_t len)
{
    size_t n = 0;

    assert(len >= 16);
    buf[n++] = '"';
    /* Room for one more escape (4 bytes) and then "...\"\0" (5). */
    for (; *s && n + 9 <= len; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(buf + n, len - n, "\\x%02x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    if (*s) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

__attribute__((format(printf, 2, 3)))
static int fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;

    if (ld->err && ld->err_len > 0) {
        va_start(ap, fmt);
        vsnprintf(ld->err, ld->err_len, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int fail_nomem(struct loader *ld)
{
    fail(ld, "out of memory reading the configuration");
    return -ENOMEM;
}

__attribute__((format(printf, 2, 3)))
static void warnf(struct loader *ld, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!ld->warn)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ld->warn(line);
}

static void *field(const struct loader *ld, const struct setting *s)
{
    return (char *)ld->cfg + s->offset;
}

/* An empty value counts as unset (spec 2.1, presence). */
static const char *get(const struct loader *ld, const char *name)
{
    const char *v = ld->lookup(name, ld->ctx);

    return v && *v ? v : NULL;
}

static bool is_true(const char *v)
{
    return strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
}

/* The value a row reads and the name it came from, by the alias rules. */
static const char *pick(const struct loader *ld, const struct setting *s,
                        const char **used)
{
    const char *v = get(ld, s->name);
    const char *a = s->alias ? get(ld, s->alias) : NULL;

    *used = s->name;
    if (!a)
        return v;
    if (!v || (s->flags & ALIAS_WINS) ||
        ((s->flags & ALIAS_EITHER) && !is_true(v))) {
        *used = s->alias;
        return a;
    }
    return v;
}

static const char *fallback_of(const struct loader *ld,
                               const struct setting *s)
{
    const char *f = s->fallback;

    if (ld->cfg->mode == FW_MODE_CLASSIC && s->classic)
        f = s->classic;
    return f && *f ? f : NULL;
}

/* Go's strconv.ParseBool: the first six are false, the rest true. */
static int parse_go_bool(const char *s, bool *out)
{
    static const char *const set[] = {
        "0", "f", "F", "FALSE", "false", "False",
        "1", "t", "T", "TRUE", "true", "True",
    };
    size_t i;

    for (i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        if (strcmp(s, set[i]) == 0) {
            *out = i >= 6;
            return 0;
        }
    }
    return -EINVAL;
}

static int store_string(struct loader *ld, const struct setting *s,
                        const char *val)
{
    char **out = field(ld, s);

    if (!val)
        return 0;
    *out = strdup(val);
    return *out ? 0 : fail_nomem(ld);
}

/* An unset variable: fatal if REQUIRED in this mode, else left empty. */
static int missing(struct loader *ld, const struct setting *s,
                   const char *what)
{
    if (!(s->flags & REQUIRED) || !(s->modes & MODE_BIT(ld->cfg->mode)))
        return 0;
    /* Both REQUIRED variables have an alias. */
    return fail(ld, "%s: missing (set %s or %s to %s)", s->name, s->name,
                s->alias, what);
}

static int load_command(struct loader *ld, const struct setting *s,
                        const char *name, const char *val)
{
    char q[QUOTED_MAX];
    const char *why;

    if (!val)
        return missing(ld, s, "the command to run");
    ld->cfg->argv = fw_argv_split(val, &why);
    if (!ld->cfg->argv && why == fw_split_empty)
        return fail(ld, "%s: %s holds no command (expected the command to "
                    "run)", name, quote(val, q, sizeof(q)));
    if (!ld->cfg->argv && why != fw_split_unbalanced && why != fw_split_backslash)
        return fail_nomem(ld);
    if (!ld->cfg->argv)
        return fail(ld, "%s: %s in %s", name, why, quote(val, q, sizeof(q)));
    return store_string(ld, s, val);
}

static bool is_host_byte(char c, bool bracketed)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.')
        return true;
    return bracketed ? c == ':' || c == '%' : c == '_' || c == '~';
}

/* http://host:port[/path]. The port is required: the watchdog dials it
 * to learn that the upstream is ready (spec 6.1). */
static bool is_upstream_url(const char *url)
{
    const char *p = url + strnlen(url, 7);
    bool bracketed;
    int64_t port = 0;
    int digits = 0;

    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    bracketed = *p == '[';
    if (bracketed)
        p++;
    for (; is_host_byte(*p, bracketed); p++)
        ;
    if (p == url + 7 + bracketed || (bracketed && *p++ != ']'))
        return false;
    if (*p++ != ':')
        return false;
    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
        port = port * 10 + (*p - '0');
    if (digits == 0 || port < 1 || port > 65535 || (*p && *p != '/'))
        return false;
    /* The path is prefixed to every request target, so a query,
     * fragment or blank in it could only produce broken requests. */
    return p[strcspn(p, "?# \t\r\n")] == '\0';
}

static int load_url(struct loader *ld, const struct setting *s,
                    const char *name, const char *val)
{
    char **out = field(ld, s);
    char q[QUOTED_MAX];
    size_t len;

    if (!val)
        return missing(ld, s, "http://host:port");
    if (!is_upstream_url(val))
        return fail(ld, "%s: %s is not http://host:port[/path]", name,
                    quote(val, q, sizeof(q)));
    *out = strdup(val);
    if (!*out)
        return fail_nomem(ld);
    /* The scheme is case-insensitive; readers expect "http://". */
    memcpy(*out, "http://", 7);
    len = strlen(*out);
    while ((*out)[len - 1] == '/')
        (*out)[--len] = '\0';
    return 0;
}

static int64_t duration_default(const struct loader *ld,
                                const struct setting *s)
{
    const char *f = fallback_of(ld, s);
    int64_t ms = 0;

    if (s->flags & FIELD_DEFAULT)
        return *(const int64_t *)((const char *)ld->cfg + s->default_field);
    if (f && fw_duration_parse(f, &ms) < 0)
        assert(!"bad duration default in the settings table");
    return ms;
}

static int load_duration(struct loader *ld, const struct setting *s,
                         const char *name, const char *val)
{
    int64_t *out = field(ld, s);
    int64_t def = duration_default(ld, s);
    char q[QUOTED_MAX], d[32];
    int64_t ms;

    fw_duration_format(def, d, sizeof(d));
    *out = def;
    if (!val)
        return 0;
    if (fw_duration_parse(val, &ms) < 0) {
        warnf(ld, "%s: %s is not a duration (expected 30, 500ms or 1m30s); "
              "using %s", name, quote(val, q, sizeof(q)), d);
        return 0;
    }
    if (ms <= 0 && (s->flags & POSITIVE)) {
        warnf(ld, "%s: %s must be greater than 0; using %s", name,
              quote(val, q, sizeof(q)), d);
        return 0;
    }
    if (ms <= 0 && (s->flags & NONZERO) && ld->cfg->mode != FW_MODE_CLASSIC)
        return fail(ld, "%s: must be greater than 0 outside mode=classic "
                    "(got %s)", name, quote(val, q, sizeof(q)));
    /* Zero or negative means disabled (spec 2.1); one value for it. */
    *out = ms < 0 ? 0 : ms;
    return 0;
}

/* COUNT, PORT and BYTES: decimal integers with different ranges. */
static int load_integer(struct loader *ld, const struct setting *s,
                        const char *name, const char *val)
{
    int64_t n, def = 0;
    char q[QUOTED_MAX];
    int err;

    if (fallback_of(ld, s) && fw_int_parse(fallback_of(ld, s), &def) < 0)
        assert(!"bad integer default in the settings table");
    n = def;
    err = val ? fw_int_parse(val, &n) : 0;
    if (err < 0 && s->kind == BYTES)
        return fail(ld, "%s: %s is not an integer (expected bytes; "
                    "negative = unlimited)", name, quote(val, q, sizeof(q)));
    if ((s->flags & STRICT) && (err < 0 || n < 0))
        return fail(ld, "%s: %s is not a non-negative integer", name,
                    quote(val, q, sizeof(q)));
    if (s->kind != BYTES && (err < 0 || n < 0)) {
        warnf(ld, "%s: %s is not a non-negative integer; using %" PRId64,
              name, quote(val, q, sizeof(q)), def);
        n = def;
    }
    if (s->kind == PORT && (n > 65535 || (n == 0 && !(s->flags & ZERO_OFF))))
        return fail(ld, "%s: %s is out of range (expected %s)", name,
                    quote(val, q, sizeof(q)),
                    (s->flags & ZERO_OFF) ? "0..65535, 0 = off" : "1..65535");
    if (s->kind == PORT)
        *(int *)field(ld, s) = (int)n;
    else
        *(int64_t *)field(ld, s) = n;
    return 0;
}

/* "0", "4096", "64Mi", "512M", "1Gi": decimal or binary multiples. */
static int parse_size(const char *s, int64_t *out)
{
    static const struct {
        const char *suffix;
        int64_t factor;
    } units[] = {
        { "", 1 }, { "k", 1000 }, { "K", 1000 }, { "Ki", 1024 },
        { "M", 1000 * 1000 }, { "Mi", 1024 * 1024 },
        { "G", 1000 * 1000 * 1000 }, { "Gi", 1024 * 1024 * 1024 },
    };
    char digits[24];
    size_t n = strspn(s, "0123456789"), i;
    int64_t v;

    if (n == 0 || n >= sizeof(digits))
        return -EINVAL;
    memcpy(digits, s, n);
    digits[n] = '\0';
    if (fw_int_parse(digits, &v) < 0)
        return -EINVAL;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s + n, units[i].suffix) != 0)
            continue;
        if (v > INT64_MAX / units[i].factor)
            return -ERANGE;
        *out = v * units[i].factor;
        return 0;
    }
    return -EINVAL;
}

static int load_size(struct loader *ld, const struct setting *s,
                     const char *name, const char *val)
{
    int64_t *out = field(ld, s);
    char q[QUOTED_MAX];

    *out = 0;
    if (fallback_of(ld, s) && parse_size(fallback_of(ld, s), out) < 0)
        assert(!"bad size default in the settings table");
    if (val && parse_size(val, out) < 0)
        return fail(ld, "%s: %s is not a size (expected bytes, or 64Mi, "
                    "512M, 1Gi)", name, quote(val, q, sizeof(q)));
    return 0;
}

static int load_bool(struct loader *ld, const struct setting *s,
                     const char *name, const char *val)
{
    const char *f = fallback_of(ld, s);
    bool *out = field(ld, s);
    bool def = f && is_true(f);
    char q[QUOTED_MAX];

    *out = def;
    if (!val)
        return 0;
    if (s->kind == GO_BOOL) {
        if (parse_go_bool(val, out) < 0)
            warnf(ld, "%s: %s is not a boolean (expected true or false); "
                  "using %s", name, quote(val, q, sizeof(q)), f);
    } else if ((s->flags & CLASSIC_EXACT) &&
               ld->cfg->mode == FW_MODE_CLASSIC) {
        /* The classic watchdog tests for "true" only: cgi_headers=1
         * turns the headers off there, and images rely on that. */
        *out = strcmp(val, "true") == 0;
    } else {
        *out = is_true(val);
    }
    return 0;
}

static int load_format(struct loader *ld, const struct setting *s,
                       const char *name, const char *val)
{
    bool *out = field(ld, s);
    char q[QUOTED_MAX];

    if (!val)
        val = s->fallback;
    if (strcmp(val, "json") != 0 && strcmp(val, "text") != 0)
        return fail(ld, "%s: unsupported format %s (expected text or json)",
                    name, quote(val, q, sizeof(q)));
    *out = strcmp(val, "json") == 0;
    return 0;
}

static int load_setting(struct loader *ld, const struct setting *s)
{
    const char *name = s->name;
    const char *val = NULL;

    if (s->modes & MODE_BIT(ld->cfg->mode))
        val = pick(ld, s, &name);
    switch (s->kind) {
    case COMMAND:
        return load_command(ld, s, name, val);
    case URL:
        return load_url(ld, s, name, val);
    case STRING:
        return store_string(ld, s, val ? val : fallback_of(ld, s));
    case DURATION:
        return load_duration(ld, s, name, val);
    case COUNT:
    case PORT:
    case BYTES:
        return load_integer(ld, s, name, val);
    case SIZE:
        return load_size(ld, s, name, val);
    case BOOL:
    case GO_BOOL:
        return load_bool(ld, s, name, val);
    case FORMAT:
        return load_format(ld, s, name, val);
    case REFUSED:
        if (val && is_true(val))
            return fail(ld, "%s: not supported by fwatchdog (refusing to "
                        "serve unauthenticated)", name);
        return 0;
    case MODE:
    case IGNORED:
        return 0;
    }
    return 0;
}

/* Index of a mode name in mode_names, or -1. */
static int mode_index(const char *name)
{
    size_t i;

    for (i = 0; i < NMODES; i++)
        if (strcmp(name, mode_names[i]) == 0)
            return (int)i;
    return -1;
}

/* Spec 1 and D1: an image built for the classic watchdog never sets mode
 * but sets one of its own variables; it gets classic semantics. */
static int load_mode(struct loader *ld, const struct setting *s)
{
    const char *val = get(ld, s->name);
    int mode = mode_index(val ? val : s->fallback);
    const struct setting *t;
    char q[QUOTED_MAX];

    if (mode < 0)
        return fail(ld, "%s: unsupported mode %s (expected streaming, "
                    "serializing, classic, http or static)", s->name,
                    quote(val ? val : s->fallback, q, sizeof(q)));
    ld->cfg->mode = (enum fw_mode)mode;
    for (t = settings; !val && t < SETTINGS_END; t++) {
        if ((t->flags & CLASSIC_TRIGGER) && get(ld, t->name)) {
            ld->cfg->mode = FW_MODE_CLASSIC;
            ld->cfg->mode_trigger = t->name;
            break;
        }
    }
    return 0;
}

int fw_config_load(struct fw_config *cfg, fw_getenv_fn lookup, void *ctx,
                   void (*warn)(const char *line), char *err, size_t err_len)
{
    struct loader ld = {
        .cfg = cfg, .lookup = lookup, .ctx = ctx, .warn = warn,
        .err = err, .err_len = err_len,
    };
    const struct setting *s;
    int rc = 0;

    memset(cfg, 0, sizeof(*cfg));
    if (err && err_len > 0)
        err[0] = '\0';
    /* Mode first: it decides which rows are read and their defaults. */
    for (s = settings; s < SETTINGS_END && rc == 0; s++)
        if (s->kind == MODE)
            rc = load_mode(&ld, s);
    for (s = settings; s < SETTINGS_END && rc == 0; s++)
        rc = load_setting(&ld, s);
    if (rc < 0)
        fw_config_release(cfg);
    return rc;
}

void fw_config_release(struct fw_config *cfg)
{
    const struct setting *s;

    for (s = settings; s < SETTINGS_END; s++)
        if (s->kind == COMMAND || s->kind == URL || s->kind == STRING)
            free(*(char **)((char *)cfg + s->offset));
    free(cfg->argv);
    memset(cfg, 0, sizeof(*cfg));
}

const char *fw_mode_name(enum fw_mode mode)
{
    return (size_t)mode < NMODES ? mode_names[mode] : "unknown";
}

/* ---- --help -------------------------------------------------------------- */

#define USAGE_INDENT 40 /* column of the meaning */

/* The modes that read a row ("in serializing, classic"), for its notes. */
static void modes_text(unsigned modes, char *out, size_t len)
{
    size_t i, n = (size_t)snprintf(out, len, "in");

    for (i = 0; i < NMODES && n < len; i++)
        if (modes & MODE_BIT(i))
            n += (size_t)snprintf(out + n, len - n, "%s %s",
                                  n > 2 ? "," : "", mode_names[i]);
}

/* Prints text at the meaning column, a new indented line per '\n'. */
static void usage_text(FILE *out, const char *text)
{
    const char *nl;

    while ((nl = strchr(text, '\n'))) {
        fprintf(out, "%.*s\n%*s", (int)(nl - text), text, USAGE_INDENT, "");
        text = nl + 1;
    }
    fputs(text, out);
}

/* What the table says beyond the meaning, a line each: the modes that
 * read the variable, its default in classic, its alias. */
static void usage_notes(FILE *out, const struct setting *s)
{
    char modes[64];

    if (s->kind != IGNORED && (s->modes & ALL) != ALL) {
        modes_text(s->modes, modes, sizeof(modes));
        fprintf(out, "\n%*s%s", USAGE_INDENT, "", modes);
    }
    if (s->classic)
        fprintf(out, "\n%*sclassic default: %s", USAGE_INDENT, "",
                *s->classic ? s->classic : "none");
    if (s->alias)
        fprintf(out, "\n%*salias %s%s", USAGE_INDENT, "", s->alias,
                (s->flags & ALIAS_WINS)     ? " (wins)"
                : (s->flags & ALIAS_EITHER) ? " (either enables)"
                                            : "");
}

static void usage_row(FILE *out, const struct setting *s)
{
    const struct setting *from = settings;
    char def[64];

    snprintf(def, sizeof(def), "%s", s->fallback ? s->fallback : "-");
    if (s->flags & FIELD_DEFAULT) {
        while (from->kind != DURATION || from->offset != s->default_field)
            from++;
        snprintf(def, sizeof(def), "= %s", from->name);
    }
    if (strlen(def) > 16 || strlen(s->name) > 20)
        fprintf(out, "  %-20s %s\n%*s", s->name, def, USAGE_INDENT, "");
    else
        fprintf(out, "  %-20s %-16s ", s->name, def);
    usage_text(out, s->help);
    usage_notes(out, s);
    fputc('\n', out);
}

void fw_config_usage(FILE *out)
{
    const struct setting *s;

    fprintf(out, "Usage: fwatchdog [option]\n\n"
            "An OpenFaaS function watchdog: serves HTTP and runs the "
            "function.\n\nOptions:\n"
            "  -h, --help             print this help and exit\n"
            "  -version, --version    print the version and commit, exit\n"
            "  -run-healthcheck, --run-healthcheck\n"
            "                         exit 0 if the lock file exists, "
            "else 1\n\n"
            "Environment: an empty value counts as unset; a duration is "
            "seconds (30) or\n"
            "Go's form (500ms, 1m30s, 1.5h); a boolean is true or 1, but "
            "only true for\n"
            "a classic-only variable in mode classic.\n\n"
            "  %-20s %-16s %s\n", "variable", "default", "meaning");
    for (s = settings; s < SETTINGS_END; s++)
        usage_row(out, s);
}
