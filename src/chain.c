/*
 * chain: the fallback engine of docs/api.md.
 *
 * rf_chain_start() walks the order (the chain for "auto", or the chosen
 * provider first) as a state object driven by an event loop (loop.h):
 * each step runs until it must wait -- for an upstream transfer, the
 * pause before a retry, the pace of an in-process stream -- and the
 * callback of what it waited for takes the next step, so a waiting
 * request holds no thread.  rf_chain_run() is the same walk run to its
 * end on the caller's thread (plain CGI, tests).  Each tier is skipped
 * (unconfigured, cooling down, or a request its wire cannot express:
 * "unsupported") or run by the one tier loop chat and stream share
 * (tier_begin -> try_begin -> try_end):
 *
 *   try:     the request's transport (buffered for chat, streamed for a
 *            stream) makes one call -- over the network through the
 *            provider's wire ops, or in-process for a built-in provider --
 *            and fills a struct attempt;
 *   decide:  the attempt becomes a plain struct rf_try_outcome and the pure
 *            rf_chain_decide() says what follows: ok, retry (after a
 *            pause), promote (the next tier may take over) or final;
 *   apply:   apply() makes the step's writes in one place (failure
 *            streak, cooldowns, quota snapshot, clearing a healed
 *            provider) through src/pstate.c, which keeps them in the
 *            process and writes them through to the store without making
 *            the request wait for it.
 *
 * Streams commit to a provider on its first real text or its first
 * tool-call delta; until then every failure still falls back (with a
 * "fallback" meta event).  After it, a failure ends the stream -- or,
 * with streamRecovery "restart", the next tier streams its whole answer
 * after a "restart" meta event.  Tool calls (a /v1 request's) travel
 * whole in the result for chat and as OpenAI deltas through the sink's
 * tool_delta for streams; an answer of tool calls alone is an answer.
 *
 * What an upstream sent enters the result only through the wire boundary
 * (wire_response, wire_chunk, take_result, and rf_failure_scrub at the end
 * of each try): from there on every string is scrubbed (scrub.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "log.h"
#include "loop.h"
#include "pstate.h"
#include "scrub.h"
#include "sse.h"
#include "store.h"
#include "upstream.h"

#define TEN_MINUTES_MS (10 * 60 * 1000)

/* How often a waiting stream looks at its deadlines and keep-alives when
 * no deadline comes sooner. */
#define TICK_MS 1000

/* What the run is waiting for. */
enum phase {
	PH_IDLE,   /* nothing: it is being advanced right now */
	PH_XFER,   /* an upstream transfer (xfer) */
	PH_PAUSE,  /* the pause before a retry (timer) */
	PH_LOCAL   /* the pace of an in-process stream (timer) */
};

/* One try of one provider.  A transport fills rep (status, headers, how
 * the transfer ended), fail and the flags; the result goes to r->res. */
struct attempt {
	struct run *run;
	struct rf_chain_result *r;
	const struct rf_provider_ops *ops;
	int pid;
	struct rf_up_reply rep;
	struct rf_failure fail;
	bool failed;       /* fail holds why */
	bool client_gone;  /* the client hung up (streams) */
	bool committed;    /* streams: real text arrived from this provider */
	bool done;         /* streams: [DONE] seen */
	bool warned;       /* a rejected identifier was logged for this try */
	bool paused;       /* streams: not reading until the client takes some */
	size_t text_bytes; /* streams: text relayed by this try */
	int skipped;       /* streams: unparseable chunks of this try */
	int retry;         /* 0 for the first try of its tier, n for the n-th retry */
	struct rf_sse_parser parser;
	struct rf_buf delta;
	struct rf_buf tools;  /* streams: the tool-call delta of one event */
	int64_t t0;        /* monotonic start of the try */
	int64_t last_data; /* monotonic time of the last upstream byte */
};

/* The whole request, across tiers: a state object the loop drives.  Each
 * step runs until it must wait (a transfer, a pause, the pace of a local
 * stream), then returns; the callback of what it waited for takes the
 * next step.  Only one try is in flight at a time. */
struct run {
	struct rf_worker w0;     /* the caller's worker, loop filled in */
	struct rf_worker *w;
	const struct rf_chat_req *req;
	const struct rf_stream_sink *sink;   /* NULL for chat */
	const struct transport *transport;
	struct rf_chain_result *r;
	int order[RF_MAX_PROVIDERS];
	int norder;
	struct rf_prompt prompt;
	struct rf_up_req rq;     /* the tier's upstream request, built once */
	int build_rc;            /* what building rq returned */
	int unsupported;         /* tiers skipped as unsupported */
	struct rf_provider_state st[RF_MAX_PROVIDERS]; /* state at arrival */
	int pending_from;        /* stream: a failed tier to announce, -1 none */
	enum rf_err pending_code;
	bool pending_restart;    /* the announcement is a restart */
	bool any_committed;      /* some provider streamed text */
	bool client_gone;

	/* Where the walk is. */
	int tier;                /* index in order of the tier being tried */
	int last;                /* the last provider called, -1 none */
	int64_t soonest;         /* the soonest end of a skipped cooldown */
	enum rf_step last_step;  /* the last tier's step */
	struct rf_retry_budget budget;
	int retry;
	struct attempt a;        /* the try in flight */
	enum phase phase;
	struct rf_up_xfer *xfer; /* PH_XFER over the network */
	struct rf_timer timer;   /* pause, pace, deadlines and keep-alives */
	/* An in-process stream between two tokens. */
	struct rf_result local;
	size_t lpos;
	bool lwaited;            /* the pause before the token at lpos is over */

	struct rf_chain_run **handle; /* the caller's; NULL once done */
	rf_chain_done_fn done;
	void *done_ud;
};

/* How a request's answer travels: the only difference between chat and
 * stream.  remote and local start a try for a provider reached over the
 * network (its wire ops) or answered in-process (ops->answer); the try
 * ends in try_end, perhaps before they return.  end reads a finished
 * network try (the reply into the attempt). */
struct transport {
	void (*remote)(struct attempt *a);
	void (*local)(struct attempt *a);
	void (*end)(struct attempt *a);
};

static void try_end(struct run *run);

void
rf_chain_result_init(struct rf_chain_result *r)
{
	memset(r, 0, sizeof(*r));
	rf_result_init(&r->res);
	r->attempted = -1;
	r->final_pid = -1;
	r->ttft_ms = -1;
	r->retry_after_ms = -1;
	r->fail.retry_after_ms = -1;
}

