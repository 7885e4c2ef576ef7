"""Answers with Connection: keep-alive, then drops the connection: once
the next request on it arrives, it is closed unanswered (a keep-alive
timeout racing a reused connection). Raw sockets; bodyless requests.

    closing.py PORT

Body: "conn=<n> req=<k>\\n" (connection number from 1; request number on
that connection, always 1).
"""

import itertools
import sys
import threading

from common import listener, port_arg, read_head

CONNS = itertools.count(1)


def serve(conn, n):
    try:
        head, rest = read_head(conn)
        if head is None:
            return
        body = b"conn=%d req=1\n" % n
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                     b"Keep-Alive: timeout=60\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        if not rest:
            conn.recv(65536)     # the next request (or EOF): not answered
    except OSError:
        pass
    finally:
        conn.close()


def main():
    s = listener(port_arg(sys.argv))
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, next(CONNS)),
                         daemon=True).start()


if __name__ == "__main__":
    main()
