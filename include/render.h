/*
 * render: the one place that knows the shape of every JSON document
 * RelayForge answers with on /api/v1 -- the success and error envelopes,
 * the error object, the chat answer and its meta, the stream's event
 * payloads, health, provider status, the log page and usage.  It builds
 * json-c trees from product-level values (a struct rf_log_entry for
 * everything about one request, the store's report structs for the rest);
 * it never reads a request, a chain result or the store itself, and never
 * writes a byte (reply.c does).  Prefix: rf_render_.
 *
 * Ownership: every function returns a new reference the caller puts (or
 * hands to a function that takes it); arguments documented "taken" are
 * owned by the result afterwards.
 *
 * The one shape that is not JSON, the Prometheus text of GET /metrics,
 * is built by src/render_metrics.c (rf_render_metrics, at the end).
 */
#ifndef RF_RENDER_H
#define RF_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "error.h"
#include "store.h"

struct rf_buf;
struct rf_provider_conf;

/* {"success":true,"data":data} / {"success":false,"error":error}; both
 * take their argument. */
json_object *rf_render_success(json_object *data);
json_object *rf_render_failure(json_object *error);
/* Compact JSON text of obj (no slash escaping) as a new string the caller
 * frees; NULL when out of memory. */
char *rf_render_text(json_object *obj);

/* The error object of docs/api.md (not yet wrapped).  message NULL =
 * the code's default; details, provider, request_id and field may be NULL;
 * attempts is taken (NULL: no "attempts" key). */
json_object *rf_render_error(enum rf_err code, const char *message,
    const char *details, const char *provider, bool fallback,
    const char *request_id, json_object *attempts, const char *field);
/* The error object of a request that failed in the chain: provider,
 * fallbackActivated, requestId and attempts come from its entry; code
 * RF_OK (a caller's bug) is rendered as internal_error.  message and
 * details may be NULL or "" (the code's default / none). */
json_object *rf_render_chain_error(const struct rf_log_entry *e,
    enum rf_err code, const char *message, const char *details);

/* The attempts array of docs/api.md. */
json_object *rf_render_attempts(const struct rf_log_attempt *a, size_t n);

/* Which meta: the chat answer's, or a stream's "start" / "final" event
 * (those two begin with "phase"; start omits what is not known yet,
 * final adds ttftMs, skippedChunks and restarts). */
enum rf_meta_kind { RF_META_CHAT, RF_META_START, RF_META_FINAL };
json_object *rf_render_meta(const struct rf_log_entry *e,
    enum rf_meta_kind kind);
/* The data of a chat answer: {"text": text, "meta": ...}. */
json_object *rf_render_chat(const struct rf_log_entry *e, const char *text,
    size_t len);

/* Stream event payloads: a "fallback" or "restart" move, one token, the
 * terminal "done". */
json_object *rf_render_move(const char *phase, const char *from,
    const char *to, enum rf_err code);
json_object *rf_render_token(const char *text, size_t len);
json_object *rf_render_done(bool ok);

/* GET /health's data: status "ok" | "degraded", reason (NULL when ok),
 * and the request-log spool's rows waiting and rows dropped. */
json_object *rf_render_health(const char *status, const char *version,
    const char *db, const char *reason, long spool_rows, long spool_dropped);

/* One provider of the status page: its configuration, its 1-based
 * position in the chain, the state the engine decided, and the store's
 * report. */
struct rf_render_provider {
	const struct rf_provider_conf *pc;
	int position;
	const char *state;
	const struct rf_provider_report *rep;
};
/* GET /providers/status's data. */
json_object *rf_render_status(int64_t now_ms, int window_s,
    const struct rf_render_provider *p, size_t n);
/* GET /logs's data: items newest first and nextBefore; promptPreview only
 * when preview is on. */
json_object *rf_render_logs(const struct rf_log_page *page, bool preview);
/* GET /usage's data for the named window. */
json_object *rf_render_usage(const char *window,
    const struct rf_usage_report *r);

/* GET /metrics: the Prometheus text exposition (version 0.0.4) of m,
 * appended to out: every metric family with its HELP and TYPE, each
 * provider of ids (the n ids m was read for, in m->providers' order) with
 * its cooldown -- 0 unless it ends after now_ms -- and known quota, and
 * the processes' gauges.  0, or -1 when out of memory. */
int rf_render_metrics(struct rf_buf *out, const struct rf_metrics_snapshot *m,
    const char *const *ids, size_t n, int64_t now_ms);

#endif
