"""mode=http, continued: spec 6.3 Upgrade row (101 tunnels, websocket and
other protocols), 6.2 client disconnects and Expect: 100-continue, 4
ready_path, 11 HTTP/1.0 clients. The upstream for most of it is
upstreams/tunnel.py (raw sockets; it records what it sees in a file)."""

import base64
import hashlib
import os
import socket
import struct
import threading
import time
import unittest

from harness import (SLOW, RawConn, T, build_request, dur, free_port,
                     request, wait_for)
from test_http import (HttpTest, health_status, js, lower_pairs,
                       upstream_cmd)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
GREETING = b"\x81\x13hello from upstream"   # tunnel.py's ?greet=1 frame


# ------------------------------------------------------------ helpers

def ws_frame(opcode, payload, mask=True):
    """One final WebSocket frame (RFC 6455 5.2), masked like a client's."""
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes([0x80 | opcode, bit | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big")
              ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return head + key + masked


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID)
                            .digest()).decode()


def read_exact(c, n, timeout=None):
    """n bytes from a RawConn (fewer only if the connection ends)."""
    deadline = time.monotonic() + (T(10) if timeout is None else timeout)
    try:
        while len(c.buf) < n:
            if not c._fill(deadline):
                break
    except socket.timeout:
        raise AssertionError("timed out waiting for %d bytes; have %d: %r"
                             % (n, len(c.buf), bytes(c.buf[:100])))
    out = bytes(c.buf[:n])
    del c.buf[:n]
    return out


def header_tokens(resp, name):
    out = []
    for v in resp.header_all(name):
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def record_lines(path):
    try:
        with open(path) as f:
            return f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []


def record_match(path, prefix):
    """The record's lines starting with prefix."""
    return [l for l in record_lines(path) if l.startswith(prefix)]


class TunnelTest(HttpTest):
    """An upstreams/tunnel.py upstream recording into self.record."""

    def start_tunnel(self, *args, **env):
        self.record = self.path("record")
        return self.start_http("tunnel.py", self.record, *args, **env)

    def open_upgrade(self, wd, target="/ws", proto="websocket",
                     connection="Upgrade", extra=b"", timeout=None,
                     greet=False):
        """Sends an upgrade request (plus extra bytes in the same send);
        returns (conn, response head, Sec-WebSocket-Key). With greet,
        the upstream sends a first frame with its 101 head (read here),
        so the test does not depend on the 101 being flushed alone
        (test_101_head_reaches_client_before_any_tunnel_byte does)."""
        if greet:
            target += ("&" if "?" in target else "?") + "greet=1"
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [("Upgrade", proto), ("Connection", connection)]
        if proto == "websocket":
            headers += [("Sec-WebSocket-Key", key),
                        ("Sec-WebSocket-Version", "13")]
        c = RawConn(wd.port, timeout=T(10) if timeout is None else timeout)
        self.addCleanup(c.close)
        c.send(build_request("GET", target, headers) + extra)
        r = c.read_response()
        if greet and r.status == 101:
            self.assertEqual(read_exact(c, len(GREETING)), GREETING)
        return c, r, key

    def assertSwitched(self, r, proto):
        self.assertEqual(r.status, 101, r)
        self.assertEqual((r.header("Upgrade") or "").lower(), proto, r)
        self.assertIn("upgrade", header_tokens(r, "Connection"), r)
        # RFC 9112 6.1, RFC 9110 8.6: no framing headers on a 1xx
        self.assertIsNone(r.header("Transfer-Encoding"), r)
        self.assertIsNone(r.header("Content-Length"), r)

    def assertEchoes(self, c, data, timeout=None):
        c.send(data)
        got = read_exact(c, len(data), timeout)
        self.assertTrue(got == data, "echo differs: sent %d bytes %r..., "
                        "got %d bytes %r..." % (len(data), data[:40],
                                                len(got), got[:40]))

    def tunnel_cid(self, proto):
        """The upstream's connection number of the (only) tunnel."""
        lines = wait_for(lambda: record_match(self.record, "tunnel "), T(5),
                         "the upstream to record its tunnel")
        self.assertEqual(len(lines), 1, lines)
        _, cid, got = lines[0].split(" ")
        self.assertEqual(got.lower(), proto)
        return int(cid)


