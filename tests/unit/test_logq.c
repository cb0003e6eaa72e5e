/* Unit tests of logq: the spool's writer thread over a real store, both in
 * a mkdtemp directory.  Rows logged from several threads are all written,
 * with their attempts, by the time rf_logq_stop returns, and the spool is
 * gone; not running, a row is written on the caller's thread; while the
 * store is away rows wait in the spool (health: degraded, the count) and
 * are written once it is back (health: ok again -- nothing sticky); the
 * bound drops and counts; a bad row loses only itself; a spool left by a
 * stop with the store away, or by a killed process, is replayed by the
 * next start, each row once.
 *
 * Waits for the writer poll with a generous bound; nothing asserts a
 * duration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "logq.h"
#include "store.h"

#define THREADS 4
#define PER_THREAD 500
#define MAX_ATT 3

struct fixture {
	char dir[64];
	char path[128];
	char spool[128];
	struct rf_store *store;
};

/* What get_store hands to the writer: the store, or NULL while it is
 * "away" (store_on false). */
static struct rf_store *g_store;
static atomic_bool store_on = true;

static struct rf_store *
get_store(void)
{
	return atomic_load(&store_on) ? g_store : NULL;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256] = "";

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/rf-logq-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/relayforge.db", f->dir);
	snprintf(f->spool, sizeof(f->spool), "%s/relayforge.spool", f->dir);
	atomic_store(&store_on, true);
	f->store = rf_store_open_pool(f->path, 2, err, sizeof(err));
	if (f->store == NULL) {
		fprintf(stderr, "open failed: %s\n", err);
		rmdir(f->dir);
		free(f);
		return -1;
	}
	g_store = f->store;
	*state = f;
	return 0;
}

/* The .spool files in the spool directory (hidden ones too when all). */
static int
count_files(const struct fixture *f)
{
	DIR *d = opendir(f->spool);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".spool") != NULL)
			n++;
	closedir(d);
	return n;
}

static void
rm_spool(const struct fixture *f)
{
	DIR *d = opendir(f->spool);
	struct dirent *de;
	char p[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		snprintf(p, sizeof(p), "%s/%s", f->spool, de->d_name);
		if (de->d_name[0] != '.' || strstr(de->d_name, ".spool"))
			unlink(p);
	}
	closedir(d);
	rmdir(f->spool);
}

static int
start(const struct fixture *f, long max_rows)
{
	struct rf_spool_conf c = { f->spool, max_rows, 0 };

	return rf_logq_start(get_store, &c);
}

