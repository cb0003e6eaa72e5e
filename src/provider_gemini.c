/*
 * provider_gemini: Google's generateContent / streamGenerateContent wire
 * format (rf_ops_gemini) and the one provider that speaks it (its catalog
 * entry is in catalog.c) (providers.md section 5).  Roles are user/model,
 * the system prompt is a separate systemInstruction, thinking is switched
 * off where the model allows it (thought tokens would eat
 * maxOutputTokens), the key travels in x-goog-api-key and never in the
 * URL, and safety blocks arrive as 200s (promptFeedback.blockReason, or a
 * SAFETY-like finishReason).  Streams have no [DONE]; every chunk is a
 * whole GenerateContentResponse with a running usage total.
 *
 * A /v1 request (rf_prompt.oai) is translated from the OpenAI shape:
 * messages and their parts, tool calls and tool results, tools with their
 * JSON Schema, tool_choice, response_format and the sampling fields; what
 * Gemini cannot express makes build return RF_BUILD_UNSUPPORTED (the
 * section "a /v1 request, translated" says what that is).  functionCall
 * parts come back as OpenAI tool calls, whole for chat and as deltas for
 * streams.  docs/providers.md, "Tools and formats per wire", is the
 * reference.  No I/O here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"

static bool
is(const char *s, const char *want)
{
	return s != NULL && strcmp(s, want) == 0;
}

/* ---- building the request ---- */

/* Gemma models on this API accept neither systemInstruction nor a
 * thinkingConfig; 2.5 Pro cannot switch thinking off (budget 0 is a 400). */
static bool
is_gemma(const char *model)
{
	return strncmp(model, "gemma", 5) == 0;
}

static bool
can_disable_thinking(const char *model)
{
	return !is_gemma(model) && strstr(model, "-pro") == NULL;
}

/* The system prompt and every "system" message, joined by blank lines. */
static int
join_system(const struct rf_prompt *p, struct rf_buf *sys)
{
	size_t i;

	if (p->system != NULL && rf_buf_puts(sys, p->system) != 0)
		return -1;
	for (i = 0; i < p->nmsgs; i++) {
		if (strcmp(p->msgs[i].role, "system") != 0)
			continue;
		if ((sys->len > 0 && rf_buf_puts(sys, "\n\n") != 0) ||
		    rf_buf_puts(sys, p->msgs[i].content ? p->msgs[i].content : "")
		    != 0)
			return -1;
	}
	return 0;
}

static json_object *
text_parts(const char *prefix, const char *text)
{
	json_object *parts = json_object_new_array();
	json_object *part = json_object_new_object();
	struct rf_buf joined = { 0 };

	if (prefix != NULL && prefix[0] != '\0') {
		rf_buf_printf(&joined, "%s\n\n%s", prefix, text);
		text = rf_buf_str(&joined);
	}
	json_object_object_add(part, "text", json_object_new_string(text));
	json_object_array_add(parts, part);
	rf_buf_free(&joined);
	return parts;
}

/* contents[]: assistant becomes "model"; system messages were moved to
 * the system instruction.  fold (Gemma) goes in front of the first user
 * turn instead. */
static json_object *
gemini_contents(const struct rf_prompt *p, const char *fold)
{
	json_object *arr = json_object_new_array(), *c;
	const struct rf_msg *m;
	size_t i;

	for (i = 0; i < p->nmsgs; i++) {
		m = &p->msgs[i];
		if (strcmp(m->role, "system") == 0)
			continue;
		c = json_object_new_object();
		json_object_object_add(c, "role", json_object_new_string(
		    strcmp(m->role, "assistant") == 0 ? "model" : "user"));
		json_object_object_add(c, "parts", text_parts(fold,
		    m->content != NULL ? m->content : ""));
		if (strcmp(m->role, "assistant") != 0)
			fold = NULL;
		json_object_array_add(arr, c);
	}
	return arr;
}

static json_object *
gemini_config(const char *model, const struct rf_prompt *p)
{
	json_object *gc = json_object_new_object(), *tc;

	json_object_object_add(gc, "maxOutputTokens",
	    json_object_new_int(p->max_tokens));
	json_object_object_add(gc, "temperature",
	    rf_adapter_number(p->temperature));
	if (can_disable_thinking(model)) {
		tc = json_object_new_object();
		json_object_object_add(tc, "thinkingBudget", json_object_new_int(0));
		json_object_object_add(gc, "thinkingConfig", tc);
	}
	return gc;
}

static json_object *
gemini_body(const char *model, const struct rf_prompt *p)
{
	json_object *root = NULL, *si;
	struct rf_buf sys = { 0 };
	bool fold = is_gemma(model);

	if (join_system(p, &sys) != 0)
		goto out;
	root = json_object_new_object();
	json_object_object_add(root, "contents",
	    gemini_contents(p, fold ? rf_buf_str(&sys) : NULL));
	if (sys.len > 0 && !fold) {
		si = json_object_new_object();
		json_object_object_add(si, "parts", text_parts(NULL,
		    rf_buf_str(&sys)));
		json_object_object_add(root, "systemInstruction", si);
	}
	json_object_object_add(root, "generationConfig", gemini_config(model, p));
out:
	rf_buf_free(&sys);
	return root;
}

/* The model id is a path segment: percent-encode all but unreserved. */
static int
url_segment(struct rf_buf *url, const char *s)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-._~";

	for (; *s != '\0'; s++) {
		if (strchr(ok, *s) != NULL) {
			if (rf_buf_append(url, s, 1) != 0)
				return -1;
		} else if (rf_buf_printf(url, "%%%02X", (unsigned char)*s) != 0)
			return -1;
	}
	return 0;
}

/* The key goes in x-goog-api-key, never in the URL (URLs end up in logs). */
static int
gemini_headers(const struct rf_provider_conf *pc, bool stream,
    struct rf_up_req *rq)
{
	if (rf_adapter_header(rq, "Content-Type", "application/json") != 0 ||
	    rf_adapter_header(rq, "Expect", "") != 0) /* no 100-continue wait */
		return -1;
	if (pc->key != NULL && pc->key[0] != '\0' &&
	    rf_adapter_header(rq, "x-goog-api-key", pc->key) != 0)
		return -1;
	if (stream && rf_adapter_header(rq, "Accept", "text/event-stream") != 0)
		return -1;
	return 0;
}

/* ---- a /v1 request (rf_prompt.oai), translated ----------------------
 *
 * The OpenAI request in Gemini's terms: system and developer messages
 * become the systemInstruction, user and assistant turns become user /
 * model contents (text, data: URLs as inlineData, assistant tool_calls as
 * functionCall parts with their ids), a run of tool messages becomes one
 * user content of functionResponse parts (the name found from the call
 * the tool_call_id answers), tools become functionDeclarations with their
 * JSON Schema translated into Gemini's Schema (a subset of OpenAPI 3.0),
 * tool_choice the toolConfig, response_format responseMimeType /
 * responseSchema, and stop / seed / top_p / penalties generationConfig
 * fields.  Whatever Gemini cannot express returns UNSUP: the tier is
 * skipped, never sent a different request (docs/providers.md, "Tools and
 * formats per wire").  Every function here returns 0, UNSUP or -1.
 */