void
rf_chain_result_free(struct rf_chain_result *r)
{
	free(r->attempts);
	r->attempts = NULL;
	r->nattempts = r->capattempts = 0;
	rf_result_free(&r->res);
}

/* "" as NULL: the log form marks absent strings with NULL. */
static const char *
nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

void
rf_chain_entry(const struct rf_chat_req *req,
    const struct rf_chain_result *r, const char *endpoint, int status,
    struct rf_log_entry *e)
{
	bool ok = r->err == RF_OK;
	const char *strategy = req->strategy < 0 ? NULL :
	    rf_config_id(req->strategy);

	*e = (struct rf_log_entry){
		.request_id = r->request_id, .ts_ms = r->started_ms,
		.endpoint = endpoint, .strategy = strategy ? strategy : "auto",
		.attempted_provider = rf_config_id(r->attempted),
		.final_provider = rf_config_id(r->final_pid),
		.fallback = r->fallback, .degraded = r->degraded, .demo = r->demo,
		.success = ok, .error_code = ok ? NULL : rf_err_code(r->err),
		.http_status = status, .latency_ms = r->latency_ms,
		.ttft_ms = r->ttft_ms, .model = nonempty(r->res.model),
		.finish_reason = nonempty(r->res.finish_reason),
		.prompt_chars = req->prompt_chars,
		.prompt_tokens = r->res.usage.prompt_tokens,
		.completion_tokens = r->res.usage.completion_tokens,
		.source = req->source,
		.partial_chars = ok ? 0 : r->partial_chars,
		.skipped_chunks = r->skipped_chunks, .restarts = r->restarts,
		.streamed = nonempty(r->streamed),
		.attempts = r->attempts, .nattempts = r->nattempts,
	};
}

static void
add_attempt(struct rf_chain_result *r, int pid, enum rf_att_kind kind,
    enum rf_err code, const char *reason, long status, long latency, int retry)
{
	struct rf_log_attempt *a;

	if (r->nattempts == r->capattempts && r->capattempts < RF_MAX_ATTEMPTS) {
		size_t cap = r->capattempts ? r->capattempts * 2 : 4;

		if (cap > RF_MAX_ATTEMPTS)
			cap = RF_MAX_ATTEMPTS;
		if ((a = realloc(r->attempts, cap * sizeof(*a))) != NULL) {
			r->attempts = a;
			r->capattempts = cap;
		}
	}
	/* RF_MAX_ATTEMPTS holds every try the decision allows; were the
	 * trail ever full (or memory short), the newest entry (perhaps the
	 * answer) replaces the last. */
	if (r->nattempts == r->capattempts) {
		if (r->nattempts == 0)
			return;
		r->nattempts--;
	}
	a = &r->attempts[r->nattempts++];
	a->provider = rf_config_id(pid);
	a->outcome = kind == RF_ATT_OK ? "ok" :
	    kind == RF_ATT_SKIPPED ? "skipped" : rf_err_code(code);
	a->reason = kind == RF_ATT_SKIPPED ? reason : NULL;
	a->http_status = (int)status;
	a->latency_ms = kind == RF_ATT_SKIPPED ? -1 : latency;
	a->retry = retry;
}

/* ---- decisions (pure) ------------------------------------------------ */

bool
rf_chain_retryable(enum rf_err code, long status, bool before_response)
{
	if (code == RF_ERR_PROVIDER_UNAVAILABLE && status == 0)
		return before_response;
	return status == 500 || status == 502 || status == 503 || status == 504;
}

int64_t
rf_chain_cooldown_until(const struct rf_config *cfg,
    const struct rf_try_outcome *o, int64_t now_ms)
{
	int64_t ra = o->retry_after_ms;

	if (o->auth)
		return now_ms + TEN_MINUTES_MS;
	if (o->code == RF_ERR_PROVIDER_RATE_LIMITED || o->http_status == 429) {
		if (ra < 0)
			ra = cfg->cooldown_ms;
		if (ra > TEN_MINUTES_MS)
			ra = TEN_MINUTES_MS;
		return now_ms + ra;
	}
	return 0;
}

int64_t
rf_chain_threshold_cooldown(const struct rf_config *cfg, int failures,
    int64_t own_until_ms, int64_t now_ms)
{
	/* A failure's own cooldown (429, auth) stands, longer or not. */
	if (own_until_ms > 0 || cfg->failure_threshold <= 0 ||
	    failures < cfg->failure_threshold)
		return 0;
	return now_ms + cfg->cooldown_ms;
}

int64_t
rf_chain_quota_cooldown(const struct rf_quota *q, int64_t now_ms)
{
	if (!q->have)
		return 0;
	if ((q->remaining_requests == 0 || q->remaining_tokens == 0) &&
	    q->reset_at_ms > now_ms)
		return q->reset_at_ms;
	return 0;
}

/* A same-provider retry, or false (docs/api.md): one wait on a 429
 * whose Retry-After is short enough, then up to RELAYFORGE_RETRIES on a
 * reset before the response or a 500/502/503/504. */
static bool
decide_retry(const struct rf_config *cfg, const struct rf_try_outcome *o,
    struct rf_retry_budget *b, struct rf_decision *d)
{
	int64_t ra = o->retry_after_ms;

	if (o->http_status == 429 && !b->used_429 && ra >= 0 &&
	    ra <= cfg->retry_after_max_ms) {
		b->used_429 = true;
		d->pause_min_ms = d->pause_max_ms = (long)ra;
		return true;
	}
	if (b->used_5xx < cfg->retries && b->used_5xx < RF_CHAIN_MAX_RETRIES &&
	    rf_chain_retryable(o->code, o->http_status, o->before_response)) {
		b->used_5xx++;
		d->pause_min_ms = 100;
		d->pause_max_ms = 300;
		return true;
	}
	return false;
}

/* The upstream refused the request itself: 400, 404, 413 or 422 read as
 * a bad request (a safety block is final before this is asked; a bad key
 * -- Gemini's API_KEY_INVALID is a 400 -- and a 400 whose body names the
 * provider's own fault were classified otherwise).  Other 4xx say that
 * our call is wrong for every request (URL, method): the provider's. */
static bool
request_caused(const struct rf_try_outcome *o)
{
	long s = o->http_status;

	return !o->auth && o->code == RF_ERR_PROVIDER_BAD_REQUEST &&
	    (s == 400 || s == 404 || s == 413 || s == 422);
}

