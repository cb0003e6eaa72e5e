/*
 * test_sse: the upstream SSE parser against real provider wire samples
 * (the .sse files in tests/fixtures), fed whole, one byte at a time and
 * split in two at every position: the events and the junk must never
 * depend on how the bytes were cut.  Then each sample through its adapter's parse_chunk, the
 * caps, and the client-side writer.  The tool-call samples (*_tools_*.sse)
 * check the OpenAI tool_calls deltas every wire's streamed calls become.
 *
 * Fixtures are found in $RF_FIXTURES, else next to the binary
 * (<dir>/../../tests/fixtures), else in ./tests/fixtures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "provider.h"
#include "sse.h"

static char fixdir[1024] = "tests/fixtures";

static char *
slurp(const char *name, size_t *len)
{
	char path[1200];
	FILE *fp;
	char *s;
	long n;

	snprintf(path, sizeof(path), "%s/%s", fixdir, name);
	fp = fopen(path, "rb");
	if (fp == NULL)
		fail_msg("cannot open fixture %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return s;
}

/* ---- recording events ---- */

struct rec {
	struct rf_buf log;  /* "event\x1f" data "\x1e" per event */
	int n;
	int stop_at;        /* return 7 from the stop_at-th event (1-based) */
};

static int
on_event(void *ud, const char *event, const char *data, size_t len)
{
	struct rec *r = ud;

	assert_int_equal(strlen(data) <= len, 1);
	assert_int_equal(data[len], '\0');
	rf_buf_puts(&r->log, event != NULL ? event : "(null)");
	rf_buf_append(&r->log, "\x1f", 1);
	rf_buf_append(&r->log, data, len);
	rf_buf_append(&r->log, "\x1e", 1);
	r->n++;
	return r->stop_at > 0 && r->n == r->stop_at ? 7 : 0;
}

/* Parse s cut at the given positions (cuts ascending, ncuts of them). */
static int
parse_cut(const char *s, size_t n, const size_t *cuts, size_t ncuts,
    struct rec *r, struct rf_buf *junk)
{
	struct rf_sse_parser p;
	size_t at = 0, i;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	rf_sse_init(&p, on_event, r);
	for (i = 0; i <= ncuts && rc == 0; i++) {
		size_t end = i < ncuts ? cuts[i] : n;

		rc = rf_sse_feed(&p, s + at, end - at);
		at = end;
	}
	if (rc == 0)
		rc = rf_sse_finish(&p);
	rf_buf_reset(junk);
	rf_buf_puts(junk, rf_sse_junk(&p));
	rf_sse_free(&p);
	return rc;
}

static void
rec_free(struct rec *r)
{
	rf_buf_free(&r->log);
}

/* Whole, byte by byte, and every two-way split agree.  Returns the whole
 * parse in *out (caller frees) and its junk in *junk. */
static void
check_splits(const char *s, size_t n, struct rec *out, struct rf_buf *junk)
{
	struct rec r;
	struct rf_buf j = { 0 };
	size_t *cuts = calloc(n + 1, sizeof(*cuts));
	size_t i;

	assert_int_equal(parse_cut(s, n, NULL, 0, out, junk), 0);
	for (i = 0; i < n; i++)
		cuts[i] = i + 1;
	assert_int_equal(parse_cut(s, n, cuts, n > 0 ? n - 1 : 0, &r, &j), 0);
	assert_string_equal(rf_buf_str(&r.log), rf_buf_str(&out->log));
	assert_string_equal(rf_buf_str(&j), rf_buf_str(junk));
	rec_free(&r);
	for (i = 0; i <= n; i++) {
		assert_int_equal(parse_cut(s, n, &i, 1, &r, &j), 0);
		if (strcmp(rf_buf_str(&r.log), rf_buf_str(&out->log)) != 0 ||
		    strcmp(rf_buf_str(&j), rf_buf_str(junk)) != 0)
			fail_msg("split at %zu differs", i);
		rec_free(&r);
	}
	rf_buf_free(&j);
	free(cuts);
}

