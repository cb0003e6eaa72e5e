# `make bench-usage`: the usage query over a 1,000,000-request store
# (docs/performance.md).  Builds the store once in build/bench-usage.db (a few
# minutes), then prints the query and handler times.  Not part of `make
# test`: it measures, it does not judge.
.PHONY: bench-usage
bench-usage: $(BUILD)/tests/bench_usage
	@env -u RELAYFORGE_CONFIG $(BUILD)/tests/bench_usage $(BUILD)/bench-usage.db 1000000

$(BUILD)/tests/bench_usage: tests/bench_usage.c $(LIB) $(wildcard include/*.h)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)
