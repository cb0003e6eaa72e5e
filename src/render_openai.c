/*
 * render_openai: the JSON shapes of the /v1 surface (docs/openai.md),
 * from the same struct rf_log_entry as /api/v1's (render.c): the meta an
 * OpenAI client finds under "relayforge" is the one /api/v1 answers with
 * and /logs shows.  Where OpenAI's shapes have a number and we know none
 * (usage an upstream did not report), they get 0, not null: typed
 * clients read these fields as integers; the meta keeps null.
 */
#include "render_openai.h"

#include <stdio.h>
#include <string.h>

#include "render.h"

/* "created" of every model: the models are routes, not releases, and
 * every process must list the same object (2025-01-01T00:00:00Z). */
#define MODELS_CREATED 1735689600

static void
add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

static json_object *
str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

const char *
rf_render_oai_type(int status)
{
	if (status == 401)
		return "authentication_error";
	if (status == 403)
		return "permission_error";
	if (status == 429)
		return "rate_limit_error";
	if (status >= 500)
		return "api_error";
	return "invalid_request_error";
}

json_object *
rf_render_oai_error(enum rf_err code, const char *message, const char *param)
{
	json_object *root = json_object_new_object();
	json_object *e = json_object_new_object();

	add(e, "message", json_object_new_string(message != NULL && *message ?
	    message : rf_err_message(code)));
	add(e, "type", json_object_new_string(rf_render_oai_type(
	    rf_err_status(code))));
	add(e, "param", str_or_null(param));
	add(e, "code", json_object_new_string(rf_err_code(code)));
	add(root, "error", e);
	return root;
}

/* ---- the answer and its chunks ---------------------------------------- */

static json_object *
chat_id(const struct rf_oai_head *h)
{
	char id[96];

	snprintf(id, sizeof(id), "chatcmpl-%s", h->request_id ? h->request_id :
	    "");
	return json_object_new_string(id);
}

/* id, object, created, model: the head of the answer and of each chunk. */
static json_object *
head_of(const struct rf_oai_head *h, const char *object)
{
	json_object *o = json_object_new_object();

	add(o, "id", chat_id(h));
	add(o, "object", json_object_new_string(object));
	add(o, "created", json_object_new_int64(h->created));
	add(o, "model", json_object_new_string(h->model ? h->model : ""));
	return o;
}

static json_object *
usage_of(const struct rf_log_entry *e)
{
	json_object *u = json_object_new_object();
	long p = e->prompt_tokens > 0 ? e->prompt_tokens : 0;
	long c = e->completion_tokens > 0 ? e->completion_tokens : 0;

	add(u, "prompt_tokens", json_object_new_int64(p));
	add(u, "completion_tokens", json_object_new_int64(c));
	add(u, "total_tokens", json_object_new_int64(p + c));
	return u;
}

/* The len bytes of JSON text of a tool_calls array (not necessarily
 * NUL-terminated) as a tree; NULL when empty, not JSON or not an array. */
static json_object *
tool_calls_of(const char *json, size_t len)
{
	struct json_tokener *tok;
	json_object *t = NULL;

	if (json == NULL || len == 0 || len > INT32_MAX ||
	    (tok = json_tokener_new()) == NULL)
		return NULL;
	t = json_tokener_parse_ex(tok, json, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(t);
		t = NULL;
	}
	json_tokener_free(tok);
	if (t != NULL && !json_object_is_type(t, json_type_array)) {
		json_object_put(t);
		t = NULL;
	}
	return t;
}

static const char *
finish_of(const struct rf_log_entry *e)
{
	return e->finish_reason != NULL ? e->finish_reason : "stop";
}

json_object *
rf_render_oai_completion(const struct rf_oai_head *h,
    const struct rf_log_entry *e, const char *text, size_t len,
    const char *tool_calls_json)
{
	json_object *o = head_of(h, "chat.completion");
	json_object *choice = json_object_new_object();
	json_object *msg = json_object_new_object();
	json_object *choices = json_object_new_array();
	json_object *calls = tool_calls_of(tool_calls_json, tool_calls_json ?
	    strlen(tool_calls_json) : 0);

	add(msg, "role", json_object_new_string("assistant"));
	add(msg, "content", len == 0 && calls != NULL ? NULL :
	    json_object_new_string_len(text != NULL ? text : "", (int)len));
	if (calls != NULL)
		add(msg, "tool_calls", calls);
	add(choice, "index", json_object_new_int(0));
	add(choice, "message", msg);
	add(choice, "finish_reason", json_object_new_string(finish_of(e)));
	add(choice, "logprobs", NULL);
	json_object_array_add(choices, choice);
	add(o, "choices", choices);
	add(o, "usage", usage_of(e));
	add(o, "relayforge", rf_render_meta(e, RF_META_CHAT));
	return o;
}

/* A chunk with one choice: delta (taken) and finish_reason (NULL: null). */
static json_object *
chunk(const struct rf_oai_head *h, json_object *delta, const char *finish)
{
	json_object *o = head_of(h, "chat.completion.chunk");
	json_object *choice = json_object_new_object();
	json_object *choices = json_object_new_array();

	add(choice, "index", json_object_new_int(0));
	add(choice, "delta", delta);
	add(choice, "finish_reason", str_or_null(finish));
	add(choice, "logprobs", NULL);
	json_object_array_add(choices, choice);
	add(o, "choices", choices);
	return o;
}

json_object *
rf_render_oai_chunk_role(const struct rf_oai_head *h)
{
	json_object *d = json_object_new_object();

	add(d, "role", json_object_new_string("assistant"));
	add(d, "content", json_object_new_string(""));
	return chunk(h, d, NULL);
}

json_object *
rf_render_oai_chunk_text(const struct rf_oai_head *h, const char *text,
    size_t len)
{
	json_object *d = json_object_new_object();

	add(d, "content", json_object_new_string_len(text, (int)len));
	return chunk(h, d, NULL);
}

json_object *
rf_render_oai_chunk_tools(const struct rf_oai_head *h, const char *json,
    size_t len)
{
	json_object *calls = tool_calls_of(json, len);
	json_object *d;

	if (calls == NULL)
		return NULL;
	d = json_object_new_object();
	add(d, "tool_calls", calls);
	return chunk(h, d, NULL);
}

json_object *
rf_render_oai_chunk_finish(const struct rf_oai_head *h,
    const struct rf_log_entry *e)
{
	json_object *o = chunk(h, json_object_new_object(), finish_of(e));

	add(o, "relayforge", rf_render_meta(e, RF_META_FINAL));
	return o;
}

json_object *
rf_render_oai_chunk_usage(const struct rf_oai_head *h,
    const struct rf_log_entry *e)
{
	json_object *o = head_of(h, "chat.completion.chunk");

	add(o, "choices", json_object_new_array());
	add(o, "usage", usage_of(e));
	return o;
}

/* ---- GET /v1/models ---------------------------------------------------- */

json_object *
rf_render_oai_model(const struct rf_oai_model *m)
{
	json_object *o = json_object_new_object();

	add(o, "id", json_object_new_string(m->id));
	add(o, "object", json_object_new_string("model"));
	add(o, "created", json_object_new_int64(MODELS_CREATED));
	add(o, "owned_by", json_object_new_string(m->owned_by));
	return o;
}

json_object *
rf_render_oai_models(const struct rf_oai_model *m, size_t n)
{
	json_object *o = json_object_new_object();
	json_object *data = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(data, rf_render_oai_model(&m[i]));
	add(o, "object", json_object_new_string("list"));
	add(o, "data", data);
	return o;
}
