/* check_static.c - static.c: decoding and cleaning request paths, and
 * opening them beneath static_path with openat2 and with the fallback
 * walk (spec 7).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "static.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define SLASH FW_STATIC_SLASH
#define INDEX FW_STATIC_INDEX

/* ---- fw_static_clean_path ----------------------------------------------- */

static const struct {
    const char *raw;
    const char *clean;
    unsigned flags;
} paths[] = {
    { "/", "/", SLASH },
    { "", "/", SLASH },
    { "/a", "/a", 0 },
    { "/a/", "/a", SLASH },
    { "a/b", "/a/b", 0 },                       /* rooted like Go */
    { "//a//b//", "/a/b", SLASH },
    { "/./a/./b/.", "/a/b", 0 },
    { "/a/.", "/a", 0 },                        /* Go: no slash */
    { "/.", "/", 0 },
    { "/./", "/", SLASH },
    { "/..", "/", 0 },
    { "..", "/", 0 },
    { "/../", "/", SLASH },
    { "/../a", "/a", 0 },
    { "/../../etc/passwd", "/etc/passwd", 0 },
    { "/a/..", "/", 0 },
    { "/a/../", "/", SLASH },
    { "/a/../..", "/", 0 },
    { "/a/../../x", "/x", 0 },
    { "/a/b/../c", "/a/c", 0 },
    { "/a/b/../../../../etc/passwd", "/etc/passwd", 0 },
    { "/a/b/c/../../d/./e/..", "/a/d", 0 },
    { "/..a/b../.../.a./", "/..a/b../.../.a.", SLASH },
    { "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", 0 },
    { "/%2E%2E%2F%2E%2E%2Fetc", "/etc", 0 },
    { "/a/%2e%2e%2f%2e%2e%2fx", "/x", 0 },
    { "/a%2fb", "/a/b", 0 },
    { "/a%2F", "/a", SLASH },
    { "/%2e", "/", 0 },
    { "/a%20b", "/a b", 0 },
    { "/a%2500", "/a%00", 0 },                  /* decoded once only */
    { "/%C3%A9t%c3%a9", "/\xc3\xa9t\xc3\xa9", 0 },
    { "/a+b", "/a+b", 0 },
    { "/index.html", "/index.html", INDEX },
    { "/a/index.html", "/a/index.html", INDEX },
    { "index.html", "/index.html", INDEX },
    { "/%69ndex%2ehtml", "/index.html", INDEX },
    { "/a/index.html/", "/a/index.html", SLASH },
    { "/xindex.html", "/xindex.html", 0 },
    { "/index.htm", "/index.htm", 0 },
    { "/a/../index.html", "/index.html", INDEX },
};

START_TEST(paths_are_decoded_and_cleaned_as_go_does)
{
    char out[256];
    unsigned flags = 99;
    int n = fw_static_clean_path(paths[_i].raw, out, sizeof(out), &flags);

    ck_assert_msg(n >= 0, "%s: %d", paths[_i].raw, n);
    ck_assert_str_eq(out, paths[_i].clean);
    ck_assert_int_eq(n, (int)strlen(paths[_i].clean));
    ck_assert_msg(flags == paths[_i].flags, "%s: flags %u, want %u",
                  paths[_i].raw, flags, paths[_i].flags);
}
END_TEST

static const char *const bad_paths[] = {
    "/a%00b", "%00", "/a%", "/a%2", "/a%zz", "/a%g0", "/a%0g", "/%%41",
    "/a%2%30",
};

START_TEST(bad_escapes_and_nul_are_rejected)
{
    char out[256];
    unsigned flags;

    ck_assert_int_eq(fw_static_clean_path(bad_paths[_i], out, sizeof(out),
                                          &flags), -EINVAL);
}
END_TEST

START_TEST(a_path_longer_than_the_buffer_is_rejected)
{
    char out[8];
    unsigned flags;

    ck_assert_int_eq(fw_static_clean_path("/abcdef", out, sizeof(out),
                                          &flags), 7);
    ck_assert_str_eq(out, "/abcdef");
    ck_assert_int_eq(fw_static_clean_path("/abcdefg", out, sizeof(out),
                                          &flags), -ENAMETOOLONG);
    ck_assert_int_eq(fw_static_clean_path("/", out, 1, &flags),
                     -ENAMETOOLONG);
}
END_TEST

/* Reference: a stack of elements; ".." pops, never below the root. */
static void reference_clean(const char *const *seg, int n, char *out)
{
    const char *stack[16];
    int depth = 0, i;

    for (i = 0; i < n; i++) {
        if (strcmp(seg[i], "..") == 0)
            depth -= depth > 0;
        else if (strcmp(seg[i], ".") != 0 && *seg[i] != '\0')
            stack[depth++] = seg[i];
    }
    strcpy(out, depth ? "" : "/");
    for (i = 0; i < depth; i++) {
        strcat(out, "/");
        strcat(out, stack[i]);
    }
}

