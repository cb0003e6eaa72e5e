/* Unit tests of the /v1 shapes (render_openai.c) and of the header lines
 * every engine answer carries (answer.c): the error object and its types,
 * chat.completion with text, with tool calls only, with unknown usage,
 * each kind of chunk, the model list, X-RelayForge-Attempts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "render_openai.h"

static char *
text(json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

static void
assert_json(json_object *o, const char *want)
{
	char *got = text(o);

	assert_string_equal(got, want);
	free(got);
}

static void
test_errors(void **state)
{
	(void)state;
	assert_json(rf_render_oai_error(RF_ERR_MODEL_NOT_FOUND, "No.", "model"),
	    "{\"error\":{\"message\":\"No.\",\"type\":\"invalid_request_error\","
	    "\"param\":\"model\",\"code\":\"model_not_found\"}}");
	assert_json(rf_render_oai_error(RF_ERR_UNAUTHORIZED, NULL, NULL),
	    "{\"error\":{\"message\":\"A valid bearer token is required.\","
	    "\"type\":\"authentication_error\",\"param\":null,"
	    "\"code\":\"unauthorized\"}}");
	assert_string_equal(rf_render_oai_type(400), "invalid_request_error");
	assert_string_equal(rf_render_oai_type(404), "invalid_request_error");
	assert_string_equal(rf_render_oai_type(413), "invalid_request_error");
	assert_string_equal(rf_render_oai_type(415), "invalid_request_error");
	assert_string_equal(rf_render_oai_type(422), "invalid_request_error");
	assert_string_equal(rf_render_oai_type(401), "authentication_error");
	assert_string_equal(rf_render_oai_type(429), "rate_limit_error");
	assert_string_equal(rf_render_oai_type(500), "api_error");
	assert_string_equal(rf_render_oai_type(502), "api_error");
	assert_string_equal(rf_render_oai_type(504), "api_error");
}

static const struct rf_log_attempt attempts[] = {
	{ .provider = "groq", .outcome = "provider_rate_limited",
	  .http_status = 429, .latency_ms = 3 },
	{ .provider = "sambanova", .outcome = "skipped",
	  .reason = "cooling_down", .latency_ms = -1 },
	{ .provider = "cerebras", .outcome = "ok", .http_status = 200,
	  .latency_ms = 9 },
};

static struct rf_log_entry
entry(void)
{
	return (struct rf_log_entry){
		.request_id = "rid", .ts_ms = 1767225600000LL, .endpoint = "openai",
		.strategy = "auto", .attempted_provider = "groq",
		.final_provider = "cerebras", .fallback = true, .degraded = true,
		.success = true, .http_status = 200, .latency_ms = 12,
		.ttft_ms = -1, .model = "gpt-oss-120b", .finish_reason = "stop",
		.prompt_tokens = 5, .completion_tokens = 7,
		.attempts = attempts, .nattempts = 3,
	};
}

static void
test_completion(void **state)
{
	struct rf_oai_head h = { .request_id = "rid", .created = 1767225600,
		.model = "gpt-oss-120b" };
	struct rf_log_entry e = entry();
	json_object *o, *v;
	char *s;

	(void)state;
	o = rf_render_oai_completion(&h, &e, "Hello", 5, NULL);
	s = text(json_object_get(o));
	assert_non_null(strstr(s, "{\"id\":\"chatcmpl-rid\",\"object\":"
	    "\"chat.completion\",\"created\":1767225600,\"model\":"
	    "\"gpt-oss-120b\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
	    "\"assistant\",\"content\":\"Hello\"},\"finish_reason\":\"stop\","
	    "\"logprobs\":null}],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":7,\"total_tokens\":12},\"relayforge\":{"
	    "\"requestId\":\"rid\""));
	assert_non_null(strstr(s, "\"attempts\":[{\"provider\":\"groq\""));
	free(s);
	json_object_put(o);

	/* only tool calls: content null; unknown usage counts 0 */
	e.finish_reason = "tool_calls";
	e.prompt_tokens = e.completion_tokens = -1;
	o = rf_render_oai_completion(&h, &e, "", 0, "[{\"id\":\"c1\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]");
	assert_true(json_object_object_get_ex(json_object_array_get_idx(
	    json_object_object_get(o, "choices"), 0), "message", &v));
	s = text(json_object_get(v));
	assert_string_equal(s, "{\"role\":\"assistant\",\"content\":null,"
	    "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"f\",\"arguments\":\"{}\"}}]}");
	free(s);
	s = text(json_object_get(json_object_object_get(o, "usage")));
	assert_string_equal(s, "{\"prompt_tokens\":0,\"completion_tokens\":0,"
	    "\"total_tokens\":0}");
	free(s);
	json_object_put(o);
}

