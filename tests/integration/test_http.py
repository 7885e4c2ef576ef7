"""mode=http: spec sections 3 (start-up order), 4 (probes), 6 (upstream
lifecycle, forwarding, responses), 8 (signals forwarded), 9 (relay), plus
http_workers. The upstreams are small Python servers in upstreams/."""

import hashlib
import importlib.util
import json
import os
import random
import re
import signal
import socket
import threading
import time

from harness import (ANY_EXIT, HERE, T, WRAPPER, build_request, children,
                     chunked, dur, fp, free_port, InFlight, pid_dead,
                     pid_reaped, proc_stat, RawConn, request, rss_kib,
                     send_in_background, wait_for, WatchdogTest)

UPSTREAMS = os.path.join(HERE, "upstreams")
RSS_LIMIT_KIB = 32 << 10
# ASan keeps freed memory in quarantine: RSS says nothing under it.
SANITIZED = bool(os.environ.get("FW_SANITIZED"))
DURATION_RX = r"^\d+\.\d{6}$"
INTERNAL = "X-OpenFaaS-Internal"


def _load_common():
    spec = importlib.util.spec_from_file_location(
        "fw_upstreams_common", os.path.join(UPSTREAMS, "common.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


pattern = _load_common().pattern


def upstream_cmd(script, *args):
    """fprocess running an upstream script (-B: no __pycache__)."""
    return fp("python3", "-B", os.path.join(UPSTREAMS, script), *args)


def js(resp):
    try:
        return json.loads(resp.body)
    except ValueError:
        raise AssertionError("upstream did not answer JSON: %r" % (resp,))


def lower_pairs(pairs):
    return [(k.lower(), v) for k, v in pairs]


def free_port_pair():
    """A port p with p + 1 also free (worker i listens on p + i). Taken
    below the ephemeral range: there, under load, most ports are held by
    some client connection in TIME_WAIT and pairs are rare."""
    rng = random.Random()
    for _ in range(200):
        p = rng.randrange(20000, 32000)
        socks = []
        try:
            for q in (p, p + 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", q))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no two consecutive free ports")


def refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=T(2))
    except ConnectionRefusedError:
        return True
    s.close()
    return False


def server_has_read(server_port, client_port):
    """True once the server end of the loopback connection client_port ->
    server_port holds no unread bytes (/proc/net/tcp rx_queue is 0)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().split("\n")[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 5:
                continue
            local = int(parts[1].rsplit(":", 1)[1], 16)
            remote = int(parts[2].rsplit(":", 1)[1], 16)
            if local == server_port and remote == client_port:
                return int(parts[4].split(":")[1], 16) == 0
    return False


def health_status(port):
    """Status of GET /_/health, or None if the connection fails."""
    try:
        with RawConn(port, timeout=T(2)) as c:
            return c.request("GET", "/_/health").status
    except (OSError, AssertionError):
        return None


class RssSampler:
    """Samples a process's VmRSS in a thread until stop(); .peak in KiB."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = rss_kib(pid)
        self.samples = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
                self.samples += 1
            except OSError:
                return
            self.done.wait(0.005)

    def stop(self):
        self.done.set()
        self.thread.join(T(5))
        return self.peak


class HttpTest(WatchdogTest):
    """Starts watchdogs in http mode in front of an upstream script."""

    def start_http(self, script, *args, port_arg=True, pick_port=free_port,
                   **env):
        """Starts a watchdog in http mode in front of script, on a free
        upstream port (wd.up_port); a port taken meanwhile by another
        process (the upstream logs "Address already in use") is retried
        with a new one."""
        for attempt in range(3):
            up = pick_port()
            words = ((str(up),) if port_arg else ("-",)) + args
            e = dict(env, mode="http",
                     upstream_url="http://127.0.0.1:%d" % up)
            while "port" not in e:   # never the upstream's (or a worker's)
                p = free_port()
                if not up <= p <= up + int(e.get("http_workers", 1)):
                    e["port"] = str(p)
            first = len(self.watchdogs)
            try:
                wd = self.start(fprocess=upstream_cmd(script, *words), **e)
            except AssertionError:
                if attempt < 2 and any(
                        "Address already in use" in w.log_text()
                        for w in self.watchdogs[first:]):
                    continue
                raise
            wd.up_port = up
            return wd

    def check_signals_forwarded(self, wd, record):
        """Each job-control and user signal reaches the upstream, which
        keeps serving."""
        sent = []
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                    signal.SIGQUIT, signal.SIGWINCH):
            wd.signal(sig)
            sent.append(sig.name)

            def recorded():
                with open(record) as f:
                    return f.read().split() == sent
            wait_for(recorded, T(5), "upstream to record %s" % sent)
        self.assertTrue(wd.alive())
        self.assertEqual(request(wd.port, "GET", "/still").status, 200)

    def assertInternalError(self, r, status):
        self.assertEqual((r.status, r.body), (status, b""), r)
        self.assertEqual(r.header(INTERNAL), "of-watchdog", r)
        self.assertRegex(r.header("X-Duration-Seconds") or "", DURATION_RX)


