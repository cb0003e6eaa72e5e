/*
 * store_backend: the seam between the store's product API (store.h, the
 * pool in src/store.c) and one database engine (src/store_sqlite.c,
 * src/store_pg.c).
 * Only src/store.c and the backends include this header.
 *
 * A backend exports one const struct rf_store_ops filled with designated
 * initialisers.  Every slot is one product operation on one connection,
 * run in one transaction of its own (writes all-or-nothing, reads one
 * consistent snapshot).  A backend decides nothing the product cares
 * about -- no cooldown, no rate-limit verdict, no percentile: it persists
 * what it is told and reads back what it holds.  store.c checks the
 * arguments the API documents (page limits, usage windows, batch sizes)
 * before it calls a slot; a connection is used by one thread at a time.
 *
 * Every slot returns 0 on success and -1 on failure (with the reason on
 * stderr through the log module: the function and the engine's message,
 * never a value that may hold a prompt or a password) unless its comment
 * says otherwise.
 */
#ifndef RF_STORE_BACKEND_H
#define RF_STORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "store.h"

/* One open backend connection, defined by each backend. */
struct rf_store_conn;

/* The rollup table a usage read walks. */
enum rf_store_rollup {
	RF_ROLLUP_MINUTE,
	RF_ROLLUP_HOUR
};

/* A batch's usage rollup rows, one per period (of period_ms) and final
 * provider ("" when none was called), summed from its requests as
 * rf_store_entry_status counts them: a backend writes one upsert per row
 * of it, not one per request.  Providers are borrowed from the entries.
 * Zero-initialise, set period_ms; n = 0 empties it for the next batch. */
struct rf_store_rollups {
	int64_t period_ms;
	struct rf_hist_row *v;
	size_t n, cap;
};

/* Count e in its row: 0, or -1 out of memory (nothing counted). */
int rf_store_rollups_add(struct rf_store_rollups *r,
    const struct rf_log_entry *e);
/* Sort the rows by (period, provider): two machines' writers take the
 * rows' locks in the same order. */
void rf_store_rollups_sort(struct rf_store_rollups *r);
void rf_store_rollups_free(struct rf_store_rollups *r);

/* The newest ok or failed call of one provider, as provider_reports reads
 * it: its request's row id, the attempt's seq and the request's arrival
 * (rid 0 = none); code is a failure's outcome. */
struct rf_store_last_call {
	int64_t rid, seq, ts_ms;
	char code[48];
};

struct rf_store_ops {
	/* For messages: "SQLite". */
	const char *name;
	/* Open one connection to db (the RELAYFORGE_DB value), creating and
	 * migrating the store if needed (safe when several processes start
	 * at once).  NULL with a reason in err; the reason may name db only
	 * when db holds no secret (a path). */
	struct rf_store_conn *(*open)(const char *db, char *err,
	    size_t errlen);
	/* Release everything of c; NULL is a no-op. */
	void (*close)(struct rf_store_conn *c);
	/* For a server reached over a network (NULL for an embedded file):
	 * broken says, without a round trip, that c lost its server (a
	 * failed statement showed it, or a statement was given up), and
	 * reset connects c again with its prepared statements (0, or -1
	 * with a reason in err that never holds a password; c stays
	 * broken).  store.c calls reset with backoff, one caller at a time,
	 * never on a call with a budget. */
	bool (*broken)(struct rf_store_conn *c);
	int (*reset)(struct rf_store_conn *c, char *err, size_t errlen);

	/* Write n requests with their attempt rows, usage rollups (the
	 * latency bucket from rf_hist_bucket; a cancelled request --
	 * rf_store_entry_status -- counts in cancelled, not errors) and
	 * metric totals (the series rf_metrics_acc_add gives, summed over the
	 * batch, added to metric_totals) in one transaction. */
	int (*log_requests)(struct rf_store_conn *c,
	    const struct rf_log_entry *const *e, size_t n);