# ------------------------------------------------------------ websocket

class HttpWebSocketTest(TunnelTest):

    def setUp(self):
        super().setUp()
        self.wd = self.start_tunnel(exec_timeout=dur(1))

    def test_handshake_headers_and_bytes_after_both_heads_forwarded(self):
        early = ws_frame(1, b"sent with the request head")
        c, r, key = self.open_upgrade(self.wd, "/chat?greet=1", extra=early)
        self.assertSwitched(r, "websocket")
        self.assertEqual(r.header("Sec-WebSocket-Accept"), ws_accept(key), r)
        # the upstream wrote its first frame together with the 101 head
        self.assertEqual(read_exact(c, len(GREETING)), GREETING)
        # the bytes after the request head reached it and came back
        self.assertEqual(read_exact(c, len(early)), early)
        c.close()
        cid = self.tunnel_cid("websocket")
        line = wait_for(lambda: record_match(self.record, "eof %d " % cid),
                        T(5), "the upstream to see EOF")[0]
        self.assertIn("total=%d first=%s" % (len(early), early.hex()[:128]),
                      line)

    def test_101_head_reaches_client_before_any_tunnel_byte(self):
        # a browser waits for the 101 before it sends a frame, and many
        # servers wait for the client's first frame: the 101 head must
        # be sent on its own, not held until tunnel data flows
        for proto in ("websocket", "tcp-echo"):
            with self.subTest(proto=proto):
                c, r, key = self.open_upgrade(self.wd, "/quiet", proto=proto,
                                              timeout=T(5))
                self.assertSwitched(r, proto)
                if proto == "websocket":
                    self.assertEqual(r.header("Sec-WebSocket-Accept"),
                                     ws_accept(key), r)
                self.assertEchoes(c, ws_frame(1, b"first frame"))
                c.close()

    def test_bytes_flow_both_ways_and_1MiB_echoes_byte_exact(self):
        c, r, _ = self.open_upgrade(self.wd, greet=True)
        self.assertSwitched(r, "websocket")
        for size in (1, 5, 125, 126, 1000, 65535, 65536, 200000):
            self.assertEchoes(c, ws_frame(2, os.urandom(size)))
        self.assertEchoes(c, ws_frame(1, "héllo wörld".encode()))
        # 1 MiB in one frame, sent while the echo is read
        frame = ws_frame(2, os.urandom(1 << 20))
        errors = []

        def sender():
            try:
                c.sock.sendall(frame)
            except Exception as e:           # reported below
                errors.append(e)

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        got = read_exact(c, len(frame), T(20))
        th.join(T(20))
        self.assertEqual(errors, [])
        self.assertEqual((len(got), hashlib.sha256(got).hexdigest()),
                         (len(frame), hashlib.sha256(frame).hexdigest()))
        # and the tunnel still works afterwards
        self.assertEchoes(c, ws_frame(1, b"after the big one"))

    def test_tunnel_outlives_exec_timeout(self):
        c, r, _ = self.open_upgrade(self.wd, greet=True)
        self.assertSwitched(r, "websocket")
        self.assertEchoes(c, ws_frame(1, b"before"))
        time.sleep(T(2))             # twice exec_timeout, idle
        self.assertEchoes(c, ws_frame(1, b"after 2 s idle"))
        t0 = time.monotonic()        # and busy past it again
        while time.monotonic() - t0 < T(1.2):
            self.assertEchoes(c, ws_frame(1, b"tick"))
            time.sleep(0.1)
        self.assertIsNone(self.wd.find_log(r"deadline passed"),
                          self.wd.log_text())

    def test_client_close_closes_upstream_side(self):
        c, r, _ = self.open_upgrade(self.wd, greet=True)
        self.assertSwitched(r, "websocket")
        self.assertEchoes(c, ws_frame(1, b"ping"))
        cid = self.tunnel_cid("websocket")
        self.assertEqual(record_match(self.record, "eof "), [])
        c.close()
        wait_for(lambda: record_match(self.record, "eof %d " % cid), T(5),
                 "the upstream to see EOF after the client closed")
        # the watchdog carries on
        with RawConn(self.wd.port) as c2:
            r2 = c2.request("GET", "/after")
        self.assertEqual((r2.status, r2.body),
                         (200, b"GET /after host=localhost\n"), r2)

    def test_upstream_close_closes_client_side(self):
        c, r, _ = self.open_upgrade(self.wd, greet=True)
        self.assertSwitched(r, "websocket")
        self.assertEchoes(c, ws_frame(1, b"ping"))
        c.send(b"CLOSE-NOW")
        self.assertTrue(c.wait_closed(T(5)),
                        "client side still open 5 s after the upstream "
                        "closed; got %r" % bytes(c.buf))
        self.assertEqual(bytes(c.buf), b"bye")
        self.assertEqual(len(record_match(self.record, "upstream-close ")),
                         1)


