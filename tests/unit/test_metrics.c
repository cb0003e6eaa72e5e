/*
 * Unit tests of the metric families (src/metrics.c) and the Prometheus
 * text exposition (src/render_metrics.c): the OpenTelemetry GenAI bucket
 * bounds and their text, which series a request adds to (outcomes,
 * cancelled requests and attempts, skipped attempts, unknown tokens, a
 * request that called no provider), a batch summed into one row per
 * series, label values made identifiers, and the exact text rendered from
 * a snapshot: HELP and TYPE of every family, cumulative buckets ending in
 * +Inf, sums in seconds, the counters exposed from a histogram's count,
 * gauges with ended cooldowns at 0 and unknown quota left out.  Pure: no
 * store, no I/O.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "render.h"
#include "store.h"
#include "util.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- families and buckets ---- */

static void
test_families_follow_the_conventions(void **state)
{
	static const struct { int id; const char *name; int n; double last; }
	    want[] = {
		{ RF_M_SERVER_DURATION, "gen_ai_server_request_duration_seconds",
		    14, 81.92 },
		{ RF_M_TTFT, "gen_ai_server_time_to_first_token_seconds", 16,
		    10 },
		{ RF_M_CLIENT_DURATION,
		    "gen_ai_client_operation_duration_seconds", 14, 81.92 },
		{ RF_M_TOKENS, "gen_ai_client_token_usage", 14, 67108864 },
	};

	(void)state;
	for (size_t i = 0; i < NELEM(want); i++) {
		const struct rf_metric_family *f = &rf_metric_families[want[i].id];
		assert_string_equal(f->name, want[i].name);
		assert_int_equal(f->type, RF_METRIC_HISTOGRAM);
		assert_int_equal(f->nbounds, want[i].n);
		assert_true(f->nbounds <= RF_METRIC_BUCKETS);
		/* Each le text is its bound in the exposed unit. */
		for (int b = 0; b < f->nbounds; b++) {
			double le = strtod(f->le[b], NULL);
			assert_true(le * (double)f->scale > (double)f->bounds[b]
			    - 1e-6);
			assert_true(le * (double)f->scale < (double)f->bounds[b]
			    + 1e-6);
			if (b > 0)
				assert_true(f->bounds[b] > f->bounds[b - 1]);
		}
		assert_true(strtod(f->le[f->nbounds - 1], NULL) == want[i].last);
	}
	assert_string_equal(rf_metric_families[RF_M_TTFT].le[0], "0.001");
	assert_string_equal(rf_metric_families[RF_M_SERVER_DURATION].le[0],
	    "0.01");
	for (int i = RF_M_REQUESTS; i <= RF_M_ATTEMPTS; i++) {
		size_t n = strlen(rf_metric_families[i].name);
		assert_int_equal(rf_metric_families[i].type, RF_METRIC_COUNTER);
		assert_string_equal(rf_metric_families[i].name + n - 6, "_total");
	}
	/* The two counters a histogram's count already holds. */
	assert_int_equal(rf_metric_families[RF_M_REQUESTS].from,
	    RF_M_SERVER_DURATION);
	assert_int_equal(rf_metric_families[RF_M_ATTEMPTS].from,
	    RF_M_CLIENT_DURATION);
	assert_int_equal(rf_metric_families[RF_M_FALLBACKS].from, -1);
}

static void
test_bucket_edges(void **state)
{
	const struct rf_metric_family *d =
	    &rf_metric_families[RF_M_SERVER_DURATION];
	const struct rf_metric_family *t = &rf_metric_families[RF_M_TOKENS];

	(void)state;
	/* A bound belongs to its own bucket (le: less or equal). */
	assert_int_equal(rf_metrics_bucket(d, 0), 0);
	assert_int_equal(rf_metrics_bucket(d, 10), 0);
	assert_int_equal(rf_metrics_bucket(d, 11), 1);
	assert_int_equal(rf_metrics_bucket(d, 81920), 13);
	assert_int_equal(rf_metrics_bucket(d, 81921), 14); /* +Inf only */
	assert_int_equal(rf_metrics_bucket(t, 1), 0);
	assert_int_equal(rf_metrics_bucket(t, 2), 1);
	assert_int_equal(rf_metrics_bucket(t, 67108865), 14);
}

