/* check_proc.c - proc.c: Go's wording of wait statuses and lookup errors
 * (spec 5.5), and on a real uv loop: spawning with stdio, process groups
 * and sessions, clean signal state, exit delivery by pid, reaping of
 * adopted orphans, forget, group kill and the child count.
 *
 * Loop tests run the loop until a condition holds, with a timer as the
 * deadline; nothing sleeps. Under valgrind clone(CLONE_VM|CLONE_VFORK)
 * becomes a plain fork, so the exec errno written by the child is not
 * seen by fw_proc_spawn: the one test that needs it says so and skips.
 */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "proc.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define DEADLINE_MS 5000

/* ---- fw_proc_describe ---------------------------------------------------- */

START_TEST(clean_exit_is_not_an_error)
{
    char out[64] = "untouched";

    ck_assert(!fw_proc_describe(0, out, sizeof(out)));
}
END_TEST

static const int exit_codes[] = { 1, 2, 3, 42, 126, 127, 128, 255 };

START_TEST(exit_status_reads_as_go_does)
{
    char out[64], want[64];

    ck_assert(fw_proc_describe(exit_codes[_i] << 8, out, sizeof(out)));
    snprintf(want, sizeof(want), "exit status %d", exit_codes[_i]);
    ck_assert_str_eq(out, want);
}
END_TEST

/* Every signal whose default action ends a process, with Go's name
 * (syscall signal table, zerrors_linux_amd64.go). */
static const struct {
    int sig;
    const char *text;
} signals[] = {
    { SIGHUP, "signal: hangup" },
    { SIGINT, "signal: interrupt" },
    { SIGQUIT, "signal: quit" },
    { SIGILL, "signal: illegal instruction" },
    { SIGTRAP, "signal: trace/breakpoint trap" },
    { SIGABRT, "signal: aborted" },
    { SIGBUS, "signal: bus error" },
    { SIGFPE, "signal: floating point exception" },
    { SIGKILL, "signal: killed" },
    { SIGUSR1, "signal: user defined signal 1" },
    { SIGSEGV, "signal: segmentation fault" },
    { SIGUSR2, "signal: user defined signal 2" },
    { SIGPIPE, "signal: broken pipe" },
    { SIGALRM, "signal: alarm clock" },
    { SIGTERM, "signal: terminated" },
    { SIGSTKFLT, "signal: stack fault" },
    { SIGXCPU, "signal: CPU time limit exceeded" },
    { SIGXFSZ, "signal: file size limit exceeded" },
    { SIGVTALRM, "signal: virtual timer expired" },
    { SIGPROF, "signal: profiling timer expired" },
    { SIGIO, "signal: I/O possible" },
    { SIGPWR, "signal: power failure" },
    { SIGSYS, "signal: bad system call" },
    { 34, "signal: signal 34" },
    { 64, "signal: signal 64" },
};

START_TEST(death_by_signal_reads_as_go_does)
{
    char out[64];

    ck_assert(fw_proc_describe(signals[_i].sig, out, sizeof(out)));
    ck_assert_str_eq(out, signals[_i].text);
}
END_TEST

/* Go's ProcessState.String appends " (core dumped)" when WCOREDUMP. */
START_TEST(core_dump_is_mentioned_as_go_does)
{
    char out[64];

    ck_assert(fw_proc_describe(SIGSEGV | 0x80, out, sizeof(out)));
    ck_assert_str_eq(out, "signal: segmentation fault (core dumped)");
}
END_TEST

