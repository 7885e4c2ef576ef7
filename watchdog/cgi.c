/* cgi.c - the request as a forked function sees it: Http_* environment
 * variables (spec 5.1) and marshal_request JSON (spec 5.4). No I/O.
 */
#include "cgi.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define FW_NAME_MAX 256

/* Header names that would collide with computed variables. */
static bool reserved(const char *canon)
{
    static const char *const names[] = {
        "Method", "Path", "Query", "Transfer_Encoding", "Host",
        "Contentlength",
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(canon, names[i]) == 0)
            return true;
    return false;
}

/* Offsets of the "Name=value" strings in env->store, NUL-separated. */
static int add(struct fw_env *env, const char *name, size_t name_len,
               const char *value, size_t value_len)
{
    fw_buf_append(&env->store, name, name_len);
    fw_buf_append(&env->store, "=", 1);
    fw_buf_append(&env->store, value, value_len);
    return fw_buf_append(&env->store, "", 1);
}

static int addz(struct fw_env *env, const char *name, const char *value)
{
    return add(env, name, strlen(name), value, strlen(value));
}

/* Does the store already define name (up to '=')? */
static bool defined(const struct fw_buf *store, const char *name,
                    size_t name_len)
{
    const char *p = store->data, *end = store->data + store->len;

    while (p && p < end) {
        size_t len = strlen(p);

        if (len > name_len && p[name_len] == '=' &&
            memcmp(p, name, name_len) == 0)
            return true;
        p += len + 1;
    }
    return false;
}

/* Offsets of the header entries in env->store, hashed by name, so
 * de-duplicating n headers costs O(n), not O(n^2). */
struct seen {
    size_t *slot;                /* offset + 1 of an entry; 0 = free */
    size_t mask;
};

/* Is name[0..len) an entry of seen? If not, remember it at offset at. */
static bool seen_or_add(struct seen *s, const struct fw_buf *store,
                        const char *name, size_t len, size_t at)
{
    size_t i = fw_http_name_hash(name, len) & s->mask;

    for (; s->slot[i]; i = (i + 1) & s->mask) {
        const char *e = store->data + s->slot[i] - 1;

        if (memcmp(e, name, len) == 0 && e[len] == '=')
            return true;
    }
    s->slot[i] = at + 1;
    return false;
}

static int add_headers(struct fw_env *env, const struct fw_request *r)
{
    char small[FW_NAME_MAX + 6] = "Http_";
    char *name = small;
    size_t i, j, computed = env->store.len, size = 16;
    struct seen seen;

    while (size < 2 * r->n_headers)
        size *= 2;
    seen.slot = calloc(size, sizeof(*seen.slot));
    seen.mask = size - 1;
    if (seen.slot == NULL)
        return -ENOMEM;
    for (i = 0; i < r->n_headers && !env->store.failed; i++) {
        const struct fw_header *h = &r->headers[i];
        struct fw_buf before = env->store;

        if (h->name_len == 0)
            continue;
        if (h->name_len > FW_NAME_MAX) {
            /* Rare and long: a buffer of its own. */
            name = malloc(h->name_len + 6);
            if (name == NULL) {
                free(seen.slot);
                return -ENOMEM;
            }
            memcpy(name, "Http_", 5);
        }
        fw_http_canonical(h->name, h->name_len, name + 5);
        name[5 + h->name_len] = '\0';
        for (j = 5; j < 5 + h->name_len; j++)
            if (name[j] == '-')
                name[j] = '_';
        /* reserved(), the computed names, then Go's rule: the first
         * value only. */
        before.len = computed;
        if (!reserved(name + 5) &&
            !defined(&before, name, 5 + h->name_len) &&
            !seen_or_add(&seen, &env->store, name, 5 + h->name_len,
                         env->store.len))
            add(env, name, 5 + h->name_len, h->value, h->value_len);
        if (name != small) {
            free(name);
            name = small;
        }
    }
    free(seen.slot);
    return env->store.failed ? -ENOMEM : 0;
}

