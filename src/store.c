/*
 * store: the SQLite file every responder process and thread shares
 * (SPEC section 7).  One connection per thread, opened after any fork; the
 * schema compiled into the binary (build/schema.h, from
 * schema/relayforge.sql) is applied at open inside BEGIN IMMEDIATE, so
 * several processes starting on a fresh file agree on one migration.
 *
 * Every query is prepared once in rf_store_open (SQLITE_PREPARE_PERSISTENT),
 * kept in the struct for the connection's life and finalised by
 * rf_store_close.  Each public function is one product operation; every
 * write runs in BEGIN IMMEDIATE and is rolled back whole on any error.
 *
 * Reads for the observability endpoints (provider reports, log pages,
 * usage) run in one deferred transaction each, so every answer is one
 * consistent snapshot; usage reads the per-minute / per-hour rollups that
 * rf_store_log_request keeps in its own transaction, never the requests.
 * Retention (rf_store_prune, rf_store_maintain) works in small batches.
 *
 * Errors go to stderr as "relayforge: <function>: <sqlite message>" --
 * never SQL values, which may hold prompt previews.
 */
#include "store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema.h"
#include "util.h"

/* Must equal the PRAGMA user_version set at the end of the schema file. */
#define RF_SCHEMA_VERSION 1

#define RF_BUSY_TIMEOUT_MS 10000
#define RF_BUSY_STEP_MS 5
#define RF_MINUTE_MS 60000
#define RF_HOUR_MS 3600000
/* Pages given back per rf_store_maintain call (4 MiB at 4 KiB pages): a
 * few milliseconds of write lock. */
#define RF_VACUUM_PAGES_STR "1024"
/* The latency histogram of the usage rollups (schema/relayforge.sql). */
#define RF_LAT_BUCKETS 72
#define RF_USAGE_MAX_BUCKETS 1440
#define RF_USAGE_MAX_PROVIDERS 256

enum rf_stmt {
	ST_BEGIN,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PING,
	ST_INSERT_REQUEST,
	ST_INSERT_ATTEMPT,
	ST_UPSERT_MINUTE,     /* generated: histogram columns */
	ST_UPSERT_HOUR,       /* generated */
	ST_PROVIDER_GET,
	ST_PROVIDER_FAILED,
	ST_PROVIDER_OK,
	ST_PROVIDER_QUOTA,
	ST_RATE_HIT,
	ST_RATE_PRUNE,
	ST_REPORT_STATE,
	ST_REPORT_WINDOW,
	ST_REPORT_LAST_OK,
	ST_REPORT_LAST_FAILED,
	ST_LOG_ATTEMPTS,      /* generated: RF_LOG_PAGE_MAX placeholders */
	ST_USAGE_MINUTE,      /* generated */
	ST_USAGE_HOUR,        /* generated */
	ST_PRUNE_REQUESTS,
	ST_PRUNE_MINUTES,
	ST_PRUNE_HOURS,
	ST_PRUNE_RATE,
	ST_VACUUM,
	ST_CHECKPOINT,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	/* Reads run in a deferred transaction: one consistent snapshot. */
	[ST_BEGIN_READ] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_PING] = "SELECT 1",
	[ST_INSERT_REQUEST] =
	    "INSERT INTO requests (request_id, ts_ms, endpoint, strategy,"
	    " attempted_provider, final_provider, fallback, degraded, demo,"
	    " status, error_code, http_status, latency_ms, ttft_ms, model,"
	    " prompt_chars, prompt_tokens, completion_tokens, source,"
	    " prompt_preview, partial_chars, skipped_chunks, restarts, streamed)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
	[ST_INSERT_ATTEMPT] =
	    "INSERT INTO attempts (request_id, seq, provider, outcome, reason,"
	    " http_status, latency_ms, retry)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_PROVIDER_GET] =
	    "SELECT cooldown_until_ms, consecutive_failures"
	    " FROM provider_state WHERE provider = ?1",
	/* ?5/?6 NULL = keep the current cooldown and its reason. */
	[ST_PROVIDER_FAILED] =
	    "INSERT INTO provider_state (provider, consecutive_failures,"
	    " last_error_code, last_error_ms, cooldown_until_ms,"
	    " cooldown_reason, updated_ms)"
	    " VALUES (?1, ?2, ?3, ?4, coalesce(?5, 0), ?6, ?4)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " consecutive_failures = excluded.consecutive_failures,"
	    " last_error_code = excluded.last_error_code,"
	    " last_error_ms = excluded.last_error_ms,"
	    " cooldown_until_ms = coalesce(?5, cooldown_until_ms),"
	    " cooldown_reason = coalesce(?6, cooldown_reason),"
	    " updated_ms = excluded.updated_ms",
	[ST_PROVIDER_OK] =
	    "INSERT INTO provider_state (provider, consecutive_failures,"
	    " cooldown_until_ms, cooldown_reason, last_success_ms, updated_ms)"
	    " VALUES (?1, 0, 0, NULL, ?2, ?2)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " consecutive_failures = 0, cooldown_until_ms = 0,"
	    " cooldown_reason = NULL, last_success_ms = excluded.last_success_ms,"
	    " updated_ms = excluded.updated_ms",
	/* ?5/?6 NULL = keep the current cooldown and its reason. */
	[ST_PROVIDER_QUOTA] =
	    "INSERT INTO provider_state (provider, quota_remaining_requests,"
	    " quota_remaining_tokens, quota_reset_ms, cooldown_until_ms,"
	    " cooldown_reason, updated_ms)"
	    " VALUES (?1, ?2, ?3, ?4, coalesce(?5, 0), ?6, ?7)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " quota_remaining_requests = excluded.quota_remaining_requests,"
	    " quota_remaining_tokens = excluded.quota_remaining_tokens,"
	    " quota_reset_ms = excluded.quota_reset_ms,"
	    " cooldown_until_ms = coalesce(?5, cooldown_until_ms),"
	    " cooldown_reason = coalesce(?6, cooldown_reason),"
	    " updated_ms = excluded.updated_ms",
	[ST_RATE_HIT] =
	    "INSERT INTO rate_limit (client, window_start_ms, count)"
	    " VALUES (?1, ?2, 1)"
	    " ON CONFLICT (client, window_start_ms) DO UPDATE SET"
	    " count = count + 1 RETURNING count",
	[ST_RATE_PRUNE] =
	    "DELETE FROM rate_limit WHERE client = ?1 AND window_start_ms < ?2",
	[ST_REPORT_STATE] =
	    "SELECT cooldown_until_ms, consecutive_failures, last_error_code,"
	    " last_error_ms, last_success_ms, quota_remaining_requests,"
	    " quota_remaining_tokens, quota_reset_ms"
	    " FROM provider_state WHERE provider = ?1",
	/* Every provider's calls of the window in one pass: count, successes,
	 * mean and the nearest-rank p95 (rank ceil(0.95 n)).  Reached through
	 * requests_ts, then the attempts' primary key. */
	[ST_REPORT_WINDOW] =
	    "WITH w AS (SELECT a.provider AS p, a.outcome = 'ok' AS ok,"
	    " a.latency_ms AS l FROM requests r JOIN attempts a"
	    " ON a.request_id = r.id WHERE r.ts_ms >= ?1"
	    " AND a.outcome NOT IN ('skipped', 'client_closed')),"
	    " ranked AS (SELECT p, ok, l,"
	    " row_number() OVER (PARTITION BY p ORDER BY l) AS rn,"
	    " count(*) OVER (PARTITION BY p) AS n FROM w)"
	    " SELECT p, n, sum(ok), avg(l),"
	    " max(CASE WHEN rn = (n * 95 + 99) / 100 THEN l END)"
	    " FROM ranked GROUP BY p",
	/* The WHERE terms repeat the partial indexes' own, so they are used. */
	[ST_REPORT_LAST_OK] =
	    "SELECT a.request_id, a.seq, r.ts_ms FROM attempts a"
	    " JOIN requests r ON r.id = a.request_id"
	    " WHERE a.provider = ?1 AND a.outcome = 'ok'"
	    " ORDER BY a.request_id DESC, a.seq DESC LIMIT 1",
	[ST_REPORT_LAST_FAILED] =
	    "SELECT a.request_id, a.seq, r.ts_ms, a.outcome FROM attempts a"
	    " JOIN requests r ON r.id = a.request_id"
	    " WHERE a.provider = ?1"
	    " AND a.outcome NOT IN ('ok', 'skipped', 'client_closed')"
	    " ORDER BY a.request_id DESC, a.seq DESC LIMIT 1",
	[ST_PRUNE_REQUESTS] =
	    "DELETE FROM requests WHERE id IN (SELECT id FROM requests"
	    " WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
	/* A rollup row goes once its whole period lies before the cutoff. */
	[ST_PRUNE_MINUTES] =
	    "DELETE FROM usage_minute WHERE (minute_ms, provider) IN"
	    " (SELECT minute_ms, provider FROM usage_minute"
	    " WHERE minute_ms <= ?1 - 60000 LIMIT ?2)",
	[ST_PRUNE_HOURS] =
	    "DELETE FROM usage_hour WHERE (hour_ms, provider) IN"
	    " (SELECT hour_ms, provider FROM usage_hour"
	    " WHERE hour_ms <= ?1 - 3600000 LIMIT ?2)",
	/* Counters of windows before the newest one are dead (a client's own
	 * hit prunes only its own rows; clients that never come back leave
	 * one row each). */
	[ST_PRUNE_RATE] =
	    "DELETE FROM rate_limit WHERE window_start_ms <"
	    " (SELECT max(window_start_ms) FROM rate_limit)",
	[ST_VACUUM] = "PRAGMA incremental_vacuum(" RF_VACUUM_PAGES_STR ")",
	[ST_CHECKPOINT] = "PRAGMA wal_checkpoint(PASSIVE)",
};

