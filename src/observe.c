/*
 * observe: the three read-only endpoints of SPEC section 4 -- provider
 * status, the request log and usage -- over the shared store, so every
 * responder process answers with the same numbers.  Each handler checks
 * its query string, asks the store (include/store.h) and turns the
 * store's product-level answer into the wire JSON.  Nothing here calls a
 * provider or spends its quota.
 *
 * Decisions the SPEC leaves open:
 * - status counts a provider's own calls (its attempts, retries included)
 *   of the requests that arrived in the last 15 minutes; skipped attempts
 *   and client hang-ups (client_closed: not the provider's failure) do not
 *   count.  "The last attempt failed" looks at the provider's newest call
 *   of all time, not only the window's.
 * - usage lists the requests that called no provider (every tier skipped)
 *   as provider null, so the shares sum to 1 over every request of the
 *   window and the providers' requests add up to totals.requests.
 * - rates (successRate, fallbackRate) and averages are null when there is
 *   no request; averages are rounded to whole milliseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "chain.h"
#include "config.h"
#include "contract.h"
#include "error.h"
#include "handlers.h"
#include "http.h"
#include "store.h"
#include "util.h"

#define STATUS_WINDOW_MS 900000 /* 15 minutes */
#define LOG_DEFAULT_LIMIT 50
#define PARAM_MAX 128           /* longest query value we accept */

/* ---- small JSON helpers ---- */

static json_object *iso_or_null(int64_t ms)
{
	char buf[25];

	if (ms <= 0)
		return NULL;
	rf_time_iso(ms, buf);
	return json_object_new_string(buf);
}

static json_object *int_or_null(int64_t v)
{
	return v < 0 ? NULL : json_object_new_int64(v);
}

static json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

/* sum / n rounded to whole milliseconds; null when n is 0. */
static json_object *avg_or_null(int64_t sum, int64_t n)
{
	return n > 0 ? json_object_new_int64((sum + n / 2) / n) : NULL;
}

static json_object *rate_or_null(int64_t part, int64_t n)
{
	return n > 0 ? json_object_new_double((double)part / (double)n) : NULL;
}

static void add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

/* No store: 503 like /health (a balancer should take this node out). */
static bool store_ready(struct rf_worker *w, struct rf_request *rq)
{
	if (w->store != NULL)
		return true;
	rf_http_send_json(rq, 503, "Retry-After: 5\r\n", rf_contract_failure(
	    rf_contract_error(RF_ERR_INTERNAL, "The store cannot be opened.",
	    "store unavailable", NULL, false, rq->request_id, NULL, NULL)));
	return false;
}

static void send_internal(struct rf_request *rq, const char *details)
{
	rf_http_send_json(rq, 500, NULL, rf_contract_failure(rf_contract_error(
	    RF_ERR_INTERNAL, NULL, details, NULL, false, rq->request_id, NULL,
	    NULL)));
}

/* ---- query strings ---- */

/* true when key appears in the query, with or without a value. */
static bool query_has(const char *q, const char *key)
{
	size_t klen = strlen(key);

	while (q != NULL && *q != '\0') {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		if (len >= klen && strncmp(q, key, klen) == 0 &&
		    (len == klen || q[klen] == '='))
			return true;
		q = amp ? amp + 1 : NULL;
	}
	return false;
}

/* The decoded value of key: 1 found, 0 absent, -1 present but unreadable
 * (bad escape, too long). */
static int query_value(const char *q, const char *key, char *out, size_t n)
{
	if (!query_has(q, key))
		return 0;
	return rf_http_query_get(q, key, out, n) == 0 ? 1 : -1;
}

/* A decimal integer in [lo, hi], digits only; -1 otherwise. */
static int64_t parse_count(const char *s, int64_t lo, int64_t hi)
{
	int64_t v = 0;

	if (*s == '\0' || strlen(s) > 18)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v >= lo && v <= hi ? v : -1;
}

/* 400 validation_error naming the parameter. */
static void bad_param(struct rf_request *rq, const char *field,
    const char *message)
{
	rf_http_send_error(rq, RF_ERR_VALIDATION, message, field, NULL);
}