static long
db_count(const struct fixture *f, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long v = -1;

	if (sqlite3_open(f->path, &db) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static long
rows_now(const struct fixture *f)
{
	return db_count(f, "SELECT count(*) FROM requests");
}

/* Poll until the store holds n rows (10 s at most); the count. */
static long
wait_rows(const struct fixture *f, long n)
{
	long got = -1;

	for (int i = 0; i < 1000 && (got = rows_now(f)) != n; i++)
		usleep(10000);
	return got;
}

/* Poll until the health figure rows is n (10 s at most). */
static long
wait_spool_rows(long n)
{
	struct rf_logq_health h;

	for (int i = 0; i < 1000; i++) {
		rf_logq_health(&h);
		if (h.rows == n)
			break;
		usleep(10000);
	}
	return h.rows;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[160];

	rf_logq_stop(); /* a failed test may leave it running */
	rf_store_close(f->store);
	g_store = NULL;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rm_spool(f);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Entry i of writer t, built in the caller's buffers: request id "t-i",
 * i % 4 attempts, latencies that encode i. */
struct entry_buf {
	char rid[32];
	char model[32];
	struct rf_log_attempt att[MAX_ATT];
	struct rf_log_entry e;
};

static const char *const att_providers[MAX_ATT] = { "groq", "cerebras",
    "mock" };

static const struct rf_log_entry *
make_entry(struct entry_buf *b, int t, int i)
{
	size_t n = (size_t)(i % (MAX_ATT + 1));

	snprintf(b->rid, sizeof(b->rid), "%d-%d", t, i);
	snprintf(b->model, sizeof(b->model), "model-%d", i);
	for (size_t k = 0; k < n; k++)
		b->att[k] = (struct rf_log_attempt){ att_providers[k],
		    k + 1 == n ? "ok" : "provider_timeout", NULL,
		    k + 1 == n ? 200 : 0, i * 10 + (long)k, (int)k };
	b->e = (struct rf_log_entry){ .request_id = b->rid, .ts_ms = 1000 + i,
	    .endpoint = "chat", .strategy = "auto",
	    .attempted_provider = n > 0 ? "groq" : NULL,
	    .final_provider = n > 0 ? att_providers[n - 1] : NULL,
	    .success = n > 0, .error_code = n > 0 ? NULL : "provider_unavailable",
	    .http_status = n > 0 ? 200 : 502, .latency_ms = i, .ttft_ms = -1,
	    .model = b->model, .prompt_chars = 5, .prompt_tokens = -1,
	    .completion_tokens = -1, .attempts = b->att, .nattempts = n };
	return &b->e;
}

/* The row matches what make_entry built for its request id. */
static void
check_item(const struct rf_log_item *it, int *t, int *i)
{
	char model[32];
	size_t n;

	assert_int_equal(sscanf(it->e.request_id, "%d-%d", t, i), 2);
	n = (size_t)(*i % (MAX_ATT + 1));
	snprintf(model, sizeof(model), "model-%d", *i);
	assert_string_equal(it->e.model, model);
	assert_int_equal(it->e.latency_ms, *i);
	assert_int_equal(it->e.success, n > 0);
	assert_int_equal(it->e.nattempts, n);
	for (size_t k = 0; k < n; k++) {
		const struct rf_log_attempt *a = &it->e.attempts[k];

		assert_string_equal(a->provider, att_providers[k]);
		assert_string_equal(a->outcome, k + 1 == n ? "ok" :
		    "provider_timeout");
		assert_int_equal(a->latency_ms, *i * 10 + (long)k);
		assert_int_equal(a->retry, (int)k);
	}
}

/* Read every row back, page by page; mark seen[t * per + i] (each once).
 * Returns the number of rows. */
static size_t
read_all(struct rf_store *s, bool *seen, int threads, int per)
{
	struct rf_log_query q = { .limit = RF_LOG_PAGE_MAX };
	struct rf_log_page pg;
	size_t rows = 0;

	for (;;) {
		assert_int_equal(rf_store_logs(s, &q, &pg), 0);
		for (size_t k = 0; k < pg.nitems; k++, rows++) {
			int t, i;

			check_item(&pg.items[k], &t, &i);
			assert_true(t >= 0 && t < threads && i >= 0 && i < per);
			assert_false(seen[t * per + i]);
			seen[t * per + i] = true;
		}
		if (!pg.more)
			break;
		q.before_id = pg.items[pg.nitems - 1].id;
		rf_store_log_page_free(&pg);
	}
	rf_store_log_page_free(&pg);
	return rows;
}

/* Not running: the row is written on the caller's thread at once; a
 * failed direct write is counted and named by health until one works. */
static void
test_direct_when_not_running(void **state)
{
	struct fixture *f = *state;
	struct rf_logq_health h0, h;
	struct entry_buf b;

	rf_logq_stop(); /* not running: a no-op */
	rf_logq_health(&h0);
	assert_null(h0.problem);
	assert_int_equal(h0.rows, 0);
	assert_int_equal(rf_logq_log(f->store, make_entry(&b, 0, 1)), 0);
	assert_int_equal(rows_now(f), 1);
	assert_int_equal(rf_logq_log(NULL, make_entry(&b, 0, 2)), -1);
	rf_logq_health(&h);
	assert_int_equal(h.dropped, h0.dropped + 1);
	assert_non_null(h.problem);
	assert_int_equal(rf_logq_log(f->store, make_entry(&b, 0, 3)), 0);
	rf_logq_health(&h);
	assert_null(h.problem); /* not sticky */
	assert_int_equal(count_files(f), 0);
}

static void *
pusher(void *arg)
{
	int t = (int)(intptr_t)arg;
	struct entry_buf b;

	/* One buffer, rewritten for every entry: the row must be taken. */
	for (int i = 0; i < PER_THREAD; i++)
		if (rf_logq_log(NULL, make_entry(&b, t, i)) != 0)
			return (void *)1;
	memset(&b, 0, sizeof(b));
	return NULL;
}

static void
test_all_written_from_threads(void **state)
{
	struct fixture *f = *state;
	static bool seen[THREADS * PER_THREAD];
	pthread_t th[THREADS];
	struct rf_logq_health h0, h;

	rf_logq_health(&h0);
	assert_int_equal(start(f, 100000), 0);
	assert_int_equal(count_files(f), 1);
	for (intptr_t t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, pusher, (void *)t), 0);
	for (int t = 0; t < THREADS; t++) {
		void *rc;

		pthread_join(th[t], &rc);
		assert_null(rc);
	}
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, THREADS, PER_THREAD),
	    THREADS * PER_THREAD);
	for (size_t k = 0; k < THREADS * PER_THREAD; k++)
		assert_true(seen[k]);
	/* Drained: the spool file and its progress are gone. */
	assert_int_equal(count_files(f), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM spool_progress"), 0);
	rf_logq_health(&h);
	assert_int_equal(h.dropped, h0.dropped);
	assert_null(h.problem);
}

/* A start after a stop works again. */
static void
test_restart(void **state)
{
	struct fixture *f = *state;
	bool seen[4] = { false };
	struct entry_buf b;

	for (int round = 0; round < 2; round++) {
		assert_int_equal(start(f, 100), 0);
		assert_int_equal(rf_logq_log(NULL, make_entry(&b, 0, round * 2)), 0);
		assert_int_equal(rf_logq_log(NULL, make_entry(&b, 0, round * 2 + 1)), 0);
		rf_logq_stop();
	}
	assert_int_equal(read_all(f->store, seen, 1, 4), 4);
	assert_int_equal(count_files(f), 0);
}

/* The store away: rows wait in the spool and health says so; back: they
 * are written, and health is ok again. */
static void
test_rows_wait_for_the_store(void **state)
{
	struct fixture *f = *state;
	bool seen[10] = { false };
	struct rf_logq_health h;
	struct entry_buf b;

	atomic_store(&store_on, false);
	assert_int_equal(start(f, 100), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(rf_logq_log(NULL, make_entry(&b, 0, i)), 0);
	assert_int_equal(wait_spool_rows(10), 10);
	for (int i = 0; i < 1000; i++) { /* the writer has tried by now */
		rf_logq_health(&h);
		if (h.problem != NULL)
			break;
		usleep(10000);
	}
	assert_non_null(h.problem);
	assert_non_null(strstr(h.problem, "cannot write"));
	assert_int_equal(rows_now(f), 0);
	atomic_store(&store_on, true);
	assert_int_equal(wait_rows(f, 10), 10);
	assert_int_equal(wait_spool_rows(0), 0);
	rf_logq_health(&h);
	assert_null(h.problem);
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, 1, 10), 10);
}

