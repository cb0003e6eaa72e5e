/*
 * store_pg: the PostgreSQL backend of the store (docs/operations.md and docs/several-machines.md),
 * shared by every gateway machine.  It holds every PostgreSQL statement
 * and every libpq call of the program; src/store.c pools its connections
 * and reaches it only through rf_store_pg, the ops table at the end.
 *
 * Opening a connection (after any fork) connects with libpq (the
 * RELAYFORGE_DB URI, sslmode and all, over defaults that bound the connect
 * time), sets the session's timeouts, applies the schema compiled into the
 * binary (build/schema_pg.h, from schema/relayforge.pg.sql) under
 * pg_advisory_lock when schema_version is older than this binary -- so
 * several machines may start at once -- and prepares every statement once
 * (PQprepare), for the life of the connection.  A connection that breaks
 * (the server restarted, the network went) is seen by rf_store_pg.broken
 * and opened again by .reset, which store.c calls with backoff.
 *
 * Each op is one transaction.  The hot path's writes are single atomic
 * statements (upserts with RETURNING: the rate limit, a failure streak, a
 * cooldown where the later deadline wins), committed without waiting for
 * the WAL flush (synchronous_commit off for the session: a lost counter or
 * cooldown is harmless); request rows are committed synchronously with the
 * spool's progress, as one statement per table per batch (the request and
 * attempt rows COPYed in, rollups summed per period and provider here first, the
 * batch's metric series -- src/metrics.c -- summed per series and added to
 * metric_totals, which retention never touches).  Reads of status, logs
 * and metrics run in one REPEATABLE READ READ ONLY transaction; each
 * process's live gauges are one upsert of its process_gauges row.
 *
 * Waiting: every statement is sent asynchronously and waited for with
 * poll(); a call with a budget (rf_store_call_budget) cancels its
 * statement when the budget ends and returns (the connection reads the
 * cancelled statement's end before its next statement), so a slow server
 * never adds more than the budget to an answer.  Other calls wait at
 * most RF_PG_WAIT_MS (statement_timeout and lock_timeout bound them on
 * the server too).
 *
 * Errors go to stderr through the log module: the function and the first
 * line of the server's message, scrubbed (the URI's password is
 * registered as a secret at open) -- never SQL values.
 */
#include "store_backend.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "log.h"
#include "metrics.h"
#include "schema_pg.h"
#include "scrub.h"
#include "util.h"

/* Must equal the highest version schema/relayforge.pg.sql inserts. */
#define RF_PG_SCHEMA_VERSION 2
/* pg_advisory_lock key of the migration ("RFSC"). */
#define RF_PG_MIGRATE_LOCK "1380340547"
#define RF_PG_WAIT_MS 60000
/* The longest an open waits for a table lock (see pg_connect). */
#define RF_PG_OPEN_LOCK_MS "250"
#define RF_MINUTE_MS 60000
#define RF_HOUR_MS 3600000

/* The session: server-side bounds on a statement and a lock wait (as
 * SQLite's busy timeout), and asynchronous commit (see the top). */
static const char session_sql[] =
    "SET statement_timeout = 30000; SET lock_timeout = 10000;"
    " SET idle_in_transaction_session_timeout = 60000;"
    " SET synchronous_commit = off";

enum pg_stmt {
	PS_BEGIN,
	PS_BEGIN_READ,
	PS_COMMIT,
	PS_ROLLBACK,
	PS_SYNC_ON,
	PS_PING,
	PS_IDS,
	PS_UPSERT_MINUTE,     /* generated: histogram columns */
	PS_UPSERT_HOUR,       /* generated */
	PS_PROVIDER_STATES,
	PS_PROVIDER_FAILED,
	PS_PROVIDER_OK,
	PS_PROVIDER_COOLDOWN,
	PS_PROVIDER_QUOTA,
	PS_RATE,
	PS_REPORT_STATE,
	PS_REPORT_WINDOW,
	PS_REPORT_LAST_OK,
	PS_REPORT_LAST_FAILED,
	PS_LOG_ATTEMPTS,
	PS_USAGE_MINUTE,      /* generated */
	PS_USAGE_HOUR,        /* generated */
	PS_PRUNE_REQUESTS,
	PS_PRUNE_MINUTES,
	PS_PRUNE_HOURS,
	PS_PRUNE_RATE,
	PS_SAVEPOINT,
	PS_RELEASE,
	PS_ROLLBACK_TO,
	PS_SPOOL_LOCK,
	PS_SPOOL_GET,
	PS_SPOOL_SET,
	PS_SPOOL_FORGET,
	PS_WRITABLE_TIMEOUT,
	PS_WRITABLE_LOCK,
	/* metrics (schema version 2) */
	PS_METRIC_ADD,        /* generated: the bucket columns */
	PS_METRIC_ROWS,       /* generated */
	PS_GAUGES_SUM,
	PS_GAUGE_PUBLISH,
	PS_PRUNE_GAUGES,
	PS_COUNT
};

#define REQ_COLS "id, request_id, ts_ms, endpoint, strategy," \
	" attempted_provider, final_provider, fallback, degraded, demo," \
	" status, error_code, http_status, latency_ms, ttft_ms, model," \
	" prompt_chars, prompt_tokens, completion_tokens, source," \
	" prompt_preview, partial_chars, skipped_chunks, restarts, streamed," \
	" node"
#define ATT_COLS "request_id, seq, provider, outcome, reason, http_status," \
	" latency_ms, retry"
/* The most array parameters a batch statement takes (a rollup upsert). */
#define MAX_COLS 12

