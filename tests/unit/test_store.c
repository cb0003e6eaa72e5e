/*
 * Unit tests of the store, in four groups:
 *  - the contract every backend keeps, run once per row of backends[]
 *    (SQLite always; PostgreSQL when RF_TEST_PG_URI names a database, as
 *    tests/run.sh does through tests/pgcluster.py, each test in a fresh
 *    schema of it): the request log with its attempt trail and
 *    rollups, all-or-nothing writes, concurrent writers (processes and
 *    threads), provider state (with the engine's threshold and quota
 *    decisions applied as src/chain.c applies them), the rate limit, ping,
 *    the status / logs / usage reads (a client hang-up counted as
 *    cancelled, never as an error), the spool's slots (exactly once), the
 *    node of each row, retention, copying a store, and the metrics:
 *    cumulative totals that neither a failed batch, a refused spooled row,
 *    retention nor a reopened store changes, and the processes' live
 *    gauges;
 *  - what the SQLite file itself must be: schema and migrations (also
 *    several processes opening one fresh file at once, and a version-2
 *    file whose hang-ups move to cancelled), WAL, pages given back by
 *    maintenance;
 *  - what PostgreSQL adds: its schema and migration under an advisory
 *    lock, a call's budget against a held lock, reconnecting after the
 *    server dropped the connections, no password in any message;
 *  - the choice of backend from the form of RELAYFORGE_DB.
 * Each test works in its own mkdtemp directory under /tmp; a separate raw
 * connection of the backend (its q_int / q_text) checks what was written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chain.h"
#include "schema_pg.h"
#include "schema_sqlite.h"
#include "store.h"
#include "upstream.h"

#define MINUTE 60000
#define T0 ((int64_t)1767268800000) /* 2026-01-01T12:00:00.000Z */
#define MIGRATION_ROUNDS 10

struct fixture;

/* A backend the contract runs against: how to name a fresh store for a
 * test, and a raw connection of its own to check what was written. */
struct backend {
	const char *name;
	/* Fill f->db (the RELAYFORGE_DB value) for a fresh store. */
	void (*make)(struct fixture *f);
	/* Remove what make made (NULL: teardown's files do). */
	void (*drop)(struct fixture *f);
	/* First column of the first row: an integer (-999 for NULL,
	 * INT64_MIN for no row) or text ("<null>" for NULL, "" for none). */
	int64_t (*q_int)(const struct fixture *f, const char *sql);
	void (*q_text)(const struct fixture *f, const char *sql, char *out,
	    size_t n);
};

struct fixture {
	const struct backend *be;
	char dir[64];
	char path[128];  /* SQLite: the file */
	char db[512];    /* what rf_store_open gets */
	char schema[48]; /* PostgreSQL: the test's own schema */
};

static int pg_seq;

/* ---- raw checks through a separate connection ---- */

static int64_t
sq_int(const char *path, const char *sql)
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
static void
sq_text(const char *path, const char *sql, char *out, size_t n)
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

static void
sqlite_make(struct fixture *f)
{
	snprintf(f->db, sizeof f->db, "%s", f->path);
}

static int64_t
sqlite_q_int(const struct fixture *f, const char *sql)
{
	return sq_int(f->path, sql);
}

static void
sqlite_q_text(const struct fixture *f, const char *sql, char *out, size_t n)
{
	sq_text(f->path, sql, out, n);
}

/* ---- PostgreSQL: a schema of RF_TEST_PG_URI's database per test ---- */

/* A libpq connection to RF_TEST_PG_URI with search_path set to schema
 * ("" = the default). */
static PGconn *
pg_raw(const char *schema)
{
	PGconn *c = PQconnectdb(getenv("RF_TEST_PG_URI"));
	char sql[96];

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	if (schema[0] != '\0') {
		snprintf(sql, sizeof sql, "SET search_path = %s", schema);
		PQclear(PQexec(c, sql));
	}
	return c;
}

/* Run sql; the result when it succeeded, else fail the test. */
static PGresult *
pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int st = PQresultStatus(r);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		fprintf(stderr, "psql: %s: %s", sql, PQresultErrorMessage(r));
	assert_true(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);
	return r;
}

static void
pg_sql(const char *schema, const char *sql)
{
	PGconn *c = pg_raw(schema);

	PQclear(pg_exec(c, sql));
	PQfinish(c);
}

/* The URI of a fresh schema: the store is created there. */
static void
pg_uri(struct fixture *f, const char *schema)
{
	snprintf(f->db, sizeof f->db, "%s%coptions=-csearch_path%%3D%s",
	    getenv("RF_TEST_PG_URI"), strchr(getenv("RF_TEST_PG_URI"), '?') ?
	    '&' : '?', schema);
}

static void
pg_make(struct fixture *f)
{
	char sql[96];

	snprintf(f->schema, sizeof f->schema, "t_%d_%d", (int)getpid(),
	    ++pg_seq);
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", f->schema);
	pg_sql("", sql);
	/* SQLite's quote(), which the contract's checks use. */
	pg_sql(f->schema, "CREATE FUNCTION quote(anyelement) RETURNS text"
	    " LANGUAGE sql IMMUTABLE AS $$SELECT CASE WHEN $1 IS NULL"
	    " THEN 'NULL' WHEN pg_typeof($1) = 'text'::regtype"
	    " THEN quote_literal($1) ELSE $1::text END$$");
	pg_uri(f, f->schema);
}

static void
pg_drop(struct fixture *f)
{
	char sql[96];

	snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
	pg_sql("", sql);
}

/* SQLite's group_concat(x, sep) is PostgreSQL's string_agg. */
static PGresult *
pg_query(const struct fixture *f, const char *sql)
{
	char q[2048], *p;
	PGconn *c = pg_raw(f->schema);
	PGresult *r;

	snprintf(q, sizeof q, "%s", sql);
	while ((p = strstr(q, "group_concat(")) != NULL)
		memcpy(p, "string_agg  (", 13);
	r = pg_exec(c, q);
	PQfinish(c);
	return r;
}

