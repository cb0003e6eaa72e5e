/*
 * logq: the spool's writer thread, and the direct write when there is no
 * spool.
 *
 * A request thread appends its row to the spool (rf_spool_append) under
 * this module's lock, which orders appends against the stop, and kicks
 * the writer.  The writer loops:
 *   1. this process's rows first: up to LOGQ_BATCH of the oldest, written
 *      with the spool's progress in one transaction (rf_store_log_spooled),
 *      then committed in the spool (a rotated-out file that empties is
 *      removed and its progress forgotten);
 *   2. when none wait, a dead process's spool file: claimed (flock), its
 *      progress read from the store, then replayed a batch at a time the
 *      same way; removed once read to its end;
 *   3. when neither has work, it sleeps until kicked, or until the retry
 *      time after a failure (100 ms doubling to 2 s), or the next look for
 *      dead files (every SCAN_MS).
 * A failed store write leaves the rows where they are (the spool), marks
 * the writer failing -- /health says degraded -- until a later write
 * succeeds.  Stopping writes this process's rows while the store takes
 * them, then removes the empty spool; when a write fails, the file stays
 * for the next process.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "logq.h"
#include "util.h"

#define LOGQ_BATCH 128        /* rows per transaction */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define SCAN_MS 30000         /* look for dead processes' files */
#define NAP_MAX_MS 1000
/* Under load (see gather): from this many rows in a batch, wait this long
 * before the next. */
#define GATHER_ROWS 8
#define GATHER_MS 8

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
/* Under lock. */
static bool running, stopping, kicked, wanted;
static struct rf_spool *spool;
static pthread_t writer;
static struct rf_store *(*store_of)(void);
static char spool_dir[PATH_MAX];

/* The writer thread's own. */
static struct rf_spool_batch batch;
static struct rf_spool_file *dead;
static int64_t dead_at;          /* bytes of it already in the store */
static int64_t retry_at, next_scan;
static long backoff;

/* Read by /health from any thread. */
static atomic_long lost, dead_rows;
static atomic_bool writer_failing, direct_failing;

/* ---- the request's side ---- */

/* No spool: the row goes to the store on this thread. */
static int
write_now(struct rf_store *s, const struct rf_log_entry *e)
{
	if (s != NULL && rf_store_log_request(s, e) == 0) {
		atomic_store(&direct_failing, false);
		return 0;
	}
	atomic_store(&direct_failing, true);
	atomic_fetch_add(&lost, 1);
	return -1;
}

int
rf_logq_log(struct rf_store *s, const struct rf_log_entry *e)
{
	int rc = RF_SPOOL_ERROR;

	pthread_mutex_lock(&lock);
	if (running && !stopping) {
		rc = rf_spool_append(spool, e);
		if (rc == 0) {
			kicked = true;
			pthread_cond_signal(&wake);
		}
	}
	pthread_mutex_unlock(&lock);
	if (rc == RF_SPOOL_FULL)
		return -1; /* counted by the spool */
	return rc == 0 ? 0 : write_now(s, e);
}

void
rf_logq_health(struct rf_logq_health *h)
{
	long rows = 0, dropped = 0;
	bool full = false;

	h->problem = NULL;
	pthread_mutex_lock(&lock);
	if (spool != NULL)
		rf_spool_counts(spool, &rows, &dropped, &full);
	else if (wanted)
		h->problem = "no spool: request rows are written on the"
		    " request's thread";
	pthread_mutex_unlock(&lock);
	h->rows = rows + atomic_load(&dead_rows);
	h->dropped = dropped + atomic_load(&lost);
	if (atomic_load(&writer_failing))
		h->problem = "the log writer cannot write to the store: rows"
		    " wait in the spool";
	else if (full)
		h->problem = "the spool is full: new request rows are dropped";
	else if (atomic_load(&direct_failing))
		h->problem = "the last request row could not be written";
}

/* ---- the writer thread ---- */

static bool
is_stopping(void)
{
	bool s;

	pthread_mutex_lock(&lock);
	s = stopping;
	pthread_mutex_unlock(&lock);
	return s;
}

