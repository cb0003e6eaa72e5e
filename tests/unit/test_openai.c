/*
 * test_openai: the OpenAI-compatible wire (rf_ops_openai) and its
 * providers (Groq, SambaNova, Cerebras, OpenRouter: their quirks are fields
 * of their catalog entries) against the wire samples of providers.md
 * sections 1-4 and 6, plus the helpers of provider.c that every adapter
 * leans on.  A /v1 request (rf_prompt.oai) is passed on as given (messages,
 * tools, formats, sampling fields) with its two documented changes, and
 * tool-call answers (the *_tools.json fixtures) come back as the OpenAI
 * tool_calls array.
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

static const struct rf_provider_ops *A = &rf_ops_openai;

/* The catalog entry of an OpenAI-wire provider. */
static const struct rf_provider *
entry(const char *id)
{
	int pid = rf_config_pid(id);

	if (pid < 0 || rf_providers[pid].ops != &rf_ops_openai)
		fail_msg("no OpenAI-wire provider %s", id);
	return &rf_providers[pid];
}

static struct rf_provider_conf
conf(const char *id, const char *key)
{
	struct rf_provider_conf pc;

	memset(&pc, 0, sizeof(pc));
	pc.id = id;
	pc.name = id;
	pc.def = entry(id);
	pc.url = (char *)"https://api.example.test/v1";
	pc.model = (char *)"llama-3.1-8b-instant";
	pc.key = (char *)key;
	pc.configured = key != NULL;
	return pc;
}

static const struct rf_msg two_msgs[] = {
	{ "user", "hi \"there\"\n\u00e9" },
	{ "assistant", "hello" },
	{ "user", "and now?" },
};

static struct rf_prompt
prompt(const char *system)
{
	struct rf_prompt p = { .msgs = two_msgs, .nmsgs = 3, .system = system,
	    .max_tokens = 256, .temperature = 0.7 };

	return p;
}

/* The header lines as one string, "\n" after each. */
static void
headers_str(const struct rf_up_req *rq, struct rf_buf *out)
{
	int i;

	rf_buf_reset(out);
	for (i = 0; i < rq->nhdrs; i++) {
		rf_buf_puts(out, rq->hdrs[i]);
		rf_buf_puts(out, "\n");
	}
}

struct built {
	struct rf_buf url, body, hdrs;
	json_object *json;
};

static void
build(const char *id, const char *key, const char *system, bool stream,
    struct built *b)
{
	struct rf_provider_conf pc = conf(id, key);
	struct rf_prompt p = prompt(system);
	struct rf_up_req rq;

	memset(b, 0, sizeof(*b));
	rf_up_req_init(&rq);
	assert_int_equal(A->build(&pc, &p, stream, &rq), 0);
	headers_str(&rq, &b->hdrs);
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
test_build_groq_stream(void **state)
{
	struct built b;
	json_object *v;

	(void)state;
	build("groq", "gsk_secret", "be brief", true, &b);
	assert_string_equal(rf_buf_str(&b.url),
	    "https://api.example.test/v1/chat/completions");
	assert_string_equal(jstr(b.json, "model"), "llama-3.1-8b-instant");
	assert_string_equal(jstr(b.json, "messages[0].role"), "system");
	assert_string_equal(jstr(b.json, "messages[0].content"), "be brief");
	assert_string_equal(jstr(b.json, "messages[1].role"), "user");
	assert_string_equal(jstr(b.json, "messages[1].content"),
	    "hi \"there\"\n\u00e9");
	assert_string_equal(jstr(b.json, "messages[2].role"), "assistant");
	assert_string_equal(jstr(b.json, "messages[3].content"), "and now?");
	assert_null(rf_adapter_get(b.json, "messages[4]"));
	assert_true(json_object_get_int(rf_adapter_get(b.json,
	    "max_completion_tokens")) == 256);
	assert_null(rf_adapter_get(b.json, "max_tokens"));
	assert_non_null(strstr(rf_buf_str(&b.body), "\"temperature\":0.7,"));
	v = rf_adapter_get(b.json, "stream");
	assert_true(json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v));
	assert_true(json_object_get_boolean(rf_adapter_get(b.json,
	    "stream_options.include_usage")));
	assert_non_null(strstr(rf_buf_str(&b.hdrs),
	    "Authorization: Bearer gsk_secret\n"));
	assert_non_null(strstr(rf_buf_str(&b.hdrs),
	    "Content-Type: application/json\n"));
	assert_non_null(strstr(rf_buf_str(&b.hdrs),
	    "Accept: text/event-stream\n"));
	assert_null(strstr(rf_buf_str(&b.hdrs), "X-OpenRouter-Title"));
	assert_null(strstr(rf_buf_str(&b.url), "gsk_secret"));
	assert_null(strstr(rf_buf_str(&b.body), "gsk_secret"));
	built_free(&b);
}

