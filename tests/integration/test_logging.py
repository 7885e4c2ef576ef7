"""Log output: spec section 9, and issue #6: the access log switch
(log_requests), log_format=json, whole lines from many children at once,
and a stalled log reader that must not stall requests."""

import json
import os
import re
import signal
import subprocess
import threading

import harness
from harness import (WatchdogTest, T, fixture, fp, free_port, request,
                     sh_fixture, wait_for)

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


def py(code):
    """fprocess running a Python snippet."""
    return fp("python3", "-c", code)


# The child of ManyChildrenTest: the request path names its lines. Each
# line goes out in three writes, so the watchdog reads it in pieces and
# must join them.
LONG_LINES = r"""
import os
name = os.environ["Http_Path"].strip("/")
for i in range(%(lines)d):
    head = "%%s-%%d:" %% (name, i)
    line = (head + name[-1] * %(length)d)[:%(length)d] + "\n"
    data = line.encode()
    for at in range(0, len(data), 1000):
        os.write(2, data[at:at + 1000])
"""


def long_line(name, i, length):
    head = "%s-%d:" % (name, i)
    return (head + name[-1] * length)[:length]


class AccessLogTest(WatchdogTest):

    def _requests_then_exit(self, wd, paths):
        for path in paths:
            self.assertBody(request(wd.port, "POST", path, body=b"x"), b"x")
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(10)), 0)

    def test_log_requests_false_turns_the_access_log_off(self):
        for value in ("false", "0"):
            with self.subTest(log_requests=value):
                wd = self.start(fprocess="cat", log_requests=value)
                self._requests_then_exit(wd, ["/quiet-a", "/quiet-b"])
                # exit flushed every line: none of them is an access line
                self.assertIsNotNone(wd.find_log(r"Exiting\. Active"))
                self.assertIsNone(wd.find_log(r"/quiet-"), wd.log_text())

    def test_request_the_client_abandons_is_logged_with_499(self):
        pidfile = self.path("child.pid")
        wd = self.start(fprocess=sh_fixture("pid_then_sleep.sh", pidfile),
                        log_format="json")
        c = harness.RawConn(wd.port)
        c.send(harness.build_request("POST", "/gone", body=b"abc"))
        harness.read_pidfile(pidfile, T(10))
        c.close()
        line = wd.wait_log(r'"path":"/gone"')
        obj = json.loads(line)
        self.assertEqual((obj["status"], obj["bytes_in"], obj["bytes_out"]),
                         (499, 3, 0), obj)

    def test_access_log_is_on_by_default(self):
        wd = self.start(fprocess="cat")
        self._requests_then_exit(wd, ["/loud"])
        self.assertIsNotNone(wd.find_log(
            r"POST /loud - 200 - ContentLength: 1B \(\d+\.\d{4}s\)$"),
            wd.log_text())


class JsonLogTest(WatchdogTest):

    def json_lines(self, wd, stream="stderr"):
        """Every line of stream, each parsed; fails on one that is not a
        JSON object."""
        out = []
        for line in wd.log_lines(stream):
            if harness.WRAPPER and line.startswith("=="):
                continue                 # valgrind's own
            try:
                obj = json.loads(line)
            except ValueError as e:
                self.fail("not JSON (%s): %r" % (e, line))
            self.assertIsInstance(obj, dict, line)
            self.assertRegex(obj.get("time", ""),
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            out.append(obj)
        return out

    def test_json_lines_parse_and_carry_their_fields(self):
        child = py(r"""
import os, sys
os.write(2, b'quote " backslash \\ tab \t bell \x07 end\n')
os.write(2, b'bad utf-8 \xff\xc3 and good \xc3\xa9\n')
os.write(2, b'L' * 3000 + b'\n')
os.write(2, b'no newline at the end')
sys.stdout.write("out")
""")
        wd = self.start(fprocess=child, log_format="json")
        self.assertBody(request(wd.port, "POST", "/j?a=\"1\"", body=b"12345",
                                headers={"X-Call-Id": "call-7"}), b"out")
        self.assertBody(request(wd.port, "GET", "/n"), b"out")
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(10)), 0)
        objs = self.json_lines(wd)
        own = [o for o in objs if "level" in o and "method" not in o]
        relayed = [o for o in objs if "stream" in o]
        access = [o for o in objs if "method" in o]
        self.assertEqual(len(own) + len(relayed) + len(access), len(objs))
        self.assertTrue(any(o["msg"] == "Listening on port: %d" % wd.port
                            and o["level"] == "info" for o in own), own)
        self.assertEqual({o["stream"] for o in relayed}, {"stderr"})
        msgs = [(o["msg"], o.get("call_id")) for o in relayed]
        for want in ('quote " backslash \\ tab \t bell \x07 end',
                     "bad utf-8 \ufffd\ufffd and good \u00e9",
                     "L" * 3000, "no newline at the end"):
            # once from each request; the first one's carry its call id
            self.assertEqual(msgs.count((want, "call-7")), 1, (want, msgs))
            self.assertEqual(msgs.count((want, None)), 1, (want, msgs))
        first = next(o for o in access if o["path"] == '/j?a="1"')
        self.assertEqual(
            {k: first[k] for k in ("level", "method", "status", "bytes_in",
                                   "bytes_out", "call_id")},
            {"level": "info", "method": "POST", "status": 200,
             "bytes_in": 5, "bytes_out": 3, "call_id": "call-7"})
        self.assertIsInstance(first["duration_seconds"], float)
        self.assertRegex(first["msg"],
                         r'^POST /j\?a="1" - 200 - ContentLength: 3B ')
        second = next(o for o in access if o["path"] == "/n")
        self.assertNotIn("call_id", second)
        self.assertEqual((second["bytes_in"], second["status"]), (0, 200))

    def test_json_relays_http_upstream_stdout_on_stdout(self):
        up = free_port()
        wd = self.start(mode="http", log_format="json",
                        upstream_url="http://127.0.0.1:%d" % up,
                        fprocess=fp("python3", "-B", os.path.join(
                            harness.HERE, "upstreams", "chatty.py"),
                            str(up)))
        wait_for(lambda: len(wd.log_lines("stdout")) >= 2, T(10),
                 "two stdout lines")
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(20)), 0)
        out = self.json_lines(wd, "stdout")
        self.assertEqual([(o["stream"], o["msg"]) for o in out],
                         [("stdout", "chatty says hello on stdout"),
                          ("stdout", "chatty second stdout line")])
        self.assertIn(("stderr", "chatty says hello on stderr"),
                      [(o.get("stream"), o["msg"])
                       for o in self.json_lines(wd)])

    def test_unknown_log_format_stops_the_start(self):
        wd = self.start(fprocess="cat", log_format="xml", wait=False,
                        expect_exit=1)
        self.assertEqual(wd.wait_exit(T(10)), 1)
        self.assertIsNotNone(wd.find_log(r"log_format.*xml"), wd.log_text())

    def test_text_is_the_default_format(self):
        wd = self.start(fprocess="cat", log_format="text")
        self.assertBody(request(wd.port, "POST", "/t", body=b"t"), b"t")
        wd.wait_log(r"^%sPOST /t - 200 - ContentLength: 1B " % STAMP)


