/*
 * provider_openai: the OpenAI-compatible chat completions wire format
 * (rf_ops_openai) and the providers that speak it: Groq, SambaNova,
 * Cerebras and OpenRouter (providers.md sections 1-4 and 6), one const
 * struct rf_provider each at the end of the file.  What differs between
 * them in the request is data in their struct (the name of the max-tokens
 * field, OpenRouter's attribution header); what differs in the answers is
 * read by one tolerant reader: Groq's x_groq usage and error, Cerebras'
 * flat error body and status_code, SambaNova's "event: error", OpenRouter's
 * finish_reason "error".  No I/O: requests are built as text and bodies
 * are read from memory.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"

/* ---- building the request ---- */

static void
add_msg(json_object *arr, const char *role, const char *content)
{
	json_object *m = json_object_new_object();

	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "content",
	    json_object_new_string(content != NULL ? content : ""));
	json_object_array_add(arr, m);
}

static json_object *
openai_body(const struct rf_provider_conf *pc, const struct rf_prompt *p,
    bool stream)
{
	json_object *root = json_object_new_object();
	json_object *msgs = json_object_new_array();
	json_object *so;
	size_t i;

	if (p->system != NULL)
		add_msg(msgs, "system", p->system);
	for (i = 0; i < p->nmsgs; i++)
		add_msg(msgs, p->msgs[i].role, p->msgs[i].content);
	json_object_object_add(root, "model", json_object_new_string(pc->model));
	json_object_object_add(root, "messages", msgs);
	json_object_object_add(root, pc->def->max_tokens_field != NULL ?
	    pc->def->max_tokens_field : "max_tokens",
	    json_object_new_int(p->max_tokens));
	json_object_object_add(root, "temperature",
	    rf_adapter_number(p->temperature));
	json_object_object_add(root, "stream", json_object_new_boolean(stream));
	if (stream) {
		/* Usage in the final chunk, so the final meta has tokens. */
		so = json_object_new_object();
		json_object_object_add(so, "include_usage",
		    json_object_new_boolean(1));
		json_object_object_add(root, "stream_options", so);
	}
	return root;
}

static int
openai_headers(const struct rf_provider_conf *pc, bool stream,
    struct rf_up_req *rq)
{
	char auth[512];
	int n;

	if (rf_adapter_header(rq, "Content-Type", "application/json") != 0 ||
	    rf_adapter_header(rq, "Expect", "") != 0) /* no 100-continue wait */
		return -1;
	if (pc->key != NULL && pc->key[0] != '\0') {
		n = snprintf(auth, sizeof(auth), "Bearer %s", pc->key);
		if (n < 0 || (size_t)n >= sizeof(auth) ||
		    rf_adapter_header(rq, "Authorization", auth) != 0)
			n = -1;
		explicit_bzero(auth, sizeof(auth));
		if (n == -1)
			return -1;
	}
	if (stream && rf_adapter_header(rq, "Accept", "text/event-stream") != 0)
		return -1;
	if (pc->def->extra_header.name != NULL &&
	    rf_adapter_header(rq, pc->def->extra_header.name,
	    pc->def->extra_header.value) != 0)
		return -1;
	return 0;
}

