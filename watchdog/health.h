/* health.h - /_/health and /_/ready, the lock file, and the shutdown
 * sequence that turns them off (spec 4 and 8).
 */
#ifndef FW_HEALTH_H
#define FW_HEALTH_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "server.h"

/* Answers the probes; install as fw_server_config.probes. */
extern const struct fw_handler fw_health_handler;

/* Remembers cfg (which must outlive the loop) and the handler that
 * answers /_/ready when ready_path is set. */
void fw_health_init(uv_loop_t *loop, const struct fw_config *cfg,
                    const struct fw_handler *function);

/* Writes the lock file (unless suppress_lock) and starts answering 200.
 * Returns 0 or -errno. */
int fw_health_accept(void);

/* Starts the graceful shutdown: probes 503, lock removed, listener open
 * for healthcheck_interval (skipped when skip_wait), then drain bounded
 * by write_timeout. on_done(exit_code) runs once at the end. kill_rest
 * is called when the drain deadline passes with requests in flight. */
void fw_health_shutdown(bool skip_wait, int exit_code,
                        void (*kill_rest)(void),
                        void (*on_done)(int exit_code));

/* True once shutdown has begun. */
bool fw_health_stopping(void);

/* Closes the drain timer (async). */
void fw_health_close(void);

/* --run-healthcheck: 0 if $TMPDIR/.lock exists, else 1. */
int fw_health_check_lock(const char *tmpdir);

#endif