/* ---- which series a request adds to ---- */

static const struct rf_metric_row *
find(const struct rf_metrics_acc *a, const char *name, const char *labels)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, name) == 0 &&
		    strcmp(a->v[i].labels, labels) == 0)
			return &a->v[i];
	return NULL;
}

static int64_t
count_of(const struct rf_metrics_acc *a, const char *name, const char *labels)
{
	const struct rf_metric_row *r = find(a, name, labels);

	return r != NULL ? r->count : 0;
}

static const struct rf_log_attempt fallback_trail[] = {
	{ "groq", "provider_rate_limited", NULL, 429, 31, 0 },
	{ "sambanova", "skipped", "unconfigured", 0, -1, 0 },
	{ "cerebras", "ok", NULL, 200, 790, 0 },
};

static const struct rf_log_attempt hangup_trail[] = {
	{ "groq", "client_closed", NULL, 200, 1500, 0 },
};

static struct rf_log_entry
fallback_chat(void)
{
	return (struct rf_log_entry){ .request_id = "a", .endpoint = "chat",
		.strategy = "auto", .attempted_provider = "groq",
		.final_provider = "cerebras", .fallback = true, .success = true,
		.http_status = 200, .latency_ms = 842, .ttft_ms = -1,
		.prompt_tokens = 12, .completion_tokens = 80,
		.attempts = fallback_trail, .nattempts = 3 };
}

static struct rf_log_entry
hangup_stream(void)
{
	return (struct rf_log_entry){ .request_id = "b", .endpoint = "stream",
		.strategy = "auto", .attempted_provider = "groq",
		.final_provider = "groq", .success = false,
		.error_code = "client_closed", .http_status = 499,
		.latency_ms = 1502, .ttft_ms = 40, .prompt_tokens = -1,
		.completion_tokens = -1, .attempts = hangup_trail,
		.nattempts = 1 };
}

static void
test_a_fallback_chat(void **state)
{
	struct rf_metrics_acc a;
	struct rf_log_entry e = fallback_chat();
	const struct rf_metric_row *r;

	(void)state;
	rf_metrics_acc_init(&a);
	assert_int_equal(rf_metrics_acc_add(&a, &e), 0);
	r = find(&a, "gen_ai_server_request_duration_seconds",
	    "endpoint=\"chat\",outcome=\"success\",final_provider=\"cerebras\"");
	assert_non_null(r);
	assert_int_equal(r->count, 1);
	assert_int_equal(r->sum, 842);
	assert_int_equal(r->b[6], 0);  /* le 0.64 */
	assert_int_equal(r->b[7], 1);  /* le 1.28 */
	assert_int_equal(count_of(&a, "relayforge_fallbacks_total",
	    "attempted_provider=\"groq\",final_provider=\"cerebras\""), 1);
	/* A skip is counted as such; a call is its duration's count. */
	assert_int_equal(count_of(&a, "relayforge_attempts_total",
	    "provider=\"sambanova\",outcome=\"skipped\""), 1);
	assert_null(find(&a, "gen_ai_client_operation_duration_seconds",
	    "gen_ai_provider_name=\"sambanova\",outcome=\"skipped\""));
	assert_null(find(&a, "relayforge_attempts_total",
	    "provider=\"groq\",outcome=\"provider_rate_limited\""));
	for (size_t i = 0; i < a.n; i++)
		assert_string_not_equal(a.v[i].name, "relayforge_requests_total");
	r = find(&a, "gen_ai_client_operation_duration_seconds",
	    "gen_ai_provider_name=\"groq\",outcome=\"provider_rate_limited\"");
	assert_non_null(r);
	assert_int_equal(r->sum, 31);
	assert_int_equal(r->b[2], 1); /* 31 ms: in (0.02, 0.04] */
	r = find(&a, "gen_ai_client_token_usage",
	    "gen_ai_provider_name=\"cerebras\",gen_ai_token_type=\"output\"");
	assert_non_null(r);
	assert_int_equal(r->sum, 80);
	assert_int_equal(r->b[4], 1); /* 80 tokens: le 256 */
	/* A chat has no first token of its own. */
	for (size_t i = 0; i < a.n; i++)
		assert_string_not_equal(a.v[i].name,
		    "gen_ai_server_time_to_first_token_seconds");
	rf_metrics_acc_free(&a);
}

