/* log.c - log lines, text or JSON, formatted on the loop's thread and
 * written by one writer thread from a bounded queue, so a stalled reader
 * of stdout or stderr costs dropped lines, never a stalled loop. One
 * thread writing whole lines in queue order keeps every line whole and
 * stdout and stderr lines in the order they were logged.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define FW_LOG_LINE 4096    /* own messages are cut to this */
#define FW_LOG_IOV 64       /* lines per writev */

/* Interrupts a write fw_log_stop gave up on. Ignored by default and used
 * by nothing else here, so a stray one is harmless. */
#define FW_LOG_WAKE SIGURG

/* One line on its way out. */
struct entry {
    struct entry *next;  /* queue order */
    int fd;              /* 1 or 2 */
    size_t len;          /* bytes in line, newline included */
    size_t cap;          /* bytes allocated for line */
    char line[];
};

/* What a queued line costs: the queue's cap is on memory, so that a
 * flood of empty lines cannot hold many times the cap in headers. */
#define ENTRY_BYTES(e) (sizeof(struct entry) + (e)->cap)

static enum fw_log_level min_level = FW_INFO;
static bool json;                 /* log_format=json */
static _Atomic uint64_t dropped;  /* fw_log_dropped_lines */

static struct {
    pthread_mutex_t lock;         /* guards the fields up to stopping */
    pthread_cond_t wake;          /* writer: lines queued, or stop */
    pthread_cond_t drained;       /* fw_log_stop: bytes reached 0 */
    struct entry *head, *tail;    /* queued, not yet taken by the writer */
    size_t bytes;                 /* ENTRY_BYTES queued or being written */
    size_t max_bytes;             /* cap on bytes */
    bool stopping;                /* fw_log_stop: exit once empty */
    atomic_bool abandon;          /* fw_log_stop gave up: drop the rest */
    atomic_bool exited;           /* the writer is about to return */
    pthread_t thread;
    bool running;                 /* thread exists; loop thread only */
    bool gave_up;                 /* the reader stalled at stop: later
                                     lines are dropped, not written */
    bool unsignalled;             /* queued since the writer was woken;
                                     loop thread only */
} q = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .drained = PTHREAD_COND_INITIALIZER,
};

/* With a loop attached the writer is woken once per loop turn, just
 * before the loop waits, for all the lines of that turn: one wake-up
 * and one writev for many requests instead of one per line. */
static uv_prepare_t turn_end;
static bool attached;

void fw_log_init(enum fw_log_level level)
{
    min_level = level;
    q.gave_up = false;
}

void fw_log_set_json(bool on)
{
    json = on;
}

uint64_t fw_log_dropped_lines(void)
{
    return atomic_load(&dropped);
}

/* ---- writing ------------------------------------------------------------ */

/* Writes all of iov, retrying on EINTR and short writes. Returns how
 * many of the n lines were not completely written: 0, or all from the
 * first one an error (or fw_log_stop giving up) cut. A log line that
 * cannot be written is dropped: there is nowhere to report it. */
