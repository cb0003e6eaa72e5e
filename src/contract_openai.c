/*
 * contract_openai: the body of POST /v1/chat/completions (docs/openai.md), read into the same struct rf_chat_req as /api/v1's, so the engine
 * cannot tell the surfaces apart.
 *
 * OpenAI clients send what the OpenAI API takes, and more over time, so
 * the rules differ from /api/v1's on purpose: an unknown top-level key is
 * ignored (not a 400), null means "not given", and a message may carry
 * keys we do not read (clients echo an answer back with "refusal",
 * "annotations" ...).  What we do read is checked as strictly as
 * /api/v1's fields -- types, ranges, the same body, prompt-character and
 * max_tokens limits, well-formed UTF-8 (rf_contract_json) -- and refused
 * with the field it names, which the surface renders as error.param.
 *
 * "model" picks the route (docs/openai.md's table): auto; a provider id
 * of the chain; a chain provider's configured model id; "provider/model"
 * (split at the first '/') with that upstream model for that provider's
 * tier; anything else is model_not_found.
 *
 * Ownership: req->owner is one JSON object that holds the parsed body
 * ("body"), the texts made by joining part arrays ("flat") and the object
 * of passed-on fields ("fields"); every string and JSON pointer in req is
 * borrowed from it until rf_contract_free.
 */
#include "contract.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "provider.h"
#include "util.h"

#define MAX_STOP 4
#define MAX_TOOLS 128
#define MAX_TOOL_CALLS 128
#define NAME_MAX_LEN 64
#define MODEL_MAX_LEN 127 /* fits rf_result.model */

/* One body being read. */
struct oai {
	const struct rf_config *cfg;
	struct rf_chat_req *req;
	struct rf_field_err *fe;
	json_object *flat;   /* joined part texts, owned by req->owner */
	json_object *fields; /* what is passed on as given */
	bool stream;
	long chars;          /* text characters of every message */
};

