/*
 * test_mock: the built-in demo provider (docs/providers.md), through the
 * in-process slots of its ops (answer, next_token): deterministic text
 * that says it is the demo path and quotes the question, token counts, and
 * the word tokens a stream is cut into; and its catalog entry's flags.
 * With a /v1 request: a deterministic tool call when tools are given
 * (arguments from the schema's required properties), and text quoting the
 * tool's result after a tool message, so a round trip works offline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */

static void
answer(const struct rf_msg *m, size_t n, const char *system,
    struct rf_result *r)
{
	struct rf_prompt p = { .msgs = m, .nmsgs = n, .system = system,
	    .max_tokens = 512, .temperature = 0.7 };

	rf_result_init(r);
	rf_buf_puts(&r->text, "left over from an earlier attempt");
	rf_ops_mock.answer(&p, r);
}

static long
words(const char *s)
{
	long n = 0;
	bool in = false;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\n' || *s == '\t')
			in = false;
		else if (!in)
			in = true, n++;
	}
	return n;
}

static void
test_answer_shape(void **state)
{
	static const struct rf_msg m[] = {
		{ "user", "first question" },
		{ "assistant", "an answer" },
		{ "user", "  Explain\n\tthe   fallback strategy  " },
	};
	struct rf_result a, b;

	(void)state;
	answer(m, 3, NULL, &a);
	answer(m, 3, NULL, &b);
	assert_string_equal(rf_buf_str(&a.text), rf_buf_str(&b.text));
	assert_non_null(strstr(rf_buf_str(&a.text), "demo path"));
	assert_null(strstr(rf_buf_str(&a.text), "left over"));
	/* The last user message, whitespace collapsed and trimmed. */
	assert_non_null(strstr(rf_buf_str(&a.text),
	    "\"Explain the fallback strategy\""));
	assert_null(strstr(rf_buf_str(&a.text), "first question"));
	assert_true(words(rf_buf_str(&a.text)) >= 20);
	assert_string_equal(a.model, "relayforge-mock-1");
	assert_string_equal(a.finish_reason, "stop");
	assert_false(a.safety_block);
	/* 14 + 9 + 36 = 59 characters -> ceil(59 / 4) = 15 tokens. */
	assert_int_equal(a.usage.prompt_tokens, 15);
	assert_int_equal(a.usage.completion_tokens, words(rf_buf_str(&a.text)));
	rf_result_free(&a);
	rf_result_free(&b);
}

static void
test_quote_is_bounded(void **state)
{
	char prompt[400];
	struct rf_msg m[1] = { { "user", prompt } };
	struct rf_result r;
	const char *q, *e;
	size_t i;

	(void)state;
	/* 100 two-byte characters and no space: one word longer than the
	 * quote, so it keeps 60 whole characters and marks the cut. */
	for (i = 0; i < 100; i++)
		memcpy(prompt + 2 * i, "\xc3\xa9", 2);
	prompt[200] = '\0';
	answer(m, 1, "sys", &r);
	q = strchr(rf_buf_str(&r.text), '"');
	assert_non_null(q);
	e = strchr(q + 1, '"');
	assert_non_null(e);
	assert_int_equal(e - q - 1, 120 + 3);
	assert_memory_equal(e - 3, ELLIPSIS, 3);
	/* 3 + 100 characters -> ceil(103 / 4) = 26 tokens. */
	assert_int_equal(r.usage.prompt_tokens, 26);
	rf_result_free(&r);

	/* An empty prompt still counts one token. */
	m[0].content = "";
	answer(m, 1, NULL, &r);
	assert_int_equal(r.usage.prompt_tokens, 1);
	assert_non_null(strstr(rf_buf_str(&r.text), "\"\""));
	rf_result_free(&r);
}

/* The quoted text between the answer's quotes (into out). */
static void
quoted(const char *prompt, char *out, size_t len)
{
	struct rf_msg m[1] = { { "user", prompt } };
	struct rf_result r;
	const char *q, *e;

	answer(m, 1, NULL, &r);
	q = strchr(rf_buf_str(&r.text), '"');
	assert_non_null(q);
	e = strrchr(q + 1, '"');
	assert_non_null(e);
	assert_true((size_t)(e - q) <= len);
	snprintf(out, len, "%.*s", (int)(e - q - 1), q + 1);
	rf_result_free(&r);
}