static int64_t
pg_q_int(const struct fixture *f, const char *sql)
{
	PGresult *r = pg_query(f, sql);
	int64_t v = INT64_MIN;

	if (PQntuples(r) > 0)
		v = PQgetisnull(r, 0, 0) ? -999 :
		    strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static void
pg_q_text(const struct fixture *f, const char *sql, char *out, size_t n)
{
	PGresult *r = pg_query(f, sql);

	out[0] = '\0';
	if (PQntuples(r) > 0)
		snprintf(out, n, "%s", PQgetisnull(r, 0, 0) ? "<null>" :
		    PQgetvalue(r, 0, 0));
	PQclear(r);
}

/* The contract runs once per row; the PostgreSQL row when RF_TEST_PG_URI
 * is set (main skips it otherwise). */
static const struct backend backends[] = {
	{ "sqlite", sqlite_make, NULL, sqlite_q_int, sqlite_q_text },
	{ "postgresql", pg_make, pg_drop, pg_q_int, pg_q_text },
};

static bool
is_sqlite(const struct fixture *f)
{
	return f->be == &backends[0];
}

/* cmocka's initial state is the backend (NULL: the first one). */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (f == NULL)
		return -1;
	f->be = *state != NULL ? *state : &backends[0];
	snprintf(f->dir, sizeof f->dir, "/tmp/rf-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof f->path, "%s/relayforge.db", f->dir);
	f->be->make(f);
	*state = f;
	return 0;
}

/* Unlink a database file and its WAL companions. */
static void
remove_db(const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[200];

	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		unlink(p);
	}
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

	if (f->be->drop != NULL)
		f->be->drop(f);
	remove_db(f->path);
	for (int round = 0; round < MIGRATION_ROUNDS; round++) {
		snprintf(p, sizeof p, "%s/mig%d.db", f->dir, round);
		remove_db(p); /* left behind when a migration round failed */
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static int64_t
q_int(const struct fixture *f, const char *sql)
{
	return f->be->q_int(f, sql);
}

static void
q_text(const struct fixture *f, const char *sql, char *out, size_t n)
{
	f->be->q_text(f, sql, out, n);
}

static struct rf_store *
open_ok(const struct fixture *f)
{
	char err[256] = "";
	struct rf_store *s = rf_store_open(f->db, err, sizeof err);

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

static struct rf_log_entry
sample_entry(int64_t ts)
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
static long
schema_file_version(void)
{
	const char *p = NULL, *q = rf_schema_sqlite;

	/* Each version sets it after its changes: the last one counts. */
	while ((q = strstr(q, "PRAGMA user_version = ")) != NULL)
		p = q++;
	assert_non_null(p);
	return strtol(p + strlen("PRAGMA user_version = "), NULL, 10);
}

/* ---- schema and open ---- */

static void
test_open_creates_schema(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	char mode[16];

	assert_int_equal(schema_file_version(), 4);
	assert_int_equal(q_int(f, "PRAGMA user_version"),
	    schema_file_version());
	assert_int_equal(q_int(f, "SELECT count(*) FROM sqlite_master"
	    " WHERE type = 'table' AND name IN ('requests', 'attempts',"
	    " 'provider_state', 'rate_limit', 'usage_minute', 'usage_hour',"
	    " 'spool_progress', 'metric_totals', 'process_gauges')"), 9);
	/* Version 3: 16 bucket columns; cancelled in both rollups. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM"
	    " pragma_table_info('metric_totals') WHERE name GLOB 'b[0-9]*'"),
	    RF_METRIC_BUCKETS);
	assert_int_equal(q_int(f, "SELECT count(*) FROM pragma_table_info("
	    "'usage_minute') WHERE name = 'cancelled'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM pragma_table_info("
	    "'usage_hour') WHERE name = 'cancelled'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM sqlite_master"
	    " WHERE type = 'index' AND tbl_name = 'requests'"
	    " AND sql IS NOT NULL"), 3);
	assert_int_equal(q_int(f, "SELECT count(*) FROM sqlite_master"
	    " WHERE type = 'index' AND tbl_name = 'attempts'"
	    " AND sql IS NOT NULL"), 2);
	/* 72 histogram columns in each rollup table. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM"
	    " pragma_table_info('usage_hour') WHERE name GLOB 'h[0-9]*'"), 72);
	assert_int_equal(q_int(f, "SELECT count(*) FROM"
	    " pragma_table_info('usage_minute') WHERE name GLOB 'h[0-9]*'"),
	    72);
	assert_int_equal(q_int(f, "SELECT count(*) FROM"
	    " pragma_table_info('requests') WHERE name = 'node'"), 1);
	assert_int_equal(q_int(f, "PRAGMA auto_vacuum"), 2);
	q_text(f, "PRAGMA journal_mode", mode, sizeof mode);
	assert_string_equal(mode, "wal");
	assert_int_equal(rf_store_ping(s), 0);
	rf_store_close(s);
	rf_store_close(NULL);
}

static void
test_open_bad_path(void **state)
{
	struct fixture *f = *state;
	char path[200], err[256] = "";

	snprintf(path, sizeof path, "%s/missing/dir/x.db", f->dir);
	assert_null(rf_store_open(path, err, sizeof err));
	assert_non_null(strstr(err, "cannot open"));
	assert_non_null(strstr(err, path));
}

static void
test_reopen_idempotent(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry e = sample_entry(T0);

	assert_int_equal(rf_store_log_request(s, &e), 0);
	rf_store_close(s);
	s = open_ok(f);
	assert_int_equal(q_int(f, "PRAGMA user_version"), 4);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 1);
	assert_int_equal(rf_store_log_request(s, &e), 0);
	rf_store_close(s);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 2);
	assert_int_equal(q_int(f, "PRAGMA auto_vacuum"), 2);
}

/* ---- log_request ---- */

static void
test_log_request_values(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry e = sample_entry(T0 + 1234);
	char t[128];

	assert_int_equal(rf_store_log_request(s, &e), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 1);
	q_text(f, "SELECT request_id || '|' || ts_ms || '|' || endpoint || '|'"
	    " || strategy || '|' || attempted_provider || '|' || final_provider"
	    " || '|' || fallback || degraded || demo || '|' || status"
	    " || '|' || http_status || '|' || latency_ms || '|' || ttft_ms"
	    " || '|' || model || '|' || prompt_chars FROM requests", t, sizeof t);
	assert_string_equal(t, "req-1|1767268801234|chat|auto|groq|openrouter"
	    "|110|success|200|842|120|m-1|43");
	q_text(f, "SELECT prompt_tokens || '|' || completion_tokens || '|'"
	    " || source || '|' || prompt_preview || '|' || partial_chars"
	    " || '|' || skipped_chunks || '|' || restarts || '|' || streamed"
	    " FROM requests", t, sizeof t);
	assert_string_equal(t, "12|80|relayforge-web|Explain|0|2|1|"
	    "groq,openrouter");
	assert_int_equal(q_int(f, "SELECT error_code FROM requests"), -999);

	assert_int_equal(q_int(f, "SELECT count(*) FROM attempts WHERE"
	    " request_id = (SELECT id FROM requests)"), 3);
	q_text(f, "SELECT group_concat(seq || ':' || provider || ':' || outcome"
	    " || ':' || coalesce(reason, '-') || ':'"
	    " || coalesce(CAST(http_status AS TEXT), '-') || ':'"
	    " || coalesce(CAST(latency_ms AS TEXT), '-') || ':' || retry, ' ')"
	    " FROM (SELECT * FROM attempts ORDER BY seq) AS a", t, sizeof t);
	assert_string_equal(t, "0:groq:provider_rate_limited:-:429:31:0 "
	    "1:sambanova:skipped:unconfigured:-:-:0 "
	    "2:openrouter:ok:-:200:790:1");

	q_text(f, "SELECT minute_ms || '|' || provider || '|' || requests || '|'"
	    " || successes || '|' || errors || '|' || fallbacks || '|'"
	    " || latency_sum || '|' || prompt_tokens || '|' || completion_tokens"
	    " FROM usage_minute", t, sizeof t);
	assert_string_equal(t, "1767268800000|openrouter|1|1|0|1|842|12|80");
	/* 842 ms: [512, 1024) cut in four, third quarter [768, 895]: h34. */
	q_text(f, "SELECT hour_ms || '|' || provider || '|' || requests || '|'"
	    " || latency_max || '|' || h34 || '|' || (h0 + h33 + h35 + h71)"
	    " FROM usage_hour", t, sizeof t);
	assert_string_equal(t, "1767268800000|openrouter|1|842|1|0");
	assert_int_equal(q_int(f, "SELECT h34 FROM usage_minute"), 1);
	rf_store_close(s);
}

static void
test_usage_rollup_accumulates(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
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
	q_text(f, "SELECT requests || '|' || successes || '|' || errors"
	    " || '|' || fallbacks || '|' || latency_sum || '|' || prompt_tokens"
	    " || '|' || completion_tokens FROM usage_minute WHERE minute_ms = "
	    "1767268800000 AND provider = 'openrouter'", t, sizeof t);
	assert_string_equal(t, "2|1|1|1|942|12|85");
	assert_int_equal(q_int(f, "SELECT requests FROM usage_minute"
	    " WHERE minute_ms = 1767268860000"), 1);
	rf_store_close(s);
}

/* A batch's rollup rows are summed per period and provider before they
 * are written: the same rows as one request at a time would leave. */
static void
test_usage_rollup_of_a_batch(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry e[6];
	const struct rf_log_entry *batch[6];
	char t[160];

	for (int i = 0; i < 6; i++) {
		e[i] = sample_entry(T0 + 1000 * i);
		batch[i] = &e[i];
	}
	e[1].success = false;                 /* an error, 5 ms */
	e[1].error_code = "provider_timeout";
	e[1].latency_ms = 5;
	e[2].success = false;                 /* a hang-up: cancelled */
	e[2].error_code = RF_STORE_CANCELLED_CODE;
	e[2].latency_ms = 30000;
	e[3].final_provider = NULL;           /* no provider called */
	e[3].fallback = false;
	e[4].ts_ms = T0 + MINUTE + 1;         /* the next minute */
	e[5].final_provider = "groq";
	e[5].completion_tokens = -1;
	assert_int_equal(rf_store_log_requests(s, batch, 6), 0);
	q_text(f, "SELECT requests || '|' || successes || '|' || errors"
	    " || '|' || cancelled || '|' || fallbacks || '|' || latency_max"
	    " || '|' || completion_tokens FROM usage_minute WHERE minute_ms = "
	    "1767268800000 AND provider = 'openrouter'", t, sizeof t);
	assert_string_equal(t, "3|1|1|1|3|30000|240");
	assert_int_equal(q_int(f, "SELECT requests FROM usage_minute WHERE"
	    " provider = '' AND minute_ms = 1767268800000"), 1);
	assert_int_equal(q_int(f, "SELECT completion_tokens FROM usage_minute"
	    " WHERE provider = 'groq'"), 0);
	assert_int_equal(q_int(f, "SELECT requests FROM usage_minute WHERE"
	    " minute_ms = 1767268860000"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM usage_minute"), 4);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_hour"), 6);
	/* Each request in one latency bucket of its row. */
	assert_int_equal(q_int(f, "SELECT h0 + h1 + h2 + h3 + h4 + h5 + h6"
	    " + h7 + h8 + h9 + h10 + h11 + h12 + h13 + h14 + h15 + h16 + h17"
	    " + h18 + h19 + h20 + h21 + h22 + h23 + h24 + h25 + h26 + h27"
	    " + h28 + h29 + h30 + h31 + h32 + h33 + h34 + h35 + h36 + h37"
	    " + h38 + h39 + h40 + h41 + h42 + h43 + h44 + h45 + h46 + h47"
	    " + h48 + h49 + h50 + h51 + h52 + h53 + h54 + h55 + h56 + h57"
	    " + h58 + h59 + h60 + h61 + h62 + h63 + h64 + h65 + h66 + h67"
	    " + h68 + h69 + h70 + h71 FROM usage_hour WHERE provider ="
	    " 'openrouter'"), 4);
	/* A second batch adds to the rows already there. */
	assert_int_equal(rf_store_log_requests(s, batch, 6), 0);
	assert_int_equal(q_int(f, "SELECT requests FROM usage_hour WHERE"
	    " provider = 'openrouter'"), 8);
	assert_int_equal(q_int(f, "SELECT latency_max FROM usage_hour WHERE"
	    " provider = 'openrouter'"), 30000);
	rf_store_close(s);
}

static void
test_log_null_mappings(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
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

	assert_int_equal(rf_store_log_request(s, &e), 0);
	q_text(f, "SELECT quote(attempted_provider) || quote(final_provider)"
	    " || quote(ttft_ms) || quote(model) || quote(prompt_tokens)"
	    " || quote(completion_tokens) || quote(source)"
	    " || quote(prompt_preview) || quote(streamed) || '|' || status"
	    " || '|' || error_code FROM requests", t, sizeof t);
	assert_string_equal(t, "NULLNULLNULLNULLNULLNULLNULLNULLNULL|error|"
	    "provider_unavailable");
	q_text(f, "SELECT quote(reason) || quote(http_status)"
	    " || quote(latency_ms) FROM attempts", t, sizeof t);
	assert_string_equal(t, "NULLNULLNULL");
	q_text(f, "SELECT quote(provider) || '|' || requests || errors"
	    " || prompt_tokens || completion_tokens FROM usage_minute", t,
	    sizeof t);
	assert_string_equal(t, "''|1100");
	rf_store_close(s);
}

static void
test_log_failure_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry e = sample_entry(T0);
	struct rf_log_attempt bad[2] = {
		{ "groq", "provider_unavailable", NULL, 503, 10, 0 },
		{ NULL, "ok", NULL, 200, 10, 0 }, /* NOT NULL provider fails */
	};

	assert_int_equal(rf_store_log_request(s, &e), 0);
	e.attempts = bad;
	e.nattempts = 2;
	assert_int_equal(rf_store_log_request(s, &e), -1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM attempts"), 3);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_minute"), 1);

	e.attempts = three_attempts; /* a request column breaking NOT NULL */
	e.nattempts = 3;
	e.endpoint = NULL;
	assert_int_equal(rf_store_log_request(s, &e), -1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 1);

	e.endpoint = "chat"; /* the connection is usable afterwards */
	assert_int_equal(rf_store_log_request(s, &e), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM attempts"), 6);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_minute"), 2);
	assert_int_equal(rf_store_log_request(NULL, &e), -1);
	rf_store_close(s);
}

/* Group commit: a batch is written whole, or (one bad entry) not at all. */
static void
test_log_batch_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry a = sample_entry(T0), b = sample_entry(T0 + 1),
	    c = sample_entry(T0 + 2);
	const struct rf_log_entry *batch[3] = { &a, &b, &c };

	assert_int_equal(rf_store_log_requests(s, batch, 3), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 3);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_minute"), 3);
	b.endpoint = NULL; /* breaks NOT NULL: the whole batch rolls back */
	assert_int_equal(rf_store_log_requests(s, batch, 3), -1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 3);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_minute"), 3);
	rf_store_close(s);
}

static void
test_delete_cascades(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry e = sample_entry(T0);
	sqlite3 *db;

	assert_int_equal(rf_store_log_request(s, &e), 0);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON;"
	    " DELETE FROM requests", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(q_int(f, "SELECT count(*) FROM attempts"), 0);
	rf_store_close(s);
}

/* ---- concurrency ---- */

#define WORKERS 4
#define PER_WORKER 50

/* Open the store (migrating a fresh file, racing the others) and log n
 * requests; 0 when all succeeded. */
static int
worker_run(const char *path, int who, int n)
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
static void
fork_workers(const char *path, int n)
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

static void
test_concurrent_migration_processes(void **state)
{
	struct fixture *f = *state;
	char path[160];

	/* Several rounds on fresh files: the race is in the first moments. */
	for (int round = 0; round < MIGRATION_ROUNDS; round++) {
		snprintf(path, sizeof path, "%s/mig%d.db", f->dir, round);
		fork_workers(path, 0);
		assert_int_equal(sq_int(path, "PRAGMA user_version"), 4);
		assert_int_equal(sq_int(path, "PRAGMA auto_vacuum"), 2);
		fork_workers(path, 1);
		assert_int_equal(sq_int(path, "SELECT count(*) FROM requests"),
		    WORKERS);
		remove_db(path);
	}
}

static void
test_concurrent_processes(void **state)
{
	struct fixture *f = *state;

	fork_workers(f->db, PER_WORKER);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"),
	    WORKERS * PER_WORKER);
	assert_int_equal(q_int(f, "SELECT count(DISTINCT request_id)"
	    " FROM requests"), WORKERS * PER_WORKER);
	assert_int_equal(q_int(f, "SELECT count(*) FROM attempts"),
	    3 * WORKERS * PER_WORKER);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM"
	    " usage_minute"), WORKERS * PER_WORKER);
}

struct thread_arg {
	const char *path;
	int who;
	int rc;
};

static void *
thread_main(void *p)
{
	struct thread_arg *a = p;

	a->rc = worker_run(a->path, a->who, PER_WORKER);
	return NULL;
}

static void
test_concurrent_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t th[WORKERS];
	struct thread_arg args[WORKERS];

	for (int i = 0; i < WORKERS; i++) {
		args[i] = (struct thread_arg){ f->db, i, -1 };
		assert_int_equal(pthread_create(&th[i], NULL, thread_main,
		    &args[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].rc, 0);
	}
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"),
	    WORKERS * PER_WORKER);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM"
	    " usage_minute"), WORKERS * PER_WORKER);
}