static int __attribute__((format(printf, 3, 4)))
bad(struct oai *o, const char *field, const char *fmt, ...)
{
	char msg[sizeof(o->fe->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return rf_contract_refuse(o->fe, RF_ERR_VALIDATION, field, "%s", msg);
}

/* ---- small readers ---------------------------------------------------- */

static bool
is(json_object *v, enum json_type t)
{
	return json_object_is_type(v, t);
}

static bool
is_number(json_object *v)
{
	return (is(v, json_type_double) || is(v, json_type_int)) &&
	    isfinite(json_object_get_double(v));
}

/* A number in [lo, hi] (NaN and 1e400 are not numbers here). */
static int
number_in(struct oai *o, json_object *v, const char *f, double lo, double hi,
    double *out)
{
	double d;

	if (!is_number(v) || (d = json_object_get_double(v)) < lo || d > hi)
		return bad(o, f, "%s must be a number between %g and %g.", f, lo,
		    hi);
	if (out != NULL)
		*out = d;
	return 0;
}

/* A string without NUL characters. */
static int
text_of(struct oai *o, json_object *v, const char *f, const char **s)
{
	size_t n;

	if (!is(v, json_type_string))
		return bad(o, f, "%s must be a string.", f);
	*s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (memchr(*s, '\0', n) != NULL)
		return bad(o, f, "%s must not contain NUL characters.", f);
	return 0;
}

/* A name of a tool or a schema: 1..64 of [A-Za-z0-9_-]. */
static bool
name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= NAME_MAX_LEN &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_-") == n;
}

static json_object *
member(json_object *obj, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(obj, key, &v);
	return v;
}

/* Pass v on under key (a new reference owned by o->fields). */
static void
pass_on(struct oai *o, const char *key, json_object *v)
{
	json_object_object_add(o->fields, key, json_object_get(v));
}

/* ---- model routing (docs/openai.md's table) ------------------------- */

/* A chain provider whose configured model is m, or -1. */
static int
pid_of_model(const struct rf_config *cfg, const char *m)
{
	for (int i = 0; i < cfg->chain_len; i++) {
		const char *cm = cfg->providers[cfg->chain[i]].model;

		if (cm != NULL && strcmp(cm, m) == 0)
			return cfg->chain[i];
	}
	return -1;
}

/* The pid of a chain provider whose id is the n bytes at s, or -1. */
static int
chain_pid(const struct rf_config *cfg, const char *s, size_t n)
{
	char id[32];
	int pid;

	if (n == 0 || n >= sizeof(id))
		return -1;
	memcpy(id, s, n);
	id[n] = '\0';
	pid = rf_config_pid(id);
	return pid >= 0 && rf_config_chain_pos(cfg, pid) >= 0 ? pid : -1;
}

/* An upstream model id we may send: 1..127 visible ASCII characters. */
static bool
upstream_ok(const char *m)
{
	size_t n = strlen(m);

	for (size_t i = 0; i < n; i++)
		if (m[i] <= 0x20 || m[i] >= 0x7f)
			return false;
	return n >= 1 && n <= MODEL_MAX_LEN;
}

static int
route_model(struct oai *o, json_object *v)
{
	struct rf_chat_req *req = o->req;
	const char *m, *slash;
	int pid;

	if (v == NULL)
		return bad(o, "model", "model is required: \"auto\", a provider "
		    "id, or provider/model.");
	if (text_of(o, v, "model", &m) != 0)
		return -1;
	if (strcmp(m, "auto") == 0)
		return 0;
	if ((pid = chain_pid(o->cfg, m, strlen(m))) >= 0 ||
	    (pid = pid_of_model(o->cfg, m)) >= 0) {
		req->strategy = pid;
		return 0;
	}
	slash = strchr(m, '/');
	if (slash != NULL && upstream_ok(slash + 1) &&
	    (pid = chain_pid(o->cfg, m, (size_t)(slash - m))) >= 0) {
		req->strategy = req->model_pid = pid;
		req->upstream_model = slash + 1;
		return 0;
	}
	return rf_contract_refuse(o->fe, RF_ERR_MODEL_NOT_FOUND, "model",
	    "The model '%.120s' does not exist: use \"auto\", a provider id or "
	    "provider/model (GET /v1/models lists them).", m);
}

/* ---- message content ------------------------------------------------- */

/* Count the characters of a text the model reads. */
static void
count(struct oai *o, const char *s)
{
	o->chars += (long)rf_utf8_len(s, strlen(s));
}

/* One part of a content array: text for every role, image_url for user
 * messages.  Its text is appended to joined. */
static int
read_part(struct oai *o, json_object *p, const char *f, bool images,
    struct rf_buf *joined)
{
	char sub[128];
	const char *type = NULL, *s;
	json_object *img;

	if (!is(p, json_type_object) || !is(member(p, "type"), json_type_string))
		return bad(o, f, "%s must be an object with a type.", f);
	type = json_object_get_string(member(p, "type"));
	if (strcmp(type, "text") == 0) {
		snprintf(sub, sizeof(sub), "%s.text", f);
		if (text_of(o, member(p, "text"), sub, &s) != 0)
			return -1;
		count(o, s);
		if ((joined->len > 0 && rf_buf_puts(joined, "\n") != 0) ||
		    rf_buf_puts(joined, s) != 0)
			return bad(o, f, "%s: the text is too long.", f);
		return 0;
	}
	if (strcmp(type, "image_url") != 0 || !images)
		return bad(o, f, "%s: parts of type %.32s are not supported here "
		    "(text%s).", f, type, images ? ", image_url" : "");
	snprintf(sub, sizeof(sub), "%s.image_url.url", f);
	img = member(p, "image_url");
	if (!is(img, json_type_object) || text_of(o, member(img, "url"), sub,
	    &s) != 0)
		return bad(o, sub, "%s must be a string.", sub);
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0 &&
	    strncmp(s, "data:", 5) != 0)
		return bad(o, sub, "%s must be an http(s) or data: URL.", sub);
	return 0;
}

/* A content array: its parts, joined into one text for the flat view. */
static int
read_parts(struct oai *o, json_object *arr, const char *f, bool images,
    const char **flat)
{
	char sub[96];
	struct rf_buf joined;
	size_t n = json_object_array_length(arr);
	int rc = -1;

	rf_buf_init(&joined, (size_t)o->cfg->max_body_bytes);
	if (n == 0) {
		bad(o, f, "%s must not be an empty array.", f);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s[%zu]", f, i);
		if (read_part(o, json_object_array_get_idx(arr, i), sub, images,
		    &joined) != 0)
			goto out;
	}
	json_object_array_add(o->flat, json_object_new_string_len(
	    rf_buf_str(&joined), (int)joined.len));
	*flat = json_object_get_string(json_object_array_get_idx(o->flat,
	    json_object_array_length(o->flat) - 1));
	rc = 0;
out:
	rf_buf_free(&joined);
	return rc;
}