/* max_rows wait; more are dropped and counted (never silently); once the
 * store is back the accepted ones are written. */
static void
test_bound(void **state)
{
	struct fixture *f = *state;
	bool seen[8] = { false };
	struct rf_logq_health h0, h;
	struct entry_buf b;

	rf_logq_health(&h0);
	atomic_store(&store_on, false);
	assert_int_equal(start(f, 5), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rf_logq_log(f->store, make_entry(&b, 0, i)), 0);
	/* full: dropped, not written around the spool */
	assert_int_equal(rf_logq_log(f->store, make_entry(&b, 0, 5)), -1);
	assert_int_equal(rf_logq_log(f->store, make_entry(&b, 0, 6)), -1);
	rf_logq_health(&h);
	assert_int_equal(h.rows, 5);
	assert_int_equal(h.dropped, h0.dropped + 2);
	assert_non_null(h.problem);
	atomic_store(&store_on, true);
	assert_int_equal(wait_spool_rows(0), 0);
	assert_int_equal(rf_logq_log(f->store, make_entry(&b, 0, 7)), 0);
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, 1, 8), 6);
	assert_false(seen[5] || seen[6]);
	rf_logq_health(&h);
	assert_int_equal(h.dropped, h0.dropped + 2);
	assert_null(h.problem);
}

