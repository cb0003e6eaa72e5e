/*
 * answer: the parts of an answer every engine endpoint shares, so that
 * /api/v1 and /v1 cannot drift apart: the same clocks start a request,
 * the same header lines tell which provider answered and how (built from
 * the request's log entry, the form /logs shows), and the same call makes
 * the row durable before the answer completes (docs/operations.md).
 */
#include "answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logq.h"

#define PREVIEW_CHARS 120

void
rf_answer_begin(const struct rf_request *rq, struct rf_chain_result *r)
{
	rf_chain_result_init(r);
	snprintf(r->request_id, sizeof(r->request_id), "%s", rq->request_id);
	r->started_ms = rf_now_ms();
	r->started_mono = rf_mono_ms();
}

/* "groq:provider_rate_limited,sambanova:unconfigured,cerebras:ok". */
static int
attempts_line(const struct rf_log_entry *e, struct rf_buf *out)
{
	int rc = rf_buf_puts(out, "X-RelayForge-Attempts: ");

	for (size_t i = 0; rc == 0 && i < e->nattempts; i++) {
		const struct rf_log_attempt *a = &e->attempts[i];
		const char *what = a->outcome ? a->outcome : "unknown";

		if (strcmp(what, "skipped") == 0 && a->reason != NULL)
			what = a->reason;
		rc = rf_buf_printf(out, "%s%s:%s", i > 0 ? "," : "",
		    a->provider ? a->provider : "unknown", what);
	}
	if (rc == 0 && e->nattempts == 0)
		rc = rf_buf_puts(out, "none");
	return rc == 0 ? rf_buf_puts(out, "\r\n") : -1;
}

int
rf_answer_headers(const struct rf_log_entry *e,
    const struct rf_chain_result *r, struct rf_buf *out)
{
	if (rf_buf_printf(out, "X-RelayForge-Provider: %s\r\n"
	    "X-RelayForge-Fallback: %s\r\n",
	    e->final_provider ? e->final_provider : "none",
	    e->fallback ? "true" : "false") != 0 || attempts_line(e, out) != 0)
		return -1;
	if (!e->success && (e->http_status == 429 || e->http_status == 503) &&
	    r->retry_after_ms >= 0)
		return rf_buf_printf(out, "Retry-After: %lld\r\n",
		    (long long)((r->retry_after_ms + 999) / 1000));
	return 0;
}

/* The text the preview is cut from. */
static const char *
preview_source(const struct rf_chat_req *req)
{
	for (size_t i = req->nmsgs; i > 0; i--)
		if (req->msgs[i - 1].role != NULL &&
		    strcmp(req->msgs[i - 1].role, "user") == 0)
			return req->msgs[i - 1].content;
	return req->nmsgs > 0 ? req->msgs[req->nmsgs - 1].content : NULL;
}

void
rf_answer_log(struct rf_worker *w, const struct rf_chat_req *req,
    struct rf_log_entry *e)
{
	const char *p = w->cfg->log_prompts ? preview_source(req) : NULL;
	char *pv = NULL;

	if (p != NULL)
		pv = strndup(p, rf_utf8_prefix(p, strlen(p), PREVIEW_CHARS));
	e->prompt_preview = pv;
	rf_logq_log(w->store, e);
	e->prompt_preview = NULL;
	free(pv);
}
