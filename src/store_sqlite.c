/*
 * store_sqlite: the SQLite backend of the store (docs/operations.md), the file
 * every responder process and thread shares.  It holds every SQL
 * statement and every sqlite3 call of the program; src/store.c pools its
 * connections and reaches it only through rf_store_sqlite, the ops table
 * at the end of this file.
 *
 * Opening a connection (after any fork) configures it -- WAL, a busy
 * handler that polls for up to 10 s (or until the calling thread's budget
 * ends, see rf_store_budget), synchronous=NORMAL, foreign keys --
 * and applies the schema compiled into the binary (build/schema_sqlite.h,
 * from schema/relayforge.sql) inside BEGIN IMMEDIATE, so several processes
 * starting on a fresh file agree on one migration.  Every statement is
 * prepared on that connection (SQLITE_PREPARE_PERSISTENT; a few variants
 * on first use), kept for its life and finalised by sq_close.
 *
 * Each op is one transaction: writes run in BEGIN IMMEDIATE and are rolled
 * back whole on any error; reads for the observability endpoints run in
 * one deferred transaction each, so every answer is one consistent
 * snapshot.  Usage reads the per-minute / per-hour rollups that every
 * logged request updates in its own transaction, never the requests; the
 * same transaction adds the batch's metric series (src/metrics.c) to
 * metric_totals, which retention never touches.
 * Rows from the request-log spool are written with the spool's progress
 * (spool_progress) in the same transaction; when the schema refuses a row
 * the batch is done again with a savepoint per row, so that row alone is
 * dropped; the writable probe of /health
 * takes the write lock on a short-lived connection of its own.
 *
 * Errors go to stderr through the log module (the function and SQLite's
 * message) -- never SQL values, which may hold prompt previews.
 */
#include "store_backend.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "log.h"
#include "metrics.h"
#include "schema_sqlite.h"
#include "util.h"

/* Must equal the PRAGMA user_version set at the end of the schema file. */
#define RF_SCHEMA_VERSION 4

#define RF_BUSY_TIMEOUT_MS 10000
#define RF_BUSY_STEP_MS 5
#define RF_MINUTE_MS 60000
#define RF_HOUR_MS 3600000
/* Pages given back per maintain call (4 MiB at 4 KiB pages): a few
 * milliseconds of write lock. */
#define RF_VACUUM_PAGES_STR "1024"

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
	ST_PROVIDER_COOLDOWN,
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
	/* the request-log spool */
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_SPOOL_GET,
	ST_SPOOL_SET,
	ST_SPOOL_FORGET,
	/* metrics (schema version 3) */
	ST_METRIC_ADD,        /* generated: the bucket columns */
	ST_METRIC_ROWS,       /* generated */
	ST_GAUGES_SUM,
	ST_GAUGE_PUBLISH,
	ST_PRUNE_GAUGES_FOLD,
	ST_PRUNE_GAUGES,
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
	    " prompt_preview, partial_chars, skipped_chunks, restarts, streamed,"
	    " node)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
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
	/* A later deadline replaces the stored one (with its reason); an
	 * earlier one leaves the row as it is.  updated_ms stays: the
	 * engine sets a cooldown right after the write that reported it. */
	[ST_PROVIDER_COOLDOWN] =
	    "INSERT INTO provider_state (provider, cooldown_until_ms,"
	    " cooldown_reason) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " cooldown_until_ms = excluded.cooldown_until_ms,"
	    " cooldown_reason = excluded.cooldown_reason"
	    " WHERE excluded.cooldown_until_ms > provider_state.cooldown_until_ms",
	[ST_PROVIDER_QUOTA] =
	    "INSERT INTO provider_state (provider, quota_remaining_requests,"
	    " quota_remaining_tokens, quota_reset_ms, updated_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " quota_remaining_requests = excluded.quota_remaining_requests,"
	    " quota_remaining_tokens = excluded.quota_remaining_tokens,"
	    " quota_reset_ms = excluded.quota_reset_ms,"
	    " updated_ms = excluded.updated_ms",
	[ST_RATE_HIT] =
	    "INSERT INTO rate_limit (client, window_start_ms, count)"
	    " VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (client, window_start_ms) DO UPDATE SET"
	    " count = count + excluded.count RETURNING count",
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
	/* One row of a spooled batch: rolled back alone when it is refused. */
	[ST_SAVEPOINT] = "SAVEPOINT spool_row",
	[ST_RELEASE] = "RELEASE spool_row",
	[ST_ROLLBACK_TO] = "ROLLBACK TO spool_row",
	[ST_SPOOL_GET] = "SELECT through FROM spool_progress WHERE spool = ?1",
	[ST_SPOOL_SET] =
	    "INSERT INTO spool_progress (spool, through, updated_ms)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (spool) DO UPDATE SET"
	    " through = excluded.through, updated_ms = excluded.updated_ms",
	[ST_SPOOL_FORGET] = "DELETE FROM spool_progress WHERE spool = ?1",
	/* The live processes' gauges (?1: the oldest report still live) and
	 * every process's dropped rows, with those of pruned processes. */
	[ST_GAUGES_SUM] =
	    "SELECT coalesce(sum(CASE WHEN updated_ms >= ?1 THEN open_streams"
	    " END), 0), coalesce(sum(CASE WHEN updated_ms >= ?1 THEN queue_rows"
	    " END), 0), count(CASE WHEN updated_ms >= ?1 THEN 1 END),"
	    " coalesce(sum(dropped_rows), 0) + coalesce((SELECT sum(count)"
	    " FROM metric_totals WHERE name = '" RF_METRICS_DROPPED_NAME "'"
	    " AND labels = ''), 0) FROM process_gauges",
	/* A process's own count never goes down, and a report older than
	 * the stored one changes nothing. */
	[ST_GAUGE_PUBLISH] =
	    "INSERT INTO process_gauges (process, open_streams, queue_rows,"
	    " dropped_rows, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (process) DO UPDATE SET"
	    " open_streams = excluded.open_streams,"
	    " queue_rows = excluded.queue_rows,"
	    " dropped_rows = max(dropped_rows, excluded.dropped_rows),"
	    " updated_ms = excluded.updated_ms"
	    " WHERE excluded.updated_ms >= process_gauges.updated_ms",
	/* Processes silent since the cutoff are gone: their dropped rows
	 * move to the total before their rows are deleted (the WHERE also
	 * settles the INSERT ... SELECT ... ON CONFLICT parse). */
	[ST_PRUNE_GAUGES_FOLD] =
	    "INSERT INTO metric_totals (name, labels, count)"
	    " SELECT '" RF_METRICS_DROPPED_NAME "', '', coalesce(sum(dropped_rows),"
	    " 0) FROM process_gauges WHERE updated_ms < ?1"
	    " ON CONFLICT (name, labels) DO UPDATE SET"
	    " count = count + excluded.count",
	[ST_PRUNE_GAUGES] = "DELETE FROM process_gauges WHERE updated_ms < ?1",
};

/* The logs page query has one variant per filter combination (status x
 * endpoint x provider), each prepared on first use: literal filter values
 * let the planner use the partial index of failures.  The endpoints of
 * the filter: none, then /api/v1's and /v1's. */
