"""Signals and graceful shutdown: spec section 8."""

import os
import signal
import socket

from harness import (InFlight, WatchdogTest, RawConn, T, dur, pid_dead,
                     read_pidfile, request, sh_fixture, wait_for)


def refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=T(2))
    except ConnectionRefusedError:
        return True
    s.close()
    return False


class ShutdownTest(WatchdogTest):

    def tearDown(self):
        # let any slow function finish before the watchdogs are stopped
        if os.path.isdir(self.tmp):
            self.release()
        super().tearDown()

    def slow_watchdog(self, **env):
        return self.start(fprocess=sh_fixture("wait_release.sh", self.tmp),
                          **env)

    def wait_started(self):
        wait_for(lambda: os.path.exists(self.path("started")), T(10),
                 "slow function started")

    def release(self):
        open(self.path("release"), "w").close()

    def test_sigterm_health_503_then_drains_inflight_and_exits_0(self):
        # write_timeout and exec_timeout well above the interval, so the slow request is
        # still in flight when the drain starts
        wd = self.slow_watchdog(healthcheck_interval=dur(3),
                                write_timeout=dur(20), exec_timeout=dur(20))
        lock = os.path.join(self.tmp, ".lock")
        slow = InFlight(wd.port)
        self.wait_started()
        wd.signal(signal.SIGTERM)
        # step 1: probes 503 and lock file gone at once
        wait_for(lambda: request(wd.port, "GET", "/_/health").status == 503,
                 T(1.5), "/_/health 503 after SIGTERM")
        self.assertEqual(request(wd.port, "GET", "/_/ready").status, 503)
        self.assertFalse(os.path.exists(lock), "lock file not removed")
        wd.wait_log(r"SIGTERM: no new connections in %s" % dur(3))
        # step 2: still serving normally during healthcheck_interval
        self.assertBody(request(wd.port, "GET", "/quick"), b"quick\n")
        # step 3: listener closed, the in-flight request still running
        wd.wait_log(r"No new connections allowed, draining: 1 requests",
                    timeout=T(10))
        wait_for(lambda: refused(wd.port), T(2), "listener closed")
        self.assertTrue(wd.alive())
        self.release()
        self.assertBody(slow.join(), b"released\n")
        self.assertEqual(wd.wait_exit(T(10)), 0, wd.log_text())
        wd.wait_log(r"Exiting\. Active connections: \d+")

    def test_sigterm_without_interval_exits_0_promptly(self):
        wd = self.start(fprocess="cat", healthcheck_interval="0")
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(2)), 0, wd.log_text())
        self.assertFalse(os.path.exists(os.path.join(self.tmp, ".lock")))

    def test_sigterm_still_serves_during_healthcheck_interval(self):
        wd = self.start(fprocess="cat", healthcheck_interval=dur(2))
        wd.signal(signal.SIGTERM)
        wait_for(lambda: request(wd.port, "GET", "/_/health").status == 503,
                 T(1.5), "/_/health 503 after SIGTERM")
        self.assertBody(request(wd.port, "POST", "/", body=b"x"), b"x")
        self.assertEqual(wd.wait_exit(T(10)), 0, wd.log_text())

    def test_drain_deadline_kills_remaining_children_and_exits_0(self):
        pidfile = self.path("child.pid")
        wd = self.start(fprocess=sh_fixture("pid_then_sleep.sh", pidfile),
                        exec_timeout="0", write_timeout=dur(2))
        slow = InFlight(wd.port, timeout=T(30))
        (pid,) = read_pidfile(pidfile, T(10))
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(10)), 0, wd.log_text())
        wait_for(lambda: pid_dead(pid), T(5), "child %d killed" % pid)
        slow.thread.join(T(10))

    def test_sigterm_closes_idle_keep_alive_connections(self):
        wd = self.start(fprocess="cat")
        with RawConn(wd.port) as c:
            self.assertBody(c.request("POST", "/", body=b"k"), b"k")
            wd.signal(signal.SIGTERM)
            self.assertTrue(c.wait_closed(T(5)), "idle connection kept open")
        self.assertEqual(wd.wait_exit(T(5)), 0, wd.log_text())

    def test_sigint_skips_healthcheck_pause(self):
        wd = self.start(fprocess="cat", healthcheck_interval="60s")
        wd.signal(signal.SIGINT)
        self.assertEqual(wd.wait_exit(T(3)), 0, wd.log_text())

    def test_second_sigint_exits_at_once(self):
        wd = self.slow_watchdog(expect_exit=130)
        slow = InFlight(wd.port)
        self.wait_started()
        wd.signal(signal.SIGINT)
        wd.wait_log(r"No new connections allowed, draining: 1 requests")
        self.assertTrue(wd.alive(), "exited before its request finished")
        wd.signal(signal.SIGINT)
        self.assertEqual(wd.wait_exit(T(3)), 130, "second SIGINT: " +
                         wd.log_text())
        self.release()
        slow.thread.join(T(10))

    def test_signals_during_a_sigterm_drain_do_not_cut_it_short(self):
        wd = self.slow_watchdog(write_timeout=dur(20), exec_timeout=dur(20))
        slow = InFlight(wd.port)
        self.wait_started()
        wd.signal(signal.SIGTERM)
        wd.wait_log(r"No new connections allowed, draining: 1 requests")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGINT):
            wd.signal(sig)
        self.assertIsNone(wd.wait_exit(T(1)), "drain cut short")
        self.release()
        self.assertBody(slow.join(), b"released\n")
        self.assertEqual(wd.wait_exit(T(5)), 0, wd.log_text())

    def test_other_signals_ignored_in_fork_modes(self):
        wd = self.start(fprocess="cat")
        for sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                    signal.SIGUSR2, signal.SIGWINCH, signal.SIGPIPE):
            wd.signal(sig)
            self.assertBody(request(wd.port, "POST", "/", body=b"alive"),
                            b"alive")
        self.assertTrue(wd.alive())