static void
test_build_per_provider(void **state)
{
	struct built b;

	(void)state;
	/* SambaNova, not streaming, no system prompt. */
	build("sambanova", "sn-key", NULL, false, &b);
	assert_int_equal(json_object_get_int(rf_adapter_get(b.json,
	    "max_tokens")), 256);
	assert_null(rf_adapter_get(b.json, "max_completion_tokens"));
	assert_string_equal(jstr(b.json, "messages[0].role"), "user");
	assert_false(json_object_get_boolean(rf_adapter_get(b.json, "stream")));
	assert_non_null(rf_adapter_get(b.json, "stream"));
	assert_null(rf_adapter_get(b.json, "stream_options"));
	assert_null(strstr(rf_buf_str(&b.hdrs), "Accept:"));
	built_free(&b);

	build("cerebras", "csk", NULL, true, &b);
	assert_non_null(rf_adapter_get(b.json, "max_completion_tokens"));
	assert_null(rf_adapter_get(b.json, "max_tokens"));
	built_free(&b);

	build("openrouter", "sk-or-v1-x", NULL, true, &b);
	assert_non_null(rf_adapter_get(b.json, "max_tokens"));
	assert_non_null(strstr(rf_buf_str(&b.hdrs),
	    "X-OpenRouter-Title: RelayForge\n"));
	assert_non_null(strstr(rf_buf_str(&b.hdrs),
	    "Authorization: Bearer sk-or-v1-x\n"));
	built_free(&b);

	/* No key: no Authorization header at all. */
	build("groq", NULL, NULL, false, &b);
	assert_null(strstr(rf_buf_str(&b.hdrs), "Authorization"));
	built_free(&b);
}

/* The quirks are data: a provider that is not in the catalog gets them
 * from its own struct alone. */
static void
test_build_quirks_are_fields(void **state)
{
	static const struct rf_provider acme = {
		.id = "acme", .name = "Acme", .env = "ACME",
		.url = "https://api.acme.test/v1", .model = "acme-1",
		.max_tokens_field = "max_completion_tokens",
		.extra_header = { "X-Acme-App", "RelayForge" },
		.ops = &rf_ops_openai,
	};
	struct rf_provider_conf pc = conf("groq", "ak-1");
	struct rf_prompt p = prompt(NULL);
	struct rf_up_req rq;
	struct rf_buf h = { 0 };

	(void)state;
	pc.id = acme.id;
	pc.def = &acme;
	rf_up_req_init(&rq);
	assert_int_equal(A->build(&pc, &p, false, &rq), 0);
	headers_str(&rq, &h);
	assert_string_equal(rf_buf_str(&h), "Content-Type: application/json\n"
	    "Expect: \nAuthorization: Bearer ak-1\nX-Acme-App: RelayForge\n");
	assert_non_null(strstr(rf_buf_str(&rq.body),
	    "\"max_completion_tokens\":256"));
	assert_null(strstr(rf_buf_str(&rq.body), "\"max_tokens\""));
	rf_up_req_free(&rq);
	rf_buf_free(&h);
}

static void
test_build_refuses_header_injection(void **state)
{
	struct rf_provider_conf pc = conf("groq", "gsk_x\r\nX-Evil: 1");
	struct rf_prompt p = prompt(NULL);
	struct rf_up_req rq;

	(void)state;
	rf_up_req_init(&rq);
	/* Left over from an earlier build: must be cleared, not sent. */
	assert_int_equal(rf_adapter_header(&rq, "X-Old", "1"), 0);
	assert_int_equal(A->build(&pc, &p, false, &rq), -1);
	assert_int_equal(rq.nhdrs, 0);
	assert_int_equal(rq.url.len, 0);
	assert_int_equal(rq.body.len, 0);
	rf_up_req_free(&rq);
}

/* ---- parse_response ---- */

struct parsed {
	struct rf_result res;
	struct rf_failure f;
	int rc;
};

static void
parse(const struct rf_provider_ops *ad, const char *body, struct parsed *p)
{
	rf_result_init(&p->res);
	rf_failure_set(&p->f, RF_OK, NULL);
	p->rc = ad->parse_response(body, strlen(body), &p->res, &p->f);
}

static void
test_parse_ok(void **state)
{
	struct parsed p;

	(void)state;
	parse(A, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
	    "\"created\":1760000000,\"model\":\"m\",\"choices\":[{\"index\":0,"
	    "\"message\":{\"role\":\"assistant\",\"content\":\"Hello\","
	    "\"reasoning\":\"secret thoughts\"},\"finish_reason\":\"stop\"}],"
	    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
	    "\"total_tokens\":11}}", &p);
	assert_int_equal(p.rc, 0);
	assert_string_equal(rf_buf_str(&p.res.text), "Hello");
	assert_string_equal(p.res.model, "m");
	assert_string_equal(p.res.finish_reason, "stop");
	assert_int_equal(p.res.usage.prompt_tokens, 9);
	assert_int_equal(p.res.usage.completion_tokens, 2);
	assert_false(p.res.safety_block);
	rf_result_free(&p.res);
}

static void
test_parse_empty_and_filtered(void **state)
{
	struct parsed p;

	(void)state;
	parse(A, "{\"model\":\"m\",\"choices\":[{\"message\":{\"role\":"
	    "\"assistant\",\"content\":null},\"finish_reason\":\"length\"}]}", &p);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.res.text.len, 0);
	assert_string_equal(p.res.finish_reason, "length");
	assert_int_equal(p.res.usage.prompt_tokens, -1);
	rf_result_free(&p.res);

	parse(A, "{\"choices\":[{\"message\":{\"content\":\"\"}}]}", &p);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.res.text.len, 0);
	rf_result_free(&p.res);

	parse(A, "{\"model\":\"m\",\"choices\":[{\"message\":{\"content\":"
	    "\"\"},\"finish_reason\":\"content_filter\"}]}", &p);
	assert_int_equal(p.rc, 0);
	assert_true(p.res.safety_block);
	assert_string_equal(p.res.safety_reason, "content_filter");
	assert_string_equal(p.res.finish_reason, "content_filter");
	rf_result_free(&p.res);
}

