"""mode=http, spec 6.1: an upstream that exits 0 while its port still
answers has daemonised; the watchdog warns and carries on. One that exits
0 and leaves nothing listening is a dead upstream (health 503, exit 1)."""

import os
import signal
import socket

from harness import request, wait_for, T
from test_http import HttpTest, free_port, health_status

HERE = os.path.dirname(os.path.abspath(__file__))
DAEMONISE = os.path.join(HERE, "upstreams", "daemonise.sh")


class HttpDaemonTest(HttpTest):

    def test_exit_0_with_port_answering_carries_on(self):
        up = free_port()
        wd = self.start(fprocess="sh %s %d" % (DAEMONISE, up), mode="http",
                        upstream_url="http://127.0.0.1:%d" % up)
        wd.wait_log(r"daemonised, carrying on")
        self.addCleanup(self.kill_listener, up)
        r = request(wd.port, "GET", "/after")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(health_status(wd.port), 200)
        self.assertTrue(wd.alive())
        # SIGTERM reaches the daemon, still in its launcher's group.
        wd.signal(signal.SIGTERM)
        self.assertEqual(wd.wait_exit(T(5)), 0, wd.log_text())
        wait_for(lambda: not self.listening(up), T(5),
                 "the daemon gone after the watchdog's SIGTERM")

    def test_daemon_that_exits_before_any_probe_succeeds_is_ready(self):
        # Its ready_path fails until the script has exited, so only the
        # probe made after the exit can find it ready.
        up = free_port()
        wd = self.start(fprocess="sh %s %d" % (DAEMONISE, up), mode="http",
                        upstream_url="http://127.0.0.1:%d" % up,
                        ready_path="/ready?orphaned=1", wait=False)
        self.addCleanup(self.kill_listener, up)
        wd.wait_log(r"daemonised, carrying on")
        wait_for(lambda: health_status(wd.port) == 200, T(5),
                 "health 200 after the daemon check")
        r = request(wd.port, "GET", "/after")
        self.assertEqual(r.status, 200, r)

    def test_daemon_not_yet_ready_is_probed_until_it_is(self):
        # Spec 6.1 asks only that the port accept connections; ready_path
        # (hanging until the gate file exists) then decides readiness.
        up = free_port()
        gate = os.path.join(self.tmp, "gate")
        wd = self.start(fprocess="sh %s %d" % (DAEMONISE, up), mode="http",
                        upstream_url="http://127.0.0.1:%d" % up,
                        ready_path="/ready?gate=" + gate, wait=False)
        self.addCleanup(self.kill_listener, up)
        wd.wait_log(r"daemonised, carrying on")
        self.assertEqual(health_status(wd.port), 503)
        with open(gate, "w"):
            pass
        wait_for(lambda: health_status(wd.port) == 200, T(10),
                 "health 200 once the ready path answers")
        self.assertEqual(request(wd.port, "GET", "/after").status, 200)
        self.assertTrue(wd.alive())

    def test_launcher_exiting_before_its_daemon_listens_carries_on(self):
        # The daemon starts listening after its launcher has exited 0; the
        # check allows it a grace to bind.
        up = free_port()
        wd = self.start(fprocess="sh %s %d early" % (DAEMONISE, up),
                        mode="http", wait=False,
                        upstream_url="http://127.0.0.1:%d" % up)
        self.addCleanup(self.kill_listener, up)
        wd.wait_log(r"daemonised, carrying on")
        wait_for(lambda: health_status(wd.port) == 200, T(5), "health 200")
        self.assertEqual(request(wd.port, "GET", "/after").status, 200)

    def test_exit_0_with_nothing_listening_exits_1(self):
        up = free_port()
        wd = self.start(fprocess="sh -c 'sleep 0.5; exit 0'", mode="http",
                        upstream_url="http://127.0.0.1:%d" % up,
                        expect_exit=1, wait=False)
        self.assertEqual(wd.wait_exit(T(10)), 1, wd.log_text())

    @staticmethod
    def listening(port):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False

    @staticmethod
    def kill_listener(port):
        """The daemonised echo.py outlives the watchdog: end it."""
        hexport = "%04X" % port
        inodes = set()
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(":" + hexport) and parts[3] == "0A":
                    inodes.add(parts[9])
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                for fd in os.listdir("/proc/%s/fd" % pid):
                    link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        os.kill(int(pid), signal.SIGKILL)
            except OSError:
                continue
