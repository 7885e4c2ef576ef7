/* upstream.h - http mode's long-lived function processes: started once
 * (http_workers copies), their output relayed to the log, readiness
 * polled, restarted or mourned when they die, stopped after the drain.
 */
#ifndef FW_UPSTREAM_H
#define FW_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config.h"
#include "list.h"
#include "log.h"
#include "proc.h"


struct fw_worker {
    int index;                   /* 0 .. http_workers-1 */
    int port;                    /* upstream_url port + index */
    struct sockaddr_storage addr; /* where its server listens */
    size_t addr_at;              /* which of the host's addresses */
    bool ready;                  /* accepts connections */
    bool running;                /* its process is alive */
    int outstanding;             /* requests in flight to it */
    struct fw_list idle;         /* keep-alive connections, proxy's */
    int n_idle;                  /* how many */

    struct fw_proc proc;         /* the process, its own group */
    uv_pipe_t in;                /* its stdin: open, never written */
    uv_pipe_t out;               /* its stdout, relayed */
    uv_pipe_t err;               /* its stderr, relayed */
    struct fw_lines out_lines;
    struct fw_lines err_lines;
    uv_timer_t timer;            /* readiness polls, restart back-off */
    bool timing_probe;           /* timer is the probe's timeout */
    uv_tcp_t probe;              /* readiness connect */
    uv_connect_t probe_req;
    bool probing;                /* probe handle open */
    bool daemon_check;           /* exited 0: does its port still accept? */
    uint64_t daemon_deadline;    /* loop time the check gives up at */
    bool daemonised;             /* it did: probe on without a process */
    uv_write_t probe_write;      /* ready_path request */
    char probe_req_text[1400];   /* "GET <ready_path> ..." */
    char probe_status[16];       /* the answer's status line */
    size_t probe_len;            /* bytes in probe_status */
    unsigned restarts;           /* in a row, for the back-off */
};

/* Parses upstream_url, resolves its host, starts every worker. on_ready
 * runs each time a worker starts accepting connections; on_fatal when
 * the function is gone for good (spec 6.1: health 503, drain, exit 1).
 * Returns 0, or -errno after logging why. */
int fw_upstream_start(uv_loop_t *loop, const struct fw_config *cfg,
                      void (*on_ready)(void), void (*on_fatal)(void));

/* The ready worker with the fewest requests in flight, or NULL. */
struct fw_worker *fw_upstream_pick(void);

/* All workers, ready or not: count and the i-th. */
size_t fw_upstream_count(void);
struct fw_worker *fw_upstream_worker(size_t i);

/* Workers ready now. */
size_t fw_upstream_ready(void);

/* The path of upstream_url ("" or "/base"), prefixed to every target. */
const char *fw_upstream_base(void);

/* "host:port" of upstream_url, for requests that carry no Host. */
const char *fw_upstream_host(void);

/* Sends sig to every worker's process group. */
void fw_upstream_signal(int sig);

/* After the drain: SIGTERM to every worker, SIGKILL after 10 s, then
 * on_stopped once all have exited and every handle is closed. */
void fw_upstream_stop(void (*on_stopped)(void));

#endif
