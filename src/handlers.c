/*
 * handlers: chat, stream and health.  Chat and stream share the request
 * parsing (contract) and the engine (chain); they differ only in how the
 * answer leaves: one JSON document, or SSE events flushed one by one.
 * Every shape comes from render.c, built from the request's log entry
 * (rf_chain_entry), so the meta a client sees and the row /logs shows are
 * the same data.
 *
 * The log row is made durable before the answer is acknowledged -- before
 * the first byte of a chat answer, before the terminal events (final meta
 * or error, then done) of a stream -- by rf_answer_log (answer.c, shared
 * with the /v1 surface): one append to the process's spool file, which the
 * log writer thread moves into the store later.  So a client that has
 * its whole answer can count on the row even if the process is killed the
 * next instant, and the store (locked, slow, away) never holds up an
 * answer.  See docs/operations.md.
 *
 * Both are parsed here, on the worker's thread, and then handed to the
 * relay (relay.h) as a job: the chain, the sink's events and the finish
 * (row, answer) run on an event loop, so a waiting request holds no
 * thread.  A process at RELAYFORGE_MAX_STREAMS open requests refuses more
 * at once (503 with Retry-After).
 *
 * A stream counts in this process's open-streams gauge from its start to
 * its end (an atomic count; src/gauges.c publishes it off this path).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "chain.h"
#include "contract.h"
#include "gauges.h"
#include "handlers.h"
#include "logq.h"
#include "relay.h"
#include "render.h"
#include "reply.h"
#include "sse.h"
#include "store.h"

#ifndef RF_VERSION
#define RF_VERSION "0.1.0"
#endif
#define KEEPALIVE_MS 10000
/* /health waits this long at most for the store's write lock. */
#define HEALTH_PROBE_MS 200

/* Parse the body; on failure answer 400 and return -1. */
static int
parse(struct rf_worker *w, struct rf_request *rq, struct rf_chat_req *req)
{
	struct rf_field_err fe;

	if (rf_contract_parse(w->cfg, rq->body.data ? rq->body.data : "",
	    rq->body.len, req, &fe) == 0)
		return 0;
	rf_reply_error(rq, fe.code, fe.message[0] ? fe.message : NULL,
	    fe.field[0] ? fe.field : NULL, NULL);
	return -1;
}

/* ---- chat ------------------------------------------------------------ */

/* The chain is done: the row, then the one JSON answer. */
static void
chat_finish(struct rf_worker *w, struct rf_relay_job *job)
{
	struct rf_chain_result *r = &job->r;
	struct rf_request *rq = &job->rq;
	struct rf_log_entry e;
	struct rf_buf extra;
	int status = r->err == RF_OK ? 200 : rf_err_status(r->err);

	rf_chain_entry(&job->req, r, "chat", status, &e);
	rf_buf_init(&extra, 0);
	rf_answer_headers(&e, r, &extra);
	rf_answer_log(w, &job->req, &e); /* before any byte of the answer */
	if (r->err == RF_OK)
		rf_reply_data(rq, rf_buf_str(&extra), rf_render_chat(&e,
		    r->res.text.data, r->res.text.len));
	else
		rf_reply_json(rq, status, rf_buf_str(&extra), rf_render_failure(
		    rf_render_chain_error(&e, r->err, r->fail.message,
		    r->fail.details)));
	rf_buf_free(&extra);
	rf_chain_result_free(r);
	rf_contract_free(&job->req);
}

/* A job block for a request of this surface; NULL after answering (a
 * 400, the 503 of a process at its limit, out of memory). */
static struct rf_relay_job *
job_new(struct rf_worker *w, struct rf_request *rq, size_t size)
{
	struct rf_relay_job *job = rf_relay_job_new(size);

	if (job == NULL) {
		rf_reply_internal(rq, "out of memory");
		return NULL;
	}
	if (parse(w, rq, &job->req) != 0) {
		free(job);
		return NULL;
	}
	if (rf_relay_admit(w->cfg) != 0) {
		rf_reply_busy(rq);
		rf_contract_free(&job->req);
		free(job);
		return NULL;
	}
	rf_answer_begin(rq, &job->r);
	return job;
}

void
rf_handle_chat(struct rf_worker *w, struct rf_request *rq)
{
	struct rf_relay_job *job = job_new(w, rq, sizeof(*job));

	if (job == NULL)
		return;
	job->finish = chat_finish;
	rf_relay_submit(w, rq, job);
}

/* ---- streaming -------------------------------------------------------- */

struct sink_state {
	struct rf_request *rq;
	const struct rf_chat_req *req;
	int64_t last_event; /* monotonic ms of the last write */
};

/* A stream's job: the sink and its state live with it. */
struct stream_job {
	struct rf_relay_job job; /* first: the relay frees the block */
	struct sink_state s;
	struct rf_stream_sink sink;
};

