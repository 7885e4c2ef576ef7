/* syntax.c - the syntaxes of values that configuration and other
 * modules share: Go's durations (spec 2.1) and the words of fprocess
 * (spec 5.1). Parsing only, no I/O.
 */
#include "syntax.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char fw_split_unbalanced[] = "unbalanced quote";
const char fw_split_backslash[] = "trailing backslash";
const char fw_split_empty[] = "empty";

/* ---- integers ---------------------------------------------------------- */

/* Go's strconv.Atoi on a 64-bit int: optional sign, digits, no blanks. */
int fw_int_parse(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v = 0;

    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > (uint64_t)INT64_MAX + neg)
        return -ERANGE;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ---- durations ----------------------------------------------------------- */

#define NS_PER_MS UINT64_C(1000000)
#define NS_MAX (UINT64_C(1) << 63)

/* Go's time.ParseDuration units (both micro signs, as Go accepts). */
static const struct unit {
    const char *name;
    uint64_t ns;
} units[] = {
    { "ns", 1 }, { "us", 1000 }, { "ms", NS_PER_MS },
    { "\xc2\xb5s", 1000 }, /* U+00B5 micro sign */
    { "\xce\xbcs", 1000 }, /* U+03BC Greek mu */
    { "s", 1000 * NS_PER_MS }, { "m", 60 * 1000 * NS_PER_MS },
    { "h", 3600 * 1000 * NS_PER_MS },
};

static uint64_t unit_ns(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == len && memcmp(s, units[i].name, len) == 0)
            return units[i].ns;
    return 0;
}

/* One <decimal><unit> term of a Go duration, added to *ns. As in Go's
 * leadingFraction, fraction digits that no longer fit are dropped. */
static int duration_term(const char **sp, uint64_t *ns)
{
    const char *s = *sp, *start = s, *unit;
    uint64_t v = 0, f = 0, u;
    double scale = 1;
    bool digits, full = false;

    if (!(*s == '.' || (*s >= '0' && *s <= '9')))
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > NS_MAX / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > NS_MAX)
            return -ERANGE;
    }
    digits = s != start;
    if (*s == '.') {
        for (start = ++s; *s >= '0' && *s <= '9'; s++) {
            full = full || f > (NS_MAX - 1) / 10;
            if (!full) {
                f = f * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
        }
        digits = digits || s != start;
    }
    if (!digits)
        return -EINVAL;
    for (unit = s; *s && *s != '.' && !(*s >= '0' && *s <= '9'); s++)
        ;
    u = unit_ns(unit, (size_t)(s - unit));
    if (u == 0 || v > NS_MAX / u)
        return -EINVAL;
    v *= u;
    if (f > 0)
        v += (uint64_t)((double)f * ((double)u / scale));
    if (v > NS_MAX || v > NS_MAX - *ns)
        return -ERANGE;
    *ns += v;
    *sp = s;
    return 0;
}

/* Go's time.ParseDuration, in nanoseconds. */
static int go_duration(const char *s, bool *neg, uint64_t *ns)
{
    int err;

    *neg = *s == '-';
    *ns = 0;
    if (*s == '-' || *s == '+')
        s++;
    /* Go's special case for "0" is not needed: the caller's integer
     * path has taken "0", "-0" and "+0" already. */
    if (!*s)
        return -EINVAL;
    while (*s) {
        err = duration_term(&s, ns);
        if (err < 0)
            return err;
    }
    if (!*neg && *ns > NS_MAX - 1)
        return -ERANGE;
    return 0;
}

int fw_duration_parse(const char *s, int64_t *ms)
{
    uint64_t ns;
    int64_t secs;
    bool neg;

    /* The Go watchdogs try strconv.Atoi first: a non-negative integer
     * is seconds. Beyond Go's longest duration it cannot be one. */
    if (fw_int_parse(s, &secs) == 0 && secs >= 0) {
        if ((uint64_t)secs > (NS_MAX - 1) / (1000 * NS_PER_MS))
            return -EINVAL;
        *ms = secs * 1000;
        return 0;
    }
    if (go_duration(s, &neg, &ns) < 0)
        return -EINVAL;
    /* Divide before negating: -(1 << 63) ns has no positive twin. */
    *ms = (int64_t)(ns / NS_PER_MS);
    if (neg)
        *ms = -*ms;
    return 0;
}

