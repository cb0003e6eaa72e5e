/*
 * Unit tests of this process's live gauges (src/gauges.c): the open
 * streams count, the row a publication writes (named host:pid:start, the
 * same name for the process's whole life) and read back by the metrics
 * snapshot, and a publication that gives up on a locked store within its
 * 1 s budget instead of the store's 10 s busy wait (the bound asserted is
 * generous: 5 s; the subject here is time).
 */
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

#include "gauges.h"
#include "store.h"
#include "util.h"

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
	snprintf(f->dir, sizeof f->dir, "/tmp/rf-gauges-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/relayforge.db", f->dir);
	f->s = rf_store_open(f->path, err, sizeof err);
	if (f->s == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[200];

	rf_store_close(f->s);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_streams_and_the_published_row(void **state)
{
	struct fixture *f = *state;
	struct rf_process_gauges g;
	struct rf_metrics_snapshot m;
	char pid[32];
	const char *name = rf_gauges_process();

	/* host:pid:start, the same on every call. */
	snprintf(pid, sizeof pid, ":%ld:", (long)getpid());
	assert_non_null(strstr(name, pid));
	assert_ptr_equal(rf_gauges_process(), name);
	rf_gauges_read(&g);
	assert_int_equal(g.open_streams, 0);
	rf_gauges_stream_begin();
	rf_gauges_stream_begin();
	rf_gauges_stream_end();
	rf_gauges_read(&g);
	assert_int_equal(g.open_streams, 1);
	assert_int_equal(rf_gauges_publish(f->s, true), 0);
	assert_int_equal(rf_store_metrics(f->s, NULL, 0, rf_now_ms() -
	    RF_GAUGES_LIVE_MS, &m), 0);
	assert_int_equal(m.live.open_streams, 1);
	assert_int_equal(m.live_processes, 1);
	rf_store_metrics_free(&m);
	rf_gauges_stream_end();
	assert_int_equal(rf_gauges_publish(f->s, false), 0);
	assert_int_equal(rf_store_metrics(f->s, NULL, 0, 0, &m), 0);
	assert_int_equal(m.live.open_streams, 0);
	assert_int_equal(m.live_processes, 1); /* one row: the same name */
	rf_store_metrics_free(&m);
	assert_int_equal(rf_gauges_publish(NULL, true), -1);
}

static void
test_a_locked_store_is_not_waited_for(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db = NULL;
	int64_t t0;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	t0 = rf_mono_ms();
	assert_int_equal(rf_gauges_publish(f->s, true), -1);
	assert_true(rf_mono_ms() - t0 < 5000);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	/* The caller's budget is back as it was: the default (none). */
	assert_int_equal(rf_store_budget(0), 0);
	assert_int_equal(rf_gauges_publish(f->s, true), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_streams_and_the_published_row,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_locked_store_is_not_waited_for,
		    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
