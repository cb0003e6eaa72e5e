# RelayForge -- a unified AI gateway as a FastCGI responder.
# The source list is the architecture: one module per concern in src/,
# one header each in include/.  See README.md.

BUILD   ?= build
SAN     ?= 0
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=

PKGS    := fcgi libcurl json-c sqlite3 libpq
# libfcgi's .pc has no Cflags (headers live in /usr/include): fall back to -lfcgi.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lfcgi -lcurl -ljson-c -lsqlite3 -lpq)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wmissing-declarations -Wformat=2 \
           -Wwrite-strings -Wpointer-arith
HARDEN  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong
OPT     := -O2 -g
ifeq ($(SAN),1)
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=all
HARDEN  := -fstack-protector-strong
endif
CFLAGS  ?=
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(OPT) \
           $(WARN) $(HARDEN) -Iinclude -I$(BUILD) $(PKG_CFLAGS)
# Each compile also writes the headers it read into $(BUILD)/.deps/ (not
# beside the test binaries: scripts run every build/tests/test_*).
DEPDIR   = $(BUILD)/.deps
DEPFLAGS = -MMD -MP -MF $(DEPDIR)/$(notdir $@).d -MT $@
LDFLAGS ?=
LDLIBS  := $(PKG_LIBS) -lpthread -lm
ifeq ($(SAN),1)
LDFLAGS += -fsanitize=address,undefined
endif

# The modules, one concern each (its header in include/ is its whole API).
# main.c is the program; everything else goes into the library the unit
# tests link against.
LIB_SRC :=
LIB_SRC += src/util.c            # capped buffer, clocks, request ids, UTF-8
LIB_SRC += src/loop.c            # epoll, timers, posts: the event loop
LIB_SRC += src/relay.c           # loop threads: a parsed request lives on a loop
LIB_SRC += src/error.c           # the error enum: wire code, HTTP status, text
LIB_SRC += src/scrub.c           # upstream strings: secrets, identifiers, UTF-8
LIB_SRC += src/log.c             # every stderr line: context, bounded, redacted
LIB_SRC += src/config.c          # settings from env and file, per provider too
LIB_SRC += src/contract.c        # request bodies in: parse and validate
LIB_SRC += src/contract_openai.c # /v1 chat completions bodies, model routing
LIB_SRC += src/render.c          # every response JSON shape, from one form
LIB_SRC += src/render_openai.c   # the /v1 shapes: completion, chunk, error
LIB_SRC += src/render_metrics.c  # the Prometheus text exposition of /metrics
LIB_SRC += src/sse.c             # SSE parser (upstream) and writer (client)
LIB_SRC += src/catalog.c         # the provider catalog: one line per provider
LIB_SRC += src/provider.c        # helpers shared by the adapters (JSON, errors)
LIB_SRC += src/provider_openai.c # the OpenAI wire (Groq, SambaNova, ...)
LIB_SRC += src/provider_gemini.c # the Gemini generateContent wire
LIB_SRC += src/provider_mock.c   # the built-in demo tier
LIB_SRC += src/upstream.c        # the only libcurl user: calls, pool, headers
LIB_SRC += src/chain.c           # fallback engine: tiers, retries, cooldowns
LIB_SRC += src/hist.c            # latency histogram, percentiles, usage folding
LIB_SRC += src/metrics.c         # metric families, a request's series, batches
LIB_SRC += src/store_node.c      # this machine's name (RELAYFORGE_NODE)
LIB_SRC += src/store.c           # the store's product API, pool, backend choice
LIB_SRC += src/store_sqlite.c    # the SQLite backend: every SQL statement
LIB_SRC += src/store_pg.c        # the PostgreSQL backend (libpq): several machines
LIB_SRC += src/pstate.c          # provider state in the process, written through
LIB_SRC += src/ratelimit.c       # per-client limit: shared count, memory fallback
LIB_SRC += src/spool.c           # request-log spool files: durable rows, replay
LIB_SRC += src/logq.c            # the spool's writer thread: batches to the store
LIB_SRC += src/gauges.c          # this process's live gauges, published to the store
LIB_SRC += src/fcgi.c            # the only libfcgi user: FastCGI and CGI I/O
LIB_SRC += src/reply.c           # the reply writer: heads, JSON, errors, SSE
LIB_SRC += src/router.c          # surfaces, route table, guards, refusals
LIB_SRC += src/answer.c          # around the engine: clocks, headers, log row
LIB_SRC += src/handlers.c        # chat, stream and health endpoints
LIB_SRC += src/handlers_openai.c # /v1 chat completions (held-head streams), models
LIB_SRC += src/observe.c         # status, logs and usage endpoints
# main.c: the process -- wiring, worker threads, signals, side jobs.
MAIN_SRC := src/main.c
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/%.o,$(LIB_SRC))
MAIN_OBJ := $(patsubst src/%.c,$(BUILD)/%.o,$(MAIN_SRC))
LIB     := $(BUILD)/librelayforge.a
BIN     := cgi-bin/relayforge.fcgi
ifeq ($(SAN),1)
BIN     := $(BUILD)/relayforge.fcgi
endif
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
DEPS     := $(patsubst %,$(DEPDIR)/%.d,$(notdir $(LIB_OBJ) $(MAIN_OBJ) $(UNIT_BIN)))

