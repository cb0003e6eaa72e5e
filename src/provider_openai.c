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
 *
 * A /v1 request (rf_prompt.oai) is passed on as the client gave it: its
 * messages (part arrays, assistant tool_calls, tool messages) and fields
 * (tools, tool_choice, response_format, stop, seed, ...), with two
 * documented changes: a developer message goes as system, and a provider
 * with flat_text_parts gets text-only part arrays as one string.  Answers
 * come back with their tool calls: the whole array for chat, every
 * streamed fragment as an OpenAI delta with its index (docs/providers.md,
 * "Tools and formats per wire").
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

/* A /v1 message as given, except: a developer message goes as system (no
 * provider of this wire documents the developer role; Cerebras says its
 * system role already acts at developer level), and with flat_text_parts
 * a content of text parts only goes as one string. */
static json_object *
oai_msg(const struct rf_provider *def, json_object *m, struct rf_buf *scratch)
{
	const char *role = rf_adapter_str(m, "role");
	json_object *content = rf_adapter_get(m, "content"), *out;
	bool dev = role != NULL && strcmp(role, "developer") == 0;
	bool flat = def->flat_text_parts &&
	    json_object_is_type(content, json_type_array) &&
	    rf_adapter_content_text(content, scratch) != NULL;

	if (!dev && !flat)
		return json_object_get(m);
	out = json_object_new_object();
	json_object_object_foreach(m, key, val) {
		if (dev && strcmp(key, "role") == 0)
			val = json_object_new_string("system");
		else if (flat && strcmp(key, "content") == 0)
			val = json_object_new_string(rf_buf_str(scratch));
		else
			val = json_object_get(val);
		json_object_object_add(out, key, val);
	}
	return out;
}

static json_object *
oai_messages(const struct rf_provider *def, json_object *messages)
{
	json_object *arr = json_object_new_array();
	struct rf_buf scratch = { 0 };
	size_t i, n;

	n = json_object_is_type(messages, json_type_array) ?
	    json_object_array_length(messages) : 0;
	for (i = 0; i < n; i++)
		json_object_array_add(arr, oai_msg(def, json_object_array_get_idx(
		    messages, i), &scratch));
	rf_buf_free(&scratch);
	return arr;
}

static json_object *
plain_messages(const struct rf_prompt *p)
{
	json_object *msgs = json_object_new_array();
	size_t i;

	if (p->system != NULL)
		add_msg(msgs, "system", p->system);
	for (i = 0; i < p->nmsgs; i++)
		add_msg(msgs, p->msgs[i].role, p->msgs[i].content);
	return msgs;
}

/* The max-tokens field: the provider's own for /api/v1.  A /v1 client's
 * name is kept -- every provider of this wire takes max_tokens -- except
 * that max_completion_tokens goes as max_tokens to a provider whose field
 * is max_tokens (SambaNova, OpenRouter document only that one). */
static const char *
max_field(const struct rf_provider *def, const struct rf_prompt *p)
{
	const char *own = def->max_tokens_field != NULL ?
	    def->max_tokens_field : "max_tokens";

	if (p->oai == NULL)
		return own;
	return p->oai->completion_tokens ? own : "max_tokens";
}

