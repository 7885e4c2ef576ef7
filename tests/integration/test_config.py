"""Command line, configuration errors and start-up (spec sections 2, 3)."""

import os
import signal
import socket

from harness import (ANY_EXIT, WatchdogTest, RawConn, T, fixture, fp,
                     free_port, request, run_cli, sh_fixture)

# Every variable name of spec section 2.2 (with aliases).
VARIABLES = [
    "fprocess", "function_process", "mode", "port", "upstream_url",
    "http_upstream_url", "http_buffer_req_body", "buffer_http",
    "content_type", "exec_timeout", "read_timeout", "write_timeout",
    "healthcheck_interval", "suppress_lock", "max_inflight", "prefix_logs",
    "log_buffer_size", "log_callid", "log_call_id", "ready_path",
    "static_path", "cgi_headers", "marshal_request", "combine_output",
    "write_debug", "debug_headers", "jwt_auth", "metrics_port", "TMPDIR",
]


def lines(text):
    return [l for l in text.split("\n") if l.strip()]


class ConfigErrorTest(WatchdogTest):

    def env(self, **kw):
        e = {"port": str(free_port()), "metrics_port": "0",
             "TMPDIR": self.tmp, "fprocess": "cat"}
        for k, v in kw.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def assertConfigError(self, env, *words):
        rc, out, err = run_cli([], env)
        self.assertEqual(rc, 1, "stdout=%r stderr=%r" % (out, err))
        self.assertEqual(len(lines(err)), 1,
                         "want one line on stderr, got %r" % err)
        for w in words:
            self.assertIn(w, err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, ".lock")))
        return err

    def test_missing_fprocess_exits_1_naming_it(self):
        self.assertConfigError(self.env(fprocess=None), "fprocess")

    def test_empty_fprocess_counts_as_missing(self):
        self.assertConfigError(self.env(fprocess=""), "fprocess")

    def test_unsupported_mode_exits_1_naming_it(self):
        self.assertConfigError(self.env(mode="inproc"),
                               'unsupported mode "inproc"')

    def test_afterburn_mode_is_unsupported(self):
        self.assertConfigError(self.env(mode="afterburn"),
                               'unsupported mode "afterburn"')

    def test_unbalanced_quote_in_fprocess_exits_1(self):
        self.assertConfigError(self.env(fprocess="sh -c 'echo hi"))

    def test_unbalanced_double_quote_in_fprocess_exits_1(self):
        self.assertConfigError(self.env(fprocess='printf "%s'))

    def test_write_timeout_zero_rejected_outside_classic(self):
        self.assertConfigError(self.env(write_timeout="0"), "write_timeout")

    def test_write_timeout_zero_rejected_in_serializing(self):
        self.assertConfigError(self.env(write_timeout="0s",
                                        mode="serializing"), "write_timeout")

    def test_jwt_auth_true_fails_closed(self):
        self.assertConfigError(self.env(jwt_auth="true"), "jwt_auth")

    def test_non_integer_log_buffer_size_exits_1(self):
        self.assertConfigError(self.env(log_buffer_size="lots"),
                               "log_buffer_size")


class CommandLineTest(WatchdogTest):

    def test_version_flag_prints_version_and_exits_0(self):
        for flag in ("--version", "-version"):
            rc, out, err = run_cli([flag], {})
            self.assertEqual(rc, 0, (flag, out, err))
            self.assertRegex(out + err, r"\d+\.\d+\.\d+", flag)

    def test_help_lists_every_variable_and_exits_0(self):
        for flag in ("--help", "-h"):
            rc, out, err = run_cli([flag], {})
            self.assertEqual(rc, 0, (flag, out, err))
            text = out + err
            missing = [v for v in VARIABLES if v not in text]
            self.assertEqual(missing, [], "%s output lacks variables" % flag)

    def test_unknown_option_exits_2_with_usage_on_stderr(self):
        rc, out, err = run_cli(["--no-such-option"], {"fprocess": "cat"})
        self.assertEqual(rc, 2, (out, err))
        self.assertTrue(err.strip(), "usage expected on stderr")

    def test_run_healthcheck_succeeds_with_lock_file(self):
        open(os.path.join(self.tmp, ".lock"), "w").close()
        for flag in ("-run-healthcheck", "--run-healthcheck"):
            rc, out, err = run_cli([flag], {"TMPDIR": self.tmp})
            self.assertEqual(rc, 0, (flag, out, err))

    def test_run_healthcheck_fails_without_lock_file(self):
        for flag in ("-run-healthcheck", "--run-healthcheck"):
            rc, out, err = run_cli([flag], {"TMPDIR": self.tmp})
            self.assertEqual(rc, 1, (flag, out, err))
            self.assertIn("unable to find lock file.", err)

    def test_run_healthcheck_sees_running_watchdogs_lock(self):
        self.start(fprocess="cat")
        rc, out, err = run_cli(["-run-healthcheck"], {"TMPDIR": self.tmp})
        self.assertEqual(rc, 0, (out, err))


