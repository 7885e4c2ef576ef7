/* runner.h - the fork modes (streaming, serializing, classic): one child
 * per request, its stdin fed from the request body, its stdout turned
 * into the response (spec 5).
 */
#ifndef FW_RUNNER_H
#define FW_RUNNER_H

#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "server.h"

/* The function handler of the fork modes. */
extern const struct fw_handler fw_runner_handler;

/* Prepares the runner for cfg (which must outlive the loop): copies the
 * environment children inherit. Returns 0 or -errno. */
int fw_runner_init(uv_loop_t *loop, const struct fw_config *cfg);

/* Frees what fw_runner_init allocated. */
void fw_runner_release(void);

/* SIGKILLs the process group of every running child. */
void fw_runner_kill_all(void);

/* At exit: kills every child left and closes its pipes (async). */
void fw_runner_close(void);

/* Children running now. */
size_t fw_runner_active(void);

#endif
