/*
 * fuzz_contract: libFuzzer target for the request contract -- arbitrary
 * bytes as a chat/stream request body into rf_contract_parse, and as a
 * /v1 chat completions body into rf_contract_parse_openai, with the
 * configuration a responder gets from an empty environment (defaults: the
 * whole chain, the default prompt and token limits).  Beyond crashes and
 * leaks it checks the contract's promises: an accepted request satisfies
 * every rule the chain relies on (struct rf_chat_req in include/chain.h),
 * and a refused one names a known code with a short, terminated message and
 * leaves the request empty.
 *
 * The /v1 parser gets the same bytes (a second call), with its own
 * promises: msgs[] a flat view with known roles, the JSON passed on
 * present, a routed model naming a chain provider, and on refusal a code
 * of its own set (model_not_found added) with the request left empty.
 *
 * Build and run (from the repository root): `make fuzz` builds every target
 * with the rule's flags; by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_DEFAULT_SOURCE \
 *     -Iinclude tests/fuzz/fuzz_contract.c src/contract.c \
 *     src/contract_openai.c src/provider*.c \
 *     src/util.c src/error.c src/config.c src/log.c \
 *     $(pkg-config --cflags --libs json-c libcurl) -lm -o build/fuzz_contract
 *   build/fuzz_contract -max_total_time=20 build/corpus_contract \
 *     tests/fuzz/corpus_contract
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "contract.h"
#include "error.h"
#include "util.h"

#define SOURCE_MAX 64 /* metadata.source, in characters (docs/api.md) */

extern char **environ;

static struct rf_config cfg;

/* Drop every variable rf_config_load reads (RELAYFORGE_*, <P>_API_KEY), so
 * the fuzzer sees the defaults whatever the shell exports.  PATH and the
 * sanitizers' own variables stay (the symbolizer needs them). */
static void
clear_config_env(void)
{
	char *names[512];
	size_t n = 0;

	for (char **e = environ; *e != NULL && n < 512; e++) {
		const char *eq = strchr(*e, '=');
		size_t len = eq != NULL ? (size_t)(eq - *e) : strlen(*e);

		if (strncmp(*e, "RELAYFORGE_", 11) == 0 || (len > 8 &&
		    strncmp(*e + len - 8, "_API_KEY", 8) == 0))
			names[n++] = strndup(*e, len);
	}
	for (size_t i = 0; i < n; i++) {
		unsetenv(names[i]);
		free(names[i]);
	}
}

static void
check_accepted(const struct rf_chat_req *req)
{
	if (req->owner == NULL || req->nmsgs < 1 ||
	    req->nmsgs > RF_MAX_MESSAGES)
		abort();
	for (size_t i = 0; i < req->nmsgs; i++)
		if (req->msgs[i].role == NULL || req->msgs[i].content == NULL ||
		    (strcmp(req->msgs[i].role, "system") != 0 &&
		    strcmp(req->msgs[i].role, "user") != 0 &&
		    strcmp(req->msgs[i].role, "assistant") != 0))
			abort();
	if (strcmp(req->msgs[req->nmsgs - 1].role, "user") != 0)
		abort();
	if (req->prompt_chars < 0 || req->prompt_chars > cfg.max_prompt_chars)
		abort();
	if (req->strategy != -1 && rf_config_chain_pos(&cfg, req->strategy) < 0)
		abort();
	if (req->max_tokens < 1 || req->max_tokens > cfg.max_tokens_limit)
		abort();
	if (!isfinite(req->temperature) || req->temperature < 0.0 ||
	    req->temperature > 2.0)
		abort();
	if (req->source != NULL &&
	    rf_utf8_len(req->source, strlen(req->source)) > SOURCE_MAX)
		abort();
}

static void
check_refused(const struct rf_chat_req *req, const struct rf_field_err *fe)
{
	if (fe->code != RF_ERR_INVALID_JSON && fe->code != RF_ERR_VALIDATION &&
	    fe->code != RF_ERR_INTERNAL)
		abort();
	if (memchr(fe->field, '\0', sizeof(fe->field)) == NULL ||
	    memchr(fe->message, '\0', sizeof(fe->message)) == NULL ||
	    fe->message[0] == '\0')
		abort();
	if (req->owner != NULL || req->nmsgs != 0)
		abort();
}

/* What an accepted /v1 body promises the engine and the adapters. */
static void
check_accepted_oai(const struct rf_chat_req *req)
{
	static const char *const roles[] = { "system", "user", "assistant",
	    "tool" };

	if (req->owner == NULL || req->nmsgs < 1 ||
	    req->nmsgs > RF_MAX_MESSAGES || req->oai.messages == NULL ||
	    req->oai.fields == NULL)
		abort();
	for (size_t i = 0; i < req->nmsgs; i++) {
		size_t k = 0;

		if (req->msgs[i].role == NULL || req->msgs[i].content == NULL)
			abort();
		while (k < 4 && strcmp(req->msgs[i].role, roles[k]) != 0)
			k++;
		if (k == 4)
			abort();
	}
	if (req->prompt_chars < 0 || req->prompt_chars > cfg.max_prompt_chars)
		abort();
	if (req->strategy != -1 && rf_config_chain_pos(&cfg, req->strategy) < 0)
		abort();
	if (req->model_pid != -1 && (req->model_pid != req->strategy ||
	    req->upstream_model == NULL || req->upstream_model[0] == '\0' ||
	    strlen(req->upstream_model) > 127))
		abort();
	if (req->max_tokens < 1 || req->max_tokens > cfg.max_tokens_limit)
		abort();
	if (!isfinite(req->temperature) || req->temperature < 0.0 ||
	    req->temperature > 2.0)
		abort();
}

static void
check_refused_oai(const struct rf_chat_req *req, const struct rf_field_err *fe)
{
	if (fe->code == RF_ERR_MODEL_NOT_FOUND) {
		if (strcmp(fe->field, "model") != 0)
			abort();
	} else if (fe->code != RF_ERR_INVALID_JSON &&
	    fe->code != RF_ERR_VALIDATION && fe->code != RF_ERR_INTERNAL)
		abort();
	if (memchr(fe->field, '\0', sizeof(fe->field)) == NULL ||
	    memchr(fe->message, '\0', sizeof(fe->message)) == NULL ||
	    fe->message[0] == '\0')
		abort();
	if (req->owner != NULL || req->nmsgs != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static int loaded;
	struct rf_chat_req req;
	struct rf_field_err fe;
	char err[256];
	bool stream;

	if (!loaded) {
		clear_config_env();
		if (rf_config_load(&cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "fuzz_contract: config: %s\n", err);
			abort();
		}
		loaded = 1;
	}
	/* libFuzzer's buffer ends exactly at n: the front door's body is
	 * NUL-terminated, but the parser must not read past len. */
	if (rf_contract_parse(&cfg, (const char *)d, n, &req, &fe) == 0) {
		check_accepted(&req);
		rf_contract_free(&req);
	} else
		check_refused(&req, &fe);
	if (rf_contract_parse_openai(&cfg, (const char *)d, n, &req, &stream,
	    &fe) == 0) {
		check_accepted_oai(&req);
		rf_contract_free(&req);
	} else
		check_refused_oai(&req, &fe);
	return 0;
}
