"""mode=static: files under static_path, spec section 7."""

import email.utils
import hashlib
import os

from harness import (WatchdogTest, RawConn, T, request, sha256_stream,
                     wait_for)

MTIME = 1700000000                       # Tue, 14 Nov 2023 22:13:20 GMT
MTIME_TEXT = "Tue, 14 Nov 2023 22:13:20 GMT"
BIG = 20 << 20
NOT_FOUND = b"404 page not found\n"
TEXT = "text/plain; charset=utf-8"
SECRET = b"SECRET-OUTSIDE"


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


class StaticTest(WatchdogTest):

    def setUp(self):
        super().setUp()
        self.root = self.path("public")
        self.big_sha = self.populate()
        self.wd = self.start(mode="static", static_path=self.root)

    # ------------------------------------------------------------ fixtures

    def put(self, name, data, mtime=MTIME):
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (mtime, mtime))
        return path

    def populate(self):
        os.makedirs(self.root)
        with open(self.path("secret.txt"), "wb") as f:
            f.write(SECRET)
        os.makedirs(self.path("outside"))
        with open(self.path("outside/secret.txt"), "wb") as f:
            f.write(SECRET)
        self.put("a.txt", b"hello, static\n")
        self.put("index.html", b"<html>root index</html>")
        self.put("sub/index.html", b"<html>sub index</html>")
        self.put("sub/page.css", b"body { color: red }")
        self.put("x", b"x at the root")
        self.put("app.js", b"console.log(1)")
        self.put("data.json", b"{}")
        self.put("pic.PNG", b"\x89PNG\r\n\x1a\n0000")
        self.put("noext", b"<!DOCTYPE html><p>sniffed</p>")
        self.put("notes.unknownext", b"just words")
        self.put("blob.bin2", b"\x00\x01\x02binary")
        self.put("empty.dat", b"")
        os.makedirs(os.path.join(self.root, "emptydir"))
        os.symlink("/etc/passwd", os.path.join(self.root, "passwd"))
        os.symlink("../secret.txt", os.path.join(self.root, "rel_out"))
        os.symlink(self.path("secret.txt"),
                   os.path.join(self.root, "abs_out"))
        os.symlink("../outside", os.path.join(self.root, "dir_out"))
        os.symlink("a.txt", os.path.join(self.root, "rel_in"))
        os.symlink(os.path.join(self.root, "a.txt"),
                   os.path.join(self.root, "abs_in"))
        os.symlink("sub", os.path.join(self.root, "sub_link"))
        os.mkfifo(os.path.join(self.root, "fifo"))
        h = hashlib.sha256()
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            for block in sha256_stream(BIG):
                h.update(block)
                f.write(block)
        return h.hexdigest()

    def get(self, path, method="GET", headers=()):
        with RawConn(self.wd.port) as c:
            return c.request(method, path, headers=headers)

    def assertServesA(self, conn=None):
        """The watchdog still answers (on conn when given)."""
        if conn is None:
            r = self.get("/a.txt")
        else:
            r = conn.request("GET", "/a.txt")
        self.assertBody(r, b"hello, static\n")

    def assertNotFound(self, r):
        self.assertEqual((r.status, r.body), (404, NOT_FOUND), r)
        self.assertEqual(r.header("Content-Type"), TEXT)

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.wd.pid))

    # ------------------------------------------------------------ files

    def test_file_is_served_byte_exact_with_type_and_length(self):
        r = self.get("/a.txt")
        self.assertBody(r, b"hello, static\n")
        self.assertEqual(r.header("Content-Type"), TEXT)
        self.assertEqual(r.header("Content-Length"), "14")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        self.assertEqual(r.header("Last-Modified"), MTIME_TEXT)
        self.assertTrue(r.has_header("Date"))
        self.assertFalse(r.chunked)

    def test_20_mib_file_is_served_byte_exact(self):
        h = hashlib.sha256()
        with RawConn(self.wd.port, timeout=T(60)) as c:
            c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response(sink=h.update)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Length"), str(BIG))
            self.assertTrue(r.complete, r)
            self.assertEqual(h.hexdigest(), self.big_sha)
            self.assertServesA(c)        # keep-alive after sendfile

    def test_client_leaving_during_a_large_file_leaves_no_fd(self):
        base = self.fd_count()
        for _ in range(3):
            with RawConn(self.wd.port) as c:
                c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(c.peek_until(b"\r\n\r\n"))
        self.assertServesA()
        wait_for(lambda: self.fd_count() <= base, T(10),
                 "fds back to %d (now %d)" % (base, self.fd_count()))

    def test_head_sends_headers_without_body(self):
        with RawConn(self.wd.port) as c:
            r = c.request("HEAD", "/big.bin")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Length"), str(BIG))
            self.assertEqual(r.header("Content-Type"),
                             "application/octet-stream")
            # a stray body byte would corrupt the next response
            self.assertServesA(c)

    def test_content_type_by_extension(self):
        for path, ctype in (("/sub/page.css", "text/css; charset=utf-8"),
                            ("/app.js", "text/javascript; charset=utf-8"),
                            ("/data.json", "application/json"),
                            ("/pic.PNG", "image/png"),
                            ("/sub/", "text/html; charset=utf-8")):
            r = self.get(path)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Type"), ctype, path)

    def test_content_type_sniffed_without_a_known_extension(self):
        for path, ctype in (("/noext", "text/html; charset=utf-8"),
                            ("/notes.unknownext", TEXT),
                            ("/blob.bin2", "application/octet-stream"),
                            ("/empty.dat", TEXT)):
            r = self.get(path)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Type"), ctype, path)

    def test_empty_file_is_200_with_zero_length(self):
        r = self.get("/empty.dat")
        self.assertBody(r, b"")
        self.assertEqual(r.header("Content-Length"), "0")

    # ------------------------------------------------------------ directories

    def test_directory_serves_its_index_html(self):
        r = self.get("/")
        self.assertBody(r, b"<html>root index</html>")
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertBody(self.get("/sub/"), b"<html>sub index</html>")
        self.assertBody(self.get("/sub_link/"), b"<html>sub index</html>")

    def test_directory_without_slash_redirects_to_slashed_path(self):
        r = self.get("/sub")
        self.assertEqual((r.status, r.body), (301, b""), r)
        self.assertEqual(r.header("Location"), "sub/")
        r = self.get("/sub?a=1&b=2")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.header("Location"), "sub/?a=1&b=2")

    def test_index_html_redirects_to_its_directory(self):
        for path, loc in (("/index.html", "./"),
                          ("/sub/index.html", "./"),
                          ("/sub/index.html?q=1", "./?q=1")):
            r = self.get(path)
            self.assertEqual((r.status, r.body), (301, b""), r)
            self.assertEqual(r.header("Location"), loc, path)

    def test_file_with_trailing_slash_redirects_to_the_file(self):
        r = self.get("/a.txt/")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.header("Location"), "../a.txt")

    def test_directory_without_index_is_403_not_a_listing(self):
        r = self.get("/emptydir/")
        self.assertEqual((r.status, r.body), (403, b"403 Forbidden\n"), r)
        self.assertServesA()

    # ------------------------------------------------------------ errors

    def test_missing_file_is_404_page_not_found(self):
        for path in ("/nope", "/sub/nope.html", "/a.txt/x", "/nope/"):
            self.assertNotFound(self.get(path))
        self.assertServesA()

    def test_post_and_other_methods_are_405(self):
        with RawConn(self.wd.port) as c:
            for m in ("POST", "PUT", "DELETE", "OPTIONS"):
                r = c.request(m, "/a.txt", body=b"payload")
                self.assertEqual((r.status, r.body), (405, b""), (m, r))
                self.assertEqual(r.header("Allow"), "GET, HEAD")
            self.assertServesA(c)

    def test_bad_escape_and_nul_are_400(self):
        with RawConn(self.wd.port) as c:
            for path in ("/a%00.txt", "/a%zz", "/a%2", "/%"):
                r = c.request("GET", path)
                self.assertEqual(r.status, 400, (path, r))
                self.assertServesA(c)

    def test_fifo_is_refused_without_blocking(self):
        with RawConn(self.wd.port) as c:
            r = c.request("GET", "/fifo")
            self.assertEqual(r.status, 403, r)
            self.assertServesA(c)

    # ------------------------------------------------------------ escapes

    def assertNothingOutside(self, r, what):
        self.assertNotIn(SECRET, r.body, what)
        self.assertNotIn(b"root:", r.body, what)
        self.assertNotEqual(r.status, 200, (what, r))

    def test_dotdot_traversal_never_leaves_static_path(self):
        paths = ("/../../etc/passwd", "/../secret.txt", "/a/../../secret.txt",
                 "/sub/../../secret.txt", "/%2e%2e%2fsecret.txt",
                 "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
                 "/sub/%2E%2E/%2E%2E/secret.txt", "/.%2e/secret.txt",
                 "//../secret.txt", "/./../outside/secret.txt",
                 "..%2fsecret.txt", "/..\\secret.txt")
        for path in paths:
            # a fresh connection each: the server closes after its own 400
            r = self.get(path)
            self.assertNothingOutside(r, path)
            self.assertServesA()

    def test_dotdot_that_ends_inside_is_served(self):
        self.assertBody(self.get("/a/../../x"), b"x at the root")
        self.assertBody(self.get("/sub/../a.txt"), b"hello, static\n")

    def test_symlinks_pointing_outside_are_not_served(self):
        with RawConn(self.wd.port) as c:
            for path in ("/passwd", "/rel_out", "/abs_out",
                         "/dir_out/secret.txt", "/dir_out/"):
                r = c.request("GET", path)
                self.assertNothingOutside(r, path)
                self.assertNotFound(r)
                self.assertServesA(c)

    def test_symlinks_pointing_inside_are_served(self):
        self.assertBody(self.get("/rel_in"), b"hello, static\n")
        self.assertBody(self.get("/abs_in"), b"hello, static\n")
        self.assertBody(self.get("/sub_link/page.css"), b"body { color: red }")

    def test_absolute_form_target_serves_its_path(self):
        r = self.get("http://localhost/a.txt")
        self.assertBody(r, b"hello, static\n")
        self.assertNotFound(self.get("http://localhost/../secret.txt"))

    # ------------------------------------------------------------ dates

    def test_if_modified_since_not_newer_is_304(self):
        for since in (MTIME_TEXT, http_date(MTIME + 3600),
                      "Tuesday, 14-Nov-23 22:13:20 GMT",
                      "Tue Nov 14 22:13:20 2023"):
            r = self.get("/a.txt", headers=[("If-Modified-Since", since)])
            self.assertEqual((r.status, r.body), (304, b""), (since, r))
            self.assertEqual(r.header("Last-Modified"), MTIME_TEXT)
            self.assertFalse(r.has_header("Content-Length"), r)

    def test_if_modified_since_older_or_bad_is_200(self):
        for since in (http_date(MTIME - 1), "yesterday", ""):
            r = self.get("/a.txt", headers=[("If-Modified-Since", since)])
            self.assertBody(r, b"hello, static\n")

    def test_if_modified_since_applies_to_a_directory_index(self):
        r = self.get("/sub/", headers=[("If-Modified-Since", MTIME_TEXT)])
        self.assertEqual(r.status, 304, r)

    # ------------------------------------------------------------ ranges

    def test_single_range_is_206_with_content_range(self):
        data = b"hello, static\n"
        for spec, start, end in (("0-4", 0, 4), ("7-", 7, 13),
                                 ("-7", 7, 13), ("7-1000", 7, 13),
                                 (" 2-3 ", 2, 3), ("-100", 0, 13)):
            r = self.get("/a.txt", headers=[("Range", "bytes=" + spec)])
            self.assertBody(r, data[start:end + 1], status=206)
            self.assertEqual(r.header("Content-Range"),
                             "bytes %d-%d/14" % (start, end), spec)
            self.assertEqual(r.header("Content-Type"), TEXT)

    def test_range_inside_a_large_file_is_byte_exact(self):
        start, n = 13 * 1000 * 1000 + 7, 3 * 1000 * 1000
        want = b"".join(sha256_stream(BIG))[start:start + n]
        with RawConn(self.wd.port, timeout=T(60)) as c:
            r = c.request("GET", "/big.bin", headers=[
                ("Range", "bytes=%d-%d" % (start, start + n - 1))])
            self.assertEqual(r.status, 206, r)
            self.assertEqual(r.body, want)
            self.assertServesA(c)

    def test_unsatisfiable_range_is_416(self):
        for spec in ("14-", "100-200", "-0", "20-10000,30-"):
            r = self.get("/a.txt", headers=[("Range", "bytes=" + spec)])
            self.assertEqual(r.status, 416, (spec, r))
            self.assertEqual(r.header("Content-Range"), "bytes */14")
        self.assertServesA()

    def test_several_or_malformed_ranges_send_the_whole_file(self):
        for value in ("bytes=0-1,4-5", "bytes=x-y", "items=0-1", "bytes=5-2",
                      "bytes=0-1a"):
            r = self.get("/a.txt", headers=[("Range", value)])
            self.assertBody(r, b"hello, static\n")

    def test_if_range_with_another_date_ignores_the_range(self):
        rng = ("Range", "bytes=0-4")
        r = self.get("/a.txt", headers=[rng, ("If-Range", MTIME_TEXT)])
        self.assertBody(r, b"hello", status=206)
        r = self.get("/a.txt", headers=[rng, ("If-Range", http_date(1))])
        self.assertBody(r, b"hello, static\n")
        r = self.get("/a.txt", headers=[rng, ("If-Range", '"etag"')])
        self.assertBody(r, b"hello, static\n")

    # ------------------------------------------------------------ server

    def test_pipelined_requests_are_answered_in_order(self):
        with RawConn(self.wd.port, timeout=T(60)) as c:
            c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-5\r\n"
                   b"\r\n"
                   b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertBody(c.read_response(), b"hello, static\n")
            self.assertEqual(c.read_response("HEAD").status, 200)
            r = c.read_response()
            self.assertBody(r, b"".join(sha256_stream(BIG))[-5:], status=206)
            self.assertNotFound(c.read_response())

    def test_probes_answer_in_static_mode(self):
        self.assertBody(request(self.wd.port, "GET", "/_/health"), b"OK")

    def test_no_fd_is_left_open_after_every_kind_of_answer(self):
        base = self.fd_count()
        with RawConn(self.wd.port) as c:
            for method, path in (("GET", "/a.txt"), ("HEAD", "/a.txt"),
                                 ("GET", "/"), ("GET", "/sub"),
                                 ("GET", "/emptydir/"), ("GET", "/nope"),
                                 ("GET", "/passwd"), ("GET", "/fifo"),
                                 ("GET", "/a%00"), ("POST", "/a.txt")):
                c.request(method, path)
            c.request("GET", "/a.txt", headers=[("Range", "bytes=1-2")])
            c.request("GET", "/a.txt", headers=[("Range", "bytes=99-")])
            c.request("GET", "/a.txt",
                      headers=[("If-Modified-Since", MTIME_TEXT)])
        wait_for(lambda: self.fd_count() <= base, T(10),
                 "fds back to %d (now %d)" % (base, self.fd_count()))