START_TEST(describe_truncates_to_the_buffer)
{
    char out[8];

    memset(out, 'X', sizeof(out));
    ck_assert(fw_proc_describe(3 << 8, out, sizeof(out)));
    ck_assert_str_eq(out, "exit st");
    ck_assert(fw_proc_describe(SIGKILL, out, 1));
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---- fw_proc_resolve ----------------------------------------------------- */

static char tmp[64];          /* a scratch directory per test */
static char *saved_path;      /* PATH before the test */

static void tmp_setup(void)
{
    const char *p = getenv("PATH");

    snprintf(tmp, sizeof(tmp), "/tmp/check_proc.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    saved_path = p ? strdup(p) : NULL;
}

static void tmp_teardown(void)
{
    char cmd[128];

    if (saved_path) {
        setenv("PATH", saved_path, 1);
        free(saved_path);
        saved_path = NULL;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "check_proc: cannot remove %s\n", tmp);
}

/* Creates tmp/rel as a file of the given mode, or a directory when
 * mode is 0; returns its path in a static buffer. */
static const char *make(const char *rel, mode_t mode)
{
    static char path[PATH_MAX];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", tmp, rel);
    if (mode == 0) {
        ck_assert_int_eq(mkdir(path, 0755), 0);
        return path;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

START_TEST(name_is_found_in_path)
{
    char out[PATH_MAX];

    ck_assert_int_eq(fw_proc_resolve("sh", out, sizeof(out)), 0);
    ck_assert_int_eq(out[0], '/');
    ck_assert_str_eq(strrchr(out, '/'), "/sh");
    ck_assert_int_eq(access(out, X_OK), 0);
}
END_TEST

START_TEST(path_search_skips_directories_and_non_executables)
{
    char out[PATH_MAX], path[4 * sizeof(tmp) + 32], want[PATH_MAX];

    make("d0", 0);
    make("d0/tool", 0);
    make("d1", 0);
    make("d1/tool", 0644);
    make("d2", 0);
    snprintf(want, sizeof(want), "%s", make("d2/tool", 0755));
    snprintf(path, sizeof(path), "%s/nosuchdir:%s/d0:%s/d1:%s/d2", tmp, tmp,
             tmp, tmp);
    setenv("PATH", path, 1);
    ck_assert_int_eq(fw_proc_resolve("tool", out, sizeof(out)), 0);
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(name_not_in_path_gives_go_error)
{
    char out[256], path[128];

    make("d1", 0);
    make("d1/tool", 0644);
    snprintf(path, sizeof(path), "%s/d1", tmp);
    setenv("PATH", path, 1);
    ck_assert_int_eq(fw_proc_resolve("tool", out, sizeof(out)), -ENOENT);
    ck_assert_str_eq(out, "exec: \"tool\": executable file not found in $PATH");
    ck_assert_int_eq(fw_proc_resolve("nosuch", out, sizeof(out)), -ENOENT);
    ck_assert_str_eq(out,
                     "exec: \"nosuch\": executable file not found in $PATH");
}
END_TEST

/* A name with a slash is never looked up in PATH, even if PATH has it. */
START_TEST(name_with_a_slash_is_not_searched_in_path)
{
    char out[256], path[128];

    make("d2", 0);
    make("d2/sub", 0);
    make("d2/sub/tool", 0755);
    snprintf(path, sizeof(path), "%s/d2", tmp);
    setenv("PATH", path, 1);
    ck_assert_int_eq(fw_proc_resolve("sub/tool", out, sizeof(out)), -ENOENT);
    ck_assert_str_eq(out, "fork/exec sub/tool: no such file or directory");
}
END_TEST

START_TEST(missing_path_gives_go_error)
{
    char out[256];

    ck_assert_int_eq(fw_proc_resolve("./nope", out, sizeof(out)), -ENOENT);
    ck_assert_str_eq(out, "fork/exec ./nope: no such file or directory");
}
END_TEST

START_TEST(path_is_kept_as_given)
{
    char out[PATH_MAX], want[PATH_MAX];

    snprintf(want, sizeof(want), "%s", make("run", 0700));
    ck_assert_int_eq(fw_proc_resolve(want, out, sizeof(out)), 0);
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(non_executable_file_is_permission_denied)
{
    char out[PATH_MAX + 64], want[PATH_MAX + 64];
    const char *path = make("plain", 0644);

    snprintf(want, sizeof(want), "fork/exec %s: permission denied", path);
    ck_assert_int_eq(fw_proc_resolve(path, out, sizeof(out)), -EACCES);
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(directory_is_permission_denied)
{
    char out[PATH_MAX + 64], want[PATH_MAX + 64];

    snprintf(want, sizeof(want), "fork/exec %s: permission denied", tmp);
    ck_assert_int_eq(fw_proc_resolve(tmp, out, sizeof(out)), -EACCES);
    ck_assert_str_eq(out, want);
}
END_TEST

/* Go's syscall.Errno texts are lower case ("not a directory"). */
START_TEST(other_lookup_errors_use_go_wording)
{
    char out[PATH_MAX + 64], want[PATH_MAX + 64], path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/x", make("plain", 0755));
    snprintf(want, sizeof(want), "fork/exec %s: not a directory", path);
    ck_assert_int_eq(fw_proc_resolve(path, out, sizeof(out)), -ENOTDIR);
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(resolve_truncates_to_the_buffer)
{
    char out[8];

    ck_assert_int_lt(fw_proc_resolve("nosuch-at-all", out, sizeof(out)), 0);
    ck_assert_uint_eq(strlen(out), 7);
    ck_assert_int_lt(fw_proc_resolve("./nope", out, sizeof(out)), 0);
    ck_assert_uint_eq(strlen(out), 7);
}
END_TEST

/* ---- the loop ------------------------------------------------------------ */

struct child {
    struct fw_proc proc;        /* data = this */
    int exits;                  /* on_exit calls */
    int status;                 /* the last wait status */
};

struct reader {
    uv_pipe_t pipe;             /* data = this */
    struct fw_buf got;          /* everything read */
    bool eof;                   /* EOF or error seen */
    bool open;                  /* handle not yet closed */
};

static uv_loop_t loop;
static uv_timer_t deadline;
static bool loop_open;
static bool timed_out;
static pid_t strays[64];        /* killed by loop_teardown */
static int n_strays;

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    timed_out = true;
}

static void loop_setup(void)
{
    timed_out = false;
    n_strays = 0;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    loop_open = true;
    ck_assert_int_eq(fw_proc_init(&loop), 0);
    ck_assert_int_eq(uv_timer_init(&loop, &deadline), 0);
    ck_assert_int_eq(uv_timer_start(&deadline, on_deadline, DEADLINE_MS, 0),
                     0);
}

/* Closes every handle and checks the loop has nothing left. */
static void finish(void)
{
    if (!loop_open)
        return;
    loop_open = false;
    fw_proc_close();
    uv_close((uv_handle_t *)&deadline, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* After a failed test: kill what it left running, close what it left
 * open, so that the next test (CK_FORK=no) starts clean. */
static void loop_teardown(void)
{
    int i;

    if (!loop_open)
        return;
    loop_open = false;
    for (i = 0; i < n_strays; i++)
        kill(strays[i], SIGKILL);
    fw_proc_close();
    uv_walk(&loop, close_any, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void on_child_exit(struct fw_proc *p, int status)
{
    struct child *c = p->data;

    ck_assert_ptr_eq(p, &c->proc);
    c->exits++;
    c->status = status;
}

/* Starts argv[0] (an absolute path) with the given stdio. */
static int spawn(struct child *c, char *const argv[], int in, int out,
                 int err)
{
    struct fw_spawn s = { argv[0], argv, environ, { in, out, err } };
    int rc;

    memset(c, 0, sizeof(*c));
    c->proc.on_exit = on_child_exit;
    c->proc.data = c;
    rc = fw_proc_spawn(&c->proc, &s);
    if (rc == 0 && n_strays < N(strays))
        strays[n_strays++] = c->proc.pid;
    return rc;
}

static int spawn_sh(struct child *c, const char *script, int in, int out,
                    int err)
{
    char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };

    return spawn(c, argv, in, out, err);
}

static void make_pipe(int fds[2])
{
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char space[4096];

    (void)h;
    (void)hint;
    *buf = uv_buf_init(space, sizeof(space));
}

static void on_reader_closed(uv_handle_t *h)
{
    struct reader *r = h->data;

    r->open = false;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct reader *r = s->data;

    if (n > 0) {
        fw_buf_append(&r->got, buf->base, (size_t)n);
    } else if (n < 0) {
        r->eof = true;
        uv_close((uv_handle_t *)&r->pipe, on_reader_closed);
    }
}

/* Reads fd (which the reader then owns) on the loop until EOF. */
static void reader_start(struct reader *r, int fd)
{
    memset(r, 0, sizeof(*r));
    fw_buf_init(&r->got, 1 << 20);
    ck_assert_int_eq(uv_pipe_init(&loop, &r->pipe, 0), 0);
    r->pipe.data = r;
    r->open = true;
    ck_assert_int_eq(uv_pipe_open(&r->pipe, fd), 0);
    ck_assert_int_eq(uv_read_start((uv_stream_t *)&r->pipe, on_alloc,
                                   on_read), 0);
}

/* Runs the loop until cond(arg) holds or the deadline passes. */
static bool run_until(bool (*cond)(void *), void *arg)
{
    for (;;) {
        if (cond(arg))
            return true;
        if (timed_out)
            return false;
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static bool has_exited(void *arg)
{
    return ((struct child *)arg)->exits > 0;
}

static bool has_eof(void *arg)
{
    return ((struct reader *)arg)->eof;
}

static bool has_line(void *arg)
{
    struct reader *r = arg;

    return r->got.len > 0 && memchr(r->got.data, '\n', r->got.len);
}

/* State and parent of pid from /proc, false when it is gone. */
static bool proc_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], buf[512], *rp;
    ssize_t n;
    int fd, pp;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    rp = strrchr(buf, ')');
    if (rp == NULL || sscanf(rp + 2, "%c %d", state, &pp) != 2)
        return false;
    *ppid = pp;
    return true;
}

static bool is_gone(void *arg)
{
    char state;
    pid_t ppid;

    return !proc_stat(*(pid_t *)arg, &state, &ppid);
}

/* Our children right now: all of them, or only the zombies. */
static int children(bool zombies_only)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char state;
        pid_t ppid;

        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        if (proc_stat(atoi(e->d_name), &state, &ppid) && ppid == getpid() &&
            (!zombies_only || state == 'Z'))
            n++;
    }
    closedir(d);
    return n;
}

static bool no_children(void *arg)
{
    (void)arg;
    return children(false) == 0;
}

static pid_t first_line_pid(const struct reader *r)
{
    pid_t pid = (pid_t)atoi(r->got.data);

    ck_assert_int_gt(pid, 1);
    return pid;
}

static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");

    return p && strstr(p, "vgpreload");
}

START_TEST(exit_status_reaches_on_exit_exactly_once)
{
    struct child c;

    ck_assert_uint_eq(fw_proc_count(), 0);
    ck_assert_int_eq(spawn_sh(&c, "exit 3", -1, -1, -1), 0);
    ck_assert_int_gt(c.proc.pid, 1);
    ck_assert_uint_eq(fw_proc_count(), 1);
    ck_assert(run_until(has_exited, &c));
    ck_assert_int_eq(c.exits, 1);
    ck_assert(WIFEXITED(c.status));
    ck_assert_int_eq(WEXITSTATUS(c.status), 3);
    ck_assert_uint_eq(fw_proc_count(), 0);
    ck_assert(run_until(no_children, NULL));
    finish();
    ck_assert_int_eq(c.exits, 1);
}
END_TEST

/* An exit that happened while no SIGCHLD handler existed is collected
 * when fw_proc_init starts one. The zombie is awaited by polling /proc,
 * the one state change no loop event announces. */
START_TEST(child_that_exited_before_init_is_reported_at_init)
{
    uint64_t until;
    struct child c;
    pid_t ppid;
    char state = '?';

    fw_proc_close();
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(spawn_sh(&c, "exit 5", -1, -1, -1), 0);
    until = uv_hrtime() + (uint64_t)DEADLINE_MS * 1000000;
    while (proc_stat(c.proc.pid, &state, &ppid) && state != 'Z' &&
           uv_hrtime() < until)
        sched_yield();
    ck_assert_int_eq(state, 'Z');
    ck_assert_int_eq(c.exits, 0);
    ck_assert_int_eq(fw_proc_init(&loop), 0);
    ck_assert_int_eq(c.exits, 1);
    ck_assert_int_eq(WEXITSTATUS(c.status), 5);
    finish();
}
END_TEST

START_TEST(death_by_signal_reaches_on_exit)
{
    struct child c;
    char out[64];

    ck_assert_int_eq(spawn_sh(&c, "kill -KILL $$", -1, -1, -1), 0);
    ck_assert(run_until(has_exited, &c));
    ck_assert(WIFSIGNALED(c.status));
    ck_assert_int_eq(WTERMSIG(c.status), SIGKILL);
    ck_assert(fw_proc_describe(c.status, out, sizeof(out)));
    ck_assert_str_eq(out, "signal: killed");
    finish();
}
END_TEST

START_TEST(many_children_each_get_their_own_status)
{
    struct child c[20];
    char script[32];
    int i;

    for (i = 0; i < N(c); i++) {
        snprintf(script, sizeof(script), "exit %d", 10 + i);
        ck_assert_int_eq(spawn_sh(&c[i], script, -1, -1, -1), 0);
    }
    ck_assert_uint_eq(fw_proc_count(), N(c));
    for (i = 0; i < N(c); i++) {
        ck_assert(run_until(has_exited, &c[i]));
        ck_assert_int_eq(c[i].exits, 1);
        ck_assert(WIFEXITED(c[i].status));
        ck_assert_int_eq(WEXITSTATUS(c[i].status), 10 + i);
    }
    ck_assert_uint_eq(fw_proc_count(), 0);
    finish();
}
END_TEST

START_TEST(stdio_pipes_carry_input_output_and_errors)
{
    int in[2], out[2], err[2];
    struct reader ro, re;
    struct child c;

    make_pipe(in);
    make_pipe(out);
    make_pipe(err);
    ck_assert_int_eq(write(in[1], "hello\n", 6), 6);
    close(in[1]);
    ck_assert_int_eq(spawn_sh(&c, "read l; echo \"got $l\"; echo oops >&2",
                              in[0], out[1], err[1]), 0);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    reader_start(&ro, out[0]);
    reader_start(&re, err[0]);
    ck_assert(run_until(has_exited, &c));
    ck_assert(run_until(has_eof, &ro));
    ck_assert(run_until(has_eof, &re));
    ck_assert_int_eq(c.status, 0);
    ck_assert_str_eq(ro.got.data, "got hello\n");
    ck_assert_str_eq(re.got.data, "oops\n");
    finish();
    fw_buf_release(&ro.got);
    fw_buf_release(&re.got);
}
END_TEST

START_TEST(missing_stdio_is_dev_null)
{
    int out[2];
    struct reader ro;
    struct child c;

    make_pipe(out);
    ck_assert_int_eq(spawn_sh(&c, "cat; echo end; echo lost >&2", -1, out[1],
                              -1), 0);
    close(out[1]);
    reader_start(&ro, out[0]);
    ck_assert(run_until(has_eof, &ro));
    ck_assert(run_until(has_exited, &c));
    ck_assert_str_eq(ro.got.data, "end\n");
    ck_assert_int_eq(c.status, 0);
    finish();
    fw_buf_release(&ro.got);
}
END_TEST

/* Our own 1 and 2, swapped for the child: the sources sit on the target
 * numbers and must be moved out of the way before dup2. */
START_TEST(stdio_fds_may_be_swapped)
{
    int a[2], b[2], saved1, saved2;
    struct reader ra, rb;
    struct child c;
    char *argv[] = { "/bin/sh", "-c", "echo out; echo err >&2", NULL };

    make_pipe(a);
    make_pipe(b);
    saved1 = fcntl(1, F_DUPFD_CLOEXEC, 3);
    saved2 = fcntl(2, F_DUPFD_CLOEXEC, 3);
    ck_assert(saved1 >= 0 && saved2 >= 0);
    ck_assert_int_eq(dup2(a[1], 1), 1);
    ck_assert_int_eq(dup2(b[1], 2), 2);
    ck_assert_int_eq(spawn(&c, argv, -1, 2, 1), 0);
    dup2(saved1, 1);
    dup2(saved2, 2);
    close(saved1);
    close(saved2);
    close(a[1]);
    close(b[1]);
    reader_start(&ra, a[0]);
    reader_start(&rb, b[0]);
    ck_assert(run_until(has_eof, &ra));
    ck_assert(run_until(has_eof, &rb));
    ck_assert(run_until(has_exited, &c));
    ck_assert_str_eq(ra.got.data, "err\n");
    ck_assert_str_eq(rb.got.data, "out\n");
    finish();
    fw_buf_release(&ra.got);
    fw_buf_release(&rb.got);
}
END_TEST

START_TEST(child_leads_its_own_group_and_session)
{
    int in[2], out[2];
    struct reader ro;
    struct child c;
    pid_t pid;

    make_pipe(in);
    make_pipe(out);
    ck_assert_int_eq(
        spawn_sh(&c, "echo ready; read x; exit 0", in[0], out[1], -1), 0);
    close(in[0]);
    close(out[1]);
    reader_start(&ro, out[0]);
    ck_assert(run_until(has_line, &ro));
    pid = c.proc.pid;
    ck_assert_int_eq(getpgid(pid), pid);
    ck_assert_int_eq(getsid(pid), pid);
    ck_assert_int_ne(getpgid(pid), getpgrp());
    close(in[1]);
    ck_assert(run_until(has_exited, &c));
    ck_assert(run_until(has_eof, &ro));
    ck_assert_int_eq(c.status, 0);
    finish();
    fw_buf_release(&ro.got);
}
END_TEST

/* The hex mask on the line of /proc/<pid>/status that starts with key. */
static unsigned long long status_mask(const char *status, const char *key)
{
    const char *p = strstr(status, key);

    ck_assert_ptr_nonnull(p);
    return strtoull(p + strlen(key), NULL, 16);
}

START_TEST(child_starts_with_default_signals_and_empty_mask)
{
    char *argv[] = { "/bin/cat", "/proc/self/status", NULL };
    struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
    sigset_t block, old_mask;
    struct reader ro;
    struct child c;
    int out[2];

    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    ck_assert_int_eq(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
    ck_assert_int_eq(sigaction(SIGPIPE, &ign, &old_pipe), 0);
    make_pipe(out);
    ck_assert_int_eq(spawn(&c, argv, -1, out[1], -1), 0);
    close(out[1]);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    reader_start(&ro, out[0]);
    ck_assert(run_until(has_eof, &ro));
    ck_assert(run_until(has_exited, &c));
    ck_assert_ptr_nonnull(ro.got.data);
    ck_assert_uint_eq(status_mask(ro.got.data, "\nSigBlk:"), 0);
    ck_assert_uint_eq(status_mask(ro.got.data, "\nSigIgn:"), 0);
    finish();
    fw_buf_release(&ro.got);
}
END_TEST

START_TEST(failed_exec_is_reported_and_leaves_no_zombie)
{
    char path[] = "/tmp/check_proc.plain.XXXXXX";
    char *missing[] = { "/nonexistent/fw-nope", NULL };
    char *plain[] = { path, NULL };
    struct child c;
    int fd;

    if (under_valgrind()) {
        fprintf(stderr, "check_proc: failed_exec_is_reported_and_leaves_no_"
                        "zombie skipped under valgrind: clone(CLONE_VM|"
                        "CLONE_VFORK) runs as fork there, so the child's exec "
                        "errno never reaches fw_proc_spawn\n");
        finish();
        return;
    }
    ck_assert_int_eq(spawn(&c, missing, -1, -1, -1), -ENOENT);
    ck_assert_uint_eq(fw_proc_count(), 0);
    fd = mkostemp(path, O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(spawn(&c, plain, -1, -1, -1), -EACCES);
    unlink(path);
    ck_assert_uint_eq(fw_proc_count(), 0);
    ck_assert(run_until(no_children, NULL));
    ck_assert_int_eq(c.exits, 0);
    finish();
}
END_TEST

/* The grandchild blocks on a copy of the child's stdin (fd 4: a
 * background job's own stdin is /dev/null) until we close it. */
START_TEST(orphaned_grandchild_is_adopted_and_reaped)
{
    int in[2], out[2];
    struct reader ro;
    struct child c;
    pid_t gpid, ppid;
    char state;

    make_pipe(in);
    make_pipe(out);
    ck_assert_int_eq(spawn_sh(&c, "exec 4<&0; (read x <&4) & echo $!; exit 0",
                              in[0], out[1], -1), 0);
    close(in[0]);
    close(out[1]);
    reader_start(&ro, out[0]);
    ck_assert(run_until(has_line, &ro));
    gpid = first_line_pid(&ro);
    if (n_strays < N(strays))
        strays[n_strays++] = gpid;
    ck_assert(run_until(has_exited, &c));
    ck_assert_int_eq(c.status, 0);
    /* Not PID 1: fw_proc_init made us a subreaper, so it is ours now. */
    ck_assert(proc_stat(gpid, &state, &ppid));
    ck_assert_int_eq(ppid, getpid());
    ck_assert_int_ne(state, 'Z');
    close(in[1]);
    ck_assert(run_until(is_gone, &gpid));
    ck_assert(run_until(has_eof, &ro));
    ck_assert_int_eq(children(true), 0);
    ck_assert_int_eq(c.exits, 1);
    ck_assert_uint_eq(fw_proc_count(), 0);
    finish();
    fw_buf_release(&ro.got);
}
END_TEST

START_TEST(forgotten_child_is_reaped_silently)
{
    int in[2];
    struct child c;
    pid_t pid;

    make_pipe(in);
    ck_assert_int_eq(spawn_sh(&c, "read x", in[0], -1, -1), 0);
    close(in[0]);
    pid = c.proc.pid;
    ck_assert_uint_eq(fw_proc_count(), 1);
    fw_proc_forget(&c.proc);
    ck_assert_uint_eq(fw_proc_count(), 0);
    close(in[1]);
    ck_assert(run_until(is_gone, &pid));
    ck_assert_int_eq(children(true), 0);
    finish();
    ck_assert_int_eq(c.exits, 0);
}
END_TEST

START_TEST(kill_group_kills_the_grandchildren)
{
    int out[2];
    struct reader ro;
    struct child c;
    pid_t gpid;

    make_pipe(out);
    ck_assert_int_eq(spawn_sh(&c, "sleep 100 & echo $!; wait", -1, out[1], -1),
                     0);
    close(out[1]);
    reader_start(&ro, out[0]);
    ck_assert(run_until(has_line, &ro));
    gpid = first_line_pid(&ro);
    if (n_strays < N(strays))
        strays[n_strays++] = gpid;
    ck_assert_int_eq(getpgid(gpid), c.proc.pid);
    fw_proc_kill_group(c.proc.pid, SIGKILL);
    ck_assert(run_until(has_exited, &c));
    ck_assert(WIFSIGNALED(c.status));
    ck_assert_int_eq(WTERMSIG(c.status), SIGKILL);
    ck_assert(run_until(is_gone, &gpid));
    ck_assert(run_until(has_eof, &ro));
    ck_assert_int_eq(children(true), 0);
    finish();
    fw_buf_release(&ro.got);
}
END_TEST

START_TEST(count_follows_spawns_exits_and_forgets)
{
    int in1[2], in2[2], in3[2];
    struct child a, b, d;

    make_pipe(in1);
    make_pipe(in2);
    make_pipe(in3);
    ck_assert_uint_eq(fw_proc_count(), 0);
    ck_assert_int_eq(spawn_sh(&a, "read x", in1[0], -1, -1), 0);
    ck_assert_int_eq(spawn_sh(&b, "read x", in2[0], -1, -1), 0);
    ck_assert_int_eq(spawn_sh(&d, "read x", in3[0], -1, -1), 0);
    close(in1[0]);
    close(in2[0]);
    close(in3[0]);
    ck_assert_uint_eq(fw_proc_count(), 3);
    close(in1[1]);
    ck_assert(run_until(has_exited, &a));
    ck_assert_uint_eq(fw_proc_count(), 2);
    fw_proc_forget(&d.proc);
    ck_assert_uint_eq(fw_proc_count(), 1);
    close(in2[1]);
    close(in3[1]);
    ck_assert(run_until(has_exited, &b));
    ck_assert_uint_eq(fw_proc_count(), 0);
    ck_assert(run_until(is_gone, &d.proc.pid));
    finish();
    ck_assert_int_eq(a.exits + b.exits + d.exits, 2);
}
END_TEST

#define ADD(t) tcase_add_test(tc, t)
#define LOOP(t, table) tcase_add_loop_test(tc, t, 0, N(table))

static void add_text_tests(Suite *s)
{
    TCase *tc = tcase_create("describe");

    suite_add_tcase(s, tc);
    ADD(clean_exit_is_not_an_error);
    LOOP(exit_status_reads_as_go_does, exit_codes);
    LOOP(death_by_signal_reads_as_go_does, signals);
    ADD(core_dump_is_mentioned_as_go_does);
    ADD(describe_truncates_to_the_buffer);
    tc = tcase_create("resolve");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    suite_add_tcase(s, tc);
    ADD(name_is_found_in_path);
    ADD(path_search_skips_directories_and_non_executables);
    ADD(name_not_in_path_gives_go_error);
    ADD(name_with_a_slash_is_not_searched_in_path);
    ADD(missing_path_gives_go_error);
    ADD(path_is_kept_as_given);
    ADD(non_executable_file_is_permission_denied);
    ADD(directory_is_permission_denied);
    ADD(other_lookup_errors_use_go_wording);
    ADD(resolve_truncates_to_the_buffer);
}

static void add_loop_tests(Suite *s)
{
    TCase *tc = tcase_create("loop");

    tcase_add_checked_fixture(tc, loop_setup, loop_teardown);
    tcase_set_timeout(tc, 3 * DEADLINE_MS / 1000);
    suite_add_tcase(s, tc);
    ADD(exit_status_reaches_on_exit_exactly_once);
    ADD(child_that_exited_before_init_is_reported_at_init);
    ADD(death_by_signal_reaches_on_exit);
    ADD(many_children_each_get_their_own_status);
    ADD(stdio_pipes_carry_input_output_and_errors);
    ADD(missing_stdio_is_dev_null);
    ADD(stdio_fds_may_be_swapped);
    ADD(child_leads_its_own_group_and_session);
    ADD(child_starts_with_default_signals_and_empty_mask);
    ADD(failed_exec_is_reported_and_leaves_no_zombie);
    ADD(orphaned_grandchild_is_adopted_and_reaped);
    ADD(forgotten_child_is_reaped_silently);
    ADD(kill_group_kills_the_grandchildren);
    ADD(count_follows_spawns_exits_and_forgets);
}

int main(void)
{
    Suite *s = suite_create("proc");
    SRunner *sr;
    int failed;

    add_text_tests(s);
    add_loop_tests(s);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
