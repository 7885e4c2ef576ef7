"""A single-threaded Python function server for the http_workers benchmark:
one request at a time, about a millisecond of CPU each, on $PORT."""
import http.server
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(sum(i * i for i in range(20000))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


port = int(os.environ.get("PORT") or sys.argv[1])
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
