/* Unit tests of contract: every request rule with the field it names (a
 * table of bodies), defaults, messages mode, UTF-8 counting, bounded
 * depth.  The answers' JSON is tested in test_render.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "util.h"

/* Pids are catalog indexes (provider.h); these tests name them by id. */
#define RF_P_GROQ rf_config_pid("groq")
#define RF_P_SAMBANOVA rf_config_pid("sambanova")
#define RF_P_GEMINI rf_config_pid("gemini")
#define RF_P_OPENROUTER rf_config_pid("openrouter")
#define RF_P_MOCK rf_config_pid("mock")

/* A chain of groq, gemini, mock; small limits so they are easy to pass. */
static struct rf_config cfg;

static void
init_cfg(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.chain[0] = RF_P_GROQ;
	cfg.chain[1] = RF_P_GEMINI;
	cfg.chain[2] = RF_P_MOCK;
	cfg.chain_len = 3;
	cfg.mock_on = true;
	cfg.max_prompt_chars = 10;
	cfg.max_tokens_limit = 4096;
}

static int
setup(void **state)
{
	(void)state;
	init_cfg();
	return 0;
}

static const struct {
	const char *body;
	enum rf_err code;
	const char *field; /* "" for invalid_json */
} refused[] = {
	/* not JSON at all */
	{ "", RF_ERR_INVALID_JSON, "" },
	{ "   ", RF_ERR_INVALID_JSON, "" },
	{ "{", RF_ERR_INVALID_JSON, "" },
	{ "nul", RF_ERR_INVALID_JSON, "" },
	{ "{\"prompt\":\"hi\"} x", RF_ERR_INVALID_JSON, "" },
	{ "{\"prompt\":\"hi\"}{}", RF_ERR_INVALID_JSON, "" },
	{ "{'prompt':'hi'}", RF_ERR_INVALID_JSON, "" },
	{ "{\"prompt\":\"hi\",}", RF_ERR_INVALID_JSON, "" },
	/* bytes that are not UTF-8 outside any string: a grammar error */
	{ "{\"prompt\":\"hi\"}\xc3\xa9", RF_ERR_INVALID_JSON, "" },
	{ "\xef\xbb\xbf{\"prompt\":\"hi\"}", RF_ERR_INVALID_JSON, "" },
	/* JSON, not an object */
	{ "[]", RF_ERR_VALIDATION, "body" },
	{ "\"hi\"", RF_ERR_VALIDATION, "body" },
	{ "123", RF_ERR_VALIDATION, "body" },
	{ "null", RF_ERR_VALIDATION, "body" },
	{ "true", RF_ERR_VALIDATION, "body" },
	/* top level */
	{ "{}", RF_ERR_VALIDATION, "prompt" },
	{ "{\"prompt\":null}", RF_ERR_VALIDATION, "prompt" },
	{ "{\"prompt\":\"hi\",\"foo\":1}", RF_ERR_VALIDATION, "foo" },
	{ "{\"prompt\":\"hi\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]}", RF_ERR_VALIDATION, "prompt" },
	{ "{\"system\":\"be brief\"}", RF_ERR_VALIDATION, "prompt" },
	/* prompt */
	{ "{\"prompt\":5}", RF_ERR_VALIDATION, "prompt" },
	{ "{\"prompt\":\"\"}", RF_ERR_VALIDATION, "prompt" },
	{ "{\"prompt\":\" \\n\\t \"}", RF_ERR_VALIDATION, "prompt" },
	{ "{\"prompt\":\"12345678901\"}", RF_ERR_VALIDATION, "prompt" },
	{ "{\"prompt\":\"a\\u0000b\"}", RF_ERR_VALIDATION, "prompt" },
	{ "{\"prompt\":[\"hi\"]}", RF_ERR_VALIDATION, "prompt" },
	/* messages */
	{ "{\"messages\":\"hi\"}", RF_ERR_VALIDATION, "messages" },
	{ "{\"messages\":[]}", RF_ERR_VALIDATION, "messages" },
	{ "{\"messages\":[1]}", RF_ERR_VALIDATION, "messages[0]" },
	{ "{\"messages\":[{\"role\":\"user\"}]}", RF_ERR_VALIDATION,
	    "messages[0].content" },
	{ "{\"messages\":[{\"content\":\"hi\"}]}", RF_ERR_VALIDATION,
	    "messages[0].role" },
	{ "{\"messages\":[{\"role\":\"bot\",\"content\":\"hi\"}]}",
	    RF_ERR_VALIDATION, "messages[0].role" },
	{ "{\"messages\":[{\"role\":1,\"content\":\"hi\"}]}",
	    RF_ERR_VALIDATION, "messages[0].role" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
	    RF_ERR_VALIDATION, "messages[0].content" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\" \"}]}",
	    RF_ERR_VALIDATION, "messages[0].content" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"name\":\"x\"}]}",
	    RF_ERR_VALIDATION, "messages[0].name" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
	    "{\"role\":\"assistant\",\"content\":\"yo\"}]}",
	    RF_ERR_VALIDATION, "messages[1].role" },
	{ "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
	    "{\"role\":\"assistant\",\"content\":\"\"},"
	    "{\"role\":\"user\",\"content\":\"hi\"}]}",
	    RF_ERR_VALIDATION, "messages[1].content" },
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"123456\"},"
	    "{\"role\":\"assistant\",\"content\":\"12\"},"
	    "{\"role\":\"user\",\"content\":\"123\"}]}",
	    RF_ERR_VALIDATION, "messages" },
	/* system */
	{ "{\"prompt\":\"hi\",\"system\":5}", RF_ERR_VALIDATION, "system" },
	{ "{\"prompt\":\"hi\",\"system\":\"12345678901\"}", RF_ERR_VALIDATION,
	    "system" },
	/* options */
	{ "{\"prompt\":\"hi\",\"options\":[]}", RF_ERR_VALIDATION, "options" },
	{ "{\"prompt\":\"hi\",\"options\":{\"foo\":1}}", RF_ERR_VALIDATION,
	    "options.foo" },
	{ "{\"prompt\":\"hi\",\"options\":{\"strategy\":5}}", RF_ERR_VALIDATION,
	    "options.strategy" },
	{ "{\"prompt\":\"hi\",\"options\":{\"strategy\":\"nosuch\"}}",
	    RF_ERR_VALIDATION, "options.strategy" },
	{ "{\"prompt\":\"hi\",\"options\":{\"strategy\":\"cerebras\"}}",
	    RF_ERR_VALIDATION, "options.strategy" },
	{ "{\"prompt\":\"hi\",\"options\":{\"strategy\":\"AUTO\"}}",
	    RF_ERR_VALIDATION, "options.strategy" },
	{ "{\"prompt\":\"hi\",\"options\":{\"stream\":\"yes\"}}",
	    RF_ERR_VALIDATION, "options.stream" },
	{ "{\"prompt\":\"hi\",\"options\":{\"maxTokens\":0}}",
	    RF_ERR_VALIDATION, "options.maxTokens" },
	{ "{\"prompt\":\"hi\",\"options\":{\"maxTokens\":4097}}",
	    RF_ERR_VALIDATION, "options.maxTokens" },
	{ "{\"prompt\":\"hi\",\"options\":{\"maxTokens\":-3}}",
	    RF_ERR_VALIDATION, "options.maxTokens" },
	{ "{\"prompt\":\"hi\",\"options\":{\"maxTokens\":5.5}}",
	    RF_ERR_VALIDATION, "options.maxTokens" },
	{ "{\"prompt\":\"hi\",\"options\":{\"maxTokens\":512.0}}",
	    RF_ERR_VALIDATION, "options.maxTokens" },
	{ "{\"prompt\":\"hi\",\"options\":{\"maxTokens\":\"512\"}}",
	    RF_ERR_VALIDATION, "options.maxTokens" },
	{ "{\"prompt\":\"hi\",\"options\":{\"maxTokens\":99999999999999999999}}",
	    RF_ERR_VALIDATION, "options.maxTokens" },
	{ "{\"prompt\":\"hi\",\"options\":{\"temperature\":-0.1}}",
	    RF_ERR_VALIDATION, "options.temperature" },
	{ "{\"prompt\":\"hi\",\"options\":{\"temperature\":2.01}}",
	    RF_ERR_VALIDATION, "options.temperature" },
	{ "{\"prompt\":\"hi\",\"options\":{\"temperature\":\"0.5\"}}",
	    RF_ERR_VALIDATION, "options.temperature" },
	{ "{\"prompt\":\"hi\",\"options\":{\"temperature\":NaN}}",
	    RF_ERR_VALIDATION, "options.temperature" },
	{ "{\"prompt\":\"hi\",\"options\":{\"temperature\":1e400}}",
	    RF_ERR_VALIDATION, "options.temperature" },
	{ "{\"prompt\":\"hi\",\"options\":{\"fallback\":\"false\"}}",
	    RF_ERR_VALIDATION, "options.fallback" },
	{ "{\"prompt\":\"hi\",\"options\":{\"fallback\":0}}",
	    RF_ERR_VALIDATION, "options.fallback" },
	{ "{\"prompt\":\"hi\",\"options\":{\"streamRecovery\":\"always\"}}",
	    RF_ERR_VALIDATION, "options.streamRecovery" },
	{ "{\"prompt\":\"hi\",\"options\":{\"streamRecovery\":true}}",
	    RF_ERR_VALIDATION, "options.streamRecovery" },
	/* metadata */
	{ "{\"prompt\":\"hi\",\"metadata\":\"web\"}", RF_ERR_VALIDATION,
	    "metadata" },
	{ "{\"prompt\":\"hi\",\"metadata\":{\"user\":\"x\"}}", RF_ERR_VALIDATION,
	    "metadata.user" },
	{ "{\"prompt\":\"hi\",\"metadata\":{\"source\":5}}", RF_ERR_VALIDATION,
	    "metadata.source" },
	{ "{\"prompt\":\"hi\",\"metadata\":{\"source\":\"12345678901234567890"
	    "123456789012345678901234567890123456789012345\"}}",
	    RF_ERR_VALIDATION, "metadata.source" },
};

