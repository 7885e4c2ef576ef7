/* proc.h - starting children and learning how they ended.
 *
 * The one place that starts children and calls waitpid(): a spawner hands over a
 * struct fw_proc, which is told the child's wait status by pid. Every
 * other exited descendant (orphans re-parented to us as PID 1 or as a
 * subreaper) is reaped and forgotten.
 */
#ifndef FW_PROC_H
#define FW_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct fw_proc;
typedef void (*fw_proc_exit_cb)(struct fw_proc *p, int wait_status);

/* One child being watched. Embedded in its owner, which must keep it
 * alive until on_exit has run or fw_proc_forget() was called. */
struct fw_proc {
    pid_t pid;               /* also its process group id */
    fw_proc_exit_cb on_exit; /* called once, from the loop */
    void *data;              /* owner */
    struct fw_proc *next;    /* hash chain, reaper's */
};

struct fw_spawn {
    const char *path;        /* executable, as fw_proc_resolve gave it */
    char *const *argv;       /* NULL-ended */
    char *const *envp;       /* NULL-ended */
    int stdio[3];            /* fds for the child's 0, 1, 2; -1 = /dev/null */
};

/* Starts the reaper on loop: SIGCHLD handling, and PR_SET_CHILD_SUBREAPER
 * when we are not PID 1. Returns 0 or -errno. */
int fw_proc_init(uv_loop_t *loop);

/* Stops the SIGCHLD handler (async close). */
void fw_proc_close(void);

/* Starts a child in its own session and process group, with default
 * signal dispositions, an empty mask, s->stdio on 0..2 and no other fd,
 * under the sandbox (sandbox.h), executing s->path. Returns once the exec has happened (or failed). On success
 * p->pid is set and p is registered: its on_exit runs once the child is
 * reaped. Returns 0 or -errno (clone or exec failed; p not registered).
 */
int fw_proc_spawn(struct fw_proc *p, const struct fw_spawn *s);

/* Unregisters p: the child will be reaped without telling anyone. */
void fw_proc_forget(struct fw_proc *p);

/* True when p's child has exited but its exit is not yet reported: a
 * timer due in the same loop turn as SIGCHLD may run first. */
bool fw_proc_has_exited(const struct fw_proc *p);

/* Sends sig to the process group of p (the child and what it started).
 * False when it reached no one: the group is gone (ESRCH, tolerated) or
 * kill failed (logged). */
bool fw_proc_kill_group(pid_t pgid, int sig);

/* Ends a process group: SIGKILL at once when grace_ms is 0, otherwise
 * SIGTERM (and SIGCONT) now and SIGKILL grace_ms later, whatever became
 * of the child's owner meanwhile. fw_proc_close() kills what is still
 * waiting. */
void fw_proc_stop_group(pid_t pgid, uint64_t grace_ms);

/* Finds name as execvp would (PATH search when it has no '/'). On
 * success writes the path into out and returns 0; otherwise returns
 * -errno and writes the Go watchdogs' error text into out
 * ("exec: \"x\": executable file not found in $PATH"). */
int fw_proc_resolve(const char *name, char *out, size_t out_len);

/* fw_proc_resolve for a child that starts in dir (fprocess_workdir; NULL:
 * ours): a relative name with a '/' ("./handler") is found there, and
 * out is then the joined path, so what runs is what was checked. */
int fw_proc_resolve_in(const char *dir, const char *name, char *out,
                       size_t out_len);

/* Writes Go's text of an errno (-errno accepted too): glibc's message in
 * lower case, "exec format error". */
void fw_proc_strerror(int err, char *out, size_t out_len);

/* Writes Go's wording of a wait status: "exit status 3",
 * "signal: killed". Returns false for a clean exit (status 0). */
bool fw_proc_describe(int wait_status, char *out, size_t out_len);

/* Number of children registered and not yet reaped. */
size_t fw_proc_count(void);

#endif
