/* static.c - static mode: GET and HEAD of the files under static_path
 * (spec 7), with Go's FileServer redirects, types, dates and ranges.
 *
 * Every open goes through fw_static_open, which cannot leave
 * static_path; framing, writing and sendfile(2) are the server's.
 */
#include "static.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

#define FW_SNIFF_BYTES 512          /* read to guess a Content-Type */
#define FW_MAX_HDRS 6               /* response headers we add */
#define FW_INDEX "/index.html"

/* O_NONBLOCK: opening a FIFO under static_path must not block the loop;
 * it changes nothing for regular files. */
#define FW_FILE_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

static struct {
    int root_fd;                 /* static_path, O_PATH; -1 when closed */
    char *root_real;             /* its realpath(3), heap */
    bool walk;                   /* resolve with the walk, not openat2 */
    bool listing;                /* static_listing */
} st = { .root_fd = -1 };

/* ---- paths -------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX escapes of raw into out[out_size]; returns the length. */
static int decode(const char *raw, char *out, size_t out_size)
{
    size_t n = 0;
    int hi, lo;

    for (; *raw != '\0'; n++) {
        if (n + 1 >= out_size)
            return -ENAMETOOLONG;
        if (*raw != '%') {
            out[n] = *raw++;
            continue;
        }
        hi = hex_value(raw[1]);
        lo = hi < 0 ? -1 : hex_value(raw[2]);
        if (lo < 0 || (hi == 0 && lo == 0))
            return -EINVAL;     /* Go's URL parser: 400 */
        out[n] = (char)(hi << 4 | lo);
        raw += 3;
    }
    out[n] = '\0';
    return (int)n;
}

/* Go's path.Clean, in place, on p[0..len) which starts with '/'. The
 * writer never passes the reader: each element it copies was read, and
 * at least one '/' was read before it. */
static size_t clean(char *p, size_t len)
{
    size_t r = 1, w = 1, n;

    while (r < len) {
        for (n = 0; r + n < len && p[r + n] != '/'; n++)
            ;
        if (n == 0) {
            r++;
        } else if (n == 1 && p[r] == '.') {
            r++;
        } else if (n == 2 && p[r] == '.' && p[r + 1] == '.') {
            while (w > 1 && p[w - 1] != '/')
                w--;
            if (w > 1)
                w--;            /* above the root, ".." stays at "/" */
            r += 2;
        } else {
            if (w > 1)
                p[w++] = '/';
            memmove(p + w, p + r, n);
            w += n;
            r += n;
        }
    }
    p[w] = '\0';
    return w;
}

int fw_static_clean_path(const char *raw, char *out, size_t out_size,
                         unsigned *flags)
{
    size_t len, index_len = sizeof(FW_INDEX) - 1;
    int n;

    *flags = 0;
    if (out_size < 2)
        return -ENAMETOOLONG;
    /* Go roots a path without a leading '/' (FileServer.ServeHTTP). */
    out[0] = '/';
    n = decode(raw + (raw[0] == '/'), out + 1, out_size - 1);
    if (n < 0)
        return n;
    len = (size_t)n + 1;
    if (out[len - 1] == '/')
        *flags |= FW_STATIC_SLASH;
    if (len >= index_len && memcmp(out + len - index_len, FW_INDEX,
                                   index_len) == 0)
        *flags |= FW_STATIC_INDEX;
    return (int)clean(out, len);
}

/* ---- opening beneath static_path ---------------------------------------- */

static int open_beneath(const char *rel)
{
    struct open_how how = {
        .flags = FW_FILE_FLAGS,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, st.root_fd, rel, &how, sizeof(how));

    return fd < 0 ? -errno : (int)fd;
}

/* The part of an absolute, canonical path below the root ("" for the
 * root itself), or NULL when it lies outside. */
static const char *below_root(const char *real)
{
    size_t n = strlen(st.root_real);

    if (n == 1)
        return real + 1;        /* static_path is "/" */
    if (strncmp(real, st.root_real, n) != 0)
        return NULL;
    if (real[n] == '\0')
        return real + n;
    return real[n] == '/' ? real + n + 1 : NULL;
}

