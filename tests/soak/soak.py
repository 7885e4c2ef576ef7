#!/usr/bin/env python3
"""Soak (issue 8): SOAK_REQUESTS (default 100 000) mixed requests against
three fwatchdogs, then their open fds, RSS and child processes must be
back to where they were after a warm-up, with no zombie and no stray
descendant left.

    FWATCHDOG=/abs/path/fwatchdog SOAK_REQUESTS=N python3 tests/soak/soak.py

The watchdogs (each its own port, TMPDIR and marker, like the
integration harness's):
  cat   streaming, fprocess=cat                 fork success, client abort
                                                mid-body
  fn    streaming, fprocess=sh fn.sh,           function failure (500),
        exec_timeout=300ms                      exec_timeout (500),
                                                client abort while it runs
  http  mode=http in front of upstreams/echo.py proxied GET and POST

SOAK_THREADS (default 8) clients each keep one keep-alive connection per
watchdog; aborts use fresh connections. The first WARMUP (1000) requests
warm the allocator, the upstream pool and the kernel; then everything is
measured at rest (every client connection closed, the children gone),
the rest of the requests are sent, and everything is measured again.

Pass criteria, per watchdog:
  fds       equal (http: not counting the pooled upstream connections,
            whose number depends on the peak concurrency reached; the
            pool must stay within SOAK_THREADS)
  RSS       within max(RSS_SLACK_KIB, RSS_SLACK_PCT) of the warm figure:
            glibc keeps freed heap pages (the allocator's top pad and
            per-thread arenas of the log writer), so a few hundred KiB
            move with the order of frees; a leak of even 16 bytes per
            request would add 1.5 MiB over 100k requests
  children  the same number (0 for fork mode, the upstream in http mode)
  zombies   none; no process carrying the marker but the watchdogs and
            the upstream
Every answer must also be the expected one. SOAK_DEADLINE (default
120 s + 6 ms per request) bounds the whole run.
"""

import os
import random
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import (RawConn, Watchdog, build_request, children, fp,  # noqa
                     free_port, rss_kib, wait_for, zombie_children)