class ExitTest(WatchdogTest):

    def test_fatal_error_is_printed_before_exit(self):
        for fmt in ("text", "json"):
            with self.subTest(log_format=fmt):
                wd = self.start(mode="static", log_format=fmt,
                                static_path=self.path("missing"),
                                wait=False, expect_exit=1)
                self.assertEqual(wd.wait_exit(T(10)), 1)
                self.assertIsNotNone(
                    wd.find_log(r"static_path: cannot open .*missing"),
                    wd.log_text())


class ManyChildrenTest(WatchdogTest):

    CHILDREN = 50
    LINES = 6
    LENGTH = 3000

    def test_long_lines_of_fifty_concurrent_children_come_out_whole(self):
        code = LONG_LINES % {"lines": self.LINES, "length": self.LENGTH}
        wd = self.start(fprocess=py(code))
        names = ["r%02d" % i for i in range(self.CHILDREN)]
        results = {}
        start = threading.Barrier(self.CHILDREN)

        def one(name):
            start.wait(T(30))
            results[name] = request(wd.port, "GET", "/" + name,
                                    timeout=T(60)).status
        threads = [threading.Thread(target=one, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(T(90))
        self.assertEqual(results, {n: 200 for n in names})
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(20)), 0)
        want = {long_line(n, i, self.LENGTH)
                for n in names for i in range(self.LINES)}
        rx = re.compile(r"^%sstderr: (.*)$" % STAMP)
        seen = []
        for line in wd.log_lines("stderr"):
            m = rx.match(line)
            if m:
                self.assertIn(m.group(1), want,
                              "a line cut or mixed: %r" % line[:200])
                seen.append(m.group(1))
        self.assertEqual(len(seen), len(want))
        self.assertEqual(set(seen), want)


class StalledReaderTest(WatchdogTest):
    """The watchdog's stdout and stderr go to a pipe nobody reads."""

    def start_unread(self, **env):
        """Starts a watchdog whose stdout and stderr go to a pipe that is
        never read; returns (process, port). Cleanup kills it."""
        r, w = os.pipe()
        e = self.base_env(**env)
        proc = subprocess.Popen(harness.WRAPPER + [harness.BINARY], env=e,
                                stdin=subprocess.DEVNULL, stdout=w,
                                stderr=w, start_new_session=True)
        os.close(w)

        def cleanup():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(T(10))
            os.close(r)
        self.addCleanup(cleanup)
        port = int(e["port"])

        def healthy():
            if proc.poll() is not None:
                self.fail("watchdog exited with %s" % proc.returncode)
            with harness.RawConn(port, timeout=T(2)) as c:
                return c.request("GET", "/_/health").status == 200
        wait_for(healthy, T(10), "/_/health 200")
        return proc, port

    def test_stalled_log_reader_does_not_stall_requests(self):
        # each request logs ~1 MiB: the pipe (64 KiB) is full after the
        # first, the log queue soon after; the rest is dropped
        child = py("import sys\n"
                   "for i in range(1024):\n"
                   "    sys.stderr.write('%04d' % i + 'z' * 1019 + '\\n')\n"
                   "sys.stdout.write('ok')")
        proc, port = self.start_unread(fprocess=child)
        for i in range(6):
            r = request(port, "GET", "/r%d" % i, timeout=T(10))
            self.assertBody(r, b"ok")
        with harness.RawConn(port, timeout=T(5)) as c:
            self.assertEqual(c.request("GET", "/_/health").status, 200)
        # exit flushes for a bounded time, then gives up on the reader
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(T(15)), 0)
