"""Accepts connections, reads what arrives and never answers.

    silent.py PORT
"""

import sys
import threading

from common import listener, port_arg


def drain(conn):
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass
    conn.close()


def main():
    s = listener(port_arg(sys.argv))
    while True:
        conn, _ = s.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