static void
write_failed(void)
{
	backoff = backoff == 0 ? RETRY_MIN_MS :
	    (backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2);
	retry_at = rf_mono_ms() + backoff;
	atomic_store(&writer_failing, true);
}

static void
write_ok(void)
{
	backoff = 0;
	retry_at = 0;
	atomic_store(&writer_failing, false);
}

/* The batch is in the store: count what it could not carry. */
static void
count_lost(long refused)
{
	long n = refused + batch.bad;

	if (batch.bad > 0)
		RF_LOG_ERR(NULL, NULL, "spool file %s: %ld unreadable record(s)"
		    " skipped", batch.name, batch.bad);
	if (n > 0)
		atomic_fetch_add(&lost, n);
}

/* Up to LOGQ_BATCH of this process's rows into the store.  1 written,
 * 0 none waiting, -1 failed (they wait). */
static int
drain_own(void)
{
	char gone[RF_SPOOL_NAME_MAX];
	struct rf_store *s;
	long rows, refused;

	rf_spool_counts(spool, &rows, NULL, NULL);
	if (rows == 0)
		return 0;
	if ((s = store_of()) == NULL || rf_spool_next(spool, LOGQ_BATCH,
	    &batch) != 0)
		return -1;
	if (batch.end == batch.from)
		return 0;
	if (rf_store_log_spooled(s, batch.name, batch.from, batch.end,
	    batch.rows, batch.n, &refused) != 0)
		return -1;
	count_lost(refused);
	if (rf_spool_commit(spool, &batch, gone))
		rf_store_spool_forget(s, gone);
	return 1;
}

/* Claim a dead process's file and read its progress.  1 claimed, 0 none
 * (or not now), -1 failed. */
static int
claim_dead(struct rf_store *s)
{
	int64_t now = rf_mono_ms();

	if (now < next_scan)
		return 0;
	if (rf_spool_claim(spool_dir, &dead) <= 0) {
		next_scan = now + SCAN_MS;
		return 0;
	}
	if (rf_store_spool_progress(s, rf_spool_file_name(dead),
	    &dead_at) != 0) {
		rf_spool_file_release(dead);
		dead = NULL;
		return -1;
	}
	atomic_store(&dead_rows, rf_spool_file_rows(dead, dead_at));
	RF_LOG_INFO(NULL, NULL, "replaying spool file %s of a process that"
	    " ended: %ld row(s)", rf_spool_file_name(dead),
	    atomic_load(&dead_rows));
	return 1;
}

/* Read to its end: remove the file, then forget its progress. */
static void
finish_dead(struct rf_store *s)
{
	char name[RF_SPOOL_NAME_MAX];

	snprintf(name, sizeof name, "%s", rf_spool_file_name(dead));
	if (batch.tail)
		RF_LOG_INFO(NULL, NULL, "spool file %s ends in a record cut"
		    " short (its process died writing it): ignored", name);
	rf_spool_file_finish(dead);
	dead = NULL;
	atomic_store(&dead_rows, 0);
	rf_store_spool_forget(s, name);
}

/* One batch of a dead process's file.  1 progress, 0 nothing to do,
 * -1 failed. */
static int
replay_dead(void)
{
	struct rf_store *s = store_of();
	long refused;
	int rc;

	if (s == NULL)
		return dead != NULL ? -1 : 0;
	if (dead == NULL && (rc = claim_dead(s)) <= 0)
		return rc;
	if (rf_spool_file_read(dead, dead_at, LOGQ_BATCH, &batch) != 0)
		return -1;
	if (batch.end == dead_at) {
		finish_dead(s);
		return 1;
	}
	if (rf_store_log_spooled(s, batch.name, batch.from, batch.end,
	    batch.rows, batch.n, &refused) != 0)
		return -1;
	count_lost(refused);
	dead_at = batch.end;
	atomic_fetch_sub(&dead_rows, (long)batch.n);
	if (batch.eof)
		finish_dead(s); /* now: a stop may come before the next step */
	return 1;
}

/* Sleep until kicked or stopping, the retry time or the next scan. */
static void
nap(void)
{
	int64_t now = rf_mono_ms();
	int64_t ms = atomic_load(&writer_failing) ? retry_at - now :
	    next_scan - now;
	struct timespec ts;

	ms = ms < 1 ? 1 : ms > NAP_MAX_MS ? NAP_MAX_MS : ms;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lock);
	while (!kicked && !stopping &&
	    pthread_cond_timedwait(&wake, &lock, &ts) == 0)
		;
	kicked = false;
	pthread_mutex_unlock(&lock);
}

