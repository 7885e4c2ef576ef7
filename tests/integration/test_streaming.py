"""mode=streaming (the default): spec sections 5.1, 5.2, 5.5, 11."""

import hashlib
import os
import socket
import threading

from harness import (T, build_request, children, chunked, fixture, fp,
                     parse_env, pid_reaped, proc_stat, proc_status_kib,
                     RawConn, read_pidfile, request, rss_kib,
                     send_in_background, sh_fixture, sha256_stream, wait_for,
                     WatchdogTest)

ALL_BYTES = bytes(range(256)) * 64
# ASan reserves shadow memory and keeps freed blocks: VmData says nothing.
SANITIZED = bool(os.environ.get("FW_SANITIZED"))


def chars_written(pid):
    """wchar of /proc/<pid>/io: bytes the process has written so far."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


class StreamingEchoTest(WatchdogTest):

    def setUp(self):
        super().setUp()
        self.wd = self.start(fprocess="cat")

    def test_body_echoed_byte_exact_through_cat(self):
        r = request(self.wd.port, "POST", "/", body=ALL_BYTES)
        self.assertBody(r, ALL_BYTES)
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertIsNone(r.header("X-Duration-Seconds"))

    def test_every_response_has_a_date_header(self):
        r = request(self.wd.port, "POST", "/", body=b"x")
        self.assertRegex(r.header("Date") or "",
                         r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                         r"\d\d:\d\d:\d\d GMT$")

    def test_request_without_body_gives_child_immediate_eof(self):
        r = request(self.wd.port, "GET", "/")
        self.assertBody(r, b"")

    def test_large_body_streamed_byte_exact(self):
        total = 100 << 20
        timeout = T(120)
        c = RawConn(self.wd.port, timeout=timeout)
        self.addCleanup(c.close)
        c.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % total)
        th, sent, errors = send_in_background(c, total)
        got = hashlib.sha256()
        count = [0]

        def sink(b):
            got.update(b)
            count[0] += len(b)

        r = c.read_response("POST", sink=sink, timeout=timeout)
        th.join(timeout)
        self.assertEqual(errors, [])
        self.assertEqual((r.status, r.complete, count[0]), (200, True, total))
        self.assertEqual(got.hexdigest(), sent.hexdigest())

    def test_back_pressure_bounds_memory_when_client_does_not_read(self):
        # The client sends 64 MiB through cat but reads nothing: the
        # watchdog must stop reading instead of buffering (spec 5.2).
        total = 64 << 20
        rss0 = rss_kib(self.wd.pid)
        c = RawConn(self.wd.port, timeout=T(60))
        self.addCleanup(c.close)
        c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % total)
        progress = [0]
        errors = []

        def sender():
            try:
                for block in sha256_stream(total, block=65536):
                    c.sock.sendall(block)
                    progress[0] += len(block)
            except Exception as e:
                errors.append(e)

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        samples = []

        def stalled():
            samples.append(progress[0])
            return (progress[0] >= total or
                    (len(samples) >= 10 and samples[-10] == samples[-1]))

        wait_for(stalled, T(30), "sender to stall or finish", interval=0.1)
        grown = rss_kib(self.wd.pid) - rss0
        self.assertLess(progress[0], total, "64 MiB accepted unread")
        self.assertLess(grown, 24 << 10, "RSS grew by %d KiB" % grown)
        got = [0]

        def sink(b):
            got[0] += len(b)

        r = c.read_response("POST", sink=sink)
        th.join(T(60))
        self.assertEqual((r.status, r.complete, got[0], errors),
                         (200, True, total, []))

    def test_chunked_request_body_is_decoded(self):
        with RawConn(self.wd.port) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n"
                   + chunked(b"hello ", b"chunked ", b"x" * 5000, b"world"))
            r = c.read_response("POST")
        self.assertBody(r, b"hello chunked " + b"x" * 5000 + b"world")

    def test_expect_100_continue_answered_before_body(self):
        with RawConn(self.wd.port) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   b"Content-Length: 5\r\n\r\n")
            interim = c.read_response("POST")
            self.assertTrue(interim.raw_head.startswith(
                b"HTTP/1.1 100 Continue\r\n"), interim.raw_head)
            c.send(b"hello")
            r = c.read_response("POST")
        self.assertBody(r, b"hello")

    def test_head_request_has_no_body(self):
        with RawConn(self.wd.port) as c:
            r = c.request("HEAD", "/")
            self.assertEqual((r.status, r.body), (200, b""))
            # Any stray body bytes would corrupt the next response.
            r2 = c.request("POST", "/", body=b"after head")
        self.assertBody(r2, b"after head")

    def test_http10_request_answered_and_closed(self):
        with RawConn(self.wd.port) as c:
            c.send(b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
            r = c.read_response("POST")
            self.assertBody(r, b"abc")
            self.assertFalse(r.chunked, "no chunked framing for HTTP/1.0")
            self.assertTrue(r.closed or c.wait_closed(T(5)),
                            "HTTP/1.0 without keep-alive must be closed")

    def test_keep_alive_serves_two_requests_on_one_socket(self):
        with RawConn(self.wd.port) as c:
            r1 = c.request("POST", "/one", body=b"first")
            self.assertBody(r1, b"first")
            self.assertFalse(r1.closed)
            r2 = c.request("POST", "/two", body=b"second")
        self.assertBody(r2, b"second")

    def test_connection_close_from_client_is_honoured(self):
        with RawConn(self.wd.port) as c:
            r = c.request("POST", "/", headers=[("Connection", "close")],
                          body=b"bye")
            self.assertBody(r, b"bye")
            self.assertTrue(r.closed or c.wait_closed(T(5)))

    def test_pipelined_requests_answered_in_order(self):
        bodies = [b"one", b"two" * 1000, b"three"]
        with RawConn(self.wd.port) as c:
            c.send(b"".join(build_request("POST", "/%d" % i, body=b)
                            for i, b in enumerate(bodies)))
            got = [c.read_response("POST") for _ in bodies]
        self.assertEqual([(r.status, r.body) for r in got],
                         [(200, b) for b in bodies])

    def test_request_split_at_every_byte_offset(self):
        raw = (b"POST /split?q=1 HTTP/1.1\r\nHost: x\r\nX-Long: " + b"v" * 40 +
               b"\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked(b"abc", b"defgh"))
        for i in range(1, len(raw)):
            with RawConn(self.wd.port) as c:
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.send(raw[:i])
                c.send(raw[i:])
                r = c.read_response("POST")
            self.assertEqual((r.status, r.body), (200, b"abcdefgh"),
                             "split at %d: %r" % (i, r))

    def test_fifty_concurrent_requests_all_answered_correctly(self):
        results = {}

        def one(i):
            body = ("request %d " % i).encode() * (i + 1)
            try:
                r = request(self.wd.port, "POST", "/c%d" % i, body=body,
                            timeout=T(30))
                results[i] = (r.status, r.body == body)
            except Exception as e:
                results[i] = repr(e)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(T(60))
        self.assertEqual(results, {i: (200, True) for i in range(50)})

    def test_non_canonical_path_passed_to_function(self):
        with RawConn(self.wd.port) as c:
            r = c.request("POST", "//a/./b/../c", body=b"path")
        self.assertBody(r, b"path")


class StreamingContentTypeTest(WatchdogTest):

    def test_content_type_override(self):
        wd = self.start(fprocess="cat", content_type="text/plain")
        r = request(wd.port, "POST", "/", body=b"x",
                    headers={"Content-Type": "application/json"})
        self.assertBody(r, b"x")
        self.assertEqual(r.header("Content-Type"), "text/plain")

    def test_error_response_uses_content_type(self):
        wd = self.start(fprocess=sh_fixture("exit_code.sh", "3"),
                        content_type="text/csv")
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b"exit status 3", 500)
        self.assertEqual(r.header("Content-Type"), "text/csv")


class CgiEnvironmentTest(WatchdogTest):

    def setUp(self):
        super().setUp()
        self.wd = self.start(fprocess=sh_fixture("env.sh"),
                             Http_Method="forged-by-environment")

    def env_of(self, method, target, headers=(), body=None, raw=None):
        with RawConn(self.wd.port) as c:
            if raw is not None:
                c.send(raw)
                r = c.read_response(method)
            else:
                r = c.request(method, target, headers=headers, body=body)
        self.assertEqual(r.status, 200, r)
        return parse_env(r.body)

    def one(self, env, name):
        values = [v for k, v in env if k == name]
        self.assertLessEqual(len(values), 1, "%s set twice: %r"
                             % (name, values))
        return values[0] if values else None

    def test_method_path_query_and_headers(self):
        env = self.env_of("POST", "/a%20b/c?x=1&y=%20", body=b"12345",
                          headers=[("x-FOO-bar", "1")])
        self.assertEqual(self.one(env, "Http_Method"), "POST")
        self.assertEqual(self.one(env, "Http_Path"), "/a b/c")
        self.assertEqual(self.one(env, "Http_Query"), "x=1&y=%20")
        self.assertEqual(self.one(env, "Http_X_Foo_Bar"), "1")
        self.assertEqual(self.one(env, "Http_Content_Length"), "5")
        self.assertIsNone(self.one(env, "Http_Transfer_Encoding"))

    def test_no_query_variable_when_query_empty(self):
        for target in ("/p", "/p?"):
            env = self.env_of("GET", target)
            self.assertEqual(self.one(env, "Http_Path"), "/p")
            self.assertIsNone(self.one(env, "Http_Query"), target)

    def test_cgi_set_overrides_watchdog_environment(self):
        env = self.env_of("DELETE", "/x")
        self.assertEqual(self.one(env, "Http_Method"), "DELETE")
        self.assertEqual(self.one(env, "FWTEST_MARKER"), self.tmp)

    def test_headers_cannot_forge_computed_variables(self):
        env = self.env_of("GET", "/real", headers=[
            ("Method", "EVIL"), ("Path", "/evil"), ("Query", "q=evil"),
            ("ContentLength", "99"), ("X-Ok", "yes")])
        self.assertEqual(self.one(env, "Http_Method"), "GET")
        self.assertEqual(self.one(env, "Http_Path"), "/real")
        self.assertIsNone(self.one(env, "Http_Query"))
        self.assertIsNone(self.one(env, "Http_ContentLength"))
        self.assertIsNone(self.one(env, "Http_Host"))
        self.assertEqual(self.one(env, "Http_X_Ok"), "yes")

    def test_repeated_header_gives_first_value(self):
        env = self.env_of("GET", "/", headers=[("X-Dup", "first"),
                                               ("X-Dup", "second")])
        self.assertEqual(self.one(env, "Http_X_Dup"), "first")

    def test_chunked_request_sets_transfer_encoding_not_length(self):
        env = self.env_of("POST", "/", raw=b"POST / HTTP/1.1\r\nHost: x\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n"
                          + chunked(b"abc"))
        self.assertEqual(self.one(env, "Http_Transfer_Encoding"), "chunked")
        self.assertIsNone(self.one(env, "Http_Content_Length"))


class StreamingFailureTest(WatchdogTest):

    def test_nonzero_exit_before_output_gives_500(self):
        wd = self.start(fprocess=sh_fixture("exit_code.sh", "3"))
        r = request(wd.port, "POST", "/", body=b"in")
        self.assertBody(r, b"exit status 3", 500)
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")

    def test_child_killed_by_signal_gives_500(self):
        wd = self.start(fprocess=sh_fixture("kill_self.sh", "TERM"))
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b"signal: terminated", 500)

    def test_missing_executable_gives_500_not_found(self):
        wd = self.start(fprocess="nosuch")
        r = request(wd.port, "POST", "/", body=b"x")
        self.assertBody(r, b'exec: "nosuch": executable file not found in $PATH',
                        500)

    def test_non_executable_file_gives_500_permission_denied(self):
        path = self.path("not-executable")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(path, 0o644)
        wd = self.start(fprocess=path)
        r = request(wd.port, "GET", "/")
        self.assertBody(r, ("fork/exec %s: permission denied" % path).encode(),
                        500)

    def test_exec_timeout_kills_grandchildren(self):
        pidfile = self.path("grandchild.pid")
        wd = self.start(fprocess=sh_fixture("grandchild.sh", pidfile),
                        exec_timeout="1s")
        r = request(wd.port, "POST", "/", body=b"", timeout=T(20))
        self.assertBody(r, b"signal: killed", 500)
        (gpid,) = read_pidfile(pidfile, T(5))
        wait_for(lambda: pid_reaped(gpid), T(5), "grandchild %d gone" % gpid)

    def test_failure_after_output_truncates_response(self):
        release = self.path("release")
        wd = self.start(fprocess=sh_fixture("output_pause_exit.sh", release))
        with RawConn(wd.port) as c:
            c.send(build_request("GET", "/"))
            c.peek_until(b"partial\n", T(10))
            open(release, "w").close()
            r = c.read_response("GET")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body.startswith(b"partial\n"), r)
            self.assertFalse(r.complete, "a failed stream must not end"
                             " cleanly: %r" % r)
            self.assertTrue(r.closed or c.wait_closed(T(5)))


class StreamingChildTest(WatchdogTest):

    def test_response_starts_before_child_exits(self):
        flag = self.path("flag")
        wd = self.start(fprocess=sh_fixture("two_phase.sh", flag))
        with RawConn(wd.port) as c:
            c.send(build_request("GET", "/"))
            # The child prints "second" and exits only after we saw "first".
            c.peek_until(b"first\n", T(10))
            open(flag, "w").close()
            r = c.read_response("GET")
        self.assertBody(r, b"first\nsecond\n")

    def test_child_ignoring_stdin_still_answers(self):
        wd = self.start(fprocess="echo hi")
        body = b"z" * (8 << 20)
        c = RawConn(wd.port, timeout=T(30))
        self.addCleanup(c.close)
        c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % len(body))

        def sender():
            try:
                c.sock.sendall(body)
            except OSError:
                pass        # the server may close once it has answered

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        r = c.read_response("POST")
        self.assertBody(r, b"hi\n")
        th.join(T(30))
        self.assertBody(request(wd.port, "POST", "/", body=b"x"), b"hi\n")

    def test_unread_body_does_not_break_keep_alive(self):
        # The child exits without reading a 1 MiB body. The server must
        # either discard the rest and keep the connection usable, or
        # announce "Connection: close" - never close it silently.
        wd = self.start(fprocess="echo hi")
        with RawConn(wd.port) as c:
            r = c.request("POST", "/", body=b"z" * (1 << 20))
            self.assertBody(r, b"hi\n")
            if (r.header("Connection") or "").lower() == "close":
                self.assertTrue(r.closed or c.wait_closed(T(5)))
                return
            r2 = c.request("POST", "/", body=b"next")
        self.assertBody(r2, b"hi\n")

    def test_stderr_only_child_gives_empty_200_and_logs_line(self):
        wd = self.start(fprocess=sh_fixture("stderr_only.sh",
                                            "stderr-marker-7731"))
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b"")
        wd.wait_log(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d stderr: "
                    r"stderr-marker-7731$")

    def test_stderr_without_prefix_when_prefix_logs_false(self):
        wd = self.start(fprocess=sh_fixture("stderr_only.sh", "bare-line-42"),
                        prefix_logs="false")
        self.assertBody(request(wd.port, "GET", "/"), b"")
        wd.wait_log(r"^bare-line-42$")

    def test_client_disconnect_mid_body_kills_child(self):
        pidfile = self.path("child.pid")
        wd = self.start(fprocess=sh_fixture("pid_then_sleep.sh", pidfile))
        c = RawConn(wd.port)
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
               b"\r\n0123456789")
        (pid,) = read_pidfile(pidfile, T(10))
        c.close()
        wait_for(lambda: pid_reaped(pid), T(5), "child %d killed" % pid)
        self.assertEqual(request(wd.port, "GET", "/_/health").status, 200)

    def test_client_disconnect_while_waiting_for_output_kills_child(self):
        pidfile = self.path("child.pid")
        wd = self.start(fprocess=sh_fixture("pid_then_sleep.sh", pidfile))
        c = RawConn(wd.port)
        c.send(build_request("GET", "/"))
        (pid,) = read_pidfile(pidfile, T(10))
        c.close()
        wait_for(lambda: pid_reaped(pid), T(5), "child %d killed" % pid)

    def test_descendant_holding_stdout_does_not_hold_response(self):
        pidfile = self.path("gc.pid")
        wd = self.start(fprocess=sh_fixture("holds_stdout.sh", pidfile))
        r = request(wd.port, "GET", "/", timeout=T(10))
        self.assertBody(r, b"before\n")
        (gpid,) = read_pidfile(pidfile, T(5))
        wait_for(lambda: pid_reaped(gpid), T(5), "grandchild %d killed" % gpid)

    def test_orphaned_descendant_is_reaped_by_watchdog(self):
        pidfile = self.path("orphan.pid")
        wd = self.start(fprocess=sh_fixture("orphan.sh", pidfile))
        self.assertBody(request(wd.port, "GET", "/"), b"ok\n")
        shpid, opid = read_pidfile(pidfile, T(5))
        strangers = []

        def gone():
            st = proc_stat(opid)
            if st is None:
                return True
            if st[1] not in (shpid, wd.pid):
                strangers.append(st[1])
                return True
            return False

        # the orphan sleeps 1 s; the watchdog must adopt and reap it
        wait_for(gone, T(10), "orphan %d reaped" % opid)
        self.assertEqual(strangers, [], "orphan adopted by another process")

    def test_fprocess_quoting_python_one_liner(self):
        wd = self.start(fprocess="python3 -c 'print(1)'")
        self.assertBody(request(wd.port, "POST", "/", body=b"ignored"), b"1\n")


class StreamingSmallWritesTest(WatchdogTest):

    def test_small_writes_to_non_reading_client_keep_memory_bounded(self):
        # A function flushing 100-byte lines to a client that reads
        # nothing: back-pressure counts queued bytes, so each queued
        # write must hold about its own size, not a whole read block.
        # One line per 20 us lets the watchdog read them one at a time.
        lines = 200000                      # 20 MB, far past every buffer
        wd = self.start(fprocess=fp("python3", fixture("small_lines.py"),
                                    "20"))
        base = proc_status_kib(wd.wd_pid, "VmData")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        s.connect(("127.0.0.1", wd.port))
        s.sendall(build_request("GET", "/lines%d" % lines))
        (child,) = wait_for(lambda: children(wd.wd_pid), T(10),
                            "the function to start")
        peak = [base]
        last = [None]

        def stalled():
            # sampled until the function blocks on its full pipe
            peak[0] = max(peak[0], proc_status_kib(wd.wd_pid, "VmData"))
            n = chars_written(child)
            done, last[0] = n > 0 and n == last[0], n
            return done

        wait_for(stalled, T(30), "the function to block", interval=0.5)
        self.assertTrue(children(wd.wd_pid), "the function ran to the end:"
                        " its output was buffered, not back-pressured")
        if not SANITIZED:
            self.assertLess(peak[0] - base, 64 << 10,
                            "VmData grew from %d to %d KiB"
                            % (base, peak[0]))
        s.close()
        wait_for(lambda: not children(wd.wd_pid), T(10),
                 "the function to be killed once the client left")
        self.assertBody(request(wd.port, "GET", "/lines2"), b"x" * 99 +
                        b"\n" + b"x" * 99 + b"\n")
