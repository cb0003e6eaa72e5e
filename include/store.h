/*
 * store: the shared state of every responder process and machine (docs/operations.md): the request log with its attempt trail and usage
 * rollups,
 * per-provider cooldowns, failure streaks and quota, the per-client rate
 * limit, and the reads behind status, logs and usage.
 *
 * This header speaks in the product's terms -- log a request, persist a
 * cooldown, count a client -- never in a query language.  The backend is
 * chosen by the form of RELAYFORGE_DB: a file path is the embedded SQLite
 * file (src/store_sqlite.c); a postgresql:// or postgres:// URI is the
 * PostgreSQL store of docs/several-machines.md (src/store_pg.c), shared by every
 * gateway machine.  A connection to a server that breaks is opened again
 * with backoff (100 ms doubling to 5 s), by one caller at a time and never
 * on a call with a budget; meanwhile calls fail (-1) at once.
 * Each process opens one pool of connections (never before a fork),
 * shared by its threads: an operation borrows one connection for its own
 * length, and every operation is one transaction -- a write is all or
 * nothing, a read is one consistent snapshot.
 *
 * The store decides nothing: cooldown deadlines, the failure threshold
 * and quota rules are the engine's (src/chain.c); the store persists what
 * it is told, atomically across processes.  Prefix: rf_store_.
 *
 * Waiting: a call waits for a pooled connection and, inside the engine, for
 * another writer's lock.  By default a connection is waited for at most
 * RF_STORE_ACQUIRE_MS and the lock for the backend's busy timeout (10 s for
 * SQLite), which background writers need; a request's thread asks for a
 * short budget instead (rf_store_budget) and, when the store does not
 * answer within it, decides from what its process knows (src/pstate.c,
 * src/ratelimit.c).
 *
 * Failure contract: functions return 0 on success and -1 on failure, with
 * the reason written to stderr (prefixed by the function) -- except a call
 * that ran out of a short budget, which fails quietly: its caller has a
 * fallback and says what it does; nothing half-written is left behind
 * (the transaction is rolled back).
 */
#ifndef RF_STORE_H
#define RF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rf_store;

/* Open the store named by db (a RELAYFORGE_DB value), shared by every
 * thread of a process: each operation below borrows one of max_conns
 * connections (all opened here, each with its prepared statements) for
 * just that operation, and waits when all are busy.  The first connection
 * creates the store and applies missing migrations from the schema
 * compiled into the binary (safe when several processes start at once).
 * Returns NULL with a reason in err on failure -- for a URI the reason
 * never contains db (it may hold a password); a backend that is not built
 * in says "PostgreSQL store is not built into this binary". */
struct rf_store *rf_store_open_pool(const char *db, int max_conns,
    char *err, size_t errlen);
/* A pool of one. */
struct rf_store *rf_store_open(const char *db, char *err, size_t errlen);
void rf_store_close(struct rf_store *s); /* NULL is a no-op */
/* db as it may be printed: a URI's password replaced by "***" (and a URI
 * whose parameters might carry one not printed at all); a path as is. */
void rf_store_redact(const char *db, char *out, size_t len);

/* This machine's name (RELAYFORGE_NODE), recorded in every request row
 * written with a NULL node: [A-Za-z0-9._-]{1,64}.  Until set, the host
 * name (other characters as '_', cut to 64).  rf_store_set_node returns
 * -1 (nothing changed) for a name outside that form; call it at start,
 * before the threads. */
#define RF_STORE_NODE_MAX 64
int rf_store_set_node(const char *node);
const char *rf_store_node(void);
/* true when s is a valid node name. */
bool rf_store_node_valid(const char *s);

/* The longest a call waits for a free connection without a budget. */
#define RF_STORE_ACQUIRE_MS 2000
/* The budget of a store call on a request's path (rate limit, provider
 * state): a few milliseconds, then the caller's fallback. */
#define RF_STORE_HOT_MS 5

/* Set the budget of this thread's store calls: each later call (until
 * the next rf_store_budget) waits at most ms in all -- for a connection
 * and for another writer's lock -- counted from its start, then fails
 * with -1 and nothing written.  ms <= 0 restores the defaults.  Returns
 * the previous budget, so a caller brackets its calls:
 *     int was = rf_store_budget(RF_STORE_HOT_MS);
 *     ... store calls ...
 *     rf_store_budget(was); */
