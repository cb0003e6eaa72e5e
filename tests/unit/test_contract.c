/* Unit tests of contract: every request rule with the field it names (a
 * table of bodies), defaults, messages mode, UTF-8 counting, bounded depth,
 * and the exact key sets of meta, attempts and error JSON. */
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
	{ "{\"prompt\":\"\xff\xfe\"}", RF_ERR_INVALID_JSON, "" },
	{ "{\"prompt\":\"\xc3\"}", RF_ERR_INVALID_JSON, "" },
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
	assert_string_equal(rf_contract_strategy(&req), "auto");
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
	assert_string_equal(rf_contract_strategy(&req), "gemini");
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

/* ---- JSON building ---- */

static int64_t
fixed_clock(void)
{
	return 1767268800123LL;
}

/* A result like the SPEC example, with a same-provider retry. */
static void
sample_result(struct rf_chain_result *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->request_id, sizeof(r->request_id), "req-1");
	r->attempts[0] = (struct rf_attempt){ RF_P_GROQ, RF_ATT_FAILED,
	    RF_ERR_PROVIDER_RATE_LIMITED, NULL, 429, 31, 0 };
	r->attempts[1] = (struct rf_attempt){ RF_P_SAMBANOVA, RF_ATT_SKIPPED,
	    RF_OK, "unconfigured", 0, 0, 0 };
	r->attempts[2] = (struct rf_attempt){ RF_P_OPENROUTER, RF_ATT_FAILED,
	    RF_ERR_PROVIDER_UNAVAILABLE, NULL, 503, 20, 0 };
	r->attempts[3] = (struct rf_attempt){ RF_P_OPENROUTER, RF_ATT_OK,
	    RF_OK, NULL, 200, 790, 1 };
	r->nattempts = 4;
	r->attempted = RF_P_GROQ;
	r->final_pid = RF_P_OPENROUTER;
	r->fallback = true;
	r->degraded = true;
	r->demo = false;
	r->err = RF_OK;
	r->res.usage.prompt_tokens = 12;
	r->res.usage.completion_tokens = 80;
	snprintf(r->res.model, sizeof(r->res.model), "m/1");
	snprintf(r->res.finish_reason, sizeof(r->res.finish_reason), "stop");
	r->started_ms = 1767268800000LL;
	r->latency_ms = 842;
	r->ttft_ms = 120;
	r->restarts = 0;
	r->skipped_chunks = 2;
	r->retry_after_ms = -1;
}

/* Dump obj (taken), parse it back: what a client would see. */
static json_object *
round_trip(json_object *obj)
{
	char *text = rf_contract_dump(obj);
	json_object *back;

	assert_non_null(text);
	json_object_put(obj);
	back = json_tokener_parse(text);
	assert_non_null(back);
	free(text);
	return back;
}

static void
assert_keys(json_object *o, const char *const *want, size_t n)
{
	size_t i = 0;

	assert_true(json_object_is_type(o, json_type_object));
	json_object_object_foreach(o, key, val) {
		(void)val;
		if (i >= n || strcmp(key, want[i]) != 0)
			fail_msg("key %zu is \"%s\", want \"%s\"", i, key,
			    i < n ? want[i] : "(none)");
		i++;
	}
	assert_int_equal(i, n);
}

static json_object *
get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no key %s", key);
	return v;
}

static const char *
str(json_object *o, const char *key)
{
	return json_object_get_string(get(o, key));
}

static void
test_attempts_shape(void **state)
{
	static const char *const failed[] = { "provider", "outcome",
	    "httpStatus", "latencyMs" };
	static const char *const skipped[] = { "provider", "outcome", "reason" };
	static const char *const retried[] = { "provider", "outcome",
	    "httpStatus", "latencyMs", "retry" };
	struct rf_chain_result r;
	json_object *a, *e;

	(void)state;
	sample_result(&r);
	a = round_trip(rf_contract_attempts(&r));
	assert_int_equal(json_object_array_length(a), 4);
	e = json_object_array_get_idx(a, 0);
	assert_keys(e, failed, 4);
	assert_string_equal(str(e, "provider"), "groq");
	assert_string_equal(str(e, "outcome"), "provider_rate_limited");
	assert_int_equal(json_object_get_int(get(e, "httpStatus")), 429);
	assert_int_equal(json_object_get_int(get(e, "latencyMs")), 31);
	e = json_object_array_get_idx(a, 1);
	assert_keys(e, skipped, 3);
	assert_string_equal(str(e, "outcome"), "skipped");
	assert_string_equal(str(e, "reason"), "unconfigured");
	e = json_object_array_get_idx(a, 2);
	assert_keys(e, failed, 4);
	assert_string_equal(str(e, "outcome"), "provider_unavailable");
	e = json_object_array_get_idx(a, 3);
	assert_keys(e, retried, 5);
	assert_string_equal(str(e, "provider"), "openrouter");
	assert_string_equal(str(e, "outcome"), "ok");
	assert_int_equal(json_object_get_int(get(e, "retry")), 1);
	assert_int_equal(json_object_get_int(get(e, "latencyMs")), 790);
	json_object_put(a);

	/* a connection failure has no HTTP status: no httpStatus key */
	r.attempts[0].http_status = 0;
	r.nattempts = 1;
	a = round_trip(rf_contract_attempts(&r));
	e = json_object_array_get_idx(a, 0);
	assert_false(json_object_object_get_ex(e, "httpStatus", NULL));
	assert_true(json_object_object_get_ex(e, "latencyMs", NULL));
	json_object_put(a);
}