#define UNSUP RF_BUILD_UNSUPPORTED
/* Nesting of a schema ($ref included: a recursive one ends here). */
#define SCHEMA_DEPTH 24
/* Schema objects one translation may visit (references are expanded, so
 * a small schema could otherwise ask for an exponential amount of
 * work). */
#define SCHEMA_NODES 2000
/* What the skipped thought-signature check is asked with on a replayed
 * functionCall of a Gemini 3 model (the real signature cannot travel
 * through the OpenAI shape; Google documents this value for history made
 * elsewhere). */
#define SKIP_SIGNATURE "skip_thought_signature_validator"

/* ---- JSON Schema -> Gemini Schema ---- */

struct sctx {
	json_object *root; /* for "#/$defs/..." and "#/definitions/..." */
	int depth;
	int nodes;
};

static int schema_tr(struct sctx *cx, json_object *in, json_object *out);

/* Keywords copied as given; annotations dropped (they constrain
 * nothing); everything else not handled below is UNSUP. */
static const char *const schema_copied[] = { "description", "title",
	"format", "pattern", "default", "example", "minimum", "maximum",
	"minLength", "maxLength", "minItems", "maxItems", "minProperties",
	"maxProperties", "required", "propertyOrdering", "nullable", NULL };
static const char *const schema_dropped[] = { "$schema", "$id",
	"$comment", "$defs", "definitions", "examples", "deprecated",
	"readOnly", "writeOnly", NULL };