# ------------------------------------------------------------ readiness

class HttpReadinessTest(HttpTest):

    def test_not_ready_until_upstream_listens_early_request_held(self):
        gate = self.path("listen")
        wd = self.start_http("echo.py", "--listen-after", gate, wait=False)
        # the watchdog is up, the upstream is not listening yet
        wait_for(lambda: health_status(wd.port) == 503, T(10),
                 "/_/health 503 while the upstream is not listening")
        self.assertTrue(refused(wd.up_port), "upstream listening too early")
        self.assertFalse(os.path.exists(wd.lock_path),
                         "lock file written before the upstream listens")
        with RawConn(wd.port, timeout=T(10)) as ready:
            self.assertEqual(ready.request("GET", "/_/ready").status, 503)
        # a function request sent now must be held, not failed
        early = RawConn(wd.port, timeout=T(20))
        self.addCleanup(early.close)
        early.send(build_request("GET", "/early?x=1"))
        client_port = early.sock.getsockname()[1]
        wait_for(lambda: server_has_read(wd.port, client_port), T(10),
                 "the watchdog to read the early request")
        self.assertEqual(health_status(wd.port), 503)
        self.assertFalse(os.path.exists(wd.lock_path))
        open(gate, "w").close()
        r = early.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(js(r)["target"], "/early?x=1")
        wait_for(lambda: health_status(wd.port) == 200, T(10),
                 "/_/health 200 once the upstream listens")
        self.assertTrue(os.path.exists(wd.lock_path), "no lock file")
        self.assertEqual(request(wd.port, "GET", "/_/ready").status, 200)

    def test_request_held_for_unready_upstream_gets_504_at_exec_timeout(self):
        gate = self.path("listen")
        wd = self.start_http("echo.py", "--listen-after", gate, wait=False,
                             exec_timeout=dur(1))
        wait_for(lambda: health_status(wd.port) == 503, T(10),
                 "/_/health 503 while the upstream is not listening")
        with RawConn(wd.port, timeout=T(15)) as c:
            r = c.request("GET", "/never-ready")
        self.assertInternalError(r, 504)
        open(gate, "w").close()
        wd.wait_healthy()


# ------------------------------------------------------------ forwarding

