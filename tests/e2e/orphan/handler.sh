#!/bin/bash
# The zombie check's function (built with templates/bash): it leaves two
# orphans behind, one still holding the response pipe (the watchdog kills
# it) and one detached that exits on its own, both re-parented to PID 1,
# which must reap them. It answers with the user it runs as.
(sleep 0.2 &)
(sleep 0.3 </dev/null >/dev/null 2>&1 &)
id -un
