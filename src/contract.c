/*
 * contract: the front door for request bodies (docs/api.md).  A body
 * is parsed with a bounded depth and a strict grammar, its text checked
 * to be well-formed UTF-8, then checked key by key against small tables;
 * the first broken rule is reported with the field it names.  After this
 * module, nothing reads raw request JSON: struct rf_chat_req borrows its
 * strings from the parsed tree, which it owns until rf_contract_free().
 *
 * The UTF-8 check is ours, not json-c's: JSON_TOKENER_VALIDATE_UTF8 checks
 * only the shape of a sequence and lets overlong forms, UTF-16 surrogates
 * encoded in UTF-8 and code points above U+10FFFF through, and json-c
 * silently turns a lone \ud800 escape into U+FFFD.  Such text would reach
 * a provider, which may answer 400 -- so scan_text() walks the raw bytes
 * of every string after json-c accepted the grammar, follows the path of
 * objects and arrays on the way, and refuses the first bad string with a
 * validation_error on the field that holds it.  Bytes that are not UTF-8
 * outside any string break the grammar: invalid_json, from json-c.
 */
#include "contract.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define RF_SOURCE_MAX 64

/* A field or message cut by its buffer may end inside a character: drop
 * the partial sequence, so every refusal is well-formed UTF-8 (the field
 * echoes a key the client sent). */
static void
trim_partial(char *s)
{
	size_t n = strlen(s), i = n, need;
	unsigned char c;

	while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)s[i - 1];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (need > 1 && n - (i - 1) < need)
		s[i - 1] = '\0';
}

static int
vrefuse(struct rf_field_err *fe, enum rf_err code, const char *field,
    const char *fmt, va_list ap)
{
	fe->code = code;
	snprintf(fe->field, sizeof(fe->field), "%s", field ? field : "");
	vsnprintf(fe->message, sizeof(fe->message), fmt, ap);
	trim_partial(fe->field);
	trim_partial(fe->message);
	return -1;
}

/* Fill fe and return -1, so a check can end with `return refuse(...)`. */
static int __attribute__((format(printf, 4, 5)))
refuse(struct rf_field_err *fe, enum rf_err code, const char *field,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrefuse(fe, code, field, fmt, ap);
	va_end(ap);
	return -1;
}

int
rf_contract_refuse(struct rf_field_err *fe, enum rf_err code,
    const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrefuse(fe, code, field, fmt, ap);
	va_end(ap);
	return -1;
}