static const char *const log_endpoint[] = { "", "chat", "stream", "openai",
    "openai_stream" };
#define LOG_ENDPOINTS 5
#define LOG_STATUSES 4 /* any, success, error, cancelled */
#define LOG_VARIANTS (LOG_STATUSES * LOG_ENDPOINTS * 2)

struct rf_store_conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	sqlite3_stmt *logs[LOG_VARIANTS];
	/* The rollup rows of the batch being written (minute, hour),
	 * upserted once each before the commit. */
	struct rf_store_rollups roll[2];
	/* The metric increments of the batch being written, and the update
	 * of a series with at most one bucket to add to (index: the bucket,
	 * RF_METRIC_BUCKETS for none), prepared on first use. */
	struct rf_metrics_acc acc;
	sqlite3_stmt *madd[RF_METRIC_BUCKETS + 1];
};

/* ---- open-time helpers (unprepared: they run once per connection) ---- */

static void
set_err(char *err, size_t errlen, const char *what, sqlite3 *db)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", what,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
}

/* Run a one-row statement (a PRAGMA) and copy its first column as text
 * into out (may be NULL).  Returns 0 or -1. */
static int
query_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
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

static int
query_int(sqlite3 *db, const char *sql, long *v)
{
	char buf[32];

	if (query_text(db, sql, buf, sizeof buf) != 0)
		return -1;
	*v = strtol(buf, NULL, 10);
	return 0;
}

/* Waiting for the write lock: SQLite's own busy_timeout sleeps 1, 2, 5,
 * 10 ... ms, far longer than a writer holds the lock here (a few hundred
 * microseconds), which showed as 100+ ms p99 under load.  Poll every
 * 100 us for the first 2 ms, then every 1 ms, up to RF_BUSY_TIMEOUT_MS --
 * or, for a call with a budget (a request's path), until the budget ends:
 * that caller would rather decide without the store than wait. */
static int
on_busy(void *ud, int count)
{
	long waited_us = count < 20 ? count * 100L : 2000L + (count - 20) * 1000L;
	struct timespec ts = { 0, count < 20 ? 100000L : 1000000L };
	bool expired = false;

	(void)ud;
	if (rf_store_call_budget(&expired)) {
		if (expired)
			return 0;
	} else if (waited_us >= RF_BUSY_TIMEOUT_MS * 1000L) {
		return 0;
	}
	nanosleep(&ts, NULL);
	return 1;
}

/* Connection settings.  auto_vacuum only takes effect before the first page
 * is written, and journal_mode=WAL writes it: so it goes first, and only on
 * a still-empty file (on an existing one it would start a write). */
static int
configure(sqlite3 *db, char *err, size_t errlen)
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

/* Run the sections of the compiled schema newer than version from: the
 * file is a list of sections, each ending with its "PRAGMA user_version =
 * N;" line, so a column added by ALTER TABLE is added exactly once. */
static int
apply_sections(sqlite3 *db, long from)
{
	static const char mark[] = "PRAGMA user_version = ";
	const char *p = rf_schema_sqlite, *end;
	char *sql;
	int rc = 0;

	while (rc == 0 && (end = strstr(p, mark)) != NULL) {
		long n = strtol(end + sizeof(mark) - 1, NULL, 10);
		const char *stop = strchr(end, '\n');

		stop = stop != NULL ? stop + 1 : end + strlen(end);
		if (n > from) {
			if ((sql = strndup(p, (size_t)(stop - p))) == NULL)
				return -1;
			rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ?
			    0 : -1;
			free(sql);
		}
		p = stop;
	}
	return rc;
}

/* Apply the compiled schema when the file is older than this binary.  The
 * version is read again under the write lock: another process may have
 * migrated between the first read and BEGIN IMMEDIATE.  A file newer than
 * the binary is accepted (migrations only add). */
