/*
 * reply: the one writer of responses (docs/api.md, "Common rules", and
 * section 13 for the OpenAI surface's errors and stream end).
 *
 * Every response starts with a "Status:" line carrying the reason phrase
 * (web servers pass it through as the HTTP status line) and X-Request-Id;
 * an allowed cross-origin caller also gets its origin echoed and the
 * headers it may read.  JSON replies say how long they are and that they
 * must not be cached; an event stream says no-cache and asks proxies not
 * to buffer it.  The output sink remembers the first failed write, so a
 * handler can write on after the client has gone without checking each
 * call.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "render_openai.h"
#include "reply.h"
#include "sse.h"
#include "util.h"

#define DEFAULT_ALLOW_HEADERS "Content-Type, Authorization, X-Request-Id"

int
rf_out_write(struct rf_out *o, const char *p, size_t n)
{
	if (o->failed)
		return -1;
	if (n > 0 && o->write(o->ctx, p, n) != 0)
		o->failed = true;
	return o->failed ? -1 : 0;
}

bool
rf_out_full(const struct rf_out *o)
{
	return o->full != NULL && o->full(o->ctx);
}

int
rf_out_puts(struct rf_out *o, const char *s)
{
	return rf_out_write(o, s, strlen(s));
}

int
rf_out_flush(struct rf_out *o)
{
	if (o->failed)
		return -1;
	if (o->flush(o->ctx) != 0)
		o->failed = true;
	return o->failed ? -1 : 0;
}

int
rf_reply_head(struct rf_request *rq, int status)
{
	struct rf_buf h = { 0 };
	int rc;

	rf_buf_printf(&h, "Status: %d %s\r\nX-Request-Id: %s\r\n", status,
	    rf_err_reason(status), rq->request_id);
	if (rq->origin != NULL)
		rf_buf_printf(&h, "Access-Control-Allow-Origin: %s\r\n"
		    "Access-Control-Expose-Headers: X-Request-Id, X-RelayForge-Provider, "
		    "X-RelayForge-Fallback, X-RelayForge-Attempts, Retry-After, "
		    "x-should-retry\r\nVary: Origin\r\n", rq->origin);
	rc = rf_out_write(&rq->out, h.data, h.len);
	rf_buf_free(&h);
	rq->head_sent = true;
	return rc;
}

int
rf_reply_json(struct rf_request *rq, int status, const char *extra,
    json_object *body)
{
	char *text = rf_render_text(body);
	struct rf_buf h = { 0 };
	int rc = -1;

	json_object_put(body);
	if (text == NULL)
		goto out;
	rf_buf_printf(&h, "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n",
	    strlen(text), extra ? extra : "");
	if (rf_reply_head(rq, status) == 0 && rf_out_write(&rq->out, h.data, h.len) == 0 &&
	    rf_out_puts(&rq->out, text) == 0)
		rc = rf_out_flush(&rq->out);
out:
	rf_buf_free(&h);
	free(text);
	return rc;
}

int
rf_reply_text(struct rf_request *rq, int status, const char *type,
    const char *body, size_t n)
{
	struct rf_buf h = { 0 };
	int rc = -1;

	if (rf_buf_printf(&h, "Content-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n\r\n", type, n) == 0 &&
	    rf_reply_head(rq, status) == 0 &&
	    rf_out_write(&rq->out, h.data, h.len) == 0 &&
	    rf_out_write(&rq->out, body, n) == 0)
		rc = rf_out_flush(&rq->out);
	rf_buf_free(&h);
	return rc;
}

int
rf_reply_error(struct rf_request *rq, enum rf_err code, const char *message,
    const char *field, const char *extra)
{
	json_object *e = rf_render_error(code, message, NULL, NULL, false,
	    rq->request_id, NULL, field);

	return rf_reply_json(rq, rf_err_status(code), extra, rf_render_failure(e));
}

/* Whether asking again may cure the error (docs/openai.md): not a 4xx
 * other than 408, 409 and 429, nor an upstream that refused the request
 * or the gateway's key -- every retry of those would walk the chain and
 * call the providers again for the same answer. */
static bool
retry_may_cure(enum rf_err code)
{
	int st = rf_err_status(code);

	if (code == RF_ERR_PROVIDER_BAD_REQUEST || code == RF_ERR_PROVIDER_AUTH)
		return false;
	return st < 400 || st >= 500 || st == 408 || st == 409 || st == 429;
}