static int __attribute__((format(printf, 3, 4)))
invalid(struct rf_field_err *fe, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrefuse(fe, RF_ERR_VALIDATION, field, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- well-formed text ------------------------------------------------ */

/* The length of the well-formed UTF-8 sequence at s (at most n bytes), or
 * 0.  Unicode's table 3-7: the second byte's range excludes overlong
 * forms (E0, F0), surrogates (ED) and code points above U+10FFFF (F4);
 * C0, C1 and F5..FF never start a sequence. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

static int
hexval_of(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}


/* The code unit of the \uXXXX escape at p ("\u" included), or -1. */
static long
escape_unit(const unsigned char *p, const unsigned char *end)
{
	long v = 0;
	int i, h;

	if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
		return -1;
	for (i = 2; i < 6; i++) {
		if ((h = hexval_of(p[i])) < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* cp as UTF-8 into out; its length. */
static size_t
utf8_put(unsigned long cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

#define TEXT_KEY_MAX 48
#define TEXT_LEVELS (RF_JSON_MAX_DEPTH + 1)

/* One open object or array on the path to the string being read. */
struct level {
	bool array;
	bool want_key;            /* object: the next string is a key */
	bool key_full;            /* the key did not fit: the rest is dropped */
	size_t index;             /* array: the element being read */
	size_t key_len;
	char key[TEXT_KEY_MAX];   /* object: the key being read, decoded */
};

struct scan {
	const unsigned char *p, *end;
	struct level lv[TEXT_LEVELS];
	int depth;                /* open containers; lv holds the first ones */
};

enum text_err { TEXT_OK, TEXT_BYTES, TEXT_SURROGATE };

/* Add a whole character to the key, or stop adding (never half of one). */
static void
key_add(struct level *l, const char *c, size_t n)
{
	if (l->key_full || l->key_len + n >= sizeof(l->key)) {
		l->key_full = true;
		return;
	}
	memcpy(l->key + l->key_len, c, n);
	l->key_len += n;
	l->key[l->key_len] = '\0';
}

/* The escape at *pp (its backslash), decoded into c / *n.  A \u escape of
 * a high surrogate must be followed by one of a low surrogate. */
static enum text_err
read_escape(const unsigned char **pp, const unsigned char *end, char c[4],
    size_t *n)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const unsigned char *p = *pp;
	const char *at;
	long u, lo;

	if (end - p >= 2 && p[1] != 'u' && p[1] != '\0' &&
	    (at = strchr(from, p[1])) != NULL) {
		c[0] = to[at - from];
		*n = 1;
		*pp = p + 2;
		return TEXT_OK;
	}
	if ((u = escape_unit(p, end)) < 0)
		return TEXT_BYTES; /* json-c accepted it: cannot happen */
	p += 6;
	if (u >= 0xdc00 && u <= 0xdfff)
		return TEXT_SURROGATE;
	if (u >= 0xd800 && u <= 0xdbff) {
		lo = escape_unit(p, end);
		if (lo < 0xdc00 || lo > 0xdfff)
			return TEXT_SURROGATE;
		p += 6;
		u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
	}
	*n = u == 0 ? 0 : utf8_put((unsigned long)u, c); /* keys drop NUL */
	*pp = p;
	return TEXT_OK;
}

/* One string, from just after its opening quote to just after its closing
 * one; a key is decoded into key (NULL for a value) on the way. */
static enum text_err
scan_string(struct scan *sc, struct level *key)
{
	const unsigned char *p = sc->p, *end = sc->end;
	enum text_err e;
	char c[4];
	size_t n;

	while (p < end && *p != '"') {
		if (*p == '\\') {
			if ((e = read_escape(&p, end, c, &n)) != TEXT_OK)
				return e;
		} else {
			if ((n = utf8_seq(p, (size_t)(end - p))) == 0)
				return TEXT_BYTES;
			memcpy(c, p, n);
			p += n;
		}
		if (key != NULL)
			key_add(key, c, n);
	}
	sc->p = p < end ? p + 1 : p;
	return TEXT_OK;
}

/* The path through the first n levels ("messages[1].content"), or "body"
 * when there is none. */
static void
path_of(const struct scan *sc, int n, char *out, size_t len)
{
	size_t o = 0;
	int i, w;

	out[0] = '\0';
	for (i = 0; i < n && i < TEXT_LEVELS && o < len; i++) {
		const struct level *l = &sc->lv[i];

		w = l->array ? snprintf(out + o, len - o, "[%zu]", l->index) :
		    snprintf(out + o, len - o, "%s%s", i > 0 ? "." : "", l->key);
		if (w < 0)
			break;
		o += (size_t)w;
	}
	if (out[0] == '\0')
		snprintf(out, len, "body");
}

static int
text_refused(struct rf_field_err *fe, const char *field, enum text_err e)
{
	if (e == TEXT_SURROGATE)
		return invalid(fe, field, "%s holds a \\u escape of half a UTF-16 "
		    "surrogate pair; text must be well-formed UTF-8.", field);
	return invalid(fe, field, "%s must be well-formed UTF-8 (no overlong "
	    "forms, surrogates, code points above U+10FFFF or cut sequences).",
	    field);
}

static void
open_level(struct scan *sc, bool array)
{
	if (sc->depth < TEXT_LEVELS)
		sc->lv[sc->depth] = (struct level){ .array = array,
		    .want_key = !array };
	sc->depth++;
}

/* Walk the raw body json-c accepted (so its grammar is sound), following
 * the path of objects and arrays; refuse the first string that is not
 * well-formed text on the field that holds it (the object around it when
 * the string is a key). */
static int
scan_text(const char *body, size_t len, struct rf_field_err *fe)
{
	struct scan sc = { .p = (const unsigned char *)body,
	    .end = (const unsigned char *)body + len };
	struct level *top;
	enum text_err e;
	char field[sizeof(fe->field)];
	bool key;

	while (sc.p < sc.end) {
		unsigned char c = *sc.p++;

		top = sc.depth > 0 && sc.depth <= TEXT_LEVELS ?
		    &sc.lv[sc.depth - 1] : NULL;
		if (c == '{' || c == '[')
			open_level(&sc, c == '[');
		else if ((c == '}' || c == ']') && sc.depth > 0)
			sc.depth--;
		else if (c == ',' && top != NULL && top->array)
			top->index++;
		else if (c == ',' && top != NULL)
			top->want_key = true;
		else if (c == '"') {
			if ((key = top != NULL && !top->array && top->want_key))
				*top = (struct level){ .array = false };
			if ((e = scan_string(&sc, key ? top : NULL)) == TEXT_OK)
				continue;
			path_of(&sc, key ? sc.depth - 1 : sc.depth, field,
			    sizeof(field));
			return text_refused(fe, field, e);
		}
	}
	return 0;
}

/* Parse the whole buffer as one JSON value: strict grammar, at most
 * depth levels, nothing but whitespace after it.
 * *out may be NULL on success (the body was `null`). */
static int
parse_json(const char *body, size_t len, int depth, json_object **out,
    struct rf_field_err *fe)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	json_object *o;

	*out = NULL;
	if (len > INT_MAX - 1)
		return refuse(fe, RF_ERR_INVALID_JSON, NULL,
		    "The request body is too large to parse.");
	if (memchr(body, '\0', len) != NULL)
		return refuse(fe, RF_ERR_INVALID_JSON, NULL,
		    "The request body contains a NUL byte.");
	if ((tok = json_tokener_new_ex(depth)) == NULL)
		return refuse(fe, RF_ERR_INTERNAL, NULL, "Out of memory.");
	/* Text is checked by scan_text, more strictly than json-c would. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len);
	/* A bare number has no end of its own: say the input is over. */
	if ((jerr = json_tokener_get_error(tok)) == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	}
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		json_object_put(o);
		return refuse(fe, RF_ERR_INVALID_JSON, NULL,
		    "The request body is not valid JSON: %s.",
		    json_tokener_error_desc(jerr));
	}
	*out = o;
	return 0;
}

/* A JSON string without NUL characters (\u0000), into *s / *n. */
static int
get_string(json_object *v, const char *field, const char **s, size_t *n,
    struct rf_field_err *fe)
{
	if (!json_object_is_type(v, json_type_string))
		return invalid(fe, field, "%s must be a string.", field);
	*s = json_object_get_string(v);
	*n = (size_t)json_object_get_string_len(v);
	if (memchr(*s, '\0', *n) != NULL)
		return invalid(fe, field, "%s must not contain NUL characters.",
		    field);
	return 0;
}

static bool
blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

static int
get_bool(json_object *v, const char *field, bool *out,
    struct rf_field_err *fe)
{
	if (!json_object_is_type(v, json_type_boolean))
		return invalid(fe, field, "%s must be true or false.", field);
	*out = json_object_get_boolean(v);
	return 0;
}

static int
opt_strategy(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	const char *f = "options.strategy", *s;
	size_t n;
	int pid;

	if (get_string(v, f, &s, &n, fe) == -1)
		return -1;
	if (strcmp(s, "auto") == 0) {
		req->strategy = -1;
		return 0;
	}
	pid = rf_config_pid(s);
	if (pid < 0 || rf_config_chain_pos(cfg, pid) < 0)
		return invalid(fe, f, "options.strategy must be \"auto\" or the "
		    "id of a provider in the chain.");
	req->strategy = pid;
	return 0;
}

static int
opt_stream(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	bool ignored; /* informational: the endpoint decides */

	(void)cfg;
	(void)req;
	return get_bool(v, "options.stream", &ignored, fe);
}

static int
opt_max_tokens(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	int64_t n;

	/* json_type_int only: 5.5 and 512.0 are not integers on the wire. */
	if (!json_object_is_type(v, json_type_int) ||
	    (n = json_object_get_int64(v)) < 1 || n > cfg->max_tokens_limit)
		return invalid(fe, "options.maxTokens", "options.maxTokens must "
		    "be an integer between 1 and %d.", cfg->max_tokens_limit);
	req->max_tokens = (int)n;
	return 0;
}

static int
opt_temperature(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	double t;

	(void)cfg;
	/* json-c reads NaN and 1e400 as doubles: isfinite keeps them out. */
	if ((!json_object_is_type(v, json_type_double) &&
	    !json_object_is_type(v, json_type_int)) ||
	    !isfinite(t = json_object_get_double(v)) || t < 0.0 || t > 2.0)
		return invalid(fe, "options.temperature", "options.temperature "
		    "must be a number between 0 and 2.");
	req->temperature = t;
	return 0;
}

static int
opt_fallback(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	(void)cfg;
	return get_bool(v, "options.fallback", &req->fallback, fe);
}

static int
opt_recovery(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	const char *f = "options.streamRecovery", *s;
	size_t n;

	(void)cfg;
	if (get_string(v, f, &s, &n, fe) == -1)
		return -1;
	if (strcmp(s, "none") != 0 && strcmp(s, "restart") != 0)
		return invalid(fe, f, "options.streamRecovery must be \"none\" "
		    "or \"restart\".");
	req->restart = strcmp(s, "restart") == 0;
	return 0;
}

typedef int (*opt_fn)(const struct rf_config *, json_object *,
    struct rf_chat_req *, struct rf_field_err *);

/* The keys of "options" and their checks. */
static const struct {
	const char *key;
	opt_fn check;
} options[] = {
	{ "strategy", opt_strategy },
	{ "stream", opt_stream },
	{ "maxTokens", opt_max_tokens },
	{ "temperature", opt_temperature },
	{ "fallback", opt_fallback },
	{ "streamRecovery", opt_recovery },
};

static int
parse_options(const struct rf_config *cfg, json_object *o,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	char field[64];
	size_t i, nopt = sizeof(options) / sizeof(options[0]);

	if (!json_object_is_type(o, json_type_object))
		return invalid(fe, "options", "options must be an object.");
	json_object_object_foreach(o, key, val) {
		for (i = 0; i < nopt; i++)
			if (strcmp(key, options[i].key) == 0)
				break;
		snprintf(field, sizeof(field), "options.%s", key);
		if (i == nopt)
			return invalid(fe, field, "Unknown option %s.", field);
		/* null means "not given": the default stays. */
		if (val != NULL && options[i].check(cfg, val, req, fe) == -1)
			return -1;
	}
	return 0;
}

static int
parse_metadata(json_object *o, struct rf_chat_req *req,
    struct rf_field_err *fe)
{
	const char *f = "metadata.source";
	char field[64];
	size_t n;

	if (!json_object_is_type(o, json_type_object))
		return invalid(fe, "metadata", "metadata must be an object.");
	json_object_object_foreach(o, key, val) {
		snprintf(field, sizeof(field), "metadata.%s", key);
		if (strcmp(key, "source") != 0)
			return invalid(fe, field, "Unknown metadata key %s.", field);
		if (val == NULL)
			continue;
		if (get_string(val, f, &req->source, &n, fe) == -1)
			return -1;
		if (rf_utf8_len(req->source, n) > RF_SOURCE_MAX)
			return invalid(fe, f, "metadata.source must be at most %d "
			    "characters.", RF_SOURCE_MAX);
	}
	return 0;
}

static int
parse_prompt(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	const char *s;
	size_t n, chars;

	if (get_string(v, "prompt", &s, &n, fe) == -1)
		return -1;
	if (blank(s, n))
		return invalid(fe, "prompt", "prompt must not be blank.");
	chars = rf_utf8_len(s, n);
	if (chars > (size_t)cfg->max_prompt_chars)
		return invalid(fe, "prompt", "prompt must be at most %ld "
		    "characters.", cfg->max_prompt_chars);
	req->msgs[0].role = "user";
	req->msgs[0].content = s;
	req->nmsgs = 1;
	req->prompt_chars = (long)chars;
	return 0;
}

static bool
valid_role(const char *r)
{
	return strcmp(r, "system") == 0 || strcmp(r, "user") == 0 ||
	    strcmp(r, "assistant") == 0;
}

/* messages[i]: {"role": system|user|assistant, "content": string}. */
static int
parse_message(json_object *m, size_t i, struct rf_msg *out, size_t *chars,
    struct rf_field_err *fe)
{
	char field[64], base[24];
	const char *s = NULL, *role = NULL;
	size_t n = 0;

	snprintf(base, sizeof(base), "messages[%zu]", i);
	if (!json_object_is_type(m, json_type_object))
		return invalid(fe, base, "%s must be an object.", base);
	json_object_object_foreach(m, key, val) {
		snprintf(field, sizeof(field), "%s.%s", base, key);
		if (strcmp(key, "role") == 0) {
			if (get_string(val, field, &role, &n, fe) == -1)
				return -1;
			if (!valid_role(role))
				return invalid(fe, field, "%s must be system, user "
				    "or assistant.", field);
		} else if (strcmp(key, "content") == 0) {
			if (get_string(val, field, &s, &n, fe) == -1)
				return -1;
			*chars = rf_utf8_len(s, n);
			out->content = s;
			if (blank(s, n))
				out->content = NULL; /* checked below, by role */
		} else
			return invalid(fe, field, "Unknown key %s.", field);
	}
	snprintf(field, sizeof(field), "%s.role", base);
	if (role == NULL)
		return invalid(fe, field, "%s is required.", field);
	out->role = role;
	snprintf(field, sizeof(field), "%s.content", base);
	if (s == NULL)
		return invalid(fe, field, "%s is required.", field);
	/* A blank system message is harmless; a blank turn is a mistake. */
	if (out->content == NULL && strcmp(role, "system") != 0)
		return invalid(fe, field, "%s must not be blank.", field);
	out->content = s;
	return 0;
}

static int
parse_messages(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	char field[40];
	size_t i, n, chars, total = 0;

	if (!json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) < 1 || n > RF_MAX_MESSAGES)
		return invalid(fe, "messages", "messages must be an array of 1 "
		    "to %d messages.", RF_MAX_MESSAGES);
	for (i = 0; i < n; i++) {
		chars = 0;
		if (parse_message(json_object_array_get_idx(v, i), i,
		    &req->msgs[i], &chars, fe) == -1)
			return -1;
		total += chars;
	}
	req->nmsgs = n;
	if (strcmp(req->msgs[n - 1].role, "user") != 0) {
		snprintf(field, sizeof(field), "messages[%zu].role", n - 1);
		return invalid(fe, field, "The last message must have role "
		    "user.");
	}
	if (total > (size_t)cfg->max_prompt_chars)
		return invalid(fe, "messages", "messages must hold at most %ld "
		    "characters in all.", cfg->max_prompt_chars);
	req->prompt_chars = (long)total;
	return 0;
}

static int
parse_system(const struct rf_config *cfg, json_object *v,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	const char *s;
	size_t n;

	if (get_string(v, "system", &s, &n, fe) == -1)
		return -1;
	if (rf_utf8_len(s, n) > (size_t)cfg->max_prompt_chars)
		return invalid(fe, "system", "system must be at most %ld "
		    "characters.", cfg->max_prompt_chars);
	req->system = blank(s, n) ? NULL : s; /* blank = absent */
	return 0;
}

static bool
top_key_known(const char *k)
{
	static const char *const known[] = { "prompt", "messages", "system",
	    "options", "metadata" };
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(k, known[i]) == 0)
			return true;
	return false;
}

/* The rules of docs/api.md over an object root.  A key whose value is
 * null counts as absent (clients often send null for "not set"). */
static int
check_root(const struct rf_config *cfg, json_object *root,
    struct rf_chat_req *req, struct rf_field_err *fe)
{
	json_object *prompt = NULL, *msgs = NULL, *v = NULL;

	json_object_object_foreach(root, key, val) {
		(void)val;
		if (!top_key_known(key))
			return invalid(fe, key, "Unknown key %.48s.", key);
	}
	json_object_object_get_ex(root, "prompt", &prompt);
	json_object_object_get_ex(root, "messages", &msgs);
	if ((prompt == NULL) == (msgs == NULL))
		return invalid(fe, "prompt", "Provide exactly one of prompt or "
		    "messages.");
	if (prompt != NULL ? parse_prompt(cfg, prompt, req, fe) == -1 :
	    parse_messages(cfg, msgs, req, fe) == -1)
		return -1;
	if (json_object_object_get_ex(root, "system", &v) && v != NULL &&
	    parse_system(cfg, v, req, fe) == -1)
		return -1;
	if (json_object_object_get_ex(root, "options", &v) && v != NULL &&
	    parse_options(cfg, v, req, fe) == -1)
		return -1;
	if (json_object_object_get_ex(root, "metadata", &v) && v != NULL &&
	    parse_metadata(v, req, fe) == -1)
		return -1;
	return 0;
}

int
rf_contract_json(const char *body, size_t len, int depth, json_object **root,
    struct rf_field_err *fe)
{
	memset(fe, 0, sizeof(*fe));
	fe->code = RF_OK;
	if (parse_json(body, len, depth, root, fe) == -1)
		return -1;
	if (scan_text(body, len, fe) == 0)
		return 0;
	json_object_put(*root);
	*root = NULL;
	return -1;
}

static void
req_defaults(struct rf_chat_req *req)
{
	memset(req, 0, sizeof(*req));
	req->strategy = -1;
	req->fallback = true;
	req->restart = false;
	req->max_tokens = 512;
	req->temperature = 0.7;
	req->model_pid = -1;
}

int
rf_contract_parse(const struct rf_config *cfg, const char *body,
    size_t len, struct rf_chat_req *req, struct rf_field_err *fe)
{
	json_object *root = NULL;

	req_defaults(req);
	memset(fe, 0, sizeof(*fe));
	fe->code = RF_OK;
	if (rf_contract_json(body, len, RF_JSON_MAX_DEPTH, &root, fe) == -1)
		goto fail;
	req->owner = root;
	if (!json_object_is_type(root, json_type_object)) {
		invalid(fe, "body", "The request body must be a JSON object.");
		goto fail;
	}
	if (check_root(cfg, root, req, fe) == -1)
		goto fail;
	return 0;
fail:
	rf_contract_free(req);
	return -1;
}

void
rf_contract_free(struct rf_chat_req *req)
{
	if (req == NULL)
		return;
	json_object_put(req->owner);
	req_defaults(req);
}