static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);

        if (w < 0) {
            if (errno == EINTR && !atomic_load(&q.abandon))
                continue;
            return n;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void count_dropped(uint64_t lines)
{
    atomic_fetch_add(&dropped, lines);
}

/* Frees a list of entries, counting them dropped; returns their bytes. */
static size_t drop_list(struct entry *e)
{
    size_t bytes = 0;
    uint64_t lines = 0;
    struct entry *next;

    for (; e; e = next) {
        next = e->next;
        bytes += ENTRY_BYTES(e);
        lines++;
        free(e);
    }
    count_dropped(lines);
    return bytes;
}

/* Writes a list of entries, one writev per run of up to FW_LOG_IOV lines
 * to the same fd, and frees them. Returns the bytes they held. */
static size_t write_list(struct entry *e)
{
    struct iovec iov[FW_LOG_IOV];
    struct entry *end, *next;
    size_t bytes = 0;
    int n, lost;

    while (e) {
        if (atomic_load(&q.abandon))
            return bytes + drop_list(e);
        n = 0;
        for (end = e; end && end->fd == e->fd && n < FW_LOG_IOV;
             end = end->next)
            iov[n++] = (struct iovec){ end->line, end->len };
        lost = write_all(e->fd, iov, n);
        count_dropped((uint64_t)lost);
        for (; e != end; e = next) {
            next = e->next;
            bytes += ENTRY_BYTES(e);
            free(e);
        }
    }
    return bytes;
}

static void *writer_main(void *arg)
{
    struct entry *batch;
    sigset_t wake;
    size_t bytes;

    (void)arg;
    /* Created with every signal blocked; only ours may interrupt. */
    sigemptyset(&wake);
    sigaddset(&wake, FW_LOG_WAKE);
    pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
    pthread_mutex_lock(&q.lock);
    for (;;) {
        while (!q.head && !q.stopping)
            pthread_cond_wait(&q.wake, &q.lock);
        if (!q.head || atomic_load(&q.abandon))
            break;
        batch = q.head;
        q.head = q.tail = NULL;
        pthread_mutex_unlock(&q.lock);
        bytes = write_list(batch);
        pthread_mutex_lock(&q.lock);
        q.bytes -= bytes;
        if (q.bytes == 0)
            pthread_cond_signal(&q.drained);
    }
    pthread_mutex_unlock(&q.lock);
    atomic_store(&q.exited, true);
    return NULL;
}

static void on_wake(int sig)
{
    (void)sig;    /* its only job is the EINTR */
}

int fw_log_start(size_t max_queued_bytes)
{
    struct sigaction sa = { .sa_handler = on_wake };
    sigset_t all, old;
    int err, err2;

    if (q.running)
        return 0;
    /* No SA_RESTART: a write blocked on a stalled reader must return. */
    sigemptyset(&sa.sa_mask);
    if (sigaction(FW_LOG_WAKE, &sa, NULL) < 0)
        return -errno;
    /* The writer starts with every signal blocked, so the loop's signals
     * (SIGCHLD, SIGTERM) never land on it; the loop's thread blocks the
     * wake signal, which is meant for the writer only. */
    sigfillset(&all);
    err = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (err != 0)
        return -err;
    q.max_bytes = max_queued_bytes;
    q.stopping = false;
    q.gave_up = false;
    atomic_store(&q.abandon, false);
    atomic_store(&q.exited, false);
    err = pthread_create(&q.thread, NULL, writer_main, NULL);
    sigaddset(&old, FW_LOG_WAKE);
    err2 = pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0)
        return -err;
    q.running = true;
    if (err2 != 0) {
        fw_log_stop();
        return -err2;
    }
    return 0;
}

static void deadline_in(struct timespec *t, long ms)
{
    clock_gettime(CLOCK_REALTIME, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

void fw_log_stop(void)
{
    static const struct timespec tick = { 0, 10 * 1000000L };
    struct timespec deadline;
    int err = 0;

    if (!q.running)
        return;
    deadline_in(&deadline, FW_LOG_FLUSH_MS);
    pthread_mutex_lock(&q.lock);
    q.stopping = true;
    pthread_cond_signal(&q.wake);
    while (q.bytes > 0 && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&q.drained, &q.lock, &deadline);
    if (q.bytes > 0)
        atomic_store(&q.abandon, true);
    pthread_mutex_unlock(&q.lock);
    /* The writer is blocked in a write to a reader that stalled. The
     * signal makes the write return EINTR; it is sent again until the
     * writer is out, as it may land just before a write begins. */
    while (atomic_load(&q.abandon) && !atomic_load(&q.exited)) {
        err = pthread_kill(q.thread, FW_LOG_WAKE);
        if (err != 0)
            break;      /* ESRCH: it has just returned */
        nanosleep(&tick, NULL);
    }
    pthread_join(q.thread, NULL);
    q.bytes -= drop_list(q.head);
    q.head = q.tail = NULL;
    q.gave_up = atomic_load(&q.abandon);
    atomic_store(&q.abandon, false);
    q.running = false;
}

/* Queues a line for the writer (or, without one, writes it now). */
static void submit(struct entry *e)
{
    e->next = NULL;
    if (!q.running) {
        if (q.gave_up)
            drop_list(e);
        else
            write_list(e);
        return;
    }
    pthread_mutex_lock(&q.lock);
    if (q.bytes > 0 && q.bytes + ENTRY_BYTES(e) > q.max_bytes) {
        pthread_mutex_unlock(&q.lock);
        drop_list(e);
        return;
    }
    if (q.tail)
        q.tail->next = e;
    else
        q.head = e;
    q.tail = e;
    q.bytes += ENTRY_BYTES(e);
    /* Half full: do not wait for the end of the turn. */
    if (attached && !uv_is_closing((uv_handle_t *)&turn_end) &&
        q.bytes < q.max_bytes / 2)
        q.unsignalled = true;
    else
        pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.lock);
}

static void on_turn_end(uv_prepare_t *h)
{
    (void)h;
    if (!q.unsignalled)
        return;
    q.unsignalled = false;
    pthread_mutex_lock(&q.lock);
    pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.lock);
}