/* ---- provider state ----
 * The store persists; the engine decides.  engine_failed and engine_quota
 * do what src/chain.c's record_failure and record_quota do with the same
 * figures, so the assertions below hold the combined behaviour. */

static int
engine_failed(struct rf_store *s, const char *id, const char *code,
    int64_t now, int64_t until, int threshold, int64_t cooldown_ms)
{
	struct rf_config c = { .failure_threshold = threshold,
	    .cooldown_ms = cooldown_ms };
	int failures = -1;

	if (rf_store_provider_failed(s, id, code, now, until, &failures) != 0)
		return -1;
	until = rf_chain_threshold_cooldown(&c, failures, until, now);
	if (until > 0)
		return rf_store_provider_cooldown(s, id, until,
		    "failure_threshold");
	return 0;
}

static int
engine_quota(struct rf_store *s, const char *id, long requests,
    long tokens, int64_t reset_ms, int64_t now)
{
	struct rf_quota q = { true, requests, tokens, reset_ms };
	int64_t until;

	if (rf_store_provider_quota(s, id, requests, tokens, reset_ms, now) != 0)
		return -1;
	until = rf_chain_quota_cooldown(&q, now);
	return until > 0 ? rf_store_provider_cooldown(s, id, until, "quota") : 0;
}

static struct rf_provider_state
state_of(struct rf_store *s, const char *id)
{
	struct rf_provider_state st = { -1, -1 };
	const char *ids[1] = { id };

	assert_int_equal(rf_store_provider_states(s, ids, 1, &st), 0);
	return st;
}

static void
test_provider_threshold_and_ok(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_provider_state st;
	char t[64];

	st = state_of(s, "groq"); /* unknown: zeroed */
	assert_int_equal(st.cooldown_until_ms, 0);
	assert_int_equal(st.consecutive_failures, 0);
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(engine_failed(s, "groq",
		    "provider_unavailable", T0 + i, 0, 3, 30000), 0);
		st = state_of(s, "groq");
		assert_int_equal(st.consecutive_failures, i);
		assert_int_equal(st.cooldown_until_ms, 0);
	}
	assert_int_equal(engine_failed(s, "groq", "provider_timeout",
	    T0 + 3, 0, 3, 30000), 0);
	st = state_of(s, "groq");
	assert_int_equal(st.consecutive_failures, 3);
	assert_int_equal(st.cooldown_until_ms, T0 + 3 + 30000);
	q_text(f, "SELECT cooldown_reason || '|' || last_error_code || '|'"
	    " || last_error_ms FROM provider_state", t, sizeof t);
	assert_string_equal(t, "failure_threshold|provider_timeout|"
	    "1767268800003");

	assert_int_equal(rf_store_provider_ok(s, "groq", T0 + 9), 0);
	st = state_of(s, "groq");
	assert_int_equal(st.consecutive_failures, 0);
	assert_int_equal(st.cooldown_until_ms, 0);
	assert_int_equal(q_int(f, "SELECT last_success_ms FROM"
	    " provider_state WHERE provider = 'groq'"), T0 + 9);
	assert_int_equal(q_int(f, "SELECT cooldown_reason FROM"
	    " provider_state WHERE provider = 'groq'"), -999);
	rf_store_close(s);
}

static void
test_provider_explicit_cooldown_max(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	const char *ids[3] = { "gemini", "nobody", "groq" };
	struct rf_provider_state st[3];
	char t[64];

	assert_int_equal(engine_failed(s, "gemini",
	    "provider_rate_limited", T0, T0 + 5000, 3, 30000), 0);
	assert_int_equal(state_of(s, "gemini").cooldown_until_ms, T0 + 5000);
	/* A shorter cooldown never shortens the current one. */
	assert_int_equal(engine_failed(s, "gemini",
	    "provider_auth_failed", T0 + 1, T0 + 1000, 3, 30000), 0);
	assert_int_equal(state_of(s, "gemini").cooldown_until_ms, T0 + 5000);
	q_text(f, "SELECT cooldown_reason || '|' || last_error_code FROM"
	    " provider_state", t, sizeof t);
	assert_string_equal(t, "provider_rate_limited|provider_auth_failed");
	/* The third failure reaches the threshold, but the explicit (longer)
	 * cooldown wins over now + cooldown_ms. */
	assert_int_equal(engine_failed(s, "gemini",
	    "provider_auth_failed", T0 + 2, T0 + 600000, 3, 30000), 0);
	assert_int_equal(state_of(s, "gemini").cooldown_until_ms, T0 + 600000);
	assert_int_equal(engine_failed(s, "groq", "x", T0, 0, 0,
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

static void
test_provider_quota(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	char t[96];

	/* Remaining > 0: figures stored, no cooldown. */
	assert_int_equal(engine_quota(s, "cerebras", 10, 5000,
	    T0 + 20000, T0), 0);
	assert_int_equal(state_of(s, "cerebras").cooldown_until_ms, 0);
	q_text(f, "SELECT quota_remaining_requests || '|' ||"
	    " quota_remaining_tokens || '|' || quota_reset_ms FROM"
	    " provider_state", t, sizeof t);
	assert_string_equal(t, "10|5000|1767268820000");
	/* Requests exhausted: cooldown until the reset. */
	assert_int_equal(engine_quota(s, "cerebras", 0, -1,
	    T0 + 20000, T0), 0);
	assert_int_equal(state_of(s, "cerebras").cooldown_until_ms, T0 + 20000);
	q_text(f, "SELECT cooldown_reason || '|' || quota_remaining_requests"
	    " || '|' || quote(quota_remaining_tokens) FROM provider_state", t,
	    sizeof t);
	assert_string_equal(t, "quota|0|NULL");
	/* Later figures with tokens left keep the cooldown. */
	assert_int_equal(engine_quota(s, "cerebras", 3, 100,
	    T0 + 10000, T0 + 1), 0);
	assert_int_equal(state_of(s, "cerebras").cooldown_until_ms, T0 + 20000);
	/* Tokens exhausted, but the reset is already past: no cooldown. */
	assert_int_equal(engine_quota(s, "groq", 5, 0, T0 - 1, T0),
	    0);
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, 0);
	assert_int_equal(engine_quota(s, "groq", 5, 0, T0 + 7000,
	    T0), 0);
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, T0 + 7000);
	rf_store_close(s);
}

/* The store alone: it counts and returns the streak, and persists only
 * the deadlines it is given. */
static void
test_provider_failed_counts(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	int n = -1;

	for (int i = 1; i <= 5; i++) {
		assert_int_equal(rf_store_provider_failed(s, "groq",
		    "provider_timeout", T0 + i, 0, &n), 0);
		assert_int_equal(n, i);
	}
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, 0);
	assert_int_equal(rf_store_provider_failed(s, "groq", "x", T0, 0, NULL),
	    0);
	assert_int_equal(state_of(s, "groq").consecutive_failures, 6);
	assert_int_equal(rf_store_provider_ok(s, "groq", T0 + 9), 0);
	assert_int_equal(rf_store_provider_failed(s, "groq", "x", T0 + 10, 0,
	    &n), 0);
	assert_int_equal(n, 1);
	n = -1;
	assert_int_equal(rf_store_provider_failed(NULL, "groq", "x", T0, 0,
	    &n), -1);
	assert_int_equal(n, 0);
	rf_store_close(s);
}

static void
test_provider_cooldown_later_wins(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	char t[64];

	assert_int_equal(rf_store_provider_cooldown(s, "groq", T0 + 5000,
	    "quota"), 0);
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, T0 + 5000);
	assert_int_equal(state_of(s, "groq").consecutive_failures, 0);
	/* Earlier, equal or no deadline: nothing changes. */
	assert_int_equal(rf_store_provider_cooldown(s, "groq", T0 + 1000,
	    "failure_threshold"), 0);
	assert_int_equal(rf_store_provider_cooldown(s, "groq", T0 + 5000,
	    "failure_threshold"), 0);
	assert_int_equal(rf_store_provider_cooldown(s, "groq", 0,
	    "failure_threshold"), 0);
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, T0 + 5000);
	q_text(f, "SELECT cooldown_reason FROM provider_state", t, sizeof t);
	assert_string_equal(t, "quota");
	/* Later: replaces the deadline and its reason. */
	assert_int_equal(rf_store_provider_cooldown(s, "groq", T0 + 9000,
	    "failure_threshold"), 0);
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, T0 + 9000);
	q_text(f, "SELECT cooldown_reason FROM provider_state", t, sizeof t);
	assert_string_equal(t, "failure_threshold");
	/* A failure with an earlier cooldown of its own keeps the later one. */
	assert_int_equal(rf_store_provider_failed(s, "groq",
	    "provider_rate_limited", T0, T0 + 2000, NULL), 0);
	assert_int_equal(state_of(s, "groq").cooldown_until_ms, T0 + 9000);
	assert_int_equal(rf_store_provider_cooldown(NULL, "groq", T0 + 1, "x"),
	    -1);
	rf_store_close(s);
}

/* Figures at 0 are recorded; the cooldown is not the store's to set. */
static void
test_provider_quota_records_only(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	char t[64];

	assert_int_equal(rf_store_provider_quota(s, "cerebras", 0, 0,
	    T0 + 20000, T0), 0);
	assert_int_equal(state_of(s, "cerebras").cooldown_until_ms, 0);
	q_text(f, "SELECT quota_remaining_requests || '|' ||"
	    " quota_remaining_tokens || '|' || quota_reset_ms FROM"
	    " provider_state", t, sizeof t);
	assert_string_equal(t, "0|0|1767268820000");
	assert_int_equal(rf_store_provider_quota(NULL, "cerebras", 0, 0,
	    T0 + 20000, T0), -1);
	rf_store_close(s);
}

/* ---- rate limit and ping ---- */

static void
test_rate_limit(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	int64_t now = T0 + 30500;

	/* The verdict and Retry-After are src/ratelimit.c's (test_ratelimit):
	 * the store counts, per client and wall-clock minute. */
	for (int i = 1; i <= 3; i++)
		assert_int_equal(rf_store_rate_count(s, "10.0.0.1", 1, now), i);
	/* Several at once: requests a process counted while the store was
	 * busy. */
	assert_int_equal(rf_store_rate_count(s, "10.0.0.1", 4, T0 + 59999), 7);
	/* Another client has its own count. */
	assert_int_equal(rf_store_rate_count(s, "10.0.0.2", 1, now), 1);
	/* The next window starts again, and the old window's row is gone. */
	assert_int_equal(rf_store_rate_count(s, "10.0.0.1", 1, T0 + MINUTE), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM rate_limit"
	    " WHERE client = '10.0.0.1'"), 1);
	assert_int_equal(q_int(f, "SELECT count FROM rate_limit"
	    " WHERE client = '10.0.0.1'"), 1);
	/* No hit, or no store: nothing counted. */
	assert_int_equal(rf_store_rate_count(s, "10.0.0.1", 0, T0 + MINUTE), -1);
	assert_int_equal(rf_store_rate_count(NULL, "c", 1, T0), -1);
	rf_store_close(s);
}

static void
test_ping(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);

	for (int i = 0; i < 3; i++)
		assert_int_equal(rf_store_ping(s), 0);
	assert_int_equal(rf_store_ping(NULL), -1);
	rf_store_close(s);
}

/* ---- observability reads ---- */

#define HOUR ((int64_t)3600000)

/* Log one request with a single attempt of final (NULL: none called). */
static void
log_simple(struct rf_store *s, int64_t ts, const char *final,
    bool ok, bool fallback, long latency)
{
	struct rf_log_attempt a = { final, ok ? "ok" : "provider_timeout",
	    NULL, ok ? 200 : 0, latency, 0 };
	struct rf_log_entry e = sample_entry(ts);

	e.final_provider = e.attempted_provider = final;
	e.success = ok;
	e.error_code = ok ? NULL : "provider_timeout";
	e.fallback = fallback;
	e.latency_ms = latency;
	e.attempts = &a;
	e.nattempts = final != NULL ? 1 : 0;
	assert_int_equal(rf_store_log_request(s, &e), 0);
}

