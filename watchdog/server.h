/* server.h - the HTTP/1.1 server: listeners, connections, request
 * parsing, limits, keep-alive, timeouts, the in-flight cap and response
 * framing. It knows no mode: requests go to the handlers main installs.
 *
 * One request per connection is live at a time; pipelined requests wait
 * in the read buffer until the response before them has ended, so
 * answers leave in order.
 */
#ifndef FW_SERVER_H
#define FW_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fw_conn;
struct fw_request;

/* A request header: both strings point into the request's head buffer
 * and are NUL-terminated. */
struct fw_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct fw_request {
    const char *method;          /* "GET", static */
    const char *target;          /* request target as sent */
    const char *path;            /* target up to '?', raw (not decoded) */
    const char *query;           /* after '?', "" when none */
    const struct fw_header *headers; /* in the order sent */
    size_t n_headers;
    unsigned short http_major;
    unsigned short http_minor;
    int64_t content_length;      /* -1 when the client sent none */
    bool chunked;                /* Transfer-Encoding: chunked */
    bool head_only;              /* HEAD: the response has no body */
    uint64_t start_ns;           /* uv_hrtime() at head complete */
    void *data;                  /* the handler's */
    struct fw_conn *conn;        /* server's */
};

/* Why a request ended before its response did. */
enum fw_abort {
    FW_ABORT_CLIENT,             /* the client left or a write failed */
    FW_ABORT_TIMEOUT,            /* read_timeout or write_timeout passed */
    FW_ABORT_SHUTDOWN,           /* the drain deadline passed */
};

/* What a mode does with requests. Every callback runs on the loop; all
 * but on_head may be NULL (a handler that answers at once needs none).
 * After on_abort, or after the handler called fw_response_end() or
 * fw_response_abort(), the request is gone: the handler must not touch
 * it again. on_body and on_body_end may still run after the response has
 * ended; the server drops them then. */
struct fw_handler {
    /* The head is complete; the handler now owns the response. */
    void (*on_head)(struct fw_request *r);
    /* Body bytes (de-chunked); valid only during the call. */
    void (*on_body)(struct fw_request *r, const char *p, size_t len);
    /* The whole body has arrived (also for requests without one). */
    void (*on_body_end)(struct fw_request *r);
    /* The response's write queue fell below the low mark. */
    void (*on_drain)(struct fw_request *r);
    /* The client left, a timeout passed or a write failed: release. */
    void (*on_abort)(struct fw_request *r, enum fw_abort why);
};

/* Response header to add: both NUL-terminated. */
struct fw_hdr {
    const char *name;
    const char *value;
};

struct fw_server_config {
    int port;                    /* main listener */
    int64_t read_timeout_ms;     /* > 0 */
    int64_t write_timeout_ms;    /* 0 = none */
    int64_t max_inflight;        /* 0 = none */
    int late_body_status;        /* answer when read_timeout passes during
                                    a body, before any response; 0 = close
                                    (classic: 400) */
    bool log_requests;           /* one line per function request */
    bool log_reason;             /* http mode: "<code> <reason>" in it */
    bool log_callid;             /* append " [<X-Call-Id>]" */
    const struct fw_handler *function; /* every path but the probes */
    const struct fw_handler *probes;   /* /_/health and /_/ready */
};

/* Binds the listener (IPv6 any, dual-stack; IPv4 any as a fallback) on
 * loop. Returns 0 or -errno. The config is copied. */
int fw_server_start(uv_loop_t *loop, const struct fw_server_config *cfg);

/* A second listener, for the watchdog's own endpoints (metrics_port):
 * every request on it goes to h, which answers at once; timeout_ms bounds
 * reads, idle keep-alive and writes. Its requests are not the function's:
 * not counted in flight or in metrics, never 429'd, not logged, and not
 * waited for by a drain, which leaves the listener open. One such
 * listener, after fw_server_start.
 * Returns 0 or -errno (nothing is left open then). */
int fw_server_listen_admin(int port, const struct fw_handler *h,
                           int64_t timeout_ms);

/* Closes the admin listener and its connections (async); so does
 * fw_server_close(). */
void fw_server_close_admin(void);

/* Graceful stop: close the listener and idle connections, let each busy
 * one finish its response and close. on_idle runs once every connection
 * is gone (at once if none). */
void fw_server_drain(void (*on_idle)(void));

/* Closes every connection and the listener at once (aborting requests). */
void fw_server_close(void);

/* From now on every response carries "Connection: close". */
void fw_server_stop_keepalive(void);

/* Function requests between head and response end. */
int64_t fw_server_inflight(void);
size_t fw_server_connections(void);

/* Looks a request header up, case-insensitively; NULL if absent. */
const struct fw_header *fw_request_header(const struct fw_request *r,
                                          const char *name);

/* Hands r to another handler as a request for target (path and
 * query), e.g. /_/ready answered by the function at ready_path. It is
 * not counted in flight. Returns 0 or -ENOMEM (r is then answered 500).
 */
int fw_request_forward(struct fw_request *r, const struct fw_handler *h,
                       const char *target);

/* After a 101 head: the connection becomes a byte tunnel. Bytes from
 * the client arrive through on_body (back-pressure with
 * fw_request_pause), fw_response_write sends raw bytes, the client's
 * close comes as on_abort and fw_response_end closes the connection. */
int fw_request_tunnel(struct fw_request *r);

/* Stops / resumes delivery of body bytes (back-pressure towards the
 * client: the socket is not read meanwhile). */
void fw_request_pause(struct fw_request *r);
void fw_request_resume(struct fw_request *r);

/* Starts the response. content_length < 0 means unknown: chunked for
 * HTTP/1.1 clients, close-delimited for HTTP/1.0. Date, framing and
 * Connection headers are added. Nothing is sent yet: the head leaves
 * with the first body bytes (or at the end). Returns 0 or -errno (out of
 * memory); the handler then gives up with fw_response_abort(). */
int fw_response_head(struct fw_request *r, int status,
                     const struct fw_hdr *hdrs, size_t n_hdrs,
                     int64_t content_length);

/* Queues body bytes, taking ownership of heap memory owned (freed after
 * the write; may be NULL when p is static or copied). p[0..len) is the
 * part to send. Returns 0 or -errno (the response is then aborted by the
 * server: expect on_abort). */
int fw_response_write(struct fw_request *r, char *owned, const char *p,
                      size_t len);

/* Same, copying p. */
int fw_response_write_copy(struct fw_request *r, const char *p, size_t len);

/* True while the queue to the client is above the high mark: stop
 * producing until on_drain. */
bool fw_response_busy(const struct fw_request *r);

/* Ends the response (terminating chunk). The request is gone after. */
void fw_response_end(struct fw_request *r);

/* Ends the response abnormally: no terminating chunk, connection closed,
 * so the client sees the truncation. The request is gone after. */
void fw_response_abort(struct fw_request *r);

/* Sends len bytes of the file fd from offset as the whole body, with
 * sendfile(2) and back-pressure, then ends the response. Call after
 * fw_response_head(..., len). The server owns fd from now on and closes
 * it. The request is gone after. Returns 0 or -errno. */
int fw_response_sendfile(struct fw_request *r, int fd, int64_t offset,
                         int64_t len);

/* Head and whole body in one call, then end. body may be NULL. */
void fw_response_send(struct fw_request *r, int status,
                      const struct fw_hdr *hdrs, size_t n_hdrs,
                      const char *body, size_t len);

#endif