/* Opens rel, a realpath(3) result (no links, no "."/".."), one
 * component at a time from the root fd with O_NOFOLLOW: a symlink
 * swapped in since realpath fails with ELOOP or ENOTDIR instead of
 * leading out. */
static int open_components(const char *rel)
{
    char name[NAME_MAX + 1];
    int dir = st.root_fd, fd, err;
    size_t n;

    if (*rel == '\0')
        rel = ".";
    while (rel[n = strcspn(rel, "/")] != '\0') {
        if (n > NAME_MAX) {
            err = -ENAMETOOLONG;
            goto close_dir;
        }
        memcpy(name, rel, n);
        name[n] = '\0';
        fd = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
                    O_CLOEXEC);
        err = -errno;
        if (dir != st.root_fd)
            close(dir);
        if (fd < 0)
            return err;
        dir = fd;
        rel += n + 1;
    }
    fd = openat(dir, rel, FW_FILE_FLAGS | O_NOFOLLOW);
    err = fd < 0 ? -errno : fd;
close_dir:
    if (dir != st.root_fd)
        close(dir);
    return err;
}

/* Without openat2: resolve every link with realpath(3) (which opens
 * nothing), check the result is inside, then open it link-free. */
static int walk_open(const char *rel)
{
    char full[PATH_MAX], real[PATH_MAX];
    const char *below;
    int n = snprintf(full, sizeof(full), "%s/%s", st.root_real, rel);

    if (n < 0 || (size_t)n >= sizeof(full))
        return -ENAMETOOLONG;
    if (realpath(full, real) == NULL)
        return -errno;
    below = below_root(real);
    if (below == NULL)
        return -EXDEV;
    return open_components(below);
}

int fw_static_open(const char *path)
{
    const char *rel = path + (path[0] == '/');
    int fd;

    if (*rel == '\0')
        rel = ".";
    if (st.root_fd < 0)
        return -EBADF;
    if (!st.walk) {
        fd = open_beneath(rel);
        /* ENOSYS: a kernel before 5.6. EPERM: a seccomp profile older
         * than openat2 (Docker before 20.10 answers EPERM). EXDEV: the
         * path leaves static_path, or only seems to (an absolute link,
         * or one that steps out and back in): the walk tells which. */
        if (fd == -ENOSYS)
            st.walk = true;
        else if (fd != -EPERM && fd != -EXDEV)
            return fd;
    }
    return walk_open(rel);
}

void fw_static_set_walk(bool walk)
{
    st.walk = walk;
}

static int open_stat(const char *path, struct stat *sb)
{
    int fd = fw_static_open(path), err;

    if (fd < 0)
        return fd;
    if (fstat(fd, sb) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* ---- headers ------------------------------------------------------------ */

/* Go's built-in mime table plus the common types a Debian mime.types
 * adds; text types carry charset=utf-8 as Go adds it. */
static const char *type_by_extension(const char *path)
{
    static const char *const types[][2] = {
        { "html", "text/html; charset=utf-8" },
        { "htm", "text/html; charset=utf-8" },
        { "css", "text/css; charset=utf-8" },
        { "js", "text/javascript; charset=utf-8" },
        { "mjs", "text/javascript; charset=utf-8" },
        { "json", "application/json" },
        { "txt", "text/plain; charset=utf-8" },
        { "xml", "text/xml; charset=utf-8" },
        { "csv", "text/csv; charset=utf-8" },
        { "md", "text/markdown; charset=utf-8" },
        { "svg", "image/svg+xml" },
        { "png", "image/png" },
        { "jpg", "image/jpeg" },
        { "jpeg", "image/jpeg" },
        { "gif", "image/gif" },
        { "webp", "image/webp" },
        { "avif", "image/avif" },
        { "ico", "image/vnd.microsoft.icon" },
        { "wasm", "application/wasm" },
        { "pdf", "application/pdf" },
        { "zip", "application/zip" },
        { "gz", "application/gzip" },
        { "tar", "application/x-tar" },
        { "mp4", "video/mp4" },
        { "webm", "video/webm" },
        { "mp3", "audio/mpeg" },
        { "wav", "audio/wav" },
        { "woff", "font/woff" },
        { "woff2", "font/woff2" },
        { "ttf", "font/ttf" },
        { "otf", "font/otf" },
    };
    const char *dot = strrchr(path, '.');
    size_t i;

    if (dot == NULL || strchr(dot, '/') != NULL)
        return NULL;
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot + 1, types[i][0]) == 0)
            return types[i][1];
    return NULL;
}

