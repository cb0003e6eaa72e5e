/*
 * store: the shared SQLite file (SPEC section 7).  Every responder process
 * and thread opens its own connection (never before a fork); statements are
 * prepared once per connection and kept for its life.  Every write runs in
 * BEGIN IMMEDIATE; WAL, busy_timeout >= 5 s, synchronous=NORMAL.
 * This header speaks in the product's terms -- log a request, set a
 * cooldown, count a client -- never in SQL, so a second backend can sit
 * behind it.  Prefix: rf_store_.
 *
 * Failure contract: functions return 0 on success and -1 on failure, with
 * the reason written to stderr (prefixed by __func__); nothing half-written
 * is left behind (the transaction is rolled back).
 */
#ifndef RF_STORE_H
#define RF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rf_store;

/* Open (creating the file and applying missing migrations from the schema
 * compiled into the binary, safe when several processes start at once).
 * Returns NULL with a reason in err on failure. */
struct rf_store *rf_store_open(const char *path, char *err, size_t errlen);
void rf_store_close(struct rf_store *s); /* NULL is a no-op */

/* One entry of a request's attempt trail. */
struct rf_log_attempt {
	const char *provider;  /* id */
	const char *outcome;   /* "ok", an error code, or "skipped" */
	const char *reason;    /* "unconfigured" | "cooling_down" | NULL */
	int http_status;       /* 0 = none */
	long latency_ms;       /* -1 = none (skipped) */
	int retry;             /* 0 for the first try, n for the n-th retry */
};

/* One request that reached the chain.  Strings may be NULL where noted. */
struct rf_log_entry {
	const char *request_id;
	int64_t ts_ms;               /* wall clock at arrival */
	const char *endpoint;        /* "chat" | "stream" */
	const char *strategy;        /* "auto" or a provider id */
	const char *attempted_provider; /* NULL when none was called */
	const char *final_provider;     /* NULL when none was called */
	bool fallback, degraded, demo;
	bool success;
	const char *error_code;      /* NULL on success; else a code, incl.
	                                "stream_interrupted", "client_closed" */
	int http_status;
	long latency_ms;
	long ttft_ms;                /* -1 = none */
	const char *model;           /* NULL */
	long prompt_chars;
	long prompt_tokens;          /* -1 = unknown */
	long completion_tokens;      /* -1 = unknown */
	const char *source;          /* NULL */
	const char *prompt_preview;  /* NULL unless RELAYFORGE_LOG_PROMPTS=preview */
	long partial_chars;          /* streams: text sent before a failure, else 0 */
	int skipped_chunks;
	int restarts;
	const char *streamed;        /* comma list of providers that streamed, NULL */
	const struct rf_log_attempt *attempts;
	size_t nattempts;
};

/* Write the request row and its attempt rows in one transaction. */
int rf_store_log_request(struct rf_store *s, const struct rf_log_entry *e);

/* Per-provider shared state, read before routing. */
struct rf_provider_state {
	int64_t cooldown_until_ms;   /* 0 = none */
	int consecutive_failures;
};

/* Fill st for the n provider ids (zeroed for unknown ones). */
int rf_store_provider_states(struct rf_store *s, const char *const *ids,
    size_t n, struct rf_provider_state *st);

/* A failed attempt: bump the consecutive-failure count and remember the
 * error; when cooldown_until_ms > 0 set that cooldown; else when the count
 * reaches threshold set a cooldown until now_ms + cooldown_ms. */
int rf_store_provider_failed(struct rf_store *s, const char *id,
    const char *error_code, int64_t now_ms, int64_t cooldown_until_ms,
    int threshold, int64_t cooldown_ms);
/* A successful attempt: clear failures and cooldown, remember the time. */
int rf_store_provider_ok(struct rf_store *s, const char *id, int64_t now_ms);
/* Quota figures from rate-limit headers (-1 = unknown); when a remaining
 * figure is 0 and reset_ms > now_ms, the provider cools down until reset_ms. */
int rf_store_provider_quota(struct rf_store *s, const char *id,
    long remaining_requests, long remaining_tokens, int64_t reset_ms,
    int64_t now_ms);

/* The per-client rate limit, shared by every process: count one request of
 * client in the current minute.  Returns 1 when allowed, 0 when over limit
 * (with *retry_after_s set, >= 1), -1 on a store error (the caller lets the
 * request through). */
int rf_store_rate_hit(struct rf_store *s, const char *client, int limit,
    int64_t now_ms, int *retry_after_s);

/* 0 when the connection answers a trivial query. */
int rf_store_ping(struct rf_store *s);

#endif