static void
test_a_hangup_is_cancelled(void **state)
{
	struct rf_metrics_acc a;
	struct rf_log_entry e = hangup_stream();
	const struct rf_metric_row *r;

	(void)state;
	rf_metrics_acc_init(&a);
	assert_int_equal(rf_metrics_acc_add(&a, &e), 0);
	assert_int_equal(count_of(&a, "gen_ai_server_request_duration_seconds",
	    "endpoint=\"stream\",outcome=\"cancelled\",final_provider=\"groq\""),
	    1);
	r = find(&a, "gen_ai_server_time_to_first_token_seconds",
	    "endpoint=\"stream\",outcome=\"cancelled\",final_provider=\"groq\"");
	assert_non_null(r);
	assert_int_equal(r->sum, 40);
	assert_int_equal(r->b[4], 1); /* le 0.04 */
	assert_int_equal(count_of(&a, "gen_ai_client_operation_duration_seconds",
	    "gen_ai_provider_name=\"groq\",outcome=\"cancelled\""), 1);
	/* Nothing says error, and unknown tokens are no observation. */
	for (size_t i = 0; i < a.n; i++) {
		assert_null(strstr(a.v[i].labels, "\"error\""));
		assert_string_not_equal(a.v[i].name, "gen_ai_client_token_usage");
		assert_string_not_equal(a.v[i].name, "relayforge_fallbacks_total");
	}
	rf_metrics_acc_free(&a);
}