/* The logs page query has one variant per filter combination (status x
 * endpoint x provider), each prepared on first use: literal filter values
 * let the planner use the partial index of failures. */
#define LOG_VARIANTS (3 * 3 * 2)

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	sqlite3_stmt *logs[LOG_VARIANTS];
	/* Rollup upserts per table (minute, hour) and latency bucket, prepared
	 * the first time a bucket is used (bucket 0 is st[ST_UPSERT_*]). */
	sqlite3_stmt *roll[2][RF_LAT_BUCKETS];
};

/* ---- open-time helpers (unprepared: they run once per connection) ---- */

static void set_err(char *err, size_t errlen, const char *what,
    sqlite3 *db)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", what,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
}

/* Run a one-row statement (a PRAGMA) and copy its first column as text
 * into out (may be NULL).  Returns 0 or -1. */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	step = sqlite3_step(st);
	/* Switching a fresh file to WAL takes an exclusive lock without
	 * calling the busy handler, so when several processes open one new
	 * file at once it fails at once with SQLITE_BUSY: wait here. */
	for (int waited = 0; step == SQLITE_BUSY &&
	    waited < RF_BUSY_TIMEOUT_MS; waited += RF_BUSY_STEP_MS) {
		sqlite3_reset(st);
		sqlite3_sleep(RF_BUSY_STEP_MS);
		step = sqlite3_step(st);
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		goto out;
	if (out != NULL && outlen > 0) {
		const unsigned char *t = step == SQLITE_ROW ?
		    sqlite3_column_text(st, 0) : NULL;
		snprintf(out, outlen, "%s", t != NULL ? (const char *)t : "");
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int query_int(sqlite3 *db, const char *sql, long *v)
{
	char buf[32];

	if (query_text(db, sql, buf, sizeof buf) != 0)
		return -1;
	*v = strtol(buf, NULL, 10);
	return 0;
}

/* Connection settings.  auto_vacuum only takes effect before the first page
 * is written, and journal_mode=WAL writes it: so it goes first, and only on
 * a still-empty file (on an existing one it would start a write). */
/* Waiting for the write lock: SQLite's own busy_timeout sleeps 1, 2, 5,
 * 10 ... ms, far longer than a writer holds the lock here (a few hundred
 * microseconds), which showed as 100+ ms p99 under load.  Poll every
 * 100 us for the first 2 ms, then every 1 ms, up to RF_BUSY_TIMEOUT_MS. */
static int on_busy(void *ud, int count)
{
	long waited_us = count < 20 ? count * 100L : 2000L + (count - 20) * 1000L;
	struct timespec ts = { 0, count < 20 ? 100000L : 1000000L };

	(void)ud;
	if (waited_us >= RF_BUSY_TIMEOUT_MS * 1000L)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

static int configure(sqlite3 *db, char *err, size_t errlen)
{
	char mode[16];
	long pages;

	if (sqlite3_busy_handler(db, on_busy, NULL) != SQLITE_OK ||
	    query_int(db, "PRAGMA page_count", &pages) != 0)
		goto fail;
	if (pages == 0 &&
	    query_text(db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, 0) != 0)
		goto fail;
	if (query_text(db, "PRAGMA journal_mode = WAL", mode, sizeof mode) != 0)
		goto fail;
	if (strcmp(mode, "wal") != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "journal_mode is %s, not wal", mode);
		return -1;
	}
	if (query_text(db, "PRAGMA synchronous = NORMAL", NULL, 0) != 0 ||
	    query_text(db, "PRAGMA foreign_keys = ON", NULL, 0) != 0 ||
	    query_text(db, "PRAGMA journal_size_limit = 67108864" /* 64 MiB */,
	    NULL, 0) != 0)
		goto fail;
	return 0;
fail:
	set_err(err, errlen, "configure", db);
	return -1;
}

/* Apply the compiled schema when the file is older than this binary.  The
 * version is read again under the write lock: another process may have
 * migrated between the first read and BEGIN IMMEDIATE.  A file newer than
 * the binary is accepted (migrations only add). */
static int migrate(sqlite3 *db, char *err, size_t errlen)
{
	long v;

	if (query_int(db, "PRAGMA user_version", &v) != 0)
		goto fail;
	if (v >= RF_SCHEMA_VERSION)
		return 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (query_int(db, "PRAGMA user_version", &v) != 0)
		goto rollback;
	if (v >= RF_SCHEMA_VERSION) /* another process migrated meanwhile */
		goto commit;
	if (sqlite3_exec(db, rf_schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    query_int(db, "PRAGMA user_version", &v) != 0)
		goto rollback;
	if (v != RF_SCHEMA_VERSION) {
		/* The .sql and RF_SCHEMA_VERSION were not raised together. */
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "migrate: schema sets user_version"
			    " %ld, this binary needs %d", v, RF_SCHEMA_VERSION);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
commit:
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
rollback:
	set_err(err, errlen, "migrate", db);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
fail:
	set_err(err, errlen, "migrate", db);
	return -1;
}

/* ---- generated SQL (the 72 histogram columns, the IN list) ---- */

/* The rollup columns after the key, in table order. */
#define ROLLUP_COLS "provider, requests, successes, errors, fallbacks," \
	" latency_sum, latency_max, prompt_tokens, completion_tokens"

/* Count one request in a rollup table: ?1 period, ?2 provider, ?3..?5
 * success / error / fallback (0|1), ?6 latency, ?7..?8 tokens; the
 * request's latency bucket is part of the statement (one statement per
 * bucket), so an update touches one histogram column, not all 72. */
static int upsert_sql(struct rf_buf *b, const char *table, const char *key,
    int bucket)
{
	return rf_buf_printf(b, "INSERT INTO %s (%s, " ROLLUP_COLS ", h%d)"
	    " VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?6, ?7, ?8, 1)"
	    " ON CONFLICT (%s, provider) DO UPDATE SET"
	    " requests = requests + 1,"
	    " successes = successes + excluded.successes,"
	    " errors = errors + excluded.errors,"
	    " fallbacks = fallbacks + excluded.fallbacks,"
	    " latency_sum = latency_sum + excluded.latency_sum,"
	    " latency_max = max(latency_max, excluded.latency_max),"
	    " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
	    " completion_tokens = completion_tokens + excluded.completion_tokens,"
	    " h%d = h%d + 1", table, key, bucket, key, bucket, bucket);
}

/* The rollup rows of [?1, ?2) in period order (the primary key's, so no
 * sort), summed by the caller: a GROUP BY would push every row and its 72
 * histogram columns through a temporary b-tree, several times slower. */
static int usage_sql(struct rf_buf *b, const char *table, const char *key)
{
	int rc = rf_buf_printf(b, "SELECT %s, " ROLLUP_COLS, key);

	for (int i = 0; i < RF_LAT_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", h%d", i);
	rc |= rf_buf_printf(b, " FROM %s WHERE %s >= ?1 AND %s < ?2"
	    " ORDER BY %s", table, key, key, key);
	return rc;
}

/* The attempts of up to RF_LOG_PAGE_MAX requests, in the page's order
 * (unused placeholders stay NULL, which matches nothing). */
static int log_attempts_sql(struct rf_buf *b)
{
	int rc = rf_buf_puts(b, "SELECT request_id, provider, outcome, reason,"
	    " http_status, latency_ms, retry FROM attempts"
	    " WHERE request_id IN (?1");

	for (int i = 2; i <= RF_LOG_PAGE_MAX; i++)
		rc |= rf_buf_printf(b, ", ?%d", i);
	rc |= rf_buf_puts(b, ") ORDER BY request_id DESC, seq");
	return rc;
}

static int build_sql(enum rf_stmt i, struct rf_buf *b)
{
	switch (i) {
	case ST_UPSERT_MINUTE: /* bucket 0; the others are prepared on use */
		return upsert_sql(b, "usage_minute", "minute_ms", 0);
	case ST_UPSERT_HOUR:
		return upsert_sql(b, "usage_hour", "hour_ms", 0);
	case ST_USAGE_MINUTE:
		return usage_sql(b, "usage_minute", "minute_ms");
	case ST_USAGE_HOUR:
		return usage_sql(b, "usage_hour", "hour_ms");
	case ST_LOG_ATTEMPTS:
		return log_attempts_sql(b);
	default:
		return rf_buf_puts(b, stmt_sql[i]);
	}
}

static int prepare_all(struct conn *s, char *err, size_t errlen)
{
	struct rf_buf sql;
	int rc = 0;

	rf_buf_init(&sql, 0);
	for (int i = 0; i < ST_COUNT && rc == 0; i++) {
		rf_buf_reset(&sql);
		if (build_sql((enum rf_stmt)i, &sql) != 0) {
			set_err(err, errlen, "prepare", NULL);
			rc = -1;
		} else if (sqlite3_prepare_v3(s->db, rf_buf_str(&sql), -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
			set_err(err, errlen, "prepare", s->db);
			rc = -1;
		}
	}
	rf_buf_free(&sql);
	return rc;
}

static void conn_close(struct conn *s);

static struct conn *conn_open(const char *path, char *err, size_t errlen)
{
	struct conn *s = calloc(1, sizeof *s);
	char what[300];

	if (s == NULL) {
		set_err(err, errlen, "rf_store_open", NULL);
		return NULL;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		/* Usually a missing parent directory or no permission. */
		snprintf(what, sizeof what, "cannot open %s", path);
		set_err(err, errlen, what, s->db);
		goto fail;
	}
	if (configure(s->db, err, errlen) != 0 ||
	    migrate(s->db, err, errlen) != 0 ||
	    prepare_all(s, err, errlen) != 0)
		goto fail;
	return s;
fail:
	conn_close(s);
	return NULL;
}

static void conn_close(struct conn *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	for (int i = 0; i < LOG_VARIANTS; i++)
		sqlite3_finalize(s->logs[i]);
	for (int t = 0; t < 2; t++)
		for (int b = 1; b < RF_LAT_BUCKETS; b++)
			sqlite3_finalize(s->roll[t][b]);
	sqlite3_close(s->db);
	free(s);
}

/* ---- statement helpers ---- */

static void report(struct conn *s, const char *fn)
{
	fprintf(stderr, "relayforge: %s: %s\n", fn, sqlite3_errmsg(s->db));
}

/* Make st ready for the next use.  The error of a failed step has been
 * reported already; reset repeats it, so its result is ignored here. */
static void done_with(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Step a statement that returns no row; reset it.  0 or -1 (reported). */
static int exec_stmt(struct conn *s, enum rf_stmt i, const char *fn)
{
	int rc = sqlite3_step(s->st[i]) == SQLITE_DONE ? 0 : -1;

	if (rc != 0)
		report(s, fn);
	done_with(s->st[i]);
	return rc;
}

static int tx_begin(struct conn *s, const char *fn)
{
	return exec_stmt(s, ST_BEGIN, fn);
}

/* Commit when rc is 0, else roll back.  Returns the final outcome. */
static int tx_end(struct conn *s, int rc, const char *fn)
{
	if (rc == 0 && exec_stmt(s, ST_COMMIT, fn) == 0)
		return 0;
	if (!sqlite3_get_autocommit(s->db))
		exec_stmt(s, ST_ROLLBACK, fn);
	return -1;
}

/* NULL pointer binds SQL NULL (sqlite3_bind_text's own rule). */
static int bind_str(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_bind_int64(st, i, v);
}

/* A negative value means "unknown / none": SQL NULL. */
static int bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
	return v < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

/* ---- log a request ---- */

static int insert_request(struct conn *s, const struct rf_log_entry *e)
{
	sqlite3_stmt *st = s->st[ST_INSERT_REQUEST];
	int b = 0;

	b |= bind_str(st, 1, e->request_id);
	b |= bind_i64(st, 2, e->ts_ms);
	b |= bind_str(st, 3, e->endpoint);
	b |= bind_str(st, 4, e->strategy);
	b |= bind_str(st, 5, e->attempted_provider);
	b |= bind_str(st, 6, e->final_provider);
	b |= bind_i64(st, 7, e->fallback);
	b |= bind_i64(st, 8, e->degraded);
	b |= bind_i64(st, 9, e->demo);
	b |= bind_str(st, 10, e->success ? "success" : "error");
	b |= bind_str(st, 11, e->error_code);
	b |= bind_i64(st, 12, e->http_status);
	b |= bind_i64(st, 13, e->latency_ms);
	b |= bind_opt(st, 14, e->ttft_ms);
	b |= bind_str(st, 15, e->model);
	b |= bind_i64(st, 16, e->prompt_chars);
	b |= bind_opt(st, 17, e->prompt_tokens);
	b |= bind_opt(st, 18, e->completion_tokens);
	b |= bind_str(st, 19, e->source);
	b |= bind_str(st, 20, e->prompt_preview);
	b |= bind_i64(st, 21, e->partial_chars);
	b |= bind_i64(st, 22, e->skipped_chunks);
	b |= bind_i64(st, 23, e->restarts);
	b |= bind_str(st, 24, e->streamed);
	if (b != SQLITE_OK) {
		report(s, "rf_store_log_request");
		done_with(st);
		return -1;
	}
	return exec_stmt(s, ST_INSERT_REQUEST, "rf_store_log_request");
}

static int insert_attempt(struct conn *s, int64_t rowid, int seq,
    const struct rf_log_attempt *a)
{
	sqlite3_stmt *st = s->st[ST_INSERT_ATTEMPT];
	int b = 0;

	b |= bind_i64(st, 1, rowid);
	b |= bind_i64(st, 2, seq);
	b |= bind_str(st, 3, a->provider);
	b |= bind_str(st, 4, a->outcome);
	b |= bind_str(st, 5, a->reason);
	b |= a->http_status > 0 ? bind_i64(st, 6, a->http_status) :
	    sqlite3_bind_null(st, 6);
	b |= bind_opt(st, 7, a->latency_ms);
	b |= bind_i64(st, 8, a->retry);
	if (b != SQLITE_OK) {
		report(s, "rf_store_log_request");
		done_with(st);
		return -1;
	}
	return exec_stmt(s, ST_INSERT_ATTEMPT, "rf_store_log_request");
}

/* ---- the latency histogram (layout: schema/relayforge.sql) ---- */

/* Bucket of a latency: exact under 8 ms, then four sub-buckets per power
 * of two; 2^19 ms and more share the last one. */
static int lat_bucket(int64_t ms)
{
	int e = 0;

	if (ms < 8)
		return ms > 0 ? (int)ms : 0;
	for (int64_t v = ms; v > 1; v >>= 1)
		e++;
	if (e > 18)
		return RF_LAT_BUCKETS - 1;
	return 8 + 4 * (e - 3) + (int)((ms >> (e - 2)) & 3);
}

/* The largest latency a bucket holds (the last one has no bound: the
 * largest latency seen stands for it). */
static int64_t lat_upper(int b)
{
	int e = 3 + (b - 8) / 4, sub = (b - 8) % 4;

	if (b < 8)
		return b;
	if (b == RF_LAT_BUCKETS - 1)
		return INT64_MAX;
	return ((int64_t)1 << e) + (int64_t)(sub + 1) * ((int64_t)1 << (e - 2))
	    - 1;
}

/* Nearest-rank percentile (rank ceil(pct% of n)) of a histogram of n
 * values: its bucket's largest value, capped by the largest value seen
 * (so at most 25% above the exact figure).  -1 when n is 0. */
static long lat_percentile(const int64_t *h, int64_t n, int pct, int64_t max)
{
	int64_t rank = (n * pct + 99) / 100, seen = 0;

	if (n <= 0)
		return -1;
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < RF_LAT_BUCKETS; b++) {
		seen += h[b];
		if (seen >= rank)
			return (long)(lat_upper(b) < max ? lat_upper(b) : max);
	}
	return (long)max; /* histogram and count disagree: be safe */
}

/* Count the request in one rollup table (period: the start of its minute
 * or hour; provider '' when none was called). */
/* The upsert statement of a rollup table for one latency bucket. */
static sqlite3_stmt *rollup_stmt(struct conn *s, enum rf_stmt i, int bucket)
{
	int t = i == ST_UPSERT_MINUTE ? 0 : 1;
	struct rf_buf sql = { 0 };

	if (bucket == 0)
		return s->st[i];
	if (s->roll[t][bucket] == NULL) {
		if (upsert_sql(&sql, t == 0 ? "usage_minute" : "usage_hour",
		    t == 0 ? "minute_ms" : "hour_ms", bucket) != 0 ||
		    sqlite3_prepare_v3(s->db, sql.data, -1, SQLITE_PREPARE_PERSISTENT,
		    &s->roll[t][bucket], NULL) != SQLITE_OK)
			s->roll[t][bucket] = NULL;
		rf_buf_free(&sql);
	}
	return s->roll[t][bucket];
}

static int upsert_rollup(struct conn *s, enum rf_stmt i,
    const struct rf_log_entry *e, int64_t period_ms)
{
	int64_t lat = e->latency_ms > 0 ? e->latency_ms : 0;
	sqlite3_stmt *st = rollup_stmt(s, i, lat_bucket(lat));
	int b = 0;
	int rc;

	if (st == NULL) {
		report(s, "rf_store_log_request");
		return -1;
	}
	b |= bind_i64(st, 1, e->ts_ms - e->ts_ms % period_ms);
	b |= bind_str(st, 2, e->final_provider != NULL ? e->final_provider : "");
	b |= bind_i64(st, 3, e->success ? 1 : 0);
	b |= bind_i64(st, 4, e->success ? 0 : 1);
	b |= bind_i64(st, 5, e->fallback ? 1 : 0);
	b |= bind_i64(st, 6, lat);
	b |= bind_i64(st, 7, e->prompt_tokens > 0 ? e->prompt_tokens : 0);
	b |= bind_i64(st, 8, e->completion_tokens > 0 ?
	    e->completion_tokens : 0);
	if (b != SQLITE_OK) {
		report(s, "rf_store_log_request");
		done_with(st);
		return -1;
	}
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	if (rc != 0)
		report(s, "rf_store_log_request");
	done_with(st);
	return rc;
}

/* The rows of one request, inside the caller's transaction. */
static int log_one(struct conn *s, const struct rf_log_entry *e)
{
	int64_t rowid;

	if (e == NULL || insert_request(s, e) != 0)
		return -1;
	rowid = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < e->nattempts; i++) {
		if (insert_attempt(s, rowid, (int)i, &e->attempts[i]) != 0)
			return -1;
	}
	if (upsert_rollup(s, ST_UPSERT_MINUTE, e, RF_MINUTE_MS) != 0 ||
	    upsert_rollup(s, ST_UPSERT_HOUR, e, RF_HOUR_MS) != 0)
		return -1;
	return 0;
}

/* n requests in one transaction: all or none. */
static int conn_log_requests(struct conn *s, const struct rf_log_entry *const *e,
    size_t n)
{
	int rc = 0;

	if (s == NULL || e == NULL || tx_begin(s, __func__) != 0)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = log_one(s, e[i]);
	return tx_end(s, rc, __func__);
}

static int conn_log_request(struct conn *s, const struct rf_log_entry *e)
{
	return conn_log_requests(s, &e, 1);
}

/* ---- provider state ---- */

/* Read one provider's row; zeroes when it has none.  Resets the statement. */
static int provider_get(struct conn *s, const char *id,
    struct rf_provider_state *out, const char *fn)
{
	sqlite3_stmt *st = s->st[ST_PROVIDER_GET];
	int step, rc = 0;

	memset(out, 0, sizeof *out);
	if (bind_str(st, 1, id) != SQLITE_OK) {
		report(s, fn);
		done_with(st);
		return -1;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		out->cooldown_until_ms = sqlite3_column_int64(st, 0);
		out->consecutive_failures = sqlite3_column_int(st, 1);
	} else if (step != SQLITE_DONE) {
		report(s, fn);
		rc = -1;
	}
	done_with(st);
	return rc;
}

static int conn_provider_states(struct conn *s, const char *const *ids,
    size_t n, struct rf_provider_state *st)
{
	int rc = 0;

	if (s == NULL || exec_stmt(s, ST_BEGIN_READ, __func__) != 0)
		return -1;
	/* One read transaction: one snapshot, one set of locks, not n. */
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = provider_get(s, ids[i], &st[i], __func__);
	if (exec_stmt(s, ST_COMMIT, __func__) != 0)
		rc = -1;
	return rc;
}

/* Bind the cooldown columns of the failed/quota upserts: a cooldown that
 * ends later than the current one replaces it (with its reason); otherwise
 * NULL keeps the current one. */
static int bind_cooldown(sqlite3_stmt *st, int i, int64_t current,
    int64_t until, const char *reason)
{
	if (until > current)
		return bind_i64(st, i, until) | bind_str(st, i + 1, reason);
	return sqlite3_bind_null(st, i) | sqlite3_bind_null(st, i + 1);
}

/* Run a bound upsert statement, or report a binding error. */
static int finish_upsert(struct conn *s, enum rf_stmt i, int b,
    const char *fn)
{
	if (b != SQLITE_OK) {
		report(s, fn);
		done_with(s->st[i]);
		return -1;
	}
	return exec_stmt(s, i, fn);
}

static int conn_provider_failed(struct conn *s, const char *id,
    const char *error_code, int64_t now_ms, int64_t cooldown_until_ms,
    int threshold, int64_t cooldown_ms)
{
	sqlite3_stmt *st;
	struct rf_provider_state cur;
	int64_t until = 0;
	const char *reason = error_code;
	int rc = -1, b = 0, count;

	if (s == NULL || tx_begin(s, __func__) != 0)
		return -1;
	if (provider_get(s, id, &cur, __func__) != 0)
		goto out;
	count = cur.consecutive_failures + 1;
	if (cooldown_until_ms > 0) {
		until = cooldown_until_ms;
	} else if (threshold > 0 && count >= threshold) {
		until = now_ms + cooldown_ms;
		reason = "failure_threshold";
	}
	st = s->st[ST_PROVIDER_FAILED];
	b |= bind_str(st, 1, id);
	b |= bind_i64(st, 2, count);
	b |= bind_str(st, 3, error_code);
	b |= bind_i64(st, 4, now_ms);
	b |= bind_cooldown(st, 5, cur.cooldown_until_ms, until, reason);
	rc = finish_upsert(s, ST_PROVIDER_FAILED, b, __func__);
out:
	return tx_end(s, rc, __func__);
}

static int conn_provider_ok(struct conn *s, const char *id, int64_t now_ms)
{
	sqlite3_stmt *st;
	int rc, b = 0;

	if (s == NULL || tx_begin(s, __func__) != 0)
		return -1;
	st = s->st[ST_PROVIDER_OK];
	b |= bind_str(st, 1, id);
	b |= bind_i64(st, 2, now_ms);
	rc = finish_upsert(s, ST_PROVIDER_OK, b, __func__);
	return tx_end(s, rc, __func__);
}

static int conn_provider_quota(struct conn *s, const char *id,
    long remaining_requests, long remaining_tokens, int64_t reset_ms,
    int64_t now_ms)
{
	sqlite3_stmt *st;
	struct rf_provider_state cur;
	int64_t until = 0;
	int rc = -1, b = 0;

	if (s == NULL || tx_begin(s, __func__) != 0)
		return -1;
	if (provider_get(s, id, &cur, __func__) != 0)
		goto out;
	if ((remaining_requests == 0 || remaining_tokens == 0) &&
	    reset_ms > now_ms)
		until = reset_ms;
	st = s->st[ST_PROVIDER_QUOTA];
	b |= bind_str(st, 1, id);
	b |= bind_opt(st, 2, remaining_requests);
	b |= bind_opt(st, 3, remaining_tokens);
	b |= reset_ms > 0 ? bind_i64(st, 4, reset_ms) : sqlite3_bind_null(st, 4);
	b |= bind_cooldown(st, 5, cur.cooldown_until_ms, until, "quota");
	b |= bind_i64(st, 7, now_ms);
	rc = finish_upsert(s, ST_PROVIDER_QUOTA, b, __func__);
out:
	return tx_end(s, rc, __func__);
}

/* ---- per-client rate limit ---- */

/* Count one hit of client in window; the new count, or -1. */
static long rate_count(struct conn *s, const char *client,
    int64_t window, const char *fn)
{
	sqlite3_stmt *st = s->st[ST_RATE_HIT];
	long count = -1;
	int step;

	if ((bind_str(st, 1, client) | bind_i64(st, 2, window)) != SQLITE_OK) {
		report(s, fn);
		goto out;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		count = (long)sqlite3_column_int64(st, 0);
		step = sqlite3_step(st); /* RETURNING: run to completion */
	}
	if (step != SQLITE_DONE) {
		report(s, fn);
		count = -1;
	}
out:
	done_with(st);
	return count;
}

/* Fixed one-minute windows; older windows of the client are deleted in the
 * same transaction so the table holds about one row per active client. */
static int conn_rate_hit(struct conn *s, const char *client, int limit,
    int64_t now_ms, int *retry_after_s)
{
	int64_t window = now_ms - now_ms % RF_MINUTE_MS;
	sqlite3_stmt *prune;
	long count = -1;
	int rc = -1, b = 0;

	if (limit <= 0)
		return 1;
	if (s == NULL || tx_begin(s, __func__) != 0)
		return -1;
	count = rate_count(s, client, window, __func__);
	if (count < 0)
		goto out;
	prune = s->st[ST_RATE_PRUNE];
	b |= bind_str(prune, 1, client);
	b |= bind_i64(prune, 2, window);
	rc = finish_upsert(s, ST_RATE_PRUNE, b, __func__);
out:
	if (tx_end(s, rc, __func__) != 0)
		return -1;
	if (count <= limit)
		return 1;
	if (retry_after_s != NULL) {
		int64_t left = window + RF_MINUTE_MS - now_ms;
		int secs = (int)((left + 999) / 1000);
		*retry_after_s = secs >= 1 ? secs : 1;
	}
	return 0;
}

static int conn_ping(struct conn *s)
{
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s->st[ST_PING]) == SQLITE_ROW ? 0 : -1;
	if (rc != 0)
		report(s, __func__);
	done_with(s->st[ST_PING]);
	return rc;
}

/* ---- reads: shared helpers ---- */

static int read_begin(struct conn *s, const char *fn)
{
	return exec_stmt(s, ST_BEGIN_READ, fn);
}

/* A column as int64, or dflt when it is NULL. */
static int64_t col_i64(sqlite3_stmt *st, int i, int64_t dflt)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? dflt :
	    sqlite3_column_int64(st, i);
}

/* ---- status: one report per provider ---- */

static void report_init(struct rf_provider_report *r)
{
	memset(r, 0, sizeof *r);
	r->quota_remaining_requests = -1;
	r->quota_remaining_tokens = -1;
	r->avg_latency_ms = -1;
	r->p95_latency_ms = -1;
	r->last_ok = -1;
}

/* The shared state row of one provider (none: the defaults stay). */
static int report_state(struct conn *s, const char *id,
    struct rf_provider_report *r)
{
	sqlite3_stmt *st = s->st[ST_REPORT_STATE];
	int step, rc = 0;

	if (bind_str(st, 1, id) != SQLITE_OK) {
		report(s, "rf_store_provider_reports");
		done_with(st);
		return -1;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const unsigned char *code = sqlite3_column_text(st, 2);
		r->cooldown_until_ms = col_i64(st, 0, 0);
		r->consecutive_failures = (int)col_i64(st, 1, 0);
		snprintf(r->last_error_code, sizeof r->last_error_code, "%s",
		    code != NULL ? (const char *)code : "");
		r->last_error_ms = code != NULL ? col_i64(st, 3, 0) : 0;
		r->last_success_ms = col_i64(st, 4, 0);
		r->quota_remaining_requests = (long)col_i64(st, 5, -1);
		r->quota_remaining_tokens = (long)col_i64(st, 6, -1);
		r->quota_reset_ms = col_i64(st, 7, 0);
	} else if (step != SQLITE_DONE) {
		report(s, "rf_store_provider_reports");
		rc = -1;
	}
	done_with(st);
	return rc;
}

/* The newest ok or failed attempt of one provider: its request id, seq
 * and the request's arrival (rid 0 = none); code gets a failure's
 * outcome. */
struct last_call {
	int64_t rid, seq, ts_ms;
	char code[48];
};

static int report_last(struct conn *s, enum rf_stmt i, const char *id,
    struct last_call *out)
{
	sqlite3_stmt *st = s->st[i];
	int step, rc = 0;

	memset(out, 0, sizeof *out);
	if (bind_str(st, 1, id) != SQLITE_OK) {
		report(s, "rf_store_provider_reports");
		done_with(st);
		return -1;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		out->rid = sqlite3_column_int64(st, 0);
		out->seq = sqlite3_column_int64(st, 1);
		out->ts_ms = sqlite3_column_int64(st, 2);
		if (sqlite3_column_count(st) > 3)
			snprintf(out->code, sizeof out->code, "%s",
			    (const char *)sqlite3_column_text(st, 3));
	} else if (step != SQLITE_DONE) {
		report(s, "rf_store_provider_reports");
		rc = -1;
	}
	done_with(st);
	return rc;
}

/* Merge the newest ok / failed calls into the report: the later of the
 * shared state and the attempt trail wins (the shared state keeps exact
 * times, but the chain writes last_success_ms only when it clears a
 * failure, and the state may have been reset). */
static void report_merge_last(struct rf_provider_report *r,
    const struct last_call *ok, const struct last_call *bad)
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

/* The window's figures, matched to the requested ids. */
static int report_window(struct conn *s, const char *const *ids,
    size_t n, int64_t since_ms, struct rf_provider_report *out)
{
	sqlite3_stmt *st = s->st[ST_REPORT_WINDOW];
	int step;

	if (bind_i64(st, 1, since_ms) != SQLITE_OK) {
		report(s, "rf_store_provider_reports");
		done_with(st);
		return -1;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		for (size_t i = 0; p != NULL && i < n; i++) {
			if (strcmp(ids[i], p) != 0)
				continue;
			out[i].requests = (long)sqlite3_column_int64(st, 1);
			out[i].successes = (long)sqlite3_column_int64(st, 2);
			out[i].failures = out[i].requests - out[i].successes;
			if (sqlite3_column_type(st, 3) != SQLITE_NULL)
				out[i].avg_latency_ms = (long)(
				    sqlite3_column_double(st, 3) + 0.5);
			out[i].p95_latency_ms = (long)col_i64(st, 4, -1);
		}
	}
	if (step != SQLITE_DONE)
		report(s, "rf_store_provider_reports");
	done_with(st);
	return step == SQLITE_DONE ? 0 : -1;
}

static int conn_provider_reports(struct conn *s, const char *const *ids,
    size_t n, int64_t since_ms, struct rf_provider_report *out)
{
	struct last_call ok, bad;
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		report_init(&out[i]);
	if (s == NULL || read_begin(s, __func__) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (report_state(s, ids[i], &out[i]) != 0 ||
		    report_last(s, ST_REPORT_LAST_OK, ids[i], &ok) != 0 ||
		    report_last(s, ST_REPORT_LAST_FAILED, ids[i], &bad) != 0)
			goto out;
		report_merge_last(&out[i], &ok, &bad);
	}
	rc = report_window(s, ids, n, since_ms, out);
out:
	return tx_end(s, rc, __func__);
}

/* ---- logs: one page of requests with their attempts ---- */

/* The page's own memory: strings in a chain of blocks, attempts in one
 * array.  Freed at once by rf_store_log_page_free. */
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
	bool oom;
};

