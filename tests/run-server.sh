#!/bin/sh
# `make run`: serve the web client, the API (/api/v1) and the OpenAI-
# compatible API (/v1) through a real lighttpd in the foreground, with the
# shipped config (deploy/lighttpd-run.conf.in).
# Ctrl-C stops lighttpd, which stops the responders it spawned.
#
# Environment:
#   RELAYFORGE_PORT    listen port (8080)
#   RELAYFORGE_CONFIG  settings file (var/relayforge.conf, created empty)
#   RELAYFORGE_DB      SQLite file (var/relayforge.db; the responder creates
#                      it from the schema compiled into it at first start)
#   RELAYFORGE_PROCS   responder processes (2)
#   BIN                the responder (cgi-bin/relayforge.fcgi)
# Every other RELAYFORGE_* setting and *_API_KEY in the environment reaches
# the responders through bin-copy-environment.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

PORT=${RELAYFORGE_PORT:-8080}
BIN=${BIN:-$ROOT/cgi-bin/relayforge.fcgi}
RUN=$ROOT/var/run
CONFIG=${RELAYFORGE_CONFIG:-$ROOT/var/relayforge.conf}
RELAYFORGE_DB=${RELAYFORGE_DB:-$ROOT/var/relayforge.db}
export RELAYFORGE_DB

die() { echo "run-server: $*" >&2; exit 1; }

command -v lighttpd >/dev/null 2>&1 || die "lighttpd is not installed (apt-get install lighttpd)"
[ -x "$BIN" ] || die "$BIN is missing: run make first"
case $PORT in ''|*[!0-9]*) die "RELAYFORGE_PORT must be a number, got '$PORT'";; esac

mkdir -p "$ROOT/var" "$RUN"
case $CONFIG in /*) ;; *) CONFIG=$ROOT/$CONFIG;; esac
case $RELAYFORGE_DB in /*) ;; *) RELAYFORGE_DB=$ROOT/$RELAYFORGE_DB;; esac
if [ ! -e "$CONFIG" ]; then
	mkdir -p "$(dirname "$CONFIG")"
	cat > "$CONFIG" <<'EOF'
# RelayForge settings (KEY=VALUE; the environment wins).  See README.md.
# With no provider key the built-in mock answers (demo mode), e.g.:
# GROQ_API_KEY=gsk_...
EOF
	chmod 600 "$CONFIG"
fi

# Concurrency: lighttpd keeps PROCS responders, each serving
# RELAYFORGE_THREADS requests at once; a stream holds its thread for its
# whole life, so 2 x 32 = 64 concurrent streams out of the box.  A value in
# the config file or the environment wins over this default.
PROCS=${RELAYFORGE_PROCS:-2}
case $PROCS in ''|*[!0-9]*) die "RELAYFORGE_PROCS must be a number, got '$PROCS'";; esac
if [ -z "${RELAYFORGE_THREADS:-}" ] && ! grep -q '^[[:space:]]*RELAYFORGE_THREADS[[:space:]]*=' "$CONFIG"; then
	RELAYFORGE_THREADS=32
	export RELAYFORGE_THREADS
fi

# Render the template.  Paths go through sed, so escape its specials.
esc() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
sed -e "s|@PORT@|$PORT|g" \
    -e "s|@ROOT@|$(esc "$ROOT")|g" \
    -e "s|@WEB@|$(esc "$ROOT/web")|g" \
    -e "s|@BIN@|$(esc "$BIN")|g" \
    -e "s|@RUN@|$(esc "$RUN")|g" \
    -e "s|@CONFIG@|$(esc "$CONFIG")|g" \
    -e "s|@PROCS@|$PROCS|g" \
    "$ROOT/deploy/lighttpd-run.conf.in" > "$RUN/lighttpd.conf"

# A bad setting should stop here with its name, not as a respawn loop.
RELAYFORGE_CONFIG=$CONFIG "$BIN" --check-config ||
	die "invalid configuration (see the message above; file: $CONFIG)"
if ! out=$(lighttpd -tt -f "$RUN/lighttpd.conf" 2>&1); then
	echo "$out" >&2
	die "lighttpd rejected $RUN/lighttpd.conf"
fi

echo "RelayForge: http://127.0.0.1:$PORT/  (Ctrl-C stops)"
echo "OpenAI-compatible base URL: http://127.0.0.1:$PORT/v1"
exec lighttpd -D -f "$RUN/lighttpd.conf"