	/* rf_store_log_spooled: in one transaction, unless the stored
	 * progress of spool is through or more (then nothing), write the n
	 * rows (as log_requests, metric totals included) and set the
	 * progress to through.  careful false: one plain batch, returning 1
	 * (all rolled back) when the engine refuses a row as invalid;
	 * careful true: each row under its own savepoint, a refused row left
	 * out alone (logged, counted in *refused, not in the metric totals).
	 * -1 (all rolled back) for any other failure.  store.c tries plain
	 * first and careful only after a 1. */
	int (*log_spooled)(struct rf_store_conn *c, const char *spool,
	    int64_t from, int64_t through, const struct rf_log_entry *const *e,
	    size_t n, bool careful, long *refused);
	/* The stored progress of spool, 0 when none. */
	int (*spool_progress)(struct rf_store_conn *c, const char *spool,
	    int64_t *through);
	/* Delete the progress of spool (none: 0). */
	int (*spool_forget)(struct rf_store_conn *c, const char *spool);
	/* Take the write lock and give it back, waiting at most timeout_ms
	 * for it: 0, or -1 with the engine's reason in why (not logged). */
	int (*writable)(struct rf_store_conn *c, int timeout_ms, char *why,
	    size_t whylen);

	/* Read the shared state of n providers in one snapshot; zeroes for
	 * a provider without a row. */
	int (*provider_states)(struct rf_store_conn *c, const char *const *ids,
	    size_t n, struct rf_provider_state *st);
	/* Add n (>= 1) to the consecutive-failure count, remember error_code at
	 * now_ms and, when until_ms is later than the stored cooldown, store
	 * it with error_code as its reason.  *failures gets the new count. */
	int (*provider_failed)(struct rf_store_conn *c, const char *id, int n,
	    const char *error_code, int64_t now_ms, int64_t until_ms,
	    int *failures);
	/* Clear count and cooldown; remember now_ms as the last success. */
	int (*provider_ok)(struct rf_store_conn *c, const char *id,
	    int64_t now_ms);
	/* Store until_ms (> 0) with its reason when it is later than the
	 * stored cooldown; an earlier one changes nothing. */
	int (*provider_cooldown)(struct rf_store_conn *c, const char *id,
	    int64_t until_ms, const char *reason);
	/* Record a quota snapshot, nothing else (remaining figures -1 and
	 * reset_ms 0 are unknown: stored as none). */
	int (*provider_quota)(struct rf_store_conn *c, const char *id,
	    long remaining_requests, long remaining_tokens, int64_t reset_ms,
	    int64_t now_ms);

	/* Count hits (>= 1) of client in the window starting at window_ms
	 * and delete the client's counters of earlier windows.  Returns the
	 * window's count including these hits, or -1. */
	long (*rate_count)(struct rf_store_conn *c, const char *client,
	    int hits, int64_t window_ms);
	/* 0 when the connection answers a trivial query. */
	int (*ping)(struct rf_store_conn *c);

	/* Fill the rows of out (initialised by store.c) for the n ids:
	 * shared state, the window's calls since since_ms, and the newest
	 * ok / failed call merged by rf_store_report_merge_last. */
	int (*provider_reports)(struct rf_store_conn *c,
	    const char *const *ids, size_t n, int64_t since_ms,
	    struct rf_provider_report *out);
	/* Read one page of q (limit already checked) into page, whose
	 * items array holds q->limit entries: rows newest first through
	 * rf_store_page_text, page->more when one more row matches, then
	 * every item's attempts through rf_store_page_attempt.  q->status
	 * follows rf_store_entry_status: "error" leaves out the cancelled
	 * (error_code client_closed), "cancelled" keeps only them. */
	int (*logs)(struct rf_store_conn *c, const struct rf_log_query *q,
	    struct rf_log_page *page);
	/* Fold the rows of the rollup table in [r->from_ms, r->to_ms), in
	 * period order, into r (buckets allocated and initialised) with
	 * rf_hist_fold_* (each row with its cancelled count). */
	int (*usage)(struct rf_store_conn *c, enum rf_store_rollup table,
	    struct rf_usage_report *r);

