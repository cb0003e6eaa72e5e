/*
 * chain: the fallback engine of SPEC section 5.
 *
 * rf_chain_run() walks the order (the chain for "auto", or the chosen
 * provider first).  Each tier is skipped (unconfigured, cooling down),
 * tried (with the same-provider retries the SPEC allows), and either
 * answers, fails finally (a safety block, a client that hung up, a stream
 * broken after its first token) or promotes to the next tier.
 *
 * Streams commit to a provider on its first real text; until then every
 * failure still falls back (with a "fallback" meta event).  After it, a
 * failure ends the stream -- or, with streamRecovery "restart", the next
 * tier streams its whole answer after a "restart" meta event.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "sse.h"
#include "store.h"
#include "upstream.h"

#define TEN_MINUTES_MS (10 * 60 * 1000)

/* How one tier ended. */
enum tier_end {
	TIER_OK,        /* answered */
	TIER_FAILED,    /* failed; may promote */
	TIER_FINAL,     /* failed; never promote (safety block, client gone) */
	TIER_BROKEN     /* a stream failed after its first token */
};

/* A stream is tracked across tiers by these flags of the whole request. */
struct run {
	struct rf_worker *w;
	const struct rf_chat_req *req;
	const struct rf_stream_sink *sink;
	struct rf_chain_result *r;
	int order[RF_MAX_PROVIDERS];
	int norder;
	struct rf_prompt prompt;
	struct rf_provider_state st[RF_MAX_PROVIDERS]; /* shared state at arrival */
	int pending_from;        /* stream: a failed tier to announce, -1 none */
	enum rf_err pending_code;
	bool pending_restart;    /* the announcement is a restart */
	bool any_committed;      /* some provider streamed text */
	bool client_gone;
};

/* State of one try of one provider while streaming. */
struct stream_try {
	struct run *run;
	const struct rf_stream_sink *sink;
	struct rf_chain_result *r;
	const struct rf_provider_ops *ops;
	int pid;
	struct rf_sse_parser parser;
	struct rf_buf delta;
	struct rf_failure fail;
	bool committed;    /* real text arrived from this provider */
	bool done;         /* [DONE] seen */
	bool failed;       /* an in-stream error, too many bad chunks, timeout */
	bool client_gone;
	int skipped;
	int64_t t0;        /* monotonic start of the try */
	int64_t last_data; /* monotonic time of the last upstream byte */
};

void rf_chain_result_init(struct rf_chain_result *r)
{
	memset(r, 0, sizeof(*r));
	rf_result_init(&r->res);
	r->attempted = -1;
	r->final_pid = -1;
	r->ttft_ms = -1;
	r->retry_after_ms = -1;
	r->fail.retry_after_ms = -1;
}

void rf_chain_result_free(struct rf_chain_result *r)
{
	rf_result_free(&r->res);
}

/* "" as NULL: the log form marks absent strings with NULL. */
static const char *nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

