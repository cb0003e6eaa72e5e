/* Unit tests of the /v1 chat completions contract (contract_openai.c):
 * every row of docs/openai.md's model table, every request field read
 * (a table of refused bodies with the param each names), the flattened
 * text view, the fields passed on as given, defaults, and the limits
 * shared with /api/v1. */
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

#define P(id) rf_config_pid(id)

/* A chain of groq, gemini, openrouter, mock with configured models. */
static struct rf_config cfg;
static char m_groq[] = "llama-3.1-8b-instant";
static char m_gemini[] = "gemini-2.5-flash-lite";
static char m_or[] = "meta-llama/llama-3.3-70b-instruct:free";
static char m_mock[] = "relayforge-mock-1";

static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.chain[0] = P("groq");
	cfg.chain[1] = P("gemini");
	cfg.chain[2] = P("openrouter");
	cfg.chain[3] = P("mock");
	cfg.chain_len = 4;
	cfg.providers[P("groq")].model = m_groq;
	cfg.providers[P("gemini")].model = m_gemini;
	cfg.providers[P("openrouter")].model = m_or;
	cfg.providers[P("mock")].model = m_mock;
	cfg.mock_on = true;
	cfg.max_prompt_chars = 40;
	cfg.max_tokens_limit = 4096;
	cfg.max_body_bytes = 65536;
	return 0;
}

static int
parse(const char *body, struct rf_chat_req *req, bool *stream,
    struct rf_field_err *fe)
{
	return rf_contract_parse_openai(&cfg, body, strlen(body), req, stream,
	    fe);
}

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

/* ---- the model table ---- */

static void
route(const char *model, int strategy, int model_pid, const char *upstream)
{
	char body[512];
	struct rf_chat_req req;
	struct rf_field_err fe;
	bool stream;

	snprintf(body, sizeof(body), "{\"model\":\"%s\"," MSG "}", model);
	assert_int_equal(parse(body, &req, &stream, &fe), 0);
	assert_int_equal(req.strategy, strategy);
	assert_int_equal(req.model_pid, model_pid);
	if (upstream == NULL)
		assert_null(req.upstream_model);
	else
		assert_string_equal(req.upstream_model, upstream);
	rf_contract_free(&req);
}

static void
not_found(const char *model)
{
	char body[512];
	struct rf_chat_req req;
	struct rf_field_err fe;
	bool stream;

	snprintf(body, sizeof(body), "{\"model\":\"%s\"," MSG "}", model);
	assert_int_equal(parse(body, &req, &stream, &fe), -1);
	assert_int_equal(fe.code, RF_ERR_MODEL_NOT_FOUND);
	assert_string_equal(fe.field, "model");
}

static void
test_model_table(void **state)
{
	(void)state;
	route("auto", -1, -1, NULL);
	route("groq", P("groq"), -1, NULL);
	route("mock", P("mock"), -1, NULL);
	/* provider/model, split at the first '/' */
	route("groq/llama-3.3-70b-versatile", P("groq"), P("groq"),
	    "llama-3.3-70b-versatile");
	route("openrouter/meta-llama/llama-3.3-70b-instruct:free",
	    P("openrouter"), P("openrouter"),
	    "meta-llama/llama-3.3-70b-instruct:free");
	/* a configured model id, '/' in it or not */
	route("llama-3.1-8b-instant", P("groq"), -1, NULL);
	route("meta-llama/llama-3.3-70b-instruct:free", P("openrouter"), -1,
	    NULL);
	route("gemini-2.5-flash-lite", P("gemini"), -1, NULL);
	/* anything else */
	not_found("gpt-4o");
	not_found("sambanova");              /* a provider not in the chain */
	not_found("sambanova/x");
	not_found("groq/");                  /* no model after the slash */
	not_found("groq/has space");
	not_found("/llama");
	not_found("AUTO");
	not_found("");
}

/* ---- refused bodies ---- */

