/*
 * store: the product-level store API of include/store.h over a pool of
 * backend connections.
 *
 * rf_store_open_pool picks the backend from the form of RELAYFORGE_DB
 * (the backends[] table below: a URI scheme, else a file path), opens all
 * of its max_conns connections at once (after any fork) and keeps them
 * for the life of the process; every thread of the process shares them.
 * Each public operation borrows one idle connection for just that
 * operation, waiting while all are busy (at most RF_STORE_ACQUIRE_MS, or
 * the thread's budget), and runs one slot of the backend's struct
 * rf_store_ops (include/store_backend.h) on it.
 *
 * The budget (rf_store_budget) is per thread: each call takes its deadline
 * at its start, the pool waits for a connection until it, and the
 * backend's busy handler asks rf_store_call_budget whether it has passed.
 * A per-thread setting rather than a parameter of every operation: the
 * request's path brackets its few calls, background writers keep the
 * defaults.
 *
 * What does not depend on the engine lives here, so every backend shares
 * it: the arguments the API bounds (page limits, usage windows), the
 * rate limit's one-minute window, the defaults and merge rules of a
 * provider report, the memory a log page and a metrics snapshot own, and
 * what a request's status is (rf_store_entry_status: a client hang-up is
 * cancelled).  Which metric series a request adds to is src/metrics.c's.  Histograms and the
 * folding of usage rows are in src/hist.c; cooldown decisions are the
 * engine's (src/chain.c), the rate-limit verdict src/ratelimit.c's -- the
 * store persists the deadlines and counts it is given.
 *
 * A backend whose server is reached over a network (PostgreSQL) may lose
 * it: a connection it calls broken is opened again here before it is used
 * -- by one caller at a time per process, on a backoff of 100 ms doubling
 * to 5 s (with some jitter, so machines do not retry in step), never on a
 * call with a budget (a request's path falls back at once).  The outage is
 * said on stderr once, and its end once.
 *
 * Messages never print RELAYFORGE_DB when it is a URI: it may hold a
 * password.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "hist.h"
#include "log.h"
#include "store_backend.h"
#include "util.h"

#define RF_MINUTE_MS 60000
#define RF_HOUR_MS 3600000
#define RF_USAGE_MAX_BUCKETS 1440
#define RF_RECONNECT_MIN_MS 100
#define RF_RECONNECT_MAX_MS 5000

/* ---- backend selection ---- */

/* The form of RELAYFORGE_DB chooses the backend: the first row whose
 * prefix starts it.  ops NULL = known, but not built into this binary
 * (name says which, for the message). */
static const struct backend {
	const char *prefix;
	const char *name;
	const struct rf_store_ops *ops;
} backends[] = {
	{ "postgresql://", "PostgreSQL", &rf_store_pg }, /* docs/several-machines.md */
	{ "postgres://", "PostgreSQL", &rf_store_pg },
	{ "", NULL, RF_STORE_PATH_OPS },         /* anything else: a path */
};

void
rf_store_redact(const char *db, char *out, size_t len)
{
	const char *scheme = db != NULL ? strstr(db, "://") : NULL;
	const char *auth, *q, *at, *colon;
	size_t n;

	if (len == 0)
		return;
	if (scheme == NULL) {
		snprintf(out, len, "%s", db != NULL ? db : "");
		return;
	}
	/* scheme://user:password@host/db?params: the password and every
	 * parameter (password=... may hide there) are left out. */
	auth = scheme + 3;
	q = strchr(auth, '?');
	n = q != NULL ? (size_t)(q - db) : strlen(db);
	at = memchr(auth, '@', n - (size_t)(auth - db));
	colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (colon != NULL)
		snprintf(out, len, "%.*s:***%.*s%s", (int)(colon - db), db,
		    (int)(n - (size_t)(at - db)), at, q != NULL ? "?..." : "");
	else
		snprintf(out, len, "%.*s%s", (int)n, db, q != NULL ? "?..." : "");
}

