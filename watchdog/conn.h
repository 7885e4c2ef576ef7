/* conn.h - a client connection, shared by server.c (reading, parsing,
 * lifetime) and response.c (writing responses). Private to those two.
 */
#ifndef FW_CONN_H
#define FW_CONN_H

#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "buf.h"
#include "http.h"
#include "list.h"
#include "server.h"

#define FW_READ_BYTES (64 * 1024)        /* per-connection read buffer */
#define FW_HEAD_MAX (1024 * 1024 + 4096) /* request head limit, spec 11 */
#define FW_WRITE_HIGH (256 * 1024)       /* pause producers above this */
#define FW_WRITE_LOW (64 * 1024)         /* and resume them below this */
#define FW_LINGER_MS 2000                /* wait for the client's FIN */
#define FW_DRAIN_FIRST_MS 1000           /* draining: a fresh connection's
                                            first request comes by then */

struct fw_conn {
    uv_tcp_t tcp;                /* client socket, data = this */
    uv_timer_t read_timer;       /* read_timeout, idle limit, linger */
    uv_timer_t write_timer;      /* write_timeout of the request */
    uv_shutdown_t shutdown;      /* graceful close after the last write */
    int open_handles;            /* free(this) when it reaches 0 */
    struct fw_list link;         /* in fw_srv.conns, for the drain */

    http_parser parser;          /* parser.data = this */
    char *rbuf;                  /* FW_READ_BYTES, [rpos, rlen) unparsed */
    size_t rpos;
    size_t rlen;
    bool reading;                /* uv_read_start is in effect */
    bool in_feed;                /* inside http_parser_execute */

    struct fw_request req;       /* the live request */
    struct fw_buf head;          /* target and headers, NUL-separated */
    struct fw_fields fields;     /* the headers' places in head */
    struct fw_header *headers;   /* heap, built at head complete */
    char *alt_target;            /* heap: target, '\0', path, '\0', query
                                    of a forwarded request */
    size_t target_len;           /* bytes of the target in head */

    const struct fw_handler *handler; /* NULL when no one owns the reply */
    bool in_request;             /* message begun, not yet finished */
    bool head_done;              /* headers complete: what follows the
                                    body as fields are trailers */
    bool used;                   /* a request has begun on it */
    bool body_done;              /* message complete */
    bool response_done;          /* handler ended the response */
    bool paused;                 /* handler asked for back-pressure */
    bool want_drain;             /* handler saw fw_response_busy */
    bool is_function;            /* counted in-flight, logged */
    bool observed;               /* function path: in metrics till it ends */
    bool admin;                  /* from the admin (metrics) listener */
    bool quiet;                  /* no request log line */
    bool continue_sent;          /* "100 Continue" written */
    bool expect_continue;        /* client sent Expect: 100-continue */
    bool keep_alive;             /* connection survives the response */
    bool closing;                /* conn_close or shutdown started */
    bool lingering;              /* shut down, dropping what arrives */
    bool tunnel;                 /* after 101: raw bytes both ways */

    /* The response: head formatted lazily so a body that is complete
     * before the first write can go out with Content-Length. */
    int status;
    struct fw_buf out_head;      /* "HTTP/1.1 ..." head, unsent */
    bool head_pending;           /* out_head not written yet */
    bool head_started;           /* fw_response_head was called */
    bool chunked_out;            /* chunked framing */
    bool close_delimited;        /* HTTP/1.0 without length: close ends */
    int64_t out_length;          /* Content-Length promised, or -1 */
    int64_t body_bytes;          /* body bytes queued */
    int64_t body_in_bytes;       /* request body bytes handed over */
    size_t frame_at;             /* offset of the chunked framing line */

    /* A file body sent with sendfile(2) (static mode). */
    int file_fd;                 /* owned while sending, else -1 */
    int64_t file_off;            /* next byte of the file to send */
    int64_t file_left;           /* bytes still to send */
    uv_poll_t *writable;         /* heap: waits for room in the socket,
                                    on a dup of its fd; NULL until used */
    int writable_fd;             /* that dup, owned by the poll handle */
};

struct fw_server_state {
    uv_loop_t *loop;
    struct fw_server_config cfg;
    uv_tcp_t listener;           /* data = NULL */
    bool listening;
    uv_timer_t closing_timer;    /* drain: handshakes finish, then close */
    uv_tcp_t admin;              /* metrics listener, data = NULL */
    bool admin_listening;
    const struct fw_handler *admin_handler; /* answers its requests */
    int64_t admin_timeout_ms;    /* its read and write timeouts */
    struct fw_list conns;        /* every connection, admin ones too */
    size_t n_conns;              /* not counting admin ones */
    int64_t inflight;
    bool no_keepalive;           /* draining: close after each response */
    void (*on_idle)(void);       /* drain callback, once */
    char date[FW_HTTP_DATE_LEN]; /* cached Date value */
    time_t date_at;
};

extern struct fw_server_state fw_srv;


/* server.c */

/* A new connection, its socket not yet attached: the caller accepts
 * into c->tcp, then calls fw_conn_start(). admin: from the admin
 * listener. NULL when out of memory. */
struct fw_conn *fw_conn_new(bool admin);

/* Starts reading a connection whose socket is attached. */
void fw_conn_start(struct fw_conn *c);

/* Draining: a fresh connection's request must come within ms. */
void fw_conn_expect_request(struct fw_conn *c, uint64_t ms);

/* Closes at once, telling the handler (if any) why. Idempotent. */
void fw_conn_close_for(struct fw_conn *c, enum fw_abort why);

/* Closes at once, telling the handler (if any) the client left. */
void fw_conn_close(struct fw_conn *c);

/* Calls the drain's on_idle once no connection and no listener is left. */
void fw_server_check_idle(void);

/* Closes after the queued writes have left (shutdown, linger). */
void fw_conn_finish(struct fw_conn *c);

/* Detaches the handler and calls its on_abort. */
void fw_conn_abort_handler(struct fw_conn *c, enum fw_abort why);

/* Goes on parsing what is buffered, if the connection's state allows. */
void fw_conn_pump(struct fw_conn *c);

/* response.c */

/* Queues the pending head, framing and p[0..len); takes ownership of
 * owned. last adds the terminating chunk. Returns 0 or a UV error. */
int fw_conn_write(struct fw_conn *c, char *owned, const char *p, size_t len,
                  bool last);

/* An error answered by the server itself, then the connection closes.
 * A handler still attached is told why: FW_ABORT_CLIENT for a request
 * that broke the protocol or a limit (fw_conn_send_error), so a child
 * already started is stopped as for a client that left; FW_ABORT_TIMEOUT
 * only when read_timeout passed. */
void fw_conn_send_error(struct fw_conn *c, int status, const char *body);
void fw_conn_send_error_for(struct fw_conn *c, enum fw_abort why, int status,
                            const char *body);

/* The access-log line of c's request, ended with status (log.h). */
void fw_conn_log_request(struct fw_conn *c, int status);

/* Stops a sendfile body: closes the file, stops waiting for the socket. */
void fw_conn_stop_file(struct fw_conn *c);

#endif