static void
test_meta_chat(void **state)
{
	static const char *const keys[] = { "requestId", "strategy",
	    "attemptedProvider", "finalProvider", "fallbackActivated",
	    "degradedMode", "demoMode", "latencyMs", "model", "timestamp",
	    "finishReason", "usage", "attempts" };
	struct rf_chain_result r;
	struct rf_chat_req req;
	json_object *m, *u;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.strategy = -1;
	sample_result(&r);
	m = round_trip(rf_contract_meta(&req, &r, RF_META_CHAT));
	assert_keys(m, keys, sizeof(keys) / sizeof(keys[0]));
	assert_string_equal(str(m, "requestId"), "req-1");
	assert_string_equal(str(m, "strategy"), "auto");
	assert_string_equal(str(m, "attemptedProvider"), "groq");
	assert_string_equal(str(m, "finalProvider"), "openrouter");
	assert_true(json_object_get_boolean(get(m, "fallbackActivated")));
	assert_true(json_object_get_boolean(get(m, "degradedMode")));
	assert_false(json_object_get_boolean(get(m, "demoMode")));
	assert_int_equal(json_object_get_int(get(m, "latencyMs")), 842);
	assert_string_equal(str(m, "model"), "m/1");
	assert_string_equal(str(m, "timestamp"), "2026-01-01T12:00:00.000Z");
	assert_string_equal(str(m, "finishReason"), "stop");
	u = get(m, "usage");
	assert_int_equal(json_object_get_int(get(u, "promptTokens")), 12);
	assert_int_equal(json_object_get_int(get(u, "completionTokens")), 80);
	assert_int_equal(json_object_array_length(get(m, "attempts")), 4);
	json_object_put(m);
}

static void
test_meta_nulls(void **state)
{
	struct rf_chain_result r;
	struct rf_chat_req req;
	json_object *m, *u;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.strategy = RF_P_GEMINI;
	sample_result(&r);
	r.attempted = -1;
	r.final_pid = -1;
	r.res.model[0] = '\0';
	r.res.finish_reason[0] = '\0';
	r.res.usage.prompt_tokens = -1;
	r.res.usage.completion_tokens = -1;
	r.ttft_ms = -1;
	m = round_trip(rf_contract_meta(&req, &r, RF_META_FINAL));
	assert_string_equal(str(m, "strategy"), "gemini");
	assert_null(get(m, "attemptedProvider"));
	assert_null(get(m, "finalProvider"));
	assert_null(get(m, "model"));
	assert_null(get(m, "finishReason"));
	assert_null(get(m, "ttftMs"));
	u = get(m, "usage");
	assert_null(get(u, "promptTokens"));
	assert_null(get(u, "completionTokens"));
	json_object_put(m);
}

static void
test_meta_start_and_final(void **state)
{
	static const char *const start[] = { "requestId", "strategy",
	    "attemptedProvider", "finalProvider", "fallbackActivated",
	    "degradedMode", "demoMode", "model", "attempts" };
	static const char *const final[] = { "requestId", "strategy",
	    "attemptedProvider", "finalProvider", "fallbackActivated",
	    "degradedMode", "demoMode", "latencyMs", "ttftMs", "model",
	    "timestamp", "finishReason", "usage", "skippedChunks", "restarts",
	    "attempts" };
	struct rf_chain_result r;
	struct rf_chat_req req;
	json_object *m;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.strategy = -1;
	sample_result(&r);
	r.stream = true;
	m = round_trip(rf_contract_meta(&req, &r, RF_META_START));
	assert_keys(m, start, sizeof(start) / sizeof(start[0]));
	json_object_put(m);
	m = round_trip(rf_contract_meta(&req, &r, RF_META_FINAL));
	assert_keys(m, final, sizeof(final) / sizeof(final[0]));
	assert_int_equal(json_object_get_int(get(m, "ttftMs")), 120);
	assert_int_equal(json_object_get_int(get(m, "skippedChunks")), 2);
	assert_int_equal(json_object_get_int(get(m, "restarts")), 0);
	json_object_put(m);
}

