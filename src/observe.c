/*
 * observe: the read-only endpoints of docs/api.md and docs/operations.md -- provider
 * status, the request log, usage and the Prometheus metrics -- over the
 * shared store, so every responder process answers with the same numbers.
 * Each handler checks its query string, asks the store (include/store.h),
 * decides what is left to the gateway (a provider's state) and
 * hands the answer to the render layer for its wire shape.  Nothing here
 * calls a provider or spends its quota.
 *
 * Decisions taken here (docs/api.md describes them):
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
 * - a request whose client hung up is cancelled (rf_store_entry_status)
 *   in usage, /logs and metrics alike: never an error, so the usage tiles
 *   agree with the provider cards (whose calls leave hang-ups out too).
 * - metrics: the serving process first publishes its own gauges (without
 *   waiting), then reads one snapshot; the other processes' gauges are as
 *   fresh as their last heartbeat (src/gauges.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "gauges.h"
#include "handlers.h"
#include "render.h"
#include "reply.h"
#include "request.h"
#include "router.h"
#include "store.h"
#include "util.h"

#define STATUS_WINDOW_MS 900000 /* 15 minutes */
#define LOG_DEFAULT_LIMIT 50
#define PARAM_MAX 128           /* longest query value we accept */

/* No store: 503 like /health (a balancer should take this node out). */
static bool
store_ready(struct rf_worker *w, struct rf_request *rq)
{
	if (w->store != NULL)
		return true;
	rf_reply_store_unavailable(rq);
	return false;
}

/* A decimal integer in [lo, hi], digits only; -1 otherwise. */
static int64_t
parse_count(const char *s, int64_t lo, int64_t hi)
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
static void
bad_param(struct rf_request *rq, const char *field, const char *message)
{
	rf_reply_error(rq, RF_ERR_VALIDATION, message, field, NULL);
}

/* ---- GET /api/v1/providers/status ---- */