int fw_log_attach(uv_loop_t *loop)
{
    int err;

    if (!q.running)
        return 0;        /* lines are written at once anyway */
    err = uv_prepare_init(loop, &turn_end);
    if (err < 0)
        return err;
    err = uv_prepare_start(&turn_end, on_turn_end);
    if (err < 0) {
        uv_close((uv_handle_t *)&turn_end, NULL);
        return err;
    }
    uv_unref((uv_handle_t *)&turn_end);
    attached = true;
    return 0;
}

/* ---- building a line ---------------------------------------------------- */

/* A line being built; on out of memory it is dropped and counted. */
struct line {
    struct entry *e;     /* NULL once allocation failed */
};

static void line_start(struct line *l, int fd, size_t hint)
{
    l->e = malloc(sizeof(*l->e) + hint);
    if (l->e == NULL) {
        count_dropped(1);
        return;
    }
    l->e->fd = fd;
    l->e->len = 0;
    l->e->cap = hint;
}

/* Room for n more bytes; returns where they go, or NULL. */
static char *line_room(struct line *l, size_t n)
{
    struct entry *e = l->e;
    size_t cap;

    if (e == NULL)
        return NULL;
    if (e->len + n > e->cap) {
        /* Callers reserve what they need up front; this is the rare
         * case, and a queued line should not hold much unused room. */
        cap = e->len + n + 64;
        e = realloc(e, sizeof(*e) + cap);
        if (e == NULL) {
            free(l->e);
            l->e = NULL;
            count_dropped(1);
            return NULL;
        }
        e->cap = cap;
        l->e = e;
    }
    return e->line + e->len;
}

static void line_put(struct line *l, const char *p, size_t n)
{
    char *at = n > 0 ? line_room(l, n) : NULL;

    if (at) {
        memcpy(at, p, n);
        l->e->len += n;
    }
}

