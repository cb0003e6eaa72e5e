/* Unit tests of scrub: the secret matcher and free-text redaction, the
 * identifier shapes (model, finish reason, error code), the UTF-8 repair
 * (overlong forms, surrogates, code points above U+10FFFF, truncated
 * sequences; expectations checked against Python's decode("utf-8",
 * "replace"), which follows the same maximal-subpart practice), and the
 * two places provider.c applies them (rf_result_scrub, rf_failure_scrub). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"
#include "scrub.h"

#define KEY "gsk_0123456789abcdefXYZ"
#define TOKEN "tok42"             /* shorter than RF_SCRUB_RUN_MIN */
#define FFFD "\xef\xbf\xbd"

static int
setup(void **state)
{
	(void)state;
	return rf_scrub_add_secret(KEY) | rf_scrub_add_secret(TOKEN) |
	    rf_scrub_add_secret("line1\nline2");
}

/* rf_scrub_text of src with room for cap bytes. */
static const char *
text(const char *src, size_t cap)
{
	static char buf[RF_SCRUB_TEXT_MAX + 16];

	snprintf(buf, sizeof(buf), "%s", src);
	rf_scrub_text(buf, cap);
	return buf;
}

static void
test_secret_runs(void **state)
{
	(void)state;
	assert_int_equal(rf_scrub_secret_at(KEY, strlen(KEY)), strlen(KEY));
	assert_int_equal(rf_scrub_secret_at("01234567!", 9), 8);
	assert_int_equal(rf_scrub_secret_at("0123456", 7), 0);
	assert_int_equal(rf_scrub_secret_at("tok42x", 6), 5);
	assert_int_equal(rf_scrub_secret_at("tok4", 4), 0);
	assert_int_equal(rf_scrub_secret_at("x01234567", 9), 0);
	assert_true(rf_scrub_has_secret("x01234567", 9));
	assert_true(rf_scrub_has_secret("a tok42", 7));
	assert_false(rf_scrub_has_secret("3456789", 7));
	assert_false(rf_scrub_has_secret("", 0));
	/* registering again, NULL or "" is harmless */
	assert_int_equal(rf_scrub_add_secret(KEY), 0);
	assert_int_equal(rf_scrub_add_secret(NULL), 0);
	assert_int_equal(rf_scrub_add_secret(""), 0);
}

static void
test_text_redacted(void **state)
{
	(void)state;
	assert_string_equal(text("echo Bearer " KEY "!", 200),
	    "echo Bearer [redacted]!");
	/* a piece of 8 or more bytes, anywhere, as often as it comes */
	assert_string_equal(text("x3456789abcdefXq and 89abcdef", 200),
	    "x[redacted]q and [redacted]");
	/* 7 bytes are not a key */
	assert_string_equal(text("3456789", 200), "3456789");
	/* a short secret only whole */
	assert_string_equal(text("a tok42 b tok4", 200), "a [redacted] b tok4");
	/* control bytes inside a secret still match */
	assert_string_equal(text("<line1\nline2>", 200), "<[redacted]>");
	assert_string_equal(text("", 200), "");
}

static void
test_text_bounded(void **state)
{
	char buf[16];

	(void)state;
	/* s is read up to its NUL or cap bytes (its buffer); the result fits
	 * cap, NUL included, even when a redaction makes it longer */
	assert_string_equal(text("ab gsk_0123", 12), "ab [redacte");
	assert_string_equal(text("abcdefghijklmnop", 5), "abcd");
	memset(buf, 'x', sizeof(buf)); /* not terminated within cap */
	rf_scrub_text(buf, sizeof(buf));
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	rf_scrub_text(buf, 0); /* nothing to write into: untouched */
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	/* a redaction that grows the text is cut at cap */
	{
		char many[200] = "";

		for (int i = 0; i < 30; i++)
			strcat(many, TOKEN);
		assert_int_equal(strlen(text(many, 100)), 99);
		assert_null(strstr(text(many, 100), TOKEN));
	}
}

static void
test_text_utf8(void **state)
{
	(void)state;
	assert_string_equal(text("caf\xc3\xa9 \xff \xc0\x80!", 200),
	    "caf\xc3\xa9 " FFFD " " FFFD FFFD "!");
	/* a cut never splits a character, nor the replacement */
	assert_string_equal(text("ab\xc3\xa9", 4), "ab");
	assert_string_equal(text("ab\xff", 5), "ab");
	assert_string_equal(text("ab\xff", 6), "ab" FFFD);
}

