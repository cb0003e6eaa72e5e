/*
 * metrics: the metric families of a logged request and the accumulation
 * of a batch into one increment per series (see include/metrics.h).
 *
 * Which request adds to which family:
 *   gen_ai_server_request_duration_seconds  every request: its latency;
 *       labels endpoint, outcome, final_provider
 *   gen_ai_server_time_to_first_token_seconds  a request whose first token
 *       reached the client (streams): its ttft; the same labels
 *   gen_ai_client_operation_duration_seconds  every upstream call of the
 *       attempt trail (not the skipped ones): its latency (none known
 *       counts as 0); labels gen_ai_provider_name, outcome
 *   gen_ai_client_token_usage  a request whose provider reported tokens:
 *       one observation per known count; labels gen_ai_provider_name (the
 *       final provider), gen_ai_token_type input | output
 *   relayforge_requests_total  every request (the duration's count);
 *       labels endpoint, outcome, final_provider
 *   relayforge_fallbacks_total  a request answered (or failed) by another
 *       provider than the first one called; labels attempted_provider,
 *       final_provider
 *   relayforge_attempts_total  every entry of the attempt trail: the
 *       upstream calls' count, and the skipped ones (stored); labels
 *       provider, outcome
 * The bucket bounds are the OpenTelemetry GenAI semantic conventions'
 * recommended ones.  They are part of the stored data (b0..b15 of
 * metric_totals count per bound): changing one needs a new metric name.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* gen_ai.server.request.duration and gen_ai.client.operation.duration:
 * 0.01 s doubling to 81.92 s, here in milliseconds. */
static const int64_t duration_ms[] = { 10, 20, 40, 80, 160, 320, 640,
	1280, 2560, 5120, 10240, 20480, 40960, 81920 };
static const char *const duration_le[] = { "0.01", "0.02", "0.04", "0.08",
	"0.16", "0.32", "0.64", "1.28", "2.56", "5.12", "10.24", "20.48",
	"40.96", "81.92" };
/* gen_ai.server.time_to_first_token. */
static const int64_t ttft_ms[] = { 1, 5, 10, 20, 40, 60, 80, 100, 250, 500,
	750, 1000, 2500, 5000, 7500, 10000 };
static const char *const ttft_le[] = { "0.001", "0.005", "0.01", "0.02",
	"0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5",
	"7.5", "10" };
/* gen_ai.client.token.usage: powers of 4 from 1 to 4^13. */
static const int64_t tokens[] = { 1, 4, 16, 64, 256, 1024, 4096, 16384,
	65536, 262144, 1048576, 4194304, 16777216, 67108864 };
static const char *const tokens_le[] = { "1", "4", "16", "64", "256",
	"1024", "4096", "16384", "65536", "262144", "1048576", "4194304",
	"16777216", "67108864" };

_Static_assert(NELEM(duration_ms) == NELEM(duration_le) &&
    NELEM(ttft_ms) == NELEM(ttft_le) && NELEM(tokens) == NELEM(tokens_le),
    "every bound has its text");
_Static_assert(NELEM(ttft_ms) <= RF_METRIC_BUCKETS &&
    NELEM(duration_ms) <= RF_METRIC_BUCKETS &&
    NELEM(tokens) <= RF_METRIC_BUCKETS, "the store keeps 16 buckets");

#define HIST(n, h, b, le, sc) { n, h, RF_METRIC_HISTOGRAM, (int)NELEM(b), \
	b, le, sc, -1, NULL }
#define COUNTER(n, h, from, rename) { n, h, RF_METRIC_COUNTER, 0, NULL, \
	NULL, 1, from, rename }