/* Copy a text column into the page (NULL for SQL NULL or out of memory,
 * which sets m->oom). */
static const char *mem_text(struct page_mem *m, sqlite3_stmt *st, int i)
{
	const unsigned char *t;
	size_t n;
	char *p;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	t = sqlite3_column_text(st, i);
	n = (size_t)sqlite3_column_bytes(st, i) + 1;
	if (t == NULL)
		goto oom;
	if (m->blocks == NULL || m->blocks->cap - m->blocks->used < n) {
		size_t cap = n > BLOCK_SIZE ? n : BLOCK_SIZE;
		struct block *b = malloc(sizeof *b + cap);
		if (b == NULL)
			goto oom;
		*b = (struct block){ .next = m->blocks, .used = 0, .cap = cap };
		m->blocks = b;
	}
	p = m->blocks->data + m->blocks->used;
	memcpy(p, t, n);
	m->blocks->used += n;
	return p;
oom:
	m->oom = true;
	return NULL;
}

/* Which prepared variant serves q (see LOG_VARIANTS). */
static int log_variant(const struct rf_log_query *q)
{
	int st = q->status == NULL ? 0 : strcmp(q->status, "success") == 0 ?
	    1 : 2;
	int ep = q->endpoint == NULL ? 0 : strcmp(q->endpoint, "chat") == 0 ?
	    1 : 2;

	return (st * 3 + ep) * 2 + (q->provider != NULL);
}

