/*
 * render: every JSON shape of the /api/v1 surface, built in one place.
 *
 * One request is rendered from one form, its struct rf_log_entry: the chat
 * meta, the stream's start and final meta, the error of a failed chain and
 * a /logs item all read the same fields, and the attempts of the meta and
 * of /logs are the same array (struct rf_log_attempt) rendered by the same
 * function.  Absent values are NULL (strings) or negative (numbers) in
 * that form and become JSON null here.
 *
 * A request whose client hung up is "cancelled" wherever a status or a
 * count shows (a /logs item, usage totals, providers, timeseries): one
 * meaning, rf_store_entry_status, so an error is always the gateway's or
 * a provider's and requests = successes + errors + cancelled.
 */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

/* ---- small helpers ---- */

static void
add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

/* A string, or JSON null for NULL. */
static json_object *
str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

/* A non-negative number, or JSON null when unknown (< 0). */
static json_object *
int_or_null(int64_t v)
{
	return v < 0 ? NULL : json_object_new_int64(v);
}

/* An ISO-8601 time, or JSON null for 0 / unknown. */
static json_object *
iso_or_null(int64_t ms)
{
	char buf[25];

	if (ms <= 0)
		return NULL;
	rf_time_iso(ms, buf);
	return json_object_new_string(buf);
}

/* sum / n rounded to whole milliseconds; null when n is 0. */
static json_object *
avg_or_null(int64_t sum, int64_t n)
{
	return n > 0 ? json_object_new_int64((sum + n / 2) / n) : NULL;
}

static json_object *
rate_or_null(int64_t part, int64_t n)
{
	return n > 0 ? json_object_new_double((double)part / (double)n) : NULL;
}

/* ---- envelopes and errors ---- */

/* {"success": ok, key: v} (v taken). */
static json_object *
envelope(bool ok, const char *key, json_object *v)
{
	json_object *o = json_object_new_object();

	add(o, "success", json_object_new_boolean(ok));
	add(o, key, v);
	return o;
}

json_object *
rf_render_success(json_object *data)
{
	return envelope(true, "data", data);
}

json_object *
rf_render_failure(json_object *error)
{
	return envelope(false, "error", error);
}

