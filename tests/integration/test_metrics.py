"""Metrics on metrics_port (spec 3 and 10, issue #6): GET /metrics in the
Prometheus text format (checked by promtool), counts that move with each
kind of request (200, 500, 429, timeout, client abort) in every fork
mode and in http mode, metrics_port=0, a taken metrics_port, and the
metrics listener's independence from function requests and the drain."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

from harness import (T, WRAPPER, build_request, dur, free_port, InFlight,
                     RawConn, request, sh_fixture, wait_for, WatchdogTest)
from test_http import HttpTest

# CI installs promtool (Makefile DEV_PKGS): missing there is a failure.
IN_CI = os.environ.get("CI") == "true"
PROMTOOL = shutil.which("promtool")


def scrape(port, method="GET", path="/metrics"):
    """The exposition text of a watchdog (asserts 200)."""
    r = request(port, method, path)
    if r.status != 200:
        raise AssertionError("%s %s on the metrics port: %r"
                             % (method, path, r))
    return r.body.decode()


def parse(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.split("\n"):
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def listening_ports(pid):
    """TCP ports the process listens on (from /proc: its socket inodes
    in LISTEN state)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for name in os.listdir(fd_dir):
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(
                os.path.join(fd_dir, name)))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                rows = f.read().split("\n")[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


class MetricsBase(WatchdogTest):

    def start_metrics(self, **env):
        """Starts a watchdog with metrics on a free port (wd.mport),
        retrying when another process took that port meanwhile."""
        for attempt in range(3):
            mport = free_port()
            wd = self.start(metrics_port=mport, **env)
            wd.mport = mport
            if wd.find_log(r"metrics_port: cannot listen") is None:
                wd.wait_log(r"Metrics listening on port: %d$" % mport)
                return wd
        raise AssertionError("metrics_port taken three times")

    def slow_fprocess(self):
        """wait_release.sh: /slow waits for self.path("release"), made at
        the latest when the test ends (so a failure does not wait)."""
        self.addCleanup(lambda: open(self.path("release"), "w").close())
        return sh_fixture("wait_release.sh", self.tmp)

    def sample(self, wd, series):
        return parse(scrape(wd.mport)).get(series, 0)

    def wait_sample(self, wd, series, value):
        wait_for(lambda: self.sample(wd, series) == value, T(10),
                 "%s == %s" % (series, value))

    def check_promtool(self, text):
        if PROMTOOL is None:
            if IN_CI:
                self.fail("promtool not installed (Debian package "
                          "prometheus; make deps-dev installs it)")
            self.skipTest("promtool not installed (make deps-dev)")
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=T(30))
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s\n"
                         "exposition:\n%s" % (p.stdout.decode(), text))


