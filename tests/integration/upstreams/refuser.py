"""Stops listening on request, staying alive: later connections are
refused. Raw sockets, one connection at a time, Connection: close.

    refuser.py PORT

/stop   answers "stopped\\n", closes the listener, then only sleeps.
/reset  closes the connection with a reset, unanswered.
other   "ok\\n".
"""

import socket
import struct
import sys
import time

from common import listener, port_arg, read_head


def main():
    s = listener(port_arg(sys.argv))
    while True:
        conn, _ = s.accept()
        head, _ = read_head(conn)
        target = head.split(b" ")[1] if head else b""
        path = target.split(b"?")[0]
        if path == b"/reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            conn.close()
            continue
        body = b"stopped\n" if path == b"/stop" else b"ok\n"
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        conn.close()
        if path == b"/stop":
            s.close()
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
