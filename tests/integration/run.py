#!/usr/bin/env python3
"""Runs the integration tests against the fwatchdog binary.

    python3 tests/integration/run.py [name ...]

Runs every test, or those whose id contains one of the names. Prints one
line per test and, last, "N passed, N failed" (", N skipped" when any).
Exits 0 only if nothing failed. See harness.py for FWATCHDOG, FW_WRAPPER
and FW_SLOW.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True       # no __pycache__ in the source tree

import harness  # noqa: E402


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


class Result(unittest.TestResult):
    """Counts each test once: failed if any failure or error was reported
    for it (including one from tearDown), else skipped or passed."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.passed = self.failed_n = self.skipped_n = 0
        self.current = None

    def startTest(self, test):
        super().startTest(test)
        self.current = {"problems": [], "skip": None,
                        "t0": time.monotonic()}

    def _problem(self, test, kind, err):
        self.current["problems"].append(
            (kind, self._exc_info_to_string(err, test)))

    def addError(self, test, err):
        super().addError(test, err)
        if self.current is None:         # class/module fixture error
            self.failed_n += 1
            self.stream.write("ERROR %s\n%s\n" % (
                test, self._exc_info_to_string(err, test)))
            return
        self._problem(test, "ERROR", err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._problem(test, "FAIL", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.current["skip"] = reason

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) \
                else "ERROR"
            self._problem(subtest, kind, err)

    def stopTest(self, test):
        super().stopTest(test)
        cur = self.current
        self.current = None
        secs = time.monotonic() - cur["t0"]
        tid = test.id()
        if cur["problems"]:
            self.failed_n += 1
            kind = cur["problems"][0][0]
            self.stream.write("%-5s %s (%.1fs)\n" % (kind, tid, secs))
            for _, text in cur["problems"]:
                self.stream.write(indent(text))
            for wd in getattr(test, "watchdogs", []):
                log = wd.log_text(None)
                tail = "\n".join(log.split("\n")[-40:])
                self.stream.write("    --- watchdog log (pid %d, port %d,"
                                  " last 40 lines) ---\n%s\n"
                                  % (wd.pid, wd.port, indent(tail)))
        elif cur["skip"] is not None:
            self.skipped_n += 1
            self.stream.write("skip  %s: %s\n" % (tid, cur["skip"]))
        else:
            self.passed += 1
            self.stream.write("ok    %s (%.1fs)\n" % (tid, secs))
        self.stream.flush()


def indent(text):
    return "".join("    " + l + "\n" for l in text.rstrip("\n").split("\n"))


def main(argv):
    names = argv[1:]
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = list(flatten(suite))
    if names:
        tests = [t for t in tests if any(n in t.id() for n in names)]
    if not os.path.exists(harness.BINARY):
        sys.stdout.write("fwatchdog binary not found: %s\n" % harness.BINARY)
    result = Result(sys.stdout)
    t0 = time.monotonic()
    unittest.TestSuite(tests).run(result)
    line = "%d passed, %d failed" % (result.passed, result.failed_n)
    if result.skipped_n:
        line += ", %d skipped" % result.skipped_n
    sys.stdout.write("(%.1fs)\n%s\n" % (time.monotonic() - t0, line))
    return 0 if result.failed_n == 0 and (tests or not names) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