static int
migrate(sqlite3 *db, char *err, size_t errlen)
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
	if (apply_sections(db, v) != 0 ||
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
	" latency_sum, latency_max, prompt_tokens, completion_tokens, cancelled"

/* Add a batch's rollup row (src/store.c sums them) to a rollup table:
 * ?1 period, ?2 provider, ?3..?11 the counts and sums in ROLLUP_COLS
 * order, ?12.. the 72 histogram buckets. */
static int
upsert_sql(struct rf_buf *b, const char *table, const char *key)
{
	int rc = rf_buf_printf(b, "INSERT INTO %s (%s, " ROLLUP_COLS, table,
	    key);

	for (int i = 0; i < RF_HIST_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", h%d", i);
	rc |= rf_buf_puts(b, ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
	    " ?10, ?11");
	for (int i = 0; i < RF_HIST_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", ?%d", i + 12);
	rc |= rf_buf_printf(b, ") ON CONFLICT (%s, provider) DO UPDATE SET"
	    " requests = requests + excluded.requests,"
	    " successes = successes + excluded.successes,"
	    " errors = errors + excluded.errors,"
	    " fallbacks = fallbacks + excluded.fallbacks,"
	    " latency_sum = latency_sum + excluded.latency_sum,"
	    " latency_max = max(latency_max, excluded.latency_max),"
	    " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
	    " completion_tokens = completion_tokens + excluded.completion_tokens,"
	    " cancelled = cancelled + excluded.cancelled", key);
	for (int i = 0; i < RF_HIST_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", h%d = h%d + excluded.h%d", i, i, i);
	return rc;
}

/* The rollup rows of [?1, ?2) in period order (the primary key's, so no
 * sort), summed by the caller: a GROUP BY would push every row and its 72
 * histogram columns through a temporary b-tree, several times slower. */
static int
usage_sql(struct rf_buf *b, const char *table, const char *key)
{
	int rc = rf_buf_printf(b, "SELECT %s, " ROLLUP_COLS, key);

	for (int i = 0; i < RF_HIST_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", h%d", i);
	rc |= rf_buf_printf(b, " FROM %s WHERE %s >= ?1 AND %s < ?2"
	    " ORDER BY %s", table, key, key, key);
	return rc;
}

/* The attempts of up to RF_LOG_PAGE_MAX requests, in the page's order
 * (unused placeholders stay NULL, which matches nothing). */
static int
log_attempts_sql(struct rf_buf *b)
{
	int rc = rf_buf_puts(b, "SELECT request_id, provider, outcome, reason,"
	    " http_status, latency_ms, retry FROM attempts"
	    " WHERE request_id IN (?1");

	for (int i = 2; i <= RF_LOG_PAGE_MAX; i++)
		rc |= rf_buf_printf(b, ", ?%d", i);
	rc |= rf_buf_puts(b, ") ORDER BY request_id DESC, seq");
	return rc;
}

/* Add a batch's increment to one metric series: ?1 name, ?2 labels, ?3
 * count, ?4 sum, ?5.. the bucket counts b0..b15. */
static int
metric_add_sql(struct rf_buf *b)
{
	int rc = rf_buf_puts(b, "INSERT INTO metric_totals (name, labels,"
	    " count, sum");

	for (int i = 0; i < RF_METRIC_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", b%d", i);
	rc |= rf_buf_puts(b, ") VALUES (?1, ?2, ?3, ?4");
	for (int i = 0; i < RF_METRIC_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", ?%d", i + 5);
	rc |= rf_buf_puts(b, ") ON CONFLICT (name, labels) DO UPDATE SET"
	    " count = count + excluded.count, sum = sum + excluded.sum");
	for (int i = 0; i < RF_METRIC_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", b%d = b%d + excluded.b%d", i, i, i);
	return rc;
}

/* Every series, in the order of the exposition. */
static int
metric_rows_sql(struct rf_buf *b)
{
	int rc = rf_buf_puts(b, "SELECT name, labels, count, sum");

	for (int i = 0; i < RF_METRIC_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", b%d", i);
	rc |= rf_buf_puts(b, " FROM metric_totals ORDER BY name, labels");
	return rc;
}

static int
build_sql(enum rf_stmt i, struct rf_buf *b)
{
	switch (i) {
	case ST_UPSERT_MINUTE:
		return upsert_sql(b, "usage_minute", "minute_ms");
	case ST_UPSERT_HOUR:
		return upsert_sql(b, "usage_hour", "hour_ms");
	case ST_USAGE_MINUTE:
		return usage_sql(b, "usage_minute", "minute_ms");
	case ST_USAGE_HOUR:
		return usage_sql(b, "usage_hour", "hour_ms");
	case ST_LOG_ATTEMPTS:
		return log_attempts_sql(b);
	case ST_METRIC_ADD:
		return metric_add_sql(b);
	case ST_METRIC_ROWS:
		return metric_rows_sql(b);
	default:
		return rf_buf_puts(b, stmt_sql[i]);
	}
}

static int
prepare_all(struct rf_store_conn *s, char *err, size_t errlen)
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

static void
sq_close(struct rf_store_conn *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	for (int i = 0; i < LOG_VARIANTS; i++)
		sqlite3_finalize(s->logs[i]);
	for (int t = 0; t < 2; t++)
		rf_store_rollups_free(&s->roll[t]);
	rf_metrics_acc_free(&s->acc);
	for (int b = 0; b <= RF_METRIC_BUCKETS; b++)
		sqlite3_finalize(s->madd[b]);
	sqlite3_close(s->db);
	free(s);
}

/* Create the file owner-only before SQLite does.  SQLite would create it
 * 0644 less the umask -- readable by every local user, with prompt
 * previews and client sources in it -- and gives -wal and -shm the
 * database file's own mode, so they follow.  A file that exists keeps
 * the mode its operator gave it, and is not even opened here: closing
 * any descriptor of the file drops the POSIX locks every connection of
 * this process holds on it (O_EXCL).  ":memory:" and "file:" names are
 * SQLite's to interpret. */
static void
create_private(const char *db)
{
	int fd;

	if (db[0] == '\0' || strcmp(db, ":memory:") == 0 ||
	    strncmp(db, "file:", 5) == 0)
		return;
	fd = open(db, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd >= 0)
		close(fd); /* else it exists, or SQLite's open says why not */
}

/* db is a file path: it holds no secret, so the message may name it. */
static struct rf_store_conn *
sq_open(const char *db, char *err, size_t errlen)
{
	struct rf_store_conn *s = calloc(1, sizeof *s);
	char what[300];

	if (s == NULL) {
		set_err(err, errlen, "rf_store_open", NULL);
		return NULL;
	}
	s->roll[0].period_ms = RF_MINUTE_MS;
	s->roll[1].period_ms = RF_HOUR_MS;
	create_private(db);
	if (sqlite3_open_v2(db, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		/* Usually a missing parent directory or no permission. */
		snprintf(what, sizeof what, "cannot open %s", db);
		set_err(err, errlen, what, s->db);
		goto fail;
	}
	if (configure(s->db, err, errlen) != 0 ||
	    migrate(s->db, err, errlen) != 0 ||
	    prepare_all(s, err, errlen) != 0)
		goto fail;
	return s;
fail:
	sq_close(s);
	return NULL;
}

/* ---- statement helpers ---- */

/* Say why a statement failed -- unless the call had a budget and ran out
 * of it waiting for a lock: its caller falls back and says so once, where
 * a line per request would flood stderr while an operator holds the lock. */
static void
report(struct rf_store_conn *s, const char *fn)
{
	int code = sqlite3_errcode(s->db);

	if ((code == SQLITE_BUSY || code == SQLITE_LOCKED) &&
	    rf_store_call_budget(NULL))
		return;
	rf_log_write(RF_LOG_LEVEL_ERR, fn, NULL, NULL, "%s", sqlite3_errmsg(s->db));
}

/* Make st ready for the next use.  The error of a failed step has been
 * reported already; reset repeats it, so its result is ignored here. */
static void
done_with(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Step a statement that returns no row; reset it.  0 or -1 (reported). */
static int
exec_stmt(struct rf_store_conn *s, enum rf_stmt i, const char *fn)
{
	int rc = sqlite3_step(s->st[i]) == SQLITE_DONE ? 0 : -1;

	if (rc != 0)
		report(s, fn);
	done_with(s->st[i]);
	return rc;
}

static int
tx_begin(struct rf_store_conn *s, const char *fn)
{
	return exec_stmt(s, ST_BEGIN, fn);
}

static int
read_begin(struct rf_store_conn *s, const char *fn)
{
	return exec_stmt(s, ST_BEGIN_READ, fn);
}

/* Commit when rc is 0, else roll back.  Returns the final outcome. */
static int
tx_end(struct rf_store_conn *s, int rc, const char *fn)
{
	if (rc == 0 && exec_stmt(s, ST_COMMIT, fn) == 0)
		return 0;
	if (!sqlite3_get_autocommit(s->db))
		exec_stmt(s, ST_ROLLBACK, fn);
	return -1;
}

/* NULL pointer binds SQL NULL (sqlite3_bind_text's own rule). */
static int
bind_str(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int
bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_bind_int64(st, i, v);
}

/* A negative value means "unknown / none": SQL NULL. */
static int
bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
	return v < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

/* Run statement i, bound with binding result b, as a write with no row;
 * a binding error is reported and the statement reset. */
static int
finish_write(struct rf_store_conn *s, enum rf_stmt i, int b, const char *fn)
{
	if (b != SQLITE_OK) {
		report(s, fn);
		done_with(s->st[i]);
		return -1;
	}
	return exec_stmt(s, i, fn);
}

/* A column as int64, or dflt when it is NULL. */
static int64_t
col_i64(sqlite3_stmt *st, int i, int64_t dflt)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? dflt :
	    sqlite3_column_int64(st, i);
}

/* A long column, or -1 when NULL. */
static long
col_opt(sqlite3_stmt *st, int i)
{
	return (long)col_i64(st, i, -1);
}

/* ---- log a request ---- */

static int
insert_request(struct rf_store_conn *s, const struct rf_log_entry *e)
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
	b |= bind_str(st, 25, e->node != NULL ? e->node : rf_store_node());
	return finish_write(s, ST_INSERT_REQUEST, b, "rf_store_log_request");
}

static int
insert_attempt(struct rf_store_conn *s, int64_t rowid, int seq,
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
	return finish_write(s, ST_INSERT_ATTEMPT, b, "rf_store_log_request");
}

/* The rows of one request, inside the caller's transaction; once they
 * are written it joins the batch's rollup rows and metric increments
 * (written by rollups_flush and metrics_flush before the commit). */
static int
log_one(struct rf_store_conn *s, const struct rf_log_entry *e)
{
	int64_t rowid;

	if (e == NULL || insert_request(s, e) != 0)
		return -1;
	rowid = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < e->nattempts; i++) {
		if (insert_attempt(s, rowid, (int)i, &e->attempts[i]) != 0)
			return -1;
	}
	if (rf_store_rollups_add(&s->roll[0], e) != 0 ||
	    rf_store_rollups_add(&s->roll[1], e) != 0 ||
	    rf_metrics_acc_add(&s->acc, e) != 0) {
		RF_LOG_ERR(e->request_id, NULL, "out of memory");
		return -1;
	}
	return 0;
}