static const char *content_type(const char *path, int fd)
{
    char head[FW_SNIFF_BYTES];
    const char *type = type_by_extension(path);
    ssize_t n;

    if (type)
        return type;
    n = pread(fd, head, sizeof(head), 0);
    type = n > 0 ? fw_http_sniff(head, (size_t)n) : NULL;
    /* Go's DetectContentType calls an empty start plain text. */
    return type ? type : "text/plain; charset=utf-8";
}

/* An HTTP-date in any of its three forms (RFC 9110 5.6.7), as Go's
 * http.ParseTime reads them. */
static bool parse_date(const char *s, time_t *t)
{
    static const char *const forms[] = {
        "%a, %d %b %Y %H:%M:%S GMT",    /* IMF-fixdate */
        "%A, %d-%b-%y %H:%M:%S GMT",    /* RFC 850 */
        "%a %b %e %H:%M:%S %Y",         /* asctime */
    };
    struct tm tm;
    const char *end;
    size_t i;

    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, forms[i], &tm);
        if (end == NULL)
            continue;
        end += strspn(end, " \t");
        if (*end == '\0') {
            *t = timegm(&tm);
            return true;
        }
    }
    return false;
}

/* Go's checkIfNoneMatch and checkIfModifiedSince for a file we send no
 * ETag for: "*" matches; any other tag list does not, and then the date
 * is not consulted. A zero mtime is unknown. */
static bool not_modified(const struct fw_request *r, time_t mtime)
{
    const struct fw_header *inm = fw_request_header(r, "If-None-Match");
    const struct fw_header *ims = fw_request_header(r, "If-Modified-Since");
    time_t t;

    if (inm)
        return strcmp(inm->value, "*") == 0;
    if (ims == NULL || mtime == 0)
        return false;
    return parse_date(ims->value, &t) && mtime <= t;
}

/* ---- ranges ------------------------------------------------------------- */

enum range {
    RANGE_NONE,                  /* send the whole file, 200 */
    RANGE_ONE,                   /* send one part, 206 */
    RANGE_UNSATISFIABLE,         /* 416 */
};

static void trim(const char **p, const char **end)
{
    while (*p < *end && (**p == ' ' || **p == '\t'))
        (*p)++;
    while (*end > *p && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
        (*end)--;
}

static bool parse_int(const char *p, const char *end, int64_t *v)
{
    int64_t n = 0;

    if (p == end)
        return false;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (*p - '0');
    }
    *v = n;
    return true;
}

/* One "a-b", "a-" or "-n" (Go's parseRange). Returns false when
 * malformed; *len is 0 when it does not overlap the file. */
static bool parse_spec(const char *p, const char *end, int64_t size,
                       int64_t *off, int64_t *len)
{
    const char *dash = memchr(p, '-', (size_t)(end - p));
    const char *a_end, *b;
    int64_t first, last;

    if (dash == NULL)
        return false;
    a_end = dash;
    b = dash + 1;
    trim(&p, &a_end);
    trim(&b, &end);
    *len = 0;
    if (p == a_end) {
        if (!parse_int(b, end, &last))
            return false;
        /* RFC 9110 14.1.1: a zero suffix-length cannot be satisfied. */
        *len = last < size ? last : size;
        *off = size - *len;
        return true;
    }
    if (!parse_int(p, a_end, &first))
        return false;
    if (first >= size)
        return true;            /* no overlap, whatever the end says */
    if (b == end) {
        last = size - 1;
    } else if (!parse_int(b, end, &last) || last < first) {
        return false;
    }
    *off = first;
    *len = (last < size ? last : size - 1) - first + 1;
    return true;
}