char *
rf_render_text(json_object *obj)
{
	return strdup(json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

json_object *
rf_render_error(enum rf_err code, const char *message, const char *details,
    const char *provider, bool fallback, const char *request_id,
    json_object *attempts, const char *field)
{
	json_object *o = json_object_new_object();

	add(o, "code", json_object_new_string(rf_err_code(code)));
	add(o, "message", json_object_new_string(
	    message != NULL ? message : rf_err_message(code)));
	if (details != NULL)
		add(o, "technicalDetails", json_object_new_string(details));
	if (provider != NULL)
		add(o, "provider", json_object_new_string(provider));
	add(o, "fallbackActivated", json_object_new_boolean(fallback));
	add(o, "timestamp", iso_or_null(rf_now_ms()));
	if (request_id != NULL)
		add(o, "requestId", json_object_new_string(request_id));
	if (attempts != NULL)
		add(o, "attempts", attempts);
	if (field != NULL)
		add(o, "field", json_object_new_string(field));
	return o;
}

json_object *
rf_render_chain_error(const struct rf_log_entry *e, enum rf_err code,
    const char *message, const char *details)
{
	if (code == RF_OK)
		code = RF_ERR_INTERNAL; /* never answer "ok" in an error */
	return rf_render_error(code,
	    message != NULL && *message != '\0' ? message : NULL,
	    details != NULL && *details != '\0' ? details : NULL,
	    e->final_provider, e->fallback,
	    e->request_id != NULL && *e->request_id != '\0' ?
	    e->request_id : NULL,
	    rf_render_attempts(e->attempts, e->nattempts), NULL);
}

/* ---- one request: attempts, meta, chat answer ---- */

static json_object *
attempt_json(const struct rf_log_attempt *a)
{
	json_object *o = json_object_new_object();
	bool skipped = a->outcome != NULL && strcmp(a->outcome, "skipped") == 0;

	add(o, "provider", str_or_null(a->provider));
	add(o, "outcome", str_or_null(a->outcome));
	if (skipped)
		add(o, "reason", json_object_new_string(
		    a->reason != NULL ? a->reason : "unconfigured"));
	if (a->http_status > 0)
		add(o, "httpStatus", json_object_new_int(a->http_status));
	if (!skipped && a->latency_ms >= 0)
		add(o, "latencyMs", json_object_new_int64(a->latency_ms));
	if (a->retry > 0)
		add(o, "retry", json_object_new_int(a->retry));
	return o;
}

json_object *
rf_render_attempts(const struct rf_log_attempt *a, size_t n)
{
	json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(arr, attempt_json(&a[i]));
	return arr;
}

static json_object *
usage_json(const struct rf_log_entry *e)
{
	json_object *o = json_object_new_object();

	add(o, "promptTokens", int_or_null(e->prompt_tokens));
	add(o, "completionTokens", int_or_null(e->completion_tokens));
	return o;
}

/* requestId ... demoMode: the head every meta and /logs item share. */
static void
request_head(json_object *o, const struct rf_log_entry *e)
{
	add(o, "requestId", str_or_null(e->request_id));
	add(o, "strategy", str_or_null(e->strategy));
	add(o, "attemptedProvider", str_or_null(e->attempted_provider));
	add(o, "finalProvider", str_or_null(e->final_provider));
	add(o, "fallbackActivated", json_object_new_boolean(e->fallback));
	add(o, "degradedMode", json_object_new_boolean(e->degraded));
	add(o, "demoMode", json_object_new_boolean(e->demo));
}

json_object *
rf_render_meta(const struct rf_log_entry *e, enum rf_meta_kind kind)
{
	json_object *o = json_object_new_object();

	if (kind != RF_META_CHAT)
		add(o, "phase", json_object_new_string(
		    kind == RF_META_START ? "start" : "final"));
	request_head(o, e);
	if (kind != RF_META_START) {
		add(o, "latencyMs", json_object_new_int64(e->latency_ms));
		if (kind == RF_META_FINAL)
			add(o, "ttftMs", int_or_null(e->ttft_ms));
	}
	add(o, "model", str_or_null(e->model));
	if (kind != RF_META_START) {
		add(o, "timestamp", iso_or_null(e->ts_ms));
		add(o, "finishReason", str_or_null(e->finish_reason));
		add(o, "usage", usage_json(e));
	}
	if (kind == RF_META_FINAL) {
		add(o, "skippedChunks", json_object_new_int(e->skipped_chunks));
		add(o, "restarts", json_object_new_int(e->restarts));
	}
	add(o, "attempts", rf_render_attempts(e->attempts, e->nattempts));
	return o;
}

json_object *
rf_render_chat(const struct rf_log_entry *e, const char *text, size_t len)
{
	json_object *o = json_object_new_object();

	add(o, "text", json_object_new_string_len(text != NULL ? text : "",
	    (int)len));
	add(o, "meta", rf_render_meta(e, RF_META_CHAT));
	return o;
}

/* ---- stream events and health ---- */

json_object *
rf_render_move(const char *phase, const char *from, const char *to,
    enum rf_err code)
{
	json_object *o = json_object_new_object();

	add(o, "phase", json_object_new_string(phase));
	add(o, "from", str_or_null(from));
	add(o, "to", str_or_null(to));
	add(o, "code", json_object_new_string(rf_err_code(code)));
	return o;
}

json_object *
rf_render_token(const char *text, size_t len)
{
	json_object *o = json_object_new_object();

	add(o, "text", json_object_new_string_len(text, (int)len));
	return o;
}

json_object *
rf_render_done(bool ok)
{
	json_object *o = json_object_new_object();

	add(o, "ok", json_object_new_boolean(ok));
	return o;
}

json_object *
rf_render_health(const char *status, const char *version, const char *db,
    const char *reason, long spool_rows, long spool_dropped)
{
	json_object *o = json_object_new_object();
	json_object *sp = json_object_new_object();

	add(o, "status", json_object_new_string(status));
	add(o, "version", json_object_new_string(version));
	add(o, "db", json_object_new_string(db));
	add(o, "reason", str_or_null(reason));
	add(sp, "rows", json_object_new_int64(spool_rows));
	add(sp, "dropped", json_object_new_int64(spool_dropped));
	add(o, "spool", sp);
	return o;
}

/* ---- GET /providers/status ---- */

static json_object *
stats_json(const struct rf_provider_report *r, int window_s)
{
	json_object *o = json_object_new_object();

	add(o, "windowSeconds", json_object_new_int(window_s));
	add(o, "requests", json_object_new_int64(r->requests));
	add(o, "successes", json_object_new_int64(r->successes));
	add(o, "failures", json_object_new_int64(r->failures));
	add(o, "successRate", rate_or_null(r->successes, r->requests));
	add(o, "avgLatencyMs", int_or_null(r->avg_latency_ms));
	add(o, "p95LatencyMs", int_or_null(r->p95_latency_ms));
	return o;
}

static json_object *
last_error_json(const struct rf_provider_report *r)
{
	json_object *o;

	if (r->last_error_code[0] == '\0')
		return NULL;
	o = json_object_new_object();
	add(o, "code", json_object_new_string(r->last_error_code));
	add(o, "at", iso_or_null(r->last_error_ms));
	return o;
}

/* null unless some figure is known. */
static json_object *
quota_json(const struct rf_provider_report *r)
{
	json_object *o;

	if (r->quota_remaining_requests < 0 && r->quota_remaining_tokens < 0 &&
	    r->quota_reset_ms <= 0)
		return NULL;
	o = json_object_new_object();
	add(o, "remainingRequests", int_or_null(r->quota_remaining_requests));
	add(o, "remainingTokens", int_or_null(r->quota_remaining_tokens));
	add(o, "resetAt", iso_or_null(r->quota_reset_ms));
	return o;
}

static json_object *
provider_json(const struct rf_render_provider *p, int64_t now, int window_s)
{
	const struct rf_provider_conf *pc = p->pc;
	const struct rf_provider_report *r = p->rep;
	json_object *o = json_object_new_object();

	add(o, "id", json_object_new_string(pc->id));
	add(o, "name", json_object_new_string(pc->name));
	add(o, "position", json_object_new_int(p->position));
	add(o, "configured", json_object_new_boolean(pc->configured));
	add(o, "model", str_or_null(pc->model));
	add(o, "state", json_object_new_string(p->state));
	add(o, "cooldownUntil", r->cooldown_until_ms > now ?
	    iso_or_null(r->cooldown_until_ms) : NULL);
	add(o, "stats", stats_json(r, window_s));
	add(o, "lastError", last_error_json(r));
	add(o, "lastSuccessAt", iso_or_null(r->last_success_ms));
	add(o, "quota", quota_json(r));
	return o;
}

json_object *
rf_render_status(int64_t now_ms, int window_s,
    const struct rf_render_provider *p, size_t n)
{
	json_object *data = json_object_new_object();
	json_object *order = json_object_new_array();
	json_object *list = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++) {
		json_object_array_add(order, json_object_new_string(p[i].pc->id));
		json_object_array_add(list, provider_json(&p[i], now_ms,
		    window_s));
	}
	add(data, "generatedAt", iso_or_null(now_ms));
	add(data, "routingOrder", order);
	add(data, "providers", list);
	return data;
}

/* ---- GET /logs ---- */

static json_object *
item_json(const struct rf_log_item *it, bool preview)
{
	const struct rf_log_entry *e = &it->e;
	json_object *o = json_object_new_object();

	add(o, "id", json_object_new_int64(it->id));
	add(o, "requestId", str_or_null(e->request_id));
	add(o, "timestamp", iso_or_null(e->ts_ms));
	add(o, "endpoint", str_or_null(e->endpoint));
	add(o, "strategy", str_or_null(e->strategy));
	add(o, "attemptedProvider", str_or_null(e->attempted_provider));
	add(o, "finalProvider", str_or_null(e->final_provider));
	add(o, "fallbackActivated", json_object_new_boolean(e->fallback));
	add(o, "degradedMode", json_object_new_boolean(e->degraded));
	add(o, "demoMode", json_object_new_boolean(e->demo));
	add(o, "status", json_object_new_string(rf_store_entry_status(e)));
	add(o, "errorCode", str_or_null(e->error_code));
	add(o, "httpStatus", json_object_new_int(e->http_status));
	add(o, "latencyMs", json_object_new_int64(e->latency_ms));
	add(o, "ttftMs", int_or_null(e->ttft_ms));
	add(o, "model", str_or_null(e->model));
	add(o, "promptChars", json_object_new_int64(e->prompt_chars));
	add(o, "usage", usage_json(e));
	add(o, "source", str_or_null(e->source));
	add(o, "node", str_or_null(e->node));
	add(o, "partialChars", json_object_new_int64(e->partial_chars));
	add(o, "skippedChunks", json_object_new_int(e->skipped_chunks));
	add(o, "restarts", json_object_new_int(e->restarts));
	add(o, "attempts", rf_render_attempts(e->attempts, e->nattempts));
	if (preview)
		add(o, "promptPreview", str_or_null(e->prompt_preview));
	return o;
}

json_object *
rf_render_logs(const struct rf_log_page *page, bool preview)
{
	json_object *data = json_object_new_object();
	json_object *items = json_object_new_array();
	size_t i;

	for (i = 0; i < page->nitems; i++)
		json_object_array_add(items, item_json(&page->items[i], preview));
	add(data, "items", items);
	add(data, "nextBefore", page->more && page->nitems > 0 ?
	    json_object_new_int64(page->items[page->nitems - 1].id) : NULL);
	return data;
}

/* ---- GET /usage ---- */

static json_object *
totals_json(const struct rf_usage_figures *t)
{
	json_object *o = json_object_new_object();

	add(o, "requests", json_object_new_int64(t->requests));
	add(o, "successes", json_object_new_int64(t->successes));
	add(o, "errors", json_object_new_int64(t->errors));
	add(o, "cancelled", json_object_new_int64(t->cancelled));
	add(o, "fallbacks", json_object_new_int64(t->fallbacks));
	add(o, "fallbackRate", rate_or_null(t->fallbacks, t->requests));
	add(o, "avgLatencyMs", avg_or_null(t->latency_sum, t->requests));
	add(o, "p50LatencyMs", int_or_null(t->p50_ms));
	add(o, "p95LatencyMs", int_or_null(t->p95_ms));
	add(o, "p99LatencyMs", int_or_null(t->p99_ms));
	add(o, "promptTokens", json_object_new_int64(t->prompt_tokens));
	add(o, "completionTokens", json_object_new_int64(t->completion_tokens));
	return o;
}

static json_object *
providers_json(const struct rf_usage_report *r)
{
	json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < r->nproviders; i++) {
		const struct rf_usage_provider *p = &r->providers[i];
		json_object *o = json_object_new_object();

		add(o, "provider", p->provider[0] ?
		    json_object_new_string(p->provider) : NULL);
		add(o, "requests", json_object_new_int64(p->requests));
		add(o, "share", rate_or_null(p->requests, r->totals.requests));
		add(o, "errors", json_object_new_int64(p->errors));
		add(o, "cancelled", json_object_new_int64(p->cancelled));
		add(o, "avgLatencyMs", avg_or_null(p->latency_sum, p->requests));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *
timeseries_json(const struct rf_usage_report *r)
{
	json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < r->nbuckets; i++) {
		const struct rf_usage_figures *b = &r->buckets[i];
		json_object *o = json_object_new_object();

		add(o, "t", iso_or_null(r->from_ms + (int64_t)i * r->bucket_ms));
		add(o, "requests", json_object_new_int64(b->requests));
		add(o, "errors", json_object_new_int64(b->errors));
		add(o, "cancelled", json_object_new_int64(b->cancelled));
		add(o, "fallbacks", json_object_new_int64(b->fallbacks));
		add(o, "avgLatencyMs", avg_or_null(b->latency_sum, b->requests));
		add(o, "p95LatencyMs", int_or_null(b->p95_ms));
		json_object_array_add(arr, o);
	}
	return arr;
}

json_object *
rf_render_usage(const char *window, const struct rf_usage_report *r)
{
	json_object *data = json_object_new_object();

	add(data, "window", json_object_new_string(window));
	add(data, "from", iso_or_null(r->from_ms));
	add(data, "to", iso_or_null(r->to_ms));
	add(data, "bucketSeconds", json_object_new_int64(r->bucket_ms / 1000));
	add(data, "totals", totals_json(&r->totals));
	add(data, "providers", providers_json(r));
	add(data, "timeseries", timeseries_json(r));
	return data;
}