/* The bucket a row adds to when it adds to one at most (a row of one
 * request always does): its index, RF_METRIC_BUCKETS for none; -1 for
 * several. */
static int
one_bucket(const struct rf_metric_row *r)
{
	int k = RF_METRIC_BUCKETS;

	for (int i = 0; i < RF_METRIC_BUCKETS; i++) {
		if (r->b[i] == 0)
			continue;
		if (k != RF_METRIC_BUCKETS)
			return -1;
		k = i;
	}
	return k;
}

/* The update of an existing series that adds to bucket k only (k ==
 * RF_METRIC_BUCKETS: none): 3 columns written, not 18. */
static sqlite3_stmt *
metric_update_stmt(struct rf_store_conn *s, int k)
{
	char sql[256];

	if (s->madd[k] != NULL)
		return s->madd[k];
	if (k < RF_METRIC_BUCKETS)
		snprintf(sql, sizeof sql, "UPDATE metric_totals SET count = count"
		    " + ?3, sum = sum + ?4, b%d = b%d + ?5 WHERE name = ?1 AND"
		    " labels = ?2", k, k);
	else
		snprintf(sql, sizeof sql, "UPDATE metric_totals SET count = count"
		    " + ?3, sum = sum + ?4 WHERE name = ?1 AND labels = ?2");
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &s->madd[k], NULL) != SQLITE_OK)
		s->madd[k] = NULL;
	return s->madd[k];
}

/* Add one series' increment: an update of its row when it has one and
 * adds to one bucket at most (the common case), else the upsert.
 * 1 when the update found no row (the upsert must follow), 0, -1. */
static int
metric_update(struct rf_store_conn *s, const struct rf_metric_row *r,
    const char *fn)
{
	int k = one_bucket(r), b, step;
	sqlite3_stmt *st;

	if (k < 0)
		return 1;
	if ((st = metric_update_stmt(s, k)) == NULL) {
		report(s, fn);
		return -1;
	}
	b = bind_str(st, 1, r->name) | bind_str(st, 2, r->labels) |
	    bind_i64(st, 3, r->count) | bind_i64(st, 4, r->sum);
	if (k < RF_METRIC_BUCKETS)
		b |= bind_i64(st, 5, r->b[k]);
	step = b == SQLITE_OK ? sqlite3_step(st) : SQLITE_ERROR;
	if (step != SQLITE_DONE)
		report(s, fn);
	done_with(st);
	if (step != SQLITE_DONE)
		return -1;
	return sqlite3_changes(s->db) == 1 ? 0 : 1;
}

/* Add the batch's rollup rows to their tables: one upsert per period
 * and provider the batch touched (a few), not two per request. */
static int
rollups_flush(struct rf_store_conn *s, const char *fn)
{
	int rc = 0;

	for (int t = 0; t < 2 && rc == 0; t++) {
		enum rf_stmt i = t == 0 ? ST_UPSERT_MINUTE : ST_UPSERT_HOUR;
		sqlite3_stmt *st = s->st[i];

		for (size_t j = 0; j < s->roll[t].n && rc == 0; j++) {
			const struct rf_hist_row *h = &s->roll[t].v[j];
			int b = bind_i64(st, 1, h->period_ms) |
			    bind_str(st, 2, h->provider) |
			    bind_i64(st, 3, h->requests) |
			    bind_i64(st, 4, h->successes) |
			    bind_i64(st, 5, h->errors) |
			    bind_i64(st, 6, h->fallbacks) |
			    bind_i64(st, 7, h->latency_sum) |
			    bind_i64(st, 8, h->latency_max) |
			    bind_i64(st, 9, h->prompt_tokens) |
			    bind_i64(st, 10, h->completion_tokens) |
			    bind_i64(st, 11, h->cancelled);

			for (int k = 0; k < RF_HIST_BUCKETS; k++)
				b |= bind_i64(st, k + 12, h->h[k]);
			rc = finish_write(s, i, b, fn);
		}
	}
	return rc;
}

/* A batch starts with nothing summed. */
static void
batch_reset(struct rf_store_conn *s)
{
	s->roll[0].n = s->roll[1].n = 0;
	rf_metrics_acc_reset(&s->acc);
}

/* Add the batch's metric increments to the totals: one write per series
 * the batch touched (a few), not per row. */
static int
metrics_flush(struct rf_store_conn *s, const char *fn)
{
	sqlite3_stmt *st = s->st[ST_METRIC_ADD];
	int rc = 0;

	for (size_t i = 0; i < s->acc.n && rc == 0; i++) {
		const struct rf_metric_row *r = &s->acc.v[i];
		int b;

		if ((rc = metric_update(s, r, fn)) <= 0)
			continue;
		b = bind_str(st, 1, r->name) | bind_str(st, 2, r->labels) |
		    bind_i64(st, 3, r->count) | bind_i64(st, 4, r->sum);
		for (int k = 0; k < RF_METRIC_BUCKETS; k++)
			b |= bind_i64(st, k + 5, r->b[k]);
		rc = finish_write(s, ST_METRIC_ADD, b, fn);
	}
	rf_metrics_acc_reset(&s->acc);
	return rc;
}

/* n requests in one transaction (group commit): all or none. */
static int
sq_log_requests(struct rf_store_conn *s, const struct rf_log_entry *const *e,
    size_t n)
{
	int rc = 0;

	if (e == NULL || tx_begin(s, "rf_store_log_requests") != 0)
		return -1;
	batch_reset(s);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = log_one(s, e[i]);
	if (rc == 0)
		rc = rollups_flush(s, "rf_store_log_requests");
	if (rc == 0)
		rc = metrics_flush(s, "rf_store_log_requests");
	return tx_end(s, rc, "rf_store_log_requests");
}

/* ---- the request-log spool ---- */

