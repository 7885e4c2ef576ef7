"""/_/health, /_/ready, the lock file and max_inflight: spec section 4."""

import os
import threading

from harness import (WatchdogTest, RawConn, T, request, sh_fixture, wait_for)

LIMIT_BODY = b"Concurrent request limit exceeded. Max concurrent requests: 1\n"


class ProbeTest(WatchdogTest):

    MODE = "streaming"

    def setUp(self):
        super().setUp()
        self.wd = self.start(fprocess="printf function", mode=self.MODE)

    def test_health_returns_ok_text(self):
        r = request(self.wd.port, "GET", "/_/health")
        self.assertBody(r, b"OK")
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")

    def test_ready_returns_empty_200(self):
        self.assertBody(request(self.wd.port, "GET", "/_/ready"), b"")

    def test_probes_refuse_other_methods_with_405(self):
        for path in ("/_/health", "/_/ready"):
            for m in ("POST", "PUT", "DELETE"):
                with RawConn(self.wd.port) as c:
                    r = c.request(m, path, body=b"")
                self.assertEqual((r.status, r.body), (405, b""), (m, path))

    def test_probes_answer_head_without_body(self):
        for path in ("/_/health", "/_/ready"):
            with RawConn(self.wd.port) as c:
                r = c.request("HEAD", path)
                self.assertEqual(r.status, 200, path)
                # stray body bytes would break the next response
                r2 = c.request("GET", "/_/health")
            self.assertBody(r2, b"OK")

    def test_lock_file_exists_while_running(self):
        lock = os.path.join(self.tmp, ".lock")
        self.assertTrue(os.path.isfile(lock))
        self.assertEqual(os.path.getsize(lock), 0)

    def test_deleting_lock_file_makes_probes_503(self):
        os.unlink(os.path.join(self.tmp, ".lock"))
        r = request(self.wd.port, "GET", "/_/health")
        self.assertEqual((r.status, r.body), (503, b""))
        r = request(self.wd.port, "GET", "/_/ready")
        self.assertEqual((r.status, r.body), (503, b""))

    def test_probe_paths_match_exactly(self):
        for path in ("/_/health/", "/_/ready/", "/_/healthz", "/_/HEALTH"):
            r = request(self.wd.port, "GET", path)
            self.assertBody(r, b"function")


class ClassicProbeTest(ProbeTest):
    MODE = "classic"


class SerializingProbeTest(ProbeTest):
    MODE = "serializing"


class SuppressLockTest(WatchdogTest):

    def test_suppress_lock_writes_no_lock_and_stays_healthy(self):
        wd = self.start(fprocess="cat", suppress_lock="true")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, ".lock")))
        self.assertBody(request(wd.port, "GET", "/_/health"), b"OK")
        self.assertBody(request(wd.port, "GET", "/_/ready"), b"")


    def test_suppress_lock_bool_is_true_or_1_only(self):
        for value, lock in (("1", False), ("TRUE", True), ("yes", True)):
            wd = self.start(fprocess="cat", suppress_lock=value)
            self.assertEqual(os.path.exists(os.path.join(self.tmp, ".lock")),
                             lock, "suppress_lock=%s" % value)
            self.assertBody(request(wd.port, "GET", "/_/health"), b"OK")
            wd.shutdown()


class MaxInflightTest(WatchdogTest):

    MODE = "streaming"

    def test_request_over_limit_gets_429_and_ready_429(self):
        wd = self.start(fprocess=sh_fixture("wait_release.sh", self.tmp),
                        max_inflight="1", mode=self.MODE)
        first = {}

        def slow():
            try:
                first["r"] = request(wd.port, "GET", "/slow", timeout=T(60))
            except Exception as e:
                first["e"] = e

        th = threading.Thread(target=slow)
        th.start()
        try:
            wait_for(lambda: os.path.exists(self.path("started")), T(10),
                     "slow function started")
            r = request(wd.port, "POST", "/second", body=b"x")
            self.assertBody(r, LIMIT_BODY, 429)
            self.assertEqual(r.header("X-OpenFaaS-Internal"), "faas-middleware")
            self.assertEqual(r.header("Content-Type"), "text/plain")
            r = request(wd.port, "GET", "/_/ready")
            self.assertEqual((r.status, r.body), (429, b""))
            # health is not limited
            self.assertBody(request(wd.port, "GET", "/_/health"), b"OK")
        finally:
            open(self.path("release"), "w").close()
            th.join(T(60))
        self.assertIn("r", first, first)
        self.assertBody(first["r"], b"released\n")
        wait_for(lambda: request(wd.port, "GET", "/_/ready").status == 200,
                 T(5), "ready again")
        self.assertBody(request(wd.port, "GET", "/again"), b"quick\n")


class SerializingMaxInflightTest(MaxInflightTest):
    MODE = "serializing"


class ClassicMaxInflightTest(MaxInflightTest):
    MODE = "classic"
