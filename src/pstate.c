/*
 * pstate: the providers' state as this process knows it -- a small table,
 * one slot per provider id, under one mutex -- and the writes the store
 * has not taken yet, with the thread that retries them.
 *
 * A slot holds three things:
 *   last      what the store last said (the snapshot rf_pstate_load read
 *             at read_at) or last took from this process (a write it
 *             accepted);
 *   inflight  the writes the writer is making right now (outside the
 *             lock);
 *   wait      the writes not yet tried, in order.
 * A "change" is a run of writes folded into one record that keeps their
 * meaning in the store's order: a success clears what came before it, then
 * failures add to the streak, the latest cooldown wins, the newest quota
 * snapshot replaces the older.  The view the engine decides from is
 * last + inflight + wait.
 *
 * A write on a request's thread goes straight to the store, within
 * RF_STORE_HOT_MS, only while nothing waits: once one write waits, later
 * writes queue behind it (so the store sees them in order, and requests
 * stop paying the budget while the store is locked) until the writer has
 * made them.  The writer makes each change in the order above, stops at
 * the first refusal and puts what was not written back in front of what
 * queued meanwhile; it says on stderr once per provider that writes wait,
 * and once when they are made.
 *
 * Reads: a load serves last + inflight + wait while every slot it names
 * was read less than window_ms ago (RF_PSTATE_READ_MS).  An older snapshot
 * is read again by the first thread that finds it old (refreshing says one
 * is at it); the others serve the old one meanwhile.  Only a slot never
 * read makes a second thread read too (a process's first requests).  A
 * read that fails counts as one: the store is tried again a window later,
 * not by every request.  A write the store takes while a read is on its
 * way changes the slot's gen: the read may be older than the write, so
 * that slot keeps what the write left (as new as the read, and the
 * streak is the store's) and counts as read; another machine's cooldown
 * of that provider in that instant is seen at the next read.
 *
 * A thread in nowait mode (an event loop) never calls the store here: its
 * writes queue for the writer, and its loads of an old snapshot set
 * refresh_wanted, which the writer reads for every slot in use.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "pstate.h"
#include "util.h"

/* More than RF_MAX_PROVIDERS (config.h): every provider of the catalog. */
#define SLOTS 32
#define ID_MAX 32
#define CODE_MAX 48

/* A run of writes to one provider's state, in the store's order. */
struct change {
	bool any;
	bool clear;             /* a success: clear streak and cooldown first */
	int64_t ok_ms;
	int fails;              /* failures after it */
	char code[CODE_MAX];    /* the last failure's code */
	int64_t fail_ms;
	int64_t until;          /* the latest cooldown asked for after it */
	char reason[CODE_MAX];
	bool quota;             /* the newest quota snapshot */
	long rr, rt;
	int64_t reset_ms, quota_ms;
};

struct slot {
	char id[ID_MAX];        /* "" = free */
	struct rf_provider_state last;
	struct change inflight, wait;
	bool warned;            /* "writes wait" was said */
	int64_t read_at;        /* rf_mono_ms of the read of last, 0 = never */
	unsigned gen;           /* bumped by every write the store took */
};