# ------------------------------------------------------------ other upgrades

class HttpUpgradeTest(TunnelTest):

    def test_other_protocol_answered_101_tunnels_past_exec_timeout(self):
        # a non-websocket upgrade is no "stream": its deadline runs until
        # the 101, and must not cut the tunnel afterwards
        wd = self.start_tunnel(exec_timeout=dur(1))
        early = b"early bytes\n"
        c, r, _ = self.open_upgrade(wd, "/tcp", proto="tcp-echo",
                                    connection="keep-alive, Upgrade",
                                    extra=early)
        self.assertSwitched(r, "tcp-echo")
        self.assertIsNone(r.header("Sec-WebSocket-Accept"), r)
        self.assertEqual(read_exact(c, len(early)), early)
        for i in range(5):
            self.assertEchoes(c, b"line %d\n" % i)
        self.assertEchoes(c, os.urandom(300000), T(20))
        time.sleep(T(2))             # twice exec_timeout
        self.assertEchoes(c, b"still here\n")
        self.assertIsNone(wd.find_log(r"deadline passed"), wd.log_text())
        c.close()
        cid = self.tunnel_cid("tcp-echo")
        wait_for(lambda: record_match(self.record, "eof %d " % cid), T(5),
                 "the upstream to see EOF")

    def test_tunnel_outlives_read_and_write_timeout(self):
        wd = self.start_tunnel(read_timeout=dur(1), write_timeout=dur(1),
                               exec_timeout=dur(1))
        c, r, _ = self.open_upgrade(wd, greet=True)
        self.assertSwitched(r, "websocket")
        self.assertEchoes(c, ws_frame(1, b"before"))
        time.sleep(T(2.5))
        self.assertEchoes(c, ws_frame(1, b"after 2.5 s idle"))

    def test_upgrade_answered_200_is_a_normal_response(self):
        wd = self.start_tunnel()
        c, r, _ = self.open_upgrade(wd, "/ws?refuse=1")
        self.assertEqual((r.status, r.complete, r.body),
                         (200, True, b"no upgrade here\n"), r)
        self.assertIsNotNone(r.header("X-Duration-Seconds"), r)
        self.assertEqual(record_match(self.record, "tunnel "), [])
        self.assertEqual(bytes(c.buf), b"", "bytes after the response")
        # either closed cleanly, as announced, or kept alive and usable
        if r.header("Connection") == "close":
            self.assertTrue(c.wait_closed(T(5)), "not closed")
            self.assertEqual(bytes(c.buf), b"",
                             "bytes before the close: %r" % bytes(c.buf))
        else:
            r2 = c.request("GET", "/next")
            self.assertEqual((r2.status, r2.body),
                             (200, b"GET /next host=localhost\n"), r2)
            # parsed by the watchdog, not tunnelled to the upstream raw
            self.assertIsNotNone(r2.header("X-Duration-Seconds"), r2)

    def test_upgrade_on_a_kept_alive_connection(self):
        wd = self.start_tunnel()
        key = base64.b64encode(os.urandom(16)).decode()
        with RawConn(wd.port) as c:
            for i in range(2):
                r = c.request("GET", "/first%d" % i)
                self.assertEqual(r.body, b"GET /first%d host=localhost\n" % i)
            c.send(build_request("GET", "/ws?greet=1",
                                 [("Upgrade", "websocket"),
                                  ("Connection", "Upgrade"),
                                  ("Sec-WebSocket-Key", key),
                                  ("Sec-WebSocket-Version", "13")]))
            r = c.read_response()
            self.assertSwitched(r, "websocket")
            self.assertEqual(r.header("Sec-WebSocket-Accept"), ws_accept(key))
            self.assertEqual(read_exact(c, len(GREETING)), GREETING)
            self.assertEchoes(c, ws_frame(1, b"on a reused connection"))

    def test_open_tunnel_counts_in_flight(self):
        wd = self.start_tunnel(max_inflight="1")
        c, r, _ = self.open_upgrade(wd, greet=True)
        self.assertSwitched(r, "websocket")
        self.assertEchoes(c, ws_frame(1, b"open"))
        with RawConn(wd.port) as c2:
            self.assertEqual(c2.request("GET", "/_/ready").status, 429)
            self.assertEqual(c2.request("GET", "/other").status, 429)
        c.close()

        def admitted():
            return request(wd.port, "GET", "/other").status == 200
        wait_for(admitted, T(5), "a request admitted after the tunnel closed")


