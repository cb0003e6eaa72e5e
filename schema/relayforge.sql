-- RelayForge store schema (SPEC section 7).
--
-- Compiled into the responder (build/schema.h) and applied at start inside
-- one BEGIN IMMEDIATE transaction when PRAGMA user_version is lower than the
-- version set at the end of this file.  Plain SQL, so the sqlite3 CLI can
-- create a database with it too (version 1 is idempotent):
--   sqlite3 var/relayforge.db < schema/relayforge.sql
-- The responder also sets journal_mode=WAL and, on a new file,
-- auto_vacuum=INCREMENTAL (both outside any transaction, so not here).
--
-- A later version appends its changes below and raises user_version; the
-- responder's RF_SCHEMA_VERSION (src/store.c) must be raised with it (open
-- refuses a schema whose user_version differs from it).

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

-- Per-minute rollup per final provider ('' when none was called), kept by the
-- same transaction that logs the request, so usage over long windows reads
-- a few thousand rows instead of every request.
CREATE TABLE IF NOT EXISTS usage_minute (
	minute_ms         INTEGER NOT NULL,           -- ts_ms - ts_ms % 60000
	provider          TEXT NOT NULL,
	requests          INTEGER NOT NULL,
	successes         INTEGER NOT NULL,
	errors            INTEGER NOT NULL,
	fallbacks         INTEGER NOT NULL,
	latency_sum       INTEGER NOT NULL,
	prompt_tokens     INTEGER NOT NULL,           -- unknown counts as 0
	completion_tokens INTEGER NOT NULL,
	PRIMARY KEY (minute_ms, provider)
) WITHOUT ROWID;

PRAGMA user_version = 1;
