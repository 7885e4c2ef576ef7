"""Shared parts of the test upstreams (Python standard library only).

The upstreams are run by the watchdog as fprocess (`python3 -B <script>
...`, -B so no __pycache__ lands in the source tree). Each takes its port
as the first argument; "-" or no argument means the environment variable
PORT (set by the watchdog for each of http_workers > 1). They listen on
127.0.0.1 only.
"""

import hashlib
import http.client
import http.server
import json
import os
import socket
import time
import urllib.parse


# http.server refuses a head of more than 100 headers; the watchdog passes
# on tens of thousands (test_hostile's header floods), so take them all.
http.client._MAXHEADERS = 1 << 20

def port_arg(argv, i=1):
    if len(argv) > i and argv[i] != "-":
        return int(argv[i])
    return int(os.environ["PORT"])


def pattern(total, block=65536):
    """Yields total bytes of a deterministic pattern in blocks; block k is
    sha256(k) repeated, so a lost, repeated or reordered block shows."""
    k = 0
    sent = 0
    while sent < total:
        n = min(block, total - sent)
        yield (hashlib.sha256(b"%d" % k).digest() * (block // 32 + 1))[:n]
        sent += n
        k += 1


def wait_file(path, timeout=120):
    """Polls until path exists (a gate the test opens)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit("gate %s never opened" % path)
        time.sleep(0.01)


def touch(path):
    with open(path, "a"):
        pass


def append_line(path, text):
    """Appends one line to path (O_APPEND: whole lines, any writer)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def listener(port):
    """A raw listening socket for the raw-socket upstreams."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1024)
    return s


def read_head(sock, buf=b""):
    """Reads one request head from a raw socket. Returns (head, rest);
    head is None when the peer closed first."""
    while b"\r\n\r\n" not in buf:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            return None, buf
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


class Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler for every method: do_<ANY> goes to
    self.handle_any(), which subclasses define."""

    protocol_version = "HTTP/1.1"

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    def log_message(self, *args):
        pass

    # the request as received
    def target(self):
        """The raw request target (self.path has '//' collapsed)."""
        return self.requestline.split(" ")[1]

    def query(self):
        q = urllib.parse.urlsplit(self.target()).query
        return dict(urllib.parse.parse_qsl(q, keep_blank_values=True))

    def read_body(self, sink):
        """Passes the request body to sink as it arrives. Returns how it
        was framed: "chunked", "length" or "none"."""
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise ValueError("transfer coding %r" % te)
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n",
                                                             b""):
                        pass
                    return "chunked"
                self._copy(size, sink)
                self.rfile.readline(3)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return "none"
        self._copy(int(cl), sink)
        return "length"

    def _copy(self, n, sink):
        while n > 0:
            data = self.rfile.read(min(n, 1 << 16))
            if not data:
                raise ConnectionError("body cut short")
            sink(data)
            n -= len(data)

    def send(self, status, body=b"", headers=(), head_only=None):
        """A whole response with Content-Length."""
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head_only is None:
            head_only = self.command == "HEAD"
        if not head_only:
            self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status, obj, headers=()):
        self.send(status, json.dumps(obj).encode() + b"\n",
                  [("Content-Type", "application/json")] + list(headers))


def serve(handler, port):
    srv = Server(("127.0.0.1", port), handler)
    srv.serve_forever()
