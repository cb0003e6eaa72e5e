/*
 * handlers: chat, stream and health.  Chat and stream share the request
 * parsing (contract) and the engine (chain); they differ only in how the
 * answer leaves: one JSON document, or SSE events flushed one by one.
 * The log row is queued after the answer has left (logq writes it in
 * batches on its own thread), so the store never holds up a client, and a
 * failed write only marks /health degraded.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "contract.h"
#include "handlers.h"
#include "logq.h"
#include "reply.h"
#include "sse.h"
#include "store.h"

#ifndef RF_VERSION
#define RF_VERSION "0.1.0"
#endif
#define KEEPALIVE_MS 10000
#define PREVIEW_CHARS 120

static atomic_bool log_failed;

bool rf_handlers_log_failed(void)
{
	return atomic_load(&log_failed) || rf_logq_failed();
}

static const char *pid_id(const struct rf_worker *w, int pid)
{
	return pid >= 0 ? w->cfg->providers[pid].id : NULL;
}

/* The prompt preview: the first 120 characters of the last user message. */
static char *preview(const struct rf_chat_req *req)
{
	const char *p = req->msgs[req->nmsgs - 1].content;
	size_t n = rf_utf8_prefix(p, strlen(p), PREVIEW_CHARS);

	return strndup(p, n);
}

/* Write the request row; never fails the request. */
static void log_result(struct rf_worker *w, const struct rf_chat_req *req,
    const struct rf_chain_result *r, const char *endpoint, int status)
{
	struct rf_log_attempt att[RF_MAX_ATTEMPTS];
	char *pv = NULL;

	if (w->store == NULL) {
		atomic_store(&log_failed, true);
		return;
	}
	for (size_t i = 0; i < r->nattempts; i++) {
		const struct rf_attempt *a = &r->attempts[i];
		att[i] = (struct rf_log_attempt){
			.provider = pid_id(w, a->pid),
			.outcome = a->kind == RF_ATT_OK ? "ok" :
			    a->kind == RF_ATT_SKIPPED ? "skipped" : rf_err_code(a->code),
			.reason = a->reason, .http_status = a->http_status,
			.latency_ms = a->kind == RF_ATT_SKIPPED ? -1 : a->latency_ms,
			.retry = a->retry,
		};
	}
	if (w->cfg->log_prompts)
		pv = preview(req);
	struct rf_log_entry e = {
		.request_id = r->request_id, .ts_ms = r->started_ms,
		.endpoint = endpoint, .strategy = rf_contract_strategy(req),
		.attempted_provider = pid_id(w, r->attempted),
		.final_provider = pid_id(w, r->final_pid),
		.fallback = r->fallback, .degraded = r->degraded, .demo = r->demo,
		.success = r->err == RF_OK,
		.error_code = r->err == RF_OK ? NULL : rf_err_code(r->err),
		.http_status = status, .latency_ms = r->latency_ms, .ttft_ms = r->ttft_ms,
		.model = r->res.model[0] ? r->res.model : NULL,
		.prompt_chars = req->prompt_chars,
		.prompt_tokens = r->res.usage.prompt_tokens,
		.completion_tokens = r->res.usage.completion_tokens,
		.source = req->source, .prompt_preview = pv,
		.partial_chars = r->err == RF_OK ? 0 : r->partial_chars,
		.skipped_chunks = r->skipped_chunks, .restarts = r->restarts,
		.streamed = r->streamed[0] ? r->streamed : NULL,
		.attempts = att, .nattempts = r->nattempts,
	};
	/* The writer thread batches it; without one (CGI) or when its queue
	 * is full, write it here. */
	if (rf_logq_push(&e) != 0 && rf_store_log_request(w->store, &e) != 0)
		atomic_store(&log_failed, true);
	free(pv);
}

/* Parse the body; on failure answer 400 and return -1. */
static int parse(struct rf_worker *w, struct rf_request *rq, struct rf_chat_req *req)
{
	struct rf_field_err fe;

	if (rf_contract_parse(w->cfg, rq->body.data ? rq->body.data : "", rq->body.len,
	    req, &fe) == 0)
		return 0;
	rf_reply_error(rq, fe.code, fe.message[0] ? fe.message : NULL,
	    fe.field[0] ? fe.field : NULL, NULL);
	return -1;
}

static void begin(struct rf_request *rq, struct rf_chain_result *r)
{
	rf_chain_result_init(r);
	snprintf(r->request_id, sizeof(r->request_id), "%s", rq->request_id);
	r->started_ms = rf_now_ms();
	r->started_mono = rf_mono_ms();
}

void rf_handle_chat(struct rf_worker *w, struct rf_request *rq)
{
	struct rf_chat_req req;
	struct rf_chain_result r;
	char extra[256];
	int status;

	if (parse(w, rq, &req) != 0)
		return;
	begin(rq, &r);
	rf_chain_run(w, &req, NULL, &r);
	status = r.err == RF_OK ? 200 : rf_err_status(r.err);
	snprintf(extra, sizeof(extra), "X-RelayForge-Provider: %s\r\nX-RelayForge-Fallback: %s\r\n",
	    r.final_pid >= 0 ? pid_id(w, r.final_pid) : "none", r.fallback ? "true" : "false");
	if (r.err != RF_OK && r.retry_after_ms >= 0 && status == 429)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		    "Retry-After: %lld\r\n", (long long)((r.retry_after_ms + 999) / 1000));
	if (r.err == RF_OK) {
		json_object *data = json_object_new_object();
		json_object_object_add(data, "text",
		    json_object_new_string_len(r.res.text.data, (int)r.res.text.len));
		json_object_object_add(data, "meta", rf_contract_meta(&req, &r, RF_META_CHAT));
		rf_reply_json(rq, 200, extra, rf_contract_success(data));
	} else {
		rf_reply_json(rq, status, extra,
		    rf_contract_failure(rf_contract_chain_error(&r)));
	}
	log_result(w, &req, &r, "chat", status);
	rf_chain_result_free(&r);
	rf_contract_free(&req);
}