class MetricsTest(MetricsBase):
    """Each kind of function request moves its counts; run in every fork
    mode."""

    MODE = "streaming"
    TIMEOUT_STATUS = 500            # a child killed before any output

    def test_exposition_passes_promtool(self):
        wd = self.start_metrics(mode=self.MODE, exec_timeout=dur(1),
                                fprocess=self.slow_fprocess())
        self.assertEqual(request(wd.port, "POST", "/", body=b"x").status, 200)
        request(wd.port, "PROPFIND", "/")
        request(wd.port, "GET", "/_/health")
        text = scrape(wd.mport)
        self.assertIn("\nhttp_requests_total{", text)
        self.check_promtool(text)

    def test_a_200_counts_its_code_method_duration_child_and_bytes(self):
        wd = self.start_metrics(mode=self.MODE, fprocess="cat")
        before = parse(scrape(wd.mport))
        self.assertNotIn('http_requests_total{code="200",method="post"}',
                         before)
        self.assertEqual(before["http_requests_in_flight"], 0)
        r = request(wd.port, "POST", "/", body=b"hello")
        self.assertBody(r, b"hello")
        m = parse(scrape(wd.mport))
        self.assertEqual(m['http_requests_total{code="200",method="post"}'], 1)
        self.assertEqual(m['http_request_duration_seconds_count'
                           '{code="200",method="post"}'], 1)
        self.assertEqual(m['http_request_duration_seconds_bucket'
                           '{code="200",method="post",le="+Inf"}'], 1)
        self.assertEqual(m["http_requests_in_flight"], 0)
        self.assertEqual(m["fwatchdog_children_started_total"], 1)
        self.assertEqual(m["fwatchdog_child_spawn_seconds_count"], 1)
        self.assertEqual(m["fwatchdog_request_bytes_total"], 5)
        self.assertEqual(m["fwatchdog_response_bytes_total"], 5)
        # the child is reaped around the response: wait for its count
        self.wait_sample(wd, 'fwatchdog_children_exited_total{class="0"}', 1)

    def test_a_failing_fprocess_counts_500_and_a_nonzero_exit(self):
        wd = self.start_metrics(mode=self.MODE,
                                fprocess=sh_fixture("exit_code.sh", "3"))
        self.assertEqual(request(wd.port, "GET", "/").status, 500)
        m = parse(scrape(wd.mport))
        self.assertEqual(m['http_requests_total{code="500",method="get"}'], 1)
        self.assertEqual(m['fwatchdog_children_exited_total'
                           '{class="nonzero"}'], 1)

    def test_an_fprocess_that_cannot_start_counts_a_failed_start(self):
        script = self.path("no-interpreter")
        with open(script, "w") as f:
            f.write("#!/nonexistent/interpreter\n")
        os.chmod(script, 0o755)
        # not found (the PATH search fails), and found but its exec fails
        # (not under valgrind: it dies with a child whose execve fails)
        progs = ["/nonexistent/fwatchdog-test"] + ([] if WRAPPER else [script])
        for prog in progs:
            wd = self.start_metrics(mode=self.MODE, fprocess=prog)
            self.assertEqual(request(wd.port, "GET", "/").status, 500)
            m = parse(scrape(wd.mport))
            self.assertEqual(m["fwatchdog_children_failed_to_start_total"],
                             1, prog)
            self.assertEqual(m["fwatchdog_children_started_total"], 0, prog)
            self.assertEqual(wd.shutdown(), [])    # before the next one

    def test_max_inflight_429_is_counted_and_metrics_are_never_limited(self):
        wd = self.start_metrics(mode=self.MODE, max_inflight=1,
                                fprocess=self.slow_fprocess())
        slow = InFlight(wd.port, "GET", "/slow")
        wait_for(lambda: os.path.exists(self.path("started")), T(10),
                 "the slow function to start")
        self.assertEqual(self.sample(wd, "http_requests_in_flight"), 1)
        r = request(wd.port, "GET", "/other")
        self.assertEqual(r.status, 429, r)
        m = parse(scrape(wd.mport))      # not 429'd itself
        self.assertEqual(m['http_requests_total{code="429",method="get"}'], 1)
        self.assertEqual(m["fwatchdog_requests_rejected_total"], 1)
        self.assertEqual(m["http_requests_in_flight"], 1)
        open(self.path("release"), "w").close()
        self.assertBody(slow.join(), b"released\n")
        m = parse(scrape(wd.mport))
        self.assertEqual(m['http_requests_total{code="200",method="get"}'], 1)
        self.assertEqual(m["http_requests_in_flight"], 0)

    def test_exec_timeout_counts_a_timeout_kill(self):
        wd = self.start_metrics(mode=self.MODE, exec_timeout=dur(1),
                                fprocess="sleep 30")
        r = request(wd.port, "GET", "/", timeout=T(20))
        self.assertEqual(r.status, self.TIMEOUT_STATUS, r)
        m = parse(scrape(wd.mport))
        self.assertEqual(m['fwatchdog_children_killed_total'
                           '{reason="timeout"}'], 1)
        self.assertEqual(m['fwatchdog_children_exited_total'
                           '{class="signal"}'], 1)
        self.assertEqual(m['http_requests_total{code="%d",method="get"}'
                           % self.TIMEOUT_STATUS], 1)
        self.assertGreaterEqual(
            m['http_request_duration_seconds_sum{code="%d",method="get"}'
              % self.TIMEOUT_STATUS], 1.0)

    def test_a_client_that_leaves_counts_a_client_abort_kill(self):
        wd = self.start_metrics(mode=self.MODE,
                                fprocess=self.slow_fprocess())
        with RawConn(wd.port) as c:
            c.send(build_request("GET", "/slow"))
            wait_for(lambda: os.path.exists(self.path("started")), T(10),
                     "the slow function to start")
        self.wait_sample(wd, 'fwatchdog_children_killed_total'
                             '{reason="client_abort"}', 1)
        m = parse(scrape(wd.mport))
        self.assertEqual(m['http_requests_total{code="499",method="get"}'], 1)
        self.assertEqual(m["http_requests_in_flight"], 0)


