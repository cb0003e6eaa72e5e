/*
 * test_gemini: the Gemini adapter against the wire samples of providers.md
 * section 5: request shape (roles, systemInstruction, thinkingBudget, the
 * key only in a header), answers with thought parts and safety blocks,
 * stream fragments with running usage, and the error envelope
 * (API_KEY_INVALID, RetryInfo, status names).
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

static const struct rf_provider_ops *G = &rf_ops_gemini;

#define KEY "AIzaSyTESTKEY123"

static const struct rf_msg msgs[] = {
	{ "system", "answer in French" },
	{ "user", "hi" },
	{ "assistant", "salut" },
	{ "user", "and \"now\"?" },
};

struct built {
	struct rf_buf url, body, hdrs;
	json_object *json;
};

static void
build(const char *model, const char *system, bool stream, struct built *b)
{
	struct rf_provider_conf pc;
	struct rf_prompt p = { .msgs = msgs, .nmsgs = 4, .system = system,
	    .max_tokens = 300, .temperature = 0.25 };
	struct rf_up_req rq;
	int i;

	memset(&pc, 0, sizeof(pc));
	pc.id = "gemini";
	pc.def = &rf_providers[rf_config_pid("gemini")];
	pc.url = (char *)"https://generativelanguage.example/v1beta";
	pc.model = (char *)model;
	pc.key = (char *)KEY;
	memset(b, 0, sizeof(*b));
	rf_up_req_init(&rq);
	assert_int_equal(G->build(&pc, &p, stream, &rq), 0);
	for (i = 0; i < rq.nhdrs; i++) {
		rf_buf_puts(&b->hdrs, rq.hdrs[i]);
		rf_buf_puts(&b->hdrs, "\n");
	}
	rf_buf_puts(&b->url, rf_buf_str(&rq.url));
	rf_buf_puts(&b->body, rf_buf_str(&rq.body));
	rf_up_req_free(&rq);
	b->json = json_tokener_parse(rf_buf_str(&b->body));
	assert_non_null(b->json);
}

static void
built_free(struct built *b)
{
	rf_buf_free(&b->url);
	rf_buf_free(&b->body);
	rf_buf_free(&b->hdrs);
	json_object_put(b->json);
}

static const char *
jstr(json_object *o, const char *path)
{
	const char *s = rf_adapter_str(o, path);

	if (s == NULL)
		fail_msg("missing string at %s", path);
	return s;
}

static void
test_build_request(void **state)
{
	struct built b;

	(void)state;
	build("gemini-2.5-flash-lite", "be brief", false, &b);
	assert_string_equal(rf_buf_str(&b.url), "https://generativelanguage."
	    "example/v1beta/models/gemini-2.5-flash-lite:generateContent");
	/* The system prompt and the system message, joined; not in contents. */
	assert_string_equal(jstr(b.json, "systemInstruction.parts[0].text"),
	    "be brief\n\nanswer in French");
	assert_string_equal(jstr(b.json, "contents[0].role"), "user");
	assert_string_equal(jstr(b.json, "contents[0].parts[0].text"), "hi");
	assert_string_equal(jstr(b.json, "contents[1].role"), "model");
	assert_string_equal(jstr(b.json, "contents[2].parts[0].text"),
	    "and \"now\"?");
	assert_null(rf_adapter_get(b.json, "contents[3]"));
	assert_int_equal(json_object_get_int(rf_adapter_get(b.json,
	    "generationConfig.maxOutputTokens")), 300);
	assert_non_null(strstr(rf_buf_str(&b.body), "\"temperature\":0.25"));
	assert_non_null(rf_adapter_get(b.json,
	    "generationConfig.thinkingConfig.thinkingBudget"));
	assert_int_equal(json_object_get_int(rf_adapter_get(b.json,
	    "generationConfig.thinkingConfig.thinkingBudget")), 0);
	assert_non_null(strstr(rf_buf_str(&b.hdrs), "x-goog-api-key: " KEY "\n"));
	assert_non_null(strstr(rf_buf_str(&b.hdrs),
	    "Content-Type: application/json\n"));
	assert_null(strstr(rf_buf_str(&b.hdrs), "Accept:"));
	assert_null(strstr(rf_buf_str(&b.hdrs), "Authorization"));
	assert_null(strstr(rf_buf_str(&b.url), KEY));
	assert_null(strstr(rf_buf_str(&b.url), "key="));
	assert_null(strstr(rf_buf_str(&b.body), KEY));
	built_free(&b);
}

