/*
 * render_metrics: the Prometheus text exposition format (version 0.0.4)
 * of GET /api/v1/metrics, built from one store snapshot.  It is the render
 * layer's one shape that is not JSON; like render.c it reads product
 * values and writes nothing to the client.
 *
 * Order: the families of src/metrics.c (their series as the store keeps
 * them: name, then labels), then the gauges -- each provider's cooldown
 * and quota, the processes' queue, dropped rows and open streams.  Every
 * family gets its HELP and TYPE lines, with series or without.  A
 * histogram's stored buckets are not cumulative; its exposed ones are,
 * ending in le="+Inf" (= _count).  Sums of durations are exposed in
 * seconds with millisecond precision.
 *
 * Decisions: a cooldown that has ended is 0 (no cooldown), so an alert
 * is "> time()" or simply "> 0"; a quota figure the provider never
 * reported has no series.
 */
#include "render.h"

#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

static int
head(struct rf_buf *o, const char *name, const char *type, const char *help)
{
	return rf_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* A value in the recorded unit, exposed: v / scale (scale 1 or 1000). */
static int
scaled(struct rf_buf *o, int64_t v, int64_t scale)
{
	if (scale == 1000)
		return rf_buf_printf(o, "%lld.%03lld", (long long)(v / 1000),
		    (long long)(v % 1000));
	return rf_buf_printf(o, "%lld", (long long)v);
}

/* {l,extra}, {l}, {extra} or nothing. */
static int
labels_extra(struct rf_buf *o, const char *l, const char *extra)
{
	bool both = l[0] != '\0' && extra != NULL;

	if (l[0] == '\0' && extra == NULL)
		return 0;
	return rf_buf_printf(o, "{%s%s%s}", l, both ? "," : "",
	    extra != NULL ? extra : "");
}

static int
histogram(struct rf_buf *o, const struct rf_metric_family *f,
    const struct rf_metric_row *r)
{
	char le[48];
	int64_t cum = 0;
	int rc = 0;

	for (int i = 0; i < f->nbounds; i++) {
		cum += r->b[i];
		snprintf(le, sizeof le, "le=\"%s\"", f->le[i]);
		rc |= rf_buf_printf(o, "%s_bucket", f->name);
		rc |= labels_extra(o, r->labels, le);
		rc |= rf_buf_printf(o, " %lld\n", (long long)cum);
	}
	rc |= rf_buf_printf(o, "%s_bucket", f->name);
	rc |= labels_extra(o, r->labels, "le=\"+Inf\"");
	rc |= rf_buf_printf(o, " %lld\n%s_sum", (long long)r->count, f->name);
	rc |= labels_extra(o, r->labels, NULL);
	rc |= rf_buf_puts(o, " ");
	rc |= scaled(o, r->sum, f->scale);
	rc |= rf_buf_printf(o, "\n%s_count", f->name);
	rc |= labels_extra(o, r->labels, NULL);
	rc |= rf_buf_printf(o, " %lld\n", (long long)r->count);
	return rc;
}

/* A stored label set that could break the format (only a hand-edited
 * store has one) is left out. */
static bool
usable(const char *labels)
{
	return strpbrk(labels, "\n{}\\") == NULL;
}

static int
counter(struct rf_buf *o, const char *name, const char *l, int64_t v)
{
	int rc = rf_buf_puts(o, name);

	rc |= labels_extra(o, l, NULL);
	rc |= rf_buf_printf(o, " %lld\n", (long long)v);
	return rc;
}

/* A counter's series that are another family's _count: that family's
 * rows, their first label renamed when f says so. */
static int
derived(struct rf_buf *o, const struct rf_metric_family *f,
    const struct rf_metrics_snapshot *m)
{
	const char *src = rf_metric_families[f->from].name;
	char l[sizeof m->rows->labels + 32];
	int rc = 0;

	for (size_t i = 0; i < m->nrows; i++) {
		const struct rf_metric_row *r = &m->rows[i];
		const char *eq = strchr(r->labels, '=');
		if (strcmp(r->name, src) != 0 || !usable(r->labels))
			continue;
		if (f->rename != NULL && eq != NULL)
			snprintf(l, sizeof l, "%s%s", f->rename, eq);
		else
			snprintf(l, sizeof l, "%s", r->labels);
		rc |= counter(o, f->name, l, r->count);
	}
	return rc;
}

/* One family and every series of it. */
static int
family(struct rf_buf *o, const struct rf_metric_family *f,
    const struct rf_metrics_snapshot *m)
{
	bool hist = f->type == RF_METRIC_HISTOGRAM;
	int rc = head(o, f->name, hist ? "histogram" : "counter", f->help);

	for (size_t i = 0; i < m->nrows; i++) {
		const struct rf_metric_row *r = &m->rows[i];
		if (strcmp(r->name, f->name) != 0 || !usable(r->labels))
			continue;
		rc |= hist ? histogram(o, f, r) :
		    counter(o, f->name, r->labels, r->count);
	}
	if (!hist && f->from >= 0)
		rc |= derived(o, f, m);
	return rc;
}

/* Each provider's cooldown deadline (0: none now) and known quota. */
static int
providers(struct rf_buf *o, const struct rf_metrics_snapshot *m,
    const char *const *ids, size_t n, int64_t now_ms)
{
	int rc = head(o, "relayforge_provider_cooldown_until_seconds", "gauge",
	    "When the provider's cooldown ends (Unix time); 0 when it is"
	    " not cooling down.");

	for (size_t i = 0; i < n && i < m->nproviders; i++) {
		int64_t until = m->providers[i].cooldown_until_ms;
		rc |= rf_buf_printf(o, "relayforge_provider_cooldown_until_seconds"
		    "{provider=\"%s\"} ", ids[i]);
		rc |= until > now_ms ? scaled(o, until, 1000) :
		    rf_buf_puts(o, "0");
		rc |= rf_buf_puts(o, "\n");
	}
	rc |= head(o, "relayforge_provider_quota_remaining", "gauge",
	    "The provider's remaining quota as its last answer reported it,"
	    " by kind (requests, tokens).");
	for (size_t i = 0; i < n && i < m->nproviders; i++) {
		const struct rf_metrics_provider *p = &m->providers[i];
		if (p->quota_remaining_requests >= 0)
			rc |= rf_buf_printf(o, "relayforge_provider_quota_remaining"
			    "{provider=\"%s\",kind=\"requests\"} %ld\n", ids[i],
			    p->quota_remaining_requests);
		if (p->quota_remaining_tokens >= 0)
			rc |= rf_buf_printf(o, "relayforge_provider_quota_remaining"
			    "{provider=\"%s\",kind=\"tokens\"} %ld\n", ids[i],
			    p->quota_remaining_tokens);
	}
	return rc;
}

static int
one(struct rf_buf *o, const char *name, const char *type, const char *help,
    int64_t v)
{
	int rc = head(o, name, type, help);

	rc |= rf_buf_printf(o, "%s %lld\n", name, (long long)v);
	return rc;
}

/* The responder processes' own figures, summed over the live ones. */
static int
processes(struct rf_buf *o, const struct rf_metrics_snapshot *m)
{
	int rc = 0;

	rc |= one(o, "relayforge_store_queue_rows", "gauge",
	    "Log rows waiting in the responders' spools for the store.",
	    m->live.queue_rows);
	rc |= one(o, "relayforge_store_dropped_rows_total", "counter",
	    "Log rows dropped because a spool was full, the store refused"
	    " the row, or the row could not be read back.", m->dropped_rows);
	rc |= one(o, "relayforge_open_streams", "gauge",
	    "Event streams being answered now.", m->live.open_streams);
	rc |= one(o, "relayforge_processes", "gauge",
	    "Responder processes that reported in the last 15 seconds.",
	    m->live_processes);
	return rc;
}

int
rf_render_metrics(struct rf_buf *out, const struct rf_metrics_snapshot *m,
    const char *const *ids, size_t n, int64_t now_ms)
{
	int rc = 0;

	for (int i = 0; i < RF_M_NFAMILIES; i++)
		rc |= family(out, &rf_metric_families[i], m);
	rc |= providers(out, m, ids, n, now_ms);
	rc |= processes(out, m);
	return rc != 0 ? -1 : 0;
}