	/* rf_store_prune's work (batch >= 1): the number of requests and
	 * rollup rows deleted, or -1.  Also, in the same transaction: add the
	 * dropped_rows of process_gauges rows updated before older_than_ms
	 * to the metric_totals row RF_METRICS_DROPPED_NAME (labels ''), then
	 * delete those gauge rows.  metric_totals is never deleted from. */
	int (*prune)(struct rf_store_conn *c, int64_t older_than_ms,
	    int batch);
	/* Give free space back and tidy the journal, a bounded amount per
	 * call. */
	int (*maintain)(struct rf_store_conn *c);

	/* ---- added for metrics (schema version 3) ---- */

	/* rf_store_metrics, in one snapshot: every metric_totals row ordered
	 * by name, labels, each through rf_store_metrics_row; the sums of
	 * open_streams and queue_rows over process_gauges rows with
	 * updated_ms >= live_since_ms, and their count; dropped_rows: the sum
	 * of dropped_rows over every process_gauges row plus the count of the
	 * metric_totals row RF_METRICS_DROPPED_NAME; and, for each of the n
	 * ids, its provider_state cooldown and quota (out->providers holds n
	 * entries already set to none / unknown). */
	int (*metrics)(struct rf_store_conn *c, const char *const *ids,
	    size_t n, int64_t live_since_ms, struct rf_metrics_snapshot *out);
	/* rf_store_gauges_publish: upsert the process_gauges row of process:
	 * open_streams and queue_rows as given, dropped_rows the larger of
	 * the stored and the given, updated_ms now_ms. */
	int (*gauges_publish)(struct rf_store_conn *c, const char *process,
	    const struct rf_process_gauges *g, int64_t now_ms);
};

/* The backends built into this binary. */
extern const struct rf_store_ops rf_store_sqlite;   /* src/store_sqlite.c */
extern const struct rf_store_ops rf_store_pg;       /* src/store_pg.c */
/* The one that serves a RELAYFORGE_DB given as a file path.  Named here,
 * not in store.c, so the pool and the product API stay engine-neutral. */
#define RF_STORE_PATH_OPS (&rf_store_sqlite)

/* ---- what src/store.c lends every backend ---- */

/* The budget of the call running on this thread (rf_store_budget): false
 * when it has none (the backend's own busy timeout applies); else true,
 * with *expired (may be NULL) saying whether it is used up.  A backend's
 * busy handler gives up once it is, and does not log that "busy": the
 * caller has a fallback and reports it. */
bool rf_store_call_budget(bool *expired);

/* Copy n bytes of t into the page's memory, NUL-terminated (a backend
 * keeps SQL NULL as NULL itself).  NULL when out of memory, or when t is
 * NULL (the engine could not produce the text): either fails the read. */
const char *rf_store_page_text(struct rf_log_page *page, const char *t,
    size_t n);
/* A new, zeroed attempt of page->items[item].  The attempts of one item
 * must be added one after another (in seq order); store.c points each item
 * at its run when the read is done.  NULL when out of memory. */
struct rf_log_attempt *rf_store_page_attempt(struct rf_log_page *page,
    size_t item);
/* A new, zeroed row at the end of m->rows (grown by doubling); NULL when
 * out of memory (the read then fails). */
struct rf_metric_row *rf_store_metrics_row(struct rf_metrics_snapshot *m);
/* The metric_totals row that keeps the dropped rows of pruned processes. */
#define RF_METRICS_DROPPED_NAME "relayforge_store_dropped_rows_total"
/* Merge a provider's newest ok / failed call into its report: the later
 * of the shared state and the attempt trail wins, and the newer of the
 * two calls sets last_ok. */
void rf_store_report_merge_last(struct rf_provider_report *r,
    const struct rf_store_last_call *ok, const struct rf_store_last_call *bad);

#endif