static const char *const stmt_sql[PS_COUNT] = {
	[PS_BEGIN] = "BEGIN",
	/* Reads of several statements: one snapshot. */
	[PS_BEGIN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	[PS_COMMIT] = "COMMIT",
	[PS_ROLLBACK] = "ROLLBACK",
	/* Request rows leave the spool on this commit: it must be durable. */
	[PS_SYNC_ON] = "SET LOCAL synchronous_commit = on",
	[PS_PING] = "SELECT 1",
	/* The sequence looked up once, not once per id. */
	[PS_IDS] = "WITH s AS MATERIALIZED (SELECT"
	    " pg_get_serial_sequence('requests', 'id')::regclass AS q)"
	    " SELECT nextval(q) FROM s, generate_series(1, $1::int)",
	[PS_PROVIDER_STATES] =
	    "SELECT provider, cooldown_until_ms, consecutive_failures"
	    " FROM provider_state WHERE provider = ANY ($1::text[])",
	/* One atomic upsert: the streak grows by $2 whatever other machines
	 * did meanwhile, and the later cooldown deadline wins (with its
	 * reason).  $5 0 = no cooldown asked for. */
	[PS_PROVIDER_FAILED] =
	    "INSERT INTO provider_state AS s (provider, consecutive_failures,"
	    " last_error_code, last_error_ms, cooldown_until_ms,"
	    " cooldown_reason, updated_ms)"
	    " VALUES ($1, $2::int, $3, $4::bigint, greatest($5::bigint, 0),"
	    " CASE WHEN $5::bigint > 0 THEN $3 END, $4::bigint)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " consecutive_failures = s.consecutive_failures"
	    " + excluded.consecutive_failures,"
	    " last_error_code = excluded.last_error_code,"
	    " last_error_ms = excluded.last_error_ms,"
	    " cooldown_reason = CASE WHEN $5::bigint > s.cooldown_until_ms"
	    " THEN $3 ELSE s.cooldown_reason END,"
	    " cooldown_until_ms = greatest(s.cooldown_until_ms, $5::bigint),"
	    " updated_ms = excluded.updated_ms"
	    " RETURNING consecutive_failures",
	[PS_PROVIDER_OK] =
	    "INSERT INTO provider_state (provider, consecutive_failures,"
	    " cooldown_until_ms, cooldown_reason, last_success_ms, updated_ms)"
	    " VALUES ($1, 0, 0, NULL, $2::bigint, $2::bigint)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " consecutive_failures = 0, cooldown_until_ms = 0,"
	    " cooldown_reason = NULL, last_success_ms = excluded.last_success_ms,"
	    " updated_ms = excluded.updated_ms",
	[PS_PROVIDER_COOLDOWN] =
	    "INSERT INTO provider_state AS s (provider, cooldown_until_ms,"
	    " cooldown_reason) VALUES ($1, $2::bigint, $3)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " cooldown_until_ms = excluded.cooldown_until_ms,"
	    " cooldown_reason = excluded.cooldown_reason"
	    " WHERE excluded.cooldown_until_ms > s.cooldown_until_ms",
	[PS_PROVIDER_QUOTA] =
	    "INSERT INTO provider_state (provider, quota_remaining_requests,"
	    " quota_remaining_tokens, quota_reset_ms, updated_ms)"
	    " VALUES ($1, $2::bigint, $3::bigint, $4::bigint, $5::bigint)"
	    " ON CONFLICT (provider) DO UPDATE SET"
	    " quota_remaining_requests = excluded.quota_remaining_requests,"
	    " quota_remaining_tokens = excluded.quota_remaining_tokens,"
	    " quota_reset_ms = excluded.quota_reset_ms,"
	    " updated_ms = excluded.updated_ms",
	/* The shared per-client count: one statement, one atomic upsert (and
	 * the client's older windows deleted in the same statement). */
	[PS_RATE] =
	    "WITH gone AS (DELETE FROM rate_limit WHERE client = $1"
	    " AND window_start_ms < $2::bigint)"
	    " INSERT INTO rate_limit AS r (client, window_start_ms, count)"
	    " VALUES ($1, $2::bigint, $3::bigint)"
	    " ON CONFLICT (client, window_start_ms) DO UPDATE SET"
	    " count = r.count + excluded.count RETURNING count",
	[PS_REPORT_STATE] =
	    "SELECT provider, cooldown_until_ms, consecutive_failures,"
	    " last_error_code, last_error_ms, last_success_ms,"
	    " quota_remaining_requests, quota_remaining_tokens, quota_reset_ms"
	    " FROM provider_state WHERE provider = ANY ($1::text[])",
	[PS_REPORT_WINDOW] =
	    "WITH w AS (SELECT a.provider AS p, a.outcome = 'ok' AS ok,"
	    " a.latency_ms AS l FROM requests r JOIN attempts a"
	    " ON a.request_id = r.id WHERE r.ts_ms >= $1::bigint"
	    " AND a.outcome NOT IN ('skipped', 'client_closed')),"
	    " ranked AS (SELECT p, ok, l,"
	    " row_number() OVER (PARTITION BY p ORDER BY l) AS rn,"
	    " count(*) OVER (PARTITION BY p) AS n FROM w)"
	    " SELECT p, max(n), count(*) FILTER (WHERE ok), avg(l),"
	    " max(CASE WHEN rn = (n * 95 + 99) / 100 THEN l END)"
	    " FROM ranked GROUP BY p",
	/* The newest ok / failed call of each provider: one probe of the
	 * partial index per provider. */
	[PS_REPORT_LAST_OK] =
	    "SELECT p, x.request_id, x.seq, x.ts_ms FROM unnest($1::text[]) p,"
	    " LATERAL (SELECT a.request_id, a.seq, r.ts_ms FROM attempts a"
	    " JOIN requests r ON r.id = a.request_id"
	    " WHERE a.provider = p AND a.outcome = 'ok'"
	    " ORDER BY a.request_id DESC, a.seq DESC LIMIT 1) x",
	[PS_REPORT_LAST_FAILED] =
	    "SELECT p, x.request_id, x.seq, x.ts_ms, x.outcome"
	    " FROM unnest($1::text[]) p,"
	    " LATERAL (SELECT a.request_id, a.seq, r.ts_ms, a.outcome"
	    " FROM attempts a JOIN requests r ON r.id = a.request_id"
	    " WHERE a.provider = p"
	    " AND a.outcome NOT IN ('ok', 'skipped', 'client_closed')"
	    " ORDER BY a.request_id DESC, a.seq DESC LIMIT 1) x",
	[PS_LOG_ATTEMPTS] =
	    "SELECT request_id, provider, outcome, reason, http_status,"
	    " latency_ms, retry FROM attempts"
	    " WHERE request_id = ANY ($1::bigint[])"
	    " ORDER BY request_id DESC, seq",
	[PS_PRUNE_REQUESTS] =
	    "DELETE FROM requests WHERE id IN (SELECT id FROM requests"
	    " WHERE ts_ms < $1::bigint ORDER BY ts_ms LIMIT $2::int)",
	[PS_PRUNE_MINUTES] =
	    "DELETE FROM usage_minute WHERE (minute_ms, provider) IN"
	    " (SELECT minute_ms, provider FROM usage_minute"
	    " WHERE minute_ms <= $1::bigint - 60000 LIMIT $2::int)",
	[PS_PRUNE_HOURS] =
	    "DELETE FROM usage_hour WHERE (hour_ms, provider) IN"
	    " (SELECT hour_ms, provider FROM usage_hour"
	    " WHERE hour_ms <= $1::bigint - 3600000 LIMIT $2::int)",
	[PS_PRUNE_RATE] =
	    "DELETE FROM rate_limit WHERE window_start_ms <"
	    " (SELECT max(window_start_ms) FROM rate_limit)",
	[PS_SAVEPOINT] = "SAVEPOINT spool_row",
	[PS_RELEASE] = "RELEASE spool_row",
	[PS_ROLLBACK_TO] = "ROLLBACK TO spool_row",
	/* One writer per spool file at a time, on every machine. */
	[PS_SPOOL_LOCK] = "SELECT pg_advisory_xact_lock(hashtext($1))",
	[PS_SPOOL_GET] = "SELECT through FROM spool_progress WHERE spool = $1",
	[PS_SPOOL_SET] =
	    "INSERT INTO spool_progress (spool, through, updated_ms)"
	    " VALUES ($1, $2::bigint, $3::bigint) ON CONFLICT (spool) DO UPDATE"
	    " SET through = excluded.through, updated_ms = excluded.updated_ms",
	[PS_SPOOL_FORGET] = "DELETE FROM spool_progress WHERE spool = $1",
	[PS_WRITABLE_TIMEOUT] = "SELECT set_config('lock_timeout', $1, true)",
	/* The lock every write takes: refused by a standby or a read-only
	 * server, waited for while an operator holds an EXCLUSIVE lock. */
	[PS_WRITABLE_LOCK] =
	    "LOCK TABLE requests, provider_state IN ROW EXCLUSIVE MODE",
	/* The live processes' gauges ($1: the oldest report still live) and
	 * every process's dropped rows, with those of pruned processes. */
	[PS_GAUGES_SUM] =
	    "SELECT coalesce(sum(open_streams) FILTER (WHERE updated_ms >="
	    " $1::bigint), 0), coalesce(sum(queue_rows) FILTER (WHERE"
	    " updated_ms >= $1::bigint), 0), count(*) FILTER (WHERE"
	    " updated_ms >= $1::bigint), coalesce(sum(dropped_rows), 0)"
	    " + coalesce((SELECT sum(count) FROM metric_totals WHERE name = '"
	    RF_METRICS_DROPPED_NAME "' AND labels = ''), 0) FROM process_gauges",
	/* A process's own count never goes down, and a report older than
	 * the stored one changes nothing. */
	[PS_GAUGE_PUBLISH] =
	    "INSERT INTO process_gauges AS g (process, open_streams, queue_rows,"
	    " dropped_rows, updated_ms) VALUES ($1, $2::bigint, $3::bigint,"
	    " $4::bigint, $5::bigint) ON CONFLICT (process) DO UPDATE SET"
	    " open_streams = excluded.open_streams,"
	    " queue_rows = excluded.queue_rows,"
	    " dropped_rows = greatest(g.dropped_rows, excluded.dropped_rows),"
	    " updated_ms = excluded.updated_ms"
	    " WHERE excluded.updated_ms >= g.updated_ms",
	/* Processes silent since the cutoff are gone: their rows deleted and
	 * their dropped rows moved to the total, in one statement. */
	[PS_PRUNE_GAUGES] =
	    "WITH gone AS (DELETE FROM process_gauges WHERE updated_ms <"
	    " $1::bigint RETURNING dropped_rows)"
	    " INSERT INTO metric_totals AS m (name, labels, count)"
	    " SELECT '" RF_METRICS_DROPPED_NAME "', '', sum(dropped_rows)"
	    " FROM gone HAVING count(*) > 0"
	    " ON CONFLICT (name, labels) DO UPDATE SET"
	    " count = m.count + excluded.count",
};

/* The logs page query has one variant per filter combination (status x
 * endpoint x provider), as in the SQLite backend: literal filter values
 * let the planner use the partial index of failures.  The endpoints of
 * the filter: none, then /api/v1's and /v1's. */
static const char *const log_endpoint[] = { "", "chat", "stream", "openai",
    "openai_stream" };
#define LOG_ENDPOINTS 5
#define LOG_STATUSES 4 /* any, success, error, cancelled */
#define LOG_VARIANTS (LOG_STATUSES * LOG_ENDPOINTS * 2)

struct rf_store_conn {
	PGconn *pg;
	char *db;            /* the URI, for reset (wiped at close) */
	bool dead;           /* given up: reopen before use */
	bool pending;        /* a cancelled statement's end not read yet */
	bool last_refusable; /* the last failure was the values' fault */
	int cap_ms;          /* > 0: this call waits at most this long */
	struct rf_metrics_acc acc; /* the metric increments of a batch */
};

/* ---- messages ---- */

/* The first line of a libpq message, scrubbed (the password is a
 * registered secret; libpq may echo host and user, never the password,
 * but a server message could quote anything). */
static void
first_line(const char *msg, char *out, size_t len)
{
	size_t n;

	snprintf(out, len, "%s", msg != NULL && *msg ? msg : "no message");
	n = strcspn(out, "\r\n");
	out[n] = '\0';
	rf_scrub_text(out, len);
}

static void
set_err(char *err, size_t errlen, const char *what, PGconn *pg)
{
	char line[256];

	if (err == NULL || errlen == 0)
		return;
	first_line(pg != NULL ? PQerrorMessage(pg) : "out of memory", line,
	    sizeof line);
	snprintf(err, errlen, "%s: %s", what, line);
}

/* Say why a statement failed -- unless the call had a budget: its caller
 * falls back and says so, where a line per request would flood stderr. */
static void
report(struct rf_store_conn *c, const PGresult *res, const char *fn)
{
	char line[256];
	const char *msg = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (rf_store_call_budget(NULL))
		return;
	first_line(msg != NULL && *msg ? msg : PQerrorMessage(c->pg), line,
	    sizeof line);
	rf_log_write(RF_LOG_LEVEL_ERR, fn, NULL, NULL, "%s", line);
}

/* ---- running a statement ---- */

/* SQLSTATE of a failed result's class: "22" data, "23" constraint... */
static bool
state_class(const PGresult *res, const char *cls)
{
	const char *s = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s != NULL && strncmp(s, cls, 2) == 0;
}

/* Wait until the connection's result is ready: false when the call's
 * budget (or cap) ran out first or the connection failed. */
static bool
wait_ready(struct rf_store_conn *c)
{
	int64_t until = rf_mono_ms() + (c->cap_ms > 0 ? c->cap_ms :
	    RF_PG_WAIT_MS);
	struct pollfd pfd = { .fd = PQsocket(c->pg), .events = POLLIN };
	bool expired = false, budget;

	while (PQisBusy(c->pg)) {
		budget = rf_store_call_budget(&expired);
		if (expired || rf_mono_ms() >= until)
			return false;
		/* With a budget, look at it every millisecond. */
		if (poll(&pfd, 1, budget ? 1 : 100) < 0 ||
		    !PQconsumeInput(c->pg))
			return PQisBusy(c->pg) == 0;
	}
	return true;
}

/* A statement that ran out of time: cancel it on the server and leave
 * its end for settle(), so this call returns now. */
static void
give_up(struct rf_store_conn *c)
{
	PGcancel *cn = PQgetCancel(c->pg);
	char buf[64];

	if (cn != NULL) {
		PQcancel(cn, buf, sizeof buf);
		PQfreeCancel(cn);
	}
	c->pending = true;
}

/* A statement given up is finished before the connection runs another:
 * its results read (without any wait on a call with a budget: 0 only when
 * they are in) and, inside a transaction, rolled back.  A connection that
 * does not settle within RF_PG_WAIT_MS is given up (store.c reopens it). */
static int
settle(struct rf_store_conn *c)
{
	PGresult *r;

	if (!c->pending)
		return 0;
	if (rf_store_call_budget(NULL)) {
		if (!PQconsumeInput(c->pg) || PQisBusy(c->pg))
			return -1;
	} else if (!wait_ready(c)) {
		c->dead = true;
		return -1;
	}
	while ((r = PQgetResult(c->pg)) != NULL)
		PQclear(r);
	c->pending = false;
	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		PQclear(PQexec(c->pg, "ROLLBACK"));
	return 0;
}

/* The end of one statement's results: the first kept (rows or a
 * command's end), else NULL with the failure reported and classed. */
static PGresult *
collect(struct rf_store_conn *c, const char *fn)
{
	PGresult *res = NULL, *r;
	int st;

	while ((r = PQgetResult(c->pg)) != NULL) {
		if (res == NULL)
			res = r;
		else
			PQclear(r);
	}
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		/* Data exceptions (bad UTF-8, a value out of range) and
		 * constraint violations: retrying the same rows cannot help. */
		c->last_refusable = state_class(res, "22") ||
		    state_class(res, "23");
		report(c, res, fn);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Ready for a statement: not given up, connected, and the end of any
 * statement given up before read.  Clears last_refusable. */
static bool
can_send(struct rf_store_conn *c)
{
	c->last_refusable = false;
	return !c->dead && PQstatus(c->pg) == CONNECTION_OK && settle(c) == 0;
}

/* Wait for the statement sent; one that does not end in time is
 * cancelled and left for settle() (false). */
static bool
await(struct rf_store_conn *c, const char *fn)
{
	if (wait_ready(c))
		return true;
	if (!rf_store_call_budget(NULL))
		rf_log_write(RF_LOG_LEVEL_ERR, fn, NULL, NULL,
		    "the store did not answer in time");
	give_up(c);
	return false;
}

/* Run prepared statement i with n text parameters (NULL = SQL NULL).  The
 * result when it is the one expected (rows, or a command's end), else
 * NULL (reported unless the call has a budget). */
static PGresult *
run(struct rf_store_conn *c, enum pg_stmt i, int n, const char *const *v,
    const char *fn)
{
	char name[16];

	if (!can_send(c))
		return NULL;
	snprintf(name, sizeof name, "s%d", (int)i);
	if (!PQsendQueryPrepared(c->pg, name, n, v, NULL, NULL, 0)) {
		report(c, NULL, fn);
		return NULL;
	}
	return await(c, fn) ? collect(c, fn) : NULL;
}

/* A statement whose rows are not needed: 0 or -1. */
static int
run0(struct rf_store_conn *c, enum pg_stmt i, int n, const char *const *v,
    const char *fn)
{
	PGresult *res = run(c, i, n, v, fn);

	PQclear(res);
	return res != NULL ? 0 : -1;
}

/* COPY rows (text format, one line each, see cp_text) in by sql: 0 or
 * -1.  The rows go in one message: a bulk insert costs the server far
 * less per row than unnesting arrays.  A COPY that breaks or outlasts its
 * wait before its data is all sent leaves the connection given up (store.c
 * reopens it; the server rolls the transaction back): a half-fed COPY
 * cannot be cancelled and reused. */
static int
copy_in(struct rf_store_conn *c, const char *sql, const struct rf_buf *rows,
    const char *fn)
{
	PGresult *res;

	if (!can_send(c))
		return -1;
	if (!PQsendQuery(c->pg, sql) || !wait_ready(c) ||
	    (res = PQgetResult(c->pg)) == NULL)
		goto broken;
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		report(c, res, fn);
		PQclear(res);
		PQclear(collect(c, fn));
		return -1;
	}
	PQclear(res);
	if (PQputCopyData(c->pg, rows->data, (int)rows->len) != 1 ||
	    PQputCopyEnd(c->pg, NULL) != 1)
		goto broken;
	if (!await(c, fn))
		return -1;
	res = collect(c, fn);
	PQclear(res);
	return res != NULL ? 0 : -1;
broken:
	report(c, NULL, fn);
	c->dead = true;
	return -1;
}

/* COPY text fields, each followed by a tab (cp_end turns the row's last
 * into its newline): backslash, tab, newline and carriage return escaped,
 * \N for NULL. */
static int
cp_text(struct rf_buf *b, const char *s)
{
	int rc = 0;

	if (s == NULL)
		return rf_buf_puts(b, "\\N\t");
	while (*s != '\0' && rc == 0) {
		size_t run = strcspn(s, "\\\t\n\r");

		rc |= rf_buf_append(b, s, run);
		s += run;
		if (*s == '\0')
			break;
		rc |= rf_buf_puts(b, *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" :
		    *s == '\n' ? "\\n" : "\\r");
		s++;
	}
	return rc | rf_buf_puts(b, "\t");
}

static int
cp_num(struct rf_buf *b, int64_t v)
{
	return rf_buf_printf(b, "%lld\t", (long long)v);
}

/* NULL when v < 0. */
static int
cp_opt(struct rf_buf *b, int64_t v)
{
	return v < 0 ? rf_buf_puts(b, "\\N\t") : cp_num(b, v);
}

static int
cp_end(struct rf_buf *b)
{
	if (b->len == 0 || b->data[b->len - 1] != '\t')
		return -1;
	b->data[b->len - 1] = '\n';
	return 0;
}

static int
tx_begin(struct rf_store_conn *c, enum pg_stmt i, const char *fn)
{
	return run0(c, i, 0, NULL, fn);
}

/* Commit when rc is 0, else roll back.  Returns the final outcome. */
static int
tx_end(struct rf_store_conn *c, int rc, const char *fn)
{
	if (rc == 0 && run0(c, PS_COMMIT, 0, NULL, fn) == 0)
		return 0;
	if (!c->dead && !c->pending && PQstatus(c->pg) == CONNECTION_OK &&
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		run0(c, PS_ROLLBACK, 0, NULL, fn);
	return -1;
}

/* ---- values as text ---- */

struct num {
	char s[24];
};

static const char *
num(struct num *n, int64_t v)
{
	snprintf(n->s, sizeof n->s, "%lld", (long long)v);
	return n->s;
}

/* A value, or NULL (SQL NULL) when v < 0. */
static const char *
num_opt(struct num *n, int64_t v)
{
	return v < 0 ? NULL : num(n, v);
}

static int64_t
col_i64(const PGresult *res, int row, int col, int64_t dflt)
{
	if (PQgetisnull(res, row, col))
		return dflt;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* ---- array literals: '{"a","b",NULL}' ---- */

static int
arr_open(struct rf_buf *b)
{
	rf_buf_reset(b);
	return rf_buf_puts(b, "{");
}

static int
arr_sep(struct rf_buf *b)
{
	return b->len > 1 ? rf_buf_puts(b, ",") : 0;
}

/* A text element, quoted; NULL for a NULL pointer. */
static int
arr_text(struct rf_buf *b, const char *s)
{
	int rc = arr_sep(b);

	if (s == NULL)
		return rc | rf_buf_puts(b, "NULL");
	rc |= rf_buf_puts(b, "\"");
	for (const char *p = s; *p != '\0' && rc == 0; p++) {
		size_t run = strcspn(p, "\"\\");
		rc |= rf_buf_append(b, p, run);
		p += run;
		if (*p == '\0')
			break;
		rc |= rf_buf_printf(b, "\\%c", *p);
	}
	return rc | rf_buf_puts(b, "\"");
}

static int
arr_num(struct rf_buf *b, int64_t v)
{
	return arr_sep(b) | rf_buf_printf(b, "%lld", (long long)v);
}

static int
arr_close(struct rf_buf *b)
{
	return rf_buf_puts(b, "}");
}

/* Columns of arrays built together (a statement's parameters). */
struct cols {
	struct rf_buf b[MAX_COLS];
	const char *v[MAX_COLS];
	int n;
	int rc;
};

static void
cols_open(struct cols *k, int n)
{
	k->n = n;
	k->rc = 0;
	for (int i = 0; i < n; i++)
		k->rc |= arr_open(&k->b[i]);
}

static void
cols_close(struct cols *k)
{
	for (int i = 0; i < k->n; i++) {
		k->rc |= arr_close(&k->b[i]);
		k->v[i] = rf_buf_str(&k->b[i]);
	}
}

static void
cols_free(struct cols *k)
{
	for (int i = 0; i < MAX_COLS; i++)
		rf_buf_free(&k->b[i]);
}

/* ---- generated SQL (the 72 histogram columns, the log variants) ---- */

#define ROLLUP_COLS "provider, requests, successes, errors, fallbacks," \
	" latency_sum, latency_max, prompt_tokens, completion_tokens, cancelled"

/* Many periods and providers in one statement: $1..$11 arrays of the
 * rollup columns, $12 every row's 72 histogram counts one after another
 * (row o's bucket b at (o - 1) * 72 + b + 1: a plain subscript, no parse
 * per column).  Rows come sorted by key (two machines lock rows in the
 * same order). */
static int
upsert_sql(struct rf_buf *b, const char *table, const char *key)
{
	int rc = rf_buf_printf(b, "INSERT INTO %s AS u (%s, " ROLLUP_COLS,
	    table, key);

	for (int i = 0; i < RF_HIST_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", h%d", i);
	rc |= rf_buf_puts(b, ") SELECT k, p, r, s, e, f, ls, lm, pt, ct, ca");
	for (int i = 0; i < RF_HIST_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", ($12::bigint[])[(o - 1) * %d + %d]",
		    RF_HIST_BUCKETS, i + 1);
	rc |= rf_buf_printf(b, " FROM unnest($1::bigint[], $2::text[],"
	    " $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],"
	    " $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],"
	    " $11::bigint[])"
	    " WITH ORDINALITY AS x (k, p, r, s, e, f, ls, lm, pt, ct, ca, o)"
	    " ON CONFLICT (%s, provider) DO UPDATE SET"
	    " requests = u.requests + excluded.requests,"
	    " successes = u.successes + excluded.successes,"
	    " errors = u.errors + excluded.errors,"
	    " fallbacks = u.fallbacks + excluded.fallbacks,"
	    " latency_sum = u.latency_sum + excluded.latency_sum,"
	    " latency_max = greatest(u.latency_max, excluded.latency_max),"
	    " prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,"
	    " completion_tokens = u.completion_tokens"
	    " + excluded.completion_tokens,"
	    " cancelled = u.cancelled + excluded.cancelled", key);
	for (int i = 0; i < RF_HIST_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", h%d = u.h%d + excluded.h%d", i, i, i);
	return rc;
}

/* The rollup rows of [$1, $2) in period order (the primary key's). */
static int
usage_sql(struct rf_buf *b, const char *table, const char *key)
{
	int rc = rf_buf_printf(b, "SELECT %s, " ROLLUP_COLS, key);

	for (int i = 0; i < RF_HIST_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", h%d", i);
	rc |= rf_buf_printf(b, " FROM %s WHERE %s >= $1::bigint AND"
	    " %s < $2::bigint ORDER BY %s", table, key, key, key);
	return rc;
}

#define LOG_COLS REQ_COLS

/* The page query of variant v: $1 ids below, $2 rows, $3 final provider.
 * Filter values are literals from a fixed set, never from the client.
 * A cancelled request is stored as an error with code client_closed
 * (rf_store_entry_status); both error filters keep status = 'error', so
 * the partial index of failures serves them. */
static int
log_sql(struct rf_buf *b, int v)
{
	static const char *const status[LOG_STATUSES] = { "",
	    " AND status = 'success'",
	    " AND status = 'error' AND error_code IS DISTINCT FROM '"
	    RF_STORE_CANCELLED_CODE "'",
	    " AND status = 'error' AND error_code = '"
	    RF_STORE_CANCELLED_CODE "'" };
	int ep = v / 2 % LOG_ENDPOINTS;

	return rf_buf_printf(b, "SELECT " LOG_COLS " FROM requests"
	    " WHERE id < $1::bigint%s%s%s%s%s ORDER BY id DESC LIMIT $2::int",
	    v % 2 ? " AND final_provider = $3" : "",
	    status[v / (2 * LOG_ENDPOINTS)], ep ? " AND endpoint = '" : "",
	    log_endpoint[ep], ep ? "'" : "");
}

/* Add a batch's increments to the metric series: $1 names, $2 labels,
 * $3 counts, $4 sums, $5 every row's 16 bucket counts one after another
 * (as the rollups' histograms).  Rows come sorted by key (two writers
 * lock rows in the same order). */
static int
metric_add_sql(struct rf_buf *b)
{
	int rc = rf_buf_puts(b, "INSERT INTO metric_totals AS m (name, labels,"
	    " count, sum");

	for (int i = 0; i < RF_METRIC_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", b%d", i);
	rc |= rf_buf_puts(b, ") SELECT n, l, c, s");
	for (int i = 0; i < RF_METRIC_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", ($5::bigint[])[(o - 1) * %d + %d]",
		    RF_METRIC_BUCKETS, i + 1);
	rc |= rf_buf_puts(b, " FROM unnest($1::text[], $2::text[],"
	    " $3::bigint[], $4::bigint[]) WITH ORDINALITY AS x (n, l, c, s, o)"
	    " ON CONFLICT (name, labels) DO UPDATE SET"
	    " count = m.count + excluded.count, sum = m.sum + excluded.sum");
	for (int i = 0; i < RF_METRIC_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", b%d = m.b%d + excluded.b%d", i, i, i);
	return rc;
}

/* Every series, in the order of the exposition (byte order, as SQLite's
 * BINARY collation). */
static int
metric_rows_sql(struct rf_buf *b)
{
	int rc = rf_buf_puts(b, "SELECT name, labels, count, sum");

	for (int i = 0; i < RF_METRIC_BUCKETS; i++)
		rc |= rf_buf_printf(b, ", b%d", i);
	return rc | rf_buf_puts(b, " FROM metric_totals"
	    " ORDER BY name COLLATE \"C\", labels COLLATE \"C\"");
}

static int
build_sql(int i, struct rf_buf *b)
{
	if (i >= PS_COUNT)
		return log_sql(b, i - PS_COUNT);
	switch (i) {
	case PS_UPSERT_MINUTE:
		return upsert_sql(b, "usage_minute", "minute_ms");
	case PS_UPSERT_HOUR:
		return upsert_sql(b, "usage_hour", "hour_ms");
	case PS_USAGE_MINUTE:
		return usage_sql(b, "usage_minute", "minute_ms");
	case PS_USAGE_HOUR:
		return usage_sql(b, "usage_hour", "hour_ms");
	case PS_METRIC_ADD:
		return metric_add_sql(b);
	case PS_METRIC_ROWS:
		return metric_rows_sql(b);
	default:
		return rf_buf_puts(b, stmt_sql[i]);
	}
}

/* Every statement, prepared as "s<i>" (the log variants after PS_COUNT). */
static int
prepare_all(struct rf_store_conn *c, char *err, size_t errlen)
{
	struct rf_buf sql;
	char name[16];
	int rc = 0;

	rf_buf_init(&sql, 0);
	for (int i = 0; i < PS_COUNT + LOG_VARIANTS && rc == 0; i++) {
		PGresult *res;

		rf_buf_reset(&sql);
		if (build_sql(i, &sql) != 0) {
			set_err(err, errlen, "prepare", NULL);
			rc = -1;
			break;
		}
		snprintf(name, sizeof name, "s%d", i);
		res = PQprepare(c->pg, name, rf_buf_str(&sql), 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			char line[200];

			first_line(PQresultErrorMessage(res), line, sizeof line);
			snprintf(err, errlen, "prepare s%d: %s", i, line);
			rc = -1;
		}
		PQclear(res);
	}
	rf_buf_free(&sql);
	return rc;
}

/* ---- open: connect, session, migration ---- */

/* Run plain SQL (no parameters) at open time; its first value as an
 * integer into *v when v is not NULL.  0 or -1 (reason in err). */
static int
exec_open(PGconn *pg, const char *sql, long *v, char *err, size_t errlen)
{
	PGresult *res = PQexec(pg, sql);
	int st = PQresultStatus(res), rc = -1;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (v != NULL)
			*v = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ?
			    strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
		rc = 0;
	} else {
		char line[200];

		first_line(PQresultErrorMessage(res), line, sizeof line);
		snprintf(err, errlen, "migrate: %s", line);
	}
	PQclear(res);
	return rc;
}

/* The schema version of the store (0: none yet). */
static int
schema_version(PGconn *pg, long *v, char *err, size_t errlen)
{
	long have;

	if (exec_open(pg, "SELECT to_regclass('schema_version') IS NOT NULL"
	    " ::int", &have, err, errlen) != 0)
		return -1;
	*v = 0;
	return have ? exec_open(pg, "SELECT coalesce(max(version), 0)"
	    " FROM schema_version", v, err, errlen) : 0;
}

/* Apply the compiled schema when the store is older than this binary,
 * under a session advisory lock: machines that start together wait for
 * the first one, then find the version current.  A store newer than the
 * binary is accepted (migrations only add). */
static int
migrate(PGconn *pg, char *err, size_t errlen)
{
	long v;
	int rc = -1;

	if (schema_version(pg, &v, err, errlen) != 0)
		return -1;
	if (v >= RF_PG_SCHEMA_VERSION)
		return 0;
	if (exec_open(pg, "SELECT pg_advisory_lock(" RF_PG_MIGRATE_LOCK ")",
	    NULL, err, errlen) != 0)
		return -1;
	if (schema_version(pg, &v, err, errlen) != 0)
		goto unlock;
	if (v < RF_PG_SCHEMA_VERSION) {
		if (exec_open(pg, "BEGIN", NULL, err, errlen) != 0)
			goto unlock;
		if (exec_open(pg, rf_schema_pg, NULL, err, errlen) != 0 ||
		    schema_version(pg, &v, err, errlen) != 0) {
			PQclear(PQexec(pg, "ROLLBACK"));
			goto unlock;
		}
		if (v != RF_PG_SCHEMA_VERSION) {
			snprintf(err, errlen, "migrate: schema records version"
			    " %ld, this binary needs %d", v,
			    RF_PG_SCHEMA_VERSION);
			PQclear(PQexec(pg, "ROLLBACK"));
			goto unlock;
		}
		if (exec_open(pg, "COMMIT", NULL, err, errlen) != 0)
			goto unlock;
	}
	rc = 0;
unlock:
	PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" RF_PG_MIGRATE_LOCK ")"));
	return rc;
}

/* The password of the URI becomes a registered secret: no message of
 * this program can then print it, whatever libpq or the server says. */
static void
register_password(const char *db)
{
	PQconninfoOption *opts = PQconninfoParse(db, NULL);

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
			rf_scrub_add_secret(o->val);
	PQconninfoFree(opts);
}

/* Connect with bounded defaults the URI may override: connect_timeout
 * (a machine that does not answer must not hang a start), UTF-8. */
static PGconn *
connect_db(const char *db)
{
	static const char *const keys[] = { "connect_timeout",
	    "fallback_application_name", "client_encoding", "dbname", NULL };
	const char *vals[] = { "5", "relayforge", "UTF8", db, NULL };

	return PQconnectdbParams(keys, vals, 1);
}

/* Connect, set the session up, migrate when asked, prepare. */
static int
pg_connect(struct rf_store_conn *c, bool do_migrate, char *err,
    size_t errlen)
{
	c->pg = connect_db(c->db);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		set_err(err, errlen, "cannot connect to PostgreSQL", c->pg);
		return -1;
	}
	/* Preparing an INSERT takes its table's lock: while an operator
	 * holds the tables, the open fails within a moment (the process
	 * answers without the store and tries again) instead of holding up
	 * its start for the lock timeout. */
	if (exec_open(c->pg, session_sql, NULL, err, errlen) != 0 ||
	    (do_migrate && migrate(c->pg, err, errlen) != 0) ||
	    exec_open(c->pg, "SET lock_timeout = " RF_PG_OPEN_LOCK_MS, NULL,
	    err, errlen) != 0 ||
	    prepare_all(c, err, errlen) != 0 ||
	    exec_open(c->pg, "SET lock_timeout = 10000", NULL, err,
	    errlen) != 0)
		return -1;
	return 0;
}

