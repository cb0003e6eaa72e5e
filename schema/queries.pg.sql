-- RelayForge: ready queries for operators, PostgreSQL store (psql).
--
-- The same questions as schema/queries.sql, for a store on PostgreSQL
-- (RELAYFORGE_DB=postgresql://...), plus one about the machines.
-- Run them all:        psql "$RELAYFORGE_DB" -f schema/queries.pg.sql
-- or paste one into `psql "$RELAYFORGE_DB"`.  They only read (plain
-- snapshots: the gateways never wait for them).  Times are milliseconds
-- since the epoch (UTC); each query shows them as ISO-8601 UTC.  Each
-- query starts with a line "-- name: <name>"
-- (tests/integration/test_two_gateways.py runs every one of them).

-- name: recent_failures
-- The 20 newest requests that failed, the machine that served each, and
-- the provider trail that led there (provider:outcome, in order).  A
-- request whose client hung up (error_code client_closed) is cancelled,
-- not a failure: left out.
SELECT r.id,
       to_char(to_timestamp(r.ts_ms / 1000.0) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at,
       r.node,
       r.endpoint,
       r.final_provider,
       r.error_code,
       r.http_status,
       r.latency_ms,
       (SELECT string_agg(a.provider || ':' || a.outcome, ' > '
                          ORDER BY a.seq)
          FROM attempts AS a WHERE a.request_id = r.id) AS trail
  FROM requests AS r
 WHERE r.status = 'error'
   AND r.error_code IS DISTINCT FROM 'client_closed'
 ORDER BY r.id DESC
 LIMIT 20;

-- name: fallback_rate_per_provider_per_hour
-- Of the requests whose first call went to a provider, how many ended on
-- another one, per hour over the last 24 hours.
SELECT to_char(to_timestamp(ts_ms / 1000) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24":00Z"') AS hour,
       attempted_provider AS provider,
       count(*) AS requests,
       sum(fallback) AS fallbacks,
       round(1.0 * sum(fallback) / count(*), 3) AS fallback_rate
  FROM requests
 WHERE ts_ms >= (extract(epoch FROM now())::bigint - 86400) * 1000
   AND attempted_provider IS NOT NULL
 GROUP BY 1, 2
 ORDER BY 1 DESC, 2;

-- name: slowest_requests
-- The 20 slowest requests of the last 24 hours, with the machine.
SELECT id,
       to_char(to_timestamp(ts_ms / 1000.0) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at,
       node,
       endpoint,
       final_provider,
       CASE WHEN error_code = 'client_closed' THEN 'cancelled'
            ELSE status END AS status,
       latency_ms,
       ttft_ms,
       fallback
  FROM requests
 WHERE ts_ms >= (extract(epoch FROM now())::bigint - 86400) * 1000
 ORDER BY latency_ms DESC, id DESC
 LIMIT 20;

-- name: providers_in_cooldown
-- Providers that every gateway of every machine skips right now, why, and
-- for how long.
SELECT provider,
       cooldown_reason,
       to_char(to_timestamp(cooldown_until_ms / 1000.0) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS cooldown_until,
       (cooldown_until_ms - now.ms + 999) / 1000 AS seconds_left,
       consecutive_failures,
       last_error_code
  FROM provider_state,
       (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
           AS now
 WHERE cooldown_until_ms > now.ms
 ORDER BY cooldown_until_ms DESC;

-- name: tokens_per_day
-- Tokens per UTC day and final provider over the last 30 days, from the
-- hourly rollups (unknown token counts count as 0).
SELECT to_char(to_timestamp(hour_ms / 1000) AT TIME ZONE 'UTC',
               'YYYY-MM-DD') AS day,
       CASE provider WHEN '' THEN '(none)' ELSE provider END AS provider,
       sum(requests) AS requests,
       sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens
  FROM usage_hour
 WHERE hour_ms >= (extract(epoch FROM now())::bigint - 30 * 86400) * 1000
 GROUP BY 1, 2
 ORDER BY 1 DESC, 2;

-- name: requests_per_source
-- Who sends traffic (metadata.source) over the last 7 days; cancelled:
-- requests whose client hung up (neither successes nor errors).
SELECT coalesce(source, '(none)') AS source,
       count(*) AS requests,
       count(*) FILTER (WHERE status = 'error'
                          AND error_code IS DISTINCT FROM 'client_closed')
           AS errors,
       count(*) FILTER (WHERE error_code = 'client_closed') AS cancelled,
       round(avg(latency_ms)) AS avg_latency_ms,
       to_char(to_timestamp(max(ts_ms) / 1000.0) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS last_seen
  FROM requests
 WHERE ts_ms >= (extract(epoch FROM now())::bigint - 7 * 86400) * 1000
 GROUP BY 1
 ORDER BY requests DESC, source;

-- name: requests_per_node
-- How the load spread over the gateway machines in the last hour, and
-- how each fared ('(unknown)': rows written before RELAYFORGE_NODE;
-- cancelled: the client hung up, not an error).
SELECT coalesce(node, '(unknown)') AS node,
       count(*) AS requests,
       count(*) FILTER (WHERE status = 'error'
                          AND error_code IS DISTINCT FROM 'client_closed')
           AS errors,
       count(*) FILTER (WHERE error_code = 'client_closed') AS cancelled,
       round(avg(latency_ms)) AS avg_latency_ms,
       to_char(to_timestamp(max(ts_ms) / 1000.0) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS last_seen
  FROM requests
 WHERE ts_ms >= (extract(epoch FROM now())::bigint - 3600) * 1000
 GROUP BY 1
 ORDER BY requests DESC, node;