/* The backend of db, or NULL with the reason in err (never db itself). */
static const struct rf_store_ops *
backend_for(const char *db, char *err, size_t errlen)
{
	const struct backend *b = NULL;

	for (size_t i = 0; db != NULL && b == NULL &&
	    i < sizeof backends / sizeof backends[0]; i++)
		if (strncmp(db, backends[i].prefix,
		    strlen(backends[i].prefix)) == 0)
			b = &backends[i];
	if (b != NULL && b->ops != NULL)
		return b->ops;
	if (err != NULL && errlen > 0 && b != NULL)
		snprintf(err, errlen, "%s store is not built into this binary",
		    b->name);
	else if (err != NULL && errlen > 0)
		snprintf(err, errlen, "rf_store_open: no store given");
	return NULL;
}

/* ---- the connection pool ------------------------------------------------
 * One struct rf_store per process, shared by every thread.  A process
 * serving hundreds of streams keeps a handful of connections -- and their
 * prepared statements and caches -- instead of one per thread. */

struct rf_store {
	const struct rf_store_ops *ops;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	int nconns;                    /* opened */
	int nfree;
	struct rf_store_conn **all;    /* every opened connection */
	struct rf_store_conn **free_;  /* a stack of idle ones */
	/* Reconnecting (under lock): the next try, its backoff, and whether
	 * the outage has been said. */
	int64_t retry_at;
	int backoff_ms;
	bool down;
};

/* ---- the budget of this thread's calls ---- */

static _Thread_local int budget_ms;          /* 0 = the defaults */
static _Thread_local struct timespec deadline; /* of the running call */

int
rf_store_budget(int ms)
{
	int was = budget_ms;

	budget_ms = ms > 0 ? ms : 0;
	return was;
}