/* Text that is not well-formed UTF-8 (Unicode table 3-7), or a \u escape
 * that is half of a UTF-16 pair: a validation_error on the field whose
 * string holds it (the object around it for a key, "body" for the root). */
static const struct {
	const char *body;
	const char *field;
} bad_text[] = {
	/* invalid bytes json-c used to reject as invalid_json */
	{ "{\"prompt\":\"\xff\xfe\"}", "prompt" },
	{ "{\"prompt\":\"\xc3\"}", "prompt" },
	/* overlong forms */
	{ "{\"prompt\":\"a\xc0\x80\"}", "prompt" },
	{ "{\"prompt\":\"\xc1\xbf\"}", "prompt" },
	{ "{\"prompt\":\"\xe0\x80\x80\"}", "prompt" },
	{ "{\"prompt\":\"\xe0\x9f\xbf\"}", "prompt" },
	{ "{\"prompt\":\"\xf0\x80\x80\x80\"}", "prompt" },
	{ "{\"prompt\":\"\xf0\x8f\xbf\xbf\"}", "prompt" },
	/* UTF-16 surrogates encoded in UTF-8 */
	{ "{\"prompt\":\"\xed\xa0\x80\"}", "prompt" },
	{ "{\"prompt\":\"\xed\xbf\xbf\"}", "prompt" },
	{ "{\"prompt\":\"\xed\xa0\xbd\xed\xb8\x80\"}", "prompt" },
	/* above U+10FFFF, and lead bytes that cannot start anything */
	{ "{\"prompt\":\"\xf4\x90\x80\x80\"}", "prompt" },
	{ "{\"prompt\":\"\xf5\x80\x80\x80\"}", "prompt" },
	{ "{\"prompt\":\"\xf8\x88\x80\x80\x80\"}", "prompt" },
	{ "{\"prompt\":\"\xfe\"}", "prompt" },
	/* truncated sequences, a continuation byte alone */
	{ "{\"prompt\":\"\xe6\x97\"}", "prompt" },
	{ "{\"prompt\":\"\xf0\x9f\x98 x\"}", "prompt" },
	{ "{\"prompt\":\"x\x80\"}", "prompt" },
	{ "{\"prompt\":\"\xc3\xa9\xa9\"}", "prompt" },
	/* lone surrogate escapes */
	{ "{\"prompt\":\"\\ud800\"}", "prompt" },
	{ "{\"prompt\":\"\\ud800x\"}", "prompt" },
	{ "{\"prompt\":\"\\uD800\\u0041\"}", "prompt" },
	{ "{\"prompt\":\"\\udbff\\udbff\"}", "prompt" },
	{ "{\"prompt\":\"\\udc00\"}", "prompt" },
	{ "{\"prompt\":\"a\\uDFFF\"}", "prompt" },
	{ "{\"prompt\":\"\\ude00\\ud83d\"}", "prompt" },
	/* every field that holds text, and keys */
	{ "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
	    "{\"role\":\"assistant\",\"content\":\"\xc0\x80\"},"
	    "{\"role\":\"user\",\"content\":\"hi\"}]}", "messages[1].content" },
	{ "{\"messages\":[{\"role\":\"us\\udc00er\",\"content\":\"hi\"}]}",
	    "messages[0].role" },
	{ "{\"prompt\":\"hi\",\"system\":\"\xed\xa0\x80\"}", "system" },
	{ "{\"prompt\":\"hi\",\"metadata\":{\"source\":\"web\\ud800\"}}",
	    "metadata.source" },
	{ "{\"prompt\":\"hi\",\"metadata\":{\"source\":\"\xf4\x90\x80\x80\"}}",
	    "metadata.source" },
	{ "{\"prompt\":\"hi\",\"options\":{\"strategy\":\"gr\xc0\xafq\"}}",
	    "options.strategy" },
	{ "{\"prompt\":\"hi\",\"metadata\":{\"\xc0\x80\":\"x\"}}", "metadata" },
	{ "{\"pr\\ud800\":\"hi\"}", "body" },
	{ "{\"foo\":[1,{\"b\\u00e9\":[\"x\",\"\xe0\x80\xaf\"]}]}",
	    "foo[1].b\xc3\xa9[1]" },
	/* the root itself */
	{ "\"\xc0\x80\"", "body" },
	/* the first bad string is the one reported */
	{ "{\"system\":\"\xc0\x80\",\"prompt\":\"\\ud800\"}", "system" },
};