static int add_computed(struct fw_env *env, const struct fw_request *r,
                        bool classic, long long body_len)
{
    char *path = malloc(strlen(r->path) + 1);
    const struct fw_header *host;
    char num[24];

    if (path == NULL)
        return -ENOMEM;
    fw_cgi_unescape(r->path, path);
    addz(env, "Http_Method", r->method);
    addz(env, "Http_Path", path);
    free(path);
    if (r->query[0])
        addz(env, "Http_Query", r->query);
    if (r->chunked)
        addz(env, "Http_Transfer_Encoding", "chunked");
    if (classic) {
        snprintf(num, sizeof(num), "%lld", body_len);
        addz(env, "Http_ContentLength", num);
        addz(env, "Http_Content_Length", num);
        host = fw_request_header(r, "Host");
        if (host && host->value_len)
            add(env, "Http_Host", 9, host->value, host->value_len);
    }
    return env->store.failed ? -ENOMEM : 0;
}

/* Does a later entry of base define name[0..len)? */
static bool defined_later(char *const *base, const char *name, size_t len)
{
    for (; *base; base++)
        if (strncmp(*base, name, len) == 0 && (*base)[len] == '=')
            return true;
    return false;
}

/* Builds envp: base entries not redefined, then the store's strings,
 * which come later and so win (spec 5.1: last wins, de-duplicated). */
static int link_env(struct fw_env *env, char *const *base)
{
    size_t nb = 0, ns = 0, n = 0, i;
    const char *p, *end = env->store.data + env->store.len;

    while (base[nb])
        nb++;
    for (p = env->store.data; p && p < end; p += strlen(p) + 1)
        ns++;
    env->envp = malloc((nb + ns + 1) * sizeof(char *));
    if (env->envp == NULL)
        return -ENOMEM;
    for (i = 0; i < nb; i++) {
        const char *eq = strchr(base[i], '=');
        size_t len = eq ? (size_t)(eq - base[i]) : strlen(base[i]);

        if (defined(&env->store, base[i], len) ||
            defined_later(base + i + 1, base[i], len))
            continue;
        env->envp[n++] = base[i];
    }
    for (p = env->store.data; p && p < end; p += strlen(p) + 1)
        env->envp[n++] = (char *)p;
    env->envp[n] = NULL;
    return 0;
}

int fw_env_build(struct fw_env *env, char *const *base,
                 const struct fw_request *r, bool classic, bool with_cgi,
                 long long body_len)
{
    int err = 0;

    env->envp = NULL;
    fw_buf_init(&env->store, 0);
    if (with_cgi) {
        /* Computed names first, so a header cannot shadow them. */
        err = add_computed(env, r, classic, body_len);
        if (err == 0)
            err = add_headers(env, r);
    }
    if (err == 0)
        err = link_env(env, base);
    if (err < 0)
        fw_env_release(env);
    return err;
}

