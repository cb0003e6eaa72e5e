-- RelayForge store schema (docs/operations.md).
--
-- Compiled into the responder (build/schema_sqlite.h) and applied at start
-- inside one BEGIN IMMEDIATE transaction when PRAGMA user_version is lower
-- than the version set at the end of this file.  Plain SQL, so the sqlite3 CLI can
-- create a database with it too:
--   sqlite3 var/relayforge.db < schema/relayforge.sql
-- The file is a list of versions, each ending with its PRAGMA
-- user_version = N line.  On a file of an older version the responder runs
-- only the sections newer than it (src/store_sqlite.c splits the text at
-- those lines), so an ALTER TABLE ... ADD COLUMN runs exactly once; the
-- CREATE statements are idempotent (IF NOT EXISTS) anyway.  A version-1
-- file keeps its rows and gains what later versions add.  On a new file
-- (user_version 0) every section runs, as `sqlite3 db < relayforge.sql`
-- does.
-- The responder also sets journal_mode=WAL and, on a new file,
-- auto_vacuum=INCREMENTAL (both outside any transaction, so not here).
--
-- A later version appends its changes below and raises user_version; the
-- responder's RF_SCHEMA_VERSION (src/store_sqlite.c) must be raised with it
-- (open refuses a schema whose user_version differs from it).

