/*
 * Unit tests of the latency histogram and the usage folding (src/hist.c):
 * bucket edges against the layout schema/relayforge.sql documents, upper
 * bounds, nearest-rank percentiles with their cap, and rows folded into
 * buckets, totals and the final-provider distribution.  No store: rows are
 * built by hand, as a backend would read them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

#define MINUTE 60000

static void
test_bucket_edges(void **state)
{
	(void)state;
	/* Exact under 8 ms; nothing below 0. */
	assert_int_equal(rf_hist_bucket(-5), 0);
	for (int ms = 0; ms < 8; ms++)
		assert_int_equal(rf_hist_bucket(ms), ms);
	/* [8, 16) in four: 8-9, 10-11, 12-13, 14-15. */
	assert_int_equal(rf_hist_bucket(8), 8);
	assert_int_equal(rf_hist_bucket(9), 8);
	assert_int_equal(rf_hist_bucket(10), 9);
	assert_int_equal(rf_hist_bucket(15), 11);
	assert_int_equal(rf_hist_bucket(16), 12);
	/* 842 ms: [512, 1024) cut in four, third quarter [768, 895]. */
	assert_int_equal(rf_hist_bucket(767), 33);
	assert_int_equal(rf_hist_bucket(768), 34);
	assert_int_equal(rf_hist_bucket(842), 34);
	assert_int_equal(rf_hist_bucket(895), 34);
	assert_int_equal(rf_hist_bucket(896), 35);
	/* The last bucket: the top quarter of [2^18, 2^19) and beyond. */
	assert_int_equal(rf_hist_bucket(458751), 70);
	assert_int_equal(rf_hist_bucket(458752), RF_HIST_BUCKETS - 1);
	assert_int_equal(rf_hist_bucket(524288), RF_HIST_BUCKETS - 1);
	assert_int_equal(rf_hist_bucket(INT64_MAX), RF_HIST_BUCKETS - 1);
}

static void
test_upper_bounds(void **state)
{
	(void)state;
	assert_int_equal(rf_hist_upper(0), 0);
	assert_int_equal(rf_hist_upper(7), 7);
	assert_int_equal(rf_hist_upper(8), 9);
	assert_int_equal(rf_hist_upper(34), 895);
	assert_int_equal(rf_hist_upper(70), 458751);
	assert_true(rf_hist_upper(RF_HIST_BUCKETS - 1) == INT64_MAX);
	/* Every bound is the last value of its bucket. */
	for (int b = 0; b < RF_HIST_BUCKETS - 1; b++) {
		assert_int_equal(rf_hist_bucket(rf_hist_upper(b)), b);
		assert_int_equal(rf_hist_bucket(rf_hist_upper(b) + 1), b + 1);
	}
}

/* A histogram of the values lo..hi, one each. */
static int64_t
fill(int64_t *h, long lo, long hi)
{
	memset(h, 0, RF_HIST_BUCKETS * sizeof *h);
	for (long v = lo; v <= hi; v++)
		h[rf_hist_bucket(v)]++;
	return hi - lo + 1;
}

static void
test_percentiles(void **state)
{
	int64_t h[RF_HIST_BUCKETS];
	int64_t n = fill(h, 1, 100);

	(void)state;
	/* Exact p50 50 lies in [48, 55], p95 95 in [80, 95], p99 99 in
	 * [96, 111], capped by the largest value, 100. */
	assert_int_equal(rf_hist_percentile(h, n, 50, 100), 55);
	assert_int_equal(rf_hist_percentile(h, n, 95, 100), 95);
	assert_int_equal(rf_hist_percentile(h, n, 99, 100), 100);
	/* Rank at least 1; none without values. */
	assert_int_equal(rf_hist_percentile(h, n, 0, 100), 1);
	assert_int_equal(rf_hist_percentile(h, 0, 50, 100), -1);
	/* Exact under 8 ms; the open last bucket reports the max. */
	n = fill(h, 3, 3);
	h[RF_HIST_BUCKETS - 1] = 1;
	assert_int_equal(rf_hist_percentile(h, 2, 50, 900000), 3);
	assert_int_equal(rf_hist_percentile(h, 2, 99, 900000), 900000);
	/* A count the histogram does not hold: the max, never past it. */
	n = fill(h, 10, 10);
	assert_int_equal(rf_hist_percentile(h, 5, 99, 10), 10);
}

static struct rf_hist_row
row(int64_t period, const char *provider, int64_t requests, int64_t errors,
    long latency)
{
	struct rf_hist_row r = {
		.period_ms = period, .provider = provider,
		.requests = requests, .successes = requests - errors,
		.errors = errors, .fallbacks = errors,
		.latency_sum = latency * requests, .latency_max = latency,
		.prompt_tokens = 10 * requests, .completion_tokens = requests,
	};

	r.h[rf_hist_bucket(latency)] = requests;
	return r;
}