class HttpForwardingTest(HttpTest):

    def setUp(self):
        super().setUp()
        self.wd = self.start_http("echo.py")

    def test_method_path_and_raw_query_passed_unchanged(self):
        cases = [("GET", "//a/./b?x=1&y=%20"),
                 ("GET", "/a/../b/%2f/c?q=a+b&q=%E2%82%AC&&flag"),
                 ("DELETE", "/items/7?force"),
                 ("PATCH", "/p?"),
                 ("OPTIONS", "/opts"),
                 ("PURGE", "/cache/x")]
        with RawConn(self.wd.port) as c:
            for method, target in cases:
                r = c.request(method, target)
                self.assertEqual(r.status, 200, (method, target, r))
                got = js(r)
                self.assertEqual((got["method"], got["target"]),
                                 (method, target))
                self.assertEqual(got["framing"], "none", got)

    def test_headers_passed_in_order_with_repeats_and_host_unchanged(self):
        sent = [("X-Rep", "1"),
                ("X-Forwarded-For", "203.0.113.9, 198.51.100.2"),
                ("X-Other", "o"),
                ("X-Rep", "2"),
                ("X-Forwarded-Host", "public.example"),
                ("X-Forwarded-Proto", "https"),
                ("Accept-Encoding", "gzip, br"),
                ("User-Agent", "fwtest/1"),
                ("X-Rep", "3")]
        with RawConn(self.wd.port) as c:
            r = c.request("GET", "/h", headers=sent, host="fn.example:8080")
        self.assertEqual(r.status, 200, r)
        seen = [(k, v) for k, v in lower_pairs(js(r)["headers"])
                if k != "connection"]     # the proxy's own, if any
        self.assertEqual(seen, [("host", "fn.example:8080")]
                         + lower_pairs(sent))

    def test_x_forwarded_headers_not_added(self):
        with RawConn(self.wd.port) as c:
            r = c.request("GET", "/plain", headers=[("X-A", "a")])
        names = {k for k, _ in lower_pairs(js(r)["headers"])}
        for added in ("x-forwarded-for", "x-forwarded-host",
                      "x-forwarded-proto", "forwarded", "via"):
            self.assertNotIn(added, names, js(r)["headers"])

    def test_hop_by_hop_request_headers_removed(self):
        hop = [("Connection", "close, X-Hop-Req"),
               ("X-Hop-Req", "listed in Connection"),
               ("Keep-Alive", "timeout=5"),
               ("TE", "trailers"),
               ("Trailer", "X-T"),
               ("Upgrade", "h2c"),
               ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
               ("Proxy-Connection", "keep-alive"),
               ("X-Keep", "end-to-end")]
        with RawConn(self.wd.port) as c:
            r = c.request("GET", "/hop", headers=hop)
            self.assertEqual(r.status, 200, r)
            # the client's Connection: close is honoured
            self.assertTrue(c.wait_closed(T(5)), "connection kept open")
        seen = lower_pairs(js(r)["headers"])
        names = [k for k, _ in seen]
        for gone in ("x-hop-req", "keep-alive", "te", "trailer", "upgrade",
                     "proxy-authorization", "proxy-connection"):
            self.assertNotIn(gone, names, seen)
        for k, v in seen:
            if k == "connection":
                self.assertNotRegex(v.lower(), r"close|x-hop-req", seen)
        self.assertIn(("x-keep", "end-to-end"), seen)

    def test_hop_by_hop_response_headers_removed(self):
        with RawConn(self.wd.port) as c:
            r = c.request("GET", "/?hop=1")
            self.assertEqual(r.status, 200, r)
            names = [k.lower() for k, _ in r.headers]
            for gone in ("x-hop-resp", "keep-alive", "proxy-authenticate",
                         "proxy-connection", "trailer", "upgrade"):
                self.assertNotIn(gone, names, r.headers)
            for v in r.header_all("Connection"):
                self.assertNotIn("x-hop-resp", v.lower(), r.headers)
            self.assertEqual(r.header_all("X-Resp"), ["one", "two"])
            self.assertEqual(r.header("X-Upstream"), "echo")
            # the upstream's Connection header did not close ours
            r2 = c.request("GET", "/again")
        self.assertEqual(r2.status, 200, r2)

    def test_response_status_headers_and_body_passed_through(self):
        with RawConn(self.wd.port) as c:
            for status in (200, 201, 404, 500, 503):
                r = c.request("GET", "/s?status=%d" % status)
                self.assertEqual(r.status, status, r)
                self.assertIsNone(r.header(INTERNAL), r)
                self.assertEqual(r.header("Content-Type"), "application/json")
                self.assertEqual(r.header_all("X-Resp"), ["one", "two"])
                self.assertEqual(
                    [k.lower() for k, _ in r.headers
                     if k.lower() in ("x-resp", "x-other")],
                    ["x-resp", "x-other", "x-resp"], r.headers)
                self.assertEqual(js(r)["target"], "/s?status=%d" % status)
                self.assertEqual(int(r.header("Content-Length")),
                                 len(r.body))
                self.assertRegex(r.header("X-Duration-Seconds") or "",
                                 DURATION_RX)

    def test_redirect_not_followed(self):
        with RawConn(self.wd.port) as c:
            r = c.request("GET", "/r?status=302&location=/elsewhere")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.header("Location"), "/elsewhere")
        self.assertEqual(js(r)["target"], "/r?status=302&location=/elsewhere")

    def test_content_length_body_passed_with_content_length(self):
        body = os.urandom(100000)
        with RawConn(self.wd.port) as c:
            r = c.request("POST", "/upload", body=body)
        got = js(r)
        self.assertEqual((r.status, got["framing"], got["length"],
                          got["sha256"]),
                         (200, "length", len(body),
                          hashlib.sha256(body).hexdigest()))
        hdrs = dict(lower_pairs(got["headers"]))
        self.assertEqual(hdrs.get("content-length"), str(len(body)))
        self.assertNotIn("transfer-encoding", hdrs)

    def test_chunked_body_passed_chunked(self):
        pieces = [b"hello ", os.urandom(70000), b"world"]
        whole = b"".join(pieces)
        with RawConn(self.wd.port) as c:
            c.send(b"PUT /c HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + chunked(*pieces))
            r = c.read_response("PUT")
        got = js(r)
        self.assertEqual((r.status, got["framing"], got["length"],
                          got["sha256"]),
                         (200, "chunked", len(whole),
                          hashlib.sha256(whole).hexdigest()))
        hdrs = dict(lower_pairs(got["headers"]))
        self.assertEqual(hdrs.get("transfer-encoding", "").lower(), "chunked")
        self.assertNotIn("content-length", hdrs)

    def test_head_gets_headers_without_body(self):
        with RawConn(self.wd.port) as c:
            r = c.request("HEAD", "/thing")
            self.assertEqual((r.status, r.body), (200, b""), r)
            self.assertEqual(r.header("X-Upstream"), "echo")
            self.assertGreater(int(r.header("Content-Length", "0")), 0, r)
            # no stray body bytes before the next response
            r2 = c.request("GET", "/after-head")
        self.assertEqual((r2.status, js(r2)["target"]), (200, "/after-head"))


class HttpBufferBodyTest(HttpTest):

    def test_chunked_body_sent_with_content_length_when_buffering(self):
        whole = b"abc" + os.urandom(50000) + b"xyz"
        for var in ("http_buffer_req_body", "buffer_http"):
            with self.subTest(var=var):
                wd = self.start_http("echo.py", **{var: "true"})
                with RawConn(wd.port) as c:
                    c.send(b"POST /b HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n"
                           + chunked(whole[:3], whole[3:-3], whole[-3:]))
                    r = c.read_response("POST")
                got = js(r)
                self.assertEqual((r.status, got["framing"], got["length"],
                                  got["sha256"]),
                                 (200, "length", len(whole),
                                  hashlib.sha256(whole).hexdigest()))
                hdrs = dict(lower_pairs(got["headers"]))
                self.assertEqual(hdrs.get("content-length"), str(len(whole)))
                self.assertNotIn("transfer-encoding", hdrs)
                wd.shutdown()


# ------------------------------------------------------------ streaming

class HttpStreamingTest(HttpTest):

    def test_sse_events_reach_client_before_upstream_finishes(self):
        wd = self.start_http("sse.py")
        gate = self.path("more")
        with RawConn(wd.port, timeout=T(10)) as c:
            c.send(build_request("GET", "/events?n=3&gate=%s" % gate,
                                 [("Accept", "text/event-stream")]))
            # the upstream is blocked on the gate after its first event
            self.assertTrue(c.peek_until(b"data: 1\n\n", T(5)),
                            "connection ended before the first event")
            self.assertNotIn(b"data: 2", bytes(c.buf))
            open(gate, "w").close()
            r = c.read_response()
        self.assertEqual((r.status, r.complete, r.body),
                         (200, True, b"data: 1\n\ndata: 2\n\ndata: 3\n\n"), r)
        self.assertEqual(r.header("Content-Type"), "text/event-stream")

    def test_exec_timeout_applies_only_to_head_for_streams(self):
        # the upstream answers at once, then streams for ~1.4 s > 1 s
        wd = self.start_http("sse.py", exec_timeout=dur(1))
        target = "/e?n=3&gap=%s" % (0.7 * T(1))
        for accept in ("text/event-stream", "application/x-ndjson"):
            with self.subTest(accept=accept):
                with RawConn(wd.port, timeout=T(10)) as c:
                    r = c.request("GET", target, [("Accept", accept)])
                self.assertEqual((r.status, r.complete, r.body),
                                 (200, True,
                                  b"data: 1\n\ndata: 2\n\ndata: 3\n\n"), r)
        with self.subTest(accept=None):
            # a plain request: the deadline cuts the body, visibly
            with RawConn(wd.port, timeout=T(10)) as c:
                r = c.request("GET", target)
                self.assertEqual(r.status, 200, r)
                self.assertFalse(r.complete,
                                 "body past exec_timeout ended normally: %r"
                                 % (r,))
                self.assertTrue(r.closed, "connection not closed")

    def test_100MiB_upload_byte_exact_in_constant_memory(self):
        wd = self.start_http("big.py")
        total = 100 << 20
        timeout = T(120)
        c = RawConn(wd.port, timeout=timeout)
        self.addCleanup(c.close)
        sampler = RssSampler(wd.pid)
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % total)
        th, sent, errors = send_in_background(c, total)
        r = c.read_response("POST", timeout=timeout)
        th.join(timeout)
        peak = sampler.stop()
        self.assertEqual(errors, [])
        got = js(r)
        self.assertEqual((r.status, got["framing"], got["length"]),
                         (200, "length", total), r)
        self.assertEqual(got["sha256"], sent.hexdigest())
        if not WRAPPER and not SANITIZED:
            self.assertLess(peak, RSS_LIMIT_KIB,
                            "watchdog VmRSS peaked at %d KiB" % peak)

    def test_100MiB_download_byte_exact_in_constant_memory(self):
        wd = self.start_http("big.py")
        total = 100 << 20
        timeout = T(120)
        expect = hashlib.sha256()
        for block in pattern(total):
            expect.update(block)
        got = hashlib.sha256()
        count = [0]

        def sink(b):
            got.update(b)
            count[0] += len(b)

        sampler = RssSampler(wd.pid)
        with RawConn(wd.port, timeout=timeout) as c:
            c.send(build_request("GET", "/download?n=%d" % total))
            r = c.read_response(sink=sink, timeout=timeout)
        peak = sampler.stop()
        self.assertEqual((r.status, r.complete, count[0]), (200, True, total))
        self.assertEqual(got.hexdigest(), expect.hexdigest())
        if not WRAPPER and not SANITIZED:
            self.assertLess(peak, RSS_LIMIT_KIB,
                            "watchdog VmRSS peaked at %d KiB" % peak)


