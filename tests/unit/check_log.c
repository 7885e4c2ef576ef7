/* check_log.c - log.c: the line splitter that relays a child's output to
 * the log (spec 9), JSON lines and their escaping, the access log, and
 * the writer thread: its bounded queue, dropped lines and the bounded
 * flush at stop. Lines go to an in-memory file (memfd), read back after
 * each step, or to a pipe read by a thread of the test.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

static int saved_stderr = -1;  /* fd 2 while captured */

static void teardown(void)
{
    fw_log_stop();
    fw_log_set_json(false);
    fw_log_init(FW_INFO);
    fw_lines_release(&l);
    if (saved_stderr >= 0) {
        dup2(saved_stderr, 2);
        close(saved_stderr);
        saved_stderr = -1;
    }
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

/* ---- JSON ---------------------------------------------------------------- */

static const struct {
    const char *in;
    size_t len;          /* 0: strlen(in) */
    const char *want;
} escapes[] = {
    { "plain text", 0, "plain text" },
    { "say \"hi\"", 0, "say \\\"hi\\\"" },
    { "back\\slash", 0, "back\\\\slash" },
    { "\n\r\t", 0, "\\n\\r\\t" },
    { "\x01\x1f\b\f", 0, "\\u0001\\u001f\\u0008\\u000c" },
    { "a\0b", 3, "a\\u0000b" },
    { "del\x7f", 0, "del\x7f" },
    { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0,
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
    { "\xe0\xa0\x80 \xf4\x8f\xbf\xbf", 0, "\xe0\xa0\x80 \xf4\x8f\xbf\xbf" },
    { "\x80", 0, "\\ufffd" },
    { "\xff\xfe", 0, "\\ufffd\\ufffd" },
    { "\xc0\x80", 0, "\\ufffd\\ufffd" },              /* overlong NUL */
    { "\xe0\x9f\xbf", 0, "\\ufffd\\ufffd\\ufffd" },   /* overlong */
    { "\xed\xa0\x80", 0, "\\ufffd\\ufffd\\ufffd" },   /* surrogate */
    { "\xf4\x90\x80\x80", 0, "\\ufffd\\ufffd\\ufffd\\ufffd" }, /* > 10FFFF */
    { "\xf5\x80", 0, "\\ufffd\\ufffd" },
    { "x\xe2\x82", 0, "x\\ufffd\\ufffd" },            /* cut at the end */
    { "\xe2\x82x", 0, "\\ufffd\\ufffdx" },            /* cut by ASCII */
    { "\xc3\"", 0, "\\ufffd\\\"" },
    { "", 0, "" },
};

START_TEST(json_escape_gives_valid_json_for_any_bytes)
{
    const char *in = escapes[_i].in;
    size_t len = escapes[_i].len ? escapes[_i].len : strlen(in);
    char buf[256];
    size_t n;

    memset(buf, 0x5a, sizeof(buf));
    n = fw_log_json_escape(in, len, buf);
    ck_assert_uint_eq(n, fw_log_json_escape(in, len, NULL));
    ck_assert_uint_le(n, 6 * len);
    ck_assert_uint_lt(n, sizeof(buf));
    buf[n] = '\0';
    ck_assert_str_eq(buf, escapes[_i].want);
}
END_TEST

#define JSON_TIME "{\"time\":\"2006-01-02T15:04:05.000Z\""

/* Checks that s holds n JSON lines, each {"time":"<RFC 3339>" followed
 * by rest[i]. */
static void expect_json_lines(const char *s, const char *const *rest, int n)
{
    regex_t rx;
    const char *nl;
    size_t skip = strlen(JSON_TIME);
    int i;

    ck_assert_int_eq(regcomp(&rx, "^\\{\"time\":\"[0-9]{4}-[0-1][0-9]-"
                             "[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
                             "\\.[0-9]{3}Z\"", REG_EXTENDED | REG_NOSUB), 0);
    for (i = 0; i < n; i++) {
        nl = strchr(s, '\n');
        ck_assert_msg(nl != NULL, "line %d missing", i);
        ck_assert_msg(regexec(&rx, s, 0, NULL, 0) == 0, "no time: %s", s);
        ck_assert_uint_gt((size_t)(nl - s), skip);
        ck_assert_msg(strlen(rest[i]) == (size_t)(nl - s) - skip &&
                      memcmp(s + skip, rest[i], strlen(rest[i])) == 0,
                      "line %d: %.*s, expected ...%s", i, (int)(nl - s), s,
                      rest[i]);
        s = nl + 1;
    }
    regfree(&rx);
    ck_assert_str_eq(s, "");
}

START_TEST(json_relayed_line_is_one_object_with_stream_and_msg)
{
    static const char *const want[] = {
        ",\"stream\":\"stderr\",\"msg\":\"say \\\"hi\\\"\\t\\\\ \\ufffd\"}",
        ",\"stream\":\"stderr\",\"msg\":\"\"}",
    };

    fw_log_set_json(true);
    init(true, 4096);
    feed("say \"hi\"\t\\ \xff\n\n");
    expect_json_lines(output(), want, N(want));
}
END_TEST

START_TEST(json_relayed_line_carries_the_call_id_set)
{
    static const char *const want[] = {
        ",\"stream\":\"stderr\",\"msg\":\"one\",\"call_id\":\"id \\\"7\\\"\"}",
        ",\"stream\":\"stderr\",\"msg\":\"two\"}",
    };

    fw_log_set_json(true);
    init(false, 4096);
    fw_lines_set_call_id(&l, "id \"7\" and more", 6);
    feed("one\n");
    fw_lines_release(&l);
    ck_assert_ptr_null(l.call_id);
    feed("two\n");
    expect_json_lines(output(), want, N(want));
}
END_TEST

START_TEST(text_relayed_line_has_no_call_id)
{
    init(false, 4096);
    fw_lines_set_call_id(&l, "id-1", 4);
    feed("plain\n");
    ck_assert_str_eq(output(), "plain\n");
}
END_TEST

START_TEST(json_long_line_is_split_into_objects_of_max_line_bytes)
{
    static const char *const want[] = {
        ",\"stream\":\"stdout\",\"msg\":\"abcd\"}",
        ",\"stream\":\"stdout\",\"msg\":\"efgh\"}",
        ",\"stream\":\"stdout\",\"msg\":\"ij\"}",
        ",\"stream\":\"stdout\",\"msg\":\"tail\"}",
    };

    fw_log_set_json(true);
    fw_lines_init(&l, out_fd, "stdout", false, 4);
    feed("ab");
    feed("cdefghij\nta");
    feed("il");
    fw_lines_release(&l);
    expect_json_lines(output(), want, N(want));
}
END_TEST

/* fd 2 goes to out_fd until teardown. */
static void capture_stderr(void)
{
    saved_stderr = dup(2);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_eq(dup2(out_fd, 2), 2);
}

START_TEST(json_own_message_has_level_and_escaped_msg)
{
    static const char *const want[] = {
        ",\"level\":\"error\",\"msg\":\"exec \\\"x\\\": \\u0001\"}",
        ",\"level\":\"info\",\"msg\":\"plain\"}",
    };

    capture_stderr();
    fw_log_set_json(true);
    fw_log(FW_ERROR, "exec \"%s\": %c", "x", 1);
    fw_log(FW_INFO, "plain");
    fw_log(FW_DEBUG, "below the level: not printed");
    expect_json_lines(output(), want, N(want));
}
END_TEST

START_TEST(text_own_message_is_timestamped)
{
    capture_stderr();
    fw_log(FW_INFO, "Listening on port: %d", 8080);
    expect_lines_match(output(), STAMP "Listening on port: 8080$", 1);
}
END_TEST

static const struct fw_access access_line = {
    .method = "POST",
    .target = "/p?q=\"1\"",
    .status = 201,
    .duration_s = 0.25,
    .bytes_in = 5,
    .bytes_out = 12345,
    .call_id = "id-1 and more",
    .call_id_len = 4,
};

START_TEST(text_access_line_is_the_text_given)
{
    capture_stderr();
    fw_log_access(&access_line, "POST /p - 201 - ContentLength: 12.35kB");
    expect_lines_match(output(),
                       STAMP "POST /p - 201 - ContentLength: 12\\.35kB$", 1);
}
END_TEST

START_TEST(json_access_line_has_every_field)
{
    static const char *const want[] = {
        ",\"level\":\"info\",\"msg\":\"POST /p?q=\\\"1\\\" - 201\","
        "\"method\":\"POST\",\"path\":\"/p?q=\\\"1\\\"\",\"status\":201,"
        "\"duration_seconds\":0.250000,\"bytes_in\":5,\"bytes_out\":12345,"
        "\"call_id\":\"id-1\"}",
        ",\"level\":\"info\",\"msg\":\"GET / - 200\",\"method\":\"GET\","
        "\"path\":\"/\",\"status\":200,\"duration_seconds\":0.000001,"
        "\"bytes_in\":0,\"bytes_out\":0}",
    };
    struct fw_access none = {
        .method = "GET", .target = "/", .status = 200, .duration_s = 1e-6,
    };

    capture_stderr();
    fw_log_set_json(true);
    fw_log_access(&access_line, "POST /p?q=\"1\" - 201");
    fw_log_access(&none, "GET / - 200");
    expect_json_lines(output(), want, N(want));
}
END_TEST

/* ---- the writer thread --------------------------------------------------- */

/* A thread of the test that reads a pipe to EOF. */
struct reader {
    pthread_t thread;
    int fd;              /* read end, owned */
    char *data;          /* all that was read */
    size_t len;
    size_t cap;
};

static void *read_to_eof(void *arg)
{
    struct reader *r = arg;
    ssize_t n;

    for (;;) {
        if (r->len + 65536 > r->cap) {
            r->cap = r->cap * 2 + 65536;
            r->data = realloc(r->data, r->cap + 1);
            if (r->data == NULL)
                abort();
        }
        n = read(r->fd, r->data + r->len, r->cap - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    r->data[r->len] = '\0';
    return NULL;
}

static void reader_start(struct reader *r, int fd)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    ck_assert_int_eq(pthread_create(&r->thread, NULL, read_to_eof, r), 0);
}

static void reader_join(struct reader *r)
{
    ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
    close(r->fd);
}

/* A pipe of one page, so that the writer blocks soon. */
static void small_pipe(int p[2])
{
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
}

/* Line i of the writer tests: "NNNNN " and filler, len bytes with its
 * newline. */
static void test_line(char *buf, size_t len, int i)
{
    snprintf(buf, len, "%05d ", i);
    memset(buf + 6, 'a' + i % 26, len - 7);
    buf[len - 1] = '\n';
}

/* Every line of s is whole (len bytes, as test_line made it) and the
 * numbers go up; returns how many there are. */
static int count_whole_lines(const char *s, size_t len)
{
    char want[4096];
    const char *nl;
    int n = 0, i, last = -1;

    ck_assert_uint_le(len, sizeof(want));
    for (; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        ck_assert_msg(nl != NULL, "unterminated line: %.40s", s);
        ck_assert_uint_eq((size_t)(nl + 1 - s), len);
        i = atoi(s);
        ck_assert_int_gt(i, last);
        test_line(want, len, i);
        ck_assert_int_eq(memcmp(s, want, len), 0);
        last = i;
        n++;
    }
    return n;
}

START_TEST(writer_keeps_the_order_of_stdout_and_stderr_lines)
{
    struct fw_lines out, err;
    struct reader r;
    uint64_t dropped = fw_log_dropped_lines();
    char line[300];
    int p[2], i;

    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    reader_start(&r, p[0]);
    /* Two fds on one pipe: the writer groups lines per fd. */
    fw_lines_init(&out, p[1], "stdout", false, 4096);
    fw_lines_init(&err, dup(p[1]), "stderr", false, 4096);
    ck_assert_int_ge(err.fd, 0);
    ck_assert_int_eq(fw_log_start(1 << 20), 0);
    for (i = 0; i < 2000; i++) {
        test_line(line, sizeof(line), i);
        fw_lines_feed(i % 3 ? &out : &err, line, sizeof(line));
    }
    fw_log_stop();
    close(out.fd);
    close(err.fd);
    reader_join(&r);
    ck_assert_int_eq(count_whole_lines(r.data, sizeof(line)), 2000);
    ck_assert_uint_eq(fw_log_dropped_lines(), dropped);
    fw_lines_release(&out);
    fw_lines_release(&err);
    free(r.data);
}
END_TEST

START_TEST(full_queue_drops_whole_lines_and_counts_them)
{
    struct reader r;
    uint64_t dropped = fw_log_dropped_lines();
    char line[100];
    int p[2], i, got;

    small_pipe(p);
    init(false, 4096);
    l.fd = p[1];
    ck_assert_int_eq(fw_log_start(1000), 0);
    /* Nobody reads: a page goes into the pipe, 1000 bytes (lines and
     * their headers) wait in the queue, the rest cannot be kept. */
    for (i = 0; i < 300; i++) {
        test_line(line, sizeof(line), i);
        fw_lines_feed(&l, line, sizeof(line));
    }
    ck_assert_uint_ge(fw_log_dropped_lines() - dropped, 300 - 4096 / 100 - 10);
    /* A reader comes: what was kept comes out whole, in order. */
    reader_start(&r, p[0]);
    fw_log_stop();
    close(p[1]);
    reader_join(&r);
    got = count_whole_lines(r.data, sizeof(line));
    ck_assert_uint_eq((uint64_t)got + (fw_log_dropped_lines() - dropped), 300);
    ck_assert_int_ge(got, 1000 / (100 + 64)); /* a full queue, at least */
    free(r.data);
}
END_TEST

/* The cap is on memory, not on text: empty lines cost their headers. */
START_TEST(flood_of_empty_lines_is_bounded_by_memory)
{
    uint64_t dropped = fw_log_dropped_lines();
    int p[2], i;

    small_pipe(p);
    init(false, 4096);
    l.fd = p[1];
    ck_assert_int_eq(fw_log_start(1000), 0);
    for (i = 0; i < 10000; i++)
        feed("\n");
    /* At most a page of lines in the pipe and 1000 / 24 queued. */
    ck_assert_uint_ge(fw_log_dropped_lines() - dropped, 10000 - 4096 - 42);
    close(p[0]);         /* the writer's write fails: EPIPE */
    fw_log_stop();
    close(p[1]);
}
END_TEST

START_TEST(stop_gives_up_on_a_stalled_reader_and_drops_later_lines)
{
    uint64_t dropped = fw_log_dropped_lines();
    struct timespec t0, t1;
    char line[100], *data;
    ssize_t n;
    int p[2], i, lines = 0;
    double secs;

    small_pipe(p);
    init(false, 4096);
    l.fd = p[1];
    ck_assert_int_eq(fw_log_start(1 << 20), 0);
    for (i = 0; i < 100; i++) {
        test_line(line, sizeof(line), i);
        fw_lines_feed(&l, line, sizeof(line));
    }
    ck_assert_uint_eq(fw_log_dropped_lines(), dropped);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fw_log_stop();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) +
           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(secs < 5.0 * FW_LOG_FLUSH_MS / 1000, "stop took %.1fs", secs);
    /* The reader is still stalled: a later line is dropped, not left
     * blocking its caller. */
    feed("after stop\n");
    data = malloc(65536);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    n = read(p[0], data, 65536);
    ck_assert_int_gt(n, 0);
    for (i = 0; i < n; i++)
        lines += data[i] == '\n';
    ck_assert_uint_eq((uint64_t)lines + fw_log_dropped_lines() - dropped, 101);
    ck_assert_int_lt(lines, 100);
    free(data);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(lines_before_start_and_after_stop_are_written_at_once)
{
    init(false, 4096);
    feed("before\n");
    ck_assert_str_eq(output(), "before\n");
    ck_assert_int_eq(fw_log_start(1 << 20), 0);
    feed("during\n");
    fw_log_stop();
    ck_assert_str_eq(output(), "before\nduring\n");
    feed("after\n");
    ck_assert_str_eq(output(), "before\nduring\nafter\n");
}
END_TEST

START_TEST(line_longer_than_the_queue_goes_through_an_empty_queue)
{
    static char big[10000];

    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\n';
    init(false, -1);
    ck_assert_int_eq(fw_log_start(1000), 0);
    fw_lines_feed(&l, big, sizeof(big));
    fw_log_stop();
    ck_assert_uint_eq(strlen(output()), sizeof(big));
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
    tc = tcase(s, "json");
    tcase_add_loop_test(tc, json_escape_gives_valid_json_for_any_bytes, 0,
                        N(escapes));
    ADD(json_relayed_line_is_one_object_with_stream_and_msg);
    ADD(json_long_line_is_split_into_objects_of_max_line_bytes);
    ADD(json_relayed_line_carries_the_call_id_set);
    ADD(text_relayed_line_has_no_call_id);
    ADD(json_own_message_has_level_and_escaped_msg);
    ADD(text_own_message_is_timestamped);
    ADD(text_access_line_is_the_text_given);
    ADD(json_access_line_has_every_field);
    tc = tcase(s, "writer");
    ADD(writer_keeps_the_order_of_stdout_and_stderr_lines);
    ADD(full_queue_drops_whole_lines_and_counts_them);
    ADD(flood_of_empty_lines_is_bounded_by_memory);
    ADD(stop_gives_up_on_a_stalled_reader_and_drops_later_lines);
    ADD(lines_before_start_and_after_stop_are_written_at_once);
    ADD(line_longer_than_the_queue_goes_through_an_empty_queue);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
