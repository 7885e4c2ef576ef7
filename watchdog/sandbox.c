/* sandbox.c - the policy children run under (see sandbox.h).
 *
 * fw_sandbox_init does everything that may fail or needs libc's
 * non-reentrant parts (the passwd and group databases, getrlimit) once,
 * at start, into one static struct. fw_sandbox_apply runs in the child
 * of clone(CLONE_VM|CLONE_VFORK): it shares our memory while we are
 * suspended, so it reads that struct and makes raw system calls only.
 * glibc's setuid()/setgroups() would broadcast the change to every
 * thread of the *watchdog* (they are process-wide in POSIX), which is
 * exactly wrong here; the raw calls change only the calling task, which
 * is the child.
 *
 * The order matters: limits and the workdir while still privileged,
 * then groups, gid, uid (after setuid we could not change groups any
 * more), then no_new_privs, which any user may set.
 */
#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FW_MAX_GROUPS 64
#define FW_MAX_LIMITS 4

struct limit {
    int resource;                /* RLIMIT_* */
    struct rlimit value;
    const char *name;            /* the variable that set it */
    int64_t setting;             /* its value, for messages */
};

static struct {
    bool active;
    bool set_ids;                /* fprocess_user given */
    uid_t uid;
    gid_t gid;
    gid_t groups[FW_MAX_GROUPS]; /* supplementary groups */
    size_t n_groups;
    bool no_new_privs;
    const char *workdir;         /* cfg's string; NULL = inherit ours */
    struct limit limits[FW_MAX_LIMITS];
    size_t n_limits;
    int64_t max_cpu_seconds;
} sb;

/* A decimal id: all digits, fits in 32 bits. */
static bool parse_id(const char *s, size_t len, unsigned *out)
{
    unsigned long v = 0;
    size_t i;

    if (len == 0 || len > 10)
        return false;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > UINT32_MAX - 1)      /* (uid_t)-1 means "unchanged" */
        return false;
    *out = (unsigned)v;
    return true;
}

/* The user's supplementary groups from the group database, or just gid
 * when the user has no entry (a numeric uid). */
static void load_groups(const char *user)
{
    int n = FW_MAX_GROUPS;

    sb.groups[0] = sb.gid;
    sb.n_groups = 1;
    if (user && getgrouplist(user, sb.gid, sb.groups, &n) >= 0)
        sb.n_groups = (size_t)n;
    else if (user)
        sb.n_groups = FW_MAX_GROUPS;    /* more: keep the first ones */
}

/* "name", "uid", "name:group" or "uid:gid". */
static int resolve_user(const char *spec, char *err, size_t err_len)
{
    const char *colon = strchr(spec, ':');
    size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
    char user[256];
    const struct passwd *pw = NULL;
    unsigned id;

    if (ulen == 0 || ulen >= sizeof(user)) {
        snprintf(err, err_len, "fprocess_user: \"%s\" is not a user "
                 "(expected name, uid, name:group or uid:gid)", spec);
        return -EINVAL;
    }
    memcpy(user, spec, ulen);
    user[ulen] = '\0';
    if (parse_id(user, ulen, &id)) {
        sb.uid = (uid_t)id;
        pw = getpwuid(sb.uid);
        sb.gid = pw ? pw->pw_gid : (gid_t)id;
    } else {
        pw = getpwnam(user);
        if (pw == NULL) {
            snprintf(err, err_len, "fprocess_user: no user \"%s\" in the "
                     "passwd database", user);
            return -ENOENT;
        }
        sb.uid = pw->pw_uid;
        sb.gid = pw->pw_gid;
    }
    if (colon) {
        const char *group = colon + 1;
        const struct group *gr;

        if (parse_id(group, strlen(group), &id)) {
            sb.gid = (gid_t)id;
        } else if ((gr = getgrnam(group)) != NULL) {
            sb.gid = gr->gr_gid;
        } else {
            snprintf(err, err_len, "fprocess_user: no group \"%s\" in the "
                     "group database", group);
            return -ENOENT;
        }
        /* An explicit group replaces the user's groups. */
        sb.groups[0] = sb.gid;
        sb.n_groups = 1;
    } else {
        load_groups(pw ? pw->pw_name : NULL);
    }
    sb.set_ids = true;
    return 0;
}

static int check_privilege(const char *spec, char *err, size_t err_len)
{
    if (geteuid() == 0)
        return 0;
    if (sb.uid == geteuid() && sb.gid == getegid()) {
        /* Already that user: nothing to change, and setgroups() would
         * fail in every child without CAP_SETGID. */
        sb.set_ids = false;
        return 0;
    }
    snprintf(err, err_len, "fprocess_user: running children as %s needs "
             "root; the watchdog runs as uid %u", spec, (unsigned)geteuid());
    return -EPERM;
}

static int check_workdir(const char *dir, char *err, size_t err_len)
{
    struct stat st;

    if (stat(dir, &st) < 0) {
        snprintf(err, err_len, "fprocess_workdir: %s: %s", dir,
                 strerror(errno));
        return -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "fprocess_workdir: %s is not a directory",
                 dir);
        return -ENOTDIR;
    }
    return 0;
}