int
rf_reply_oai_error(struct rf_request *rq, enum rf_err code,
    const char *message, const char *param, const char *extra)
{
	struct rf_buf h = { 0 };
	int rc;

	rf_buf_printf(&h, "%s%s", extra ? extra : "", retry_may_cure(code) ? "" :
	    "x-should-retry: false\r\n");
	rc = rf_reply_json(rq, rf_err_status(code), rf_buf_str(&h),
	    rf_render_oai_error(code, message, param));
	rf_buf_free(&h);
	return rc;
}

int
rf_reply_oai_done(struct rf_request *rq)
{
	return rf_sse_write(&rq->out, NULL, "[DONE]");
}

int
rf_reply_data(struct rf_request *rq, const char *extra, json_object *data)
{
	return rf_reply_json(rq, 200, extra, rf_render_success(data));
}

int
rf_reply_store_unavailable(struct rf_request *rq)
{
	/* 503, not 500: a load balancer should take this node out. */
	return rf_reply_json(rq, 503, "Retry-After: 5\r\n", rf_render_failure(
	    rf_render_error(RF_ERR_INTERNAL, "The store cannot be opened.",
	    "store unavailable", NULL, false, rq->request_id, NULL, NULL)));
}

/* The refusal of a process at RELAYFORGE_MAX_STREAMS open requests: 503
 * (not the 502 of an upstream failure: the gateway itself is full) with
 * provider_unavailable, the code clients already retry on. */
#define BUSY_MESSAGE "The gateway is at its limit of open requests; retry shortly."
#define BUSY_DETAILS "RELAYFORGE_MAX_STREAMS reached"
#define BUSY_HEADERS "Retry-After: 1\r\n"

int
rf_reply_busy(struct rf_request *rq)
{
	return rf_reply_json(rq, 503, BUSY_HEADERS, rf_render_failure(
	    rf_render_error(RF_ERR_PROVIDER_UNAVAILABLE, BUSY_MESSAGE,
	    BUSY_DETAILS, NULL, false, rq->request_id, NULL, NULL)));
}

int
rf_reply_oai_busy(struct rf_request *rq)
{
	return rf_reply_json(rq, 503, BUSY_HEADERS "x-should-retry: true\r\n",
	    rf_render_oai_error(RF_ERR_PROVIDER_UNAVAILABLE,
	    BUSY_MESSAGE, NULL));
}

int
rf_reply_internal(struct rf_request *rq, const char *details)
{
	return rf_reply_json(rq, 500, NULL, rf_render_failure(rf_render_error(
	    RF_ERR_INTERNAL, NULL, details, NULL, false, rq->request_id, NULL,
	    NULL)));
}

int
rf_reply_event(struct rf_request *rq, const char *event, json_object *obj)
{
	char *text = obj != NULL ? rf_render_text(obj) : NULL;
	int rc;

	json_object_put(obj);
	if (text == NULL)
		return -1;
	rc = rf_sse_write(&rq->out, event, text);
	free(text);
	return rc;
}

int
rf_reply_sse_start(struct rf_request *rq, const char *extra)
{
	if (rf_reply_head(rq, 200) != 0)
		return -1;
	if (rf_out_puts(&rq->out, "Content-Type: text/event-stream; charset=utf-8\r\n"
	    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n") != 0)
		return -1;
	if (extra != NULL && rf_out_puts(&rq->out, extra) != 0)
		return -1;
	if (rf_out_puts(&rq->out, "\r\n") != 0)
		return -1;
	return rf_out_flush(&rq->out);
}

int
rf_reply_preflight(struct rf_request *rq, const char *allow,
    const char *allow_headers)
{
	struct rf_buf h = { 0 };
	int rc = -1;

	rf_buf_printf(&h, "Allow: %s\r\n", allow);
	if (rq->origin != NULL)
		rf_buf_printf(&h, "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
		    "Access-Control-Allow-Headers: %s\r\n"
		    "Access-Control-Max-Age: 600\r\n",
		    allow_headers ? allow_headers : DEFAULT_ALLOW_HEADERS);
	rf_buf_puts(&h, "Cache-Control: no-store\r\n\r\n");
	if (rf_reply_head(rq, 204) == 0 && rf_out_write(&rq->out, h.data, h.len) == 0)
		rc = rf_out_flush(&rq->out);
	rf_buf_free(&h);
	return rc;
}