# ------------------------------------------------------------ errors

class HttpErrorTest(HttpTest):

    def test_refused_upstream_gives_500_internal_empty(self):
        wd = self.start_http("refuser.py")
        self.assertBody(request(wd.port, "GET", "/stop"), b"stopped\n")
        wait_for(lambda: refused(wd.up_port), T(5), "upstream stops listening")
        for method, body in (("GET", None), ("POST", b"payload")):
            with self.subTest(method=method):
                with RawConn(wd.port) as c:
                    r = c.request(method, "/after-stop", body=body)
                self.assertInternalError(r, 500)
        self.assertTrue(wd.alive())

    def test_reset_before_response_gives_500_internal_empty(self):
        wd = self.start_http("refuser.py")
        for method, body in (("GET", None), ("POST", b"payload")):
            with self.subTest(method=method):
                with RawConn(wd.port) as c:
                    r = c.request(method, "/reset", body=body)
                self.assertInternalError(r, 500)
        self.assertBody(request(wd.port, "GET", "/fine"), b"ok\n")

    def test_silent_upstream_gives_504_at_exec_timeout(self):
        wd = self.start_http("silent.py", exec_timeout=dur(1))
        t0 = time.monotonic()
        with RawConn(wd.port, timeout=T(20)) as c:
            r = c.request("GET", "/hang")
        self.assertInternalError(r, 504)
        self.assertLess(time.monotonic() - t0, T(10))

    def test_x_timeout_lowers_the_deadline(self):
        wd = self.start_http("silent.py", exec_timeout=dur(5))
        t0 = time.monotonic()
        with RawConn(wd.port, timeout=T(20)) as c:
            r = c.request("GET", "/hang", [("X-Timeout", "500ms")])
        self.assertInternalError(r, 504)
        self.assertLess(time.monotonic() - t0, T(4),
                        "X-Timeout: 500ms not applied under exec_timeout=5s")

    def test_x_timeout_out_of_range_or_invalid_ignored(self):
        # 0 < value <= exec_timeout only; anything else keeps exec_timeout
        # (a request that hangs past the client's 20 s means it disabled
        # or raised the limit)
        wd = self.start_http("silent.py", exec_timeout=dur(1))
        for value in ("30s", "0s", "-1s", "soon"):
            with self.subTest(x_timeout=value):
                with RawConn(wd.port, timeout=T(20)) as c:
                    r = c.request("GET", "/hang", [("X-Timeout", value)])
                self.assertInternalError(r, 504)

    def test_upstream_dropping_kept_alive_connections_is_retried(self):
        wd = self.start_http("closing.py")
        bodies = []
        with RawConn(wd.port, timeout=T(5)) as c:
            for i in range(20):
                r = c.request("GET", "/n%d" % i)
                self.assertEqual(r.status, 200, "request %d: %r" % (i, r))
                bodies.append(r.body)
        # each answered on a fresh upstream connection
        self.assertEqual(len(set(bodies)), 20, bodies)