/* Adds a limit of soft value v (hard: v + extra); 0 = none. */
static int add_limit(int resource, const char *name, int64_t v,
                     rlim_t extra, char *err, size_t err_len)
{
    struct limit *l = &sb.limits[sb.n_limits];
    struct rlimit cur;

    if (v <= 0)
        return 0;
    l->resource = resource;
    l->name = name;
    l->setting = v;
    l->value.rlim_cur = (rlim_t)v;
    l->value.rlim_max = (rlim_t)v + extra;
    if (getrlimit(resource, &cur) == 0 && geteuid() != 0 &&
        cur.rlim_max != RLIM_INFINITY && l->value.rlim_max > cur.rlim_max) {
        snprintf(err, err_len, "%s: %" PRId64 " is above the watchdog's "
                 "hard limit %llu", name, v,
                 (unsigned long long)cur.rlim_max);
        return -EPERM;
    }
    sb.n_limits++;
    return 0;
}

static int load_limits(const struct fw_config *cfg, char *err,
                       size_t err_len)
{
    int e;

    /* CPU: SIGXCPU at the soft limit, SIGKILL a second later for a
     * child that handles SIGXCPU. */
    e = add_limit(RLIMIT_CPU, "fprocess_max_cpu_seconds",
                  cfg->fprocess_max_cpu_seconds, 1, err, err_len);
    if (e == 0)
        e = add_limit(RLIMIT_AS, "fprocess_max_memory",
                      cfg->fprocess_max_memory, 0, err, err_len);
    if (e == 0)
        e = add_limit(RLIMIT_NOFILE, "fprocess_max_open_files",
                      cfg->fprocess_max_open_files, 0, err, err_len);
    if (e == 0)
        e = add_limit(RLIMIT_NPROC, "fprocess_max_processes",
                      cfg->fprocess_max_processes, 0, err, err_len);
    sb.max_cpu_seconds = cfg->fprocess_max_cpu_seconds;
    return e;
}

int fw_sandbox_init(const struct fw_config *cfg, char *err, size_t err_len)
{
    int e;

    memset(&sb, 0, sizeof(sb));
    if (cfg->fprocess_user) {
        e = resolve_user(cfg->fprocess_user, err, err_len);
        if (e == 0)
            e = check_privilege(cfg->fprocess_user, err, err_len);
        if (e < 0)
            return e;
    }
    if (cfg->fprocess_workdir) {
        e = check_workdir(cfg->fprocess_workdir, err, err_len);
        if (e < 0)
            return e;
        sb.workdir = cfg->fprocess_workdir;
    }
    e = load_limits(cfg, err, err_len);
    if (e < 0)
        return e;
    sb.no_new_privs = cfg->fprocess_no_new_privs;
    sb.active = sb.set_ids || sb.workdir || sb.n_limits > 0 ||
                sb.no_new_privs;
    return 0;
}

bool fw_sandbox_active(void)
{
    return sb.active;
}

/* ---- in the child ----------------------------------------------------- */

static long raw(long nr, long a, long b, long c)
{
    long r = syscall(nr, a, b, c, 0L, 0L);

    return r < 0 ? -errno : r;
}

/* Every fd above 2: ours are CLOEXEC already, but a PID 1 may have been
 * handed fds without it by whatever started the container. */
static void close_inherited(void)
{
    long fd;

#ifdef SYS_close_range
    if (raw(SYS_close_range, 3, (long)~0U, 0) == 0)
        return;
#endif
    for (fd = 3; fd < 4096; fd++)
        raw(SYS_close, fd, 0, 0);
}

int fw_sandbox_apply(const char **step)
{
    size_t i;
    long e = 0;

    close_inherited();
    if (!sb.active)
        return 0;
    *step = "fprocess_workdir";
    if (sb.workdir && (e = raw(SYS_chdir, (long)sb.workdir, 0, 0)) < 0)
        return (int)e;
    for (i = 0; i < sb.n_limits; i++) {
        *step = sb.limits[i].name;
        e = raw(SYS_prlimit64, 0, sb.limits[i].resource,
                (long)&sb.limits[i].value);
        if (e < 0)
            return (int)e;
    }
    if (sb.set_ids) {
        *step = "fprocess_user";
        e = raw(SYS_setgroups, (long)sb.n_groups, (long)sb.groups, 0);
        if (e == 0)
            e = raw(SYS_setresgid, sb.gid, sb.gid, sb.gid);
        if (e == 0)
            e = raw(SYS_setresuid, sb.uid, sb.uid, sb.uid);
        if (e < 0)
            return (int)e;
    }
    *step = "fprocess_no_new_privs";
    if (sb.no_new_privs &&
        (e = raw(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0)) < 0)
        return (int)e;
    return 0;
}

/* ---- explaining an end ------------------------------------------------ */

void fw_sandbox_explain(int status, char *out, size_t out_len)
{
    size_t at = strlen(out), i;
    const char *sep = " (limits:";

    if (sb.n_limits == 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        return;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU &&
        sb.max_cpu_seconds > 0) {
        snprintf(out + at, out_len - at, " (fprocess_max_cpu_seconds=%"
                 PRId64 ")", sb.max_cpu_seconds);
        return;
    }
    /* Which limit a failure hit is not in its status (a malloc that
     * fails at fprocess_max_memory may end in an exit code or a signal):
     * name them all, so the reader can tell. */
    for (i = 0; i < sb.n_limits && at < out_len; i++) {
        int n = snprintf(out + at, out_len - at, "%s %s=%" PRId64, sep,
                         sb.limits[i].name, sb.limits[i].setting);

        at += n > 0 ? (size_t)n : 0;
        sep = ",";
    }
    if (at + 1 < out_len)
        strcat(out, ")");
}