static void
pg_close(struct rf_store_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pg);
	rf_metrics_acc_free(&c->acc);
	if (c->db != NULL) {
		explicit_bzero(c->db, strlen(c->db));
		free(c->db);
	}
	free(c);
}

/* db is a URI that may hold a password: no message names it. */
static struct rf_store_conn *
pg_open(const char *db, char *err, size_t errlen)
{
	struct rf_store_conn *c = calloc(1, sizeof *c);

	if (c == NULL || (c->db = strdup(db)) == NULL) {
		set_err(err, errlen, "rf_store_open", NULL);
		pg_close(c);
		return NULL;
	}
	register_password(db);
	if (pg_connect(c, true, err, errlen) != 0) {
		pg_close(c);
		return NULL;
	}
	return c;
}

static bool
pg_broken(struct rf_store_conn *c)
{
	return c->dead || PQstatus(c->pg) != CONNECTION_OK;
}

/* Open the connection again (after a restart of the server, a network
 * failure or a cancelled statement). */
static int
pg_reset(struct rf_store_conn *c, char *err, size_t errlen)
{
	PQfinish(c->pg);
	c->pg = NULL;
	c->dead = false;
	c->pending = false;
	if (pg_connect(c, false, err, errlen) == 0)
		return 0;
	c->dead = true;
	return -1;
}