/* The provider's state (docs/api.md, providers/status), first match wins. */
static const char *
state_of(const struct rf_config *cfg, int pid,
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

void
rf_handle_status(struct rf_worker *w, struct rf_request *rq)
{
	const struct rf_config *cfg = w->cfg;
	struct rf_provider_report rep[RF_MAX_PROVIDERS];
	struct rf_render_provider p[RF_MAX_PROVIDERS];
	const char *ids[RF_MAX_PROVIDERS];
	int64_t now = rf_now_ms();
	int n = cfg->chain_len;

	if (!store_ready(w, rq))
		return;
	for (int i = 0; i < n; i++)
		ids[i] = cfg->providers[cfg->chain[i]].id;
	if (rf_store_provider_reports(w->store, ids, (size_t)n,
	    now - STATUS_WINDOW_MS, rep) != 0) {
		rf_reply_internal(rq, "store read failed");
		return;
	}
	for (int i = 0; i < n; i++)
		p[i] = (struct rf_render_provider){
			.pc = &cfg->providers[cfg->chain[i]], .position = i + 1,
			.state = state_of(cfg, cfg->chain[i], &rep[i], now),
			.rep = &rep[i],
		};
	rf_reply_data(rq, NULL, rf_render_status(now, STATUS_WINDOW_MS / 1000,
	    p, (size_t)n));
}

/* ---- GET /api/v1/logs ---- */

/* What a 400 says about each logs parameter. */
static const char *const logs_param_msg[][2] = {
	{ "limit", "limit must be an integer from 1 to 200." },
	{ "before", "before must be a positive request id." },
	{ "provider", "provider must be a provider id." },
	{ "status", "status must be success, error or cancelled." },
	{ "endpoint", "endpoint must be chat, stream, openai or "
	    "openai_stream." },
};

/* One of two or three words (c may be NULL), as the static copy; NULL
 * when v is none of them. */
static const char *
one_of(const char *v, const char *a, const char *b, const char *c)
{
	if (strcmp(v, a) == 0)
		return a;
	if (strcmp(v, b) == 0)
		return b;
	return c != NULL && strcmp(v, c) == 0 ? c : NULL;
}

/* An endpoint of the log rows (/api/v1's and /v1's), as the static
 * copy; NULL when v names none. */
static const char *
endpoint_of(const char *v)
{
	const char *e = one_of(v, "chat", "stream", NULL);

	return e != NULL ? e : one_of(v, "openai", "openai_stream", NULL);
}

/* Fill lq from the query string; on a bad value answer 400 naming it and
 * return -1.  Strings in lq are static (catalog ids, fixed words). */
static int
logs_query(struct rf_request *rq, struct rf_log_query *lq)
{
	const char *q = rq->query;
	char v[PARAM_MAX];
	int64_t n = 0;
	int f, bad;

	*lq = (struct rf_log_query){ .limit = LOG_DEFAULT_LIMIT };
	bad = 0;
	if ((f = rf_router_query_get(q, "limit", v, sizeof v)) != 0 &&
	    (f < 0 || (n = parse_count(v, 1, RF_LOG_PAGE_MAX)) < 0))
		goto fail;
	if (f != 0)
		lq->limit = (int)n;
	bad = 1;
	if ((f = rf_router_query_get(q, "before", v, sizeof v)) != 0 &&
	    (f < 0 || (lq->before_id = parse_count(v, 1, INT64_MAX / 10)) < 0))
		goto fail;
	bad = 2;
	if ((f = rf_router_query_get(q, "provider", v, sizeof v)) != 0 &&
	    (f < 0 || (lq->provider = rf_config_id(rf_config_pid(v))) == NULL))
		goto fail;
	bad = 3;
	if ((f = rf_router_query_get(q, "status", v, sizeof v)) != 0 &&
	    (f < 0 || (lq->status = one_of(v, "success", "error",
	    "cancelled")) == NULL))
		goto fail;
	bad = 4;
	if ((f = rf_router_query_get(q, "endpoint", v, sizeof v)) != 0 &&
	    (f < 0 || (lq->endpoint = endpoint_of(v)) == NULL))
		goto fail;
	return 0;
fail:
	bad_param(rq, logs_param_msg[bad][0], logs_param_msg[bad][1]);
	return -1;
}

void
rf_handle_logs(struct rf_worker *w, struct rf_request *rq)
{
	struct rf_log_query lq;
	struct rf_log_page page;

	if (logs_query(rq, &lq) != 0 || !store_ready(w, rq))
		return;
	if (rf_store_logs(w->store, &lq, &page) != 0) {
		rf_reply_internal(rq, "store read failed");
		return;
	}
	rf_reply_data(rq, NULL, rf_render_logs(&page, w->cfg->log_prompts));
	rf_store_log_page_free(&page);
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
static const struct usage_window *
usage_window(struct rf_request *rq)
{
	char v[PARAM_MAX];
	int f = rf_router_query_get(rq->query, "window", v, sizeof v);

	if (f == 0)
		return &windows[1];
	for (size_t i = 0; f > 0 && i < sizeof windows / sizeof windows[0]; i++)
		if (strcmp(v, windows[i].name) == 0)
			return &windows[i];
	bad_param(rq, "window", "window must be 1h, 24h, 7d or 30d.");
	return NULL;
}

void
rf_handle_usage(struct rf_worker *w, struct rf_request *rq)
{
	const struct usage_window *win = usage_window(rq);
	struct rf_usage_report r;
	int64_t now = rf_now_ms(), to;

	if (win == NULL || !store_ready(w, rq))
		return;
	/* Whole buckets: to is the end of the bucket now falls in. */
	to = (now / win->bucket_ms + 1) * win->bucket_ms;
	if (rf_store_usage(w->store, to - win->window_ms, to, win->bucket_ms,
	    &r) != 0) {
		rf_reply_internal(rq, "store read failed");
		return;
	}
	rf_reply_data(rq, NULL, rf_render_usage(win->name, &r));
	rf_store_usage_free(&r);
}

/* ---- GET /api/v1/metrics ---- */

void
rf_handle_metrics(struct rf_worker *w, struct rf_request *rq)
{
	const struct rf_config *cfg = w->cfg;
	const char *ids[RF_MAX_PROVIDERS];
	struct rf_metrics_snapshot m;
	struct rf_buf out = { 0 };
	int n = cfg->chain_len, was;
	int64_t now;

	if (!store_ready(w, rq))
		return;
	for (int i = 0; i < n; i++)
		ids[i] = cfg->providers[cfg->chain[i]].id;
	/* This process's own row, fresh; a store too busy for it in a few
	 * milliseconds leaves the last heartbeat's. */
	was = rf_store_budget(RF_STORE_HOT_MS);
	rf_gauges_publish(w->store, false);
	rf_store_budget(was);
	now = rf_now_ms();
	if (rf_store_metrics(w->store, ids, (size_t)n, now - RF_GAUGES_LIVE_MS,
	    &m) != 0) {
		rf_reply_internal(rq, "store read failed");
		return;
	}
	if (rf_render_metrics(&out, &m, ids, (size_t)n, now) == 0)
		rf_reply_text(rq, 200, RF_METRICS_CONTENT_TYPE, out.data,
		    out.len);
	else
		rf_reply_internal(rq, "out of memory");
	rf_buf_free(&out);
	rf_store_metrics_free(&m);
}
