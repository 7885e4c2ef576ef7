#!/bin/sh
# An upstream that daemonises: starts echo.py in the background on port
# $1 and exits 0 (spec 6.1): once it listens, or with "early" as $2 at
# once, before the daemon has even started.
python3 -B "$(dirname "$0")/echo.py" "$1" </dev/null >/dev/null 2>&1 &
[ "$2" = early ] && exit 0
i=0
while [ $i -lt 100 ]; do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$1" 2>/dev/null && exit 0
    i=$((i + 1))
    sleep 0.05
done
exit 0
