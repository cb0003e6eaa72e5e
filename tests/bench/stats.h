/*
 * stats: a growable series of microsecond samples and its percentiles,
 * printed as one JSON object, for the bench tools.  Prefix: st_.
 */
#ifndef ST_STATS_H
#define ST_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct st_series {
	int64_t *v;
	size_t n, cap;
	int sorted;
};

/* Zero-initialised is an empty series.  -1 when memory ran out or the
 * series passed 50 million samples. */
int st_add(struct st_series *s, int64_t v);
/* Nearest-rank percentile (0 < p <= 100); 0 for an empty series. */
int64_t st_pct(struct st_series *s, double p);
/* "name":{"n":..,"mean":..,"p50":..,"p90":..,"p99":..,"max":..} */
void st_json(FILE *f, const char *name, struct st_series *s);
void st_free(struct st_series *s);

#endif