static void
test_parse_errors_in_200(void **state)
{
	struct parsed p;

	(void)state;
	/* OpenRouter: finish_reason "error" next to partial content. */
	parse(A, "{\"choices\":[{\"message\":{\"content\":\"part\"},"
	    "\"finish_reason\":\"error\",\"error\":{\"code\":502,\"message\":"
	    "\"upstream died\",\"metadata\":{\"error_type\":\"provider_unavailable\"}}}]}",
	    &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_string_equal(p.f.details, "finish_reason error");
	rf_result_free(&p.res);

	parse(A, "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}",
	    &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_string_equal(p.f.details, "error object in 200 response");
	assert_int_equal(p.f.retry_after_ms, -1);
	rf_result_free(&p.res);

	/* Cerebras flat error without choices. */
	parse(A, "{\"message\":\"Internal\",\"type\":\"server_error\","
	    "\"param\":null,\"code\":\"internal_error\"}", &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_string_equal(p.f.details,
	    "error object in 200 response, code internal_error");
	rf_result_free(&p.res);
}

static void
expect_malformed(const char *body, const char *details)
{
	struct parsed p;

	parse(A, body, &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_MALFORMED_RESPONSE);
	assert_string_equal(p.f.details, details);
	assert_int_equal(p.res.text.len, 0);
	rf_result_free(&p.res);
}

static void
test_parse_malformed(void **state)
{
	char bomb[400];

	(void)state;
	expect_malformed("{\"id\":\"x\"}", "missing choices[0]");
	expect_malformed("{\"choices\":[]}", "missing choices[0]");
	expect_malformed("{\"choices\":{\"0\":1}}", "missing choices[0]");
	expect_malformed("{\"choices\":[{\"text\":\"x\"}]}",
	    "missing choices[0].message");
	expect_malformed("{\"choices\":[{\"message\":{\"content\":42}}]}",
	    "choices[0].message.content is not a string");
	expect_malformed("<html>502 Bad Gateway</html>",
	    "response is not a JSON object");
	expect_malformed("[1,2]", "response is not a JSON object");
	expect_malformed("{\"choices\":[]} trailing",
	    "response is not a JSON object");
	expect_malformed("", "response is not a JSON object");
	memset(bomb, '[', 200);
	memset(bomb + 200, ']', 199);
	bomb[399] = '\0';
	expect_malformed(bomb, "response is not a JSON object");
}

/* ---- parse_chunk ---- */

struct chunked {
	struct rf_result acc;
	struct rf_buf delta;
	struct rf_buf tools;
	struct rf_failure f;
};

static enum rf_chunk
chunk(struct chunked *c, const char *event, const char *data)
{
	rf_buf_reset(&c->delta);
	rf_buf_reset(&c->tools);
	return A->parse_chunk(event, data, strlen(data), &c->acc, &c->delta,
	    &c->tools, &c->f);
}

static void
chunked_init(struct chunked *c)
{
	memset(c, 0, sizeof(*c));
	rf_result_init(&c->acc);
}

static void
chunked_free(struct chunked *c)
{
	rf_result_free(&c->acc);
	rf_buf_free(&c->delta);
	rf_buf_free(&c->tools);
}

static void
test_chunk_kinds(void **state)
{
	struct chunked c;

	(void)state;
	chunked_init(&c);
	assert_int_equal(chunk(&c, NULL, "[DONE]"), RF_CHUNK_DONE);
	assert_int_equal(chunk(&c, NULL, " [DONE]\n"), RF_CHUNK_DONE);
	assert_int_equal(chunk(&c, NULL, "{\"model\":\"m1\",\"choices\":[{"
	    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
	    "\"finish_reason\":null}]}"), RF_CHUNK_DATA);
	assert_int_equal(c.delta.len, 0);
	assert_string_equal(c.acc.model, "m1");
	assert_int_equal(chunk(&c, NULL, "{\"model\":\"m2\",\"choices\":[{"
	    "\"delta\":{\"content\":\"Hel\",\"reasoning\":\"hmm\"}}]}"),
	    RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&c.delta), "Hel");
	assert_string_equal(c.acc.model, "m1"); /* first one wins */
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{},"
	    "\"finish_reason\":\"length\"}]}"), RF_CHUNK_DATA);
	assert_string_equal(c.acc.finish_reason, "length");
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[],\"usage\":{"
	    "\"prompt_tokens\":9,\"completion_tokens\":2}}"), RF_CHUNK_DATA);
	assert_int_equal(c.acc.usage.prompt_tokens, 9);
	/* A later usage: null never erases what is known. */
	assert_int_equal(chunk(&c, NULL, "{\"usage\":null}"), RF_CHUNK_DATA);
	assert_int_equal(c.acc.usage.completion_tokens, 2);
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{},"
	    "\"finish_reason\":\"content_filter\"}]}"), RF_CHUNK_DATA);
	assert_true(c.acc.safety_block);
	chunked_free(&c);
}

static void
test_chunk_malformed_has_no_effect(void **state)
{
	static const char *const bad[] = {
		"{not json", "\"a string\"", "[]",
		"{\"choices\":\"x\"}", "{\"choices\":[7]}",
		"{\"choices\":[{\"delta\":\"x\"}]}",
		"{\"choices\":[{\"delta\":{\"content\":5}}],\"usage\":"
		"{\"prompt_tokens\":1}}",
	};
	struct chunked c;
	size_t i;

	(void)state;
	chunked_init(&c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chunk(&c, NULL, bad[i]), RF_CHUNK_MALFORMED);
		assert_int_equal(c.delta.len, 0);
		assert_int_equal(c.acc.usage.prompt_tokens, -1);
	}
	chunked_free(&c);
}

