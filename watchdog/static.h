/* static.h - static mode: files under static_path (spec 7).
 *
 * Paths are decoded and cleaned, then opened beneath a directory fd of
 * static_path, so neither "..", nor a symlink, can reach a file outside
 * it. Bodies go out with fw_response_sendfile.
 */
#ifndef FW_STATIC_H
#define FW_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "server.h"

/* Answers every function request; install as fw_server_config.function
 * after fw_static_init succeeded. */
extern const struct fw_handler fw_static_handler;

/* Opens cfg->static_path (which must outlive the loop); returns 0, or
 * -errno with a clear line already logged when it is missing or not a
 * directory (spec: exit 1 at start). */
int fw_static_init(const struct fw_config *cfg);

/* Closes the directory fd; fw_static_init may run again after. */
void fw_static_release(void);

/* Flags fw_static_clean_path sets from the decoded, uncleaned path. */
#define FW_STATIC_SLASH 1u       /* it ends with '/' */
#define FW_STATIC_INDEX 2u       /* it ends with "/index.html" */

/* Decodes %XX escapes in the raw request path and cleans the result as
 * Go's path.Clean("/" + path) does: one leading '/', no empty, "." or
 * ".." elements (a ".." above the root is dropped), no trailing '/'
 * except for the root. Writes it NUL-terminated into out[out_size] and
 * the FW_STATIC_* flags into *flags. Returns its length, -EINVAL for a
 * bad escape or a NUL byte (answer 400), or -ENAMETOOLONG. */
int fw_static_clean_path(const char *raw, char *out, size_t out_size,
                         unsigned *flags);

/* Opens a cleaned path (as above) for reading beneath static_path,
 * following symlinks only while they stay inside it. Returns a CLOEXEC,
 * non-blocking fd the caller owns, or -errno: -EXDEV when the path
 * resolves outside static_path. */
int fw_static_open(const char *path);

/* Tests: resolve with the fallback walk (realpath check, then one
 * O_NOFOLLOW open per component) instead of openat2, as on kernels
 * before 5.6. */
void fw_static_set_walk(bool walk);

#endif
