/*
 * test_gemini: the Gemini adapter against the wire samples of providers.md
 * section 5: request shape (roles, systemInstruction, thinkingBudget, the
 * key only in a header), answers with thought parts and safety blocks,
 * stream fragments with running usage, and the error envelope
 * (API_KEY_INVALID, RetryInfo, status names).  Then a /v1 request
 * (rf_prompt.oai) translated -- messages, parts, tool calls and results,
 * function declarations with their schemas, tool_choice, formats and
 * sampling fields -- and every thing Gemini cannot express refused as
 * RF_BUILD_UNSUPPORTED; functionCall answers (the gemini*_tools.json
 * fixtures) read back as OpenAI tool calls.
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
	struct rf_buf delta = { 0 }, tools = { 0 };
	struct rf_failure f;
	const char *c;

	(void)state;
	rf_result_init(&acc);
	c = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}],"
	    "\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":1},"
	    "\"modelVersion\":\"gemini-2.5-flash-lite\"}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools, &f),
	    RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&delta), "Hi");
	assert_int_equal(acc.usage.completion_tokens, 1);
	assert_string_equal(acc.model, "gemini-2.5-flash-lite");
	/* A fragment without usage keeps the running total. */
	c = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"!\"},"
	    "{\"text\":\"ignored\",\"thought\":true}]},\"finishReason\":"
	    "\"MAX_TOKENS\"}]}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools, &f),
	    RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&delta), "Hi!");
	assert_int_equal(acc.usage.completion_tokens, 1);
	assert_int_equal(acc.usage.prompt_tokens, 5);
	assert_string_equal(acc.finish_reason, "length");
	/* Usage-only fragment. */
	c = "{\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":9}}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools, &f),
	    RF_CHUNK_DATA);
	assert_int_equal(acc.usage.completion_tokens, 9);
	/* Not Gemini's shape. */
	assert_int_equal(G->parse_chunk(NULL, "{}", 2, &acc, &delta, &tools, &f),
	    RF_CHUNK_MALFORMED);
	assert_int_equal(G->parse_chunk(NULL, "{\"cand", 6, &acc, &delta, &tools, &f),
	    RF_CHUNK_MALFORMED);
	assert_int_equal(G->parse_chunk(NULL, "[DONE]", 6, &acc, &delta, &tools, &f),
	    RF_CHUNK_DONE);
	/* A blocked prompt in a stream. */
	c = "{\"promptFeedback\":{\"blockReason\":\"BLOCKLIST\"}}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools, &f),
	    RF_CHUNK_DATA);
	assert_true(acc.safety_block);
	assert_string_equal(acc.safety_reason, "BLOCKLIST");
	assert_string_equal(rf_buf_str(&delta), "Hi!");
	assert_int_equal(tools.len, 0);
	rf_result_free(&acc);
	rf_buf_free(&delta);
	rf_buf_free(&tools);
}

