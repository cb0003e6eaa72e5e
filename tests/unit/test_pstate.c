/* Unit tests of the providers' state in the process (src/pstate.c) over a
 * real SQLite store in a mkdtemp directory: writes go through while the
 * store is free; while another connection holds the write lock they return
 * at once and the process decides from what it knows; what waited reaches
 * the store in order once it is free (made by the caller, or by the
 * background writer); the store's view wins once a write is in it; what
 * could not be written by the stop is said on stderr.  Reads come from a
 * snapshot younger than RF_PSTATE_READ_MS: a load within it makes no
 * store call and does not see another process's write, one after it does;
 * this process's writes are seen at once; one thread reads an old
 * snapshot while the others serve it.  A thread in nowait mode never calls
 * the store, and its writes still reach it (through the writer).
 *
 * The table is process-wide, so each test uses provider ids of its own.
 * Time bounds are generous (a second against a 5 ms budget, where the
 * store used to wait 10 s; a window of a minute for "within the window"):
 * time is the subject of these tests.  "After the window" is a sleep past
 * it, a lower bound that a slow machine only makes truer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pstate.h"
#include "store.h"
#include "util.h"

#define T0 ((int64_t)1767268800000)
#define SECOND_BOUND_MS 1000

struct fixture {
	char dir[64];
	char path[128];
	struct rf_store *s;
};

static struct fixture *current; /* for the writer's get_store */

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/rf-pstate-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/relayforge.db", f->dir);
	f->s = rf_store_open_pool(f->path, 2, err, sizeof err);
	if (f->s == NULL) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	current = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[160];

	rf_store_close(f->s);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	current = NULL;
	return 0;
}

/* An integer column of provider_state (INT64_MIN: no row; -999: NULL),
 * read on a connection of its own (reads pass the write lock: WAL). */
