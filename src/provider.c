/*
 * provider: what every adapter shares.  The result and failure records the
 * fallback engine passes around, and the small helpers the
 * OpenAI-compatible and Gemini adapters both use: JSON readers for
 * untrusted upstream bodies that never copy them whole into a message
 * (technicalDetails stay short and safe: docs/api.md), and writers of
 * the plain request (header lines, JSON body) that upstream.c sends, and
 * the OpenAI tool-call shape both wires answer in (a call, a delta of one,
 * the arguments string, the name behind a tool_call_id).
 * The providers themselves are data (provider.h; the list is catalog.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"
#include "scrub.h"

/* An answer longer than this is not something a chat client should get. */
#define RF_RESULT_MAX_TEXT (1024 * 1024)

void
rf_result_init(struct rf_result *r)
{
	memset(r, 0, sizeof(*r));
	rf_buf_init(&r->text, RF_RESULT_MAX_TEXT);
	rf_buf_init(&r->tool_calls, RF_RESULT_MAX_TEXT);
	r->usage.prompt_tokens = -1;
	r->usage.completion_tokens = -1;
}

void
rf_result_reset(struct rf_result *r)
{
	rf_buf_reset(&r->text);
	rf_buf_reset(&r->tool_calls);
	r->model[0] = '\0';
	r->finish_reason[0] = '\0';
	r->usage.prompt_tokens = -1;
	r->usage.completion_tokens = -1;
	r->safety_block = false;
	r->safety_reason[0] = '\0';
	r->ntool_calls = 0;
}

void
rf_result_free(struct rf_result *r)
{
	if (r == NULL)
		return;
	rf_buf_free(&r->text);
	rf_buf_free(&r->tool_calls);
	memset(r, 0, sizeof(*r));
	r->usage.prompt_tokens = -1;
	r->usage.completion_tokens = -1;
}

bool
rf_result_scrub(struct rf_result *r)
{
	bool model = rf_scrub_model(r->model);
	bool safety = rf_scrub_code(r->safety_reason);

	rf_scrub_finish(r->finish_reason, sizeof(r->finish_reason));
	return model && safety;
}

void
rf_failure_scrub(struct rf_failure *f)
{
	rf_scrub_text(f->details, sizeof(f->details));
	rf_scrub_text(f->message, sizeof(f->message));
}

void
rf_failure_set(struct rf_failure *f, enum rf_err code, const char *details)
{
	memset(f, 0, sizeof(*f));
	f->code = code;
	f->retry_after_ms = -1;
	if (details != NULL)
		snprintf(f->details, sizeof(f->details), "%s", details);
}

struct json_object *
rf_adapter_json(const char *s, size_t len)
{
	json_tokener *tok;
	json_object *root;
	size_t end;

	if (s == NULL || len == 0 || len > INT32_MAX)
		return NULL;
	if ((tok = json_tokener_new_ex(RF_ADAPTER_JSON_DEPTH)) == NULL)
		return NULL;
	root = json_tokener_parse_ex(tok, s, (int)len);
	if (root != NULL && json_tokener_get_error(tok) == json_tokener_success) {
		/* Trailing bytes other than whitespace: not one JSON value. */
		for (end = json_tokener_get_parse_end(tok); end < len; end++)
			if (!strchr(" \t\r\n", s[end]) || s[end] == '\0')
				break;
		if (end < len) {
			json_object_put(root);
			root = NULL;
		}
	} else {
		json_object_put(root);
		root = NULL;
	}
	json_tokener_free(tok);
	return root;
}

/*
 * One step of a path: a member name, then an optional "[n]" index.  Names
 * in our paths never contain '.' or '['.
 */
static json_object *
path_step(json_object *o, const char *name, size_t n, const char **rest)
{
	char key[64];
	json_object *child;
	const char *p = name + n;
	char *e;
	unsigned long idx;

	if (n == 0 || n >= sizeof(key) || !json_object_is_type(o, json_type_object))
		return NULL;
	memcpy(key, name, n);
	key[n] = '\0';
	if (!json_object_object_get_ex(o, key, &child))
		return NULL;
	if (*p == '[') {
		idx = strtoul(p + 1, &e, 10);
		if (*e != ']' || !json_object_is_type(child, json_type_array) ||
		    idx >= json_object_array_length(child))
			return NULL;
		child = json_object_array_get_idx(child, idx);
		p = e + 1;
	}
	*rest = p;
	return child;
}

json_object *
rf_adapter_get(json_object *o, const char *path)
{
	const char *p = path;
	size_t n;

	while (o != NULL && *p != '\0') {
		n = strcspn(p, ".[");
		o = path_step(o, p, n, &p);
		if (o != NULL && *p == '.')
			p++;
	}
	return o;
}

const char *
rf_adapter_str(json_object *o, const char *path)
{
	json_object *v = rf_adapter_get(o, path);

	return json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : NULL;
}

bool
rf_adapter_long(json_object *o, const char *path, long *out)
{
	json_object *v = rf_adapter_get(o, path);

	if (!json_object_is_type(v, json_type_int))
		return false;
	*out = (long)json_object_get_int64(v);
	return true;
}