static json_object *
openai_body(const struct rf_provider_conf *pc, const struct rf_prompt *p,
    bool stream)
{
	json_object *root = json_object_new_object();
	json_object *so;

	json_object_object_add(root, "model", json_object_new_string(
	    p->model != NULL ? p->model : pc->model));
	json_object_object_add(root, "messages", p->oai != NULL ?
	    oai_messages(pc->def, p->oai->messages) : plain_messages(p));
	json_object_object_add(root, max_field(pc->def, p),
	    json_object_new_int(p->max_tokens));
	json_object_object_add(root, "temperature",
	    rf_adapter_number(p->temperature));
	if (p->oai != NULL && json_object_is_type(p->oai->fields,
	    json_type_object)) {
		json_object_object_foreach(p->oai->fields, key, val)
			json_object_object_add(root, key, json_object_get(val));
	}
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

/* A call made whole: an id (call_<i> when the provider gave none), type
 * function, its name and arguments string.  NULL when one is missing. */
static json_object *
make_call(const char *id, const char *name, json_object *argv, size_t i)
{
	const char *args = rf_adapter_tool_args(argv);
	char gen[32];

	if (name == NULL || args == NULL)
		return NULL;
	if (id == NULL || id[0] == '\0') {
		snprintf(gen, sizeof(gen), "call_%zu", i);
		id = gen;
	}
	return rf_adapter_tool_call(-1, id, name, args);
}

/* message.tool_calls (or the legacy message.function_call) made whole:
 * an array, empty when there are none; NULL when not that shape. */
static json_object *
whole_calls(json_object *msg)
{
	json_object *calls = rf_adapter_get(msg, "tool_calls");
	json_object *legacy = rf_adapter_get(msg, "function_call");
	json_object *arr = json_object_new_array(), *c, *o;
	const char *type;
	size_t i, n;

	if (json_object_is_type(calls, json_type_array)) {
		n = json_object_array_length(calls);
		if (n > RF_ADAPTER_MAX_TOOL_CALLS)
			goto bad;
		for (i = 0; i < n; i++) {
			c = json_object_array_get_idx(calls, i);
			type = rf_adapter_str(c, "type");
			if ((type != NULL && strcmp(type, "function") != 0) ||
			    (o = make_call(rf_adapter_str(c, "id"),
			    rf_adapter_str(c, "function.name"),
			    rf_adapter_get(c, "function.arguments"), i)) == NULL)
				goto bad;
			json_object_array_add(arr, o);
		}
	} else if (calls != NULL && !json_object_is_type(calls, json_type_null)) {
		goto bad;
	} else if (json_object_is_type(legacy, json_type_object)) {
		if ((o = make_call(NULL, rf_adapter_str(legacy, "name"),
		    rf_adapter_get(legacy, "arguments"), 0)) == NULL)
			goto bad;
		json_object_array_add(arr, o);
	}
	return arr;
bad:
	json_object_put(arr);
	return NULL;
}

/* The answer's tool calls into res.  0, or -1 with f filled. */
static int
read_tool_calls(json_object *msg, struct rf_result *res, struct rf_failure *f)
{
	json_object *arr = whole_calls(msg);
	int rc = -1;

	if (arr == NULL)
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE,
		    "choices[0].message.tool_calls is not the expected shape");
	else if (json_object_array_length(arr) == 0)
		rc = 0;
	else if (rf_adapter_json_out(arr, &res->tool_calls) != 0)
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE,
		    "choices[0].message.tool_calls too large");
	else {
		res->ntool_calls = (int)json_object_array_length(arr);
		rc = 0;
	}
	json_object_put(arr);
	return rc;
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
	if (read_tool_calls(msg, res, f) != 0)
		return -1;
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

/*
 * One element of delta.tool_calls as ours: its index (given, or inferred
 * when a provider leaves it out: an element with an id starts the next
 * call, one without continues the last), then the id (call_<index> when
 * a new call has none), type and name on a call's first delta only --
 * clients concatenate every string of the deltas of one index, so a
 * repeated id or name would corrupt the call -- and the argument
 * fragment.  *next counts the calls begun.  NULL: not that shape, or
 * (*empty) a continuation that carries nothing.
 */
static json_object *
delta_call(json_object *c, int *next, bool *empty)
{
	json_object *iv = rf_adapter_get(c, "index");
	json_object *av = rf_adapter_get(c, "function.arguments");
	const char *id = rf_adapter_str(c, "id"), *args = NULL;
	char gen[32];
	long idx;

	*empty = false;
	if (!json_object_is_type(c, json_type_object) || (av != NULL &&
	    !json_object_is_type(av, json_type_null) &&
	    (args = rf_adapter_tool_args(av)) == NULL))
		return NULL;
	if (id != NULL && id[0] == '\0')
		id = NULL;
	if (json_object_is_type(iv, json_type_int))
		idx = (long)json_object_get_int64(iv);
	else if (iv != NULL && !json_object_is_type(iv, json_type_null))
		return NULL;
	else
		idx = id != NULL || *next == 0 ? *next : *next - 1;
	if (idx < 0 || idx >= RF_ADAPTER_MAX_TOOL_CALLS)
		return NULL;
	if (idx < *next) {
		*empty = args == NULL || args[0] == '\0';
		return *empty ? NULL : rf_adapter_tool_call((int)idx, NULL,
		    NULL, args);
	}
	*next = (int)idx + 1;
	if (id == NULL) {
		snprintf(gen, sizeof(gen), "call_%ld", idx);
		id = gen;
	}
	return rf_adapter_tool_call((int)idx, id,
	    rf_adapter_str(c, "function.name"), args != NULL ? args : "");
}

