/*
 * handlers_openai: the OpenAI-compatible surface (docs/openai.md) --
 * POST /v1/chat/completions, GET /v1/models and GET /v1/models/{id} --
 * on the same engine as /api/v1: the body becomes the same struct
 * rf_chat_req (contract_openai.c), is handed to the relay as a job
 * (relay.h: the chain and the answer run on an event loop), becomes the
 * same log entry (rf_chain_entry, endpoint "openai" or "openai_stream")
 * made durable before the answer (answer.c), and only the shapes differ
 * (render_openai.c).
 *
 * A stream holds its status line and headers until the first real token:
 * until then nothing has been written, so a tier that fails before it
 * is replaced by the next one without a trace in the body (the
 * X-RelayForge-* headers, sent with the first token, name the attempts),
 * and a request that fails completely gets its real HTTP status and a
 * JSON error.  From the first token on, the stream is data: chunks; a
 * failure then ends it with one data: {"error": ...} and no [DONE].
 * Before the first token nothing can be written, so keep-alive comments
 * start with the stream, and a client that hangs up while the chain is
 * still looking for a provider is noticed at the first token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "chain.h"
#include "contract.h"
#include "handlers_openai.h"
#include "render_openai.h"
#include "relay.h"
#include "reply.h"
#include "sse.h"

#define KEEPALIVE_MS 10000
#define MODEL_ID_MAX 192

/* The model named in the answer: what the upstream reported, else what
 * was asked of the provider that answered. */
static void
answer_model(const struct rf_config *cfg, const struct rf_chat_req *req,
    const struct rf_chain_result *r, char *out, size_t len)
{
	const char *m = r->res.model;

	if (m[0] == '\0' && r->final_pid >= 0)
		m = r->final_pid == req->model_pid && req->upstream_model ?
		    req->upstream_model : cfg->providers[r->final_pid].model;
	snprintf(out, len, "%s", m != NULL ? m : "");
}

/* The message of a failed request: the readable one, with the short,
 * safe technical details after it. */
static void
fail_message(const struct rf_chain_result *r, char *out, size_t len)
{
	const char *m = r->fail.message[0] ? r->fail.message :
	    rf_err_message(r->err);

	if (r->fail.details[0] != '\0')
		snprintf(out, len, "%s (%s)", m, r->fail.details);
	else
		snprintf(out, len, "%s", m);
}

/* ---- POST /v1/chat/completions, not streamed ------------------------- */

/* The chain is done: the row, then the one completion. */
static void
oai_chat_finish(struct rf_worker *w, struct rf_relay_job *job)
{
	const struct rf_chat_req *req = &job->req;
	struct rf_chain_result *r = &job->r;
	struct rf_request *rq = &job->rq;
	struct rf_log_entry e;
	struct rf_buf extra = { 0 };
	char model[128], msg[400];
	struct rf_oai_head h = { .request_id = rq->request_id, .model = model };

	rf_chain_entry(req, r, "openai",
	    r->err == RF_OK ? 200 : rf_err_status(r->err), &e);
	rf_answer_headers(&e, r, &extra);
	rf_answer_log(w, req, &e); /* before any byte of the answer */
	answer_model(w->cfg, req, r, model, sizeof(model));
	h.created = r->started_ms / 1000;
	if (r->err == RF_OK) {
		rf_reply_json(rq, 200, rf_buf_str(&extra),
		    rf_render_oai_completion(&h, &e, rf_buf_str(&r->res.text),
		    r->res.text.len, rf_buf_str(&r->res.tool_calls)));
	} else {
		fail_message(r, msg, sizeof(msg));
		rf_reply_oai_error(rq, r->err, msg, NULL, rf_buf_str(&extra));
	}
	rf_buf_free(&extra);
	rf_chain_result_free(r);
	rf_contract_free(&job->req);
}

/* ---- POST /v1/chat/completions, streamed ----------------------------- */

struct oai_stream {
	const struct rf_config *cfg;
	struct rf_request *rq;
	const struct rf_chat_req *req;
	struct rf_oai_head head;
	char model[128];
	int64_t last_write;  /* monotonic ms */
	bool started;        /* the head and the role chunk are out */
};

