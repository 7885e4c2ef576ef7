/* check_log.c - log.c: the line splitter that relays a child's output to
 * the log (spec 9). Lines go to an in-memory file (memfd), read back
 * after each step.
 */
#include <check.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static struct fw_lines l;
static int out_fd = -1;
static char *out;           /* everything written so far, NUL-ended */

static void setup(void)
{
    out_fd = memfd_create("fw-lines", MFD_CLOEXEC);
    ck_assert_int_ge(out_fd, 0);
    out = NULL;
}

static void teardown(void)
{
    fw_lines_release(&l);
    free(out);
    out = NULL;
    if (out_fd >= 0)
        close(out_fd);
    out_fd = -1;
}

/* Reads back all that was written to out_fd. */
static const char *output(void)
{
    struct stat st;
    ssize_t n;

    ck_assert_int_eq(fstat(out_fd, &st), 0);
    free(out);
    out = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(out);
    n = pread(out_fd, out, (size_t)st.st_size, 0);
    ck_assert_int_eq(n, st.st_size);
    out[n] = '\0';
    return out;
}

static void init(bool prefix, int64_t max_line)
{
    fw_lines_init(&l, out_fd, "stderr", prefix, max_line);
}

static void feed(const char *s)
{
    fw_lines_feed(&l, s, strlen(s));
}

/* ---- init ---------------------------------------------------------------- */

START_TEST(init_fills_every_field)
{
    memset(&l, 0x5a, sizeof(l));
    fw_lines_init(&l, out_fd, "stdout", true, 123);
    ck_assert_int_eq(l.fd, out_fd);
    ck_assert_str_eq(l.label, "stdout");
    ck_assert(l.prefix);
    ck_assert_uint_eq(l.max_line, 123);
    ck_assert_ptr_null(l.part);
    ck_assert_uint_eq(l.part_len, 0);
}
END_TEST

/* ---- splitting ----------------------------------------------------------- */

START_TEST(complete_lines_are_relayed_one_by_one)
{
    init(false, 4096);
    feed("one\ntwo\nthree\n");
    ck_assert_str_eq(output(), "one\ntwo\nthree\n");
}
END_TEST

START_TEST(unfinished_line_waits_for_its_newline)
{
    init(false, 4096);
    feed("first\nhal");
    ck_assert_str_eq(output(), "first\n");
    feed("f a li");
    ck_assert_str_eq(output(), "first\n");
    feed("ne\nnext");
    ck_assert_str_eq(output(), "first\nhalf a line\n");
}
END_TEST

START_TEST(empty_lines_are_preserved)
{
    init(false, 4096);
    feed("\n\na\n\n");
    ck_assert_str_eq(output(), "\n\na\n\n");
}
END_TEST

START_TEST(feed_of_nothing_emits_nothing)
{
    init(false, 4096);
    fw_lines_feed(&l, "", 0);
    feed("ab");
    fw_lines_feed(&l, "x", 0);
    ck_assert_str_eq(output(), "");
    feed("\n");
    ck_assert_str_eq(output(), "ab\n");
}
END_TEST

static const char two_feeds_text[] = "alpha\n\nbeta gamma\ndelta\nepsilon";

/* Whatever the split between two feeds, the lines come out the same. */
START_TEST(split_at_every_offset_gives_the_same_lines)
{
    size_t n = strlen(two_feeds_text), at = (size_t)_i;

    ck_assert_uint_le(at, n);
    init(false, 4096);
    fw_lines_feed(&l, two_feeds_text, at);
    fw_lines_feed(&l, two_feeds_text + at, n - at);
    fw_lines_release(&l);
    ck_assert_str_eq(output(), "alpha\n\nbeta gamma\ndelta\nepsilon\n");
}
END_TEST

START_TEST(byte_by_byte_feeding_gives_the_same_lines)
{
    size_t i, n = strlen(two_feeds_text);

    init(false, 4096);
    for (i = 0; i < n; i++)
        fw_lines_feed(&l, two_feeds_text + i, 1);
    ck_assert_str_eq(output(), "alpha\n\nbeta gamma\ndelta\n");
    fw_lines_release(&l);
    ck_assert_str_eq(output(), "alpha\n\nbeta gamma\ndelta\nepsilon\n");
}
END_TEST