const struct rf_metric_family rf_metric_families[RF_M_NFAMILIES] = {
	[RF_M_SERVER_DURATION] = HIST("gen_ai_server_request_duration_seconds",
	    "Time from a request's arrival to its end, by endpoint, outcome"
	    " (success, error, cancelled) and final provider.",
	    duration_ms, duration_le, 1000),
	[RF_M_TTFT] = HIST("gen_ai_server_time_to_first_token_seconds",
	    "Time from a request's arrival to its first token sent to the"
	    " client (streams), by endpoint, outcome and final provider.",
	    ttft_ms, ttft_le, 1000),
	[RF_M_CLIENT_DURATION] = HIST(
	    "gen_ai_client_operation_duration_seconds",
	    "Duration of each upstream call (attempt), by provider and"
	    " outcome (ok, an error code, cancelled).",
	    duration_ms, duration_le, 1000),
	[RF_M_TOKENS] = HIST("gen_ai_client_token_usage",
	    "Tokens per answered request as the provider reported them, by"
	    " final provider and token type (input, output).",
	    tokens, tokens_le, 1),
	[RF_M_REQUESTS] = COUNTER("relayforge_requests_total",
	    "Requests that reached the fallback chain, by endpoint, outcome"
	    " (success, error, cancelled) and final provider.",
	    RF_M_SERVER_DURATION, NULL),
	[RF_M_FALLBACKS] = COUNTER("relayforge_fallbacks_total",
	    "Requests whose final provider is not the first one called, by"
	    " both providers.", -1, NULL),
	[RF_M_ATTEMPTS] = COUNTER("relayforge_attempts_total",
	    "Entries of the attempt trails, by provider and outcome (ok, an"
	    " error code, skipped, cancelled).",
	    RF_M_CLIENT_DURATION, "provider"),
};

int
rf_metrics_bucket(const struct rf_metric_family *f, int64_t v)
{
	int i = 0;

	while (i < f->nbounds && v > f->bounds[i])
		i++;
	return i;
}

/* ---- label sets ---- */

/* A label set being built: k="v",... (fits: see metrics.h). */
struct labels {
	char s[sizeof(((struct rf_metric_row *)0)->labels)];
	size_t n;
};

static void
put(struct labels *l, const char *p, size_t n)
{
	if (l->n + n < sizeof l->s) {
		memcpy(l->s + l->n, p, n);
		l->n += n;
	}
	l->s[l->n] = '\0';
}

/* Append key="value"; the value made an identifier: other bytes become
 * '_', at most RF_METRICS_VALUE_MAX of them. */