static int
send_chunk(struct oai_stream *s, json_object *chunk)
{
	s->last_write = rf_mono_ms();
	return rf_reply_event(s->rq, NULL, chunk);
}

/* The held head, now that a provider answers: status 200, the SSE
 * headers and X-RelayForge-* of the attempts so far; then the role
 * chunk.  Every chunk repeats the model known at this point. */
static int
stream_open(struct oai_stream *s, const struct rf_chain_result *r)
{
	struct rf_log_entry e;
	struct rf_buf extra = { 0 };
	int rc;

	s->started = true;
	answer_model(s->cfg, s->req, r, s->model, sizeof(s->model));
	rf_chain_entry(s->req, r, "openai_stream", 200, &e);
	rf_answer_headers(&e, r, &extra);
	rc = rf_reply_sse_start(s->rq, rf_buf_str(&extra));
	rf_buf_free(&extra);
	if (rc != 0)
		return -1;
	return send_chunk(s, rf_render_oai_chunk_role(&s->head));
}

/* A tier failed before any token: nothing is said (the headers will). */
static int
sink_fallback(void *ud, int from, int to, enum rf_err code)
{
	(void)ud;
	(void)from;
	(void)to;
	(void)code;
	return 0;
}

static int
sink_start(void *ud, const struct rf_chain_result *r)
{
	struct oai_stream *s = ud;

	return s->started ? 0 : stream_open(s, r);
}

static int
sink_token(void *ud, const char *text, size_t n)
{
	struct oai_stream *s = ud;

	return send_chunk(s, rf_render_oai_chunk_text(&s->head, text, n));
}

/* A tool-call delta the OpenAI shape cannot hold is dropped, not sent. */
static int
sink_tools(void *ud, const char *json, size_t n)
{
	struct oai_stream *s = ud;
	json_object *c = rf_render_oai_chunk_tools(&s->head, json, n);

	return c != NULL ? send_chunk(s, c) : 0;
}

static bool
sink_full(void *ud)
{
	return rf_out_full(&((struct oai_stream *)ud)->rq->out);
}

static int
sink_tick(void *ud)
{
	struct oai_stream *s = ud;

	if (!s->started || rf_mono_ms() - s->last_write < KEEPALIVE_MS)
		return 0;
	s->last_write = rf_mono_ms();
	return rf_sse_comment(&s->rq->out, "keep-alive");
}

/* The end: after the first token, the finish chunk, the usage chunk when
 * asked and [DONE] -- or one error chunk; before it, the real status and
 * a JSON error. */
static void
stream_end(struct oai_stream *s, struct rf_chain_result *r,
    const struct rf_log_entry *e)
{
	struct rf_buf extra = { 0 };
	char msg[400];

	if (r->err == RF_ERR_CLIENT_CLOSED)
		return;
	fail_message(r, msg, sizeof(msg));
	if (r->err != RF_OK && !s->started) {
		rf_answer_headers(e, r, &extra);
		rf_reply_oai_error(s->rq, r->err, msg, NULL, rf_buf_str(&extra));
		rf_buf_free(&extra);
		return;
	}
	if (!s->started && stream_open(s, r) != 0)
		return;
	if (r->err != RF_OK) {
		send_chunk(s, rf_render_oai_error(r->err, msg, NULL));
		return;
	}
	if (send_chunk(s, rf_render_oai_chunk_finish(&s->head, e)) != 0 ||
	    (s->req->include_usage &&
	    send_chunk(s, rf_render_oai_chunk_usage(&s->head, e)) != 0))
		return;
	rf_reply_oai_done(s->rq);
}

/* A request's job: for a stream, its sink and state live with it. */
struct oai_job {
	struct rf_relay_job job; /* first: the relay frees the block */
	struct oai_stream s;
	struct rf_stream_sink sink;
};

/* The chain is done: the row, then the terminal chunks. */
static void
oai_stream_finish(struct rf_worker *w, struct rf_relay_job *job)
{
	struct oai_job *oj = (struct oai_job *)job;
	struct rf_chain_result *r = &job->r;
	struct rf_log_entry e;

	rf_chain_entry(&job->req, r, "openai_stream",
	    r->err == RF_OK ? 200 : rf_err_status(r->err), &e);
	rf_answer_log(w, &job->req, &e); /* before the terminal chunks */
	stream_end(&oj->s, r, &e);
	rf_chain_result_free(r);
	rf_contract_free(&job->req);
}