/* A row the store refuses (request_id is NOT NULL in the schema) is lost
 * alone, and counted: the others of its batch are written. */
static void
test_bad_entry_loses_only_itself(void **state)
{
	struct fixture *f = *state;
	bool seen[5] = { false };
	struct rf_logq_health h0, h;
	struct entry_buf b;

	rf_logq_health(&h0);
	atomic_store(&store_on, false); /* so the five make one batch */
	assert_int_equal(start(f, 100), 0);
	for (int i = 0; i < 5; i++) {
		make_entry(&b, 0, i);
		if (i == 2)
			b.e.request_id = NULL;
		assert_int_equal(rf_logq_log(NULL, &b.e), 0);
	}
	atomic_store(&store_on, true);
	assert_int_equal(wait_rows(f, 4), 4);
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, 1, 5), 4);
	assert_false(seen[2]);
	rf_logq_health(&h);
	assert_int_equal(h.dropped, h0.dropped + 1);
}

/* Stopped while the store is away: the rows stay in the spool file; the
 * next start replays it (each row once) and removes it. */
static void
test_stop_leaves_the_spool_for_the_next_start(void **state)
{
	struct fixture *f = *state;
	bool seen[6] = { false };
	struct entry_buf b;

	atomic_store(&store_on, false);
	assert_int_equal(start(f, 100), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rf_logq_log(NULL, make_entry(&b, 0, i)), 0);
	rf_logq_stop();
	assert_int_equal(count_files(f), 1);
	assert_int_equal(rows_now(f), 0);
	atomic_store(&store_on, true);
	assert_int_equal(start(f, 100), 0);
	assert_int_equal(rf_logq_log(NULL, make_entry(&b, 0, 4)), 0);
	assert_int_equal(rf_logq_log(NULL, make_entry(&b, 0, 5)), 0);
	assert_int_equal(wait_rows(f, 6), 6);
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, 1, 6), 6);
	assert_int_equal(count_files(f), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM spool_progress"), 0);
}

/* A process killed with rows in its spool: the next start replays them,
 * and health counts them while they wait. */
static void
test_killed_process_replayed_at_start(void **state)
{
	struct fixture *f = *state;
	static bool seen[300];
	pid_t pid;
	int st;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rf_spool_conf c = { f->spool, 1000, 0 };
		char err[256];
		struct rf_spool *sp = rf_spool_open(&c, err, sizeof(err));
		struct entry_buf b;

		for (int i = 0; sp != NULL && i < 300; i++)
			if (rf_spool_append(sp, make_entry(&b, 0, i)) != 0)
				_exit(3);
		raise(SIGKILL);
		_exit(sp == NULL ? 2 : 4);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(count_files(f), 1);
	atomic_store(&store_on, false); /* hold the replay: rows are counted */
	assert_int_equal(start(f, 100), 0);
	atomic_store(&store_on, true);
	assert_int_equal(wait_rows(f, 300), 300);
	assert_int_equal(wait_spool_rows(0), 0);
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, 1, 300), 300);
	assert_int_equal(count_files(f), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_direct_when_not_running,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_written_from_threads,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_wait_for_the_store,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_entry_loses_only_itself,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stop_leaves_the_spool_for_the_next_start, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_killed_process_replayed_at_start, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