static void
test_chunk_errors(void **state)
{
	struct chunked c;

	(void)state;
	chunked_init(&c);
	/* SambaNova named event, whatever the payload. */
	assert_int_equal(chunk(&c, "error", "not even json"), RF_CHUNK_ERROR);
	assert_int_equal(c.f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_string_equal(c.f.details, "in-stream error event");
	assert_int_equal(chunk(&c, "error", "{\"error\":{\"message\":\"q\","
	    "\"code\":\"rate_limit_exceeded\"}}"), RF_CHUNK_ERROR);
	assert_int_equal(c.f.code, RF_ERR_PROVIDER_RATE_LIMITED);
	/* Cerebras error object with status_code. */
	assert_int_equal(chunk(&c, NULL, "{\"error\":{\"message\":\"busy\","
	    "\"type\":\"server_error\"},\"status_code\":503}"), RF_CHUNK_ERROR);
	assert_int_equal(c.f.code, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_int_equal(chunk(&c, NULL, "{\"error\":{\"message\":\"busy\"},"
	    "\"status_code\":429}"), RF_CHUNK_ERROR);
	assert_int_equal(c.f.code, RF_ERR_PROVIDER_RATE_LIMITED);
	/* Plain OpenAI-style error chunk. */
	assert_int_equal(chunk(&c, NULL, "{\"error\":{\"message\":\"x\","
	    "\"type\":\"server_error\"}}"), RF_CHUNK_ERROR);
	assert_string_equal(c.f.details, "in-stream error");
	/* Groq stopped the stream early. */
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[],\"x_groq\":{"
	    "\"error\":\"stream stopped\"}}"), RF_CHUNK_ERROR);
	/* A finish_reason "error" without an error object. */
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"content\":"
	    "\"x\"},\"finish_reason\":\"error\"}]}"), RF_CHUNK_ERROR);
	assert_string_equal(c.f.details, "finish_reason error");
	chunked_free(&c);
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
	{ 401, "{\"error\":{\"message\":\"Invalid API Key\",\"type\":"
	  "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
	  RF_ERR_PROVIDER_AUTH, true,
	  "HTTP 401 from upstream provider, code invalid_api_key", -1 },
	{ 413, "{\"error\":{\"message\":\"Request too large for model "
	  "`llama-3.1-8b-instant` on tokens per minute (TPM): Limit 6000, "
	  "Requested 12328\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}",
	  RF_ERR_PROVIDER_BAD_REQUEST, false,
	  "HTTP 413 from upstream provider, code rate_limit_exceeded", -1 },
	{ 429, "{\"error\":{\"message\":\"Rate limit reached for model x on "
	  "tokens per day (TPD): Limit 500000, Used 499000, Requested 2000. "
	  "Please try again in 2m39.5s. Need more tokens?\",\"type\":\"tokens\","
	  "\"code\":\"rate_limit_exceeded\"}}",
	  RF_ERR_PROVIDER_RATE_LIMITED, false,
	  "HTTP 429 from upstream provider, code rate_limit_exceeded", 159500 },
	{ 400, "{\"error\":{\"message\":\"Model does not exist\",\"type\":"
	  "\"invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"},"
	  "\"request_id\":\"r-1\"}",
	  RF_ERR_PROVIDER_BAD_REQUEST, false,
	  "HTTP 400 from upstream provider, code model_not_found", -1 },
	{ 429, "{\"message\":\"Tokens per minute limit exceeded - too many "
	  "tokens processed.\",\"type\":\"too_many_tokens_error\",\"param\":"
	  "\"quota\",\"code\":\"token_quota_exceeded\"}",
	  RF_ERR_PROVIDER_RATE_LIMITED, false,
	  "HTTP 429 from upstream provider, code token_quota_exceeded", -1 },
	{ 401, "{\"message\":\"Wrong API Key\",\"type\":\"invalid_request_error\","
	  "\"param\":\"api_key\",\"code\":\"wrong_api_key\"}",
	  RF_ERR_PROVIDER_AUTH, true,
	  "HTTP 401 from upstream provider, code wrong_api_key", -1 },
	{ 403, "{\"detail\":\"Not authenticated\"}", RF_ERR_PROVIDER_AUTH, true,
	  "HTTP 403 from upstream provider", -1 },
	{ 402, "{\"error\":{\"code\":402,\"message\":\"Insufficient credits\"}}",
	  RF_ERR_PROVIDER_BAD_REQUEST, false,
	  "HTTP 402 from upstream provider", -1 },
	{ 429, "{\"error\":{\"code\":429,\"message\":\"Rate limit exceeded\","
	  "\"metadata\":{\"error_type\":\"rate_limit_exceeded\"}}}",
	  RF_ERR_PROVIDER_RATE_LIMITED, false,
	  "HTTP 429 from upstream provider", -1 },
	{ 400, "{\"error\":{\"message\":\"Your request was rejected by the "
	  "safety system.\",\"type\":\"invalid_request_error\",\"code\":"
	  "\"content_policy_violation\"}}",
	  RF_ERR_CONTENT_FILTERED, false,
	  "HTTP 400 from upstream provider, code content_policy_violation", -1 },
	{ 400, "{\"error\":{\"message\":\"ctx\",\"type\":\"invalid_request_error\","
	  "\"code\":\"context_length_exceeded\"}}",
	  RF_ERR_PROVIDER_BAD_REQUEST, false,
	  "HTTP 400 from upstream provider, code context_length_exceeded", -1 },
	{ 403, "{\"error\":{\"code\":403,\"message\":\"Input flagged\","
	  "\"metadata\":{\"reasons\":[\"violence\"],\"flagged_input\":\"...\"}}}",
	  RF_ERR_CONTENT_FILTERED, false, "HTTP 403 from upstream provider", -1 },
	{ 408, "{\"error\":{\"code\":\"request_timeout\"}}",
	  RF_ERR_PROVIDER_TIMEOUT, false,
	  "HTTP 408 from upstream provider, code request_timeout", -1 },
	{ 504, "", RF_ERR_PROVIDER_TIMEOUT, false,
	  "HTTP 504 from upstream provider", -1 },
	{ 500, "<html><body>Internal Server Error</body></html>",
	  RF_ERR_PROVIDER_UNAVAILABLE, false,
	  "HTTP 500 from upstream provider", -1 },
	{ 503, "{\"error\":{\"message\":\"maintenance\",\"code\":\"maintenance\"}}",
	  RF_ERR_PROVIDER_UNAVAILABLE, false,
	  "HTTP 503 from upstream provider, code maintenance", -1 },
	{ 498, "{\"error\":{\"code\":\"capacity_exceeded\"}}",
	  RF_ERR_PROVIDER_UNAVAILABLE, false,
	  "HTTP 498 from upstream provider, code capacity_exceeded", -1 },
	{ 499, "", RF_ERR_PROVIDER_UNAVAILABLE, false,
	  "HTTP 499 from upstream provider", -1 },
	{ 404, "{\"error\":{\"message\":\"x\",\"code\":\"bad code <script>\"}}",
	  RF_ERR_PROVIDER_BAD_REQUEST, false,
	  "HTTP 404 from upstream provider", -1 },
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
		A->classify_error(c->status, c->body, strlen(c->body), &f);
		if (f.code != c->code || f.auth != c->auth ||
		    strcmp(f.details, c->details) != 0 ||
		    f.retry_after_ms != c->retry_ms)
			fail_msg("case %zu (HTTP %ld): code %d auth %d details "
			    "\"%s\" retry %lld", i, c->status, (int)f.code,
			    (int)f.auth, f.details, (long long)f.retry_after_ms);
		/* Never a body fragment in the technical details. */
		assert_null(strstr(f.details, "message"));
		assert_null(strstr(f.details, "Limit"));
		if (c->code != RF_ERR_CONTENT_FILTERED)
			assert_string_equal(f.message, "");
	}
}