static void
test_usage_buckets_and_totals(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_usage_report r;
	int64_t from = T0, to = T0 + HOUR;

	log_simple(s, from - 1, "groq", true, false, 10);   /* before */
	log_simple(s, from, "groq", true, false, 100);      /* bucket 0 */
	log_simple(s, from + 59999, "groq", false, false, 300);
	log_simple(s, from + 2 * MINUTE, "mock", true, true, 5);
	log_simple(s, from + 2 * MINUTE + 1, NULL, false, false, 1);
	log_simple(s, to - 1, "groq", true, true, 7);       /* last bucket */
	log_simple(s, to, "groq", true, false, 10);         /* after */

	assert_int_equal(rf_store_usage(s, from, to, MINUTE, &r), 0);
	assert_int_equal(r.nbuckets, 60);
	assert_int_equal(r.totals.requests, 5);
	assert_int_equal(r.totals.successes, 3);
	assert_int_equal(r.totals.errors, 2);
	assert_int_equal(r.totals.fallbacks, 2);
	assert_int_equal(r.totals.latency_sum, 413);
	assert_int_equal(r.totals.latency_max, 300);
	assert_int_equal(r.totals.prompt_tokens, 5 * 12);
	assert_int_equal(r.buckets[0].requests, 2);
	assert_int_equal(r.buckets[0].errors, 1);
	assert_int_equal(r.buckets[0].p95_ms, 300); /* capped by the max */
	assert_int_equal(r.buckets[1].requests, 0);  /* zero-filled */
	assert_int_equal(r.buckets[1].p95_ms, -1);
	assert_int_equal(r.buckets[2].requests, 2);
	assert_int_equal(r.buckets[2].fallbacks, 1);
	assert_int_equal(r.buckets[59].requests, 1);
	assert_int_equal(r.buckets[59].p50_ms, 7);
	/* Providers: most requests first, '' (none called) last. */
	assert_int_equal(r.nproviders, 3);
	assert_string_equal(r.providers[0].provider, "groq");
	assert_int_equal(r.providers[0].requests, 3);
	assert_int_equal(r.providers[0].errors, 1);
	assert_int_equal(r.providers[0].latency_sum, 407);
	assert_string_equal(r.providers[1].provider, "mock");
	assert_string_equal(r.providers[2].provider, "");
	assert_int_equal(r.providers[2].requests, 1);
	rf_store_usage_free(&r);

	/* Whole hours read the hourly rollups: the same requests. */
	assert_int_equal(rf_store_usage(s, from - HOUR, to + HOUR, HOUR, &r),
	    0);
	assert_int_equal(r.nbuckets, 3);
	assert_int_equal(r.buckets[0].requests, 1);
	assert_int_equal(r.buckets[1].requests, 5);
	assert_int_equal(r.buckets[1].latency_sum, 413);
	assert_int_equal(r.buckets[2].requests, 1);
	assert_int_equal(r.totals.requests, 7);
	rf_store_usage_free(&r);

	/* Windows that are not whole buckets are refused. */
	assert_int_equal(rf_store_usage(s, from + 1, to + 1, MINUTE, &r), -1);
	assert_null(r.buckets);
	assert_int_equal(rf_store_usage(s, from, to + 1, MINUTE, &r), -1);
	assert_int_equal(rf_store_usage(s, from, to, 1000, &r), -1);
	assert_int_equal(rf_store_usage(s, from, from + 1441 * MINUTE, MINUTE,
	    &r), -1);
	assert_int_equal(rf_store_usage(NULL, from, to, MINUTE, &r), -1);
	rf_store_usage_free(&r);
	rf_store_usage_free(NULL);
	rf_store_close(s);
}

static void
test_usage_percentiles(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_usage_report r;

	/* 1..100 ms: exact p50 50 lies in [48, 55], p95 95 in [80, 95], p99
	 * 99 in [96, 111] capped by the largest latency, 100. */
	for (long v = 1; v <= 100; v++)
		log_simple(s, T0 + v, "groq", true, false, v);
	assert_int_equal(rf_store_usage(s, T0, T0 + HOUR, HOUR, &r), 0);
	assert_int_equal(r.totals.p50_ms, 55);
	assert_int_equal(r.totals.p95_ms, 95);
	assert_int_equal(r.totals.p99_ms, 100);
	rf_store_usage_free(&r);

	/* 50 x 1000 ms and 50 x 2000 ms, an hour later: p50 is 1000's bucket
	 * [896, 1023] (within 25%), p95 2000's [1792, 2047] capped at 2000. */
	for (int i = 0; i < 50; i++) {
		log_simple(s, T0 + HOUR + i, "groq", true, false, 1000);
		log_simple(s, T0 + HOUR + 50 + i, "groq", true, false, 2000);
	}
	assert_int_equal(rf_store_usage(s, T0 + HOUR, T0 + 2 * HOUR, HOUR, &r),
	    0);
	assert_int_equal(r.totals.requests, 100);
	assert_int_equal(r.totals.p50_ms, 1023);
	assert_int_equal(r.totals.p95_ms, 2000);
	assert_int_equal(r.totals.p99_ms, 2000);
	rf_store_usage_free(&r);

	/* Exact under 8 ms, and a latency past the last bucket (2^19 ms)
	 * still reports its true value through the cap. */
	log_simple(s, T0 + 3 * HOUR, "groq", true, false, 3);
	log_simple(s, T0 + 3 * HOUR + 1, "groq", true, false, 900000);
	assert_int_equal(rf_store_usage(s, T0 + 3 * HOUR, T0 + 4 * HOUR, HOUR,
	    &r), 0);
	assert_int_equal(r.totals.p50_ms, 3);
	assert_int_equal(r.totals.p99_ms, 900000);
	rf_store_usage_free(&r);
	rf_store_close(s);
}

/* Log a request with the given attempt trail. */
static void
log_trail(struct rf_store *s, int64_t ts,
    const struct rf_log_attempt *a, size_t n, bool ok)
{
	struct rf_log_entry e = sample_entry(ts);

	e.attempts = a;
	e.nattempts = n;
	e.success = ok;
	e.error_code = ok ? NULL : "provider_unavailable";
	e.final_provider = n > 0 ? a[n - 1].provider : NULL;
	assert_int_equal(rf_store_log_request(s, &e), 0);
}

static void
test_provider_reports(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	const char *ids[3] = { "groq", "cerebras", "gemini" };
	struct rf_provider_report r[3];
	const struct rf_log_attempt old[] = {
		{ "groq", "ok", NULL, 200, 5000, 0 },
	};
	const struct rf_log_attempt fb[] = {
		{ "groq", "provider_unavailable", NULL, 503, 40, 0 },
		{ "groq", "provider_unavailable", NULL, 503, 60, 1 },
		{ "gemini", "skipped", "cooling_down", 0, -1, 0 },
		{ "cerebras", "ok", NULL, 200, 300, 0 },
	};
	const struct rf_log_attempt okg[] = {
		{ "groq", "ok", NULL, 200, 10, 0 },
	};
	const struct rf_log_attempt gone[] = {
		{ "cerebras", "client_closed", NULL, 200, 9999, 0 },
	};
	int64_t since = T0;

	log_trail(s, since - 1, old, 1, true);   /* outside the window */
	log_trail(s, since, fb, 4, true);
	log_trail(s, since + 1000, okg, 1, true);
	log_trail(s, since + 2000, okg, 1, true);
	log_trail(s, since + 3000, gone, 1, false); /* a hang-up: ignored */
	assert_int_equal(engine_quota(s, "cerebras", 7, -1,
	    since + 60000, since), 0);
	assert_int_equal(rf_store_provider_reports(s, ids, 3, since, r), 0);

	/* groq: 503, 503 (retry), ok, ok -> 4 calls, 2 successes. */
	assert_int_equal(r[0].requests, 4);
	assert_int_equal(r[0].successes, 2);
	assert_int_equal(r[0].failures, 2);
	assert_int_equal(r[0].avg_latency_ms, 30);    /* (40+60+10+10)/4 */
	assert_int_equal(r[0].p95_latency_ms, 60);    /* rank ceil(3.8) = 4 */
	assert_int_equal(r[0].last_ok, 1);
	assert_int_equal(r[0].last_success_ms, since + 2000);
	assert_string_equal(r[0].last_error_code, "provider_unavailable");
	assert_int_equal(r[0].last_error_ms, since);
	assert_int_equal(r[0].quota_remaining_requests, -1);
	/* cerebras: one ok call; the hang-up counts neither way. */
	assert_int_equal(r[1].requests, 1);
	assert_int_equal(r[1].successes, 1);
	assert_int_equal(r[1].p95_latency_ms, 300);
	assert_int_equal(r[1].last_ok, 1);
	assert_string_equal(r[1].last_error_code, "");
	assert_int_equal(r[1].quota_remaining_requests, 7);
	assert_int_equal(r[1].quota_remaining_tokens, -1);
	assert_int_equal(r[1].quota_reset_ms, since + 60000);
	/* gemini: only skipped, so never called. */
	assert_int_equal(r[2].requests, 0);
	assert_int_equal(r[2].avg_latency_ms, -1);
	assert_int_equal(r[2].p95_latency_ms, -1);
	assert_int_equal(r[2].last_ok, -1);
	assert_int_equal(r[2].last_success_ms, 0);

	/* A later failure makes it the last call; the shared state's own,
	 * later error time and streak are reported. */
	log_trail(s, since + 4000, fb, 1, false);
	assert_int_equal(engine_failed(s, "groq", "provider_timeout",
	    since + 4500, 0, 3, 30000), 0);
	assert_int_equal(rf_store_provider_reports(s, ids, 1, since, r), 0);
	assert_int_equal(r[0].last_ok, 0);
	assert_int_equal(r[0].requests, 5);
	assert_int_equal(r[0].consecutive_failures, 1);
	assert_string_equal(r[0].last_error_code, "provider_timeout");
	assert_int_equal(r[0].last_error_ms, since + 4500);
	assert_int_equal(r[0].last_success_ms, since + 2000);
	assert_int_equal(rf_store_provider_reports(NULL, ids, 1, since, r), -1);
	rf_store_close(s);
}

/* Log n requests alternating chat/stream, groq/mock, ok/error. */
static void
log_mixed(struct rf_store *s, int n)
{
	char rid[32];

	for (int i = 0; i < n; i++) {
		struct rf_log_attempt a[2] = {
			{ "groq", i % 2 ? "ok" : "provider_timeout", NULL,
			    i % 2 ? 200 : 0, 10 + i, 0 },
			{ "mock", "ok", NULL, 0, 1, 2 },
		};
		struct rf_log_entry e = sample_entry(T0 + i);
		snprintf(rid, sizeof rid, "r%d", i);
		e.request_id = rid;
		e.endpoint = i % 3 == 0 ? "stream" : "chat";
		e.success = i % 4 != 0;
		e.error_code = e.success ? NULL : "provider_timeout";
		e.final_provider = i % 2 ? "groq" : "mock";
		e.attempts = a;
		e.nattempts = i % 2 ? 1 : 2;
		assert_int_equal(rf_store_log_request(s, &e), 0);
	}
}