static void
test_nobody_called_and_odd_values(void **state)
{
	struct rf_metrics_acc a;
	char longv[100];
	struct rf_log_entry e = { .endpoint = "chat", .success = false,
		.error_code = "provider_unavailable", .latency_ms = 2,
		.ttft_ms = -1, .prompt_tokens = -1, .completion_tokens = 0 };
	struct rf_log_attempt odd = { longv, "skipped", NULL, 0, -1, 0 };
	const struct rf_metric_row *r;

	(void)state;
	rf_metrics_acc_init(&a);
	assert_int_equal(rf_metrics_acc_add(&a, &e), 0);
	assert_int_equal(count_of(&a, "gen_ai_server_request_duration_seconds",
	    "endpoint=\"chat\",outcome=\"error\",final_provider=\"none\""), 1);
	/* 0 output tokens is a known count: le 1. */
	r = find(&a, "gen_ai_client_token_usage",
	    "gen_ai_provider_name=\"none\",gen_ai_token_type=\"output\"");
	assert_non_null(r);
	assert_int_equal(r->b[0], 1);
	rf_metrics_acc_reset(&a);
	assert_int_equal(a.n, 0);

	/* A label value is an identifier, cut at RF_METRICS_VALUE_MAX. */
	memset(longv, 'x', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	longv[0] = '"';
	longv[1] = '\n';
	e = fallback_chat();
	e.attempts = &odd;
	e.nattempts = 1;
	assert_int_equal(rf_metrics_acc_add(&a, &e), 0);
	for (size_t i = 0; i < a.n; i++) {
		if (strcmp(a.v[i].name, "relayforge_attempts_total") != 0)
			continue;
		assert_null(strchr(a.v[i].labels, '\n'));
		assert_int_equal(strlen(a.v[i].labels), strlen(
		    "provider=\"\",outcome=\"skipped\"") + RF_METRICS_VALUE_MAX);
		assert_memory_equal(a.v[i].labels, "provider=\"__xxx", 15);
	}
	rf_metrics_acc_free(&a);
	rf_metrics_acc_free(NULL);
}

static void
test_a_batch_sums_per_series(void **state)
{
	struct rf_metrics_acc a;
	struct rf_log_entry e = fallback_chat(), h = hangup_stream();
	size_t series;
	const struct rf_metric_row *r;

	(void)state;
	rf_metrics_acc_init(&a);
	assert_int_equal(rf_metrics_acc_add(&a, &e), 0);
	series = a.n;
	e.latency_ms = 5;
	assert_int_equal(rf_metrics_acc_add(&a, &e), 0);
	assert_int_equal(a.n, series); /* the same series, not new rows */
	r = find(&a, "gen_ai_server_request_duration_seconds",
	    "endpoint=\"chat\",outcome=\"success\",final_provider=\"cerebras\"");
	assert_int_equal(r->count, 2);
	assert_int_equal(r->sum, 847);
	assert_int_equal(r->b[0] + r->b[7], 2);
	for (int i = 0; i < 40; i++)
		assert_int_equal(rf_metrics_acc_add(&a, &h), 0);
	assert_int_equal(count_of(&a, "gen_ai_server_request_duration_seconds",
	    "endpoint=\"stream\",outcome=\"cancelled\",final_provider=\"groq\""),
	    40);
	rf_metrics_acc_free(&a);
}

/* ---- the exposition ---- */

static struct rf_metric_row
row(const char *name, const char *labels, int64_t count, int64_t sum)
{
	struct rf_metric_row r;

	memset(&r, 0, sizeof r);
	snprintf(r.name, sizeof r.name, "%s", name);
	snprintf(r.labels, sizeof r.labels, "%s", labels);
	r.count = count;
	r.sum = sum;
	return r;
}

static char *
render(const struct rf_metrics_snapshot *m, const char *const *ids,
    size_t n, int64_t now)
{
	struct rf_buf out = { 0 };
	char *text;

	assert_int_equal(rf_render_metrics(&out, m, ids, n, now), 0);
	text = strdup(rf_buf_str(&out));
	rf_buf_free(&out);
	return text;
}

static void
test_render_exact_text(void **state)
{
	struct rf_metric_row rows[6];
	struct rf_metrics_provider prov[2] = {
		{ 1767268900500, 99, -1 },   /* cooling for 100.5 s more */
		{ 1767268700000, -1, 5000 }, /* a cooldown that ended */
	};
	const char *ids[] = { "groq", "cerebras" };
	struct rf_metrics_snapshot m = { .rows = rows, .nrows = 6,
		.providers = prov, .nproviders = 2,
		.live = { 3, 7, 0 }, .live_processes = 2, .dropped_rows = 11 };
	char *t;

	(void)state;
	rows[0] = row("gen_ai_server_request_duration_seconds",
	    "endpoint=\"chat\",outcome=\"success\",final_provider=\"groq\"", 3,
	    1234);
	rows[0].b[0] = 1;   /* <= 10 ms */
	rows[0].b[7] = 1;   /* <= 1280 ms; one more above 81.92 s */
	rows[1] = row("gen_ai_client_operation_duration_seconds",
	    "gen_ai_provider_name=\"groq\",outcome=\"ok\"", 4, 40);
	rows[1].b[0] = 4;
	rows[2] = row("gen_ai_server_request_duration_seconds", "bad\n", 9, 0);
	rows[3] = row("some_future_metric", "", 1, 0);
	rows[4] = row("relayforge_attempts_total",
	    "provider=\"sambanova\",outcome=\"skipped\"", 2, 0);
	rows[5] = row("relayforge_fallbacks_total",
	    "attempted_provider=\"groq\",final_provider=\"mock\"", 1, 0);
	t = render(&m, ids, 2, 1767268800000);
	assert_non_null(strstr(t,
	    "# HELP gen_ai_server_request_duration_seconds "));
	assert_non_null(strstr(t,
	    "# TYPE gen_ai_server_request_duration_seconds histogram\n"
	    "gen_ai_server_request_duration_seconds_bucket{endpoint=\"chat\","
	    "outcome=\"success\",final_provider=\"groq\",le=\"0.01\"} 1\n"
	    "gen_ai_server_request_duration_seconds_bucket{endpoint=\"chat\","
	    "outcome=\"success\",final_provider=\"groq\",le=\"0.02\"} 1\n"));
	assert_non_null(strstr(t, "le=\"0.64\"} 1\n"));
	assert_non_null(strstr(t, "le=\"1.28\"} 2\n"));
	assert_non_null(strstr(t, "le=\"81.92\"} 2\n"));
	assert_non_null(strstr(t, "le=\"+Inf\"} 3\n"
	    "gen_ai_server_request_duration_seconds_sum{endpoint=\"chat\","
	    "outcome=\"success\",final_provider=\"groq\"} 1.234\n"
	    "gen_ai_server_request_duration_seconds_count{endpoint=\"chat\","
	    "outcome=\"success\",final_provider=\"groq\"} 3\n"));
	/* Every family has its head, with series or not. */
	for (int i = 0; i < RF_M_NFAMILIES; i++) {
		char head[160];
		snprintf(head, sizeof head, "# TYPE %s %s\n",
		    rf_metric_families[i].name, rf_metric_families[i].type ==
		    RF_METRIC_COUNTER ? "counter" : "histogram");
		assert_non_null(strstr(t, head));
	}
	/* The requests counter is the duration's count; the attempts
	 * counter the calls' count (label renamed) plus the stored skips. */
	assert_non_null(strstr(t, "# TYPE relayforge_requests_total counter\n"
	    "relayforge_requests_total{endpoint=\"chat\",outcome=\"success\","
	    "final_provider=\"groq\"} 3\n# HELP"));
	assert_non_null(strstr(t, "# TYPE relayforge_attempts_total counter\n"
	    "relayforge_attempts_total{provider=\"sambanova\",outcome="
	    "\"skipped\"} 2\n"
	    "relayforge_attempts_total{provider=\"groq\",outcome=\"ok\"} 4\n"
	    "# HELP"));
	assert_non_null(strstr(t, "# TYPE relayforge_fallbacks_total counter\n"
	    "relayforge_fallbacks_total{attempted_provider=\"groq\","
	    "final_provider=\"mock\"} 1\n# HELP"));
	assert_null(strstr(t, "bad"));          /* a broken label set */
	assert_null(strstr(t, "some_future_metric"));
	assert_non_null(strstr(t,
	    "relayforge_provider_cooldown_until_seconds{provider=\"groq\"}"
	    " 1767268900.500\n"
	    "relayforge_provider_cooldown_until_seconds{provider=\"cerebras\"}"
	    " 0\n"));
	assert_non_null(strstr(t,
	    "relayforge_provider_quota_remaining{provider=\"groq\","
	    "kind=\"requests\"} 99\n"
	    "relayforge_provider_quota_remaining{provider=\"cerebras\","
	    "kind=\"tokens\"} 5000\n# HELP"));
	assert_non_null(strstr(t, "# TYPE relayforge_store_queue_rows gauge\n"
	    "relayforge_store_queue_rows 7\n"));
	assert_non_null(strstr(t, "# TYPE relayforge_store_dropped_rows_total"
	    " counter\nrelayforge_store_dropped_rows_total 11\n"));
	assert_non_null(strstr(t, "relayforge_open_streams 3\n"));
	assert_non_null(strstr(t, "relayforge_processes 2\n"));
	/* Exactly one line per HELP, TYPE or sample: no blank lines. */
	assert_null(strstr(t, "\n\n"));
	assert_int_equal(t[strlen(t) - 1], '\n');
	free(t);
}

static void
test_render_empty_store(void **state)
{
	struct rf_metrics_snapshot m = { 0 };
	char *t;

	(void)state;
	t = render(&m, NULL, 0, 1);
	assert_non_null(strstr(t, "# TYPE gen_ai_client_token_usage histogram\n"
	    "# HELP relayforge_requests_total"));
	assert_non_null(strstr(t, "relayforge_open_streams 0\n"));
	assert_null(strstr(t, "_bucket"));
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_families_follow_the_conventions),
		cmocka_unit_test(test_bucket_edges),
		cmocka_unit_test(test_a_fallback_chat),
		cmocka_unit_test(test_a_hangup_is_cancelled),
		cmocka_unit_test(test_nobody_called_and_odd_values),
		cmocka_unit_test(test_a_batch_sums_per_series),
		cmocka_unit_test(test_render_exact_text),
		cmocka_unit_test(test_render_empty_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