/* The stored progress of spool (0 when none); resets the statement. */
static int
spool_at(struct rf_store_conn *s, const char *spool, int64_t *at,
    const char *fn)
{
	sqlite3_stmt *st = s->st[ST_SPOOL_GET];
	int step, rc = 0;

	*at = 0;
	if (bind_str(st, 1, spool) != SQLITE_OK) {
		report(s, fn);
		done_with(st);
		return -1;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*at = sqlite3_column_int64(st, 0);
	else if (step != SQLITE_DONE) {
		report(s, fn);
		rc = -1;
	}
	done_with(st);
	return rc;
}

static int
spool_set(struct rf_store_conn *s, const char *spool, int64_t through,
    const char *fn)
{
	sqlite3_stmt *st = s->st[ST_SPOOL_SET];
	int b = 0;

	b |= bind_str(st, 1, spool);
	b |= bind_i64(st, 2, through);
	b |= bind_i64(st, 3, rf_now_ms());
	return finish_write(s, ST_SPOOL_SET, b, fn);
}

/* Errors that are the row's fault, not the store's: retrying cannot help. */
static bool
row_refused(int code)
{
	return code == SQLITE_CONSTRAINT || code == SQLITE_MISMATCH ||
	    code == SQLITE_TOOBIG || code == SQLITE_RANGE;
}

/* One spooled row in a savepoint: written, or refused and rolled back
 * alone (counted), or -1 when the store itself failed. */
static int
log_row(struct rf_store_conn *s, const struct rf_log_entry *e,
    long *refused, const char *fn)
{
	int code;

	/* A refused row fails in its SQL, before log_one counts its rollup
	 * rows and metric series: the batch's sums stay those of the rows
	 * written. */
	if (exec_stmt(s, ST_SAVEPOINT, fn) != 0)
		return -1;
	if (log_one(s, e) == 0)
		return exec_stmt(s, ST_RELEASE, fn);
	code = sqlite3_errcode(s->db);
	if (!row_refused(code))
		return -1;
	rf_log_write(RF_LOG_LEVEL_ERR, fn, e->request_id, NULL,
	    "the store refuses this request's row (%s): it is dropped",
	    sqlite3_errstr(code));
	(*refused)++;
	if (exec_stmt(s, ST_ROLLBACK_TO, fn) != 0 ||
	    exec_stmt(s, ST_RELEASE, fn) != 0)
		return -1;
	return 0;
}

/* One attempt at a spooled batch, in one transaction.  Plain, each row is
 * written straight (a savepoint per row costs SQLite a statement journal:
 * the writer's throughput fell to a third); careful, each row is in a
 * savepoint and a refused one is rolled back alone.  0 done, -1 failed,
 * 1 a row was refused on a plain attempt (all rolled back: try careful). */
static int
spooled_tx(struct rf_store_conn *s, const char *spool, int64_t from,
    int64_t through, const struct rf_log_entry *const *e, size_t n,
    bool careful, long *refused)
{
	static const char fn[] = "rf_store_log_spooled";
	bool redo = false;
	int64_t at;
	int rc;

	if (tx_begin(s, fn) != 0)
		return -1;
	batch_reset(s);
	rc = spool_at(s, spool, &at, fn);
	if (rc == 0 && at >= through)
		goto end; /* in the store already: a repeated batch */
	if (rc == 0 && at > from) {
		/* Another writer drained part of it: only possible when
		 * file locks do not work where the spool lives. */
		rf_log_write(RF_LOG_LEVEL_ERR, fn, NULL, NULL, "spool %s is in"
		    " the store up to byte %lld, not %lld: not written again",
		    spool, (long long)at, (long long)from);
		rc = -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (careful) {
			rc = log_row(s, e[i], refused, fn);
		} else if ((rc = log_one(s, e[i])) != 0) {
			redo = row_refused(sqlite3_errcode(s->db));
		}
	}
	if (rc == 0)
		rc = rollups_flush(s, fn);
	if (rc == 0)
		rc = metrics_flush(s, fn);
	if (rc == 0)
		rc = spool_set(s, spool, through, fn);
end:
	rc = tx_end(s, rc, fn);
	return redo ? 1 : rc;
}

static int
sq_spool_progress(struct rf_store_conn *s, const char *spool,
    int64_t *through)
{
	return spool_at(s, spool, through, "rf_store_spool_progress");
}

static int
sq_spool_forget(struct rf_store_conn *s, const char *spool)
{
	sqlite3_stmt *st = s->st[ST_SPOOL_FORGET];

	return finish_write(s, ST_SPOOL_FORGET, bind_str(st, 1, spool),
	    "rf_store_spool_forget");
}

/* A connection of its own, so the pool's busy handler (long, for writes
 * that must land) is left as it is: open, BEGIN IMMEDIATE with a short
 * busy timeout, ROLLBACK, close -- well under a millisecond unless the
 * lock is held. */
static int
sq_writable(struct rf_store_conn *s, int timeout_ms, char *why,
    size_t whylen)
{
	const char *path = sqlite3_db_filename(s->db, "main");
	sqlite3 *db = NULL;
	int rc = -1;

	if (path == NULL || path[0] == '\0') {
		snprintf(why, whylen, "not a file");
		return -1;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(db, timeout_ms);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	rc = 0;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	if (rc != 0)
		snprintf(why, whylen, "%s", db != NULL ? sqlite3_errmsg(db) :
		    "out of memory");
	sqlite3_close(db);
	return rc;
}

/* ---- provider state ---- */

/* Read one provider's row; zeroes when it has none.  Resets the statement. */
static int
provider_get(struct rf_store_conn *s, const char *id,
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

static int
sq_provider_states(struct rf_store_conn *s, const char *const *ids, size_t n,
    struct rf_provider_state *st)
{
	const char *fn = "rf_store_provider_states";
	int rc = 0;

	if (read_begin(s, fn) != 0)
		return -1;
	/* One read transaction: one snapshot, one set of locks, not n. */
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = provider_get(s, ids[i], &st[i], fn);
	if (exec_stmt(s, ST_COMMIT, fn) != 0)
		rc = -1;
	return rc;
}

/* The count is read and written under BEGIN IMMEDIATE, so concurrent
 * failures in several processes each count once; the stored cooldown is
 * read in the same transaction so a shorter one never replaces it. */
static int
sq_provider_failed(struct rf_store_conn *s, const char *id, int n,
    const char *error_code, int64_t now_ms, int64_t until_ms, int *failures)
{
	const char *fn = "rf_store_provider_failed";
	sqlite3_stmt *st = s->st[ST_PROVIDER_FAILED];
	struct rf_provider_state cur;
	int rc = -1, b = 0;

	if (tx_begin(s, fn) != 0)
		return -1;
	if (provider_get(s, id, &cur, fn) != 0)
		goto out;
	b |= bind_str(st, 1, id);
	b |= bind_i64(st, 2, cur.consecutive_failures + n);
	b |= bind_str(st, 3, error_code);
	b |= bind_i64(st, 4, now_ms);
	/* NULL keeps the stored cooldown and its reason. */
	if (until_ms > cur.cooldown_until_ms)
		b |= bind_i64(st, 5, until_ms) | bind_str(st, 6, error_code);
	else
		b |= sqlite3_bind_null(st, 5) | sqlite3_bind_null(st, 6);
	rc = finish_write(s, ST_PROVIDER_FAILED, b, fn);
out:
	rc = tx_end(s, rc, fn);
	if (rc == 0)
		*failures = cur.consecutive_failures + n;
	return rc;
}

static int
sq_provider_ok(struct rf_store_conn *s, const char *id, int64_t now_ms)
{
	const char *fn = "rf_store_provider_ok";
	sqlite3_stmt *st = s->st[ST_PROVIDER_OK];
	int rc, b = 0;

	if (tx_begin(s, fn) != 0)
		return -1;
	b |= bind_str(st, 1, id);
	b |= bind_i64(st, 2, now_ms);
	rc = finish_write(s, ST_PROVIDER_OK, b, fn);
	return tx_end(s, rc, fn);
}

static int
sq_provider_cooldown(struct rf_store_conn *s, const char *id,
    int64_t until_ms, const char *reason)
{
	const char *fn = "rf_store_provider_cooldown";
	sqlite3_stmt *st = s->st[ST_PROVIDER_COOLDOWN];
	int rc, b = 0;

	if (tx_begin(s, fn) != 0)
		return -1;
	b |= bind_str(st, 1, id);
	b |= bind_i64(st, 2, until_ms);
	b |= bind_str(st, 3, reason);
	rc = finish_write(s, ST_PROVIDER_COOLDOWN, b, fn);
	return tx_end(s, rc, fn);
}

static int
sq_provider_quota(struct rf_store_conn *s, const char *id,
    long remaining_requests, long remaining_tokens, int64_t reset_ms,
    int64_t now_ms)
{
	const char *fn = "rf_store_provider_quota";
	sqlite3_stmt *st = s->st[ST_PROVIDER_QUOTA];
	int rc, b = 0;

	if (tx_begin(s, fn) != 0)
		return -1;
	b |= bind_str(st, 1, id);
	b |= bind_opt(st, 2, remaining_requests);
	b |= bind_opt(st, 3, remaining_tokens);
	b |= reset_ms > 0 ? bind_i64(st, 4, reset_ms) : sqlite3_bind_null(st, 4);
	b |= bind_i64(st, 5, now_ms);
	rc = finish_write(s, ST_PROVIDER_QUOTA, b, fn);
	return tx_end(s, rc, fn);
}

/* ---- per-client rate limit ---- */

/* Count hits of client in window; the new count, or -1. */
static long
rate_count(struct rf_store_conn *s, const char *client, int hits,
    int64_t window, const char *fn)
{
	sqlite3_stmt *st = s->st[ST_RATE_HIT];
	long count = -1;
	int step;

	if ((bind_str(st, 1, client) | bind_i64(st, 2, window) |
	    bind_i64(st, 3, hits)) != SQLITE_OK) {
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

/* Older windows of the client are deleted in the same transaction, so the
 * table holds about one row per active client. */
static long
sq_rate_count(struct rf_store_conn *s, const char *client, int hits,
    int64_t window_ms)
{
	const char *fn = "rf_store_rate_count";
	sqlite3_stmt *prune = s->st[ST_RATE_PRUNE];
	long count;
	int rc = -1, b = 0;

	if (tx_begin(s, fn) != 0)
		return -1;
	count = rate_count(s, client, hits, window_ms, fn);
	if (count < 0)
		goto out;
	b |= bind_str(prune, 1, client);
	b |= bind_i64(prune, 2, window_ms);
	rc = finish_write(s, ST_RATE_PRUNE, b, fn);
out:
	if (tx_end(s, rc, fn) != 0)
		return -1;
	return count;
}

static int
sq_ping(struct rf_store_conn *s)
{
	int rc = sqlite3_step(s->st[ST_PING]) == SQLITE_ROW ? 0 : -1;

	if (rc != 0)
		report(s, "rf_store_ping");
	done_with(s->st[ST_PING]);
	return rc;
}

/* ---- status: one report per provider ---- */

/* The shared state row of one provider (none: the defaults stay). */
static int
report_state(struct rf_store_conn *s, const char *id,
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

/* The newest ok (ST_REPORT_LAST_OK) or failed call of one provider. */
static int
report_last(struct rf_store_conn *s, enum rf_stmt i, const char *id,
    struct rf_store_last_call *out)
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

/* The window's figures of one result row, into the report of its id. */
static void
report_window_row(sqlite3_stmt *st, const char *const *ids, size_t n,
    struct rf_provider_report *out)
{
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

/* The window's figures, matched to the requested ids. */
static int
report_window(struct rf_store_conn *s, const char *const *ids, size_t n,
    int64_t since_ms, struct rf_provider_report *out)
{
	sqlite3_stmt *st = s->st[ST_REPORT_WINDOW];
	int step;

	if (bind_i64(st, 1, since_ms) != SQLITE_OK) {
		report(s, "rf_store_provider_reports");
		done_with(st);
		return -1;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		report_window_row(st, ids, n, out);
	if (step != SQLITE_DONE)
		report(s, "rf_store_provider_reports");
	done_with(st);
	return step == SQLITE_DONE ? 0 : -1;
}

static int
sq_provider_reports(struct rf_store_conn *s, const char *const *ids,
    size_t n, int64_t since_ms, struct rf_provider_report *out)
{
	const char *fn = "rf_store_provider_reports";
	struct rf_store_last_call ok, bad;
	int rc = -1;

	if (read_begin(s, fn) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (report_state(s, ids[i], &out[i]) != 0 ||
		    report_last(s, ST_REPORT_LAST_OK, ids[i], &ok) != 0 ||
		    report_last(s, ST_REPORT_LAST_FAILED, ids[i], &bad) != 0)
			goto out;
		rf_store_report_merge_last(&out[i], &ok, &bad);
	}
	rc = report_window(s, ids, n, since_ms, out);
out:
	return tx_end(s, rc, fn);
}

/* ---- logs: one page of requests with their attempts ---- */

/* A text column copied into the page (NULL for SQL NULL). */
static const char *
page_col(struct rf_log_page *page, sqlite3_stmt *st, int i)
{
	const char *t;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	/* NULL here means SQLite ran out of memory: the page fails. */
	t = (const char *)sqlite3_column_text(st, i);
	return rf_store_page_text(page, t, (size_t)sqlite3_column_bytes(st, i));
}

/* Which prepared variant serves q (see LOG_VARIANTS). */
static int
log_variant(const struct rf_log_query *q)
{
	int st = q->status == NULL ? 0 : strcmp(q->status, "success") == 0 ?
	    1 : strcmp(q->status, "error") == 0 ? 2 : 3;
	int ep = 0;

	for (int i = 1; q->endpoint != NULL && i < LOG_ENDPOINTS; i++)
		if (strcmp(q->endpoint, log_endpoint[i]) == 0)
			ep = i;
	return (st * LOG_ENDPOINTS + ep) * 2 + (q->provider != NULL);
}

#define LOG_COLS "id, request_id, ts_ms, endpoint, strategy," \
	" attempted_provider, final_provider, fallback, degraded, demo," \
	" status, error_code, http_status, latency_ms, ttft_ms, model," \
	" prompt_chars, prompt_tokens, completion_tokens, source," \
	" prompt_preview, partial_chars, skipped_chunks, restarts, streamed," \
	" node"

/* The page query of variant v: ?1 ids below, ?2 final provider, ?3 rows.
 * Filter values are literals from a fixed set, never from the client.
 * A cancelled request is stored as an error with code client_closed
 * (rf_store_entry_status); both error filters keep status = 'error', so
 * the partial index of failures serves them. */
static sqlite3_stmt *
log_stmt(struct rf_store_conn *s, int v)
{
	static const char *const status[LOG_STATUSES] = { "",
	    " AND status = 'success'",
	    " AND status = 'error' AND error_code IS NOT '"
	    RF_STORE_CANCELLED_CODE "'",
	    " AND status = 'error' AND error_code = '"
	    RF_STORE_CANCELLED_CODE "'" };
	char endpoint[64] = "";
	char sql[1024];

	if (s->logs[v] != NULL)
		return s->logs[v];
	if (v / 2 % LOG_ENDPOINTS > 0)
		snprintf(endpoint, sizeof endpoint, " AND endpoint = '%s'",
		    log_endpoint[v / 2 % LOG_ENDPOINTS]);
	snprintf(sql, sizeof sql, "SELECT " LOG_COLS " FROM requests"
	    " WHERE id < ?1%s%s%s ORDER BY id DESC LIMIT ?3",
	    v % 2 ? " AND final_provider = ?2" : "",
	    status[v / (2 * LOG_ENDPOINTS)], endpoint);
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &s->logs[v], NULL) != SQLITE_OK) {
		report(s, "rf_store_logs");
		return NULL;
	}
	return s->logs[v];
}

static void
log_item_read(struct rf_log_page *page, sqlite3_stmt *st,
    struct rf_log_item *it)
{
	struct rf_log_entry *e = &it->e;
	const char *status;

	it->id = sqlite3_column_int64(st, 0);
	e->request_id = page_col(page, st, 1);
	e->ts_ms = sqlite3_column_int64(st, 2);
	e->endpoint = page_col(page, st, 3);
	e->strategy = page_col(page, st, 4);
	e->attempted_provider = page_col(page, st, 5);
	e->final_provider = page_col(page, st, 6);
	e->fallback = sqlite3_column_int(st, 7) != 0;
	e->degraded = sqlite3_column_int(st, 8) != 0;
	e->demo = sqlite3_column_int(st, 9) != 0;
	status = (const char *)sqlite3_column_text(st, 10);
	e->success = status != NULL && strcmp(status, "success") == 0;
	e->error_code = page_col(page, st, 11);
	e->http_status = sqlite3_column_int(st, 12);
	e->latency_ms = (long)sqlite3_column_int64(st, 13);
	e->ttft_ms = col_opt(st, 14);
	e->model = page_col(page, st, 15);
	e->prompt_chars = (long)sqlite3_column_int64(st, 16);
	e->prompt_tokens = col_opt(st, 17);
	e->completion_tokens = col_opt(st, 18);
	e->source = page_col(page, st, 19);
	e->prompt_preview = page_col(page, st, 20);
	e->partial_chars = (long)sqlite3_column_int64(st, 21);
	e->skipped_chunks = sqlite3_column_int(st, 22);
	e->restarts = sqlite3_column_int(st, 23);
	e->streamed = page_col(page, st, 24);
	e->node = page_col(page, st, 25);
}

/* Step the page query into page->items (limit rows; one more sets
 * page->more). */
static int
log_rows(struct rf_store_conn *s, sqlite3_stmt *st,
    const struct rf_log_query *q, struct rf_log_page *page)
{
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
		log_item_read(page, st, &page->items[page->nitems++]);
	}
	if (step != SQLITE_DONE)
		report(s, "rf_store_logs");
	done_with(st);
	return step == SQLITE_DONE ? 0 : -1;
}

/* Copy one attempt row into the page as an attempt of item k. */
static int
log_attempt_add(struct rf_log_page *page, size_t k, sqlite3_stmt *st)
{
	struct rf_log_attempt *a = rf_store_page_attempt(page, k);

	if (a == NULL)
		return -1;
	a->provider = page_col(page, st, 1);
	a->outcome = page_col(page, st, 2);
	a->reason = page_col(page, st, 3);
	a->http_status = (int)col_i64(st, 4, 0);
	a->latency_ms = col_opt(st, 5);
	a->retry = sqlite3_column_int(st, 6);
	return 0;
}

/* Read the attempts of every item (rows come in the page's order: request
 * id descending, then seq). */
static int
log_attempts(struct rf_store_conn *s, struct rf_log_page *page)
{
	sqlite3_stmt *st = s->st[ST_LOG_ATTEMPTS];
	size_t k = 0;
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
		rc = log_attempt_add(page, k, st);
	}
	if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW) {
		report(s, "rf_store_logs");
		rc = -1;
	}
	done_with(st);
	return rc;
}

static int
sq_logs(struct rf_store_conn *s, const struct rf_log_query *q,
    struct rf_log_page *page)
{
	const char *fn = "rf_store_logs";
	sqlite3_stmt *st = log_stmt(s, log_variant(q));
	int rc = -1;

	if (st == NULL || read_begin(s, fn) != 0)
		return -1;
	if (log_rows(s, st, q, page) == 0 && log_attempts(s, page) == 0)
		rc = 0;
	return tx_end(s, rc, fn);
}

/* ---- usage: rollup rows folded by hist.c ---- */

/* Columns of a usage_sql row. */
enum { UC_PERIOD, UC_PROVIDER, UC_REQUESTS, UC_SUCCESSES, UC_ERRORS,
	UC_FALLBACKS, UC_LAT_SUM, UC_LAT_MAX, UC_PROMPT, UC_COMPLETION,
	UC_CANCELLED, UC_HIST };

static void
usage_row_read(sqlite3_stmt *st, struct rf_hist_row *row)
{
	row->period_ms = sqlite3_column_int64(st, UC_PERIOD);
	row->provider = (const char *)sqlite3_column_text(st, UC_PROVIDER);
	row->requests = sqlite3_column_int64(st, UC_REQUESTS);
	row->successes = sqlite3_column_int64(st, UC_SUCCESSES);
	row->errors = sqlite3_column_int64(st, UC_ERRORS);
	row->fallbacks = sqlite3_column_int64(st, UC_FALLBACKS);
	row->latency_sum = sqlite3_column_int64(st, UC_LAT_SUM);
	row->latency_max = sqlite3_column_int64(st, UC_LAT_MAX);
	row->prompt_tokens = sqlite3_column_int64(st, UC_PROMPT);
	row->completion_tokens = sqlite3_column_int64(st, UC_COMPLETION);
	row->cancelled = sqlite3_column_int64(st, UC_CANCELLED);
	for (int j = 0; j < RF_HIST_BUCKETS; j++)
		row->h[j] = sqlite3_column_int64(st, UC_HIST + j);
}

/* Step the rows of [from, to) into the fold. */
static int
usage_rows(struct rf_store_conn *s, sqlite3_stmt *st,
    struct rf_usage_report *r)
{
	struct rf_hist_fold fold;
	struct rf_hist_row row;
	int step = SQLITE_DONE, rc = 0;

	if ((bind_i64(st, 1, r->from_ms) | bind_i64(st, 2, r->to_ms)) !=
	    SQLITE_OK) {
		report(s, "rf_store_usage");
		done_with(st);
		return -1;
	}
	rf_hist_fold_init(&fold, r);
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		usage_row_read(st, &row);
		rc = rf_hist_fold_row(&fold, &row);
	}
	rf_hist_fold_end(&fold);
	if (rc != 0)
		RF_LOG_ERR(NULL, NULL, "out of memory");
	else if (step != SQLITE_DONE)
		report(s, "rf_store_usage");
	done_with(st);
	return rc == 0 && step == SQLITE_DONE ? 0 : -1;
}

static int
sq_usage(struct rf_store_conn *s, enum rf_store_rollup table,
    struct rf_usage_report *r)
{
	const char *fn = "rf_store_usage";
	enum rf_stmt i = table == RF_ROLLUP_HOUR ? ST_USAGE_HOUR :
	    ST_USAGE_MINUTE;
	int rc;

	if (read_begin(s, fn) != 0)
		return -1;
	rc = usage_rows(s, s->st[i], r);
	return tx_end(s, rc, fn);
}

/* ---- retention ---- */

/* Run a bound DELETE; the rows it deleted (not counting cascades), or -1. */
static int
prune_step(struct rf_store_conn *s, enum rf_stmt i, int64_t cutoff, int batch)
{
	sqlite3_stmt *st = s->st[i];
	int b = 0;

	if (sqlite3_bind_parameter_count(st) >= 1)
		b |= bind_i64(st, 1, cutoff);
	if (sqlite3_bind_parameter_count(st) >= 2)
		b |= bind_i64(st, 2, batch);
	if (finish_write(s, i, b, "rf_store_prune") != 0)
		return -1;
	return sqlite3_changes(s->db);
}

static int
sq_prune(struct rf_store_conn *s, int64_t older_than_ms, int batch)
{
	static const enum rf_stmt counted[] = { ST_PRUNE_REQUESTS,
	    ST_PRUNE_MINUTES, ST_PRUNE_HOURS };
	const char *fn = "rf_store_prune";
	int total = 0, n, rc = 0;

	if (tx_begin(s, fn) != 0)
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
	/* Gone processes: their dropped rows into the total, then away. */
	if (rc == 0 && (prune_step(s, ST_PRUNE_GAUGES_FOLD, older_than_ms,
	    0) < 0 || prune_step(s, ST_PRUNE_GAUGES, older_than_ms, 0) < 0))
		rc = -1;
	if (tx_end(s, rc, fn) != 0)
		return -1;
	return total;
}

/* Step a PRAGMA to its end (incremental_vacuum frees a page per step). */
static int
run_pragma(struct rf_store_conn *s, enum rf_stmt i, const char *fn)
{
	int step;

	while ((step = sqlite3_step(s->st[i])) == SQLITE_ROW)
		;
	if (step != SQLITE_DONE)
		report(s, fn);
	done_with(s->st[i]);
	return step == SQLITE_DONE ? 0 : -1;
}

/* Incremental vacuum, then a PASSIVE checkpoint that never waits for
 * readers (journal_size_limit then caps the WAL file). */
static int
sq_maintain(struct rf_store_conn *s)
{
	if (run_pragma(s, ST_VACUUM, "rf_store_maintain") != 0)
		return -1;
	return run_pragma(s, ST_CHECKPOINT, "rf_store_maintain");
}

/* ---- metrics ---- */

/* Every metric_totals row, in the exposition's order. */
static int
metric_rows(struct rf_store_conn *s, struct rf_metrics_snapshot *out)
{
	sqlite3_stmt *st = s->st[ST_METRIC_ROWS];
	struct rf_metric_row *r;
	int step, rc = 0;

	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = rf_store_metrics_row(out)) == NULL) {
			RF_LOG_ERR(NULL, NULL, "out of memory");
			rc = -1;
			break;
		}
		snprintf(r->name, sizeof r->name, "%s",
		    (const char *)sqlite3_column_text(st, 0));
		snprintf(r->labels, sizeof r->labels, "%s",
		    (const char *)sqlite3_column_text(st, 1));
		r->count = sqlite3_column_int64(st, 2);
		r->sum = sqlite3_column_int64(st, 3);
		for (int k = 0; k < RF_METRIC_BUCKETS; k++)
			r->b[k] = sqlite3_column_int64(st, k + 4);
	}
	if (rc == 0 && step != SQLITE_DONE) {
		report(s, "rf_store_metrics");
		rc = -1;
	}
	done_with(st);
	return rc;
}

