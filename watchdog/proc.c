/* proc.c - fork/exec and the one reaper.
 *
 * Design: libuv's uv_spawn reaps only the pids it spawned, and a
 * waitpid(-1) anywhere else steals their exit statuses, so a PID 1 that
 * must also reap orphans cannot use it. We fork and exec ourselves and
 * keep a table of the children someone waits for, keyed by pid. On
 * SIGCHLD (delivered through uv_signal_t, so handled on the loop) we
 * call waitpid(-1, WNOHANG) until nothing is left: a status whose pid is
 * in the table goes to its owner, any other (an adopted orphan, or a
 * child whose owner is gone) is simply discarded. No zombie survives a
 * SIGCHLD round.
 */
#include "proc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

#define FW_PROC_BUCKETS 256

static struct fw_proc *table[FW_PROC_BUCKETS];
static size_t registered;
static uv_signal_t sigchld;
static bool started;

/* Groups sent SIGTERM that get SIGKILL at their deadline. */
struct doomed {
    pid_t pgid;
    uint64_t kill_at_ms;         /* uv_now() time */
    struct doomed *next;
};

static struct doomed *doomed;
static uv_timer_t doom_timer;

static struct fw_proc **slot(pid_t pid)
{
    return &table[(unsigned)pid % FW_PROC_BUCKETS];
}

static void insert(struct fw_proc *p)
{
    struct fw_proc **s = slot(p->pid);

    p->next = *s;
    *s = p;
    registered++;
}

static struct fw_proc *take(pid_t pid)
{
    struct fw_proc **s;

    for (s = slot(pid); *s; s = &(*s)->next) {
        if ((*s)->pid == pid) {
            struct fw_proc *p = *s;

            *s = p->next;
            p->next = NULL;
            registered--;
            return p;
        }
    }
    return NULL;
}

static void spare(pid_t pid);

static void on_sigchld(uv_signal_t *h, int signum)
{
    int status;
    pid_t pid;

    (void)h;
    (void)signum;
    for (;;) {
        struct fw_proc *p;

        pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0)
            break;
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            /* ECHILD: nothing left to reap. */
            break;
        }
        p = take(pid);
        if (p != NULL)
            p->on_exit(p, status);
        else
            fw_log(FW_DEBUG, "reaped pid %d", (int)pid);
    }
}

int fw_proc_init(uv_loop_t *loop)
{
    int err;

    if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        fw_log(FW_ERROR, "warning: cannot become a subreaper (%s): "
               "orphans of functions will be reaped by the real init",
               strerror(errno));
    err = uv_signal_init(loop, &sigchld);
    if (err < 0)
        return err;
    err = uv_signal_start(&sigchld, on_sigchld, SIGCHLD);
    if (err < 0) {
        uv_close((uv_handle_t *)&sigchld, NULL);
        return err;
    }
    uv_unref((uv_handle_t *)&sigchld);
    uv_timer_init(loop, &doom_timer);
    started = true;
    /* Children may have exited before the handler existed. */
    on_sigchld(&sigchld, SIGCHLD);
    return 0;
}

void fw_proc_close(void)
{
    struct doomed *d;

    /* Nobody will wait out the graces any more. */
    while ((d = doomed) != NULL) {
        doomed = d->next;
        fw_proc_kill_group(d->pgid, SIGKILL);
        free(d);
    }
    if (started && !uv_is_closing((uv_handle_t *)&sigchld)) {
        uv_close((uv_handle_t *)&sigchld, NULL);
        uv_close((uv_handle_t *)&doom_timer, NULL);
    }
}

/* The child runs on this stack while we are suspended (CLONE_VFORK),
 * so one is enough for a single-threaded loop. */
static char child_stack[128 * 1024] __attribute__((aligned(64)));

struct child_args {
    const struct fw_spawn *s;
    volatile int err;            /* set by the child when exec fails */
    const char *volatile step;   /* the sandbox step that failed, or NULL */
};

/* In the child, between clone and exec. It shares our memory (CLONE_VM)
 * and runs while we wait, so: only async-signal-safe calls, nothing
 * written but its own stack and args->err. */
