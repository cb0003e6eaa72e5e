/*
 * Unit tests of the store: schema and migrations (also several processes
 * opening one fresh file at once), the request log with its attempt trail
 * and per-minute rollup, all-or-nothing writes, concurrent writers
 * (processes and threads), provider state, the rate limit and ping.
 * Each test works in its own mkdtemp directory under /tmp; a separate raw
 * sqlite3 connection checks what was written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "schema.h"
#include "store.h"

#define MINUTE 60000
#define T0 ((int64_t)1767268800000) /* 2026-01-01T12:00:00.000Z */
#define MIGRATION_ROUNDS 10

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/rf-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof f->path, "%s/relayforge.db", f->dir);
	*state = f;
	return 0;
}

/* Unlink a database file and its WAL companions. */
static void remove_db(const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[200];

	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		unlink(p);
	}
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

	remove_db(f->path);
	for (int round = 0; round < MIGRATION_ROUNDS; round++) {
		snprintf(p, sizeof p, "%s/mig%d.db", f->dir, round);
		remove_db(p); /* left behind when a migration round failed */
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- raw checks through a separate connection ---- */

static int64_t q_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = INT64_MIN;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -999 :
		    sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* First column of the first row as text ("<null>" for NULL, "" for none). */
static void q_text(const char *path, const char *sql, char *out, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(out, n, "%s", t != NULL ? (const char *)t : "<null>");
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static struct rf_store *open_ok(const char *path)
{
	char err[256] = "";
	struct rf_store *s = rf_store_open(path, err, sizeof err);

	if (s == NULL)
		fprintf(stderr, "open failed: %s\n", err);
	assert_non_null(s);
	return s;
}

static const struct rf_log_attempt three_attempts[] = {
	{ "groq", "provider_rate_limited", NULL, 429, 31, 0 },
	{ "sambanova", "skipped", "unconfigured", 0, -1, 0 },
	{ "openrouter", "ok", NULL, 200, 790, 1 },
};

static struct rf_log_entry sample_entry(int64_t ts)
{
	struct rf_log_entry e = {
		.request_id = "req-1", .ts_ms = ts, .endpoint = "chat",
		.strategy = "auto", .attempted_provider = "groq",
		.final_provider = "openrouter", .fallback = true,
		.degraded = true, .demo = false, .success = true,
		.error_code = NULL, .http_status = 200, .latency_ms = 842,
		.ttft_ms = 120, .model = "m-1", .prompt_chars = 43,
		.prompt_tokens = 12, .completion_tokens = 80,
		.source = "relayforge-web", .prompt_preview = "Explain",
		.partial_chars = 0, .skipped_chunks = 2, .restarts = 1,
		.streamed = "groq,openrouter", .attempts = three_attempts,
		.nattempts = 3,
	};
	return e;
}

/* The version PRAGMA at the end of the compiled schema text. */
static long schema_file_version(void)
{
	const char *p = strstr(rf_schema_sql, "PRAGMA user_version = ");

	assert_non_null(p);
	return strtol(p + strlen("PRAGMA user_version = "), NULL, 10);
}

/* ---- schema and open ---- */

static void test_open_creates_schema(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	char mode[16];

	assert_int_equal(schema_file_version(), 1);
	assert_int_equal(q_int(f->path, "PRAGMA user_version"),
	    schema_file_version());
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM sqlite_master"
	    " WHERE type = 'table' AND name IN ('requests', 'attempts',"
	    " 'provider_state', 'rate_limit', 'usage_minute')"), 5);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM sqlite_master"
	    " WHERE type = 'index' AND tbl_name = 'requests'"
	    " AND sql IS NOT NULL"), 2);
	assert_int_equal(q_int(f->path, "PRAGMA auto_vacuum"), 2);
	q_text(f->path, "PRAGMA journal_mode", mode, sizeof mode);
	assert_string_equal(mode, "wal");
	assert_int_equal(rf_store_ping(s), 0);
	rf_store_close(s);
	rf_store_close(NULL);
}

