/*
 * chain: the fallback engine (docs/api.md).  Builds the order (the chain
 * for auto, the chosen provider first for manual), skips unconfigured and
 * cooling providers, calls each tier through its adapter, retries on the
 * same provider where the rules allow (docs/api.md), promotes on failure, and records the
 * attempt trail.  For streams it relays tokens through a sink the moment
 * they arrive and commits to a provider only on its first real text.
 * Prefix: rf_chain_.
 */
#ifndef RF_CHAIN_H
#define RF_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "provider.h"
#include "request.h" /* struct rf_worker, struct rf_chat_req */
#include "store.h"   /* struct rf_log_attempt, struct rf_log_entry */

struct rf_quota;
/* The most same-provider retries on resets and 5xx a tier spends, whatever
 * RELAYFORGE_RETRIES asks (config.c bounds it to the same 5). */
#define RF_CHAIN_MAX_RETRIES 5
/* The attempt trail's size: every tier of the order (a chain lists a
 * provider once) with its first try, its retries and the one wait on a
 * 429 -- one entry when skipped.  The entry of the provider that answered
 * always fits. */
#define RF_MAX_ATTEMPTS (RF_MAX_PROVIDERS * (1 + RF_CHAIN_MAX_RETRIES + 1))

/* How an attempt ended, for add_attempt; the trail itself is kept in the
 * log's form (struct rf_log_attempt, store.h): the meta, the error, the
 * log row and /logs all read that one array. */
enum rf_att_kind { RF_ATT_OK, RF_ATT_FAILED, RF_ATT_SKIPPED };

struct rf_chain_result {
	char request_id[65];
	bool stream;
	/* The trail (static strings), grown as tries happen: most requests
	 * make one or two, and an open stream should not hold room for 112. */
	struct rf_log_attempt *attempts;
	size_t nattempts, capattempts;
	int attempted;         /* first provider actually called, -1 none */
	int final_pid;         /* the one that answered, or the last called; -1 */
	bool fallback;         /* final != attempted */
	bool degraded;         /* not from the head of the order, or the mock */
	bool demo;             /* final is the mock */
	enum rf_err err;       /* RF_OK on success */
	struct rf_failure fail;/* details of err */
	struct rf_result res;  /* text, model, usage, finish reason */
	int64_t started_ms;    /* wall clock at arrival */
	int64_t started_mono;
	long latency_ms;
	long ttft_ms;          /* streams: -1 until the first token */
	int restarts;
	int skipped_chunks;
	long partial_chars;    /* text sent before a failure */
	int64_t retry_after_ms;/* every tier cooling: soonest end, else -1 */
	char streamed[128];    /* comma list of providers that streamed text */
};

/* What the stream handler does with events.  Each returns 0, or -1 when the
 * client has gone (the chain then cancels the upstream at once and finishes
 * with RF_ERR_CLIENT_CLOSED). */
struct rf_stream_sink {
	int (*fallback)(void *ud, int from, int to, enum rf_err code);
	int (*start)(void *ud, const struct rf_chain_result *r);
	int (*token)(void *ud, const char *text, size_t n);
	int (*restart)(void *ud, int from, int to, enum rf_err code);
	int (*tick)(void *ud); /* periodically while waiting: keep-alives */
	/* A piece of the answer's tool calls: the JSON text of an OpenAI
	 * "tool_calls" delta array.  NULL when the surface has no such
	 * event. */
	int (*tool_delta)(void *ud, const char *json, size_t n);
	/* May be NULL: true while the client has not taken enough of what
	 * was sent; the upstream is then not read until rf_chain_resume. */
	bool (*full)(void *ud);
	void *ud;
};

void rf_chain_result_init(struct rf_chain_result *r);
/* The one conversion of a chain result into its log entry: e borrows
 * every string from req and r (prompt_preview is left NULL for the caller).
 * endpoint is "chat" or "stream", status the HTTP status answered. */
void rf_chain_entry(const struct rf_chat_req *req,
    const struct rf_chain_result *r, const char *endpoint, int status,
    struct rf_log_entry *e);
void rf_chain_result_free(struct rf_chain_result *r);

/* A request on its way through the chain (opaque). */
struct rf_chain_run;
typedef void (*rf_chain_done_fn)(void *ud);

/* Start the request through the chain on w's loop (w->loop set; w->up
 * drives network tiers, NULL passes them over).  sink NULL = chat
 * (non-streaming).  Fills r (request_id and started_* must be set by the
 * caller) and calls done(ud) on the loop's thread when r is final --
 * perhaps before returning, so the caller must not touch what done frees
 * after the call.  *handle (may be NULL) is the run while it goes on,
 * reset to NULL before done runs.  req, sink and r stay the caller's
 * until done. */
void rf_chain_start(struct rf_worker *w, const struct rf_chat_req *req,
    const struct rf_stream_sink *sink, const struct rf_provider_state *st,
    struct rf_chain_result *r, struct rf_chain_run **handle,
    rf_chain_done_fn done, void *ud);