/* content: a string or an array of parts; absent (NULL) allowed only when
 * the caller says so.  *flat is its text ("" when absent). */
static int
read_content(struct oai *o, json_object *v, size_t i, bool images,
    bool optional, const char **flat)
{
	char f[40];

	snprintf(f, sizeof(f), "messages[%zu].content", i);
	*flat = "";
	if (v == NULL)
		return optional ? 0 : bad(o, f, "%s is required.", f);
	if (is(v, json_type_array))
		return read_parts(o, v, f, images, flat);
	if (text_of(o, v, f, flat) != 0)
		return bad(o, f, "%s must be a string or an array of parts.", f);
	count(o, *flat);
	return 0;
}

/* ---- tool calls and tool messages ------------------------------------ */

static int
read_tool_call(struct oai *o, json_object *c, const char *f)
{
	json_object *fn = member(c, "function");
	const char *s;

	if (!is(c, json_type_object) || !is(fn, json_type_object))
		return bad(o, f, "%s must be {id, type, function: {name, "
		    "arguments}}.", f);
	if (!is(member(c, "id"), json_type_string) ||
	    json_object_get_string_len(member(c, "id")) == 0)
		return bad(o, f, "%s.id must be a non-empty string.", f);
	if (member(c, "type") != NULL && (!is(member(c, "type"),
	    json_type_string) || strcmp(json_object_get_string(member(c,
	    "type")), "function") != 0))
		return bad(o, f, "%s.type must be \"function\".", f);
	if (text_of(o, member(fn, "name"), f, &s) != 0 || !name_ok(s))
		return bad(o, f, "%s.function.name must be 1 to 64 letters, "
		    "digits, _ or -.", f);
	if (!is(member(fn, "arguments"), json_type_string))
		return bad(o, f, "%s.function.arguments must be a string (JSON "
		    "text).", f);
	return 0;
}

/* An assistant message's tool_calls: 1..128 calls.  *any tells whether
 * there are some. */
static int
read_tool_calls(struct oai *o, json_object *v, size_t i, bool *any)
{
	char f[48];
	size_t n;

	snprintf(f, sizeof(f), "messages[%zu].tool_calls", i);
	*any = false;
	if (v == NULL)
		return 0;
	if (!is(v, json_type_array) || (n = json_object_array_length(v)) >
	    MAX_TOOL_CALLS)
		return bad(o, f, "%s must be an array of at most %d tool calls.",
		    f, MAX_TOOL_CALLS);
	for (size_t k = 0; k < n; k++) {
		char sub[96];

		snprintf(sub, sizeof(sub), "%s[%zu]", f, k);
		if (read_tool_call(o, json_object_array_get_idx(v, k), sub) != 0)
			return -1;
	}
	*any = n > 0;
	return 0;
}

/* ---- one message ----------------------------------------------------- */

static const char *const roles[] = { "system", "developer", "user",
    "assistant", "tool", NULL };

/* The role of message i, as the static word ("developer" stays). */
static int
read_role(struct oai *o, json_object *m, size_t i, const char **role)
{
	char f[40];
	json_object *v = member(m, "role");

	snprintf(f, sizeof(f), "messages[%zu].role", i);
	for (size_t k = 0; is(v, json_type_string) && roles[k] != NULL; k++)
		if (strcmp(json_object_get_string(v), roles[k]) == 0) {
			*role = roles[k];
			return 0;
		}
	return bad(o, f, "%s must be system, developer, user, assistant or "
	    "tool.", f);
}

/* name (any role) and tool_call_id (tool messages, required). */
static int
read_ids(struct oai *o, json_object *m, size_t i, bool tool)
{
	char f[48];
	json_object *v = member(m, "name");
	const char *s;

	snprintf(f, sizeof(f), "messages[%zu].name", i);
	if (v != NULL && text_of(o, v, f, &s) != 0)
		return -1;
	snprintf(f, sizeof(f), "messages[%zu].tool_call_id", i);
	v = member(m, "tool_call_id");
	if (tool && (!is(v, json_type_string) || json_object_get_string_len(v)
	    == 0))
		return bad(o, f, "%s is required in a tool message.", f);
	return 0;
}