static int
openai_build(const struct rf_provider_conf *pc, const struct rf_prompt *p,
    bool stream, struct rf_up_req *rq)
{
	json_object *root = NULL;
	int rc = -1;

	rf_adapter_req_clear(rq);
	if (rf_buf_printf(&rq->url, "%s/chat/completions", pc->url) != 0)
		goto out;
	root = openai_body(pc, p, stream);
	if (rf_adapter_json_out(root, &rq->body) != 0)
		goto out;
	if (openai_headers(pc, stream, rq) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		rf_adapter_req_clear(rq);
	json_object_put(root);
	return rc;
}

/* ---- errors inside bodies ---- */

/* The error object of a body: {"error":{...}}, or Cerebras' flat
 * {message,type,code} when there are no choices.  NULL when none. */
static json_object *
error_obj(json_object *root)
{
	json_object *e;

	if (!json_object_is_type(root, json_type_object))
		return NULL;
	if (json_object_object_get_ex(root, "error", &e) &&
	    json_object_is_type(e, json_type_object))
		return e;
	if (!json_object_object_get_ex(root, "choices", NULL) &&
	    rf_adapter_str(root, "message") != NULL &&
	    (json_object_object_get_ex(root, "type", NULL) ||
	    json_object_object_get_ex(root, "code", NULL)))
		return root;
	return NULL;
}

/* true when a 200 body or a chunk says it failed. */
static bool
has_error(json_object *root)
{
	json_object *e;

	if (error_obj(root) != NULL || rf_adapter_str(root, "x_groq.error"))
		return true;
	return json_object_object_get_ex(root, "error", &e) &&
	    !json_object_is_type(e, json_type_null);
}

static bool
rate_word(const char *s)
{
	return rf_adapter_has(s, "rate_limit") || rf_adapter_has(s, "quota") ||
	    rf_adapter_has(s, "queue_exceeded") ||
	    rf_adapter_has(s, "queue_full") || rf_adapter_has(s, "too_many");
}

/* An error inside a 2xx answer: rate limited when it says 429 or names a
 * rate limit or quota, else the provider is unavailable.  *code gets a
 * string code for technicalDetails (NULL when none). */
static enum rf_err
inbody_err(json_object *root, const char **code)
{
	json_object *e = error_obj(root);
	long n;

	*code = rf_adapter_str(e, "code");
	if ((rf_adapter_long(root, "status_code", &n) && n == 429) ||
	    (rf_adapter_long(e, "code", &n) && n == 429))
		return RF_ERR_PROVIDER_RATE_LIMITED;
	if (rate_word(*code) || rate_word(rf_adapter_str(e, "type")) ||
	    rate_word(rf_adapter_str(e, "metadata.error_type")))
		return RF_ERR_PROVIDER_RATE_LIMITED;
	return RF_ERR_PROVIDER_UNAVAILABLE;
}

static void
inbody_failure(json_object *root, struct rf_failure *f, const char *what)
{
	const char *code;
	enum rf_err e = inbody_err(root, &code);

	rf_failure_set(f, e, NULL);
	if (rf_adapter_safe_code(code))
		snprintf(f->details, sizeof(f->details), "%s, code %s", what,
		    code);
	else
		snprintf(f->details, sizeof(f->details), "%s", what);
}

/* ---- the non-streaming answer ---- */

static void
set_finish(struct rf_result *res, const char *fr)
{
	rf_adapter_copy(res->finish_reason, sizeof(res->finish_reason), fr);
	if (fr != NULL && strcmp(fr, "content_filter") == 0) {
		res->safety_block = true;
		rf_adapter_copy(res->safety_reason, sizeof(res->safety_reason),
		    "content_filter");
	}
}

/* Keep the last non-null figures (usage may arrive in pieces). */
static void
read_usage(json_object *u, struct rf_usage *usage)
{
	long n;

	if (rf_adapter_long(u, "prompt_tokens", &n) && n >= 0)
		usage->prompt_tokens = n;
	if (rf_adapter_long(u, "completion_tokens", &n) && n >= 0)
		usage->completion_tokens = n;
}

static int
read_message(json_object *root, struct rf_result *res, struct rf_failure *f)
{
	json_object *choice = rf_adapter_get(root, "choices[0]");
	json_object *msg, *content = NULL;
	const char *fr;

	if (!json_object_is_type(choice, json_type_object)) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE, "missing choices[0]");
		return -1;
	}
	fr = rf_adapter_str(choice, "finish_reason");
	if (fr != NULL && strcmp(fr, "error") == 0) {
		rf_failure_set(f, RF_ERR_PROVIDER_UNAVAILABLE, "finish_reason error");
		return -1;
	}
	msg = rf_adapter_get(choice, "message");
	if (!json_object_is_type(msg, json_type_object)) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE,
		    "missing choices[0].message");
		return -1;
	}
	/* null or "" is an empty answer (the chain decides); reasoning is
	 * never the answer. */
	json_object_object_get_ex(msg, "content", &content);
	if (content != NULL && !json_object_is_type(content, json_type_null) &&
	    !json_object_is_type(content, json_type_string)) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE,
		    "choices[0].message.content is not a string");
		return -1;
	}
	if (json_object_is_type(content, json_type_string) &&
	    rf_buf_append(&res->text, json_object_get_string(content),
	    (size_t)json_object_get_string_len(content)) != 0) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE,
		    "choices[0].message.content too large");
		return -1;
	}
	set_finish(res, fr);
	return 0;
}

static int
openai_parse_response(const char *body, size_t len, struct rf_result *res,
    struct rf_failure *f)
{
	json_object *root = rf_adapter_json(body, len);
	int rc = -1;

	if (!json_object_is_type(root, json_type_object)) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE,
		    "response is not a JSON object");
		goto out;
	}
	if (has_error(root)) {
		inbody_failure(root, f, "error object in 200 response");
		goto out;
	}
	if (read_message(root, res, f) != 0)
		goto out;
	rf_adapter_copy(res->model, sizeof(res->model),
	    rf_adapter_str(root, "model"));
	read_usage(rf_adapter_get(root, "usage"), &res->usage);
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

/* ---- stream chunks ---- */

static bool
is_done(const char *data, size_t len)
{
	while (len > 0 && strchr(" \t\r\n", data[len - 1]) && data[len - 1])
		len--;
	while (len > 0 && strchr(" \t\r\n", data[0]) && data[0])
		data++, len--;
	return len == 6 && memcmp(data, "[DONE]", 6) == 0;
}

/* The delta of choices[0]; MALFORMED before any side effect when the
 * chunk is not the provider's shape.  No choices (or []) is a usage-only
 * or keep-alive chunk. */
static enum rf_chunk
chunk_choice(json_object *root, struct rf_result *acc, struct rf_buf *delta,
    struct rf_failure *f)
{
	json_object *choices, *c0, *d, *content = NULL;
	const char *fr;

