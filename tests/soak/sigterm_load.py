#!/usr/bin/env python3
"""SIGTERM under load (issue 8): wrk at c=32 against a fork-mode
fwatchdog (fprocess=cat, healthcheck_interval=1s) that gets SIGTERM
midway. Every request it accepted must get its full answer:

  - Non-2xx responses: 0
  - read errors (a reset or a close of an accepted connection before its
    answer): 0; timeouts: 0
  - connect and write errors are expected once the listener has closed:
    wrk 4.1 connects without blocking and counts a refused connection as
    a write error (its first write fails with ECONNREFUSED), so those
    two counters say nothing about accepted requests
  - the watchdog drains (its log says so) and exits 0

    FWATCHDOG=/abs/path/fwatchdog python3 tests/soak/sigterm_load.py

Needs wrk (make soak installs it: make deps EXTRA_DEPS=wrk).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import Watchdog, free_port  # noqa: E402

CONNS = 32
BEFORE = 2.0         # seconds of load before the SIGTERM
AFTER = 2.0          # and after it (the listener closes after 1 s)


def main():
    wrk = shutil.which("wrk")
    if wrk is None:
        print("sigterm-under-load: wrk not found (make deps EXTRA_DEPS=wrk)")
        return 1
    tmp = tempfile.mkdtemp(prefix="fwsigterm-")
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "TMPDIR": tmp, "FWTEST_MARKER": tmp, "port": str(free_port()),
        "metrics_port": "0", "healthcheck_interval": "1s",
        "fprocess": "cat", "log_requests": "false",
    }
    wd = Watchdog(env, tmp)
    try:
        wd.wait_healthy(30)
        cmd = [wrk, "-t2", "-c%d" % CONNS, "-d%ds" % int(BEFORE + AFTER),
               "--timeout", "10s", "http://127.0.0.1:%d/" % wd.port]
        load = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        time.sleep(BEFORE)
        term_at = time.monotonic()
        wd.signal(signal.SIGTERM)
        rc = wd.wait_exit(60)
        exited = time.monotonic() - term_at
        out = load.communicate(timeout=60)[0].decode("utf-8", "replace")
        problems = []
        if rc != 0:
            problems.append("watchdog exit status %s" % rc)
        m = re.search(r"(\d+) requests in", out)
        total = int(m.group(1)) if m else 0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write "
                      r"(\d+), timeout (\d+)", out)
        connect, read, write, timeout = map(int, m.groups()) if m \
            else (0, 0, 0, 0)
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        non2xx = int(m.group(1)) if m else 0
        drained = wd.find_log(r"No new connections allowed, draining")
        print("sigterm-under-load: wrk c=%d, SIGTERM after %.0fs, "
              "healthcheck_interval=1s: %d responses, non-2xx %d, "
              "socket errors: read %d, timeout %d (connect %d, write %d:"
              " refused after the listener closed); watchdog exited %s "
              "%.1fs after SIGTERM" % (CONNS, BEFORE, total, non2xx, read,
                                       timeout, connect, write, rc, exited))
        if total == 0:
            problems.append("wrk got no answer:\n" + out)
        if non2xx:
            problems.append("%d non-2xx answers" % non2xx)
        if read or timeout:
            problems.append("accepted requests lost: read %d, timeout %d"
                            % (read, timeout))
        if not drained:
            problems.append("no drain log line")
        if problems:
            print("sigterm-under-load: FAILED: " + "; ".join(problems))
            print(out)
            print("\n".join(wd.log_lines()[-30:]))
            return 1
        print("sigterm-under-load: ok")
        return 0
    finally:
        wd.expect_exit = harness.ANY_EXIT
        wd.shutdown()
        harness.kill_marked_processes(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
