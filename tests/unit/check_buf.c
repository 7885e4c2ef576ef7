/* check_buf.c - buf.c: appends, formatted appends, reservations, the hard
 * cap and its sticky failure flag, reset, steal and release. Every read
 * of data also checks the NUL kept after the last byte.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"

static struct fw_buf b;

/* Under ASan an absurd allocation returns NULL (as malloc does) rather
 * than ending the test; unused otherwise. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static void setup(void)
{
    fw_buf_init(&b, 0);
}

static void teardown(void)
{
    fw_buf_release(&b);
}

/* b holds exactly s, NUL-terminated, and has room for that NUL. */
static void expect_content(const struct fw_buf *buf, const char *s)
{
    size_t n = strlen(s);

    ck_assert_uint_eq(buf->len, n);
    ck_assert_ptr_nonnull(buf->data);
    ck_assert_uint_gt(buf->cap, buf->len);
    ck_assert_int_eq(memcmp(buf->data, s, n), 0);
    ck_assert_int_eq(buf->data[n], '\0');
}

/* ---- init and append ----------------------------------------------------- */

START_TEST(init_gives_an_empty_buffer_without_memory)
{
    struct fw_buf c;

    memset(&c, 0x5a, sizeof(c));
    fw_buf_init(&c, 42);
    ck_assert_ptr_null(c.data);
    ck_assert_uint_eq(c.len, 0);
    ck_assert_uint_eq(c.cap, 0);
    ck_assert_uint_eq(c.max, 42);
    ck_assert(!c.failed);
    fw_buf_release(&c);
}
END_TEST

START_TEST(append_concatenates_and_keeps_a_nul_after_the_data)
{
    ck_assert_int_eq(fw_buf_append(&b, "abc", 3), 0);
    expect_content(&b, "abc");
    ck_assert_int_eq(fw_buf_append(&b, "defg", 2), 0);
    expect_content(&b, "abcde");
    ck_assert(!b.failed);
}
END_TEST

