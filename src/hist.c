/*
 * hist: the latency histogram of the usage rollups (bucket of a latency,
 * a bucket's upper bound, a percentile from summed buckets) and the
 * folding of rollup rows into a usage report: per-bucket and total
 * figures, their percentiles, and the final-provider distribution.
 *
 * Pure arithmetic over what a store backend read; the layout is the one
 * schema/relayforge.sql documents beside the h0..h71 columns, so changing
 * a bound here means a new schema version.
 */
#include "hist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
rf_hist_bucket(int64_t ms)
{
	int e = 0;

	if (ms < 8)
		return ms > 0 ? (int)ms : 0;
	for (int64_t v = ms; v > 1; v >>= 1)
		e++;
	if (e > 18)
		return RF_HIST_BUCKETS - 1;
	return 8 + 4 * (e - 3) + (int)((ms >> (e - 2)) & 3);
}

int64_t
rf_hist_upper(int b)
{
	int e = 3 + (b - 8) / 4, sub = (b - 8) % 4;

	if (b < 8)
		return b;
	if (b >= RF_HIST_BUCKETS - 1)
		return INT64_MAX;
	return ((int64_t)1 << e) + (int64_t)(sub + 1) * ((int64_t)1 << (e - 2))
	    - 1;
}

long
rf_hist_percentile(const int64_t *h, int64_t n, int pct, int64_t max)
{
	int64_t rank = (n * pct + 99) / 100, seen = 0;

	if (n <= 0)
		return -1;
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < RF_HIST_BUCKETS; b++) {
		seen += h[b];
		if (seen >= rank)
			return (long)(rf_hist_upper(b) < max ?
			    rf_hist_upper(b) : max);
	}
	return (long)max; /* histogram and count disagree: be safe */
}

void
rf_hist_figures_init(struct rf_usage_figures *f)
{
	memset(f, 0, sizeof *f);
	f->p50_ms = f->p95_ms = f->p99_ms = -1;
}

void
rf_hist_figures_add(struct rf_usage_figures *f, const struct rf_hist_row *row)
{
	f->requests += row->requests;
	f->successes += row->successes;
	f->errors += row->errors;
	f->cancelled += row->cancelled;
	f->fallbacks += row->fallbacks;
	f->latency_sum += row->latency_sum;
	if (row->latency_max > f->latency_max)
		f->latency_max = row->latency_max;
	f->prompt_tokens += row->prompt_tokens;
	f->completion_tokens += row->completion_tokens;
}

void
rf_hist_figures_percentiles(struct rf_usage_figures *f, const int64_t *h)
{
	f->p50_ms = rf_hist_percentile(h, f->requests, 50, f->latency_max);
	f->p95_ms = rf_hist_percentile(h, f->requests, 95, f->latency_max);
	f->p99_ms = rf_hist_percentile(h, f->requests, 99, f->latency_max);
}

/* The entry of id in r->providers, or NULL. */
static struct rf_usage_provider *
provider_find(struct rf_usage_report *r, const char *id)
{
	for (size_t i = 0; i < r->nproviders; i++)
		if (strncmp(r->providers[i].provider, id,
		    sizeof r->providers[i].provider - 1) == 0)
			return &r->providers[i];
	return NULL;
}

/* Make room for one more entry (the capacity doubles).  0 or -1. */
static int
provider_grow(struct rf_usage_report *r, size_t *cap)
{
	size_t ncap = *cap ? *cap * 2 : 8;
	struct rf_usage_provider *p = realloc(r->providers, ncap * sizeof *p);

	if (p == NULL)
		return -1;
	r->providers = p;
	*cap = ncap;
	return 0;
}

/* The list stays short (the catalog's ids and ''), so a linear search is
 * cheaper than anything cleverer; past RF_HIST_MAX_PROVIDERS, rows are
 * left out rather than grow without bound. */
int
rf_hist_provider_add(struct rf_usage_report *r, const struct rf_hist_row *row,
    size_t *cap)
{
	const char *id = row->provider != NULL ? row->provider : "";
	struct rf_usage_provider *p = provider_find(r, id);

	if (p == NULL) {
		if (r->nproviders == RF_HIST_MAX_PROVIDERS)
			return 0;
		if (r->nproviders == *cap && provider_grow(r, cap) != 0)
			return -1;
		p = &r->providers[r->nproviders++];
		memset(p, 0, sizeof *p);
		snprintf(p->provider, sizeof p->provider, "%s", id);
	}
	p->requests += row->requests;
	p->errors += row->errors;
	p->cancelled += row->cancelled;
	p->latency_sum += row->latency_sum;
	return 0;
}

static int
provider_cmp(const void *a, const void *b)
{
	const struct rf_usage_provider *x = a, *y = b;

	if ((x->provider[0] == '\0') != (y->provider[0] == '\0'))
		return x->provider[0] == '\0' ? 1 : -1;
	if (x->requests != y->requests)
		return x->requests > y->requests ? -1 : 1;
	return strcmp(x->provider, y->provider);
}

void
rf_hist_providers_sort(struct rf_usage_report *r)
{
	if (r->nproviders > 1)
		qsort(r->providers, r->nproviders, sizeof *r->providers,
		    provider_cmp);
}

void
rf_hist_fold_init(struct rf_hist_fold *f, struct rf_usage_report *r)
{
	memset(f, 0, sizeof *f);
	f->r = r;
	f->cur = -1;
}

int
rf_hist_fold_row(struct rf_hist_fold *f, const struct rf_hist_row *row)
{
	struct rf_usage_report *r = f->r;
	int64_t k;

	if (row->period_ms < r->from_ms || r->bucket_ms <= 0)
		return 0;
	k = (row->period_ms - r->from_ms) / r->bucket_ms;
	if (k >= (int64_t)r->nbuckets)
		return 0;
	if (k != f->cur && f->cur >= 0) {
		rf_hist_figures_percentiles(&r->buckets[f->cur], f->h);
		memset(f->h, 0, sizeof f->h);
	}
	f->cur = k;
	for (int j = 0; j < RF_HIST_BUCKETS; j++) {
		f->h[j] += row->h[j];
		f->th[j] += row->h[j];
	}
	rf_hist_figures_add(&r->buckets[k], row);
	rf_hist_figures_add(&r->totals, row);
	return rf_hist_provider_add(r, row, &f->cap);
}

void
rf_hist_fold_end(struct rf_hist_fold *f)
{
	if (f->cur >= 0)
		rf_hist_figures_percentiles(&f->r->buckets[f->cur], f->h);
	rf_hist_figures_percentiles(&f->r->totals, f->th);
	rf_hist_providers_sort(f->r);
}