/* ---- long lines ---------------------------------------------------------- */

START_TEST(long_line_goes_out_in_pieces_and_relaying_continues)
{
    init(false, 4);
    feed("abcdefghij\nnext\nlast\n");
    ck_assert_str_eq(output(), "abcd\nefgh\nij\nnext\nlast\n");
}
END_TEST

START_TEST(line_of_exactly_max_line_bytes_is_one_line)
{
    init(false, 4);
    feed("abcd\nefgh\n");
    ck_assert_str_eq(output(), "abcd\nefgh\n");
}
END_TEST

START_TEST(line_of_max_line_bytes_split_before_its_newline_is_one_line)
{
    init(false, 4);
    feed("abcd");
    feed("\n");
    feed("ef");
    feed("gh");
    feed("\nx\n");
    ck_assert_str_eq(output(), "abcd\nefgh\nx\n");
}
END_TEST

START_TEST(line_of_twice_max_line_bytes_gives_two_pieces_and_no_empty_line)
{
    init(false, 4);
    feed("abcdefgh\n");
    ck_assert_str_eq(output(), "abcd\nefgh\n");
    feed("ijklmnop");
    feed("\n");
    ck_assert_str_eq(output(), "abcd\nefgh\nijkl\nmnop\n");
}
END_TEST

START_TEST(long_line_spread_over_feeds_is_cut_at_max_line)
{
    init(false, 4);
    feed("ab");
    feed("cdef");
    ck_assert_str_eq(output(), "abcd\n");
    feed("ghi");
    ck_assert_str_eq(output(), "abcd\nefgh\n");
    feed("\nz\n");
    ck_assert_str_eq(output(), "abcd\nefgh\ni\nz\n");
}
END_TEST

START_TEST(one_byte_limit_emits_one_byte_per_line)
{
    init(false, 1);
    feed("abc\n\nd\n");
    ck_assert_str_eq(output(), "a\nb\nc\n\nd\n");
}
END_TEST

START_TEST(negative_max_line_means_unlimited)
{
    char chunk[1000];
    size_t i;
    const char *o;

    init(false, -1);
    ck_assert_uint_eq(l.max_line, 0);
    memset(chunk, 'x', sizeof(chunk));
    for (i = 0; i < 100; i++)
        fw_lines_feed(&l, chunk, sizeof(chunk));
    ck_assert_str_eq(output(), "");
    feed("\ntail\n");
    o = output();
    ck_assert_uint_eq(strlen(o), 100 * sizeof(chunk) + 6);
    ck_assert_int_eq(o[100 * sizeof(chunk)], '\n');
    ck_assert_str_eq(o + 100 * sizeof(chunk), "\ntail\n");
    ck_assert_int_eq((int)strspn(o, "x"), 100 * (int)sizeof(chunk));
}
END_TEST

/* Go's bufio.Scanner (of-watchdog pipeBuffered, the bounded mode) drops
 * one carriage return before the newline (bufio.ScanLines, dropCR). */
START_TEST(carriage_return_before_newline_is_dropped_as_go_does)
{
    init(false, 4096);
    feed("dos line\r\nplain\n");
    ck_assert_str_eq(output(), "dos line\nplain\n");
}
END_TEST

/* ---- release ------------------------------------------------------------- */

START_TEST(final_unterminated_line_is_emitted_at_release)
{
    init(false, 4096);
    feed("x\ntail");
    ck_assert_str_eq(output(), "x\n");
    fw_lines_release(&l);
    ck_assert_str_eq(output(), "x\ntail\n");
    ck_assert_ptr_null(l.part);
    ck_assert_uint_eq(l.part_len, 0);
    fw_lines_release(&l);    /* twice: nothing more */
    ck_assert_str_eq(output(), "x\ntail\n");
}
END_TEST

START_TEST(release_after_a_newline_emits_nothing_more)
{
    init(false, 4096);
    feed("done\n");
    fw_lines_release(&l);
    ck_assert_str_eq(output(), "done\n");
}
END_TEST

START_TEST(release_after_a_full_piece_emits_it)
{
    init(false, 4);
    feed("abcdef");
    fw_lines_release(&l);
    ck_assert_str_eq(output(), "abcd\nef\n");
}
END_TEST

/* ---- prefix -------------------------------------------------------------- */