static void
test_quote_cuts_at_a_word(void **state)
{
	char got[300];

	(void)state;
	/* 53 characters up to "its" and its space, then "cooldowns" crosses
	 * the 60th character: the quote ends before that word. */
	quoted("Explain the fallback strategy in RelayForge with its cooldowns "
	    "and retries", got, sizeof(got));
	assert_string_equal(got,
	    "Explain the fallback strategy in RelayForge with its" ELLIPSIS);
	/* The 60th character ends a word: the whole word stays. */
	quoted("aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff1 "
	    "next", got, sizeof(got));
	assert_string_equal(got, "aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd "
	    "eeeeeeeee fffffffff1" ELLIPSIS);
	/* Exactly 60 characters and trailing blanks: nothing is cut. */
	quoted("aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff1 \n ",
	    got, sizeof(got));
	assert_string_equal(got, "aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd "
	    "eeeeeeeee fffffffff1");
	/* A separator left at the cut goes: "word,..." reads as a slip. */
	quoted("one two three four five six seven eight nine ten eleven, "
	    "twelve thirteen", got, sizeof(got));
	assert_string_equal(got,
	    "one two three four five six seven eight nine ten eleven" ELLIPSIS);
	/* Multi-byte words are cut between words too. */
	quoted("\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9 "
	    "\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9 "
	    "\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9 "
	    "\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9 "
	    "\xc3\xa9t\xc3\xa9 " "\xc3\xa9t\xc3\xa9", got, sizeof(got));
	/* 14 words of 3 characters and 13 spaces: 55, nothing cut. */
	assert_null(strstr(got, ELLIPSIS));
	/* 11 words and spaces are 55 characters; a 7-character word of
	 * two-byte characters would end at the 62nd. */
	quoted("word word word word word word word word word word word "
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
	    got, sizeof(got));
	assert_string_equal(got, "word word word word word word word word word "
	    "word word" ELLIPSIS);
}

static void
test_tokens_rebuild_text(void **state)
{
	static const struct rf_msg m[] = { { "user", "hello" } };
	struct rf_result r;
	struct rf_buf again = { 0 };
	size_t pos = 0, n, count = 0;
	const char *t;

	(void)state;
	answer(m, 1, NULL, &r);
	t = rf_buf_str(&r.text);
	while ((n = rf_ops_mock.next_token(t, &pos)) > 0) {
		const char *tok = t + pos - n;
		size_t k = strcspn(tok, " ");

		rf_buf_append(&again, tok, n);
		/* A word, then only the spaces after it. */
		assert_true(k > 0 && k <= n);
		assert_int_equal(strspn(tok + k, " ") >= n - k, 1);
		count++;
	}
	assert_string_equal(rf_buf_str(&again), t);
	assert_int_equal((long)count, r.usage.completion_tokens);
	assert_int_equal(rf_ops_mock.next_token(t, &pos), 0);
	rf_buf_free(&again);
	rf_result_free(&r);
}

static void
test_next_token_edges(void **state)
{
	size_t pos = 0;

	(void)state;
	assert_int_equal(rf_ops_mock.next_token("", &pos), 0);
	assert_int_equal(rf_ops_mock.next_token("  lead word", &pos), 7);
	assert_int_equal(pos, 7);
	assert_int_equal(rf_ops_mock.next_token("  lead word", &pos), 4);
	assert_int_equal(rf_ops_mock.next_token("  lead word", &pos), 0);
	assert_int_equal(pos, 11);
	pos = 0;
	assert_int_equal(rf_ops_mock.next_token("one\n\ntwo", &pos), 5);
}

static void
test_catalog_entry(void **state)
{
	const struct rf_provider *m = &rf_providers[rf_config_pid("mock")];

	(void)state;
	assert_string_equal(m->id, "mock");
	assert_string_equal(m->name, "Mock");
	assert_null(m->env); /* no key, URL or model settings */
	assert_string_equal(m->url, "");
	assert_string_equal(m->model, "relayforge-mock-1");
	assert_true(m->builtin);
	assert_ptr_equal(m->ops, &rf_ops_mock);
	assert_non_null(m->ops->answer);
	assert_non_null(m->ops->next_token);
	assert_null(m->ops->build);
	assert_null(m->ops->parse_response);
	assert_null(m->ops->parse_chunk);
	assert_null(m->ops->classify_error);
}

/* ---- tool calls (a /v1 request) ---- */

static void
answer_oai(const char *messages, const char *fields, struct rf_result *r)
{
	static const struct rf_msg m[] = { { "user", "weather in Oslo?" } };
	struct rf_oai_params oai = { 0 };
	struct rf_prompt p = { .msgs = m, .nmsgs = 1, .max_tokens = 512,
	    .temperature = 0.7, .oai = &oai };

	oai.messages = json_tokener_parse(messages);
	oai.fields = fields != NULL ? json_tokener_parse(fields) : NULL;
	assert_non_null(oai.messages);
	rf_result_init(r);
	rf_buf_puts(&r->text, "left over");
	rf_buf_puts(&r->tool_calls, "[\"left over\"]");
	rf_ops_mock.answer(&p, r);
	json_object_put(oai.messages);
	json_object_put(oai.fields);
}

static const char ask[] =
    "[{\"role\":\"user\",\"content\":\"weather in Oslo?\"}]";
static const char two_tools[] =
    "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{"
    "\"city\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\","
    "\"enum\":[\"celsius\",\"fahrenheit\"]},\"days\":{\"type\":\"integer\"},"
    "\"hourly\":{\"type\":[\"boolean\",\"null\"]},\"tags\":{\"type\":\"array\","
    "\"items\":{\"type\":\"number\"},\"minItems\":1},\"at\":{\"type\":"
    "\"object\",\"properties\":{\"lat\":{\"type\":\"number\"}},\"required\":"
    "[\"lat\"]},\"note\":{\"type\":\"string\"}},"
    "\"required\":[\"city\",\"unit\",\"days\",\"hourly\",\"tags\",\"at\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}]%s}";