/* One step: 1 did something, 0 nothing to do now, -1 a write failed.
 * Stopping during a back-off gives up at once: the rows are safe in the
 * spool, and a store that just failed should not hold up the exit. */
static int
step(bool stop)
{
	int rc;

	if (rf_mono_ms() < retry_at)
		return stop ? -1 : 0;
	rc = drain_own();
	if (rc == 0 && !stop)
		rc = replay_dead();
	if (rc < 0)
		write_failed();
	else if (rc > 0)
		write_ok();
	return rc;
}

/* The end: a half-replayed dead file goes back; an empty spool goes. */
static void
finish(void)
{
	char gone[RF_SPOOL_NAME_MAX];
	struct rf_spool *sp;
	struct rf_store *s;
	long dropped = 0;

	if (dead != NULL) {
		rf_spool_file_release(dead);
		dead = NULL;
		atomic_store(&dead_rows, 0);
	}
	pthread_mutex_lock(&lock);
	sp = spool;
	spool = NULL;
	pthread_mutex_unlock(&lock);
	rf_spool_counts(sp, NULL, &dropped, NULL);
	atomic_fetch_add(&lost, dropped); /* the count outlives the spool */
	if (rf_spool_close(sp, gone) && (s = store_of()) != NULL)
		rf_store_spool_forget(s, gone);
	rf_spool_batch_free(&batch);
}

/* Under load -- the last batch carried GATHER_ROWS or more but not a
 * full LOGQ_BATCH -- wait GATHER_MS before the next: the rows that arrive
 * meanwhile share one transaction, and a store pays for a transaction's
 * statements once however many rows they carry (PostgreSQL: a batch of
 * 10 rows cost its server about twice as much per row as one of 40).  A
 * row reaches the store at most GATHER_MS later; at a trickle (tests, a
 * quiet gateway) batches are small and nothing waits. */
static void
gather(void)
{
	struct timespec ts = { 0, GATHER_MS * 1000000L };

	if (batch.n >= GATHER_ROWS && batch.n < LOGQ_BATCH)
		nanosleep(&ts, NULL);
}

static void *
writer_main(void *arg)
{
	(void)arg;
	for (;;) {
		bool stop = is_stopping();
		int rc = step(stop);

		/* Stopping: on while rows go in; a failure leaves them. */
		if (stop && rc <= 0)
			break;
		if (rc <= 0)
			nap();
		else if (!stop)
			gather();
	}
	finish();
	return NULL;
}

int
rf_logq_start(struct rf_store *(*get_store)(void),
    const struct rf_spool_conf *c)
{
	char err[PATH_MAX + 128], gone[RF_SPOOL_NAME_MAX];
	int rc = -1;

	pthread_mutex_lock(&lock);
	wanted = true;
	if (running) {
		rc = 0;
		goto out;
	}
	if ((spool = rf_spool_open(c, err, sizeof err)) == NULL) {
		RF_LOG_ERR(NULL, NULL, "%s: request rows are written on the"
		    " request's thread", err);
		goto out;
	}
	store_of = get_store;
	snprintf(spool_dir, sizeof spool_dir, "%s", c->dir);
	stopping = kicked = false;
	retry_at = next_scan = backoff = 0;
	atomic_store(&writer_failing, false);
	if (pthread_create(&writer, NULL, writer_main, NULL) != 0) {
		RF_LOG_ERR(NULL, NULL, "no log writer thread: request rows are"
		    " written on the request's thread");
		rf_spool_close(spool, gone);
		spool = NULL;
		goto out;
	}
	running = true;
	rc = 0;
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

void
rf_logq_stop(void)
{
	pthread_mutex_lock(&lock);
	wanted = false;
	if (!running) {
		pthread_mutex_unlock(&lock);
		return;
	}
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(writer, NULL);
	pthread_mutex_lock(&lock);
	running = false;
	pthread_mutex_unlock(&lock);
}
