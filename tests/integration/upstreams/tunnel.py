"""Upgrades, slow answers and a readiness path, over raw sockets (one
thread per connection, keep-alive until an upgrade or the peer closes).

    tunnel.py PORT RECORD [--ready-gate FILE] [--unready FILE]

Every event worth checking is appended to RECORD as one line (see
common.append_line); connections are numbered from 1 (<cid>).

Requests:
  Upgrade: websocket  the RFC 6455 handshake (Sec-WebSocket-Accept from
                      Sec-WebSocket-Key) answered 101, then every byte
                      received is echoed back unchanged. ?greet=1 sends an
                      unmasked text frame "hello from upstream" in the same
                      write as the 101 head. ?refuse=1 answers 200 instead
                      (body "no upgrade here\\n") and keeps the connection.
  Upgrade: <other>    101 with the same Upgrade value, then echo.
  Upgrade without Connection: upgrade (or no Sec-WebSocket-Key for
                      websocket): 400 "bad upgrade: ...".
  In a tunnel, the bytes CLOSE-NOW make the upstream send "bye" and
  close its side. Records "tunnel <cid> <proto>" on the 101 and
  "eof <cid> <proto> total=<n> first=<hex of the first 64 bytes>" when
  the client side reaches it as EOF.
  /slow               records "slow-start <cid>", then reads (and
                      discards) until EOF or 15 s: on EOF records
                      "slow-closed <cid>", else answers "slow done\\n".
  /upload             reads a Content-Length body, answers
                      "len=<n> sha256=<hex> expect=<Expect header or ->\\n";
                      never sends 100 Continue itself.
  /ready              503 "starting\\n" while the --ready-gate file is
                      missing, 503 "not ready\\n" while the --unready
                      file exists, else 200 "ready n=<k> <METHOD> <target>
                      probe=<X-Probe or ->\\n"; each answer recorded as
                      "ready <status>".
  other               200 "<METHOD> <target> host=<Host or ->\\n".
"""

import base64
import hashlib
import itertools
import os
import socket
import sys
import threading
import time

from common import append_line, listener, port_arg, read_head

PORT = port_arg(sys.argv)
RECORD = sys.argv[2]
OPTS = {}
_args = sys.argv[3:]
while _args:
    _opt = _args.pop(0)
    if _opt in ("--ready-gate", "--unready"):
        OPTS[_opt] = _args.pop(0)
    else:
        raise SystemExit("tunnel.py: unknown option %s" % _opt)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_MARK = b"CLOSE-NOW"
CONNS = itertools.count(1)
READY_COUNT = itertools.count(1)


def record(text):
    append_line(RECORD, text)


def parse_head(head):
    lines = head.split(b"\r\n")
    method, target, version = lines[0].decode("latin-1").split(" ", 2)
    headers = []
    for line in lines[1:]:
        k, v = line.split(b":", 1)
        headers.append((k.decode("latin-1").strip().lower(),
                        v.decode("latin-1").strip()))
    return method, target, version, headers


def get(headers, name, default=None):
    for k, v in headers:
        if k == name:
            return v
    return default


def tokens(headers, name):
    out = []
    for k, v in headers:
        if k == name:
            out += [t.strip().lower() for t in v.split(",")]
    return out


def respond(conn, status, reason, body, extra=b""):
    conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n%s"
                 b"Content-Length: %d\r\n\r\n%s"
                 % (status, reason, extra, len(body), body))


def recv(conn, timeout=None):
    conn.settimeout(timeout)
    try:
        return conn.recv(262144)
    except OSError:
        return b""


def tunnel(conn, cid, proto, rest):
    """Echoes every byte until EOF or CLOSE-NOW."""
    record("tunnel %d %s" % (cid, proto))
    total = 0
    first = b""
    tail = b""
    data = rest
    while True:
        if not data:
            data = recv(conn)
            if not data:
                record("eof %d %s total=%d first=%s"
                       % (cid, proto, total, first.hex()))
                return
        total += len(data)
        if len(first) < 64:
            first = (first + data)[:64]
        if CLOSE_MARK in tail + data:
            record("upstream-close %d %s" % (cid, proto))
            conn.sendall(b"bye")
            return
        conn.sendall(data)
        tail = (tail + data)[-len(CLOSE_MARK):]
        data = b""