static void
test_bad_text(void **state)
{
	struct rf_chat_req req;
	struct rf_field_err fe;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(bad_text) / sizeof(bad_text[0]); i++) {
		rc = rf_contract_parse(&cfg, bad_text[i].body,
		    strlen(bad_text[i].body), &req, &fe);
		if (rc != -1 || fe.code != RF_ERR_VALIDATION ||
		    strcmp(fe.field, bad_text[i].field) != 0)
			fail_msg("case %zu: rc %d code %s field \"%s\" (%s)", i, rc,
			    rf_err_code(fe.code), fe.field, fe.message);
		assert_non_null(strstr(fe.message, "UTF"));
		assert_null(req.owner);
	}
}

/* The edges of well-formed text are accepted, escapes included. */
static void
test_good_text(void **state)
{
	static const struct {
		const char *body;
		const char *text; /* the prompt as decoded */
	} good[] = {
		{ "{\"prompt\":\"\xc2\x80\xdf\xbf\"}", "\xc2\x80\xdf\xbf" },
		{ "{\"prompt\":\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\"}",
		    "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80" },
		{ "{\"prompt\":\"\xef\xbf\xbf\xef\xbb\xbf\"}",
		    "\xef\xbf\xbf\xef\xbb\xbf" },
		{ "{\"prompt\":\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"}",
		    "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf" },
		{ "{\"prompt\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80" },
		{ "{\"prompt\":\"\\uDBFF\\uDFFF!\"}", "\xf4\x8f\xbf\xbf!" },
		{ "{\"prompt\":\"\\ud7ff\\ue000\"}", "\xed\x9f\xbf\xee\x80\x80" },
		{ "{\"prompt\":\"\\\\ud800\"}", "\\ud800" },
		{ "{\"prompt\":\"\\\"\\\\\\/\\b\\f\\n\\r\\tx\"}", "\"\\/\b\f\n\r\tx" },
	};
	struct rf_chat_req req;
	struct rf_field_err fe;
	size_t i;

	(void)state;
	cfg.max_prompt_chars = 100;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (rf_contract_parse(&cfg, good[i].body, strlen(good[i].body),
		    &req, &fe) != 0)
			fail_msg("case %zu: %s %s (%s)", i, rf_err_code(fe.code),
			    fe.field, fe.message);
		assert_string_equal(req.msgs[0].content, good[i].text);
		rf_contract_free(&req);
	}
}