static void
test_chunk_errors(void **state)
{
	struct rf_result acc;
	struct rf_buf delta = { 0 }, tools = { 0 };
	struct rf_failure f;
	const char *c;

	(void)state;
	rf_result_init(&acc);
	c = "{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":"
	    "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/"
	    "google.rpc.RetryInfo\",\"retryDelay\":\"12s\"}]}}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools, &f),
	    RF_CHUNK_ERROR);
	assert_int_equal(f.code, RF_ERR_PROVIDER_RATE_LIMITED);
	assert_int_equal(f.retry_after_ms, 12000);
	assert_string_equal(f.details, "in-stream error, code RESOURCE_EXHAUSTED");
	c = "{\"error\":{\"code\":504,\"status\":\"DEADLINE_EXCEEDED\"}}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools, &f),
	    RF_CHUNK_ERROR);
	assert_int_equal(f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_int_equal(G->parse_chunk("error", "x", 1, &acc, &delta, &tools, &f),
	    RF_CHUNK_ERROR);
	assert_int_equal(delta.len, 0);
	assert_int_equal(tools.len, 0);
	rf_result_free(&acc);
	rf_buf_free(&delta);
	rf_buf_free(&tools);
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

/* ---- a /v1 request, translated ---- */

static char fixdir[1024] = "tests/fixtures";

static char *
slurp(const char *name)
{
	char path[1200];
	FILE *fp;
	char *s;
	long n;

	snprintf(path, sizeof(path), "%s/%s", fixdir, name);
	if ((fp = fopen(path, "rb")) == NULL)
		fail_msg("cannot open fixture %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = '\0';
	fclose(fp);
	return s;
}

/* Build a /v1 request for model; returns build's answer (b filled on 0). */
static int
build_oai(const char *model, const char *messages, const char *fields,
    struct built *b)
{
	struct rf_provider_conf pc;
	struct rf_oai_params oai = { 0 };
	struct rf_prompt p = { .msgs = msgs, .nmsgs = 4, .max_tokens = 300,
	    .temperature = 0.25, .oai = &oai };
	struct rf_up_req rq;
	int rc;

	oai.messages = json_tokener_parse(messages);
	oai.fields = fields != NULL ? json_tokener_parse(fields) : NULL;
	assert_non_null(oai.messages);
	assert_true(fields == NULL || oai.fields != NULL);
	memset(&pc, 0, sizeof(pc));
	pc.id = "gemini";
	pc.def = &rf_providers[rf_config_pid("gemini")];
	pc.url = (char *)"https://generativelanguage.example/v1beta";
	pc.model = (char *)"gemini-2.5-flash-lite";
	pc.key = (char *)KEY;
	p.model = model;
	memset(b, 0, sizeof(*b));
	rf_up_req_init(&rq);
	rc = G->build(&pc, &p, false, &rq);
	if (rc != 0) {
		/* Nothing is left to be sent by mistake. */
		assert_int_equal(rq.url.len + rq.body.len, 0);
		assert_int_equal(rq.nhdrs, 0);
	}
	rf_buf_puts(&b->url, rf_buf_str(&rq.url));
	rf_buf_puts(&b->body, rf_buf_str(&rq.body));
	rf_up_req_free(&rq);
	b->json = rc == 0 ? json_tokener_parse(rf_buf_str(&b->body)) : NULL;
	json_object_put(oai.messages);
	json_object_put(oai.fields);
	return rc;
}

static const char *
jtext(json_object *v)
{
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
}

static const char conversation[] =
    "[{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"use metric\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather here?\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0K\","
    "\"detail\":\"low\"}}]},"
    "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
    "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
    "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
    "\"arguments\":\"\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":\"{\\\"temp\\\":21}\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":[{\"type\":\"text\","
    "\"text\":\"12:00\"}]},"
    "{\"role\":\"user\",\"content\":\"thanks\"}]";

static const char tooling[] =
    "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"description\":\"Weather now\",\"strict\":true,\"parameters\":{"
    "\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\",\"description\":\"City\"},"
    "\"unit\":{\"type\":[\"string\",\"null\"],\"enum\":[\"c\",\"f\",null]},"
    "\"days\":{\"anyOf\":[{\"type\":\"integer\",\"minimum\":1},{\"type\":\"null\"}]},"
    "\"where\":{\"$ref\":\"#/$defs/Place\"}},"
    "\"required\":[\"city\"],\"additionalProperties\":false,"
    "\"$defs\":{\"Place\":{\"type\":\"object\",\"properties\":{\"lat\":"
    "{\"type\":\"number\"},\"tags\":{\"type\":\"array\",\"items\":"
    "{\"type\":\"string\"},\"maxItems\":3}},\"title\":\"Place\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":"
    "{\"type\":\"object\",\"properties\":{}}}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
    "\"parallel_tool_calls\":true,"
    "\"stop\":\"END\",\"seed\":42,\"top_p\":0.5,\"presence_penalty\":0,"
    "\"user\":\"u-1\"}";

static void
test_oai_translate(void **state)
{
	struct built b;

	(void)state;
	assert_int_equal(build_oai("gemini-2.5-flash", conversation, tooling,
	    &b), 0);
	/* The per-request model names the URL. */
	assert_string_equal(rf_buf_str(&b.url), "https://generativelanguage."
	    "example/v1beta/models/gemini-2.5-flash:generateContent");
	assert_string_equal(jtext(rf_adapter_get(b.json, "systemInstruction")),
	    "{\"parts\":[{\"text\":\"be brief\\n\\nuse metric\"}]}");
	assert_string_equal(jtext(rf_adapter_get(b.json, "contents")),
	    "[{\"role\":\"user\",\"parts\":[{\"text\":\"weather here?\"},"
	    "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBORw0K\"}}]},"
	    "{\"role\":\"model\",\"parts\":[{\"text\":\"Checking.\"},"
	    "{\"functionCall\":{\"id\":\"call_0\",\"name\":\"get_weather\",\"args\":"
	    "{\"city\":\"Oslo\"}}},{\"functionCall\":{\"id\":\"call_1\",\"name\":"
	    "\"get_time\",\"args\":{}}}]},"
	    "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"id\":\"call_0\","
	    "\"name\":\"get_weather\",\"response\":{\"temp\":21}}},"
	    "{\"functionResponse\":{\"id\":\"call_1\",\"name\":\"get_time\","
	    "\"response\":{\"output\":\"12:00\"}}}]},"
	    "{\"role\":\"user\",\"parts\":[{\"text\":\"thanks\"}]}]");
	assert_string_equal(jtext(rf_adapter_get(b.json, "tools")),
	    "[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"description\":"
	    "\"Weather now\",\"parameters\":{\"type\":\"OBJECT\",\"properties\":{"
	    "\"city\":{\"type\":\"STRING\",\"description\":\"City\"},"
	    "\"unit\":{\"nullable\":true,\"type\":\"STRING\",\"enum\":[\"c\",\"f\"],"
	    "\"format\":\"enum\"},"
	    "\"days\":{\"nullable\":true,\"type\":\"INTEGER\",\"minimum\":1},"
	    "\"where\":{\"type\":\"OBJECT\",\"properties\":{\"lat\":{\"type\":"
	    "\"NUMBER\"},\"tags\":{\"type\":\"ARRAY\",\"items\":{\"type\":\"STRING\"},"
	    "\"maxItems\":3}},\"title\":\"Place\"}},\"required\":[\"city\"]}},"
	    "{\"name\":\"get_time\"}]}]");
	assert_string_equal(jtext(rf_adapter_get(b.json, "toolConfig")),
	    "{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":"
	    "[\"get_weather\"]}}");
	assert_string_equal(jtext(rf_adapter_get(b.json, "generationConfig")),
	    "{\"maxOutputTokens\":300,\"temperature\":0.25,\"thinkingConfig\":"
	    "{\"thinkingBudget\":0},\"stopSequences\":[\"END\"],"
	    "\"seed\":42,\"topP\":0.5}");
	built_free(&b);
	/* A JSON schema answer (no tools: before Gemini 3 it cannot have
	 * both). */
	assert_int_equal(build_oai(NULL, "[{\"role\":\"user\",\"content\":\"x\"}]",
	    "{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
	    "{\"name\":\"w\",\"strict\":true,\"schema\":{\"type\":\"object\","
	    "\"properties\":{\"t\":{\"type\":\"number\"},\"c\":{\"const\":\"x\"}},"
	    "\"required\":[\"t\"],\"additionalProperties\":false}}}}", &b), 0);
	assert_string_equal(jtext(rf_adapter_get(b.json, "generationConfig")),
	    "{\"maxOutputTokens\":300,\"temperature\":0.25,\"thinkingConfig\":"
	    "{\"thinkingBudget\":0},\"responseSchema\":{\"type\":\"OBJECT\","
	    "\"properties\":{\"t\":{\"type\":\"NUMBER\"},\"c\":{\"enum\":[\"x\"],"
	    "\"format\":\"enum\",\"type\":\"STRING\"}},\"required\":[\"t\"]},"
	    "\"responseMimeType\":\"application/json\"}");
	built_free(&b);
	/* Gemini 3 takes tools and JSON output together. */
	assert_int_equal(build_oai("gemini-3-pro", "[{\"role\":\"user\","
	    "\"content\":\"x\"}]", "{\"tools\":[{\"type\":\"function\","
	    "\"function\":{\"name\":\"f\"}}],\"response_format\":{\"type\":"
	    "\"json_object\"}}", &b), 0);
	assert_non_null(rf_adapter_get(b.json, "tools"));
	built_free(&b);
}

/* tool_choice and response_format, each way; penalties where the model
 * takes them; a Gemini 3 model gets the documented stand-in for the
 * thought signature a replayed call cannot carry. */
static void
test_oai_choices_and_models(void **state)
{
	static const char *const choice[][2] = {
		{ "\"auto\"", "{\"mode\":\"AUTO\"}" },
		{ "\"none\"", "{\"mode\":\"NONE\"}" },
		{ "\"required\"", "{\"mode\":\"ANY\"}" },
	};
	static const char user[] = "[{\"role\":\"user\",\"content\":\"hi\"}]";
	char fields[512];
	struct built b;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		snprintf(fields, sizeof(fields), "{\"tools\":[{\"type\":\"function\","
		    "\"function\":{\"name\":\"f\"}}],\"tool_choice\":%s}",
		    choice[i][0]);
		assert_int_equal(build_oai(NULL, user, fields, &b), 0);
		assert_string_equal(jtext(rf_adapter_get(b.json,
		    "toolConfig.functionCallingConfig")), choice[i][1]);
		assert_string_equal(jtext(rf_adapter_get(b.json, "tools")),
		    "[{\"functionDeclarations\":[{\"name\":\"f\"}]}]");
		built_free(&b);
	}
	assert_int_equal(build_oai(NULL, user, "{\"response_format\":{\"type\":"
	    "\"json_object\"},\"tool_choice\":\"none\"}", &b), 0);
	assert_string_equal(jstr(b.json, "generationConfig.responseMimeType"),
	    "application/json");
	assert_null(rf_adapter_get(b.json, "generationConfig.responseSchema"));
	assert_null(rf_adapter_get(b.json, "toolConfig"));
	built_free(&b);
	assert_int_equal(build_oai(NULL, user, "{\"response_format\":{\"type\":"
	    "\"text\"},\"stop\":[\"a\",\"b\"]}", &b), 0);
	assert_null(rf_adapter_get(b.json, "generationConfig.responseMimeType"));
	assert_string_equal(jtext(rf_adapter_get(b.json,
	    "generationConfig.stopSequences")), "[\"a\",\"b\"]");
	built_free(&b);
	assert_int_equal(build_oai("gemini-2.0-flash", user,
	    "{\"presence_penalty\":0.5,\"frequency_penalty\":-1}", &b), 0);
	assert_non_null(strstr(rf_buf_str(&b.body), "\"presencePenalty\":0.5,"
	    "\"frequencyPenalty\":-1"));
	built_free(&b);
	assert_int_equal(build_oai("gemini-3-flash-preview", conversation, NULL,
	    &b), 0);
	assert_string_equal(jstr(b.json, "contents[1].parts[1].thoughtSignature"),
	    "skip_thought_signature_validator");
	assert_null(rf_adapter_get(b.json, "contents[1].parts[2].thoughtSignature"));
	built_free(&b);
	assert_int_equal(build_oai("gemini-2.5-flash", conversation, NULL, &b), 0);
	assert_null(strstr(rf_buf_str(&b.body), "thoughtSignature"));
	built_free(&b);
	/* Gemma: the system text opens the first user turn. */
	assert_int_equal(build_oai("gemma-3-27b-it", "[{\"role\":\"system\","
	    "\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"}]",
	    NULL, &b), 0);
	assert_null(rf_adapter_get(b.json, "systemInstruction"));
	assert_string_equal(jtext(rf_adapter_get(b.json, "contents")),
	    "[{\"role\":\"user\",\"parts\":[{\"text\":\"be brief\"},{\"text\":\"hi\"}]}]");
	built_free(&b);
}

/* Whatever Gemini cannot express skips the tier: never a different
 * request. */
static void
test_oai_unsupported(void **state)
{
	static const char user[] = "[{\"role\":\"user\",\"content\":\"hi\"}]";
	static const char fn[] = "{\"tools\":[{\"type\":\"function\",\"function\":"
	    "{\"name\":\"f\",\"parameters\":%s}}]}";
	static const struct {
		const char *model, *messages, *fields, *schema;
	} refused[] = {
		/* parts Gemini cannot take */
		{ NULL, "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
		    "\"image_url\":{\"url\":\"https://x.test/a.png\"}}]}]", NULL, NULL },
		{ NULL, "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
		    "\"image_url\":{\"url\":\"data:image/png,rawbytes\"}}]}]", NULL, NULL },
		{ NULL, "[{\"role\":\"user\",\"content\":[{\"type\":\"file\","
		    "\"file\":{\"file_id\":\"f1\"}}]}]", NULL, NULL },
		{ NULL, "[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\","
		    "\"image_url\":{\"url\":\"data:image/png;base64,AA\"}}]},"
		    "{\"role\":\"user\",\"content\":\"hi\"}]", NULL, NULL },
		/* a tool result for no call; arguments that are no object */
		{ NULL, "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"tool\","
		    "\"tool_call_id\":\"nope\",\"content\":\"x\"}]", NULL, NULL },
		{ NULL, "[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\","
		    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
		    "\"[1]\"}}]}]", NULL, NULL },
		/* no turn at all; a role it does not know */
		{ NULL, "[{\"role\":\"system\",\"content\":\"hi\"}]", NULL, NULL },
		{ NULL, "[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]",
		    NULL, NULL },
		/* tools and their schemas */
		{ NULL, user, "{\"tools\":[{\"type\":\"custom\",\"custom\":"
		    "{\"name\":\"g\"}}]}", NULL },
		{ NULL, user, NULL, "{\"type\":\"object\",\"properties\":{\"a\":"
		    "{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}}}" },
		{ NULL, user, NULL, "{\"type\":\"object\",\"properties\":{\"a\":"
		    "{\"$ref\":\"#/$defs/N\"}},\"$defs\":{\"N\":{\"type\":\"object\","
		    "\"properties\":{\"next\":{\"$ref\":\"#/$defs/N\"}}}}}" },
		{ NULL, user, NULL, "{\"type\":\"object\",\"properties\":{\"a\":"
		    "{\"type\":\"object\",\"additionalProperties\":true}}}" },
		{ NULL, user, NULL, "{\"type\":\"object\",\"properties\":{\"a\":{}}}" },
		{ NULL, user, NULL, "{\"type\":\"object\",\"properties\":{\"a\":"
		    "{\"type\":\"integer\",\"enum\":[1,2]}}}" },
		{ NULL, user, NULL, "{\"type\":\"object\",\"properties\":{\"a\":"
		    "{\"type\":\"integer\",\"exclusiveMinimum\":0}}}" },
		{ NULL, user, NULL, "{\"type\":\"object\",\"properties\":{\"a\":"
		    "{\"type\":[\"string\",\"integer\"]}}}" },
		{ NULL, user, NULL, "{\"type\":\"string\"}" },
		/* choices and switches */
		{ NULL, user, "{\"tools\":[{\"type\":\"function\",\"function\":"
		    "{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"allowed_tools\"}}",
		    NULL },
		{ NULL, user, "{\"tools\":[{\"type\":\"function\",\"function\":"
		    "{\"name\":\"f\"}}],\"parallel_tool_calls\":false}", NULL },
		{ NULL, user, "{\"tool_choice\":\"required\"}", NULL },
		{ "gemma-3-27b-it", user, "{\"tools\":[{\"type\":\"function\","
		    "\"function\":{\"name\":\"f\"}}]}", NULL },
		{ "gemma-3-27b-it", user, "{\"response_format\":{\"type\":"
		    "\"json_object\"}}", NULL },
		{ NULL, user, "{\"response_format\":{\"type\":\"json_schema\","
		    "\"json_schema\":{\"name\":\"x\",\"schema\":{\"not\":{}}}}}", NULL },
		{ NULL, user, "{\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]}", NULL },
		/* tools beside JSON output, before Gemini 3 */
		{ NULL, user, "{\"tools\":[{\"type\":\"function\",\"function\":"
		    "{\"name\":\"f\"}}],\"response_format\":{\"type\":"
		    "\"json_object\"}}", NULL },
		{ NULL, user, "{\"seed\":1099511627776}", NULL },
		{ NULL, user, "{\"presence_penalty\":0.5}", NULL },
		{ "gemini-3-pro", user, "{\"frequency_penalty\":1}", NULL },
	};
	char fields[1024];
	struct built b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (refused[i].schema != NULL)
			snprintf(fields, sizeof(fields), fn, refused[i].schema);
		if (build_oai(refused[i].model, refused[i].messages,
		    refused[i].schema != NULL ? fields : refused[i].fields, &b) !=
		    RF_BUILD_UNSUPPORTED)
			fail_msg("case %zu was not refused as unsupported", i);
		built_free(&b);
	}
}

