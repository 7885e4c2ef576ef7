/* sandbox.h - what a child gives up before exec: its user and groups,
 * the right to gain privileges, resources, and the working directory.
 *
 * Off by default: with no fprocess_user, fprocess_workdir,
 * fprocess_no_new_privs or fprocess_max_* set, children run as the
 * watchdog does. The policy is resolved once at start (names looked up,
 * limits checked) so that applying it in a child is a handful of
 * system calls.
 */
#ifndef FW_SANDBOX_H
#define FW_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Resolves cfg's sandbox settings. On error (unknown user, a workdir
 * that is not a directory, a limit above the hard limit, a user change
 * without the privilege for it) returns -errno and writes one line
 * naming the variable into err. */
int fw_sandbox_init(const struct fw_config *cfg, char *err, size_t err_len);

/* True when any setting is in force. */
bool fw_sandbox_active(void);

/* Runs in a child between clone and exec, sharing the watchdog's memory:
 * raw system calls only. Closes every fd above 2, then enters the
 * workdir, sets the limits, the groups and ids, and no_new_privs.
 * Returns 0, or -errno with *step naming what failed. */
int fw_sandbox_apply(const char **step);

/* A child ended with wait_status: appends to out[0..len) what the
 * sandbox has to say about it ("(fprocess_max_cpu_seconds=2)" after
 * "signal: CPU time limit exceeded",
 * or the limits in force when it failed otherwise); nothing when the
 * sandbox has no limits or the child succeeded. */
void fw_sandbox_explain(int wait_status, char *out, size_t out_len);

#endif