/* What the store took of a change (to update last). */
struct taken {
	bool cleared;
	int failures;           /* the store's new streak, -1 = not written */
	int64_t until;          /* a cooldown it took, 0 = none */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t flushing = PTHREAD_MUTEX_INITIALIZER; /* one flusher */
static struct slot slots[SLOTS];
static bool running, stopping;
static pthread_t writer;
static struct rf_store *(*store_of)(void);
static bool refreshing;         /* a thread is reading the snapshot */
static bool refresh_wanted;     /* a nowait load found it old */
static int window_ms = RF_PSTATE_READ_MS;
static _Thread_local bool nowait;
static _Thread_local long calls; /* store calls made on this thread */

/* ---- the table (lock held) ---- */

static struct slot *
slot_of(const char *id)
{
	struct slot *free_ = NULL;

	if (id == NULL || strlen(id) >= ID_MAX)
		return NULL;
	for (int i = 0; i < SLOTS; i++) {
		if (strcmp(slots[i].id, id) == 0)
			return &slots[i];
		if (free_ == NULL && slots[i].id[0] == '\0')
			free_ = &slots[i];
	}
	if (free_ != NULL)
		snprintf(free_->id, sizeof free_->id, "%s", id);
	return free_;
}

/* Append next to c: next happened after everything in c. */
static void
combine(struct change *c, const struct change *next)
{
	if (!next->any)
		return;
	if (next->clear) {
		c->clear = true;
		c->ok_ms = next->ok_ms;
		c->fails = 0;
		c->code[0] = '\0';
		c->until = 0;
		c->reason[0] = '\0';
	}
	if (next->fails > 0) {
		c->fails += next->fails;
		memcpy(c->code, next->code, sizeof c->code);
		c->fail_ms = next->fail_ms;
	}
	if (next->until > c->until) {
		c->until = next->until;
		memcpy(c->reason, next->reason, sizeof c->reason);
	}
	if (next->quota) {
		c->quota = true;
		c->rr = next->rr;
		c->rt = next->rt;
		c->reset_ms = next->reset_ms;
		c->quota_ms = next->quota_ms;
	}
	c->any = true;
}

static bool
waits(const struct slot *sl)
{
	return sl->inflight.any || sl->wait.any;
}

static bool
any_waits(void)
{
	for (int i = 0; i < SLOTS; i++)
		if (waits(&slots[i]))
			return true;
	return false;
}

/* What the engine decides from: last, then inflight, then wait. */
static void
view(const struct slot *sl, struct rf_provider_state *st)
{
	struct change c = sl->inflight;

	combine(&c, &sl->wait);
	*st = sl->last;
	if (c.clear)
		*st = (struct rf_provider_state){ 0, 0 };
	st->consecutive_failures += c.fails;
	if (c.until > st->cooldown_until_ms)
		st->cooldown_until_ms = c.until;
}

static void
took(struct slot *sl, const struct taken *t)
{
	if (t->cleared || t->failures >= 0 || t->until > 0)
		sl->gen++;
	if (t->cleared)
		sl->last = (struct rf_provider_state){ 0, 0 };
	if (t->failures >= 0)
		sl->last.consecutive_failures = t->failures;
	if (t->until > sl->last.cooldown_until_ms)
		sl->last.cooldown_until_ms = t->until;
}

/* ---- writing a change ---- */

/* The failures of c, with its cooldown in the same transaction when the
 * cooldown is the failures' own (a 429, an auth failure). */
static int
write_failures(struct rf_store *s, const char *id, struct change *c,
    struct taken *t)
{
	bool own = c->until > 0 && strcmp(c->reason, c->code) == 0;
	int n = 0;