static bool
in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static const char *
gemini_type(const char *t)
{
	static const char *const map[][2] = { { "string", "STRING" },
	    { "number", "NUMBER" }, { "integer", "INTEGER" },
	    { "boolean", "BOOLEAN" }, { "array", "ARRAY" },
	    { "object", "OBJECT" } };
	size_t i;

	for (i = 0; t != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(t, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

static void
set_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

/* "type": one name, or a list of one name and perhaps "null". */
static int
schema_type(json_object *t, json_object *out)
{
	const char *g = NULL, *name;
	size_t i, n;

	if (json_object_is_type(t, json_type_string))
		g = gemini_type(json_object_get_string(t));
	else if (json_object_is_type(t, json_type_array)) {
		n = json_object_array_length(t);
		for (i = 0; i < n; i++) {
			name = json_object_get_string(json_object_array_get_idx(t, i));
			if (name != NULL && strcmp(name, "null") == 0)
				json_object_object_add(out, "nullable",
				    json_object_new_boolean(1));
			else if (g != NULL || (g = gemini_type(name)) == NULL)
				return UNSUP;
		}
	}
	if (g == NULL)
		return UNSUP;
	set_str(out, "type", g);
	return 0;
}

/* "enum" (or "const" as a one-value enum): strings only, null making the
 * value nullable. */
static int
schema_enum(json_object *vals, json_object *out)
{
	json_object *arr = json_object_new_array(), *v;
	size_t i, n = json_object_array_length(vals);

	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(vals, i);
		if (v == NULL) {
			json_object_object_add(out, "nullable",
			    json_object_new_boolean(1));
		} else if (json_object_is_type(v, json_type_string)) {
			json_object_array_add(arr, json_object_get(v));
		} else {
			json_object_put(arr);
			return UNSUP;
		}
	}
	json_object_object_add(out, "enum", arr);
	if (!json_object_object_get_ex(out, "format", NULL))
		set_str(out, "format", "enum");
	return 0;
}

/* A translated sub-schema, or NULL (*rc says why). */
static json_object *
sub_schema(struct sctx *cx, json_object *in, int *rc)
{
	json_object *out = json_object_new_object();

	if ((*rc = schema_tr(cx, in, out)) != 0) {
		json_object_put(out);
		return NULL;
	}
	return out;
}

static int
schema_properties(struct sctx *cx, json_object *props, json_object *out)
{
	json_object *res = json_object_new_object(), *s;
	int rc = 0;

	if (!json_object_is_type(props, json_type_object))
		rc = UNSUP;
	else {
		json_object_object_foreach(props, key, val) {
			if ((s = sub_schema(cx, val, &rc)) == NULL)
				break;
			json_object_object_add(res, key, s);
		}
	}
	if (rc == 0)
		json_object_object_add(out, "properties", res);
	else
		json_object_put(res);
	return rc;
}

/* Copy the keys of from that out does not have yet (an anyOf or allOf
 * of a single schema is that schema). */
static void
merge_into(json_object *out, json_object *from)
{
	json_object_object_foreach(from, key, val)
		if (!json_object_object_get_ex(out, key, NULL))
			json_object_object_add(out, key, json_object_get(val));
}

/* "anyOf" (a {"type":"null"} member makes the value nullable) or an
 * "allOf" of one schema. */
static int
schema_union(struct sctx *cx, json_object *list, bool all, json_object *out)
{
	json_object *arr = json_object_new_array(), *m, *s;
	size_t i, n;
	int rc = 0;

	n = json_object_is_type(list, json_type_array) ?
	    json_object_array_length(list) : 0;
	if (n == 0 || (all && n != 1))
		rc = UNSUP;
	for (i = 0; i < n && rc == 0; i++) {
		m = json_object_array_get_idx(list, i);
		if (is(rf_adapter_str(m, "type"), "null") &&
		    json_object_object_length(m) == 1)
			json_object_object_add(out, "nullable",
			    json_object_new_boolean(1));
		else if ((s = sub_schema(cx, m, &rc)) != NULL)
			json_object_array_add(arr, s);
	}
	if (rc == 0 && json_object_array_length(arr) == 1)
		merge_into(out, json_object_array_get_idx(arr, 0));
	else if (rc == 0 && json_object_array_length(arr) > 1)
		json_object_object_add(out, "anyOf", json_object_get(arr));
	else if (rc == 0)
		rc = UNSUP; /* only null */
	json_object_put(arr);
	return rc;
}

/* "$ref": "#/$defs/<name>" or "#/definitions/<name>", beside nothing but
 * annotations. */
static int
schema_ref(struct sctx *cx, json_object *in, json_object *out)
{
	const char *ref = rf_adapter_str(in, "$ref");
	json_object *target = NULL, *defs;
	int rc;

	json_object_object_foreach(in, key, val) {
		(void)val;
		if (strcmp(key, "$ref") != 0 && strcmp(key, "description") != 0 &&
		    strcmp(key, "title") != 0 && !in_list(schema_dropped, key))
			return UNSUP;
	}
	if (ref != NULL && strncmp(ref, "#/$defs/", 8) == 0 &&
	    json_object_object_get_ex(cx->root, "$defs", &defs))
		json_object_object_get_ex(defs, ref + 8, &target);
	else if (ref != NULL && strncmp(ref, "#/definitions/", 14) == 0 &&
	    json_object_object_get_ex(cx->root, "definitions", &defs))
		json_object_object_get_ex(defs, ref + 14, &target);
	if (target == NULL || strchr(ref, '~') != NULL)
		return UNSUP;
	if ((rc = schema_tr(cx, target, out)) == 0 &&
	    rf_adapter_str(in, "description") != NULL)
		json_object_object_add(out, "description", json_object_get(
		    rf_adapter_get(in, "description")));
	return rc;
}

/* One keyword of a schema object. */
static int
schema_key(struct sctx *cx, const char *key, json_object *val,
    json_object *out)
{
	json_object *s;
	int rc = 0;

	if (in_list(schema_copied, key))
		json_object_object_add(out, key, json_object_get(val));
	else if (in_list(schema_dropped, key))
		;
	else if (strcmp(key, "type") == 0)
		rc = schema_type(val, out);
	else if (strcmp(key, "enum") == 0)
		rc = json_object_is_type(val, json_type_array) ?
		    schema_enum(val, out) : UNSUP;
	else if (strcmp(key, "const") == 0) {
		s = json_object_new_array();
		json_object_array_add(s, json_object_get(val));
		rc = schema_enum(s, out);
		json_object_put(s);
	} else if (strcmp(key, "items") == 0) {
		if ((s = sub_schema(cx, val, &rc)) != NULL)
			json_object_object_add(out, "items", s);
	} else if (strcmp(key, "properties") == 0)
		rc = schema_properties(cx, val, out);
	else if (strcmp(key, "anyOf") == 0 || strcmp(key, "allOf") == 0)
		rc = schema_union(cx, val, key[1] == 'l', out);
	else if ((strcmp(key, "additionalProperties") == 0 ||
	    strcmp(key, "uniqueItems") == 0) &&
	    json_object_is_type(val, json_type_boolean) &&
	    !json_object_get_boolean(val))
		; /* false: Gemini fills in only the declared properties, and
		   * duplicates were never forbidden to it */
	else
		rc = UNSUP;
	return rc;
}

/* A type implied by the keywords when none is given; an untyped value
 * ("any") is UNSUP. */
static int
schema_implied_type(json_object *out)
{
	if (json_object_object_get_ex(out, "type", NULL) ||
	    json_object_object_get_ex(out, "anyOf", NULL))
		return 0;
	if (json_object_object_get_ex(out, "properties", NULL))
		set_str(out, "type", "OBJECT");
	else if (json_object_object_get_ex(out, "items", NULL))
		set_str(out, "type", "ARRAY");
	else if (json_object_object_get_ex(out, "enum", NULL))
		set_str(out, "type", "STRING");
	else
		return UNSUP;
	return 0;
}

/* in (a JSON Schema object) translated into out. */
static int
schema_tr(struct sctx *cx, json_object *in, json_object *out)
{
	const char *type;
	int rc = 0;

	if (!json_object_is_type(in, json_type_object) ||
	    cx->depth >= SCHEMA_DEPTH || ++cx->nodes > SCHEMA_NODES)
		return UNSUP;
	cx->depth++;
	if (json_object_object_get_ex(in, "$ref", NULL))
		rc = schema_ref(cx, in, out);
	else {
		json_object_object_foreach(in, key, val) {
			if ((rc = schema_key(cx, key, val, out)) != 0)
				break;
		}
	}
	cx->depth--;
	if (rc == 0)
		rc = schema_implied_type(out);
	/* Gemini's enum is of strings only. */
	type = rf_adapter_str(out, "type");
	if (rc == 0 && json_object_object_get_ex(out, "enum", NULL) &&
	    !is(type, "STRING"))
		rc = UNSUP;
	return rc;
}

/* A whole schema (its own root for references); NULL with *rc. */
static json_object *
schema_root(json_object *in, int *rc)
{
	struct sctx cx = { .root = in, .depth = 0, .nodes = 0 };

	return sub_schema(&cx, in, rc);
}

/* ---- messages ---- */

struct tr {
	json_object *messages;  /* the client's, borrowed */
	const char *model;
	json_object *contents;  /* built */
	json_object *tool_parts;/* the open run of tool messages' parts */
	struct rf_buf sys;      /* the system instruction's text */
	struct rf_buf scratch;
	bool fold;              /* Gemma: the system text opens the first
	                         * user turn instead */
};

/* Gemini 3 and later: it wants the thought signature of a replayed
 * functionCall, and takes JSON output beside tools. */
static bool
gemini3(const char *model)
{
	return strncmp(model, "gemini-", 7) == 0 && atoi(model + 7) >= 3;
}

static json_object *
text_part(const char *text)
{
	json_object *part = json_object_new_object();

	set_str(part, "text", text);
	return part;
}

static json_object *
inline_data(const char *mime, size_t mlen, const char *data)
{
	json_object *part = json_object_new_object();
	json_object *in = json_object_new_object();

	json_object_object_add(in, "mimeType",
	    json_object_new_string_len(mime, (int)mlen));
	set_str(in, "data", data);
	json_object_object_add(part, "inlineData", in);
	return part;
}

/* "data:<type>/<subtype>;base64,<data>" as an inlineData part; NULL for
 * any other URL (Gemini cannot fetch one for us). */
static json_object *
data_url_part(const char *url)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-/";
	const char *mime, *comma;
	size_t mlen;

	if (url == NULL || strncmp(url, "data:", 5) != 0)
		return NULL;
	mime = url + 5;
	if ((comma = strchr(mime, ',')) == NULL || comma[1] == '\0' ||
	    (size_t)(comma - mime) < 8 ||
	    strncmp(comma - 7, ";base64", 7) != 0)
		return NULL;
	mlen = (size_t)(comma - 7 - mime);
	if (mlen == 0 || mlen > 100 || memchr(mime, '/', mlen) == NULL ||
	    strspn(mime, ok) < mlen)
		return NULL;
	return inline_data(mime, mlen, comma + 1);
}

/* One part of a user message: text, an image as a data: URL, or audio
 * (wav, mp3).  NULL for anything else. */
static json_object *
user_part(json_object *part)
{
	const char *type = rf_adapter_str(part, "type");
	const char *text = rf_adapter_str(part, "text");
	const char *url = rf_adapter_str(part, "image_url.url");
	const char *fmt = rf_adapter_str(part, "input_audio.format");
	const char *data = rf_adapter_str(part, "input_audio.data");

	if (is(type, "text") && text != NULL)
		return text_part(text);
	if (is(type, "image_url"))
		return data_url_part(url != NULL ? url :
		    rf_adapter_str(part, "image_url"));
	if (is(type, "input_audio") && data != NULL && data[0] != '\0' &&
	    (is(fmt, "wav") || is(fmt, "mp3")))
		return inline_data(is(fmt, "wav") ? "audio/wav" : "audio/mp3",
		    9, data);
	return NULL;
}

static void
add_content(struct tr *t, const char *role, json_object *parts)
{
	json_object *c = json_object_new_object();

	set_str(c, "role", role);
	json_object_object_add(c, "parts", parts);
	json_object_array_add(t->contents, c);
}

static int
tr_user(struct tr *t, json_object *m)
{
	json_object *content = rf_adapter_get(m, "content");
	json_object *parts = json_object_new_array(), *part;
	size_t i, n;

	if (t->fold) {
		json_object_array_add(parts, text_part(rf_buf_str(&t->sys)));
		t->fold = false;
	}
	if (json_object_is_type(content, json_type_string)) {
		json_object_array_add(parts, text_part(
		    json_object_get_string(content)));
	} else if (json_object_is_type(content, json_type_array) &&
	    (n = json_object_array_length(content)) > 0) {
		for (i = 0; i < n; i++) {
			if ((part = user_part(json_object_array_get_idx(content,
			    i))) == NULL) {
				json_object_put(parts);
				return UNSUP;
			}
			json_object_array_add(parts, part);
		}
	} else {
		json_object_put(parts);
		return UNSUP;
	}
	add_content(t, "user", parts);
	return 0;
}

/* An assistant tool call as a functionCall part (its id kept, its
 * arguments string parsed back into the object Gemini wants); NULL when
 * it is not a function call with an object of arguments. */
static json_object *
call_part(json_object *c, bool signature)
{
	const char *type = rf_adapter_str(c, "type");
	const char *name = rf_adapter_str(c, "function.name");
	const char *args = rf_adapter_str(c, "function.arguments");
	const char *id = rf_adapter_str(c, "id");
	json_object *fc, *part, *obj;

	if ((type != NULL && !is(type, "function")) || name == NULL)
		return NULL;
	obj = args == NULL || args[0] == '\0' ? json_object_new_object() :
	    rf_adapter_json(args, strlen(args));
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return NULL;
	}
	fc = json_object_new_object();
	if (id != NULL)
		set_str(fc, "id", id);
	set_str(fc, "name", name);
	json_object_object_add(fc, "args", obj);
	part = json_object_new_object();
	json_object_object_add(part, "functionCall", fc);
	if (signature)
		set_str(part, "thoughtSignature", SKIP_SIGNATURE);
	return part;
}