/* The idx-th (0-based) recorded event as "event|data". */
static void
nth_event(const struct rec *r, int idx, char *out, size_t outlen)
{
	const char *p = rf_buf_str(&r->log), *e;
	size_t n;

	for (; idx > 0 && (p = strchr(p, '\x1e')) != NULL; idx--)
		p++;
	assert_non_null(p);
	e = strchr(p, '\x1e');
	assert_non_null(e);
	n = (size_t)(e - p) < outlen - 1 ? (size_t)(e - p) : outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	for (char *q = out; *q; q++)
		if (*q == '\x1f')
			*q = '|';
}

static void
fixture_events(const char *name, int nevents, struct rec *r,
    struct rf_buf *junk)
{
	size_t n;
	char *s = slurp(name, &n);

	check_splits(s, n, r, junk);
	assert_int_equal(r->n, nevents);
	free(s);
}

static void
test_openai_fixture_splits(void **state)
{
	struct rec r;
	struct rf_buf junk = { 0 };
	char ev[4096];

	(void)state;
	fixture_events("openai_stream.sse", 7, &r, &junk);
	nth_event(&r, 6, ev, sizeof(ev));
	assert_string_equal(ev, "(null)|[DONE]");
	nth_event(&r, 1, ev, sizeof(ev));
	assert_non_null(strstr(ev, "\"content\":\"Hel\""));
	assert_string_equal(rf_buf_str(&junk), "");
	rec_free(&r);
	rf_buf_free(&junk);
}

static void
test_other_fixture_splits(void **state)
{
	struct rec r;
	struct rf_buf junk = { 0 };
	char ev[4096];

	(void)state;
	fixture_events("groq_stream.sse", 7, &r, &junk);
	assert_string_equal(rf_buf_str(&junk), "");
	rec_free(&r);
	/* Comments are skipped: 5 blocks, 3 events. */
	fixture_events("openrouter_stream.sse", 3, &r, &junk);
	assert_string_equal(rf_buf_str(&junk), "");
	rec_free(&r);
	fixture_events("sambanova_error.sse", 3, &r, &junk);
	nth_event(&r, 2, ev, sizeof(ev));
	assert_true(strncmp(ev, "error|{\"error\"", 14) == 0);
	nth_event(&r, 1, ev, sizeof(ev));
	assert_true(strncmp(ev, "(null)|", 7) == 0);
	rec_free(&r);
	fixture_events("cerebras_error.sse", 3, &r, &junk);
	rec_free(&r);
	rf_buf_free(&junk);
}

static void
test_gemini_fixture_junk(void **state)
{
	struct rec r;
	struct rf_buf junk = { 0 };
	char ev[4096];

	(void)state;
	fixture_events("gemini_stream.sse", 4, &r, &junk);
	nth_event(&r, 3, ev, sizeof(ev));
	assert_non_null(strstr(ev, "\"finishReason\":\"STOP\""));
	assert_null(strchr(ev, '\r'));
	/* The unframed JSON error after the last event, line by line. */
	assert_string_equal(rf_buf_str(&junk),
	    "{\n  \"error\": {\n    \"code\": 503,\n"
	    "    \"message\": \"The model is overloaded. Please try again later.\",\n"
	    "    \"status\": \"UNAVAILABLE\"\n  }\n}");
	rec_free(&r);
	rf_buf_free(&junk);
}

/* Replace every "\n" of s by the line end le. */
static char *
relined(const char *s, const char *le, size_t *outlen)
{
	struct rf_buf b = { 0 };
	char *out;

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			rf_buf_puts(&b, le);
		else
			rf_buf_append(&b, s, 1);
	}
	*outlen = b.len;
	out = strdup(rf_buf_str(&b));
	rf_buf_free(&b);
	return out;
}

static void
test_line_ends_equivalent(void **state)
{
	static const char *const ends[] = { "\r", "\r\n" };
	struct rec lf, other;
	struct rf_buf junk = { 0 }, junk2 = { 0 };
	size_t n, m, i;
	char *s = slurp("openai_stream.sse", &n), *t;

	(void)state;
	assert_int_equal(parse_cut(s, n, NULL, 0, &lf, &junk), 0);
	for (i = 0; i < 2; i++) {
		t = relined(s, ends[i], &m);
		check_splits(t, m, &other, &junk2);
		assert_string_equal(rf_buf_str(&other.log), rf_buf_str(&lf.log));
		rec_free(&other);
		free(t);
	}
	rec_free(&lf);
	rf_buf_free(&junk);
	rf_buf_free(&junk2);
	free(s);
}

