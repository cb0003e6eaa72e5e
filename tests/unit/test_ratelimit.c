/* Unit tests of the per-client limit (src/ratelimit.c): the verdict and
 * Retry-After from the store's shared count; while another connection
 * holds the store's write lock, the same minute counted in memory from
 * what the store last said (refusing past the limit, never waiting), and
 * the requests counted meanwhile added to the store's count once it
 * answers again; without a store, memory only; a client that hammers is
 * never the one the full table forgets; plain CGI fails closed.
 *
 * The table is process-wide, so each test uses clients of its own.  Time
 * bounds are generous (a second against a 5 ms budget, where the store
 * used to wait 10 s): time is the subject here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ratelimit.h"
#include "store.h"
#include "util.h"

#define MINUTE 60000
#define T0 ((int64_t)1767268800000) /* a minute's first millisecond */
#define SECOND_BOUND_MS 1000

struct fixture {
	char dir[64];
	char path[128];
	struct rf_store *s;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/rf-rate-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/relayforge.db", f->dir);
	f->s = rf_store_open_pool(f->path, 2, err, sizeof err);
	if (f->s == NULL) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
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
	return 0;
}

/* The store's count of client (INT64_MIN: no row), read on a connection of
 * its own (reads pass the write lock: WAL). */
static int64_t
count_of(const struct fixture *f, const char *client)
{
	char sql[160];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = INT64_MIN;

	snprintf(sql, sizeof sql, "SELECT count FROM rate_limit"
	    " WHERE client = '%s'", client);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

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

static void
test_store_counts_and_verdict(void **state)
{
	struct fixture *f = *state;
	int64_t now = T0 + 30500;
	int ra = -1;

	for (int i = 0; i < 3; i++)
		assert_int_equal(rf_rate_hit(f->s, "10.0.0.1", 3, now, &ra), 1);
	assert_int_equal(ra, -1);
	assert_int_equal(rf_rate_hit(f->s, "10.0.0.1", 3, now, &ra), 0);
	assert_int_equal(ra, 30); /* ceil(29.5 s) to the minute's end */
	assert_int_equal(rf_rate_hit(f->s, "10.0.0.1", 3, T0 + 59999, &ra), 0);
	assert_int_equal(ra, 1);
	assert_int_equal(count_of(f, "10.0.0.1"), 5); /* refusals count too */
	/* Another client has its own count; the next minute starts again. */
	assert_int_equal(rf_rate_hit(f->s, "10.0.0.2", 3, now, &ra), 1);
	assert_int_equal(rf_rate_hit(f->s, "10.0.0.1", 3, T0 + MINUTE, &ra), 1);
	assert_int_equal(count_of(f, "10.0.0.1"), 1);
	/* A minute's first millisecond: a full minute to wait. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(rf_rate_hit(f->s, "c", 1, T0, &ra), i == 0);
	assert_int_equal(ra, 60);
	/* Limit 0 is off: always allowed, nothing counted. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(rf_rate_hit(f->s, "zero", 0, now, &ra), 1);
	assert_true(count_of(f, "zero") == INT64_MIN);
}

static void
test_locked_store_counts_in_memory(void **state)
{
	struct fixture *f = *state;
	int64_t now = T0 + 2 * MINUTE + 1000, t0;
	sqlite3 *lk;
	int ra = -1;

	/* Two requests counted by the store, two by another process. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(rf_rate_hit(f->s, "r2", 5, now, &ra), 1);
	assert_int_equal(rf_store_rate_count(f->s, "r2", 2, now), 4);
	assert_int_equal(rf_rate_hit(f->s, "r2", 5, now, &ra), 1); /* 5 */
	lk = lock_file(f);
	t0 = rf_mono_ms();
	/* The store said 5: this process refuses from there, at once. */
	assert_int_equal(rf_rate_hit(f->s, "r2", 5, now + 1, &ra), 0);
	assert_int_equal(ra, 59);
	assert_int_equal(rf_rate_hit(f->s, "r2", 5, now + 2, &ra), 0);
	/* Another client is counted in memory from zero. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(rf_rate_hit(f->s, "r3", 5, now, &ra), 1);
	assert_int_equal(rf_rate_hit(f->s, "r3", 5, now, &ra), 0);
	assert_true(rf_mono_ms() - t0 < SECOND_BOUND_MS);
	assert_int_equal(count_of(f, "r2"), 5);
	unlock_file(lk);
	/* Once the store is asked again, the requests counted here join its
	 * count: 5 + 2 for r2, 6 + 1 for r3. */
	rf_sleep_ms(RF_RATE_RETRY_MS + 100);
	assert_int_equal(rf_rate_hit(f->s, "r2", 5, now + 3, &ra), 0);
	assert_int_equal(count_of(f, "r2"), 8);
	assert_int_equal(rf_rate_hit(f->s, "r3", 5, now + 3, &ra), 0);
	assert_int_equal(count_of(f, "r3"), 7);
}

static void
test_without_store(void **state)
{
	int64_t now = T0 + 5 * MINUTE + 10;
	int ra = -1;

	(void)state;
	assert_int_equal(rf_rate_hit(NULL, "m1", 2, now, &ra), 1);
	assert_int_equal(rf_rate_hit(NULL, "m1", 2, now, &ra), 1);
	assert_int_equal(rf_rate_hit(NULL, "m1", 2, now + 1, &ra), 0);
	assert_int_equal(ra, 60);
	/* The next minute starts again. */
	assert_int_equal(rf_rate_hit(NULL, "m1", 2, now + MINUTE, &ra), 1);
	/* No address: one client, "unknown", still limited. */
	assert_int_equal(rf_rate_hit(NULL, NULL, 1, now, &ra), 1);
	assert_int_equal(rf_rate_hit(NULL, "", 1, now, &ra), 0);
}

/* The table is fixed: when it is full, the client with the fewest requests
 * makes room, never the one over its limit. */
static void
test_heavy_client_is_not_forgotten(void **state)
{
	int64_t now = T0 + 7 * MINUTE;
	char name[32], lng[200];
	int ra;

	(void)state;
	for (int i = 0; i < 3; i++)
		rf_rate_hit(NULL, "heavy", 2, now, &ra);
	for (int i = 0; i < 4 * RF_RATE_CLIENTS; i++) {
		snprintf(name, sizeof name, "light-%d", i);
		assert_int_equal(rf_rate_hit(NULL, name, 2, now, &ra), 1);
	}
	assert_int_equal(rf_rate_hit(NULL, "heavy", 2, now, &ra), 0);
	/* An address longer than the table keeps is told apart by its start. */
	memset(lng, 'a', sizeof lng - 1);
	lng[sizeof lng - 1] = '\0';
	assert_int_equal(rf_rate_hit(NULL, lng, 1, now, &ra), 1);
	assert_int_equal(rf_rate_hit(NULL, lng, 1, now, &ra), 0);
}

/* Plain CGI keeps no count between requests: a store that does not answer
 * refuses the request (Retry-After 1) rather than let every one through;
 * without any store, chat keeps working.  (Process-wide: the last test.) */
static void
test_single_request_fails_closed(void **state)
{
	struct fixture *f = *state;
	int64_t now = T0 + 9 * MINUTE, t0;
	sqlite3 *lk;
	int ra = -1;

	rf_rate_single_request();
	assert_int_equal(rf_rate_hit(f->s, "cgi", 5, now, &ra), 1);
	lk = lock_file(f);
	t0 = rf_mono_ms();
	assert_int_equal(rf_rate_hit(f->s, "cgi", 5, now, &ra), 0);
	assert_int_equal(ra, 1);
	assert_true(rf_mono_ms() - t0 < SECOND_BOUND_MS);
	unlock_file(lk);
	assert_int_equal(rf_rate_hit(NULL, "cgi-2", 5, now, &ra), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_counts_and_verdict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_store_counts_in_memory, setup, teardown),
		cmocka_unit_test(test_without_store),
		cmocka_unit_test(test_heavy_client_is_not_forgotten),
		cmocka_unit_test_setup_teardown(test_single_request_fails_closed, setup, teardown),
	};

	return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