#define LOG_COLS "id, request_id, ts_ms, endpoint, strategy," \
	" attempted_provider, final_provider, fallback, degraded, demo," \
	" status, error_code, http_status, latency_ms, ttft_ms, model," \
	" prompt_chars, prompt_tokens, completion_tokens, source," \
	" prompt_preview, partial_chars, skipped_chunks, restarts, streamed"

/* The page query of variant v: ?1 ids below, ?2 final provider, ?3 rows.
 * Filter values are literals from a fixed set, never from the client. */
static sqlite3_stmt *log_stmt(struct conn *s, int v)
{
	static const char *const status[] = { "", " AND status = 'success'",
	    " AND status = 'error'" };
	static const char *const endpoint[] = { "", " AND endpoint = 'chat'",
	    " AND endpoint = 'stream'" };
	char sql[512];

	if (s->logs[v] != NULL)
		return s->logs[v];
	snprintf(sql, sizeof sql, "SELECT " LOG_COLS " FROM requests"
	    " WHERE id < ?1%s%s%s ORDER BY id DESC LIMIT ?3",
	    v % 2 ? " AND final_provider = ?2" : "", status[v / 6],
	    endpoint[v / 2 % 3]);
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &s->logs[v], NULL) != SQLITE_OK) {
		report(s, "rf_store_logs");
		return NULL;
	}
	return s->logs[v];
}