static int
tr_assistant(struct tr *t, json_object *m)
{
	const char *text = rf_adapter_content_text(rf_adapter_get(m, "content"),
	    &t->scratch);
	json_object *calls = rf_adapter_get(m, "tool_calls");
	json_object *parts, *part;
	size_t i, n;

	if (text == NULL || (calls != NULL &&
	    !json_object_is_type(calls, json_type_array) &&
	    !json_object_is_type(calls, json_type_null)))
		return UNSUP;
	parts = json_object_new_array();
	if (text[0] != '\0')
		json_object_array_add(parts, text_part(text));
	n = json_object_is_type(calls, json_type_array) ?
	    json_object_array_length(calls) : 0;
	for (i = 0; i < n; i++) {
		if ((part = call_part(json_object_array_get_idx(calls, i),
		    i == 0 && gemini3(t->model))) == NULL) {
			json_object_put(parts);
			return UNSUP;
		}
		json_object_array_add(parts, part);
	}
	if (json_object_array_length(parts) == 0) {
		json_object_put(parts); /* an empty turn says nothing */
		return 0;
	}
	add_content(t, "model", parts);
	return 0;
}

/* A tool message as a functionResponse part: the name is the answered
 * call's, the response its content (a JSON object as is, other text as
 * {"output": text}, the key Google documents for a function's output).
 * A run of tool messages is one user turn. */
static int
tr_tool(struct tr *t, json_object *m, size_t at)
{
	const char *id = rf_adapter_str(m, "tool_call_id");
	const char *name = rf_adapter_tool_name(t->messages, at, id);
	const char *text = rf_adapter_content_text(rf_adapter_get(m, "content"),
	    &t->scratch);
	json_object *resp, *fr, *part;

	if (name == NULL || text == NULL)
		return UNSUP;
	resp = rf_adapter_json(text, strlen(text));
	if (!json_object_is_type(resp, json_type_object)) {
		json_object_put(resp);
		resp = json_object_new_object();
		set_str(resp, "output", text);
	}
	fr = json_object_new_object();
	set_str(fr, "id", id);
	set_str(fr, "name", name);
	json_object_object_add(fr, "response", resp);
	part = json_object_new_object();
	json_object_object_add(part, "functionResponse", fr);
	if (t->tool_parts == NULL) {
		t->tool_parts = json_object_new_array();
		add_content(t, "user", t->tool_parts);
	}
	json_object_array_add(t->tool_parts, part);
	return 0;
}

/* Every system and developer message, joined by blank lines. */
static int
tr_system(struct tr *t)
{
	size_t i, n = json_object_array_length(t->messages);
	const char *role, *text;
	json_object *m;

	for (i = 0; i < n; i++) {
		m = json_object_array_get_idx(t->messages, i);
		role = rf_adapter_str(m, "role");
		if (!is(role, "system") && !is(role, "developer"))
			continue;
		text = rf_adapter_content_text(rf_adapter_get(m, "content"),
		    &t->scratch);
		if (text == NULL)
			return UNSUP;
		if ((t->sys.len > 0 && rf_buf_puts(&t->sys, "\n\n") != 0) ||
		    rf_buf_puts(&t->sys, text) != 0)
			return -1;
	}
	return 0;
}

static int
tr_messages(struct tr *t)
{
	size_t i, n;
	const char *role;
	json_object *m;
	int rc;

	if (!json_object_is_type(t->messages, json_type_array))
		return UNSUP;
	if ((rc = tr_system(t)) != 0)
		return rc;
	t->fold = is_gemma(t->model) && t->sys.len > 0;
	n = json_object_array_length(t->messages);
	for (i = 0; i < n && rc == 0; i++) {
		m = json_object_array_get_idx(t->messages, i);
		role = rf_adapter_str(m, "role");
		if (is(role, "system") || is(role, "developer"))
			continue;
		if (!is(role, "tool"))
			t->tool_parts = NULL;
		if (is(role, "user"))
			rc = tr_user(t, m);
		else if (is(role, "assistant"))
			rc = tr_assistant(t, m);
		else if (is(role, "tool"))
			rc = tr_tool(t, m, i);
		else
			rc = UNSUP;
	}
	/* Gemini answers only a conversation with a turn in it. */
	if (rc == 0 && (json_object_array_length(t->contents) == 0 || t->fold))
		rc = UNSUP;
	return rc;
}