static void
test_tool_call(void **state)
{
	char fields[2048];
	struct rf_result r, again;

	(void)state;
	snprintf(fields, sizeof(fields), two_tools, "");
	answer_oai(ask, fields, &r);
	assert_int_equal(r.text.len, 0);
	assert_string_equal(r.finish_reason, "tool_calls");
	assert_int_equal(r.ntool_calls, 1);
	assert_string_equal(rf_buf_str(&r.tool_calls),
	    "[{\"id\":\"call_mock_1\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"example\\\","
	    "\\\"unit\\\":\\\"celsius\\\",\\\"days\\\":1,\\\"hourly\\\":true,"
	    "\\\"tags\\\":[1],\\\"at\\\":{\\\"lat\\\":1}}\"}}]");
	assert_true(r.usage.completion_tokens > 0);
	assert_string_equal(r.model, "relayforge-mock-1");
	/* Deterministic. */
	answer_oai(ask, fields, &again);
	assert_string_equal(rf_buf_str(&r.tool_calls),
	    rf_buf_str(&again.tool_calls));
	rf_result_free(&r);
	rf_result_free(&again);

	/* tool_choice names the other function (no parameters: {}). */
	snprintf(fields, sizeof(fields), two_tools, ",\"tool_choice\":{\"type\":"
	    "\"function\",\"function\":{\"name\":\"get_time\"}}");
	answer_oai(ask, fields, &r);
	assert_string_equal(rf_buf_str(&r.tool_calls),
	    "[{\"id\":\"call_mock_1\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_time\",\"arguments\":\"{}\"}}]");
	rf_result_free(&r);

	/* "none": text, no calls. */
	snprintf(fields, sizeof(fields), two_tools, ",\"tool_choice\":\"none\"");
	answer_oai(ask, fields, &r);
	assert_int_equal(r.tool_calls.len, 0);
	assert_int_equal(r.ntool_calls, 0);
	assert_string_equal(r.finish_reason, "stop");
	assert_non_null(strstr(rf_buf_str(&r.text), "\"weather in Oslo?\""));
	rf_result_free(&r);

	/* No tools: the usual text, and the left-over calls are gone. */
	answer_oai(ask, NULL, &r);
	assert_int_equal(r.tool_calls.len, 0);
	assert_non_null(strstr(rf_buf_str(&r.text), "demo path"));
	rf_result_free(&r);
}

/* After the tool's result: text quoting it, naming the function. */
static void
test_tool_round_trip(void **state)
{
	char fields[2048];
	struct rf_result r;

	(void)state;
	snprintf(fields, sizeof(fields), two_tools, "");
	answer_oai("[{\"role\":\"user\",\"content\":\"weather in Oslo?\"},"
	    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
	    "\"call_mock_1\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_weather\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\","
	    "\"tool_call_id\":\"call_mock_1\",\"content\":\"{\\\"temp\\\": 21}\"}]",
	    fields, &r);
	assert_int_equal(r.tool_calls.len, 0);
	assert_string_equal(r.finish_reason, "stop");
	assert_non_null(strstr(rf_buf_str(&r.text),
	    "The tool get_weather returned \"{\"temp\": 21}\"."));
	assert_non_null(strstr(rf_buf_str(&r.text), "demo path"));
	assert_int_equal(r.usage.completion_tokens, words(rf_buf_str(&r.text)));
	rf_result_free(&r);
}

/* A stream of the answer: its calls as one delta array with indexes. */
static void
test_tool_deltas(void **state)
{
	char fields[2048];
	struct rf_result r;
	struct rf_buf d = { 0 };

	(void)state;
	snprintf(fields, sizeof(fields), two_tools, ",\"tool_choice\":{\"type\":"
	    "\"function\",\"function\":{\"name\":\"get_time\"}}");
	answer_oai(ask, fields, &r);
	assert_int_equal(rf_result_tool_deltas(&r, &d), 0);
	assert_string_equal(rf_buf_str(&d), "[{\"index\":0,\"id\":\"call_mock_1\","
	    "\"type\":\"function\",\"function\":{\"name\":\"get_time\","
	    "\"arguments\":\"{}\"}}]");
	rf_buf_reset(&d);
	rf_buf_reset(&r.tool_calls);
	assert_int_equal(rf_result_tool_deltas(&r, &d), -1);
	assert_int_equal(d.len, 0);
	rf_result_free(&r);
	rf_buf_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog_entry),
		cmocka_unit_test(test_answer_shape),
		cmocka_unit_test(test_quote_is_bounded),
		cmocka_unit_test(test_quote_cuts_at_a_word),
		cmocka_unit_test(test_tokens_rebuild_text),
		cmocka_unit_test(test_next_token_edges),
		cmocka_unit_test(test_tool_call),
		cmocka_unit_test(test_tool_round_trip),
		cmocka_unit_test(test_tool_deltas),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
