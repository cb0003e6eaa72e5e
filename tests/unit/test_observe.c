/*
 * Unit tests of the observability handlers (src/observe.c): status states
 * and figures, the logs' query validation and item shape, usage windows
 * and buckets, a client hang-up counted as cancelled (never as an error)
 * in usage and the logs filter, the Prometheus text of /metrics, and the
 * 503 without a store.  The handlers run directly
 * (the router's guards are tested through lighttpd) on a real store in a
 * mkdtemp directory; responses are captured and parsed with json-c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "config.h"
#include "handlers.h"
#include "request.h"
#include "store.h"
#include "util.h"

#define MIN_MS ((int64_t)60000)

struct fixture {
	char dir[64];
	char path[128];
	struct rf_config cfg;
	struct rf_store *store;
	struct rf_worker w;
};

static const char *const key_env[] = { "GROQ_API_KEY", "SAMBANOVA_API_KEY",
	"CEREBRAS_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY" };

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/rf-observe-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/relayforge.db", f->dir);
	unsetenv("RELAYFORGE_CONFIG");
	for (size_t i = 0; i < sizeof key_env / sizeof key_env[0]; i++)
		unsetenv(key_env[i]);
	/* Everything but SambaNova has a key; the mock is on. */
	setenv("GROQ_API_KEY", "k1", 1);
	setenv("CEREBRAS_API_KEY", "k2", 1);
	setenv("GEMINI_API_KEY", "k3", 1);
	setenv("OPENROUTER_API_KEY", "k4", 1);
	setenv("RELAYFORGE_DB", f->path, 1);
	if (rf_config_load(&f->cfg, err, sizeof err) != 0) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	f->store = rf_store_open(f->path, err, sizeof err);
	if (f->store == NULL)
		return -1;
	f->w = (struct rf_worker){ .cfg = &f->cfg, .store = f->store };
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[200];

	rf_store_close(f->store);
	rf_config_free(&f->cfg);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- a captured response ---- */

struct answer {
	int status;
	json_object *body; /* the whole document */
	json_object *data; /* body.data or body.error (borrowed) */
};

