/* listener.c - the listening sockets: binding (IPv6 dual-stack, IPv4
 * where there is no IPv6), accepting, the metrics (admin) listener, and
 * the listener's part of the drain: refusing new connections without
 * resetting any that were accepted, then closing. Connections themselves
 * are server.c's.
 */
#include "server.h"

#include <linux/filter.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

#define FW_BACKLOG 1024          /* listen(2) queue; also the most taken
                                    in when the listener closes */
#define FW_DRAIN_SYN_MS 20       /* draining: new SYNs are dropped this
                                    long before the listener closes, so
                                    handshakes under way can complete */

static void on_connection(uv_stream_t *l, int status)
{
    struct fw_conn *c;

    if (status < 0) {
        fw_log(FW_ERROR, "accept: %s", uv_strerror(status));
        return;
    }
    c = fw_conn_new(l == (uv_stream_t *)&fw_srv.admin);
    if (c == NULL)
        return;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        fw_conn_close(c);
        return;
    }
    fw_conn_start(c);
}

/* Before the listener closes: connections the kernel completed but we
 * have not accepted yet would be reset by the close, so take them in
 * and serve them (they get "Connection: close"). */
static void accept_backlog(void)
{
    uv_os_fd_t lfd;
    int fd, n;

    if (uv_fileno((uv_handle_t *)&fw_srv.listener, &lfd) < 0)
        return;
    for (n = 0; n < FW_BACKLOG; n++) {
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;      /* EAGAIN: the backlog is empty */
        struct fw_conn *c = fw_conn_new(false);

        if (c == NULL) {
            close(fd);
            continue;
        }
        if (uv_tcp_open(&c->tcp, fd) < 0) {
            close(fd);
            fw_conn_close(c);
            continue;
        }
        fw_conn_start(c);
    }
}

static int listen_on(uv_tcp_t *l, int family, int port)
{
    struct sockaddr_storage addr;
    int err;

    if (family == AF_INET6)
        uv_ip6_addr("::", port, (struct sockaddr_in6 *)&addr);
    else
        uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)&addr);
    err = uv_tcp_init_ex(fw_srv.loop, l, (unsigned)family);
    if (err < 0)
        return err;
    err = uv_tcp_bind(l, (struct sockaddr *)&addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)l, FW_BACKLOG, on_connection);
    if (err < 0)
        uv_close((uv_handle_t *)l, NULL);
    return err;
}

/* IPv6 any (dual-stack), or IPv4 any where there is no IPv6. */
static int bind_listener(uv_tcp_t *l, int port)
{
    int err = listen_on(l, AF_INET6, port);

    if (err == UV_EAFNOSUPPORT || err == UV_EADDRNOTAVAIL) {
        /* No IPv6 here: the closed handle is reused after a loop turn. */
        uv_run(fw_srv.loop, UV_RUN_NOWAIT);
        err = listen_on(l, AF_INET, port);
    }
    return err;
}

int fw_server_start(uv_loop_t *loop, const struct fw_server_config *cfg)
{
    int err;

    fw_srv.loop = loop;
    fw_srv.cfg = *cfg;
    err = bind_listener(&fw_srv.listener, cfg->port);
    if (err < 0)
        return err;
    uv_timer_init(loop, &fw_srv.closing_timer);
    fw_srv.listening = true;
    return 0;
}

int fw_server_listen_admin(int port, const struct fw_handler *h,
                           int64_t timeout_ms)
{
    int err;

    fw_srv.admin_handler = h;
    fw_srv.admin_timeout_ms = timeout_ms;
    err = bind_listener(&fw_srv.admin, port);
    if (err < 0)
        return err;
    fw_srv.admin_listening = true;
    return 0;
}

void fw_server_close_admin(void)
{
    struct fw_list *n, *tmp;

    if (fw_srv.admin_listening)
        uv_close((uv_handle_t *)&fw_srv.admin, NULL);
    fw_srv.admin_listening = false;
    fw_list_each(n, tmp, &fw_srv.conns) {
        struct fw_conn *c = fw_list_entry(n, struct fw_conn, link);

        if (c->admin)
            fw_conn_close_for(c, FW_ABORT_SHUTDOWN);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
    fw_srv.listening = false;
    fw_server_check_idle();
}

static void close_listener(void)
{
    if (fw_srv.listening && !uv_is_closing((uv_handle_t *)&fw_srv.listener)) {
        uv_close((uv_handle_t *)&fw_srv.closing_timer, NULL);
        uv_close((uv_handle_t *)&fw_srv.listener, on_listener_closed);
    }
}

/* Closing a listener resets the connections in its queue, and a client
 * whose SYN has been answered counts as connected. So first a socket
 * filter drops every segment with SYN set: new clients see no answer
 * (their retry, a second later, finds the port closed and is refused)
 * while handshakes already answered complete. FW_DRAIN_SYN_MS later
 * the queue is taken in and the listener closes. Returns false when
 * the filter cannot be attached (then close at once). */
static bool refuse_new_connections(void)
{
    static struct sock_filter drop_syn[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),        /* TCP flags */
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x02, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0),                  /* SYN: drop */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),         /* the rest */
    };
    static const struct sock_fprog prog = {
        .len = sizeof(drop_syn) / sizeof(drop_syn[0]),
        .filter = drop_syn,
    };
    uv_os_fd_t fd;

    return uv_fileno((uv_handle_t *)&fw_srv.listener, &fd) == 0 &&
           setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
                      sizeof(prog)) == 0;
}

static void on_closing_timer(uv_timer_t *t)
{
    (void)t;
    accept_backlog();
    close_listener();
}

void fw_server_stop_keepalive(void)
{
    fw_srv.no_keepalive = true;
}

/* True when the client has sent bytes we have not read yet: a request
 * that closing the connection now would answer with a reset. */
static bool input_waiting(const struct fw_conn *c)
{
    uv_os_fd_t fd;
    int n = 0;

    return uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0 &&
           ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

void fw_server_drain(void (*on_idle)(void))
{
    struct fw_list *n, *tmp;

    fw_srv.on_idle = on_idle;
    fw_srv.no_keepalive = true;
    if (fw_srv.listening && !uv_is_closing((uv_handle_t *)&fw_srv.listener)) {
        if (refuse_new_connections())
            uv_timer_start(&fw_srv.closing_timer, on_closing_timer,
                           FW_DRAIN_SYN_MS, 0);
        else
            on_closing_timer(&fw_srv.closing_timer);
    }
    fw_list_each(n, tmp, &fw_srv.conns) {
        struct fw_conn *c = fw_list_entry(n, struct fw_conn, link);

        c->keep_alive = false;
        if (c->in_request || c->handler != NULL || c->rpos != c->rlen)
            continue;            /* busy: closes after its response */
        if (c->used && !input_waiting(c))
            fw_conn_close(c);    /* idle keep-alive connection */
        else if (!c->used)       /* accepted, its request on the way */
            fw_conn_expect_request(c, FW_DRAIN_FIRST_MS);
    }
    fw_server_check_idle();
}

void fw_server_close(void)
{
    struct fw_list *n, *tmp;

    close_listener();
    fw_server_close_admin();
    fw_list_each(n, tmp, &fw_srv.conns) {
        struct fw_conn *c = fw_list_entry(n, struct fw_conn, link);

        fw_conn_close_for(c, FW_ABORT_SHUTDOWN);
    }
}

int64_t fw_server_inflight(void)
{
    return fw_srv.inflight;
}

size_t fw_server_connections(void)
{
    return fw_srv.n_conns;
}