/* A long column, or -1 when NULL. */
static long col_opt(sqlite3_stmt *st, int i)
{
	return (long)col_i64(st, i, -1);
}

static void log_item_read(struct page_mem *m, sqlite3_stmt *st,
    struct rf_log_item *it)
{
	struct rf_log_entry *e = &it->e;
	const char *status;

	it->id = sqlite3_column_int64(st, 0);
	e->request_id = mem_text(m, st, 1);
	e->ts_ms = sqlite3_column_int64(st, 2);
	e->endpoint = mem_text(m, st, 3);
	e->strategy = mem_text(m, st, 4);
	e->attempted_provider = mem_text(m, st, 5);
	e->final_provider = mem_text(m, st, 6);
	e->fallback = sqlite3_column_int(st, 7) != 0;
	e->degraded = sqlite3_column_int(st, 8) != 0;
	e->demo = sqlite3_column_int(st, 9) != 0;
	status = (const char *)sqlite3_column_text(st, 10);
	e->success = status != NULL && strcmp(status, "success") == 0;
	e->error_code = mem_text(m, st, 11);
	e->http_status = sqlite3_column_int(st, 12);
	e->latency_ms = (long)sqlite3_column_int64(st, 13);
	e->ttft_ms = col_opt(st, 14);
	e->model = mem_text(m, st, 15);
	e->prompt_chars = (long)sqlite3_column_int64(st, 16);
	e->prompt_tokens = col_opt(st, 17);
	e->completion_tokens = col_opt(st, 18);
	e->source = mem_text(m, st, 19);
	e->prompt_preview = mem_text(m, st, 20);
	e->partial_chars = (long)sqlite3_column_int64(st, 21);
	e->skipped_chunks = sqlite3_column_int(st, 22);
	e->restarts = sqlite3_column_int(st, 23);
	e->streamed = mem_text(m, st, 24);
}