/* Every line of s matches re. */
static void expect_lines_match(const char *s, const char *re, int lines)
{
    regex_t rx;
    char *copy = strdup(s), *line, *save = NULL;
    int n = 0;

    ck_assert_ptr_nonnull(copy);
    ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_int_eq(s[strlen(s) - 1], '\n');
    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(regexec(&rx, line, 0, NULL, 0) == 0,
                      "line \"%s\" does not match %s", line, re);
        n++;
    }
    regfree(&rx);
    free(copy);
    ck_assert_int_eq(n, lines);
}

#define STAMP \
    "^[0-9]{4}/[0-1][0-9]/[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] "

START_TEST(prefix_adds_timestamp_and_label)
{
    init(true, 4096);
    feed("hello world\n");
    expect_lines_match(output(), STAMP "stderr: hello world$", 1);
}
END_TEST

START_TEST(prefix_uses_the_label_given)
{
    fw_lines_init(&l, out_fd, "stdout", true, 4096);
    feed("a\nb\n");
    expect_lines_match(output(), STAMP "stdout: [ab]$", 2);
}
END_TEST

START_TEST(prefix_applies_to_every_piece_and_to_empty_lines)
{
    const char *o;
    const char *p;
    int empty = 0;

    init(true, 3);
    feed("abcdefg\n\n");
    fw_lines_release(&l);
    o = output();
    expect_lines_match(o, STAMP "stderr: (abc|def|g|)$", 4);
    for (p = o; (p = strstr(p, "stderr: \n")) != NULL; p++)
        empty++;
    ck_assert_int_eq(empty, 1);
}
END_TEST

START_TEST(no_prefix_gives_the_bare_line)
{
    init(false, 4096);
    feed("2024/01/01 looks like a stamp\n");
    ck_assert_str_eq(output(), "2024/01/01 looks like a stamp\n");
}
END_TEST

/* ---- emit ---------------------------------------------------------------- */

START_TEST(emit_writes_one_line_with_a_newline_added)
{
    init(false, 4);
    fw_lines_emit(&l, "longer than max_line", 20);
    fw_lines_emit(&l, "", 0);
    ck_assert_str_eq(output(), "longer than max_line\n\n");
}
END_TEST

START_TEST(lines_can_carry_any_byte_but_newline)
{
    init(false, 4096);
    fw_lines_feed(&l, "a\0b\tc\n", 6);
    output();
    ck_assert_int_eq(memcmp(out, "a\0b\tc\n", 6), 0);
}
END_TEST

#define ADD(t) tcase_add_test(tc, t)

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase(s, "split");
    SRunner *sr;
    int failed;

    ADD(init_fills_every_field);
    ADD(complete_lines_are_relayed_one_by_one);
    ADD(unfinished_line_waits_for_its_newline);
    ADD(empty_lines_are_preserved);
    ADD(feed_of_nothing_emits_nothing);
    tcase_add_loop_test(tc, split_at_every_offset_gives_the_same_lines, 0,
                        N(two_feeds_text));
    ADD(byte_by_byte_feeding_gives_the_same_lines);
    ADD(carriage_return_before_newline_is_dropped_as_go_does);
    tc = tcase(s, "long");
    ADD(long_line_goes_out_in_pieces_and_relaying_continues);
    ADD(line_of_exactly_max_line_bytes_is_one_line);
    ADD(line_of_max_line_bytes_split_before_its_newline_is_one_line);
    ADD(line_of_twice_max_line_bytes_gives_two_pieces_and_no_empty_line);
    ADD(long_line_spread_over_feeds_is_cut_at_max_line);
    ADD(one_byte_limit_emits_one_byte_per_line);
    ADD(negative_max_line_means_unlimited);
    tc = tcase(s, "release");
    ADD(final_unterminated_line_is_emitted_at_release);
    ADD(release_after_a_newline_emits_nothing_more);
    ADD(release_after_a_full_piece_emits_it);
    tc = tcase(s, "prefix");
    ADD(prefix_adds_timestamp_and_label);
    ADD(prefix_uses_the_label_given);
    ADD(prefix_applies_to_every_piece_and_to_empty_lines);
    ADD(no_prefix_gives_the_bare_line);
    ADD(emit_writes_one_line_with_a_newline_added);
    ADD(lines_can_carry_any_byte_but_newline);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
