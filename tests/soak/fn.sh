#!/bin/sh
# The soak's function (soak.py), by request path: /fail exits 3, /sleep
# sleeps 10 s (exec_timeout or a client abort ends it, with its group),
# /ok prints "ok".
case "$Http_Path" in
/fail) echo "failing" >&2; exit 3 ;;
/sleep) sleep 10 & wait ;;
*) echo ok ;;
esac