static void
test_classify_policy_message(void **state)
{
	static const char body[] = "{\"error\":{\"message\":\"Flagged for "
	    "violence.\",\"type\":\"content_filter\"}}";
	char longer[600];
	struct rf_failure f;

	(void)state;
	A->classify_error(400, body, strlen(body), &f);
	assert_int_equal(f.code, RF_ERR_CONTENT_FILTERED);
	assert_string_equal(f.message, "The provider refused the request under "
	    "its content policy. Provider message: Flagged for violence.");
	/* A long provider message is not copied. */
	snprintf(longer, sizeof(longer), "{\"error\":{\"message\":\"%0200d\","
	    "\"code\":\"content_policy_violation\"}}", 7);
	A->classify_error(400, longer, strlen(longer), &f);
	assert_string_equal(f.message, "The provider refused the request under "
	    "its content policy.");
}

/* ---- provider.c helpers ---- */

static void
test_helpers(void **state)
{
	static const char js[] = "{\"a\":[{\"b\":{\"c\":\"x\"}},2],\"n\":5} \n";
	json_object *o = rf_adapter_json(js, sizeof(js) - 1);
	const char *end;
	long n;

	(void)state;
	assert_non_null(o);
	assert_string_equal(rf_adapter_str(o, "a[0].b.c"), "x");
	assert_null(rf_adapter_str(o, "a[1].b"));
	assert_null(rf_adapter_get(o, "a[2]"));
	assert_null(rf_adapter_get(o, "n[0]"));
	assert_true(rf_adapter_long(o, "n", &n) && n == 5);
	assert_false(rf_adapter_long(o, "a", &n));
	json_object_put(o);

	/* Durations in bodies need their unit (the parser itself is
	 * rf_duration_ms, tested in test_util.c). */
	assert_int_equal(rf_adapter_unit_duration("34.4s", &end), 34400);
	assert_string_equal(end, "");
	assert_int_equal(rf_adapter_unit_duration("2m39.5s. Need", &end), 159500);
	assert_string_equal(end, ". Need");
	assert_int_equal(rf_adapter_unit_duration("120ms", NULL), 120);
	assert_int_equal(rf_adapter_unit_duration("1h2m", NULL), 3720000);
	assert_int_equal(rf_adapter_unit_duration("7", NULL), -1);
	assert_int_equal(rf_adapter_unit_duration("1m30", NULL), -1);
	assert_int_equal(rf_adapter_unit_duration("7. Need", NULL), -1);
	assert_int_equal(rf_adapter_unit_duration("s", NULL), -1);
	assert_int_equal(rf_adapter_unit_duration("1e9s", NULL), -1);
	assert_int_equal(rf_adapter_unit_duration(NULL, NULL), -1);

	assert_true(rf_adapter_safe_code("rate_limit_exceeded"));
	assert_false(rf_adapter_safe_code("a b"));
	assert_false(rf_adapter_safe_code(""));
	assert_true(rf_adapter_has("Content_Policy_Violation", "content_policy"));
	assert_false(rf_adapter_has(NULL, "x"));
	assert_int_equal(rf_adapter_status_err(302), RF_ERR_PROVIDER_UNAVAILABLE);

	o = rf_adapter_number(0.35);
	assert_string_equal(json_object_to_json_string(o), "0.35");
	json_object_put(o);
	o = rf_adapter_number(2);
	assert_string_equal(json_object_to_json_string(o), "2.0");
	json_object_put(o);
}