int rf_store_budget(int ms);

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
	const char *finish_reason;   /* NULL; rendered in the meta, not stored */
	long prompt_chars;
	long prompt_tokens;          /* -1 = unknown */
	long completion_tokens;      /* -1 = unknown */
	const char *source;          /* NULL */
	const char *prompt_preview;  /* NULL unless RELAYFORGE_LOG_PROMPTS=preview */
	long partial_chars;          /* streams: text sent before a failure, else 0 */
	int skipped_chunks;
	int restarts;
	const char *streamed;        /* comma list of providers that streamed, NULL */
	const char *node;            /* the gateway machine that served it
	                                (RELAYFORGE_NODE); NULL when writing =
	                                this process's (rf_store_node) */
	const struct rf_log_attempt *attempts;
	size_t nattempts;
};

/* A request's status, the one meaning every number uses (usage totals and
 * timeseries, the /logs filter and items, metrics): "success"; "cancelled"
 * when the client hung up (error_code "client_closed": neither a success
 * nor an error of the gateway or of a provider); else "error". */
const char *rf_store_entry_status(const struct rf_log_entry *e);
#define RF_STORE_CANCELLED_CODE "client_closed"

/* Write the request row and its attempt rows in one transaction (with its
 * usage rollups and its metric totals: see rf_store_metrics). */
int rf_store_log_request(struct rf_store *s, const struct rf_log_entry *e);
/* n requests in one transaction (group commit): all written, or none. */
int rf_store_log_requests(struct rf_store *s, const struct rf_log_entry *const *e,
    size_t n);

/* ---- the request-log spool (src/spool.c, src/logq.c) ---- */

/* Write n rows read from the spool file named spool, taken from its bytes
 * [from, through), and record that the file is in the store up to through
 * -- all in one transaction, so a row is never written twice.  When the
 * store already has the file up to through or further, nothing is written
 * (a repeated batch) and 0 is returned.  A row the store refuses (it
 * breaks a constraint of the schema) is left out, logged with its request
 * id and counted in *refused; the others are written.  n may be 0 (moves
 * the progress only).  0, or -1 when the store failed: nothing written,
 * the rows still wait. */
int rf_store_log_spooled(struct rf_store *s, const char *spool, int64_t from,
    int64_t through, const struct rf_log_entry *const *e, size_t n,
    long *refused);
/* How far the spool file named spool is in the store (0 when it has no
 * record of it). */
int rf_store_spool_progress(struct rf_store *s, const char *spool,
    int64_t *through);
/* Forget a spool file's progress (after the file is removed). */
int rf_store_spool_forget(struct rf_store *s, const char *spool);

/* 0 when the store takes writes now: the write lock is taken and given
 * back at once, waiting for it at most timeout_ms.  -1 with a short reason
 * in why (an engine message, never a password; nothing is logged: health
 * checks poll this). */
int rf_store_writable(struct rf_store *s, int timeout_ms, char *why,
    size_t whylen);

/* Per-provider shared state, read before routing. */
struct rf_provider_state {
	int64_t cooldown_until_ms;   /* 0 = none */
	int consecutive_failures;
};

/* Fill st for the n provider ids (zeroed for unknown ones). */
int rf_store_provider_states(struct rf_store *s, const char *const *ids,
    size_t n, struct rf_provider_state *st);

/* A failed attempt: bump the shared consecutive-failure count (atomically
 * across processes), remember error_code at now_ms, and when
 * cooldown_until_ms > 0 persist that cooldown (error_code as its reason)
 * -- a later deadline always wins over a stored one, an earlier one never
 * shortens it.  *failures (may be NULL) gets the new count, 0 on failure:
 * the engine applies its failure threshold to it. */
int rf_store_provider_failed(struct rf_store *s, const char *id,
    const char *error_code, int64_t now_ms, int64_t cooldown_until_ms,
    int *failures);
/* The same for n >= 1 failures at once (a process that could not write
 * them when they happened): the count grows by n. */
int rf_store_provider_failures(struct rf_store *s, const char *id, int n,
    const char *error_code, int64_t now_ms, int64_t cooldown_until_ms,
    int *failures);
/* Persist a cooldown until until_ms with its reason ("failure_threshold",
 * "quota", ...) when it ends later than the stored one; an earlier or
 * equal one changes nothing, and until_ms <= 0 is a no-op. */
int rf_store_provider_cooldown(struct rf_store *s, const char *id,
    int64_t until_ms, const char *reason);
/* A successful attempt: clear failures and cooldown, remember the time. */
int rf_store_provider_ok(struct rf_store *s, const char *id, int64_t now_ms);
/* Record the quota figures of rate-limit headers (-1 = unknown; reset_ms
 * 0 = unknown) as the provider's latest snapshot.  Nothing else: whether
 * they call for a cooldown is the engine's decision. */
int rf_store_provider_quota(struct rf_store *s, const char *id,
    long remaining_requests, long remaining_tokens, int64_t reset_ms,
    int64_t now_ms);