static void
test_build_stream_and_models(void **state)
{
	struct built b;

	(void)state;
	build("gemini-2.5-flash", NULL, true, &b);
	assert_string_equal(rf_buf_str(&b.url), "https://generativelanguage."
	    "example/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
	assert_null(strstr(rf_buf_str(&b.url), KEY));
	assert_non_null(strstr(rf_buf_str(&b.hdrs), "Accept: text/event-stream\n"));
	/* Only the system message remains. */
	assert_string_equal(jstr(b.json, "systemInstruction.parts[0].text"),
	    "answer in French");
	built_free(&b);

	/* 2.5 Pro cannot turn thinking off: no budget 0 for it. */
	build("gemini-2.5-pro", NULL, false, &b);
	assert_null(rf_adapter_get(b.json, "generationConfig.thinkingConfig"));
	built_free(&b);

	/* Gemma: no systemInstruction and no thinkingConfig; the system text
	 * leads the first user turn.  Odd characters are escaped in the URL. */
	build("gemma-3-27b-it", "be brief", false, &b);
	assert_null(rf_adapter_get(b.json, "systemInstruction"));
	assert_null(rf_adapter_get(b.json, "generationConfig.thinkingConfig"));
	assert_string_equal(jstr(b.json, "contents[0].parts[0].text"),
	    "be brief\n\nanswer in French\n\nhi");
	assert_string_equal(jstr(b.json, "contents[2].parts[0].text"),
	    "and \"now\"?");
	built_free(&b);

	build("my model/x", NULL, false, &b);
	assert_non_null(strstr(rf_buf_str(&b.url), "/models/my%20model%2Fx:"));
	built_free(&b);
}

/* ---- parse_response ---- */

struct parsed {
	struct rf_result res;
	struct rf_failure f;
	int rc;
};

static void
parse(const char *body, struct parsed *p)
{
	rf_result_init(&p->res);
	rf_failure_set(&p->f, RF_OK, NULL);
	p->rc = G->parse_response(body, strlen(body), &p->res, &p->f);
}

static void
test_parse_ok_skips_thoughts(void **state)
{
	struct parsed p;

	(void)state;
	parse("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
	    "{\"text\":\"thinking...\",\"thought\":true},{\"text\":\"Hel\"},"
	    "{\"thoughtSignature\":\"abc\"},{\"text\":\"lo\"}]},"
	    "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{"
	    "\"promptTokenCount\":9,\"candidatesTokenCount\":2,"
	    "\"totalTokenCount\":40,\"thoughtsTokenCount\":29},"
	    "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r\"}", &p);
	assert_int_equal(p.rc, 0);
	assert_string_equal(rf_buf_str(&p.res.text), "Hello");
	assert_string_equal(p.res.finish_reason, "stop");
	assert_string_equal(p.res.model, "gemini-2.5-flash");
	assert_int_equal(p.res.usage.prompt_tokens, 9);
	assert_int_equal(p.res.usage.completion_tokens, 2);
	assert_false(p.res.safety_block);
	rf_result_free(&p.res);
}

static void
test_parse_safety_and_empty(void **state)
{
	struct parsed p;

	(void)state;
	/* Prompt blocked: no candidates at all. */
	parse("{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
	    "\"usageMetadata\":{\"promptTokenCount\":7,\"totalTokenCount\":7},"
	    "\"modelVersion\":\"gemini-2.5-flash\"}", &p);
	assert_int_equal(p.rc, 0);
	assert_true(p.res.safety_block);
	assert_string_equal(p.res.safety_reason, "PROHIBITED_CONTENT");
	assert_string_equal(p.res.finish_reason, "content_filter");
	assert_int_equal(p.res.text.len, 0);
	assert_int_equal(p.res.usage.prompt_tokens, 7);
	assert_int_equal(p.res.usage.completion_tokens, -1);
	rf_result_free(&p.res);

	/* Output blocked. */
	parse("{\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,"
	    "\"safetyRatings\":[]}]}", &p);
	assert_int_equal(p.rc, 0);
	assert_true(p.res.safety_block);
	assert_string_equal(p.res.safety_reason, "SAFETY");
	assert_string_equal(p.res.finish_reason, "content_filter");
	rf_result_free(&p.res);

	/* Thinking budget used up: no content, MAX_TOKENS. */
	parse("{\"candidates\":[{\"content\":{\"role\":\"model\"},"
	    "\"finishReason\":\"MAX_TOKENS\"}]}", &p);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.res.text.len, 0);
	assert_string_equal(p.res.finish_reason, "length");
	assert_false(p.res.safety_block);
	rf_result_free(&p.res);

	parse("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
	    "\"finishReason\":\"MALFORMED_FUNCTION_CALL\"}]}", &p);
	assert_string_equal(p.res.finish_reason, "stop");
	rf_result_free(&p.res);
}