/* Step the page query into page->items (limit rows; one more sets
 * page->more). */
static int log_rows(struct conn *s, sqlite3_stmt *st,
    const struct rf_log_query *q, struct rf_log_page *page)
{
	struct page_mem *m = page->mem;
	int b = 0, step;

	b |= bind_i64(st, 1, q->before_id > 0 ? q->before_id : INT64_MAX);
	if (q->provider != NULL)
		b |= bind_str(st, 2, q->provider);
	b |= bind_i64(st, 3, q->limit + 1);
	if (b != SQLITE_OK) {
		report(s, "rf_store_logs");
		done_with(st);
		return -1;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (page->nitems == (size_t)q->limit) {
			page->more = true;
			continue;
		}
		log_item_read(m, st, &page->items[page->nitems++]);
	}
	if (step != SQLITE_DONE)
		report(s, "rf_store_logs");
	done_with(st);
	return step == SQLITE_DONE && !m->oom ? 0 : -1;
}

/* Append one attempt row to the page's attempt array. */
static int log_attempt_add(struct page_mem *m, sqlite3_stmt *st)
{
	struct rf_log_attempt *a;

	if (m->natt == m->capatt) {
		size_t cap = m->capatt ? m->capatt * 2 : 64;
		a = realloc(m->att, cap * sizeof *a);
		if (a == NULL)
			return -1;
		m->att = a;
		m->capatt = cap;
	}
	a = &m->att[m->natt++];
	a->provider = mem_text(m, st, 1);
	a->outcome = mem_text(m, st, 2);
	a->reason = mem_text(m, st, 3);
	a->http_status = (int)col_i64(st, 4, 0);
	a->latency_ms = col_opt(st, 5);
	a->retry = sqlite3_column_int(st, 6);
	return m->oom ? -1 : 0;
}

/* Read the attempts of every item, then point each item at its run
 * (rows come in the page's order: request id descending, then seq). */
static int log_attempts(struct conn *s, struct rf_log_page *page)
{
	sqlite3_stmt *st = s->st[ST_LOG_ATTEMPTS];
	struct page_mem *m = page->mem;
	size_t start[RF_LOG_PAGE_MAX], k = 0;
	int b = 0, step = SQLITE_DONE, rc = 0;

	if (page->nitems == 0)
		return 0;

	for (size_t i = 0; i < page->nitems; i++)
		b |= bind_i64(st, (int)i + 1, page->items[i].id);
	if (b != SQLITE_OK) {
		report(s, "rf_store_logs");
		done_with(st);
		return -1;
	}
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t rid = sqlite3_column_int64(st, 0);
		while (k < page->nitems && page->items[k].id > rid)
			k++;
		if (k == page->nitems)
			break;
		if (page->items[k].e.nattempts++ == 0)
			start[k] = m->natt;
		rc = log_attempt_add(m, st);
	}
	if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW) {
		report(s, "rf_store_logs");
		rc = -1;
	}
	done_with(st);
	for (size_t i = 0; rc == 0 && i < page->nitems; i++)
		if (page->items[i].e.nattempts > 0)
			page->items[i].e.attempts = m->att + start[i];
	return rc;
}

