#!/bin/sh
# `make bench-check`: the performance regression guard that is not a timed
# test.  Counts the instructions one warm chat request costs (callgrind,
# in-process driver tests/bench/cg_driver.c against the C mock upstream, the
# SQLite log write included) and compares the count with the checked-in
# baseline.  Exit 1 when it grew by more than the tolerance.
#
# Environment:
#   BUILD                 build directory (build)
#   BENCH_TOLERANCE_PCT   allowed growth in percent (10)
#   BENCH_UPDATE=1        write the measured count as the new baseline
#   BENCH_REQUESTS        measured requests (300: SQLite checkpoints, one
#                         every ~100 requests, then average out)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BASELINE=tests/bench/callgrind-baseline.txt
TOL=${BENCH_TOLERANCE_PCT:-10}
N=${BENCH_REQUESTS:-300}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rf-bench-check.XXXXXX")
MOCK_PID=

cleanup() {
	if [ -n "$MOCK_PID" ]; then
		kill "$MOCK_PID" 2>/dev/null || true
		wait "$MOCK_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v valgrind >/dev/null || { echo "bench-check: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }

"$BUILD/bench/mock_fast" --port 0 > "$TMP/mock.out" 2> "$TMP/mock.err" &
MOCK_PID=$!
i=0
while ! grep -q '^PORT ' "$TMP/mock.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "bench-check: mock upstream did not start" >&2; exit 2; }
	sleep 0.05
done
PORT=$(awk '/^PORT /{print $2; exit}' "$TMP/mock.out")

# One configured provider on the mock, as in production: every request
# logged, no gateway rate limit, nothing read from a config file.
rc=0
env -i PATH="$PATH" RELAYFORGE_DB="$TMP/relayforge.db" \
	RELAYFORGE_CHAIN=groq RELAYFORGE_MOCK=off GROQ_API_KEY=bench-key \
	RELAYFORGE_GROQ_URL="http://127.0.0.1:$PORT/t=16" RELAYFORGE_RATE_LIMIT=0 \
	valgrind --tool=callgrind --collect-atstart=no --toggle-collect=cg_measured \
	--callgrind-out-file="$TMP/callgrind.out" "$BUILD/bench/cg_driver" "$N" \
	> "$TMP/driver.out" 2> "$TMP/valgrind.err" || rc=$?
if [ $rc -ne 0 ]; then
	cat "$TMP/driver.out" "$TMP/valgrind.err" >&2
	echo "bench-check: the driver failed (exit $rc)" >&2
	exit 2
fi
total=$(awk '/^totals:/{print $2; exit}' "$TMP/callgrind.out")
[ -n "$total" ] || { echo "bench-check: no totals in callgrind output" >&2; exit 2; }
per=$((total / N))

if [ "${BENCH_UPDATE:-0}" = 1 ]; then
	cat > "$BASELINE" <<EOF
# Instructions (callgrind Ir) per warm chat request, measured by
# \`make bench-check\` (tests/bench/bench-check.sh).  \`make bench-check\`
# fails when the count grows by more than BENCH_TOLERANCE_PCT (10) percent.
# Rewrite with: make bench-check BENCH_UPDATE=1 -- and say why in the commit.
# Measured $(date -u +%Y-%m-%d) with $(valgrind --version), $N requests.
chat_ir_per_request $per
EOF
	echo "bench-check: baseline written: $per instructions per chat request"
	exit 0
fi

base=$(awk '/^chat_ir_per_request/{print $2; exit}' "$BASELINE" 2>/dev/null || true)
[ -n "$base" ] || { echo "bench-check: no baseline in $BASELINE (make bench-check BENCH_UPDATE=1)" >&2; exit 2; }
limit=$((base + base * TOL / 100))
pct=$(awk -v a="$per" -v b="$base" 'BEGIN{printf "%+.1f", (a - b) * 100.0 / b}')
echo "bench-check: instructions per chat request: $per (baseline $base, $pct%, limit $limit = +$TOL%)"
if [ "$per" -gt "$limit" ]; then
	echo "bench-check: REGRESSION: the heaviest functions (inclusive):"
	callgrind_annotate --inclusive=yes "$TMP/callgrind.out" 2>/dev/null |
		grep -E '^ *[0-9,]+ \(' | grep ' src/' | head -20 || true
	exit 1
fi
if [ "$per" -lt $((base - base * TOL / 100)) ]; then
	echo "bench-check: much cheaper than the baseline: consider make bench-check BENCH_UPDATE=1"
fi
echo "bench-check: ok"
