/* metrics.h - counters, gauges and histograms kept in memory, and their
 * Prometheus text (format 0.0.4) served on metrics_port (spec 10).
 *
 * The hooks are one call each at the place an event happens; they cost
 * an increment and nothing at all while metrics are off. Everything
 * runs on the loop thread, so nothing is locked.
 */
#ifndef FW_METRICS_H
#define FW_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

/* Why the watchdog killed a child (fwatchdog_children_killed_total). */
enum fw_kill_reason {
    FW_KILL_TIMEOUT,             /* exec_timeout passed */
    FW_KILL_CLIENT_ABORT,        /* the client left before the end */
    FW_KILL_SHUTDOWN,            /* the drain deadline passed */
};

/* How a request to the function's server failed (http mode). */
enum fw_upstream_error {
    FW_UPSTREAM_CONNECTION,      /* refused, reset or closed: 500 */
    FW_UPSTREAM_TIMEOUT,         /* no response head in time: 504 */
    FW_UPSTREAM_BAD_RESPONSE,    /* unparsable response: 500 */
    FW_UPSTREAM_UNAVAILABLE,     /* the function's server is gone: 503 */
};

/* Turns counting on for the families cfg's mode has, notes the process
 * start time and serves GET /metrics on cfg->metrics_port, on the
 * server's admin listener (call after fw_server_start). metrics_port 0
 * turns all of it off. A port that cannot be bound (or is port) is
 * logged, naming metrics_port, and its -errno returned: metrics are off
 * then, and functions are served all the same. */
int fw_metrics_start(const struct fw_config *cfg);

/* Closes the metrics listener and its connections (async), at exit. */
void fw_metrics_close(void);

/* Forgets every value and turns counting on for mode (tests). */
void fw_metrics_reset(enum fw_mode mode);

/* Appends the exposition of every family to out. Returns 0 or -errno
 * (out->failed: out of memory or over its cap). */
int fw_metrics_render(struct fw_buf *out);

/* ---- hooks ------------------------------------------------------------ */

/* A function-path request began (its head is complete). */
void fw_metrics_request_begin(void);

/* It ended with status (method as sent, "GET"), start_ns being
 * uv_hrtime() when it began: http_requests_total and
 * http_request_duration_seconds. */
void fw_metrics_request_end(const char *method, int status,
                            uint64_t start_ns);

/* A request answered 429 because max_inflight was reached. */
void fw_metrics_rejected(void);

/* Body bytes of function-path requests: from the client, to it. */
void fw_metrics_bytes_in(size_t len);
void fw_metrics_bytes_out(size_t len);

/* A child started, spawn_ns after its start was asked for. */
void fw_metrics_child_started(uint64_t spawn_ns);

/* A child could not be started (not found, not executable, no memory). */
void fw_metrics_child_failed(void);

/* A child was reaped with wait_status (classed 0, nonzero, signal). */
void fw_metrics_child_exited(int wait_status);

/* The watchdog killed a running child. */
void fw_metrics_child_killed(enum fw_kill_reason why);

/* http mode: a request went upstream on a pooled connection (reused) or
 * a new one. */
void fw_metrics_upstream_conn(bool reused);

/* http mode: a request failed upstream. */
void fw_metrics_upstream_error(enum fw_upstream_error what);

#endif
