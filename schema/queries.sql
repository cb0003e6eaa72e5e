-- RelayForge: ready queries for operators (sqlite3 CLI).
--
-- Run them all:        sqlite3 -header -column var/relayforge.db < schema/queries.sql
-- or copy one query into `sqlite3 var/relayforge.db`.  They only read, so
-- they are safe on a live file (WAL: readers never block the responders).
-- Times are stored as milliseconds since the epoch (UTC); each query shows
-- them as ISO-8601 UTC.  Each query starts with a line "-- name: <name>"
-- (tests/integration/test_observe.py runs every one of them).

-- name: recent_failures
-- The 20 newest requests that failed, with the provider trail that led
-- there (provider:outcome, in order).  A request whose client hung up
-- (error_code client_closed) is cancelled, not a failure: left out.
SELECT r.id,
       strftime('%Y-%m-%dT%H:%M:%fZ', r.ts_ms / 1000.0, 'unixepoch') AS at,
       r.endpoint,
       r.final_provider,
       r.error_code,
       r.http_status,
       r.latency_ms,
       (SELECT group_concat(a.provider || ':' || a.outcome, ' > ')
          FROM (SELECT provider, outcome FROM attempts
                 WHERE request_id = r.id ORDER BY seq) AS a) AS trail
  FROM requests AS r
 WHERE r.status = 'error' AND r.error_code IS NOT 'client_closed'
 ORDER BY r.id DESC
 LIMIT 20;

-- name: fallback_rate_per_provider_per_hour
-- Of the requests whose first call went to a provider, how many ended on
-- another one, per hour over the last 24 hours.  A high rate means the
-- head of the chain is failing (rate limits, outages).
SELECT strftime('%Y-%m-%dT%H:00Z', ts_ms / 1000, 'unixepoch') AS hour,
       attempted_provider AS provider,
       count(*) AS requests,
       sum(fallback) AS fallbacks,
       round(1.0 * sum(fallback) / count(*), 3) AS fallback_rate
  FROM requests
 WHERE ts_ms >= (unixepoch('now') - 86400) * 1000
   AND attempted_provider IS NOT NULL
 GROUP BY hour, provider
 ORDER BY hour DESC, provider;

-- name: slowest_requests
-- The 20 slowest requests of the last 24 hours (latency is the whole
-- request, all tiers included; ttft_ms is a stream's first token).
SELECT id,
       strftime('%Y-%m-%dT%H:%M:%fZ', ts_ms / 1000.0, 'unixepoch') AS at,
       endpoint,
       final_provider,
       CASE WHEN error_code = 'client_closed' THEN 'cancelled'
            ELSE status END AS status,
       latency_ms,
       ttft_ms,
       fallback
  FROM requests
 WHERE ts_ms >= (unixepoch('now') - 86400) * 1000
 ORDER BY latency_ms DESC, id DESC
 LIMIT 20;

-- name: providers_in_cooldown
-- Providers that every responder skips right now, why, and for how long
-- (now in milliseconds from julianday, which keeps the fraction).
SELECT provider,
       cooldown_reason,
       strftime('%Y-%m-%dT%H:%M:%fZ', cooldown_until_ms / 1000.0, 'unixepoch')
           AS cooldown_until,
       (cooldown_until_ms - now.ms + 999) / 1000 AS seconds_left,
       consecutive_failures,
       last_error_code
  FROM provider_state,
       (SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
            AS ms) AS now
 WHERE cooldown_until_ms > now.ms
 ORDER BY cooldown_until_ms DESC;

-- name: tokens_per_day
-- Tokens per UTC day and final provider over the last 30 days, from the
-- hourly rollups (unknown token counts count as 0).
SELECT date(hour_ms / 1000, 'unixepoch') AS day,
       CASE provider WHEN '' THEN '(none)' ELSE provider END AS provider,
       sum(requests) AS requests,
       sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens
  FROM usage_hour
 WHERE hour_ms >= (unixepoch('now') - 30 * 86400) * 1000
 GROUP BY day, provider
 ORDER BY day DESC, provider;

-- name: requests_per_source
-- Who sends traffic (metadata.source) over the last 7 days; cancelled:
-- requests whose client hung up (neither successes nor errors).
SELECT coalesce(source, '(none)') AS source,
       count(*) AS requests,
       sum(status = 'error' AND error_code IS NOT 'client_closed') AS errors,
       sum(error_code IS 'client_closed') AS cancelled,
       round(avg(latency_ms)) AS avg_latency_ms,
       strftime('%Y-%m-%dT%H:%M:%fZ', max(ts_ms) / 1000.0, 'unixepoch')
           AS last_seen
  FROM requests
 WHERE ts_ms >= (unixepoch('now') - 7 * 86400) * 1000
 GROUP BY 1
 ORDER BY requests DESC, source;
