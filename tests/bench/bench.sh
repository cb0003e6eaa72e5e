#!/bin/sh
# `make bench`: run the benchmark matrix (tests/bench/bench.py) with the
# tools `make bench` has built into $BUILD/bench.  See
# README.md (section Performance) for what each figure means.
#
# Environment: BUILD (build), BIN (the responder), BENCH_ONLY (groups, e.g.
# ladder), BENCH_LADDER (1000,2500,5000), BENCH_THREADS / BENCH_STREAM_THREADS
# (unset: the defaults), BENCH_PROCS (2), BENCH_SECONDS (5), BENCH_QUICK=1
# (a short smoke run), BENCH_USAGE_ROWS (1000000); bench.py says more.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
command -v python3 >/dev/null 2>&1 || { echo "bench: python3 is missing" >&2; exit 2; }
# The ladder's 5,000 streams need descriptors everywhere: sse_client 5,000,
# lighttpd 10,000 (two per stream; server.max-fds = 20000, which it sets
# itself as root), the responders 2 per stream between them, mock_fast
# 5,000.  Every process here inherits this soft limit; the C tools also
# raise theirs to the hard limit.  This machine's hard limit is 20,000.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 12000 ] ||
	echo "bench: only $(ulimit -n) open files allowed; the 5,000-stream rung needs about 12,000 (ulimit -Hn)" >&2
exec python3 tests/bench/bench.py "$@"