static void line_puts(struct line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void line_printf(struct line *l, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        line_put(l, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* "p[0..len)" as a JSON string, quotes included. */
static void line_json_string(struct line *l, const char *p, size_t len)
{
    size_t n = fw_log_json_escape(p, len, NULL);
    char *at = line_room(l, n + 2);

    if (at) {
        at[0] = '"';
        fw_log_json_escape(p, len, at + 1);
        at[n + 1] = '"';
        l->e->len += n + 2;
    }
}

/* Ends the line with its newline and hands it to the writer. */
static void line_finish(struct line *l)
{
    struct entry *e;

    line_put(l, "\n", 1);
    if (l->e == NULL)
        return;
    if (l->e->cap > l->e->len) {
        /* A queued line holds no unused room; a failed shrink keeps
         * the block as it was. */
        e = realloc(l->e, sizeof(*e) + l->e->len);
        if (e) {
            e->cap = e->len;
            l->e = e;
        }
    }
    submit(l->e);
    l->e = NULL;
}

/* ---- timestamps --------------------------------------------------------- */

/* "YYYY/MM/DD HH:MM:SS ", local time, formatted once a second (a line
 * per request would otherwise pay localtime and strftime each time). */
static void put_stamp(struct line *l)
{
    static time_t at = -1;
    static char text[32];
    static size_t text_len;
    time_t now = time(NULL);
    struct tm tm;

    if (now != at) {
        localtime_r(&now, &tm);
        text_len = strftime(text, sizeof(text), "%Y/%m/%d %H:%M:%S ", &tm);
        at = now;
    }
    line_put(l, text, text_len);
}

/* "time":"2006-01-02T15:04:05.000Z" (RFC 3339, UTC, milliseconds). */
static void put_json_time(struct line *l)
{
    static time_t at = -1;
    static char text[32];
    static size_t text_len;
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != at) {
        gmtime_r(&now.tv_sec, &tm);
        text_len = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
        at = now.tv_sec;
    }
    line_puts(l, "{\"time\":\"");
    line_put(l, text, text_len);
    line_printf(l, ".%03ldZ\"", now.tv_nsec / 1000000L);
}

/* ---- JSON strings ------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p[0..len) (RFC 3629: shortest
 * form, no surrogates, at most U+10FFFF), or 0 when it is not one. */
static size_t utf8_length(const unsigned char *p, size_t len)
{
    unsigned cp, c = p[0];
    size_t i, n;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return n;
}

size_t fw_log_json_escape(const char *p, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)p;
    char esc[6];
    const char *put;
    size_t i = 0, n = 0, k, used;

    while (i < len) {
        unsigned char c = s[i];

        put = esc;      /* k bytes of put for used bytes of input */
        used = 1;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            put = p + i;
            k = 1;
        } else if (c == '"' || c == '\\' || c == '\n' || c == '\r' ||
                   c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't'
                                                              : (char)c;
            k = 2;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        } else if ((used = utf8_length(s + i, len - i)) > 0) {
            put = p + i;
            k = used;
        } else {
            put = "\\ufffd";  /* not UTF-8: one replacement per byte */
            k = 6;
            used = 1;
        }
        if (out)
            memcpy(out + n, put, k);
        n += k;
        i += used;
    }
    return n;
}

/* ---- the log's entry points --------------------------------------------- */

static const char *const level_names[] = {
    [FW_DEBUG] = "debug",
    [FW_INFO] = "info",
    [FW_ERROR] = "error",
};

void fw_log(enum fw_log_level level, const char *fmt, ...)
{
    char msg[FW_LOG_LINE];
    struct line l;
    va_list ap;
    int m;

    if (level < min_level)
        return;
    va_start(ap, fmt);
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    if ((size_t)m >= sizeof(msg))
        m = (int)sizeof(msg) - 1;
    line_start(&l, 2, (json ? fw_log_json_escape(msg, (size_t)m, NULL)
                            : (size_t)m) + 80);
    if (json) {
        put_json_time(&l);
        line_printf(&l, ",\"level\":\"%s\",\"msg\":", level_names[level]);
        line_json_string(&l, msg, (size_t)m);
        line_puts(&l, "}");
    } else {
        put_stamp(&l);
        line_put(&l, msg, (size_t)m);
    }
    line_finish(&l);
}

void fw_log_access(const struct fw_access *a, const char *text)
{
    struct line l;
    size_t text_len = strlen(text);

    if (FW_INFO < min_level)
        return;
    if (!json) {
        line_start(&l, 2, text_len + 32);
        put_stamp(&l);
        line_put(&l, text, text_len);
        line_finish(&l);
        return;
    }
    line_start(&l, 2, fw_log_json_escape(text, text_len, NULL) +
                          strlen(a->target) + a->call_id_len + 256);
    put_json_time(&l);
    line_puts(&l, ",\"level\":\"info\",\"msg\":");
    line_json_string(&l, text, text_len);
    line_puts(&l, ",\"method\":");
    line_json_string(&l, a->method, strlen(a->method));
    line_puts(&l, ",\"path\":");
    line_json_string(&l, a->target, strlen(a->target));
    line_printf(&l, ",\"status\":%d,\"duration_seconds\":%.6f,"
                "\"bytes_in\":%lld,\"bytes_out\":%lld", a->status,
                a->duration_s, (long long)a->bytes_in,
                (long long)a->bytes_out);
    if (a->call_id) {
        line_puts(&l, ",\"call_id\":");
        line_json_string(&l, a->call_id, a->call_id_len);
    }
    line_puts(&l, "}");
    line_finish(&l);
}