/* ---- tools, tool_choice, formats, sampling ---- */

/* One function of "tools" as a functionDeclaration.  Parameters must be
 * an object; one without properties is left out (Gemini refuses an
 * OBJECT without them). */
static int
tr_function(json_object *tool, json_object *decls)
{
	json_object *fn = rf_adapter_get(tool, "function");
	json_object *params = rf_adapter_get(fn, "parameters"), *d, *s = NULL;
	json_object *props;
	const char *name = rf_adapter_str(fn, "name");
	const char *desc = rf_adapter_str(fn, "description");
	int rc = 0;

	if (!is(rf_adapter_str(tool, "type"), "function") || name == NULL)
		return UNSUP;
	if (params != NULL && !json_object_is_type(params, json_type_null) &&
	    (s = schema_root(params, &rc)) == NULL)
		return rc;
	if (s != NULL && !is(rf_adapter_str(s, "type"), "OBJECT")) {
		json_object_put(s);
		return UNSUP;
	}
	d = json_object_new_object();
	set_str(d, "name", name);
	if (desc != NULL)
		set_str(d, "description", desc);
	props = rf_adapter_get(s, "properties");
	if (json_object_is_type(props, json_type_object) &&
	    json_object_object_length(props) > 0)
		json_object_object_add(d, "parameters", json_object_get(s));
	json_object_put(s);
	json_object_array_add(decls, d);
	return 0;
}

static int
tr_tools(json_object *tools, json_object *root)
{
	json_object *decls, *wrap, *arr;
	size_t i, n;
	int rc = 0;

	if (!json_object_is_type(tools, json_type_array))
		return UNSUP;
	if ((n = json_object_array_length(tools)) == 0)
		return 0;
	decls = json_object_new_array();
	for (i = 0; i < n && rc == 0; i++)
		rc = tr_function(json_object_array_get_idx(tools, i), decls);
	if (rc != 0) {
		json_object_put(decls);
		return rc;
	}
	wrap = json_object_new_object();
	json_object_object_add(wrap, "functionDeclarations", decls);
	arr = json_object_new_array();
	json_object_array_add(arr, wrap);
	json_object_object_add(root, "tools", arr);
	return 0;
}

/* tool_choice as toolConfig.functionCallingConfig: auto AUTO, none
 * NONE, required ANY, a named function ANY limited to it. */
static int
tr_tool_choice(json_object *tc, json_object *root)
{
	const char *s = json_object_is_type(tc, json_type_string) ?
	    json_object_get_string(tc) : NULL;
	const char *name = rf_adapter_str(tc, "function.name");
	json_object *cfg, *wrap, *names;

	if (s == NULL && !(is(rf_adapter_str(tc, "type"), "function") &&
	    name != NULL))
		return UNSUP;
	if (s != NULL && !is(s, "auto") && !is(s, "none") && !is(s, "required"))
		return UNSUP;
	cfg = json_object_new_object();
	set_str(cfg, "mode", s == NULL || is(s, "required") ? "ANY" :
	    is(s, "none") ? "NONE" : "AUTO");
	if (s == NULL) {
		names = json_object_new_array();
		json_object_array_add(names, json_object_new_string(name));
		json_object_object_add(cfg, "allowedFunctionNames", names);
	}
	wrap = json_object_new_object();
	json_object_object_add(wrap, "functionCallingConfig", cfg);
	json_object_object_add(root, "toolConfig", wrap);
	return 0;
}

/* tools, tool_choice and parallel_tool_calls.  Gemini has no switch for
 * parallel calls: false cannot be promised.  Gemma takes no tools. */
static int
tr_tooling(json_object *fields, const char *model, json_object *root)
{
	json_object *tools = rf_adapter_get(fields, "tools");
	json_object *tc = rf_adapter_get(fields, "tool_choice");
	json_object *par = rf_adapter_get(fields, "parallel_tool_calls");
	bool have = json_object_is_type(tools, json_type_array) &&
	    json_object_array_length(tools) > 0;
	int rc;

	if (tools != NULL && !json_object_is_type(tools, json_type_null) &&
	    !json_object_is_type(tools, json_type_array))
		return UNSUP;
	if (!have) /* without tools only "no call" can be asked */
		return tc == NULL || json_object_is_type(tc, json_type_null) ||
		    is(json_object_get_string(tc), "none") ||
		    is(json_object_get_string(tc), "auto") ? 0 : UNSUP;
	if (is_gemma(model) || (json_object_is_type(par, json_type_boolean) &&
	    !json_object_get_boolean(par)))
		return UNSUP;
	if ((rc = tr_tools(tools, root)) != 0)
		return rc;
	return tc == NULL || json_object_is_type(tc, json_type_null) ? 0 :
	    tr_tool_choice(tc, root);
}

/* response_format: json_object as responseMimeType application/json,
 * json_schema with its schema as responseSchema. */
static int
tr_format(json_object *rf, const char *model, json_object *gc)
{
	const char *type = rf_adapter_str(rf, "type");
	json_object *schema = rf_adapter_get(rf, "json_schema.schema"), *s;
	int rc = 0;

	if (rf == NULL || json_object_is_type(rf, json_type_null) ||
	    is(type, "text"))
		return 0;
	if ((!is(type, "json_object") && !is(type, "json_schema")) ||
	    is_gemma(model))
		return UNSUP;
	if (is(type, "json_schema") && schema != NULL) {
		if ((s = schema_root(schema, &rc)) == NULL)
			return rc;
		json_object_object_add(gc, "responseSchema", s);
	}
	set_str(gc, "responseMimeType", "application/json");
	return 0;
}

/* A number field (the client's own JSON value, kept as written). */
static bool
number(json_object *v)
{
	return json_object_is_type(v, json_type_double) ||
	    json_object_is_type(v, json_type_int);
}

/* Penalties other than 0 are refused by the 2.5 and later models
 * ("Penalty is not enabled for this model"); 1.x and 2.0 take them. */
static int
tr_penalty(json_object *v, const char *model, const char *key,
    json_object *gc)
{
	if (v == NULL || json_object_is_type(v, json_type_null))
		return 0;
	if (!number(v))
		return UNSUP;
	if (json_object_get_double(v) == 0.0)
		return 0;
	if (strncmp(model, "gemini-1.", 9) != 0 &&
	    strncmp(model, "gemini-2.0", 10) != 0)
		return UNSUP;
	json_object_object_add(gc, key, json_object_get(v));
	return 0;
}

