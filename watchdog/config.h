/* config.h - the watchdog's settings, read once from the environment.
 *
 * Every environment variable name lives in config.c; the rest of the
 * program sees only struct fw_config. Rules follow
 * shared/spec/behaviour.md section 2.
 */
#ifndef FW_CONFIG_H
#define FW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "syntax.h"    /* durations and fprocess words, for config's users */

enum fw_mode {
    FW_MODE_STREAMING,
    FW_MODE_SERIALIZING,
    FW_MODE_CLASSIC,
    FW_MODE_HTTP,
    FW_MODE_STATIC,
};

struct fw_config {
    enum fw_mode mode;
    const char *mode_trigger;    /* classic-only variable that chose classic
                                    (spec D1), or NULL */
    char *fprocess;              /* command line as given, NULL in static */
    char **argv;                 /* fprocess split per spec 5.1, NULL-ended */
    int port;                    /* main listener, 1..65535 */
    int metrics_port;            /* 0 = metrics off */
    char *upstream_url;          /* http mode, trailing '/' removed */
    char *content_type;          /* NULL = mode default (classic: sniff) */
    char *ready_path;            /* NULL = none */
    char *static_path;           /* static mode root */
    bool static_listing;         /* list directories without an index */
    char *tmpdir;                /* directory of the lock file */
    int64_t exec_timeout_ms;     /* 0 = none */
    int64_t read_timeout_ms;     /* > 0 */
    int64_t write_timeout_ms;    /* 0 = none (classic only) */
    int64_t healthcheck_interval_ms; /* 0 = no wait after SIGTERM */
    int64_t max_inflight;        /* 0 = no limit */
    int64_t http_workers;        /* http mode: copies of fprocess, >= 1 */
    int64_t log_buffer_size;     /* bytes; < 0 = unlimited */
    int64_t exec_timeout_grace_ms; /* SIGTERM to SIGKILL; 0 = SIGKILL */
    char *fprocess_user;         /* sandbox: "name", "uid[:gid]"; NULL */
    char *fprocess_workdir;      /* sandbox: children's cwd; NULL */
    int64_t fprocess_max_memory; /* sandbox: RLIMIT_AS bytes; 0 = none */
    int64_t fprocess_max_cpu_seconds;  /* RLIMIT_CPU; 0 = none */
    int64_t fprocess_max_open_files;   /* RLIMIT_NOFILE; 0 = none */
    int64_t fprocess_max_processes;    /* RLIMIT_NPROC; 0 = none */
    bool fprocess_no_new_privs;  /* sandbox: PR_SET_NO_NEW_PRIVS */
    bool suppress_lock;
    bool prefix_logs;
    bool log_callid;
    bool log_requests;           /* one access-log line per request */
    bool log_json;               /* log_format=json */
    bool http_buffer_req_body;
    bool cgi_headers;            /* classic only */
    bool marshal_request;        /* classic, serializing */
    bool combine_output;         /* classic (default true), serializing */
    bool write_debug;            /* classic, serializing */
    bool debug_headers;          /* classic */
};

/* Looks a variable up; returns NULL when unset. Tests pass a table. */
typedef const char *(*fw_getenv_fn)(const char *name, void *ctx);

/* Fills *cfg from the variables lookup() returns. On a fatal error
 * (missing fprocess, bad mode, bad quoting, ...) returns -EINVAL and
 * writes one line naming the variable into err[err_len]. Warnings for
 * values that fall back to their default go to warn() when it is not
 * NULL. The caller owns cfg's strings: free them with fw_config_release.
 */
int fw_config_load(struct fw_config *cfg, fw_getenv_fn lookup, void *ctx,
                   void (*warn)(const char *line),
                   char *err, size_t err_len);

void fw_config_release(struct fw_config *cfg);

/* Name of a mode as the spec writes it ("streaming", ...). */
const char *fw_mode_name(enum fw_mode mode);

/* Prints the --help text (every variable, default, meaning). */
void fw_config_usage(FILE *out);

#endif