/* The processes' gauges: live ones summed, dropped rows of all. */
static int
metric_gauges(struct rf_store_conn *s, int64_t live_since_ms,
    struct rf_metrics_snapshot *out)
{
	sqlite3_stmt *st = s->st[ST_GAUGES_SUM];
	int rc = -1;

	if (bind_i64(st, 1, live_since_ms) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		out->live.open_streams = sqlite3_column_int64(st, 0);
		out->live.queue_rows = sqlite3_column_int64(st, 1);
		out->live_processes = sqlite3_column_int64(st, 2);
		out->dropped_rows = sqlite3_column_int64(st, 3);
		rc = 0;
	} else {
		report(s, "rf_store_metrics");
	}
	done_with(st);
	return rc;
}

static int
sq_metrics(struct rf_store_conn *s, const char *const *ids, size_t n,
    int64_t live_since_ms, struct rf_metrics_snapshot *out)
{
	const char *fn = "rf_store_metrics";
	struct rf_provider_report r;
	int rc = -1;

	if (read_begin(s, fn) != 0)
		return -1;
	if (metric_rows(s, out) != 0 ||
	    metric_gauges(s, live_since_ms, out) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		memset(&r, 0, sizeof r);
		r.quota_remaining_requests = r.quota_remaining_tokens = -1;
		if (report_state(s, ids[i], &r) != 0)
			goto out;
		out->providers[i] = (struct rf_metrics_provider){
			.cooldown_until_ms = r.cooldown_until_ms,
			.quota_remaining_requests = r.quota_remaining_requests,
			.quota_remaining_tokens = r.quota_remaining_tokens };
	}
	rc = 0;
out:
	return tx_end(s, rc, fn);
}