/* stop: one string or at most 5 (Gemini's stopSequences limit). */
static int
tr_stop(json_object *stop, json_object *gc)
{
	json_object *arr;
	size_t i, n;

	if (stop == NULL || json_object_is_type(stop, json_type_null))
		return 0;
	if (json_object_is_type(stop, json_type_string)) {
		arr = json_object_new_array();
		json_object_array_add(arr, json_object_get(stop));
		json_object_object_add(gc, "stopSequences", arr);
		return 0;
	}
	if (!json_object_is_type(stop, json_type_array) ||
	    (n = json_object_array_length(stop)) > 5)
		return UNSUP;
	for (i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(stop, i),
		    json_type_string))
			return UNSUP;
	if (n > 0)
		json_object_object_add(gc, "stopSequences",
		    json_object_get(stop));
	return 0;
}

/* stop, seed (32 bits), top_p, penalties. */
static int
tr_sampling(json_object *fields, const char *model, json_object *gc)
{
	json_object *seed = rf_adapter_get(fields, "seed");
	json_object *top_p = rf_adapter_get(fields, "top_p");
	int rc;

	if ((rc = tr_stop(rf_adapter_get(fields, "stop"), gc)) != 0)
		return rc;
	if (seed != NULL && !json_object_is_type(seed, json_type_null)) {
		if (!json_object_is_type(seed, json_type_int) ||
		    json_object_get_int64(seed) < INT32_MIN ||
		    json_object_get_int64(seed) > INT32_MAX)
			return UNSUP;
		json_object_object_add(gc, "seed", json_object_get(seed));
	}
	if (top_p != NULL && !json_object_is_type(top_p, json_type_null)) {
		if (!number(top_p))
			return UNSUP;
		json_object_object_add(gc, "topP", json_object_get(top_p));
	}
	if ((rc = tr_penalty(rf_adapter_get(fields, "presence_penalty"), model,
	    "presencePenalty", gc)) != 0)
		return rc;
	return tr_penalty(rf_adapter_get(fields, "frequency_penalty"), model,
	    "frequencyPenalty", gc);
}

/* The whole body of a /v1 request into *out (NULL unless 0). */
static int
gemini_oai_body(const char *model, const struct rf_prompt *p,
    json_object **out)
{
	struct tr t = { .messages = p->oai->messages, .model = model };
	json_object *fields = p->oai->fields;
	json_object *root = json_object_new_object(), *gc, *si;
	int rc;

	t.contents = json_object_new_array();
	json_object_object_add(root, "contents", t.contents);
	rc = tr_messages(&t);
	if (rc == 0 && t.sys.len > 0 && !is_gemma(model)) {
		si = json_object_new_object();
		json_object_object_add(si, "parts", text_parts(NULL,
		    rf_buf_str(&t.sys)));
		json_object_object_add(root, "systemInstruction", si);
	}
	if (rc == 0)
		rc = tr_tooling(fields, model, root);
	gc = gemini_config(model, p);
	json_object_object_add(root, "generationConfig", gc);
	if (rc == 0)
		rc = tr_format(rf_adapter_get(fields, "response_format"), model,
		    gc);
	if (rc == 0)
		rc = tr_sampling(fields, model, gc);
	/* "Tool use with a response mime type: 'application/json' is
	 * unsupported" before Gemini 3. */
	if (rc == 0 && json_object_object_get_ex(root, "tools", NULL) &&
	    json_object_object_get_ex(gc, "responseMimeType", NULL) &&
	    !gemini3(model))
		rc = UNSUP;
	rf_buf_free(&t.sys);
	rf_buf_free(&t.scratch);
	if (rc != 0)
		json_object_put(root);
	*out = rc == 0 ? root : NULL;
	return rc;
}

/* ---- the request ---- */