static void
test_result_and_failure(void **state)
{
	struct rf_result r;
	struct rf_failure f;

	(void)state;
	rf_result_init(&r);
	assert_int_equal(r.usage.prompt_tokens, -1);
	assert_int_equal(r.usage.completion_tokens, -1);
	assert_int_equal(r.text.max, 1024 * 1024);
	rf_buf_puts(&r.text, "abc");
	strcpy(r.model, "m");
	r.safety_block = true;
	r.usage.prompt_tokens = 3;
	rf_result_reset(&r);
	assert_int_equal(r.text.len, 0);
	assert_non_null(r.text.data); /* allocation kept */
	assert_string_equal(r.model, "");
	assert_false(r.safety_block);
	assert_int_equal(r.usage.prompt_tokens, -1);
	rf_result_free(&r);
	assert_null(r.text.data);
	rf_result_free(NULL);

	memset(&f, 0x5a, sizeof(f));
	rf_failure_set(&f, RF_ERR_PROVIDER_TIMEOUT, "curl timeout");
	assert_int_equal(f.code, RF_ERR_PROVIDER_TIMEOUT);
	assert_string_equal(f.details, "curl timeout");
	assert_string_equal(f.message, "");
	assert_int_equal(f.retry_after_ms, -1);
	assert_false(f.auth);

	/* Each provider points at its wire; the mock's is in-process only. */
	assert_ptr_equal(rf_providers[rf_config_pid("groq")].ops, &rf_ops_openai);
	assert_ptr_equal(rf_providers[rf_config_pid("sambanova")].ops, &rf_ops_openai);
	assert_ptr_equal(rf_providers[rf_config_pid("cerebras")].ops, &rf_ops_openai);
	assert_ptr_equal(rf_providers[rf_config_pid("openrouter")].ops, &rf_ops_openai);
	assert_ptr_equal(rf_providers[rf_config_pid("gemini")].ops, &rf_ops_gemini);
	assert_ptr_equal(rf_providers[rf_config_pid("mock")].ops, &rf_ops_mock);
	assert_null(rf_ops_openai.answer);
	assert_null(rf_ops_gemini.next_token);
	assert_null(rf_ops_mock.build);
	assert_null(rf_ops_mock.parse_chunk);
}

/* ---- a /v1 request, passed on as given ---- */

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

static const char oai_messages[] =
    "[{\"role\":\"developer\",\"content\":\"be exact\"},"
    "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"be brief\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is \"},"
    "{\"type\":\"text\",\"text\":\"this?\"}],\"name\":\"ann\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"and\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.png\","
    "\"detail\":\"low\"}}]},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"21C\"}]";

static const char oai_fields[] =
    "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"description\":\"Weather now\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"],"
    "\"additionalProperties\":false},\"strict\":true}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
    "\"parallel_tool_calls\":false,"
    "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\","
    "\"schema\":{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"number\"}}}}},"
    "\"stop\":[\"END\"],\"seed\":7,\"top_p\":0.9,\"presence_penalty\":0.5,"
    "\"frequency_penalty\":-0.25,\"user\":\"u-1\"}";

struct oai_req {
	json_object *messages, *fields;
	struct rf_oai_params params;
};

static void
oai_req(struct oai_req *o, const char *messages, const char *fields,
    bool completion_tokens)
{
	o->messages = json_tokener_parse(messages);
	o->fields = fields != NULL ? json_tokener_parse(fields) : NULL;
	assert_non_null(o->messages);
	o->params = (struct rf_oai_params){ .messages = o->messages,
	    .fields = o->fields, .completion_tokens = completion_tokens };
}

static void
oai_req_free(struct oai_req *o)
{
	json_object_put(o->messages);
	json_object_put(o->fields);
}

static void
build_oai(const char *id, const struct oai_req *o, const char *model,
    bool stream, struct built *b)
{
	struct rf_provider_conf pc = conf(id, "k-1");
	struct rf_prompt p = prompt("ignored for /v1");
	struct rf_up_req rq;

	p.oai = &o->params;
	p.model = model;
	memset(b, 0, sizeof(*b));
	rf_up_req_init(&rq);
	assert_int_equal(A->build(&pc, &p, stream, &rq), 0);
	headers_str(&rq, &b->hdrs);
	rf_buf_puts(&b->url, rf_buf_str(&rq.url));
	rf_buf_puts(&b->body, rf_buf_str(&rq.body));
	rf_up_req_free(&rq);
	b->json = json_tokener_parse(rf_buf_str(&b->body));
	assert_non_null(b->json);
}