static void test_open_bad_path(void **state)
{
	struct fixture *f = *state;
	char path[200], err[256] = "";

	snprintf(path, sizeof path, "%s/missing/dir/x.db", f->dir);
	assert_null(rf_store_open(path, err, sizeof err));
	assert_non_null(strstr(err, "cannot open"));
	assert_non_null(strstr(err, path));
}

static void test_reopen_idempotent(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	struct rf_log_entry e = sample_entry(T0);

	assert_int_equal(rf_store_log_request(s, &e), 0);
	rf_store_close(s);
	s = open_ok(f->path);
	assert_int_equal(q_int(f->path, "PRAGMA user_version"), 1);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM requests"), 1);
	assert_int_equal(rf_store_log_request(s, &e), 0);
	rf_store_close(s);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM requests"), 2);
	assert_int_equal(q_int(f->path, "PRAGMA auto_vacuum"), 2);
}

/* ---- log_request ---- */

static void test_log_request_values(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	struct rf_log_entry e = sample_entry(T0 + 1234);
	char t[128];
	const char *p = f->path;

	assert_int_equal(rf_store_log_request(s, &e), 0);
	assert_int_equal(q_int(p, "SELECT count(*) FROM requests"), 1);
	q_text(p, "SELECT request_id || '|' || ts_ms || '|' || endpoint || '|'"
	    " || strategy || '|' || attempted_provider || '|' || final_provider"
	    " || '|' || fallback || degraded || demo || '|' || status"
	    " || '|' || http_status || '|' || latency_ms || '|' || ttft_ms"
	    " || '|' || model || '|' || prompt_chars FROM requests", t, sizeof t);
	assert_string_equal(t, "req-1|1767268801234|chat|auto|groq|openrouter"
	    "|110|success|200|842|120|m-1|43");
	q_text(p, "SELECT prompt_tokens || '|' || completion_tokens || '|'"
	    " || source || '|' || prompt_preview || '|' || partial_chars"
	    " || '|' || skipped_chunks || '|' || restarts || '|' || streamed"
	    " FROM requests", t, sizeof t);
	assert_string_equal(t, "12|80|relayforge-web|Explain|0|2|1|"
	    "groq,openrouter");
	assert_int_equal(q_int(p, "SELECT error_code FROM requests"), -999);

	assert_int_equal(q_int(p, "SELECT count(*) FROM attempts WHERE"
	    " request_id = (SELECT id FROM requests)"), 3);
	q_text(p, "SELECT group_concat(seq || ':' || provider || ':' || outcome"
	    " || ':' || coalesce(reason, '-') || ':' || coalesce(http_status, '-')"
	    " || ':' || coalesce(latency_ms, '-') || ':' || retry, ' ')"
	    " FROM (SELECT * FROM attempts ORDER BY seq)", t, sizeof t);
	assert_string_equal(t, "0:groq:provider_rate_limited:-:429:31:0 "
	    "1:sambanova:skipped:unconfigured:-:-:0 "
	    "2:openrouter:ok:-:200:790:1");

	q_text(p, "SELECT minute_ms || '|' || provider || '|' || requests || '|'"
	    " || successes || '|' || errors || '|' || fallbacks || '|'"
	    " || latency_sum || '|' || prompt_tokens || '|' || completion_tokens"
	    " FROM usage_minute", t, sizeof t);
	assert_string_equal(t, "1767268800000|openrouter|1|1|0|1|842|12|80");
	rf_store_close(s);
}