/* The per-client rate limit's shared count: add hits (>= 1) requests of
 * client to the fixed one-minute window of now_ms (older windows of the
 * client are deleted).  Returns the window's count including them, or -1
 * on a store error (nothing counted).  The verdict and Retry-After are
 * src/ratelimit.c's. */
long rf_store_rate_count(struct rf_store *s, const char *client, int hits,
    int64_t now_ms);

/* 0 when the store answers a trivial query (on a borrowed connection). */
int rf_store_ping(struct rf_store *s);

/* ---- observability: status, logs, usage (read-only snapshots) ---- */

/* One provider as the status endpoint sees it.  Times are wall-clock ms,
 * 0 = never; figures -1 = unknown / none. */
struct rf_provider_report {
	int64_t cooldown_until_ms;     /* 0 = none (may lie in the past) */
	int consecutive_failures;
	char last_error_code[48];      /* "" = none */
	int64_t last_error_ms;         /* the later of the shared state and
	                                  the newest failed attempt's request */
	int64_t last_success_ms;       /* likewise for ok attempts */
	long quota_remaining_requests; /* -1 = unknown */
	long quota_remaining_tokens;   /* -1 = unknown */
	int64_t quota_reset_ms;        /* 0 = unknown */
	/* The provider's own calls (attempts; skipped ones and client
	 * hang-ups do not count) of requests that arrived at since_ms or
	 * later. */
	long requests, successes, failures;
	long avg_latency_ms;           /* rounded; -1 = no call */
	long p95_latency_ms;           /* nearest rank, exact; -1 = no call */
	int last_ok;                   /* newest call ever: 1 ok, 0 failed,
	                                  -1 never called */
};

/* Fill out[i] for the n provider ids, from one consistent snapshot. */
int rf_store_provider_reports(struct rf_store *s, const char *const *ids,
    size_t n, int64_t since_ms, struct rf_provider_report *out);

#define RF_LOG_PAGE_MAX 200

/* Which logged requests to read: newest first. */
struct rf_log_query {
	int limit;             /* 1..RF_LOG_PAGE_MAX */
	int64_t before_id;     /* only ids below it; 0 = from the newest */
	const char *provider;  /* final provider; NULL = any */
	const char *status;    /* "success" | "error" | "cancelled" | NULL =
	                          any (rf_store_entry_status) */
	const char *endpoint;  /* "chat" | "stream" | NULL = any */
};

/* A logged request as read back: the row id and the entry it was logged
 * from (every string and the attempts belong to the page; absent values
 * are NULL / -1 as in struct rf_log_entry). */
struct rf_log_item {
	int64_t id;
	struct rf_log_entry e;
};

struct rf_log_page {
	struct rf_log_item *items; /* newest first */
	size_t nitems;
	bool more;                 /* older rows match the query too */
	void *mem;                 /* private: the strings and attempts */
};

/* Read one page (one query for the rows, one for their attempts).  On -1
 * the page is empty.  Free with rf_store_log_page_free (NULL-safe, and
 * safe on a zeroed or failed page). */
int rf_store_logs(struct rf_store *s, const struct rf_log_query *q,
    struct rf_log_page *page);
void rf_store_log_page_free(struct rf_log_page *page);

/* Usage figures of a set of requests.  Latency percentiles come from
 * histograms: the largest value of the nearest-rank bucket, capped by the
 * largest latency seen -- at most 25% above the exact figure, exact under
 * 8 ms.  -1 = no request. */
struct rf_usage_figures {
	/* requests = successes + errors + cancelled */
	int64_t requests, successes, errors, cancelled, fallbacks;
	int64_t latency_sum, latency_max;
	long p50_ms, p95_ms, p99_ms;
	int64_t prompt_tokens, completion_tokens; /* unknown counts as 0 */
};

/* One final provider of the window. */
struct rf_usage_provider {
	char provider[32];     /* "" = requests that called no provider */
	int64_t requests, errors, cancelled, latency_sum;
};

struct rf_usage_report {
	int64_t from_ms, to_ms, bucket_ms;
	struct rf_usage_figures totals;
	struct rf_usage_figures *buckets;   /* (to - from) / bucket, oldest
	                                       first, zero-filled */
	size_t nbuckets;
	struct rf_usage_provider *providers; /* most requests first */
	size_t nproviders;
};

/* Aggregate the requests that arrived in [from_ms, to_ms) into buckets of
 * bucket_ms.  from_ms and bucket_ms must be whole minutes (whole hours
 * read the hourly rollups), at most 1440 buckets.  Free with
 * rf_store_usage_free (NULL-safe; safe after a failure). */