/* If-Range with a date: the range holds for that exact mtime only. We
 * send no ETag, so an entity-tag never matches (Go's checkIfRange). */
static bool if_range_holds(const struct fw_request *r, time_t mtime)
{
    const struct fw_header *h = fw_request_header(r, "If-Range");
    time_t t;

    return h == NULL || (parse_date(h->value, &t) && t == mtime);
}

/* A malformed Range is ignored (RFC 9110 14.2; Go answers 416), and so
 * are several satisfiable ranges (Go sends multipart/byteranges). An
 * empty file ignores it too, as Go does. */
static enum range parse_range(const struct fw_request *r, int64_t size,
                              time_t mtime, int64_t *off, int64_t *len)
{
    const struct fw_header *h = fw_request_header(r, "Range");
    const char *p, *end, *comma, *q, *q_end;
    int64_t o, l, one_off = 0, one_len = 0;
    int found = 0, missed = 0;

    if (h == NULL || size == 0 || strncmp(h->value, "bytes=", 6) != 0 ||
        !if_range_holds(r, mtime))
        return RANGE_NONE;
    p = h->value + 6;
    end = h->value + h->value_len;
    for (;;) {
        comma = memchr(p, ',', (size_t)(end - p));
        q = p;
        q_end = comma ? comma : end;
        trim(&q, &q_end);
        if (q < q_end) {
            if (!parse_spec(q, q_end, size, &o, &l))
                return RANGE_NONE;
            if (l > 0) {
                found++;
                one_off = o;
                one_len = l;
            } else {
                missed++;
            }
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    if (found == 1) {
        *off = one_off;
        *len = one_len;
        return RANGE_ONE;
    }
    return found == 0 && missed > 0 ? RANGE_UNSATISFIABLE : RANGE_NONE;
}

/* ---- responses ---------------------------------------------------------- */

struct reply {
    struct fw_hdr h[FW_MAX_HDRS]; /* names and values: static or caller's */
    size_t n;
};

static void add(struct reply *rp, const char *name, const char *value)
{
    assert(rp->n < FW_MAX_HDRS);
    rp->h[rp->n].name = name;
    rp->h[rp->n].value = value;
    rp->n++;
}

/* Go's http.Error: a text body and nosniff. */
static void send_text(struct fw_request *r, struct reply *rp, int status,
                      const char *body)
{
    add(rp, "Content-Type", "text/plain; charset=utf-8");
    add(rp, "X-Content-Type-Options", "nosniff");
    fw_response_send(r, status, rp->h, rp->n, body, strlen(body));
}

static void send_error(struct fw_request *r, int status)
{
    struct reply rp = { .n = 0 };

    switch (status) {
    case 400:
        send_text(r, &rp, status, "400 Bad Request\n");
        break;
    case 403:
        send_text(r, &rp, status, "403 Forbidden\n");
        break;
    case 404:
        send_text(r, &rp, status, "404 page not found\n");
        break;
    default:
        send_text(r, &rp, 500, "500 Internal Server Error\n");
        break;
    }
}

/* Answers a failed open of path. */
static void open_failed(struct fw_request *r, const char *path, int err)
{
    switch (err) {
    case -ENOENT:
    case -ENOTDIR:
    case -ENAMETOOLONG:
    case -ELOOP:
    case -EXDEV:                /* outside static_path: as if absent */
        send_error(r, 404);
        break;
    case -EACCES:
    case -EPERM:
        send_error(r, 403);
        break;
    default:
        fw_log(FW_ERROR, "static: open %s: %s", path, uv_strerror(err));
        send_error(r, 500);
        break;
    }
}

/* Go's localRedirect: a relative Location (pre, seg, post), so it also
 * works behind a gateway that strips a path prefix; the query is kept.
 * A first segment with ':' would read as a scheme, hence "./". */
static void redirect(struct fw_request *r, const char *pre, const char *seg,
                     size_t seg_len, const char *post)
{
    struct fw_hdr loc = { "Location", NULL };
    size_t size = strlen(pre) + seg_len + strlen(post) +
                  strlen(r->query) + 4;
    char *value = malloc(size);

    if (value == NULL) {
        send_error(r, 500);
        return;
    }
    if (*pre == '\0' && memchr(seg, ':', seg_len) != NULL)
        pre = "./";
    snprintf(value, size, "%s%.*s%s%s%s", pre, (int)seg_len, seg, post,
             *r->query ? "?" : "", r->query);
    loc.value = value;
    fw_response_send(r, 301, &loc, 1, NULL, 0);
    free(value);
}

/* Go's path.Base of the raw path: its last segment, trailing '/'s
 * dropped. Raw, so the Location holds only bytes the client sent. */
static size_t last_segment(const char *path, const char **seg)
{
    size_t end = strlen(path), start;

    while (end > 0 && path[end - 1] == '/')
        end--;
    for (start = end; start > 0 && path[start - 1] != '/'; start--)
        ;
    *seg = path + start;
    return end - start;
}

/* Adds Last-Modified (into date, FW_HTTP_DATE_LEN bytes), and answers
 * 304 when If-Modified-Since says the client has this version: true
 * then, with fd closed. Go leaves a zero (epoch) time out, as
 * reproducible builds set. */
static bool answered_304(struct fw_request *r, struct reply *rp,
                         time_t mtime, char *date, int fd)
{
    if (mtime != 0) {
        fw_http_date(mtime, date);
        add(rp, "Last-Modified", date);
    }
    if (!not_modified(r, mtime))
        return false;
    close(fd);
    fw_response_send(r, 304, rp->h, rp->n, NULL, 0);
    return true;
}

/* Sends a regular file; takes fd. */
static void serve_file(struct fw_request *r, int fd, const struct stat *sb,
                       const char *path)
{
    struct reply rp = { .n = 0 };
    char modified[FW_HTTP_DATE_LEN], range[64];
    int64_t size = sb->st_size, off = 0, len = size;
    int status = 200;

    if (answered_304(r, &rp, sb->st_mtime, modified, fd))
        return;
    switch (parse_range(r, size, sb->st_mtime, &off, &len)) {
    case RANGE_ONE:
        status = 206;
        snprintf(range, sizeof(range), "bytes %" PRId64 "-%" PRId64
                 "/%" PRId64, off, off + len - 1, size);
        add(&rp, "Content-Range", range);
        break;
    case RANGE_UNSATISFIABLE:
        close(fd);
        snprintf(range, sizeof(range), "bytes */%" PRId64, size);
        add(&rp, "Content-Range", range);
        send_text(r, &rp, 416, "invalid range: failed to overlap\n");
        return;
    case RANGE_NONE:
        break;
    }
    add(&rp, "Content-Type", content_type(path, fd));
    add(&rp, "Accept-Ranges", "bytes");
    if (fw_response_head(r, status, rp.h, rp.n, len) < 0) {
        close(fd);
        fw_response_abort(r);
        return;
    }
    /* From here the server owns fd and ends the response; on failure it
     * has closed both and called on_abort. */
    fw_response_sendfile(r, fd, off, len);
}

/* ---- listings (static_listing) ----------------------------------------- */

struct entry {
    char *name;                  /* heap; "/" appended for a directory */
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name,
                  ((const struct entry *)b)->name);
}

/* Go's htmlReplacer. */
static void append_html(struct fw_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fw_buf_append(b, "&amp;", 5); break;
        case '<': fw_buf_append(b, "&lt;", 4); break;
        case '>': fw_buf_append(b, "&gt;", 4); break;
        case '"': fw_buf_append(b, "&#34;", 5); break;
        case '\'': fw_buf_append(b, "&#39;", 5); break;
        default: fw_buf_append(b, s, 1); break;
        }
    }
}