static int
gemini_build(const struct rf_provider_conf *pc, const struct rf_prompt *p,
    bool stream, struct rf_up_req *rq)
{
	const char *model = p->model != NULL ? p->model : pc->model;
	json_object *root = NULL;
	int rc = -1, brc;

	rf_adapter_req_clear(rq);
	/* Without alt=sse the stream is one JSON array, not SSE. */
	if (rf_buf_printf(&rq->url, "%s/models/", pc->url) != 0 ||
	    url_segment(&rq->url, model) != 0 ||
	    rf_buf_puts(&rq->url, stream ? ":streamGenerateContent?alt=sse" :
	    ":generateContent") != 0)
		goto out;
	if (p->oai != NULL && (brc = gemini_oai_body(model, p, &root)) != 0) {
		rc = brc;
		goto out;
	}
	if ((root == NULL && (root = gemini_body(model, p)) == NULL) ||
	    rf_adapter_json_out(root, &rq->body) != 0)
		goto out;
	if (gemini_headers(pc, stream, rq) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		rf_adapter_req_clear(rq);
	json_object_put(root);
	return rc;
}

/* ---- errors ---- */

/* google.rpc.RetryInfo {"retryDelay":"34.4s"} in error.details[]; -1. */
static int64_t
retry_delay(json_object *err)
{
	json_object *det = rf_adapter_get(err, "details"), *d;
	const char *type, *delay, *end;
	size_t i, n, tl;
	int64_t ms;

	n = json_object_is_type(det, json_type_array) ?
	    json_object_array_length(det) : 0;
	for (i = 0; i < n; i++) {
		d = json_object_array_get_idx(det, i);
		type = rf_adapter_str(d, "@type");
		delay = rf_adapter_str(d, "retryDelay");
		if (type == NULL || delay == NULL)
			continue;
		tl = strlen(type);
		if (tl < 20 || strcmp(type + tl - 20, "google.rpc.RetryInfo") != 0)
			continue;
		/* The unit is required: a bare "7" is not a retryDelay. */
		if ((ms = rf_adapter_unit_duration(delay, &end)) >= 0 &&
		    *end == '\0')
			return ms;
	}
	return -1;
}

/* The first error.details[].reason (ErrorInfo), e.g. API_KEY_INVALID. */
static const char *
detail_reason(json_object *err)
{
	json_object *det = rf_adapter_get(err, "details");
	const char *r;
	size_t i, n;

	n = json_object_is_type(det, json_type_array) ?
	    json_object_array_length(det) : 0;
	for (i = 0; i < n; i++)
		if ((r = rf_adapter_str(json_object_array_get_idx(det, i),
		    "reason")) != NULL)
			return r;
	return NULL;
}

/* Google's canonical status names refine the bare HTTP status. */
static enum rf_err
status_name_err(long status, const char *st, const char *reason,
    const char *msg)
{
	if (is(reason, "API_KEY_INVALID") ||
	    (status == 400 && rf_adapter_has(msg, "API key not valid")))
		return RF_ERR_PROVIDER_AUTH;
	if (is(st, "PERMISSION_DENIED") || is(st, "UNAUTHENTICATED"))
		return RF_ERR_PROVIDER_AUTH;
	if (is(st, "RESOURCE_EXHAUSTED"))
		return RF_ERR_PROVIDER_RATE_LIMITED;
	if (is(st, "DEADLINE_EXCEEDED"))
		return RF_ERR_PROVIDER_TIMEOUT;
	if (is(st, "UNAVAILABLE") || is(st, "INTERNAL"))
		return RF_ERR_PROVIDER_UNAVAILABLE;
	if (status == 400 && (rf_adapter_has(msg, "content policy") ||
	    rf_adapter_has(msg, "content_policy") ||
	    rf_adapter_has(msg, "content_filter") ||
	    rf_adapter_has(msg, "PROHIBITED_CONTENT")))
		return RF_ERR_CONTENT_FILTERED;
	return rf_adapter_status_err(status);
}

/* Classify an error object (NULL when the body had none). */
static void
classify_obj(long status, json_object *err, struct rf_failure *f)
{
	const char *st = rf_adapter_str(err, "status");
	const char *reason = detail_reason(err);
	const char *msg = rf_adapter_str(err, "message");
	enum rf_err e = status_name_err(status, st, reason, msg);

	rf_adapter_http_failure(f, e, status,
	    rf_adapter_safe_code(reason) ? reason : st);
	f->auth = e == RF_ERR_PROVIDER_AUTH;
	if (e == RF_ERR_CONTENT_FILTERED)
		rf_adapter_policy_message(f, msg);
	if (e == RF_ERR_PROVIDER_RATE_LIMITED)
		f->retry_after_ms = retry_delay(err);
}

static void
gemini_classify(long status, const char *body, size_t len,
    struct rf_failure *f)
{
	json_object *root = rf_adapter_json(body, len);
	json_object *err = rf_adapter_get(root, "error");

	if (!json_object_is_type(err, json_type_object))
		err = NULL;
	classify_obj(status, err, f);
	json_object_put(root);
}

/* A top-level error inside a 200 body, classified by its own code. */
static void
inbody_failure(json_object *err, struct rf_failure *f, const char *what)
{
	const char *st = rf_adapter_str(err, "status");
	long code = 0;

	if (!rf_adapter_long(err, "code", &code) || code < 400 || code > 599)
		code = 500;
	classify_obj(code, err, f);
	if (rf_adapter_safe_code(st))
		snprintf(f->details, sizeof(f->details), "%s, code %s", what, st);
	else
		snprintf(f->details, sizeof(f->details), "%s", what);
}

/* An error inside a stream: rate limited (with its retry delay) or
 * unavailable; nothing else makes sense once the 200 has arrived. */
static void
stream_failure(json_object *err, struct rf_failure *f, const char *what)
{
	const char *st = rf_adapter_str(err, "status");
	long code = 0;
	bool rate;

	rate = is(st, "RESOURCE_EXHAUSTED") ||
	    (rf_adapter_long(err, "code", &code) && code == 429);
	rf_failure_set(f, rate ? RF_ERR_PROVIDER_RATE_LIMITED :
	    RF_ERR_PROVIDER_UNAVAILABLE, NULL);
	if (rate)
		f->retry_after_ms = retry_delay(err);
	if (rf_adapter_safe_code(st))
		snprintf(f->details, sizeof(f->details), "%s, code %s", what, st);
	else
		snprintf(f->details, sizeof(f->details), "%s", what);
}

/* ---- answers and chunks ---- */

/* The finish reason in OpenAI's terms: STOP after function calls is
 * tool_calls, MAX_TOKENS length, the safety reasons content_filter,
 * anything else stop. */
static void
set_finish(struct rf_result *acc, const char *fr)
{
	static const char *const safety[] = { "SAFETY", "RECITATION",
	    "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", NULL };
	const char *norm = acc->ntool_calls > 0 ? "tool_calls" : "stop";
	size_t i;

	if (is(fr, "MAX_TOKENS"))
		norm = "length";
	for (i = 0; safety[i] != NULL; i++)
		if (is(fr, safety[i])) {
			norm = "content_filter";
			acc->safety_block = true;
			rf_adapter_copy(acc->safety_reason,
			    sizeof(acc->safety_reason), fr);
		}
	rf_adapter_copy(acc->finish_reason, sizeof(acc->finish_reason), norm);
}

/* Running totals: a missing figure never overwrites a known one. */
static void
read_meta(json_object *root, struct rf_result *acc, bool chunk)
{
	long n;

	if (rf_adapter_long(root, "usageMetadata.promptTokenCount", &n) && n >= 0)
		acc->usage.prompt_tokens = n;
	if (rf_adapter_long(root, "usageMetadata.candidatesTokenCount", &n) &&
	    n >= 0)
		acc->usage.completion_tokens = n;
	if (!chunk || acc->model[0] == '\0')
		rf_adapter_copy(acc->model, sizeof(acc->model),
		    rf_adapter_str(root, "modelVersion"));
}

/* Append candidates[0].content.parts[*].text to out, skipping thoughts,
 * and each functionCall part to calls.  0, -1 when the shape is wrong,
 * -2 when out is full. */
static int
read_parts(json_object *c0, struct rf_buf *out, json_object *calls)
{
	json_object *parts, *part, *text, *content, *fc;
	size_t i, n;

	if (!json_object_object_get_ex(c0, "content", &content) ||
	    json_object_is_type(content, json_type_null))
		return 0; /* blocked output or thinking budget used up */
	if (!json_object_is_type(content, json_type_object))
		return -1;
	if (!json_object_object_get_ex(content, "parts", &parts) ||
	    json_object_is_type(parts, json_type_null))
		return 0;
	if (!json_object_is_type(parts, json_type_array))
		return -1;
	n = json_object_array_length(parts);
	for (i = 0; i < n; i++) {
		part = json_object_array_get_idx(parts, i);
		if (!json_object_is_type(part, json_type_object))
			return -1;
		if (json_object_object_get_ex(part, "functionCall", &fc)) {
			if (!json_object_is_type(fc, json_type_object))
				return -1;
			json_object_array_add(calls, json_object_get(fc));
			continue;
		}
		if (json_object_get_boolean(rf_adapter_get(part, "thought")) ||
		    !json_object_object_get_ex(part, "text", &text) ||
		    !json_object_is_type(text, json_type_string))
			continue;
		if (rf_buf_append(out, json_object_get_string(text),
		    (size_t)json_object_get_string_len(text)) != 0)
			return -2;
	}
	return 0;
}

/*
 * A fragment's functionCall parts as OpenAI tool calls appended to tools:
 * whole (chat: one array) or as one stream delta (each with its index),
 * numbered after the base calls made before.  The arguments object
 * becomes the JSON string OpenAI sends; an id Gemini did not give is
 * call_<index>.  0, -1 when a call has no name or its args are not an
 * object, -2 when tools is full.
 */
static int
write_calls(json_object *calls, int base, bool chunk, struct rf_buf *tools)
{
	json_object *arr = json_object_new_array(), *fc, *av;
	size_t i, n = json_object_array_length(calls);
	const char *id, *name, *args;
	char gen[32];
	int rc = 0, at;

	for (i = 0; i < n && rc == 0; i++) {
		fc = json_object_array_get_idx(calls, i);
		at = base + (int)i;
		av = rf_adapter_get(fc, "args");
		name = rf_adapter_str(fc, "name");
		args = av == NULL || json_object_is_type(av, json_type_null) ||
		    json_object_is_type(av, json_type_object) ?
		    rf_adapter_tool_args(av) : NULL;
		if (name == NULL || args == NULL ||
		    at >= RF_ADAPTER_MAX_TOOL_CALLS) {
			rc = -1;
			break;
		}
		if ((id = rf_adapter_str(fc, "id")) == NULL || id[0] == '\0') {
			snprintf(gen, sizeof(gen), "call_%d", at);
			id = gen;
		}
		json_object_array_add(arr, rf_adapter_tool_call(chunk ? at : -1,
		    id, name, args));
	}
	if (rc == 0 && rf_adapter_json_out(arr, tools) != 0)
		rc = -2;
	json_object_put(arr);
	return rc;
}

static void
buf_cut(struct rf_buf *b, size_t n)
{
	if (b->data != NULL && n <= b->len) {
		b->len = n;
		b->data[n] = '\0';
	}
}

static bool
usage_only(json_object *root)
{
	return rf_adapter_get(root, "usageMetadata") != NULL ||
	    rf_adapter_get(root, "modelVersion") != NULL;
}

/* candidates[0]: text to out, function calls to tools, the finish reason
 * and the count of calls into acc.  0, -1, -2 as read_fragment; on an
 * error nothing is changed. */
static int
read_candidate(json_object *c0, struct rf_result *acc, struct rf_buf *out,
    struct rf_buf *tools, bool chunk, const char **why)
{
	json_object *calls;
	size_t mark = out->len, tmark = tools->len, n;
	const char *fr = rf_adapter_str(c0, "finishReason");
	int rc;

	*why = "candidates[0].content is not the expected shape";
	if (!json_object_is_type(c0, json_type_object))
		return -1;
	calls = json_object_new_array();
	rc = read_parts(c0, out, calls);
	if (rc == 0 && (n = json_object_array_length(calls)) > 0) {
		*why = "a functionCall of candidates[0] is not the expected shape";
		if ((rc = write_calls(calls, acc->ntool_calls, chunk, tools)) == 0)
			acc->ntool_calls += (int)n;
	}
	json_object_put(calls);
	if (rc != 0) {
		buf_cut(out, mark);
		buf_cut(tools, tmark);
		return rc;
	}
	if (fr != NULL || (!chunk && acc->ntool_calls > 0))
		set_finish(acc, fr != NULL ? fr : "STOP");
	return 0;
}

/*
 * One GenerateContentResponse (a whole answer, or one stream fragment):
 * text to out, function calls to tools, the rest into acc.  Returns 0,
 * -1 malformed (*why says where), -2 when out or tools is full; on an
 * error out, tools and acc are unchanged.
 */
static int
read_fragment(json_object *root, struct rf_result *acc, struct rf_buf *out,
    struct rf_buf *tools, bool chunk, const char **why)
{
	json_object *cands = rf_adapter_get(root, "candidates"), *c0 = NULL;
	const char *block = rf_adapter_str(root, "promptFeedback.blockReason");
	int rc;

	*why = "missing candidates";
	if (json_object_is_type(cands, json_type_array))
		c0 = json_object_array_get_idx(cands, 0);
	else if (cands != NULL && !json_object_is_type(cands, json_type_null))
		return -1;
	if (c0 == NULL && block == NULL && !(chunk && usage_only(root)))
		return -1;
	if (c0 != NULL) {
		if ((rc = read_candidate(c0, acc, out, tools, chunk, why)) != 0)
			return rc;
	} else if (block != NULL) {
		acc->safety_block = true;
		rf_adapter_copy(acc->safety_reason, sizeof(acc->safety_reason),
		    block);
		rf_adapter_copy(acc->finish_reason, sizeof(acc->finish_reason),
		    "content_filter");
	}
	read_meta(root, acc, chunk);
	return 0;
}

static int
gemini_parse_response(const char *body, size_t len, struct rf_result *res,
    struct rf_failure *f)
{
	json_object *root = rf_adapter_json(body, len);
	json_object *err = rf_adapter_get(root, "error");
	const char *why;
	int rc = -1;

	if (!json_object_is_type(root, json_type_object)) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE,
		    "response is not a JSON object");
	} else if (err != NULL && !json_object_is_type(err, json_type_null)) {
		inbody_failure(err, f, "error object in 200 response");
	} else if ((rc = read_fragment(root, res, &res->text, &res->tool_calls,
	    false, &why)) != 0) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE, rc == -2 ?
		    "candidates[0] text too large" : why);
		rc = -1;
	}
	json_object_put(root);
	return rc;
}