static void test_usage_rollup_accumulates(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	struct rf_log_entry e = sample_entry(T0 + 5000);
	char t[128];

	assert_int_equal(rf_store_log_request(s, &e), 0);
	e.ts_ms = T0 + 59999;
	e.success = false;
	e.error_code = "provider_timeout";
	e.fallback = false;
	e.latency_ms = 100;
	e.prompt_tokens = -1;
	e.completion_tokens = 5;
	assert_int_equal(rf_store_log_request(s, &e), 0);
	e.ts_ms = T0 + MINUTE; /* next minute: a new bucket */
	assert_int_equal(rf_store_log_request(s, &e), 0);
	q_text(f->path, "SELECT requests || '|' || successes || '|' || errors"
	    " || '|' || fallbacks || '|' || latency_sum || '|' || prompt_tokens"
	    " || '|' || completion_tokens FROM usage_minute WHERE minute_ms = "
	    "1767268800000 AND provider = 'openrouter'", t, sizeof t);
	assert_string_equal(t, "2|1|1|1|942|12|85");
	assert_int_equal(q_int(f->path, "SELECT requests FROM usage_minute"
	    " WHERE minute_ms = 1767268860000"), 1);
	rf_store_close(s);
}

static void test_log_null_mappings(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	struct rf_log_attempt a = { "mock", "skipped", NULL, 0, -1, 0 };
	struct rf_log_entry e = {
		.request_id = "r2", .ts_ms = T0, .endpoint = "stream",
		.strategy = "auto", .success = false,
		.error_code = "provider_unavailable", .http_status = 502,
		.latency_ms = 3, .ttft_ms = -1, .prompt_chars = 5,
		.prompt_tokens = -1, .completion_tokens = -1,
		.attempts = &a, .nattempts = 1,
	};
	char t[128];
	const char *p = f->path;

	assert_int_equal(rf_store_log_request(s, &e), 0);
	q_text(p, "SELECT quote(attempted_provider) || quote(final_provider)"
	    " || quote(ttft_ms) || quote(model) || quote(prompt_tokens)"
	    " || quote(completion_tokens) || quote(source)"
	    " || quote(prompt_preview) || quote(streamed) || '|' || status"
	    " || '|' || error_code FROM requests", t, sizeof t);
	assert_string_equal(t, "NULLNULLNULLNULLNULLNULLNULLNULLNULL|error|"
	    "provider_unavailable");
	q_text(p, "SELECT quote(reason) || quote(http_status)"
	    " || quote(latency_ms) FROM attempts", t, sizeof t);
	assert_string_equal(t, "NULLNULLNULL");
	q_text(p, "SELECT quote(provider) || '|' || requests || errors"
	    " || prompt_tokens || completion_tokens FROM usage_minute", t,
	    sizeof t);
	assert_string_equal(t, "''|1100");
	rf_store_close(s);
}

static void test_log_failure_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	struct rf_log_entry e = sample_entry(T0);
	struct rf_log_attempt bad[2] = {
		{ "groq", "provider_unavailable", NULL, 503, 10, 0 },
		{ NULL, "ok", NULL, 200, 10, 0 }, /* NOT NULL provider fails */
	};
	const char *p = f->path;

	assert_int_equal(rf_store_log_request(s, &e), 0);
	e.attempts = bad;
	e.nattempts = 2;
	assert_int_equal(rf_store_log_request(s, &e), -1);
	assert_int_equal(q_int(p, "SELECT count(*) FROM requests"), 1);
	assert_int_equal(q_int(p, "SELECT count(*) FROM attempts"), 3);
	assert_int_equal(q_int(p, "SELECT sum(requests) FROM usage_minute"), 1);

	e.attempts = three_attempts; /* a request column breaking NOT NULL */
	e.nattempts = 3;
	e.endpoint = NULL;
	assert_int_equal(rf_store_log_request(s, &e), -1);
	assert_int_equal(q_int(p, "SELECT count(*) FROM requests"), 1);

	e.endpoint = "chat"; /* the connection is usable afterwards */
	assert_int_equal(rf_store_log_request(s, &e), 0);
	assert_int_equal(q_int(p, "SELECT count(*) FROM requests"), 2);
	assert_int_equal(q_int(p, "SELECT count(*) FROM attempts"), 6);
	assert_int_equal(q_int(p, "SELECT sum(requests) FROM usage_minute"), 2);
	assert_int_equal(rf_store_log_request(NULL, &e), -1);
	rf_store_close(s);
}