# prometheus: its promtool checks GET /api/v1/metrics (tests/integration/test_metrics.py).
DEB_PKGS := gcc make pkg-config libfcgi-dev libfcgi-bin libcurl4-openssl-dev \
            libjson-c-dev libsqlite3-dev sqlite3 lighttpd libcmocka-dev curl \
            python3 spawn-fcgi clang apache2 libapache2-mod-fcgid nginx systemd \
            libjs-chart.js chromium nodejs libpq-dev postgresql prometheus

.PHONY: all deps node-deps run test check unit clean web fuzz
all: $(BIN) web

# Install the Debian packages that are missing (as root), or say how.
# Services are not started by the install (policy-rc.d): the tests start
# their own servers on loopback ports.
# DEPS_PKGS: what to check (other targets reuse this rule with their own list).
DEPS_PKGS ?= $(DEB_PKGS)
deps:
	@missing=""; for p in $(DEPS_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    prc=""; if [ ! -e /usr/sbin/policy-rc.d ]; then prc=1; \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
	    apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	    rc=$$?; [ -n "$$prc" ] && rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit 1; \
	  else \
	    echo "deps: missing packages; run as root:"; \
	    echo "  apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# The Node packages of the tests, pinned by tests/package-lock.json: the
# browser tests' playwright-core and the official openai SDK (tests/sdk/).
# A package that is missing or of another version than the lock's means
# a fresh `npm ci`.
NODE_PINS := playwright-core openai
node-deps:
	@command -v npm >/dev/null || { echo "deps: npm is missing (apt-get install npm)"; exit 1; }
	@for p in $(NODE_PINS); do \
	  want=$$(sed -n "/\"node_modules\/$$p\"/,/version/s/.*\"version\": \"\(.*\)\".*/\1/p" tests/package-lock.json); \
	  have=$$(sed -n 's/^  "version": "\(.*\)".*/\1/p' tests/node_modules/$$p/package.json 2>/dev/null); \
	  [ -n "$$want" ] && [ "$$want" = "$$have" ] || { \
	    npm ci --prefix tests --no-audit --no-fund >/dev/null || exit 1; break; }; \
	done

# One generated schema header per store backend: rf_schema_<backend>.
$(BUILD)/schema_sqlite.h: schema/relayforge.sql
	@mkdir -p $(BUILD)
	awk 'BEGIN{print "/* generated from schema/relayforge.sql */"; print "static const char rf_schema_sqlite[] ="} \
	  {gsub(/\\/,"\\\\"); gsub(/"/,"\\\""); print "\"" $$0 "\\n\""} END{print ";"}' $< > $@

$(BUILD)/schema_pg.h: schema/relayforge.pg.sql
	@mkdir -p $(BUILD)
	awk 'BEGIN{print "/* generated from schema/relayforge.pg.sql */"; print "static const char rf_schema_pg[] ="} \
	  {gsub(/\\/,"\\\\"); gsub(/"/,"\\\""); print "\"" $$0 "\\n\""} END{print ";"}' $< > $@

# Header dependencies come from the compiler (-MMD, the .d files below).
# The generated schema header must exist before the first compile (no .d
# file names it yet on a clean tree): an order-only prerequisite.  The
# Makefile itself is one: new flags, or objects built before the .d files
# existed, mean everything is compiled again.
$(BUILD)/%.o: src/%.c Makefile | $(BUILD)/schema_sqlite.h $(BUILD)/schema_pg.h
	@mkdir -p $(BUILD) $(DEPDIR)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(LIB) $(LDLIBS)

# cmocka test functions need no prototypes: each test file is one unit.
$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB) | $(BUILD)/schema_sqlite.h $(BUILD)/schema_pg.h
	@mkdir -p $(BUILD)/tests $(DEPDIR)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -Wno-missing-declarations \
	  $(DEPFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

# The web client; Chart.js comes from Debian's libjs-chart.js (not committed).
# Debian 12 ships 3.9 as chart.min.js; newer releases as chart.umd.min.js.
web:
	@mkdir -p web/vendor; for f in chart.umd.min.js chart.min.js; do \
	  if [ -f /usr/share/javascript/chart.js/$$f ]; then \
	    cp -u /usr/share/javascript/chart.js/$$f web/vendor/chart.umd.min.js; break; fi; done

unit: $(UNIT_BIN)

run: deps
	@$(MAKE) --no-print-directory all
	@tests/run-server.sh

test: deps node-deps
	@$(MAKE) --no-print-directory all unit
	@BUILD=$(BUILD) BIN=$(abspath $(BIN)) tests/run.sh

# Sanitizer build (ASan + UBSan) of everything, then the whole suite, then
# a short libFuzzer run of every parser of outside input (below).
check: deps node-deps
	@$(MAKE) --no-print-directory BUILD=build-san SAN=1 test
	@$(MAKE) --no-print-directory fuzz

# libFuzzer targets, one per parser of outside input: tests/fuzz/fuzz_<t>.c
# over FUZZ_SRC plus its own module, each run FUZZ_TIME seconds from its seed
# corpus tests/fuzz/corpus_<t>/ (new finds stay in build/fuzz/corpus_<t>/).
#   sse       the upstream SSE parser
#   openai    the adapters' readers of upstream JSON (OpenAI wire, Gemini)
#   contract  request bodies (rf_contract_parse, rf_contract_parse_openai)
#   scrub     the scrubber of upstream strings (redaction, shapes, UTF-8)
#   tools     /v1 requests built for each wire (Gemini translation), mock calls
FUZZ_TIME    ?= 15
FUZZ_TARGETS := sse openai contract scrub tools
FUZZ_SRC     := $(filter src/provider%.c src/util.c src/error.c src/config.c \
                  src/catalog.c src/log.c src/scrub.c src/store_node.c,$(LIB_SRC))
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -std=c11 -D_DEFAULT_SOURCE -Iinclude
fuzz:
	@mkdir -p build/fuzz
	@for t in $(FUZZ_TARGETS); do \
	  case $$t in sse) own=src/sse.c;; \
	    contract) own="src/contract.c src/contract_openai.c";; \
	    *) own=;; esac; \
	  clang $(FUZZ_CFLAGS) tests/fuzz/fuzz_$$t.c $(FUZZ_SRC) $$own \
	    $$(pkg-config --cflags --libs json-c) -lm \
	    -o build/fuzz/fuzz_$$t || exit 1; \
	  mkdir -p build/fuzz/corpus_$$t; \
	  echo "fuzz_$$t: $(FUZZ_TIME) s"; \
	  build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=0 \
	    build/fuzz/corpus_$$t tests/fuzz/corpus_$$t 2>build/fuzz/fuzz_$$t.log \
	    || { tail -40 build/fuzz/fuzz_$$t.log; exit 1; }; \
	  tail -1 build/fuzz/fuzz_$$t.log; \
	done

clean:
	rm -rf build build-san cgi-bin/relayforge.fcgi web/vendor

-include $(DEPS)

# Concern-specific targets (install, bench) live in their own fragments.
include $(wildcard mk/*.mk)