static void
test_parse_failures(void **state)
{
	struct parsed p;

	(void)state;
	parse("{\"usageMetadata\":{\"promptTokenCount\":7}}", &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_MALFORMED_RESPONSE);
	assert_string_equal(p.f.details, "missing candidates");
	rf_result_free(&p.res);

	parse("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},7]}}]}",
	    &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_MALFORMED_RESPONSE);
	assert_int_equal(p.res.text.len, 0);
	rf_result_free(&p.res);

	parse("not json", &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_MALFORMED_RESPONSE);
	rf_result_free(&p.res);

	parse("{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
	    "\"status\":\"UNAVAILABLE\"}}", &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_string_equal(p.f.details,
	    "error object in 200 response, code UNAVAILABLE");
	rf_result_free(&p.res);

	parse("{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\"}}", &p);
	assert_int_equal(p.f.code, RF_ERR_PROVIDER_RATE_LIMITED);
	rf_result_free(&p.res);
}

/* ---- parse_chunk ---- */

static void
test_chunks(void **state)
{
	struct rf_result acc;
	struct rf_buf delta = { 0 };
	struct rf_failure f;
	const char *c;

	(void)state;
	rf_result_init(&acc);
	c = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}],"
	    "\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":1},"
	    "\"modelVersion\":\"gemini-2.5-flash-lite\"}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &f),
	    RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&delta), "Hi");
	assert_int_equal(acc.usage.completion_tokens, 1);
	assert_string_equal(acc.model, "gemini-2.5-flash-lite");
	/* A fragment without usage keeps the running total. */
	c = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"!\"},"
	    "{\"text\":\"ignored\",\"thought\":true}]},\"finishReason\":"
	    "\"MAX_TOKENS\"}]}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &f),
	    RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&delta), "Hi!");
	assert_int_equal(acc.usage.completion_tokens, 1);
	assert_int_equal(acc.usage.prompt_tokens, 5);
	assert_string_equal(acc.finish_reason, "length");
	/* Usage-only fragment. */
	c = "{\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":9}}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &f),
	    RF_CHUNK_DATA);
	assert_int_equal(acc.usage.completion_tokens, 9);
	/* Not Gemini's shape. */
	assert_int_equal(G->parse_chunk(NULL, "{}", 2, &acc, &delta, &f),
	    RF_CHUNK_MALFORMED);
	assert_int_equal(G->parse_chunk(NULL, "{\"cand", 6, &acc, &delta, &f),
	    RF_CHUNK_MALFORMED);
	assert_int_equal(G->parse_chunk(NULL, "[DONE]", 6, &acc, &delta, &f),
	    RF_CHUNK_DONE);
	/* A blocked prompt in a stream. */
	c = "{\"promptFeedback\":{\"blockReason\":\"BLOCKLIST\"}}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &f),
	    RF_CHUNK_DATA);
	assert_true(acc.safety_block);
	assert_string_equal(acc.safety_reason, "BLOCKLIST");
	assert_string_equal(rf_buf_str(&delta), "Hi!");
	rf_result_free(&acc);
	rf_buf_free(&delta);
}

static void
test_chunk_errors(void **state)
{
	struct rf_result acc;
	struct rf_buf delta = { 0 };
	struct rf_failure f;
	const char *c;

	(void)state;
	rf_result_init(&acc);
	c = "{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":"
	    "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/"
	    "google.rpc.RetryInfo\",\"retryDelay\":\"12s\"}]}}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &f),
	    RF_CHUNK_ERROR);
	assert_int_equal(f.code, RF_ERR_PROVIDER_RATE_LIMITED);
	assert_int_equal(f.retry_after_ms, 12000);
	assert_string_equal(f.details, "in-stream error, code RESOURCE_EXHAUSTED");
	c = "{\"error\":{\"code\":504,\"status\":\"DEADLINE_EXCEEDED\"}}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &f),
	    RF_CHUNK_ERROR);
	assert_int_equal(f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_int_equal(G->parse_chunk("error", "x", 1, &acc, &delta, &f),
	    RF_CHUNK_ERROR);
	assert_int_equal(delta.len, 0);
	rf_result_free(&acc);
	rf_buf_free(&delta);
}

/* ---- classify_error ---- */

struct cls {
	long status;
	const char *body;
	enum rf_err code;
	bool auth;
	const char *details;
	int64_t retry_ms;
};