int rf_store_usage(struct rf_store *s, int64_t from_ms, int64_t to_ms,
    int64_t bucket_ms, struct rf_usage_report *out);
void rf_store_usage_free(struct rf_usage_report *r);

/* ---- moving a store ---- */

/* Copy every request row of from (with its attempts; rollups are counted
 * again as they are written) into to, oldest first, one transaction per
 * page of RF_LOG_PAGE_MAX rows.  to must have no request row: -1 with a
 * reason in err, nothing written, when it has (a copy is never merged
 * twice).  Provider state and rate-limit counters are not copied: they
 * are minutes old at most.  *rows gets how many were copied (also after a
 * failure: the rows written so far stay). */
int rf_store_copy(struct rf_store *from, struct rf_store *to, long *rows,
    char *err, size_t errlen);
/* ---- metrics (GET /api/v1/metrics, docs/operations.md) ----
 * Every logged request adds to cumulative metric series (src/metrics.c
 * says which) in the transaction that writes its row, and they are never
 * pruned.  Each responder process also publishes its live gauges; a read
 * sums those of the processes alive now. */

/* Finite buckets a stored histogram may have. */
#define RF_METRIC_BUCKETS 16

/* One metric series: a counter's value, or a histogram's totals. */
struct rf_metric_row {
	char name[64];                 /* as exposed */
	char labels[256];              /* k="v",... as exposed */
	int64_t count;                 /* counter value, or observations */
	int64_t sum;                   /* histograms: in the recorded unit */
	int64_t b[RF_METRIC_BUCKETS];  /* observations per finite bucket,
	                                  not cumulative */
};

/* One process's live gauges. */
struct rf_process_gauges {
	int64_t open_streams;   /* event streams being answered now */
	int64_t queue_rows;     /* log rows waiting in its spool */
	int64_t dropped_rows;   /* log rows it dropped since its start */
};

/* A provider's state as the gauges show it. */
struct rf_metrics_provider {
	int64_t cooldown_until_ms;   /* 0 = none (may lie in the past) */
	long quota_remaining_requests; /* -1 = unknown */
	long quota_remaining_tokens;   /* -1 = unknown */
};

/* One consistent snapshot of everything /metrics shows. */
struct rf_metrics_snapshot {
	struct rf_metric_row *rows;    /* every series, by name then labels */
	size_t nrows;
	struct rf_process_gauges live; /* summed over live processes (their
	                                  dropped_rows: see dropped_rows) */
	int64_t live_processes;        /* processes that reported lately */
	int64_t dropped_rows;          /* every process's, ever */
	struct rf_metrics_provider *providers; /* one per id asked for */
	size_t nproviders;
	size_t cap;                    /* private: capacity of rows */
};

/* Read the snapshot: every series, the gauges of the processes whose
 * last report is at live_since_ms or later, and the state of the n
 * provider ids.  Free with rf_store_metrics_free (NULL-safe; safe after a
 * failure). */
int rf_store_metrics(struct rf_store *s, const char *const *ids, size_t n,
    int64_t live_since_ms, struct rf_metrics_snapshot *out);
void rf_store_metrics_free(struct rf_metrics_snapshot *m);

/* Record this process's gauges (process: a name unique to it among every
 * process that ever shared the store, e.g. host:pid:start) as of now_ms.
 * dropped_rows never lowers the stored figure. */
int rf_store_gauges_publish(struct rf_store *s, const char *process,
    const struct rf_process_gauges *g, int64_t now_ms);

/* ---- retention ---- */

/* Delete up to batch of the oldest requests that arrived before
 * older_than_ms (their attempts go with them), up to batch usage rollup
 * rows of each resolution whose period ended by then, and the rate-limit
 * counters of past minutes; the gauge rows of processes silent since
 * before older_than_ms go too, their dropped rows kept in the total.
 * Metric totals are never deleted.  One short write transaction.  Returns the
 * number of requests and rollup rows deleted (call again while it is
 * >= batch), or -1.
 * Intended use: a background thread, every minute,
 *   while (rf_store_prune(s, now - days * 86400000, 500) >= 500)
 *       sleep ~50 ms;
 *   rf_store_maintain(s); */
int rf_store_prune(struct rf_store *s, int64_t older_than_ms, int batch);
/* Tidy the store in one bounded step.  SQLite: give free pages back to
 * the file system (incremental vacuum, a bounded number of pages per call)
 * and checkpoint the WAL without waiting for readers (PASSIVE;
 * journal_size_limit then caps the WAL file). */
int rf_store_maintain(struct rf_store *s);

#endif
