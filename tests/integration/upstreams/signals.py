"""Records the signals it receives, one name a line, in a file.

    signals.py PORT RECORD

SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH: recorded, keeps serving.
SIGTERM: recorded, then exit 0.
/slow?started=FILE&gate=FILE  touch started, answer "slow done\\n" once
gate exists, recording "answering /slow" just before the answer. Other
paths: the echo upstream.
"""

import os
import signal
import sys

import echo
from common import append_line, port_arg, serve, touch, wait_file

RECORD = sys.argv[2]


def on_signal(sig, frame):
    append_line(RECORD, signal.Signals(sig).name)
    if sig == signal.SIGTERM:
        os._exit(0)


class Slow(echo.Echo):

    def handle_any(self):
        if self.target().split("?")[0] != "/slow":
            return super().handle_any()
        self.read_body(lambda data: None)
        q = self.query()
        touch(q["started"])
        wait_file(q["gate"])
        # recorded before answering: the watchdog cannot finish the
        # request (and send SIGTERM) before this line is in the file
        append_line(RECORD, "answering /slow")
        self.send(200, b"slow done\n")


def main():
    for sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGWINCH, signal.SIGTERM):
        signal.signal(sig, on_signal)
    serve(Slow, port_arg(sys.argv))


if __name__ == "__main__":
    main()
