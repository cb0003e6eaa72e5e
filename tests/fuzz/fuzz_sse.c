/*
 * fuzz_sse: libFuzzer target for the upstream SSE parser and what reads its
 * events (both adapters' parse_chunk, and parse_response / classify_error
 * on the end-of-stream junk).  Besides crashes and sanitizer reports it
 * checks two properties and aborts when they break:
 *   - the events and the junk do not depend on how the bytes were split
 *     (whole, in two at a position taken from the input, one byte at a time);
 *   - what rf_sse_write emits parses back to the same event.
 *
 * Build and run (from the repository root; clang 14 with libclang-rt-14-dev):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_DEFAULT_SOURCE \
 *     -Iinclude tests/fuzz/fuzz_sse.c src/sse.c src/provider*.c src/util.c \
 *     src/error.c src/catalog.c src/config.c $(pkg-config --cflags --libs json-c) \
 *     -o build/fuzz_sse
 *   mkdir -p build/corpus_sse
 *   build/fuzz_sse -max_total_time=20 build/corpus_sse tests/fuzz/corpus_sse
 * New inputs go to the first (scratch) directory; the seed corpus in
 * tests/fuzz/corpus_sse holds the stream fixtures of tests/fixtures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "provider.h"
#include "sse.h"

/* The writer's output functions live in reply.c, which pulls in the
 * contract module and the rest of the library; the fuzzer gets its own
 * copies that behave the same. */
int
rf_out_write(struct rf_out *o, const char *p, size_t n)
{
	if (o->failed)
		return -1;
	if (n > 0 && o->write(o->ctx, p, n) != 0)
		o->failed = true;
	return o->failed ? -1 : 0;
}

int
rf_out_flush(struct rf_out *o)
{
	if (o->failed)
		return -1;
	if (o->flush(o->ctx) != 0)
		o->failed = true;
	return o->failed ? -1 : 0;
}

struct run {
	struct rf_buf log;        /* every event, framed, for comparison */
	struct rf_result acc[2];  /* per adapter */
	bool adapters;            /* call the adapters on each event */
	int events;
};

static int
on_event(void *ud, const char *event, const char *data, size_t len)
{
	struct run *r = ud;
	const struct rf_provider_ops *ad[2] = { &rf_ops_openai,
	    &rf_ops_gemini };
	struct rf_buf delta, tools;
	struct rf_failure f;
	int i;

	if (data[len] != '\0')
		abort();
	rf_buf_printf(&r->log, "%s|%zu|", event ? event : "-", len);
	rf_buf_append(&r->log, data, len);
	r->events++;
	for (i = 0; r->adapters && i < 2; i++) {
		rf_buf_init(&delta, 1 << 20);
		rf_buf_init(&tools, 1 << 20);
		ad[i]->parse_chunk(event, data, len, &r->acc[i], &delta, &tools,
		    &f);
		rf_buf_free(&delta);
		rf_buf_free(&tools);
	}
	return 0;
}

/* Parse d[0..n) fed in pieces of `step` bytes, except a first piece of
 * `first` bytes; the log and junk go to r / junk.  Returns the parser's
 * result. */
static int
parse(const uint8_t *d, size_t n, size_t first, size_t step, struct run *r,
    struct rf_buf *junk)
{
	struct rf_sse_parser p;
	size_t at = 0, len;
	int rc = 0;

	rf_sse_init(&p, on_event, r);
	while (at < n && rc == 0) {
		len = at == 0 && first > 0 ? first : step;
		if (len > n - at)
			len = n - at;
		rc = rf_sse_feed(&p, (const char *)d + at, len);
		at += len;
	}
	if (rc == 0)
		rc = rf_sse_finish(&p);
	rf_buf_puts(junk, rf_sse_junk(&p));
	rf_sse_free(&p);
	return rc;
}