static const struct {
	const char *body;
	enum rf_err code;
	const char *param;
} refused[] = {
	{ "{", RF_ERR_INVALID_JSON, "" },
	{ "[]", RF_ERR_VALIDATION, "body" },
	{ "{" MSG "}", RF_ERR_VALIDATION, "model" },
	{ "{\"model\":5," MSG "}", RF_ERR_VALIDATION, "model" },
	{ "{\"model\":\"auto\"}", RF_ERR_VALIDATION, "messages" },
	{ "{\"model\":\"auto\",\"messages\":[]}", RF_ERR_VALIDATION, "messages" },
	{ "{\"model\":\"auto\",\"messages\":{}}", RF_ERR_VALIDATION, "messages" },
	{ "{\"model\":\"auto\",\"messages\":[1]}", RF_ERR_VALIDATION, "messages[0]" },
	{ "{\"model\":\"auto\",\"messages\":[{\"content\":\"x\"}]}",
	  RF_ERR_VALIDATION, "messages[0].role" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"function\","
	  "\"content\":\"x\"}]}", RF_ERR_VALIDATION, "messages[0].role" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\"}]}",
	  RF_ERR_VALIDATION, "messages[0].content" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":7}]}",
	  RF_ERR_VALIDATION, "messages[0].content" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
	  RF_ERR_VALIDATION, "messages[0].content" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":"
	  "[{\"type\":\"input_audio\"}]}]}", RF_ERR_VALIDATION,
	  "messages[0].content[0]" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":"
	  "[{\"type\":\"text\"}]}]}", RF_ERR_VALIDATION,
	  "messages[0].content[0].text" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":"
	  "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x\"}}]}]}",
	  RF_ERR_VALIDATION, "messages[0].content[0].image_url.url" },
	/* images only from the user */
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"system\",\"content\":"
	  "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:x\"}}]}]}",
	  RF_ERR_VALIDATION, "messages[0].content[0]" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":"
	  "\"a\\u0000b\"}]}", RF_ERR_VALIDATION, "messages[0].content" },
	/* assistant: content or tool_calls */
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"assistant\"}]}",
	  RF_ERR_VALIDATION, "messages[0].content" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"assistant\","
	  "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
	  "{\"name\":\"f\",\"arguments\":{}}}]}]}", RF_ERR_VALIDATION,
	  "messages[0].tool_calls[0]" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"assistant\","
	  "\"tool_calls\":[{\"type\":\"function\",\"function\":"
	  "{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}", RF_ERR_VALIDATION,
	  "messages[0].tool_calls[0]" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"tool\","
	  "\"content\":\"42\"}]}", RF_ERR_VALIDATION,
	  "messages[0].tool_call_id" },
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"name\":3,"
	  "\"content\":\"x\"}]}", RF_ERR_VALIDATION, "messages[0].name" },
	/* the limits of /api/v1: prompt characters over all text */
	{ "{\"model\":\"auto\",\"messages\":[{\"role\":\"system\",\"content\":"
	  "\"0123456789012345678901234\"},{\"role\":\"user\",\"content\":"
	  "[{\"type\":\"text\",\"text\":\"0123456789012345\"}]}]}",
	  RF_ERR_VALIDATION, "messages" },
	{ "{\"model\":\"auto\"," MSG ",\"max_tokens\":0}", RF_ERR_VALIDATION,
	  "max_tokens" },
	{ "{\"model\":\"auto\"," MSG ",\"max_tokens\":4097}", RF_ERR_VALIDATION,
	  "max_tokens" },
	{ "{\"model\":\"auto\"," MSG ",\"max_completion_tokens\":1.5}",
	  RF_ERR_VALIDATION, "max_completion_tokens" },
	{ "{\"model\":\"auto\"," MSG ",\"temperature\":2.5}", RF_ERR_VALIDATION,
	  "temperature" },
	{ "{\"model\":\"auto\"," MSG ",\"temperature\":\"hot\"}",
	  RF_ERR_VALIDATION, "temperature" },
	{ "{\"model\":\"auto\"," MSG ",\"top_p\":1.5}", RF_ERR_VALIDATION,
	  "top_p" },
	{ "{\"model\":\"auto\"," MSG ",\"presence_penalty\":-3}",
	  RF_ERR_VALIDATION, "presence_penalty" },
	{ "{\"model\":\"auto\"," MSG ",\"frequency_penalty\":2.1}",
	  RF_ERR_VALIDATION, "frequency_penalty" },
	{ "{\"model\":\"auto\"," MSG ",\"seed\":1.5}", RF_ERR_VALIDATION,
	  "seed" },
	{ "{\"model\":\"auto\"," MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}",
	  RF_ERR_VALIDATION, "stop" },
	{ "{\"model\":\"auto\"," MSG ",\"stop\":3}", RF_ERR_VALIDATION, "stop" },
	{ "{\"model\":\"auto\"," MSG ",\"n\":2}", RF_ERR_VALIDATION, "n" },
	{ "{\"model\":\"auto\"," MSG ",\"n\":0}", RF_ERR_VALIDATION, "n" },
	{ "{\"model\":\"auto\"," MSG ",\"user\":[]}", RF_ERR_VALIDATION, "user" },
	{ "{\"model\":\"auto\"," MSG ",\"stream\":\"yes\"}", RF_ERR_VALIDATION,
	  "stream" },
	{ "{\"model\":\"auto\"," MSG ",\"stream\":true,\"stream_options\":"
	  "{\"include_usage\":1}}", RF_ERR_VALIDATION,
	  "stream_options.include_usage" },
	{ "{\"model\":\"auto\"," MSG ",\"parallel_tool_calls\":1}",
	  RF_ERR_VALIDATION, "parallel_tool_calls" },
	{ "{\"model\":\"auto\"," MSG ",\"tools\":{}}", RF_ERR_VALIDATION,
	  "tools" },
	{ "{\"model\":\"auto\"," MSG ",\"tools\":[{\"type\":\"code\"}]}",
	  RF_ERR_VALIDATION, "tools[0]" },
	{ "{\"model\":\"auto\"," MSG ",\"tools\":[{\"type\":\"function\","
	  "\"function\":{\"name\":\"bad name\"}}]}", RF_ERR_VALIDATION,
	  "tools[0]" },
	{ "{\"model\":\"auto\"," MSG ",\"tools\":[{\"type\":\"function\","
	  "\"function\":{\"name\":\"f\",\"parameters\":[]}}]}",
	  RF_ERR_VALIDATION, "tools[0]" },
	{ "{\"model\":\"auto\"," MSG ",\"tool_choice\":\"always\"}",
	  RF_ERR_VALIDATION, "tool_choice" },
	{ "{\"model\":\"auto\"," MSG ",\"tool_choice\":{\"type\":\"function\"}}",
	  RF_ERR_VALIDATION, "tool_choice" },
	{ "{\"model\":\"auto\"," MSG ",\"response_format\":\"json\"}",
	  RF_ERR_VALIDATION, "response_format" },
	{ "{\"model\":\"auto\"," MSG ",\"response_format\":{\"type\":\"xml\"}}",
	  RF_ERR_VALIDATION, "response_format.type" },
	{ "{\"model\":\"auto\"," MSG ",\"response_format\":{\"type\":"
	  "\"json_schema\"}}", RF_ERR_VALIDATION, "response_format.json_schema" },
	{ "{\"model\":\"auto\"," MSG ",\"response_format\":{\"type\":"
	  "\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":1}}}",
	  RF_ERR_VALIDATION, "response_format.json_schema" },
	{ "{\"model\":\"auto\"," MSG ",\"relayforge\":true}", RF_ERR_VALIDATION,
	  "relayforge" },
	{ "{\"model\":\"auto\"," MSG ",\"relayforge\":{\"fallback\":1}}",
	  RF_ERR_VALIDATION, "relayforge.fallback" },
	{ "{\"model\":\"auto\"," MSG ",\"relayforge\":{\"strategy\":\"x\"}}",
	  RF_ERR_VALIDATION, "relayforge.strategy" },
	/* well-formed text everywhere, keys too */
	{ "{\"model\":\"auto\"," MSG ",\"user\":\"\\ud800\"}", RF_ERR_VALIDATION,
	  "user" },
};

