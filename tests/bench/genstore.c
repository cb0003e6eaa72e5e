/*
 * genstore: a store of N logged requests for the /api/v1/usage bench.
 *
 *   genstore --db PATH|URI --rows N [--via product|batch|bulk|auto]
 *            [--t0 MS]
 *   genstore --verify [--rows N]
 *
 * Row i is a fixed function of i (provider mix, 3% errors, 8% fallbacks,
 * latencies 80..2080 ms with a slow tail, half of them streams), spread
 * evenly over the 30 days before now (or from --t0), so every run of the
 * bench reads the same shape of data.
 *
 * --via product writes each row through rf_store_log_request, the product's
 * own code path (one transaction per row: about a minute for a million).
 * --via bulk lets rf_store_open create the file (schema, WAL), then inserts
 * the same rows on its own connection in one transaction and builds the
 * usage rollups with one INSERT ... SELECT per table, mirroring what
 * rf_store_log_request maintains (src/store_sqlite.c: upsert_rollup;
 * src/hist.c: rf_hist_bucket).
 * --verify writes a sample both ways and compares every table row by row;
 * --via batch writes through the product too, RF_BATCH rows per
 * rf_store_log_requests call (the writer thread's group commit): the way
 * to fill a PostgreSQL store (a postgresql:// URI), whose backend writes
 * each batch as one statement per table.
 * --via auto (the default) verifies first and falls back to the product
 * path when the mirror no longer matches (the store changed), saying so;
 * for a URI it is batch.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

#define DAY_MS 86400000LL
#define VERIFY_ROWS 6000
#define LAT_BUCKETS 72

static const char *const providers[] = { "groq", "sambanova", "cerebras",
    "gemini", "openrouter", "mock" };

struct row {
	struct rf_log_entry e;
	struct rf_log_attempt att[2];
	char id[40];
};

static const char *
pick_provider(int64_t i)
{
	int64_t r = (i * 7919) % 100;

	return providers[r < 50 ? 0 : r < 70 ? 1 : r < 85 ? 2 : r < 90 ? 3 :
	    r < 95 ? 4 : 5];
}

/* Row i of n, arriving in [t0, t0 + 30 days - 1 minute). */
static void
make_row(int64_t i, int64_t n, int64_t t0, struct row *r)
{
	const char *final = pick_provider(i);
	bool err = (i * 104729 + 17) % 1000 < 30;
	bool fb = (i * 31337 + 5) % 100 < 8;
	long lat = 80 + (long)((i * 48271) % 2000) + (i % 97 == 0 ? 5000 : 0);
	bool stream = i % 2 == 1;

	if (fb && strcmp(final, "groq") == 0)
		final = "sambanova";
	snprintf(r->id, sizeof(r->id), "bench%027" PRId64, i);
	r->att[0] = (struct rf_log_attempt){ .provider = fb ? "groq" : final,
	    .outcome = fb ? "provider_rate_limited" : err ?
	    "provider_unavailable" : "ok", .http_status = fb ? 429 : err ?
	    502 : 200, .latency_ms = fb ? 30 : lat };
	r->att[1] = (struct rf_log_attempt){ .provider = final,
	    .outcome = err ? "provider_unavailable" : "ok",
	    .http_status = err ? 502 : 200, .latency_ms = lat - 30 };
	r->e = (struct rf_log_entry){ .request_id = r->id,
	    .ts_ms = t0 + i * (30 * DAY_MS - 60000) / n,
	    .endpoint = stream ? "stream" : "chat", .strategy = "auto",
	    .attempted_provider = fb ? "groq" : final, .final_provider = final,
	    .fallback = fb, .degraded = fb || strcmp(final, "mock") == 0,
	    .demo = strcmp(final, "mock") == 0, .success = !err,
	    .error_code = err ? "provider_unavailable" : NULL,
	    .http_status = err ? 502 : 200, .latency_ms = lat,
	    .ttft_ms = stream ? lat / 4 : -1, .model = "bench-model",
	    .prompt_chars = 20 + (long)(i % 400),
	    .prompt_tokens = 5 + (long)(i % 100),
	    .completion_tokens = err ? -1 : 20 + (long)(i % 300),
	    .source = "bench", .streamed = stream && !err ? final : NULL,
	    .attempts = r->att, .nattempts = fb ? 2 : 1 };
}

/* ---- the product path ------------------------------------------------ */

static int
via_product(const char *path, int64_t n, int64_t t0)
{
	char err[256];
	struct rf_store *s = rf_store_open(path, err, sizeof(err));
	struct row r;

	if (s == NULL) {
		fprintf(stderr, "genstore: %s\n", err);
		return -1;
	}
	for (int64_t i = 0; i < n; i++) {
		make_row(i, n, t0, &r);
		if (rf_store_log_request(s, &r.e) != 0) {
			rf_store_close(s);
			return -1;
		}
	}
	rf_store_close(s);
	return 0;
}