/* ---- streaming -------------------------------------------------------- */

struct sink_state {
	struct rf_worker *w;
	struct rf_request *rq;
	const struct rf_chat_req *req;
	int64_t last_event; /* monotonic ms of the last write */
};

static int send_event(struct sink_state *s, const char *event, json_object *obj)
{
	char *text = rf_contract_dump(obj);
	int rc;

	json_object_put(obj);
	if (text == NULL)
		return -1;
	rc = rf_sse_write(&s->rq->out, event, text);
	free(text);
	s->last_event = rf_mono_ms();
	return rc;
}

static json_object *phase_obj(const char *phase)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "phase", json_object_new_string(phase));
	return o;
}

static int send_move(struct sink_state *s, const char *phase, int from, int to, enum rf_err code)
{
	json_object *o = phase_obj(phase);

	json_object_object_add(o, "from", json_object_new_string(pid_id(s->w, from)));
	json_object_object_add(o, "to", json_object_new_string(pid_id(s->w, to)));
	json_object_object_add(o, "code", json_object_new_string(rf_err_code(code)));
	return send_event(s, "meta", o);
}

static int sink_fallback(void *ud, int from, int to, enum rf_err code)
{
	return send_move(ud, "fallback", from, to, code);
}

static int sink_restart(void *ud, int from, int to, enum rf_err code)
{
	return send_move(ud, "restart", from, to, code);
}

/* Copy every key of src after "phase" into a new object. */
static json_object *with_phase(const char *phase, json_object *src)
{
	json_object *o = phase_obj(phase);

	json_object_object_foreach(src, k, v)
		json_object_object_add(o, k, json_object_get(v));
	json_object_put(src);
	return o;
}

static int sink_start(void *ud, const struct rf_chain_result *r)
{
	struct sink_state *s = ud;

	return send_event(s, "meta", with_phase("start", rf_contract_meta(s->req, r, RF_META_START)));
}

static int sink_token(void *ud, const char *text, size_t n)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "text", json_object_new_string_len(text, (int)n));
	return send_event(ud, "token", o);
}

static int sink_tick(void *ud)
{
	struct sink_state *s = ud;

	if (rf_mono_ms() - s->last_event < KEEPALIVE_MS)
		return 0;
	s->last_event = rf_mono_ms();
	return rf_sse_comment(&s->rq->out, "keep-alive");
}

static void stream_end(struct sink_state *s, const struct rf_chain_result *r)
{
	json_object *done;

	if (r->err == RF_ERR_CLIENT_CLOSED)
		return;
	done = json_object_new_object();
	if (r->err == RF_OK) {
		send_event(s, "meta", with_phase("final", rf_contract_meta(s->req, r, RF_META_FINAL)));
	} else {
		send_event(s, "error", rf_contract_chain_error(r));
	}
	json_object_object_add(done, "ok", json_object_new_boolean(r->err == RF_OK));
	send_event(s, "done", done);
}

void rf_handle_stream(struct rf_worker *w, struct rf_request *rq)
{
	struct rf_chat_req req;
	struct rf_chain_result r;
	struct sink_state s = { .w = w, .rq = rq, .req = &req };
	struct rf_stream_sink sink = {
		.fallback = sink_fallback, .start = sink_start, .token = sink_token,
		.restart = sink_restart, .tick = sink_tick, .ud = &s,
	};

	if (parse(w, rq, &req) != 0)
		return;
	begin(rq, &r);
	s.last_event = rf_mono_ms();
	if (rf_reply_sse_start(rq, NULL) != 0) {
		r.err = RF_ERR_CLIENT_CLOSED;
	} else {
		rf_chain_run(w, &req, &sink, &r);
		stream_end(&s, &r);
	}
	log_result(w, &req, &r, "stream", r.err == RF_OK ? 200 : rf_err_status(r.err));
	rf_chain_result_free(&r);
	rf_contract_free(&req);
}

void rf_handle_health(struct rf_worker *w, struct rf_request *rq)
{
	json_object *data;
	bool db_ok = w->store != NULL && rf_store_ping(w->store) == 0;

	if (!db_ok) {
		/* 503, not 500: a load balancer should take this node out. */
		rf_reply_json(rq, 503, "Retry-After: 5\r\n", rf_contract_failure(
		    rf_contract_error(RF_ERR_INTERNAL, "The store cannot be opened.",
		    "store unavailable", NULL, false, rq->request_id, NULL, NULL)));
		return;
	}
	data = json_object_new_object();
	json_object_object_add(data, "status",
	    json_object_new_string(rf_handlers_log_failed() ? "degraded" : "ok"));
	json_object_object_add(data, "version", json_object_new_string(RF_VERSION));
	json_object_object_add(data, "db", json_object_new_string("ok"));
	rf_reply_json(rq, 200, NULL, rf_contract_success(data));
}
