# The template's entry point: one process per request. Reads the whole
# request body from stdin, hands it to function/handler.py, writes the
# answer to stdout. An exception exits non-zero, which the watchdog turns
# into a 500 carrying the traceback.
import sys

from function import handler


def main():
    req = sys.stdin.read()
    res = handler.handle(req)
    if res is not None:
        sys.stdout.write(res if isinstance(res, str) else str(res))


if __name__ == "__main__":
    main()
