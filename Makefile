# RelayForge -- a unified AI gateway as a FastCGI responder.
# The source list is the architecture: one module per concern in src/,
# one header each in include/.  See README.md.

BUILD   ?= build
SAN     ?= 0
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=

PKGS    := fcgi libcurl json-c sqlite3
# libfcgi's .pc has no Cflags (headers live in /usr/include): fall back to -lfcgi.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lfcgi -lcurl -ljson-c -lsqlite3)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2
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
LDFLAGS ?=
LDLIBS  := $(PKG_LIBS) -lpthread -lm
ifeq ($(SAN),1)
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ := $(patsubst src/%.c,$(BUILD)/%.o,$(LIB_SRC))
LIB     := $(BUILD)/librelayforge.a
BIN     := cgi-bin/relayforge.fcgi
ifeq ($(SAN),1)
BIN     := $(BUILD)/relayforge.fcgi
endif
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

DEB_PKGS := gcc make pkg-config libfcgi-dev libfcgi-bin libcurl4-openssl-dev \
            libjson-c-dev libsqlite3-dev sqlite3 lighttpd libcmocka-dev curl \
            python3 spawn-fcgi clang apache2 libapache2-mod-fcgid nginx systemd \
            libjs-chart.js chromium nodejs

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

# The browser tests' playwright-core, pinned by tests/package-lock.json.
node-deps:
	@command -v npm >/dev/null || { echo "deps: npm is missing (apt-get install npm)"; exit 1; }
	@[ -f tests/node_modules/playwright-core/package.json ] || \
	  npm ci --prefix tests --no-audit --no-fund >/dev/null

$(BUILD)/schema.h: schema/relayforge.sql
	@mkdir -p $(BUILD)
	awk 'BEGIN{print "/* generated from schema/relayforge.sql */"; print "static const char rf_schema_sql[] ="} \
	  {gsub(/\\/,"\\\\"); gsub(/"/,"\\\""); print "\"" $$0 "\\n\""} END{print ";"}' $< > $@

$(BUILD)/%.o: src/%.c $(wildcard include/*.h) $(BUILD)/schema.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/main.o $(LIB) $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB) $(wildcard include/*.h)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

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
# a short libFuzzer run of every parser of upstream input.
check: deps node-deps
	@$(MAKE) --no-print-directory BUILD=build-san SAN=1 test
	@$(MAKE) --no-print-directory fuzz

FUZZ_TIME ?= 15
FUZZ_SRC  := $(wildcard src/provider*.c) src/util.c src/error.c src/catalog.c src/config.c
fuzz:
	@mkdir -p build/fuzz
	@for t in sse openai; do \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    -std=c11 -D_DEFAULT_SOURCE -Iinclude tests/fuzz/fuzz_$$t.c $(FUZZ_SRC) $$([ $$t = sse ] && echo src/sse.c) \
	    $$(pkg-config --cflags --libs json-c) -o build/fuzz/fuzz_$$t || exit 1; \
	  mkdir -p build/fuzz/corpus_$$t; \
	  echo "fuzz_$$t: $(FUZZ_TIME) s"; \
	  build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=0 \
	    build/fuzz/corpus_$$t tests/fuzz/corpus_$$t 2>build/fuzz/fuzz_$$t.log \
	    || { tail -40 build/fuzz/fuzz_$$t.log; exit 1; }; \
	  tail -1 build/fuzz/fuzz_$$t.log; \
	done

clean:
	rm -rf build build-san cgi-bin/relayforge.fcgi web/vendor

# Concern-specific targets (install, bench) live in their own fragments.
include $(wildcard mk/*.mk)
