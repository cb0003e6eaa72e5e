/*
 * provider_gemini: Google's generateContent / streamGenerateContent wire
 * format (rf_ops_gemini) and the one provider that speaks it
 * (rf_provider_gemini, at the end) (providers.md section 5).  Roles are user/model, the system prompt
 * is a separate systemInstruction, thinking is switched off where the model
 * allows it (thought tokens would eat maxOutputTokens), the key travels in
 * x-goog-api-key and never in the URL, and safety blocks arrive as 200s
 * (promptFeedback.blockReason, or a SAFETY-like finishReason).  Streams have
 * no [DONE]; every chunk is a whole GenerateContentResponse with a running
 * usage total.  No I/O here.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"

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
gemini_config(const struct rf_provider_conf *pc, const struct rf_prompt *p)
{
	json_object *gc = json_object_new_object(), *tc;

	json_object_object_add(gc, "maxOutputTokens",
	    json_object_new_int(p->max_tokens));
	json_object_object_add(gc, "temperature",
	    rf_adapter_number(p->temperature));
	if (can_disable_thinking(pc->model)) {
		tc = json_object_new_object();
		json_object_object_add(tc, "thinkingBudget", json_object_new_int(0));
		json_object_object_add(gc, "thinkingConfig", tc);
	}
	return gc;
}

static json_object *
gemini_body(const struct rf_provider_conf *pc, const struct rf_prompt *p)
{
	json_object *root = NULL, *si;
	struct rf_buf sys = { 0 };
	bool fold = is_gemma(pc->model);

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
	json_object_object_add(root, "generationConfig", gemini_config(pc, p));
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

static int
gemini_build(const struct rf_provider_conf *pc, const struct rf_prompt *p,
    bool stream, struct rf_up_req *rq)
{
	json_object *root = NULL;
	int rc = -1;

	rf_adapter_req_clear(rq);
	/* Without alt=sse the stream is one JSON array, not SSE. */
	if (rf_buf_printf(&rq->url, "%s/models/", pc->url) != 0 ||
	    url_segment(&rq->url, pc->model) != 0 ||
	    rf_buf_puts(&rq->url, stream ? ":streamGenerateContent?alt=sse" :
	    ":generateContent") != 0)
		goto out;
	if ((root = gemini_body(pc, p)) == NULL ||
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

static bool
is(const char *s, const char *want)
{
	return s != NULL && strcmp(s, want) == 0;
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

static void
set_finish(struct rf_result *acc, const char *fr)
{
	static const char *const safety[] = { "SAFETY", "RECITATION",
	    "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", NULL };
	const char *norm = "stop";
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

/* Append candidates[0].content.parts[*].text to out, skipping thoughts.
 * 0, -1 when the shape is wrong, -2 when out is full. */
static int
read_parts(json_object *c0, struct rf_buf *out)
{
	json_object *parts, *part, *text, *content;
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

/*
 * One GenerateContentResponse (a whole answer, or one stream fragment):
 * text to out, the rest into acc.  Returns 0, -1 malformed (*why says
 * where), -2 when out is full; on an error out and acc are unchanged.
 */
static int
read_fragment(json_object *root, struct rf_result *acc, struct rf_buf *out,
    bool chunk, const char **why)
{
	json_object *cands = rf_adapter_get(root, "candidates"), *c0 = NULL;
	const char *block = rf_adapter_str(root, "promptFeedback.blockReason");
	size_t mark = out->len;
	int rc;

	*why = "missing candidates";
	if (json_object_is_type(cands, json_type_array))
		c0 = json_object_array_get_idx(cands, 0);
	else if (cands != NULL && !json_object_is_type(cands, json_type_null))
		return -1;
	if (c0 == NULL && block == NULL && !(chunk && usage_only(root)))
		return -1;
	if (c0 != NULL) {
		*why = "candidates[0].content is not the expected shape";
		if (!json_object_is_type(c0, json_type_object))
			return -1;
		if ((rc = read_parts(c0, out)) != 0) {
			buf_cut(out, mark);
			return rc;
		}
		if (rf_adapter_str(c0, "finishReason") != NULL)
			set_finish(acc, rf_adapter_str(c0, "finishReason"));
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
	} else if ((rc = read_fragment(root, res, &res->text, false, &why))
	    != 0) {
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE, rc == -2 ?
		    "candidates[0] text too large" : why);
		rc = -1;
	}
	json_object_put(root);
	return rc;
}

static enum rf_chunk
gemini_parse_chunk(const char *event, const char *data, size_t len,
    struct rf_result *acc, struct rf_buf *delta, struct rf_failure *f)
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
	} else if ((r = read_fragment(root, acc, delta, true, &why)) == -1) {
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
