"""Holds its first connection open and never answers it; answers every
later request 200 "ok\\n" and closes: a readiness probe that hangs once.

    first_hangs.py PORT
"""

import sys
import threading

from common import listener, port_arg, read_head


def serve(conn):
    with conn:
        head, _ = read_head(conn)
        if head is not None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                         b"Connection: close\r\n\r\nok\n")


def main():
    s = listener(port_arg(sys.argv))
    held, _ = s.accept()         # kept, unanswered, until we exit
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