static void
same_or_abort(const struct run *a, const struct rf_buf *ja, int rca,
    const struct run *b, const struct rf_buf *jb, int rcb)
{
	/* After a cap error the stream is unusable: only the verdict counts. */
	if (rca != rcb)
		abort();
	if (rca != 0)
		return;
	if (a->log.len != b->log.len || ja->len != jb->len ||
	    memcmp(rf_buf_str(&a->log), rf_buf_str(&b->log), a->log.len) != 0 ||
	    memcmp(rf_buf_str(ja), rf_buf_str(jb), ja->len) != 0)
		abort();
}

static void
run_free(struct run *r)
{
	rf_buf_free(&r->log);
	rf_result_free(&r->acc[0]);
	rf_result_free(&r->acc[1]);
}

static void
run_init(struct run *r, bool adapters)
{
	memset(r, 0, sizeof(*r));
	rf_result_init(&r->acc[0]);
	rf_result_init(&r->acc[1]);
	r->adapters = adapters;
}

/* What the chain does at EOF with leftover junk. */
static void
read_junk(const struct rf_buf *junk)
{
	struct rf_result res;
	struct rf_failure f;

	rf_result_init(&res);
	rf_ops_openai.parse_response(rf_buf_str(junk), junk->len, &res, &f);
	rf_result_reset(&res);
	rf_ops_gemini.parse_response(rf_buf_str(junk), junk->len, &res, &f);
	rf_ops_openai.classify_error(429, rf_buf_str(junk), junk->len, &f);
	rf_ops_gemini.classify_error(400, rf_buf_str(junk), junk->len, &f);
	rf_result_free(&res);
}

static int
sink_write(void *ctx, const char *p, size_t n)
{
	return rf_buf_append(ctx, p, n);
}

static int
sink_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

/* Write the input (up to its first NUL) as one event and parse it back:
 * the data must survive, with its line ends turned into \n. */
static void
roundtrip(const uint8_t *d, size_t n)
{
	struct rf_buf text = { 0 }, out = { 0 }, want = { 0 }, junk = { 0 };
	struct rf_out o = { sink_write, sink_flush, &out, false };
	struct run r;
	size_t i;

	rf_buf_append(&text, d, strnlen((const char *)d, n));
	for (i = 0; i < text.len; i++) {
		if (text.data[i] == '\r' && text.data[i + 1] == '\n')
			continue;
		rf_buf_append(&want, text.data[i] == '\r' ? "\n" : &text.data[i], 1);
	}
	run_init(&r, false);
	if (rf_sse_write(&o, "token", rf_buf_str(&text)) == 0 &&
	    text.len < RF_SSE_MAX_LINE && parse((const uint8_t *)rf_buf_str(&out),
	    out.len, 0, out.len + 1, &r, &junk) == 0) {
		rf_buf_reset(&text);
		rf_buf_printf(&text, "token|%zu|", want.len);
		rf_buf_append(&text, rf_buf_str(&want), want.len);
		if (r.events != 1 || junk.len != 0 || r.log.len != text.len ||
		    memcmp(rf_buf_str(&r.log), rf_buf_str(&text), text.len) != 0)
			abort();
	}
	run_free(&r);
	rf_buf_free(&text);
	rf_buf_free(&out);
	rf_buf_free(&want);
	rf_buf_free(&junk);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct run whole, other;
	struct rf_buf jw = { 0 }, jo = { 0 };
	int rcw, rco;

	run_init(&whole, true);
	rcw = parse(d, n, 0, n + 1, &whole, &jw);
	if (rcw == 0)
		read_junk(&jw);
	/* Two pieces, cut where the first byte says. */
	run_init(&other, false);
	rco = parse(d, n, n > 0 ? d[0] % (n + 1) : 0, n + 1, &other, &jo);
	same_or_abort(&whole, &jw, rcw, &other, &jo, rco);
	run_free(&other);
	rf_buf_reset(&jo);
	/* One byte at a time (small inputs: it is slow). */
	if (n <= 4096) {
		run_init(&other, false);
		rco = parse(d, n, 0, 1, &other, &jo);
		same_or_abort(&whole, &jw, rcw, &other, &jo, rco);
		run_free(&other);
	}
	roundtrip(d, n);
	run_free(&whole);
	rf_buf_free(&jw);
	rf_buf_free(&jo);
	return 0;
}
