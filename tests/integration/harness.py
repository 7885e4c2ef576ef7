"""Integration harness: runs the real fwatchdog binary over loopback.

Environment:
  FWATCHDOG   path of the binary (default build/fwatchdog in the repo root)
  FW_WRAPPER  command prefix, split on spaces (valgrind --error-exitcode=99 ...)
  FW_SLOW=1   multiply every deadline by 10 (slow wrappers)

Every watchdog a test starts gets a free loopback port, a private TMPDIR,
a clean environment and metrics_port=0; its stdout and stderr are
collected line by line so tests can wait for log lines. On teardown it
gets SIGTERM and must exit with the status the test expects (0 unless
told otherwise); dying of a signal always fails the test.

No sleeps as synchronisation: wait_for() polls a condition to a deadline.
"""

import hashlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures")
BINARY = os.environ.get("FWATCHDOG") or os.path.join(REPO, "build", "fwatchdog")
WRAPPER = os.environ.get("FW_WRAPPER", "").split()
SLOW = 10 if os.environ.get("FW_SLOW", "") not in ("", "0") else 1

ANY_EXIT = "any"             # expect_exit value: any status, no signal


def T(seconds):
    """A deadline in seconds, scaled for slow wrappers."""
    return seconds * SLOW


def dur(seconds):
    """A Go duration string for a config value that must scale with
    FW_SLOW (e.g. healthcheck windows the test must act inside)."""
    return "%ds" % (seconds * SLOW)


def fixture(name):
    return os.path.join(FIXTURES, name)


def quote(word):
    """Quotes one word for fprocess (spec 5.1 rules: '...' is literal)."""
    if word and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def fp(*words):
    """Builds an fprocess command line from words."""
    return " ".join(quote(w) for w in words)


def sh_fixture(name, *args):
    """fprocess running a fixture script with sh (no exec bit needed)."""
    return fp("sh", fixture(name), *args)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_for(predicate, timeout, message="condition", interval=0.02):
    """Polls predicate until it returns a truthy value (returned) or the
    deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except Exception as e:          # a probe may fail while waiting
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1fs waiting for %s%s"
                                 % (timeout, message, extra))
        time.sleep(interval)


# ---------------------------------------------------------------- processes

def proc_stat(pid):
    """(state, ppid) of a process, or None when /proc has no entry."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def pid_reaped(pid):
    """True when the process is gone and reaped (no /proc entry)."""
    return proc_stat(pid) is None


def pid_dead(pid):
    """True when the process is gone or a zombie."""
    st = proc_stat(pid)
    return st is None or st[0] in ("Z", "X")


def proc_status_kib(pid, field):
    """A "<field>: <n> kB" line of /proc/<pid>/status, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    """Resident set size of a process in KiB."""
    return proc_status_kib(pid, "VmRSS")


def zombie_children(pid):
    """Pids of zombie processes whose parent is pid."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[1] == pid and st[0] == "Z":
                out.append(int(name))
    return out


def children(pid):
    """Pids of the children of pid, of all its threads (from /proc)."""
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return out
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def read_pidfile(path, timeout):
    def get():
        try:
            with open(path) as f:
                text = f.read().split()
        except FileNotFoundError:
            return None
        return [int(x) for x in text] if text else None
    return wait_for(get, timeout, "pid file %s" % path)


def kill_marked_processes(marker):
    """SIGKILLs leftover processes whose environment holds marker."""
    needle = ("FWTEST_MARKER=%s\0" % marker).encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env:
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass


# ---------------------------------------------------------------- responses

class Response:
    """An HTTP response: status, reason, version, headers as a list of
    (name, value) in received order, body bytes, complete (framing ended
    properly: terminating chunk, full Content-Length or EOF for
    close-delimited bodies), closed (the server closed after it), chunked
    and raw_head (bytes of the status line and headers)."""

    def __init__(self):
        self.version = ""
        self.status = 0
        self.reason = ""
        self.headers = []
        self.body = b""
        self.complete = False
        self.closed = False
        self.chunked = False
        self.raw_head = b""

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def __repr__(self):
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return ("<Response %s %d %r headers=%r body=%r complete=%s closed=%s>"
                % (self.version, self.status, self.reason, self.headers, body,
                   self.complete, self.closed))


class ProtocolError(AssertionError):
    pass