/* The JSON text of v, to compare a part of the body with the input. */
static const char *
jtext(json_object *v)
{
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void
test_oai_build_as_given(void **state)
{
	struct oai_req o;
	struct built b;
	size_t i;

	(void)state;
	oai_req(&o, oai_messages, oai_fields, true);
	build_oai("groq", &o, "llama-3.3-70b-versatile", true, &b);
	/* The per-request upstream model ("provider/model"). */
	assert_string_equal(jstr(b.json, "model"), "llama-3.3-70b-versatile");
	/* developer goes as system; everything else exactly as sent. */
	assert_string_equal(jstr(b.json, "messages[0].role"), "system");
	assert_string_equal(jstr(b.json, "messages[0].content"), "be exact");
	for (i = 1; i < 6; i++)
		assert_string_equal(jtext(rf_adapter_get(b.json, "messages") ?
		    json_object_array_get_idx(rf_adapter_get(b.json, "messages"),
		    i) : NULL), jtext(json_object_array_get_idx(o.messages, i)));
	assert_null(rf_adapter_get(b.json, "messages[6]"));
	/* Every field the client set, as given. */
	json_object_object_foreach(o.fields, key, val)
		assert_string_equal(jtext(rf_adapter_get(b.json, key)), jtext(val));
	/* The max-tokens field the client named; usage asked for. */
	assert_int_equal(json_object_get_int(rf_adapter_get(b.json,
	    "max_completion_tokens")), 256);
	assert_null(rf_adapter_get(b.json, "max_tokens"));
	assert_true(json_object_get_boolean(rf_adapter_get(b.json,
	    "stream_options.include_usage")));
	built_free(&b);
	/* Without a per-request model: the configured one. */
	build_oai("groq", &o, NULL, false, &b);
	assert_string_equal(jstr(b.json, "model"), "llama-3.1-8b-instant");
	assert_null(rf_adapter_get(b.json, "stream_options"));
	built_free(&b);
	oai_req_free(&o);
}

/* max_tokens / max_completion_tokens as the client named it, except that
 * SambaNova and OpenRouter document only max_tokens. */
static void
test_oai_max_tokens_field(void **state)
{
	static const struct {
		const char *id;
		bool completion;
		const char *field;
	} mt_cases[] = {
		{ "groq", true, "max_completion_tokens" },
		{ "groq", false, "max_tokens" },
		{ "cerebras", true, "max_completion_tokens" },
		{ "cerebras", false, "max_tokens" },
		{ "sambanova", true, "max_tokens" },
		{ "openrouter", true, "max_tokens" },
		{ "openrouter", false, "max_tokens" },
	};
	struct oai_req o;
	struct built b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(mt_cases) / sizeof(mt_cases[0]); i++) {
		oai_req(&o, "[{\"role\":\"user\",\"content\":\"hi\"}]", NULL,
		    mt_cases[i].completion);
		build_oai(mt_cases[i].id, &o, NULL, false, &b);
		assert_int_equal(json_object_get_int(rf_adapter_get(b.json,
		    mt_cases[i].field)), 256);
		assert_null(rf_adapter_get(b.json,
		    strcmp(mt_cases[i].field, "max_tokens") == 0 ?
		    "max_completion_tokens" : "max_tokens"));
		built_free(&b);
		oai_req_free(&o);
	}
}

/* SambaNova (flat_text_parts) gets text-only part arrays as one string
 * (joined as OpenAI reads them: no separator); parts with an image stay
 * as given; the others get every array as given. */
static void
test_oai_flat_text_parts(void **state)
{
	struct oai_req o;
	struct built b;

	(void)state;
	oai_req(&o, oai_messages, NULL, false);
	build_oai("sambanova", &o, NULL, false, &b);
	assert_string_equal(jstr(b.json, "messages[1].content"), "be brief");
	assert_string_equal(jstr(b.json, "messages[2].content"), "what is this?");
	assert_string_equal(jstr(b.json, "messages[2].name"), "ann");
	assert_string_equal(jtext(rf_adapter_get(b.json, "messages[3].content")),
	    jtext(rf_adapter_get(json_object_array_get_idx(o.messages, 3),
	    "content")));
	built_free(&b);
	build_oai("cerebras", &o, NULL, false, &b);
	assert_true(json_object_is_type(rf_adapter_get(b.json,
	    "messages[2].content"), json_type_array));
	built_free(&b);
	oai_req_free(&o);
}

/* ---- tool-call answers ---- */

static void
parse_fixture(const char *name, struct parsed *p)
{
	char *body = slurp(name);

	rf_result_init(&p->res);
	memset(&p->f, 0, sizeof(p->f));
	p->rc = A->parse_response(body, strlen(body), &p->res, &p->f);
	free(body);
}

static void
test_parse_tool_answers(void **state)
{
	struct parsed p;

	(void)state;
	parse_fixture("groq_tools.json", &p);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.res.text.len, 0);
	assert_string_equal(p.res.finish_reason, "tool_calls");
	assert_int_equal(p.res.ntool_calls, 2);
	assert_string_equal(rf_buf_str(&p.res.tool_calls),
	    "[{\"id\":\"call_d5wg\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_weather\",\"arguments\":\"{\\\"location\\\": \\\"Tampere\\\"}\"}},"
	    "{\"id\":\"call_d5wf\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_time\",\"arguments\":\"{\\\"tz\\\": \\\"EET\\\"}\"}}]");
	assert_int_equal(p.res.usage.prompt_tokens, 224);
	rf_result_free(&p.res);

	/* Cerebras: the reasoning is never the answer. */
	parse_fixture("cerebras_tools.json", &p);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.res.text.len, 0);
	assert_non_null(strstr(rf_buf_str(&p.res.tool_calls),
	    "\"id\":\"8d1c0f7b2\""));
	rf_result_free(&p.res);

	parse_fixture("sambanova_tools.json", &p);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.res.ntool_calls, 1);
	assert_string_equal(p.res.finish_reason, "tool_calls");
	rf_result_free(&p.res);

	/* OpenRouter: its stray "index" does not belong in a message. */
	parse_fixture("openrouter_tools.json", &p);
	assert_int_equal(p.rc, 0);
	assert_string_equal(rf_buf_str(&p.res.tool_calls),
	    "[{\"id\":\"call_or9\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Quito\\\"}\"}}]");
	rf_result_free(&p.res);
}