static void
test_model_shape(void **state)
{
	static const char *const good[] = { "llama-3.1-8b-instant",
	    "openrouter/meta-llama/llama-3.3-70b-instruct:free",
	    "gemini-2.0-flash-001", "models/x@001+b_c.d", "m", NULL };
	static const char *const bad[] = { "has space", "quote\"", "ctl\n",
	    "caf\xc3\xa9", "semi;colon", "Bearer " KEY, KEY, "m-01234567",
	    "m-tok42", NULL };
	char id[RF_SCRUB_MODEL_MAX + 8];

	(void)state;
	for (int i = 0; good[i] != NULL; i++) {
		snprintf(id, sizeof(id), "%s", good[i]);
		assert_true(rf_scrub_model(id));
		assert_string_equal(id, good[i]);
	}
	for (int i = 0; bad[i] != NULL; i++) {
		snprintf(id, sizeof(id), "%s", bad[i]);
		assert_false(rf_scrub_model(id));
		assert_string_equal(id, "");
	}
	id[0] = '\0';
	assert_true(rf_scrub_model(id)); /* none stays none */
	memset(id, 'a', RF_SCRUB_MODEL_MAX);
	id[RF_SCRUB_MODEL_MAX] = '\0';
	assert_true(rf_scrub_model(id));
	memset(id, 'a', RF_SCRUB_MODEL_MAX + 1);
	id[RF_SCRUB_MODEL_MAX + 1] = '\0';
	assert_false(rf_scrub_model(id));
}

static void
test_finish_reason(void **state)
{
	static const char *const cases[][2] = {
		{ "stop", "stop" }, { "length", "length" },
		{ "content_filter", "content_filter" },
		{ "tool_calls", "tool_calls" },
		{ "function_call", "tool_calls" }, { "eos", "stop" },
		{ "STOP", "stop" }, { KEY, "stop" }, { "", "" },
	};
	char fr[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(fr, sizeof(fr), "%s", cases[i][0]);
		rf_scrub_finish(fr, sizeof(fr));
		assert_string_equal(fr, cases[i][1]);
	}
}

static void
test_code_shape(void **state)
{
	char c[64];

	(void)state;
	assert_true(rf_scrub_code_ok("rate_limit_exceeded"));
	assert_true(rf_scrub_code_ok("API_KEY_INVALID"));
	assert_true(rf_scrub_code_ok("a.b-c_9"));
	assert_false(rf_scrub_code_ok(NULL));
	assert_false(rf_scrub_code_ok(""));
	assert_false(rf_scrub_code_ok("two words"));
	assert_false(rf_scrub_code_ok("x:y"));
	assert_false(rf_scrub_code_ok(KEY));                 /* shaped, a key */
	assert_false(rf_scrub_code_ok("content_policy_" KEY));
	memset(c, 'a', 48);
	c[48] = '\0';
	assert_true(rf_scrub_code_ok(c));
	c[48] = 'a';
	c[49] = '\0';
	assert_false(rf_scrub_code_ok(c));
	assert_false(rf_scrub_code(c));
	assert_string_equal(c, "");
	snprintf(c, sizeof(c), "SAFETY");
	assert_true(rf_scrub_code(c));
	assert_string_equal(c, "SAFETY");
}

/* rf_scrub_utf8 of in[0..n) gives want, which is then valid. */
static void
repairs(const char *in, size_t n, const char *want)
{
	struct rf_buf b;

	rf_buf_init(&b, 1024);
	assert_int_equal(rf_buf_append(&b, in, n), 0);
	assert_int_equal(rf_scrub_utf8(&b), 0);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	assert_int_equal(rf_scrub_utf8_valid(b.data, b.len), b.len);
	rf_buf_free(&b);
}

#define R(in, want) repairs(in, sizeof(in) - 1, want)