void
rf_chain_decide(const struct rf_config *cfg, const struct rf_try_outcome *o,
    bool restart, int64_t now_ms, struct rf_retry_budget *b,
    struct rf_decision *d)
{
	memset(d, 0, sizeof(*d));
	if (o->code == RF_OK) {
		d->step = RF_STEP_OK;
	} else if (o->code == RF_ERR_CLIENT_CLOSED ||
	    (o->code == RF_ERR_CONTENT_FILTERED && !o->committed)) {
		/* Not the provider's failure, and no one else may answer. */
		d->step = RF_STEP_FINAL;
	} else if (o->committed) {
		/* Text already reached the client: never retried here. */
		d->step = restart ? RF_STEP_PROMOTE : RF_STEP_FINAL;
		d->restart = restart;
		d->failure = true;
	} else if (decide_retry(cfg, o, b, d)) {
		d->step = RF_STEP_RETRY;
	} else {
		/* The next tier may answer a refused request (it may allow
		 * what this one did not), but only the provider's own
		 * failures count toward its cooldown. */
		d->step = RF_STEP_PROMOTE;
		d->failure = !request_caused(o);
	}
	if (d->failure)
		d->cooldown_until_ms = rf_chain_cooldown_until(cfg, o, now_ms);
}

/* ---- effects: the state writes of a step, in one place ---------------
 * Each goes through src/pstate.c: the store within a few milliseconds, or
 * this process's table and a background writer -- the request never waits
 * for the store, and the next decisions in this process see the write
 * either way. */

/* A failure of the provider: bump its shared streak, persist its own
 * cooldown, and the threshold's when the streak reaches it. */
static void
apply_failure(struct run *run, int pid, const struct rf_try_outcome *o,
    const struct rf_decision *d, int64_t now)
{
	const struct rf_config *cfg = run->w->cfg;
	const char *id = cfg->providers[pid].id;
	int64_t until = d->cooldown_until_ms;
	int failures;

	if (o->http_status == 429 && until > now)
		run->r->retry_after_ms = until - now;
	/* The streak is the store's when it took the write, else what this
	 * process knows; the threshold is decided here, and costs a second
	 * write only when it is reached. */
	failures = rf_pstate_failed(run->w->store, id, rf_err_code(o->code), now,
	    until);
	until = rf_chain_threshold_cooldown(cfg, failures, until, now);
	if (until > 0)
		rf_pstate_cooldown(run->w->store, id, until, "failure_threshold");
}

/* Providers send rate-limit headers on every answer; writing them each
 * time put a store write before every answer.  They are written when a
 * figure reaches 0 (the provider must cool down at once, in every process)
 * and otherwise at most every QUOTA_WRITE_MS per provider and process. */
#define QUOTA_WRITE_MS 5000
static _Atomic int64_t quota_written[RF_MAX_PROVIDERS];

static void
apply_quota(struct run *run, int pid, const struct rf_quota *q, int64_t now)
{
	const char *id = run->w->cfg->providers[pid].id;
	bool empty = q->remaining_requests == 0 || q->remaining_tokens == 0;
	int64_t until;

	if (!q->have)
		return;
	if (!empty && now - atomic_load(&quota_written[pid]) < QUOTA_WRITE_MS)
		return;
	atomic_store(&quota_written[pid], now);
	rf_pstate_quota(run->w->store, id, q->remaining_requests,
	    q->remaining_tokens, q->reset_at_ms, now);
	/* A second write only when a figure reached 0 before its reset. */
	until = rf_chain_quota_cooldown(q, now);
	if (until > 0)
		rf_pstate_cooldown(run->w->store, id, until, "quota");
}

/* A tier answered: clear its failure state if it had any. */
static void
apply_ok(struct run *run, int pid, int64_t now)
{
	const struct rf_provider_state *st = &run->st[pid];

	if (!run->w->cfg->providers[pid].def->builtin &&
	    (st->consecutive_failures > 0 || st->cooldown_until_ms > 0))
		rf_pstate_ok(run->w->store, run->w->cfg->providers[pid].id, now);
}

/* A failure message that names the provider ("Groq returned a ..."). */
static void
name_failure(struct rf_failure *f, const char *name)
{
	const char *m = rf_err_message(f->code);

	if (f->message[0] == '\0' && strncmp(m, "The provider ", 13) == 0)
		snprintf(f->message, sizeof(f->message), "%s %s", name, m + 13);
}

/* Everything a tier's last try changes outside the request. */
static void
apply(struct run *run, struct attempt *a, const struct rf_try_outcome *o,
    const struct rf_decision *d)
{
	int64_t now = rf_now_ms();

	if (d->failure)
		apply_failure(run, a->pid, o, d, now);
	else if (d->step == RF_STEP_OK)
		apply_ok(run, a->pid, now);
	apply_quota(run, a->pid, &a->rep.quota, now);
	if (d->step != RF_STEP_OK) {
		name_failure(&a->fail, run->w->cfg->providers[a->pid].name);
		run->r->fail = a->fail;
	}
}

/* A uniform time in [min, max] ms (the jitter of a retry). */
static long
pause_between(long min, long max)
{
	char id[33];
	unsigned long j;

	if (max <= min)
		return min;
	rf_request_id(id);
	j = strtoul(id + 24, NULL, 16);
	return min + (long)(j % (unsigned long)(max - min + 1));
}

/* ---- the run's bookkeeping ------------------------------------------- */

static void
build_order(struct run *run)
{
	const struct rf_config *cfg = run->w->cfg;
	int s = run->req->strategy;

	run->norder = 0;
	if (s >= 0)
		run->order[run->norder++] = s;
	for (int i = 0; i < cfg->chain_len; i++)
		if (cfg->chain[i] != s)
			run->order[run->norder++] = cfg->chain[i];
}

/* The meta flags, valid once final_pid is known. */
static void
set_flags(struct run *run, int pid)
{
	struct rf_chain_result *r = run->r;

	r->final_pid = pid;
	r->fallback = r->attempted >= 0 && pid != r->attempted;
	r->demo = run->w->cfg->providers[pid].def->builtin;
	r->degraded = pid != run->order[0] || r->demo;
}

/* Tell the client about the previous tier's failure, now that we know who
 * takes over.  Returns -1 when the client has gone. */
static int
announce(struct run *run, int to)
{
	const struct rf_stream_sink *s = run->sink;
	int rc = 0;

	if (s == NULL || run->pending_from < 0)
		return 0;
	if (run->pending_restart)
		rc = s->restart(s->ud, run->pending_from, to, run->pending_code);
	else
		rc = s->fallback(s->ud, run->pending_from, to, run->pending_code);
	run->pending_from = -1;
	return rc;
}