static void
test_refused(void **state)
{
	struct rf_chat_req req;
	struct rf_field_err fe;
	bool stream;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int rc = parse(refused[i].body, &req, &stream, &fe);

		if (rc != -1 || fe.code != refused[i].code ||
		    strcmp(fe.field, refused[i].param) != 0)
			fail_msg("body %zu %s: rc %d code %d field '%s' (%s)", i,
			    refused[i].body, rc, fe.code, fe.field, fe.message);
		assert_null(req.owner);
	}
}

/* ---- what a valid body becomes ---- */

static void
test_defaults_and_unknown_fields(void **state)
{
	struct rf_chat_req req;
	struct rf_field_err fe;
	bool stream = true;

	(void)state;
	assert_int_equal(parse("{\"model\":\"auto\"," MSG ",\"logprobs\":true,"
	    "\"store\":false,\"metadata\":{\"a\":\"b\"},\"n\":1,"
	    "\"temperature\":null,\"stream_options\":{\"include_usage\":true}}",
	    &req, &stream, &fe), 0);
	assert_false(stream);
	assert_false(req.include_usage); /* only meaningful for streams */
	assert_int_equal(req.max_tokens, 4096);
	assert_true(req.temperature == 1.0);
	assert_true(req.fallback);
	assert_int_equal(req.nmsgs, 1);
	assert_string_equal(req.msgs[0].role, "user");
	assert_string_equal(req.msgs[0].content, "hi");
	assert_int_equal(req.prompt_chars, 2);
	assert_non_null(req.oai.messages);
	assert_int_equal(json_object_object_length(req.oai.fields), 0);
	assert_false(req.oai.completion_tokens);
	rf_contract_free(&req);
}