/* The providers' state at arrival (RF_MAX_PROVIDERS entries, by pid): the
 * store's, read within a few milliseconds or from this process's recent
 * snapshot, with this process's own writes (src/pstate.c).  It may wait
 * for the store, so it is read on the worker's thread and handed to
 * rf_chain_start as st (NULL there: read it then). */
void rf_chain_states(const struct rf_worker *w, struct rf_provider_state *st);
/* The client has gone: stop what the run waits for now (its upstream
 * transfer is closed at once) and finish it as client_closed.  done runs
 * before this returns.  NULL-safe; on the loop's thread, never from
 * inside a sink callback. */
void rf_chain_abort(struct rf_chain_run *run);
/* The client took output again: a stream paused on a full sink reads
 * its upstream again.  NULL-safe; not from inside a sink callback. */
void rf_chain_resume(struct rf_chain_run *run);
/* rf_chain_start run to its end on the caller's thread: on w->loop, or
 * w->up's, or a loop made for the call. */
void rf_chain_run(struct rf_worker *w, const struct rf_chat_req *req,
    const struct rf_stream_sink *sink, struct rf_chain_result *r);

/* ---- Pure decisions, exposed for unit tests ----
 *
 * Every try of a provider ends in one struct rf_try_outcome; one pure
 * function, rf_chain_decide, turns it into the next step and the effects
 * the engine then applies in one place (the store writes, the pause). */

/* What one try of one provider came to: plain values, no I/O. */
struct rf_try_outcome {
	enum rf_err code;        /* RF_OK: it answered; RF_ERR_CLIENT_CLOSED:
	                          * the client hung up; else why it failed */
	long http_status;        /* 0 = no HTTP status arrived */
	bool before_response;    /* the connection failed before any byte */
	int64_t retry_after_ms;  /* Retry-After, else the body's retry hint;
	                          * -1 = none */
	bool auth;               /* an auth failure (401/403, API_KEY_INVALID) */
	bool committed;          /* a stream had relayed text from it */
};

/* The same-provider retries a tier has spent so far. */
struct rf_retry_budget {
	bool used_429;           /* the one wait on a short Retry-After */
	int used_5xx;            /* retries on resets and 5xx */
};

/* ok: it answered; retry: try the same provider again after a pause;
 * promote: the next tier may take over; final: never promote (a safety
 * block, a client that hung up, a stream broken after its first token
 * without streamRecovery "restart").  A promote after an upstream
 * 400/404/413/422 that is not a safety block or a bad key is no failure
 * of the provider: the request itself was refused, and any client could
 * send such requests until the provider cooled down for everyone. */
enum rf_step { RF_STEP_OK, RF_STEP_RETRY, RF_STEP_PROMOTE, RF_STEP_FINAL };

struct rf_decision {
	enum rf_step step;
	long pause_min_ms;       /* retry: wait a uniform time in [min, max] */
	long pause_max_ms;
	bool failure;            /* the provider failed (connection, 5xx,
	                          * timeout, 429, auth, a broken answer): count
	                          * it toward the threshold and persist
	                          * cooldown_until_ms */
	int64_t cooldown_until_ms; /* its own cooldown (429, auth); 0 = none */
	bool restart;            /* promote after text was relayed: the next
	                          * tier restarts the stream */
};

/* Decide what follows outcome o, given the budget spent so far (updated
 * when the step is a retry) and whether the request allows a restart. */
void rf_chain_decide(const struct rf_config *cfg,
    const struct rf_try_outcome *o, bool restart, int64_t now_ms,
    struct rf_retry_budget *b, struct rf_decision *d);
/* true when a failure with this code / status may be retried on the same
 * provider (reset or refusal before a response, 500/502/503/504). */
bool rf_chain_retryable(enum rf_err code, long http_status, bool before_response);
/* The cooldown a failure brings by itself: a 429 for its Retry-After (or
 * RELAYFORGE_COOLDOWN_MS; at most ten minutes), an auth failure for ten
 * minutes.  0 = none beyond the threshold rule. */
int64_t rf_chain_cooldown_until(const struct rf_config *cfg,
    const struct rf_try_outcome *o, int64_t now_ms);
/* The failure-threshold rule: a failure without a cooldown of its own
 * (own_until_ms <= 0) that brought the provider's shared streak to
 * cfg->failure_threshold or more cools it down until now_ms +
 * cfg->cooldown_ms.  0 = no cooldown (also when the threshold is 0). */
int64_t rf_chain_threshold_cooldown(const struct rf_config *cfg,
    int failures, int64_t own_until_ms, int64_t now_ms);
/* The quota rule: when a remaining figure is 0 and the reset lies after
 * now_ms, the provider cools down until the reset.  0 = no cooldown. */
int64_t rf_chain_quota_cooldown(const struct rf_quota *q, int64_t now_ms);

#endif
