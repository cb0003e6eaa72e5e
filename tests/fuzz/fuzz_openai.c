/*
 * fuzz_openai: libFuzzer target for the adapters' readers of upstream JSON
 * bodies (parse_response, parse_chunk, classify_error of the OpenAI-
 * compatible and Gemini adapters).  Beyond crashes it checks that
 * technicalDetails stay short and printable, that a malformed chunk
 * leaves the delta and the tool-call delta untouched, and that tool calls
 * that come out are one JSON array.
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_DEFAULT_SOURCE \
 *     -Iinclude tests/fuzz/fuzz_openai.c src/provider*.c src/util.c \
 *     src/error.c src/catalog.c src/config.c $(pkg-config --cflags --libs json-c) \
 *     -o build/fuzz_openai
 *   mkdir -p build/corpus_openai
 *   build/fuzz_openai -max_total_time=20 build/corpus_openai tests/fuzz/corpus_openai
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"

static void
check_failure(const struct rf_failure *f)
{
	const char *s;

	for (s = f->details; *s != '\0'; s++)
		if (*s < 0x20 || *s >= 0x7f)
			abort();
	if (strlen(f->details) >= sizeof(f->details) ||
	    strlen(f->message) >= sizeof(f->message))
		abort();
}

/* Tool calls that came out are one JSON array (or nothing). */
static void
check_calls(const struct rf_buf *b)
{
	json_object *o;

	if (b->len == 0)
		return;
	o = rf_adapter_json(b->data, b->len);
	if (!json_object_is_type(o, json_type_array))
		abort();
	json_object_put(o);
}

static void
one(const struct rf_provider_ops *ad, const char *d, size_t n, long status)
{
	struct rf_result res;
	struct rf_buf delta, tools;
	struct rf_failure f;
	enum rf_chunk k;

	rf_result_init(&res);
	if (ad->parse_response(d, n, &res, &f) != 0)
		check_failure(&f);
	else
		check_calls(&res.tool_calls);
	rf_result_reset(&res);
	rf_buf_init(&delta, 1 << 20);
	rf_buf_init(&tools, 1 << 20);
	k = ad->parse_chunk(NULL, d, n, &res, &delta, &tools, &f);
	if (k == RF_CHUNK_MALFORMED && (delta.len != 0 || tools.len != 0))
		abort();
	if (k == RF_CHUNK_ERROR)
		check_failure(&f);
	if (k == RF_CHUNK_DATA)
		check_calls(&tools);
	ad->parse_chunk("error", d, n, &res, &delta, &tools, &f);
	check_failure(&f);
	ad->classify_error(status, d, n, &f);
	check_failure(&f);
	rf_buf_free(&delta);
	rf_buf_free(&tools);
	rf_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const long statuses[] = { 400, 401, 403, 404, 408, 429, 500,
	    503, 504, 302 };
	long status = statuses[n > 0 ? d[0] % 10 : 0];
	char *s = malloc(n + 1);

	/* The adapters get NUL-terminated data, as the SSE parser gives it. */
	memcpy(s, d, n);
	s[n] = '\0';
	one(&rf_ops_openai, s, n, status);
	one(&rf_ops_gemini, s, n, status);
	free(s);
	return 0;
}