/* ---- log requests: one statement per table per batch ---- */

/* One rollup table's upsert for the batch: its rows summed here first
 * (src/store.c), sorted by key. */
static int
write_rollup(struct rf_store_conn *c, enum pg_stmt i,
    const struct rf_log_entry *const *e, size_t n, struct cols *k,
    const char *fn)
{
	struct rf_store_rollups r = { .period_ms = i == PS_UPSERT_MINUTE ?
	    RF_MINUTE_MS : RF_HOUR_MS };
	int rc = 0;

	for (size_t j = 0; j < n && rc == 0; j++)
		rc = rf_store_rollups_add(&r, e[j]);
	rf_store_rollups_sort(&r);
	cols_open(k, 12);
	for (size_t j = 0; j < r.n; j++) {
		const struct rf_hist_row *h = &r.v[j];

		k->rc |= arr_num(&k->b[0], h->period_ms);
		k->rc |= arr_text(&k->b[1], h->provider);
		k->rc |= arr_num(&k->b[2], h->requests);
		k->rc |= arr_num(&k->b[3], h->successes);
		k->rc |= arr_num(&k->b[4], h->errors);
		k->rc |= arr_num(&k->b[5], h->fallbacks);
		k->rc |= arr_num(&k->b[6], h->latency_sum);
		k->rc |= arr_num(&k->b[7], h->latency_max);
		k->rc |= arr_num(&k->b[8], h->prompt_tokens);
		k->rc |= arr_num(&k->b[9], h->completion_tokens);
		k->rc |= arr_num(&k->b[10], h->cancelled);
		for (int b = 0; b < RF_HIST_BUCKETS; b++)
			k->rc |= arr_num(&k->b[11], h->h[b]);
	}
	cols_close(k);
	rf_store_rollups_free(&r);
	if (rc != 0 || k->rc != 0) {
		RF_LOG_ERR(NULL, NULL, "out of memory");
		return -1;
	}
	return run0(c, i, 12, k->v, fn);
}

