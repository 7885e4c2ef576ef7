# The template's entry point: a long-lived HTTP/1.1 server on
# 127.0.0.1:$PORT (default 5000) behind the watchdog. Each request becomes
# an Event for function/handler.py; its answer (a dict, or a plain body)
# becomes the response.
import http.server
import json
import os
import sys
import traceback
from urllib.parse import urlsplit

from function import handler


class Event:
    def __init__(self, req, body):
        url = urlsplit(req.path)
        self.body = body
        self.headers = req.headers
        self.method = req.command
        self.path = url.path
        self.query = url.query


class Context:
    def __init__(self):
        self.hostname = os.environ.get("HOSTNAME", "localhost")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: the watchdog pools

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            res = handler.handle(Event(self, body), Context())
        except Exception:
            traceback.print_exc()
            res = {"statusCode": 500, "body": "internal error\n"}
        if not isinstance(res, dict):
            res = {"statusCode": 200, "body": res}
        out = res.get("body", "")
        if isinstance(out, (dict, list)):
            out = json.dumps(out)
        if isinstance(out, str):
            out = out.encode()
        self.send_response(int(res.get("statusCode", 200)))
        for name, value in (res.get("headers") or {}).items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any
    do_OPTIONS = handle_any

    def log_message(self, fmt, *args):
        pass                        # the watchdog logs every request


def main():
    port = int(os.environ.get("PORT", "5000"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("python3-http listening on 127.0.0.1:%d" % port, file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