void
rf_adapter_copy(char *dst, size_t dstlen, const char *src)
{
	size_t i = 0;

	if (dstlen == 0)
		return;
	for (; src != NULL && *src != '\0' && i + 1 < dstlen; src++)
		if (*src >= 0x20 && *src < 0x7f)
			dst[i++] = *src;
	dst[i] = '\0';
}

bool
rf_adapter_safe_code(const char *s)
{
	return rf_scrub_code_ok(s);
}

bool
rf_adapter_has(const char *s, const char *word)
{
	size_t i, n = strlen(word);

	for (; s != NULL && *s != '\0'; s++) {
		for (i = 0; i < n; i++)
			if (tolower((unsigned char)s[i]) !=
			    tolower((unsigned char)word[i]))
				break;
		if (i == n)
			return true;
	}
	return false;
}

void
rf_adapter_http_failure(struct rf_failure *f, enum rf_err e, long status,
    const char *code)
{
	rf_failure_set(f, e, NULL);
	if (rf_adapter_safe_code(code))
		snprintf(f->details, sizeof(f->details),
		    "HTTP %ld from upstream provider, code %s", status, code);
	else
		snprintf(f->details, sizeof(f->details),
		    "HTTP %ld from upstream provider", status);
}

/* Short, printable ASCII only: anything else could be a body fragment. */
static bool
short_printable(const char *s)
{
	size_t n = 0;

	for (; s != NULL && *s != '\0'; s++, n++)
		if (*s < 0x20 || *s >= 0x7f)
			return false;
	return s != NULL && n > 0 && n < 120;
}

void
rf_adapter_policy_message(struct rf_failure *f, const char *upstream_msg)
{
	static const char base[] =
	    "The provider refused the request under its content policy.";

	if (short_printable(upstream_msg))
		snprintf(f->message, sizeof(f->message), "%s Provider message: %s",
		    base, upstream_msg);
	else
		snprintf(f->message, sizeof(f->message), "%s", base);
}

int64_t
rf_adapter_unit_duration(const char *s, const char **end)
{
	const char *e = s;
	int64_t ms = rf_duration_ms(s, &e);

	if (end != NULL)
		*end = e;
	/* A bare number (seconds by the parser's rule) has no unit. */
	if (ms < 0 || e == s || !isalpha((unsigned char)e[-1]))
		return -1;
	return ms;
}

/* The upstream request's life (declared in upstream.h, the type's home):
 * here, beside the adapters that fill it, so that they and their fuzz
 * targets need no libcurl. */
void
rf_up_req_init(struct rf_up_req *rq)
{
	rf_buf_init(&rq->url, 0);
	rf_buf_init(&rq->body, 0);
	rq->nhdrs = 0;
}

void
rf_up_req_drop_headers(struct rf_up_req *rq)
{
	for (int i = 0; i < rq->nhdrs; i++) {
		explicit_bzero(rq->hdrs[i], strlen(rq->hdrs[i]));
		free(rq->hdrs[i]);
	}
	rq->nhdrs = 0;
}

void
rf_up_req_free(struct rf_up_req *rq)
{
	if (rq == NULL)
		return;
	rf_up_req_drop_headers(rq);
	rf_buf_free(&rq->url);
	rf_buf_free(&rq->body);
}

void
rf_adapter_req_clear(struct rf_up_req *rq)
{
	rf_buf_reset(&rq->url);
	rf_buf_reset(&rq->body);
	rf_up_req_drop_headers(rq);
}

int
rf_adapter_header(struct rf_up_req *rq, const char *name, const char *value)
{
	char line[RF_UP_HDR_LEN];
	int n, rc = -1;

	/* A CR or LF in a configured value would smuggle in another header. */
	if (value == NULL || strpbrk(value, "\r\n") != NULL ||
	    rq->nhdrs >= RF_UP_MAX_HDRS)
		return -1;
	n = snprintf(line, sizeof(line), "%s: %s", name, value);
	if (n >= 0 && (size_t)n < sizeof(line) &&
	    (rq->hdrs[rq->nhdrs] = strdup(line)) != NULL) {
		rq->nhdrs++;
		rc = 0;
	}
	explicit_bzero(line, sizeof(line)); /* it may hold a key */
	return rc;
}