	if (!json_object_object_get_ex(root, "choices", &choices) ||
	    json_object_is_type(choices, json_type_null))
		return RF_CHUNK_DATA;
	if (!json_object_is_type(choices, json_type_array))
		return RF_CHUNK_MALFORMED;
	if (json_object_array_length(choices) == 0)
		return RF_CHUNK_DATA;
	c0 = json_object_array_get_idx(choices, 0);
	if (!json_object_is_type(c0, json_type_object))
		return RF_CHUNK_MALFORMED;
	if (json_object_object_get_ex(c0, "delta", &d) &&
	    json_object_is_type(d, json_type_object))
		json_object_object_get_ex(d, "content", &content);
	else if (d != NULL && !json_object_is_type(d, json_type_null))
		return RF_CHUNK_MALFORMED;
	if (content != NULL && !json_object_is_type(content, json_type_null) &&
	    !json_object_is_type(content, json_type_string))
		return RF_CHUNK_MALFORMED;
	if (json_object_is_type(content, json_type_string) &&
	    rf_buf_append(delta, json_object_get_string(content),
	    (size_t)json_object_get_string_len(content)) != 0) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE, "stream text too large");
		return RF_CHUNK_ERROR;
	}
	if ((fr = rf_adapter_str(c0, "finish_reason")) == NULL)
		return RF_CHUNK_DATA;
	set_finish(acc, fr);
	if (strcmp(fr, "error") == 0) {
		rf_failure_set(f, RF_ERR_PROVIDER_UNAVAILABLE, "finish_reason error");
		return RF_CHUNK_ERROR;
	}
	return RF_CHUNK_DATA;
}

static void
chunk_meta(json_object *root, struct rf_result *acc)
{
	json_object *u = rf_adapter_get(root, "usage");

	if (acc->model[0] == '\0')
		rf_adapter_copy(acc->model, sizeof(acc->model),
		    rf_adapter_str(root, "model"));
	if (!json_object_is_type(u, json_type_object))
		u = rf_adapter_get(root, "x_groq.usage");
	read_usage(u, &acc->usage);
}

static enum rf_chunk
openai_parse_chunk(const char *event, const char *data, size_t len,
    struct rf_result *acc, struct rf_buf *delta, struct rf_failure *f)
{
	json_object *root;
	enum rf_chunk rc;

	if (is_done(data, len))
		return RF_CHUNK_DONE;
	root = rf_adapter_json(data, len);
	if (event != NULL && strcmp(event, "error") == 0) {
		/* SambaNova / Cerebras: whatever the payload, it failed. */
		inbody_failure(root, f, "in-stream error event");
		rc = RF_CHUNK_ERROR;
	} else if (!json_object_is_type(root, json_type_object)) {
		rc = RF_CHUNK_MALFORMED;
	} else if (has_error(root)) {
		inbody_failure(root, f, "in-stream error");
		rc = RF_CHUNK_ERROR;
	} else {
		rc = chunk_choice(root, acc, delta, f);
		if (rc != RF_CHUNK_MALFORMED)
			chunk_meta(root, acc);
	}
	json_object_put(root);
	return rc;
}

/* ---- non-2xx answers ---- */

static bool
policy_word(const char *s)
{
	return rf_adapter_has(s, "content_policy") ||
	    rf_adapter_has(s, "content_filter");
}

/* Groq: "... Please try again in 2m39.5s. ..." */
static int64_t
groq_retry(const char *msg)
{
	const char *p = msg != NULL ? strstr(msg, "try again in ") : NULL;

	return p != NULL ? rf_adapter_unit_duration(p + 13, NULL) : -1;
}

static void
openai_classify(long status, const char *body, size_t len,
    struct rf_failure *f)
{
	json_object *root = rf_adapter_json(body, len);
	json_object *err = error_obj(root);
	const char *code = rf_adapter_str(err, "code");
	enum rf_err e = rf_adapter_status_err(status);

	/* A content-policy refusal is final, not our bug (SPEC section 5). */
	if (status == 400 && (policy_word(code) ||
	    policy_word(rf_adapter_str(err, "type"))))
		e = RF_ERR_CONTENT_FILTERED;
	/* OpenRouter moderation 403s are refusals, not bad keys. */
	if (status == 403 && (rf_adapter_get(err, "metadata.flagged_input") ||
	    rf_adapter_get(err, "metadata.reasons")))
		e = RF_ERR_CONTENT_FILTERED;
	rf_adapter_http_failure(f, e, status, code);
	f->auth = e == RF_ERR_PROVIDER_AUTH;
	if (e == RF_ERR_CONTENT_FILTERED)
		rf_adapter_policy_message(f, rf_adapter_str(err, "message"));
	if (e == RF_ERR_PROVIDER_RATE_LIMITED)
		f->retry_after_ms = groq_retry(rf_adapter_str(err, "message"));
	json_object_put(root);
}

/* ---- the wire (its providers are entries of src/catalog.c) ---- */

const struct rf_provider_ops rf_ops_openai = {
	.build = openai_build,
	.parse_response = openai_parse_response,
	.parse_chunk = openai_parse_chunk,
	.classify_error = openai_classify,
};
