"""Streams server-sent events slowly, chunked.

    sse.py PORT

GET /...?n=N&gap=SECONDS&gate=FILE: 200, Content-Type text/event-stream,
chunked; N events "data: <i>\\n\\n" (i = 1..N), one chunk each, with a
sleep of gap seconds before each event after the first; with gate, the
events after the first wait until FILE exists. Then the last chunk.
"""

import sys
import time

from common import Handler, port_arg, serve, wait_file


class Events(Handler):

    def handle_any(self):
        self.read_body(lambda data: None)
        q = self.query()
        n = int(q.get("n", "3"))
        gap = float(q.get("gap", "0"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(1, n + 1):
            if i > 1:
                if "gate" in q:
                    wait_file(q["gate"])
                time.sleep(gap)
            event = b"data: %d\n\n" % i
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


if __name__ == "__main__":
    serve(Events, port_arg(sys.argv))
