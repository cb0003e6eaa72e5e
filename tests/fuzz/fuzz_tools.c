/*
 * fuzz_tools: libFuzzer target for the adapters' builders of a /v1
 * request (rf_prompt.oai: the client's messages and fields, which the
 * OpenAI wire passes on and the Gemini adapter translates, JSON Schema
 * included) and for the mock's tool calls.  The input is one JSON object
 * {"messages": [...], "fields": {...}}.  Beyond crashes it checks that
 * build answers 0, -1 or RF_BUILD_UNSUPPORTED, that a built body is one
 * JSON object, that a refused build leaves nothing to send, and that the
 * mock's tool calls are one JSON array.
 *
 * Build and run: make fuzz (FUZZ_TARGETS), or by hand as fuzz_openai.c
 * says, with tests/fuzz/corpus_tools.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"

static void
check_build(int pid, const char *model, const struct rf_prompt *p)
{
	const struct rf_provider *def = &rf_providers[pid];
	struct rf_provider_conf pc;
	struct rf_up_req rq;
	json_object *o;
	int rc;

	memset(&pc, 0, sizeof(pc));
	pc.id = def->id;
	pc.def = def;
	pc.url = (char *)"https://upstream.test/v1";
	pc.model = (char *)model;
	pc.key = (char *)"k-fuzz";
	rf_up_req_init(&rq); /* provider.c's: no libcurl linked */
	rc = def->ops->build(&pc, p, p->max_tokens & 1, &rq);
	if (rc != 0 && rc != -1 && rc != RF_BUILD_UNSUPPORTED)
		abort();
	if (rc != 0 && (rq.body.len != 0 || rq.url.len != 0 || rq.nhdrs != 0))
		abort();
	if (rc == 0) {
		o = rf_adapter_json(rq.body.data, rq.body.len);
		if (!json_object_is_type(o, json_type_object))
			abort();
		json_object_put(o);
	}
	rf_up_req_free(&rq); /* wipes and frees the header lines too */
}

static void
check_mock(const struct rf_prompt *p)
{
	struct rf_result res;
	struct rf_buf d = { 0 };
	json_object *o;

	rf_result_init(&res);
	rf_ops_mock.answer(p, &res);
	if (res.tool_calls.len > 0) {
		o = rf_adapter_json(res.tool_calls.data, res.tool_calls.len);
		if (!json_object_is_type(o, json_type_array) ||
		    rf_result_tool_deltas(&res, &d) != 0)
			abort();
		json_object_put(o);
	}
	rf_buf_free(&d);
	rf_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct rf_msg msgs[] = { { "user", "hi" } };
	struct rf_oai_params oai = { 0 };
	struct rf_prompt p = { .msgs = msgs, .nmsgs = 1, .temperature = 0.5,
	    .oai = &oai };
	json_object *root = rf_adapter_json((const char *)data, size);

	if (!json_object_is_type(root, json_type_object))
		goto out;
	oai.messages = rf_adapter_get(root, "messages");
	oai.fields = rf_adapter_get(root, "fields");
	oai.completion_tokens = size & 1;
	p.max_tokens = (int)(size % 1000) + 1;
	check_build(rf_config_pid("groq"), "llama-3.1-8b-instant", &p);
	check_build(rf_config_pid("sambanova"), "m", &p);
	check_build(rf_config_pid("gemini"), "gemini-2.5-flash-lite", &p);
	check_build(rf_config_pid("gemini"), "gemini-3-pro", &p);
	check_build(rf_config_pid("gemini"), "gemma-3-27b-it", &p);
	check_mock(&p);
out:
	json_object_put(root);
	return 0;
}