# ------------------------------------------------------------ lifecycle

class HttpLifecycleTest(HttpTest):

    STAMP = r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "

    def test_upstream_output_relayed_with_prefixes(self):
        wd = self.start_http("chatty.py")
        wd.wait_log(self.STAMP + r"stdout: chatty says hello on stdout$",
                    stream="stdout")
        wd.wait_log(self.STAMP + r"stdout: chatty second stdout line$",
                    stream="stdout")
        wd.wait_log(self.STAMP + r"stderr: chatty says hello on stderr$",
                    stream="stderr")
        out = [l for l in wd.log_lines("stdout") if "chatty" in l]
        self.assertEqual(len(out), 2, out)
        self.assertIn("hello", out[0])
        self.assertIsNone(wd.find_log("chatty says hello on stdout"),
                          "stdout line relayed to stderr")

    def test_prefix_logs_false_relays_bare_lines(self):
        wd = self.start_http("chatty.py", prefix_logs="false")
        wd.wait_log(r"^chatty says hello on stdout$", stream="stdout")
        wd.wait_log(r"^chatty says hello on stderr$", stream="stderr")

    def test_upstream_exit_reports_503_finishes_inflight_and_exits_1(self):
        wd = self.start_http("crash.py", expect_exit=1)
        started, gate = self.path("started"), self.path("gate")
        slow = InFlight(wd.port, path="/slow?started=%s&gate=%s"
                        % (started, gate), timeout=T(30))
        wait_for(lambda: os.path.exists(started), T(10), "slow request")
        # the upstream process exits; a child of it holds /slow open, so
        # the watchdog has a request in flight and must still be there
        with RawConn(wd.port) as c:
            r = c.request("GET", "/crash?orphan=1")
        self.assertEqual(r.status, 500, r)
        wd.wait_log(r"upstream exited")
        problems = []                # every part checked, all reported
        health = health_status(wd.port)
        if health != 503:
            problems.append("/_/health after the upstream exited, with a "
                            "request in flight: %s, expected 503"
                            % ("connection failed" if health is None
                               else health))
        if os.path.exists(wd.lock_path):
            problems.append("lock file kept")
        if not wd.alive():
            problems.append("exited before the in-flight request finished")
        open(gate, "w").close()
        try:
            r = slow.join()
            if (r.status, r.body) != (200, b"finished\n"):
                problems.append("in-flight request got %r" % (r,))
        except AssertionError as e:
            problems.append("in-flight request: %s" % e)
        rc = wd.wait_exit(T(5))
        if rc != 1:
            problems.append("exit status %s, expected 1" % rc)
        self.assertEqual(problems, [])

    def test_upstream_crash_exits_1(self):
        wd = self.start_http("crash.py", expect_exit=1)
        with RawConn(wd.port) as c:
            r = c.request("GET", "/crash")
        self.assertEqual(r.status, 500, r)
        self.assertEqual(wd.wait_exit(T(5)), 1, wd.log_text())
        self.assertFalse(os.path.exists(wd.lock_path), "lock file kept")

    def test_sigterm_drains_before_upstream_gets_sigterm(self):
        record = self.path("signals")
        wd = self.start_http("signals.py", record, write_timeout=dur(20),
                             exec_timeout=dur(20))
        started, gate = self.path("started"), self.path("gate")
        slow = InFlight(wd.port, path="/slow?started=%s&gate=%s"
                        % (started, gate), timeout=T(30))
        wait_for(lambda: os.path.exists(started), T(10), "slow request")
        wd.signal(signal.SIGTERM)
        wd.wait_log(r"No new connections allowed, draining: 1 requests")
        self.assertFalse(os.path.exists(record) and
                         "SIGTERM" in open(record).read(),
                         "upstream got SIGTERM with a request in flight")
        open(gate, "w").close()
        self.assertBody(slow.join(), b"slow done\n")
        self.assertEqual(wd.wait_exit(T(15)), 0, wd.log_text())
        with open(record) as f:
            self.assertEqual(f.read().split("\n"),
                             ["answering /slow", "SIGTERM", ""])

    def test_upstream_dying_during_the_drain_exits_1(self):
        # SIGTERM, then the upstream crashes while health says 503: the
        # orchestrator still learns of the crash from the exit status.
        wd = self.start_http("echo.py", healthcheck_interval=dur(2),
                             expect_exit=1)
        pid = js(request(wd.port, "GET", "/pid"))["pid"]
        wd.signal(signal.SIGTERM)
        wd.wait_log(r"SIGTERM: no new connections")
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(wd.wait_exit(T(10)), 1, wd.log_text())

    def test_second_sigint_exits_130_at_once(self):
        # Ctrl-C twice: the upstream is killed and the watchdog exits 130
        # now, not after the drain and the upstream's stop grace.
        wd = self.start_http("echo.py", write_timeout=dur(20),
                             exec_timeout=dur(20), expect_exit=130)
        gate, marks = self.path("gate"), self.path("marks")
        os.mkdir(marks)
        slow = InFlight(wd.port, path="/slow?mark=%s&gate=%s"
                        % (marks, gate), timeout=T(30))
        wait_for(lambda: os.listdir(marks), T(10), "slow request")
        wd.signal(signal.SIGINT)
        wd.wait_log(r"No new connections allowed, draining: 1 requests")
        wd.signal(signal.SIGINT)
        self.assertEqual(wd.wait_exit(T(3)), 130, wd.log_text())
        open(gate, "w").close()
        slow.thread.join(T(10))

    def test_sigterm_exits_promptly_once_the_upstream_stops(self):
        # the upstream dies of SIGTERM at once; the watchdog must notice
        # and exit, not sit out its 10 s grace before SIGKILL
        wd = self.start_http("echo.py")
        pid = js(request(wd.port, "GET", "/pid"))["pid"]
        wd.signal(signal.SIGTERM)
        wait_for(lambda: pid_dead(pid), T(5), "upstream %d to exit" % pid)
        self.assertEqual(wd.wait_exit(T(5)), 0,
                         "watchdog still running 5 s after its upstream "
                         "exited on SIGTERM; log:\n" + wd.log_text())

    def test_signals_forwarded_to_upstream(self):
        record = self.path("signals")
        self.check_signals_forwarded(self.start_http("signals.py", record),
                                     record)