/* A report of n one-minute buckets from 0, zero-filled. */
static void
report_init(struct rf_usage_report *r, size_t n)
{
	memset(r, 0, sizeof *r);
	rf_hist_figures_init(&r->totals);
	r->from_ms = 0;
	r->to_ms = (int64_t)n * MINUTE;
	r->bucket_ms = MINUTE;
	r->nbuckets = n;
	r->buckets = calloc(n, sizeof *r->buckets);
	assert_non_null(r->buckets);
	for (size_t i = 0; i < n; i++)
		rf_hist_figures_init(&r->buckets[i]);
}

static void
report_free(struct rf_usage_report *r)
{
	free(r->buckets);
	free(r->providers);
}

static void
test_fold(void **state)
{
	struct rf_usage_report r;
	struct rf_hist_fold f;
	const struct rf_hist_row rows[] = {
		row(0, "groq", 2, 1, 100),
		row(0, "mock", 1, 0, 5),
		row(2 * MINUTE, NULL, 1, 1, 1),      /* no provider called */
		row(2 * MINUTE, "groq", 1, 0, 300),
		row(3 * MINUTE, "groq", 9, 0, 1),    /* past the window */
	};

	(void)state;
	report_init(&r, 3);
	rf_hist_fold_init(&f, &r);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		assert_int_equal(rf_hist_fold_row(&f, &rows[i]), 0);
	rf_hist_fold_end(&f);

	assert_int_equal(r.totals.requests, 5);
	assert_int_equal(r.totals.successes, 3);
	assert_int_equal(r.totals.errors, 2);
	assert_int_equal(r.totals.fallbacks, 2);
	assert_int_equal(r.totals.latency_sum, 506);
	assert_int_equal(r.totals.latency_max, 300);
	assert_int_equal(r.totals.prompt_tokens, 50);
	assert_int_equal(r.totals.completion_tokens, 5);
	/* 1, 5, 100, 100, 300: p50 is 100's bucket [96, 111]. */
	assert_int_equal(r.totals.p50_ms, 111);
	assert_int_equal(r.totals.p99_ms, 300);
	assert_int_equal(r.buckets[0].requests, 3);
	assert_int_equal(r.buckets[0].p95_ms, 100); /* capped by the max */
	assert_int_equal(r.buckets[1].requests, 0);
	assert_int_equal(r.buckets[1].p50_ms, -1);
	assert_int_equal(r.buckets[2].requests, 2);
	assert_int_equal(r.buckets[2].p50_ms, 1);
	/* Most requests first, '' last. */
	assert_int_equal(r.nproviders, 3);
	assert_string_equal(r.providers[0].provider, "groq");
	assert_int_equal(r.providers[0].requests, 3);
	assert_int_equal(r.providers[0].errors, 1);
	assert_int_equal(r.providers[0].latency_sum, 500);
	assert_string_equal(r.providers[1].provider, "mock");
	assert_string_equal(r.providers[2].provider, "");
	report_free(&r);
}

/* Equal counts sort by id; the distribution stops growing at its cap. */
static void
test_providers_sort_and_cap(void **state)
{
	struct rf_usage_report r;
	struct rf_hist_row x;
	size_t cap = 0;
	char id[16];

	(void)state;
	report_init(&r, 1);
	x = row(0, "b", 1, 0, 1);
	assert_int_equal(rf_hist_provider_add(&r, &x, &cap), 0);
	x = row(0, "", 5, 0, 1);
	assert_int_equal(rf_hist_provider_add(&r, &x, &cap), 0);
	x = row(0, "a", 1, 0, 1);
	assert_int_equal(rf_hist_provider_add(&r, &x, &cap), 0);
	rf_hist_providers_sort(&r);
	assert_string_equal(r.providers[0].provider, "a");
	assert_string_equal(r.providers[1].provider, "b");
	assert_string_equal(r.providers[2].provider, "");
	for (int i = 0; i < RF_HIST_MAX_PROVIDERS + 10; i++) {
		snprintf(id, sizeof id, "p%d", i);
		x = row(0, id, 1, 0, 1);
		assert_int_equal(rf_hist_provider_add(&r, &x, &cap), 0);
	}
	assert_int_equal(r.nproviders, RF_HIST_MAX_PROVIDERS);
	report_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_edges),
		cmocka_unit_test(test_upper_bounds),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_fold),
		cmocka_unit_test(test_providers_sort_and_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