static void
test_error_object(void **state)
{
	static const char *const all[] = { "code", "message", "technicalDetails",
	    "provider", "fallbackActivated", "timestamp", "requestId",
	    "attempts", "field" };
	static const char *const min[] = { "code", "message",
	    "fallbackActivated", "timestamp" };
	json_object *e;

	(void)state;
	rf_time_set_clock(fixed_clock);
	e = round_trip(rf_contract_error(RF_ERR_PROVIDER_RATE_LIMITED,
	    "Groq returned a rate-limit response.",
	    "HTTP 429 from upstream provider", "groq", true, "req-2",
	    json_object_new_array(), "options.x"));
	assert_keys(e, all, sizeof(all) / sizeof(all[0]));
	assert_string_equal(str(e, "code"), "provider_rate_limited");
	assert_string_equal(str(e, "message"),
	    "Groq returned a rate-limit response.");
	assert_string_equal(str(e, "technicalDetails"),
	    "HTTP 429 from upstream provider");
	assert_string_equal(str(e, "provider"), "groq");
	assert_true(json_object_get_boolean(get(e, "fallbackActivated")));
	assert_string_equal(str(e, "timestamp"), "2026-01-01T12:00:00.123Z");
	assert_string_equal(str(e, "requestId"), "req-2");
	assert_int_equal(json_object_array_length(get(e, "attempts")), 0);
	assert_string_equal(str(e, "field"), "options.x");
	json_object_put(e);

	e = round_trip(rf_contract_error(RF_ERR_INVALID_JSON, NULL, NULL, NULL,
	    false, NULL, NULL, NULL));
	assert_keys(e, min, sizeof(min) / sizeof(min[0]));
	assert_string_equal(str(e, "code"), "invalid_json");
	assert_string_equal(str(e, "message"),
	    rf_err_message(RF_ERR_INVALID_JSON));
	assert_false(json_object_get_boolean(get(e, "fallbackActivated")));
	json_object_put(e);
	rf_time_set_clock(NULL);
}

static void
test_chain_error(void **state)
{
	static const char *const keys[] = { "code", "message",
	    "technicalDetails", "provider", "fallbackActivated", "timestamp",
	    "requestId", "attempts" };
	static const char *const bare[] = { "code", "message",
	    "fallbackActivated", "timestamp", "requestId", "attempts" };
	struct rf_chain_result r;
	json_object *e;

	(void)state;
	sample_result(&r);
	r.err = RF_ERR_PROVIDER_RATE_LIMITED;
	r.final_pid = RF_P_GROQ;
	r.nattempts = 1;
	snprintf(r.fail.details, sizeof(r.fail.details),
	    "HTTP 429 from upstream provider");
	e = round_trip(rf_contract_chain_error(&r));
	assert_keys(e, keys, sizeof(keys) / sizeof(keys[0]));
	assert_string_equal(str(e, "code"), "provider_rate_limited");
	assert_string_equal(str(e, "message"),
	    "The provider returned a rate-limit response.");
	assert_string_equal(str(e, "provider"), "groq");
	assert_string_equal(str(e, "requestId"), "req-1");
	assert_true(json_object_get_boolean(get(e, "fallbackActivated")));
	assert_int_equal(json_object_array_length(get(e, "attempts")), 1);
	json_object_put(e);

	/* a readable message from the adapter wins; no provider called */
	snprintf(r.fail.message, sizeof(r.fail.message), "Every tier failed.");
	r.fail.details[0] = '\0';
	r.final_pid = -1;
	r.fallback = false;
	r.err = RF_ERR_PROVIDER_UNAVAILABLE;
	e = round_trip(rf_contract_chain_error(&r));
	assert_keys(e, bare, sizeof(bare) / sizeof(bare[0]));
	assert_string_equal(str(e, "message"), "Every tier failed.");
	assert_string_equal(str(e, "code"), "provider_unavailable");
	json_object_put(e);
}

static void
test_wrappers_and_dump(void **state)
{
	json_object *d = json_object_new_object();
	json_object *o;
	char *text;

	(void)state;
	json_object_object_add(d, "path", json_object_new_string("a/b"));
	o = rf_contract_success(d);
	text = rf_contract_dump(o);
	assert_string_equal(text, "{\"success\":true,\"data\":{\"path\":\"a/b\"}}");
	free(text);
	json_object_put(o);

	o = rf_contract_failure(rf_contract_error(RF_ERR_NOT_FOUND, "x", NULL,
	    NULL, false, NULL, NULL, NULL));
	o = round_trip(o);
	assert_false(json_object_get_boolean(get(o, "success")));
	assert_string_equal(str(get(o, "error"), "code"), "not_found");
	json_object_put(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_refused_bodies, setup),
		cmocka_unit_test_setup(test_too_many_messages, setup),
		cmocka_unit_test_setup(test_defaults, setup),
		cmocka_unit_test_setup(test_all_options, setup),
		cmocka_unit_test_setup(test_nulls_and_edges, setup),
		cmocka_unit_test_setup(test_messages_mode, setup),
		cmocka_unit_test_setup(test_utf8_counting, setup),
		cmocka_unit_test_setup(test_source_multibyte, setup),
		cmocka_unit_test_setup(test_depth_and_bytes, setup),
		cmocka_unit_test_setup(test_attempts_shape, setup),
		cmocka_unit_test_setup(test_meta_chat, setup),
		cmocka_unit_test_setup(test_meta_nulls, setup),
		cmocka_unit_test_setup(test_meta_start_and_final, setup),
		cmocka_unit_test_setup(test_error_object, setup),
		cmocka_unit_test_setup(test_chain_error, setup),
		cmocka_unit_test_setup(test_wrappers_and_dump, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