static void
test_fields_passed_on(void **state)
{
	struct rf_chat_req req;
	struct rf_field_err fe;
	bool stream;
	json_object *f;
	const char *body = "{\"model\":\"groq\"," MSG ",\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true},\"max_tokens\":100,"
	    "\"max_completion_tokens\":200,\"temperature\":0.2,\"top_p\":0.9,"
	    "\"stop\":[\"END\"],\"seed\":7,\"presence_penalty\":0.5,"
	    "\"frequency_penalty\":-0.5,\"user\":\"u1\","
	    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_w\","
	    "\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"auto\","
	    "\"parallel_tool_calls\":false,\"response_format\":{\"type\":"
	    "\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":"
	    "{\"type\":\"object\"},\"strict\":true}},"
	    "\"relayforge\":{\"fallback\":false}}";

	(void)state;
	assert_int_equal(parse(body, &req, &stream, &fe), 0);
	assert_true(stream);
	assert_true(req.include_usage);
	assert_int_equal(req.max_tokens, 200);
	assert_true(req.oai.completion_tokens);
	assert_true(req.temperature == 0.2);
	assert_false(req.fallback);
	f = req.oai.fields;
	assert_string_equal(json_object_to_json_string_ext(f,
	    JSON_C_TO_STRING_PLAIN),
	    "{\"top_p\":0.9,\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,"
	    "\"seed\":7,\"stop\":[\"END\"],\"user\":\"u1\","
	    "\"parallel_tool_calls\":false,\"tools\":[{\"type\":\"function\","
	    "\"function\":{\"name\":\"get_w\",\"parameters\":{\"type\":"
	    "\"object\"}}}],\"tool_choice\":\"auto\",\"response_format\":"
	    "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\","
	    "\"schema\":{\"type\":\"object\"},\"strict\":true}}}");
	rf_contract_free(&req);
	/* an empty tools list is no tools */
	assert_int_equal(parse("{\"model\":\"auto\"," MSG ",\"tools\":[]}", &req,
	    &stream, &fe), 0);
	assert_int_equal(json_object_object_length(req.oai.fields), 0);
	rf_contract_free(&req);
}

static void
test_flat_view(void **state)
{
	struct rf_chat_req req;
	struct rf_field_err fe;
	bool stream;
	const char *body = "{\"model\":\"auto\",\"messages\":["
	    "{\"role\":\"developer\",\"content\":\"be brief\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
	    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;"
	    "base64,AAAA\"}},{\"type\":\"text\",\"text\":\"here\"}]},"
	    "{\"role\":\"assistant\",\"content\":null,\"refusal\":null,"
	    "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
	    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"}]}";

	(void)state;
	assert_int_equal(parse(body, &req, &stream, &fe), 0);
	assert_int_equal(req.nmsgs, 4);
	assert_string_equal(req.msgs[0].role, "system");
	assert_string_equal(req.msgs[0].content, "be brief");
	assert_string_equal(req.msgs[1].role, "user");
	assert_string_equal(req.msgs[1].content, "look\nhere");
	assert_string_equal(req.msgs[2].role, "assistant");
	assert_string_equal(req.msgs[2].content, "");
	assert_string_equal(req.msgs[3].role, "tool");
	assert_string_equal(req.msgs[3].content, "42");
	/* characters of every text the model reads */
	assert_int_equal(req.prompt_chars, 8 + 4 + 4 + 2);
	assert_int_equal(json_object_array_length(req.oai.messages), 4);
	rf_contract_free(&req);
}

/* Tool schemas nest deeper than /api/v1's bodies may. */
static void
test_depth(void **state)
{
	struct rf_chat_req req;
	struct rf_field_err fe;
	bool stream;
	struct rf_buf b = { 0 };

	(void)state;
	rf_buf_puts(&b, "{\"model\":\"auto\"," MSG ",\"tools\":[{\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"parameters\":");
	for (int i = 0; i < 20; i++)
		rf_buf_puts(&b, "{\"a\":");
	rf_buf_puts(&b, "1");
	for (int i = 0; i < 20; i++)
		rf_buf_puts(&b, "}");
	rf_buf_puts(&b, "}}]}");
	assert_int_equal(parse(rf_buf_str(&b), &req, &stream, &fe), 0);
	rf_contract_free(&req);
	rf_buf_reset(&b);
	for (int i = 0; i < 70; i++)
		rf_buf_puts(&b, "[");
	assert_int_equal(parse(rf_buf_str(&b), &req, &stream, &fe), -1);
	assert_int_equal(fe.code, RF_ERR_INVALID_JSON);
	rf_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_model_table, setup),
		cmocka_unit_test_setup(test_refused, setup),
		cmocka_unit_test_setup(test_defaults_and_unknown_fields, setup),
		cmocka_unit_test_setup(test_fields_passed_on, setup),
		cmocka_unit_test_setup(test_flat_view, setup),
		cmocka_unit_test_setup(test_depth, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