/* A refusal echoes the client's key in its field: cut by the field's
 * buffer, it still ends on a whole character. */
static void
test_field_cut_whole(void **state)
{
	struct rf_buf b;
	struct rf_chat_req req;
	struct rf_field_err fe;
	size_t n;
	int i;

	(void)state;
	rf_buf_init(&b, 0);
	rf_buf_puts(&b, "{\"prompt\":\"hi\",\"");
	for (i = 0; i < 40; i++)
		rf_buf_puts(&b, "\xc3\xa9"); /* 80 bytes: more than the field holds */
	rf_buf_puts(&b, "\":1}");
	assert_int_equal(rf_contract_parse(&cfg, b.data, b.len, &req, &fe), -1);
	assert_int_equal(fe.code, RF_ERR_VALIDATION);
	n = strlen(fe.field);
	assert_true(n >= 60 && n % 2 == 0);
	assert_int_equal(memcmp(fe.field, b.data + 16, n), 0);
	rf_buf_free(&b);
}

static void
test_refused_bodies(void **state)
{
	struct rf_chat_req req;
	struct rf_field_err fe;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		rc = rf_contract_parse(&cfg, refused[i].body,
		    strlen(refused[i].body), &req, &fe);
		if (rc != -1 || fe.code != refused[i].code ||
		    strcmp(fe.field, refused[i].field) != 0)
			fail_msg("case %zu (%s): rc %d code %s field \"%s\" (%s)",
			    i, refused[i].body, rc, rf_err_code(fe.code), fe.field,
			    fe.message);
		assert_true(fe.message[0] != '\0');
		assert_null(req.owner);
	}
}