static void test_delete_cascades(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	struct rf_log_entry e = sample_entry(T0);
	sqlite3 *db;

	assert_int_equal(rf_store_log_request(s, &e), 0);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON;"
	    " DELETE FROM requests", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM attempts"), 0);
	rf_store_close(s);
}

/* ---- concurrency ---- */

#define WORKERS 4
#define PER_WORKER 50

/* Open the store (migrating a fresh file, racing the others) and log n
 * requests; 0 when all succeeded. */
static int worker_run(const char *path, int who, int n)
{
	char err[256] = "", rid[32];
	struct rf_store *s = rf_store_open(path, err, sizeof err);
	struct rf_log_entry e = sample_entry(T0);
	int failures = 0;

	if (s == NULL) {
		fprintf(stderr, "worker %d: %s\n", who, err);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		snprintf(rid, sizeof rid, "w%d-%d", who, i);
		e.request_id = rid;
		e.ts_ms = T0 + (int64_t)i * 1000;
		failures += rf_store_log_request(s, &e) != 0;
	}
	rf_store_close(s);
	return failures != 0;
}

/* Fork WORKERS children that wait on a pipe so they start together. */
static void fork_workers(const char *path, int n)
{
	int gate[2], status, failed = 0;
	pid_t pids[WORKERS];
	char c;

	assert_int_equal(pipe(gate), 0);
	for (int i = 0; i < WORKERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(gate[1]);
			(void)!read(gate[0], &c, 1); /* EOF: go */
			_exit(worker_run(path, i, n));
		}
	}
	close(gate[0]);
	close(gate[1]);
	/* Reap every child before asserting, so none outlives the test. */
	for (int i = 0; i < WORKERS; i++) {
		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	assert_int_equal(failed, 0);
}

static void test_concurrent_migration_processes(void **state)
{
	struct fixture *f = *state;
	char path[160];

	/* Several rounds on fresh files: the race is in the first moments. */
	for (int round = 0; round < MIGRATION_ROUNDS; round++) {
		snprintf(path, sizeof path, "%s/mig%d.db", f->dir, round);
		fork_workers(path, 0);
		assert_int_equal(q_int(path, "PRAGMA user_version"), 1);
		assert_int_equal(q_int(path, "PRAGMA auto_vacuum"), 2);
		fork_workers(path, 1);
		assert_int_equal(q_int(path, "SELECT count(*) FROM requests"),
		    WORKERS);
		remove_db(path);
	}
}

static void test_concurrent_processes(void **state)
{
	struct fixture *f = *state;

	fork_workers(f->path, PER_WORKER);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM requests"),
	    WORKERS * PER_WORKER);
	assert_int_equal(q_int(f->path, "SELECT count(DISTINCT request_id)"
	    " FROM requests"), WORKERS * PER_WORKER);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM attempts"),
	    3 * WORKERS * PER_WORKER);
	assert_int_equal(q_int(f->path, "SELECT sum(requests) FROM"
	    " usage_minute"), WORKERS * PER_WORKER);
}

struct thread_arg {
	const char *path;
	int who;
	int rc;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;

	a->rc = worker_run(a->path, a->who, PER_WORKER);
	return NULL;
}

static void test_concurrent_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t th[WORKERS];
	struct thread_arg args[WORKERS];

	for (int i = 0; i < WORKERS; i++) {
		args[i] = (struct thread_arg){ f->path, i, -1 };
		assert_int_equal(pthread_create(&th[i], NULL, thread_main,
		    &args[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].rc, 0);
	}
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM requests"),
	    WORKERS * PER_WORKER);
	assert_int_equal(q_int(f->path, "SELECT sum(requests) FROM"
	    " usage_minute"), WORKERS * PER_WORKER);
}

/* ---- provider state ---- */

static struct rf_provider_state state_of(struct rf_store *s, const char *id)
{
	struct rf_provider_state st = { -1, -1 };
	const char *ids[1] = { id };