static void
test_logs_pages(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_query q = { .limit = 4 };
	struct rf_log_page pg;
	int64_t seen[16];
	size_t nseen = 0;

	log_mixed(s, 10); /* ids 1..10 */
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 4);
	assert_true(pg.more);
	assert_int_equal(pg.items[0].id, 10);
	assert_int_equal(pg.items[3].id, 7);
	/* id 10 was i = 9: stream, groq, ok, one attempt. */
	assert_string_equal(pg.items[0].e.request_id, "r9");
	assert_string_equal(pg.items[0].e.endpoint, "stream");
	assert_string_equal(pg.items[1].e.endpoint, "chat");
	assert_true(pg.items[0].e.success);
	assert_null(pg.items[0].e.error_code);
	assert_int_equal(pg.items[0].e.nattempts, 1);
	assert_string_equal(pg.items[0].e.attempts[0].outcome, "ok");
	assert_int_equal(pg.items[0].e.attempts[0].latency_ms, 19);
	/* id 9 was i = 8: error, two attempts in order. */
	assert_false(pg.items[1].e.success);
	assert_string_equal(pg.items[1].e.error_code, "provider_timeout");
	assert_int_equal(pg.items[1].e.nattempts, 2);
	assert_string_equal(pg.items[1].e.attempts[0].provider, "groq");
	assert_int_equal(pg.items[1].e.attempts[0].http_status, 0);
	assert_string_equal(pg.items[1].e.attempts[1].provider, "mock");
	assert_int_equal(pg.items[1].e.attempts[1].retry, 2);
	assert_string_equal(pg.items[1].e.prompt_preview, "Explain");
	assert_int_equal(pg.items[1].e.prompt_tokens, 12);
	assert_int_equal(pg.items[1].e.ttft_ms, 120);
	/* Walk the pages (4, 4, 2): every id once, newest first. */
	for (;;) {
		for (size_t i = 0; i < pg.nitems && nseen < 16; i++)
			seen[nseen++] = pg.items[i].id;
		if (!pg.more)
			break;
		q.before_id = pg.items[pg.nitems - 1].id;
		rf_store_log_page_free(&pg);
		assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	}
	assert_int_equal(pg.nitems, 2);
	rf_store_log_page_free(&pg);
	assert_int_equal(nseen, 10);
	for (size_t i = 0; i < nseen; i++)
		assert_int_equal(seen[i], 10 - (int64_t)i);

	/* Filters: groq finals are odd i (ids 2,4,..10); errors i%4==0. */
	q = (struct rf_log_query){ .limit = 200, .provider = "groq" };
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 5);
	assert_false(pg.more);
	rf_store_log_page_free(&pg);
	q = (struct rf_log_query){ .limit = 200, .status = "error" };
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 3); /* i = 0, 4, 8 */
	assert_int_equal(pg.items[0].id, 9);
	rf_store_log_page_free(&pg);
	q = (struct rf_log_query){ .limit = 200, .status = "success",
	    .endpoint = "stream", .provider = "mock" };
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 1); /* i = 6 */
	assert_int_equal(pg.items[0].id, 7);
	rf_store_log_page_free(&pg);
	q = (struct rf_log_query){ .limit = 2, .endpoint = "stream",
	    .before_id = 7 };
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 2); /* i = 3, 0 */
	assert_int_equal(pg.items[0].id, 4);
	assert_int_equal(pg.items[1].id, 1);
	assert_false(pg.more);
	rf_store_log_page_free(&pg);
	q = (struct rf_log_query){ .limit = 200, .provider = "gemini" };
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 0);
	rf_store_log_page_free(&pg);

	q.limit = 0;
	assert_int_equal(rf_store_logs(s, &q, &pg), -1);
	q.limit = RF_LOG_PAGE_MAX + 1;
	assert_int_equal(rf_store_logs(s, &q, &pg), -1);
	assert_null(pg.items);
	rf_store_log_page_free(&pg);
	rf_store_log_page_free(NULL);
	rf_store_close(s);
}

static void
test_logs_null_fields(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_query q = { .limit = 1 };
	struct rf_log_page pg;
	struct rf_log_attempt a = { "mock", "skipped", NULL, 0, -1, 0 };
	struct rf_log_entry e = {
		.request_id = "r2", .ts_ms = T0, .endpoint = "stream",
		.strategy = "auto", .success = false,
		.error_code = "provider_unavailable", .http_status = 502,
		.latency_ms = 3, .ttft_ms = -1, .prompt_chars = 5,
		.prompt_tokens = -1, .completion_tokens = -1,
		.attempts = &a, .nattempts = 1,
	};

	assert_int_equal(rf_store_log_request(s, &e), 0);
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 1);
	assert_null(pg.items[0].e.final_provider);
	assert_null(pg.items[0].e.model);
	assert_null(pg.items[0].e.source);
	assert_null(pg.items[0].e.prompt_preview);
	assert_int_equal(pg.items[0].e.ttft_ms, -1);
	assert_int_equal(pg.items[0].e.prompt_tokens, -1);
	assert_int_equal(pg.items[0].e.ts_ms, T0);
	assert_int_equal(pg.items[0].e.http_status, 502);
	assert_null(pg.items[0].e.attempts[0].reason);
	assert_int_equal(pg.items[0].e.attempts[0].latency_ms, -1);
	rf_store_log_page_free(&pg);
	rf_store_close(s);
}

/* Text with the characters a bulk load escapes (backslash, tab, newline,
 * carriage return) and what looks like its markers (\N, \.) comes back
 * as written, NULL stays NULL, on every backend. */
static void
test_logs_text_round_trip(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_query q = { .limit = 1 };
	struct rf_log_page pg;
	static const char odd[] = "a\tb\\N\tc\\.\n\\\r\"q\" {x,y} \xc3\xa9 end\\";
	struct rf_log_attempt a = { "groq", "provider_error", odd, 500, 7, 0 };
	struct rf_log_entry e = sample_entry(T0);

	e.prompt_preview = odd;
	e.model = "\\N";
	e.source = "line1\nline2\t";
	e.attempts = &a;
	e.nattempts = 1;
	assert_int_equal(rf_store_log_request(s, &e), 0);
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 1);
	assert_string_equal(pg.items[0].e.prompt_preview, odd);
	assert_string_equal(pg.items[0].e.model, "\\N");
	assert_string_equal(pg.items[0].e.source, "line1\nline2\t");
	assert_string_equal(pg.items[0].e.attempts[0].reason, odd);
	assert_null(pg.items[0].e.error_code);
	rf_store_log_page_free(&pg);
	rf_store_close(s);
}

static void
test_prune_and_maintain(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry e = sample_entry(T0);
	int64_t cutoff = T0 + 10 * HOUR, pages;
	int n, calls = 0;
	char big[3001];

	memset(big, 'x', sizeof big - 1); /* rows of a page each: pages free */
	big[sizeof big - 1] = '\0';
	e.prompt_preview = big;

	for (int i = 0; i < 30; i++) { /* 3 per hour, hours 0..9 */
		e.ts_ms = T0 + i * (HOUR / 3);
		assert_int_equal(rf_store_log_request(s, &e), 0);
	}
	for (int i = 0; i < 5; i++) { /* kept: at and after the cutoff */
		e.ts_ms = cutoff + i;
		assert_int_equal(rf_store_log_request(s, &e), 0);
	}
	assert_int_equal(rf_store_rate_count(s, "old", 1, T0), 1);
	assert_int_equal(rf_store_rate_count(s, "new", 1, cutoff), 1);
	/* Batches of 8: requests, minute rows and hour rows each <= 8. */
	while ((n = rf_store_prune(s, cutoff, 8)) >= 8)
		calls++;
	assert_true(n >= 0);
	assert_true(calls >= 4); /* 30 requests need 4 batches */
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 5);
	assert_int_equal(q_int(f, "SELECT min(ts_ms) FROM requests"), cutoff);
	assert_int_equal(q_int(f, "SELECT count(*) FROM attempts"), 15);
	assert_int_equal(q_int(f, "SELECT count(*) FROM usage_minute"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM usage_hour"), 1);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_hour"), 5);
	assert_int_equal(q_int(f, "SELECT count(*) FROM rate_limit"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM rate_limit WHERE"
	    " client = 'new'"), 1);
	assert_int_equal(rf_store_prune(s, cutoff, 8), 0);
	/* A rollup row whose period is not over at the cutoff stays. */
	assert_int_equal(rf_store_prune(s, cutoff + 1, 8), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM usage_minute"), 1);
	assert_int_equal(rf_store_prune(NULL, cutoff, 8), -1);
	assert_int_equal(rf_store_prune(s, cutoff, 0), -1);
	assert_int_equal(rf_store_maintain(NULL), -1);
	if (!is_sqlite(f)) { /* autovacuum's work: maintain only answers */
		assert_int_equal(rf_store_maintain(s), 0);
		rf_store_close(s);
		return;
	}

	pages = q_int(f, "PRAGMA page_count");
	assert_true(q_int(f, "PRAGMA freelist_count") > 10);
	assert_int_equal(rf_store_maintain(s), 0);
	assert_int_equal(q_int(f, "PRAGMA freelist_count"), 0);
	assert_true(q_int(f, "PRAGMA page_count") < pages - 10);
	rf_store_close(s);
}

/* ---- cancelled requests (one meaning per number) ---- */

/* A client that hung up: an error row with code client_closed. */
static void
log_hangup(struct rf_store *s, int64_t ts, const char *final)
{
	struct rf_log_attempt a = { final, "client_closed", NULL, 200, 40, 0 };
	struct rf_log_entry e = sample_entry(ts);

	e.endpoint = "stream";
	e.final_provider = e.attempted_provider = final;
	e.fallback = false;
	e.success = false;
	e.error_code = "client_closed";
	e.http_status = 499;
	e.latency_ms = 40;
	e.attempts = &a;
	e.nattempts = 1;
	assert_int_equal(rf_store_log_request(s, &e), 0);
}

static void
test_usage_counts_cancelled_apart(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_usage_report r;

	log_simple(s, T0, "groq", true, false, 10);
	log_simple(s, T0 + 1, "groq", false, false, 20);
	log_hangup(s, T0 + 2, "groq");
	log_hangup(s, T0 + MINUTE, "mock");
	assert_int_equal(q_int(f, "SELECT sum(cancelled) FROM usage_minute"), 2);
	assert_int_equal(q_int(f, "SELECT sum(errors) FROM usage_hour"), 1);
	assert_int_equal(rf_store_usage(s, T0, T0 + HOUR, MINUTE, &r), 0);
	assert_int_equal(r.totals.requests, 4);
	assert_int_equal(r.totals.successes, 1);
	assert_int_equal(r.totals.errors, 1);     /* not the hang-ups */
	assert_int_equal(r.totals.cancelled, 2);
	assert_int_equal(r.buckets[0].errors, 1);
	assert_int_equal(r.buckets[0].cancelled, 1);
	assert_int_equal(r.buckets[1].cancelled, 1);
	assert_string_equal(r.providers[0].provider, "groq");
	assert_int_equal(r.providers[0].errors, 1);
	assert_int_equal(r.providers[0].cancelled, 1);
	rf_store_usage_free(&r);
	/* The hourly rollups say the same. */
	assert_int_equal(rf_store_usage(s, T0, T0 + HOUR, HOUR, &r), 0);
	assert_int_equal(r.totals.errors, 1);
	assert_int_equal(r.totals.cancelled, 2);
	rf_store_usage_free(&r);
	rf_store_close(s);
}

static void
test_logs_status_cancelled(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_query q = { .limit = 200, .status = "cancelled" };
	struct rf_log_page pg;

	log_simple(s, T0, "groq", true, false, 10);     /* id 1 */
	log_simple(s, T0 + 1, "groq", false, false, 20); /* id 2 */
	log_hangup(s, T0 + 2, "groq");                  /* id 3 */
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 1);
	assert_int_equal(pg.items[0].id, 3);
	assert_string_equal(rf_store_entry_status(&pg.items[0].e),
	    "cancelled");
	rf_store_log_page_free(&pg);
	q.status = "error";
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 1);
	assert_int_equal(pg.items[0].id, 2);
	assert_string_equal(rf_store_entry_status(&pg.items[0].e), "error");
	rf_store_log_page_free(&pg);
	q = (struct rf_log_query){ .limit = 200, .status = "cancelled",
	    .endpoint = "stream", .provider = "groq" };
	assert_int_equal(rf_store_logs(s, &q, &pg), 0);
	assert_int_equal(pg.nitems, 1);
	rf_store_log_page_free(&pg);
	rf_store_close(s);
}

