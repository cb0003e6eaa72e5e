# `make bench` and `make bench-check` (docs/performance.md; tests/bench/).
#   make bench        the benchmark matrix: a fast C mock upstream, lighttpd
#                     with the shipped run config, wrk and the C clients;
#                     /api/v1 and the OpenAI-compatible /v1 side by side;
#                     prints a table, writes tests/bench/results/latest.json
#                     (BENCH_ONLY=ladder,streams,... runs only those groups;
#                     tests/bench/bench.py lists them and every other knob)
#   make bench-ladder the ladder alone: 1,000 / 2,500 / 5,000 slow streams
#                     held at once with the shipped defaults (~2 minutes)
#   make bench-check  the regression guard: callgrind instructions per warm
#                     chat request against tests/bench/callgrind-baseline.txt
#                     (BENCH_UPDATE=1 rewrites the baseline).  Not timed, and
#                     not part of `make test`.
BENCH_DIR   := $(BUILD)/bench
BENCH_CLI   := tests/bench/httpc.c tests/bench/stats.c
BENCH_HDR   := tests/bench/httpc.h tests/bench/stats.h
BENCH_TOOLS := $(BENCH_DIR)/mock_fast $(BENCH_DIR)/sse_client \
               $(BENCH_DIR)/loadgen $(BENCH_DIR)/genstore $(BENCH_DIR)/fcgi_floor
BENCH_PKGS  := wrk valgrind

.PHONY: bench bench-ladder bench-check bench-deps

# The same install step as `deps`, for the bench's own packages.
bench-deps:
	@$(MAKE) --no-print-directory deps DEPS_PKGS="$(BENCH_PKGS)"

$(BENCH_DIR)/mock_fast: tests/bench/mock_fast.c
	@mkdir -p $(BENCH_DIR)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

# The empty FastCGI responder (the web server's share of every figure).
$(BENCH_DIR)/fcgi_floor: tests/bench/fcgi_floor.c
	@mkdir -p $(BENCH_DIR)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(BENCH_DIR)/%: tests/bench/%.c $(BENCH_CLI) $(BENCH_HDR)
	@mkdir -p $(BENCH_DIR)
	$(CC) $(CFLAGS) -Itests/bench $(LDFLAGS) -o $@ $< $(BENCH_CLI)

# These two link the responder's library.
$(BENCH_DIR)/genstore $(BENCH_DIR)/cg_driver: $(BENCH_DIR)/%: tests/bench/%.c $(LIB) $(wildcard include/*.h)
	@mkdir -p $(BENCH_DIR)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

bench: deps bench-deps
	@$(MAKE) --no-print-directory $(BIN) $(BENCH_TOOLS)
	@BUILD=$(BUILD) BIN=$(abspath $(BIN)) tests/bench/bench.sh

bench-ladder:
	@$(MAKE) --no-print-directory bench BENCH_ONLY=ladder

bench-check: deps bench-deps
	@$(MAKE) --no-print-directory $(BENCH_DIR)/mock_fast $(BENCH_DIR)/cg_driver
	@BUILD=$(BUILD) tests/bench/bench-check.sh
