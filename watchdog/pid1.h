/* pid1.h - the signals a PID 1 must handle (spec 8). Reaping lives in
 * proc.c, next to fork.
 */
#ifndef FW_PID1_H
#define FW_PID1_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

struct fw_pid1_hooks {
    /* SIGTERM (skip_wait false) or a first SIGINT (true). */
    void (*on_stop)(bool skip_wait);
    /* A second SIGINT: stop now. */
    void (*on_force)(void);
    /* SIGHUP, SIGQUIT, SIGUSR1/2, SIGWINCH: passes sig on and returns
     * true, or returns false to have it ignored (fork modes). */
    bool (*forward)(int sig);
};

/* Installs the handlers on loop; SIGPIPE is ignored. Returns 0 or
 * -errno. */
int fw_pid1_init(uv_loop_t *loop, const struct fw_pid1_hooks *hooks);

/* Closes the signal handles (async). */
void fw_pid1_close(void);

#endif