class StartupTest(WatchdogTest):

    def test_busy_main_port_exits_1_without_lock_file(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        blocker.bind(("0.0.0.0", 0))
        blocker.listen(1)
        try:
            port = blocker.getsockname()[1]
            wd = self.start(wait=False, expect_exit=1, fprocess="cat",
                            port=str(port))
            rc = wd.wait_exit(T(10))
            self.assertEqual(rc, 1, wd.log_text(None))
            self.assertFalse(os.path.exists(os.path.join(self.tmp, ".lock")))
            log = wd.log_text()
            self.assertTrue(str(port) in log or "in use" in log.lower(),
                            "the error should name the port: %r" % log)
        finally:
            blocker.close()

    def test_lock_file_written_and_logged_at_start(self):
        wd = self.start(fprocess="cat")
        lock = os.path.join(self.tmp, ".lock")
        self.assertTrue(os.path.exists(lock))
        self.assertEqual(os.path.getsize(lock), 0)
        wd.wait_log(r"Writing lock-file to: %s" % lock)

    def test_lock_file_never_written_through_a_symlink(self):
        # a function sharing TMPDIR (an http upstream starts first, maybe
        # as another user) plants .lock -> a file of root's
        victim = os.path.join(self.tmp, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        lock = os.path.join(self.tmp, ".lock")
        os.symlink(victim, lock)
        self.start(fprocess="cat")
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertFalse(os.path.islink(lock))
        self.assertEqual(os.path.getsize(lock), 0)

    def test_lock_file_where_a_fifo_was_does_not_block(self):
        lock = os.path.join(self.tmp, ".lock")
        os.mkfifo(lock)
        wd = self.start(fprocess="cat")     # waits for health 200
        self.assertTrue(os.path.isfile(lock))
        self.assertEqual(request(wd.port, "POST", "/", body=b"x").body, b"x")

    def test_unwritable_lock_file_exits_1_naming_suppress_lock(self):
        # a directory where the lock file should go: creating it fails
        # (TMPDIR itself stays usable, e.g. for valgrind)
        os.mkdir(os.path.join(self.tmp, ".lock"))
        wd = self.start(wait=False, expect_exit=1, fprocess="cat")
        rc = wd.wait_exit(T(10))
        self.assertEqual(rc, 1, wd.log_text(None))
        self.assertIn("suppress_lock=true", wd.log_text())

    def test_startup_errors_are_logged_with_timestamp(self):
        # once logging has begun, errors are ordinary log lines (spec 9)
        stamp = r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
        os.mkdir(os.path.join(self.tmp, ".lock"))
        wd = self.start(wait=False, expect_exit=1, fprocess="cat")
        self.assertEqual(wd.wait_exit(T(10)), 1)
        self.assertRegex(wd.find_log(r"suppress_lock=true") or "", stamp)
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("0.0.0.0", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        wd = self.start(wait=False, expect_exit=1, fprocess="cat",
                        port=str(port), suppress_lock="true")
        self.assertEqual(wd.wait_exit(T(10)), 1)
        lines = wd.log_lines("stderr")
        self.assertTrue(lines)
        for line in lines:
            if not line.startswith("=="):       # valgrind's own lines
                self.assertRegex(line, stamp)

    def test_startup_log_lines(self):
        wd = self.start(fprocess="cat", read_timeout="1m30s",
                        write_timeout="15", exec_timeout="1.5h",
                        healthcheck_interval="500ms")
        wd.wait_log(r"Version: \S+\tSHA: \S+")
        wd.wait_log(r'Watchdog mode: streaming\tfprocess: "cat"$')
        wd.wait_log(r"Timeouts: read: 1m30s write: 15s hard: 1h30m0s"
                    r" health: 500ms$")
        wd.wait_log(r"Listening on port: %d$" % wd.port)

    def test_default_timeouts(self):
        wd = self.start(fprocess="cat", healthcheck_interval=None)
        wd.wait_log(r"Timeouts: read: 30s write: 30s hard: 30s health: 30s$")
        # healthcheck_interval defaults to write_timeout (30 s): do not
        # wait for it at teardown.
        wd.signal(signal.SIGINT)
        self.assertEqual(wd.wait_exit(T(10)), 0)

    def test_invalid_duration_falls_back_to_default(self):
        wd = self.start(fprocess="cat", read_timeout="soon",
                        exec_timeout="10 s")
        wd.wait_log(r"Timeouts: read: 30s write: 30s hard: 30s")

    def test_function_process_alias_wins_over_fprocess(self):
        wd = self.start(fprocess="nosuch-program", function_process="cat")
        r = request(wd.port, "POST", "/", body=b"alias")
        self.assertBody(r, b"alias")

    def test_fprocess_double_quotes_and_backslashes_split_like_a_shell(self):
        wd = self.start(fprocess=r'''printf "%s|" "a \"b\"" 'c  d' e\ f''')
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b'a "b"|c  d|e f|')

    def test_fprocess_single_quotes_keep_one_argument(self):
        wd = self.start(fprocess="python3 -c 'print(1)'")
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b"1\n")

    def test_empty_mode_is_streaming(self):
        wd = self.start(fprocess="cat", mode="")
        wd.wait_log(r"Watchdog mode: streaming")
        r = request(wd.port, "POST", "/", body=b"x")
        self.assertBody(r, b"x")
        self.assertIsNone(r.header("X-Duration-Seconds"))