/* ---- metrics: cumulative totals and the processes' gauges ---- */

/* The count of series (name, labels) in a snapshot; -1 when absent. */
static int64_t
series_count(const struct rf_metrics_snapshot *m, const char *name,
    const char *labels)
{
	for (size_t i = 0; i < m->nrows; i++)
		if (strcmp(m->rows[i].name, name) == 0 &&
		    strcmp(m->rows[i].labels, labels) == 0)
			return m->rows[i].count;
	return -1;
}

/* The request duration's series: its count is the requests counter. */
#define REQ "gen_ai_server_request_duration_seconds"
#define REQ_OK "endpoint=\"chat\",outcome=\"success\"," \
	"final_provider=\"openrouter\""
#define REQ_CANCELLED "endpoint=\"stream\",outcome=\"cancelled\"," \
	"final_provider=\"groq\""

static void
test_metric_totals_never_go_back(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry a = sample_entry(T0), b = sample_entry(T0 + 1);
	const struct rf_log_entry *batch[2] = { &a, &b };
	struct rf_metrics_snapshot m;
	const char *ids[] = { "groq", "openrouter" };

	assert_int_equal(rf_store_log_requests(s, batch, 2), 0);
	log_hangup(s, T0 + 2, "groq");
	b.endpoint = NULL; /* a batch that fails adds nothing */
	assert_int_equal(rf_store_log_requests(s, batch, 2), -1);
	assert_int_equal(rf_store_metrics(s, ids, 2, 0, &m), 0);
	assert_int_equal(series_count(&m, REQ, REQ_OK), 2);
	assert_int_equal(series_count(&m, REQ, REQ_CANCELLED), 1);
	assert_int_equal(series_count(&m, "relayforge_fallbacks_total",
	    "attempted_provider=\"groq\",final_provider=\"openrouter\""), 2);
	assert_int_equal(series_count(&m,
	    "gen_ai_client_operation_duration_seconds",
	    "gen_ai_provider_name=\"groq\",outcome=\"cancelled\""), 1);
	assert_int_equal(series_count(&m, "relayforge_attempts_total",
	    "provider=\"sambanova\",outcome=\"skipped\""), 2);
	/* Rows come by name, then labels. */
	for (size_t i = 1; i < m.nrows; i++) {
		int c = strcmp(m.rows[i - 1].name, m.rows[i].name);
		assert_true(c < 0 || (c == 0 && strcmp(m.rows[i - 1].labels,
		    m.rows[i].labels) < 0));
	}
	rf_store_metrics_free(&m);

	/* Retention deletes every request: the totals stay. */
	while (rf_store_prune(s, T0 + 10 * HOUR, 500) >= 500)
		;
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM usage_minute"), 0);
	assert_int_equal(rf_store_metrics(s, ids, 2, 0, &m), 0);
	assert_int_equal(series_count(&m, REQ, REQ_OK), 2);
	assert_int_equal(series_count(&m, REQ, REQ_CANCELLED), 1);
	rf_store_metrics_free(&m);
	/* A new connection (a restarted process) reads the same. */
	rf_store_close(s);
	s = open_ok(f);
	log_hangup(s, T0 + 20 * HOUR, "groq");
	assert_int_equal(rf_store_metrics(s, ids, 2, 0, &m), 0);
	assert_int_equal(series_count(&m, REQ, REQ_CANCELLED), 2);
	rf_store_metrics_free(&m);
	rf_store_metrics_free(NULL);
	assert_int_equal(rf_store_metrics(NULL, ids, 2, 0, &m), -1);
	rf_store_close(s);
}

static void
test_metrics_provider_state(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_metrics_snapshot m;
	const char *ids[] = { "groq", "cerebras", "gemini" };

	assert_int_equal(rf_store_provider_cooldown(s, "groq", T0 + 5000,
	    "provider_rate_limited"), 0);
	assert_int_equal(rf_store_provider_quota(s, "cerebras", 99, -1, 0, T0),
	    0);
	assert_int_equal(rf_store_metrics(s, ids, 3, 0, &m), 0);
	assert_int_equal(m.nproviders, 3);
	assert_int_equal(m.providers[0].cooldown_until_ms, T0 + 5000);
	assert_int_equal(m.providers[0].quota_remaining_requests, -1);
	assert_int_equal(m.providers[1].cooldown_until_ms, 0);
	assert_int_equal(m.providers[1].quota_remaining_requests, 99);
	assert_int_equal(m.providers[1].quota_remaining_tokens, -1);
	assert_int_equal(m.providers[2].quota_remaining_tokens, -1);
	assert_int_equal(m.nrows, 0);
	rf_store_metrics_free(&m);
	rf_store_close(s);
}

static void
test_gauges_live_processes_and_dropped(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_metrics_snapshot m;
	struct rf_process_gauges a = { 3, 10, 4 }, b = { 2, 1, 1 };

	assert_int_equal(rf_store_gauges_publish(s, "h:1:1", &a, T0), 0);
	assert_int_equal(rf_store_gauges_publish(s, "h:2:1", &b, T0 + 9000), 0);
	/* Both alive at T0: sums; only b alive after T0. */
	assert_int_equal(rf_store_metrics(s, NULL, 0, T0, &m), 0);
	assert_int_equal(m.live.open_streams, 5);
	assert_int_equal(m.live.queue_rows, 11);
	assert_int_equal(m.live_processes, 2);
	assert_int_equal(m.dropped_rows, 5);
	rf_store_metrics_free(&m);
	assert_int_equal(rf_store_metrics(s, NULL, 0, T0 + 1, &m), 0);
	assert_int_equal(m.live.open_streams, 2);
	assert_int_equal(m.live_processes, 1);
	assert_int_equal(m.dropped_rows, 5); /* a dead process's still count */
	rf_store_metrics_free(&m);
	/* A process's dropped count never goes down; an older report of it
	 * changes nothing. */
	a.dropped_rows = 2;
	a.open_streams = 0;
	assert_int_equal(rf_store_gauges_publish(s, "h:1:1", &a, T0 + 100), 0);
	a.open_streams = 9;
	assert_int_equal(rf_store_gauges_publish(s, "h:1:1", &a, T0 + 50), 0);
	assert_int_equal(rf_store_metrics(s, NULL, 0, T0, &m), 0);
	assert_int_equal(m.live.open_streams, 2);
	assert_int_equal(m.dropped_rows, 5);
	rf_store_metrics_free(&m);
	/* Retention takes the silent process's row, not its dropped rows. */
	assert_int_equal(rf_store_prune(s, T0 + 1000, 500), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM process_gauges"), 1);
	assert_int_equal(rf_store_metrics(s, NULL, 0, 0, &m), 0);
	assert_int_equal(m.live_processes, 1);
	assert_int_equal(m.dropped_rows, 5);
	rf_store_metrics_free(&m);
	assert_int_equal(rf_store_prune(s, T0 + 10000, 500), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM process_gauges"), 0);
	assert_int_equal(rf_store_metrics(s, NULL, 0, 0, &m), 0);
	assert_int_equal(m.dropped_rows, 5);
	assert_int_equal(m.live_processes, 0);
	rf_store_metrics_free(&m);
	assert_int_equal(rf_store_gauges_publish(s, NULL, &a, T0), -1);
	rf_store_close(s);
}

/* A spooled batch with a row the store refuses: the written rows count
 * in the metrics, the refused one does not. */
static void
test_spooled_refused_row_not_counted(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry a = sample_entry(T0), b = sample_entry(T0 + 1),
	    c = sample_entry(T0 + 2);
	const struct rf_log_entry *batch[3] = { &a, &b, &c };
	struct rf_metrics_snapshot m;
	long refused = 0;

	b.endpoint = NULL;
	assert_int_equal(rf_store_log_spooled(s, "sp-1", 0, 300, batch, 3,
	    &refused), 0);
	assert_int_equal(refused, 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 2);
	/* Nor in the rollups, summed for the batch before its commit. */
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_minute"), 2);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_hour"), 2);
	assert_int_equal(rf_store_metrics(s, NULL, 0, 0, &m), 0);
	assert_int_equal(series_count(&m, REQ, REQ_OK),
	    2);
	rf_store_metrics_free(&m);
	/* The same batch again is written no more, counted no more. */
	assert_int_equal(rf_store_log_spooled(s, "sp-1", 0, 300, batch, 3,
	    &refused), 0);
	assert_int_equal(rf_store_metrics(s, NULL, 0, 0, &m), 0);
	assert_int_equal(series_count(&m, REQ, REQ_OK),
	    2);
	rf_store_metrics_free(&m);
	rf_store_close(s);
}

/* A version-2 file, written when a hang-up counted as an error: opening
 * it moves the hang-ups of its rollups to cancelled (from the requests
 * still on record) and leaves the real errors. */