/* Every way of putting one to three ".." (plain or %2e%2e) among three
 * names: the result is the reference's and never holds a ".." element. */
START_TEST(dotdot_at_every_position_never_climbs_above_the_root)
{
    static const char *const names[] = { "a", "b", "c" };
    static const char *const dots[] = { "..", "%2e%2e", "%2E.", ".%2e" };
    const char *seg[6], *dec[6];
    char raw[128], want[128], out[128];
    unsigned flags, mask;
    int n, i, k;

    for (mask = 0; mask < 64; mask++) {
        n = 0;
        k = 0;
        for (i = 0; i < 6; i++) {
            if (mask & (1u << i)) {
                seg[n] = dots[(mask + (unsigned)i) % 4];
                dec[n++] = "..";
            } else if (k < 3 && i % 2 == 0) {
                seg[n] = dec[n] = names[k++];
                n++;
            }
        }
        strcpy(raw, "");
        for (i = 0; i < n; i++) {
            strcat(raw, "/");
            strcat(raw, seg[i]);
        }
        reference_clean(dec, n, want);
        ck_assert_int_ge(fw_static_clean_path(raw, out, sizeof(out),
                                              &flags), 0);
        ck_assert_msg(strcmp(out, want) == 0, "%s: %s, want %s", raw, out,
                      want);
        ck_assert_ptr_null(strstr(out, ".."));
        ck_assert_int_eq(out[0], '/');
    }
}
END_TEST

/* ---- fw_static_open ----------------------------------------------------- */

static char base[64];            /* temp dir: root/, secret.txt, outside/ */
static char root[96];
static struct fw_config cfg;
static int fds_before;

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void put(const char *name, const char *text)
{
    char path[160];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", base, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void link_at(const char *target, const char *name)
{
    char path[160];

    snprintf(path, sizeof(path), "%s/%s", base, name);
    ck_assert_int_eq(symlink(target, path), 0);
}

static void make_tree(void)
{
    char path[160];

    strcpy(base, "/tmp/check_static.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(base));
    snprintf(root, sizeof(root), "%s/root", base);
    ck_assert_int_eq(mkdir(root, 0755), 0);
    snprintf(path, sizeof(path), "%s/root/sub", base);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/outside", base);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    put("root/a.txt", "inside");
    put("root/sub/b.txt", "deeper");
    put("secret.txt", "SECRET");
    put("outside/secret.txt", "SECRET2");
    link_at("a.txt", "root/in");
    link_at("../a.txt", "root/sub/up_in");
    snprintf(path, sizeof(path), "%s/a.txt", root);
    link_at(path, "root/abs_in");
    link_at("../root/a.txt", "root/out_and_back");
    link_at("sub", "root/subdir_link");
    snprintf(path, sizeof(path), "%s/secret.txt", base);
    link_at(path, "root/abs_out");
    link_at("../secret.txt", "root/rel_out");
    link_at("../../secret.txt", "root/sub/rel_out2");
    link_at("../outside", "root/dir_out");
    link_at("/etc/passwd", "root/passwd");
    link_at("nope", "root/dangling");
    link_at("loop", "root/loop");
    snprintf(path, sizeof(path), "%s/root/fifo", base);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
}

static void remove_tree(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    ck_assert_int_eq(system(cmd), 0);
}

static void setup(void)
{
    fds_before = count_fds();
    make_tree();
    cfg.static_path = root;
    ck_assert_int_eq(fw_static_init(&cfg), 0);
}

static void teardown(void)
{
    fw_static_release();
    remove_tree();
    ck_assert_int_eq(count_fds(), fds_before);
}

/* Opens path and returns what it holds ("" for a non-file), or NULL
 * with *err when the open fails. */
static const char *read_path(const char *path, int *err)
{
    static char text[64];
    int fd = fw_static_open(path);
    ssize_t n;

    *err = fd < 0 ? fd : 0;
    if (fd < 0)
        return NULL;
    ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    n = read(fd, text, sizeof(text) - 1);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    return text;
}

static const struct {
    const char *path;
    const char *text;            /* NULL: must fail with err */
    int err;
} opens[] = {
    { "/a.txt", "inside", 0 },
    { "/sub/b.txt", "deeper", 0 },
    { "/in", "inside", 0 },                 /* relative link inside */
    { "/sub/up_in", "inside", 0 },          /* via .., still inside */
    { "/abs_in", "inside", 0 },             /* absolute link inside */
    { "/out_and_back", "inside", 0 },       /* steps out and back in */
    { "/subdir_link/b.txt", "deeper", 0 },  /* a directory link */
    { "/abs_out", NULL, -EXDEV },
    { "/rel_out", NULL, -EXDEV },
    { "/sub/rel_out2", NULL, -EXDEV },
    { "/dir_out/secret.txt", NULL, -EXDEV },
    { "/passwd", NULL, -EXDEV },
    { "/nope", NULL, -ENOENT },
    { "/sub/nope", NULL, -ENOENT },
    { "/dangling", NULL, -ENOENT },
    { "/loop", NULL, -ELOOP },
    { "/a.txt/x", NULL, -ENOTDIR },
};

static void check_opens(int i)
{
    const char *text;
    int err;

    text = read_path(opens[i].path, &err);
    if (opens[i].text) {
        ck_assert_msg(text != NULL, "%s: %d", opens[i].path, err);
        ck_assert_str_eq(text, opens[i].text);
    } else {
        ck_assert_msg(text == NULL, "%s served %s", opens[i].path, text);
        ck_assert_msg(err == opens[i].err, "%s: %d, want %d",
                      opens[i].path, err, opens[i].err);
    }
}

START_TEST(openat2_follows_links_inside_and_refuses_escapes)
{
    fw_static_set_walk(false);
    check_opens(_i);
}
END_TEST

START_TEST(walk_follows_links_inside_and_refuses_escapes)
{
    fw_static_set_walk(true);
    check_opens(_i);
}
END_TEST

START_TEST(root_and_directories_open_as_directories)
{
    struct stat sb;
    int walk, fd;

    for (walk = 0; walk < 2; walk++) {
        fw_static_set_walk(walk);
        fd = fw_static_open("/");
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &sb), 0);
        ck_assert(S_ISDIR(sb.st_mode));
        close(fd);
        fd = fw_static_open("/sub");
        ck_assert_int_ge(fd, 0);
        close(fd);
    }
}
END_TEST