/* ---- GET /api/v1/providers/status ---- */

/* The SPEC's state, first match wins. */
static const char *state_of(const struct rf_config *cfg, int pid,
    const struct rf_provider_report *r, int64_t now)
{
	if (!cfg->providers[pid].configured)
		return "unconfigured";
	if (r->cooldown_until_ms > now)
		return "cooling_down";
	if (r->consecutive_failures >= cfg->failure_threshold)
		return "down";
	/* successes / requests < 0.9, in integers */
	if (r->last_ok == 0 ||
	    (r->requests > 0 && r->successes * 10 < r->requests * 9))
		return "degraded";
	return r->requests > 0 ? "healthy" : "idle";
}

static json_object *stats_json(const struct rf_provider_report *r)
{
	json_object *o = json_object_new_object();

	add(o, "windowSeconds", json_object_new_int(STATUS_WINDOW_MS / 1000));
	add(o, "requests", json_object_new_int64(r->requests));
	add(o, "successes", json_object_new_int64(r->successes));
	add(o, "failures", json_object_new_int64(r->failures));
	add(o, "successRate", rate_or_null(r->successes, r->requests));
	add(o, "avgLatencyMs", int_or_null(r->avg_latency_ms));
	add(o, "p95LatencyMs", int_or_null(r->p95_latency_ms));
	return o;
}

static json_object *last_error_json(const struct rf_provider_report *r)
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
static json_object *quota_json(const struct rf_provider_report *r)
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

static json_object *provider_json(const struct rf_config *cfg, int pid,
    int position, const struct rf_provider_report *r, int64_t now)
{
	const struct rf_provider_conf *pc = &cfg->providers[pid];
	json_object *o = json_object_new_object();

	add(o, "id", json_object_new_string(pc->id));
	add(o, "name", json_object_new_string(pc->name));
	add(o, "position", json_object_new_int(position));
	add(o, "configured", json_object_new_boolean(pc->configured));
	add(o, "model", str_or_null(pc->model));
	add(o, "state", json_object_new_string(state_of(cfg, pid, r, now)));
	add(o, "cooldownUntil", r->cooldown_until_ms > now ?
	    iso_or_null(r->cooldown_until_ms) : NULL);
	add(o, "stats", stats_json(r));
	add(o, "lastError", last_error_json(r));
	add(o, "lastSuccessAt", iso_or_null(r->last_success_ms));
	add(o, "quota", quota_json(r));
	return o;
}

void rf_handle_status(struct rf_worker *w, struct rf_request *rq)
{
	const struct rf_config *cfg = w->cfg;
	struct rf_provider_report rep[RF_MAX_PROVIDERS];
	const char *ids[RF_MAX_PROVIDERS];
	int64_t now = rf_now_ms();
	json_object *data, *order, *list;
	int n = cfg->chain_len;

	if (!store_ready(w, rq))
		return;
	for (int i = 0; i < n; i++)
		ids[i] = cfg->providers[cfg->chain[i]].id;
	if (rf_store_provider_reports(w->store, ids, (size_t)n,
	    now - STATUS_WINDOW_MS, rep) != 0) {
		send_internal(rq, "store read failed");
		return;
	}
	data = json_object_new_object();
	order = json_object_new_array();
	list = json_object_new_array();
	for (int i = 0; i < n; i++) {
		json_object_array_add(order, json_object_new_string(ids[i]));
		json_object_array_add(list, provider_json(cfg, cfg->chain[i],
		    i + 1, &rep[i], now));
	}
	add(data, "generatedAt", iso_or_null(now));
	add(data, "routingOrder", order);
	add(data, "providers", list);
	rf_http_send_json(rq, 200, NULL, rf_contract_success(data));
}

/* ---- GET /api/v1/logs ---- */

/* What a 400 says about each logs parameter. */
static const char *const logs_param_msg[][2] = {
	{ "limit", "limit must be an integer from 1 to 200." },
	{ "before", "before must be a positive request id." },
	{ "provider", "provider must be a provider id." },
	{ "status", "status must be success or error." },
	{ "endpoint", "endpoint must be chat or stream." },
};

