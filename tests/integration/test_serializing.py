"""mode=serializing: spec sections 5.3, 5.4 (marshal_request), 5.5."""

import base64
import json

from harness import (WatchdogTest, RawConn, T, chunked, pid_reaped,
                     read_pidfile, request, sh_fixture, wait_for)

DURATION = r"^\d+\.\d{6}$"


class SerializingTest(WatchdogTest):

    def test_success_has_duration_header(self):
        wd = self.start(mode="serializing", fprocess="cat")
        body = bytes(range(256)) * 10
        r = request(wd.port, "POST", "/", body=body)
        self.assertBody(r, body)
        self.assertRegex(r.header("X-Duration-Seconds") or "", DURATION)
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")

    def test_content_type_override(self):
        wd = self.start(mode="serializing", fprocess="cat",
                        content_type="application/json")
        r = request(wd.port, "POST", "/", body=b"{}")
        self.assertBody(r, b"{}")
        self.assertEqual(r.header("Content-Type"), "application/json")

    def test_chunked_body_is_buffered_and_passed(self):
        wd = self.start(mode="serializing", fprocess="cat")
        with RawConn(wd.port) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n"
                   + chunked(b"a" * 3000, b"b" * 70000, b"c"))
            r = c.read_response("POST")
        self.assertBody(r, b"a" * 3000 + b"b" * 70000 + b"c")

    def test_nonzero_exit_gives_500_with_error_text_only(self):
        wd = self.start(mode="serializing",
                        fprocess=sh_fixture("output_then_exit.sh", "3"))
        r = request(wd.port, "POST", "/", body=b"x")
        self.assertBody(r, b"exit status 3", 500)
        self.assertRegex(r.header("X-Duration-Seconds") or "", DURATION)
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")

    def test_missing_executable_gives_500(self):
        wd = self.start(mode="serializing", fprocess="nosuch")
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b'exec: "nosuch": executable file not found in $PATH',
                        500)

    def test_exec_timeout_gives_500_and_kills_group(self):
        pidfile = self.path("gc.pid")
        wd = self.start(mode="serializing", exec_timeout="1s",
                        fprocess=sh_fixture("grandchild.sh", pidfile))
        r = request(wd.port, "GET", "/", timeout=T(20))
        self.assertBody(r, b"signal: killed", 500)
        (gpid,) = read_pidfile(pidfile, T(5))
        wait_for(lambda: pid_reaped(gpid), T(5), "grandchild gone")

    def test_failure_logged_with_real_status(self):
        wd = self.start(mode="serializing",
                        fprocess=sh_fixture("exit_code.sh", "4"))
        self.assertEqual(request(wd.port, "PUT", "/fail").status, 500)
        wd.wait_log(r"PUT /fail - 500 - ContentLength: ")

    def test_stderr_not_in_body_by_default_but_logged(self):
        wd = self.start(mode="serializing",
                        fprocess=sh_fixture("stdout_stderr.sh"))
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b"out\n")
        wd.wait_log(r"stderr: err$")

    def test_combine_output_appends_stderr(self):
        wd = self.start(mode="serializing", combine_output="true",
                        fprocess=sh_fixture("stdout_stderr.sh"))
        r = request(wd.port, "GET", "/")
        self.assertBody(r, b"out\nerr\n")

    def test_marshal_request_sends_json(self):
        wd = self.start(mode="serializing", marshal_request="true",
                        fprocess="cat")
        body = b"\x00\x01binary body\xff"
        with RawConn(wd.port) as c:
            r = c.request("POST", "/m?q=1", body=body, host="example.test",
                          headers=[("x-b", "2"), ("X-A", "1"),
                                   ("x-a", "1b")])
        self.assertEqual(r.status, 200, r)
        text = r.body.decode()
        doc = json.loads(text)
        self.assertEqual(list(doc), ["header", "body"], text)
        self.assertEqual(doc["header"], {"Content-Length": [str(len(body))],
                                         "X-A": ["1", "1b"], "X-B": ["2"]})
        keys = list(doc["header"])
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(doc["body"], {"raw": base64.b64encode(body).decode()})

    def test_marshal_request_empty_body_is_empty_string(self):
        wd = self.start(mode="serializing", marshal_request="true",
                        fprocess="cat")
        r = request(wd.port, "GET", "/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.body)["body"], {"raw": ""})
