"""The plain upstream: answers every request with JSON describing it.

    echo.py [PORT|-] [--listen-after FILE] [--delay SECONDS]

Body: {"method", "target" (raw request target), "headers" ([name, value]
in received order), "framing" ("length", "chunked" or "none"), "length",
"sha256" (of the body), "port", "env_port" (PORT), "pid"}. HEAD gets the
same headers without the body.

Query parameters shape the answer: status=N; location=URL (a Location
header); hop=1 (hop-by-hop response headers the proxy must drop, plus a
repeated X-Resp); mark=DIR (a file DIR/<pid>-<n> on arrival); gate=FILE
(answer only once FILE exists); orphaned=1 (answer 503 until the process
that started this one has exited).

--listen-after FILE waits for FILE before listening; --delay SECONDS
sleeps first.
"""

import hashlib
import itertools
import os
import sys
import time

from common import Handler, port_arg, serve, touch, wait_file

PORT = port_arg(sys.argv)
COUNTER = itertools.count(1)
PARENT = os.getppid()

HOP_HEADERS = [
    ("Connection", "X-Hop-Resp"),
    ("X-Hop-Resp", "must not reach the client"),
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Authenticate", "Basic realm=\"up\""),
    ("Proxy-Connection", "keep-alive"),
    ("Trailer", "X-Trailer"),
    ("Upgrade", "h2c"),
]


class Echo(Handler):

    def describe(self):
        digest = hashlib.sha256()
        length = [0]

        def sink(data):
            digest.update(data)
            length[0] += len(data)

        framing = self.read_body(sink)
        return {
            "method": self.command,
            "target": self.target(),
            "headers": [[k, v] for k, v in self.headers.items()],
            "framing": framing,
            "length": length[0],
            "sha256": digest.hexdigest(),
            "port": PORT,
            "env_port": os.environ.get("PORT"),
            "pid": os.getpid(),
        }

    def handle_any(self):
        info = self.describe()
        q = self.query()
        if "mark" in q:
            touch(os.path.join(q["mark"], "%d-%d" % (os.getpid(),
                                                     next(COUNTER))))
        if "gate" in q:
            wait_file(q["gate"])
        if q.get("orphaned") == "1" and os.getppid() == PARENT:
            self.send_json(503, info, [])
            return
        headers = [("X-Upstream", "echo"), ("X-Resp", "one"),
                   ("X-Other", "between"), ("X-Resp", "two")]
        if "location" in q:
            headers.append(("Location", q["location"]))
        if q.get("hop") == "1":
            headers += HOP_HEADERS
        self.send_json(int(q.get("status", "200")), info, headers)


def main():
    args = sys.argv[2:]
    while args:
        opt = args.pop(0)
        if opt == "--listen-after":
            wait_file(args.pop(0), timeout=600)
        elif opt == "--delay":
            time.sleep(float(args.pop(0)))
        else:
            raise SystemExit("echo.py: unknown option %s" % opt)
    serve(Echo, PORT)


if __name__ == "__main__":
    main()
