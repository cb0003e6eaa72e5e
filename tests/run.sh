#!/bin/sh
# `make test`: every unit test binary, then the integration suite, the
# official OpenAI SDK against /v1 (tests/sdk/), the deployments and the
# browser tests; the last line is "N passed, N failed" and the exit status
# is 1 on any failure.
#
#   BUILD  build directory holding tests/test_* (build)
#   BIN    the responder under test (cgi-bin/relayforge.fcgi)
#   tests/run.sh -k PATTERN   only the integration and SDK tests matching
#                             PATTERN (no unit tests), for development
#
# The whole run happens inside a throw-away PostgreSQL cluster
# (tests/pgcluster.py: initdb + pg_ctl in a temp dir, Unix socket only,
# removed at the end): the unit tests get RF_TEST_PG_URI (test_store runs
# its contract on PostgreSQL too), and the integration suite runs a second
# time with RF_TEST_STORE=pg, every gateway on a database of that cluster.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
BUILD=${BUILD:-build}
BIN=${BIN:-$ROOT/cgi-bin/relayforge.fcgi}
export BIN

PATTERN=""
VERBOSE=""
while [ $# -gt 0 ]; do
	case $1 in
	-k) [ $# -ge 2 ] || { echo "run.sh: -k needs a pattern" >&2; exit 2; }
	    PATTERN=$2; shift 2;;
	-k*) PATTERN=${1#-k}; shift;;
	-v) VERBOSE=-v; shift;;
	*) echo "usage: tests/run.sh [-k pattern] [-v]" >&2; exit 2;;
	esac
done

# Start the cluster once and run this script again inside it.
if [ -z "${RF_TEST_PG_URI:-}" ] && [ -z "$PATTERN" ]; then
	if python3 "$ROOT/tests/pgcluster.py" check; then
		exec python3 "$ROOT/tests/pgcluster.py" run -- "$0" $VERBOSE
	fi
	echo "run.sh: PostgreSQL binaries missing (make deps): the PostgreSQL runs fail"
	pg_missing=1
fi

passed=0
failed=0
[ -n "${pg_missing:-}" ] && failed=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Sum the numbers of every "[  PASSED  ] N test(s)." (or FAILED) line.
sum_lines() {
	grep -E "^\[  $1  \] [0-9]+ test" "$2" |
	    sed -E "s/^\[  $1  \] ([0-9]+).*/\1/" |
	    awk '{ s += $1 } END { print s + 0 }'
}

run_unit() {
	t=$1
	name=$(basename "$t")
	"$t" > "$tmp/out" 2>&1
	rc=$?
	p=$(sum_lines PASSED "$tmp/out")
	f=$(sum_lines FAILED "$tmp/out")
	# A crash, a sanitizer report or a missing summary is one failure.
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	if [ "$f" -ne 0 ]; then
		cat "$tmp/out"
		echo "unit $name: $p passed, $f failed (exit $rc)"
	else
		echo "unit $name: $p passed"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

if [ -z "$PATTERN" ]; then
	found=0
	for t in "$BUILD"/tests/test_*; do
		if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
		found=1
		run_unit "$t"
	done
	[ "$found" = 1 ] || echo "run.sh: no unit test binaries in $BUILD/tests"
fi

# A suite runner prints one line per test and a last "RESULT p f" line;
# add its counts.  A runner that ends without one counts as a failure.
run_suite() {
	name=$1
	shift
	"$@" 2>&1 | tee "$tmp/suite"
	result=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$tmp/suite" | tail -n 1)
	if [ -n "$result" ]; then
		passed=$((passed + $(echo "$result" | cut -d' ' -f2)))
		failed=$((failed + $(echo "$result" | cut -d' ' -f3)))
	else
		echo "run.sh: the $name runner ended without a RESULT line"
		failed=$((failed + 1))
	fi
}

# Integration: the responder behind a real lighttpd and the mock upstream.
set -- python3 "$ROOT/tests/integration/runner.py"
[ -n "$PATTERN" ] && set -- "$@" -k "$PATTERN"
[ -n "$VERBOSE" ] && set -- "$@" -v
run_suite integration "$@"

# The same suite once more with every gateway on PostgreSQL.
if [ -z "$PATTERN" ] && [ -n "${RF_TEST_PG_URI:-}" ]; then
	echo "integration on PostgreSQL:"
	export RF_TEST_STORE=pg
	run_suite integration-pg python3 "$ROOT/tests/integration/runner.py"
	unset RF_TEST_STORE
fi

# The official openai npm package driving /v1 as a user would (tests/sdk/).
set -- python3 "$ROOT/tests/sdk/run.py"
[ -n "$PATTERN" ] && set -- "$@" -k "$PATTERN"
run_suite sdk "$@"

if [ -z "$PATTERN" ]; then
	# Every shipped deployment under its real server (needs root: it runs
	# Apache, nginx and lighttpd as www-data).
	if [ "$(id -u)" = 0 ]; then
		run_suite deploy python3 "$ROOT/tests/deploy/run.py"
	else
		echo "run.sh: deployment tests skipped (they need root)"
	fi
	# The web client in headless Chromium: "browser: N passed, N failed".
	tests/browser/run.sh > "$tmp/br" 2>&1
	cat "$tmp/br"
	line=$(grep -E '^browser: [0-9]+ passed, [0-9]+ failed$' "$tmp/br" | tail -n 1)
	if [ -n "$line" ]; then
		set -- $line
		passed=$((passed + $2))
		failed=$((failed + $4))
	else
		echo "run.sh: the browser tests ended without a summary"
		failed=$((failed + 1))
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