static void
test_version_2_file_moves_hangups(void **state)
{
	struct fixture *f = *state;
	const char *v3 = strstr(rf_schema_sqlite, "-- Version 3");
	struct rf_usage_report r;
	struct rf_store *s;
	sqlite3 *db;
	char *v2;

	assert_non_null(v3);
	v2 = strndup(rf_schema_sqlite, (size_t)(v3 - rf_schema_sqlite));
	assert_non_null(v2);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK);
	free(v2);
	/* Minute T0: one hang-up and one timeout of groq (both errors). */
	assert_int_equal(sqlite3_exec(db,
	    "INSERT INTO requests (request_id, ts_ms, endpoint, strategy,"
	    " final_provider, fallback, degraded, demo, status, error_code,"
	    " http_status, latency_ms, prompt_chars) VALUES"
	    " ('h', 1767268800001, 'stream', 'auto', 'groq', 0, 0, 0, 'error',"
	    " 'client_closed', 499, 5, 1),"
	    " ('t', 1767268800002, 'chat', 'auto', 'groq', 0, 0, 0, 'error',"
	    " 'provider_timeout', 504, 5, 1);"
	    "INSERT INTO usage_minute (minute_ms, provider, requests, successes,"
	    " errors, fallbacks, latency_sum, prompt_tokens, completion_tokens)"
	    " VALUES (1767268800000, 'groq', 2, 0, 2, 0, 10, 0, 0);"
	    "INSERT INTO usage_hour (hour_ms, provider, requests, successes,"
	    " errors, fallbacks, latency_sum, prompt_tokens, completion_tokens)"
	    " VALUES (1767268800000, 'groq', 2, 0, 2, 0, 10, 0, 0);",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(q_int(f, "PRAGMA user_version"), 2);
	s = open_ok(f);
	assert_int_equal(q_int(f, "PRAGMA user_version"), 4);
	for (int hourly = 0; hourly < 2; hourly++) {
		assert_int_equal(rf_store_usage(s, T0, T0 + HOUR, hourly ? HOUR :
		    MINUTE, &r), 0);
		assert_int_equal(r.totals.requests, 2);
		assert_int_equal(r.totals.errors, 1);
		assert_int_equal(r.totals.cancelled, 1);
		rf_store_usage_free(&r);
	}
	rf_store_close(s);
}

/* ---- waiting: the budget and the pool's bound ----
 * Another process holds the write lock (as an operator's sqlite3 shell
 * would): a call with a budget gives up within it instead of waiting the
 * 10 s busy timeout, and the pool does not wait for ever for a connection.
 * The bounds asserted are generous (the subject here is time): a second,
 * against a budget of 5 ms and a wait of 10 s before. */

static sqlite3 *
lock_file(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
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
test_budget_bounds_the_lock_wait(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	const char *ids[1] = { "groq" };
	struct rf_provider_state st;
	sqlite3 *lk = lock_file(f->path);
	int64_t t0 = rf_mono_ms();
	int n = -1;

	assert_int_equal(rf_store_budget(RF_STORE_HOT_MS), 0);
	assert_int_equal(rf_store_provider_failed(s, "groq", "x", T0, 0, &n), -1);
	assert_int_equal(n, 0);
	assert_int_equal(rf_store_rate_count(s, "c", 1, T0), -1);
	assert_true(rf_mono_ms() - t0 < 1000);
	/* Reads do not need the write lock (WAL). */
	assert_int_equal(rf_store_provider_states(s, ids, 1, &st), 0);
	unlock_file(lk);
	assert_int_equal(rf_store_provider_failed(s, "groq", "x", T0, 0, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rf_store_budget(0), RF_STORE_HOT_MS);
	/* Nothing of the refused calls was written. */
	assert_int_equal(q_int(f, "SELECT consecutive_failures FROM"
	    " provider_state WHERE provider = 'groq'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM rate_limit"), 0);
	rf_store_close(s);
}

struct holder {
	struct rf_store *s;
	int rc;
	atomic_bool done;
};

/* Holds the pool's only connection: a write waiting for the lock with the
 * default budget. */
static void *
holder_main(void *arg)
{
	struct holder *h = arg;

	h->rc = rf_store_provider_failed(h->s, "groq", "x", T0, 0, NULL);
	atomic_store(&h->done, true);
	return NULL;
}

static void
test_pool_acquire_is_bounded(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct holder h = { .rc = -2 };
	sqlite3 *lk;
	pthread_t th;
	int rc = 0, was;

	h.s = rf_store_open_pool(f->db, 1, err, sizeof err);
	assert_non_null(h.s);
	lk = lock_file(f->path);
	assert_int_equal(pthread_create(&th, NULL, holder_main, &h), 0);
	/* Until the holder has the connection, a ping gets it (reads pass the
	 * lock); then a ping with a budget gives up at once. */
	was = rf_store_budget(RF_STORE_HOT_MS);
	for (int i = 0; i < 2000 && rc == 0; i++) {
		int64_t t0 = rf_mono_ms();

		rc = rf_store_ping(h.s);
		assert_true(rf_mono_ms() - t0 < 1000);
		if (rc == 0)
			rf_sleep_ms(1);
	}
	assert_int_equal(rc, -1);
	/* Without a budget: RF_STORE_ACQUIRE_MS, still while the holder
	 * waits (it would for 10 s). */
	rf_store_budget(0);
	assert_int_equal(rf_store_ping(h.s), -1);
	assert_false(atomic_load(&h.done));
	rf_store_budget(was);
	unlock_file(lk);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(h.rc, 0);
	assert_int_equal(rf_store_ping(h.s), 0);
	rf_store_close(h.s);
}

/* ---- the backend from the form of RELAYFORGE_DB ---- */

/* A PostgreSQL URI is recognised but not built in: the open fails with a
 * reason that never repeats the URI (it may hold a password). */
/* What may be printed of RELAYFORGE_DB: never a password or parameters. */
static void
test_redact(void **state)
{
	static const char *const cases[][2] = {
		{ "var/relayforge.db", "var/relayforge.db" },
		{ "postgresql://rf:s3cret-pw@db.example:5432/rf",
		    "postgresql://rf:***@db.example:5432/rf" },
		{ "postgres://rf@db/rf?sslmode=require&password=s3cret-pw",
		    "postgres://rf@db/rf?..." },
		{ "postgresql://db/rf", "postgresql://db/rf" },
		{ "postgresql://rf:s3cret-pw@db/rf?sslmode=verify-full",
		    "postgresql://rf:***@db/rf?..." },
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rf_store_redact(cases[i][0], out, sizeof(out));
		assert_string_equal(out, cases[i][1]);
		assert_null(strstr(out, "s3cret"));
	}
	rf_store_redact(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

/* A version-2 file (before the node column) upgrades in place: its rows
 * stay, without a node; new rows have one. */
static void
test_upgrade_from_version_2(void **state)
{
	struct fixture *f = *state;
	const char *v3 = strstr(rf_schema_sqlite, "-- Version 3");
	char *v2, err[256] = "", t[64];
	struct rf_store *s;
	struct rf_log_entry e = sample_entry(T0);
	sqlite3 *db;

	assert_non_null(v3);
	v2 = strndup(rf_schema_sqlite, (size_t)(v3 - rf_schema_sqlite));
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO requests (request_id,"
	    " ts_ms, endpoint, strategy, fallback, degraded, demo, status,"
	    " http_status, latency_ms, prompt_chars) VALUES ('old', 1, 'chat',"
	    " 'auto', 0, 0, 0, 'success', 200, 5, 3)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	free(v2);
	assert_int_equal(sq_int(f->path, "PRAGMA user_version"), 2);
	s = rf_store_open(f->db, err, sizeof err);
	assert_non_null(s);
	assert_int_equal(q_int(f, "PRAGMA user_version"), 4);
	assert_int_equal(rf_store_set_node("gw-new"), 0);
	assert_int_equal(rf_store_log_request(s, &e), 0);
	q_text(f, "SELECT group_concat(request_id || '=' || coalesce(node,"
	    " '-'), ',') FROM (SELECT * FROM requests ORDER BY id)", t,
	    sizeof t);
	assert_string_equal(t, "old=-,req-1=gw-new");
	rf_store_close(s);
}

/* An unreachable server: the open fails at once with a reason that never
 * repeats the password. */
static void
test_open_postgres_unreachable(void **state)
{
	static const char *const uris[] = {
		"postgresql://relay:s3cret-pw@/relayforge?host=/nonexistent-rf",
		"postgres://relay:s3cret-pw@/relayforge?host=/nonexistent-rf"
		    "&sslmode=disable",
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
		strcpy(err, "");
		assert_null(rf_store_open(uris[i], err, sizeof err));
		assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
		assert_null(strstr(err, "s3cret"));
		strcpy(err, "");
		assert_null(rf_store_open_pool(uris[i], 4, err, sizeof err));
		assert_null(strstr(err, "s3cret"));
	}
	assert_null(rf_store_open(NULL, err, sizeof err));
}

/* ---- the spool's slots, the node, copying ---- */

static void
test_spool_slots_exactly_once(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry e1 = sample_entry(T0), e2 = sample_entry(T0 + 1);
	const struct rf_log_entry *rows[2] = { &e1, &e2 };
	char why[160] = "";
	int64_t at = -1;
	long refused = -1;

	e2.request_id = "req-2";
	assert_int_equal(rf_store_spool_progress(s, "a.spool", &at), 0);
	assert_int_equal(at, 0);
	assert_int_equal(rf_store_log_spooled(s, "a.spool", 0, 100, rows, 2,
	    &refused), 0);
	assert_int_equal(refused, 0);
	/* The same batch again (a writer that died before its bookkeeping):
	 * nothing written twice. */
	assert_int_equal(rf_store_log_spooled(s, "a.spool", 0, 100, rows, 2,
	    &refused), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM attempts"), 6);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_hour"), 2);
	assert_int_equal(rf_store_spool_progress(s, "a.spool", &at), 0);
	assert_int_equal(at, 100);
	/* A batch that starts past the stored progress moves it only. */
	assert_int_equal(rf_store_log_spooled(s, "a.spool", 100, 150, NULL, 0,
	    &refused), 0);
	assert_int_equal(rf_store_spool_progress(s, "a.spool", &at), 0);
	assert_int_equal(at, 150);
	/* A row the schema refuses (no endpoint) is left out alone. */
	e2.endpoint = NULL;
	e1.request_id = "req-3";
	assert_int_equal(rf_store_log_spooled(s, "a.spool", 150, 200, rows, 2,
	    &refused), 0);
	assert_int_equal(refused, 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 3);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests WHERE"
	    " request_id = 'req-3'"), 1);
	assert_int_equal(rf_store_spool_forget(s, "a.spool"), 0);
	assert_int_equal(rf_store_spool_progress(s, "a.spool", &at), 0);
	assert_int_equal(at, 0);
	assert_int_equal(rf_store_writable(s, 200, why, sizeof why), 0);
	rf_store_close(s);
}

/* Every row records the machine that served it; logs give it back. */
static void
test_node_recorded(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_log_entry e = sample_entry(T0);
	struct rf_log_query q = { .limit = 10 };
	struct rf_log_page page;
	char t[80];

	assert_true(rf_store_node_valid(rf_store_node()));
	assert_int_equal(rf_store_set_node("bad node"), -1);
	assert_int_equal(rf_store_set_node(""), -1);
	assert_int_equal(rf_store_set_node("gw-a.example_1"), 0);
	assert_int_equal(rf_store_log_request(s, &e), 0);
	e.node = "gw-b";
	assert_int_equal(rf_store_log_request(s, &e), 0);
	q_text(f, "SELECT group_concat(node, ',') FROM (SELECT node FROM"
	    " requests ORDER BY id) AS n", t, sizeof t);
	assert_string_equal(t, "gw-a.example_1,gw-b");
	assert_int_equal(rf_store_logs(s, &q, &page), 0);
	assert_int_equal(page.nitems, 2);
	assert_string_equal(page.items[0].e.node, "gw-b");
	assert_string_equal(page.items[1].e.node, "gw-a.example_1");
	rf_store_log_page_free(&page);
	rf_store_close(s);
}

/* A SQLite store's history into this backend: every row once, oldest
 * first, with its attempts and rollups; never into a store with rows. */
static void
test_copy_store(void **state)
{
	struct fixture *f = *state;
	struct rf_store *dst = open_ok(f), *src;
	char path[200], err[256] = "";
	long rows = -1;

	snprintf(path, sizeof path, "%s/source.db", f->dir);
	src = rf_store_open(path, err, sizeof err);
	assert_non_null(src);
	log_mixed(src, 450); /* three pages, the last one short */
	assert_int_equal(rf_store_copy(src, dst, &rows, err, sizeof err), 0);
	assert_int_equal(rows, 450);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 450);
	assert_int_equal(q_int(f, "SELECT count(DISTINCT request_id)"
	    " FROM requests"), 450);
	assert_int_equal(q_int(f, "SELECT count(*) FROM attempts"), 675);
	assert_int_equal(q_int(f, "SELECT sum(requests) FROM usage_minute"),
	    450);
	/* Oldest first: ids grow with the arrival time. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests a JOIN"
	    " requests b ON b.id > a.id AND b.ts_ms < a.ts_ms"), 0);
	/* A second run is refused, nothing written. */
	assert_int_equal(rf_store_copy(src, dst, &rows, err, sizeof err), -1);
	assert_non_null(strstr(err, "already has requests"));
	assert_int_equal(rows, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 450);
	rf_store_close(src);
	rf_store_close(dst);
	unlink(path);
	snprintf(path, sizeof path, "%s/source.db-wal", f->dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/source.db-shm", f->dir);
	unlink(path);
}

/* ---- what PostgreSQL adds ---- */

static void
test_pg_open_creates_schema(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	struct rf_store *again = open_ok(f); /* the version is current */

	assert_int_equal(q_int(f, "SELECT max(version) FROM schema_version"),
	    2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM"
	    " information_schema.tables WHERE table_schema ="
	    " current_schema() AND table_name IN ('requests', 'attempts',"
	    " 'provider_state', 'rate_limit', 'usage_minute', 'usage_hour',"
	    " 'spool_progress', 'metric_totals', 'process_gauges')"), 9);
	assert_int_equal(q_int(f, "SELECT count(*) FROM"
	    " information_schema.columns WHERE table_schema ="
	    " current_schema() AND table_name = 'usage_hour'"
	    " AND column_name ~ '^h[0-9]+$'"), 72);
	assert_int_equal(rf_store_ping(s), 0);
	rf_store_close(again);
	rf_store_close(s);
}

/* A version-1 store (the PostgreSQL backend before metrics) is migrated
 * in place: its rows stay, its rollups gain the cancelled column, and the
 * hang-ups they counted in errors move over -- once: the file applied
 * again by hand (psql -f) moves nothing more. */
static void
test_pg_version_1_store_moves_hangups(void **state)
{
	struct fixture *f = *state;
	const char *v2 = strstr(rf_schema_pg, "-- Version 2");
	struct rf_usage_report r;
	struct rf_store *s;
	char *v1;

	assert_non_null(v2);
	v1 = strndup(rf_schema_pg, (size_t)(v2 - rf_schema_pg));
	assert_non_null(v1);
	pg_sql(f->schema, v1);
	free(v1);
	/* Minute T0: one hang-up and one timeout of groq (both errors). */
	pg_sql(f->schema,
	    "INSERT INTO requests (request_id, ts_ms, endpoint, strategy,"
	    " final_provider, fallback, degraded, demo, status, error_code,"
	    " http_status, latency_ms, prompt_chars) VALUES"
	    " ('h', 1767268800001, 'stream', 'auto', 'groq', 0, 0, 0, 'error',"
	    " 'client_closed', 499, 5, 1),"
	    " ('t', 1767268800002, 'chat', 'auto', 'groq', 0, 0, 0, 'error',"
	    " 'provider_timeout', 504, 5, 1);"
	    "INSERT INTO usage_minute (minute_ms, provider, requests, successes,"
	    " errors, fallbacks, latency_sum, prompt_tokens, completion_tokens)"
	    " VALUES (1767268800000, 'groq', 2, 0, 2, 0, 10, 0, 0);"
	    "INSERT INTO usage_hour (hour_ms, provider, requests, successes,"
	    " errors, fallbacks, latency_sum, prompt_tokens, completion_tokens)"
	    " VALUES (1767268800000, 'groq', 2, 0, 2, 0, 10, 0, 0);");
	assert_int_equal(q_int(f, "SELECT max(version) FROM schema_version"),
	    1);
	s = open_ok(f);
	assert_int_equal(q_int(f, "SELECT max(version) FROM schema_version"),
	    2);
	pg_sql(f->schema, rf_schema_pg);
	for (int hourly = 0; hourly < 2; hourly++) {
		assert_int_equal(rf_store_usage(s, T0, T0 + HOUR, hourly ? HOUR :
		    MINUTE, &r), 0);
		assert_int_equal(r.totals.requests, 2);
		assert_int_equal(r.totals.errors, 1);
		assert_int_equal(r.totals.cancelled, 1);
		rf_store_usage_free(&r);
	}
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 2);
	rf_store_close(s);
}

/* Several processes open one fresh schema at once: one migrates under the
 * advisory lock, the others wait and find it done. */
static void
test_pg_concurrent_migration(void **state)
{
	struct fixture *f = *state;
	char sql[160];

	for (int round = 0; round < 3; round++) {
		snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE;"
		    " CREATE SCHEMA %s", f->schema, f->schema);
		pg_sql("", sql);
		fork_workers(f->db, 1);
		assert_int_equal(q_int(f, "SELECT count(*) FROM requests"),
		    WORKERS);
		assert_int_equal(q_int(f, "SELECT count(*) FROM"
		    " schema_version"), 2);
	}
}