static enum rf_chunk
gemini_parse_chunk(const char *event, const char *data, size_t len,
    struct rf_result *acc, struct rf_buf *delta, struct rf_buf *tools,
    struct rf_failure *f)
{
	json_object *root;
	json_object *err;
	const char *why;
	enum rf_chunk rc = RF_CHUNK_DATA;
	int r;

	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		return RF_CHUNK_DONE; /* Gemini sends none; harmless if it does */
	root = rf_adapter_json(data, len);
	err = rf_adapter_get(root, "error");
	if (event != NULL && strcmp(event, "error") == 0) {
		stream_failure(json_object_is_type(err, json_type_object) ?
		    err : NULL, f, "in-stream error event");
		rc = RF_CHUNK_ERROR;
	} else if (!json_object_is_type(root, json_type_object)) {
		rc = RF_CHUNK_MALFORMED;
	} else if (err != NULL && !json_object_is_type(err, json_type_null)) {
		stream_failure(json_object_is_type(err, json_type_object) ?
		    err : NULL, f, "in-stream error");
		rc = RF_CHUNK_ERROR;
	} else if ((r = read_fragment(root, acc, delta, tools, true, &why)) ==
	    -1) {
		rc = RF_CHUNK_MALFORMED;
	} else if (r == -2) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE, "stream text too large");
		rc = RF_CHUNK_ERROR;
	}
	json_object_put(root);
	return rc;
}

/* ---- the wire and its provider ---- */

const struct rf_provider_ops rf_ops_gemini = {
	.build = gemini_build,
	.parse_response = gemini_parse_response,
	.parse_chunk = gemini_parse_chunk,
	.classify_error = gemini_classify,
};