void rf_chain_entry(const struct rf_chat_req *req,
    const struct rf_chain_result *r, const char *endpoint, int status,
    struct rf_log_entry *e)
{
	bool ok = r->err == RF_OK;
	const char *strategy = req->strategy < 0 ? NULL : rf_config_id(req->strategy);

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

bool rf_chain_retryable(enum rf_err code, long status, bool before_response)
{
	if (code == RF_ERR_PROVIDER_UNAVAILABLE && status == 0)
		return before_response;
	return status == 500 || status == 502 || status == 503 || status == 504;
}

int64_t rf_chain_cooldown_until(const struct rf_config *cfg,
    const struct rf_failure *f, long status, int64_t retry_after_ms,
    int64_t now_ms)
{
	int64_t ra = retry_after_ms >= 0 ? retry_after_ms : f->retry_after_ms;

	if (f->auth)
		return now_ms + TEN_MINUTES_MS;
	if (f->code == RF_ERR_PROVIDER_RATE_LIMITED || status == 429) {
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

static void add_attempt(struct rf_chain_result *r, int pid, enum rf_att_kind kind,
    enum rf_err code, const char *reason, long status, long latency, int retry)
{
	struct rf_log_attempt *a;

	if (r->nattempts == RF_MAX_ATTEMPTS)
		return;
	a = &r->attempts[r->nattempts++];
	a->provider = rf_config_id(pid);
	a->outcome = kind == RF_ATT_OK ? "ok" :
	    kind == RF_ATT_SKIPPED ? "skipped" : rf_err_code(code);
	a->reason = kind == RF_ATT_SKIPPED ? reason : NULL;
	a->http_status = (int)status;
	a->latency_ms = kind == RF_ATT_SKIPPED ? -1 : latency;
	a->retry = retry;
}

/* Jittered 100-300 ms pause before a same-provider retry. */
static void retry_pause(void)
{
	unsigned int j;
	char id[33];

	rf_request_id(id);
	j = (unsigned int)strtoul(id + 24, NULL, 16);
	rf_sleep_ms(100 + (long)(j % 201));
}

static void build_order(struct run *run)
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
static void set_flags(struct run *run, int pid)
{
	struct rf_chain_result *r = run->r;

	r->final_pid = pid;
	r->fallback = r->attempted >= 0 && pid != r->attempted;
	r->demo = run->w->cfg->providers[pid].def->builtin;
	r->degraded = pid != run->order[0] || r->demo;
}

/* Tell the client about the previous tier's failure, now that we know who
 * takes over.  Returns -1 when the client has gone. */
static int announce(struct run *run, int to)
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

static void record_failure(struct run *run, int pid, const struct rf_failure *f,
    long status, int64_t retry_after_ms)
{
	const struct rf_config *cfg = run->w->cfg;
	int64_t now = rf_now_ms();
	int64_t until = rf_chain_cooldown_until(cfg, f, status, retry_after_ms, now);
	int failures = 0;

	if (status == 429 && until > now)
		run->r->retry_after_ms = until - now;
	if (run->w->store == NULL)
		return;
	/* The store bumps the shared streak; the threshold is decided here,
	 * and costs a second write only when it is reached. */
	if (rf_store_provider_failed(run->w->store, cfg->providers[pid].id,
	    rf_err_code(f->code), now, until, &failures) != 0)
		return;
	until = rf_chain_threshold_cooldown(cfg, failures, until, now);
	if (until > 0)
		rf_store_provider_cooldown(run->w->store, cfg->providers[pid].id,
		    until, "failure_threshold");
}

/* Providers send rate-limit headers on every answer; writing them each
 * time put a store write before every answer.  They are written when a
 * figure reaches 0 (the provider must cool down at once, in every process)
 * and otherwise at most every QUOTA_WRITE_MS per provider and process. */
#define QUOTA_WRITE_MS 5000
static _Atomic int64_t quota_written[RF_MAX_PROVIDERS];

static void record_quota(struct run *run, int pid, const struct rf_up_reply *rep)
{
	const struct rf_quota *q = &rep->quota;
	int64_t now = rf_now_ms(), until;
	bool empty = q->remaining_requests == 0 || q->remaining_tokens == 0;

	if (run->w->store == NULL || !q->have)
		return;
	if (!empty && now - atomic_load(&quota_written[pid]) < QUOTA_WRITE_MS)
		return;
	atomic_store(&quota_written[pid], now);
	rf_store_provider_quota(run->w->store, run->w->cfg->providers[pid].id,
	    q->remaining_requests, q->remaining_tokens, q->reset_at_ms, now);
	/* A second write only when a figure reached 0 before its reset. */
	until = rf_chain_quota_cooldown(q, now);
	if (until > 0)
		rf_store_provider_cooldown(run->w->store,
		    run->w->cfg->providers[pid].id, until, "quota");
}

/* A tier answered: clear its shared failure state if it had any. */
static void record_ok(struct run *run, int pid)
{
	const struct rf_provider_state *st = &run->st[pid];

	if (run->w->store != NULL && !run->w->cfg->providers[pid].def->builtin &&
	    (st->consecutive_failures > 0 || st->cooldown_until_ms > 0))
		rf_store_provider_ok(run->w->store, run->w->cfg->providers[pid].id, rf_now_ms());
}

/* A failure message that names the provider ("Groq returned a ..."). */
static void name_failure(struct rf_failure *f, const char *name)
{
	const char *m = rf_err_message(f->code);

	if (f->message[0] == '\0' && strncmp(m, "The provider ", 13) == 0)
		snprintf(f->message, sizeof(f->message), "%s %s", name, m + 13);
}

/* Turn a finished non-streamed transfer into a result or a failure. */
static enum tier_end read_reply(const struct rf_provider_ops *ops, struct rf_up_reply *rep,
    struct rf_result *res, struct rf_failure *f)
{
	switch (rep->end) {
	case RF_UP_DONE:
		break;
	case RF_UP_TIMEOUT:
		rf_failure_set(f, RF_ERR_PROVIDER_TIMEOUT, "timeout waiting for upstream");
		return TIER_FAILED;
	case RF_UP_TOO_BIG:
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE, "upstream body too large");
		return TIER_FAILED;
	default:
		rf_failure_set(f, RF_ERR_PROVIDER_UNAVAILABLE, rep->curl_err);
		return TIER_FAILED;
	}
	if (rep->status < 200 || rep->status >= 300) {
		ops->classify_error(rep->status, rf_buf_str(&rep->body), rep->body.len, f);
		return f->code == RF_ERR_CONTENT_FILTERED ? TIER_FINAL : TIER_FAILED;
	}
	if (ops->parse_response(rf_buf_str(&rep->body), rep->body.len, res, f) != 0)
		return TIER_FAILED;
	if (res->text.len == 0) {
		if (res->safety_block) {
			rf_failure_set(f, RF_ERR_CONTENT_FILTERED, "upstream withheld the answer");
			snprintf(f->message, sizeof(f->message),
			    "The provider withheld the answer for safety (%s).",
			    res->safety_reason[0] ? res->safety_reason : "content_filter");
			return TIER_FINAL;
		}
		rf_failure_set(f, RF_ERR_MALFORMED_RESPONSE, "empty text in upstream response");
		return TIER_FAILED;
	}
	return TIER_OK;
}

/* Should this failed try be repeated on the same provider?  Sleeps the
 * pause itself.  *used_429 / *used_5xx count what was spent. */
static bool retry_same(struct run *run, const struct rf_up_reply *rep,
    const struct rf_failure *f, bool *used_429, int *used_5xx)
{
	const struct rf_config *cfg = run->w->cfg;
	int64_t ra = rep->retry_after_ms >= 0 ? rep->retry_after_ms : f->retry_after_ms;

	if (rep->status == 429 && !*used_429 && ra >= 0 && ra <= cfg->retry_after_max_ms) {
		*used_429 = true;
		rf_sleep_ms((long)ra);
		return true;
	}
	if (*used_5xx < cfg->retries &&
	    rf_chain_retryable(f->code, rep->status, rep->end == RF_UP_CONNECT)) {
		(*used_5xx)++;
		retry_pause();
		return true;
	}
	return false;
}

/* A whole (non-streamed) call: build, send, read. */
static enum tier_end call_once(struct run *run, int pid, struct rf_up_reply *rep,
    struct rf_failure *f)
{
	const struct rf_config *cfg = run->w->cfg;
	const struct rf_provider_conf *pc = &cfg->providers[pid];
	const struct rf_provider_ops *ops = pc->def->ops;
	struct rf_up_req rq;
	enum tier_end end;

	rf_up_req_init(&rq);
	rf_result_reset(&run->r->res);
	if (ops->build(pc, &run->prompt, false, &rq) != 0) {
		rf_failure_set(f, RF_ERR_INTERNAL, "could not build the upstream request");
		end = TIER_FAILED;
		goto out;
	}
	struct rf_up_call call = {
		.pid = pid, .req = &rq,
		.connect_ms = cfg->connect_timeout_ms, .timeout_ms = cfg->timeout_ms,
	};
	rf_up_perform(run->w->up, &call, rep);
	end = read_reply(ops, rep, &run->r->res, f);
out:
	rf_up_req_free(&rq);
	return end;
}

/* Chat: one provider with its retries. */
static enum tier_end chat_tier(struct run *run, int pid)
{
	struct rf_chain_result *r = run->r;
	const struct rf_provider_ops *ops = run->w->cfg->providers[pid].def->ops;
	bool used_429 = false;
	int used_5xx = 0;
	int retry = 0;

	if (ops->answer != NULL) { /* in-process: no transfer, no retries */
		int64_t t0 = rf_mono_ms();
		rf_result_reset(&r->res);
		ops->answer(&run->prompt, &r->res);
		add_attempt(r, pid, RF_ATT_OK, RF_OK, NULL, 200, (long)(rf_mono_ms() - t0), 0);
		return TIER_OK;
	}
	for (;;) {
		struct rf_up_reply rep;
		struct rf_failure f;
		int64_t t0 = rf_mono_ms();
		enum tier_end end;

		rf_up_reply_init(&rep);
		rf_failure_set(&f, RF_OK, "");
		end = call_once(run, pid, &rep, &f);
		add_attempt(r, pid, end == TIER_OK ? RF_ATT_OK : RF_ATT_FAILED, f.code,
		    NULL, rep.status, (long)(rf_mono_ms() - t0), retry);
		if (end == TIER_FAILED && retry_same(run, &rep, &f, &used_429, &used_5xx)) {
			rf_up_reply_free(&rep);
			retry++;
			continue;
		}
		if (end == TIER_FAILED)
			record_failure(run, pid, &f, rep.status, rep.retry_after_ms);
		else if (end == TIER_OK)
			record_ok(run, pid);
		record_quota(run, pid, &rep);
		if (end != TIER_OK) {
			name_failure(&f, run->w->cfg->providers[pid].name);
			r->fail = f;
		}
		rf_up_reply_free(&rep);
		return end;
	}
}

/* ---- streaming ------------------------------------------------------- */

/* The first real text of this try: commit to its provider. */
static int commit(struct stream_try *t)
{
	struct run *run = t->run;
	struct rf_chain_result *r = t->r;
	size_t used;

	t->committed = true;
	if (run->any_committed)
		r->restarts++;
	run->any_committed = true;
	set_flags(run, t->pid);
	if (r->ttft_ms < 0)
		r->ttft_ms = (long)(rf_mono_ms() - r->started_mono);
	used = strlen(r->streamed);
	snprintf(r->streamed + used, sizeof(r->streamed) - used, "%s%s",
	    used ? "," : "", run->w->cfg->providers[t->pid].id);
	r->partial_chars = 0;
	return t->sink->start(t->sink->ud, r);
}

/* Relay a piece of text.  Returns 0, -1 (client gone) or 1 (stop). */
static int emit_text(struct stream_try *t, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (!t->committed && commit(t) != 0)
		return -1;
	if (rf_buf_append(&t->r->res.text, p, n) != 0) {
		rf_failure_set(&t->fail, RF_ERR_MALFORMED_RESPONSE, "answer too long");
		t->failed = true;
		return 1;
	}
	t->r->partial_chars += (long)rf_utf8_len(p, n);
	return t->sink->token(t->sink->ud, p, n);
}

/* One upstream SSE event.  Non-zero stops the transfer. */
static int on_event(void *ud, const char *event, const char *data, size_t len)
{
	struct stream_try *t = ud;
	int rc;

	rf_buf_reset(&t->delta);
	switch (t->ops->parse_chunk(event, data, len, &t->r->res, &t->delta, &t->fail)) {
	case RF_CHUNK_DONE:
		t->done = true;
		return 0;
	case RF_CHUNK_ERROR:
		t->failed = true;
		return 1;
	case RF_CHUNK_MALFORMED:
		t->r->skipped_chunks++;
		if (++t->skipped < 4)
			return 0;
		rf_failure_set(&t->fail, RF_ERR_MALFORMED_RESPONSE, "too many unparseable chunks");
		t->failed = true;
		return 1;
	case RF_CHUNK_DATA:
		break;
	}
	rc = emit_text(t, t->delta.data, t->delta.len);
	if (rc < 0)
		t->client_gone = true;
	return rc != 0;
}

static int on_stream_data(void *ud, const char *p, size_t n)
{
	struct stream_try *t = ud;
	int rc;

	t->last_data = rf_mono_ms();
	rc = rf_sse_feed(&t->parser, p, n);
	if (rc == -1) {
		rf_failure_set(&t->fail, RF_ERR_MALFORMED_RESPONSE, "SSE line or event too long");
		t->failed = true;
	}
	return rc != 0;
}

/* Deadlines and keep-alives while waiting on the upstream. */
static int on_stream_tick(void *ud)
{
	struct stream_try *t = ud;
	const struct rf_config *cfg = t->run->w->cfg;
	int64_t now = rf_mono_ms();
	const char *why = NULL;

	if (!t->committed && now - t->t0 > cfg->first_token_timeout_ms)
		why = "no text before the first-token timeout";
	else if (t->committed && now - t->last_data > cfg->stream_idle_timeout_ms)
		why = "stream idle timeout";
	else if (now - t->t0 > cfg->stream_timeout_ms)
		why = "stream timeout";
	if (why != NULL) {
		rf_failure_set(&t->fail, RF_ERR_PROVIDER_TIMEOUT, why);
		t->failed = true;
		return 1;
	}
	if (t->sink->tick(t->sink->ud) != 0) {
		t->client_gone = true;
		return 1;
	}
	return 0;
}

/* The end of a stream that closed without a transport error. */
static void stream_eof(struct stream_try *t)
{
	const char *junk;

	if (rf_sse_finish(&t->parser) == -1 && !t->failed) {
		rf_failure_set(&t->fail, RF_ERR_MALFORMED_RESPONSE, "SSE line or event too long");
		t->failed = true;
	}
	junk = rf_sse_junk(&t->parser);
	if (!t->failed && !t->client_gone && strstr(junk, "\"error\"") != NULL) {
		struct rf_buf scratch = { 0 };
		if (t->ops->parse_chunk(NULL, junk, strlen(junk), &t->r->res, &scratch,
		    &t->fail) == RF_CHUNK_ERROR)
			t->failed = true;
		rf_buf_free(&scratch);
	}
	if (t->failed || t->client_gone)
		return;
	if (!t->committed) {
		if (t->r->res.safety_block) {
			rf_failure_set(&t->fail, RF_ERR_CONTENT_FILTERED, "upstream withheld the answer");
			snprintf(t->fail.message, sizeof(t->fail.message),
			    "The provider withheld the answer for safety (%s).",
			    t->r->res.safety_reason[0] ? t->r->res.safety_reason : "content_filter");
		} else {
			rf_failure_set(&t->fail, RF_ERR_MALFORMED_RESPONSE, "stream ended without text");
		}
		t->failed = true;
	} else if (!t->done && t->r->res.finish_reason[0] == '\0') {
		rf_failure_set(&t->fail, RF_ERR_PROVIDER_UNAVAILABLE, "stream closed before completion");
		t->failed = true;
	}
}

/* Map a finished streamed transfer to a tier end. */
static enum tier_end stream_outcome(struct stream_try *t, struct rf_up_reply *rep)
{
	if (!t->client_gone && !t->failed) {
		if (rep->end == RF_UP_DONE && rep->status >= 200 && rep->status < 300) {
			stream_eof(t);
		} else if (rep->end == RF_UP_DONE || rep->end == RF_UP_TOO_BIG) {
			t->ops->classify_error(rep->status, rf_buf_str(&rep->body), rep->body.len, &t->fail);
			t->failed = true;
		} else if (rep->end == RF_UP_TIMEOUT) {
			rf_failure_set(&t->fail, RF_ERR_PROVIDER_TIMEOUT, "stream timeout");
			t->failed = true;
		} else {
			rf_failure_set(&t->fail, RF_ERR_PROVIDER_UNAVAILABLE, rep->curl_err);
			t->failed = true;
		}
	}
	if (t->client_gone)
		return TIER_FINAL;
	if (!t->failed)
		return TIER_OK;
	if (t->fail.code == RF_ERR_CONTENT_FILTERED && !t->committed)
		return TIER_FINAL;
	return t->committed ? TIER_BROKEN : TIER_FAILED;
}

static enum tier_end stream_call(struct stream_try *t, struct rf_up_reply *rep)
{
	struct run *run = t->run;
	const struct rf_config *cfg = run->w->cfg;
	const struct rf_provider_conf *pc = &cfg->providers[t->pid];
	struct rf_up_req rq;
	enum tier_end end = TIER_FAILED;

	rf_up_req_init(&rq);
	if (t->ops->build(pc, &run->prompt, true, &rq) != 0) {
		rf_failure_set(&t->fail, RF_ERR_INTERNAL, "could not build the upstream request");
		t->failed = true;
		goto out;
	}
	struct rf_up_call call = {
		.pid = t->pid, .req = &rq,
		.connect_ms = cfg->connect_timeout_ms, .timeout_ms = cfg->stream_timeout_ms,
		.on_data = on_stream_data, .on_tick = on_stream_tick, .ud = t,
	};
	t->t0 = t->last_data = rf_mono_ms();
	rf_up_perform(run->w->up, &call, rep);
	end = stream_outcome(t, rep);
out:
	rf_up_req_free(&rq);
	return end;
}

/* An in-process provider streams its answer token by token. */
static enum tier_end stream_builtin(struct stream_try *t)
{
	struct rf_result local;
	size_t pos = 0, n;
	const char *text;
	enum tier_end end = TIER_OK;

	rf_result_init(&local);
	t->ops->answer(&t->run->prompt, &local);
	snprintf(t->r->res.model, sizeof(t->r->res.model), "%s", local.model);
	snprintf(t->r->res.finish_reason, sizeof(t->r->res.finish_reason), "%s", local.finish_reason);
	t->r->res.usage = local.usage;
	text = rf_buf_str(&local.text);
	while ((n = t->ops->next_token(text, &pos)) > 0) {
		if (t->committed && t->run->w->cfg->mock_delay_ms > 0)
			rf_sleep_ms(t->run->w->cfg->mock_delay_ms);
		if (emit_text(t, text + pos - n, n) != 0) {
			t->client_gone = true;
			end = TIER_FINAL;
			break;
		}
	}
	rf_result_free(&local);
	return end;
}

/* Stream: one provider with its pre-commit retries. */
static enum tier_end stream_tier(struct run *run, int pid)
{
	struct rf_chain_result *r = run->r;
	bool used_429 = false;
	int used_5xx = 0;

	for (int retry = 0;; retry++) {
		struct stream_try t = { .run = run, .sink = run->sink, .r = r, .pid = pid,
			.ops = run->w->cfg->providers[pid].def->ops };
		struct rf_up_reply rep;
		int64_t t0 = rf_mono_ms();
		enum tier_end end;

		rf_result_reset(&r->res);
		rf_failure_set(&t.fail, RF_OK, "");
		rf_up_reply_init(&rep);
		rf_sse_init(&t.parser, on_event, &t);
		rf_buf_init(&t.delta, RF_SSE_MAX_EVENT);
		end = t.ops->answer != NULL ? stream_builtin(&t) : stream_call(&t, &rep);
		if (t.ops->answer != NULL)
			rep.status = 200;
		rf_sse_free(&t.parser);
		rf_buf_free(&t.delta);
		if (t.client_gone)
			run->client_gone = true;
		add_attempt(r, pid, end == TIER_OK ? RF_ATT_OK : RF_ATT_FAILED,
		    t.client_gone ? RF_ERR_CLIENT_CLOSED : t.fail.code, NULL,
		    rep.status, (long)(rf_mono_ms() - t0), retry);
		if (end == TIER_FAILED && retry_same(run, &rep, &t.fail, &used_429, &used_5xx)) {
			rf_up_reply_free(&rep);
			continue;
		}
		if (end == TIER_FAILED || end == TIER_BROKEN)
			record_failure(run, pid, &t.fail, rep.status, rep.retry_after_ms);
		else if (end == TIER_OK)
			record_ok(run, pid);
		record_quota(run, pid, &rep);
		if (end != TIER_OK) {
			name_failure(&t.fail, run->w->cfg->providers[pid].name);
			r->fail = t.fail;
		}
		rf_up_reply_free(&rep);
		return end;
	}
}

/* ---- the run ----------------------------------------------------------- */

static void load_states(struct run *run)
{
	const char *ids[RF_MAX_PROVIDERS];
	int n = run->w->cfg->nproviders;

	memset(run->st, 0, sizeof(run->st));
	if (run->w->store == NULL)
		return;
	for (int i = 0; i < n; i++)
		ids[i] = run->w->cfg->providers[i].id;
	rf_store_provider_states(run->w->store, ids, (size_t)n, run->st);
}

/* Nothing could be called: every tier skipped. */
static void nobody_called(struct run *run, int64_t soonest)
{
	struct rf_chain_result *r = run->r;
	int64_t now = rf_now_ms();

	if (soonest > 0) {
		rf_failure_set(&r->fail, RF_ERR_PROVIDER_RATE_LIMITED, "every provider is cooling down");
		snprintf(r->fail.message, sizeof(r->fail.message),
		    "Every provider of the chain is cooling down after rate limits or failures.");
		r->retry_after_ms = soonest > now ? soonest - now : 1000;
	} else {
		rf_failure_set(&r->fail, RF_ERR_PROVIDER_UNAVAILABLE, "no provider is configured");
		snprintf(r->fail.message, sizeof(r->fail.message),
		    "No provider of the chain is configured and the mock is off.");
	}
	r->err = r->fail.code;
}

/* Walk the order.  Returns how the last tier ended; *last = last called. */
static enum tier_end walk(struct run *run, int *last, int64_t *soonest)
{
	const struct rf_config *cfg = run->w->cfg;
	struct rf_chain_result *r = run->r;
	enum tier_end end = TIER_FAILED;
	int64_t now = rf_now_ms();

	for (int i = 0; i < run->norder; i++) {
		int pid = run->order[i];
		int64_t cd = run->st[pid].cooldown_until_ms;

		if (*last >= 0 && !run->req->fallback)
			break; /* the first provider called gave the final answer */
		if (!cfg->providers[pid].configured) {
			add_attempt(r, pid, RF_ATT_SKIPPED, RF_OK, "unconfigured", 0, -1, 0);
			continue;
		}
		if (!cfg->providers[pid].def->builtin && cd > now) {
			add_attempt(r, pid, RF_ATT_SKIPPED, RF_OK, "cooling_down", 0, -1, 0);
			if (*soonest == 0 || cd < *soonest)
				*soonest = cd;
			continue;
		}
		if (r->attempted < 0)
			r->attempted = pid;
		if (announce(run, pid) != 0) {
			run->client_gone = true;
			return TIER_FINAL;
		}
		*last = pid;
		end = run->sink != NULL ? stream_tier(run, pid) : chat_tier(run, pid);
		if (end == TIER_OK) {
			set_flags(run, pid);
			return end;
		}
		if (end == TIER_FINAL || (end == TIER_BROKEN && !run->req->restart))
			return end;
		run->pending_from = pid;
		run->pending_code = r->fail.code;
		run->pending_restart = end == TIER_BROKEN;
	}
	return end;
}

void rf_chain_run(struct rf_worker *w, const struct rf_chat_req *req,
    const struct rf_stream_sink *sink, struct rf_chain_result *r)
{
	struct run run = { .w = w, .req = req, .sink = sink, .r = r, .pending_from = -1 };
	int last = -1;
	int64_t soonest = 0;
	enum tier_end end;

	r->stream = sink != NULL;
	run.prompt = (struct rf_prompt){ .msgs = req->msgs, .nmsgs = req->nmsgs,
		.system = req->system, .max_tokens = req->max_tokens,
		.temperature = req->temperature };
	build_order(&run);
	load_states(&run);
	end = walk(&run, &last, &soonest);
	if (end == TIER_OK) {
		r->err = RF_OK;
		if (r->res.finish_reason[0] == '\0')
			snprintf(r->res.finish_reason, sizeof(r->res.finish_reason), "stop");
	} else if (last < 0 && !run.client_gone) {
		nobody_called(&run, soonest);
	} else {
		if (last >= 0)
			set_flags(&run, last);
		if (run.client_gone)
			r->err = RF_ERR_CLIENT_CLOSED;
		else if (run.any_committed)
			r->err = RF_ERR_STREAM_INTERRUPTED;
		else
			r->err = r->fail.code;
	}
	r->latency_ms = (long)(rf_mono_ms() - r->started_mono);
}
