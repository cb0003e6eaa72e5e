/*
 * metrics: which metric series a logged request adds to (docs/operations.md)
 * -- the families with their names, help, label names and bucket bounds
 * (the OpenTelemetry GenAI conventions' recommended ones) -- and the
 * accumulation of a batch of log entries into one increment per series,
 * which a store backend adds to its cumulative totals in the transaction
 * that writes the batch's rows.  Pure: no I/O, no SQL; shared by every
 * store backend and by the renderer of the exposition (render_metrics.c).
 * Prefix: rf_metrics_ / rf_metric_.
 *
 * Label values are identifiers the gateway chose (endpoints, provider
 * ids, error codes); any other byte becomes '_' and a value is cut at
 * RF_METRICS_VALUE_MAX, so a label set never needs escaping and always
 * fits struct rf_metric_row.  Vocabulary:
 *   outcome of a request   success | error | cancelled (rf_store_entry_status)
 *   outcome of an attempt  ok | an error code | skipped | cancelled
 *                          (the client hung up: client_closed)
 *   a provider             its id, or "none" when no provider was called
 * Durations are recorded in whole milliseconds and exposed in seconds.
 *
 * A counter that would only repeat a histogram's _count is not stored: it
 * is exposed from that histogram's series (a family's "from"), so the two
 * can never disagree and a request costs fewer writes --
 * relayforge_requests_total is the request duration's count, and
 * relayforge_attempts_total the upstream calls' count (label
 * gen_ai_provider_name exposed as provider) plus the stored skipped ones.
 */
#ifndef RF_METRICS_H
#define RF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define RF_METRICS_VALUE_MAX 48

enum rf_metric_type { RF_METRIC_COUNTER, RF_METRIC_HISTOGRAM };

/* One family of series that logged requests add to. */
struct rf_metric_family {
	const char *name;            /* as exposed */
	const char *help;
	enum rf_metric_type type;
	int nbounds;                 /* histograms: finite bucket bounds */
	const int64_t *bounds;       /* ascending, in the recorded unit */
	const char *const *le;       /* the same bounds as exposed ("0.01") */
	int64_t scale;               /* recorded units per exposed unit:
	                                1000 for seconds recorded in ms */
	int from;                    /* counters: also the _count of this
	                                family's series, -1 = none */
	const char *rename;          /* with from: its first label, exposed
	                                under this family's first label
	                                (NULL: the same labels) */
};

enum rf_metric_id {
	RF_M_SERVER_DURATION,  /* gen_ai_server_request_duration_seconds */
	RF_M_TTFT,             /* gen_ai_server_time_to_first_token_seconds */
	RF_M_CLIENT_DURATION,  /* gen_ai_client_operation_duration_seconds */
	RF_M_TOKENS,           /* gen_ai_client_token_usage */
	RF_M_REQUESTS,         /* relayforge_requests_total */
	RF_M_FALLBACKS,        /* relayforge_fallbacks_total */
	RF_M_ATTEMPTS,         /* relayforge_attempts_total */
	RF_M_NFAMILIES
};

extern const struct rf_metric_family rf_metric_families[RF_M_NFAMILIES];

/* The bucket of value v in family f: the index of the first bound >= v,
 * or f->nbounds when v is above every bound (only +Inf holds it). */
int rf_metrics_bucket(const struct rf_metric_family *f, int64_t v);

/* The increments of a batch, one row per series touched (few: a batch's
 * requests share most series).  Zeroed is valid (empty). */
struct rf_metrics_acc {
	struct rf_metric_row *v;
	uint64_t *hash;        /* private: of each row's family and labels */
	size_t n, cap;
};

void rf_metrics_acc_init(struct rf_metrics_acc *a);
/* Add what entry e contributes to every family.  0, or -1 when out of
 * memory -- a may then hold part of e: the caller gives the batch up. */
int rf_metrics_acc_add(struct rf_metrics_acc *a, const struct rf_log_entry *e);
/* Forget the rows, keep the memory (a new attempt at a batch). */
void rf_metrics_acc_reset(struct rf_metrics_acc *a);
void rf_metrics_acc_free(struct rf_metrics_acc *a); /* NULL-safe */

#endif