static int conn_logs(struct conn *s, const struct rf_log_query *q,
    struct rf_log_page *page)
{
	sqlite3_stmt *st;
	int rc = -1;

	memset(page, 0, sizeof *page);
	if (s == NULL || q->limit < 1 || q->limit > RF_LOG_PAGE_MAX)
		return -1;
	page->items = calloc((size_t)q->limit, sizeof *page->items);
	page->mem = calloc(1, sizeof(struct page_mem));
	if (page->items == NULL || page->mem == NULL) {
		rf_store_log_page_free(page);
		return -1;
	}
	st = log_stmt(s, log_variant(q));
	if (st == NULL || read_begin(s, __func__) != 0) {
		rf_store_log_page_free(page);
		return -1;
	}
	if (log_rows(s, st, q, page) == 0 && log_attempts(s, page) == 0)
		rc = 0;
	rc = tx_end(s, rc, __func__);
	if (rc != 0)
		rf_store_log_page_free(page);
	return rc;
}

void rf_store_log_page_free(struct rf_log_page *page)
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

/* ---- usage: totals, buckets and the final-provider distribution ---- */

static void figures_init(struct rf_usage_figures *f)
{
	memset(f, 0, sizeof *f);
	f->p50_ms = f->p95_ms = f->p99_ms = -1;
}

/* Columns of a usage_sql row. */
enum { UC_PERIOD, UC_PROVIDER, UC_REQUESTS, UC_SUCCESSES, UC_ERRORS,
	UC_FALLBACKS, UC_LAT_SUM, UC_LAT_MAX, UC_PROMPT, UC_COMPLETION,
	UC_HIST };

/* Add one rollup row to f. */
static void figures_add(struct rf_usage_figures *f, sqlite3_stmt *st)
{
	int64_t max = sqlite3_column_int64(st, UC_LAT_MAX);

	f->requests += sqlite3_column_int64(st, UC_REQUESTS);
	f->successes += sqlite3_column_int64(st, UC_SUCCESSES);
	f->errors += sqlite3_column_int64(st, UC_ERRORS);
	f->fallbacks += sqlite3_column_int64(st, UC_FALLBACKS);
	f->latency_sum += sqlite3_column_int64(st, UC_LAT_SUM);
	if (max > f->latency_max)
		f->latency_max = max;
	f->prompt_tokens += sqlite3_column_int64(st, UC_PROMPT);
	f->completion_tokens += sqlite3_column_int64(st, UC_COMPLETION);
}

static void figures_percentiles(struct rf_usage_figures *f, const int64_t *h)
{
	f->p50_ms = lat_percentile(h, f->requests, 50, f->latency_max);
	f->p95_ms = lat_percentile(h, f->requests, 95, f->latency_max);
	f->p99_ms = lat_percentile(h, f->requests, 99, f->latency_max);
}

/* Count one rollup row for its final provider (the list stays short: the
 * catalog's ids and ''; past RF_USAGE_MAX_PROVIDERS rows are ignored). */
static int provider_add(struct rf_usage_report *r, sqlite3_stmt *st,
    size_t *cap)
{
	const unsigned char *t = sqlite3_column_text(st, UC_PROVIDER);
	const char *id = t != NULL ? (const char *)t : "";
	struct rf_usage_provider *p = NULL;

	for (size_t i = 0; i < r->nproviders && p == NULL; i++)
		if (strncmp(r->providers[i].provider, id,
		    sizeof p->provider - 1) == 0)
			p = &r->providers[i];
	if (p == NULL && r->nproviders == RF_USAGE_MAX_PROVIDERS)
		return 0;
	if (p == NULL && r->nproviders == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		p = realloc(r->providers, ncap * sizeof *p);
		if (p == NULL)
			return -1;
		r->providers = p;
		*cap = ncap;
		p = NULL;
	}
	if (p == NULL) {
		p = &r->providers[r->nproviders++];
		memset(p, 0, sizeof *p);
		snprintf(p->provider, sizeof p->provider, "%s", id);
	}
	p->requests += sqlite3_column_int64(st, UC_REQUESTS);
	p->errors += sqlite3_column_int64(st, UC_ERRORS);
	p->latency_sum += sqlite3_column_int64(st, UC_LAT_SUM);
	return 0;
}

/* Most requests first, the requests that called no provider ('') last. */
static int provider_cmp(const void *a, const void *b)
{
	const struct rf_usage_provider *x = a, *y = b;

	if ((x->provider[0] == '\0') != (y->provider[0] == '\0'))
		return x->provider[0] == '\0' ? 1 : -1;
	if (x->requests != y->requests)
		return x->requests > y->requests ? -1 : 1;
	return strcmp(x->provider, y->provider);
}

/* Sum the rows into buckets, totals and providers.  Rows come in period
 * order, so each bucket's rows are contiguous: one histogram for the
 * current bucket, one for the totals. */
static int usage_rows(struct conn *s, enum rf_stmt i,
    struct rf_usage_report *r)
{
	sqlite3_stmt *st = s->st[i];
	int64_t h[RF_LAT_BUCKETS] = { 0 }, th[RF_LAT_BUCKETS] = { 0 };
	int64_t cur = -1;
	size_t cap = 0;
	int step, rc = 0;

	if ((bind_i64(st, 1, r->from_ms) | bind_i64(st, 2, r->to_ms)) !=
	    SQLITE_OK) {
		report(s, "rf_store_usage");
		done_with(st);
		return -1;
	}
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t k = (sqlite3_column_int64(st, UC_PERIOD) - r->from_ms) /
		    r->bucket_ms;
		if (k != cur && cur >= 0) {
			figures_percentiles(&r->buckets[cur], h);
			memset(h, 0, sizeof h);
		}
		cur = k;
		for (int j = 0; j < RF_LAT_BUCKETS; j++) {
			int64_t v = sqlite3_column_int64(st, UC_HIST + j);
			h[j] += v;
			th[j] += v;
		}
		figures_add(&r->buckets[k], st);
		figures_add(&r->totals, st);
		rc = provider_add(r, st, &cap);
	}
	if (cur >= 0)
		figures_percentiles(&r->buckets[cur], h);
	figures_percentiles(&r->totals, th);
	if (rc != 0)
		fprintf(stderr, "relayforge: rf_store_usage: out of memory\n");
	else if (step != SQLITE_DONE)
		report(s, "rf_store_usage");
	done_with(st);
	if (r->nproviders > 1)
		qsort(r->providers, r->nproviders, sizeof *r->providers,
		    provider_cmp);
	return rc == 0 && step == SQLITE_DONE ? 0 : -1;
}

/* Hourly rollups when the window and its buckets are whole hours. */
static bool usage_hourly(int64_t from_ms, int64_t bucket_ms)
{
	return from_ms % RF_HOUR_MS == 0 && bucket_ms % RF_HOUR_MS == 0;
}

static int conn_usage(struct conn *s, int64_t from_ms, int64_t to_ms,
    int64_t bucket_ms, struct rf_usage_report *out)
{
	bool hourly = usage_hourly(from_ms, bucket_ms);
	int rc = -1;

	memset(out, 0, sizeof *out);
	figures_init(&out->totals);
	if (s == NULL || bucket_ms <= 0 || bucket_ms % RF_MINUTE_MS != 0 ||
	    from_ms % RF_MINUTE_MS != 0 || to_ms <= from_ms ||
	    (to_ms - from_ms) % bucket_ms != 0 ||
	    (to_ms - from_ms) / bucket_ms > RF_USAGE_MAX_BUCKETS) {
		fprintf(stderr, "relayforge: %s: bad window\n", __func__);
		return -1;
	}
	out->from_ms = from_ms;
	out->to_ms = to_ms;
	out->bucket_ms = bucket_ms;
	out->nbuckets = (size_t)((to_ms - from_ms) / bucket_ms);
	out->buckets = calloc(out->nbuckets, sizeof *out->buckets);
	if (out->buckets == NULL || read_begin(s, __func__) != 0)
		goto fail;
	for (size_t i = 0; i < out->nbuckets; i++)
		figures_init(&out->buckets[i]);
	rc = usage_rows(s, hourly ? ST_USAGE_HOUR : ST_USAGE_MINUTE, out);
	if (tx_end(s, rc, __func__) == 0)
		return 0;
fail:
	rf_store_usage_free(out);
	return -1;
}