/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
 * writer, and block the loop. */
START_TEST(a_fifo_opens_without_blocking)
{
    struct stat sb;
    int walk, fd;

    for (walk = 0; walk < 2; walk++) {
        fw_static_set_walk(walk);
        fd = fw_static_open("/fifo");
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &sb), 0);
        ck_assert(S_ISFIFO(sb.st_mode));
        close(fd);
    }
}
END_TEST

START_TEST(open_before_init_fails)
{
    fw_static_release();
    ck_assert_int_eq(fw_static_open("/a.txt"), -EBADF);
    ck_assert_int_eq(fw_static_init(&cfg), 0);
}
END_TEST

START_TEST(init_refuses_a_missing_path_or_a_file)
{
    struct fw_config bad = { .static_path = NULL };
    char path[160];

    fw_static_release();
    snprintf(path, sizeof(path), "%s/missing", base);
    bad.static_path = path;
    ck_assert_int_eq(fw_static_init(&bad), -ENOENT);
    snprintf(path, sizeof(path), "%s/secret.txt", base);
    ck_assert_int_eq(fw_static_init(&bad), -ENOTDIR);
    bad.static_path = NULL;
    ck_assert_int_eq(fw_static_init(&bad), -EINVAL);
    ck_assert_int_eq(fw_static_open("/a.txt"), -EBADF);
    ck_assert_int_eq(fw_static_init(&cfg), 0);
}
END_TEST

/* A static_path reached through a symlink: realpath is the root the
 * walk compares against, and links inside still resolve. */
START_TEST(a_linked_static_path_still_serves_inside_only)
{
    char path[160];
    int walk;

    fw_static_release();
    snprintf(path, sizeof(path), "%s/alias", base);
    ck_assert_int_eq(symlink("root", path), 0);
    cfg.static_path = path;
    ck_assert_int_eq(fw_static_init(&cfg), 0);
    for (walk = 0; walk < 2; walk++) {
        fw_static_set_walk(walk);
        check_opens(0);
        check_opens(4);
        check_opens(7);
    }
    cfg.static_path = root;
}
END_TEST

#define ADD(t) tcase_add_test(tc, t)

int main(void)
{
    Suite *s = suite_create("static");
    TCase *tc = tcase_create("clean_path");
    SRunner *sr;
    int failed;

    fw_log_init(FW_INFO);
    suite_add_tcase(s, tc);
    tcase_add_loop_test(tc, paths_are_decoded_and_cleaned_as_go_does, 0,
                        N(paths));
    tcase_add_loop_test(tc, bad_escapes_and_nul_are_rejected, 0,
                        N(bad_paths));
    ADD(a_path_longer_than_the_buffer_is_rejected);
    ADD(dotdot_at_every_position_never_climbs_above_the_root);
    tc = tcase_create("open");
    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    tcase_add_loop_test(tc, openat2_follows_links_inside_and_refuses_escapes,
                        0, N(opens));
    tcase_add_loop_test(tc, walk_follows_links_inside_and_refuses_escapes,
                        0, N(opens));
    ADD(root_and_directories_open_as_directories);
    ADD(a_fifo_opens_without_blocking);
    ADD(open_before_init_fails);
    ADD(init_refuses_a_missing_path_or_a_file);
    ADD(a_linked_static_path_still_serves_inside_only);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
