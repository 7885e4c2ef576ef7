/* main.c - fwatchdog's steps: options, configuration, signals and the
 * reaper, the mode, the listener, the loop, the exit code. The only
 * exit() of the program is here.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "pid1.h"
#include "proc.h"
#include "proxy.h"
#include "runner.h"
#include "sandbox.h"
#include "server.h"
#include "static.h"
#include "upstream.h"

#ifndef FW_VERSION
#define FW_VERSION "dev"
#endif
#ifndef FW_GIT_SHA
#define FW_GIT_SHA "unknown"
#endif

static struct fw_config cfg;
static int exit_code;
static bool accepting;           /* the lock file is written */
static bool forced;              /* SIGINT twice: exit 130 now */

static const char *lookup_env(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static void warn_line(const char *line)
{
    fw_log(FW_ERROR, "warning: %s", line);
}

/* Handles -h, -version and -run-healthcheck (one or two dashes).
 * Returns -1 to go on, or an exit code. */
static int parse_options(int argc, char **argv)
{
    const char *opt, *tmpdir;

    if (argc < 2)
        return -1;
    opt = argv[1] + (argv[1][0] == '-' && argv[1][1] == '-');
    if (argc == 2 && (strcmp(opt, "-h") == 0 || strcmp(opt, "-help") == 0)) {
        fw_config_usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(opt, "-version") == 0) {
        printf("Version: %s\tSHA: %s\n", FW_VERSION, FW_GIT_SHA);
        return 0;
    }
    if (argc == 2 && strcmp(opt, "-run-healthcheck") == 0) {
        tmpdir = getenv("TMPDIR");
        return fw_health_check_lock(tmpdir && *tmpdir ? tmpdir : "/tmp");
    }
    fprintf(stderr, "fwatchdog: unknown option %s\n\n", argv[1]);
    fw_config_usage(stderr);
    return 2;
}

/* From here on lines go through the log's writer thread, so a stalled
 * reader of stdout or stderr never stalls the loop; every exit flushes
 * them (bounded, log.h). */
static int start_logging(uv_loop_t *loop)
{
    int err;

    fw_log_set_json(cfg.log_json);
    err = fw_log_start(FW_LOG_QUEUE_BYTES);
    if (err == 0 && fw_log_attach(loop) < 0)
        fw_log(FW_ERROR, "warning: log lines wake the writer one by one");
    if (err == 0 && atexit(fw_log_stop) != 0) {
        fw_log_stop();
        err = -ENOMEM;
    }
    if (err < 0)
        fw_log(FW_ERROR, "fwatchdog: cannot start the log writer: %s",
               strerror(-err));
    return err;
}

static void log_start(void)
{
    char r[32], w[32], x[32], h[32];

    fw_log(FW_INFO, "Version: %s\tSHA: %s", FW_VERSION, FW_GIT_SHA);
    if (cfg.mode_trigger)
        fw_log(FW_INFO, "mode is unset and %s is set: using mode=classic "
               "(the classic watchdog's semantics)", cfg.mode_trigger);
    fw_log(FW_INFO, "Watchdog mode: %s\tfprocess: \"%s\"",
           fw_mode_name(cfg.mode), cfg.fprocess ? cfg.fprocess : "");
    fw_duration_format(cfg.read_timeout_ms, r, sizeof(r));
    fw_duration_format(cfg.write_timeout_ms, w, sizeof(w));
    fw_duration_format(cfg.exec_timeout_ms, x, sizeof(x));
    fw_duration_format(cfg.healthcheck_interval_ms, h, sizeof(h));
    fw_log(FW_INFO, "Timeouts: read: %s write: %s hard: %s health: %s", r,
           w, x, h);
}

/* Closes what keeps the loop alive. */
static void close_all(void)
{
    fw_runner_close();
    fw_metrics_close();
    if (cfg.mode == FW_MODE_HTTP)
        fw_proxy_close();
    fw_pid1_close();
    fw_proc_close();
    fw_health_close();
}

/* The drain is over; in http mode the upstream is stopped only now, so
 * it serves every request of the drain (spec 6.1). */
static void on_done(int code)
{
    if (forced)
        return;    /* the drain ended as on_force closed its connections */
    exit_code = code;
    if (cfg.mode == FW_MODE_HTTP)
        fw_upstream_stop(close_all);
    else
        close_all();
}

static void on_stop(bool skip_wait)
{
    fw_health_shutdown(skip_wait, 0, fw_runner_kill_all, on_done);
}

/* Ctrl-C twice: everything is killed and the loop left now; main's
 * closing walk takes what is still open (the upstream's pipes, whose
 * exits are no longer reaped). */
static void on_force(void)
{
    forced = true;
    exit_code = 130;
    fw_runner_kill_all();
    if (cfg.mode == FW_MODE_HTTP)
        fw_upstream_signal(SIGKILL);
    fw_server_close();
    close_all();
    uv_stop(uv_default_loop());
}

static bool forward(int sig)
{
    if (cfg.mode != FW_MODE_HTTP)
        return false;    /* per-request children are not signalled */
    fw_upstream_signal(sig);
    return true;
}

/* Writes the lock file and starts answering 200 (spec 3). */
static int accept_requests(void)
{
    int err = fw_health_accept();

    if (err < 0) {
        fw_log(FW_ERROR, "lock file: cannot write %s/.lock: %s (set "
               "suppress_lock=true to run without it)", cfg.tmpdir,
               uv_strerror(err));
        return err;
    }
    accepting = true;
    return 0;
}

/* http mode: a worker accepts connections. The first one makes the
 * watchdog ready (spec 3: the lock file only now). */
static void on_upstream_ready(void)
{
    if (!accepting && !fw_health_stopping() && accept_requests() < 0) {
        fw_health_shutdown(true, 1, NULL, on_done);
        return;
    }
    fw_proxy_dispatch_waiting();
}

/* http mode: the function's server is gone (spec 6.1). */
static void on_upstream_fatal(void)
{
    fw_proxy_gone();
    fw_health_shutdown(true, 1, NULL, on_done);
}

static const struct fw_handler *function_handler(void)
{
    switch (cfg.mode) {
    case FW_MODE_HTTP:
        return &fw_proxy_handler;
    case FW_MODE_STATIC:
        return &fw_static_handler;
    default:
        return &fw_runner_handler;
    }
}

static int start_serving(uv_loop_t *loop)
{
    struct fw_server_config scfg = {
        .port = cfg.port,
        .read_timeout_ms = cfg.read_timeout_ms,
        .write_timeout_ms = cfg.write_timeout_ms,
        .max_inflight = cfg.max_inflight,
        .late_body_status = cfg.mode == FW_MODE_CLASSIC ? 400 : 0,
        .log_requests = cfg.log_requests,
        .log_callid = cfg.log_callid,
        .log_reason = cfg.mode == FW_MODE_HTTP,
        .function = function_handler(),
        .probes = &fw_health_handler,
    };
    int err;

    if (cfg.mode == FW_MODE_STATIC) {
        err = fw_static_init(&cfg);    /* logs its own line */
        if (err < 0)
            return err;
    } else {
        err = fw_runner_init(loop, &cfg);
    }
    if (err < 0) {
        fw_log(FW_ERROR, "fwatchdog: %s", uv_strerror(err));
        return err;
    }
    err = fw_server_start(loop, &scfg);
    if (err < 0) {
        fw_log(FW_ERROR, "port: cannot listen on %d: %s", cfg.port,
               uv_strerror(err));
        return err;
    }
    fw_log(FW_INFO, "Listening on port: %d", cfg.port);
    fw_metrics_start(&cfg);    /* a failure is logged; functions go on */
    if (cfg.mode == FW_MODE_HTTP) {
        /* Requests wait for a ready worker; the lock file too. */
        fw_proxy_init(loop, &cfg);
        return fw_upstream_start(loop, &cfg, on_upstream_ready,
                                 on_upstream_fatal);
    }
    return accept_requests();
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    static const struct fw_pid1_hooks hooks = {
        .on_stop = on_stop,
        .on_force = on_force,
        .forward = forward,
    };
    uv_loop_t *loop = uv_default_loop();
    char err[512];
    int rc;

    rc = parse_options(argc, argv);
    if (rc >= 0)
        return rc;
    fw_log_init(FW_INFO);
    if (fw_config_load(&cfg, lookup_env, NULL, warn_line, err,
                       sizeof(err)) < 0) {
        fprintf(stderr, "fwatchdog: %s\n", err);
        return 1;
    }
    if (start_logging(loop) < 0) {
        fw_config_release(&cfg);
        return 1;
    }
    log_start();
    if (fw_sandbox_init(&cfg, err, sizeof(err)) < 0) {
        fw_log(FW_ERROR, "fwatchdog: %s", err);
        fw_config_release(&cfg);
        return 1;
    }
    if (fw_proc_init(loop) < 0 || fw_pid1_init(loop, &hooks) < 0) {
        fw_log(FW_ERROR, "fwatchdog: cannot install signal handlers");
        return 1;
    }
    fw_health_init(loop, &cfg, function_handler());
    if (start_serving(loop) < 0) {
        exit_code = 1;
        fw_server_close();
        close_all();
    } else {
        uv_run(loop, UV_RUN_DEFAULT);
    }
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0)
        fw_log(FW_ERROR, "warning: handles left open at exit");
    fw_runner_release();
    fw_static_release();
    fw_config_release(&cfg);
    exit(exit_code);
}