/* ---- the wire boundary ------------------------------------------------
 *
 * Everything an adapter read from an upstream enters the request's result
 * here: the identifiers after every answer and every chunk (a stream's
 * start event shows the model), the answer text made valid UTF-8 where it
 * enters (the whole text for chat, each delta for a stream), and the try's
 * failure once, when the try ends (try_tier).  Render, SSE, the log row,
 * the store and stderr downstream only ever see scrubbed values. */

static void
fail(struct attempt *a, enum rf_err code, const char *details)
{
	rf_failure_set(&a->fail, code, details);
	a->failed = true;
}

/* The result's identifiers, after every write of the wire into it. */
static void
take_result(struct attempt *a)
{
	if (rf_result_scrub(&a->r->res) || a->warned)
		return;
	a->warned = true;
	RF_LOG_WARN(a->r->request_id, a->run->w->cfg->providers[a->pid].id,
	    "upstream model id or safety reason dropped: not an identifier, "
	    "or it holds a secret");
}

static int
wire_response(struct attempt *a)
{
	struct rf_result *res = &a->r->res;
	int rc;

	rc = a->ops->parse_response(rf_buf_str(&a->rep.body), a->rep.body.len,
	    res, &a->fail);
	take_result(a);
	if (rc == 0 && (rf_scrub_utf8(&res->text) != 0 ||
	    rf_scrub_utf8(&res->tool_calls) != 0)) {
		rf_failure_set(&a->fail, RF_ERR_MALFORMED_RESPONSE,
		    "answer too long");
		rc = -1;
	}
	return rc;
}

static enum rf_chunk
wire_chunk(struct attempt *a, const char *event, const char *data,
    size_t len, struct rf_buf *delta, struct rf_buf *tools)
{
	enum rf_chunk k;

	k = a->ops->parse_chunk(event, data, len, &a->r->res, delta, tools,
	    &a->fail);
	take_result(a);
	if (k == RF_CHUNK_DATA && (rf_scrub_utf8(delta) != 0 ||
	    rf_scrub_utf8(tools) != 0)) {
		rf_failure_set(&a->fail, RF_ERR_MALFORMED_RESPONSE,
		    "stream text too large");
		k = RF_CHUNK_ERROR;
	}
	return k;
}

/* ---- the buffered transport (chat) ----------------------------------- */

/* A safety block with no text: the provider withheld the answer. */
static void
fail_withheld(struct attempt *a)
{
	const char *why = a->r->res.safety_reason;

	fail(a, RF_ERR_CONTENT_FILTERED, "upstream withheld the answer");
	snprintf(a->fail.message, sizeof(a->fail.message),
	    "The provider withheld the answer for safety (%s).",
	    why[0] ? why : "content_filter");
}

/* The result holds an answer: text, or tool calls where the surface can
 * carry them (a /v1 request; /api/v1 never sends tools). */
static bool
answered(const struct attempt *a)
{
	const struct rf_result *res = &a->r->res;

	return res->text.len > 0 ||
	    (res->tool_calls.len > 0 && a->run->prompt.oai != NULL);
}

/* A finished non-streamed transfer: a result or a failure. */
static void
read_reply(struct attempt *a)
{
	struct rf_up_reply *rep = &a->rep;
	struct rf_result *res = &a->r->res;

	switch (rep->end) {
	case RF_UP_DONE:
		break;
	case RF_UP_TIMEOUT:
		fail(a, RF_ERR_PROVIDER_TIMEOUT, "timeout waiting for upstream");
		return;
	case RF_UP_TOO_BIG:
		fail(a, RF_ERR_MALFORMED_RESPONSE, "upstream body too large");
		return;
	default:
		fail(a, RF_ERR_PROVIDER_UNAVAILABLE, rep->curl_err);
		return;
	}
	if (rep->status < 200 || rep->status >= 300) {
		a->ops->classify_error(rep->status, rf_buf_str(&rep->body),
		    rep->body.len, &a->fail);
		a->failed = true;
	} else if (wire_response(a) != 0) {
		a->failed = true;
	} else if (answered(a)) {
		return;
	} else if (res->safety_block) {
		fail_withheld(a);
	} else {
		fail(a, RF_ERR_MALFORMED_RESPONSE, "empty text in upstream response");
	}
}

/* The tier's upstream request (prepare built it); when that failed the
 * attempt says why. */
static int
built(struct attempt *a)
{
	if (a->run->build_rc == 0)
		return 0;
	fail(a, RF_ERR_INTERNAL, "could not build the upstream request");
	return -1;
}

/* A network try's transfer ended (or was never started). */
static void
on_xfer_done(void *ud)
{
	struct run *run = ud;

	run->xfer = NULL;
	rf_loop_timer_stop(run->w->loop, &run->timer);
	try_end(run);
}

/* Start the call; a call that cannot start ends the try at once (its
 * reply says why). */
static void
start_call(struct attempt *a, const struct rf_up_call *call)
{
	struct run *run = a->run;

	run->phase = PH_XFER;
	run->xfer = rf_up_start(run->w->up, call, &a->rep, on_xfer_done, run);
	if (run->xfer == NULL)
		on_xfer_done(run);
}

static void
buffered_remote(struct attempt *a)
{
	const struct rf_config *cfg = a->run->w->cfg;
	struct rf_up_call call = {
		.pid = a->pid, .req = &a->run->rq,
		.connect_ms = cfg->connect_timeout_ms,
		.timeout_ms = cfg->timeout_ms,
	};

	if (built(a) != 0)
		try_end(a->run);
	else
		start_call(a, &call);
}

static void
buffered_local(struct attempt *a)
{
	a->ops->answer(&a->run->prompt, &a->r->res);
	take_result(a);
	a->rep.status = 200;
	try_end(a->run);
}

static const struct transport buffered = {
	.remote = buffered_remote, .local = buffered_local, .end = read_reply,
};

/* ---- the streamed transport ------------------------------------------ */

/* The start meta names who is answering (docs/api.md: every provider
 * of the order up to the one that answered): this try, as "ok" so far.
 * Its real trail entry is added when the try ends, so the provisional one
 * is taken back after the event. */
