"""The watchdog as a real PID 1: `unshare --pid --fork --mount-proc`
runs it as init of a new PID namespace, where the kernel gives it every
orphan and delivers only the signals it handles (issue 5)."""

import os
import shutil
import signal
import threading
import time
import unittest

from harness import (SLOW, InFlight, RawConn, T, WatchdogTest, children,
                     request, sh_fixture, wait_for, zombie_children)
from test_http import HttpTest

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


def unshare_works():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return os.system("unshare --pid --fork --mount-proc true "
                     ">/dev/null 2>&1") == 0


CAN_UNSHARE = unshare_works()
SKIP = "needs root and unshare(1) with PID namespaces"


def pid_ns(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return None


def namespace_members(init):
    """Host pids of every process in init's PID namespace but init."""
    ns = pid_ns(init)
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != init and pid_ns(int(name)) == ns:
            out.append(int(name))
    return out


def ns_pid(host_pid):
    """The pid a process has inside its own namespace (last NSpid)."""
    with open("/proc/%d/status" % host_pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return None


@unittest.skipUnless(CAN_UNSHARE, SKIP)
class Pid1Test(WatchdogTest):

    def start_pid1(self, **env):
        wd = self.start(launcher=UNSHARE, **env)
        self.assertEqual(ns_pid(wd.wd_pid), 1, "watchdog is not PID 1")
        return wd

    def test_orphan_of_a_handler_is_reaped(self):
        # the orphan has left the handler's process group: only PID 1
        # can reap it
        wd = self.start_pid1(fprocess=sh_fixture("orphan_session.sh", "1"))
        self.assertBody(request(wd.port, "GET", "/"), b"ok\n")
        # the orphan (sleep 1) now belongs to PID 1 ...
        sleepers = wait_for(lambda: children(wd.wd_pid), T(2),
                            "orphan adopted by PID 1")
        for pid in sleepers:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                self.assertIn(b"sleep", f.read())
        # ... and after it exits nothing is left, zombies included
        wait_for(lambda: namespace_members(wd.wd_pid) == [], T(3),
                 "orphan reaped")
        self.assertEqual(zombie_children(wd.wd_pid), [])

    def test_many_orphans_are_reaped(self):
        wd = self.start_pid1(fprocess=sh_fixture("orphan_session.sh", "0.2"))
        for _ in range(20):
            self.assertEqual(request(wd.port, "GET", "/").status, 200)
        wait_for(lambda: namespace_members(wd.wd_pid) == [], T(4),
                 "every orphan reaped")

    def test_grandchild_outliving_exec_timeout_is_killed(self):
        pidfile = self.path("grandchild.pid")
        wd = self.start_pid1(fprocess=sh_fixture("grandchild.sh", pidfile),
                             exec_timeout="1s")
        r = request(wd.port, "GET", "/", timeout=T(10))
        self.assertEqual(r.status, 500, r)
        wait_for(lambda: namespace_members(wd.wd_pid) == [], T(3),
                 "handler and its sleep 100 gone")

    def test_sigterm_idle_without_interval_exits_at_once(self):
        wd = self.start_pid1(fprocess="cat")
        t0 = time.monotonic()
        wd.signal(signal.SIGTERM)
        rc = wd.wait_exit(T(2))
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, wd.log_text())
        # valgrind's leak scan at exit alone can take half a second
        self.assertLess(took, 0.1 if SLOW == 1 else T(0.3),
                        "exit took %.3f s" % took)

    def test_sigterm_under_load_loses_nothing(self):
        """Three 2 s requests in flight and a stream of short ones when
        SIGTERM arrives, healthcheck_interval=1s: every accepted request
        is answered 200, the probes say 503 from the signal on, and the
        watchdog exits 0 once the last slow request is done."""
        wd = self.start_pid1(fprocess=sh_fixture("slow_or_fast.sh", self.tmp),
                             healthcheck_interval="1s", write_timeout="10s",
                             exec_timeout="10s")
        slow = [InFlight(wd.port, path="/slow") for _ in range(3)]
        wait_for(lambda: len([n for n in os.listdir(self.tmp)
                              if n.startswith("started.")]) == 3,
                 T(5), "3 slow requests running")
        stop = threading.Event()
        signalled = threading.Event()
        outcomes = []            # (after_signal, kind, detail)
        lock = threading.Lock()

        def record(kind, detail=""):
            with lock:
                outcomes.append((signalled.is_set(), kind, detail))

        def load(path):
            while not stop.is_set():
                try:
                    conn = RawConn(wd.port, timeout=T(10))
                except ConnectionRefusedError:
                    record("refused")
                    time.sleep(0.01)
                    continue
                try:
                    r = conn.request("GET", path,
                                     headers=[("Connection", "close")])
                    record("status", (path, r.status))
                except Exception as e:        # reset, EOF, timeout
                    record("error", repr(e))
                finally:
                    conn.close()

        loaders = [threading.Thread(target=load, args=(p,), daemon=True)
                   for p in ("/fast", "/fast", "/_/health")]
        for t in loaders:
            t.start()
        time.sleep(0.3)
        signalled.set()
        t0 = time.monotonic()
        wd.signal(signal.SIGTERM)
        rc = wd.wait_exit(T(10))
        took = time.monotonic() - t0
        stop.set()
        for t in loaders:
            t.join(T(15))
        for r in slow:
            self.assertBody(r.join(), b"slow\n")
        self.assertEqual(rc, 0, wd.log_text())
        self.assertLess(took, T(2.5), "exit took %.2f s" % took)
        errors = [o for o in outcomes if o[1] == "error"]
        self.assertEqual(errors, [], "accepted requests not answered")
        bad = [o for o in outcomes if o[1] == "status" and
               o[2][0] == "/fast" and o[2][1] != 200]
        self.assertEqual(bad, [], "function requests not answered 200")
        # 200 before the signal, 503 after (allowing for requests that
        # were already on their way when the signal was sent)
        health = [o for o in outcomes if o[1] == "status" and
                  o[2][0] == "/_/health"]
        after = [o[2][1] for o in health if o[0]]
        self.assertIn(503, after, "no 503 from /_/health after SIGTERM")
        self.assertEqual(after[after.index(503):].count(200), 0, after)
        served_after = [o for o in outcomes if o[0] and o[1] == "status"
                        and o[2] == ("/fast", 200)]
        self.assertTrue(served_after, "nothing served during the interval")
        self.assertEqual(namespace_members(wd.wd_pid)
                         if wd.alive() else [], [])


@unittest.skipUnless(CAN_UNSHARE, SKIP)
class Pid1HttpTest(HttpTest):

    def test_signals_forwarded_to_upstream(self):
        record = self.path("signals")
        wd = self.start_http("signals.py", record, launcher=UNSHARE)
        self.assertEqual(ns_pid(wd.wd_pid), 1)
        self.check_signals_forwarded(wd, record)
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(10)), 0, wd.log_text())
        with open(record) as f:
            self.assertEqual(f.read().split()[-1], "SIGTERM")