static void
test_too_many_messages(void **state)
{
	struct rf_buf b;
	struct rf_chat_req req;
	struct rf_field_err fe;
	int i;

	(void)state;
	rf_buf_init(&b, 0);
	rf_buf_puts(&b, "{\"messages\":[");
	for (i = 0; i < 51; i++)
		rf_buf_printf(&b, "%s{\"role\":\"user\",\"content\":\"a\"}",
		    i ? "," : "");
	rf_buf_puts(&b, "]}");
	assert_int_equal(rf_contract_parse(&cfg, b.data, b.len, &req, &fe), -1);
	assert_int_equal(fe.code, RF_ERR_VALIDATION);
	assert_string_equal(fe.field, "messages");
	/* 50 is the limit itself: accepted (50 chars > 10, so raise it) */
	cfg.max_prompt_chars = 100;
	rf_buf_reset(&b);
	rf_buf_puts(&b, "{\"messages\":[");
	for (i = 0; i < 50; i++)
		rf_buf_printf(&b, "%s{\"role\":\"user\",\"content\":\"a\"}",
		    i ? "," : "");
	rf_buf_puts(&b, "]}");
	assert_int_equal(rf_contract_parse(&cfg, b.data, b.len, &req, &fe), 0);
	assert_int_equal(req.nmsgs, 50);
	assert_int_equal(req.prompt_chars, 50);
	rf_contract_free(&req);
	rf_buf_free(&b);
}

static void
test_defaults(void **state)
{
	const char *body = "{\"prompt\":\"  Hello  \"}";
	struct rf_chat_req req;
	struct rf_field_err fe;

	(void)state;
	assert_int_equal(rf_contract_parse(&cfg, body, strlen(body), &req, &fe),
	    0);
	assert_int_equal(fe.code, RF_OK);
	assert_int_equal(req.nmsgs, 1);
	assert_string_equal(req.msgs[0].role, "user");
	assert_string_equal(req.msgs[0].content, "  Hello  ");
	assert_null(req.system);
	assert_int_equal(req.strategy, -1);
		assert_true(req.fallback);
	assert_false(req.restart);
	assert_int_equal(req.max_tokens, 512);
	assert_true(req.temperature > 0.6999 && req.temperature < 0.7001);
	assert_null(req.source);
	assert_int_equal(req.prompt_chars, 9);
	assert_non_null(req.owner);
	rf_contract_free(&req);
	assert_null(req.owner);
	rf_contract_free(&req); /* twice is harmless */
}