static int64_t
col(const struct fixture *f, const char *id, const char *column)
{
	char sql[160];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = INT64_MIN;

	snprintf(sql, sizeof sql, "SELECT %s FROM provider_state"
	    " WHERE provider = '%s'", column, id);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -999 :
		    sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
reason_of(const struct fixture *f, const char *id, char *out, size_t n)
{
	char sql[160];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	snprintf(sql, sizeof sql, "SELECT cooldown_reason FROM provider_state"
	    " WHERE provider = '%s'", id);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	out[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
exec_sql(const struct fixture *f, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Another connection takes the write lock, as an operator's shell would. */
static sqlite3 *
lock_file(const struct fixture *f)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	return db;
}

static void
unlock_file(sqlite3 *db)
{
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
}

static struct rf_provider_state
load1(struct rf_store *s, const char *id)
{
	const char *ids[1] = { id };
	struct rf_provider_state st = { -1, -1 };

	rf_pstate_load(s, ids, 1, &st);
	return st;
}

/* Let the snapshot of every provider grow older than the window. */
static void
past_window(void)
{
	int ms = rf_pstate_read_window(RF_PSTATE_READ_MS);

	rf_pstate_read_window(ms);
	rf_sleep_ms(ms + 20);
}

/* ---- the store is free ---- */

static void
test_writes_through_when_free(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rf_pstate_failed(f->s, "a1", "provider_unavailable",
	    T0, 0), 1);
	assert_int_equal(col(f, "a1", "consecutive_failures"), 1);
	/* The streak is the store's: another process counted two more. */
	exec_sql(f, "UPDATE provider_state SET consecutive_failures = 3"
	    " WHERE provider = 'a1'");
	assert_int_equal(rf_pstate_failed(f->s, "a1", "provider_timeout",
	    T0 + 1, T0 + 9000), 4);
	assert_int_equal(col(f, "a1", "cooldown_until_ms"), T0 + 9000);
	rf_pstate_quota(f->s, "a1", 0, 10, T0 + 5000, T0 + 2);
	assert_int_equal(col(f, "a1", "quota_remaining_requests"), 0);
	rf_pstate_ok(f->s, "a1", T0 + 3);
	assert_int_equal(col(f, "a1", "consecutive_failures"), 0);
	assert_int_equal(col(f, "a1", "cooldown_until_ms"), 0);
	assert_int_equal(rf_pstate_waiting(), 0);
}

/* ---- the store is locked ---- */

static void
test_locked_store_never_waits(void **state)
{
	struct fixture *f = *state;
	struct rf_provider_state st;
	sqlite3 *lk = lock_file(f);
	int64_t t0 = rf_mono_ms();
	char reason[48];

	assert_int_equal(rf_pstate_failed(f->s, "b1", "provider_unavailable",
	    T0, 0), 1);
	assert_int_equal(rf_pstate_failed(f->s, "b1", "provider_unavailable",
	    T0 + 1, 0), 2);
	rf_pstate_cooldown(f->s, "b1", T0 + 60000, "failure_threshold");
	assert_true(rf_mono_ms() - t0 < SECOND_BOUND_MS);
	assert_int_equal(rf_pstate_waiting(), 1);
	/* The store has nothing yet; the process knows it all. */
	assert_true(col(f, "b1", "consecutive_failures") == INT64_MIN);
	st = load1(f->s, "b1");
	assert_int_equal(st.consecutive_failures, 2);
	assert_int_equal(st.cooldown_until_ms, T0 + 60000);
	unlock_file(lk);
	assert_int_equal(rf_pstate_flush(f->s, 1000), 0);
	assert_int_equal(col(f, "b1", "consecutive_failures"), 2);
	assert_int_equal(col(f, "b1", "cooldown_until_ms"), T0 + 60000);
	reason_of(f, "b1", reason, sizeof reason);
	assert_string_equal(reason, "failure_threshold");
	assert_int_equal(rf_pstate_waiting(), 0);
	st = load1(f->s, "b1");
	assert_int_equal(st.consecutive_failures, 2);
}

/* What waited reaches the store in the order it happened: a success
 * clears the streak the store had and the failures before it. */
static void
test_order_is_kept(void **state)
{
	struct fixture *f = *state;
	struct rf_provider_state st;
	sqlite3 *lk;
	char reason[48];

	/* Another process's five failures, as a request reads them. */
	assert_int_equal(rf_store_provider_failures(f->s, "c1", 5, "x", T0,
	    0, NULL), 0);
	assert_int_equal(load1(f->s, "c1").consecutive_failures, 5);
	lk = lock_file(f);
	assert_int_equal(rf_pstate_failed(f->s, "c1", "provider_unavailable",
	    T0 + 1, 0), 6);
	rf_pstate_ok(f->s, "c1", T0 + 2);
	st = load1(f->s, "c1");
	assert_int_equal(st.consecutive_failures, 0);
	assert_int_equal(st.cooldown_until_ms, 0);
	assert_int_equal(rf_pstate_failed(f->s, "c1", "provider_rate_limited",
	    T0 + 3, T0 + 5000), 1);
	rf_pstate_quota(f->s, "c1", 7, -1, 0, T0 + 4);
	unlock_file(lk);
	assert_int_equal(rf_pstate_flush(f->s, 1000), 0);
	assert_int_equal(col(f, "c1", "consecutive_failures"), 1);
	assert_int_equal(col(f, "c1", "cooldown_until_ms"), T0 + 5000);
	assert_int_equal(col(f, "c1", "last_success_ms"), T0 + 2);
	assert_int_equal(col(f, "c1", "quota_remaining_requests"), 7);
	reason_of(f, "c1", reason, sizeof reason);
	assert_string_equal(reason, "provider_rate_limited");
}

/* Once a write is in the store, the store's view wins: a provider another
 * process cleared is clear here too. */
static void
test_store_view_wins_once_written(void **state)
{
	struct fixture *f = *state;
	struct rf_provider_state st;

	rf_pstate_cooldown(f->s, "d1", T0 + 60000, "quota");
	assert_int_equal(col(f, "d1", "cooldown_until_ms"), T0 + 60000);
	assert_int_equal(load1(f->s, "d1").cooldown_until_ms, T0 + 60000);
	exec_sql(f, "UPDATE provider_state SET cooldown_until_ms = 0"
	    " WHERE provider = 'd1'");
	/* Another process's write is read once the snapshot is old. */
	past_window();
	st = load1(f->s, "d1");
	assert_int_equal(st.cooldown_until_ms, 0);
	/* The later cooldown wins over the store's earlier one. */
	exec_sql(f, "UPDATE provider_state SET cooldown_until_ms = 1"
	    " WHERE provider = 'd1'");
	past_window();
	assert_int_equal(load1(f->s, "d1").cooldown_until_ms, 1);
}

/* Without a store (it could not be opened) the process still keeps its
 * providers' state, and writes it when a store comes. */
static void
test_without_store(void **state)
{
	struct fixture *f = *state;
	struct rf_provider_state st;

	assert_int_equal(rf_pstate_failed(NULL, "e1", "provider_rate_limited",
	    T0, T0 + 30000), 1);
	assert_int_equal(rf_pstate_failed(NULL, "e1", "provider_unavailable",
	    T0 + 1, 0), 2);
	st = load1(NULL, "e1");
	assert_int_equal(st.consecutive_failures, 2);
	assert_int_equal(st.cooldown_until_ms, T0 + 30000);
	assert_int_equal(rf_pstate_flush(NULL, 1000), 1);
	assert_int_equal(rf_pstate_flush(f->s, 1000), 0);
	assert_int_equal(col(f, "e1", "consecutive_failures"), 2);
	assert_int_equal(col(f, "e1", "cooldown_until_ms"), T0 + 30000);
}

/* ---- the background writer ---- */

static struct rf_store *
get_store(void)
{
	return current != NULL ? current->s : NULL;
}

static void
test_writer_makes_waiting_writes(void **state)
{
	struct fixture *f = *state;
	sqlite3 *lk = lock_file(f);
	int64_t t0;
	int64_t until = INT64_MIN;

	assert_int_equal(rf_pstate_start(get_store), 0);
	t0 = rf_mono_ms();
	assert_int_equal(rf_pstate_failed(f->s, "f1", "provider_rate_limited",
	    T0, T0 + 30000), 1);
	assert_true(rf_mono_ms() - t0 < SECOND_BOUND_MS);
	rf_sleep_ms(50); /* the writer is refused meanwhile, and retries */
	unlock_file(lk);
	/* Made by the writer, without another call here. */
	for (int i = 0; i < 500 && until != T0 + 30000; i++) {
		rf_sleep_ms(10);
		until = col(f, "f1", "cooldown_until_ms");
	}
	assert_int_equal(until, T0 + 30000);
	rf_pstate_stop(f->s, RF_PSTATE_WRITE_MS);
	assert_int_equal(rf_pstate_waiting(), 0);
}

/* What the store never took is said on stderr at the stop: never lost
 * silently. */
static void
test_stop_says_what_is_lost(void **state)
{
	struct fixture *f = *state;
	char tmpl[] = "/tmp/rf-pstate-err-XXXXXX", buf[4096];
	int fd = mkstemp(tmpl), saved = dup(2);
	sqlite3 *lk = lock_file(f);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	rf_pstate_failed(f->s, "g1", "provider_unavailable", T0, 0);
	dup2(fd, 2);
	rf_pstate_stop(f->s, RF_PSTATE_WRITE_MS);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	unlink(tmpl);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "provider=g1"));
	assert_non_null(strstr(buf, "not written before exit"));
	assert_true(rf_pstate_waiting() >= 1);
	unlock_file(lk);
	assert_int_equal(rf_pstate_flush(f->s, 1000), 0);
}

