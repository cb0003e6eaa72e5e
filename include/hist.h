/*
 * hist: the latency histogram of the usage rollups and the folding of
 * rollup rows into a usage report (docs/operations.md).  Pure functions, no
 * I/O and no SQL, shared by every store backend: a backend reads its
 * rollup rows into struct rf_hist_row and hands them to rf_hist_fold_row.
 * Prefix: rf_hist_.
 *
 * The histogram layout is the one of schema/relayforge.sql: bucket b holds
 * exactly b ms for b < 8; above, each power of two [2^e, 2^(e+1))
 * (e = 3..18) is cut into four equal sub-buckets, b = 8 + 4 (e - 3) + sub;
 * 2^19 ms and more share the last bucket.
 */
#ifndef RF_HIST_H
#define RF_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define RF_HIST_BUCKETS 72
/* Distinct final providers a usage report keeps (the catalog's ids and
 * ''); rows of further providers are left out of the distribution. */
#define RF_HIST_MAX_PROVIDERS 256

/* The bucket a latency (ms, negative counts as 0) falls in. */
int rf_hist_bucket(int64_t ms);
/* The largest latency bucket b holds; INT64_MAX for the last one (it has
 * no bound: the largest latency seen stands for it). */
int64_t rf_hist_upper(int b);
/* Nearest-rank percentile (rank ceil(pct% of n)) of a histogram h of n
 * values: its bucket's largest value, capped by max, the largest value
 * seen -- never below the exact figure, at most 25% above it, exact under
 * 8 ms.  -1 when n is 0. */
long rf_hist_percentile(const int64_t *h, int64_t n, int pct, int64_t max);

/* One rollup row (one period and final provider) as a backend read it.
 * provider is borrowed for the length of the rf_hist_fold_row call;
 * NULL counts as '' (requests that called no provider). */
struct rf_hist_row {
	int64_t period_ms;
	const char *provider;
	int64_t requests, successes, errors, cancelled, fallbacks;
	int64_t latency_sum, latency_max;
	int64_t prompt_tokens, completion_tokens;
	int64_t h[RF_HIST_BUCKETS];
};

/* Zero figures with no percentile (-1). */
void rf_hist_figures_init(struct rf_usage_figures *f);
/* Add a row's counts to f (not its histogram: see the fold). */
void rf_hist_figures_add(struct rf_usage_figures *f,
    const struct rf_hist_row *row);
/* Set f's p50/p95/p99 from the histogram of its requests. */
void rf_hist_figures_percentiles(struct rf_usage_figures *f,
    const int64_t *h);
/* Count a row for its final provider in r->providers (grown by doubling;
 * *cap is its capacity).  0, or -1 when out of memory (r unchanged). */
int rf_hist_provider_add(struct rf_usage_report *r,
    const struct rf_hist_row *row, size_t *cap);
/* Most requests first, then by id; '' (no provider called) last. */
void rf_hist_providers_sort(struct rf_usage_report *r);

/* Folding rows into a report whose from_ms, bucket_ms, nbuckets and
 * zero-filled buckets are set.  Rows must come in period order, so each
 * bucket's rows are contiguous: one histogram for the current bucket, one
 * for the totals.  Rows outside the report's window are ignored. */
struct rf_hist_fold {
	struct rf_usage_report *r;
	int64_t h[RF_HIST_BUCKETS];   /* the current bucket's */
	int64_t th[RF_HIST_BUCKETS];  /* the totals' */
	int64_t cur;                  /* index of the current bucket, -1 */
	size_t cap;                   /* capacity of r->providers */
};

void rf_hist_fold_init(struct rf_hist_fold *f, struct rf_usage_report *r);
/* 0, or -1 when out of memory (the fold may go on to its end). */
int rf_hist_fold_row(struct rf_hist_fold *f, const struct rf_hist_row *row);
/* The percentiles of the last bucket and of the totals; sorts providers. */
void rf_hist_fold_end(struct rf_hist_fold *f);

#endif