	calls++;
	if (rf_store_provider_failures(s, id, c->fails, c->code, c->fail_ms,
	    own ? c->until : 0, &n) != 0)
		return -1;
	t->failures = n;
	c->fails = 0;
	if (own) {
		t->until = c->until;
		c->until = 0;
	}
	return 0;
}

/* Make c in the store, in order; what was made is taken out of c (and
 * recorded in t).  0 when all of it was. */
static int
write_change(struct rf_store *s, const char *id, struct change *c,
    struct taken *t)
{
	*t = (struct taken){ .failures = -1 };
	if (c->clear) {
		calls++;
		if (rf_store_provider_ok(s, id, c->ok_ms) != 0)
			return -1;
		t->cleared = true;
		c->clear = false;
	}
	if (c->fails > 0 && write_failures(s, id, c, t) != 0)
		return -1;
	if (c->until > 0) {
		calls++;
		if (rf_store_provider_cooldown(s, id, c->until, c->reason) != 0)
			return -1;
		t->until = c->until;
		c->until = 0;
	}
	if (c->quota) {
		calls++;
		if (rf_store_provider_quota(s, id, c->rr, c->rt, c->reset_ms,
		    c->quota_ms) != 0)
			return -1;
		c->quota = false;
	}
	c->any = false;
	return 0;
}

/* Write slot i's waiting change within budget_ms per call.  0 when the
 * store took all of it. */
static int
flush_slot(struct rf_store *s, int i, int budget_ms)
{
	struct slot *sl = &slots[i];
	char id[ID_MAX];
	struct change c;
	struct taken t;
	int rc, was;

	pthread_mutex_lock(&lock);
	sl->inflight = sl->wait;
	sl->wait = (struct change){ 0 };
	c = sl->inflight;
	memcpy(id, sl->id, sizeof id);
	pthread_mutex_unlock(&lock);
	was = rf_store_budget(budget_ms);
	rc = write_change(s, id, &c, &t);
	rf_store_budget(was);
	pthread_mutex_lock(&lock);
	took(sl, &t);
	/* What was not made goes back in front of what queued meanwhile. */
	combine(&c, &sl->wait);
	sl->wait = c;
	sl->inflight = (struct change){ 0 };
	if (rc == 0 && sl->warned && !sl->wait.any) {
		sl->warned = false;
		RF_LOG_INFO(NULL, id, "provider state written to the store again");
	} else if (rc != 0 && !sl->warned) {
		sl->warned = true;
		RF_LOG_WARN(NULL, id, "the store did not take the provider state "
		    "in time: kept in this process, written when it does");
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int
rf_pstate_flush(struct rf_store *s, int budget_ms)
{
	int left = 0;
	bool refused = false;

	pthread_mutex_lock(&flushing);
	for (int i = 0; i < SLOTS; i++) {
		bool has;

		pthread_mutex_lock(&lock);
		has = slots[i].wait.any;
		pthread_mutex_unlock(&lock);
		/* After a refusal the store is busy: keep the order, try later. */
		if (has && (refused || s == NULL || flush_slot(s, i, budget_ms) != 0))
			refused = true;
	}
	pthread_mutex_unlock(&flushing);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < SLOTS; i++)
		left += waits(&slots[i]);
	pthread_mutex_unlock(&lock);
	return left;
}

int
rf_pstate_waiting(void)
{
	int n = 0;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < SLOTS; i++)
		n += waits(&slots[i]);
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- the request's path ---- */

/* true when a write may go straight to the store: there is one and
 * nothing waits (without a writer thread, the caller first tries to make
 * what waits itself). */
static bool
direct(struct rf_store *s)
{
	bool ok, bg;

	if (s == NULL || nowait)
		return false;
	pthread_mutex_lock(&lock);
	ok = !any_waits();
	bg = running;
	pthread_mutex_unlock(&lock);
	if (!ok && !bg)
		ok = rf_pstate_flush(s, RF_STORE_HOT_MS) == 0;
	return ok;
}

/* Try c in the store within the hot budget; what the store did not take
 * waits for the writer.  Returns the streak: the store's when it took c's
 * failures, else the one this process knows. */
static int
write_through(struct rf_store *s, const char *id, struct change *c)
{
	struct rf_provider_state st = { 0, c->fails };
	struct taken t = { .failures = -1 };
	struct slot *sl;
	int was, rc = -1;

	if (direct(s)) {
		was = rf_store_budget(RF_STORE_HOT_MS);
		rc = write_change(s, id, c, &t);
		rf_store_budget(was);
	}
	pthread_mutex_lock(&lock);
	sl = slot_of(id);
	if (sl != NULL) {
		took(sl, &t);
		if (rc != 0) {
			combine(&sl->wait, c); /* what was made is out of c */
			pthread_cond_signal(&wake);
		}
		view(sl, &st);
	}
	pthread_mutex_unlock(&lock);
	if (sl == NULL && rc != 0)
		RF_LOG_ERR(NULL, id, "no room to keep the provider's state");
	return t.failures >= 0 ? t.failures : st.consecutive_failures;
}

static void
set_text(char *dst, size_t len, const char *s)
{
	snprintf(dst, len, "%s", s != NULL ? s : "");
}

int
rf_pstate_failed(struct rf_store *s, const char *id, const char *error_code,
    int64_t now_ms, int64_t cooldown_until_ms)
{
	struct change c = { .any = true, .fails = 1, .fail_ms = now_ms };

	set_text(c.code, sizeof c.code, error_code);
	if (cooldown_until_ms > 0) {
		c.until = cooldown_until_ms;
		set_text(c.reason, sizeof c.reason, error_code);
	}
	return write_through(s, id, &c);
}

void
rf_pstate_cooldown(struct rf_store *s, const char *id, int64_t until_ms,
    const char *reason)
{
	struct change c = { .any = true, .until = until_ms };

	if (until_ms <= 0)
		return;
	set_text(c.reason, sizeof c.reason, reason);
	write_through(s, id, &c);
}

void
rf_pstate_ok(struct rf_store *s, const char *id, int64_t now_ms)
{
	struct change c = { .any = true, .clear = true, .ok_ms = now_ms };

	write_through(s, id, &c);
}

void
rf_pstate_quota(struct rf_store *s, const char *id, long remaining_requests,
    long remaining_tokens, int64_t reset_ms, int64_t now_ms)
{
	struct change c = { .any = true, .quota = true,
		.rr = remaining_requests, .rt = remaining_tokens,
		.reset_ms = reset_ms, .quota_ms = now_ms };

	write_through(s, id, &c);
}

/* ---- reading the snapshot ---- */

/* Whether every slot of ids has a snapshot younger than the window;
 * *have: whether each has one at all (lock held). */
static bool
fresh(const char *const *ids, size_t n, int64_t now, bool *have)
{
	bool young = true;

	*have = true;
	for (size_t i = 0; i < n; i++) {
		const struct slot *sl = slot_of(ids[i]);

		if (sl == NULL || sl->read_at == 0)
			*have = young = false;
		else if (now - sl->read_at >= window_ms)
			young = false;
	}
	return young;
}

/* Read the store's state of ids into st within budget_ms and make it the
 * snapshot (see the top of the file for a slot written meanwhile).  The
 * caller holds the refresh (refreshing), or reads for itself a snapshot
 * that does not exist yet.  0 when the store answered. */
static int
read_snapshot(struct rf_store *s, const char *const *ids, size_t n,
    struct rf_provider_state *st, int budget_ms)
{
	unsigned gen[SLOTS];
	int64_t at = rf_mono_ms();
	int rc, was;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n && i < SLOTS; i++) {
		const struct slot *sl = slot_of(ids[i]);

		gen[i] = sl != NULL ? sl->gen : 0;
	}
	pthread_mutex_unlock(&lock);
	calls++;
	was = rf_store_budget(budget_ms);
	rc = rf_store_provider_states(s, ids, n, st);
	rf_store_budget(was);
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++) {
		struct slot *sl = slot_of(ids[i]);

		if (sl == NULL)
			continue;
		if (rc == 0 && i < SLOTS && sl->gen == gen[i])
			sl->last = st[i];
		if (at > sl->read_at)
			sl->read_at = at;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

void
rf_pstate_load(struct rf_store *s, const char *const *ids, size_t n,
    struct rf_provider_state *st)
{
	bool have, owner = false, mine = false;
	int rc = -1;

	pthread_mutex_lock(&lock);
	if (s != NULL && !fresh(ids, n, rf_mono_ms(), &have)) {
		if (nowait) {
			refresh_wanted = running;
			pthread_cond_signal(&wake);
		} else if (!refreshing) {
			refreshing = owner = true;
		} else {
			mine = !have; /* nothing to serve yet: read for itself */
		}
	}
	pthread_mutex_unlock(&lock);
	if (owner || mine)
		rc = read_snapshot(s, ids, n, st, RF_STORE_HOT_MS);
	pthread_mutex_lock(&lock);
	if (owner)
		refreshing = false;
	for (size_t i = 0; i < n; i++) {
		struct slot *sl = slot_of(ids[i]);

		if (sl != NULL)
			view(sl, &st[i]);
		else if (rc != 0)
			st[i] = (struct rf_provider_state){ 0, 0 };
	}
	pthread_mutex_unlock(&lock);
}

void
rf_pstate_thread_nowait(bool on)
{
	nowait = on;
}

long
rf_pstate_thread_store_calls(void)
{
	return calls;
}

int
rf_pstate_read_window(int ms)
{
	int was;

	pthread_mutex_lock(&lock);
	was = window_ms;
	window_ms = ms > 0 ? ms : 0;
	pthread_mutex_unlock(&lock);
	return was;
}

/* The writer's read of the snapshot a nowait load asked for: every slot
 * in use, unless a request's thread is reading it already. */
static void
refresh_for_loop(struct rf_store *s)
{
	const char *ids[SLOTS];
	char copy[SLOTS][ID_MAX];
	struct rf_provider_state st[SLOTS];
	size_t n = 0;
	bool owner;

	pthread_mutex_lock(&lock);
	refresh_wanted = false;
	owner = !refreshing && s != NULL;
	refreshing = refreshing || owner;
	for (int i = 0; owner && i < SLOTS; i++) {
		if (slots[i].id[0] == '\0')
			continue;
		memcpy(copy[n], slots[i].id, ID_MAX);
		ids[n] = copy[n];
		n++;
	}
	pthread_mutex_unlock(&lock);
	if (!owner)
		return;
	if (n > 0)
		read_snapshot(s, ids, n, st, RF_PSTATE_WRITE_MS);
	pthread_mutex_lock(&lock);
	refreshing = false;
	pthread_mutex_unlock(&lock);
}

/* ---- the writer thread ---- */

/* Sleeps while nothing waits and no nowait load asked for a read;
 * otherwise reads the snapshot if asked, then writes, and after a refusal
 * pauses RF_PSTATE_RETRY_MS, doubling up to a second while the store keeps
 * refusing (a store that fails at once -- read-only, full -- is not
 * hammered, and a lock's end is still noticed within a second). */
static void *
writer_main(void *arg)
{
	long pause = RF_PSTATE_RETRY_MS;

	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping) {
		struct rf_store *s;
		bool read = refresh_wanted;

		if (!any_waits() && !read) {
			pthread_cond_wait(&wake, &lock);
			continue;
		}
		pthread_mutex_unlock(&lock);
		s = store_of != NULL ? store_of() : NULL;
		if (read)
			refresh_for_loop(s);
		if (rf_pstate_flush(s, RF_PSTATE_WRITE_MS) == 0) {
			pause = RF_PSTATE_RETRY_MS;
		} else {
			rf_sleep_ms(pause);
			pause = pause * 2 > 1000 ? 1000 : pause * 2;
		}
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int
rf_pstate_start(struct rf_store *(*get_store)(void))
{
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (!running) {
		store_of = get_store;
		stopping = false;
		rc = pthread_create(&writer, NULL, writer_main, NULL) == 0 ? 0 : -1;
		running = rc == 0;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

/* Say, provider by provider, what the store never took. */
static void
report_lost(void)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < SLOTS; i++) {
		const struct change *c = &slots[i].wait;

		if (!c->any)
			continue;
		RF_LOG_ERR(NULL, slots[i].id, "provider state not written before "
		    "exit:%s %d failure(s), cooldown until %lld%s",
		    c->clear ? " a success," : "", c->fails, (long long)c->until,
		    c->quota ? ", a quota snapshot" : "");
	}
	pthread_mutex_unlock(&lock);
}

void
rf_pstate_stop(struct rf_store *s, int budget_ms)
{
	bool joined;

	pthread_mutex_lock(&lock);
	joined = running;
	stopping = true;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
	if (joined)
		pthread_join(writer, NULL);
	pthread_mutex_lock(&lock);
	running = false;
	pthread_mutex_unlock(&lock);
	if (rf_pstate_flush(s, budget_ms) > 0)
		report_lost();
}
