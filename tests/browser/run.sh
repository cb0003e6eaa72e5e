#!/bin/sh
# Browser tests (`make test` runs this after the integration suite):
# headless Debian Chromium driven by playwright-core (pinned in
# tests/package.json + tests/package-lock.json) against a real lighttpd +
# responder started by each test file (tests/browser/harness.mjs).
# Prints one line per test (node's whole TAP report when one failed),
# then one line "browser: N passed, N failed";
# exits 1 on any failure.  Needs: chromium, nodejs/npm, a built
# cgi-bin/relayforge.fcgi (or BIN=...) and web/vendor/chart.umd.min.js.
#
#   tests/browser/run.sh [FILE.test.mjs ...]   (default: every test file)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

finish() { echo "browser: $1 passed, $2 failed"; [ "$2" -eq 0 ]; exit $?; }

command -v node >/dev/null 2>&1 || { echo "browser: node is missing (apt-get install nodejs npm)"; finish 0 1; }
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "browser: $CHROMIUM is missing (apt-get install chromium)"; finish 0 1; }
if [ ! -f tests/node_modules/playwright-core/package.json ]; then
	npm ci --prefix tests --no-audit --no-fund --loglevel=error >/dev/null ||
	    { echo "browser: npm ci --prefix tests failed"; finish 0 1; }
fi

[ $# -gt 0 ] || set -- tests/browser/*.test.mjs
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM
node --test --test-reporter=tap "$@" > "$out" 2>&1
rc=$?
pass=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
fail=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
cancelled=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
pass=${pass:-0}
# A test cancelled because its setup failed did not pass: count it.
fail=$(( ${fail:-0} + ${cancelled:-0} ))
# A runner that died, or failed with no failing test counted, is a failure.
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
# One line per test; the whole TAP report (with each failure's reason and
# stack) only when something failed.
if [ "$fail" -ne 0 ]; then
	cat "$out"
else
	sed -n 's/^    ok [0-9]* - /browser ok: /p' "$out"
fi
finish "$pass" "$fail"