static void
deadline_in(int ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

bool
rf_store_call_budget(bool *expired)
{
	struct timespec now;

	if (budget_ms == 0)
		return false;
	if (expired != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		*expired = now.tv_sec > deadline.tv_sec ||
		    (now.tv_sec == deadline.tv_sec &&
		    now.tv_nsec >= deadline.tv_nsec);
	}
	return true;
}

/* Pop an idle connection (under lock): a working one when there is one. */
static struct rf_store_conn *
pop_free(struct rf_store *p)
{
	int k = p->nfree - 1;
	struct rf_store_conn *c;

	for (int i = p->nfree - 1; p->ops->broken != NULL && i >= 0; i--)
		if (!p->ops->broken(p->free_[i])) {
			k = i;
			break;
		}
	c = p->free_[k];
	p->free_[k] = p->free_[--p->nfree];
	return c;
}

static void release(struct rf_store *p, struct rf_store_conn *c);

/* The outcome of a reconnect, said once per outage (under lock). */
static void
reconnected(struct rf_store *p, bool ok, const char *err)
{
	int64_t now = rf_mono_ms();

	if (ok) {
		if (p->down)
			RF_LOG_INFO(NULL, NULL, "%s store reachable again",
			    p->ops->name);
		p->down = false;
		p->backoff_ms = RF_RECONNECT_MIN_MS;
		p->retry_at = 0;
		return;
	}
	if (!p->down)
		RF_LOG_WARN(NULL, NULL, "%s store unreachable (%s): calls fail"
		    " at once, reconnecting with backoff up to %d ms",
		    p->ops->name, err, RF_RECONNECT_MAX_MS);
	p->down = true;
	p->backoff_ms = p->backoff_ms * 2 > RF_RECONNECT_MAX_MS ?
	    RF_RECONNECT_MAX_MS : p->backoff_ms * 2;
	/* Up to a quarter more, so the machines' processes spread out. */
	p->retry_at = now + p->backoff_ms +
	    (now + (int64_t)getpid() * 7919) % (p->backoff_ms / 4 + 1);
}

/* A broken connection is connected again before it is used -- by one
 * caller at a time, when the backoff allows and the call has no budget.
 * false: it stays broken (the call fails). */
static bool
usable(struct rf_store *p, struct rf_store_conn *c)
{
	char err[256] = "";
	bool mine, ok;

	if (p->ops->broken == NULL || !p->ops->broken(c))
		return true;
	if (budget_ms > 0)
		return false;
	pthread_mutex_lock(&p->lock);
	mine = rf_mono_ms() >= p->retry_at;
	if (mine) /* the others wait for this try */
		p->retry_at = rf_mono_ms() + RF_RECONNECT_MAX_MS;
	pthread_mutex_unlock(&p->lock);
	if (!mine)
		return false;
	ok = p->ops->reset(c, err, sizeof err) == 0;
	pthread_mutex_lock(&p->lock);
	reconnected(p, ok, err);
	pthread_mutex_unlock(&p->lock);
	return ok;
}

/* Borrow a connection, waiting while all are busy: until the call's
 * budget ends, or RF_STORE_ACQUIRE_MS without one.  NULL when none came
 * free in time (said on stderr unless the caller has a budget: it then
 * has a fallback of its own), or when the one it got lost its server and
 * cannot be connected again now. */
static struct rf_store_conn *
acquire(struct rf_store *p)
{
	struct rf_store_conn *c = NULL;
	struct timespec until;
	int rc = 0;

	deadline_in(budget_ms > 0 ? budget_ms : RF_STORE_ACQUIRE_MS, &until);
	deadline = until;
	pthread_mutex_lock(&p->lock);
	while (p->nfree == 0 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&p->freed, &p->lock, &until);
	if (p->nfree > 0)
		c = pop_free(p);
	pthread_mutex_unlock(&p->lock);
	if (c == NULL && budget_ms == 0)
		RF_LOG_ERR(NULL, NULL, "no store connection came free in %d ms",
		    RF_STORE_ACQUIRE_MS);
	if (c != NULL && !usable(p, c)) {
		release(p, c);
		c = NULL;
	}
	return c;
}

static void
release(struct rf_store *p, struct rf_store_conn *c)
{
	pthread_mutex_lock(&p->lock);
	p->free_[p->nfree++] = c;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

/* The pool's waits are measured on the monotonic clock: a wall-clock
 * step must not stretch or cut them. */
static void
cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

struct rf_store *
rf_store_open_pool(const char *db, int max_conns, char *err, size_t errlen)
{
	const struct rf_store_ops *ops = backend_for(db, err, errlen);
	struct rf_store *p = NULL;

	if (ops == NULL)
		goto fail;
	if (max_conns < 1 || (p = calloc(1, sizeof *p)) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "rf_store_open: %s", max_conns < 1 ?
			    "no connection asked for" : "out of memory");
		goto fail;
	}
	p->ops = ops;
	p->backoff_ms = RF_RECONNECT_MIN_MS;
	pthread_mutex_init(&p->lock, NULL);
	cond_init_monotonic(&p->freed);
	p->all = calloc((size_t)max_conns, sizeof *p->all);
	p->free_ = calloc((size_t)max_conns, sizeof *p->free_);
	if (p->all == NULL || p->free_ == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "rf_store_open: out of memory");
		goto fail;
	}
	/* All connections now, so no request ever pays for opening one (the
	 * first also creates and migrates the store). */
	for (; p->nconns < max_conns; p->nconns++) {
		p->all[p->nconns] = ops->open(db, err, errlen);
		if (p->all[p->nconns] == NULL)
			goto fail;
		p->free_[p->nfree++] = p->all[p->nconns];
	}
	return p;
fail:
	rf_store_close(p);
	return NULL;
}

struct rf_store *
rf_store_open(const char *db, char *err, size_t errlen)
{
	return rf_store_open_pool(db, 1, err, errlen);
}

void
rf_store_close(struct rf_store *p)
{
	if (p == NULL)
		return;
	for (int i = 0; i < p->nconns; i++)
		p->ops->close(p->all[i]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->freed);
	free(p->all);
	free(p->free_);
	free(p);
}

/* Run one slot of the backend on a borrowed connection c_ and return its
 * result; -1 without a store or without a connection in time. */
