/* Unit tests of logq: the writer thread over a real store in a mkdtemp
 * directory.  Entries pushed from several threads are all written, with
 * their attempts, by the time rf_logq_stop returns; pushes are refused when
 * the writer is not running; with no store the queued entries are lost and
 * rf_logq_failed() says so, while a bad entry in a batch loses only itself;
 * and the queue holds RF_LOGQ_MAX entries, no more (made full on purpose by
 * a get_store that blocks the writer until the test lets it go).
 *
 * rf_logq_failed() never turns back to false in a process, so the tests
 * that expect it false run first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logq.h"
#include "store.h"

#define THREADS 4
#define PER_THREAD 500
#define MAX_ATT 3

struct fixture {
	char dir[64];
	char path[128];
	struct rf_store *store;
};

/* What the get_store functions hand to the writer. */
static struct rf_store *g_store;

static struct rf_store *
get_store(void)
{
	return g_store;
}

static struct rf_store *
get_no_store(void)
{
	return NULL;
}

/* A get_store that holds the writer until released. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_entered, gate_open;

static struct rf_store *
get_store_gated(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_entered = true;
	pthread_cond_broadcast(&gate_cond);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	return g_store;
}

static void
gate_wait_entered(void)
{
	pthread_mutex_lock(&gate_lock);
	while (!gate_entered)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static void
gate_reset(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_entered = gate_open = false;
	pthread_mutex_unlock(&gate_lock);
}

static void
gate_release(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
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

static void
test_push_refused_when_not_running(void **state)
{
	struct entry_buf b;

	(void)state;
	rf_logq_stop(); /* not running: a no-op */
	assert_int_equal(rf_logq_push(make_entry(&b, 0, 1)), -1);
	assert_false(rf_logq_failed());
}

static void *
pusher(void *arg)
{
	int t = (int)(intptr_t)arg;
	struct entry_buf b;

	/* One buffer, rewritten for every entry: logq must have copied. */
	for (int i = 0; i < PER_THREAD; i++)
		if (rf_logq_push(make_entry(&b, t, i)) != 0)
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
	struct entry_buf b;

	assert_int_equal(rf_logq_start(get_store), 0);
	for (intptr_t t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, pusher, (void *)t), 0);
	for (int t = 0; t < THREADS; t++) {
		void *rc;

		pthread_join(th[t], &rc);
		assert_null(rc);
	}
	rf_logq_stop();
	/* stopped: refused again, and everything pushed is in the store */
	assert_int_equal(rf_logq_push(make_entry(&b, 0, 1)), -1);
	assert_int_equal(read_all(f->store, seen, THREADS, PER_THREAD),
	    THREADS * PER_THREAD);
	for (size_t k = 0; k < THREADS * PER_THREAD; k++)
		assert_true(seen[k]);
	assert_false(rf_logq_failed());
}

/* A start after a stop works again (main starts once, but nothing in logq
 * depends on it). */
static void
test_restart(void **state)
{
	struct fixture *f = *state;
	bool seen[4] = { false };
	struct entry_buf b;

	for (int round = 0; round < 2; round++) {
		assert_int_equal(rf_logq_start(get_store), 0);
		assert_int_equal(rf_logq_push(make_entry(&b, 0, round * 2)), 0);
		assert_int_equal(rf_logq_push(make_entry(&b, 0, round * 2 + 1)), 0);
		rf_logq_stop();
	}
	assert_int_equal(read_all(f->store, seen, 1, 4), 4);
	assert_false(rf_logq_failed());
}

/* The queue holds RF_LOGQ_MAX entries while the writer is held; one more
 * is refused; once the writer goes on, every accepted entry is written. */
static void
test_bound(void **state)
{
	struct fixture *f = *state;
	bool *seen = calloc(RF_LOGQ_MAX + 1, sizeof(*seen));
	struct entry_buf b;

	assert_non_null(seen);
	gate_reset();
	assert_int_equal(rf_logq_start(get_store_gated), 0);
	/* The writer takes this one off the queue, then waits in get_store. */
	assert_int_equal(rf_logq_push(make_entry(&b, 0, 0)), 0);
	gate_wait_entered();
	for (int i = 1; i <= RF_LOGQ_MAX; i++)
		assert_int_equal(rf_logq_push(make_entry(&b, 0, i)), 0);
	assert_int_equal(rf_logq_push(make_entry(&b, 0, RF_LOGQ_MAX + 1)), -1);
	gate_release();
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, 1, RF_LOGQ_MAX + 1),
	    RF_LOGQ_MAX + 1);
	assert_false(rf_logq_failed());
	free(seen);
}

/* An entry the store refuses (request_id is NOT NULL in the schema) is
 * lost alone: the others of its batch are written one by one. */
static void
test_bad_entry_loses_only_itself(void **state)
{
	struct fixture *f = *state;
	bool seen[5] = { false };
	struct entry_buf b;

	assert_false(rf_logq_failed());
	gate_reset();
	assert_int_equal(rf_logq_start(get_store_gated), 0);
	/* hold the writer on the first entry so the other four, the bad one
	 * among them, make one batch */
	assert_int_equal(rf_logq_push(make_entry(&b, 0, 0)), 0);
	gate_wait_entered();
	for (int i = 1; i < 5; i++) {
		make_entry(&b, 0, i);
		if (i == 2)
			b.e.request_id = NULL;
		assert_int_equal(rf_logq_push(&b.e), 0);
	}
	gate_release();
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, 1, 5), 4);
	assert_false(seen[2]);
	assert_true(rf_logq_failed());
}

/* With no store, what was queued is dropped (counted as failed), the
 * queue goes on, and it writes again once there is a store. */
static void
test_no_store(void **state)
{
	struct fixture *f = *state;
	bool seen[12] = { false };
	struct entry_buf b;

	assert_int_equal(rf_logq_start(get_no_store), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(rf_logq_push(make_entry(&b, 0, i)), 0);
	rf_logq_stop();
	assert_true(rf_logq_failed());
	assert_int_equal(read_all(f->store, seen, 1, 12), 0);
	assert_int_equal(rf_logq_start(get_store), 0);
	assert_int_equal(rf_logq_push(make_entry(&b, 0, 10)), 0);
	assert_int_equal(rf_logq_push(make_entry(&b, 0, 11)), 0);
	rf_logq_stop();
	assert_int_equal(read_all(f->store, seen, 1, 12), 2);
	assert_true(seen[10] && seen[11]);
	assert_true(rf_logq_failed()); /* for the rest of the process */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_push_refused_when_not_running,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_written_from_threads,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		/* these two turn rf_logq_failed() true: keep them last */
		cmocka_unit_test_setup_teardown(test_bad_entry_loses_only_itself,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