static int
read_message(struct oai *o, json_object *m, size_t i, struct rf_msg *out)
{
	char f[40];
	const char *role = NULL, *flat;
	bool assistant, calls = false;

	snprintf(f, sizeof(f), "messages[%zu]", i);
	if (!is(m, json_type_object))
		return bad(o, f, "%s must be an object.", f);
	if (read_role(o, m, i, &role) != 0)
		return -1;
	assistant = strcmp(role, "assistant") == 0;
	if (assistant && read_tool_calls(o, member(m, "tool_calls"), i,
	    &calls) != 0)
		return -1;
	if (read_content(o, member(m, "content"), i, strcmp(role, "user") == 0,
	    calls, &flat) != 0)
		return -1;
	if (read_ids(o, m, i, strcmp(role, "tool") == 0) != 0)
		return -1;
	out->role = strcmp(role, "developer") == 0 ? "system" : role;
	out->content = flat;
	return 0;
}

static int
read_messages(struct oai *o, json_object *v)
{
	struct rf_chat_req *req = o->req;
	size_t n;

	if (!is(v, json_type_array) || (n = json_object_array_length(v)) < 1 ||
	    n > RF_MAX_MESSAGES)
		return bad(o, "messages", "messages must be an array of 1 to %d "
		    "messages.", RF_MAX_MESSAGES);
	for (size_t i = 0; i < n; i++)
		if (read_message(o, json_object_array_get_idx(v, i), i,
		    &req->msgs[i]) != 0)
			return -1;
	if (o->chars > o->cfg->max_prompt_chars)
		return bad(o, "messages", "messages must hold at most %ld "
		    "characters of text in all.", o->cfg->max_prompt_chars);
	req->nmsgs = n;
	req->prompt_chars = o->chars;
	req->oai.messages = v;
	return 0;
}

/* ---- the other fields ------------------------------------------------ */

static int
f_max_tokens(struct oai *o, const char *key, json_object *v)
{
	int64_t n;

	if (!is(v, json_type_int) || (n = json_object_get_int64(v)) < 1 ||
	    n > o->cfg->max_tokens_limit)
		return bad(o, key, "%s must be an integer between 1 and %d.", key,
		    o->cfg->max_tokens_limit);
	/* Read after max_tokens (the table's order): the newer name wins. */
	o->req->max_tokens = (int)n;
	o->req->oai.completion_tokens = strcmp(key, "max_tokens") != 0;
	return 0;
}

static int
f_temperature(struct oai *o, const char *key, json_object *v)
{
	return number_in(o, v, key, 0.0, 2.0, &o->req->temperature);
}

static int
f_unit(struct oai *o, const char *key, json_object *v)
{
	if (number_in(o, v, key, 0.0, 1.0, NULL) != 0)
		return -1;
	pass_on(o, key, v);
	return 0;
}

static int
f_penalty(struct oai *o, const char *key, json_object *v)
{
	if (number_in(o, v, key, -2.0, 2.0, NULL) != 0)
		return -1;
	pass_on(o, key, v);
	return 0;
}

static int
f_seed(struct oai *o, const char *key, json_object *v)
{
	if (!is(v, json_type_int))
		return bad(o, key, "seed must be an integer.");
	pass_on(o, key, v);
	return 0;
}

static int
f_stop(struct oai *o, const char *key, json_object *v)
{
	const char *s;
	size_t n;

	if (is(v, json_type_string)) {
		if (text_of(o, v, key, &s) != 0)
			return -1;
		pass_on(o, key, v);
		return 0;
	}
	if (!is(v, json_type_array) || (n = json_object_array_length(v)) >
	    MAX_STOP)
		return bad(o, key, "stop must be a string or an array of at most "
		    "%d strings.", MAX_STOP);
	for (size_t i = 0; i < n; i++)
		if (text_of(o, json_object_array_get_idx(v, i), key, &s) != 0)
			return -1;
	pass_on(o, key, v);
	return 0;
}

static int
f_n(struct oai *o, const char *key, json_object *v)
{
	if (!is(v, json_type_int) || json_object_get_int64(v) != 1)
		return bad(o, key, "n must be 1: one choice per request.");
	return 0;
}

static int
f_user(struct oai *o, const char *key, json_object *v)
{
	const char *s;

	if (text_of(o, v, key, &s) != 0)
		return -1;
	pass_on(o, key, v);
	return 0;
}