/* ---- the snapshot of reads ---- */

/* Within the window a load makes no store call, and so does not see
 * another process's write (made here straight to the store, as another
 * process or machine makes it); after the window it reads it. */
static void
test_load_within_window_reads_nothing(void **state)
{
	struct fixture *f = *state;
	int was = rf_pstate_read_window(60000);
	long calls;

	assert_int_equal(load1(f->s, "h1").cooldown_until_ms, 0);
	calls = rf_pstate_thread_store_calls();
	assert_int_equal(rf_store_provider_cooldown(f->s, "h1", T0 + 60000,
	    "quota"), 0);
	assert_int_equal(load1(f->s, "h1").cooldown_until_ms, 0);
	assert_int_equal(rf_pstate_thread_store_calls(), calls);
	/* After the window: one read, and the other process's cooldown. */
	rf_pstate_read_window(50);
	past_window();
	assert_int_equal(load1(f->s, "h1").cooldown_until_ms, T0 + 60000);
	assert_int_equal(rf_pstate_thread_store_calls(), calls + 1);
	rf_pstate_read_window(was);
}

/* This process's writes are seen at once, within the window: they are
 * the snapshot's overlay (or, once the store took them, the snapshot). */
static void
test_own_writes_seen_at_once(void **state)
{
	struct fixture *f = *state;
	int was = rf_pstate_read_window(60000);
	struct rf_provider_state st;
	long calls;

	assert_int_equal(load1(f->s, "i1").cooldown_until_ms, 0);
	rf_pstate_cooldown(f->s, "i1", T0 + 60000, "quota");
	assert_int_equal(rf_pstate_failed(f->s, "i1", "provider_unavailable",
	    T0, 0), 1);
	calls = rf_pstate_thread_store_calls();
	st = load1(f->s, "i1");
	assert_int_equal(st.cooldown_until_ms, T0 + 60000);
	assert_int_equal(st.consecutive_failures, 1);
	rf_pstate_ok(f->s, "i1", T0 + 1);
	st = load1(f->s, "i1");
	assert_int_equal(st.cooldown_until_ms, 0);
	assert_int_equal(st.consecutive_failures, 0);
	/* One store call: the success's write; no read. */
	assert_int_equal(rf_pstate_thread_store_calls(), calls + 1);
	rf_pstate_read_window(was);
}