int
rf_adapter_json_out(json_object *root, struct rf_buf *body)
{
	const char *s;

	s = json_object_to_json_string_ext(root,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	return s == NULL ? -1 : rf_buf_puts(body, s);
}

json_object *
rf_adapter_number(double v)
{
	char s[48];
	long long scaled, ip, fp;
	int n;

	if (!(v > -1e9 && v < 1e9))
		return json_object_new_double(v);
	/* Six decimals by integer arithmetic: no locale, no binary noise. */
	scaled = (long long)(v * 1e6 + (v < 0 ? -0.5 : 0.5));
	ip = (scaled < 0 ? -scaled : scaled) / 1000000;
	fp = (scaled < 0 ? -scaled : scaled) % 1000000;
	n = snprintf(s, sizeof(s), "%s%lld.%06lld", scaled < 0 ? "-" : "", ip, fp);
	while (n > 0 && s[n - 1] == '0' && s[n - 2] != '.')
		s[--n] = '\0';
	return json_object_new_double_s(v, s);
}

enum rf_err
rf_adapter_status_err(long status)
{
	if (status == 401 || status == 403)
		return RF_ERR_PROVIDER_AUTH;
	if (status == 429)
		return RF_ERR_PROVIDER_RATE_LIMITED;
	if (status == 408 || status == 504)
		return RF_ERR_PROVIDER_TIMEOUT;
	if (status >= 500 || status == 498 || status == 499)
		return RF_ERR_PROVIDER_UNAVAILABLE;
	if (status >= 400)
		return RF_ERR_PROVIDER_BAD_REQUEST;
	/* 1xx/3xx (redirects are not followed): the provider did not serve. */
	return RF_ERR_PROVIDER_UNAVAILABLE;
}

/* ---- tool calls ---- */

json_object *
rf_adapter_tool_call(int index, const char *id, const char *name,
    const char *args)
{
	json_object *o = json_object_new_object();
	json_object *fn = json_object_new_object();

	if (index >= 0)
		json_object_object_add(o, "index", json_object_new_int(index));
	if (id != NULL) {
		json_object_object_add(o, "id", json_object_new_string(id));
		json_object_object_add(o, "type",
		    json_object_new_string("function"));
	}
	if (name != NULL)
		json_object_object_add(fn, "name", json_object_new_string(name));
	if (args != NULL)
		json_object_object_add(fn, "arguments",
		    json_object_new_string(args));
	json_object_object_add(o, "function", fn);
	return o;
}

const char *
rf_adapter_tool_args(json_object *v)
{
	if (v == NULL || json_object_is_type(v, json_type_null))
		return "{}";
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (json_object_is_type(v, json_type_object) ||
	    json_object_is_type(v, json_type_array))
		return json_object_to_json_string_ext(v,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	return NULL;
}

/* The name of the call id among one assistant message's tool_calls. */
static const char *
call_name(json_object *msg, const char *id)
{
	json_object *calls = rf_adapter_get(msg, "tool_calls"), *c;
	const char *cid;
	size_t i, n;

	n = json_object_is_type(calls, json_type_array) ?
	    json_object_array_length(calls) : 0;
	for (i = 0; i < n; i++) {
		c = json_object_array_get_idx(calls, i);
		cid = rf_adapter_str(c, "id");
		if (cid != NULL && strcmp(cid, id) == 0)
			return rf_adapter_str(c, "function.name");
	}
	return NULL;
}

const char *
rf_adapter_tool_name(json_object *messages, size_t upto, const char *id)
{
	const char *role, *name;
	json_object *m;
	size_t i;

	if (id == NULL || !json_object_is_type(messages, json_type_array))
		return NULL;
	if (upto > json_object_array_length(messages))
		upto = json_object_array_length(messages);
	for (i = upto; i > 0; i--) {
		m = json_object_array_get_idx(messages, i - 1);
		role = rf_adapter_str(m, "role");
		if (role != NULL && strcmp(role, "assistant") == 0 &&
		    (name = call_name(m, id)) != NULL)
			return name;
	}
	return NULL;
}

const char *
rf_adapter_content_text(json_object *content, struct rf_buf *buf)
{
	json_object *part;
	const char *type, *t;
	size_t i, n;

	rf_buf_reset(buf);
	if (content == NULL || json_object_is_type(content, json_type_null))
		return "";
	if (json_object_is_type(content, json_type_string))
		return json_object_get_string(content);
	if (!json_object_is_type(content, json_type_array))
		return NULL;
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		part = json_object_array_get_idx(content, i);
		type = rf_adapter_str(part, "type");
		if (type == NULL || (strcmp(type, "text") != 0 &&
		    strcmp(type, "refusal") != 0))
			return NULL;
		t = rf_adapter_str(part, type);
		if (t == NULL || rf_buf_puts(buf, t) != 0)
			return NULL;
	}
	return rf_buf_str(buf);
}

/* One call of a whole tool_calls array as a delta with its index. */
static json_object *
call_delta(json_object *c, int index)
{
	return rf_adapter_tool_call(index, rf_adapter_str(c, "id"),
	    rf_adapter_str(c, "function.name"),
	    rf_adapter_str(c, "function.arguments"));
}

int
rf_result_tool_deltas(const struct rf_result *r, struct rf_buf *out)
{
	json_object *calls = rf_adapter_json(r->tool_calls.data,
	    r->tool_calls.len);
	json_object *arr = NULL;
	size_t i, n;
	int rc = -1;

	if (!json_object_is_type(calls, json_type_array))
		goto out;
	arr = json_object_new_array();
	n = json_object_array_length(calls);
	for (i = 0; i < n && i < RF_ADAPTER_MAX_TOOL_CALLS; i++)
		json_object_array_add(arr, call_delta(
		    json_object_array_get_idx(calls, i), (int)i));
	rc = rf_adapter_json_out(arr, out);
out:
	json_object_put(arr);
	json_object_put(calls);
	return rc;
}