class SerializingMetricsTest(MetricsTest):
    MODE = "serializing"


class ClassicMetricsTest(MetricsTest):
    MODE = "classic"
    TIMEOUT_STATUS = 408            # "Killed process."


class MetricsListenerTest(MetricsBase):
    """The listener itself: paths, methods, what it leaves alone."""

    def test_only_get_and_head_of_metrics_are_served(self):
        wd = self.start_metrics(fprocess="cat")
        r = request(wd.mport, "GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"),
                         "text/plain; version=0.0.4; charset=utf-8")
        with RawConn(wd.mport) as c:
            h = c.request("HEAD", "/metrics")
            self.assertEqual((h.status, h.body), (200, b""))
            # a stray body after HEAD would break this one
            self.assertEqual(c.request("GET", "/nope").status, 404)
        self.assertEqual(request(wd.mport, "GET", "/").status, 404)
        self.assertEqual(request(wd.mport, "GET", "/metrics/").status, 404)
        self.assertEqual(request(wd.mport, "POST", "/metrics",
                                 body=b"").status, 405)

    def test_scrapes_and_probes_are_not_function_requests(self):
        wd = self.start_metrics(fprocess="cat")
        for _ in range(3):
            scrape(wd.mport)
            request(wd.port, "GET", "/_/health")
            request(wd.port, "GET", "/_/ready")
        m = parse(scrape(wd.mport))
        self.assertFalse([k for k in m if k.startswith("http_requests_total")],
                         m)
        self.assertEqual(m["fwatchdog_children_started_total"], 0)
        self.assertIsNone(wd.find_log(r"/metrics"), wd.log_text())

    def test_process_metrics_describe_the_watchdog(self):
        t0 = time.time()
        wd = self.start_metrics(fprocess="cat")
        m = parse(scrape(wd.mport))
        self.assertGreater(m["process_resident_memory_bytes"], 0)
        self.assertGreater(m["process_open_fds"], 3)
        self.assertGreater(m["process_max_fds"], 0)
        self.assertGreaterEqual(m["process_cpu_seconds_total"], 0)
        self.assertLess(abs(m["process_start_time_seconds"] - t0), T(5))
        self.assertIn("fwatchdog_log_dropped_lines_total", m)

    def test_metrics_port_zero_serves_nothing(self):
        wd = self.start(fprocess="cat", metrics_port=0)
        self.assertEqual(request(wd.port, "GET", "/").status, 200)
        self.assertEqual(listening_ports(wd.pid), {wd.port})
        self.assertIsNone(wd.find_log(r"[Mm]etrics"), wd.log_text())

    def test_metrics_port_listens_beside_port(self):
        wd = self.start_metrics(fprocess="cat")
        self.assertEqual(listening_ports(wd.pid), {wd.port, wd.mport})

    def test_taken_metrics_port_is_logged_and_functions_still_serve(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("0.0.0.0", 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]
        wd = self.start(fprocess="cat", metrics_port=taken)
        line = wd.wait_log(r"metrics_port")
        self.assertRegex(line, r"metrics_port: cannot listen on %d: "
                         r"address already in use" % taken)
        self.assertBody(request(wd.port, "POST", "/", body=b"still"),
                        b"still")
        self.assertTrue(wd.alive())
        self.assertEqual(listening_ports(wd.pid), {wd.port})

    def test_metrics_port_equal_to_port_is_logged(self):
        port = free_port()
        wd = self.start(fprocess="cat", port=port, metrics_port=port)
        wd.wait_log(r"metrics_port: %d is also port" % port)
        self.assertBody(request(wd.port, "POST", "/", body=b"x"), b"x")

    def test_metrics_are_served_through_the_drain_and_close_at_exit(self):
        wd = self.start_metrics(fprocess=self.slow_fprocess())
        slow = InFlight(wd.port, "GET", "/slow")
        wait_for(lambda: os.path.exists(self.path("started")), T(10),
                 "the slow function to start")
        wd.signal(signal.SIGTERM)
        wd.wait_log(r"draining")
        # the function listener is closed; the metrics one still answers
        wait_for(lambda: wd.port not in listening_ports(wd.pid), T(10),
                 "the function listener to close")
        self.assertEqual(self.sample(wd, "http_requests_in_flight"), 1)
        open(self.path("release"), "w").close()
        self.assertBody(slow.join(), b"released\n")
        self.assertEqual(wd.wait_exit(T(20)), 0, wd.log_text())


class HttpModeMetricsTest(HttpTest, MetricsBase):
    """http mode: requests, upstream connection reuse and errors."""

    def start_http_metrics(self, script="echo.py", **env):
        for attempt in range(3):
            mport = free_port()
            wd = self.start_http(script, metrics_port=mport, **env)
            wd.mport = mport
            if wd.find_log(r"metrics_port: cannot listen") is None:
                return wd
        raise AssertionError("metrics_port taken three times")

    def test_requests_and_connection_reuse_are_counted(self):
        wd = self.start_http_metrics()
        with RawConn(wd.port) as c:
            for _ in range(3):
                self.assertEqual(c.request("GET", "/x").status, 200)
        m = parse(scrape(wd.mport))
        self.assertEqual(m['http_requests_total{code="200",method="get"}'], 3)
        self.assertEqual(m['fwatchdog_upstream_requests_total'
                           '{connection="new"}'], 1)
        self.assertEqual(m['fwatchdog_upstream_requests_total'
                           '{connection="reused"}'], 2)
        self.assertNotIn("fwatchdog_children_started_total", m)
        self.check_promtool(scrape(wd.mport))

    def test_upstream_status_codes_are_counted_as_sent(self):
        wd = self.start_http_metrics()
        self.assertEqual(request(wd.port, "PUT", "/?status=418",
                                 body=b"").status, 418)
        m = parse(scrape(wd.mport))
        self.assertEqual(m['http_requests_total{code="418",method="put"}'], 1)

    def test_upstream_timeout_is_counted_as_an_upstream_error(self):
        gate = self.path("gate")
        wd = self.start_http_metrics(exec_timeout=dur(1))
        r = request(wd.port, "GET", "/?gate=%s" % gate, timeout=T(20))
        self.assertEqual(r.status, 504, r)
        open(gate, "w").close()
        m = parse(scrape(wd.mport))
        self.assertEqual(m['fwatchdog_upstream_errors_total'
                           '{kind="timeout"}'], 1)
        self.assertEqual(m['http_requests_total{code="504",method="get"}'], 1)

    def test_upstream_reset_is_counted_as_a_connection_error(self):
        wd = self.start_http_metrics("refuser.py")
        r = request(wd.port, "POST", "/reset", body=b"x")
        self.assertEqual(r.status, 500, r)
        m = parse(scrape(wd.mport))
        self.assertEqual(m['fwatchdog_upstream_errors_total'
                           '{kind="connection"}'], 1)