static int child_main(void *arg)
{
    static const char msg[] = "fwatchdog: exec failed\n";
    struct child_args *a = arg;
    const struct fw_spawn *s = a->s;
    /* The kernel's struct sigaction (x86-64, arm64): SIG_DFL, no flags. */
    static const struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        unsigned long mask;
    } dfl;
    unsigned long mask = 0;
    int i, err, null_fd = -1, fds[3];
    const char *step = NULL;

    /* Handlers first: signals are blocked until the mask is cleared.
     * Raw system calls: glibc's wrappers refuse its reserved signals
     * (32, 33), which an ignored disposition inherited from our parent
     * would otherwise leave ignored, and a sanitizer's interceptors must
     * not run in a child that shares our memory. */
    for (i = 1; i < NSIG; i++)
        if (i != SIGKILL && i != SIGSTOP)
            syscall(SYS_rt_sigaction, i, &dfl, NULL, sizeof(mask));
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof(mask));
    setsid();

    for (i = 0; i < 3; i++) {
        fds[i] = s->stdio[i];
        if (fds[i] < 0) {
            if (null_fd < 0)
                null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
            fds[i] = null_fd;
        }
    }
    /* A source fd may sit on a lower target number: move the sources
     * above 2 first, then dup2 them into place (dup2 clears CLOEXEC). */
    for (i = 0; i < 3; i++)
        if (fds[i] >= 0 && fds[i] < 3)
            fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
    for (i = 0; i < 3; i++) {
        if (fds[i] < 0 || dup2(fds[i], i) < 0) {
            a->err = fds[i] < 0 ? EBADF : errno;
            _exit(127);
        }
    }

    err = fw_sandbox_apply(&step);
    if (err < 0) {
        a->err = -err;
        a->step = step;
        _exit(127);
    }
    execve(s->path, s->argv, s->envp);
    a->err = errno;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* Nothing more to do: the status tells the watchdog. */
    }
    _exit(errno == EACCES ? 126 : 127);
}

int fw_proc_spawn(struct fw_proc *p, const struct fw_spawn *s)
{
    struct child_args a = { .s = s, .err = 0 };
    sigset_t all, old;
    pid_t pid;
    int err;

    /* Like posix_spawn: CLONE_VM|CLONE_VFORK costs no page-table copy
     * and no copy-on-write faults afterwards, which fork() does on every
     * request. Signals stay blocked until the child has reset its
     * handlers, so none of ours runs in the child. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = clone(child_main, child_stack + sizeof(child_stack),
                CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return -err;
    if (a.step != NULL)
        fw_log(FW_ERROR, "%s: cannot apply to the child: %s", a.step,
               strerror(a.err));
    if (a.err != 0)
        return -a.err;    /* the reaper collects the child */
    p->pid = pid;
    insert(p);
    spare(pid);
    return 0;
}

void fw_proc_forget(struct fw_proc *p)
{
    if (p->pid > 0)
        take(p->pid);
}

bool fw_proc_has_exited(const struct fw_proc *p)
{
    siginfo_t info;

    /* WNOWAIT leaves the zombie to the reaper, which reports it. */
    memset(&info, 0, sizeof(info));
    if (p->pid <= 0 ||
        waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return false;
    return info.si_pid == p->pid;
}

bool fw_proc_kill_group(pid_t pgid, int sig)
{
    if (pgid <= 1)
        return false;
    if (kill(-pgid, sig) == 0)
        return true;
    if (errno != ESRCH)
        fw_log(FW_ERROR, "kill process group %d: %s", (int)pgid,
               strerror(errno));
    return false;
}

static void on_doom_timer(uv_timer_t *t);

static void arm_doom_timer(void)
{
    uint64_t now = uv_now(doom_timer.loop), next = UINT64_MAX;
    struct doomed *d;

    for (d = doomed; d; d = d->next)
        if (d->kill_at_ms < next)
            next = d->kill_at_ms;
    if (doomed == NULL)
        uv_timer_stop(&doom_timer);
    else
        uv_timer_start(&doom_timer, on_doom_timer,
                       next > now ? next - now : 0, 0);
}

static void on_doom_timer(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);
    struct doomed **dp = &doomed, *d;

    while ((d = *dp) != NULL) {
        if (d->kill_at_ms <= now) {
            *dp = d->next;
            fw_proc_kill_group(d->pgid, SIGKILL);
            free(d);
        } else {
            dp = &d->next;
        }
    }
    arm_doom_timer();
}

/* A new child got pid: a group of that id cannot still exist (the
 * kernel does not reuse a live group's id), so a pending SIGKILL for the
 * old one must not hit the new. */
static void spare(pid_t pid)
{
    struct doomed **dp = &doomed, *d;

    while ((d = *dp) != NULL) {
        if (d->pgid == pid) {
            *dp = d->next;
            free(d);
        } else {
            dp = &d->next;
        }
    }
}

void fw_proc_stop_group(pid_t pgid, uint64_t grace_ms)
{
    struct doomed *d;

    if (pgid <= 1)
        return;
    if (grace_ms == 0 || !started) {
        fw_proc_kill_group(pgid, SIGKILL);
        return;
    }
    for (d = doomed; d; d = d->next)
        if (d->pgid == pgid)
            return;      /* already on its way: keep the first deadline */
    /* Most often no member is left (a finished request's group): then
     * there is nothing to doom. */
    if (!fw_proc_kill_group(pgid, SIGTERM))
        return;
    d = malloc(sizeof(*d));
    if (d == NULL) {
        fw_proc_kill_group(pgid, SIGKILL);
        return;
    }
    fw_proc_kill_group(pgid, SIGCONT);    /* a stopped one must see it */
    d->pgid = pgid;
    d->kill_at_ms = uv_now(doom_timer.loop) + grace_ms;
    d->next = doomed;
    doomed = d;
    arm_doom_timer();
}