#define WITH_CONN(p, slot, ...) do {                                 \
		struct rf_store_conn *c_;                            \
		int rc_;                                             \
		if ((p) == NULL || (c_ = acquire(p)) == NULL)        \
			return -1;                                   \
		rc_ = (p)->ops->slot(c_, __VA_ARGS__);               \
		release((p), c_);                                    \
		return rc_;                                          \
	} while (0)

/* ---- writes ---- */

const char *
rf_store_entry_status(const struct rf_log_entry *e)
{
	if (e->success)
		return "success";
	if (e->error_code != NULL &&
	    strcmp(e->error_code, RF_STORE_CANCELLED_CODE) == 0)
		return "cancelled";
	return "error";
}

/* ---- a batch's rollup rows (for the backends) ---- */

int
rf_store_rollups_add(struct rf_store_rollups *r, const struct rf_log_entry *e)
{
	int64_t p = e->ts_ms - e->ts_ms % r->period_ms;
	const char *prov = e->final_provider != NULL ? e->final_provider : "";
	int64_t lat = e->latency_ms > 0 ? e->latency_ms : 0;
	const char *status = rf_store_entry_status(e);
	struct rf_hist_row *h;
	size_t j;

	/* A batch has a few rows (providers x one or two periods): a scan. */
	for (j = 0; j < r->n; j++)
		if (r->v[j].period_ms == p && strcmp(r->v[j].provider, prov) == 0)
			break;
	if (j == r->n) {
		if (r->n == r->cap) {
			size_t cap = r->cap ? 2 * r->cap : 4;
			struct rf_hist_row *v = realloc(r->v, cap * sizeof *v);

			if (v == NULL)
				return -1;
			r->v = v;
			r->cap = cap;
		}
		memset(&r->v[j], 0, sizeof r->v[j]);
		r->v[j].period_ms = p;
		r->v[j].provider = prov;
		r->n++;
	}
	h = &r->v[j];
	h->requests++;
	h->successes += strcmp(status, "success") == 0;
	h->errors += strcmp(status, "error") == 0;
	h->cancelled += strcmp(status, "cancelled") == 0;
	h->fallbacks += e->fallback;
	h->latency_sum += lat;
	if (lat > h->latency_max)
		h->latency_max = lat;
	h->prompt_tokens += e->prompt_tokens > 0 ? e->prompt_tokens : 0;
	h->completion_tokens += e->completion_tokens > 0 ?
	    e->completion_tokens : 0;
	h->h[rf_hist_bucket(lat)]++;
	return 0;
}

static int
rollup_cmp(const void *a, const void *b)
{
	const struct rf_hist_row *x = a, *y = b;

	if (x->period_ms != y->period_ms)
		return x->period_ms < y->period_ms ? -1 : 1;
	return strcmp(x->provider, y->provider);
}

void
rf_store_rollups_sort(struct rf_store_rollups *r)
{
	if (r->n > 1)
		qsort(r->v, r->n, sizeof *r->v, rollup_cmp);
}

