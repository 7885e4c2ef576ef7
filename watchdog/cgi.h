/* cgi.h - what a forked function sees of its request: the CGI-style
 * environment (spec 5.1) and the classic watchdog's marshal_request JSON.
 */
#ifndef FW_CGI_H
#define FW_CGI_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "server.h"

/* The child's environment: base (the watchdog's, NULL-ended) plus the
 * request's Http_* variables, de-duplicated so the last definition of a
 * name wins. classic selects the classic flavour's extra variables;
 * with_cgi false leaves the Http_* set out. body_len is the classic
 * flavour's body length (-1 for chunked). */
struct fw_env {
    char **envp;             /* heap, NULL-ended; strings in store/base */
    struct fw_buf store;     /* the Http_* strings */
};

int fw_env_build(struct fw_env *env, char *const *base,
                 const struct fw_request *r, bool classic, bool with_cgi,
                 long long body_len);
void fw_env_release(struct fw_env *env);

/* Appends the classic marshal_request JSON for r and body to out:
 * {"header":{"Name":["v",...],...},"body":{"raw":"<base64>"}}.
 * Returns 0 or -errno. */
int fw_cgi_marshal(struct fw_buf *out, const struct fw_request *r,
                   const char *body, size_t body_len);

/* Decodes %XX escapes of path into out (same size or more); invalid
 * escapes are copied as they are. */
void fw_cgi_unescape(const char *path, char *out);

#endif