/* url.URL{Path: name}.String(): bytes outside Go's path set escaped, and
 * "./" before a first segment with a ':' (it would read as a scheme). */
static void append_href(struct fw_buf *b, const char *s)
{
    static const char keep[] = "-_.~$&+,/:;=@";
    const char *colon = strchr(s, ':');
    const char *slash = strchr(s, '/');

    if (colon && (slash == NULL || colon < slash))
        fw_buf_append(b, "./", 2);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || (c != '\0' && strchr(keep, c)))
            fw_buf_append(b, s, 1);
        else
            fw_buf_appendf(b, "%%%02X", c);
    }
}

/* Reads the directory open at fd (taken) into *out, sorted by name as
 * Go sorts it (bytes). 0 or -errno. */
static int read_entries(int fd, struct entry **out, size_t *n_out)
{
    struct entry *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *d;
    DIR *dir = fdopendir(fd);
    int err = 0;

    if (dir == NULL) {
        err = -errno;
        close(fd);
        return err;
    }
    while ((errno = 0, d = readdir(dir)) != NULL) {
        bool is_dir = d->d_type == DT_DIR;
        size_t len = strlen(d->d_name);
        struct stat sb;

        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        /* Go lists what Lstat says: a symlink to a directory is no
         * directory here. */
        if (d->d_type == DT_UNKNOWN)
            is_dir = fstatat(dirfd(dir), d->d_name, &sb,
                             AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode);
        if (n == cap) {
            struct entry *bigger;

            cap = cap ? 2 * cap : 64;
            bigger = realloc(v, cap * sizeof(*v));
            if (bigger == NULL) {
                err = -ENOMEM;
                break;
            }
            v = bigger;
        }
        v[n].name = malloc(len + 2);
        if (v[n].name == NULL) {
            err = -ENOMEM;
            break;
        }
        memcpy(v[n].name, d->d_name, len);
        memcpy(v[n].name + len, is_dir ? "/" : "", is_dir ? 2 : 1);
        n++;
    }
    if (err == 0 && errno != 0)
        err = -errno;
    closedir(dir);
    if (err < 0) {
        while (n > 0)
            free(v[--n].name);
        free(v);
        return err;
    }
    if (n > 1)    /* v is NULL for an empty directory */
        qsort(v, n, sizeof(*v), by_name);
    *out = v;
    *n_out = n;
    return 0;
}