static int
start_event(struct attempt *a)
{
	const struct rf_stream_sink *sink = a->run->sink;
	struct rf_chain_result *r = a->r;
	size_t before = r->nattempts;
	int rc;

	add_attempt(r, a->pid, RF_ATT_OK, RF_OK, NULL, 200,
	    (long)(rf_mono_ms() - a->t0), a->retry);
	rc = sink->start(sink->ud, r);
	if (r->nattempts > before)
		r->nattempts--;
	return rc;
}

/* The first real text of this try: commit to its provider. */
static int
commit(struct attempt *a)
{
	struct run *run = a->run;
	struct rf_chain_result *r = a->r;
	size_t used;

	a->committed = true;
	if (run->any_committed)
		r->restarts++;
	run->any_committed = true;
	set_flags(run, a->pid);
	if (r->ttft_ms < 0)
		r->ttft_ms = (long)(rf_mono_ms() - r->started_mono);
	used = strlen(r->streamed);
	snprintf(r->streamed + used, sizeof(r->streamed) - used, "%s%s",
	    used ? "," : "", run->w->cfg->providers[a->pid].id);
	r->partial_chars = 0;
	return start_event(a);
}

/* Relay a piece of text.  Returns 0, -1 (client gone) or 1 (stop). */
static int
emit_text(struct attempt *a, const char *p, size_t n)
{
	const struct rf_stream_sink *sink = a->run->sink;

	if (n == 0)
		return 0;
	if (!a->committed && commit(a) != 0)
		return -1;
	/* A stream's text leaves as it comes and is not kept (a long answer
	 * would cost its length in every open stream); the answer's cap
	 * still holds, counted. */
	if (n > a->r->res.text.max - a->text_bytes) {
		fail(a, RF_ERR_MALFORMED_RESPONSE, "answer too long");
		return 1;
	}
	a->text_bytes += n;
	a->r->partial_chars += (long)rf_utf8_len(p, n);
	return sink->token(sink->ud, p, n);
}

/* Relay a tool-call delta (the JSON text of an OpenAI delta array): it
 * commits like text.  A surface without tool_delta never asked for
 * tools, so nothing is relayed and nothing commits.  Returns like
 * emit_text. */
static int
emit_tools(struct attempt *a, const char *json, size_t n)
{
	const struct rf_stream_sink *sink = a->run->sink;

	if (n == 0 || sink->tool_delta == NULL)
		return 0;
	if (!a->committed && commit(a) != 0)
		return -1;
	return sink->tool_delta(sink->ud, json, n);
}

/* One upstream SSE event.  Non-zero stops the transfer. */
static int
on_event(void *ud, const char *event, const char *data, size_t len)
{
	struct attempt *a = ud;
	int rc;

	rf_buf_reset(&a->delta);
	rf_buf_reset(&a->tools);
	switch (wire_chunk(a, event, data, len, &a->delta, &a->tools)) {
	case RF_CHUNK_DONE:
		a->done = true;
		return 0;
	case RF_CHUNK_ERROR:
		a->failed = true;
		return 1;
	case RF_CHUNK_MALFORMED:
		a->r->skipped_chunks++;
		if (++a->skipped < 4)
			return 0;
		fail(a, RF_ERR_MALFORMED_RESPONSE, "too many unparseable chunks");
		return 1;
	case RF_CHUNK_DATA:
		break;
	}
	rc = emit_text(a, a->delta.data, a->delta.len);
	if (rc == 0)
		rc = emit_tools(a, a->tools.data, a->tools.len);
	if (rc < 0)
		a->client_gone = true;
	return rc != 0;
}

static int
on_stream_data(void *ud, const char *p, size_t n)
{
	struct attempt *a = ud;
	const struct rf_stream_sink *sink = a->run->sink;
	int rc;

	/* A client that is not reading: leave the bytes with curl (and the
	 * upstream's socket) instead of piling them up here. */
	if (sink->full != NULL && sink->full(sink->ud)) {
		a->paused = true;
		return RF_UP_PAUSE;
	}
	a->last_data = rf_mono_ms();
	rc = rf_sse_feed(&a->parser, p, n);
	if (rc == -1)
		fail(a, RF_ERR_MALFORMED_RESPONSE, "SSE line or event too long");
	return rc != 0;
}

/* Deadlines and keep-alives while waiting on the upstream. */
static int
on_stream_tick(void *ud)
{
	struct attempt *a = ud;
	const struct rf_config *cfg = a->run->w->cfg;
	const struct rf_stream_sink *sink = a->run->sink;
	int64_t now = rf_mono_ms();
	const char *why = NULL;

	if (!a->committed && now - a->t0 > cfg->first_token_timeout_ms)
		why = "no text before the first-token timeout";
	else if (a->committed && !a->paused &&
	    now - a->last_data > cfg->stream_idle_timeout_ms)
		why = "stream idle timeout"; /* paused: the client's deadline */
	else if (now - a->t0 > cfg->stream_timeout_ms)
		why = "stream timeout";
	if (why != NULL) {
		fail(a, RF_ERR_PROVIDER_TIMEOUT, why);
		return 1;
	}
	if (sink->tick(sink->ud) != 0) {
		a->client_gone = true;
		return 1;
	}
	return 0;
}

/* The end of a stream that closed without a transport error. */
static void
stream_eof(struct attempt *a)
{
	const char *junk;

	if (rf_sse_finish(&a->parser) == -1 && !a->failed)
		fail(a, RF_ERR_MALFORMED_RESPONSE, "SSE line or event too long");
	junk = rf_sse_junk(&a->parser);
	if (!a->failed && !a->client_gone && strstr(junk, "\"error\"") != NULL) {
		struct rf_buf scratch = { 0 }, tools = { 0 };

		if (wire_chunk(a, NULL, junk, strlen(junk), &scratch, &tools) ==
		    RF_CHUNK_ERROR)
			a->failed = true;
		rf_buf_free(&scratch);
		rf_buf_free(&tools);
	}
	if (a->failed || a->client_gone)
		return;
	if (!a->committed && a->r->res.safety_block)
		fail_withheld(a);
	else if (!a->committed)
		fail(a, RF_ERR_MALFORMED_RESPONSE, "stream ended without text");
	else if (!a->done && a->r->res.finish_reason[0] == '\0')
		fail(a, RF_ERR_PROVIDER_UNAVAILABLE, "stream closed before completion");
}