static void
oai_stream_init(struct rf_worker *w, struct oai_job *oj)
{
	struct rf_relay_job *job = &oj->job;

	/* The sink writes to the job's own copy of the request. */
	oj->s = (struct oai_stream){ .cfg = w->cfg, .rq = &job->rq,
		.req = &job->req, .last_write = rf_mono_ms() };
	oj->s.head = (struct rf_oai_head){ .request_id = job->rq.request_id,
		.created = job->r.started_ms / 1000, .model = oj->s.model };
	oj->sink = (struct rf_stream_sink){
		.fallback = sink_fallback, .start = sink_start,
		.token = sink_token, .restart = sink_fallback,
		.tick = sink_tick, .tool_delta = sink_tools, .full = sink_full,
		.ud = &oj->s,
	};
	job->sink = &oj->sink;
	job->finish = oai_stream_finish;
}

void
rf_handle_oai_chat(struct rf_worker *w, struct rf_request *rq)
{
	struct oai_job *oj = (struct oai_job *)rf_relay_job_new(sizeof(*oj));
	struct rf_field_err fe;
	bool stream;

	if (oj == NULL) {
		rf_reply_oai_error(rq, RF_ERR_INTERNAL, NULL, NULL, NULL);
		return;
	}
	if (rf_contract_parse_openai(w->cfg, rq->body.data ? rq->body.data : "",
	    rq->body.len, &oj->job.req, &stream, &fe) != 0) {
		rf_reply_oai_error(rq, fe.code, fe.message[0] ? fe.message : NULL,
		    fe.field[0] ? fe.field : NULL, NULL);
		free(oj);
		return;
	}
	if (rf_relay_admit(w->cfg) != 0) {
		rf_reply_oai_busy(rq);
		rf_contract_free(&oj->job.req);
		free(oj);
		return;
	}
	rf_answer_begin(rq, &oj->job.r);
	oj->job.finish = oai_chat_finish;
	if (stream)
		oai_stream_init(w, oj);
	rf_relay_submit(w, rq, &oj->job);
}

/* ---- GET /v1/models -------------------------------------------------- */

/* "auto", then each configured provider of the chain (the mock when on)
 * as its id and as "id/<configured model>".  ids holds the made names. */
static size_t
model_list(const struct rf_config *cfg, struct rf_oai_model *m,
    char (*ids)[MODEL_ID_MAX])
{
	size_t n = 0;

	m[n++] = (struct rf_oai_model){ .id = "auto", .owned_by = "relayforge" };
	for (int i = 0; i < cfg->chain_len; i++) {
		const struct rf_provider_conf *pc = &cfg->providers[cfg->chain[i]];

		if (!pc->configured)
			continue;
		m[n++] = (struct rf_oai_model){ .id = pc->id, .owned_by = pc->id };
		snprintf(ids[i], MODEL_ID_MAX, "%s/%s", pc->id, pc->model);
		m[n++] = (struct rf_oai_model){ .id = ids[i], .owned_by = pc->id };
	}
	return n;
}

void
rf_handle_oai_models(struct rf_worker *w, struct rf_request *rq)
{
	struct rf_oai_model m[1 + 2 * RF_MAX_PROVIDERS];
	char ids[RF_MAX_PROVIDERS][MODEL_ID_MAX];
	size_t n = model_list(w->cfg, m, ids);

	rf_reply_json(rq, 200, NULL, rf_render_oai_models(m, n));
}

void
rf_handle_oai_model(struct rf_worker *w, struct rf_request *rq)
{
	struct rf_oai_model m[1 + 2 * RF_MAX_PROVIDERS];
	char ids[RF_MAX_PROVIDERS][MODEL_ID_MAX];
	size_t n = model_list(w->cfg, m, ids);
	const char *id = rq->route + strlen("models/");

	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].id, id) == 0) {
			rf_reply_json(rq, 200, NULL, rf_render_oai_model(&m[i]));
			return;
		}
	/* The id is not echoed: it is whatever bytes the path held. */
	rf_reply_oai_error(rq, RF_ERR_MODEL_NOT_FOUND, "The model does not "
	    "exist: GET /v1/models lists them.", "model", NULL);
}
