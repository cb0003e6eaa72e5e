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
 * Errors go to stderr as "relayforge: <function>: <sqlite message>" --
 * never SQL values, which may hold prompt previews.
 */
#include "store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

/* Must equal the PRAGMA user_version set at the end of the schema file. */
#define RF_SCHEMA_VERSION 1

#define RF_BUSY_TIMEOUT_MS 10000
#define RF_BUSY_STEP_MS 5
#define RF_MINUTE_MS 60000

enum rf_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PING,
	ST_INSERT_REQUEST,
	ST_INSERT_ATTEMPT,
	ST_UPSERT_USAGE,
	ST_PROVIDER_GET,
	ST_PROVIDER_FAILED,
	ST_PROVIDER_OK,
	ST_PROVIDER_QUOTA,
	ST_RATE_HIT,
	ST_RATE_PRUNE,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
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
	[ST_UPSERT_USAGE] =
	    "INSERT INTO usage_minute (minute_ms, provider, requests, successes,"
	    " errors, fallbacks, latency_sum, prompt_tokens, completion_tokens)"
	    " VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8)"
	    " ON CONFLICT (minute_ms, provider) DO UPDATE SET"
	    " requests = requests + 1,"
	    " successes = successes + excluded.successes,"
	    " errors = errors + excluded.errors,"
	    " fallbacks = fallbacks + excluded.fallbacks,"
	    " latency_sum = latency_sum + excluded.latency_sum,"
	    " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
	    " completion_tokens = completion_tokens + excluded.completion_tokens",
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
};

struct rf_store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
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
static int configure(sqlite3 *db, char *err, size_t errlen)
{
	char mode[16];
	long pages;

	if (sqlite3_busy_timeout(db, RF_BUSY_TIMEOUT_MS) != SQLITE_OK ||
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

static int prepare_all(struct rf_store *s, char *err, size_t errlen)
{
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
			set_err(err, errlen, "prepare", s->db);
			return -1;
		}
	}
	return 0;
}

struct rf_store *rf_store_open(const char *path, char *err, size_t errlen)
{
	struct rf_store *s = calloc(1, sizeof *s);
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
	rf_store_close(s);
	return NULL;
}

void rf_store_close(struct rf_store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

/* ---- statement helpers ---- */

static void report(struct rf_store *s, const char *fn)
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
static int exec_stmt(struct rf_store *s, enum rf_stmt i, const char *fn)
{
	int rc = sqlite3_step(s->st[i]) == SQLITE_DONE ? 0 : -1;

	if (rc != 0)
		report(s, fn);
	done_with(s->st[i]);
	return rc;
}

static int tx_begin(struct rf_store *s, const char *fn)
{
	return exec_stmt(s, ST_BEGIN, fn);
}

/* Commit when rc is 0, else roll back.  Returns the final outcome. */
static int tx_end(struct rf_store *s, int rc, const char *fn)
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

static int insert_request(struct rf_store *s, const struct rf_log_entry *e)
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

static int insert_attempt(struct rf_store *s, int64_t rowid, int seq,
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

/* The per-minute rollup of the final provider ('' when none was called). */
static int upsert_usage(struct rf_store *s, const struct rf_log_entry *e)
{
	sqlite3_stmt *st = s->st[ST_UPSERT_USAGE];
	int b = 0;

	b |= bind_i64(st, 1, e->ts_ms - e->ts_ms % RF_MINUTE_MS);
	b |= bind_str(st, 2, e->final_provider != NULL ? e->final_provider : "");
	b |= bind_i64(st, 3, e->success ? 1 : 0);
	b |= bind_i64(st, 4, e->success ? 0 : 1);
	b |= bind_i64(st, 5, e->fallback ? 1 : 0);
	b |= bind_i64(st, 6, e->latency_ms > 0 ? e->latency_ms : 0);
	b |= bind_i64(st, 7, e->prompt_tokens > 0 ? e->prompt_tokens : 0);
	b |= bind_i64(st, 8, e->completion_tokens > 0 ?
	    e->completion_tokens : 0);
	if (b != SQLITE_OK) {
		report(s, "rf_store_log_request");
		done_with(st);
		return -1;
	}
	return exec_stmt(s, ST_UPSERT_USAGE, "rf_store_log_request");
}

int rf_store_log_request(struct rf_store *s, const struct rf_log_entry *e)
{
	int rc = -1;
	int64_t rowid;

	if (s == NULL || e == NULL || tx_begin(s, __func__) != 0)
		return -1;
	if (insert_request(s, e) != 0)
		goto out;
	rowid = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < e->nattempts; i++) {
		if (insert_attempt(s, rowid, (int)i, &e->attempts[i]) != 0)
			goto out;
	}
	if (upsert_usage(s, e) != 0)
		goto out;
	rc = 0;
out:
	return tx_end(s, rc, __func__);
}

/* ---- provider state ---- */

/* Read one provider's row; zeroes when it has none.  Resets the statement. */
static int provider_get(struct rf_store *s, const char *id,
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

int rf_store_provider_states(struct rf_store *s, const char *const *ids,
    size_t n, struct rf_provider_state *st)
{
	if (s == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (provider_get(s, ids[i], &st[i], __func__) != 0)
			return -1;
	}
	return 0;
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
static int finish_upsert(struct rf_store *s, enum rf_stmt i, int b,
    const char *fn)
{
	if (b != SQLITE_OK) {
		report(s, fn);
		done_with(s->st[i]);
		return -1;
	}
	return exec_stmt(s, i, fn);
}

int rf_store_provider_failed(struct rf_store *s, const char *id,
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

int rf_store_provider_ok(struct rf_store *s, const char *id, int64_t now_ms)
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

int rf_store_provider_quota(struct rf_store *s, const char *id,
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
static long rate_count(struct rf_store *s, const char *client,
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
int rf_store_rate_hit(struct rf_store *s, const char *client, int limit,
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

int rf_store_ping(struct rf_store *s)
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
