#!/bin/sh
# `make bench`: run the benchmark matrix (tests/bench/bench.py) with the
# tools `make bench` has built into $BUILD/bench.  See
# README.md (section Performance) for what each figure means.
#
# Environment: BUILD (build), BIN (the responder), BENCH_THREADS (512),
# BENCH_PROCS (2), BENCH_SECONDS (5), BENCH_QUICK=1 (a short smoke run),
# BENCH_USAGE_ROWS (1000000).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
command -v python3 >/dev/null 2>&1 || { echo "bench: python3 is missing" >&2; exit 2; }
# Many concurrent streams need many descriptors (client, lighttpd, responders).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 tests/bench/bench.py "$@"