static void
test_chunks(void **state)
{
	struct rf_oai_head h = { .request_id = "rid", .created = 7,
		.model = "m" };
	struct rf_log_entry e = entry();
	char *s;

	(void)state;
	assert_json(rf_render_oai_chunk_role(&h),
	    "{\"id\":\"chatcmpl-rid\",\"object\":\"chat.completion.chunk\","
	    "\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":"
	    "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,"
	    "\"logprobs\":null}]}");
	assert_json(rf_render_oai_chunk_text(&h, "a\"b", 3),
	    "{\"id\":\"chatcmpl-rid\",\"object\":\"chat.completion.chunk\","
	    "\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":"
	    "{\"content\":\"a\\\"b\"},\"finish_reason\":null,\"logprobs\":null}]}");
	assert_json(rf_render_oai_chunk_tools(&h, "[{\"index\":0}]", 13),
	    "{\"id\":\"chatcmpl-rid\",\"object\":\"chat.completion.chunk\","
	    "\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":"
	    "{\"tool_calls\":[{\"index\":0}]},\"finish_reason\":null,"
	    "\"logprobs\":null}]}");
	assert_null(rf_render_oai_chunk_tools(&h, "{\"no\":1}", 8));
	assert_null(rf_render_oai_chunk_tools(&h, "[", 1));
	s = text(rf_render_oai_chunk_finish(&h, &e));
	assert_non_null(strstr(s, "\"choices\":[{\"index\":0,\"delta\":{},"
	    "\"finish_reason\":\"stop\",\"logprobs\":null}],\"relayforge\":"
	    "{\"phase\":\"final\""));
	free(s);
	assert_json(rf_render_oai_chunk_usage(&h, &e),
	    "{\"id\":\"chatcmpl-rid\",\"object\":\"chat.completion.chunk\","
	    "\"created\":7,\"model\":\"m\",\"choices\":[],\"usage\":"
	    "{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}");
}

static void
test_models(void **state)
{
	const struct rf_oai_model m[] = {
		{ "auto", "relayforge" }, { "groq/x", "groq" },
	};

	(void)state;
	assert_json(rf_render_oai_models(m, 2),
	    "{\"object\":\"list\",\"data\":[{\"id\":\"auto\",\"object\":\"model\","
	    "\"created\":1735689600,\"owned_by\":\"relayforge\"},{\"id\":"
	    "\"groq/x\",\"object\":\"model\",\"created\":1735689600,"
	    "\"owned_by\":\"groq\"}]}");
}

static void
test_answer_headers(void **state)
{
	struct rf_log_entry e = entry();
	struct rf_chain_result r;
	struct rf_buf b = { 0 };

	(void)state;
	rf_chain_result_init(&r);
	assert_int_equal(rf_answer_headers(&e, &r, &b), 0);
	assert_string_equal(rf_buf_str(&b),
	    "X-RelayForge-Provider: cerebras\r\nX-RelayForge-Fallback: true\r\n"
	    "X-RelayForge-Attempts: groq:provider_rate_limited,"
	    "sambanova:cooling_down,cerebras:ok\r\n");
	/* a failed 429 says when to come back, in whole seconds */
	rf_buf_reset(&b);
	e.success = false;
	e.http_status = 429;
	e.nattempts = 0;
	e.final_provider = NULL;
	r.retry_after_ms = 1200;
	assert_int_equal(rf_answer_headers(&e, &r, &b), 0);
	assert_string_equal(rf_buf_str(&b),
	    "X-RelayForge-Provider: none\r\nX-RelayForge-Fallback: true\r\n"
	    "X-RelayForge-Attempts: none\r\nRetry-After: 2\r\n");
	rf_buf_free(&b);
	rf_chain_result_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_completion),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_models),
		cmocka_unit_test(test_answer_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