class RawConn:
    """A raw loopback TCP connection with an HTTP/1.1 response reader."""

    def __init__(self, port, timeout=None):
        self.timeout = T(10) if timeout is None else timeout
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=self.timeout)
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes into buf; False at EOF."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(262144)
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                if not line.endswith(b"\r\n"):
                    raise ProtocolError("line not ended by CRLF: %r" % line)
                return line[:-2]
            if len(self.buf) > 1 << 20:
                raise ProtocolError("line too long")
            if not self._fill(deadline):
                return None

    def _exact(self, n, sink, deadline):
        """Passes n bytes to sink; returns the count actually read."""
        got = 0
        while got < n:
            if not self.buf and not self._fill(deadline):
                break
            take = min(n - got, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            got += take
        return got

    def read_response(self, method="GET", sink=None, timeout=None):
        """Reads one response. With sink, body bytes go to sink(bytes)
        instead of resp.body. Interim 1xx responses are returned as they
        are (call again for the final one)."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        resp = Response()
        parts = []
        if sink is None:
            sink = parts.append
        try:
            line = self._line(deadline)
            if line is None:
                raise ProtocolError("connection closed before a response"
                                    " (reset=%s)" % self.reset)
            head = [line]
            m = re.match(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", line)
            if not m:
                raise ProtocolError("bad status line %r" % line)
            resp.version = m.group(1).decode()
            resp.status = int(m.group(2))
            resp.reason = (m.group(3) or b"").decode("latin-1")
            while True:
                line = self._line(deadline)
                if line is None:
                    raise ProtocolError("closed inside response head")
                head.append(line)
                if line == b"":
                    break
                if b":" not in line:
                    raise ProtocolError("bad header line %r" % line)
                k, v = line.split(b":", 1)
                resp.headers.append((k.decode("latin-1"),
                                     v.strip(b" \t").decode("latin-1")))
            resp.raw_head = b"\r\n".join(head) + b"\r\n"
            if 100 <= resp.status < 200:
                resp.complete = True
                return resp
            te = (resp.header("Transfer-Encoding") or "").lower()
            cl = resp.header("Content-Length")
            if method == "HEAD" or resp.status in (204, 304):
                resp.complete = True
            elif te:
                if te != "chunked":
                    raise ProtocolError("unexpected transfer coding %r" % te)
                resp.chunked = True
                while True:
                    line = self._line(deadline)
                    if line is None:
                        break
                    size = int(line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while True:
                            line = self._line(deadline)
                            if line is None or line == b"":
                                break
                        resp.complete = line == b""
                        break
                    if self._exact(size, sink, deadline) < size:
                        break
                    if self._line(deadline) != b"":
                        break
            elif cl is not None:
                n = int(cl)
                resp.complete = self._exact(n, sink, deadline) == n
            else:
                while self.buf or self._fill(deadline):
                    sink(bytes(self.buf))
                    self.buf.clear()
                resp.complete = True
        except socket.timeout:
            raise AssertionError("timed out reading response; so far: %r"
                                 " body=%r" % (resp, b"".join(parts)[:200]))
        resp.body = b"".join(parts)
        resp.closed = self.eof and not self.buf
        return resp

    def request(self, method, path, headers=(), body=None, version="HTTP/1.1",
                host="localhost", timeout=None):
        """Sends one request (Content-Length framing when body is given)
        and reads its final response (skipping 100 Continue)."""
        self.send(build_request(method, path, headers, body, version, host))
        while True:
            r = self.read_response(method, timeout=timeout)
            if r.status != 100:
                return r

    def peek_until(self, needle, timeout=None):
        """Reads until needle shows up in the unread bytes (which stay
        unread); False if the connection ends first."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        try:
            while needle not in self.buf:
                if not self._fill(deadline):
                    return False
        except socket.timeout:
            raise AssertionError("timed out waiting for %r; got %r"
                                 % (needle, bytes(self.buf[:300])))
        return True

    def wait_closed(self, timeout=None):
        """True if the server closes the connection within timeout;
        bytes read meanwhile stay in self.buf."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        try:
            while self._fill(deadline):
                pass
        except socket.timeout:
            return False
        return True


def build_request(method, path, headers=(), body=None, version="HTTP/1.1",
                  host="localhost"):
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = set()
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
        names.add(k.lower())
    if body is not None and "content-length" not in names \
            and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode()
    return data


def chunked(*pieces):
    """A chunked body from pieces (bytes), with the terminating chunk."""
    out = b""
    for p in pieces:
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n\r\n"


def request(port, method, path, body=None, headers=None, timeout=None):
    """One request with http.client on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port,
                                      timeout=T(10) if timeout is None
                                      else timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        resp = Response()
        resp.version = "HTTP/1.1" if r.version == 11 else "HTTP/1.0"
        resp.status = r.status
        resp.reason = r.reason
        resp.headers = list(r.getheaders())
        resp.body = data
        resp.complete = True
        resp.chunked = (r.getheader("Transfer-Encoding") or "").lower() \
            == "chunked"
        return resp
    finally:
        conn.close()


def parse_env(body):
    """Lines NAME=value of env(1) output, as a list of pairs."""
    out = []
    for line in body.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            out.append((k, v))
    return out


# ---------------------------------------------------------------- watchdog

def run_cli(args, env=None, timeout=None):
    """Runs the binary to completion (for flags and config errors).
    Returns (status, stdout, stderr) with valgrind's own lines removed
    from stderr."""
    cmd = WRAPPER + [BINARY] + list(args)
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    full_env.update(env or {})
    p = subprocess.run(cmd, env=full_env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=T(10) if timeout is None else timeout)
    err = "\n".join(l for l in p.stderr.decode("utf-8", "replace").split("\n")
                    if not re.match(r"==\d+==", l))
    return p.returncode, p.stdout.decode("utf-8", "replace"), err


class Watchdog:
    """One running fwatchdog."""

    def __init__(self, env, tmpdir, args=(), expect_exit=0, cwd=None,
                 launcher=()):
        self.tmpdir = tmpdir
        self.port = int(env["port"])
        self.env = env
        self.expect_exit = expect_exit
        self.lines = []              # (stream, text)
        self.cond = threading.Condition()
        self.lock_path = os.path.join(env.get("TMPDIR", "/tmp"), ".lock")
        cmd = list(launcher) + WRAPPER + [BINARY] + list(args)
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     start_new_session=True, cwd=cwd)
        self.pid = self.proc.pid
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout,
                                                      "stdout"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr,
                                                      "stderr"), daemon=True),
        ]
        for t in self.readers:
            t.start()
        self.stopped = False
        # the watchdog's own pid: with a launcher that forks (unshare
        # --fork), its child; signals go there
        self.wd_pid = self.pid
        if launcher:
            self.wd_pid = wait_for(
                lambda: (children(self.pid) or [None])[0] if self.alive()
                else -1, T(10), "launched watchdog")

    def _read(self, pipe, name):
        for raw in iter(pipe.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append((name, text))
                self.cond.notify_all()
        pipe.close()

    # logs
    def log_lines(self, stream=None):
        with self.cond:
            return [t for s, t in self.lines if stream is None or s == stream]

    def log_text(self, stream=None):
        return "\n".join(self.log_lines(stream))

    def find_log(self, pattern, stream="stderr"):
        rx = re.compile(pattern)
        for line in self.log_lines(stream):
            if rx.search(line):
                return line
        return None

    def wait_log(self, pattern, timeout=None, stream="stderr"):
        """Waits for a log line matching regex pattern; returns it."""
        try:
            return wait_for(lambda: self.find_log(pattern, stream),
                            T(10) if timeout is None else timeout,
                            "log line /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s; %s log was:\n%s"
                                 % (e, stream, self.log_text(stream)))

    # state
    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout):
        """Exit status, or None if still running after timeout. Once it
        has exited, every line it wrote has been collected."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self.readers:
            t.join(T(5))
        return rc

    def wait_healthy(self, timeout=None):
        deadline = time.monotonic() + (T(10) if timeout is None else timeout)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    "watchdog exited with %s before becoming healthy; log:\n%s"
                    % (self.proc.returncode, self.log_text(None)))
            try:
                with RawConn(self.port, timeout=T(2)) as c:
                    r = c.request("GET", "/_/health")
                if r.status == 200:
                    return
                last = r.status
            except (OSError, AssertionError) as e:
                last = e
            time.sleep(0.02)
        raise AssertionError("watchdog not healthy in time (last: %r); log:\n%s"
                             % (last, self.log_text(None)))

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.wd_pid, sig)

    def shutdown(self):
        """SIGTERM, wait, return a list of problems (empty when fine)."""
        problems = []
        if self.stopped:
            return problems
        self.stopped = True
        # a watchdog already on its way out (it logged "Exiting.") is
        # only waited for: a late SIGTERM could hit its exit path
        exiting = self.find_log(r"Exiting\. Active connections") is not None
        if self.proc.poll() is None:
            try:
                if not exiting:
                    os.kill(self.wd_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(T(40))
            except subprocess.TimeoutExpired:
                problems.append("watchdog did not exit after SIGTERM")
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(T(10))
        for t in self.readers:
            t.join(T(5))
        rc = self.proc.returncode
        if rc is not None and rc < 0:
            problems.append("watchdog died of signal %s"
                            % signal.Signals(-rc).name)
        elif self.expect_exit == ANY_EXIT:
            if rc == 99 and WRAPPER:
                problems.append("watchdog exited 99 (valgrind errors?)")
        elif rc != self.expect_exit:
            problems.append("watchdog exited with status %s, expected %s"
                            % (rc, self.expect_exit))
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        kill_marked_processes(self.tmpdir)
        return problems


class WatchdogTest(unittest.TestCase):
    """Base class: self.start(**env) starts a watchdog and waits until
    /_/health answers 200; teardown stops it and checks its exit."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fwtest-")
        self.watchdogs = []
        # a cleanup, not tearDown: it also runs when setUp fails
        self.addCleanup(self.stop_watchdogs)

    def stop_watchdogs(self):
        problems = []
        for wd in self.watchdogs:
            problems += wd.shutdown()
        kill_marked_processes(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            self.fail("; ".join(problems))

    def path(self, name):
        return os.path.join(self.tmp, name)

    def base_env(self, **env):
        e = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "TMPDIR": self.tmp,
            "FWTEST_MARKER": self.tmp,
            "port": str(free_port()),
            "metrics_port": "0",
            "healthcheck_interval": "0",
        }
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return e

    def start(self, wait=True, args=(), expect_exit=0, cwd=None,
              launcher=(), **env):
        """Starts a watchdog. Keyword arguments are environment variables
        (None removes one of the defaults); launcher is a command prefix
        that runs it (unshare ...)."""
        e = self.base_env(**env)
        last = None
        for _ in range(3):           # a free port may be taken meanwhile
            wd = Watchdog(e, self.tmp, args=args, expect_exit=expect_exit,
                          cwd=cwd, launcher=launcher)
            self.watchdogs.append(wd)
            if not wait:
                return wd
            try:
                wd.wait_healthy()
                return wd
            except AssertionError as exc:
                last = exc
                wd.expect_exit = ANY_EXIT
                wd.shutdown()
                if "address already in use" not in wd.log_text().lower():
                    raise
                e["port"] = str(free_port())
        raise last

    # convenience
    def assertBody(self, resp, body, status=200):
        if isinstance(body, str):
            body = body.encode()
        self.assertEqual((resp.status, resp.body), (status, body), resp)