/* ---- the product path in batches (any backend) ----------------------- */

#define RF_BATCH 1000

/* Drop what a previous run left: a fresh store every time. */
static int
fresh_pg(const char *uri)
{
	char cmd[1200];

	if (strchr(uri, '\'') != NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "psql -X -q -v ON_ERROR_STOP=1 -d '%s' -c"
	    " 'DROP TABLE IF EXISTS attempts, requests, provider_state,"
	    " rate_limit, usage_minute, usage_hour, spool_progress,"
	    " schema_version CASCADE' >/dev/null", uri);
	return system(cmd) == 0 ? 0 : -1;
}

static int
via_batch(const char *path, int64_t n, int64_t t0)
{
	char err[256];
	struct rf_store *s;
	struct row *r = calloc(RF_BATCH, sizeof *r);
	const struct rf_log_entry *e[RF_BATCH];
	int rc = 0;

	if (strstr(path, "://") != NULL && fresh_pg(path) != 0) {
		fprintf(stderr, "genstore: cannot empty the store\n");
		free(r);
		return -1;
	}
	if ((s = rf_store_open(path, err, sizeof(err))) == NULL || r == NULL) {
		fprintf(stderr, "genstore: %s\n", s == NULL ? err : "no memory");
		free(r);
		rf_store_close(s);
		return -1;
	}
	for (int64_t i = 0; i < n && rc == 0; i += RF_BATCH) {
		size_t k = 0;

		for (; k < RF_BATCH && i + (int64_t)k < n; k++) {
			make_row(i + (int64_t)k, n, t0, &r[k]);
			e[k] = &r[k].e;
		}
		rc = rf_store_log_requests(s, e, k);
	}
	rf_store_close(s);
	free(r);
	return rc;
}

/* ---- the bulk path ---------------------------------------------------- */

static const char insert_request_sql[] =
    "INSERT INTO requests (request_id, ts_ms, endpoint, strategy,"
    " attempted_provider, final_provider, fallback, degraded, demo,"
    " status, error_code, http_status, latency_ms, ttft_ms, model,"
    " prompt_chars, prompt_tokens, completion_tokens, source,"
    " prompt_preview, partial_chars, skipped_chunks, restarts, streamed,"
    " node) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)";
static const char insert_attempt_sql[] =
    "INSERT INTO attempts (request_id, seq, provider, outcome, reason,"
    " http_status, latency_ms, retry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static void
bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

static int
step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int
put_request(sqlite3_stmt *st, const struct rf_log_entry *e)
{
	sqlite3_bind_text(st, 1, e->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, e->ts_ms);
	sqlite3_bind_text(st, 3, e->endpoint, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->strategy, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, e->attempted_provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, e->final_provider, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, e->fallback);
	sqlite3_bind_int(st, 8, e->degraded);
	sqlite3_bind_int(st, 9, e->demo);
	sqlite3_bind_text(st, 10, e->success ? "success" : "error", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, e->error_code, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 12, e->http_status);
	sqlite3_bind_int64(st, 13, e->latency_ms);
	bind_opt(st, 14, e->ttft_ms);
	sqlite3_bind_text(st, 15, e->model, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 16, e->prompt_chars);
	bind_opt(st, 17, e->prompt_tokens);
	bind_opt(st, 18, e->completion_tokens);
	sqlite3_bind_text(st, 19, e->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 20, e->prompt_preview, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 21, e->partial_chars);
	sqlite3_bind_int(st, 22, e->skipped_chunks);
	sqlite3_bind_int(st, 23, e->restarts);
	sqlite3_bind_text(st, 24, e->streamed, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 25, rf_store_node(), -1, SQLITE_STATIC);
	return step_reset(st);
}

static int
put_attempt(sqlite3_stmt *st, int64_t rowid, int seq,
    const struct rf_log_attempt *a)
{
	sqlite3_bind_int64(st, 1, rowid);
	sqlite3_bind_int(st, 2, seq);
	sqlite3_bind_text(st, 3, a->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->reason, -1, SQLITE_STATIC);
	if (a->http_status > 0)
		sqlite3_bind_int(st, 6, a->http_status);
	else
		sqlite3_bind_null(st, 6);
	bind_opt(st, 7, a->latency_ms);
	sqlite3_bind_int(st, 8, a->retry);
	return step_reset(st);
}

