"""How fork-mode children are started and ended: spec sections 5.1, 5.5,
4 (ready_path)."""

import os
import threading

from harness import (InFlight, WatchdogTest, RawConn, T, dur, fixture, fp,
                     pid_reaped, proc_stat, read_pidfile, request, sh_fixture,
                     wait_for, zombie_children)


class ChildSetupTest(WatchdogTest):

    def test_child_inherits_only_stdio_descriptors(self):
        for mode in ("streaming", "serializing", "classic"):
            wd = self.start(fprocess=fp("python3", fixture("fds.py")),
                            mode=mode, combine_output="false")
            r = request(wd.port, "POST", "/", body=b"x")
            self.assertEqual(r.status, 200, r)
            fds = [l.split(" -> ")[0] for l in r.body.decode().splitlines()]
            self.assertEqual(fds, ["0", "1", "2"], (mode, r.body))
            wd.shutdown()

    def test_child_starts_with_default_signals_and_empty_mask(self):
        wd = self.start(fprocess="cat /proc/self/status")
        r = request(wd.port, "GET", "/")
        self.assertEqual(r.status, 200, r)
        status = dict(l.split(":\t", 1) for l in r.body.decode().splitlines()
                      if ":\t" in l)
        self.assertEqual(int(status["SigBlk"], 16), 0, "blocked signals")
        self.assertEqual(int(status["SigIgn"], 16), 0, "ignored signals")

    def test_child_leads_its_own_process_group(self):
        wd = self.start(fprocess="cat /proc/self/stat")
        r = request(wd.port, "GET", "/")
        text = r.body.decode()
        fields = text[text.rindex(")") + 2:].split()
        pid = int(text.split()[0])
        self.assertEqual(int(fields[2]), pid, "pgrp of the child")
        self.assertNotEqual(int(fields[2]), os.getpgrp())

    def test_relative_fprocess_runs_from_watchdog_directory(self):
        script = self.path("fn.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\npwd\n")
        os.chmod(script, 0o755)
        wd = self.start(fprocess="./fn.sh", cwd=self.tmp)
        r = request(wd.port, "GET", "/")
        self.assertBody(r, (os.path.realpath(self.tmp) + "\n").encode())

    def test_children_are_reaped(self):
        wd = self.start(fprocess=sh_fixture("exit_code.sh", "0"))
        for _ in range(10):
            self.assertEqual(request(wd.port, "GET", "/").status, 200)
        wait_for(lambda: zombie_children(wd.pid) == [], T(5),
                 "no zombie children")


class WriteTimeoutTest(WatchdogTest):

    def test_write_timeout_closes_connection_child_runs_to_exec_timeout(self):
        pidfile = self.path("child.pid")
        wd = self.start(fprocess=sh_fixture("pid_then_sleep.sh", pidfile),
                        write_timeout=dur(1), exec_timeout=dur(4))
        with RawConn(wd.port, timeout=T(20)) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            (pid,) = read_pidfile(pidfile, T(10))
            self.assertTrue(c.wait_closed(T(10)), "write_timeout ignored")
        st = proc_stat(pid)
        self.assertTrue(st is not None and st[0] != "Z",
                        "child killed at write_timeout; spec: it runs on")
        wait_for(lambda: pid_reaped(pid), T(15), "child ended by exec_timeout")


class ReadyPathTest(WatchdogTest):

    def test_ready_path_invokes_function_with_probe_headers(self):
        notready = self.path("notready")
        wd = self.start(fprocess=sh_fixture("ready.sh", notready),
                        ready_path="/healthz")
        r = request(wd.port, "GET", "/_/ready", headers={"X-Probe": "yes"})
        self.assertBody(r, b"path=/healthz probe=yes method=GET\n")
        open(notready, "w").close()
        r = request(wd.port, "GET", "/_/ready")
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.body, b"exit status 1")
        # /_/health does not consult the function
        self.assertBody(request(wd.port, "GET", "/_/health"), b"OK")

    def test_ready_path_not_logged_as_request(self):
        wd = self.start(fprocess=sh_fixture("ready.sh", self.path("x")),
                        ready_path="/healthz")
        r = request(wd.port, "GET", "/_/ready")
        self.assertBody(r, b"path=/healthz probe= method=GET\n")
        self.assertEqual(request(wd.port, "GET", "/marker").status, 200)
        wd.wait_log(r"GET /marker - 200")
        self.assertIsNone(wd.find_log(r"/healthz|/_/ready"), wd.log_text())


class ClientDisconnectTest(WatchdogTest):
    """Spec 5.5: a client that leaves gets its child's group killed at
    once, in every fork mode."""

    def check_mode(self, mode):
        pidfile = self.path("child-%s.pid" % mode)
        wd = self.start(fprocess=sh_fixture("grandchild.sh", pidfile),
                        mode=mode)
        c = RawConn(wd.port)
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        (gpid,) = read_pidfile(pidfile, T(10))
        c.close()
        wait_for(lambda: pid_reaped(gpid), T(5),
                 "%s: grandchild %d killed" % (mode, gpid))
        self.assertBody(request(wd.port, "GET", "/_/health"), b"OK")

    def test_disconnect_kills_group_in_streaming(self):
        self.check_mode("streaming")

    def test_disconnect_kills_group_in_serializing(self):
        self.check_mode("serializing")

    def test_disconnect_kills_group_in_classic(self):
        self.check_mode("classic")
