"""Prints lines on stdout and stderr at start, then is the echo upstream.

    chatty.py PORT
"""

import sys

import echo

print("chatty says hello on stdout", flush=True)
print("chatty says hello on stderr", file=sys.stderr, flush=True)
print("chatty second stdout line", flush=True)
echo.main()
