"""Log output: spec section 9."""

import re
import signal

from harness import (WatchdogTest, T, fixture, fp, request, sh_fixture)

STAMP = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "


class RequestLogTest(WatchdogTest):

    def test_request_log_line_has_method_uri_status_size_duration(self):
        wd = self.start(fprocess="cat")
        self.assertBody(request(wd.port, "POST", "/echo?x=1", body=b"hello"),
                        b"hello")
        wd.wait_log(r"^%sPOST /echo\?x=1 - 200 - ContentLength: 5B "
                    r"\(\d+\.\d{4}s\)$" % STAMP)

    def test_request_log_size_uses_decimal_units(self):
        wd = self.start(fprocess=fp("python3", fixture("sized_output.py")))
        for size, text in ((1500, "1.5kB"), (12345678, "12.35MB"), (0, "0B"),
                           (512, "512B")):
            r = request(wd.port, "GET", "/s%d" % size)
            self.assertEqual((r.status, len(r.body)), (200, size))
            wd.wait_log(r"GET /s%d - 200 - ContentLength: %s \("
                        % (size, re.escape(text)))

    def test_failed_request_logged_with_500(self):
        wd = self.start(fprocess=sh_fixture("exit_code.sh", "3"))
        self.assertEqual(request(wd.port, "GET", "/boom").status, 500)
        wd.wait_log(r"GET /boom - 500 - ContentLength: ")

    def test_probes_are_not_logged(self):
        wd = self.start(fprocess="cat")
        for path in ("/_/health", "/_/ready"):
            self.assertEqual(request(wd.port, "GET", path).status, 200)
        self.assertBody(request(wd.port, "POST", "/marker", body=b"m"), b"m")
        # the later request's line is there, so earlier ones would be too
        wd.wait_log(r"POST /marker - 200")
        self.assertIsNone(wd.find_log(r"/_/(health|ready)"), wd.log_text())

    def test_kube_probe_requests_are_not_logged(self):
        wd = self.start(fprocess="cat")
        r = request(wd.port, "GET", "/from-kube",
                    headers={"User-Agent": "kube-probe/1.29"})
        self.assertEqual(r.status, 200)
        self.assertBody(request(wd.port, "POST", "/marker", body=b"m"), b"m")
        wd.wait_log(r"POST /marker - 200")
        self.assertIsNone(wd.find_log(r"/from-kube"), wd.log_text())

    def test_log_callid_appends_call_id_or_none(self):
        wd = self.start(fprocess="cat", log_callid="true")
        request(wd.port, "GET", "/with", headers={"X-Call-Id": "abc-123"})
        request(wd.port, "GET", "/without")
        wd.wait_log(r"GET /with - 200 - ContentLength: 0B \(\S+s\) \[abc-123\]$")
        wd.wait_log(r"GET /without - 200 - .* \[none\]$")

    def test_log_call_id_alias(self):
        wd = self.start(fprocess="cat", log_call_id="1")
        request(wd.port, "GET", "/a", headers={"X-Call-Id": "zz9"})
        wd.wait_log(r"GET /a - 200 - .* \[zz9\]$")

    def test_own_messages_are_timestamped(self):
        wd = self.start(fprocess=sh_fixture("stderr_only.sh", "child line"))
        self.assertBody(request(wd.port, "GET", "/"), b"")
        wd.wait_log(r"child line")
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(10)), 0)
        lines = [l for l in wd.log_lines("stderr") if not l.startswith("==")]
        self.assertGreaterEqual(len(lines), 8, lines)
        for line in lines:
            self.assertRegex(line, "^" + STAMP)


class ChildLogTest(WatchdogTest):

    def test_long_stderr_line_split_and_relaying_continues(self):
        wd = self.start(fprocess=fp("python3", fixture("long_stderr.py")),
                        log_buffer_size="100", prefix_logs="false")
        self.assertBody(request(wd.port, "GET", "/"), b"")
        wd.wait_log(r"^tail-without-newline$")
        lines = wd.log_lines("stderr")
        i = lines.index("a" * 100)
        self.assertEqual(lines[i:i + 4], ["a" * 100, "a" * 100, "a" * 50,
                                          "after-long-line"])

    def test_final_stderr_line_without_newline_is_emitted(self):
        wd = self.start(fprocess=fp("python3", fixture("long_stderr.py")))
        self.assertBody(request(wd.port, "GET", "/"), b"")
        wd.wait_log(r"^%sstderr: tail-without-newline$" % STAMP)
        wd.wait_log(r"^%sstderr: a{250}$" % STAMP)

    def test_negative_log_buffer_size_means_unlimited(self):
        wd = self.start(fprocess=fp("python3", fixture("long_stderr.py")),
                        log_buffer_size="-1", prefix_logs="false")
        self.assertBody(request(wd.port, "GET", "/"), b"")
        wd.wait_log(r"^after-long-line$")
        self.assertIn("a" * 250, wd.log_lines("stderr"))

    def test_prefix_logs_parses_go_booleans(self):
        wd = self.start(fprocess=sh_fixture("stderr_only.sh", "gobool-line"),
                        prefix_logs="F")
        self.assertBody(request(wd.port, "GET", "/"), b"")
        wd.wait_log(r"^gobool-line$")