/* functionCall parts come back as OpenAI tool calls: the arguments
 * object as a JSON string ("{}" when Gemini sends none), ids made up as
 * call_<n> when it gives none, kept when it does; STOP after calls is
 * tool_calls; the text beside them is kept. */
static void
test_parse_function_calls(void **state)
{
	struct parsed p;
	char *body;

	(void)state;
	body = slurp("gemini_tools.json");
	parse(body, &p);
	free(body);
	assert_int_equal(p.rc, 0);
	assert_string_equal(rf_buf_str(&p.res.text), "Checking both.");
	assert_string_equal(p.res.finish_reason, "tool_calls");
	assert_int_equal(p.res.ntool_calls, 2);
	assert_string_equal(rf_buf_str(&p.res.tool_calls),
	    "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Nairobi\\\","
	    "\\\"unit\\\":\\\"celsius\\\"}\"}},{\"id\":\"call_1\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"beep\",\"arguments\":\"{}\"}}]");
	assert_int_equal(p.res.usage.completion_tokens, 21);
	rf_result_free(&p.res);

	body = slurp("gemini3_tools.json");
	parse(body, &p);
	free(body);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.res.text.len, 0);
	assert_string_equal(rf_buf_str(&p.res.tool_calls),
	    "[{\"id\":\"fc-77\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Lagos\\\"}\"}}]");
	assert_string_equal(p.res.model, "gemini-3-flash-preview");
	rf_result_free(&p.res);

	/* Cut by the token limit while calling: length, as for text. */
	parse("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
	    "{\"name\":\"f\",\"args\":{}}}]},\"finishReason\":\"MAX_TOKENS\"}]}", &p);
	assert_int_equal(p.rc, 0);
	assert_string_equal(p.res.finish_reason, "length");
	rf_result_free(&p.res);
	/* No finishReason at all: the calls still say tool_calls. */
	parse("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
	    "{\"name\":\"f\"}}]}}]}", &p);
	assert_string_equal(p.res.finish_reason, "tool_calls");
	rf_result_free(&p.res);
	/* A call without a name, args that are no object: not Gemini's shape,
	 * and nothing of it is kept. */
	parse("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},"
	    "{\"functionCall\":{\"args\":{}}}]}}]}", &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_MALFORMED_RESPONSE);
	assert_int_equal(p.res.text.len + p.res.tool_calls.len, 0);
	rf_result_free(&p.res);
	parse("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
	    "{\"name\":\"f\",\"args\":[1]}}]}}]}", &p);
	assert_int_equal(p.rc, -1);
	rf_result_free(&p.res);
	parse("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":7}]}}]}",
	    &p);
	assert_int_equal(p.rc, -1);
	rf_result_free(&p.res);
}