class StaticListingTest(WatchdogTest):
    """static_listing=true: a directory without index.html is listed as
    Go's http.FileServer lists it."""

    def setUp(self):
        super().setUp()
        self.root = self.path("public")
        for name in ("sub/f.txt", "a&b<c>.txt", "sp ace?#.txt", "c:d",
                     "sub/index-less/x", "zz/index.html"):
            path = os.path.join(self.root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("x")
        os.makedirs(os.path.join(self.root, "emptydir"))
        os.symlink("sub", os.path.join(self.root, "linkdir"))
        os.utime(os.path.join(self.root, "sub"), (MTIME, MTIME))
        self.wd = self.start(mode="static", static_path=self.root,
                             static_listing="true")

    def test_directory_without_index_is_listed_sorted_and_escaped(self):
        r = request(self.wd.port, "GET", "/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(r.body.decode(), (
            '<!doctype html>\n'
            '<meta name="viewport" content="width=device-width">\n'
            '<pre>\n'
            '<a href="a&b%3Cc%3E.txt">a&amp;b&lt;c&gt;.txt</a>\n'
            '<a href="./c:d">c:d</a>\n'
            '<a href="emptydir/">emptydir/</a>\n'
            '<a href="linkdir">linkdir</a>\n'       # Lstat: not a dir
            '<a href="sp%20ace%3F%23.txt">sp ace?#.txt</a>\n'
            '<a href="sub/">sub/</a>\n'
            '<a href="zz/">zz/</a>\n'
            '</pre>\n'))

    def test_subdirectory_listing_has_last_modified_and_304(self):
        r = request(self.wd.port, "GET", "/sub/")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<a href="f.txt">f.txt</a>\n', r.body)
        self.assertIn(b'<a href="index-less/">index-less/</a>\n', r.body)
        self.assertEqual(r.header("Last-Modified"), MTIME_TEXT)
        r = request(self.wd.port, "GET", "/sub/",
                    headers={"If-Modified-Since": MTIME_TEXT})
        self.assertEqual((r.status, r.body), (304, b""), r)

    def test_index_html_still_wins_and_empty_directories_list_nothing(self):
        self.assertBody(request(self.wd.port, "GET", "/zz/"), b"x")
        r = request(self.wd.port, "GET", "/emptydir/")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.body.endswith(b"<pre>\n</pre>\n"), r)
        r = request(self.wd.port, "HEAD", "/emptydir/")
        self.assertEqual((r.status, r.body), (200, b""), r)


class StaticStartTest(WatchdogTest):

    def test_missing_static_path_exits_1_naming_it(self):
        missing = self.path("no-such-dir")
        wd = self.start(wait=False, expect_exit=1, mode="static",
                        static_path=missing)
        self.assertEqual(wd.wait_exit(T(10)), 1)
        line = wd.find_log(r"static_path")
        self.assertIsNotNone(line, wd.log_text())
        self.assertIn(missing, line)
        self.assertFalse(os.path.exists(self.path(".lock")))

    def test_static_path_that_is_a_file_exits_1(self):
        f = self.path("file")
        with open(f, "w") as fh:
            fh.write("x")
        wd = self.start(wait=False, expect_exit=1, mode="static",
                        static_path=f)
        self.assertEqual(wd.wait_exit(T(10)), 1)
        self.assertIsNotNone(wd.find_log(r"static_path: .* is not a "
                                         r"directory"), wd.log_text())

    def test_static_mode_needs_no_fprocess(self):
        os.makedirs(self.path("pub"))
        with open(self.path("pub/f.txt"), "w") as fh:
            fh.write("ok")
        wd = self.start(mode="static", static_path=self.path("pub"))
        self.assertBody(request(wd.port, "GET", "/f.txt"), b"ok")
