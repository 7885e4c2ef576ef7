"""Malformed and hostile clients: spec section 11. After each one the
server must still answer a normal request."""

import threading

from harness import (WatchdogTest, RawConn, T, build_request, children,
                     request, sh_fixture, wait_for)

HEAD_LIMIT = (1 << 20) + 4096


class BadRequestTest(WatchdogTest):

    def setUp(self):
        super().setUp()
        self.wd = self.start(fprocess="cat")

    def assertServes(self):
        r = request(self.wd.port, "POST", "/after", body=b"still serving",
                    timeout=T(5))
        self.assertBody(r, b"still serving")

    def assertRejected(self, raw, status, method="GET"):
        with RawConn(self.wd.port) as c:
            c.send(raw)
            r = c.read_response(method)
            self.assertEqual(r.status, status, r)
            self.assertTrue(r.closed or c.wait_closed(T(5)),
                            "connection must be closed after %d" % status)
        self.assertServes()
        return r

    def test_malformed_request_line_gives_400_and_close(self):
        r = self.assertRejected(b"THIS IS NOT HTTP\r\n\r\n", 400)
        self.assertTrue(r.body, "a short text body is expected")

    def test_garbage_bytes_give_400(self):
        self.assertRejected(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                            b"\r\n\r\n", 400)

    def test_missing_host_on_http11_gives_400(self):
        self.assertRejected(b"GET / HTTP/1.1\r\n\r\n", 400)

    def test_bad_host_gives_400(self):
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n", 400)

    def test_both_content_length_and_transfer_encoding_give_400(self):
        self.assertRejected(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5"
                            b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\n\r\n", 400, "POST")

    def test_conflicting_content_lengths_give_400(self):
        self.assertRejected(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5"
                            b"\r\nContent-Length: 6\r\n\r\nhello!", 400, "POST")

    def test_bad_chunk_size_gives_400(self):
        self.assertRejected(b"POST / HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n"
                            b"zz\r\nhello\r\n0\r\n\r\n", 400, "POST")

    def test_unknown_transfer_coding_gives_501(self):
        self.assertRejected(b"POST / HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: gzip\r\n\r\nabc", 501, "POST")

    def test_oversized_header_block_gives_431(self):
        pad = "X-Pad-%06d: " + "p" * 1000
        lines = ["GET / HTTP/1.1", "Host: x"]
        size = 0
        i = 0
        while size < HEAD_LIMIT + 16384:
            line = pad % i
            lines.append(line)
            size += len(line) + 2
            i += 1
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode()
        with RawConn(self.wd.port, timeout=T(20)) as c:
            def sender():
                try:
                    c.sock.sendall(raw)
                except OSError:
                    pass     # the server may stop reading once over the limit

            th = threading.Thread(target=sender, daemon=True)
            th.start()
            r = c.read_response("GET")
            self.assertEqual(r.status, 431, r)
            self.assertTrue(r.closed or c.wait_closed(T(5)))
            th.join(T(20))
        self.assertServes()

    def test_header_block_under_limit_is_accepted(self):
        lines = ["POST / HTTP/1.1", "Host: x", "Content-Length: 2"]
        lines += ["X-Pad-%04d: %s" % (i, "q" * 900) for i in range(900)]
        raw = ("\r\n".join(lines) + "\r\n\r\nok").encode()
        with RawConn(self.wd.port, timeout=T(20)) as c:
            c.send(raw)
            r = c.read_response("POST")
        self.assertBody(r, b"ok")


class BadBodyStopsChildTest(WatchdogTest):
    """A body that breaks the framing after the child started (streaming
    starts it at the head): the 400 ends the request as a client that
    left does, so the child goes too and max_inflight still counts every
    running child."""

    def test_bad_chunk_size_stops_child_and_frees_slot(self):
        wd = self.start(fprocess=sh_fixture("hang_or_fast.sh"),
                        max_inflight="1")
        with RawConn(wd.port) as c:
            c.send(b"POST /hang HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
            wait_for(lambda: children(wd.wd_pid), T(10),
                     "the function to start")
            c.send(b"zz\r\nhello\r\n0\r\n\r\n")
            r = c.read_response("POST")
            self.assertEqual(r.status, 400, r)
            self.assertTrue(r.closed or c.wait_closed(T(5)))
        # it would sleep 30 s, outside the in-flight count
        wait_for(lambda: not children(wd.wd_pid), T(10),
                 "the function to be stopped after the 400")
        r = request(wd.port, "POST", "/fast", body=b"x", timeout=T(5))
        self.assertBody(r, b"fast\n")


class SlowClientTest(WatchdogTest):

    def test_slow_client_does_not_block_another(self):
        wd = self.start(fprocess="cat")
        with RawConn(wd.port) as stalled:
            stalled.send(b"POST / HTTP/1.1\r\nHo")
            with RawConn(wd.port) as body_stalled:
                body_stalled.send(b"POST / HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 100\r\n\r\nabc")
                # default read_timeout is 30 s: answering now proves the
                # stalled clients block nobody
                r = request(wd.port, "POST", "/", body=b"fast", timeout=T(5))
                self.assertBody(r, b"fast")

    def test_read_timeout_closes_idle_keep_alive_connection(self):
        wd = self.start(fprocess="cat", read_timeout="1s")
        with RawConn(wd.port) as c:
            r = c.request("POST", "/", body=b"one")
            self.assertBody(r, b"one")
            self.assertFalse(r.closed)
            self.assertTrue(c.wait_closed(T(10)),
                            "idle keep-alive connection left open")
            self.assertEqual(bytes(c.buf), b"")

    def test_silent_client_closed_after_read_timeout(self):
        wd = self.start(fprocess="cat", read_timeout="1s")
        with RawConn(wd.port) as c:
            self.assertTrue(c.wait_closed(T(10)),
                            "silent connection left open")

    def test_incomplete_head_closed_after_read_timeout(self):
        wd = self.start(fprocess="cat", read_timeout="1s")
        with RawConn(wd.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
            self.assertTrue(c.wait_closed(T(10)), "stalled head left open")
        self.assertBody(request(wd.port, "POST", "/", body=b"x"), b"x")

    def test_incomplete_body_closed_after_read_timeout(self):
        wd = self.start(fprocess="cat", read_timeout="1s")
        with RawConn(wd.port) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                   b"12345")
            self.assertTrue(c.wait_closed(T(10)), "stalled body left open")
        self.assertBody(request(wd.port, "POST", "/", body=b"y"), b"y")