static const char *
no_param(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

static long
no_read(void *ctx, char *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	return 0;
}

static int
buf_write(void *ctx, const char *p, size_t n)
{
	return rf_buf_append(ctx, p, n);
}

static int
buf_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

typedef void (*handler_fn)(struct rf_worker *, struct rf_request *);

static struct answer
call(struct rf_worker *w, handler_fn h,
    const char *query)
{
	struct rf_buf out;
	struct rf_request rq = { .param = no_param, .read = no_read,
	    .out = { buf_write, buf_flush, &out, false, NULL }, .method = "GET",
	    .query = query };
	struct answer a = { 0 };
	const char *body;

	rf_buf_init(&out, 0);
	snprintf(rq.request_id, sizeof rq.request_id, "test-req");
	h(w, &rq);
	assert_non_null(out.data);
	assert_int_equal(sscanf(out.data, "Status: %d", &a.status), 1);
	assert_non_null(strstr(out.data, "Cache-Control: no-store\r\n"));
	body = strstr(out.data, "\r\n\r\n");
	assert_non_null(body);
	a.body = json_tokener_parse(body + 4);
	assert_non_null(a.body);
	if (!json_object_object_get_ex(a.body, "data", &a.data))
		assert_true(json_object_object_get_ex(a.body, "error", &a.data));
	rf_buf_free(&out);
	return a;
}

static json_object *
get(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static const char *
get_str(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	return v != NULL ? json_object_get_string(v) : NULL;
}

static int64_t
get_int(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	assert_non_null(v);
	return json_object_get_int64(v);
}

static bool
is_null(json_object *o, const char *key)
{
	return get(o, key) == NULL;
}

/* A 400 validation_error naming field. */
static void
expect_bad(struct fixture *f, handler_fn h, const char *query,
    const char *field)
{
	struct answer a = call(&f->w, h, query);

	assert_int_equal(a.status, 400);
	assert_string_equal(get_str(a.data, "code"), "validation_error");
	assert_string_equal(get_str(a.data, "field"), field);
	json_object_put(a.body);
}

/* ---- helpers that write the store ---- */

static void
log_one(struct fixture *f, int64_t ts, const char *provider,
    bool ok, long latency, const char *endpoint)
{
	struct rf_log_attempt a = { provider, ok ? "ok" : "provider_timeout",
	    NULL, ok ? 200 : 0, latency, 0 };
	struct rf_log_entry e = { .request_id = "rid", .ts_ms = ts,
	    .endpoint = endpoint, .strategy = "auto",
	    .attempted_provider = provider, .final_provider = provider,
	    .demo = strcmp(provider, "mock") == 0, .success = ok,
	    .error_code = ok ? NULL : "provider_timeout",
	    .http_status = ok ? 200 : 504, .latency_ms = latency,
	    .ttft_ms = -1, .prompt_chars = 12, .prompt_tokens = ok ? 4 : -1,
	    .completion_tokens = ok ? 9 : -1, .source = "unit",
	    .prompt_preview = "Hello there!", .attempts = &a, .nattempts = 1 };

	assert_int_equal(rf_store_log_request(f->store, &e), 0);
}

/* ---- status ---- */

static json_object *
status_of(json_object *data, const char *id)
{
	json_object *list = get(data, "providers");

	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *p = json_object_array_get_idx(list, i);
		if (strcmp(get_str(p, "id"), id) == 0)
			return p;
	}
	fail_msg("no provider %s", id);
	return NULL;
}

static void
test_status_states(void **state)
{
	struct fixture *f = *state;
	int64_t now = rf_now_ms();
	json_object *p, *stats, *order;
	struct answer a;

	/* groq: cooling down; cerebras: three failures, cooldown over;
	 * gemini: its last call failed; mock: two ok calls. */
	assert_int_equal(rf_store_provider_failed(f->store, "groq",
	    "provider_rate_limited", now, now + 60000, NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rf_store_provider_failed(f->store, "cerebras",
		    "provider_unavailable", now - 100000, 0, NULL), 0);
	/* The engine's threshold cooldown after the third (long over). */
	assert_int_equal(rf_store_provider_cooldown(f->store, "cerebras",
	    now - 100000 + 30000, "failure_threshold"), 0);
	log_one(f, now - 5000, "gemini", false, 300, "chat");
	log_one(f, now - 4000, "gemini", true, 100, "chat");
	log_one(f, now - 3000, "mock", true, 10, "chat");
	log_one(f, now - 2000, "mock", true, 20, "stream");
	log_one(f, now - 1000000, "openrouter", true, 20, "chat"); /* old */
	assert_int_equal(rf_store_provider_quota(f->store, "openrouter", 5,
	    -1, 0, now), 0);

	a = call(&f->w, rf_handle_status, "");
	assert_int_equal(a.status, 200);
	order = get(a.data, "routingOrder");
	assert_int_equal(json_object_array_length(order), 6);
	assert_string_equal(json_object_get_string(
	    json_object_array_get_idx(order, 0)), "groq");
	assert_string_equal(json_object_get_string(
	    json_object_array_get_idx(order, 5)), "mock");
	assert_non_null(get_str(a.data, "generatedAt"));

	p = status_of(a.data, "groq");
	assert_string_equal(get_str(p, "state"), "cooling_down");
	assert_int_equal(get_int(p, "position"), 1);
	assert_string_equal(get_str(p, "name"), "Groq");
	assert_true(json_object_get_boolean(get(p, "configured")));
	assert_int_equal(strlen(get_str(p, "cooldownUntil")), 24);
	assert_string_equal(get_str(get(p, "lastError"), "code"),
	    "provider_rate_limited");
	assert_true(is_null(p, "lastSuccessAt"));
	assert_true(is_null(p, "quota"));

	p = status_of(a.data, "sambanova");
	assert_string_equal(get_str(p, "state"), "unconfigured");
	assert_false(json_object_get_boolean(get(p, "configured")));
	assert_true(is_null(p, "lastError"));

	p = status_of(a.data, "cerebras");
	assert_string_equal(get_str(p, "state"), "down");
	assert_true(is_null(p, "cooldownUntil")); /* over */

	p = status_of(a.data, "gemini"); /* 50% success, last call ok */
	assert_string_equal(get_str(p, "state"), "degraded");
	stats = get(p, "stats");
	assert_int_equal(get_int(stats, "requests"), 2);
	assert_int_equal(get_int(stats, "failures"), 1);
	assert_true(json_object_get_double(get(stats, "successRate")) == 0.5);
	assert_int_equal(get_int(stats, "avgLatencyMs"), 200);
	assert_int_equal(get_int(stats, "p95LatencyMs"), 300);

	p = status_of(a.data, "openrouter");
	assert_string_equal(get_str(p, "state"), "idle");
	assert_int_equal(get_int(get(p, "stats"), "requests"), 0);
	assert_true(is_null(get(p, "stats"), "successRate"));
	assert_true(is_null(get(p, "stats"), "avgLatencyMs"));
	assert_non_null(get_str(p, "lastSuccessAt"));
	assert_int_equal(get_int(get(p, "quota"), "remainingRequests"), 5);
	assert_true(is_null(get(p, "quota"), "remainingTokens"));
	assert_true(is_null(get(p, "quota"), "resetAt"));

	p = status_of(a.data, "mock");
	assert_string_equal(get_str(p, "state"), "healthy");
	assert_string_equal(get_str(p, "model"), "relayforge-mock-1");
	stats = get(p, "stats");
	assert_int_equal(get_int(stats, "windowSeconds"), 900);
	assert_int_equal(get_int(stats, "requests"), 2);
	assert_int_equal(get_int(stats, "successes"), 2);
	assert_true(json_object_get_double(get(stats, "successRate")) == 1.0);
	assert_int_equal(get_int(stats, "avgLatencyMs"), 15);
	json_object_put(a.body);

	/* 8 more ok calls then a failure: 10 of 11 (over 90%), but the last
	 * call failed. */
	for (int i = 0; i < 8; i++)
		log_one(f, now - 1500, "mock", true, 10, "chat");
	log_one(f, now - 1000, "mock", false, 10, "chat");
	a = call(&f->w, rf_handle_status, "");
	p = status_of(a.data, "mock");
	assert_string_equal(get_str(p, "state"), "degraded");
	assert_int_equal(get_int(get(p, "stats"), "requests"), 11);
	json_object_put(a.body);
	/* One more ok call: healthy again (11 of 12). */
	log_one(f, now - 500, "mock", true, 10, "chat");
	a = call(&f->w, rf_handle_status, "");
	assert_string_equal(get_str(status_of(a.data, "mock"), "state"),
	    "healthy");
	json_object_put(a.body);
}

static void
test_no_store(void **state)
{
	struct fixture *f = *state;
	struct rf_worker w = { .cfg = &f->cfg, .store = NULL };
	handler_fn hs[] = { rf_handle_status, rf_handle_logs, rf_handle_usage,
	    rf_handle_metrics };

	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
		struct answer a = call(&w, hs[i], "");
		assert_int_equal(a.status, 503);
		assert_string_equal(get_str(a.data, "code"), "internal_error");
		json_object_put(a.body);
	}
	/* A bad parameter is still a 400 first. */
	f->w.store = NULL;
	expect_bad(f, rf_handle_logs, "limit=0", "limit");
	f->w.store = f->store;
}

/* ---- logs ---- */

static void
test_logs_validation(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[][2] = {
		{ "limit=0", "limit" }, { "limit=201", "limit" },
		{ "limit=abc", "limit" }, { "limit=", "limit" },
		{ "limit", "limit" }, { "limit=-5", "limit" },
		{ "limit=1e2", "limit" }, { "limit=%zz", "limit" },
		{ "before=0", "before" }, { "before=-1", "before" },
		{ "before=x", "before" }, { "before=99999999999999999999",
		    "before" },
		{ "provider=nobody", "provider" }, { "provider=", "provider" },
		{ "provider=GROQ", "provider" },
		{ "status=ok", "status" }, { "status=", "status" },
		{ "endpoint=x", "endpoint" }, { "endpoint=Chat", "endpoint" },
		{ "limit=5&status=failed", "status" },
		{ "status=canceled", "status" }, { "status=Cancelled", "status" },
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_bad(f, rf_handle_logs, bad[i][0], bad[i][1]);
	/* Good values and unknown keys (a cache buster) are fine. */
	struct answer a = call(&f->w, rf_handle_logs, "limit=200&before=1"
	    "&provider=mock&status=success&endpoint=stream&_=123");
	assert_int_equal(a.status, 200);
	assert_int_equal(json_object_array_length(get(a.data, "items")), 0);
	assert_true(is_null(a.data, "nextBefore"));
	json_object_put(a.body);
}

static void
test_logs_items(void **state)
{
	struct fixture *f = *state;
	int64_t now = rf_now_ms();
	json_object *items, *it, *att;
	struct answer a;

	for (int i = 0; i < 5; i++)
		log_one(f, now - 5000 + i, i % 2 ? "mock" : "groq", i != 4, 10 + i,
		    i % 2 ? "stream" : "chat");
	a = call(&f->w, rf_handle_logs, "limit=2");
	assert_int_equal(a.status, 200);
	items = get(a.data, "items");
	assert_int_equal(json_object_array_length(items), 2);
	assert_int_equal(get_int(a.data, "nextBefore"), 4);
	it = json_object_array_get_idx(items, 0);
	assert_int_equal(get_int(it, "id"), 5);
	assert_string_equal(get_str(it, "requestId"), "rid");
	assert_int_equal(strlen(get_str(it, "timestamp")), 24);
	assert_string_equal(get_str(it, "status"), "error");
	assert_string_equal(get_str(it, "errorCode"), "provider_timeout");
	assert_int_equal(get_int(it, "httpStatus"), 504);
	assert_true(is_null(it, "ttftMs"));
	assert_true(is_null(it, "model"));
	assert_true(is_null(get(it, "usage"), "promptTokens"));
	assert_string_equal(get_str(it, "source"), "unit");
	assert_false(json_object_object_get_ex(it, "promptPreview", NULL));
	att = json_object_array_get_idx(get(it, "attempts"), 0);
	assert_string_equal(get_str(att, "provider"), "groq");
	assert_string_equal(get_str(att, "outcome"), "provider_timeout");
	assert_false(json_object_object_get_ex(att, "httpStatus", NULL));
	assert_false(json_object_object_get_ex(att, "retry", NULL));
	assert_false(json_object_object_get_ex(att, "reason", NULL));
	assert_int_equal(get_int(att, "latencyMs"), 14);
	it = json_object_array_get_idx(items, 1);
	assert_true(json_object_get_boolean(get(it, "demoMode")));
	assert_int_equal(get_int(get(it, "usage"), "completionTokens"), 9);
	json_object_put(a.body);

	/* The last page has no nextBefore; the preview shows when on. */
	f->cfg.log_prompts = true;
	a = call(&f->w, rf_handle_logs, "before=3&limit=2");
	items = get(a.data, "items");
	assert_int_equal(json_object_array_length(items), 2);
	assert_true(is_null(a.data, "nextBefore"));
	assert_string_equal(get_str(json_object_array_get_idx(items, 0),
	    "promptPreview"), "Hello there!");
	json_object_put(a.body);
	f->cfg.log_prompts = false;

	a = call(&f->w, rf_handle_logs, "provider=mock&endpoint=stream");
	assert_int_equal(json_object_array_length(get(a.data, "items")), 2);
	json_object_put(a.body);
}

/* A stream whose client hung up: an error row with code client_closed. */
static void
log_hangup(struct fixture *f, int64_t ts, const char *provider)
{
	struct rf_log_attempt a = { provider, "client_closed", NULL, 200, 30,
	    0 };
	struct rf_log_entry e = { .request_id = "gone", .ts_ms = ts,
	    .endpoint = "stream", .strategy = "auto",
	    .attempted_provider = provider, .final_provider = provider,
	    .success = false, .error_code = "client_closed",
	    .http_status = 499, .latency_ms = 30, .ttft_ms = 12,
	    .prompt_chars = 3, .prompt_tokens = -1, .completion_tokens = -1,
	    .attempts = &a, .nattempts = 1 };

	assert_int_equal(rf_store_log_request(f->store, &e), 0);
}

/* One meaning per number: the hang-up is cancelled in the usage totals,
 * the timeseries and the distribution, and in /logs; never an error. */
static void
test_cancelled_is_not_an_error(void **state)
{
	struct fixture *f = *state;
	int64_t now = rf_now_ms();
	json_object *tot, *ts, *last, *prov, *items;
	struct answer a;

	log_one(f, now, "groq", true, 100, "chat");
	log_one(f, now, "groq", false, 300, "chat");
	log_hangup(f, now, "groq");
	a = call(&f->w, rf_handle_usage, "window=1h");
	tot = get(a.data, "totals");
	assert_int_equal(get_int(tot, "requests"), 3);
	assert_int_equal(get_int(tot, "successes"), 1);
	assert_int_equal(get_int(tot, "errors"), 1);
	assert_int_equal(get_int(tot, "cancelled"), 1);
	ts = get(a.data, "timeseries");
	last = json_object_array_get_idx(ts, json_object_array_length(ts) - 1);
	assert_int_equal(get_int(last, "errors"), 1);
	assert_int_equal(get_int(last, "cancelled"), 1);
	assert_int_equal(get_int(json_object_array_get_idx(ts, 0),
	    "cancelled"), 0);
	prov = json_object_array_get_idx(get(a.data, "providers"), 0);
	assert_int_equal(get_int(prov, "errors"), 1);
	assert_int_equal(get_int(prov, "cancelled"), 1);
	json_object_put(a.body);

	a = call(&f->w, rf_handle_logs, "status=cancelled");
	assert_int_equal(a.status, 200);
	items = get(a.data, "items");
	assert_int_equal(json_object_array_length(items), 1);
	assert_string_equal(get_str(json_object_array_get_idx(items, 0),
	    "status"), "cancelled");
	assert_string_equal(get_str(json_object_array_get_idx(items, 0),
	    "errorCode"), "client_closed");
	json_object_put(a.body);
	a = call(&f->w, rf_handle_logs, "status=error");
	items = get(a.data, "items");
	assert_int_equal(json_object_array_length(items), 1);
	assert_string_equal(get_str(json_object_array_get_idx(items, 0),
	    "errorCode"), "provider_timeout");
	json_object_put(a.body);

	/* The provider card leaves the hang-up out too: 2 calls, 1 failed. */
	a = call(&f->w, rf_handle_status, "");
	prov = get(status_of(a.data, "groq"), "stats");
	assert_int_equal(get_int(prov, "requests"), 2);
	assert_int_equal(get_int(prov, "failures"), 1);
	json_object_put(a.body);
}

/* ---- metrics ---- */

/* The raw answer of a handler: status, head and body. */
static char *
call_text(struct rf_worker *w, handler_fn h, int *status)
{
	struct rf_buf out;
	struct rf_request rq = { .param = no_param, .read = no_read,
	    .out = { buf_write, buf_flush, &out, false, NULL }, .method = "GET",
	    .query = "" };
	char *text;

	rf_buf_init(&out, 0);
	snprintf(rq.request_id, sizeof rq.request_id, "test-req");
	h(w, &rq);
	assert_non_null(out.data);
	assert_int_equal(sscanf(out.data, "Status: %d", status), 1);
	text = strdup(out.data);
	rf_buf_free(&out);
	return text;
}

static void
test_metrics_exposition(void **state)
{
	struct fixture *f = *state;
	int64_t now = rf_now_ms();
	const char *body;
	char *t;
	int st;

	log_one(f, now, "groq", true, 100, "chat");
	log_one(f, now, "groq", true, 120, "chat");
	log_hangup(f, now, "groq");
	assert_int_equal(rf_store_provider_cooldown(f->store, "cerebras",
	    now + 60000, "provider_rate_limited"), 0);
	t = call_text(&f->w, rf_handle_metrics, &st);
	assert_int_equal(st, 200);
	assert_non_null(strstr(t, "Content-Type: text/plain; version=0.0.4;"
	    " charset=utf-8\r\n"));
	assert_non_null(strstr(t, "Cache-Control: no-store\r\n"));
	body = strstr(t, "\r\n\r\n") + 4;
	assert_non_null(strstr(body, "relayforge_requests_total{endpoint="
	    "\"chat\",outcome=\"success\",final_provider=\"groq\"} 2\n"));
	assert_non_null(strstr(body, "relayforge_requests_total{endpoint="
	    "\"stream\",outcome=\"cancelled\",final_provider=\"groq\"} 1\n"));
	assert_non_null(strstr(body, "relayforge_attempts_total{provider="
	    "\"groq\",outcome=\"cancelled\"} 1\n"));
	assert_non_null(strstr(body, "gen_ai_server_request_duration_seconds"
	    "_sum{endpoint=\"chat\",outcome=\"success\",final_provider="
	    "\"groq\"} 0.220\n"));
	assert_non_null(strstr(body, "gen_ai_server_time_to_first_token_seconds"
	    "_count{endpoint=\"stream\",outcome=\"cancelled\",final_provider="
	    "\"groq\"} 1\n"));
	/* Every provider of the chain has a cooldown gauge. */
	assert_non_null(strstr(body, "relayforge_provider_cooldown_until_seconds"
	    "{provider=\"groq\"} 0\n"));
	assert_null(strstr(body, "relayforge_provider_cooldown_until_seconds"
	    "{provider=\"cerebras\"} 0\n"));
	assert_non_null(strstr(body, "relayforge_provider_cooldown_until_seconds"
	    "{provider=\"mock\"} 0\n"));
	/* The handler published this process's own row before reading. */
	assert_non_null(strstr(body, "relayforge_processes 1\n"));
	assert_non_null(strstr(body, "relayforge_open_streams 0\n"));
	free(t);
}

/* ---- usage ---- */

static void
test_usage_windows(void **state)
{
	struct fixture *f = *state;
	static const struct { const char *q, *name; int64_t bucket, n; } w[] = {
		{ "window=1h", "1h", 60, 60 },
		{ "", "24h", 3600, 24 },
		{ "window=24h", "24h", 3600, 24 },
		{ "window=7d", "7d", 21600, 28 },
		{ "window=30d", "30d", 86400, 30 },
	};
	int64_t now = rf_now_ms();

	/* At now: in the last bucket of every window (the handler reads
	 * the clock again a moment later). */
	log_one(f, now, "groq", true, 100, "chat");
	log_one(f, now, "groq", false, 300, "stream");
	log_one(f, now, "mock", true, 20, "chat");
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
		struct answer a = call(&f->w, rf_handle_usage, w[i].q);
		json_object *ts = get(a.data, "timeseries"), *tot, *prov, *last;
		int64_t sum = 0;
		assert_int_equal(a.status, 200);
		assert_string_equal(get_str(a.data, "window"), w[i].name);
		assert_int_equal(get_int(a.data, "bucketSeconds"), w[i].bucket);
		assert_int_equal(json_object_array_length(ts), w[i].n);
		for (int64_t k = 0; k < w[i].n; k++)
			sum += get_int(json_object_array_get_idx(ts, k),
			    "requests");
		tot = get(a.data, "totals");
		assert_int_equal(sum, 3);
		assert_int_equal(get_int(tot, "requests"), 3);
		assert_int_equal(get_int(tot, "errors"), 1);
		assert_int_equal(get_int(tot, "avgLatencyMs"), 140);
		assert_int_equal(get_int(tot, "promptTokens"), 8);
		assert_int_equal(get_int(tot, "completionTokens"), 18);
		assert_true(json_object_get_double(get(tot, "fallbackRate")) == 0);
		prov = get(a.data, "providers");
		assert_int_equal(json_object_array_length(prov), 2);
		assert_string_equal(get_str(json_object_array_get_idx(prov, 0),
		    "provider"), "groq");
		/* The first bucket starts at from; the last holds now. */
		assert_string_equal(get_str(json_object_array_get_idx(ts, 0),
		    "t"), get_str(a.data, "from"));
		last = json_object_array_get_idx(ts, (size_t)w[i].n - 1);
		assert_int_equal(get_int(last, "requests"), 3);
		assert_int_equal(get_int(last, "errors"), 1);
		assert_int_equal(get_int(last, "p95LatencyMs"), 300);
		assert_true(is_null(json_object_array_get_idx(ts, 0),
		    "avgLatencyMs"));
		assert_true(is_null(json_object_array_get_idx(ts, 0),
		    "p95LatencyMs"));
		json_object_put(a.body);
	}
	expect_bad(f, rf_handle_usage, "window=2h", "window");
	expect_bad(f, rf_handle_usage, "window=", "window");
	expect_bad(f, rf_handle_usage, "window=30D", "window");
}

static void
test_usage_empty(void **state)
{
	struct fixture *f = *state;
	struct answer a = call(&f->w, rf_handle_usage, "window=1h");
	json_object *tot = get(a.data, "totals");

	assert_int_equal(get_int(tot, "requests"), 0);
	assert_true(is_null(tot, "fallbackRate"));
	assert_true(is_null(tot, "avgLatencyMs"));
	assert_true(is_null(tot, "p50LatencyMs"));
	assert_true(is_null(tot, "p99LatencyMs"));
	assert_int_equal(json_object_array_length(get(a.data, "providers")), 0);
	json_object_put(a.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logs_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logs_items, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled_is_not_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_exposition, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
