-- wrk script: a 64-byte POST, the request of the fork benchmarks.
wrk.method = "POST"
wrk.body = string.rep("x", 64)
wrk.headers["Content-Type"] = "text/plain"
