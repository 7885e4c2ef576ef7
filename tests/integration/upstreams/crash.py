"""The echo upstream, plus paths that make the process exit.

    crash.py PORT

/crash         os._exit(3) without answering.
/crash?orphan=1  first fork a child that finishes the /slow requests in
               flight (a canned 200 "finished\\n" once their gate opens),
               then os._exit(3): the upstream process is gone while its
               connections live on.
/slow?started=FILE&gate=FILE  touch started, answer "slow done\\n" once
               gate exists.
"""

import os
import sys
import threading

import echo
from common import port_arg, serve, touch, wait_file

SLOW = []                    # (socket, gate) of /slow requests in flight
SLOW_LOCK = threading.Lock()


class Crash(echo.Echo):

    def handle_any(self):
        path = self.target().split("?")[0]
        q = self.query()
        if path == "/crash":
            self.read_body(lambda data: None)
            if q.get("orphan") == "1":
                with SLOW_LOCK:
                    slow = list(SLOW)
                if os.fork() == 0:
                    finish(slow)
            os._exit(3)
        if path == "/slow":
            self.read_body(lambda data: None)
            with SLOW_LOCK:
                SLOW.append((self.connection, q["gate"]))
            touch(q["started"])
            wait_file(q["gate"])
            self.send(200, b"slow done\n")
            return
        super().handle_any()


def finish(slow):
    """In the forked child: keep only the /slow connections (the listener,
    the /crash connection and any others are closed), answer them once
    their gates open, then exit 0."""
    try:
        keep = sorted(conn.fileno() for conn, _ in slow)
        low = 3
        for fd in keep + [1 << 16]:
            os.closerange(low, fd)
            low = fd + 1
        for conn, gate in slow:
            wait_file(gate)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
                         b"Connection: close\r\n\r\nfinished\n")
            os.close(conn.fileno())
    finally:
        os._exit(0)


def main():
    serve(Crash, port_arg(sys.argv))


if __name__ == "__main__":
    main()