	assert_int_equal(rf_store_provider_states(s, ids, 1, &st), 0);
	return st;
}

static void test_provider_threshold_and_ok(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	struct rf_provider_state st;
	char t[64];

	st = state_of(s, "groq"); /* unknown: zeroed */
	assert_int_equal(st.cooldown_until_ms, 0);
	assert_int_equal(st.consecutive_failures, 0);
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(rf_store_provider_failed(s, "groq",
		    "provider_unavailable", T0 + i, 0, 3, 30000), 0);
		st = state_of(s, "groq");
		assert_int_equal(st.consecutive_failures, i);
		assert_int_equal(st.cooldown_until_ms, 0);
	}
	assert_int_equal(rf_store_provider_failed(s, "groq", "provider_timeout",
	    T0 + 3, 0, 3, 30000), 0);
	st = state_of(s, "groq");
	assert_int_equal(st.consecutive_failures, 3);
	assert_int_equal(st.cooldown_until_ms, T0 + 3 + 30000);
	q_text(f->path, "SELECT cooldown_reason || '|' || last_error_code || '|'"
	    " || last_error_ms FROM provider_state", t, sizeof t);
	assert_string_equal(t, "failure_threshold|provider_timeout|"
	    "1767268800003");

	assert_int_equal(rf_store_provider_ok(s, "groq", T0 + 9), 0);
	st = state_of(s, "groq");
	assert_int_equal(st.consecutive_failures, 0);
	assert_int_equal(st.cooldown_until_ms, 0);
	assert_int_equal(q_int(f->path, "SELECT last_success_ms FROM"
	    " provider_state WHERE provider = 'groq'"), T0 + 9);
	assert_int_equal(q_int(f->path, "SELECT cooldown_reason FROM"
	    " provider_state WHERE provider = 'groq'"), -999);
	rf_store_close(s);
}

static void test_provider_explicit_cooldown_max(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	const char *ids[3] = { "gemini", "nobody", "groq" };
	struct rf_provider_state st[3];
	char t[64];

	assert_int_equal(rf_store_provider_failed(s, "gemini",
	    "provider_rate_limited", T0, T0 + 5000, 3, 30000), 0);
	assert_int_equal(state_of(s, "gemini").cooldown_until_ms, T0 + 5000);
	/* A shorter cooldown never shortens the current one. */
	assert_int_equal(rf_store_provider_failed(s, "gemini",
	    "provider_auth_failed", T0 + 1, T0 + 1000, 3, 30000), 0);
	assert_int_equal(state_of(s, "gemini").cooldown_until_ms, T0 + 5000);
	q_text(f->path, "SELECT cooldown_reason || '|' || last_error_code FROM"
	    " provider_state", t, sizeof t);
	assert_string_equal(t, "provider_rate_limited|provider_auth_failed");
	/* The third failure reaches the threshold, but the explicit (longer)
	 * cooldown wins over now + cooldown_ms. */
	assert_int_equal(rf_store_provider_failed(s, "gemini",
	    "provider_auth_failed", T0 + 2, T0 + 600000, 3, 30000), 0);
	assert_int_equal(state_of(s, "gemini").cooldown_until_ms, T0 + 600000);
	assert_int_equal(rf_store_provider_failed(s, "groq", "x", T0, 0, 0,
	    30000), 0); /* threshold 0: no threshold cooldown */

	assert_int_equal(rf_store_provider_states(s, ids, 3, st), 0);
	assert_int_equal(st[0].cooldown_until_ms, T0 + 600000);
	assert_int_equal(st[0].consecutive_failures, 3);
	assert_int_equal(st[1].cooldown_until_ms, 0);
	assert_int_equal(st[1].consecutive_failures, 0);
	assert_int_equal(st[2].cooldown_until_ms, 0);
	assert_int_equal(st[2].consecutive_failures, 1);
	rf_store_close(s);
}

