/*
 * provider_mock: the built-in last tier (docs/providers.md), rf_provider_mock
 * with its in-process wire rf_ops_mock (the answer and next_token slots of
 * struct rf_provider_ops; the network slots stay NULL).  It answers
 * deterministically from the prompt (quoting the question, shortened at a
 * word boundary with an ellipsis), says plainly that this is the demo
 * path, and reports token counts, so the whole product (streams, logs,
 * charts) works with no key configured.  No I/O: the streaming pace is the
 * chain's business; this file only cuts the text into word tokens.
 *
 * A /v1 request with tools gets a deterministic tool call (docs/openai.md): the function tool_choice names, else the first, with arguments
 * made up from its JSON schema's required properties, finish_reason
 * tool_calls; and after a tool message, text that quotes the tool's
 * result -- so a whole tool round trip works offline.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"

#define MOCK_QUOTE_CHARS 60
#define MOCK_ELLIPSIS "\xe2\x80\xa6" /* U+2026, marks a shortened quote */
/* The quote's characters (up to 4 bytes each), the ellipsis, the NUL. */
#define MOCK_QUOTE_BYTES (MOCK_QUOTE_CHARS * 4 + sizeof(MOCK_ELLIPSIS))

/* The last user message (the question being asked). */
static const char *
last_user(const struct rf_prompt *p)
{
	size_t i;

	for (i = p->nmsgs; i > 0; i--)
		if (p->msgs[i - 1].role != NULL &&
		    strcmp(p->msgs[i - 1].role, "user") == 0 &&
		    p->msgs[i - 1].content != NULL)
			return p->msgs[i - 1].content;
	return "";
}

