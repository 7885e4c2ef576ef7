"""The function's sandbox (issue 5): fprocess_user, fprocess_workdir,
fprocess_no_new_privs, fprocess_max_*, no inherited fds, and
exec_timeout_grace. Each is observed by a child that reports it."""

import json
import os
import pwd
import shutil
import time
import unittest

from harness import (HERE, WRAPPER, InFlight, RawConn, WatchdogTest, T, fp,
                     free_port,
                     pid_dead, read_pidfile, request, run_cli, sh_fixture,
                     wait_for)

UPSTREAMS = os.path.join(HERE, "upstreams")

ROOT = os.geteuid() == 0
NOBODY = pwd.getpwnam("nobody") if ROOT else None

# one report: ids, groups, cwd, NoNewPrivs, limits, open fds
REPORT = ("sh -c 'echo uid=$(id -u) gid=$(id -g) groups=$(id -G); "
          "echo cwd=$(pwd); grep NoNewPrivs /proc/self/status; "
          "cat /proc/self/limits; echo fds=$(ls /proc/$$/fd | tr \"\\n\" \" \")'")


def parse(body):
    text = body.decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(("uid=", "cwd=", "fds=")):
            for part in line.split(" ", 2 if line.startswith("uid=") else 0):
                k, _, v = part.partition("=")
                out[k] = v
        elif line.startswith("NoNewPrivs:"):
            out["nnp"] = line.split()[1]
        elif line.startswith("Max "):
            name = line[4:26].strip()
            out[name] = line[26:].split()[:2]
    return out


class SandboxTest(WatchdogTest):

    def report(self, **env):
        wd = self.start(fprocess=REPORT, **env)
        r = request(wd.port, "GET", "/")
        self.assertEqual(r.status, 200, r)
        return parse(r.body)

    def test_defaults_change_nothing(self):
        rep = self.report()
        self.assertEqual(rep["uid"], str(os.geteuid()))
        self.assertEqual(rep["nnp"], "0")
        self.assertEqual(rep["cpu time"], ["unlimited", "unlimited"])

    @unittest.skipUnless(ROOT, "needs root")
    def test_user_by_name_gets_its_ids_and_groups(self):
        rep = self.report(fprocess_user="nobody")
        self.assertEqual(rep["uid"], str(NOBODY.pw_uid))
        self.assertEqual(rep["gid"], str(NOBODY.pw_gid))
        self.assertNotIn("0", rep["groups"].split(), "root's groups kept")

    @unittest.skipUnless(ROOT, "needs root")
    def test_user_by_numbers(self):
        rep = self.report(fprocess_user="1234:5678")
        self.assertEqual((rep["uid"], rep["gid"], rep["groups"]),
                         ("1234", "5678", "5678"))

    @unittest.skipUnless(ROOT, "needs root")
    def test_http_upstream_runs_as_the_user(self):
        # a copy of the upstreams nobody can read
        up_dir = self.path("upstreams")
        shutil.copytree(UPSTREAMS, up_dir)
        for d in (self.tmp, up_dir):
            os.chmod(d, 0o755)
        up = free_port()
        wd = self.start(mode="http", fprocess=fp(
                            "/usr/bin/python3", "-B",
                            os.path.join(up_dir, "echo.py"),
                            str(up)),
                        upstream_url="http://127.0.0.1:%d" % up,
                        fprocess_user="nobody")
        pid = json.loads(request(wd.port, "GET", "/pid").body)["pid"]
        with open("/proc/%d/status" % pid) as f:
            uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
        self.assertEqual(uid, str(NOBODY.pw_uid))

    def test_no_new_privs(self):
        self.assertEqual(self.report(fprocess_no_new_privs="true")["nnp"],
                         "1")

    def test_limits(self):
        # under valgrind the child runs valgrind's code until exec, and
        # that keeps descriptors at the top of the inherited limit
        files = None if WRAPPER else "40"
        rep = self.report(fprocess_max_memory="256Mi",
                          fprocess_max_cpu_seconds="7",
                          fprocess_max_open_files=files,
                          fprocess_max_processes="300")
        self.assertEqual(rep["address space"], [str(256 << 20)] * 2)
        self.assertEqual(rep["cpu time"], ["7", "8"])
        if files:
            self.assertEqual(rep["open files"], [files, files])
        self.assertEqual(rep["processes"], ["300", "300"])

    def test_workdir(self):
        d = self.path("work")
        os.mkdir(d)
        self.assertEqual(self.report(fprocess_workdir=d)["cwd"],
                         os.path.realpath(d))

    def test_relative_fprocess_is_found_in_the_workdir(self):
        # "./handler" runs after the chdir: it must be looked for there,
        # not in the watchdog's own directory
        d = self.path("work")
        os.mkdir(d)
        with open(os.path.join(d, "handler"), "w") as f:
            f.write("#!/bin/sh\necho handled in $(pwd)\n")
        os.chmod(os.path.join(d, "handler"), 0o755)
        wd = self.start(fprocess="./handler", fprocess_workdir=d)
        self.assertBody(request(wd.port, "GET", "/"),
                        b"handled in %s\n" % os.path.realpath(d).encode())

    def test_only_stdio_reaches_the_child_even_if_inherited(self):
        # the watchdog itself inherits fd 7 without CLOEXEC, as a PID 1
        # may from whatever started the container
        wd = self.start(fprocess=REPORT,
                        launcher=["sh", "-c", 'exec 7</dev/null; "$@"',
                                  "sh"])
        with open("/proc/%d/fdinfo/7" % wd.wd_pid):
            pass
        rep = parse(request(wd.port, "GET", "/").body)
        # ls's own directory fd is the one above 2
        self.assertEqual(rep["fds"].split(), ["0", "1", "2", "3"], rep)

    def test_cpu_limit_is_a_clear_500_and_spares_other_requests(self):
        wd = self.start(fprocess=sh_fixture("spin.sh"),
                        fprocess_max_cpu_seconds="1", exec_timeout="20s")
        spinning = InFlight(wd.port, path="/spin")
        self.assertBody(request(wd.port, "GET", "/"), b"quick\n")
        r = spinning.join(T(20))
        self.assertEqual(r.status, 500, r)
        self.assertIn(b"CPU time limit exceeded", r.body)
        self.assertIn(b"fprocess_max_cpu_seconds=1", r.body)
        self.assertBody(request(wd.port, "GET", "/"), b"quick\n")

    def test_memory_limit_failure_names_the_limit(self):
        wd = self.start(fprocess=fp("python3", "-c",
                                    "import sys; bytearray(int(sys.argv[1]))",
                                    str(512 << 20)),
                        fprocess_max_memory="128Mi")
        r = request(wd.port, "GET", "/")
        self.assertEqual(r.status, 500, r)
        self.assertIn(b"fprocess_max_memory=%d" % (128 << 20), r.body)
        self.assertTrue(wd.alive())

    @unittest.skipUnless(ROOT, "needs root")
    def test_user_the_watchdog_already_is_changes_nothing(self):
        # USER app in the image and fprocess_user=app: no privilege to
        # drop, and none to do it with (setgroups would fail in each child)
        os.chmod(self.tmp, 0o777)
        drop = "setpriv --reuid=%d --regid=%d --clear-groups" % (
            NOBODY.pw_uid, NOBODY.pw_gid)
        rep = self.report(fprocess_user="nobody",
                          launcher=["sh", "-c", drop + ' "$@"; exit $?',
                                    "sh"])
        self.assertEqual((rep["uid"], rep["gid"]),
                         (str(NOBODY.pw_uid), str(NOBODY.pw_gid)))

    def test_bad_settings_refuse_to_start(self):
        cases = [
            ({"fprocess_user": "no-such-user-x"}, "fprocess_user"),
            ({"fprocess_workdir": "/no/such/dir"}, "fprocess_workdir"),
            ({"fprocess_max_memory": "lots"}, "fprocess_max_memory"),
            ({"fprocess_max_open_files": "-3"}, "fprocess_max_open_files"),
            ({"fprocess_max_cpu_seconds": "1m"}, "fprocess_max_cpu_seconds"),
        ]
        for env, name in cases:
            env = dict(env, fprocess="cat", port="1", metrics_port="0",
                       TMPDIR=self.tmp)    # port never reached
            rc, _, err = run_cli([], env=env)
            self.assertEqual(rc, 1, (env, err))
            self.assertIn(name, err, env)