static void
test_all_options(void **state)
{
	const char *body = "{\"prompt\":\"Explain\",\"system\":\"be brief\","
	    "\"options\":{\"strategy\":\"gemini\",\"stream\":true,"
	    "\"maxTokens\":4096,\"temperature\":2,\"fallback\":false,"
	    "\"streamRecovery\":\"restart\"},"
	    "\"metadata\":{\"source\":\"relayforge-web\"}}  \n";
	struct rf_chat_req req;
	struct rf_field_err fe;

	(void)state;
	assert_int_equal(rf_contract_parse(&cfg, body, strlen(body), &req, &fe),
	    0);
	assert_int_equal(req.strategy, RF_P_GEMINI);
		assert_false(req.fallback);
	assert_true(req.restart);
	assert_int_equal(req.max_tokens, 4096);
	assert_true(req.temperature == 2.0);
	assert_string_equal(req.system, "be brief");
	assert_string_equal(req.source, "relayforge-web");
	rf_contract_free(&req);
}

static void
test_nulls_and_edges(void **state)
{
	const char *body = "{\"prompt\":\"hi\",\"system\":\"   \",\"options\":"
	    "{\"strategy\":\"auto\",\"temperature\":0,\"maxTokens\":1,"
	    "\"streamRecovery\":\"none\",\"fallback\":null},\"metadata\":null}";
	const char *mock = "{\"prompt\":\"hi\",\"options\":{\"strategy\":\"mock\","
	    "\"temperature\":1.25}}";
	struct rf_chat_req req;
	struct rf_field_err fe;

	(void)state;
	assert_int_equal(rf_contract_parse(&cfg, body, strlen(body), &req, &fe),
	    0);
	assert_null(req.system); /* blank = absent */
	assert_int_equal(req.strategy, -1);
	assert_true(req.temperature == 0.0);
	assert_int_equal(req.max_tokens, 1);
	assert_true(req.fallback); /* null keeps the default */
	assert_false(req.restart);
	rf_contract_free(&req);
	assert_int_equal(rf_contract_parse(&cfg, mock, strlen(mock), &req, &fe),
	    0);
	assert_int_equal(req.strategy, RF_P_MOCK);
	assert_true(req.temperature == 1.25);
	rf_contract_free(&req);
}

static void
test_messages_mode(void **state)
{
	const char *body = "{\"messages\":["
	    "{\"role\":\"system\",\"content\":\"\"},"
	    "{\"content\":\"hi\",\"role\":\"user\"},"
	    "{\"role\":\"assistant\",\"content\":\"yo\"},"
	    "{\"role\":\"user\",\"content\":\"\xc3\xa9t\xc3\xa9\"}]}";
	struct rf_chat_req req;
	struct rf_field_err fe;

	(void)state;
	assert_int_equal(rf_contract_parse(&cfg, body, strlen(body), &req, &fe),
	    0);
	assert_int_equal(req.nmsgs, 4);
	assert_string_equal(req.msgs[0].role, "system");
	assert_string_equal(req.msgs[0].content, "");
	assert_string_equal(req.msgs[1].role, "user");
	assert_string_equal(req.msgs[1].content, "hi");
	assert_string_equal(req.msgs[2].role, "assistant");
	assert_string_equal(req.msgs[3].role, "user");
	assert_string_equal(req.msgs[3].content, "\xc3\xa9t\xc3\xa9");
	assert_int_equal(req.prompt_chars, 0 + 2 + 2 + 3);
	rf_contract_free(&req);
}