/* One request's fields into a COPY row (see cp_text). */
static int
request_row(struct rf_buf *b, int64_t id, const struct rf_log_entry *e)
{
	int rc = cp_num(b, id);

	rc |= cp_text(b, e->request_id);
	rc |= cp_num(b, e->ts_ms);
	rc |= cp_text(b, e->endpoint);
	rc |= cp_text(b, e->strategy);
	rc |= cp_text(b, e->attempted_provider);
	rc |= cp_text(b, e->final_provider);
	rc |= cp_num(b, e->fallback);
	rc |= cp_num(b, e->degraded);
	rc |= cp_num(b, e->demo);
	rc |= cp_text(b, e->success ? "success" : "error");
	rc |= cp_text(b, e->error_code);
	rc |= cp_num(b, e->http_status);
	rc |= cp_num(b, e->latency_ms);
	rc |= cp_opt(b, e->ttft_ms);
	rc |= cp_text(b, e->model);
	rc |= cp_num(b, e->prompt_chars);
	rc |= cp_opt(b, e->prompt_tokens);
	rc |= cp_opt(b, e->completion_tokens);
	rc |= cp_text(b, e->source);
	rc |= cp_text(b, e->prompt_preview);
	rc |= cp_num(b, e->partial_chars);
	rc |= cp_num(b, e->skipped_chunks);
	rc |= cp_num(b, e->restarts);
	rc |= cp_text(b, e->streamed);
	rc |= cp_text(b, e->node != NULL ? e->node : rf_store_node());
	return rc | cp_end(b);
}

/* Take n ids of the requests' sequence, in one call. */
static int
take_ids(struct rf_store_conn *c, size_t n, int64_t *ids, const char *fn)
{
	struct num a;
	const char *v[1] = { num(&a, (int64_t)n) };
	PGresult *res = run(c, PS_IDS, 1, v, fn);
	int rc = -1;

	if (res != NULL && PQntuples(res) == (int)n) {
		for (size_t i = 0; i < n; i++)
			ids[i] = col_i64(res, (int)i, 0, 0);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

static int
insert_requests(struct rf_store_conn *c, const struct rf_log_entry *const *e,
    size_t n, const int64_t *ids, struct rf_buf *rows, const char *fn)
{
	int rc = 0;

	rf_buf_reset(rows);
	for (size_t i = 0; i < n; i++)
		rc |= request_row(rows, ids[i], e[i]);
	if (rc != 0) {
		RF_LOG_ERR(NULL, NULL, "out of memory");
		return -1;
	}
	return copy_in(c, "COPY requests (" REQ_COLS ") FROM STDIN", rows,
	    fn);
}

static int
insert_attempts(struct rf_store_conn *c, const struct rf_log_entry *const *e,
    size_t n, const int64_t *ids, struct rf_buf *rows, const char *fn)
{
	int rc = 0;

	rf_buf_reset(rows);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < e[i]->nattempts; j++) {
			const struct rf_log_attempt *a = &e[i]->attempts[j];

			rc |= cp_num(rows, ids[i]);
			rc |= cp_num(rows, (int64_t)j);
			rc |= cp_text(rows, a->provider);
			rc |= cp_text(rows, a->outcome);
			rc |= cp_text(rows, a->reason);
			rc |= cp_opt(rows, a->http_status > 0 ?
			    a->http_status : -1);
			rc |= cp_opt(rows, a->latency_ms);
			rc |= cp_num(rows, a->retry);
			rc |= cp_end(rows);
		}
	}
	if (rc != 0) {
		RF_LOG_ERR(NULL, NULL, "out of memory");
		return -1;
	}
	return rows->len == 0 ? 0 : copy_in(c, "COPY attempts (" ATT_COLS
	    ") FROM STDIN", rows, fn);
}

static int
metric_cmp(const void *a, const void *b)
{
	const struct rf_metric_row *x = *(const struct rf_metric_row *const *)a;
	const struct rf_metric_row *y = *(const struct rf_metric_row *const *)b;
	int d = strcmp(x->name, y->name);

	return d != 0 ? d : strcmp(x->labels, y->labels);
}

/* The metric series of the n requests, summed (src/metrics.c), added to
 * metric_totals in one statement, in key order. */
static int
write_metrics(struct rf_store_conn *c, const struct rf_log_entry *const *e,
    size_t n, struct cols *k, const char *fn)
{
	const struct rf_metric_row **v = NULL;
	int rc = 0;

	rf_metrics_acc_reset(&c->acc);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = rf_metrics_acc_add(&c->acc, e[i]);
	if (rc != 0 || (c->acc.n > 0 &&
	    (v = calloc(c->acc.n, sizeof *v)) == NULL)) {
		RF_LOG_ERR(NULL, NULL, "out of memory");
		return -1;
	}
	if (c->acc.n == 0)
		return 0;
	for (size_t i = 0; i < c->acc.n; i++)
		v[i] = &c->acc.v[i];
	qsort(v, c->acc.n, sizeof *v, metric_cmp);
	cols_open(k, 5);
	for (size_t i = 0; i < c->acc.n; i++) {
		k->rc |= arr_text(&k->b[0], v[i]->name);
		k->rc |= arr_text(&k->b[1], v[i]->labels);
		k->rc |= arr_num(&k->b[2], v[i]->count);
		k->rc |= arr_num(&k->b[3], v[i]->sum);
		for (int b = 0; b < RF_METRIC_BUCKETS; b++)
			k->rc |= arr_num(&k->b[4], v[i]->b[b]);
	}
	free(v);
	cols_close(k);
	if (k->rc != 0) {
		RF_LOG_ERR(NULL, NULL, "out of memory");
		return -1;
	}
	return run0(c, PS_METRIC_ADD, 5, k->v, fn);
}