START_TEST(append_copies_embedded_nul_bytes)
{
    ck_assert_int_eq(fw_buf_append(&b, "a\0b", 3), 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(memcmp(b.data, "a\0b\0", 4), 0);
}
END_TEST

START_TEST(append_of_nothing_changes_nothing)
{
    ck_assert_int_eq(fw_buf_append(&b, NULL, 0), 0);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(fw_buf_append(&b, "x", 1), 0);
    ck_assert_int_eq(fw_buf_append(&b, "y", 0), 0);
    expect_content(&b, "x");
}
END_TEST

START_TEST(append_grows_past_the_first_allocation)
{
    char chunk[1000];
    size_t i;

    for (i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('a' + i % 26);
    for (i = 0; i < 100; i++)
        ck_assert_int_eq(fw_buf_append(&b, chunk, sizeof(chunk)), 0);
    ck_assert_uint_eq(b.len, 100 * sizeof(chunk));
    ck_assert_uint_gt(b.cap, b.len);
    for (i = 0; i < 100; i++)
        ck_assert_int_eq(memcmp(b.data + i * sizeof(chunk), chunk,
                                sizeof(chunk)), 0);
    ck_assert_int_eq(b.data[b.len], '\0');
}
END_TEST

/* ---- appendf ------------------------------------------------------------- */

START_TEST(appendf_formats_at_the_end)
{
    ck_assert_int_eq(fw_buf_append(&b, "n=", 2), 0);
    ck_assert_int_eq(fw_buf_appendf(&b, "%d %s %c", -17, "xy", 'z'), 0);
    expect_content(&b, "n=-17 xy z");
    ck_assert_int_eq(fw_buf_appendf(&b, "%lld", 9223372036854775807LL), 0);
    expect_content(&b, "n=-17 xy z9223372036854775807");
}
END_TEST

START_TEST(appendf_of_an_empty_string_keeps_the_buffer_valid)
{
    ck_assert_int_eq(fw_buf_appendf(&b, "%s", ""), 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(fw_buf_append(&b, "a", 1), 0);
    ck_assert_int_eq(fw_buf_appendf(&b, "%s", ""), 0);
    expect_content(&b, "a");
}
END_TEST

START_TEST(appendf_grows_for_long_output)
{
    char big[5000];

    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(fw_buf_appendf(&b, "<%s>", big), 0);
    ck_assert_uint_eq(b.len, sizeof(big) + 1);
    ck_assert_int_eq(b.data[0], '<');
    ck_assert_int_eq(b.data[sizeof(big)], '>');
    ck_assert_int_eq(b.data[sizeof(big) + 1], '\0');
}
END_TEST

/* ---- the cap and the failure flag ---------------------------------------- */

START_TEST(append_up_to_the_cap_succeeds)
{
    struct fw_buf c;

    fw_buf_init(&c, 10);
    ck_assert_int_eq(fw_buf_append(&c, "0123456789", 10), 0);
    expect_content(&c, "0123456789");
    ck_assert(!c.failed);
    fw_buf_release(&c);
}
END_TEST

START_TEST(append_over_the_cap_fails_and_leaves_the_content)
{
    struct fw_buf c;

    fw_buf_init(&c, 10);
    ck_assert_int_eq(fw_buf_append(&c, "01234567", 8), 0);
    ck_assert_int_eq(fw_buf_append(&c, "abc", 3), -ENOBUFS);
    ck_assert(c.failed);
    expect_content(&c, "01234567");
    fw_buf_release(&c);
}
END_TEST

START_TEST(appendf_over_the_cap_fails_and_leaves_the_content)
{
    struct fw_buf c;

    fw_buf_init(&c, 10);
    ck_assert_int_eq(fw_buf_append(&c, "0123", 4), 0);
    ck_assert_int_eq(fw_buf_appendf(&c, "%s", "abcdefg"), -ENOBUFS);
    ck_assert(c.failed);
    expect_content(&c, "0123");
    fw_buf_release(&c);
}
END_TEST

START_TEST(failure_flag_is_sticky_across_later_successes)
{
    struct fw_buf c;

    fw_buf_init(&c, 4);
    ck_assert_int_eq(fw_buf_append(&c, "abcde", 5), -ENOBUFS);
    ck_assert(c.failed);
    ck_assert_int_eq(fw_buf_append(&c, "ab", 2), 0);
    ck_assert_int_eq(fw_buf_appendf(&c, "%d", 7), 0);
    expect_content(&c, "ab7");
    ck_assert(c.failed);
    fw_buf_release(&c);
}
END_TEST

/* ---- reserve ------------------------------------------------------------- */

START_TEST(reserve_makes_room_for_len_plus_extra_and_a_nul)
{
    char fill[3000];
    char *before;

    ck_assert_int_eq(fw_buf_append(&b, "abc", 3), 0);
    ck_assert_int_eq(fw_buf_reserve(&b, sizeof(fill)), 0);
    ck_assert_uint_ge(b.cap, 3 + sizeof(fill) + 1);
    expect_content(&b, "abc");
    /* What was reserved fits without moving the data. */
    before = b.data;
    memset(fill, 'z', sizeof(fill));
    ck_assert_int_eq(fw_buf_append(&b, fill, sizeof(fill)), 0);
    ck_assert_ptr_eq(b.data, before);
    ck_assert_uint_eq(b.len, 3 + sizeof(fill));
    ck_assert_int_eq(b.data[b.len], '\0');
}
END_TEST

START_TEST(reserve_within_the_cap_succeeds_and_beyond_fails)
{
    struct fw_buf c;

    fw_buf_init(&c, 16);
    ck_assert_int_eq(fw_buf_append(&c, "abcd", 4), 0);
    ck_assert_int_eq(fw_buf_reserve(&c, 12), 0);
    ck_assert(!c.failed);
    ck_assert_int_eq(fw_buf_reserve(&c, 13), -ENOBUFS);
    ck_assert(c.failed);
    expect_content(&c, "abcd");
    fw_buf_release(&c);
}
END_TEST

START_TEST(reserve_of_a_size_that_overflows_fails)
{
    ck_assert_int_eq(fw_buf_append(&b, "abc", 3), 0);
    ck_assert_int_eq(fw_buf_reserve(&b, SIZE_MAX), -ENOBUFS);
    ck_assert(b.failed);
    ck_assert_int_eq(fw_buf_reserve(&b, SIZE_MAX - 3), -ENOBUFS);
    expect_content(&b, "abc");
}
END_TEST

/* The child process isolates a hang: an alarm ends it. It reports 0 when
 * reserve failed cleanly with the content kept. */
static int reserve_huge_in_child(size_t extra)
{
    struct fw_buf c;
    int err;

    /* Check's own SIGALRM handler may have been inherited. */
    signal(SIGALRM, SIG_DFL);
    alarm(2);
    fw_buf_init(&c, 0);
    if (fw_buf_append(&c, "abc", 3) < 0)
        return 2;
    err = fw_buf_reserve(&c, extra);
    if (err != -ENOMEM && err != -ENOBUFS)
        return 3;
    if (!c.failed || c.len != 3 || memcmp(c.data, "abc", 4) != 0)
        return 4;
    fw_buf_release(&c);
    return 0;
}

/* Uncapped: doubling the capacity from 256 wraps to 0 for sizes above
 * SIZE_MAX / 2 and must not loop forever; the allocation then fails. */
START_TEST(reserve_above_half_the_address_space_does_not_hang)
{
    const char *preload = getenv("LD_PRELOAD");
    int status;
    pid_t pid;

    if (preload && strstr(preload, "vgpreload")) {
        fprintf(stderr, "check_buf: reserve_above_half_the_address_space_"
                        "does_not_hang skipped under valgrind: it reports "
                        "any realloc size >= 2^63 as an error (fishy "
                        "argument)\n");
        return;
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(reserve_huge_in_child(SIZE_MAX / 2 + 2));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(!(WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM),
                  "fw_buf_reserve(SIZE_MAX / 2 + 2) did not return in 2 s");
    if (WIFEXITED(status))
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ---- reset, steal, release ----------------------------------------------- */

START_TEST(reset_empties_keeps_memory_and_clears_the_flag)
{
    struct fw_buf c;
    char *mem;
    size_t cap;

    fw_buf_init(&c, 8);
    ck_assert_int_eq(fw_buf_append(&c, "abcdef", 6), 0);
    ck_assert_int_eq(fw_buf_append(&c, "ghijk", 5), -ENOBUFS);
    mem = c.data;
    cap = c.cap;
    fw_buf_reset(&c);
    ck_assert_uint_eq(c.len, 0);
    ck_assert(!c.failed);
    ck_assert_ptr_eq(c.data, mem);
    ck_assert_uint_eq(c.cap, cap);
    ck_assert_uint_eq(c.max, 8);
    ck_assert_int_eq(fw_buf_append(&c, "xy", 2), 0);
    expect_content(&c, "xy");
    fw_buf_release(&c);
}
END_TEST

START_TEST(steal_hands_over_the_memory_and_empties_the_buffer)
{
    char *p;

    ck_assert_int_eq(fw_buf_append(&b, "hello", 5), 0);
    p = fw_buf_steal(&b);
    ck_assert_str_eq(p, "hello");
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_int_eq(fw_buf_append(&b, "again", 5), 0);
    expect_content(&b, "again");
    ck_assert_ptr_ne(b.data, p);
    free(p);
}
END_TEST

START_TEST(steal_of_an_empty_buffer_gives_null)
{
    ck_assert_ptr_null(fw_buf_steal(&b));
    ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(release_frees_and_leaves_a_reusable_empty_buffer)
{
    struct fw_buf c;

    fw_buf_init(&c, 4);
    ck_assert_int_eq(fw_buf_append(&c, "abcdef", 6), -ENOBUFS);
    ck_assert_int_eq(fw_buf_append(&c, "ab", 2), 0);
    fw_buf_release(&c);
    ck_assert_ptr_null(c.data);
    ck_assert_uint_eq(c.len, 0);
    ck_assert_uint_eq(c.cap, 0);
    ck_assert(!c.failed);
    ck_assert_uint_eq(c.max, 4);
    fw_buf_release(&c);    /* a second release is harmless */
    ck_assert_int_eq(fw_buf_append(&c, "wxyz", 4), 0);
    expect_content(&c, "wxyz");
    fw_buf_release(&c);
}
END_TEST

#define ADD(t) tcase_add_test(tc, t)

int main(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("append");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    ADD(init_gives_an_empty_buffer_without_memory);
    ADD(append_concatenates_and_keeps_a_nul_after_the_data);
    ADD(append_copies_embedded_nul_bytes);
    ADD(append_of_nothing_changes_nothing);
    ADD(append_grows_past_the_first_allocation);
    ADD(appendf_formats_at_the_end);
    ADD(appendf_of_an_empty_string_keeps_the_buffer_valid);
    ADD(appendf_grows_for_long_output);
    tc = tcase_create("cap");
    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    ADD(append_up_to_the_cap_succeeds);
    ADD(append_over_the_cap_fails_and_leaves_the_content);
    ADD(appendf_over_the_cap_fails_and_leaves_the_content);
    ADD(failure_flag_is_sticky_across_later_successes);
    ADD(reserve_makes_room_for_len_plus_extra_and_a_nul);
    ADD(reserve_within_the_cap_succeeds_and_beyond_fails);
    ADD(reserve_of_a_size_that_overflows_fails);
    ADD(reserve_above_half_the_address_space_does_not_hang);
    tc = tcase_create("ownership");
    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    ADD(reset_empties_keeps_memory_and_clears_the_flag);
    ADD(steal_hands_over_the_memory_and_empties_the_buffer);
    ADD(steal_of_an_empty_buffer_gives_null);
    ADD(release_frees_and_leaves_a_reusable_empty_buffer);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