size_t fw_proc_count(void)
{
    return registered;
}

static int check_file(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EACCES;
    if (access(path, X_OK) < 0)
        return -errno;
    return 0;
}

static int search_path(const char *name, char *out, size_t out_len)
{
    const char *dirs = getenv("PATH");
    const char *p, *end;

    if (dirs == NULL)
        dirs = "/usr/local/bin:/usr/bin:/bin";
    for (p = dirs; ; p = end + 1) {
        int n;

        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        if (end == p)
            n = snprintf(out, out_len, "./%s", name);
        else
            n = snprintf(out, out_len, "%.*s/%s", (int)(end - p), p, name);
        if (n > 0 && (size_t)n < out_len && check_file(out) == 0)
            return 0;
        if (*end == '\0')
            break;
    }
    snprintf(out, out_len,
             "exec: \"%s\": executable file not found in $PATH", name);
    return -ENOENT;
}

void fw_proc_strerror(int err, char *out, size_t out_len)
{
    /* Go's errno texts are glibc's in lower case. */
    const char *msg = strerror(err < 0 ? -err : err);
    size_t i;

    if (out_len == 0)
        return;
    for (i = 0; msg[i] && i + 1 < out_len; i++)
        out[i] = (char)tolower((unsigned char)msg[i]);
    out[i] = '\0';
}

int fw_proc_resolve(const char *name, char *out, size_t out_len)
{
    int err;

    if (strchr(name, '/') == NULL)
        return search_path(name, out, out_len);
    err = check_file(name);
    if (err < 0) {
        int n = snprintf(out, out_len, "fork/exec %s: ", name);
        size_t at = n < 0 ? out_len : (size_t)n;

        if (at < out_len)
            fw_proc_strerror(err, out + at, out_len - at);
        return err;
    }
    snprintf(out, out_len, "%s", name);
    return 0;
}

int fw_proc_resolve_in(const char *dir, const char *name, char *out,
                       size_t out_len)
{
    char joined[PATH_MAX];
    int n;

    if (dir == NULL || name[0] == '/' || strchr(name, '/') == NULL)
        return fw_proc_resolve(name, out, out_len);
    n = snprintf(joined, sizeof(joined), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(joined)) {
        snprintf(out, out_len, "fork/exec %s: file name too long", name);
        return -ENAMETOOLONG;
    }
    return fw_proc_resolve(joined, out, out_len);
}

static const char *signal_name(int sig)
{
    /* Go's names (syscall.Signal.String), lower case. */
    switch (sig) {
    case SIGHUP: return "hangup";
    case SIGINT: return "interrupt";
    case SIGQUIT: return "quit";
    case SIGILL: return "illegal instruction";
    case SIGTRAP: return "trace/breakpoint trap";
    case SIGABRT: return "aborted";
    case SIGBUS: return "bus error";
    case SIGFPE: return "floating point exception";
    case SIGKILL: return "killed";
    case SIGUSR1: return "user defined signal 1";
    case SIGSEGV: return "segmentation fault";
    case SIGUSR2: return "user defined signal 2";
    case SIGPIPE: return "broken pipe";
    case SIGALRM: return "alarm clock";
    case SIGTERM: return "terminated";
    case SIGSTKFLT: return "stack fault";
    case SIGCHLD: return "child exited";
    case SIGCONT: return "continued";
    case SIGSTOP: return "stopped (signal)";
    case SIGTSTP: return "stopped";
    case SIGTTIN: return "stopped (tty input)";
    case SIGTTOU: return "stopped (tty output)";
    case SIGURG: return "urgent I/O condition";
    case SIGXCPU: return "CPU time limit exceeded";
    case SIGXFSZ: return "file size limit exceeded";
    case SIGVTALRM: return "virtual timer expired";
    case SIGPROF: return "profiling timer expired";
    case SIGWINCH: return "window changed";
    case SIGIO: return "I/O possible";
    case SIGPWR: return "power failure";
    case SIGSYS: return "bad system call";
    default: return NULL;
    }
}

bool fw_proc_describe(int status, char *out, size_t out_len)
{
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) == 0)
            return false;
        snprintf(out, out_len, "exit status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *name = signal_name(WTERMSIG(status));

        const char *core = WCOREDUMP(status) ? " (core dumped)" : "";

        if (name)
            snprintf(out, out_len, "signal: %s%s", name, core);
        else
            snprintf(out, out_len, "signal: signal %d%s", WTERMSIG(status),
                     core);
    } else {
        snprintf(out, out_len, "wait status %d", status);
    }
    return true;
}