# ------------------------------------------------------------ workers

class HttpWorkersTest(HttpTest):

    def start_workers(self, **env):
        """Two workers on ports base and base + 1, both ready; the ports
        are retried when another process holds one of them (a worker
        that cannot bind is restarted forever, and the watchdog's
        readiness probe would connect to the stranger)."""
        for attempt in range(3):
            wd = self.start_http("echo.py", port_arg=False,
                                 pick_port=free_port_pair, http_workers="2",
                                 **env)
            base = wd.up_port
            try:
                # healthy means one worker is ready; wait for both
                for i in (0, 1):
                    wd.wait_log(r"upstream %d ready" % i, timeout=T(5))
                for port in (base, base + 1):
                    got = js(request(port, "GET", "/whoami"))
                    self.assertEqual(got["env_port"], str(port), got)
                    self.assertEqual(proc_stat(got["pid"])[1], wd.pid, got)
            except (AssertionError, OSError):
                if attempt == 2 or "Address already in use" not in \
                        wd.log_text():
                    raise
                wd.expect_exit = ANY_EXIT
                wd.shutdown()
                continue
            return wd, base

    def held_requests(self, wd, n, name):
        """n concurrent requests, all held at the workers until each has
        arrived, then released; returns the answers' JSON."""
        gate, marks = self.path(name + ".gate"), self.path(name + ".marks")
        os.mkdir(marks)
        flights = [InFlight(wd.port, path="/%s%d?gate=%s&mark=%s"
                            % (name, i, gate, marks), timeout=T(30))
                   for i in range(n)]
        try:
            wait_for(lambda: len(os.listdir(marks)) == n, T(10),
                     "%d requests at the workers" % n)
        finally:
            open(gate, "w").close()
        out = []
        for f in flights:
            r = f.join()
            self.assertEqual(r.status, 200, r)
            out.append(js(r))
        return out

    def test_concurrent_requests_spread_over_both_workers(self):
        wd, base = self.start_workers()
        answers = self.held_requests(wd, 20, "w")
        for got in answers:
            self.assertEqual(str(got["port"]), got["env_port"], got)
        ports = [got["port"] for got in answers]
        self.assertEqual(set(ports), {base, base + 1}, ports)
        # fewest in flight first: 20 held requests split about evenly
        self.assertLessEqual(abs(ports.count(base) - ports.count(base + 1)),
                             2, ports)

    def test_killed_worker_restarted_while_others_serve(self):
        wd, base = self.start_workers()
        old = js(request(base + 1, "GET", "/direct"))["pid"]
        os.kill(old, signal.SIGKILL)
        wd.wait_log(r"upstream 1 exited")

        bad = []                     # wait_for swallows exceptions

        def restarted():
            r = request(wd.port, "GET", "/during")
            if r.status != 200 or js(r)["port"] != base:
                bad.append(r)
            if refused(base + 1):
                return False
            return js(request(base + 1, "GET", "/direct"))["pid"] != old
        wait_for(restarted, T(10), "worker on port %d restarted" % (base + 1))
        self.assertEqual(bad, [], "requests during the restart")
        wait_for(lambda: len([l for l in wd.log_lines("stderr")
                              if re.search(r"upstream 1 ready", l)]) == 2,
                 T(5), "the watchdog to see worker 1 ready again")
        self.assertTrue(wd.alive())
        ports = {got["port"] for got in self.held_requests(wd, 4, "after")}
        self.assertEqual(ports, {base, base + 1}, "restarted worker unused")

    def test_restart_kills_what_the_dead_worker_started(self):
        # Left running, a grandchild could hold the worker's port, and
        # the probes would take it for the restarted worker.
        base = free_port_pair()
        port = free_port()
        while base <= port <= base + 1:
            port = free_port()
        wd = self.start(
            mode="http", http_workers="2", port=str(port),
            upstream_url="http://127.0.0.1:%d" % base,
            fprocess="sh -c 'sleep 1000 & exec python3 -B %s -'"
                     % os.path.join(UPSTREAMS, "echo.py"))
        for i in (0, 1):
            wd.wait_log(r"upstream %d ready" % i, timeout=T(5))
        old = js(request(base + 1, "GET", "/direct"))["pid"]
        (sleep,) = children(old)
        os.kill(old, signal.SIGKILL)
        wd.wait_log(r"upstream 1 exited")
        wait_for(lambda: pid_reaped(sleep), T(5),
                 "the dead worker's sleep to be killed and reaped")
        wait_for(lambda: len([l for l in wd.log_lines("stderr")
                              if re.search(r"upstream 1 ready", l)]) == 2,
                 T(10), "worker 1 to be ready again")


# ------------------------------------------------------------ load

class HttpConcurrencyTest(HttpTest):

    def test_200_concurrent_keep_alive_clients(self):
        wd = self.start_http("echo.py")
        n, per = 200, 5
        barrier = threading.Barrier(n)
        failures = []
        ok = [0]
        lock = threading.Lock()

        def client(i):
            try:
                with RawConn(wd.port, timeout=T(30)) as c:
                    barrier.wait(T(30))
                    for j in range(per):
                        target = "/c%d/%d" % (i, j)
                        r = c.request("GET", target)
                        if r.status != 200 or js(r)["target"] != target:
                            raise AssertionError("%s: %r" % (target, r))
                        with lock:
                            ok[0] += 1
            except Exception as e:
                with lock:
                    failures.append("client %d: %r" % (i, e))

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(T(60))
        self.assertEqual(failures[:5], [])
        self.assertEqual(ok[0], n * per)