/* Threads that load an old snapshot while one of them reads it serve
 * the old one (no thundering herd; none waits for that read).  Every
 * snapshot is old (window 0), so were each load to read, there would be
 * exactly as many reads as loads; a read takes tens of microseconds and a
 * load that serves the snapshot a microsecond, so threads on two cores --
 * or preempted in the middle of a read -- find one on its way many times
 * over 4 x 2,000 loads.  What every load served is the snapshot with this
 * process's cooldown. */
#define HERD_THREADS 4
#define HERD_LOADS 2000

static void *
herd_main(void *arg)
{
	struct fixture *f = arg;
	long calls = rf_pstate_thread_store_calls();

	for (int i = 0; i < HERD_LOADS; i++)
		if (load1(f->s, "j1").cooldown_until_ms != T0 + 60000)
			return (void *)-1L;
	return (void *)(rf_pstate_thread_store_calls() - calls);
}

static void
test_one_thread_reads_an_old_snapshot(void **state)
{
	struct fixture *f = *state;
	int was;
	pthread_t th[HERD_THREADS];
	long reads = 0;

	rf_pstate_cooldown(f->s, "j1", T0 + 60000, "quota");
	(void)load1(f->s, "j1"); /* a snapshot exists */
	was = rf_pstate_read_window(0);
	for (int i = 0; i < HERD_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, herd_main, f), 0);
	for (int i = 0; i < HERD_THREADS; i++) {
		void *n;

		assert_int_equal(pthread_join(th[i], &n), 0);
		assert_true((long)n >= 0);
		reads += (long)n;
	}
	rf_pstate_read_window(was);
	print_message("reads %ld of %d loads\n", reads, HERD_THREADS * HERD_LOADS);
	assert_true(reads >= 1);
	assert_true(reads < HERD_THREADS * HERD_LOADS);
}

/* ---- a thread that never waits ---- */

/* Its writes go to the table and the writer at once: no store call on
 * the thread, and the store has them soon after; its streak is the one
 * the process knows.  Its load of an old snapshot asks the writer to read
 * it. */
static void
test_nowait_thread_never_calls_the_store(void **state)
{
	struct fixture *f = *state;
	int was = rf_pstate_read_window(50);
	int64_t until = INT64_MIN, seen = 0;
	long calls;

	assert_int_equal(rf_pstate_start(get_store), 0);
	rf_pstate_thread_nowait(true);
	calls = rf_pstate_thread_store_calls();
	assert_int_equal(rf_pstate_failed(f->s, "k1", "provider_rate_limited",
	    T0, T0 + 30000), 1);
	assert_int_equal(rf_pstate_failed(f->s, "k1", "provider_unavailable",
	    T0 + 1, 0), 2);
	rf_pstate_ok(f->s, "k2", T0);
	rf_pstate_quota(f->s, "k2", 0, 5, T0 + 9000, T0);
	rf_pstate_cooldown(f->s, "k2", T0 + 9000, "quota");
	assert_int_equal(load1(f->s, "k1").cooldown_until_ms, T0 + 30000);
	for (int i = 0; i < 500 && until != T0 + 9000; i++) {
		rf_sleep_ms(10);
		until = col(f, "k2", "cooldown_until_ms");
	}
	assert_int_equal(until, T0 + 9000);
	assert_int_equal(col(f, "k1", "consecutive_failures"), 2);
	assert_int_equal(col(f, "k1", "cooldown_until_ms"), T0 + 30000);
	assert_int_equal(col(f, "k2", "quota_remaining_requests"), 0);
	/* Another process's cooldown reaches a nowait load: the writer
	 * reads the old snapshot for it. */
	assert_int_equal(rf_store_provider_cooldown(f->s, "k1", T0 + 90000,
	    "quota"), 0);
	for (int i = 0; i < 500 && seen != T0 + 90000; i++) {
		rf_sleep_ms(10);
		seen = load1(f->s, "k1").cooldown_until_ms;
	}
	assert_int_equal(seen, T0 + 90000);
	assert_int_equal(rf_pstate_thread_store_calls(), calls);
	rf_pstate_thread_nowait(false);
	rf_pstate_stop(f->s, RF_PSTATE_WRITE_MS);
	rf_pstate_read_window(was);
	assert_int_equal(rf_pstate_waiting(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writes_through_when_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_store_never_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_view_wins_once_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_makes_waiting_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_says_what_is_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_within_window_reads_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_writes_seen_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_thread_reads_an_old_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nowait_thread_never_calls_the_store, setup, teardown),
	};

	return cmocka_run_group_tests_name("pstate", tests, NULL, NULL);
}