/* The rows of n requests inside the caller's transaction: their ids, then
 * one statement per table (metric totals included: a row the server
 * refuses takes its series with it when the caller rolls it back).  *refusable (may be NULL) says whether a
 * failure was the rows' own (a data or constraint error). */
static int
write_rows(struct rf_store_conn *c, const struct rf_log_entry *const *e,
    size_t n, bool *refusable, const char *fn)
{
	int64_t *ids = calloc(n ? n : 1, sizeof *ids);
	struct cols k = { 0 };
	struct rf_buf rows = { 0 };
	int rc = -1;

	if (refusable != NULL)
		*refusable = false;
	for (size_t i = 0; i < n; i++)
		if (e[i] == NULL)
			goto out;
	if (ids == NULL) {
		RF_LOG_ERR(NULL, NULL, "out of memory");
		goto out;
	}
	if (n == 0)
		rc = 0;
	else if (take_ids(c, n, ids, fn) == 0 &&
	    insert_requests(c, e, n, ids, &rows, fn) == 0 &&
	    insert_attempts(c, e, n, ids, &rows, fn) == 0 &&
	    write_rollup(c, PS_UPSERT_MINUTE, e, n, &k, fn) == 0 &&
	    write_rollup(c, PS_UPSERT_HOUR, e, n, &k, fn) == 0 &&
	    write_metrics(c, e, n, &k, fn) == 0)
		rc = 0;
	if (rc != 0 && refusable != NULL)
		*refusable = c->last_refusable;
out:
	cols_free(&k);
	rf_buf_free(&rows);
	free(ids);
	return rc;
}

/* n requests in one transaction, committed durably: all or none. */
static int
pg_log_requests(struct rf_store_conn *c, const struct rf_log_entry *const *e,
    size_t n)
{
	static const char fn[] = "rf_store_log_requests";
	int rc;

	if (e == NULL || tx_begin(c, PS_BEGIN, fn) != 0)
		return -1;
	rc = run0(c, PS_SYNC_ON, 0, NULL, fn);
	if (rc == 0)
		rc = write_rows(c, e, n, NULL, fn);
	return tx_end(c, rc, fn);
}

/* ---- the request-log spool ---- */

/* The stored progress of spool (0 when none). */
static int
spool_at(struct rf_store_conn *c, const char *spool, int64_t *at,
    const char *fn)
{
	const char *v[1] = { spool };
	PGresult *res = run(c, PS_SPOOL_GET, 1, v, fn);

	*at = 0;
	if (res == NULL)
		return -1;
	if (PQntuples(res) > 0)
		*at = col_i64(res, 0, 0, 0);
	PQclear(res);
	return 0;
}

static int
spool_set(struct rf_store_conn *c, const char *spool, int64_t through,
    const char *fn)
{
	struct num a, b;
	const char *v[3] = { spool, num(&a, through), num(&b, rf_now_ms()) };

	return run0(c, PS_SPOOL_SET, 3, v, fn);
}

/* The rows one by one, each in a savepoint: a row the server refuses is
 * rolled back alone, logged with its request id and counted. */
static int
write_careful(struct rf_store_conn *c, const struct rf_log_entry *const *e,
    size_t n, long *refused, const char *fn)
{
	bool own;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		if (run0(c, PS_SAVEPOINT, 0, NULL, fn) != 0)
			return -1;
		if (write_rows(c, &e[i], 1, &own, fn) == 0) {
			rc = run0(c, PS_RELEASE, 0, NULL, fn);
			continue;
		}
		if (!own)
			return -1;
		rf_log_write(RF_LOG_LEVEL_ERR, fn, e[i]->request_id, NULL,
		    "the store refuses this request's row: it is dropped");
		(*refused)++;
		rc = run0(c, PS_ROLLBACK_TO, 0, NULL, fn);
		if (rc == 0)
			rc = run0(c, PS_RELEASE, 0, NULL, fn);
	}
	return rc;
}

/* One attempt at a spooled batch, in one transaction (see the SQLite
 * backend): 0 done, -1 failed, 1 a row was refused on a plain attempt
 * (all rolled back: try careful). */
static int
spooled_tx(struct rf_store_conn *c, const char *spool, int64_t from,
    int64_t through, const struct rf_log_entry *const *e, size_t n,
    bool careful, long *refused)
{
	static const char fn[] = "rf_store_log_spooled";
	const char *v[1] = { spool };
	bool redo = false;
	int64_t at = 0;
	int rc;

	if (tx_begin(c, PS_BEGIN, fn) != 0)
		return -1;
	rc = run0(c, PS_SYNC_ON, 0, NULL, fn);
	if (rc == 0)
		rc = run0(c, PS_SPOOL_LOCK, 1, v, fn);
	if (rc == 0)
		rc = spool_at(c, spool, &at, fn);
	if (rc == 0 && at >= through)
		goto end; /* in the store already: a repeated batch */
	if (rc == 0 && at > from) {
		rf_log_write(RF_LOG_LEVEL_ERR, fn, NULL, NULL, "spool %s is in"
		    " the store up to byte %lld, not %lld: not written again",
		    spool, (long long)at, (long long)from);
		rc = -1;
	}
	if (rc == 0 && careful)
		rc = write_careful(c, e, n, refused, fn);
	else if (rc == 0)
		rc = write_rows(c, e, n, &redo, fn);
	if (rc == 0)
		rc = spool_set(c, spool, through, fn);
end:
	rc = tx_end(c, rc, fn);
	return redo ? 1 : rc;
}

static int
pg_spool_progress(struct rf_store_conn *c, const char *spool,
    int64_t *through)
{
	return spool_at(c, spool, through, "rf_store_spool_progress");
}

static int
pg_spool_forget(struct rf_store_conn *c, const char *spool)
{
	const char *v[1] = { spool };

	return run0(c, PS_SPOOL_FORGET, 1, v, "rf_store_spool_forget");
}

/* The lock every write takes, waited for at most timeout_ms (on the server
 * by lock_timeout, here by the cap), then rolled back. */
static int
pg_writable(struct rf_store_conn *c, int timeout_ms, char *why,
    size_t whylen)
{
	static const char fn[] = "rf_store_writable";
	struct num a;
	const char *v[1] = { num(&a, timeout_ms > 0 ? timeout_ms : 1) };
	PGresult *res = NULL;
	int rc = -1;

	c->cap_ms = (timeout_ms > 0 ? timeout_ms : 1) + 1000;
	if (run0(c, PS_BEGIN, 0, NULL, fn) == 0 &&
	    run0(c, PS_WRITABLE_TIMEOUT, 1, v, fn) == 0) {
		res = run(c, PS_WRITABLE_LOCK, 0, NULL, fn);
		rc = res != NULL ? 0 : -1;
	}
	if (rc != 0)
		first_line(c->dead ? "no answer in time" :
		    PQerrorMessage(c->pg), why, whylen);
	PQclear(res);
	tx_end(c, -1, fn);
	c->cap_ms = 0;
	return rc;
}

/* ---- provider state ---- */

/* ids as a text[] literal (into b); 0 or -1 (out of memory). */
static int
ids_array(struct rf_buf *b, const char *const *ids, size_t n)
{
	int rc = arr_open(b);

	for (size_t i = 0; i < n; i++)
		rc |= arr_text(b, ids[i]);
	return rc | arr_close(b);
}

/* Index of provider p among ids, or -1. */
static int
id_index(const char *const *ids, size_t n, const char *p)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], p) == 0)
			return (int)i;
	return -1;
}

/* One statement for every provider: one snapshot. */
static int
pg_provider_states(struct rf_store_conn *c, const char *const *ids,
    size_t n, struct rf_provider_state *st)
{
	struct rf_buf b = { 0 };
	const char *v[1];
	PGresult *res;

	memset(st, 0, n * sizeof *st);
	if (ids_array(&b, ids, n) != 0) {
		rf_buf_free(&b);
		return -1;
	}
	v[0] = rf_buf_str(&b);
	res = run(c, PS_PROVIDER_STATES, 1, v, "rf_store_provider_states");
	rf_buf_free(&b);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		int i = id_index(ids, n, PQgetvalue(res, r, 0));
		if (i < 0)
			continue;
		st[i].cooldown_until_ms = col_i64(res, r, 1, 0);
		st[i].consecutive_failures = (int)col_i64(res, r, 2, 0);
	}
	PQclear(res);
	return 0;
}

static int
pg_provider_failed(struct rf_store_conn *c, const char *id, int n,
    const char *error_code, int64_t now_ms, int64_t until_ms, int *failures)
{
	struct num a, b, d;
	const char *v[5] = { id, num(&a, n), error_code, num(&b, now_ms),
	    num(&d, until_ms > 0 ? until_ms : 0) };
	PGresult *res = run(c, PS_PROVIDER_FAILED, 5, v,
	    "rf_store_provider_failed");

	if (res == NULL)
		return -1;
	*failures = (int)col_i64(res, 0, 0, 0);
	PQclear(res);
	return 0;
}

static int
pg_provider_ok(struct rf_store_conn *c, const char *id, int64_t now_ms)
{
	struct num a;
	const char *v[2] = { id, num(&a, now_ms) };

	return run0(c, PS_PROVIDER_OK, 2, v, "rf_store_provider_ok");
}

static int
pg_provider_cooldown(struct rf_store_conn *c, const char *id,
    int64_t until_ms, const char *reason)
{
	struct num a;
	const char *v[3] = { id, num(&a, until_ms), reason };

	return run0(c, PS_PROVIDER_COOLDOWN, 3, v,
	    "rf_store_provider_cooldown");
}