static int
send_event(struct sink_state *s, const char *event, json_object *obj)
{
	s->last_event = rf_mono_ms();
	return rf_reply_event(s->rq, event, obj);
}

static int
sink_fallback(void *ud, int from, int to, enum rf_err code)
{
	return send_event(ud, "meta", rf_render_move("fallback",
	    rf_config_id(from), rf_config_id(to), code));
}

static int
sink_restart(void *ud, int from, int to, enum rf_err code)
{
	return send_event(ud, "meta", rf_render_move("restart",
	    rf_config_id(from), rf_config_id(to), code));
}

static int
sink_start(void *ud, const struct rf_chain_result *r)
{
	struct sink_state *s = ud;
	struct rf_log_entry e;

	rf_chain_entry(s->req, r, "stream", 200, &e);
	return send_event(s, "meta", rf_render_meta(&e, RF_META_START));
}

static int
sink_token(void *ud, const char *text, size_t n)
{
	return send_event(ud, "token", rf_render_token(text, n));
}

static bool
sink_full(void *ud)
{
	return rf_out_full(&((struct sink_state *)ud)->rq->out);
}

static int
sink_tick(void *ud)
{
	struct sink_state *s = ud;

	if (rf_mono_ms() - s->last_event < KEEPALIVE_MS)
		return 0;
	s->last_event = rf_mono_ms();
	return rf_sse_comment(&s->rq->out, "keep-alive");
}

/* The terminal sequence: final meta then done, or error then done. */
static void
stream_end(struct sink_state *s, const struct rf_chain_result *r,
    const struct rf_log_entry *e)
{
	if (r->err == RF_ERR_CLIENT_CLOSED)
		return;
	if (r->err == RF_OK)
		send_event(s, "meta", rf_render_meta(e, RF_META_FINAL));
	else
		send_event(s, "error", rf_render_chain_error(e, r->err,
		    r->fail.message, r->fail.details));
	send_event(s, "done", rf_render_done(r->err == RF_OK));
}

/* The chain is done: the row, then the terminal events. */
static void
stream_finish(struct rf_worker *w, struct rf_relay_job *job)
{
	struct stream_job *sj = (struct stream_job *)job;
	struct rf_chain_result *r = &job->r;
	struct rf_log_entry e;

	rf_chain_entry(&job->req, r, "stream",
	    r->err == RF_OK ? 200 : rf_err_status(r->err), &e);
	rf_answer_log(w, &job->req, &e); /* before the terminal events */
	stream_end(&sj->s, r, &e);
	rf_gauges_stream_end();
	rf_chain_result_free(r);
	rf_contract_free(&job->req);
}

void
rf_handle_stream(struct rf_worker *w, struct rf_request *rq)
{
	struct stream_job *sj = (struct stream_job *)job_new(w, rq,
	    sizeof(*sj));
	struct rf_relay_job *job;

	if (sj == NULL)
		return;
	job = &sj->job;
	/* The sink writes to the job's own copy of the request. */
	sj->s = (struct sink_state){ .rq = &job->rq, .req = &job->req,
		.last_event = rf_mono_ms() };
	sj->sink = (struct rf_stream_sink){
		.fallback = sink_fallback, .start = sink_start,
		.token = sink_token, .restart = sink_restart, .tick = sink_tick,
		.full = sink_full, .ud = &sj->s,
	};
	job->finish = stream_finish;
	rf_gauges_stream_begin(); /* an atomic count: no store on this path */
	/* A client already gone fails this write and, through the job's
	 * copy of rq->out, every later one: the chain ends client_closed. */
	rf_reply_sse_start(rq, NULL);
	job->sink = &sj->sink;
	rf_relay_submit(w, rq, job);
}

/* ok, or degraded with the reason: the store does not answer (a database
 * server that went away: rows wait in the spool) or refuses writes now
 * (probed each time: no "failed once" flag), or the log has a problem of
 * its own (logq).  Either way the spool's figures.  503 only when the
 * store could never be opened. */
void
rf_handle_health(struct rf_worker *w, struct rf_request *rq)
{
	struct rf_logq_health lh;
	char why[160], reason[224];
	const char *problem, *db = "ok";

	if (w->store == NULL) {
		rf_reply_store_unavailable(rq);
		return;
	}
	rf_logq_health(&lh);
	problem = lh.problem;
	if (rf_store_ping(w->store) != 0) {
		db = "error";
		problem = "the store does not answer: rows wait in the spool";
	} else if (rf_store_writable(w->store, HEALTH_PROBE_MS, why,
	    sizeof why) != 0) {
		snprintf(reason, sizeof reason, "the store is not writable: %s",
		    why);
		problem = reason;
	}
	rf_reply_data(rq, NULL, rf_render_health(problem != NULL ? "degraded" :
	    "ok", RF_VERSION, db, problem, lh.rows, lh.dropped));
}