# ------------------------------------------------------------ client aborts

class HttpClientAbortTest(TunnelTest):

    def test_client_disconnect_mid_request_closes_upstream_connection(self):
        wd = self.start_tunnel(exec_timeout=dur(30))
        cases = [("waiting for the response",
                  build_request("GET", "/slow?a=1")),
                 ("mid-body",
                  build_request("POST", "/slow?a=2",
                                [("Content-Length", "1000000")])
                  + b"x" * 5000)]
        for n, (name, data) in enumerate(cases, 1):
            with self.subTest(case=name):
                c = RawConn(wd.port, timeout=T(10))
                self.addCleanup(c.close)
                c.send(data)
                line = wait_for(
                    lambda: record_match(self.record, "slow-start ")[n - 1:],
                    T(5), "the slow request upstream")[0]
                cid = int(line.split()[1])
                c.close()
                t0 = time.monotonic()
                wait_for(lambda: record_match(self.record,
                                              "slow-closed %d" % cid),
                         T(3), "the upstream connection to close (the "
                         "upstream answers only after 15 s)")
                self.assertLess(time.monotonic() - t0, T(3))
        self.assertEqual(record_match(self.record, "slow-answered"), [])
        with RawConn(wd.port) as c:
            r = c.request("GET", "/still")
        self.assertEqual((r.status, r.body),
                         (200, b"GET /still host=localhost\n"), r)


# ------------------------------------------------------------ ready_path

class HttpReadyPathTest(TunnelTest):

    def test_ready_path_gates_readiness_then_answers_ready(self):
        gate, unready = self.path("ready-gate"), self.path("unready")
        t0 = time.monotonic()
        wd = self.start_tunnel("--ready-gate", gate, "--unready", unready,
                               ready_path="/ready", wait=False)
        # the upstream listens at once but answers /ready 503 at first
        wait_for(lambda: len(record_match(self.record, "ready 503")) >= 3,
                 T(10), "the watchdog to poll /ready")
        while True:                  # not ready for the first ~1 s
            self.assertEqual(health_status(wd.port), 503)
            self.assertFalse(os.path.exists(wd.lock_path),
                             "lock file written while /ready answers 503")
            with RawConn(wd.port, timeout=T(5)) as c:
                r = c.request("GET", "/_/ready")
            self.assertEqual((r.status, r.body), (503, b""), r)
            if time.monotonic() - t0 >= T(1):
                break
            time.sleep(0.1)
        polls = len(record_match(self.record, "ready 503"))
        elapsed = time.monotonic() - t0
        # polled every 50 ms: ~20 in a second, not once, not a busy loop
        self.assertGreaterEqual(polls, 5 if SLOW == 1 else 2, polls)
        self.assertLessEqual(polls, elapsed * 100 + 5, polls)
        open(gate, "w").close()
        wait_for(lambda: health_status(wd.port) == 200, T(5),
                 "/_/health 200 once /ready answers 200")
        self.assertTrue(os.path.exists(wd.lock_path), "no lock file")
        self.assertTrue(record_match(self.record, "ready 200"))
        # /_/ready now asks the upstream
        with RawConn(wd.port) as c:
            r = c.request("GET", "/_/ready", [("X-Probe", "p1")])
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.body, rb"^ready n=\d+ GET /ready probe=p1\n$")
        open(unready, "w").close()
        with RawConn(wd.port) as c:
            r = c.request("GET", "/_/ready")
        self.assertEqual((r.status, r.body), (503, b"not ready\n"), r)
        os.unlink(unready)
        with RawConn(wd.port) as c:
            r = c.request("GET", "/_/ready", [("X-Probe", "p2")])
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.body, rb"^ready n=\d+ GET /ready probe=p2\n$")