static int
pg_provider_quota(struct rf_store_conn *c, const char *id,
    long remaining_requests, long remaining_tokens, int64_t reset_ms,
    int64_t now_ms)
{
	struct num a, b, d, e;
	const char *v[5] = { id, num_opt(&a, remaining_requests),
	    num_opt(&b, remaining_tokens),
	    reset_ms > 0 ? num(&d, reset_ms) : NULL, num(&e, now_ms) };

	return run0(c, PS_PROVIDER_QUOTA, 5, v, "rf_store_provider_quota");
}

/* ---- per-client rate limit: one atomic upsert ---- */

static long
pg_rate_count(struct rf_store_conn *c, const char *client, int hits,
    int64_t window_ms)
{
	struct num a, b;
	const char *v[3] = { client, num(&a, window_ms), num(&b, hits) };
	PGresult *res = run(c, PS_RATE, 3, v, "rf_store_rate_count");
	long count;

	if (res == NULL)
		return -1;
	count = (long)col_i64(res, 0, 0, -1);
	PQclear(res);
	return count;
}

static int
pg_ping(struct rf_store_conn *c)
{
	return run0(c, PS_PING, 0, NULL, "rf_store_ping");
}

/* ---- status: one report per provider ---- */

static void
report_state_rows(const PGresult *res, const char *const *ids, size_t n,
    struct rf_provider_report *out)
{
	for (int r = 0; r < PQntuples(res); r++) {
		int i = id_index(ids, n, PQgetvalue(res, r, 0));
		struct rf_provider_report *p;

		if (i < 0)
			continue;
		p = &out[i];
		p->cooldown_until_ms = col_i64(res, r, 1, 0);
		p->consecutive_failures = (int)col_i64(res, r, 2, 0);
		snprintf(p->last_error_code, sizeof p->last_error_code, "%s",
		    PQgetisnull(res, r, 3) ? "" : PQgetvalue(res, r, 3));
		p->last_error_ms = PQgetisnull(res, r, 3) ? 0 :
		    col_i64(res, r, 4, 0);
		p->last_success_ms = col_i64(res, r, 5, 0);
		p->quota_remaining_requests = (long)col_i64(res, r, 6, -1);
		p->quota_remaining_tokens = (long)col_i64(res, r, 7, -1);
		p->quota_reset_ms = col_i64(res, r, 8, 0);
	}
}

static void
report_window_rows(const PGresult *res, const char *const *ids, size_t n,
    struct rf_provider_report *out)
{
	for (int r = 0; r < PQntuples(res); r++) {
		int i = id_index(ids, n, PQgetvalue(res, r, 0));

		if (i < 0)
			continue;
		out[i].requests = (long)col_i64(res, r, 1, 0);
		out[i].successes = (long)col_i64(res, r, 2, 0);
		out[i].failures = out[i].requests - out[i].successes;
		if (!PQgetisnull(res, r, 3))
			out[i].avg_latency_ms = (long)(strtod(
			    PQgetvalue(res, r, 3), NULL) + 0.5);
		out[i].p95_latency_ms = (long)col_i64(res, r, 4, -1);
	}
}

/* The newest ok / failed calls (rows: provider, rid, seq, ts[, code]). */
static void
report_last_rows(const PGresult *res, const char *const *ids, size_t n,
    struct rf_store_last_call *calls)
{
	for (int r = 0; r < PQntuples(res); r++) {
		int i = id_index(ids, n, PQgetvalue(res, r, 0));

		if (i < 0)
			continue;
		calls[i].rid = col_i64(res, r, 1, 0);
		calls[i].seq = col_i64(res, r, 2, 0);
		calls[i].ts_ms = col_i64(res, r, 3, 0);
		if (PQnfields(res) > 4)
			snprintf(calls[i].code, sizeof calls[i].code, "%s",
			    PQgetvalue(res, r, 4));
	}
}

/* Statement i over the ids array (or since for the window) into out. */
static int
report_step(struct rf_store_conn *c, enum pg_stmt i, const char *arg,
    const char *const *ids, size_t n, struct rf_provider_report *out,
    struct rf_store_last_call *calls)
{
	const char *v[1] = { arg };
	PGresult *res = run(c, i, 1, v, "rf_store_provider_reports");

	if (res == NULL)
		return -1;
	if (i == PS_REPORT_STATE)
		report_state_rows(res, ids, n, out);
	else if (i == PS_REPORT_WINDOW)
		report_window_rows(res, ids, n, out);
	else
		report_last_rows(res, ids, n, calls);
	PQclear(res);
	return 0;
}

static int
pg_provider_reports(struct rf_store_conn *c, const char *const *ids,
    size_t n, int64_t since_ms, struct rf_provider_report *out)
{
	static const char fn[] = "rf_store_provider_reports";
	struct rf_store_last_call *ok = calloc(n ? n : 1, sizeof *ok);
	struct rf_store_last_call *bad = calloc(n ? n : 1, sizeof *bad);
	struct rf_buf b = { 0 };
	struct num a;
	int rc = -1;

	if (ok == NULL || bad == NULL || ids_array(&b, ids, n) != 0 ||
	    tx_begin(c, PS_BEGIN_READ, fn) != 0)
		goto out;
	if (report_step(c, PS_REPORT_STATE, rf_buf_str(&b), ids, n, out,
	    NULL) == 0 &&
	    report_step(c, PS_REPORT_LAST_OK, rf_buf_str(&b), ids, n, out,
	    ok) == 0 &&
	    report_step(c, PS_REPORT_LAST_FAILED, rf_buf_str(&b), ids, n, out,
	    bad) == 0 &&
	    report_step(c, PS_REPORT_WINDOW, num(&a, since_ms), ids, n, out,
	    NULL) == 0)
		rc = 0;
	rc = tx_end(c, rc, fn);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rf_store_report_merge_last(&out[i], &ok[i], &bad[i]);
out:
	rf_buf_free(&b);
	free(ok);
	free(bad);
	return rc;
}

/* ---- logs: one page of requests with their attempts ---- */

/* A text column copied into the page (NULL for SQL NULL). */
static const char *
page_col(struct rf_log_page *page, const PGresult *res, int r, int i)
{
	if (PQgetisnull(res, r, i))
		return NULL;
	return rf_store_page_text(page, PQgetvalue(res, r, i),
	    (size_t)PQgetlength(res, r, i));
}

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

static void
log_item_read(struct rf_log_page *page, const PGresult *res, int r,
    struct rf_log_item *it)
{
	struct rf_log_entry *e = &it->e;

	it->id = col_i64(res, r, 0, 0);
	e->request_id = page_col(page, res, r, 1);
	e->ts_ms = col_i64(res, r, 2, 0);
	e->endpoint = page_col(page, res, r, 3);
	e->strategy = page_col(page, res, r, 4);
	e->attempted_provider = page_col(page, res, r, 5);
	e->final_provider = page_col(page, res, r, 6);
	e->fallback = col_i64(res, r, 7, 0) != 0;
	e->degraded = col_i64(res, r, 8, 0) != 0;
	e->demo = col_i64(res, r, 9, 0) != 0;
	e->success = strcmp(PQgetvalue(res, r, 10), "success") == 0;
	e->error_code = page_col(page, res, r, 11);
	e->http_status = (int)col_i64(res, r, 12, 0);
	e->latency_ms = (long)col_i64(res, r, 13, 0);
	e->ttft_ms = (long)col_i64(res, r, 14, -1);
	e->model = page_col(page, res, r, 15);
	e->prompt_chars = (long)col_i64(res, r, 16, 0);
	e->prompt_tokens = (long)col_i64(res, r, 17, -1);
	e->completion_tokens = (long)col_i64(res, r, 18, -1);
	e->source = page_col(page, res, r, 19);
	e->prompt_preview = page_col(page, res, r, 20);
	e->partial_chars = (long)col_i64(res, r, 21, 0);
	e->skipped_chunks = (int)col_i64(res, r, 22, 0);
	e->restarts = (int)col_i64(res, r, 23, 0);
	e->streamed = page_col(page, res, r, 24);
	e->node = page_col(page, res, r, 25);
}

static int
log_rows(struct rf_store_conn *c, const struct rf_log_query *q,
    struct rf_log_page *page)
{
	struct num a, b;
	const char *v[3] = { num(&a, q->before_id > 0 ? q->before_id :
	    INT64_MAX), num(&b, q->limit + 1), q->provider };
	PGresult *res = run(c, (enum pg_stmt)(PS_COUNT + log_variant(q)),
	    q->provider != NULL ? 3 : 2, v, "rf_store_logs");

	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		if (page->nitems == (size_t)q->limit) {
			page->more = true;
			break;
		}
		log_item_read(page, res, r, &page->items[page->nitems++]);
	}
	PQclear(res);
	return 0;
}

/* The attempts of every item, in the page's order. */
static int
log_attempts(struct rf_store_conn *c, struct rf_log_page *page)
{
	struct rf_buf b = { 0 };
	const char *v[1];
	PGresult *res;
	size_t k = 0;
	int rc = arr_open(&b);

	if (page->nitems == 0)
		goto out;
	for (size_t i = 0; i < page->nitems; i++)
		rc |= arr_num(&b, page->items[i].id);
	if ((rc |= arr_close(&b)) != 0)
		goto out;
	v[0] = rf_buf_str(&b);
	if ((res = run(c, PS_LOG_ATTEMPTS, 1, v, "rf_store_logs")) == NULL) {
		rc = -1;
		goto out;
	}
	for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
		int64_t rid = col_i64(res, r, 0, 0);
		struct rf_log_attempt *at;

		while (k < page->nitems && page->items[k].id > rid)
			k++;
		if (k == page->nitems)
			break;
		if ((at = rf_store_page_attempt(page, k)) == NULL) {
			rc = -1;
			break;
		}
		at->provider = page_col(page, res, r, 1);
		at->outcome = page_col(page, res, r, 2);
		at->reason = page_col(page, res, r, 3);
		at->http_status = (int)col_i64(res, r, 4, 0);
		at->latency_ms = (long)col_i64(res, r, 5, -1);
		at->retry = (int)col_i64(res, r, 6, 0);
	}
	PQclear(res);
