/* health.c - the probes, the lock file and the drain.
 *
 * "Accepting" starts once the listeners are bound (and, in http mode,
 * the upstream answers) and ends at SIGTERM. The shutdown sequence of
 * spec 8 lives here; the signals that start it come from pid1.c.
 */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static struct {
    const struct fw_config *cfg;
    const struct fw_handler *function; /* answers ready_path */
    uv_loop_t *loop;
    char lock_path[PATH_MAX];
    bool accepting;
    bool stopping;
    uv_timer_t timer;            /* healthcheck_interval, then drain */
    void (*kill_rest)(void);
    void (*on_done)(int);
    int exit_code;               /* what on_done gets */
    uint64_t settle_until;       /* failure: wait for in-flight until */
} hs;

static bool lock_present(void)
{
    return hs.cfg->suppress_lock || access(hs.lock_path, F_OK) == 0;
}

static void answer(struct fw_request *r, int status, const char *body)
{
    static const struct fw_hdr text[] = {
        { "Content-Type", "text/plain; charset=utf-8" },
    };

    fw_response_send(r, status, body ? text : NULL, body ? 1 : 0, body,
                     body ? strlen(body) : 0);
}

static void on_probe(struct fw_request *r)
{
    bool ok = hs.accepting && lock_present();

    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        answer(r, 405, NULL);
    } else if (strcmp(r->path, "/_/health") == 0) {
        answer(r, ok ? 200 : 503, ok ? "OK" : NULL);
    } else if (!ok) {
        answer(r, 503, NULL);
    } else if (hs.cfg->max_inflight > 0 &&
               fw_server_inflight() >= hs.cfg->max_inflight) {
        answer(r, 429, NULL);
    } else if (hs.cfg->ready_path) {
        /* The function decides: GET ready_path, outside the limiter. */
        fw_request_forward(r, hs.function, hs.cfg->ready_path);
    } else {
        answer(r, 200, NULL);
    }
}

const struct fw_handler fw_health_handler = {
    .on_head = on_probe,
};

void fw_health_init(uv_loop_t *loop, const struct fw_config *cfg,
                    const struct fw_handler *function)
{
    hs.cfg = cfg;
    hs.function = function;
    hs.loop = loop;
    snprintf(hs.lock_path, sizeof(hs.lock_path), "%s/.lock", cfg->tmpdir);
    uv_timer_init(loop, &hs.timer);
    uv_unref((uv_handle_t *)&hs.timer);
}

/* The lock file is made afresh: what is at its path goes first, and the
 * file is created exclusively, never through a symlink nor blocking on a
 * FIFO. The function may run as another user and share TMPDIR (an http
 * upstream starts before the lock is written): it must not be able to
 * point root's O_TRUNC at another file, or stall the loop. A path that
 * keeps reappearing between the unlink and the open is an error. */
static int write_lock(const char *path)
{
    int fd, tries;

    for (tries = 0; tries < 3; tries++) {
        if (unlink(path) < 0 && errno != ENOENT)
            return -errno;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                  O_NONBLOCK | O_CLOEXEC, 0660);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

int fw_health_accept(void)
{
    int err;

    if (!hs.cfg->suppress_lock) {
        fw_log(FW_INFO, "Writing lock-file to: %s", hs.lock_path);
        err = write_lock(hs.lock_path);
        if (err < 0)
            return err;
    }
    hs.accepting = true;
    return 0;
}

bool fw_health_stopping(void)
{
    return hs.stopping;
}

static void on_drained(void)
{
    uv_timer_stop(&hs.timer);
    fw_log(FW_INFO, "Exiting. Active connections: %zu",
           fw_server_connections());
    hs.on_done(hs.exit_code);
}

static void on_drain_deadline(uv_timer_t *t)
{
    (void)t;
    fw_log(FW_INFO, "drain: write_timeout passed with %lld requests "
           "in flight, stopping them", (long long)fw_server_inflight());
    if (hs.kill_rest)
        hs.kill_rest();
    fw_server_close();
}

static void start_drain(uv_timer_t *t)
{
    (void)t;
    fw_log(FW_INFO, "No new connections allowed, draining: %lld requests",
           (long long)fw_server_inflight());
    if (hs.cfg->write_timeout_ms > 0)
        uv_timer_start(&hs.timer, on_drain_deadline,
                       (uint64_t)hs.cfg->write_timeout_ms, 0);
    fw_server_drain(on_drained);
}

/* After a failure: the listener stays open (probes see 503) until the
 * requests in flight are done, then the usual drain. */
static void on_settle(uv_timer_t *t)
{
    if (fw_server_inflight() > 0 && uv_now(hs.loop) < hs.settle_until) {
        uv_timer_start(t, on_settle, 50, 0);
        return;
    }
    start_drain(t);
}

void fw_health_shutdown(bool skip_wait, int exit_code,
                        void (*kill_rest)(void),
                        void (*on_done)(int exit_code))
{
    char d[32];
    int64_t wait_ms = skip_wait ? 0 : hs.cfg->healthcheck_interval_ms;

    if (hs.stopping) {
        /* A second signal does not cut the drain short; a failure
         * during it (the upstream died) still makes the exit status. */
        if (exit_code != 0)
            hs.exit_code = exit_code;
        return;
    }
    hs.stopping = true;
    hs.accepting = false;
    hs.exit_code = exit_code;
    hs.kill_rest = kill_rest;
    hs.on_done = on_done;
    fw_duration_format(wait_ms, d, sizeof(d));
    if (exit_code == 0)
        fw_log(FW_INFO, "SIGTERM: no new connections in %s", d);
    if (!hs.cfg->suppress_lock && unlink(hs.lock_path) < 0 &&
        errno != ENOENT)
        fw_log(FW_ERROR, "remove %s: %s", hs.lock_path, strerror(errno));
    uv_ref((uv_handle_t *)&hs.timer);
    if (exit_code != 0) {
        fw_server_stop_keepalive();
        hs.settle_until = uv_now(hs.loop) +
                          (uint64_t)(hs.cfg->write_timeout_ms > 0
                                         ? hs.cfg->write_timeout_ms : 0);
        on_settle(&hs.timer);
    } else if (wait_ms > 0) {
        /* Keep-alive connections learn at their next response. */
        fw_server_stop_keepalive();
        uv_timer_start(&hs.timer, start_drain, (uint64_t)wait_ms, 0);
    } else {
        start_drain(&hs.timer);
    }
}

int fw_health_check_lock(const char *tmpdir)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/.lock", tmpdir);
    if (access(path, F_OK) == 0)
        return 0;
    fprintf(stderr, "unable to find lock file.\n");
    return 1;
}

void fw_health_close(void)
{
    if (hs.loop && !uv_is_closing((uv_handle_t *)&hs.timer))
        uv_close((uv_handle_t *)&hs.timer, NULL);
}
