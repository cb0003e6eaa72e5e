/*
 * reply: the one writer of responses.  Every byte a client receives leaves
 * through these functions: the output sink (rf_out_*), the headers every
 * response carries ("Status:" with its reason phrase, X-Request-Id, the
 * CORS headers), JSON replies, the /api/v1 and /v1 error replies, the
 * start of an event stream, its events and the end of a /v1 stream, and
 * the CORS preflight.  It knows the request types
 * (request.h), never libfcgi.  Prefix: rf_reply_ / rf_out_.
 */
#ifndef RF_REPLY_H
#define RF_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "error.h"
#include "request.h"

/* Write n bytes / a string / flush.  0, or -1 once the client is gone: the
 * first failure sets o->failed, and every later call returns -1 at once. */
int rf_out_write(struct rf_out *o, const char *p, size_t n);
int rf_out_puts(struct rf_out *o, const char *s);
/* true while the client has not taken enough of what was written that a
 * stream should stop reading its upstream for now. */
bool rf_out_full(const struct rf_out *o);
int rf_out_flush(struct rf_out *o);

/* The headers every response starts with: "Status: <n> <reason>",
 * X-Request-Id, and for an allowed origin the CORS headers.  Sets
 * rq->head_sent.  The caller writes the rest of the head. */
int rf_reply_head(struct rf_request *rq, int status);

/* A whole JSON reply: the head, Content-Type, Content-Length,
 * Cache-Control: no-store, extra (more header lines, each ending in
 * "\r\n", or NULL), the body; then a flush.  body is taken (put) by the
 * call, whatever it returns.  0, or -1 when the client is gone. */
int rf_reply_json(struct rf_request *rq, int status, const char *extra,
    json_object *body);

/* The error shape of docs/api.md ({"success":false,"error":{...}}) with
 * the status from the code's table.  message NULL = the code's default;
 * field and extra may be NULL. */
int rf_reply_error(struct rf_request *rq, enum rf_err code,
    const char *message, const char *field, const char *extra);

/* The error shape of the OpenAI surface (docs/openai.md):
 * {"error":{"message","type","param","code"}} with the code's status, the
 * extra header lines, and "x-should-retry: false" when asking again
 * cannot cure it (a 4xx other than 408/409/429, an upstream that refused
 * the request or the gateway's key), so SDK retries never multiply
 * upstream calls.  message NULL = the code's default; param may be NULL. */
int rf_reply_oai_error(struct rf_request *rq, enum rf_err code,
    const char *message, const char *param, const char *extra);
/* The last event of a complete /v1 stream: "data: [DONE]", flushed. */
int rf_reply_oai_done(struct rf_request *rq);

/* A success: {"success":true,"data":data} with status 200 (data taken). */
int rf_reply_data(struct rf_request *rq, const char *extra, json_object *data);
/* 503 internal_error "The store cannot be opened." with Retry-After: 5, the
 * answer of every endpoint that needs the store while it is unavailable. */
int rf_reply_store_unavailable(struct rf_request *rq);
/* 500 internal_error with short, safe technicalDetails. */
int rf_reply_internal(struct rf_request *rq, const char *details);
/* 503 provider_unavailable with Retry-After: 1, for a process that holds
 * RELAYFORGE_MAX_STREAMS open requests (docs/api.md); the /v1 shape with
 * x-should-retry: true. */
int rf_reply_busy(struct rf_request *rq);
int rf_reply_oai_busy(struct rf_request *rq);

/* A whole text reply: the head, Content-Type type, Content-Length,
 * Cache-Control: no-store, then the n bytes of body.  0, or -1 when the
 * client is gone. */
int rf_reply_text(struct rf_request *rq, int status, const char *type,
    const char *body, size_t n);
/* The Content-Type of the Prometheus text exposition format. */
#define RF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One event of a started stream: "event: <event>" (none when event is
 * NULL: a bare "data:" event, as /v1 streams send) and obj as compact JSON
 * (taken; NULL is an error), then a flush.  0, or -1 when the client is
 * gone. */
int rf_reply_event(struct rf_request *rq, const char *event, json_object *obj);

/* Start an event stream: 200 + SSE headers (+ extra), flushed. */
int rf_reply_sse_start(struct rf_request *rq, const char *extra);

/* The CORS preflight: 204 with "Allow: <allow>"; for an allowed origin also
 * the allowed methods, allow_headers (the request headers a browser may
 * send; NULL = "Content-Type, Authorization, X-Request-Id") and max-age. */
int rf_reply_preflight(struct rf_request *rq, const char *allow,
    const char *allow_headers);

#endif