def send_in_background(conn, total):
    """Sends sha256_stream(total) on conn's socket from a thread, so the
    test can read the response meanwhile. Returns (thread, sha256 of
    what was sent, list of exceptions raised while sending)."""
    sent = hashlib.sha256()
    errors = []

    def sender():
        try:
            for block in sha256_stream(total):
                sent.update(block)
                conn.sock.sendall(block)
        except Exception as e:               # reported by the caller
            errors.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    return th, sent, errors


def sha256_stream(total, block=1 << 20, seed=b"fwatchdog"):
    """Yields total bytes of deterministic pseudo-random data in blocks;
    each block differs (counter prefix) so reordering is detected."""
    base = hashlib.sha256(seed).digest() * (block // 32 + 1)
    i = 0
    sent = 0
    while sent < total:
        n = min(block, total - sent)
        prefix = b"%016d" % i
        yield (prefix + base)[:n]
        sent += n
        i += 1


class InFlight:
    """A request running in a background thread (for slow functions).
    .result is the Response, .error the exception, after join()."""

    def __init__(self, port, method="GET", path="/slow", body=None,
                 timeout=None):
        self.result = None
        self.error = None
        self.thread = threading.Thread(
            target=self._run, args=(port, method, path, body,
                                    T(60) if timeout is None else timeout),
            daemon=True)
        self.thread.start()

    def _run(self, port, method, path, body, timeout):
        try:
            self.result = request(port, method, path, body=body,
                                  timeout=timeout)
        except Exception as e:
            self.error = e

    def join(self, timeout=None):
        self.thread.join(T(60) if timeout is None else timeout)
        if self.thread.is_alive():
            raise AssertionError("request still running")
        if self.error is not None:
            raise AssertionError("request failed: %r" % (self.error,))
        return self.result