/* rf_hist_bucket() of src/hist.c as SQL, over the column expression L. */
static int
bucket_sql(char *out, size_t len, const char *l)
{
	size_t off = 0;
	int n = snprintf(out, len, "CASE WHEN %s < 8 THEN %s", l, l);

	for (int e = 3; e <= 18 && n > 0 && (size_t)n < len - off; e++) {
		off += (size_t)n;
		n = snprintf(out + off, len - off, " WHEN %s < %lld THEN %d + ((%s"
		    " >> %d) & 3)", l, 1LL << (e + 1), 8 + 4 * (e - 3), l, e - 2);
	}
	if (n < 0 || (size_t)n >= len - off)
		return -1;
	off += (size_t)n;
	n = snprintf(out + off, len - off, " ELSE %d END", LAT_BUCKETS - 1);
	return n < 0 || (size_t)n >= len - off ? -1 : 0;
}

/* The rollup of one period length, as upsert_rollup() builds it row by
 * row: latency and tokens below 0 (unknown) count as 0. */
static int
rollup(sqlite3 *db, const char *table, const char *key,
    int64_t period)
{
	char bucket[4096], *sql = NULL;
	struct rf_buf b;
	int rc = -1;

	rf_buf_init(&b, 0);
	if (bucket_sql(bucket, sizeof(bucket), "lat") != 0)
		goto out;
	rf_buf_printf(&b, "INSERT INTO %s (%s, provider, requests, successes,"
	    " errors, fallbacks, latency_sum, latency_max, prompt_tokens,"
	    " completion_tokens", table, key);
	for (int i = 0; i < LAT_BUCKETS; i++)
		rf_buf_printf(&b, ", h%d", i);
	/* The bucket is computed once per row (a MATERIALIZED view), not once
	 * per histogram column. */
	rf_buf_printf(&b, ") WITH r AS MATERIALIZED (SELECT ts_ms - ts_ms %%"
	    " %" PRId64 " AS k, coalesce(final_provider, '') AS p,"
	    " status = 'success' AS ok, fallback != 0 AS fb, lat,"
	    " max(coalesce(prompt_tokens, 0), 0) AS pt,"
	    " max(coalesce(completion_tokens, 0), 0) AS ct, %s AS bk"
	    " FROM (SELECT *, max(latency_ms, 0) AS lat FROM requests))"
	    " SELECT k, p, count(*), sum(ok), sum(NOT ok), sum(fb), sum(lat),"
	    " max(lat), sum(pt), sum(ct)", period, bucket);
	for (int i = 0; i < LAT_BUCKETS; i++)
		rf_buf_printf(&b, ", sum(bk = %d)", i);
	if (rf_buf_puts(&b, " FROM r GROUP BY k, p") != 0)
		goto out;
	sql = b.data;
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	if (rc != 0)
		fprintf(stderr, "genstore: %s: %s\n", table, sqlite3_errmsg(db));
out:
	rf_buf_free(&b);
	return rc;
}

static int
bulk_rows(sqlite3 *db, int64_t n, int64_t t0)
{
	sqlite3_stmt *rq = NULL, *at = NULL;
	struct row r;
	int rc = -1;

	if (sqlite3_prepare_v2(db, insert_request_sql, -1, &rq, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, insert_attempt_sql, -1, &at, NULL) != SQLITE_OK)
		goto out;
	for (int64_t i = 0; i < n; i++) {
		int64_t rowid;

		make_row(i, n, t0, &r);
		if (put_request(rq, &r.e) != 0)
			goto out;
		rowid = sqlite3_last_insert_rowid(db);
		for (size_t k = 0; k < r.e.nattempts; k++)
			if (put_attempt(at, rowid, (int)k, &r.att[k]) != 0)
				goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "genstore: insert: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(rq);
	sqlite3_finalize(at);
	return rc;
}

static int
via_bulk(const char *path, int64_t n, int64_t t0)
{
	char err[256];
	struct rf_store *s = rf_store_open(path, err, sizeof(err));
	sqlite3 *db = NULL;
	int rc = -1;

	if (s == NULL) {
		fprintf(stderr, "genstore: %s\n", err);
		return -1;
	}
	rf_store_close(s); /* the file now has the product's schema and WAL */
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY;"
	    " PRAGMA cache_size = -262144; BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	if (bulk_rows(db, n, t0) != 0 ||
	    rollup(db, "usage_minute", "minute_ms", 60000) != 0 ||
	    rollup(db, "usage_hour", "hour_ms", 3600000) != 0)
		goto out;
	rc = sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", NULL,
	    NULL, NULL) == SQLITE_OK ? 0 : -1;