REQUESTS = int(os.environ.get("SOAK_REQUESTS", "100000"))
THREADS = int(os.environ.get("SOAK_THREADS", "8"))
WARMUP = min(1000, REQUESTS // 10)
DEADLINE = float(os.environ.get("SOAK_DEADLINE", 120 + 0.006 * REQUESTS))
RSS_SLACK_KIB = 1024
RSS_SLACK_PCT = 10
UPSTREAMS = os.path.join(REPO, "tests", "integration", "upstreams")

# the mix, per 200 requests: (share, kind)
MIX = [(80, "http_get"), (10, "http_post"), (80, "fork_ok"), (20, "fail"),
       (1, "timeout"), (2, "abort_running"), (2, "abort_body"),
       (5, "fn_ok")]
KINDS = [k for n, k in MIX for _ in range(n)]
assert len(KINDS) == 200


class Failure(Exception):
    pass


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def pool_size(up_port):
    """Established connections from anyone to the upstream's port: the
    watchdog's pool (only the watchdog talks to its upstream)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    rem_port = int(cols[2].rsplit(":", 1)[1], 16)
                    if rem_port == up_port and cols[3] == "01":
                        n += 1
        except FileNotFoundError:
            pass
    return n


def marked_pids(marker):
    needle = ("FWTEST_MARKER=%s\0" % marker).encode()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                if needle in f.read():
                    out.append(int(name))
        except OSError:
            pass
    return out


class Fw:
    """One watchdog of the soak."""

    def __init__(self, name, **env):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="fwsoak-%s-" % name)
        e = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "TMPDIR": self.tmp, "FWTEST_MARKER": self.tmp,
            "port": str(free_port()), "metrics_port": "0",
            "healthcheck_interval": "0",
        }
        e.update(env)
        self.up_port = int(env["upstream_url"].rsplit(":", 1)[1]) \
            if "upstream_url" in env else None
        self.wd = Watchdog(e, self.tmp)
        self.wd.wait_healthy(30)
        self.port = self.wd.port
        self.pid = self.wd.wd_pid

    def upstream_pids(self):
        return children(self.pid) if self.up_port else []

    def figures(self):
        fds = fd_count(self.pid)
        pool = pool_size(self.up_port) if self.up_port else 0
        kids = children(self.pid)
        stray = [p for p in marked_pids(self.tmp)
                 if p != self.pid and p not in kids]
        return {"fds": fds - pool, "pool": pool, "rss_kib": rss_kib(self.pid),
                "children": len(kids), "zombies": len(zombie_children(
                    self.pid)), "stray": len(stray)}

    def wait_at_rest(self, want_children):
        wait_for(lambda: len(children(self.pid)) == want_children
                 and not zombie_children(self.pid), 30,
                 "%s: children back to %d" % (self.name, want_children))
        last = [None]

        def settled():
            n = fd_count(self.pid)
            ok, last[0] = n == last[0], n
            return ok
        wait_for(settled, 30, "%s: fds to settle" % self.name, interval=0.5)


class Client(threading.Thread):
    """Sends its share of the requests, on keep-alive connections."""

    def __init__(self, fws, indices, errors, counts):
        super().__init__(daemon=True)
        self.fws, self.indices = fws, indices
        self.errors, self.counts = errors, counts
        self.conns = {}
        self.rng = random.Random(len(indices))

    def conn(self, fw):
        c = self.conns.get(fw.name)
        if c is None:
            c = self.conns[fw.name] = RawConn(fw.port, timeout=30)
        return c

    def drop(self, fw):
        c = self.conns.pop(fw.name, None)
        if c:
            c.close()

    def close_all(self):
        for name in list(self.conns):
            self.conns.pop(name).close()

    def exchange(self, fw, raw, method):
        for attempt in (0, 1):
            c = self.conn(fw)
            try:
                c.send(raw)
                r = c.read_response(method)
            except (OSError, AssertionError) as e:
                self.drop(fw)
                # a keep-alive connection closed by the server between
                # requests is retried once on a fresh one
                if attempt == 0 and not getattr(c, "used", False):
                    continue
                raise Failure("%s: %r" % (fw.name, e))
            c.used = True
            if r.closed or (r.header("Connection") or "").lower() == "close":
                self.drop(fw)
            return r

    def abort(self, fw, raw, wait):
        c = RawConn(fw.port, timeout=30)
        try:
            c.send(raw)
            time.sleep(wait)
        finally:
            c.close()

    def one(self, i):
        kind = KINDS[i % len(KINDS)]
        fws = self.fws
        if kind == "http_get":
            r = self.exchange(fws["http"], build_request(
                "GET", "/soak?i=%d" % i), "GET")
            ok = r.status == 200 and b'"/soak?i=%d"' % i in r.body
        elif kind == "http_post":
            body = os.urandom(self.rng.randrange(1, 4096))
            r = self.exchange(fws["http"], build_request(
                "POST", "/up", body=body), "POST")
            ok = r.status == 200 and b'"length": %d' % len(body) in r.body
        elif kind == "fork_ok":
            body = b"soak %d" % i
            r = self.exchange(fws["cat"], build_request(
                "POST", "/", body=body), "POST")
            ok = r.status == 200 and r.body == body
        elif kind == "fn_ok":
            r = self.exchange(fws["fn"], build_request("GET", "/ok"), "GET")
            ok = r.status == 200 and r.body == b"ok\n"
        elif kind == "fail":
            r = self.exchange(fws["fn"], build_request("GET", "/fail"), "GET")
            ok = r.status == 500 and b"exit status 3" in r.body
        elif kind == "timeout":
            r = self.exchange(fws["fn"], build_request("GET", "/sleep"),
                              "GET")
            ok = r.status == 500 and b"killed" in r.body
        elif kind == "abort_running":
            self.abort(fws["fn"], build_request("GET", "/sleep"), 0.02)
            r, ok = None, True
        elif kind == "abort_body":
            raw = build_request("POST", "/", [("Content-Length", "100000")],
                                body=b"")
            self.abort(fws["cat"], raw + b"x" * 1000, 0.005)
            r, ok = None, True
        if not ok:
            raise Failure("request %d (%s): %r" % (i, kind, r))
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def run(self):
        for i in self.indices:
            try:
                self.one(i)
            except Failure as e:
                self.errors.append(str(e))
                if len(self.errors) > 20:
                    return
        self.close_all()


def run_batch(fws, lo, hi, deadline, counts):
    errors = []
    clients = [Client(fws, range(lo + t, hi, THREADS), errors, counts)
               for t in range(THREADS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(max(1, deadline - time.monotonic()))
        if c.is_alive():
            raise SystemExit("soak: FAILED, deadline of %.0fs passed"
                             % DEADLINE)
    return errors


def main():
    t0 = time.monotonic()
    deadline = t0 + DEADLINE
    print("soak: %d requests, %d client threads, warm-up %d, deadline "
          "%.0fs, binary %s" % (REQUESTS, THREADS, WARMUP, DEADLINE,
                                harness.BINARY))
    up = free_port()
    fws = {}
    try:
        fws["cat"] = Fw("cat", fprocess="cat")
        fws["fn"] = Fw("fn", fprocess=fp("sh", os.path.join(HERE, "fn.sh")),
                       exec_timeout="300ms")
        fws["http"] = Fw("http", mode="http",
                         upstream_url="http://127.0.0.1:%d" % up,
                         fprocess=fp("python3", "-B", os.path.join(
                             UPSTREAMS, "echo.py"), str(up)))
        want_children = {n: len(f.upstream_pids()) for n, f in fws.items()}
        counts = {}
        errors = run_batch(fws, 0, WARMUP, deadline, counts)
        if errors:
            raise SystemExit("soak: FAILED in warm-up:\n  " +
                             "\n  ".join(errors[:20]))
        for name, f in fws.items():
            f.wait_at_rest(want_children[name])
        before = {n: f.figures() for n, f in fws.items()}
        t1 = time.monotonic()
        errors = run_batch(fws, WARMUP, REQUESTS, deadline, counts)
        secs = time.monotonic() - t1
        for name, f in fws.items():
            f.wait_at_rest(want_children[name])
        after = {n: f.figures() for n, f in fws.items()}
        print("soak: %d requests in %.0fs (%.0f req/s after warm-up): %s"
              % (REQUESTS, time.monotonic() - t0,
                 (REQUESTS - WARMUP) / secs,
                 ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
        problems = ["wrong answer: " + e for e in errors[:20]]
        print("soak: %-5s %-14s %-14s %-18s %-10s %-8s %s" % (
            "", "fds", "upstream pool", "RSS KiB", "children", "zombies",
            "stray"))
        for name, f in fws.items():
            b, a = before[name], after[name]
            print("soak: %-5s %4d -> %-6d %4d -> %-6d %6d -> %-8d %3d -> %-4d"
                  " %2d -> %-3d %d -> %d" % (
                      name, b["fds"], a["fds"], b["pool"], a["pool"],
                      b["rss_kib"], a["rss_kib"], b["children"],
                      a["children"], b["zombies"], a["zombies"], b["stray"],
                      a["stray"]))
            slack = max(RSS_SLACK_KIB, b["rss_kib"] * RSS_SLACK_PCT // 100)
            if a["fds"] != b["fds"]:
                problems.append("%s: fds %d -> %d" % (name, b["fds"],
                                                        a["fds"]))
            if a["pool"] > THREADS:
                problems.append("%s: upstream pool of %d > %d clients"
                                % (name, a["pool"], THREADS))
            if a["rss_kib"] > b["rss_kib"] + slack:
                problems.append("%s: RSS %d -> %d KiB (slack %d)" % (
                    name, b["rss_kib"], a["rss_kib"], slack))
            if a["children"] != b["children"]:
                problems.append("%s: children %d -> %d" % (
                    name, b["children"], a["children"]))
            if a["zombies"] or a["stray"]:
                problems.append("%s: %d zombies, %d stray processes" % (
                    name, a["zombies"], a["stray"]))
            if not f.wd.alive():
                problems.append("%s: watchdog died" % name)
        for name, f in fws.items():
            problems += ["%s: %s" % (name, p) for p in f.wd.shutdown()]
        if time.monotonic() > deadline:
            problems.append("deadline of %.0fs passed" % DEADLINE)
        if problems:
            print("soak: FAILED\n  " + "\n  ".join(problems))
            return 1
        print("soak: ok")
        return 0
    finally:
        for f in fws.values():
            f.wd.expect_exit = harness.ANY_EXIT
            f.wd.shutdown()
            harness.kill_marked_processes(f.tmp)
            shutil.rmtree(f.tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