/* delta.tool_calls as our delta array into *out (NULL when it has none).
 * -1 when it is not that shape. */
static int
chunk_tools(json_object *d, int *next, json_object **out)
{
	json_object *calls = rf_adapter_get(d, "tool_calls"), *o;
	size_t i, n;
	bool empty;

	*out = NULL;
	if (calls == NULL || json_object_is_type(calls, json_type_null))
		return 0;
	if (!json_object_is_type(calls, json_type_array) ||
	    (n = json_object_array_length(calls)) > RF_ADAPTER_MAX_TOOL_CALLS)
		return -1;
	*out = json_object_new_array();
	for (i = 0; i < n; i++) {
		o = delta_call(json_object_array_get_idx(calls, i), next, &empty);
		if (o != NULL)
			json_object_array_add(*out, o);
		else if (!empty)
			break;
	}
	if (i < n || json_object_array_length(*out) == 0) {
		json_object_put(*out);
		*out = NULL;
	}
	return i < n ? -1 : 0;
}

/* The delta object of choices[0] (NULL when none) and its content; -1
 * when the chunk is not the provider's shape.  *none: no choices at all
 * (a usage-only or keep-alive chunk). */
static int
chunk_delta(json_object *root, json_object **c0, json_object **d,
    json_object **content, bool *none)
{
	json_object *choices;

	*c0 = *d = *content = NULL;
	*none = !json_object_object_get_ex(root, "choices", &choices) ||
	    json_object_is_type(choices, json_type_null) ||
	    (json_object_is_type(choices, json_type_array) &&
	    json_object_array_length(choices) == 0);
	if (*none)
		return 0;
	if (!json_object_is_type(choices, json_type_array))
		return -1;
	*c0 = json_object_array_get_idx(choices, 0);
	if (!json_object_is_type(*c0, json_type_object))
		return -1;
	if (json_object_object_get_ex(*c0, "delta", d) &&
	    json_object_is_type(*d, json_type_object))
		json_object_object_get_ex(*d, "content", content);
	else if (*d != NULL && !json_object_is_type(*d, json_type_null))
		return -1;
	else
		*d = NULL;
	if (*content != NULL && !json_object_is_type(*content, json_type_null) &&
	    !json_object_is_type(*content, json_type_string))
		return -1;
	return 0;
}

/* The delta of choices[0]: text to delta, tool calls to tools;
 * MALFORMED before any side effect when the chunk is not the provider's
 * shape. */
static enum rf_chunk
chunk_choice(json_object *root, struct rf_result *acc, struct rf_buf *delta,
    struct rf_buf *tools, struct rf_failure *f)
{
	json_object *c0, *d, *content, *calls = NULL;
	int next = acc->ntool_calls;
	const char *fr;
	bool none;

	if (chunk_delta(root, &c0, &d, &content, &none) != 0 ||
	    (d != NULL && chunk_tools(d, &next, &calls) != 0))
		return RF_CHUNK_MALFORMED;
	if (none)
		return RF_CHUNK_DATA;
	if ((json_object_is_type(content, json_type_string) &&
	    rf_buf_append(delta, json_object_get_string(content),
	    (size_t)json_object_get_string_len(content)) != 0) ||
	    (calls != NULL && rf_adapter_json_out(calls, tools) != 0)) {
		json_object_put(calls);
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE, "stream text too large");
		return RF_CHUNK_ERROR;
	}
	json_object_put(calls);
	acc->ntool_calls = next;
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
    struct rf_result *acc, struct rf_buf *delta, struct rf_buf *tools,
    struct rf_failure *f)
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
		rc = chunk_choice(root, acc, delta, tools, f);
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

	/* A content-policy refusal is final, not our bug (docs/api.md). */
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
