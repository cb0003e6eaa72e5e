/*
 * contract: the request side of the wire contract.  Parses and validates
 * chat/stream request bodies (bounded JSON depth, strict UTF-8) into
 * struct rf_chat_req: /api/v1's (docs/api.md, src/contract.c) and the
 * OpenAI surface's POST /v1/chat/completions (docs/openai.md,
 * src/contract_openai.c).  After this module nothing reads raw request
 * JSON; the answers' shapes live in render.h and render_openai.h.
 * Prefix: rf_contract_.
 */
#ifndef RF_CONTRACT_H
#define RF_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "config.h"
#include "error.h"
#include "request.h"

#define RF_JSON_MAX_DEPTH 16
/* /v1 bodies carry tool and response-format JSON schemas, which nest
 * deeper than anything of /api/v1. */
#define RF_OAI_JSON_MAX_DEPTH 64

/* Why a request was refused: code (invalid_json, validation_error, or on
 * /v1 model_not_found), the field ("options.temperature", "prompt"), a
 * readable message. */
struct rf_field_err {
	enum rf_err code;
	char field[64];
	char message[200];
};

/* Parse body into req (req->owner keeps the JSON; free with
 * rf_contract_free).  Returns 0, or -1 with fe filled and req freed. */
int rf_contract_parse(const struct rf_config *cfg, const char *body,
    size_t len, struct rf_chat_req *req, struct rf_field_err *fe);
void rf_contract_free(struct rf_chat_req *req);

/* A POST /v1/chat/completions body (docs/openai.md) into req: the
 * routing of "model" (strategy, model_pid, upstream_model; a model no
 * route serves is model_not_found on "model"), the relayforge.fallback
 * extension, max_tokens (default RELAYFORGE_MAX_TOKENS_LIMIT) and
 * temperature (default 1), msgs[] as a flattened text view of the
 * messages (developer as system, text parts joined by newlines, no text
 * as ""), prompt_chars over all text content, include_usage, and oai: the
 * messages array and the set fields, borrowed from req->owner.  *stream
 * tells whether the client asked for a stream.  Returns 0, or -1 with fe
 * filled and req freed (rf_contract_free frees it either way). */
int rf_contract_parse_openai(const struct rf_config *cfg, const char *body,
    size_t len, struct rf_chat_req *req, bool *stream,
    struct rf_field_err *fe);

/* The shared front of both: body as one JSON value of at most depth
 * levels (strict grammar, only whitespace after it) whose every string,
 * keys included, is well-formed UTF-8.  0 with *root (the caller puts it;
 * NULL for a body of `null`), or -1 with fe filled (invalid_json, or
 * validation_error naming the field of a bad string) and *root NULL. */
int rf_contract_json(const char *body, size_t len, int depth,
    json_object **root, struct rf_field_err *fe);
/* Fill fe (the message from fmt, cut on a character boundary) and return
 * -1, so a check can end with `return rf_contract_refuse(...)`. */
int rf_contract_refuse(struct rf_field_err *fe, enum rf_err code,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