static int
f_bool(struct oai *o, const char *key, json_object *v)
{
	if (!is(v, json_type_boolean))
		return bad(o, key, "%s must be true or false.", key);
	if (strcmp(key, "stream") == 0)
		o->stream = json_object_get_boolean(v);
	else
		pass_on(o, key, v); /* parallel_tool_calls */
	return 0;
}

static int
f_stream_options(struct oai *o, const char *key, json_object *v)
{
	json_object *iu;

	if (!is(v, json_type_object))
		return bad(o, key, "stream_options must be an object.");
	if ((iu = member(v, "include_usage")) == NULL)
		return 0;
	if (!is(iu, json_type_boolean))
		return bad(o, "stream_options.include_usage", "stream_options."
		    "include_usage must be true or false.");
	o->req->include_usage = json_object_get_boolean(iu);
	return 0;
}

/* tools[i]: {"type": "function", "function": {name, description?,
 * parameters?, strict?}}. */
static int
read_tool(struct oai *o, json_object *t, const char *f)
{
	json_object *fn = member(t, "function"), *v;
	const char *s;

	if (!is(t, json_type_object) || !is(member(t, "type"), json_type_string)
	    || strcmp(json_object_get_string(member(t, "type")), "function") != 0
	    || !is(fn, json_type_object))
		return bad(o, f, "%s must be {\"type\": \"function\", "
		    "\"function\": {...}}.", f);
	if (text_of(o, member(fn, "name"), f, &s) != 0 || !name_ok(s))
		return bad(o, f, "%s.function.name must be 1 to 64 letters, "
		    "digits, _ or -.", f);
	if ((v = member(fn, "description")) != NULL && !is(v, json_type_string))
		return bad(o, f, "%s.function.description must be a string.", f);
	if ((v = member(fn, "parameters")) != NULL && !is(v, json_type_object))
		return bad(o, f, "%s.function.parameters must be a JSON schema "
		    "object.", f);
	if ((v = member(fn, "strict")) != NULL && !is(v, json_type_boolean))
		return bad(o, f, "%s.function.strict must be true or false.", f);
	return 0;
}

static int
f_tools(struct oai *o, const char *key, json_object *v)
{
	size_t n;

	if (!is(v, json_type_array) || (n = json_object_array_length(v)) >
	    MAX_TOOLS)
		return bad(o, key, "tools must be an array of at most %d tools.",
		    MAX_TOOLS);
	for (size_t i = 0; i < n; i++) {
		char f[32];

		snprintf(f, sizeof(f), "tools[%zu]", i);
		if (read_tool(o, json_object_array_get_idx(v, i), f) != 0)
			return -1;
	}
	if (n > 0) /* an empty list is no tools: not passed on */
		pass_on(o, key, v);
	return 0;
}

static int
f_tool_choice(struct oai *o, const char *key, json_object *v)
{
	json_object *fn = member(v, "function");
	const char *s;

	if (is(v, json_type_string)) {
		s = json_object_get_string(v);
		if (strcmp(s, "none") != 0 && strcmp(s, "auto") != 0 &&
		    strcmp(s, "required") != 0)
			return bad(o, key, "tool_choice must be none, auto, "
			    "required or {\"type\": \"function\", ...}.");
	} else if (!is(v, json_type_object) || !is(fn, json_type_object) ||
	    !is(member(fn, "name"), json_type_string) ||
	    !name_ok(json_object_get_string(member(fn, "name")))) {
		return bad(o, key, "tool_choice must be none, auto, required or "
		    "{\"type\": \"function\", \"function\": {\"name\": ...}}.");
	}
	pass_on(o, key, v);
	return 0;
}

/* response_format: {"type": text | json_object | json_schema}; a schema
 * needs json_schema {name, schema?, strict?, description?}. */
static int
f_response_format(struct oai *o, const char *key, json_object *v)
{
	const char *f = "response_format.json_schema";
	json_object *js = member(v, "json_schema"), *s;
	const char *type;

	if (!is(v, json_type_object) || !is(member(v, "type"), json_type_string))
		return bad(o, key, "response_format must be an object with a "
		    "type.");
	type = json_object_get_string(member(v, "type"));
	if (strcmp(type, "text") != 0 && strcmp(type, "json_object") != 0 &&
	    strcmp(type, "json_schema") != 0)
		return bad(o, "response_format.type", "response_format.type must "
		    "be text, json_object or json_schema.");
	if (strcmp(type, "json_schema") == 0 && (!is(js, json_type_object) ||
	    !is(member(js, "name"), json_type_string) ||
	    !name_ok(json_object_get_string(member(js, "name"))) ||
	    ((s = member(js, "schema")) != NULL && !is(s, json_type_object)) ||
	    ((s = member(js, "strict")) != NULL && !is(s, json_type_boolean))))
		return bad(o, f, "%s must be {name, schema, strict?}: a name of 1 "
		    "to 64 letters, digits, _ or -, a schema object.", f);
	pass_on(o, key, v);
	return 0;
}