/* ---- relaying a child's output ------------------------------------------ */

void fw_lines_init(struct fw_lines *l, int fd, const char *label,
                   bool prefix, int64_t max_line)
{
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->label = label;
    l->prefix = prefix;
    l->max_line = max_line < 0 ? 0 : (size_t)max_line;
}

/* Emits a[0..alen) + b[0..blen) as one line. */
static void emit_parts(const struct fw_lines *l, const char *a, size_t alen,
                       const char *b, size_t blen)
{
    struct line out;
    char *joined = NULL;

    if (json) {
        if (alen > 0 && blen > 0) {
            /* One string: a UTF-8 sequence may straddle the two. */
            joined = malloc(alen + blen);
            if (joined == NULL) {
                count_dropped(1);
                return;
            }
            memcpy(joined, a, alen);
            memcpy(joined + alen, b, blen);
            a = joined;
            alen += blen;
        } else if (alen == 0) {
            a = b;
            alen = blen;
        }
        line_start(&out, l->fd, fw_log_json_escape(a, alen, NULL) + 96 +
                                    (l->call_id ? 6 * strlen(l->call_id) : 0));
        put_json_time(&out);
        line_puts(&out, ",\"stream\":");
        line_json_string(&out, l->label, strlen(l->label));
        line_puts(&out, ",\"msg\":");
        line_json_string(&out, a, alen);
        if (l->call_id) {
            line_puts(&out, ",\"call_id\":");
            line_json_string(&out, l->call_id, strlen(l->call_id));
        }
        line_puts(&out, "}");
        free(joined);
    } else {
        line_start(&out, l->fd, alen + blen + 64);
        if (l->prefix) {
            put_stamp(&out);
            line_puts(&out, l->label);
            line_puts(&out, ": ");
        }
        line_put(&out, a, alen);
        line_put(&out, b, blen);
    }
    line_finish(&out);
}

void fw_lines_set_call_id(struct fw_lines *l, const char *id, size_t len)
{
    free(l->call_id);
    l->call_id = json ? strndup(id, len) : NULL;
}

void fw_lines_emit(const struct fw_lines *l, const char *p, size_t len)
{
    emit_parts(l, p, len, NULL, 0);
}

/* Emits part + p[0..len) as one line and forgets part. */
static void emit_joined(struct fw_lines *l, const char *p, size_t len)
{
    emit_parts(l, l->part, l->part_len, p, len);
    l->part_len = 0;
}

static void keep_part(struct fw_lines *l, const char *p, size_t len)
{
    if (l->part_len + len > l->part_cap) {
        size_t cap = l->part_cap ? l->part_cap : 256;
        char *q;

        while (cap < l->part_len + len)
            cap *= 2;
        q = realloc(l->part, cap);
        if (q == NULL) {
            emit_joined(l, p, len);
            return;
        }
        l->part = q;
        l->part_cap = cap;
    }
    memcpy(l->part + l->part_len, p, len);
    l->part_len += len;
}

void fw_lines_feed(struct fw_lines *l, const char *p, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) : len;

        if (l->max_line && l->part_len + take > l->max_line) {
            /* A long line goes out in pieces of max_line bytes. */
            size_t piece = l->max_line - l->part_len;

            emit_joined(l, p, piece);
            p += piece;
            len -= piece;
            continue;
        }
        if (nl == NULL) {
            keep_part(l, p, len);
            return;
        }
        /* Go's bounded relay (bufio.ScanLines) drops the \r of CRLF. */
        emit_joined(l, p, take > 0 && l->max_line && p[take - 1] == '\r'
                              ? take - 1 : take);
        p += take + 1;
        len -= take + 1;
    }
}

void fw_lines_release(struct fw_lines *l)
{
    if (l->part_len > 0)
        fw_lines_emit(l, l->part, l->part_len);
    free(l->part);
    free(l->call_id);
    l->part = NULL;
    l->part_len = 0;
    l->part_cap = 0;
    l->call_id = NULL;
}