static const struct cls cases[] = {
	{ 400, "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please "
	  "pass a valid API key.\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{"
	  "\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":"
	  "\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}",
	  RF_ERR_PROVIDER_AUTH, true,
	  "HTTP 400 from upstream provider, code API_KEY_INVALID", -1 },
	{ 403, "{\"error\":{\"code\":403,\"message\":\"Your API key was reported "
	  "as leaked.\",\"status\":\"PERMISSION_DENIED\"}}",
	  RF_ERR_PROVIDER_AUTH, true,
	  "HTTP 403 from upstream provider, code PERMISSION_DENIED", -1 },
	{ 429, "{\"error\":{\"code\":429,\"message\":\"You exceeded your current "
	  "quota.\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":"
	  "\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[{"
	  "\"quotaId\":\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\"}]},"
	  "{\"@type\":\"type.googleapis.com/google.rpc.Help\",\"links\":[]},"
	  "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
	  "\"retryDelay\":\"34.4s\"}]}}",
	  RF_ERR_PROVIDER_RATE_LIMITED, false,
	  "HTTP 429 from upstream provider, code RESOURCE_EXHAUSTED", 34400 },
	{ 503, "{\"error\":{\"code\":503,\"message\":\"The model is overloaded. "
	  "Please try again later.\",\"status\":\"UNAVAILABLE\"}}",
	  RF_ERR_PROVIDER_UNAVAILABLE, false,
	  "HTTP 503 from upstream provider, code UNAVAILABLE", -1 },
	{ 504, "{\"error\":{\"code\":504,\"status\":\"DEADLINE_EXCEEDED\"}}",
	  RF_ERR_PROVIDER_TIMEOUT, false,
	  "HTTP 504 from upstream provider, code DEADLINE_EXCEEDED", -1 },
	{ 404, "{\"error\":{\"code\":404,\"message\":\"models/x is not found for "
	  "API version v1beta\",\"status\":\"NOT_FOUND\"}}",
	  RF_ERR_PROVIDER_BAD_REQUEST, false,
	  "HTTP 404 from upstream provider, code NOT_FOUND", -1 },
	{ 400, "{\"error\":{\"code\":400,\"message\":\"User location is not "
	  "supported for the API use.\",\"status\":\"FAILED_PRECONDITION\"}}",
	  RF_ERR_PROVIDER_BAD_REQUEST, false,
	  "HTTP 400 from upstream provider, code FAILED_PRECONDITION", -1 },
	{ 400, "{\"error\":{\"code\":400,\"message\":\"The request violates the "
	  "content policy.\",\"status\":\"INVALID_ARGUMENT\"}}",
	  RF_ERR_CONTENT_FILTERED, false,
	  "HTTP 400 from upstream provider, code INVALID_ARGUMENT", -1 },
	{ 500, "{\"error\":{\"code\":500,\"status\":\"INTERNAL\"}}",
	  RF_ERR_PROVIDER_UNAVAILABLE, false,
	  "HTTP 500 from upstream provider, code INTERNAL", -1 },
	{ 502, "<html>bad gateway</html>", RF_ERR_PROVIDER_UNAVAILABLE, false,
	  "HTTP 502 from upstream provider", -1 },
	/* retryDelay must carry its unit: a bare "7" or "1e9s" is ignored. */
	{ 429, "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\","
	  "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
	  "\"retryDelay\":\"7\"},{\"@type\":\"type.googleapis.com/"
	  "google.rpc.RetryInfo\",\"retryDelay\":\"1e9s\"}]}}",
	  RF_ERR_PROVIDER_RATE_LIMITED, false,
	  "HTTP 429 from upstream provider, code RESOURCE_EXHAUSTED", -1 },
	{ 429, "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\","
	  "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
	  "\"retryDelay\":\"1m2.5s\"}]}}",
	  RF_ERR_PROVIDER_RATE_LIMITED, false,
	  "HTTP 429 from upstream provider, code RESOURCE_EXHAUSTED", 62500 },
};

static void
test_classify_table(void **state)
{
	struct rf_failure f;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cls *c = &cases[i];

		memset(&f, 0x5a, sizeof(f));
		G->classify_error(c->status, c->body, strlen(c->body), &f);
		if (f.code != c->code || f.auth != c->auth ||
		    strcmp(f.details, c->details) != 0 ||
		    f.retry_after_ms != c->retry_ms)
			fail_msg("case %zu (HTTP %ld): code %d auth %d details "
			    "\"%s\" retry %lld", i, c->status, (int)f.code,
			    (int)f.auth, f.details, (long long)f.retry_after_ms);
		assert_null(strstr(f.details, "message"));
		assert_null(strstr(f.details, "quota"));
	}
	G->classify_error(400, cases[7].body, strlen(cases[7].body), &f);
	assert_string_equal(f.message, "The provider refused the request under "
	    "its content policy. Provider message: The request violates the "
	    "content policy.");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_request),
		cmocka_unit_test(test_build_stream_and_models),
		cmocka_unit_test(test_parse_ok_skips_thoughts),
		cmocka_unit_test(test_parse_safety_and_empty),
		cmocka_unit_test(test_parse_failures),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_chunk_errors),
		cmocka_unit_test(test_classify_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