class GraceTest(WatchdogTest):

    def test_default_is_sigkill_at_once(self):
        record = self.path("term")
        wd = self.start(fprocess=sh_fixture("term_trap.sh", record),
                        exec_timeout="1s")
        r = request(wd.port, "GET", "/", timeout=T(10))
        self.assertNotEqual(r.status, 200, r)
        pid = read_pidfile(record + ".pid", T(5))[0]
        wait_for(lambda: pid_dead(pid), T(5), "handler gone")
        self.assertFalse(os.path.exists(record), "SIGTERM seen")

    def test_timeout_sends_sigterm_first(self):
        record = self.path("term")
        wd = self.start(fprocess=sh_fixture("term_trap.sh", record),
                        exec_timeout="1s", exec_timeout_grace="5s")
        request(wd.port, "GET", "/", timeout=T(10))
        wait_for(lambda: os.path.exists(record), T(5),
                 "handler saw SIGTERM")

    def test_sigkill_after_the_grace(self):
        record = self.path("term")
        wd = self.start(fprocess=sh_fixture("term_trap.sh", record, "ignore"),
                        exec_timeout="1s", exec_timeout_grace="1s")
        t0 = time.monotonic()
        inflight = InFlight(wd.port, path="/", timeout=T(20))
        pid = read_pidfile(record + ".pid", T(5))[0]
        wait_for(lambda: pid_dead(pid), T(10), "handler killed")
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.9, "killed before the grace")
        self.assertNotEqual(inflight.join(T(10)).status, 200)

    def test_client_abort_uses_the_grace(self):
        record = self.path("term")
        wd = self.start(fprocess=sh_fixture("term_trap.sh", record),
                        exec_timeout_grace="5s")
        c = RawConn(wd.port)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_pidfile(record + ".pid", T(5))
        c.close()
        wait_for(lambda: os.path.exists(record), T(5),
                 "handler saw SIGTERM")