static void
label(struct labels *l, const char *key, const char *v)
{
	char val[RF_METRICS_VALUE_MAX];
	size_t n = 0;

	for (; v != NULL && v[n] != '\0' && n < RF_METRICS_VALUE_MAX; n++) {
		unsigned char c = (unsigned char)v[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		    c == '.' || c == ':';
		val[n] = ok ? (char)c : '_';
	}
	if (l->n > 0)
		put(l, ",", 1);
	put(l, key, strlen(key));
	put(l, "=\"", 2);
	put(l, val, n);
	put(l, "\"", 1);
}

static const char *
provider_or_none(const char *p)
{
	return p != NULL && *p != '\0' ? p : "none";
}

/* An attempt's outcome in the metrics' words. */
static const char *
attempt_outcome(const struct rf_log_attempt *a)
{
	if (a->outcome == NULL)
		return "none";
	if (strcmp(a->outcome, RF_STORE_CANCELLED_CODE) == 0)
		return "cancelled";
	return a->outcome;
}

/* ---- the accumulator ---- */

void
rf_metrics_acc_init(struct rf_metrics_acc *a)
{
	memset(a, 0, sizeof *a);
}

void
rf_metrics_acc_reset(struct rf_metrics_acc *a)
{
	a->n = 0;
}

void
rf_metrics_acc_free(struct rf_metrics_acc *a)
{
	if (a == NULL)
		return;
	free(a->v);
	free(a->hash);
	memset(a, 0, sizeof *a);
}

/* FNV-1a of a family and a label set: rows are compared by it first. */
static uint64_t
series_hash(enum rf_metric_id id, const struct labels *l)
{
	uint64_t h = 14695981039346656037ULL ^ (uint64_t)id;

	for (size_t i = 0; i < l->n; i++)
		h = (h ^ (unsigned char)l->s[i]) * 1099511628211ULL;
	return h;
}

static int
grow(struct rf_metrics_acc *a)
{
	size_t cap = a->cap ? a->cap * 2 : 32;
	struct rf_metric_row *v = realloc(a->v, cap * sizeof *v);
	uint64_t *h;

	if (v == NULL)
		return -1;
	a->v = v;
	if ((h = realloc(a->hash, cap * sizeof *h)) == NULL)
		return -1;
	a->hash = h;
	a->cap = cap;
	return 0;
}

/* The row of series (family id, labels l), new and zeroed when the batch
 * has none yet; NULL when out of memory. */
static struct rf_metric_row *
series(struct rf_metrics_acc *a, enum rf_metric_id id,
    const struct labels *l)
{
	const char *name = rf_metric_families[id].name;
	uint64_t h = series_hash(id, l);
	struct rf_metric_row *r;

	for (size_t i = 0; i < a->n; i++)
		if (a->hash[i] == h && strcmp(a->v[i].labels, l->s) == 0 &&
		    strcmp(a->v[i].name, name) == 0)
			return &a->v[i];
	if (a->n == a->cap && grow(a) != 0)
		return NULL;
	a->hash[a->n] = h;
	r = &a->v[a->n++];
	memset(r, 0, sizeof *r);
	memcpy(r->name, name, strlen(name) + 1);
	memcpy(r->labels, l->s, l->n + 1);
	return r;
}

/* One observation of v (a histogram) or one count (a counter). */
static int
observe(struct rf_metrics_acc *a, enum rf_metric_id id,
    const struct labels *l, int64_t v)
{
	const struct rf_metric_family *f = &rf_metric_families[id];
	struct rf_metric_row *r = series(a, id, l);
	int b;

	if (r == NULL)
		return -1;
	r->count++;
	if (f->type == RF_METRIC_HISTOGRAM) {
		if (v < 0)
			v = 0;
		r->sum += v;
		b = rf_metrics_bucket(f, v);
		if (b < f->nbounds)
			r->b[b]++;
	}
	return 0;
}

/* The request-level series: duration (whose count is the requests
 * counter), first token, fallback. */
static int
add_request(struct rf_metrics_acc *a, const struct rf_log_entry *e)
{
	const char *final = provider_or_none(e->final_provider);
	struct labels l = { .n = 0 };
	int rc = 0;

	label(&l, "endpoint", e->endpoint);
	label(&l, "outcome", rf_store_entry_status(e));
	label(&l, "final_provider", final);
	rc |= observe(a, RF_M_SERVER_DURATION, &l, e->latency_ms);
	if (e->ttft_ms >= 0)
		rc |= observe(a, RF_M_TTFT, &l, e->ttft_ms);
	if (e->fallback) {
		l.n = 0;
		label(&l, "attempted_provider",
		    provider_or_none(e->attempted_provider));
		label(&l, "final_provider", final);
		rc |= observe(a, RF_M_FALLBACKS, &l, 0);
	}
	return rc;
}

/* The final provider's reported tokens, one observation per known count. */
static int
add_tokens(struct rf_metrics_acc *a, const struct rf_log_entry *e)
{
	static const char *const type[] = { "input", "output" };
	int64_t n[] = { e->prompt_tokens, e->completion_tokens };
	struct labels l;
	int rc = 0;

	for (size_t i = 0; i < NELEM(n); i++) {
		if (n[i] < 0)
			continue;
		l.n = 0;
		label(&l, "gen_ai_provider_name",
		    provider_or_none(e->final_provider));
		label(&l, "gen_ai_token_type", type[i]);
		rc |= observe(a, RF_M_TOKENS, &l, n[i]);
	}
	return rc;
}

/* The attempt trail: an upstream call's duration (whose count is its
 * attempts counter), or a skip's count. */
static int
add_attempts(struct rf_metrics_acc *a, const struct rf_log_entry *e)
{
	struct labels l;
	int rc = 0;

	for (size_t i = 0; i < e->nattempts; i++) {
		const struct rf_log_attempt *t = &e->attempts[i];
		bool skipped = t->outcome != NULL &&
		    strcmp(t->outcome, "skipped") == 0;

		l.n = 0;
		label(&l, skipped ? "provider" : "gen_ai_provider_name",
		    provider_or_none(t->provider));
		label(&l, "outcome", attempt_outcome(t));
		rc |= skipped ? observe(a, RF_M_ATTEMPTS, &l, 0) :
		    observe(a, RF_M_CLIENT_DURATION, &l, t->latency_ms);
	}
	return rc;
}

int
rf_metrics_acc_add(struct rf_metrics_acc *a, const struct rf_log_entry *e)
{
	if (add_request(a, e) != 0 || add_tokens(a, e) != 0 ||
	    add_attempts(a, e) != 0)
		return -1;
	return 0;
}