/* A finished streamed transfer: how it ended. */
static void
read_stream(struct attempt *a)
{
	struct rf_up_reply *rep = &a->rep;

	if (a->client_gone || a->failed)
		return;
	if (rep->end == RF_UP_DONE && rep->status >= 200 && rep->status < 300) {
		stream_eof(a);
	} else if (rep->end == RF_UP_DONE || rep->end == RF_UP_TOO_BIG) {
		a->ops->classify_error(rep->status, rf_buf_str(&rep->body),
		    rep->body.len, &a->fail);
		a->failed = true;
	} else if (rep->end == RF_UP_TIMEOUT) {
		fail(a, RF_ERR_PROVIDER_TIMEOUT, "stream timeout");
	} else {
		fail(a, RF_ERR_PROVIDER_UNAVAILABLE, rep->curl_err);
	}
}

/* A finished streamed try: how it ended, and its parser given back. */
static void
stream_end(struct attempt *a)
{
	read_stream(a);
	rf_sse_free(&a->parser);
	rf_buf_free(&a->delta);
	rf_buf_free(&a->tools);
}

/* The next look at the deadlines: the nearest of them, or TICK_MS. */
static int64_t
next_check(const struct attempt *a)
{
	const struct rf_config *cfg = a->run->w->cfg;
	int64_t at = rf_mono_ms() + TICK_MS, d;

	d = a->committed ? a->last_data + cfg->stream_idle_timeout_ms :
	    a->t0 + cfg->first_token_timeout_ms;
	if (d + 1 < at)
		at = d + 1;
	if (a->t0 + cfg->stream_timeout_ms + 1 < at)
		at = a->t0 + cfg->stream_timeout_ms + 1;
	return at;
}

/* Deadlines and keep-alives of a stream waiting on its upstream. */
static void
on_stream_timer(struct rf_timer *t)
{
	struct run *run = (struct run *)((char *)t - offsetof(struct run, timer));
	struct attempt *a = &run->a;

	if (on_stream_tick(a) == 0) {
		rf_loop_timer_at(run->w->loop, t, next_check(a));
		return;
	}
	rf_up_cancel(run->xfer);
	run->xfer = NULL;
	try_end(run);
}

static void
streamed_remote(struct attempt *a)
{
	const struct rf_config *cfg = a->run->w->cfg;
	struct run *run = a->run;
	struct rf_up_call call = {
		.pid = a->pid, .req = &run->rq,
		.connect_ms = cfg->connect_timeout_ms,
		.timeout_ms = cfg->stream_timeout_ms,
		.on_data = on_stream_data, .ud = a,
	};

	rf_sse_init(&a->parser, on_event, a);
	rf_buf_init(&a->delta, RF_SSE_MAX_EVENT);
	rf_buf_init(&a->tools, RF_SSE_MAX_EVENT);
	if (built(a) != 0) {
		try_end(run);
		return;
	}
	a->t0 = a->last_data = rf_mono_ms();
	run->timer.cb = on_stream_timer;
	rf_loop_timer_at(run->w->loop, &run->timer, next_check(a));
	start_call(a, &call);
}

/* The end of an in-process stream's try. */
static void
local_end(struct run *run)
{
	rf_result_free(&run->local);
	try_end(run);
}

/* Relay the in-process answer's tokens until one must wait for its pace
 * (RELAYFORGE_MOCK_DELAY_MS between tokens after the first), then its tool
 * calls (each whole, in one delta). */
static void
local_step(struct run *run)
{
	struct attempt *a = &run->a;
	const char *text = rf_buf_str(&run->local.text);
	long delay = run->w->cfg->mock_delay_ms;
	struct rf_buf deltas = { 0 };
	int rc = 0;
	size_t n;

	for (;;) {
		size_t at = run->lpos;

		if ((n = a->ops->next_token(text, &run->lpos)) == 0)
			break;
		if (a->committed && delay > 0 && !run->lwaited) {
			run->lpos = at;
			run->lwaited = true;
			run->phase = PH_LOCAL;
			rf_loop_timer_at(run->w->loop, &run->timer,
			    rf_mono_ms() + delay);
			return;
		}
		run->lwaited = false;
		if ((rc = emit_text(a, text + run->lpos - n, n)) != 0)
			break;
	}
	if (rc == 0 && run->local.tool_calls.len > 0 &&
	    rf_result_tool_deltas(&run->local, &deltas) == 0)
		rc = emit_tools(a, deltas.data, deltas.len);
	if (rc != 0)
		a->client_gone = true;
	rf_buf_free(&deltas);
	local_end(run);
}

static void
on_local_timer(struct rf_timer *t)
{
	struct run *run = (struct run *)((char *)t - offsetof(struct run, timer));

	run->phase = PH_IDLE;
	local_step(run);
}

static void
streamed_local(struct attempt *a)
{
	struct run *run = a->run;
	struct rf_result *res = &a->r->res;
	struct rf_result *local = &run->local;

	rf_result_init(local);
	a->ops->answer(&run->prompt, local);
	snprintf(res->model, sizeof(res->model), "%s", local->model);
	snprintf(res->finish_reason, sizeof(res->finish_reason), "%s",
	    local->finish_reason);
	res->usage = local->usage;
	res->ntool_calls = local->ntool_calls;
	take_result(a);
	a->rep.status = 200;
	run->lpos = 0;
	run->lwaited = false;
	run->timer.cb = on_local_timer;
	local_step(run);
}

static const struct transport streamed = {
	.remote = streamed_remote, .local = streamed_local, .end = stream_end,
};

/* ---- one tier -------------------------------------------------------- */

/* The plain record the decision reads. */
static void
outcome_of(const struct attempt *a, struct rf_try_outcome *o)
{
	enum rf_err code = RF_OK;

	if (a->client_gone)
		code = RF_ERR_CLIENT_CLOSED;
	else if (a->failed)
		code = a->fail.code != RF_OK ? a->fail.code : RF_ERR_INTERNAL;
	*o = (struct rf_try_outcome){
		.code = code, .http_status = a->rep.status,
		.before_response = a->rep.end == RF_UP_CONNECT,
		.retry_after_ms = a->rep.retry_after_ms >= 0 ?
		    a->rep.retry_after_ms : a->fail.retry_after_ms,
		.auth = a->fail.auth, .committed = a->committed,
	};
}

/* This worker has no upstream handle (rf_up_new failed): a network tier
 * cannot be called.  It is recorded as a provider_unavailable try and
 * passed over, at no cost to the provider: the fault is the gateway's. */