/* One of two words, as the static copy; NULL when v is neither. */
static const char *one_of(const char *v, const char *a, const char *b)
{
	return strcmp(v, a) == 0 ? a : strcmp(v, b) == 0 ? b : NULL;
}

/* Fill lq from the query string; on a bad value answer 400 naming it and
 * return -1.  Strings in lq are static (catalog ids, fixed words). */
static int logs_query(struct rf_request *rq, struct rf_log_query *lq)
{
	const char *q = rq->query;
	char v[PARAM_MAX];
	int64_t n = 0;
	int f, bad;

	*lq = (struct rf_log_query){ .limit = LOG_DEFAULT_LIMIT };
	bad = 0;
	if ((f = query_value(q, "limit", v, sizeof v)) != 0 &&
	    (f < 0 || (n = parse_count(v, 1, RF_LOG_PAGE_MAX)) < 0))
		goto fail;
	if (f != 0)
		lq->limit = (int)n;
	bad = 1;
	if ((f = query_value(q, "before", v, sizeof v)) != 0 &&
	    (f < 0 || (lq->before_id = parse_count(v, 1, INT64_MAX / 10)) < 0))
		goto fail;
	bad = 2;
	if ((f = query_value(q, "provider", v, sizeof v)) != 0 &&
	    (f < 0 || (lq->provider = rf_config_id(rf_config_pid(v))) == NULL))
		goto fail;
	bad = 3;
	if ((f = query_value(q, "status", v, sizeof v)) != 0 &&
	    (f < 0 || (lq->status = one_of(v, "success", "error")) == NULL))
		goto fail;
	bad = 4;
	if ((f = query_value(q, "endpoint", v, sizeof v)) != 0 &&
	    (f < 0 || (lq->endpoint = one_of(v, "chat", "stream")) == NULL))
		goto fail;
	return 0;
fail:
	bad_param(rq, logs_param_msg[bad][0], logs_param_msg[bad][1]);
	return -1;
}

/* The shape of the chat meta's attempts (SPEC section 4). */
static json_object *attempt_json(const struct rf_log_attempt *a)
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

static json_object *item_attempts(const struct rf_log_entry *e)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < e->nattempts; i++)
		json_object_array_add(arr, attempt_json(&e->attempts[i]));
	return arr;
}

static json_object *item_usage(const struct rf_log_entry *e)
{
	json_object *o = json_object_new_object();

	add(o, "promptTokens", int_or_null(e->prompt_tokens));
	add(o, "completionTokens", int_or_null(e->completion_tokens));
	return o;
}

static json_object *item_json(const struct rf_log_item *it, bool preview)
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
	add(o, "status", json_object_new_string(e->success ? "success" :
	    "error"));
	add(o, "errorCode", str_or_null(e->error_code));
	add(o, "httpStatus", json_object_new_int(e->http_status));
	add(o, "latencyMs", json_object_new_int64(e->latency_ms));
	add(o, "ttftMs", int_or_null(e->ttft_ms));
	add(o, "model", str_or_null(e->model));
	add(o, "promptChars", json_object_new_int64(e->prompt_chars));
	add(o, "usage", item_usage(e));
	add(o, "source", str_or_null(e->source));
	add(o, "partialChars", json_object_new_int64(e->partial_chars));
	add(o, "skippedChunks", json_object_new_int(e->skipped_chunks));
	add(o, "restarts", json_object_new_int(e->restarts));
	add(o, "attempts", item_attempts(e));
	if (preview)
		add(o, "promptPreview", str_or_null(e->prompt_preview));
	return o;
}

void rf_handle_logs(struct rf_worker *w, struct rf_request *rq)
{
	struct rf_log_query lq;
	struct rf_log_page page;
	json_object *data, *items;

	if (logs_query(rq, &lq) != 0 || !store_ready(w, rq))
		return;
	if (rf_store_logs(w->store, &lq, &page) != 0) {
		send_internal(rq, "store read failed");
		return;
	}
	data = json_object_new_object();
	items = json_object_new_array();
	for (size_t i = 0; i < page.nitems; i++)
		json_object_array_add(items, item_json(&page.items[i],
		    w->cfg->log_prompts));
	add(data, "items", items);
	add(data, "nextBefore", page.more && page.nitems > 0 ?
	    json_object_new_int64(page.items[page.nitems - 1].id) : NULL);
	rf_store_log_page_free(&page);
	rf_http_send_json(rq, 200, NULL, rf_contract_success(data));
}