static void
test_cr_then_lf_across_feeds(void **state)
{
	struct rec r;
	struct rf_buf junk = { 0 };
	/* "\r" ends one feed, "\n" starts the next: ONE line end, so both
	 * data lines belong to the same event. */
	static const char s[] = "data: a\r\ndata: b\r\n\r\ndata: c\r\r";
	size_t cut = 8;

	(void)state;
	assert_int_equal(parse_cut(s, sizeof(s) - 1, &cut, 1, &r, &junk), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(rf_buf_str(&r.log),
	    "(null)\x1f" "a\nb\x1e(null)\x1f" "c\x1e");
	rec_free(&r);
	rf_buf_free(&junk);
}

static void
test_field_rules(void **state)
{
	struct rec r;
	struct rf_buf junk = { 0 };
	static const char s[] =
	    ": comment\n"
	    "event: ignored\n\n"            /* a name without data: dropped */
	    "id: 7\nretry: 100\n"
	    "data:one\ndata:  two\ndata\n\n" /* one space stripped; joined */
	    "event: meta\ndata: {}\n\n"
	    "data:\n\n"                     /* empty data still dispatches */
	    "bogus line\n"
	    "data: tail";                   /* no blank line before EOF */

	(void)state;
	assert_int_equal(parse_cut(s, sizeof(s) - 1, NULL, 0, &r, &junk), 0);
	assert_int_equal(r.n, 4);
	assert_string_equal(rf_buf_str(&r.log),
	    "(null)\x1f" "one\n two\n\x1e"
	    "meta\x1f{}\x1e"
	    "(null)\x1f\x1e"
	    "(null)\x1f" "tail\x1e");
	assert_string_equal(rf_buf_str(&junk), "bogus line");
	rec_free(&r);
	rf_buf_free(&junk);
}

static void
test_callback_stop_and_reset(void **state)
{
	struct rec r = { 0 };
	struct rf_sse_parser p;
	static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";

	(void)state;
	r.stop_at = 2;
	rf_sse_init(&p, on_event, &r);
	assert_int_equal(rf_sse_feed(&p, s, sizeof(s) - 1), 7);
	assert_int_equal(r.n, 2);
	/* After a reset the parser starts clean, junk included. */
	rf_sse_feed(&p, "junk\ndata: half", 15);
	rf_sse_reset(&p);
	assert_string_equal(rf_sse_junk(&p), "");
	r.stop_at = 0;
	rf_buf_reset(&r.log);
	r.n = 0;
	assert_int_equal(rf_sse_feed(&p, "data: x\n\n", 9), 0);
	assert_int_equal(rf_sse_finish(&p), 0);
	assert_string_equal(rf_buf_str(&r.log), "(null)\x1fx\x1e");
	rf_sse_free(&p);
	rf_sse_free(&p); /* twice is harmless */
	rec_free(&r);
}

static void
test_caps(void **state)
{
	struct rec r = { 0 };
	struct rf_sse_parser p;
	char *big = malloc(RF_SSE_MAX_LINE + 2);
	size_t i;

	(void)state;
	memset(big, 'a', RF_SSE_MAX_LINE + 1);
	big[RF_SSE_MAX_LINE + 1] = '\n';
	/* One byte over the line cap: whole, or in pieces. */
	rf_sse_init(&p, on_event, &r);
	assert_int_equal(rf_sse_feed(&p, big, RF_SSE_MAX_LINE + 2), -1);
	rf_sse_reset(&p);
	for (i = 0; i < RF_SSE_MAX_LINE; i += 4096)
		assert_int_equal(rf_sse_feed(&p, big, 4096), 0);
	assert_int_equal(rf_sse_feed(&p, "a\n", 2), -1);
	/* Exactly at the cap is fine (it is junk here, and junk is cut). */
	rf_sse_reset(&p);
	assert_int_equal(rf_sse_feed(&p, big + 1, RF_SSE_MAX_LINE + 1), 0);
	assert_int_equal(strlen(rf_sse_junk(&p)), RF_SSE_MAX_JUNK);
	/* An event over RF_SSE_MAX_EVENT in many short data lines. */
	rf_sse_reset(&p);
	memcpy(big, "data: ", 6);
	big[65536] = '\n';
	for (i = 0; i < RF_SSE_MAX_EVENT / 65530 + 1; i++)
		if (rf_sse_feed(&p, big, 65537) != 0)
			break;
	assert_true(i < RF_SSE_MAX_EVENT / 65530 + 1);
	assert_int_equal(r.n, 0);
	rf_sse_free(&p);
	free(big);
	rec_free(&r);
}

/* ---- fixtures through the adapters ---- */

struct stream {
	const struct rf_provider_ops *ad;
	struct rf_result acc;
	struct rf_buf text;
	struct rf_buf tools; /* each event's tool-call delta, one per line */
	struct rf_failure f;
	enum rf_chunk last;
	int kinds[4];
};

static int
on_chunk(void *ud, const char *event, const char *data, size_t len)
{
	struct stream *st = ud;
	struct rf_buf delta = { 0 }, tools = { 0 };

	st->last = st->ad->parse_chunk(event, data, len, &st->acc, &delta,
	    &tools, &st->f);
	st->kinds[st->last]++;
	rf_buf_append(&st->text, rf_buf_str(&delta), delta.len);
	if (tools.len > 0)
		rf_buf_printf(&st->tools, "%s\n", rf_buf_str(&tools));
	rf_buf_free(&delta);
	rf_buf_free(&tools);
	return st->last == RF_CHUNK_ERROR ? 1 : 0;
}

static int
run_stream(const char *name, const struct rf_provider_ops *ad, struct stream *st,
    struct rf_buf *junk)
{
	struct rf_sse_parser p;
	size_t n;
	char *s = slurp(name, &n);
	int rc;

	memset(st, 0, sizeof(*st));
	st->ad = ad;
	rf_result_init(&st->acc);
	rf_sse_init(&p, on_chunk, st);
	rc = rf_sse_feed(&p, s, n);
	if (rc == 0)
		rc = rf_sse_finish(&p);
	rf_buf_reset(junk);
	rf_buf_puts(junk, rf_sse_junk(&p));
	rf_sse_free(&p);
	free(s);
	return rc;
}

static void
stream_free(struct stream *st)
{
	rf_result_free(&st->acc);
	rf_buf_free(&st->text);
	rf_buf_free(&st->tools);
}

static void
test_openai_streams(void **state)
{
	struct stream st;
	struct rf_buf junk = { 0 };

	(void)state;
	assert_int_equal(run_stream("openai_stream.sse", &rf_ops_openai,
	    &st, &junk), 0);
	assert_string_equal(rf_buf_str(&st.text), "Hello, world\n");
	assert_int_equal(st.last, RF_CHUNK_DONE);
	assert_int_equal(st.kinds[RF_CHUNK_MALFORMED], 0);
	assert_string_equal(st.acc.finish_reason, "stop");
	assert_string_equal(st.acc.model, "llama-3.1-8b-instant");
	assert_int_equal(st.acc.usage.prompt_tokens, 9);
	assert_int_equal(st.acc.usage.completion_tokens, 4);
	stream_free(&st);

	/* Groq: usage only in x_groq; reasoning never in the text. */
	assert_int_equal(run_stream("groq_stream.sse", &rf_ops_openai,
	    &st, &junk), 0);
	assert_string_equal(rf_buf_str(&st.text), "Hi there");
	assert_int_equal(st.acc.usage.prompt_tokens, 12);
	assert_int_equal(st.acc.usage.completion_tokens, 2);
	assert_int_equal(st.last, RF_CHUNK_DONE);
	stream_free(&st);
	rf_buf_free(&junk);
}

static void
test_openai_stream_errors(void **state)
{
	struct stream st;
	struct rf_buf junk = { 0 };

	(void)state;
	/* OpenRouter: text, then a chunk with an error and finish "error". */
	assert_int_equal(run_stream("openrouter_stream.sse", &rf_ops_openai,
	    &st, &junk), 1);
	assert_string_equal(rf_buf_str(&st.text), "Once upon");
	assert_int_equal(st.last, RF_CHUNK_ERROR);
	assert_int_equal(st.f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_string_equal(st.f.details, "in-stream error, code server_error");
	stream_free(&st);

	/* SambaNova: a named "event: error". */
	assert_int_equal(run_stream("sambanova_error.sse", &rf_ops_openai,
	    &st, &junk), 1);
	assert_string_equal(rf_buf_str(&st.text), "The answer");
	assert_int_equal(st.f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_string_equal(st.f.details,
	    "in-stream error event, code internal_server_error");
	stream_free(&st);

	/* Cerebras: error object plus status_code 429. */
	assert_int_equal(run_stream("cerebras_error.sse", &rf_ops_openai,
	    &st, &junk), 1);
	assert_string_equal(rf_buf_str(&st.text), "Par");
	assert_int_equal(st.f.code, RF_ERR_PROVIDER_RATE_LIMITED);
	assert_null(strstr(st.f.details, "Tokens per minute"));
	stream_free(&st);
	rf_buf_free(&junk);
}

static void
test_gemini_stream(void **state)
{
	struct stream st;
	struct rf_buf junk = { 0 }, delta = { 0 }, tools = { 0 };
	struct rf_failure f;

	(void)state;
	assert_int_equal(run_stream("gemini_stream.sse", &rf_ops_gemini,
	    &st, &junk), 0);
	assert_string_equal(rf_buf_str(&st.text), "Bonjour le monde.");
	assert_int_equal(st.kinds[RF_CHUNK_DATA], 4);
	assert_int_equal(st.kinds[RF_CHUNK_MALFORMED], 0);
	assert_string_equal(st.acc.finish_reason, "stop");
	assert_string_equal(st.acc.model, "gemini-2.5-flash-lite");
	assert_int_equal(st.acc.usage.prompt_tokens, 8);
	assert_int_equal(st.acc.usage.completion_tokens, 4);
	/* The leftover junk is the error the caller must notice at EOF. */
	assert_int_equal(rf_ops_gemini.parse_chunk(NULL, rf_buf_str(&junk),
	    junk.len, &st.acc, &delta, &tools, &f), RF_CHUNK_ERROR);
	assert_int_equal(f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_string_equal(f.details, "in-stream error, code UNAVAILABLE");
	assert_int_equal(delta.len, 0);
	assert_int_equal(tools.len, 0);
	stream_free(&st);
	rf_buf_free(&junk);
	rf_buf_free(&delta);
	rf_buf_free(&tools);
}

/* ---- streamed tool calls (OpenAI deltas out of every wire) ---- */

static void
expect_tools(const char *name, const struct rf_provider_ops *ad,
    const char *deltas, const char *finish, int ncalls)
{
	struct stream st;
	struct rf_buf junk = { 0 };

	assert_int_equal(run_stream(name, ad, &st, &junk), 0);
	assert_int_equal(st.kinds[RF_CHUNK_MALFORMED], 0);
	assert_int_equal(st.kinds[RF_CHUNK_ERROR], 0);
	assert_string_equal(rf_buf_str(&st.tools), deltas);
	assert_string_equal(st.acc.finish_reason, finish);
	assert_int_equal(st.acc.ntool_calls, ncalls);
	/* Streams relay deltas; the whole-answer array stays for chat. */
	assert_int_equal(st.acc.tool_calls.len, 0);
	stream_free(&st);
	rf_buf_free(&junk);
}

static void
test_fixture_tool_splits(void **state)
{
	struct rec r;
	struct rf_buf junk = { 0 };

	(void)state;
	fixture_events("openai_tools_stream.sse", 8, &r, &junk);
	rec_free(&r);
	fixture_events("openrouter_tools_stream.sse", 6, &r, &junk);
	assert_string_equal(rf_buf_str(&junk), "");
	rec_free(&r);
	fixture_events("gemini_tools_stream.sse", 2, &r, &junk);
	assert_string_equal(rf_buf_str(&junk), "");
	rec_free(&r);
	rf_buf_free(&junk);
}

/* OpenAI's own incremental shape: the first delta of each index carries
 * id, type and name, the rest argument fragments, passed on as they
 * come. */
static void
test_openai_tool_stream(void **state)
{
	(void)state;
	expect_tools("openai_tools_stream.sse", &rf_ops_openai,
	    "[{\"index\":0,\"id\":\"call_a1\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_weather\",\"arguments\":\"\"}}]\n"
	    "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]\n"
	    "[{\"index\":0,\"function\":{\"arguments\":\" \\\"Paris\\\"}\"}}]\n"
	    "[{\"index\":1,\"id\":\"call_b2\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_time\",\"arguments\":\"\"}}]\n"
	    "[{\"index\":1,\"function\":{\"arguments\":\"{\\\"tz\\\":\\\"CET\\\"}\"}}]\n",
	    "tool_calls", 2);
}

/* Groq, Cerebras and SambaNova send each call whole in one delta (usage
 * in x_groq, with time_info, in a choices-less chunk). */
static void
test_whole_call_streams(void **state)
{
	struct stream st;
	struct rf_buf junk = { 0 };

	(void)state;
	expect_tools("groq_tools_stream.sse", &rf_ops_openai,
	    "[{\"index\":0,\"id\":\"call_d5wg\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_weather\",\"arguments\":"
	    "\"{\\\"city\\\":\\\"Tampere\\\"}\"}}]\n", "tool_calls", 1);
	expect_tools("cerebras_tools_stream.sse", &rf_ops_openai,
	    "[{\"index\":0,\"id\":\"5c2ab7f9e\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Oslo\\\", "
	    "\\\"unit\\\": \\\"celsius\\\"}\"}}]\n", "tool_calls", 1);
	expect_tools("sambanova_tools_stream.sse", &rf_ops_openai,
	    "[{\"index\":0,\"id\":\"call_0f3e\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_weather\",\"arguments\":"
	    "\"{\\\"city\\\": \\\"Lima\\\"}\"}}]\n", "tool_calls", 1);
	/* Their usage still arrives, and no reasoning became text. */
	assert_int_equal(run_stream("cerebras_tools_stream.sse", &rf_ops_openai,
	    &st, &junk), 0);
	assert_int_equal(st.acc.usage.prompt_tokens, 150);
	assert_string_equal(rf_buf_str(&st.text), "");
	stream_free(&st);
	assert_int_equal(run_stream("groq_tools_stream.sse", &rf_ops_openai,
	    &st, &junk), 0);
	assert_int_equal(st.acc.usage.completion_tokens, 21);
	stream_free(&st);
	rf_buf_free(&junk);
}

/* OpenRouter repeats "type" on every fragment: only the first delta of a
 * call may carry type, id and name (clients concatenate the strings of
 * every delta of one index). */
static void
test_openrouter_tool_stream(void **state)
{
	(void)state;
	expect_tools("openrouter_tools_stream.sse", &rf_ops_openai,
	    "[{\"index\":0,\"id\":\"call_or1\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_weather\",\"arguments\":\"\"}}]\n"
	    "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\"\"}}]\n"
	    "[{\"index\":0,\"function\":{\"arguments\":\": \\\"Quito\\\"}\"}}]\n",
	    "tool_calls", 1);
}

/* A wire that leaves out "index": a delta with an id starts the next
 * call, one without continues the last; an empty id is none. */
static void
test_tool_stream_without_index(void **state)
{
	(void)state;
	expect_tools("openai_tools_noindex.sse", &rf_ops_openai,
	    "[{\"index\":0,\"id\":\"call_x\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"lookup\",\"arguments\":\"\"}}]\n"
	    "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]\n"
	    "[{\"index\":0,\"function\":{\"arguments\":\"\\\"a\\\"}\"}}]\n"
	    "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\\\"b\\\"}\"}}]\n",
	    "tool_calls", 1);
}

/* Gemini streams each functionCall whole: one delta per fragment, the
 * calls numbered across the stream, arguments as a JSON string, ids
 * made up when Gemini gives none and kept when it does; STOP after calls
 * is tool_calls. */
static void
test_gemini_tool_stream(void **state)
{
	struct stream st;
	struct rf_buf junk = { 0 };

	(void)state;
	expect_tools("gemini_tools_stream.sse", &rf_ops_gemini,
	    "[{\"index\":0,\"id\":\"call_0\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_weather\",\"arguments\":"
	    "\"{\\\"city\\\":\\\"Nairobi\\\",\\\"unit\\\":\\\"celsius\\\"}\"}},"
	    "{\"index\":1,\"id\":\"call_1\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_time\",\"arguments\":\"{\\\"tz\\\":\\\"EAT\\\"}\"}}]\n",
	    "tool_calls", 2);
	assert_int_equal(run_stream("gemini_tools_stream.sse", &rf_ops_gemini,
	    &st, &junk), 0);
	assert_string_equal(rf_buf_str(&st.text), "Let me check.");
	assert_int_equal(st.acc.usage.completion_tokens, 21);
	stream_free(&st);
	expect_tools("gemini3_tools_stream.sse", &rf_ops_gemini,
	    "[{\"index\":0,\"id\":\"fc-9a1\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"get_weather\",\"arguments\":"
	    "\"{\\\"city\\\":\\\"Lagos\\\"}\"}}]\n", "tool_calls", 1);
	rf_buf_free(&junk);
}

/* ---- the writer ---- */

struct sink {
	struct rf_buf got;
	int flushes;
	bool fail_write;
};

static int
sink_write(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	return s->fail_write ? -1 : rf_buf_append(&s->got, p, n);
}

static int
sink_flush(void *ctx)
{
	((struct sink *)ctx)->flushes++;
	return 0;
}

static void
test_writer(void **state)
{
	struct sink s = { 0 };
	struct rf_out out = { sink_write, sink_flush, &s, false, NULL };

	(void)state;
	assert_int_equal(rf_sse_write(&out, "token", "{\"text\":\"hi\"}"), 0);
	assert_string_equal(rf_buf_str(&s.got),
	    "event: token\ndata: {\"text\":\"hi\"}\n\n");
	assert_int_equal(s.flushes, 1);
	rf_buf_reset(&s.got);
	/* A stray newline cannot break the framing. */
	assert_int_equal(rf_sse_write(&out, "meta", "a\nb\r\nc"), 0);
	assert_string_equal(rf_buf_str(&s.got),
	    "event: meta\ndata: a\ndata: b\ndata: c\n\n");
	rf_buf_reset(&s.got);
	assert_int_equal(rf_sse_comment(&out, "keep-alive"), 0);
	assert_string_equal(rf_buf_str(&s.got), ": keep-alive\n\n");
	assert_int_equal(s.flushes, 3);
	/* The client went away: -1, and it stays gone. */
	s.fail_write = true;
	assert_int_equal(rf_sse_write(&out, "token", "{}"), -1);
	s.fail_write = false;
	assert_int_equal(rf_sse_comment(&out, "x"), -1);
	assert_int_equal(s.flushes, 3);
	rf_buf_free(&s.got);
}

/* Written output parses back to the same events. */
static void
test_writer_roundtrip(void **state)
{
	struct sink s = { 0 };
	struct rf_out out = { sink_write, sink_flush, &s, false, NULL };
	struct rec r;
	struct rf_buf junk = { 0 };

	(void)state;
	rf_sse_write(&out, "token", "{\"text\":\"x\"}");
	rf_sse_comment(&out, "keep-alive");
	rf_sse_write(&out, "done", "{\"ok\":true}");
	assert_int_equal(parse_cut(rf_buf_str(&s.got), s.got.len, NULL, 0, &r,
	    &junk), 0);
	assert_string_equal(rf_buf_str(&r.log),
	    "token\x1f{\"text\":\"x\"}\x1e" "done\x1f{\"ok\":true}\x1e");
	rec_free(&r);
	rf_buf_free(&junk);
	rf_buf_free(&s.got);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openai_fixture_splits),
		cmocka_unit_test(test_other_fixture_splits),
		cmocka_unit_test(test_gemini_fixture_junk),
		cmocka_unit_test(test_line_ends_equivalent),
		cmocka_unit_test(test_cr_then_lf_across_feeds),
		cmocka_unit_test(test_field_rules),
		cmocka_unit_test(test_callback_stop_and_reset),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_openai_streams),
		cmocka_unit_test(test_openai_stream_errors),
		cmocka_unit_test(test_gemini_stream),
		cmocka_unit_test(test_fixture_tool_splits),
		cmocka_unit_test(test_openai_tool_stream),
		cmocka_unit_test(test_whole_call_streams),
		cmocka_unit_test(test_openrouter_tool_stream),
		cmocka_unit_test(test_tool_stream_without_index),
		cmocka_unit_test(test_gemini_tool_stream),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_roundtrip),
	};
	const char *env = getenv("RF_FIXTURES");
	const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;

	if (env != NULL && env[0] != '\0')
		snprintf(fixdir, sizeof(fixdir), "%s", env);
	else if (slash != NULL)
		snprintf(fixdir, sizeof(fixdir), "%.*s/../../tests/fixtures",
		    (int)(slash - argv[0]), argv[0]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
