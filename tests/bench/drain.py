#!/usr/bin/env python3
"""How long the drain takes, fwatchdog as PID 1 (unshare): SIGTERM to exit,
idle with healthcheck_interval=0, and with three 2 s requests in flight
and healthcheck_interval=1s. Five runs each.

    python3 tests/bench/drain.py [path/to/fwatchdog]
"""
import os, signal, subprocess, sys, tempfile, time, threading, urllib.request
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from harness import children, free_port, wait_for  # noqa: E402
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(REPO, "build", "fwatchdog"))
FIXTURE = os.path.join(REPO, "tests", "integration", "fixtures",
                       "slow_or_fast.sh")
def run(env_extra, slow):
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="fwdrain-")
    env = {"PATH": "/usr/bin:/bin", "port": str(port), "metrics_port": "0", "TMPDIR": tmp,
           "fprocess": "sh %s %s" % (FIXTURE, tmp)}
    env.update(env_extra)
    p = subprocess.Popen(["unshare","--pid","--fork","--mount-proc","--kill-child", BIN], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = wait_for(lambda: (children(p.pid) or [None])[0], 5, "child")
    wait_for(lambda: os.path.exists(tmp + "/.lock"), 5, "lock")
    ts = []
    for _ in range(slow):
        t = threading.Thread(target=lambda: urllib.request.urlopen("http://127.0.0.1:%d/slow" % port).read(), daemon=True); t.start(); ts.append(t)
    if slow:
        wait_for(lambda: len([n for n in os.listdir(tmp) if n.startswith("started.")]) == slow, 5, "started")
    t0 = time.monotonic(); os.kill(wd, signal.SIGTERM); rc = p.wait(10); took = time.monotonic() - t0
    subprocess.run(["rm", "-rf", tmp])
    return rc, took
for label, env, slow in (("idle, healthcheck_interval=0", {"healthcheck_interval": "0"}, 0),
                         ("3 x 2 s in flight, healthcheck_interval=1s", {"healthcheck_interval": "1s"}, 3)):
    res = [run(env, slow) for _ in range(5)]
    print("%-45s rc=%s  min %.1f ms  median %.1f ms  max %.1f ms" % (label, sorted(set(r for r,_ in res)),
          min(t for _,t in res)*1e3, sorted(t for _,t in res)[2]*1e3, max(t for _,t in res)*1e3))
