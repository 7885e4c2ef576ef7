/* pid1.c - signals: SIGTERM and SIGINT start the drain, the job-control
 * and user signals go to the http-mode upstream or are logged. As PID 1
 * the kernel delivers only signals that have a handler, so each one we
 * promise to act on is installed here.
 */
#include "pid1.h"

#include <signal.h>
#include <string.h>

#include "log.h"

static const int handled[] = {
    SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
};
#define N_HANDLED (sizeof(handled) / sizeof(handled[0]))

static uv_signal_t handles[N_HANDLED];
static struct fw_pid1_hooks hooks;
static int first_stop;         /* the signal that started the drain */

static void on_signal(uv_signal_t *h, int sig)
{
    (void)h;
    switch (sig) {
    case SIGTERM:
        if (first_stop == 0)
            first_stop = sig;
        hooks.on_stop(false);    /* again: the drain goes on */
        return;
    case SIGINT:
        /* Ctrl-C twice stops an interactive run at once; an
         * orchestrator's drain (SIGTERM) is never cut short. */
        if (first_stop == SIGINT) {
            fw_log(FW_INFO, "SIGINT again: exiting now");
            hooks.on_force();
            return;
        }
        if (first_stop == 0)
            first_stop = sig;
        hooks.on_stop(true);
        return;
    default:
        if (hooks.forward && hooks.forward(sig))
            fw_log(FW_INFO, "forwarded signal %s", strsignal(sig));
        else
            fw_log(FW_INFO, "ignoring signal %s", strsignal(sig));
    }
}

int fw_pid1_init(uv_loop_t *loop, const struct fw_pid1_hooks *h)
{
    size_t i;
    int err;

    hooks = *h;
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < N_HANDLED; i++) {
        err = uv_signal_init(loop, &handles[i]);
        if (err == 0)
            err = uv_signal_start(&handles[i], on_signal, handled[i]);
        if (err < 0)
            return err;
        /* Signal handlers alone do not keep the loop running. */
        uv_unref((uv_handle_t *)&handles[i]);
    }
    return 0;
}

void fw_pid1_close(void)
{
    size_t i;

    for (i = 0; i < N_HANDLED; i++)
        if (handles[i].loop && !uv_is_closing((uv_handle_t *)&handles[i]))
            uv_close((uv_handle_t *)&handles[i], NULL);
}
