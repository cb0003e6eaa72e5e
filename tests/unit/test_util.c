/* Unit tests of util: the capped buffer, clocks, ISO time, request ids,
 * UTF-8 counting and the one duration parser (its cases gathered from the
 * two parsers it replaced: upstream's header reader, test_chain.c, and
 * the adapters' body reader, test_openai.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "util.h"

static void
test_buf_grows_and_terminates(void **state)
{
	struct rf_buf b = { 0 };
	char chunk[100];
	size_t i;

	(void)state;
	assert_string_equal(rf_buf_str(&b), "");
	memset(chunk, 'x', sizeof(chunk));
	for (i = 0; i < 50; i++)
		assert_int_equal(rf_buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 5000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[5000], '\0');
	assert_int_equal(strlen(rf_buf_str(&b)), 5000);
	rf_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	rf_buf_free(&b); /* twice is harmless */
}

static void
test_buf_cap(void **state)
{
	struct rf_buf b;
	char *before;

	(void)state;
	rf_buf_init(&b, 10);
	assert_int_equal(rf_buf_puts(&b, "12345"), 0);
	assert_int_equal(rf_buf_puts(&b, "67890"), 0); /* exactly the cap */
	assert_string_equal(rf_buf_str(&b), "1234567890");
	before = b.data;
	assert_int_equal(rf_buf_puts(&b, "x"), -1);
	assert_ptr_equal(b.data, before);
	assert_int_equal(b.len, 10);
	assert_string_equal(rf_buf_str(&b), "1234567890");
	assert_int_equal(rf_buf_printf(&b, "%d", 1), -1);
	assert_int_equal(b.len, 10);
	/* the allocation never exceeds the cap plus the NUL */
	assert_true(b.cap <= 11);
	rf_buf_free(&b);
}

static void
test_buf_cap_refuses_whole_append(void **state)
{
	struct rf_buf b;

	(void)state;
	rf_buf_init(&b, 8);
	assert_int_equal(rf_buf_puts(&b, "abc"), 0);
	assert_int_equal(rf_buf_puts(&b, "defghi"), -1); /* 9 > 8 */
	assert_string_equal(rf_buf_str(&b), "abc");
	rf_buf_free(&b);
}

static void
test_buf_printf(void **state)
{
	struct rf_buf b;
	char big[1000];

	(void)state;
	rf_buf_init(&b, 0);
	assert_int_equal(rf_buf_printf(&b, "%s=%d;", "a", 42), 0);
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* longer than the stack buffer: the heap path */
	assert_int_equal(rf_buf_printf(&b, "[%s]", big), 0);
	assert_int_equal(b.len, 5 + 1 + 999 + 1);
	assert_memory_equal(b.data, "a=42;[yyy", 9);
	assert_int_equal(b.data[b.len - 1], ']');
	rf_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_non_null(b.data); /* allocation kept */
	assert_string_equal(rf_buf_str(&b), "");
	rf_buf_free(&b);

	rf_buf_init(&b, 100);
	assert_int_equal(rf_buf_printf(&b, "%s", big), -1);
	assert_int_equal(b.len, 0);
	rf_buf_free(&b);
}