out:
	rf_buf_free(&b);
	return rc;
}

static int
pg_logs(struct rf_store_conn *c, const struct rf_log_query *q,
    struct rf_log_page *page)
{
	static const char fn[] = "rf_store_logs";
	int rc = -1;

	if (tx_begin(c, PS_BEGIN_READ, fn) != 0)
		return -1;
	if (log_rows(c, q, page) == 0 && log_attempts(c, page) == 0)
		rc = 0;
	return tx_end(c, rc, fn);
}

/* ---- usage: rollup rows folded by hist.c ---- */

enum { UC_PERIOD, UC_PROVIDER, UC_REQUESTS, UC_SUCCESSES, UC_ERRORS,
	UC_FALLBACKS, UC_LAT_SUM, UC_LAT_MAX, UC_PROMPT, UC_COMPLETION,
	UC_CANCELLED, UC_HIST };

static void
usage_row_read(const PGresult *res, int r, struct rf_hist_row *row)
{
	row->period_ms = col_i64(res, r, UC_PERIOD, 0);
	row->provider = PQgetvalue(res, r, UC_PROVIDER);
	row->requests = col_i64(res, r, UC_REQUESTS, 0);
	row->successes = col_i64(res, r, UC_SUCCESSES, 0);
	row->errors = col_i64(res, r, UC_ERRORS, 0);
	row->fallbacks = col_i64(res, r, UC_FALLBACKS, 0);
	row->latency_sum = col_i64(res, r, UC_LAT_SUM, 0);
	row->latency_max = col_i64(res, r, UC_LAT_MAX, 0);
	row->prompt_tokens = col_i64(res, r, UC_PROMPT, 0);
	row->completion_tokens = col_i64(res, r, UC_COMPLETION, 0);
	row->cancelled = col_i64(res, r, UC_CANCELLED, 0);
	for (int j = 0; j < RF_HIST_BUCKETS; j++)
		row->h[j] = col_i64(res, r, UC_HIST + j, 0);
}

static int
pg_usage(struct rf_store_conn *c, enum rf_store_rollup table,
    struct rf_usage_report *r)
{
	struct num a, b;
	const char *v[2] = { num(&a, r->from_ms), num(&b, r->to_ms) };
	PGresult *res = run(c, table == RF_ROLLUP_HOUR ? PS_USAGE_HOUR :
	    PS_USAGE_MINUTE, 2, v, "rf_store_usage");
	struct rf_hist_fold fold;
	struct rf_hist_row row;
	int rc = 0;

	if (res == NULL)
		return -1;
	rf_hist_fold_init(&fold, r);
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		usage_row_read(res, i, &row);
		rc = rf_hist_fold_row(&fold, &row);
	}
	rf_hist_fold_end(&fold);
	PQclear(res);
	if (rc != 0)
		RF_LOG_ERR(NULL, NULL, "out of memory");
	return rc;
}

/* ---- retention ---- */

/* A bound DELETE: the rows it deleted (not counting cascades), or -1. */
static int
prune_step(struct rf_store_conn *c, enum pg_stmt i, int64_t cutoff,
    int batch)
{
	struct num a, b;
	const char *v[2] = { num(&a, cutoff), num(&b, batch) };
	PGresult *res = run(c, i, i == PS_PRUNE_RATE ? 0 :
	    i == PS_PRUNE_GAUGES ? 1 : 2, v, "rf_store_prune");
	int n;

	if (res == NULL)
		return -1;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n;
}

static int
pg_prune(struct rf_store_conn *c, int64_t older_than_ms, int batch)
{
	static const enum pg_stmt counted[] = { PS_PRUNE_REQUESTS,
	    PS_PRUNE_MINUTES, PS_PRUNE_HOURS };
	static const char fn[] = "rf_store_prune";
	int total = 0, n, rc = 0;

	if (tx_begin(c, PS_BEGIN, fn) != 0)
		return -1;
	for (size_t i = 0; rc == 0 && i < sizeof counted / sizeof counted[0];
	    i++) {
		n = prune_step(c, counted[i], older_than_ms, batch);
		if (n < 0)
			rc = -1;
		else
			total += n;
	}
	if (rc == 0 && prune_step(c, PS_PRUNE_RATE, 0, 0) < 0)
		rc = -1;
	/* Gone processes: their dropped rows into the total, rows away. */
	if (rc == 0 && prune_step(c, PS_PRUNE_GAUGES, older_than_ms, 0) < 0)
		rc = -1;
	if (tx_end(c, rc, fn) != 0)
		return -1;
	return total;
}

/* PostgreSQL's autovacuum gives space back and its checkpointer tidies
 * the WAL: nothing to do but see that the connection answers. */
static int
pg_maintain(struct rf_store_conn *c)
{
	return run0(c, PS_PING, 0, NULL, "rf_store_maintain");
}

/* ---- metrics ---- */

/* Every metric_totals row, in the exposition's order. */
static int
metric_rows(struct rf_store_conn *c, struct rf_metrics_snapshot *out,
    const char *fn)
{
	PGresult *res = run(c, PS_METRIC_ROWS, 0, NULL, fn);
	struct rf_metric_row *r;
	int rc = 0;

	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		if ((r = rf_store_metrics_row(out)) == NULL) {
			RF_LOG_ERR(NULL, NULL, "out of memory");
			rc = -1;
			break;
		}
		snprintf(r->name, sizeof r->name, "%s", PQgetvalue(res, i, 0));
		snprintf(r->labels, sizeof r->labels, "%s",
		    PQgetvalue(res, i, 1));
		r->count = col_i64(res, i, 2, 0);
		r->sum = col_i64(res, i, 3, 0);
		for (int k = 0; k < RF_METRIC_BUCKETS; k++)
			r->b[k] = col_i64(res, i, k + 4, 0);
	}
	PQclear(res);
	return rc;
}

/* The processes' gauges: live ones summed, dropped rows of all. */
static int
metric_gauges(struct rf_store_conn *c, int64_t live_since_ms,
    struct rf_metrics_snapshot *out, const char *fn)
{
	struct num a;
	const char *v[1] = { num(&a, live_since_ms) };
	PGresult *res = run(c, PS_GAUGES_SUM, 1, v, fn);

	if (res == NULL)
		return -1;
	out->live.open_streams = col_i64(res, 0, 0, 0);
	out->live.queue_rows = col_i64(res, 0, 1, 0);
	out->live_processes = col_i64(res, 0, 2, 0);
	out->dropped_rows = col_i64(res, 0, 3, 0);
	PQclear(res);
	return 0;
}

/* The providers' cooldown and quota (entries already none / unknown). */
static int
metric_providers(struct rf_store_conn *c, const char *const *ids, size_t n,
    struct rf_metrics_snapshot *out, const char *fn)
{
	struct rf_buf b = { 0 };
	const char *v[1];
	PGresult *res = NULL;

	if (n > 0 && ids_array(&b, ids, n) == 0) {
		v[0] = rf_buf_str(&b);
		res = run(c, PS_REPORT_STATE, 1, v, fn);
	}
	rf_buf_free(&b);
	if (n == 0)
		return 0;
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		int i = id_index(ids, n, PQgetvalue(res, r, 0));

		if (i < 0)
			continue;
		out->providers[i].cooldown_until_ms = col_i64(res, r, 1, 0);
		out->providers[i].quota_remaining_requests =
		    (long)col_i64(res, r, 6, -1);
		out->providers[i].quota_remaining_tokens =
		    (long)col_i64(res, r, 7, -1);
	}
	PQclear(res);
	return 0;
}

/* Everything /metrics shows, in one snapshot. */
static int
pg_metrics(struct rf_store_conn *c, const char *const *ids, size_t n,
    int64_t live_since_ms, struct rf_metrics_snapshot *out)
{
	static const char fn[] = "rf_store_metrics";
	int rc = -1;

	if (tx_begin(c, PS_BEGIN_READ, fn) != 0)
		return -1;
	if (metric_rows(c, out, fn) == 0 &&
	    metric_gauges(c, live_since_ms, out, fn) == 0 &&
	    metric_providers(c, ids, n, out, fn) == 0)
		rc = 0;
	return tx_end(c, rc, fn);
}

/* One atomic upsert (committed asynchronously, like the hot path's
 * writes: a lost heartbeat is replaced by the next). */
static int
pg_gauges_publish(struct rf_store_conn *c, const char *process,
    const struct rf_process_gauges *g, int64_t now_ms)
{
	struct num a, b, d, e;
	const char *v[5] = { process, num(&a, g->open_streams),
	    num(&b, g->queue_rows), num(&d, g->dropped_rows),
	    num(&e, now_ms) };

	return run0(c, PS_GAUGE_PUBLISH, 5, v, "rf_store_gauges_publish");
}

const struct rf_store_ops rf_store_pg = {
	.name = "PostgreSQL",
	.open = pg_open,
	.close = pg_close,
	.broken = pg_broken,
	.reset = pg_reset,
	.log_requests = pg_log_requests,
	.log_spooled = spooled_tx,
	.spool_progress = pg_spool_progress,
	.spool_forget = pg_spool_forget,
	.writable = pg_writable,
	.provider_states = pg_provider_states,
	.provider_failed = pg_provider_failed,
	.provider_ok = pg_provider_ok,
	.provider_cooldown = pg_provider_cooldown,
	.provider_quota = pg_provider_quota,
	.rate_count = pg_rate_count,
	.ping = pg_ping,
	.provider_reports = pg_provider_reports,
	.logs = pg_logs,
	.usage = pg_usage,
	.prune = pg_prune,
	.maintain = pg_maintain,
	.metrics = pg_metrics,
	.gauges_publish = pg_gauges_publish,
};