static void test_provider_quota(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	char t[96];
	const char *p = f->path;

	/* Remaining > 0: figures stored, no cooldown. */
	assert_int_equal(rf_store_provider_quota(s, "cerebras", 10, 5000,
	    T0 + 20000, T0), 0);
	assert_int_equal(state_of(s, "cerebras").cooldown_until_ms, 0);
	q_text(p, "SELECT quota_remaining_requests || '|' ||"
	    " quota_remaining_tokens || '|' || quota_reset_ms FROM"
	    " provider_state", t, sizeof t);
	assert_string_equal(t, "10|5000|1767268820000");
	/* Requests exhausted: cooldown until the reset. */
	assert_int_equal(rf_store_provider_quota(s, "cerebras", 0, -1,
	    T0 + 20000, T0), 0);
	assert_int_equal(state_of(s, "cerebras").cooldown_until_ms, T0 + 20000);
	q_text(p, "SELECT cooldown_reason || '|' || quota_remaining_requests"
	    " || '|' || quote(quota_remaining_tokens) FROM provider_state", t,
	    sizeof t);
	assert_string_equal(t, "quota|0|NULL");
	/* Later figures with tokens left keep the cooldown. */
	assert_int_equal(rf_store_provider_quota(s, "cerebras", 3, 100,
	    T0 + 10000, T0 + 1), 0);
	assert_int_equal(state_of(s, "cerebras").cooldown_until_ms, T0 + 20000);
	/* Tokens exhausted, but the reset is already past: no cooldown. */
	assert_int_equal(rf_store_provider_quota(s, "groq", 5, 0, T0 - 1, T0),
	    0);
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, 0);
	assert_int_equal(rf_store_provider_quota(s, "groq", 5, 0, T0 + 7000,
	    T0), 0);
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, T0 + 7000);
	rf_store_close(s);
}

/* ---- rate limit and ping ---- */

static void test_rate_limit(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);
	int64_t now = T0 + 30500;
	int ra = -1;

	for (int i = 0; i < 3; i++)
		assert_int_equal(rf_store_rate_hit(s, "10.0.0.1", 3, now, &ra), 1);
	assert_int_equal(ra, -1);
	assert_int_equal(rf_store_rate_hit(s, "10.0.0.1", 3, now, &ra), 0);
	assert_int_equal(ra, 30); /* ceil(29.5 s) to the window's end */
	assert_int_equal(rf_store_rate_hit(s, "10.0.0.1", 3, T0 + 59999, &ra),
	    0);
	assert_int_equal(ra, 1);
	assert_true(ra >= 1 && ra <= 60);
	/* Another client has its own count. */
	assert_int_equal(rf_store_rate_hit(s, "10.0.0.2", 3, now, &ra), 1);
	/* The next window starts again, and the old window's row is gone. */
	assert_int_equal(rf_store_rate_hit(s, "10.0.0.1", 3, T0 + MINUTE, &ra),
	    1);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM rate_limit"
	    " WHERE client = '10.0.0.1'"), 1);
	assert_int_equal(q_int(f->path, "SELECT count FROM rate_limit"
	    " WHERE client = '10.0.0.1'"), 1);
	/* Limit 0 is off: always allowed, nothing stored. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(rf_store_rate_hit(s, "zero", 0, now, &ra), 1);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM rate_limit"
	    " WHERE client = 'zero'"), 0);
	/* A window's first millisecond: a full minute to wait. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(rf_store_rate_hit(s, "c", 1, T0, &ra), i == 0);
	assert_int_equal(ra, 60);
	assert_int_equal(rf_store_rate_hit(NULL, "c", 1, T0, &ra), -1);
	rf_store_close(s);
}

static void test_ping(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f->path);

	for (int i = 0; i < 3; i++)
		assert_int_equal(rf_store_ping(s), 0);
	assert_int_equal(rf_store_ping(NULL), -1);
	rf_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_bad_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_request_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_rollup_accumulates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_null_mappings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_failure_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_cascades, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_migration_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_threshold_and_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_explicit_cooldown_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