static void
test_utf8_counting(void **state)
{
	/* three 3-byte characters: 9 bytes, 3 characters */
	const char *three = "{\"prompt\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}";
	const char *four = "{\"prompt\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"
	    "\xe6\x97\xa5\"}";
	const char *escaped = "{\"prompt\":\"\\u00e9\\u00e9\\u00e9\"}";
	struct rf_chat_req req;
	struct rf_field_err fe;

	(void)state;
	cfg.max_prompt_chars = 3;
	assert_int_equal(rf_contract_parse(&cfg, three, strlen(three), &req,
	    &fe), 0);
	assert_int_equal(req.prompt_chars, 3);
	rf_contract_free(&req);
	assert_int_equal(rf_contract_parse(&cfg, escaped, strlen(escaped), &req,
	    &fe), 0);
	assert_int_equal(req.prompt_chars, 3);
	rf_contract_free(&req);
	assert_int_equal(rf_contract_parse(&cfg, four, strlen(four), &req, &fe),
	    -1);
	assert_string_equal(fe.field, "prompt");
}

static void
test_source_multibyte(void **state)
{
	struct rf_buf b;
	struct rf_chat_req req;
	struct rf_field_err fe;
	int i;

	(void)state;
	rf_buf_init(&b, 0);
	rf_buf_puts(&b, "{\"prompt\":\"hi\",\"metadata\":{\"source\":\"");
	for (i = 0; i < 64; i++)
		rf_buf_puts(&b, "\xc3\xa9"); /* 64 characters, 128 bytes */
	rf_buf_puts(&b, "\"}}");
	assert_int_equal(rf_contract_parse(&cfg, b.data, b.len, &req, &fe), 0);
	assert_int_equal(strlen(req.source), 128);
	rf_contract_free(&req);
	rf_buf_free(&b);
}

static void
test_depth_and_bytes(void **state)
{
	char bomb[256], nested[512];
	const char nul[] = "{\"prompt\":\"a\0b\"}";
	struct rf_chat_req req;
	struct rf_field_err fe;
	size_t n = 0;
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		bomb[n++] = '[';
	for (i = 0; i < 100; i++)
		bomb[n++] = ']';
	assert_int_equal(rf_contract_parse(&cfg, bomb, n, &req, &fe), -1);
	assert_int_equal(fe.code, RF_ERR_INVALID_JSON);
	assert_string_equal(fe.field, "");
	assert_null(req.owner);

	/* too deep inside an otherwise valid request */
	n = (size_t)snprintf(nested, sizeof(nested),
	    "{\"prompt\":\"hi\",\"metadata\":");
	for (i = 0; i < 20; i++)
		n += (size_t)snprintf(nested + n, sizeof(nested) - n, "{\"a\":");
	n += (size_t)snprintf(nested + n, sizeof(nested) - n, "1");
	for (i = 0; i < 21; i++)
		nested[n++] = '}';
	assert_int_equal(rf_contract_parse(&cfg, nested, n, &req, &fe), -1);
	assert_int_equal(fe.code, RF_ERR_INVALID_JSON);

	/* a NUL byte in the body, even inside a string */
	assert_int_equal(rf_contract_parse(&cfg, nul, sizeof(nul) - 1, &req,
	    &fe), -1);
	assert_int_equal(fe.code, RF_ERR_INVALID_JSON);

	/* len is honoured: bytes after it are not read */
	assert_int_equal(rf_contract_parse(&cfg, "{\"prompt\":\"hi\"}garbage",
	    15, &req, &fe), 0);
	rf_contract_free(&req);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_refused_bodies, setup),
		cmocka_unit_test_setup(test_bad_text, setup),
		cmocka_unit_test_setup(test_good_text, setup),
		cmocka_unit_test_setup(test_field_cut_whole, setup),
		cmocka_unit_test_setup(test_too_many_messages, setup),
		cmocka_unit_test_setup(test_defaults, setup),
		cmocka_unit_test_setup(test_all_options, setup),
		cmocka_unit_test_setup(test_nulls_and_edges, setup),
		cmocka_unit_test_setup(test_messages_mode, setup),
		cmocka_unit_test_setup(test_utf8_counting, setup),
		cmocka_unit_test_setup(test_source_multibyte, setup),
		cmocka_unit_test_setup(test_depth_and_bytes, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
