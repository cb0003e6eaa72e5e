/*
 * stats: percentiles by sorting once (nearest rank, as wrk reports them).
 */
#include "stats.h"

#include <inttypes.h>
#include <stdlib.h>

#define ST_MAX 50000000u

int
st_add(struct st_series *s, int64_t v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		int64_t *nv;

		if (cap > ST_MAX || (nv = realloc(s->v, cap * sizeof(*nv))) == NULL)
			return -1;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	s->sorted = 0;
	return 0;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int64_t
st_pct(struct st_series *s, double p)
{
	size_t rank;

	if (s->n == 0)
		return 0;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(s->v[0]), cmp64);
		s->sorted = 1;
	}
	rank = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

void
st_json(FILE *f, const char *name, struct st_series *s)
{
	double sum = 0;

	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	fprintf(f, "\"%s\":{\"n\":%zu,\"mean\":%.1f,\"p50\":%" PRId64
	    ",\"p90\":%" PRId64 ",\"p99\":%" PRId64 ",\"max\":%" PRId64 "}",
	    name, s->n, s->n ? sum / (double)s->n : 0.0, st_pct(s, 50),
	    st_pct(s, 90), st_pct(s, 99), st_pct(s, 100));
}

void
st_free(struct st_series *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}