void fw_duration_format(int64_t ms, char *out, size_t out_len)
{
    uint64_t u = ms < 0 ? 0 - (uint64_t)ms : (uint64_t)ms;
    const char *sign = ms < 0 ? "-" : "";
    uint64_t secs = u / 1000;
    char frac[16] = "", hm[48] = "";
    size_t n;

    if (u == 0) {
        snprintf(out, out_len, "0s");
        return;
    }
    if (u < 1000) {
        snprintf(out, out_len, "%s%" PRIu64 "ms", sign, u);
        return;
    }
    if (u % 1000) {
        /* Go prints the fraction of a second without trailing zeros. */
        n = (size_t)snprintf(frac, sizeof(frac), ".%03u",
                             (unsigned)(u % 1000));
        while (frac[n - 1] == '0')
            frac[--n] = '\0';
    }
    /* Go writes hours and minutes once they are non-zero, and from
     * then on every smaller unit: "1h0m0s", "1m30s". */
    if (secs >= 3600)
        snprintf(hm, sizeof(hm), "%" PRIu64 "h%" PRIu64 "m", secs / 3600,
                 secs / 60 % 60);
    else if (secs >= 60)
        snprintf(hm, sizeof(hm), "%" PRIu64 "m", secs / 60);
    snprintf(out, out_len, "%s%s%" PRIu64 "%ss", sign, hm, secs % 60, frac);
}

/* ---- fprocess words (spec 5.1) ------------------------------------------- */

struct splitter {
    const char *p;   /* next input byte */
    char *out;       /* next output byte */
    const char *err; /* static message, or NULL */
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* 'x' is literal; "x" knows only \" and \\ (other backslashes stay, as
 * in POSIX sh); outside quotes \ takes the next byte as it is. */
static int word_part(struct splitter *sp)
{
    const char *p = sp->p;
    char q = *p;

    if (q == '\\') {
        if (!p[1]) {
            sp->err = fw_split_backslash;
            return -EINVAL;
        }
        *sp->out++ = p[1];
        sp->p = p + 2;
        return 0;
    }
    if (q != '\'' && q != '"') {
        *sp->out++ = *p;
        sp->p = p + 1;
        return 0;
    }
    for (p++; *p != q; p++) {
        if (!*p) {
            sp->err = fw_split_unbalanced;
            return -EINVAL;
        }
        if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
        *sp->out++ = *p;
    }
    sp->p = p + 1;
    return 0;
}

/* Fills argv with the words of the line; returns how many. */
static ssize_t split(struct splitter *sp, char **argv)
{
    ssize_t n = 0;

    for (;;) {
        while (is_blank(*sp->p))
            sp->p++;
        if (!*sp->p)
            return n;
        argv[n++] = sp->out;
        while (*sp->p && !is_blank(*sp->p))
            if (word_part(sp) < 0)
                return -EINVAL;
        *sp->out++ = '\0';
    }
}

char **fw_argv_split(const char *line, const char **err)
{
    size_t len = line ? strlen(line) : 0;
    /* A word takes at least one input byte and a separator, and the
     * words with their NULs never outgrow the line plus one byte: one
     * block of this size holds the array and the strings. */
    size_t slots = (len + 1) / 2 + 1;
    char **argv = malloc(slots * sizeof(*argv) + len + 1);
    struct splitter sp = { .p = line ? line : "" };
    ssize_t n;

    if (!argv) {
        *err = "out of memory";
        return NULL;
    }
    sp.out = (char *)(argv + slots);
    n = split(&sp, argv);
    *err = n < 0 ? sp.err : n == 0 ? fw_split_empty : NULL;
    if (*err) {
        free(argv);
        return NULL;
    }
    argv[n] = NULL;
    return argv;
}