static void
test_buf_binary(void **state)
{
	struct rf_buf b;

	(void)state;
	rf_buf_init(&b, 0);
	assert_int_equal(rf_buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b\0", 4);
	assert_int_equal(rf_buf_append(&b, "", 0), 0);
	assert_int_equal(b.len, 3);
	rf_buf_free(&b);
}

static void
test_time_iso(void **state)
{
	char out[25];

	(void)state;
	rf_time_iso(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	rf_time_iso(1767268800123LL, out);
	assert_string_equal(out, "2026-01-01T12:00:00.123Z");
	rf_time_iso(1767268800007LL, out);
	assert_string_equal(out, "2026-01-01T12:00:00.007Z");
	rf_time_iso(-1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999Z");
	assert_int_equal(strlen(out), 24);
}

static int64_t
fixed_clock(void)
{
	return 1767268800000LL;
}

static void
test_clock_replaceable(void **state)
{
	int64_t a, b;

	(void)state;
	rf_time_set_clock(fixed_clock);
	assert_int_equal(rf_now_ms(), 1767268800000LL);
	rf_time_set_clock(NULL);
	a = rf_now_ms();
	assert_true(a > 1700000000000LL); /* after Nov 2023 */
	assert_true(a != 1767268800000LL);
	a = rf_mono_ms();
	rf_sleep_ms(20);
	b = rf_mono_ms();
	assert_true(b - a >= 20);
	assert_true(b - a < 2000);
	rf_sleep_ms(0);
	rf_sleep_ms(-5);
}

static void
test_request_id(void **state)
{
	char a[33], b[33];
	size_t i;

	(void)state;
	rf_request_id(a);
	rf_request_id(b);
	assert_int_equal(strlen(a), 32);
	for (i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_string_not_equal(a, b);
	assert_true(rf_request_id_valid(a));
}

static void
test_request_id_valid(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{ "abc", true },
		{ "A-Z_a.z-09", true },
		{ "x", true },
		{ "", false },
		{ "a b", false },
		{ "a/b", false },
		{ "a\nb", false },
		{ "caf\xc3\xa9", false },
		{ "<script>", false },
	};
	char s64[66];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(rf_request_id_valid(cases[i].s), cases[i].ok);
	assert_false(rf_request_id_valid(NULL));
	memset(s64, 'a', 64);
	s64[64] = '\0';
	assert_true(rf_request_id_valid(s64));
	s64[64] = 'a';
	s64[65] = '\0';
	assert_false(rf_request_id_valid(s64));
}

static void
test_utf8(void **state)
{
	const char *jp = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"; /* 3 chars */
	const char *mix = "h\xc3\xa9llo \xf0\x9f\x98\x80"; /* h é l l o ' ' 😀 */

	(void)state;
	assert_int_equal(rf_utf8_len("", 0), 0);
	assert_int_equal(rf_utf8_len("abc", 3), 3);
	assert_int_equal(rf_utf8_len(jp, 9), 3);
	assert_int_equal(rf_utf8_len(mix, strlen(mix)), 7);
	assert_int_equal(rf_utf8_prefix(jp, 9, 0), 0);
	assert_int_equal(rf_utf8_prefix(jp, 9, 1), 3);
	assert_int_equal(rf_utf8_prefix(jp, 9, 2), 6);
	assert_int_equal(rf_utf8_prefix(jp, 9, 3), 9);
	assert_int_equal(rf_utf8_prefix(jp, 9, 50), 9);
	assert_int_equal(rf_utf8_prefix(mix, strlen(mix), 2), 3);
	assert_int_equal(rf_utf8_prefix(mix, strlen(mix), 6), 7);
	assert_int_equal(rf_utf8_prefix("abcdef", 6, 4), 4);
}

/* The whole string must be one duration: what upstream's header reader
 * asks of a value. */
static int64_t
whole(const char *s)
{
	const char *end = NULL;
	int64_t ms = rf_duration_ms(s, &end);

	return end != NULL && *end == '\0' ? ms : -2;
}

static void
test_duration(void **state)
{
	const char *end;

	(void)state;
	/* Rate-limit reset headers (Groq, Cerebras). */
	assert_int_equal(whole("2m59.56s"), 179560);
	assert_int_equal(whole("7.66s"), 7660);
	assert_int_equal(whole("120ms"), 120);
	assert_int_equal(whole("1h2m"), 3720000);
	assert_int_equal(rf_duration_ms("soon", NULL), -1);
	assert_int_equal(rf_duration_ms("", NULL), -1);
	assert_int_equal(rf_duration_ms(NULL, NULL), -1);
	/* The one rule for a bare number: seconds, and it ends the duration. */
	assert_int_equal(whole("30"), 30000);
	assert_int_equal(whole("33011.382867"), 33011383);
	assert_int_equal(whole("1m30"), 90000);
	assert_int_equal(whole("  7"), 7000);
	assert_int_equal(rf_duration_ms("7. Need", &end), 7000);
	assert_string_equal(end, ". Need");
	assert_int_equal(rf_duration_ms("30 5", &end), 30000);
	assert_string_equal(end, " 5");
	/* Bodies (Gemini's retryDelay, Groq's "try again in"). */
	assert_int_equal(rf_duration_ms("34.4s", &end), 34400);
	assert_string_equal(end, "");
	assert_int_equal(rf_duration_ms("2m39.5s. Need", &end), 159500);
	assert_string_equal(end, ". Need");
	/* Not durations: no digits, exponents, signs, hex, a stray letter. */
	assert_int_equal(rf_duration_ms("s", NULL), -1);
	assert_int_equal(rf_duration_ms("1e9s", NULL), -1);
	assert_int_equal(rf_duration_ms("-3", NULL), -1);
	assert_int_equal(rf_duration_ms("+3", NULL), -1);
	assert_int_equal(rf_duration_ms("0x10", NULL), -1);
	assert_int_equal(rf_duration_ms("5S", NULL), -1);
	assert_int_equal(rf_duration_ms("inf", NULL), -1);
	/* Bounds: 12 integer digits, at most 1e9 seconds in all. */
	assert_int_equal(rf_duration_ms("1234567890123s", NULL), -1);
	assert_int_equal(whole("1000000000"), 1000000000000LL);
	assert_int_equal(rf_duration_ms("1000000001", NULL), -1);
	assert_int_equal(rf_duration_ms("999999999h", NULL), -1);
	/* Fraction digits past the ninth are read and ignored. */
	assert_int_equal(whole("0.0015000000009s"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows_and_terminates),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_cap_refuses_whole_append),
		cmocka_unit_test(test_buf_printf),
		cmocka_unit_test(test_buf_binary),
		cmocka_unit_test(test_time_iso),
		cmocka_unit_test(test_clock_replaceable),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_request_id_valid),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_duration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