static struct rf_decision
no_upstream(struct run *run, int pid)
{
	struct rf_failure f;

	rf_failure_set(&f, RF_ERR_PROVIDER_UNAVAILABLE,
	    "no upstream connection handle in this worker");
	add_attempt(run->r, pid, RF_ATT_FAILED, f.code, NULL, 0, 0, 0);
	name_failure(&f, run->w->cfg->providers[pid].name);
	run->r->fail = f;
	return (struct rf_decision){ .step = RF_STEP_PROMOTE };
}

static void tier_done(struct run *run, const struct rf_decision *d);

/* Start one try of the tier's provider (the run's retry count). */
static void
try_begin(struct run *run)
{
	int pid = run->order[run->tier];
	struct attempt *a = &run->a;

	*a = (struct attempt){ .run = run, .r = run->r, .pid = pid,
		.ops = run->w->cfg->providers[pid].def->ops,
		.retry = run->retry, .t0 = rf_mono_ms() };
	rf_result_reset(&run->r->res);
	rf_failure_set(&a->fail, RF_OK, "");
	rf_up_reply_init(&a->rep);
	run->phase = PH_IDLE;
	if (a->ops->answer != NULL)
		run->transport->local(a);
	else
		run->transport->remote(a);
}

static void
on_pause_timer(struct rf_timer *t)
{
	struct run *run = (struct run *)((char *)t - offsetof(struct run, timer));

	run->retry++;
	try_begin(run);
}

/* The try ended: decide, then retry after a pause, or apply the step's
 * effects and let the walk go on. */
static void
try_end(struct run *run)
{
	struct attempt *a = &run->a;
	struct rf_try_outcome o;
	struct rf_decision d;

	run->phase = PH_IDLE;
	if (a->ops->answer == NULL)
		run->transport->end(a);
	rf_failure_scrub(&a->fail);
	outcome_of(a, &o);
	if (a->client_gone)
		run->client_gone = true;
	add_attempt(run->r, a->pid, o.code == RF_OK ? RF_ATT_OK : RF_ATT_FAILED,
	    o.code, NULL, a->rep.status, (long)(rf_mono_ms() - a->t0),
	    a->retry);
	rf_chain_decide(run->w->cfg, &o, run->req->restart, rf_now_ms(),
	    &run->budget, &d);
	if (d.step == RF_STEP_RETRY) {
		rf_up_reply_free(&a->rep);
		run->phase = PH_PAUSE;
		run->timer.cb = on_pause_timer;
		rf_loop_timer_at(run->w->loop, &run->timer, rf_mono_ms() +
		    pause_between(d.pause_min_ms, d.pause_max_ms));
		return;
	}
	apply(run, a, &o, &d);
	rf_up_reply_free(&a->rep);
	tier_done(run, &d);
}

/* One provider, with the retries the decision allows; its last try's
 * decision goes to tier_done. */
static void
tier_begin(struct run *run, int pid)
{
	const struct rf_provider_ops *ops = run->w->cfg->providers[pid].def->ops;

	run->budget = (struct rf_retry_budget){ 0 };
	run->retry = 0;
	if (ops->answer == NULL && run->w->up == NULL) {
		struct rf_decision d = no_upstream(run, pid);

		tier_done(run, &d);
		return;
	}
	try_begin(run);
}

/* ---- the run ----------------------------------------------------------- */

/* The providers' state at arrival: the store's, read within a few
 * milliseconds (else as last read), with this process's writes the store
 * has not taken yet (src/pstate.c). */
void
rf_chain_states(const struct rf_worker *w, struct rf_provider_state *st)
{
	const char *ids[RF_MAX_PROVIDERS];
	int n = w->cfg->nproviders;

	memset(st, 0, RF_MAX_PROVIDERS * sizeof(*st));
	for (int i = 0; i < n; i++)
		ids[i] = w->cfg->providers[i].id;
	rf_pstate_load(w->store, ids, (size_t)n, st);
}

/* Nothing could be called: every tier skipped. */
static void
nobody_called(struct run *run, int64_t soonest)
{
	struct rf_chain_result *r = run->r;
	int64_t now = rf_now_ms();

	if (soonest > 0) {
		rf_failure_set(&r->fail, RF_ERR_PROVIDER_RATE_LIMITED,
		    "every provider is cooling down");
		snprintf(r->fail.message, sizeof(r->fail.message),
		    "Every provider of the chain is cooling down after rate "
		    "limits or failures.");
		r->retry_after_ms = soonest > now ? soonest - now : 1000;
	} else if (run->unsupported > 0) {
		rf_failure_set(&r->fail, RF_ERR_PROVIDER_UNAVAILABLE,
		    "every configured provider skipped: unsupported");
		snprintf(r->fail.message, sizeof(r->fail.message),
		    "No configured provider of the chain can express this "
		    "request (its tiers were skipped as unsupported).");
	} else {
		rf_failure_set(&r->fail, RF_ERR_PROVIDER_UNAVAILABLE,
		    "no provider is configured");
		snprintf(r->fail.message, sizeof(r->fail.message),
		    "No provider of the chain is configured and the mock is off.");
	}
	r->err = r->fail.code;
}

/* Skip pid when it cannot be called (recorded as skipped); true = skip. */
static bool
skip(struct run *run, int pid, int64_t now, int64_t *soonest)
{
	const struct rf_provider_conf *pc = &run->w->cfg->providers[pid];
	int64_t cd = run->st[pid].cooldown_until_ms;

	if (!pc->configured) {
		add_attempt(run->r, pid, RF_ATT_SKIPPED, RF_OK, "unconfigured", 0,
		    -1, 0);
		return true;
	}
	if (pc->def->builtin || cd <= now)
		return false;
	add_attempt(run->r, pid, RF_ATT_SKIPPED, RF_OK, "cooling_down", 0, -1, 0);
	if (*soonest == 0 || cd < *soonest)
		*soonest = cd;
	return true;
}

/* Make pid's request ready before it is called: its upstream model for
 * this request ("provider/model"), and for a network tier the upstream
 * request itself, built once for every try of the tier.  Returns
 * RF_BUILD_UNSUPPORTED when the wire cannot express the request: the
 * tier is then skipped, at no cost to the provider (it was never
 * asked); any other failure to build fails the tier's tries. */
static int
prepare(struct run *run, int pid)
{
	const struct rf_provider_conf *pc = &run->w->cfg->providers[pid];

	run->prompt.model = pid == run->req->model_pid ?
	    run->req->upstream_model : NULL;
	if (pc->def->ops->answer != NULL)
		return 0;
	run->build_rc = pc->def->ops->build(pc, &run->prompt,
	    run->sink != NULL, &run->rq);
	if (run->build_rc != RF_BUILD_UNSUPPORTED)
		return 0;
	add_attempt(run->r, pid, RF_ATT_SKIPPED, RF_OK, "unsupported", 0, -1, 0);
	run->unsupported++;
	return RF_BUILD_UNSUPPORTED;
}

