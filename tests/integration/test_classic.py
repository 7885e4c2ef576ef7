"""mode=classic (classic-watchdog semantics) and D1: spec sections 1,
5.4, 5.5."""

import base64
import json
import signal
import time

from harness import (InFlight, WatchdogTest, RawConn, T, chunked,
                     parse_env, pid_dead, pid_reaped, read_pidfile, request,
                     sh_fixture, wait_for)


def env_value(env, name):
    values = [v for k, v in env if k == name]
    return values[0] if values else None


class ClassicTest(WatchdogTest):

    def classic(self, **env):
        env.setdefault("mode", "classic")
        return self.start(**env)

    def test_allowed_methods_reach_function(self):
        wd = self.classic(fprocess="cat")
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            r = request(wd.port, m, "/", body=b"m-" + m.encode())
            self.assertBody(r, b"m-" + m.encode())

    def test_other_methods_get_405(self):
        wd = self.classic(fprocess="cat")
        for m in ("OPTIONS", "HEAD", "TRACE", "PROPFIND"):
            with RawConn(wd.port) as c:
                r = c.request(m, "/")
            self.assertEqual((r.status, r.body), (405, b""), m)

    def test_content_type_echoed_from_request(self):
        wd = self.classic(fprocess="cat")
        r = request(wd.port, "POST", "/", body=b"\x00\x01",
                    headers={"Content-Type": "application/x-custom"})
        self.assertBody(r, b"\x00\x01")
        self.assertEqual(r.header("Content-Type"), "application/x-custom")

    def test_content_type_sniffed_without_request_type(self):
        wd = self.classic(fprocess="cat")
        cases = [(b"<html><body>hi</body></html>", "text/html; charset=utf-8"),
                 (b"just some text\n", "text/plain; charset=utf-8"),
                 (b"%PDF-1.4 x", "application/pdf"),
                 (b"\x00\x01\x02\x03binary", "application/octet-stream")]
        for body, ctype in cases:
            with RawConn(wd.port) as c:
                r = c.request("POST", "/", body=body)
            self.assertBody(r, body)
            self.assertEqual(r.header("Content-Type"), ctype, body)

    def test_content_type_variable_wins(self):
        wd = self.classic(fprocess="cat", content_type="text/markdown")
        r = request(wd.port, "POST", "/", body=b"<html></html>",
                    headers={"Content-Type": "text/html"})
        self.assertEqual(r.header("Content-Type"), "text/markdown")

    def test_success_has_duration_header(self):
        wd = self.classic(fprocess="cat")
        r = request(wd.port, "POST", "/", body=b"abc")
        self.assertBody(r, b"abc")
        self.assertRegex(r.header("X-Duration-Seconds") or "", r"^\d+\.\d{6}$")

    def test_nonzero_exit_gives_500_with_error_and_output(self):
        wd = self.classic(fprocess=sh_fixture("output_then_exit.sh", "3"))
        r = request(wd.port, "POST", "/", body=b"x")
        self.assertBody(r, b"exit status 3\npartial output\n", 500)
        self.assertIsNone(r.header("X-Duration-Seconds"))

    def test_missing_executable_gives_500(self):
        wd = self.classic(fprocess="nosuch")
        r = request(wd.port, "POST", "/", body=b"x")
        self.assertEqual(r.status, 500)
        self.assertTrue(r.body.startswith(
            b'exec: "nosuch": executable file not found in $PATH\n'), r)

    def test_exec_timeout_gives_408_and_kills_group(self):
        pidfile = self.path("gc.pid")
        wd = self.classic(exec_timeout="1s",
                          fprocess=sh_fixture("grandchild.sh", pidfile))
        r = request(wd.port, "POST", "/", body=b"", timeout=T(20))
        self.assertBody(r, b"Killed process.\n", 408)
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
        (gpid,) = read_pidfile(pidfile, T(5))
        wait_for(lambda: pid_reaped(gpid), T(5), "grandchild gone")

    def test_child_done_before_the_deadline_is_not_timed_out(self):
        # The watchdog is stopped while its child finishes; on SIGCONT the
        # deadline and the child's exit are both due, and the timer may
        # run first. The child is done: 200, not 408.
        wd = self.classic(exec_timeout="1s",
                          fprocess=sh_fixture("wait_release.sh", self.tmp))
        t0 = time.monotonic()
        slow = InFlight(wd.port, timeout=T(20))
        (pid,) = read_pidfile(self.path("started"), T(10))
        wd.signal(signal.SIGSTOP)
        try:
            open(self.path("release"), "w").close()
            wait_for(lambda: pid_dead(pid), T(5), "child exited")
            time.sleep(max(0.0, t0 + 1.5 - time.monotonic()))
        finally:
            wd.signal(signal.SIGCONT)
        self.assertBody(slow.join(), b"released\n")

    def test_combine_output_default_puts_stderr_in_body(self):
        wd = self.classic(fprocess=sh_fixture("stdout_stderr.sh"))
        self.assertBody(request(wd.port, "GET", "/"), b"out\nerr\n")

    def test_combine_output_false_logs_stderr(self):
        wd = self.classic(fprocess=sh_fixture("stdout_stderr.sh"),
                          combine_output="false")
        self.assertBody(request(wd.port, "GET", "/"), b"out\n")
        wd.wait_log(r"stderr: err")

    def test_cgi_env_has_content_length_variants_and_host(self):
        wd = self.classic(fprocess=sh_fixture("env.sh"))
        with RawConn(wd.port) as c:
            r = c.request("POST", "/p?q=1", body=b"12345",
                          host="fn.example:8080",
                          headers=[("X-Foo-Bar", "baz")])
        self.assertEqual(r.status, 200, r)
        env = parse_env(r.body)
        self.assertEqual(env_value(env, "Http_ContentLength"), "5")
        self.assertEqual(env_value(env, "Http_Content_Length"), "5")
        self.assertEqual(env_value(env, "Http_Host"), "fn.example:8080")
        self.assertEqual(env_value(env, "Http_Method"), "POST")
        self.assertEqual(env_value(env, "Http_X_Foo_Bar"), "baz")

    def test_cgi_env_chunked_content_length_is_minus_one(self):
        wd = self.classic(fprocess=sh_fixture("env.sh"))
        with RawConn(wd.port) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: h\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"abc"))
            r = c.read_response("POST")
        env = parse_env(r.body)
        self.assertEqual(env_value(env, "Http_ContentLength"), "-1")

    def test_cgi_headers_false_removes_http_variables(self):
        wd = self.classic(fprocess=sh_fixture("env.sh"), cgi_headers="false")
        r = request(wd.port, "POST", "/p?q=1", body=b"x",
                    headers={"X-Foo": "1"})
        self.assertEqual(r.status, 200, r)
        names = [k for k, _ in parse_env(r.body) if k.startswith("Http_")]
        self.assertEqual(names, [])
        self.assertIn("FWTEST_MARKER", dict(parse_env(r.body)))

    def test_cgi_headers_1_is_false_in_classic(self):
        wd = self.classic(fprocess=sh_fixture("env.sh"), cgi_headers="1")
        r = request(wd.port, "GET", "/")
        names = [k for k, _ in parse_env(r.body) if k.startswith("Http_")]
        self.assertEqual(names, [])

    def test_marshal_request_sends_json(self):
        wd = self.classic(fprocess="cat", marshal_request="true",
                          content_type="application/json")
        body = b"payload \xfe"
        with RawConn(wd.port) as c:
            r = c.request("POST", "/", body=body, headers=[("X-Z", "z")])
        doc = json.loads(r.body)
        self.assertEqual(doc["header"], {"Content-Length": [str(len(body))],
                                         "X-Z": ["z"]})
        self.assertEqual(doc["body"]["raw"], base64.b64encode(body).decode())

    def test_forking_and_wrote_log_lines(self):
        wd = self.classic(fprocess="cat")
        self.assertBody(request(wd.port, "POST", "/", body=b"12345"), b"12345")
        wd.wait_log(r"Forking fprocess\.")
        wd.wait_log(r"Wrote 5 Bytes - Duration: \d+\.\d+s")

    def test_write_debug_copies_output_to_stdout(self):
        wd = self.classic(fprocess="cat", write_debug="true")
        self.assertBody(request(wd.port, "POST", "/", body=b"debug-body-913"),
                        b"debug-body-913")
        wd.wait_log(r"debug-body-913", stream="stdout")

    def test_debug_headers_prints_headers_on_stdout(self):
        wd = self.classic(fprocess="cat", debug_headers="true")
        r = request(wd.port, "POST", "/", body=b"x",
                    headers={"x-thing": "a", "Content-Type": "text/plain"})
        self.assertBody(r, b"x")
        wd.wait_log(r"^\[in\] X-Thing=\[a\]$", stream="stdout")
        wd.wait_log(r"^\[in\] Content-Type=\[text/plain\]$", stream="stdout")
        wd.wait_log(r"^\[out\] X-Duration-Seconds=\[\d+\.\d+\]$",
                    stream="stdout")
        self.assertIsNone(wd.find_log(r"\[in\] Host=", stream="stdout"))

    def test_no_debug_headers_by_default(self):
        wd = self.classic(fprocess="cat")
        self.assertBody(request(wd.port, "POST", "/", body=b"x"), b"x")
        wd.shutdown()
        self.assertIsNone(wd.find_log(r"^\[(in|out)\]", stream="stdout"))

    def test_late_body_gives_400(self):
        wd = self.classic(fprocess="cat", read_timeout="1s")
        with RawConn(wd.port, timeout=T(10)) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                   b"\r\n12345")
            r = c.read_response("POST")
        self.assertEqual(r.status, 400, r)
        self.assertTrue(r.body.endswith(b"\n"), r)

    def test_write_timeout_zero_accepted(self):
        wd = self.classic(fprocess="cat", write_timeout="0")
        self.assertBody(request(wd.port, "POST", "/", body=b"ok"), b"ok")


class ClassicSelectionTest(WatchdogTest):
    """D1: mode unset and a classic-only variable present selects classic."""

    def test_write_debug_present_selects_classic_and_logs_it(self):
        wd = self.start(fprocess="cat", write_debug="false")
        wd.wait_log(r"classic.*write_debug|write_debug.*classic")
        with RawConn(wd.port) as c:
            r = c.request("OPTIONS", "/")
        self.assertEqual(r.status, 405, "classic refuses OPTIONS")

    def test_cgi_headers_present_selects_classic(self):
        wd = self.start(fprocess=sh_fixture("exit_code.sh", "2"),
                        cgi_headers="true")
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b"exit status 2\n", 500)

    def test_explicit_mode_is_never_overridden(self):
        wd = self.start(fprocess="cat", mode="streaming", write_debug="false")
        with RawConn(wd.port) as c:
            r = c.request("OPTIONS", "/")
        self.assertEqual(r.status, 200)
        wd.wait_log(r"Watchdog mode: streaming")

    def test_fprocess_only_stays_streaming(self):
        wd = self.start(fprocess="cat")
        with RawConn(wd.port) as c:
            r = c.request("OPTIONS", "/")
        self.assertEqual(r.status, 200)