void fw_env_release(struct fw_env *env)
{
    free(env->envp);
    env->envp = NULL;
    fw_buf_release(&env->store);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void fw_cgi_unescape(const char *path, char *out)
{
    while (*path) {
        int hi, lo;

        if (path[0] == '%' && (hi = hexval((unsigned char)path[1])) >= 0 &&
            (lo = hexval((unsigned char)path[2])) >= 0) {
            *out++ = (char)(hi * 16 + lo);
            path += 3;
        } else {
            *out++ = *path++;
        }
    }
    *out = '\0';
}

/* Length of the valid UTF-8 sequence at p (at most len bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t len)
{
    size_t n, i;
    uint32_t cp;

    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0;
    n = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
    if (n > len)
        return 0;
    cp = p[0] & (0x7f >> n);
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

/* A JSON string as Go's encoding/json writes it: short escapes for
 * \n \r \t, \u00XX for other control bytes and for < > &, U+2028 and
 * U+2029 escaped, invalid UTF-8 replaced by U+FFFD. */
static void json_string(struct fw_buf *out, const char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;

    fw_buf_append(out, "\"", 1);
    while (i < len) {
        unsigned char ch = s[i];
        size_t n;

        if (ch == '"' || ch == '\\') {
            char esc[2] = { '\\', (char)ch };

            fw_buf_append(out, esc, 2);
        } else if (ch == '\n' || ch == '\r' || ch == '\t') {
            fw_buf_append(out, ch == '\n' ? "\\n" : ch == '\r' ? "\\r"
                                                           : "\\t", 2);
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            char esc[6] = { '\\', 'u', '0', '0', hex[ch >> 4],
                            hex[ch & 15] };

            fw_buf_append(out, esc, 6);
        } else if (ch < 0x80) {
            fw_buf_append(out, &s[i], 1);
        } else if ((n = utf8_len(s + i, len - i)) == 0) {
            fw_buf_append(out, "\\ufffd", 6);
        } else if (n == 3 && ch == 0xe2 && s[i + 1] == 0x80 &&
                   (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
            fw_buf_append(out, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
            i += 3;
            continue;
        } else {
            fw_buf_append(out, &s[i], n);
            i += n;
            continue;
        }
        i++;
    }
    fw_buf_append(out, "\"", 1);
}

static void base64(struct fw_buf *out, const unsigned char *p, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

        q[0] = tab[v >> 18];
        q[1] = tab[(v >> 12) & 63];
        q[2] = tab[(v >> 6) & 63];
        q[3] = tab[v & 63];
        fw_buf_append(out, q, 4);
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16;

        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        q[0] = tab[v >> 18];
        q[1] = tab[(v >> 12) & 63];
        q[2] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        q[3] = '=';
        fw_buf_append(out, q, 4);
    }
}

struct canon_header {
    char *name;              /* canonical, heap */
    const struct fw_header *h;
};

static int by_name(const void *a, const void *b)
{
    const struct canon_header *x = a, *y = b;
    int d = strcmp(x->name, y->name);

    /* Equal names keep their order: compare positions. */
    return d ? d : (x->h > y->h) - (x->h < y->h);
}

int fw_cgi_marshal(struct fw_buf *out, const struct fw_request *r,
                   const char *body, size_t body_len)
{
    struct canon_header *v = calloc(r->n_headers + 1, sizeof(*v));
    size_t i, n = 0;
    int err = 0;

    if (v == NULL)
        return -ENOMEM;
    for (i = 0; i < r->n_headers; i++) {
        const struct fw_header *h = &r->headers[i];

        /* Go moves both out of the header map. */
        if (fw_http_name_is(h->name, h->name_len, "Host") ||
            fw_http_name_is(h->name, h->name_len, "Transfer-Encoding"))
            continue;
        v[n].name = malloc(h->name_len + 1);
        if (v[n].name == NULL) {
            err = -ENOMEM;
            goto free_names;
        }
        fw_http_canonical(h->name, h->name_len, v[n].name);
        v[n].name[h->name_len] = '\0';
        v[n++].h = h;
    }
    qsort(v, n, sizeof(*v), by_name);
    fw_buf_append(out, "{\"header\":{", 11);
    for (i = 0; i < n; i++) {
        bool first = i == 0 || strcmp(v[i - 1].name, v[i].name) != 0;
        bool last = i + 1 == n || strcmp(v[i + 1].name, v[i].name) != 0;

        if (first) {
            if (i > 0)
                fw_buf_append(out, ",", 1);
            json_string(out, v[i].name, strlen(v[i].name));
            fw_buf_append(out, ":[", 2);
        } else {
            fw_buf_append(out, ",", 1);
        }
        json_string(out, v[i].h->value, v[i].h->value_len);
        if (last)
            fw_buf_append(out, "]", 1);
    }
    fw_buf_append(out, "},\"body\":{\"raw\":\"", 17);
    base64(out, (const unsigned char *)body, body_len);
    fw_buf_append(out, "\"}}", 3);
    if (out->failed)
        err = -ENOMEM;
free_names:
    for (i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    return err;
}