-- One row per request that reached the fallback chain (requests refused
-- before it -- 400, 401, 413, 415, the gateway's own 429 -- are not logged).
CREATE TABLE IF NOT EXISTS requests (
	id                 INTEGER PRIMARY KEY,
	request_id         TEXT NOT NULL,
	ts_ms              INTEGER NOT NULL,          -- wall clock at arrival
	endpoint           TEXT NOT NULL,             -- 'chat' | 'stream'
	strategy           TEXT NOT NULL,             -- 'auto' or a provider id
	attempted_provider TEXT,                      -- first provider called
	final_provider     TEXT,                      -- the one that answered / last called
	fallback           INTEGER NOT NULL,          -- 0 | 1
	degraded           INTEGER NOT NULL,          -- 0 | 1
	demo               INTEGER NOT NULL,          -- 0 | 1
	status             TEXT NOT NULL CHECK (status IN ('success', 'error')),
	error_code         TEXT,
	http_status        INTEGER NOT NULL,
	latency_ms         INTEGER NOT NULL,
	ttft_ms            INTEGER,                   -- streams: time to first token
	model              TEXT,
	prompt_chars       INTEGER NOT NULL,
	prompt_tokens      INTEGER,                   -- NULL = unknown
	completion_tokens  INTEGER,                   -- NULL = unknown
	source             TEXT,                      -- metadata.source
	prompt_preview     TEXT,                      -- only with RELAYFORGE_LOG_PROMPTS=preview
	partial_chars      INTEGER NOT NULL DEFAULT 0, -- streams: text sent before a failure
	skipped_chunks     INTEGER NOT NULL DEFAULT 0,
	restarts           INTEGER NOT NULL DEFAULT 0,
	streamed           TEXT                       -- comma list of providers that streamed
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts_ms);
CREATE INDEX IF NOT EXISTS requests_final_provider ON requests (final_provider, id);
-- /api/v1/logs?status=error: failures are few, so a partial index finds a
-- page of them without walking every success.
CREATE INDEX IF NOT EXISTS requests_errors ON requests (id)
	WHERE status = 'error';

-- The attempt trail of a request, in order (seq 0..n-1).
CREATE TABLE IF NOT EXISTS attempts (
	request_id  INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	provider    TEXT NOT NULL,
	outcome     TEXT NOT NULL,                    -- 'ok', an error code, or 'skipped'
	reason      TEXT,                             -- 'unconfigured' | 'cooling_down' | NULL
	http_status INTEGER,
	latency_ms  INTEGER,
	retry       INTEGER NOT NULL DEFAULT 0,       -- n for the n-th retry
	PRIMARY KEY (request_id, seq)
) WITHOUT ROWID;
-- The status endpoint's lastSuccessAt, lastError and "the last attempt
-- failed": the newest ok / failed attempt of a provider is one index probe.
-- A client hang-up (client_closed) is not the provider's failure.
CREATE INDEX IF NOT EXISTS attempts_ok ON attempts (provider, request_id)
	WHERE outcome = 'ok';
CREATE INDEX IF NOT EXISTS attempts_failed ON attempts (provider, request_id)
	WHERE outcome NOT IN ('ok', 'skipped', 'client_closed');

-- Shared per-provider state: cooldowns, failure streaks, last quota seen.
-- Every responder process reads it before routing.
CREATE TABLE IF NOT EXISTS provider_state (
	provider                 TEXT PRIMARY KEY,
	cooldown_until_ms        INTEGER NOT NULL DEFAULT 0,  -- 0 = none
	cooldown_reason          TEXT,                -- an error code, 'failure_threshold', 'quota'
	consecutive_failures     INTEGER NOT NULL DEFAULT 0,
	last_error_code          TEXT,
	last_error_ms            INTEGER,
	last_success_ms          INTEGER,
	quota_remaining_requests INTEGER,             -- NULL = unknown
	quota_remaining_tokens   INTEGER,             -- NULL = unknown
	quota_reset_ms           INTEGER,
	updated_ms               INTEGER
);

-- The per-client rate limit: one counter per client and fixed minute window.
CREATE TABLE IF NOT EXISTS rate_limit (
	client          TEXT NOT NULL,
	window_start_ms INTEGER NOT NULL,
	count           INTEGER NOT NULL,
	PRIMARY KEY (client, window_start_ms)
) WITHOUT ROWID;

-- Usage rollups, kept by the same transaction that logs a request, so
-- /api/v1/usage reads a few thousand rows instead of every request (the
-- 30-day window over a million requests answers in a few milliseconds):
-- usage_minute serves the 1h window (60 s buckets), usage_hour the 24h, 7d
-- and 30d windows (1 h, 6 h and 1 day buckets are whole hours).  One row
-- per period and final provider ('' when none was called); a request
-- counts in the period of its arrival (ts_ms).
--
-- h0..h71 is a histogram of the requests' latency_ms, so percentiles come
-- from summed histograms: bucket b holds exactly b ms for b < 8; above,
-- each power of two [2^e, 2^(e+1)) (e = 3..18) is cut into four equal
-- sub-buckets, b = 8 + 4 (e - 3) + sub; 524288 ms and more also land in
-- h71.  A percentile is reported as the largest value of its bucket, capped
-- by latency_max (h71: latency_max itself): never below the exact
-- nearest-rank value, at most 25% above it, exact under 8 ms.
CREATE TABLE IF NOT EXISTS usage_minute (
	minute_ms         INTEGER NOT NULL,           -- ts_ms - ts_ms % 60000
	provider          TEXT NOT NULL,
	requests          INTEGER NOT NULL,
	successes         INTEGER NOT NULL,
	errors            INTEGER NOT NULL,
	fallbacks         INTEGER NOT NULL,
	latency_sum       INTEGER NOT NULL,
	latency_max       INTEGER NOT NULL DEFAULT 0,
	prompt_tokens     INTEGER NOT NULL,           -- unknown counts as 0
	completion_tokens INTEGER NOT NULL,
	h0 INTEGER NOT NULL DEFAULT 0, h1 INTEGER NOT NULL DEFAULT 0, h2 INTEGER NOT NULL DEFAULT 0, h3 INTEGER NOT NULL DEFAULT 0,
	h4 INTEGER NOT NULL DEFAULT 0, h5 INTEGER NOT NULL DEFAULT 0, h6 INTEGER NOT NULL DEFAULT 0, h7 INTEGER NOT NULL DEFAULT 0,
	h8 INTEGER NOT NULL DEFAULT 0, h9 INTEGER NOT NULL DEFAULT 0, h10 INTEGER NOT NULL DEFAULT 0, h11 INTEGER NOT NULL DEFAULT 0,
	h12 INTEGER NOT NULL DEFAULT 0, h13 INTEGER NOT NULL DEFAULT 0, h14 INTEGER NOT NULL DEFAULT 0, h15 INTEGER NOT NULL DEFAULT 0,
	h16 INTEGER NOT NULL DEFAULT 0, h17 INTEGER NOT NULL DEFAULT 0, h18 INTEGER NOT NULL DEFAULT 0, h19 INTEGER NOT NULL DEFAULT 0,
	h20 INTEGER NOT NULL DEFAULT 0, h21 INTEGER NOT NULL DEFAULT 0, h22 INTEGER NOT NULL DEFAULT 0, h23 INTEGER NOT NULL DEFAULT 0,
	h24 INTEGER NOT NULL DEFAULT 0, h25 INTEGER NOT NULL DEFAULT 0, h26 INTEGER NOT NULL DEFAULT 0, h27 INTEGER NOT NULL DEFAULT 0,
	h28 INTEGER NOT NULL DEFAULT 0, h29 INTEGER NOT NULL DEFAULT 0, h30 INTEGER NOT NULL DEFAULT 0, h31 INTEGER NOT NULL DEFAULT 0,
	h32 INTEGER NOT NULL DEFAULT 0, h33 INTEGER NOT NULL DEFAULT 0, h34 INTEGER NOT NULL DEFAULT 0, h35 INTEGER NOT NULL DEFAULT 0,
	h36 INTEGER NOT NULL DEFAULT 0, h37 INTEGER NOT NULL DEFAULT 0, h38 INTEGER NOT NULL DEFAULT 0, h39 INTEGER NOT NULL DEFAULT 0,
	h40 INTEGER NOT NULL DEFAULT 0, h41 INTEGER NOT NULL DEFAULT 0, h42 INTEGER NOT NULL DEFAULT 0, h43 INTEGER NOT NULL DEFAULT 0,
	h44 INTEGER NOT NULL DEFAULT 0, h45 INTEGER NOT NULL DEFAULT 0, h46 INTEGER NOT NULL DEFAULT 0, h47 INTEGER NOT NULL DEFAULT 0,
	h48 INTEGER NOT NULL DEFAULT 0, h49 INTEGER NOT NULL DEFAULT 0, h50 INTEGER NOT NULL DEFAULT 0, h51 INTEGER NOT NULL DEFAULT 0,
	h52 INTEGER NOT NULL DEFAULT 0, h53 INTEGER NOT NULL DEFAULT 0, h54 INTEGER NOT NULL DEFAULT 0, h55 INTEGER NOT NULL DEFAULT 0,
	h56 INTEGER NOT NULL DEFAULT 0, h57 INTEGER NOT NULL DEFAULT 0, h58 INTEGER NOT NULL DEFAULT 0, h59 INTEGER NOT NULL DEFAULT 0,
	h60 INTEGER NOT NULL DEFAULT 0, h61 INTEGER NOT NULL DEFAULT 0, h62 INTEGER NOT NULL DEFAULT 0, h63 INTEGER NOT NULL DEFAULT 0,
	h64 INTEGER NOT NULL DEFAULT 0, h65 INTEGER NOT NULL DEFAULT 0, h66 INTEGER NOT NULL DEFAULT 0, h67 INTEGER NOT NULL DEFAULT 0,
	h68 INTEGER NOT NULL DEFAULT 0, h69 INTEGER NOT NULL DEFAULT 0, h70 INTEGER NOT NULL DEFAULT 0, h71 INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (minute_ms, provider)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS usage_hour (
	hour_ms           INTEGER NOT NULL,           -- ts_ms - ts_ms % 3600000
	provider          TEXT NOT NULL,
	requests          INTEGER NOT NULL,
	successes         INTEGER NOT NULL,
	errors            INTEGER NOT NULL,
	fallbacks         INTEGER NOT NULL,
	latency_sum       INTEGER NOT NULL,
	latency_max       INTEGER NOT NULL DEFAULT 0,
	prompt_tokens     INTEGER NOT NULL,
	completion_tokens INTEGER NOT NULL,
	h0 INTEGER NOT NULL DEFAULT 0, h1 INTEGER NOT NULL DEFAULT 0, h2 INTEGER NOT NULL DEFAULT 0, h3 INTEGER NOT NULL DEFAULT 0,
	h4 INTEGER NOT NULL DEFAULT 0, h5 INTEGER NOT NULL DEFAULT 0, h6 INTEGER NOT NULL DEFAULT 0, h7 INTEGER NOT NULL DEFAULT 0,
	h8 INTEGER NOT NULL DEFAULT 0, h9 INTEGER NOT NULL DEFAULT 0, h10 INTEGER NOT NULL DEFAULT 0, h11 INTEGER NOT NULL DEFAULT 0,
	h12 INTEGER NOT NULL DEFAULT 0, h13 INTEGER NOT NULL DEFAULT 0, h14 INTEGER NOT NULL DEFAULT 0, h15 INTEGER NOT NULL DEFAULT 0,
	h16 INTEGER NOT NULL DEFAULT 0, h17 INTEGER NOT NULL DEFAULT 0, h18 INTEGER NOT NULL DEFAULT 0, h19 INTEGER NOT NULL DEFAULT 0,
	h20 INTEGER NOT NULL DEFAULT 0, h21 INTEGER NOT NULL DEFAULT 0, h22 INTEGER NOT NULL DEFAULT 0, h23 INTEGER NOT NULL DEFAULT 0,
	h24 INTEGER NOT NULL DEFAULT 0, h25 INTEGER NOT NULL DEFAULT 0, h26 INTEGER NOT NULL DEFAULT 0, h27 INTEGER NOT NULL DEFAULT 0,
	h28 INTEGER NOT NULL DEFAULT 0, h29 INTEGER NOT NULL DEFAULT 0, h30 INTEGER NOT NULL DEFAULT 0, h31 INTEGER NOT NULL DEFAULT 0,
	h32 INTEGER NOT NULL DEFAULT 0, h33 INTEGER NOT NULL DEFAULT 0, h34 INTEGER NOT NULL DEFAULT 0, h35 INTEGER NOT NULL DEFAULT 0,
	h36 INTEGER NOT NULL DEFAULT 0, h37 INTEGER NOT NULL DEFAULT 0, h38 INTEGER NOT NULL DEFAULT 0, h39 INTEGER NOT NULL DEFAULT 0,
	h40 INTEGER NOT NULL DEFAULT 0, h41 INTEGER NOT NULL DEFAULT 0, h42 INTEGER NOT NULL DEFAULT 0, h43 INTEGER NOT NULL DEFAULT 0,
	h44 INTEGER NOT NULL DEFAULT 0, h45 INTEGER NOT NULL DEFAULT 0, h46 INTEGER NOT NULL DEFAULT 0, h47 INTEGER NOT NULL DEFAULT 0,
	h48 INTEGER NOT NULL DEFAULT 0, h49 INTEGER NOT NULL DEFAULT 0, h50 INTEGER NOT NULL DEFAULT 0, h51 INTEGER NOT NULL DEFAULT 0,
	h52 INTEGER NOT NULL DEFAULT 0, h53 INTEGER NOT NULL DEFAULT 0, h54 INTEGER NOT NULL DEFAULT 0, h55 INTEGER NOT NULL DEFAULT 0,
	h56 INTEGER NOT NULL DEFAULT 0, h57 INTEGER NOT NULL DEFAULT 0, h58 INTEGER NOT NULL DEFAULT 0, h59 INTEGER NOT NULL DEFAULT 0,
	h60 INTEGER NOT NULL DEFAULT 0, h61 INTEGER NOT NULL DEFAULT 0, h62 INTEGER NOT NULL DEFAULT 0, h63 INTEGER NOT NULL DEFAULT 0,
	h64 INTEGER NOT NULL DEFAULT 0, h65 INTEGER NOT NULL DEFAULT 0, h66 INTEGER NOT NULL DEFAULT 0, h67 INTEGER NOT NULL DEFAULT 0,
	h68 INTEGER NOT NULL DEFAULT 0, h69 INTEGER NOT NULL DEFAULT 0, h70 INTEGER NOT NULL DEFAULT 0, h71 INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (hour_ms, provider)
) WITHOUT ROWID;

PRAGMA user_version = 1;

-- Version 2: exactly-once replay of the request-log spool (src/spool.c).
-- How far each spool file has been written into requests: the writer
-- moves it in the same transaction as the rows it wrote, so a process that
-- dies between a commit and its own bookkeeping never writes a row twice
-- (client request ids may repeat, so they cannot be the key).  A row goes
-- when its file is removed.
CREATE TABLE IF NOT EXISTS spool_progress (
	spool      TEXT PRIMARY KEY,                  -- the spool file's name
	through    INTEGER NOT NULL,                  -- bytes of it already in requests
	updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

PRAGMA user_version = 2;

-- Version 3: the machine that served each request (RELAYFORGE_NODE), as in
-- the PostgreSQL store that several machines share (schema/relayforge.pg.sql).
-- Rows written before it have none (NULL).
ALTER TABLE requests ADD COLUMN node TEXT;

PRAGMA user_version = 3;

-- Version 4: Prometheus metrics (GET /api/v1/metrics) and cancelled
-- requests.
--
-- Cumulative totals of every metric series that logged requests add to,
-- written by the same transaction as the request rows and rollups and
-- never pruned: a counter never goes backwards, whatever retention deletes
-- or however often a responder restarts.  name is the exposed metric name;
-- labels its label set as exposed (k="v",... escaped, sorted by the
-- metric's own label order), so a series is one row.  A counter keeps its
-- value in count; a histogram its observations in count, their sum in sum
-- (in the unit recorded: milliseconds for durations, tokens for tokens)
-- and, in b0..b15, how many fell in each of its finite buckets (not
-- cumulative; the bounds are src/metrics.c's; above the last bound: count
-- minus the b columns).  The row ('relayforge_store_dropped_rows_total',
-- '') keeps the dropped rows of processes whose gauge rows were pruned.
CREATE TABLE IF NOT EXISTS metric_totals (
	name   TEXT NOT NULL,
	labels TEXT NOT NULL,
	count  INTEGER NOT NULL DEFAULT 0,
	sum    INTEGER NOT NULL DEFAULT 0,
	b0 INTEGER NOT NULL DEFAULT 0,
	b1 INTEGER NOT NULL DEFAULT 0,
	b2 INTEGER NOT NULL DEFAULT 0,
	b3 INTEGER NOT NULL DEFAULT 0,
	b4 INTEGER NOT NULL DEFAULT 0,
	b5 INTEGER NOT NULL DEFAULT 0,
	b6 INTEGER NOT NULL DEFAULT 0,
	b7 INTEGER NOT NULL DEFAULT 0,
	b8 INTEGER NOT NULL DEFAULT 0,
	b9 INTEGER NOT NULL DEFAULT 0,
	b10 INTEGER NOT NULL DEFAULT 0,
	b11 INTEGER NOT NULL DEFAULT 0,
	b12 INTEGER NOT NULL DEFAULT 0,
	b13 INTEGER NOT NULL DEFAULT 0,
	b14 INTEGER NOT NULL DEFAULT 0,
	b15 INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (name, labels)
) WITHOUT ROWID;

-- Each responder process's live gauges, written by the process every few
-- seconds (a heartbeat) and when it opens or ends a stream: /metrics sums
-- the rows of live processes (updated in the last 15 s), so every process
-- answers with the same open streams and queue rows.  dropped_rows is the
-- process's own count since its start, never lowered; the sum over every
-- row (live or not) plus the folded total above is the dropped-rows
-- counter.  Rows not updated for the retention period are folded into
-- metric_totals and deleted by the janitor.
CREATE TABLE IF NOT EXISTS process_gauges (
	process      TEXT PRIMARY KEY,                -- host:pid:start_ms
	open_streams INTEGER NOT NULL,
	queue_rows   INTEGER NOT NULL,
	dropped_rows INTEGER NOT NULL,
	updated_ms   INTEGER NOT NULL
) WITHOUT ROWID;

-- A request whose client hung up (error_code 'client_closed', stored with
-- status 'error') is cancelled: neither a success nor an error.  The
-- rollups count it apart; the rows written before this version counted
-- it in errors, so they are moved over from the requests still on record.
ALTER TABLE usage_minute ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hour ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
UPDATE usage_minute SET cancelled = (SELECT count(*) FROM requests r
	WHERE r.ts_ms >= usage_minute.minute_ms
	AND r.ts_ms < usage_minute.minute_ms + 60000
	AND coalesce(r.final_provider, '') = usage_minute.provider
	AND r.status = 'error' AND r.error_code = 'client_closed')
	WHERE errors > 0;
UPDATE usage_minute SET errors = max(errors - cancelled, 0)
	WHERE cancelled > 0;
UPDATE usage_hour SET cancelled = (SELECT count(*) FROM requests r
	WHERE r.ts_ms >= usage_hour.hour_ms
	AND r.ts_ms < usage_hour.hour_ms + 3600000
	AND coalesce(r.final_provider, '') = usage_hour.provider
	AND r.status = 'error' AND r.error_code = 'client_closed')
	WHERE errors > 0;
UPDATE usage_hour SET errors = max(errors - cancelled, 0)
	WHERE cancelled > 0;
-- /api/v1/logs?status=cancelled reads the partial index of failures too.

PRAGMA user_version = 4;
