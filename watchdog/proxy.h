/* proxy.h - http mode: every request forwarded to the function's own
 * HTTP server over pooled keep-alive connections, bodies streamed both
 * ways (spec 6.2, 6.3).
 */
#ifndef FW_PROXY_H
#define FW_PROXY_H

#include <uv.h>

#include "config.h"
#include "server.h"

/* The function handler of http mode. */
extern const struct fw_handler fw_proxy_handler;

/* Remembers cfg (which must outlive the loop). The workers themselves
 * are upstream.c's. */
void fw_proxy_init(uv_loop_t *loop, const struct fw_config *cfg);

/* Sends the requests held while no worker was ready; call when one is. */
void fw_proxy_dispatch_waiting(void);

/* The function's server is gone for good: requests waiting for it, and
 * every later one, are answered 503. */
void fw_proxy_gone(void);

/* Closes the idle upstream connections (async), at exit. */
void fw_proxy_close(void);

#endif