def upgrade(conn, cid, target, headers, rest):
    """Answers an upgrade request; True when the connection is now a
    tunnel (or finished), False to read the next request."""
    proto = get(headers, "upgrade")
    conn_tokens = tokens(headers, "connection")
    if "upgrade" not in conn_tokens:
        respond(conn, 400, b"Bad Request",
                b"bad upgrade: Connection %r\n" % ",".join(conn_tokens)
                .encode())
        return False
    if "refuse=1" in target:
        respond(conn, 200, b"OK", b"no upgrade here\n")
        return False
    extra = b""
    greeting = b""
    if proto.lower() == "websocket":
        key = get(headers, "sec-websocket-key")
        if not key or get(headers, "sec-websocket-version") != "13":
            respond(conn, 400, b"Bad Request",
                    b"bad upgrade: no Sec-WebSocket-Key/Version\n")
            return False
        accept = base64.b64encode(
            hashlib.sha1(key.encode() + WS_GUID).digest())
        extra = b"Sec-WebSocket-Accept: %s\r\n" % accept
        if "greet=1" in target:
            text = b"hello from upstream"
            greeting = bytes([0x81, len(text)]) + text
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\n"
                 b"Connection: Upgrade\r\n%s\r\n%s"
                 % (proto.encode("latin-1"), extra, greeting))
    tunnel(conn, cid, proto, rest)
    return True


def slow(conn, cid, rest):
    record("slow-start %d" % cid)
    deadline = time.monotonic() + 15
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            respond(conn, 200, b"OK", b"slow done\n")
            record("slow-answered %d" % cid)
            return
        conn.settimeout(left)
        try:
            data = conn.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            data = b""
        if not data:
            record("slow-closed %d" % cid)
            return


def upload(conn, headers, rest):
    n = int(get(headers, "content-length", "0"))
    digest = hashlib.sha256()
    got = 0
    data = rest
    while got < n:
        if not data:
            data = recv(conn)
            if not data:
                return None
        take = data[:n - got]
        digest.update(take)
        got += len(take)
        data = data[len(take):]
    body = b"len=%d sha256=%s expect=%s\n" % (
        got, digest.hexdigest().encode(),
        get(headers, "expect", "-").encode("latin-1"))
    respond(conn, 200, b"OK", body)
    return data


def ready(conn, method, target, headers):
    gate = OPTS.get("--ready-gate")
    unready = OPTS.get("--unready")
    if gate and not os.path.exists(gate):
        status, body = 503, b"starting\n"
    elif unready and os.path.exists(unready):
        status, body = 503, b"not ready\n"
    else:
        status = 200
        body = ("ready n=%d %s %s probe=%s\n"
                % (next(READY_COUNT), method, target,
                   get(headers, "x-probe", "-"))).encode("latin-1")
    record("ready %d" % status)
    respond(conn, status, b"OK" if status == 200 else b"Unavailable", body)


def serve(conn, cid):
    try:
        buf = b""
        while True:
            head, rest = read_head(conn, buf)
            if head is None:
                return
            method, target, version, headers = parse_head(head)
            path = target.split("?")[0]
            if get(headers, "upgrade") is not None:
                if upgrade(conn, cid, target, headers, rest):
                    return
                buf = rest
            elif path == "/slow":
                slow(conn, cid, rest)
                return
            elif path == "/upload":
                buf = upload(conn, headers, rest)
                if buf is None:
                    return
            elif path == "/ready":
                ready(conn, method, target, headers)
                buf = rest
            else:
                respond(conn, 200, b"OK", ("%s %s host=%s\n" % (
                    method, target, get(headers, "host", "-")))
                    .encode("latin-1"))
                buf = rest
    except OSError:
        pass
    finally:
        conn.close()


def main():
    s = listener(PORT)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, next(CONNS)),
                         daemon=True).start()


if __name__ == "__main__":
    main()