/* ---- GET /api/v1/usage ---- */

static const struct usage_window {
	const char *name;
	int64_t window_ms, bucket_ms;
} windows[] = {
	{ "1h", 3600000LL, 60000LL },
	{ "24h", 86400000LL, 3600000LL },
	{ "7d", 7 * 86400000LL, 21600000LL },
	{ "30d", 30 * 86400000LL, 86400000LL },
};

/* The window named in the query (default 24h); NULL after a 400. */
static const struct usage_window *usage_window(struct rf_request *rq)
{
	char v[PARAM_MAX];
	int f = query_value(rq->query, "window", v, sizeof v);

	if (f == 0)
		return &windows[1];
	for (size_t i = 0; f > 0 && i < sizeof windows / sizeof windows[0]; i++)
		if (strcmp(v, windows[i].name) == 0)
			return &windows[i];
	bad_param(rq, "window", "window must be 1h, 24h, 7d or 30d.");
	return NULL;
}

static json_object *totals_json(const struct rf_usage_figures *t)
{
	json_object *o = json_object_new_object();

	add(o, "requests", json_object_new_int64(t->requests));
	add(o, "successes", json_object_new_int64(t->successes));
	add(o, "errors", json_object_new_int64(t->errors));
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

static json_object *providers_json(const struct rf_usage_report *r)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < r->nproviders; i++) {
		const struct rf_usage_provider *p = &r->providers[i];
		json_object *o = json_object_new_object();
		add(o, "provider", p->provider[0] ?
		    json_object_new_string(p->provider) : NULL);
		add(o, "requests", json_object_new_int64(p->requests));
		add(o, "share", rate_or_null(p->requests, r->totals.requests));
		add(o, "errors", json_object_new_int64(p->errors));
		add(o, "avgLatencyMs", avg_or_null(p->latency_sum, p->requests));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *timeseries_json(const struct rf_usage_report *r)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < r->nbuckets; i++) {
		const struct rf_usage_figures *b = &r->buckets[i];
		json_object *o = json_object_new_object();
		add(o, "t", iso_or_null(r->from_ms + (int64_t)i * r->bucket_ms));
		add(o, "requests", json_object_new_int64(b->requests));
		add(o, "errors", json_object_new_int64(b->errors));
		add(o, "fallbacks", json_object_new_int64(b->fallbacks));
		add(o, "avgLatencyMs", avg_or_null(b->latency_sum, b->requests));
		add(o, "p95LatencyMs", int_or_null(b->p95_ms));
		json_object_array_add(arr, o);
	}
	return arr;
}

void rf_handle_usage(struct rf_worker *w, struct rf_request *rq)
{
	const struct usage_window *win = usage_window(rq);
	struct rf_usage_report r;
	int64_t now = rf_now_ms(), to;
	json_object *data;

	if (win == NULL || !store_ready(w, rq))
		return;
	/* Whole buckets: to is the end of the bucket now falls in. */
	to = (now / win->bucket_ms + 1) * win->bucket_ms;
	if (rf_store_usage(w->store, to - win->window_ms, to, win->bucket_ms,
	    &r) != 0) {
		send_internal(rq, "store read failed");
		return;
	}
	data = json_object_new_object();
	add(data, "window", json_object_new_string(win->name));
	add(data, "from", iso_or_null(r.from_ms));
	add(data, "to", iso_or_null(r.to_ms));
	add(data, "bucketSeconds", json_object_new_int64(r.bucket_ms / 1000));
	add(data, "totals", totals_json(&r.totals));
	add(data, "providers", providers_json(&r));
	add(data, "timeseries", timeseries_json(&r));
	rf_store_usage_free(&r);
	rf_http_send_json(rq, 200, NULL, rf_contract_success(data));
}