/* An operator's EXCLUSIVE lock on the shared tables: a call with a budget
 * gives up within it (a generous bound: a second against 5 ms; the
 * server would wait 10 s), nothing written; the connection it gave up is
 * opened again by the next call without a budget. */
static void
test_pg_budget_bounds_the_lock_wait(void **state)
{
	struct fixture *f = *state;
	struct rf_store *s = open_ok(f);
	PGconn *lk = pg_raw(f->schema);
	int64_t t0;
	int was, fails = 0;

	assert_int_equal(rf_store_provider_failed(s, "groq", "x", T0, 0, NULL),
	    0);
	PQclear(pg_exec(lk, "BEGIN; LOCK TABLE provider_state, rate_limit"
	    " IN EXCLUSIVE MODE"));
	was = rf_store_budget(RF_STORE_HOT_MS);
	t0 = rf_mono_ms();
	assert_int_equal(rf_store_provider_failed(s, "groq", "x", T0, 0,
	    &fails), -1);
	assert_int_equal(rf_store_rate_count(s, "c", 1, T0), -1);
	assert_true(rf_mono_ms() - t0 < 1000);
	assert_int_equal(fails, 0);
	rf_store_budget(was);
	PQclear(pg_exec(lk, "COMMIT"));
	PQfinish(lk);
	assert_int_equal(rf_store_ping(s), 0);
	assert_int_equal(q_int(f, "SELECT consecutive_failures FROM"
	    " provider_state WHERE provider = 'groq'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM rate_limit"), 0);
	rf_store_close(s);
}

/* The server drops every connection (as a restart does): calls fail, then
 * the pool connects again -- not on a call with a budget -- and nothing
 * of the password shows in what is said. */
static void
test_pg_reconnects(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	struct rf_store *s = rf_store_open_pool(f->db, 3, err, sizeof err);
	struct rf_log_entry e = sample_entry(T0);
	int was, ok = 0;

	assert_non_null(s);
	pg_sql("", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE application_name = 'relayforge'"
	    " AND pid <> pg_backend_pid()");
	/* Each connection finds out on its next statement. */
	for (int i = 0; i < 3; i++)
		rf_store_ping(s);
	was = rf_store_budget(RF_STORE_HOT_MS);
	assert_int_equal(rf_store_ping(s), -1); /* no reconnect on a budget */
	rf_store_budget(was);
	for (int i = 0; i < 100 && !ok; i++) { /* backoff: 100 ms first */
		ok = rf_store_log_request(s, &e) == 0;
		if (!ok)
			rf_sleep_ms(50);
	}
	assert_true(ok);
	assert_int_equal(q_int(f, "SELECT count(*) FROM requests"), 1);
	rf_store_close(s);
}

/* A wrong password: refused, and the message does not repeat it. */
static void
test_pg_wrong_password_not_said(void **state)
{
	struct fixture *f = *state;
	char uri[600], err[256] = "", *at;

	(void)state;
	snprintf(uri, sizeof uri, "%s", f->db);
	at = strchr(uri + strlen("postgresql://"), '@');
	assert_non_null(at);
	/* rf:<password>@ -> rf:wrong-pw-SECRET7@ */
	{
		char *colon = strchr(uri + strlen("postgresql://"), ':');
		char rest[600];

		assert_non_null(colon);
		snprintf(rest, sizeof rest, "%s", at);
		snprintf(colon, sizeof uri - (size_t)(colon - uri),
		    ":wrong-pw-SECRET7%s", rest);
	}
	assert_null(rf_store_open(uri, err, sizeof err));
	assert_true(err[0] != '\0');
	assert_null(strstr(err, "wrong-pw"));
}

/* The contract tests, run once per backend. */
static const struct CMUnitTest contract[] = {
	cmocka_unit_test_setup_teardown(test_log_request_values, setup, teardown),
	cmocka_unit_test_setup_teardown(test_usage_rollup_accumulates, setup, teardown),
	cmocka_unit_test_setup_teardown(test_log_null_mappings, setup, teardown),
	cmocka_unit_test_setup_teardown(test_log_failure_leaves_nothing, setup, teardown),
	cmocka_unit_test_setup_teardown(test_log_batch_all_or_nothing, setup, teardown),
	cmocka_unit_test_setup_teardown(test_concurrent_processes, setup, teardown),
	cmocka_unit_test_setup_teardown(test_concurrent_threads, setup, teardown),
	cmocka_unit_test_setup_teardown(test_provider_threshold_and_ok, setup, teardown),
	cmocka_unit_test_setup_teardown(test_provider_explicit_cooldown_max, setup, teardown),
	cmocka_unit_test_setup_teardown(test_provider_quota, setup, teardown),
	cmocka_unit_test_setup_teardown(test_provider_failed_counts, setup, teardown),
	cmocka_unit_test_setup_teardown(test_provider_cooldown_later_wins, setup, teardown),
	cmocka_unit_test_setup_teardown(test_provider_quota_records_only, setup, teardown),
	cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
	cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
	cmocka_unit_test_setup_teardown(test_usage_buckets_and_totals, setup, teardown),
	cmocka_unit_test_setup_teardown(test_usage_percentiles, setup, teardown),
	cmocka_unit_test_setup_teardown(test_provider_reports, setup, teardown),
	cmocka_unit_test_setup_teardown(test_logs_pages, setup, teardown),
	cmocka_unit_test_setup_teardown(test_logs_null_fields, setup, teardown),
	cmocka_unit_test_setup_teardown(test_usage_rollup_of_a_batch, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_logs_text_round_trip, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_prune_and_maintain, setup, teardown),
	cmocka_unit_test_setup_teardown(test_spool_slots_exactly_once, setup, teardown),
	cmocka_unit_test_setup_teardown(test_node_recorded, setup, teardown),
	cmocka_unit_test_setup_teardown(test_copy_store, setup, teardown),
	cmocka_unit_test_setup_teardown(test_usage_counts_cancelled_apart, setup, teardown),
	cmocka_unit_test_setup_teardown(test_logs_status_cancelled, setup, teardown),
	cmocka_unit_test_setup_teardown(test_metric_totals_never_go_back, setup, teardown),
	cmocka_unit_test_setup_teardown(test_metrics_provider_state, setup, teardown),
	cmocka_unit_test_setup_teardown(test_gauges_live_processes_and_dropped, setup, teardown),
	cmocka_unit_test_setup_teardown(test_spooled_refused_row_not_counted, setup, teardown),
};

#define NCONTRACT (sizeof contract / sizeof contract[0])

int
main(void)
{
	const struct CMUnitTest sqlite_file[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_bad_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_version_2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_cascades, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_migration_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_and_maintain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_2_file_moves_hangups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_bounds_the_lock_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_acquire_is_bounded, setup, teardown),
	};
	const struct CMUnitTest selection[] = {
		cmocka_unit_test(test_open_postgres_unreachable),
		cmocka_unit_test(test_redact),
	};
	struct CMUnitTest pg_only[] = {
		cmocka_unit_test_setup_teardown(test_pg_open_creates_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_concurrent_migration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_version_1_store_moves_hangups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_budget_bounds_the_lock_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_reconnects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_wrong_password_not_said, setup, teardown),
	};
	struct CMUnitTest run[NCONTRACT];
	char name[64];
	bool pg = getenv("RF_TEST_PG_URI") != NULL &&
	    *getenv("RF_TEST_PG_URI") != '\0';
	int failed = 0;

	if (!pg)
		fprintf(stderr, "RF_TEST_PG_URI is not set: the PostgreSQL"
		    " runs are skipped (tests/run.sh sets it)\n");
	for (size_t b = 0; b < (pg ? 2 : 1); b++) {
		for (size_t i = 0; i < NCONTRACT; i++) {
			run[i] = contract[i];
			run[i].initial_state = (void *)&backends[b];
		}
		snprintf(name, sizeof name, "store contract (%s)",
		    backends[b].name);
		failed += _cmocka_run_group_tests(name, run, NCONTRACT, NULL,
		    NULL);
	}
	failed += cmocka_run_group_tests_name("store: the SQLite file",
	    sqlite_file, NULL, NULL);
	failed += cmocka_run_group_tests_name("store: backend selection",
	    selection, NULL, NULL);
	for (size_t i = 0; pg && i < sizeof pg_only / sizeof pg_only[0]; i++)
		pg_only[i].initial_state = (void *)&backends[1];
	if (pg)
		failed += cmocka_run_group_tests_name("store: PostgreSQL",
		    pg_only, NULL, NULL);
	return failed;
}