/* Go's dirList: one link per entry. Takes fd, the directory open. */
static void serve_listing(struct fw_request *r, int fd, const struct stat *sb)
{
    struct reply rp = { .n = 0 };
    char modified[FW_HTTP_DATE_LEN];
    struct entry *v = NULL;
    struct fw_buf body;
    size_t i, n = 0;
    int err;

    if (answered_304(r, &rp, sb->st_mtime, modified, fd))
        return;
    err = read_entries(fd, &v, &n);
    if (err < 0) {
        fw_log(FW_ERROR, "static: cannot list %s: %s", r->path,
               uv_strerror(err));
        send_error(r, 500);
        return;
    }
    fw_buf_init(&body, 0);
    fw_buf_appendf(&body, "<!doctype html>\n<meta name=\"viewport\" "
                   "content=\"width=device-width\">\n<pre>\n");
    for (i = 0; i < n; i++) {
        fw_buf_appendf(&body, "<a href=\"");
        append_href(&body, v[i].name);
        fw_buf_appendf(&body, "\">");
        append_html(&body, v[i].name);
        fw_buf_appendf(&body, "</a>\n");
        free(v[i].name);
    }
    free(v);
    fw_buf_appendf(&body, "</pre>\n");
    if (body.failed) {
        send_error(r, 500);
    } else {
        add(&rp, "Content-Type", "text/html; charset=utf-8");
        fw_response_send(r, 200, rp.h, rp.n, body.data, body.len);
    }
    fw_buf_release(&body);
}

/* A directory: its index.html when the path ends with '/', else a
 * redirect to the slashed path. Without an index, a listing with
 * static_listing=true, else 403 (spec 7: Go lists every directory).
 * Takes dir_fd, the directory open (read for a listing, not again).
 * path has room for FW_INDEX. */