/* Streamed calls are numbered across fragments; a malformed one changes
 * nothing. */
static void
test_chunk_function_calls(void **state)
{
	struct rf_result acc;
	struct rf_buf delta = { 0 }, tools = { 0 };
	struct rf_failure f;
	const char *c;

	(void)state;
	rf_result_init(&acc);
	c = "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
	    "{\"name\":\"a\",\"args\":{\"x\":1}}}]}}]}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools,
	    &f), RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&tools), "[{\"index\":0,\"id\":\"call_0\","
	    "\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":"
	    "\"{\\\"x\\\":1}\"}}]");
	rf_buf_reset(&tools);
	c = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"},"
	    "{\"functionCall\":{\"args\":{}}}]}}]}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools,
	    &f), RF_CHUNK_MALFORMED);
	assert_int_equal(delta.len + tools.len, 0);
	c = "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
	    "{\"id\":\"g-1\",\"name\":\"b\"}}]},\"finishReason\":\"STOP\"}]}";
	assert_int_equal(G->parse_chunk(NULL, c, strlen(c), &acc, &delta, &tools,
	    &f), RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&tools), "[{\"index\":1,\"id\":\"g-1\","
	    "\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":"
	    "\"{}\"}}]");
	assert_int_equal(acc.ntool_calls, 2);
	assert_string_equal(acc.finish_reason, "tool_calls");
	assert_int_equal(acc.tool_calls.len, 0);
	rf_result_free(&acc);
	rf_buf_free(&delta);
	rf_buf_free(&tools);
}

int
main(int argc, char **argv)
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
		cmocka_unit_test(test_oai_translate),
		cmocka_unit_test(test_oai_choices_and_models),
		cmocka_unit_test(test_oai_unsupported),
		cmocka_unit_test(test_parse_function_calls),
		cmocka_unit_test(test_chunk_function_calls),
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
