/*
 * router: the front door's rules (docs/api.md, "Common rules").  Reads
 * the request target (REQUEST_URI, or SCRIPT_NAME + PATH_INFO), picks the
 * surface whose prefix starts the decoded path or what follows the mount
 * point (SCRIPT_NAME), and the route of that surface (the whole rest),
 * then refuses in this order before any handler runs: 404, 405
 * (+ Allow), OPTIONS preflight (204), 401 (tokens), 415, 413 (the body is
 * read here, capped), 429 (the per-client limit shared through the store).
 * Each surface renders its own refusals.  Prefix: rf_router_.
 */
#ifndef RF_ROUTER_H
#define RF_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "request.h"

/* Which token a route needs (none, RELAYFORGE_API_TOKEN, the admin one). */
enum rf_guard { RF_GUARD_NONE, RF_GUARD_API, RF_GUARD_ADMIN };

typedef void (*rf_handler_fn)(struct rf_worker *w, struct rf_request *rq);

struct rf_route {
	const char *method;     /* "GET" | "POST": POSTs must be JSON */
	const char *path;       /* after the surface prefix, e.g. "chat"; a
	                         * trailing '*' matches any rest, so "models/"
	                         * then '*' takes "models/a/b" */
	enum rf_guard guard;
	bool limited;           /* counts against RELAYFORGE_RATE_LIMIT */
	rf_handler_fn handler;  /* runs with rq->body read and rq->route set */
};

/* Renders one refusal (401/404/405/413/415/429, and the 400 of a bad
 * Content-Length) in the surface's error shape.  code gives the status;
 * message (NULL = the code's default) and field may be NULL; extra_headers
 * is NULL or header lines each ending in "\r\n" (Allow, Retry-After,
 * WWW-Authenticate) that the reply must carry. */
typedef void (*rf_refuse_fn)(struct rf_request *rq, enum rf_err code,
    const char *message, const char *field, const char *extra_headers);

/* One API surface: a path prefix, its routes, and how it talks. */
struct rf_surface {
	const char *prefix;         /* "/api/v1/": at the start of the path,
	                             * or right after the mount point */
	const struct rf_route *routes;
	size_t nroutes;
	rf_refuse_fn refuse;
	const char *key_param;      /* a CGI variable whose whole value may
	                             * carry the token instead of "Authorization:
	                             * Bearer" ("HTTP_X_API_KEY"); NULL = none */
	const char *cors_headers;   /* preflight Access-Control-Allow-Headers;
	                             * NULL = the /api/v1 list */
};

/* Serve one request completely through the built-in surfaces (/api/v1/,
 * then the OpenAI-compatible /v1/).  rq needs param, read, ctx and out; the rest is filled here.
 * rq->body is freed before returning. */
void rf_router_serve(struct rf_worker *w, struct rf_request *rq);

/* The same with a given table of surfaces, tried in order: the first whose
 * prefix starts the path (or what follows SCRIPT_NAME in it) owns the
 * request; a path no surface claims is refused 404 by surfaces[0].  For
 * tests and for a caller that composes its own table. */
void rf_router_serve_with(const struct rf_surface *const *surfaces,
    size_t nsurfaces, struct rf_worker *w, struct rf_request *rq);

/* Percent-decode src into dst (dstlen incl. NUL); -1 on bad escapes,
 * an encoded NUL, or overflow (dst is then unspecified). */
int rf_router_decode_path(const char *src, size_t srclen, char *dst,
    size_t dstlen);
/* The value of key in a query string ("a=1&b=x+y"), '+' and %XX decoded,
 * into out; a bare key gives "".  1 found, 0 absent, -1 present but
 * unreadable (a bad escape, an encoded NUL, longer than outlen). */
int rf_router_query_get(const char *query, const char *key, char *out,
    size_t outlen);

#endif
