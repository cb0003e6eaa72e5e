/*
 * http: the front door.  Turns CGI-style parameters into struct rf_request,
 * routes by REQUEST_URI from a static table, applies the common rules of
 * SPEC section 4 (405 + Allow, 415, 413, X-Request-Id, CORS, tokens, the
 * shared per-client rate limit) and writes responses with "Status:" lines
 * that carry reason phrases.  Knows nothing of libfcgi: main.c gives it
 * function pointers for params, input and output.  Prefix: rf_http_ / rf_out_.
 */
#ifndef RF_HTTP_H
#define RF_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "util.h"

struct rf_worker;

/* Where a response goes.  write/flush return 0 or -1 (client gone). Once a
 * call fails, failed stays true and later calls return -1 at once. */
struct rf_out {
	int (*write)(void *ctx, const char *p, size_t n);
	int (*flush)(void *ctx);
	void *ctx;
	bool failed;
};

int rf_out_write(struct rf_out *o, const char *p, size_t n);
int rf_out_puts(struct rf_out *o, const char *s);
int rf_out_flush(struct rf_out *o);

struct rf_request {
	/* Provided by the caller (main.c). */
	const char *(*param)(void *ctx, const char *name); /* CGI variable */
	long (*read)(void *ctx, char *buf, size_t n);        /* body; 0 = EOF */
	void *ctx;
	struct rf_out out;

	/* Filled by the front door. */
	const char *method;
	char path[1024];          /* decoded path, before '?' */
	const char *query;        /* raw query string after '?', "" if none */
	char request_id[65];
	const char *origin;       /* allowed CORS origin to echo, or NULL */
	struct rf_buf body;
	bool head_sent;
};

/* Serve one request completely. */
void rf_http_serve(struct rf_worker *w, struct rf_request *rq);

/* Response helpers for handlers.  extra: more header lines, each ending in
 * "\r\n", or NULL.  The JSON body is taken (put) by the call. */
int rf_http_send_json(struct rf_request *rq, int status, const char *extra,
    json_object *body);
/* The error shape with a status from the code's table. */
int rf_http_send_error(struct rf_request *rq, int code_enum,
    const char *message, const char *field, const char *extra);
/* Start an event stream: 200 + SSE headers, flushed. */
int rf_http_start_sse(struct rf_request *rq, const char *extra);

/* Percent-decode src into dst (dstlen incl. NUL); -1 on bad escapes,
 * an encoded NUL, or overflow.  Exposed for tests. */
int rf_http_decode_path(const char *src, size_t srclen, char *dst, size_t dstlen);
/* The value of key in a query string, decoded into out; -1 if absent. */
int rf_http_query_get(const char *query, const char *key, char *out, size_t outlen);

#endif