void rf_store_usage_free(struct rf_usage_report *r)
{
	if (r == NULL)
		return;
	free(r->buckets);
	free(r->providers);
	r->buckets = NULL;
	r->providers = NULL;
	r->nbuckets = r->nproviders = 0;
}

/* ---- retention ---- */

/* Run a bound DELETE; the rows it deleted (not counting cascades), or -1. */
static int prune_step(struct conn *s, enum rf_stmt i, int64_t cutoff,
    int batch)
{
	sqlite3_stmt *st = s->st[i];
	int b = 0;

	if (sqlite3_bind_parameter_count(st) >= 1)
		b |= bind_i64(st, 1, cutoff);
	if (sqlite3_bind_parameter_count(st) >= 2)
		b |= bind_i64(st, 2, batch);
	if (b != SQLITE_OK) {
		report(s, "rf_store_prune");
		done_with(st);
		return -1;
	}
	if (exec_stmt(s, i, "rf_store_prune") != 0)
		return -1;
	return sqlite3_changes(s->db);
}

static int conn_prune(struct conn *s, int64_t older_than_ms, int batch)
{
	static const enum rf_stmt counted[] = { ST_PRUNE_REQUESTS,
	    ST_PRUNE_MINUTES, ST_PRUNE_HOURS };
	int total = 0, n, rc = 0;

	if (s == NULL || batch < 1 || tx_begin(s, __func__) != 0)
		return -1;
	for (size_t i = 0; rc == 0 && i < sizeof counted / sizeof counted[0];
	    i++) {
		n = prune_step(s, counted[i], older_than_ms, batch);
		if (n < 0)
			rc = -1;
		else
			total += n;
	}
	if (rc == 0 && prune_step(s, ST_PRUNE_RATE, 0, 0) < 0)
		rc = -1;
	if (tx_end(s, rc, __func__) != 0)
		return -1;
	return total;
}

/* Step a PRAGMA to its end (incremental_vacuum frees a page per step). */
static int run_pragma(struct conn *s, enum rf_stmt i, const char *fn)
{
	int step;

	while ((step = sqlite3_step(s->st[i])) == SQLITE_ROW)
		;
	if (step != SQLITE_DONE)
		report(s, fn);
	done_with(s->st[i]);
	return step == SQLITE_DONE ? 0 : -1;
}

static int conn_maintain(struct conn *s)
{
	if (s == NULL)
		return -1;
	if (run_pragma(s, ST_VACUUM, __func__) != 0)
		return -1;
	return run_pragma(s, ST_CHECKPOINT, __func__);
}

/* ---- the connection pool ------------------------------------------------
 * One struct rf_store per process, shared by every thread.  Each public
 * operation borrows one of its connections (all opened at start) for just
 * that operation, so a process serving hundreds of streams keeps a handful
 * of SQLite connections -- and their prepared statements and page caches --
 * instead of one per thread. */

struct rf_store {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	int nconns;          /* opened */
	int nfree;
	struct conn **all;   /* every opened connection */
	struct conn **free_; /* a stack of idle ones */
};

/* Borrow a connection, waiting while all are busy. */
static struct conn *acquire(struct rf_store *p)
{
	struct conn *c;

	pthread_mutex_lock(&p->lock);
	while (p->nfree == 0)
		pthread_cond_wait(&p->freed, &p->lock);
	c = p->free_[--p->nfree];
	pthread_mutex_unlock(&p->lock);
	return c;
}

static void release(struct rf_store *p, struct conn *c)
{
	pthread_mutex_lock(&p->lock);
	p->free_[p->nfree++] = c;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

struct rf_store *rf_store_open_pool(const char *path, int max_conns,
    char *err, size_t errlen)
{
	struct rf_store *p = calloc(1, sizeof(*p));

	if (p == NULL || max_conns < 1) {
		set_err(err, errlen, "rf_store_open", NULL);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	p->all = calloc((size_t)max_conns, sizeof(*p->all));
	p->free_ = calloc((size_t)max_conns, sizeof(*p->free_));
	if (p->all == NULL || p->free_ == NULL) {
		set_err(err, errlen, "rf_store_open", NULL);
		goto fail;
	}
	/* All connections now, so no request ever pays for opening one (the
	 * first also creates and migrates the file). */
	for (; p->nconns < max_conns; p->nconns++) {
		p->all[p->nconns] = conn_open(path, err, errlen);
		if (p->all[p->nconns] == NULL)
			goto fail;
		p->free_[p->nfree++] = p->all[p->nconns];
	}
	return p;
fail:
	rf_store_close(p);
	return NULL;
}

struct rf_store *rf_store_open(const char *path, char *err, size_t errlen)
{
	return rf_store_open_pool(path, 1, err, errlen);
}

void rf_store_close(struct rf_store *p)
{
	if (p == NULL)
		return;
	for (int i = 0; i < p->nconns; i++)
		conn_close(p->all[i]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->freed);
	free(p->all);
	free(p->free_);
	free(p);
}

/* Run one operation on a borrowed connection; -1 without a store. */
#define WITH_CONN(p, call) do {                                   \
		struct conn *c_;                                   \
		int rc_;                                           \
		if ((p) == NULL || (c_ = acquire(p)) == NULL)      \
			return -1;                                 \
		rc_ = call;                                        \
		release((p), c_);                                  \
		return rc_;                                        \
	} while (0)

int rf_store_log_request(struct rf_store *p, const struct rf_log_entry *e)
{
	WITH_CONN(p, conn_log_request(c_, e));
}

int rf_store_log_requests(struct rf_store *p, const struct rf_log_entry *const *e,
    size_t n)
{
	WITH_CONN(p, conn_log_requests(c_, e, n));
}

int rf_store_provider_states(struct rf_store *p, const char *const *ids,
    size_t n, struct rf_provider_state *st)
{
	WITH_CONN(p, conn_provider_states(c_, ids, n, st));
}

int rf_store_provider_failed(struct rf_store *p, const char *id,
    const char *error_code, int64_t now_ms, int64_t cooldown_until_ms,
    int threshold, int64_t cooldown_ms)
{
	WITH_CONN(p, conn_provider_failed(c_, id, error_code, now_ms,
	    cooldown_until_ms, threshold, cooldown_ms));
}

int rf_store_provider_ok(struct rf_store *p, const char *id, int64_t now_ms)
{
	WITH_CONN(p, conn_provider_ok(c_, id, now_ms));
}

int rf_store_provider_quota(struct rf_store *p, const char *id,
    long remaining_requests, long remaining_tokens, int64_t reset_ms,
    int64_t now_ms)
{
	WITH_CONN(p, conn_provider_quota(c_, id, remaining_requests,
	    remaining_tokens, reset_ms, now_ms));
}

int rf_store_rate_hit(struct rf_store *p, const char *client, int limit,
    int64_t now_ms, int *retry_after_s)
{
	if (limit <= 0)
		return 1; /* off: no connection needed */
	WITH_CONN(p, conn_rate_hit(c_, client, limit, now_ms, retry_after_s));
}

int rf_store_ping(struct rf_store *p)
{
	WITH_CONN(p, conn_ping(c_));
}

int rf_store_provider_reports(struct rf_store *p, const char *const *ids,
    size_t n, int64_t since_ms, struct rf_provider_report *out)
{
	WITH_CONN(p, conn_provider_reports(c_, ids, n, since_ms, out));
}

int rf_store_logs(struct rf_store *p, const struct rf_log_query *q,
    struct rf_log_page *page)
{
	if (p == NULL)
		memset(page, 0, sizeof(*page));
	WITH_CONN(p, conn_logs(c_, q, page));
}

int rf_store_usage(struct rf_store *p, int64_t from_ms, int64_t to_ms,
    int64_t bucket_ms, struct rf_usage_report *out)
{
	if (p == NULL)
		memset(out, 0, sizeof(*out));
	WITH_CONN(p, conn_usage(c_, from_ms, to_ms, bucket_ms, out));
}

int rf_store_prune(struct rf_store *p, int64_t older_than_ms, int batch)
{
	WITH_CONN(p, conn_prune(c_, older_than_ms, batch));
}

int rf_store_maintain(struct rf_store *p)
{
	WITH_CONN(p, conn_maintain(c_));
}