static int
sq_gauges_publish(struct rf_store_conn *s, const char *process,
    const struct rf_process_gauges *g, int64_t now_ms)
{
	const char *fn = "rf_store_gauges_publish";
	sqlite3_stmt *st = s->st[ST_GAUGE_PUBLISH];
	int rc, b = 0;

	if (tx_begin(s, fn) != 0)
		return -1;
	b |= bind_str(st, 1, process);
	b |= bind_i64(st, 2, g->open_streams);
	b |= bind_i64(st, 3, g->queue_rows);
	b |= bind_i64(st, 4, g->dropped_rows);
	b |= bind_i64(st, 5, now_ms);
	rc = finish_write(s, ST_GAUGE_PUBLISH, b, fn);
	return tx_end(s, rc, fn);
}

const struct rf_store_ops rf_store_sqlite = {
	.name = "SQLite",
	.open = sq_open,
	.close = sq_close,
	.log_requests = sq_log_requests,
	.log_spooled = spooled_tx,
	.spool_progress = sq_spool_progress,
	.spool_forget = sq_spool_forget,
	.writable = sq_writable,
	.provider_states = sq_provider_states,
	.provider_failed = sq_provider_failed,
	.provider_ok = sq_provider_ok,
	.provider_cooldown = sq_provider_cooldown,
	.provider_quota = sq_provider_quota,
	.rate_count = sq_rate_count,
	.ping = sq_ping,
	.provider_reports = sq_provider_reports,
	.logs = sq_logs,
	.usage = sq_usage,
	.prune = sq_prune,
	.maintain = sq_maintain,
	.metrics = sq_metrics,
	.gauges_publish = sq_gauges_publish,
};