static void
test_utf8_valid_kept(void **state)
{
	(void)state;
	R("plain ascii \x7f", "plain ascii \x7f");
	R("\xc2\x80\xdf\xbf", "\xc2\x80\xdf\xbf");            /* U+0080, U+07FF */
	R("\xe0\xa0\x80\xef\xbf\xbf", "\xe0\xa0\x80\xef\xbf\xbf"); /* U+0800, U+FFFF */
	R("\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80"); /* around surrogates */
	R("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
	R("\xf0\x9f\x98\x80\xe2\x82\xac", "\xf0\x9f\x98\x80\xe2\x82\xac");
	/* U+0000 is valid UTF-8 too */
	assert_int_equal(rf_scrub_utf8_valid("nul\0inside", 10), 10);
}

static void
test_utf8_overlong(void **state)
{
	(void)state;
	R("\xc0\x80", FFFD FFFD);
	R("\xc1\xbf", FFFD FFFD);
	R("\xe0\x80\x80", FFFD FFFD FFFD);
	R("\xe0\x9f\xbf", FFFD FFFD FFFD);
	R("\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD);
	R("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD);
}

static void
test_utf8_surrogates(void **state)
{
	(void)state;
	R("\xed\xa0\x80", FFFD FFFD FFFD);               /* U+D800 */
	R("\xed\xbf\xbf", FFFD FFFD FFFD);               /* U+DFFF */
	R("\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD); /* a pair */
}

static void
test_utf8_above_max(void **state)
{
	(void)state;
	R("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);      /* U+110000 */
	R("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD);
	R("\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);
	R("\xff\xfe", FFFD FFFD);
}

static void
test_utf8_truncated(void **state)
{
	(void)state;
	R("\xe2\x82", FFFD);                  /* one subpart, at the end */
	R("\xf0\x9f\x98", FFFD);
	R("\xe2\x82" "A", FFFD "A");
	R("\xf0\x9f\x98" "\xe2\x82\xac", FFFD "\xe2\x82\xac");
	R("\x80", FFFD);                      /* lone continuation */
	R("a\xc3", "a" FFFD);
}

static void
test_utf8_valid_prefix(void **state)
{
	(void)state;
	assert_int_equal(rf_scrub_utf8_valid("ab\xc3\xa9" "c", 5), 5);
	assert_int_equal(rf_scrub_utf8_valid("ab\xc3", 3), 2);
	assert_int_equal(rf_scrub_utf8_valid("ab\xed\xa0\x80", 5), 2);
	assert_int_equal(rf_scrub_utf8_valid("", 0), 0);
}

static void
test_utf8_cap(void **state)
{
	struct rf_buf b;

	(void)state;
	/* 4 invalid bytes become 12: past a cap of 8, b is left alone */
	rf_buf_init(&b, 8);
	assert_int_equal(rf_buf_append(&b, "\xff\xff\xff\xff", 4), 0);
	assert_int_equal(rf_scrub_utf8(&b), -1);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "\xff\xff\xff\xff", 4);
	rf_buf_free(&b);
	/* an empty, never allocated buffer is valid */
	rf_buf_init(&b, 8);
	assert_int_equal(rf_scrub_utf8(&b), 0);
	rf_buf_free(&b);
}

/* Where provider.c applies the rules: a result and a failure. */
static void
test_result_and_failure(void **state)
{
	struct rf_result r;
	struct rf_failure f;

	(void)state;
	rf_result_init(&r);
	snprintf(r.model, sizeof(r.model), "%s", KEY);
	snprintf(r.finish_reason, sizeof(r.finish_reason), "x-" TOKEN);
	snprintf(r.safety_reason, sizeof(r.safety_reason), "Bearer %s", KEY);
	assert_int_equal(rf_buf_puts(&r.text, "the text " KEY), 0);
	assert_false(rf_result_scrub(&r));
	assert_string_equal(r.model, "");
	assert_string_equal(r.finish_reason, "stop");
	assert_string_equal(r.safety_reason, "");
	/* the answer text is the product: not redacted here */
	assert_string_equal(rf_buf_str(&r.text), "the text " KEY);
	rf_result_reset(&r);
	snprintf(r.model, sizeof(r.model), "llama-3.1-8b-instant");
	snprintf(r.safety_reason, sizeof(r.safety_reason), "PROHIBITED_CONTENT");
	assert_true(rf_result_scrub(&r));
	assert_string_equal(r.model, "llama-3.1-8b-instant");
	assert_string_equal(r.safety_reason, "PROHIBITED_CONTENT");
	rf_result_free(&r);

	rf_failure_set(&f, RF_ERR_PROVIDER_AUTH, "HTTP 401, code " KEY);
	snprintf(f.message, sizeof(f.message), "refused: Bearer %s \xff", KEY);
	rf_failure_scrub(&f);
	assert_string_equal(f.details, "HTTP 401, code [redacted]");
	assert_string_equal(f.message, "refused: Bearer [redacted] " FFFD);
	/* the adapters leave a code with a secret out of technicalDetails */
	assert_false(rf_adapter_safe_code(KEY));
	assert_true(rf_adapter_safe_code("invalid_api_key"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_runs),
		cmocka_unit_test(test_text_redacted),
		cmocka_unit_test(test_text_bounded),
		cmocka_unit_test(test_text_utf8),
		cmocka_unit_test(test_model_shape),
		cmocka_unit_test(test_finish_reason),
		cmocka_unit_test(test_code_shape),
		cmocka_unit_test(test_utf8_valid_kept),
		cmocka_unit_test(test_utf8_overlong),
		cmocka_unit_test(test_utf8_surrogates),
		cmocka_unit_test(test_utf8_above_max),
		cmocka_unit_test(test_utf8_truncated),
		cmocka_unit_test(test_utf8_valid_prefix),
		cmocka_unit_test(test_utf8_cap),
		cmocka_unit_test(test_result_and_failure),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