/* What providers get wrong: no id (made up as call_<i>), arguments as an
 * object (made the JSON string clients expect) or missing ("{}"), the
 * legacy function_call; and what is not a tool call at all. */
static void
test_parse_tool_variations(void **state)
{
	struct parsed p;

	(void)state;
	parse(A, "{\"choices\":[{\"message\":{\"content\":\"ok\",\"tool_calls\":["
	    "{\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":"
	    "{\"x\":1}}},{\"id\":\"\",\"function\":{\"name\":\"b\"}}]},"
	    "\"finish_reason\":\"tool_calls\"}]}", &p);
	assert_int_equal(p.rc, 0);
	assert_string_equal(rf_buf_str(&p.res.text), "ok");
	assert_string_equal(rf_buf_str(&p.res.tool_calls),
	    "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"a\","
	    "\"arguments\":\"{\\\"x\\\":1}\"}},{\"id\":\"call_1\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]");
	rf_result_free(&p.res);

	parse(A, "{\"choices\":[{\"message\":{\"content\":null,\"function_call\":"
	    "{\"name\":\"f\",\"arguments\":\"{}\"}},\"finish_reason\":"
	    "\"function_call\"}]}", &p);
	assert_int_equal(p.rc, 0);
	assert_string_equal(rf_buf_str(&p.res.tool_calls),
	    "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"arguments\":\"{}\"}}]");
	rf_result_free(&p.res);

	parse(A, "{\"choices\":[{\"message\":{\"tool_calls\":{}}}]}", &p);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.f.code, RF_ERR_MALFORMED_RESPONSE);
	assert_int_equal(p.res.tool_calls.len, 0);
	rf_result_free(&p.res);
	parse(A, "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"c\","
	    "\"function\":{\"arguments\":\"{}\"}}]}}]}", &p);
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.f.details,
	    "choices[0].message.tool_calls is not the expected shape");
	rf_result_free(&p.res);
	parse(A, "{\"choices\":[{\"message\":{\"tool_calls\":[{\"type\":\"custom\","
	    "\"function\":{\"name\":\"x\"}}]}}]}", &p);
	assert_int_equal(p.rc, -1);
	rf_result_free(&p.res);
}

/* A chunk's tool_calls that are not the shape change nothing; text and
 * calls in one delta both come out; an index past the cap is no call. */
static void
test_chunk_tools_edges(void **state)
{
	struct chunked c;

	(void)state;
	chunked_init(&c);
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"content\":"
	    "\"x\",\"tool_calls\":{}}}]}"), RF_CHUNK_MALFORMED);
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"tool_calls\":"
	    "[{\"index\":\"0\",\"id\":\"a\"}]}}]}"), RF_CHUNK_MALFORMED);
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"tool_calls\":"
	    "[{\"index\":128,\"id\":\"a\"}]}}]}"), RF_CHUNK_MALFORMED);
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"tool_calls\":"
	    "[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "7}}]}}]}"), RF_CHUNK_MALFORMED);
	assert_int_equal(c.acc.ntool_calls, 0);
	assert_int_equal(c.delta.len + c.tools.len, 0);
	/* Text and a call's start together; then the same id and name again
	 * (a provider repeating them) are left out. */
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"content\":"
	    "\"Sure.\",\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":"
	    "{\"name\":\"f\"}}]}}]}"), RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&c.delta), "Sure.");
	assert_string_equal(rf_buf_str(&c.tools), "[{\"index\":0,\"id\":\"a\","
	    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]");
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"tool_calls\":"
	    "[{\"index\":0,\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"f\",\"arguments\":\"{}\"}}]}}]}"), RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&c.tools),
	    "[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]");
	/* A continuation that carries nothing is no delta at all. */
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"tool_calls\":"
	    "[{\"index\":0,\"function\":{}}]}}]}"), RF_CHUNK_DATA);
	assert_int_equal(c.tools.len, 0);
	/* A new call without an id gets one. */
	assert_int_equal(chunk(&c, NULL, "{\"choices\":[{\"delta\":{\"tool_calls\":"
	    "[{\"index\":1,\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}"),
	    RF_CHUNK_DATA);
	assert_string_equal(rf_buf_str(&c.tools), "[{\"index\":1,\"id\":"
	    "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"g\","
	    "\"arguments\":\"{}\"}}]");
	assert_int_equal(c.acc.ntool_calls, 2);
	chunked_free(&c);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_groq_stream),
		cmocka_unit_test(test_build_per_provider),
		cmocka_unit_test(test_build_quirks_are_fields),
		cmocka_unit_test(test_build_refuses_header_injection),
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_empty_and_filtered),
		cmocka_unit_test(test_parse_errors_in_200),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_chunk_kinds),
		cmocka_unit_test(test_chunk_malformed_has_no_effect),
		cmocka_unit_test(test_chunk_errors),
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_classify_policy_message),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_result_and_failure),
		cmocka_unit_test(test_oai_build_as_given),
		cmocka_unit_test(test_oai_max_tokens_field),
		cmocka_unit_test(test_oai_flat_text_parts),
		cmocka_unit_test(test_parse_tool_answers),
		cmocka_unit_test(test_parse_tool_variations),
		cmocka_unit_test(test_chunk_tools_edges),
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