static void serve_dir(struct fw_request *r, const char *raw, char *path,
                      size_t len, unsigned flags, int dir_fd,
                      const struct stat *dir_sb)
{
    struct stat sb;
    const char *seg;
    size_t seg_len;
    int fd;

    if (!(flags & FW_STATIC_SLASH)) {
        close(dir_fd);
        seg_len = last_segment(raw, &seg);
        redirect(r, "", seg, seg_len, "/");
        return;
    }
    memcpy(path + (len > 1 ? len : 0), FW_INDEX, sizeof(FW_INDEX));
    fd = open_stat(path, &sb);
    if (fd == -ENOENT && st.listing) {
        serve_listing(r, dir_fd, dir_sb);
        return;
    }
    close(dir_fd);
    if (fd >= 0 && S_ISREG(sb.st_mode)) {
        serve_file(r, fd, &sb, path);
        return;
    }
    if (fd >= 0)
        close(fd);
    if (fd >= 0 || fd == -ENOENT || fd == -EXDEV || fd == -ELOOP)
        send_error(r, 403);
    else
        open_failed(r, path, fd);
}

/* The path of an absolute-form target ("http://host/p" is "/p"), as
 * Go's URL parser gives it; any other target as it is. */
static const char *origin_path(const char *target_path)
{
    const char *p = strstr(target_path, "://");

    if (target_path[0] == '/' || p == NULL)
        return target_path;
    p = strchr(p + 3, '/');
    return p ? p : "";
}

static void on_request(struct fw_request *r)
{
    static const struct fw_hdr allow = { "Allow", "GET, HEAD" };
    char path[PATH_MAX + sizeof(FW_INDEX)];
    const char *raw, *seg;
    struct stat sb;
    size_t seg_len;
    unsigned flags;
    int len, fd;

    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        fw_response_send(r, 405, &allow, 1, NULL, 0);
        return;
    }
    raw = origin_path(r->path);
    len = fw_static_clean_path(raw, path, PATH_MAX, &flags);
    if (len < 0) {
        send_error(r, len == -EINVAL ? 400 : 404);
    } else if (flags & FW_STATIC_INDEX) {
        redirect(r, "./", "", 0, "");
    } else if ((fd = open_stat(path, &sb)) < 0) {
        open_failed(r, path, fd);
    } else if (S_ISDIR(sb.st_mode)) {
        serve_dir(r, raw, path, (size_t)len, flags, fd, &sb);
    } else if (flags & FW_STATIC_SLASH) {
        close(fd);
        seg_len = last_segment(raw, &seg);
        redirect(r, "../", seg, seg_len, "");
    } else if (!S_ISREG(sb.st_mode)) {
        close(fd);              /* a FIFO, socket or device */
        send_error(r, 403);
    } else {
        serve_file(r, fd, &sb, path);
    }
}

/* Every request is answered within on_head; nothing is kept per request,
 * so the rest has nothing to do. */
const struct fw_handler fw_static_handler = {
    .on_head = on_request,
};

/* ---- lifecycle ---------------------------------------------------------- */

int fw_static_init(const struct fw_config *cfg)
{
    const char *path = cfg->static_path;
    struct stat sb;
    int err;

    fw_static_release();        /* a second init replaces the first */
    if (path == NULL || *path == '\0') {
        fw_log(FW_ERROR, "static_path: not set");
        return -EINVAL;
    }
    st.root_fd = open(path, O_PATH | O_CLOEXEC);
    if (st.root_fd < 0) {
        err = -errno;
        fw_log(FW_ERROR, "static_path: cannot open %s: %s", path,
               uv_strerror(err));
        return err;
    }
    if (fstat(st.root_fd, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        err = -ENOTDIR;
        fw_log(FW_ERROR, "static_path: %s is not a directory", path);
        goto close_root;
    }
    st.root_real = realpath(path, NULL);
    if (st.root_real == NULL) {
        err = -errno;
        fw_log(FW_ERROR, "static_path: cannot resolve %s: %s", path,
               uv_strerror(err));
        goto close_root;
    }
    st.listing = cfg->static_listing;
    return 0;

close_root:
    close(st.root_fd);
    st.root_fd = -1;
    return err;
}

void fw_static_release(void)
{
    if (st.root_fd >= 0)
        close(st.root_fd);
    st.root_fd = -1;
    free(st.root_real);
    st.root_real = NULL;
    st.walk = false;
}