# ------------------------------------------------------------ Expect

class HttpExpectContinueTest(TunnelTest):

    def send_expecting(self, c, body, target="/upload"):
        """Head with Expect: 100-continue; the body only after the 100."""
        c.send(build_request("POST", target,
                             [("Expect", "100-continue"),
                              ("Content-Length", str(len(body)))]))
        r = c.read_response("POST", timeout=T(5))
        self.assertEqual(r.status, 100, r)
        self.assertTrue(r.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n"),
                        r.raw_head)
        c.send(body)
        while True:
            r = c.read_response("POST", timeout=T(10))
            if r.status != 100:
                return r

    def test_watchdog_answers_100_continue_before_the_body(self):
        # tunnel.py never sends 100 Continue: the watchdog's own must come
        wd = self.start_tunnel()
        with RawConn(wd.port, timeout=T(10)) as c:
            for size in (300000, 10):
                body = os.urandom(size)
                r = self.send_expecting(c, body)
                self.assertEqual(r.status, 200, r)
                self.assertTrue(r.body.startswith(
                    b"len=%d sha256=%s " % (
                        size, hashlib.sha256(body).hexdigest().encode())),
                    r)
            # the connection is still usable without Expect
            r = c.request("GET", "/plain")
            self.assertEqual(r.body, b"GET /plain host=localhost\n", r)

    def test_100_continue_with_an_upstream_that_sends_its_own(self):
        # echo.py (http.server) answers Expect itself if it gets it
        wd = self.start_http("echo.py")
        body = os.urandom(200000)
        with RawConn(wd.port, timeout=T(10)) as c:
            r = self.send_expecting(c, body, "/e")
            got = js(r)
            self.assertEqual((r.status, got["framing"], got["length"],
                              got["sha256"]),
                             (200, "length", len(body),
                              hashlib.sha256(body).hexdigest()))
            r = c.request("GET", "/again")
            self.assertEqual((r.status, js(r)["target"]), (200, "/again"))


# ------------------------------------------------------------ HTTP/1.0

class HttpOneZeroClientTest(HttpTest):

    def test_http10_client_without_host_answered_and_closed(self):
        wd = self.start_http("echo.py")
        with RawConn(wd.port) as c:
            c.send(b"GET /old?x=1 HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertTrue(c.wait_closed(T(5)), "connection kept open")
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.chunked, "chunked response to HTTP/1.0")
        got = js(r)
        self.assertEqual(got["target"], "/old?x=1")
        hosts = [v for k, v in lower_pairs(got["headers"]) if k == "host"]
        self.assertEqual(hosts, ["127.0.0.1:%d" % wd.up_port], got)

    def test_http10_client_with_host_and_body(self):
        wd = self.start_http("echo.py")
        body = os.urandom(5000)
        with RawConn(wd.port) as c:
            c.send(build_request("POST", "/p", body=body, version="HTTP/1.0",
                                 host="fn.example"))
            r = c.read_response("POST")
            self.assertTrue(c.wait_closed(T(5)), "connection kept open")
        got = js(r)
        self.assertEqual((r.status, got["length"], got["sha256"]),
                         (200, len(body), hashlib.sha256(body).hexdigest()))
        hosts = [v for k, v in lower_pairs(got["headers"]) if k == "host"]
        self.assertEqual(hosts, ["fn.example"], got)

    def test_http10_client_gets_chunked_upstream_body_unchunked(self):
        wd = self.start_http("sse.py")
        with RawConn(wd.port) as c:
            c.send(b"GET /e?n=3 HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertTrue(c.wait_closed(T(5)), "connection kept open")
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.chunked, "chunked response to HTTP/1.0: %r" % r)
        self.assertEqual(r.body, b"data: 1\n\ndata: 2\n\ndata: 3\n\n", r)


# ------------------------------------------------------------ the pool

