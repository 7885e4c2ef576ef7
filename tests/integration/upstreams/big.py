"""Big bodies: a download of a deterministic pattern, a hashed upload.

    big.py PORT

GET /download?n=N  200, Content-Length N, common.pattern(N) streamed.
other              reads the body as it arrives, answers JSON
                   {"framing", "length", "sha256"}.
"""

import hashlib
import sys

from common import Handler, pattern, port_arg, serve


class Big(Handler):

    def handle_any(self):
        if self.target().split("?")[0] == "/download":
            self.read_body(lambda data: None)
            n = int(self.query()["n"])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for block in pattern(n):
                self.wfile.write(block)
            self.wfile.flush()
            return
        digest = hashlib.sha256()
        length = [0]

        def sink(data):
            digest.update(data)
            length[0] += len(data)

        framing = self.read_body(sink)
        self.send_json(200, {"framing": framing, "length": length[0],
                             "sha256": digest.hexdigest()})


if __name__ == "__main__":
    serve(Big, port_arg(sys.argv))