void
rf_store_rollups_free(struct rf_store_rollups *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

int
rf_store_log_request(struct rf_store *p, const struct rf_log_entry *e)
{
	WITH_CONN(p, log_requests, &e, 1);
}

int
rf_store_log_requests(struct rf_store *p, const struct rf_log_entry *const *e,
    size_t n)
{
	WITH_CONN(p, log_requests, e, n);
}

/* ---- the request-log spool ---- */

int
rf_store_log_spooled(struct rf_store *p, const char *spool, int64_t from,
    int64_t through, const struct rf_log_entry *const *e, size_t n,
    long *refused)
{
	struct rf_store_conn *c;
	int rc;

	*refused = 0;
	if (spool == NULL || through < from || (n > 0 && e == NULL))
		return -1;
	if (p == NULL || (c = acquire(p)) == NULL)
		return -1;
	/* Savepoints cost a statement per row: only when a row is refused. */
	rc = p->ops->log_spooled(c, spool, from, through, e, n, false, refused);
	if (rc == 1)
		rc = p->ops->log_spooled(c, spool, from, through, e, n, true,
		    refused);
	release(p, c);
	return rc;
}

int
rf_store_spool_progress(struct rf_store *p, const char *spool,
    int64_t *through)
{
	*through = 0;
	WITH_CONN(p, spool_progress, spool, through);
}

int
rf_store_spool_forget(struct rf_store *p, const char *spool)
{
	WITH_CONN(p, spool_forget, spool);
}

int
rf_store_writable(struct rf_store *p, int timeout_ms, char *why,
    size_t whylen)
{
	if (p == NULL) {
		snprintf(why, whylen, "no store");
		return -1;
	}
	WITH_CONN(p, writable, timeout_ms, why, whylen);
}

int
rf_store_provider_states(struct rf_store *p, const char *const *ids,
    size_t n, struct rf_provider_state *st)
{
	WITH_CONN(p, provider_states, ids, n, st);
}

int
rf_store_provider_failures(struct rf_store *p, const char *id, int n,
    const char *error_code, int64_t now_ms, int64_t cooldown_until_ms,
    int *failures)
{
	struct rf_store_conn *c;
	int count = 0, rc = -1;

	if (p != NULL && n >= 1 && (c = acquire(p)) != NULL) {
		rc = p->ops->provider_failed(c, id, n, error_code, now_ms,
		    cooldown_until_ms, &count);
		release(p, c);
	}
	if (failures != NULL)
		*failures = rc == 0 ? count : 0;
	return rc;
}

int
rf_store_provider_failed(struct rf_store *p, const char *id,
    const char *error_code, int64_t now_ms, int64_t cooldown_until_ms,
    int *failures)
{
	return rf_store_provider_failures(p, id, 1, error_code, now_ms,
	    cooldown_until_ms, failures);
}

int
rf_store_provider_ok(struct rf_store *p, const char *id, int64_t now_ms)
{
	WITH_CONN(p, provider_ok, id, now_ms);
}

int
rf_store_provider_cooldown(struct rf_store *p, const char *id,
    int64_t until_ms, const char *reason)
{
	if (p != NULL && until_ms <= 0)
		return 0; /* no deadline: nothing to persist */
	WITH_CONN(p, provider_cooldown, id, until_ms, reason);
}

int
rf_store_provider_quota(struct rf_store *p, const char *id,
    long remaining_requests, long remaining_tokens, int64_t reset_ms,
    int64_t now_ms)
{
	WITH_CONN(p, provider_quota, id, remaining_requests, remaining_tokens,
	    reset_ms, now_ms);
}

/* Fixed one-minute windows: the window of now_ms. */
long
rf_store_rate_count(struct rf_store *p, const char *client, int hits,
    int64_t now_ms)
{
	int64_t window = now_ms - now_ms % RF_MINUTE_MS;
	struct rf_store_conn *c;
	long count;

	if (p == NULL || hits < 1 || (c = acquire(p)) == NULL)
		return -1;
	count = p->ops->rate_count(c, client, hits, window);
	release(p, c);
	return count;
}

int
rf_store_ping(struct rf_store *p)
{
	struct rf_store_conn *c;
	int rc;

	if (p == NULL || (c = acquire(p)) == NULL)
		return -1;
	rc = p->ops->ping(c);
	release(p, c);
	return rc;
}

/* ---- status: one report per provider ---- */

static void
report_init(struct rf_provider_report *r)
{
	memset(r, 0, sizeof *r);
	r->quota_remaining_requests = -1;
	r->quota_remaining_tokens = -1;
	r->avg_latency_ms = -1;
	r->p95_latency_ms = -1;
	r->last_ok = -1;
}

/* The shared state keeps exact times, but the engine writes
 * last_success_ms only when it clears a failure, and the state may have
 * been reset: so the attempt trail's newer time wins. */
void
rf_store_report_merge_last(struct rf_provider_report *r,
    const struct rf_store_last_call *ok, const struct rf_store_last_call *bad)
{
	if (ok->rid > 0 && ok->ts_ms > r->last_success_ms)
		r->last_success_ms = ok->ts_ms;
	if (bad->rid > 0 && bad->ts_ms > r->last_error_ms) {
		r->last_error_ms = bad->ts_ms;
		snprintf(r->last_error_code, sizeof r->last_error_code, "%s",
		    bad->code);
	}
	if (ok->rid == 0 && bad->rid == 0)
		r->last_ok = -1;
	else if (ok->rid > bad->rid || (ok->rid == bad->rid &&
	    ok->seq > bad->seq))
		r->last_ok = 1;
	else
		r->last_ok = 0;
}

int
rf_store_provider_reports(struct rf_store *p, const char *const *ids,
    size_t n, int64_t since_ms, struct rf_provider_report *out)
{
	if (p != NULL)
		for (size_t i = 0; i < n; i++)
			report_init(&out[i]);
	WITH_CONN(p, provider_reports, ids, n, since_ms, out);
}

/* ---- logs: the memory of a page ----
 * Strings live in a chain of blocks, attempts in one array; everything
 * goes at once in rf_store_log_page_free. */

#define BLOCK_SIZE 16384

struct block {
	struct block *next;
	size_t used, cap;
	char data[];
};

struct page_mem {
	struct block *blocks;
	struct rf_log_attempt *att;
	size_t natt, capatt;
	size_t start[RF_LOG_PAGE_MAX]; /* each item's first attempt */
	bool oom;
};

const char *
rf_store_page_text(struct rf_log_page *page, const char *t, size_t n)
{
	struct page_mem *m = page->mem;
	char *p;

	if (t == NULL)
		goto oom;
	if (m->blocks == NULL || m->blocks->cap - m->blocks->used < n + 1) {
		size_t cap = n + 1 > BLOCK_SIZE ? n + 1 : BLOCK_SIZE;
		struct block *b = malloc(sizeof *b + cap);
		if (b == NULL)
			goto oom;
		*b = (struct block){ .next = m->blocks, .used = 0, .cap = cap };
		m->blocks = b;
	}
	p = m->blocks->data + m->blocks->used;
	memcpy(p, t, n);
	p[n] = '\0';
	m->blocks->used += n + 1;
	return p;
oom:
	m->oom = true;
	return NULL;
}

struct rf_log_attempt *
rf_store_page_attempt(struct rf_log_page *page, size_t item)
{
	struct page_mem *m = page->mem;
	struct rf_log_attempt *a;

	if (m->natt == m->capatt) {
		size_t cap = m->capatt ? m->capatt * 2 : 64;
		a = realloc(m->att, cap * sizeof *a);
		if (a == NULL) {
			m->oom = true;
			return NULL;
		}
		m->att = a;
		m->capatt = cap;
	}
	if (page->items[item].e.nattempts++ == 0)
		m->start[item] = m->natt;
	a = &m->att[m->natt++];
	memset(a, 0, sizeof *a);
	return a;
}

/* Point each item at its run of attempts (the array may have moved while
 * it grew).  -1 when the read ran out of memory. */
static int
page_link(struct rf_log_page *page)
{
	struct page_mem *m = page->mem;

	if (m->oom)
		return -1;
	for (size_t i = 0; i < page->nitems; i++)
		if (page->items[i].e.nattempts > 0)
			page->items[i].e.attempts = m->att + m->start[i];
	return 0;
}

int
rf_store_logs(struct rf_store *p, const struct rf_log_query *q,
    struct rf_log_page *page)
{
	struct rf_store_conn *c;
	int rc;

	memset(page, 0, sizeof *page);
	if (p == NULL || q->limit < 1 || q->limit > RF_LOG_PAGE_MAX)
		return -1;
	page->items = calloc((size_t)q->limit, sizeof *page->items);
	page->mem = calloc(1, sizeof(struct page_mem));
	if (page->items == NULL || page->mem == NULL)
		goto fail;
	if ((c = acquire(p)) == NULL)
		goto fail;
	rc = p->ops->logs(c, q, page);
	release(p, c);
	if (rc != 0 || page_link(page) != 0)
		goto fail;
	return 0;
fail:
	rf_store_log_page_free(page);
	return -1;
}

void
rf_store_log_page_free(struct rf_log_page *page)
{
	struct page_mem *m;

	if (page == NULL)
		return;
	m = page->mem;
	while (m != NULL && m->blocks != NULL) {
		struct block *next = m->blocks->next;
		free(m->blocks);
		m->blocks = next;
	}
	if (m != NULL)
		free(m->att);
	free(m);
	free(page->items);
	memset(page, 0, sizeof *page);
}

/* ---- usage ---- */

/* Whole minutes, a whole number of buckets, at most the cap. */
static bool
usage_window_ok(int64_t from_ms, int64_t to_ms, int64_t bucket_ms)
{
	return bucket_ms > 0 && bucket_ms % RF_MINUTE_MS == 0 &&
	    from_ms % RF_MINUTE_MS == 0 && to_ms > from_ms &&
	    (to_ms - from_ms) % bucket_ms == 0 &&
	    (to_ms - from_ms) / bucket_ms <= RF_USAGE_MAX_BUCKETS;
}

int
rf_store_usage(struct rf_store *p, int64_t from_ms, int64_t to_ms,
    int64_t bucket_ms, struct rf_usage_report *out)
{
	/* Whole hours read the hourly rollups: 60 times fewer rows. */
	bool hourly = from_ms % RF_HOUR_MS == 0 && bucket_ms % RF_HOUR_MS == 0;
	struct rf_store_conn *c;
	int rc;

	memset(out, 0, sizeof *out);
	rf_hist_figures_init(&out->totals);
	if (p == NULL)
		return -1;
	if (!usage_window_ok(from_ms, to_ms, bucket_ms)) {
		RF_LOG_ERR(NULL, NULL, "bad window");
		return -1;
	}
	out->from_ms = from_ms;
	out->to_ms = to_ms;
	out->bucket_ms = bucket_ms;
	out->nbuckets = (size_t)((to_ms - from_ms) / bucket_ms);
	out->buckets = calloc(out->nbuckets, sizeof *out->buckets);
	if (out->buckets == NULL)
		goto fail;
	for (size_t i = 0; i < out->nbuckets; i++)
		rf_hist_figures_init(&out->buckets[i]);
	if ((c = acquire(p)) == NULL)
		goto fail;
	rc = p->ops->usage(c, hourly ? RF_ROLLUP_HOUR : RF_ROLLUP_MINUTE, out);
	release(p, c);
	if (rc == 0)
		return 0;
fail:
	rf_store_usage_free(out);
	return -1;
}

void
rf_store_usage_free(struct rf_usage_report *r)
{
	if (r == NULL)
		return;
	free(r->buckets);
	free(r->providers);
	r->buckets = NULL;
	r->providers = NULL;
	r->nbuckets = r->nproviders = 0;
}

/* ---- moving a store ---- */

/* Copy the page of rows below before (newest first) oldest first. */
static int
copy_page(struct rf_store *from, struct rf_store *to, int64_t before,
    long *rows)
{
	struct rf_log_query q = { .limit = RF_LOG_PAGE_MAX,
	    .before_id = before };
	const struct rf_log_entry *e[RF_LOG_PAGE_MAX];
	struct rf_log_page page;
	int rc;

	if (rf_store_logs(from, &q, &page) != 0)
		return -1;
	for (size_t i = 0; i < page.nitems; i++)
		e[i] = &page.items[page.nitems - 1 - i].e;
	rc = rf_store_log_requests(to, e, page.nitems);
	if (rc == 0)
		*rows += (long)page.nitems;
	rf_store_log_page_free(&page);
	return rc;
}

/* The before_id of every page of from, newest page first, into *marks. */
static int
copy_marks(struct rf_store *from, int64_t **marks, size_t *n)
{
	struct rf_log_query q = { .limit = RF_LOG_PAGE_MAX };
	struct rf_log_page page;
	size_t cap = 0;
	bool more = true;

	*marks = NULL;
	*n = 0;
	while (more) {
		if (*n == cap) {
			int64_t *m = realloc(*marks, (cap = cap ? cap * 2 : 64) *
			    sizeof *m);
			if (m == NULL)
				return -1;
			*marks = m;
		}
		if (rf_store_logs(from, &q, &page) != 0)
			return -1;
		more = page.more && page.nitems > 0;
		if (page.nitems > 0)
			(*marks)[(*n)++] = q.before_id;
		if (page.nitems > 0)
			q.before_id = page.items[page.nitems - 1].id;
		rf_store_log_page_free(&page);
	}
	return 0;
}

int
rf_store_copy(struct rf_store *from, struct rf_store *to, long *rows,
    char *err, size_t errlen)
{
	struct rf_log_query one = { .limit = 1 };
	struct rf_log_page page;
	int64_t *marks = NULL;
	size_t n = 0;
	int rc = -1;

	*rows = 0;
	if (rf_store_logs(to, &one, &page) != 0) {
		snprintf(err, errlen, "cannot read the target store");
		return -1;
	}
	rc = page.nitems > 0 ? 1 : 0;
	rf_store_log_page_free(&page);
	if (rc != 0) {
		snprintf(err, errlen, "the target store already has requests:"
		    " copy into an empty one");
		return -1;
	}
	if (copy_marks(from, &marks, &n) != 0) {
		snprintf(err, errlen, "cannot read the source store");
		goto out;
	}
	/* Oldest page first, so ids grow with age in the target too. */
	for (size_t i = n; i-- > 0;)
		if (copy_page(from, to, marks[i], rows) != 0) {
			snprintf(err, errlen, "a page could not be copied");
			goto out;
		}
	rc = 0;
out:
	free(marks);
	return rc;
}

/* ---- metrics ---- */

struct rf_metric_row *
rf_store_metrics_row(struct rf_metrics_snapshot *m)
{
	struct rf_metric_row *r;

	if (m->nrows == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		r = realloc(m->rows, cap * sizeof *r);
		if (r == NULL)
			return NULL;
		m->rows = r;
		m->cap = cap;
	}
	r = &m->rows[m->nrows++];
	memset(r, 0, sizeof *r);
	return r;
}

int
rf_store_metrics(struct rf_store *p, const char *const *ids, size_t n,
    int64_t live_since_ms, struct rf_metrics_snapshot *out)
{
	struct rf_store_conn *c;
	int rc;

	memset(out, 0, sizeof *out);
	if (p == NULL)
		return -1;
	if (n > 0 && (out->providers = calloc(n, sizeof *out->providers)) ==
	    NULL)
		return -1;
	out->nproviders = n;
	for (size_t i = 0; i < n; i++)
		out->providers[i] = (struct rf_metrics_provider){
			.quota_remaining_requests = -1,
			.quota_remaining_tokens = -1 };
	if (p->ops->metrics == NULL || (c = acquire(p)) == NULL)
		goto fail;
	rc = p->ops->metrics(c, ids, n, live_since_ms, out);
	release(p, c);
	if (rc == 0)
		return 0;
fail:
	rf_store_metrics_free(out);
	return -1;
}

void
rf_store_metrics_free(struct rf_metrics_snapshot *m)
{
	if (m == NULL)
		return;
	free(m->rows);
	free(m->providers);
	memset(m, 0, sizeof *m);
}

int
rf_store_gauges_publish(struct rf_store *p, const char *process,
    const struct rf_process_gauges *g, int64_t now_ms)
{
	if (p != NULL && (process == NULL || g == NULL))
		return -1;
	if (p == NULL || p->ops->gauges_publish == NULL)
		return -1;
	WITH_CONN(p, gauges_publish, process, g, now_ms);
}

/* ---- retention ---- */

int
rf_store_prune(struct rf_store *p, int64_t older_than_ms, int batch)
{
	if (p != NULL && batch < 1)
		return -1;
	WITH_CONN(p, prune, older_than_ms, batch);
}

int
rf_store_maintain(struct rf_store *p)
{
	struct rf_store_conn *c;
	int rc;

	if (p == NULL || (c = acquire(p)) == NULL)
		return -1;
	rc = p->ops->maintain(c);
	release(p, c);
	return rc;
}