static void finish(struct run *run, enum rf_step step);

/* Walk the order from run->tier: skip what cannot be called, start the
 * next tier that can; at the end of the order, finish. */
static void
advance(struct run *run)
{
	struct rf_chain_result *r = run->r;
	int64_t now = rf_now_ms();

	for (; run->tier < run->norder; run->tier++) {
		int pid = run->order[run->tier];

		if (run->last >= 0 && !run->req->fallback)
			break; /* the first provider called gave the final answer */
		if (skip(run, pid, now, &run->soonest) || prepare(run, pid) != 0)
			continue;
		if (r->attempted < 0)
			r->attempted = pid;
		if (announce(run, pid) != 0) {
			run->client_gone = true;
			finish(run, RF_STEP_FINAL);
			return;
		}
		run->last = pid;
		tier_begin(run, pid);
		return;
	}
	finish(run, run->last_step);
}

static void
tier_done(struct run *run, const struct rf_decision *d)
{
	struct rf_chain_result *r = run->r;
	int pid = run->order[run->tier];

	run->last_step = d->step;
	if (d->step == RF_STEP_OK)
		set_flags(run, pid);
	if (d->step != RF_STEP_PROMOTE) {
		finish(run, d->step);
		return;
	}
	run->pending_from = pid;
	run->pending_code = r->fail.code;
	run->pending_restart = d->restart;
	run->tier++;
	advance(run);
}

/* The walk is over: the result's final fields, then the caller's done. */
static void
finish(struct run *run, enum rf_step step)
{
	struct rf_chain_result *r = run->r;
	rf_chain_done_fn done = run->done;
	void *ud = run->done_ud;

	if (step == RF_STEP_OK) {
		r->err = RF_OK;
		if (r->res.finish_reason[0] == '\0')
			snprintf(r->res.finish_reason,
			    sizeof(r->res.finish_reason), "stop");
	} else if (run->last < 0 && !run->client_gone) {
		nobody_called(run, run->soonest);
	} else {
		if (run->last >= 0)
			set_flags(run, run->last);
		if (run->client_gone)
			r->err = RF_ERR_CLIENT_CLOSED;
		else if (run->any_committed)
			r->err = RF_ERR_STREAM_INTERRUPTED;
		else
			r->err = r->fail.code;
	}
	rf_up_req_free(&run->rq);
	r->latency_ms = (long)(rf_mono_ms() - r->started_mono);
	if (run->handle != NULL)
		*run->handle = NULL;
	free(run);
	done(ud);
}

void
rf_chain_start(struct rf_worker *w, const struct rf_chat_req *req,
    const struct rf_stream_sink *sink, const struct rf_provider_state *st,
    struct rf_chain_result *r, struct rf_chain_run **handle,
    rf_chain_done_fn done, void *ud)
{
	struct run *run = malloc(sizeof(*run));

	if (run == NULL) {
		rf_failure_set(&r->fail, RF_ERR_INTERNAL, "out of memory");
		r->err = RF_ERR_INTERNAL;
		if (handle != NULL)
			*handle = NULL;
		done(ud);
		return;
	}
	*run = (struct run){ .w0 = *w, .w = &run->w0, .req = req, .sink = sink,
		.r = r, .pending_from = -1, .last = -1,
		.last_step = RF_STEP_PROMOTE, .handle = handle, .done = done,
		.done_ud = ud, .transport = sink != NULL ? &streamed : &buffered };
	if (handle != NULL)
		*handle = (struct rf_chain_run *)run;
	r->stream = sink != NULL;
	rf_up_req_init(&run->rq);
	run->prompt = (struct rf_prompt){ .msgs = req->msgs, .nmsgs = req->nmsgs,
		.system = req->system, .max_tokens = req->max_tokens,
		.temperature = req->temperature,
		.oai = req->oai.messages != NULL ? &req->oai : NULL };
	build_order(run);
	if (st != NULL)
		memcpy(run->st, st, sizeof(run->st));
	else
		rf_chain_states(run->w, run->st);
	advance(run);
}

void
rf_chain_resume(struct rf_chain_run *h)
{
	struct run *run = (struct run *)h;

	if (run == NULL || run->phase != PH_XFER || !run->a.paused)
		return;
	run->a.paused = false;
	run->a.last_data = rf_mono_ms();
	rf_up_resume(run->xfer);
}

void
rf_chain_abort(struct rf_chain_run *h)
{
	struct run *run = (struct run *)h;

	if (run == NULL)
		return;
	switch (run->phase) {
	case PH_XFER:
		rf_loop_timer_stop(run->w->loop, &run->timer);
		rf_up_cancel(run->xfer);
		run->xfer = NULL;
		run->a.client_gone = true;
		try_end(run);
		break;
	case PH_LOCAL:
		rf_loop_timer_stop(run->w->loop, &run->timer);
		run->a.client_gone = true;
		local_end(run);
		break;
	case PH_PAUSE:
		/* Between two tries of a tier: the failed try is in the
		 * trail already; no one is left to answer. */
		rf_loop_timer_stop(run->w->loop, &run->timer);
		run->client_gone = true;
		finish(run, RF_STEP_FINAL);
		break;
	case PH_IDLE:
		break;
	}
}

static void
set_done(void *ud)
{
	*(bool *)ud = true;
}

void
rf_chain_run(struct rf_worker *w, const struct rf_chat_req *req,
    const struct rf_stream_sink *sink, struct rf_chain_result *r)
{
	struct rf_worker w1 = *w;
	struct rf_loop *own = NULL;
	bool done = false;

	if (w1.loop == NULL)
		w1.loop = w1.up != NULL ? rf_up_loop(w1.up) : (own = rf_loop_new());
	if (w1.loop == NULL) {
		rf_failure_set(&r->fail, RF_ERR_INTERNAL, "out of memory");
		r->err = RF_ERR_INTERNAL;
		return;
	}
	rf_chain_start(&w1, req, sink, NULL, r, NULL, set_done, &done);
	while (!done)
		if (rf_loop_run_once(w1.loop, -1) < 0)
			abort(); /* epoll itself failed: nothing can go on */
	rf_loop_free(own);
}
