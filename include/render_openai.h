/*
 * render_openai: every JSON shape of the OpenAI-compatible surface (/v1,
 * docs/openai.md) -- the error object, the chat.completion answer, the
 * chat.completion.chunk of a stream, the model list.  Like render.h it
 * builds json-c trees from product values (a request's struct
 * rf_log_entry, whose meta it embeds as "relayforge" through render.h)
 * and never writes a byte.  Prefix: rf_render_oai_.
 *
 * Ownership: every function returns a new reference the caller puts (or
 * hands to a function that takes it).
 */
#ifndef RF_RENDER_OPENAI_H
#define RF_RENDER_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "error.h"
#include "store.h"

/* The "type" OpenAI clients read from an error of this HTTP status:
 * invalid_request_error (400, 404, 405, 413, 415, 422 ...),
 * authentication_error (401), permission_error (403), rate_limit_error
 * (429), api_error (5xx).  Static text. */
const char *rf_render_oai_type(int status);

/* {"error": {"message", "type", "param", "code"}}: code's wire name, the
 * type of its status (rf_render_oai_type), message NULL = the code's
 * default, param NULL = JSON null. */
json_object *rf_render_oai_error(enum rf_err code, const char *message,
    const char *param);

/* What every chunk of one stream, and the answer, repeat. */
struct rf_oai_head {
	const char *request_id; /* "chatcmpl-" + this is the id */
	int64_t created;        /* unix seconds */
	const char *model;      /* the upstream model that answers */
};

/* The chat.completion object: one choice whose message has the text
 * (content null when there is none and tool_calls_json is set), the
 * tool calls (tool_calls_json: the JSON text of an OpenAI tool_calls
 * array, or NULL / "" for none), finish_reason and logprobs null; usage
 * (unknown counts as 0), and "relayforge": the chat meta of e. */
json_object *rf_render_oai_completion(const struct rf_oai_head *h,
    const struct rf_log_entry *e, const char *text, size_t len,
    const char *tool_calls_json);

/* chat.completion.chunk objects of a stream. */
/* The first: delta {"role": "assistant", "content": ""}. */
json_object *rf_render_oai_chunk_role(const struct rf_oai_head *h);
/* delta {"content": text}. */
json_object *rf_render_oai_chunk_text(const struct rf_oai_head *h,
    const char *text, size_t len);
/* delta {"tool_calls": <json>}: the JSON text of an OpenAI tool_calls
 * delta array; NULL when it is not one. */
json_object *rf_render_oai_chunk_tools(const struct rf_oai_head *h,
    const char *json, size_t len);
/* The last choice chunk: an empty delta and finish_reason, with the final
 * meta of e as "relayforge". */
json_object *rf_render_oai_chunk_finish(const struct rf_oai_head *h,
    const struct rf_log_entry *e);
/* stream_options.include_usage: "choices": [] and usage. */
json_object *rf_render_oai_chunk_usage(const struct rf_oai_head *h,
    const struct rf_log_entry *e);

/* One entry of GET /v1/models. */
struct rf_oai_model {
	const char *id;       /* "auto", "groq", "groq/llama-3.1-8b-instant" */
	const char *owned_by; /* "relayforge" or the provider id */
};
/* {"id", "object": "model", "created", "owned_by"}. */
json_object *rf_render_oai_model(const struct rf_oai_model *m);
/* {"object": "list", "data": [...]}. */
json_object *rf_render_oai_models(const struct rf_oai_model *m, size_t n);

#endif