class HttpPoolTest(HttpTest):

    def slow_download(self, port, n, stall):
        """GET /download?n=N from a client that reads nothing for stall
        seconds through a 4 KiB receive buffer, then everything. Returns
        the status line."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(T(20))
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(build_request("GET", "/download?n=%d" % n))
            time.sleep(stall)
            head = b""
            while b"\r\n\r\n" not in head:
                data = s.recv(65536)
                if not data:
                    return head[:80]
                head += data
            head, body = head.split(b"\r\n\r\n", 1)
            left = n - len(body)
            while left > 0:
                data = s.recv(1 << 20)
                if not data:
                    break
                left -= len(data)
        finally:
            s.close()
        return head.split(b"\r\n", 1)[0]

    def test_connection_pooled_after_a_slow_client_serves_the_next(self):
        # A slow client stops reading the upstream (back-pressure); when
        # the stop and the response's end fell in the same read, the
        # connection went back to the pool not reading, and the next
        # request on it waited for its deadline: a 504. Which sizes hit
        # that depends on the kernel's socket buffers (3.26-3.30 MB on
        # Debian 12's defaults), hence the scan.
        wd = self.start_http("big.py", exec_timeout="2s")
        stall = 0.05 * SLOW
        for n in range(3000000, 3600000, 20000):
            status = self.slow_download(wd.port, n, stall)
            self.assertEqual(status, b"HTTP/1.1 200 OK")
            r = request(wd.port, "GET", "/download?n=10", timeout=T(10))
            self.assertEqual(r.status, 200,
                             "after a %d-byte download: %r" % (n, r))

    def test_pool_keeps_at_most_256_idle_connections(self):
        # 300 requests at once take 300 upstream connections; afterwards
        # the pool keeps 256 (proxy.c FW_POOL_MAX) and closes the rest.
        wd = self.start_http("echo.py")
        self.assertEqual(request(wd.port, "GET", "/warm").status, 200)
        fds = lambda: len(os.listdir("/proc/%d/fd" % wd.wd_pid))  # noqa
        base = fds()                     # one pooled connection among them
        gate = os.path.join(self.tmp, "gate")
        results = []

        def one():
            r = request(wd.port, "GET", "/g?gate=" + gate, timeout=T(60))
            results.append(r.status)
        threads = [threading.Thread(target=one, daemon=True)
                   for _ in range(300)]
        for t in threads:
            t.start()
        wait_for(lambda: fds() >= base + 2 * 299, T(30),
                 "300 requests to reach the upstream")
        with open(gate, "w"):
            pass
        for t in threads:
            t.join(T(60))
        self.assertEqual(results, [200] * 300)
        wait_for(lambda: fds() <= base + 255, T(10),
                 "the pool to shrink to 256: %d fds over %d" % (fds(), base))


# ------------------------------------------------------------ upstream_url

class HttpUpstreamAddressTest(HttpTest):

    @unittest.skipUnless(os.geteuid() == 0, "needs root (a mount namespace)")
    def test_localhost_listed_as_ipv6_first_reaches_an_ipv4_server(self):
        # In most containers /etc/hosts lists ::1 for localhost before
        # 127.0.0.1; a server on 127.0.0.1 only refuses ::1, and Go's
        # dialer goes on to the next address. This /etc/hosts is the
        # watchdog's alone (a private mount namespace).
        hosts = os.path.join(self.tmp, "hosts")
        with open(hosts, "w") as f:
            f.write("::1 localhost\n127.0.0.1 localhost\n")
        up = free_port()
        wd = self.start(
            mode="http", upstream_url="http://localhost:%d" % up,
            fprocess=upstream_cmd("echo.py", str(up)),
            launcher=["unshare", "--mount", "--fork", "sh", "-c",
                      'mount --bind "$0" /etc/hosts && exec "$@"', hosts])
        r = request(wd.port, "GET", "/via-localhost")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(js(r)["target"], "/via-localhost")

    def test_a_probe_that_hangs_is_given_up_and_retried(self):
        # The first GET ready_path is never answered: without a timeout
        # no probe would follow and the watchdog would never be ready.
        wd = self.start_http("first_hangs.py", ready_path="/ready",
                             wait=False)
        wait_for(lambda: health_status(wd.port) == 200, T(10),
                 "a second probe to make the watchdog ready")
        self.assertBody(request(wd.port, "GET", "/x"), b"ok\n")