/* "relayforge": {"fallback": bool} -- our own extension, strict. */
static int
f_relayforge(struct oai *o, const char *key, json_object *v)
{
	char f[64];

	(void)key;
	if (!is(v, json_type_object))
		return bad(o, "relayforge", "relayforge must be an object.");
	json_object_object_foreach(v, k, val) {
		snprintf(f, sizeof(f), "relayforge.%s", k);
		if (strcmp(k, "fallback") != 0)
			return bad(o, f, "Unknown key %s.", f);
		if (val != NULL && !is(val, json_type_boolean))
			return bad(o, f, "%s must be true or false.", f);
		if (val != NULL)
			o->req->fallback = json_object_get_boolean(val);
	}
	return 0;
}

typedef int (*field_fn)(struct oai *, const char *, json_object *);

/* The top-level keys we read; any other is ignored.  model and messages
 * are read first, by read_body. */
static const struct {
	const char *key;
	field_fn check;
} fields[] = {
	{ "max_tokens", f_max_tokens },
	{ "max_completion_tokens", f_max_tokens },
	{ "temperature", f_temperature },
	{ "top_p", f_unit },
	{ "presence_penalty", f_penalty },
	{ "frequency_penalty", f_penalty },
	{ "seed", f_seed },
	{ "stop", f_stop },
	{ "n", f_n },
	{ "user", f_user },
	{ "stream", f_bool },
	{ "parallel_tool_calls", f_bool },
	{ "stream_options", f_stream_options },
	{ "tools", f_tools },
	{ "tool_choice", f_tool_choice },
	{ "response_format", f_response_format },
	{ "relayforge", f_relayforge },
};

static int
read_body(struct oai *o, json_object *root)
{
	if (route_model(o, member(root, "model")) != 0)
		return -1;
	if (member(root, "messages") == NULL)
		return bad(o, "messages", "messages is required.");
	if (read_messages(o, member(root, "messages")) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_object *v = member(root, fields[i].key);

		/* null means "not given": the default stays. */
		if (v != NULL && fields[i].check(o, fields[i].key, v) != 0)
			return -1;
	}
	if (!o->stream)
		o->req->include_usage = false;
	return 0;
}

/* The owner object: the body, the joined texts, the passed-on fields. */
static json_object *
owner_of(json_object *root, struct oai *o)
{
	json_object *keep = json_object_new_object();

	json_object_object_add(keep, "body", root);
	o->flat = json_object_new_array();
	o->fields = json_object_new_object();
	json_object_object_add(keep, "flat", o->flat);
	json_object_object_add(keep, "fields", o->fields);
	return keep;
}

static void
oai_defaults(const struct rf_config *cfg, struct rf_chat_req *req)
{
	rf_contract_free(req); /* the shared defaults (owner NULL: no put) */
	req->max_tokens = cfg->max_tokens_limit;
	req->temperature = 1.0; /* OpenAI's default */
}

int
rf_contract_parse_openai(const struct rf_config *cfg, const char *body,
    size_t len, struct rf_chat_req *req, bool *stream,
    struct rf_field_err *fe)
{
	struct oai o = { .cfg = cfg, .req = req, .fe = fe };
	json_object *root = NULL;

	req->owner = NULL;
	oai_defaults(cfg, req);
	*stream = false;
	if (rf_contract_json(body, len, RF_OAI_JSON_MAX_DEPTH, &root, fe) != 0)
		goto fail;
	if (!is(root, json_type_object)) {
		json_object_put(root);
		bad(&o, "body", "The request body must be a JSON object.");
		goto fail;
	}
	req->owner = owner_of(root, &o);
	if (read_body(&o, root) != 0)
		goto fail;
	req->oai.fields = o.fields;
	*stream = o.stream;
	return 0;
fail:
	rf_contract_free(req);
	return -1;
}