/* Bytes of the character at s: a lead byte and its continuations. */
static size_t
char_len(const char *s)
{
	size_t n = 1;

	while (n < 4 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n++;
	return n;
}

/* A blank for the quote: whitespace and control characters. */
static bool
blank(const char *s)
{
	return (unsigned char)*s <= 0x20 || *s == 0x7f;
}

/* A longer prompt is cut back to the end of its last whole word (a word
 * cut in half reads like a bug), without a separator left dangling, and
 * marked with an ellipsis.  o is the length of out so far, cut the offset
 * of its last word boundary (0: none), mid_word whether the cut fell inside
 * a word. */
static size_t
mark_cut(char *out, size_t o, size_t cut, bool mid_word)
{
	if (mid_word && cut > 0)
		o = cut;
	while (o > 1 && strchr(",;:", out[o - 1]) != NULL)
		o--;
	memcpy(out + o, MOCK_ELLIPSIS, sizeof(MOCK_ELLIPSIS) - 1);
	return o + sizeof(MOCK_ELLIPSIS) - 1;
}

/* At most MOCK_QUOTE_CHARS characters of s with every run of whitespace
 * or control characters collapsed to one space, trimmed, never cutting a
 * UTF-8 sequence or (unless one word is longer than the quote) a word in
 * half.  outlen must be at least MOCK_QUOTE_BYTES. */
static void
quote_prompt(const char *s, char *out, size_t outlen)
{
	size_t o = 0, chars = 0, cut = 0, n, room;
	bool space = false, more = false;

	/* Room for the text; the ellipsis and the NUL always fit after it. */
	room = outlen - sizeof(MOCK_ELLIPSIS);
	for (; *s != '\0'; s += n) {
		n = char_len(s);
		if (blank(s)) {
			space = o > 0;
			continue;
		}
		if (chars + (space ? 1 : 0) + 1 > MOCK_QUOTE_CHARS ||
		    o + (space ? 1 : 0) + n > room) {
			more = true;
			break;
		}
		if (space) {
			cut = o;
			out[o++] = ' ';
			chars++;
			space = false;
		}
		memcpy(out + o, s, n);
		o += n;
		chars++;
	}
	if (more)
		o = mark_cut(out, o, cut, !space);
	out[o] = '\0';
}

static long
count_words(const char *s)
{
	long words = 0;
	bool in = false;

	for (; *s != '\0'; s++) {
		if (isspace((unsigned char)*s))
			in = false;
		else if (!in)
			in = true, words++;
	}
	return words;
}

/* Characters of everything the model would read. */
static long
prompt_chars(const struct rf_prompt *p)
{
	long n = 0;
	size_t i;

	if (p->system != NULL)
		n += (long)rf_utf8_len(p->system, strlen(p->system));
	for (i = 0; i < p->nmsgs; i++)
		if (p->msgs[i].content != NULL)
			n += (long)rf_utf8_len(p->msgs[i].content,
			    strlen(p->msgs[i].content));
	return n;
}

/* ---- tool calls ---- */

static bool
is(const char *s, const char *want)
{
	return s != NULL && strcmp(s, want) == 0;
}

static size_t
nmsgs(const struct rf_oai_params *oai)
{
	return json_object_is_type(oai->messages, json_type_array) ?
	    json_object_array_length(oai->messages) : 0;
}

/* The last message of a /v1 request, or NULL. */
static json_object *
last_msg(const struct rf_oai_params *oai)
{
	size_t n = nmsgs(oai);

	return n > 0 ? json_object_array_get_idx(oai->messages, n - 1) : NULL;
}

/* The tool to call: the one tool_choice names, else the first.  NULL
 * when the answer is text: no tools, tool_choice "none", or the last
 * message is a tool's result (the round trip's end). */
static json_object *
chosen_tool(const struct rf_oai_params *oai)
{
	json_object *tools = rf_adapter_get(oai->fields, "tools"), *t;
	json_object *tc = rf_adapter_get(oai->fields, "tool_choice");
	const char *want = rf_adapter_str(tc, "function.name");
	size_t i, n;

	if (!json_object_is_type(tools, json_type_array) ||
	    (json_object_is_type(tc, json_type_string) &&
	    is(json_object_get_string(tc), "none")) ||
	    is(rf_adapter_str(last_msg(oai), "role"), "tool"))
		return NULL;
	n = json_object_array_length(tools);
	for (i = 0; i < n; i++) {
		t = json_object_array_get_idx(tools, i);
		if (rf_adapter_str(t, "function.name") != NULL && (want == NULL ||
		    is(rf_adapter_str(t, "function.name"), want)))
			return t;
	}
	return NULL;
}

static json_object *example_object(json_object *schema, int depth);

/* The schema's type name: "type", or the first of a list that is not
 * "null"; implied by properties / items when absent ("string" else). */
static const char *
schema_type(json_object *schema)
{
	json_object *t = rf_adapter_get(schema, "type");
	const char *name;
	size_t i, n;

	if (json_object_is_type(t, json_type_string))
		return json_object_get_string(t);
	n = json_object_is_type(t, json_type_array) ?
	    json_object_array_length(t) : 0;
	for (i = 0; i < n; i++) {
		name = json_object_get_string(json_object_array_get_idx(t, i));
		if (name != NULL && !is(name, "null"))
			return name;
	}
	if (rf_adapter_get(schema, "properties") != NULL)
		return "object";
	return rf_adapter_get(schema, "items") != NULL ? "array" : "string";
}

/* A value for schema, made up deterministically: the first enum value,
 * the const, the first anyOf / oneOf choice, "example", 1, true, an array
 * of one example when minItems asks for one (else empty), an object of
 * its required properties. */
static json_object *
example_value(json_object *schema, int depth)
{
	json_object *v = rf_adapter_get(schema, "enum"), *arr;
	const char *t;
	long min = 0;

	if (depth > 8)
		return NULL;
	if (json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0)
		return json_object_get(json_object_array_get_idx(v, 0));
	if (json_object_object_get_ex(schema, "const", &v))
		return json_object_get(v);
	if ((v = rf_adapter_get(schema, "anyOf[0]")) != NULL ||
	    (v = rf_adapter_get(schema, "oneOf[0]")) != NULL)
		return example_value(v, depth + 1);
	t = schema_type(schema);
	if (is(t, "object"))
		return example_object(schema, depth + 1);
	if (is(t, "array")) {
		arr = json_object_new_array();
		if (rf_adapter_long(schema, "minItems", &min) && min > 0)
			json_object_array_add(arr, example_value(
			    rf_adapter_get(schema, "items"), depth + 1));
		return arr;
	}
	if (is(t, "integer") || is(t, "number"))
		return json_object_new_int(1);
	if (is(t, "boolean"))
		return json_object_new_boolean(1);
	return is(t, "null") ? NULL : json_object_new_string("example");
}

static json_object *
example_object(json_object *schema, int depth)
{
	json_object *obj = json_object_new_object();
	json_object *req = rf_adapter_get(schema, "required"), *props;
	const char *name;
	size_t i, n;

	props = rf_adapter_get(schema, "properties");
	n = json_object_is_type(req, json_type_array) ?
	    json_object_array_length(req) : 0;
	for (i = 0; i < n; i++) {
		name = json_object_get_string(json_object_array_get_idx(req, i));
		if (name != NULL && json_object_is_type(json_object_array_get_idx(
		    req, i), json_type_string))
			json_object_object_add(obj, name, example_value(
			    rf_adapter_get(props, name), depth));
	}
	return obj;
}

/* The answer: one call of tool, id call_mock_<messages so far> (unique
 * across the turns of a conversation). */
static void
mock_tool_call(const struct rf_oai_params *oai, json_object *tool,
    struct rf_result *res)
{
	json_object *args = example_object(rf_adapter_get(tool,
	    "function.parameters"), 0);
	json_object *arr = json_object_new_array();
	const char *a = rf_adapter_tool_args(args);
	char id[48];

	snprintf(id, sizeof(id), "call_mock_%zu", nmsgs(oai));
	json_object_array_add(arr, rf_adapter_tool_call(-1, id,
	    rf_adapter_str(tool, "function.name"), a));
	rf_buf_reset(&res->text);
	rf_buf_reset(&res->tool_calls);
	rf_adapter_json_out(arr, &res->tool_calls);
	res->ntool_calls = 1;
	snprintf(res->finish_reason, sizeof(res->finish_reason), "tool_calls");
	res->usage.completion_tokens = (long)(strlen(a) + 3) / 4 + 1;
	json_object_put(arr);
	json_object_put(args);
}

/* After a tool's result: text that quotes it. */
static void
mock_tool_result(const struct rf_oai_params *oai, struct rf_result *res)
{
	json_object *m = last_msg(oai);
	const char *name = rf_adapter_tool_name(oai->messages, nmsgs(oai),
	    rf_adapter_str(m, "tool_call_id"));
	struct rf_buf buf = { 0 };
	const char *text = rf_adapter_content_text(rf_adapter_get(m, "content"),
	    &buf);
	char quote[MOCK_QUOTE_BYTES];

	quote_prompt(text != NULL ? text : "", quote, sizeof(quote));
	rf_buf_reset(&res->text);
	rf_buf_printf(&res->text,
	    "The tool %s returned \"%s\". This is the RelayForge demo path: "
	    "the built-in mock answered because no upstream provider key is "
	    "configured or no provider could serve the request.",
	    name != NULL ? name : "call", quote);
	rf_buf_free(&buf);
}

/* ---- the answer ---- */

static void
mock_text(const struct rf_prompt *p, struct rf_result *res)
{
	char quote[MOCK_QUOTE_BYTES];

	quote_prompt(last_user(p), quote, sizeof(quote));
	rf_buf_reset(&res->text);
	rf_buf_printf(&res->text,
	    "This is the RelayForge demo path: the built-in mock answered "
	    "because no upstream provider key is configured or no provider "
	    "could serve the request. You asked about \"%s\". Configure "
	    "GROQ_API_KEY or another provider key for real answers.", quote);
}

static void
mock_answer(const struct rf_prompt *p, struct rf_result *res)
{
	json_object *tool = p->oai != NULL ? chosen_tool(p->oai) : NULL;
	long chars = prompt_chars(p);

	rf_buf_reset(&res->tool_calls);
	res->ntool_calls = 0;
	snprintf(res->model, sizeof(res->model), "%s", RF_MOCK_MODEL);
	snprintf(res->finish_reason, sizeof(res->finish_reason), "stop");
	res->usage.prompt_tokens = chars > 0 ? (chars + 3) / 4 : 1;
	res->safety_block = false;
	res->safety_reason[0] = '\0';
	if (tool != NULL) {
		mock_tool_call(p->oai, tool, res);
		return;
	}
	if (p->oai != NULL && is(rf_adapter_str(last_msg(p->oai), "role"),
	    "tool"))
		mock_tool_result(p->oai, res);
	else
		mock_text(p, res);
	res->usage.completion_tokens = count_words(rf_buf_str(&res->text));
}

/* A word plus the spaces after it (leading blanks ride with the first). */
static size_t
mock_next_token(const char *text, size_t *pos)
{
	size_t start = *pos, i = start;

	if (text == NULL)
		return 0;
	/* Leading blanks (only at the very start) ride with the first word. */
	while (text[i] != '\0' && isspace((unsigned char)text[i]))
		i++;
	while (text[i] != '\0' && !isspace((unsigned char)text[i]))
		i++;
	while (text[i] != '\0' && isspace((unsigned char)text[i]))
		i++;
	*pos = i;
	return i - start;
}

/* ---- the wire and its provider ---- */

const struct rf_provider_ops rf_ops_mock = {
	.answer = mock_answer,
	.next_token = mock_next_token,
};