out:
	if (rc != 0 && db != NULL)
		fprintf(stderr, "genstore: bulk: %s\n", sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

/* ---- verification ----------------------------------------------------- */

/* Compare one table of two files row by row; 0 when equal. */
static int
same_table(sqlite3 *a, sqlite3 *b, const char *table)
{
	char sql[256];
	sqlite3_stmt *sa = NULL, *sb = NULL;
	int rc = -1, ra, rb;
	long row = 0;

	snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", table);
	if (sqlite3_prepare_v2(a, sql, -1, &sa, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(b, sql, -1, &sb, NULL) != SQLITE_OK)
		goto out;
	for (;; row++) {
		ra = sqlite3_step(sa);
		rb = sqlite3_step(sb);
		if (ra != rb || (ra != SQLITE_ROW && ra != SQLITE_DONE))
			goto differ;
		if (ra == SQLITE_DONE)
			break;
		for (int c = 0; c < sqlite3_column_count(sa); c++) {
			const unsigned char *x = sqlite3_column_text(sa, c);
			const unsigned char *y = sqlite3_column_text(sb, c);
			if ((x == NULL) != (y == NULL) ||
			    (x != NULL && strcmp((const char *)x, (const char *)y) != 0))
				goto differ;
		}
	}
	rc = 0;
	goto out;
differ:
	fprintf(stderr, "genstore: table %s differs at row %ld\n", table, row);
out:
	sqlite3_finalize(sa);
	sqlite3_finalize(sb);
	return rc;
}

static int
same_files(const char *pa, const char *pb)
{
	sqlite3 *a = NULL, *b = NULL;
	sqlite3_stmt *t = NULL;
	int rc = -1, tables = 0;

	if (sqlite3_open_v2(pa, &a, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_open_v2(pb, &b, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(a, "SELECT name FROM sqlite_schema WHERE type ="
	    " 'table' AND name NOT LIKE 'sqlite_%'"
	    /* The metric totals are not mirrored: the usage bench does not
	     * read them (a bulk store's /metrics counts nothing). */
	    " AND name NOT IN ('metric_totals', 'process_gauges')"
	    " ORDER BY name", -1, &t, NULL) != SQLITE_OK)
		goto out;
	rc = 0;
	while (rc == 0 && sqlite3_step(t) == SQLITE_ROW) {
		rc = same_table(a, b, (const char *)sqlite3_column_text(t, 0));
		tables++;
	}
	if (rc == 0)
		fprintf(stderr, "genstore: the bulk path matches the product path"
		    " (%d tables compared)\n", tables);
out:
	sqlite3_finalize(t);
	sqlite3_close(a);
	sqlite3_close(b);
	return rc;
}

static void
remove_db(const char *path)
{
	char p[4200];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static int
verify(int64_t n, int64_t t0)
{
	char pa[64], pb[64];
	int rc;

	snprintf(pa, sizeof(pa), "/tmp/rf-genstore-%d-a.db", (int)getpid());
	snprintf(pb, sizeof(pb), "/tmp/rf-genstore-%d-b.db", (int)getpid());
	remove_db(pa);
	remove_db(pb);
	rc = via_product(pa, n, t0) == 0 && via_bulk(pb, n, t0) == 0 ?
	    same_files(pa, pb) : -1;
	remove_db(pa);
	remove_db(pb);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *db = NULL, *via = "auto";
	int64_t rows = 1000000, t0 = 0;
	bool only_verify = false;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--verify") == 0)
			only_verify = true;
		else if (i + 1 < argc && strcmp(argv[i], "--db") == 0)
			db = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--rows") == 0)
			rows = atoll(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--via") == 0)
			via = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--t0") == 0)
			t0 = atoll(argv[++i]);
	}
	if (t0 == 0) /* the 30 days before now, all inside a 30d window */
		t0 = rf_now_ms() - 30 * DAY_MS + 60000;
	if (only_verify)
		return verify(rows < VERIFY_ROWS ? rows : VERIFY_ROWS, t0) == 0 ? 0 : 1;
	if (db == NULL || rows <= 0) {
		fprintf(stderr, "usage: genstore --db PATH [--rows N]"
		    " [--via product|batch|bulk|auto] [--t0 MS] | --verify\n");
		return 2;
	}
	if (strstr(db, "://") != NULL) { /* PostgreSQL: the product, batched */
		rc = via_batch(db, rows, t0);
		if (rc == 0)
			printf("genstore: %" PRId64 " requests via batch\n", rows);
		return rc == 0 ? 0 : 1;
	}
	remove_db(db);
	if (strcmp(via, "auto") == 0) {
		via = verify(VERIFY_ROWS, t0) == 0 ? "bulk" : "product";
		if (strcmp(via, "product") == 0)
			fprintf(stderr, "genstore: the bulk mirror no longer matches"
			    " src/store_sqlite.c: writing every row through the"
			    " product (slow); update tests/bench/genstore.c\n");
	}
	rc = strcmp(via, "product") == 0 ? via_product(db, rows, t0) :
	    strcmp(via, "batch") == 0 ? via_batch(db, rows, t0) :
	    via_bulk(db, rows, t0);
	if (rc == 0)
		printf("genstore: %" PRId64 " requests via %s in %s\n", rows, via, db);
	return rc == 0 ? 0 : 1;
}
