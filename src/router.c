/*
 * router: the front door's rules (docs/api.md, "Common rules").
 *
 * Routing reads REQUEST_URI (the path before '?', percent-decoded by us;
 * SCRIPT_NAME + PATH_INFO when a server sends no REQUEST_URI).  A surface
 * owns the request when its prefix starts the path, or starts what
 * follows the mount point the server reports (SCRIPT_NAME, at a segment
 * boundary); the route is the whole rest, matched exactly.  So every
 * shipped deployment answers at /api/v1/... -- lighttpd's "/api" key
 * (SCRIPT_NAME /api), nginx with or without its path split, an Apache
 * Alias, /cgi-bin/relayforge.fcgi/api/v1/... -- while /api/foo/api/v1/logs
 * is not /api/v1/logs: a rule a web server puts on /api/v1/logs cannot
 * be walked around.  Nor is /api/api/v1/logs under a mount at /api (or
 * /v1/api/v1/logs under /v1): a mount point where a surface begins is not
 * routed after.  An encoded slash (%2f) is never a separator: such a
 * path is 404 (it was never a route).
 * A surface is a prefix, a static route table and a refusal renderer:
 * /api/v1/ answers in the error shape of docs/api.md, /v1/ (the
 * OpenAI-compatible surface of docs/openai.md) in OpenAI's, takes its
 * token from x-api-key too, and lets browser SDKs send their headers.
 * The one exception to "an encoded slash is a 404": inside the part of
 * a path a route's trailing '*' matches (a model id of /v1/models/{id},
 * which SDKs send with its '/' encoded as %2F), where it is data and
 * cannot join two segments of a route.
 *
 * Before a handler runs, requests are refused in this order: 404, 405
 * (+ Allow), then OPTIONS answers the preflight, then 401 (tokens,
 * compared in constant time), 415, 413 (the body is read here, capped at
 * RELAYFORGE_MAX_BODY_BYTES), 429 (the per-client limit, counted in the
 * store so every process shares it, and in memory while the store does
 * not answer within a few milliseconds: src/ratelimit.c).  Refused
 * requests are never logged.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "handlers.h"
#include "handlers_openai.h"
#include "ratelimit.h"
#include "reply.h"
#include "router.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the /api/v1/ surface ---------------------------------------------- */

static const struct rf_route api_routes[] = {
	{ "POST", "chat",             RF_GUARD_API,   true,  rf_handle_chat },
	{ "POST", "stream",           RF_GUARD_API,   true,  rf_handle_stream },
	{ "GET",  "health",           RF_GUARD_NONE,  false, rf_handle_health },
	{ "GET",  "providers/status", RF_GUARD_NONE,  false, rf_handle_status },
	{ "GET",  "logs",             RF_GUARD_ADMIN, false, rf_handle_logs },
	{ "GET",  "usage",            RF_GUARD_ADMIN, false, rf_handle_usage },
	{ "GET",  "metrics",          RF_GUARD_ADMIN, false, rf_handle_metrics },
};

/* docs/api.md: {"success":false,"error":{code, message, field, ...}}. */
static void
api_refuse(struct rf_request *rq, enum rf_err code, const char *message,
    const char *field, const char *extra_headers)
{
	rf_reply_error(rq, code, message, field, extra_headers);
}

static const struct rf_surface api_surface = {
	.prefix = "/api/v1/",
	.routes = api_routes,
	.nroutes = NELEM(api_routes),
	.refuse = api_refuse,
	.key_param = NULL,
	.cors_headers = NULL,
};

/* ---- the /v1/ surface (docs/openai.md) ----------------------------- */

static const struct rf_route oai_routes[] = {
	{ "POST", "chat/completions", RF_GUARD_API, true,  rf_handle_oai_chat },
	{ "GET",  "models",           RF_GUARD_API, false, rf_handle_oai_models },
	{ "GET",  "models/*",         RF_GUARD_API, false, rf_handle_oai_model },
};

/* {"error":{"message","type","param","code"}}, with x-should-retry. */
static void
oai_refuse(struct rf_request *rq, enum rf_err code, const char *message,
    const char *field, const char *extra_headers)
{
	rf_reply_oai_error(rq, code, message, field, extra_headers);
}

/* What the official SDKs send from a browser, besides the token. */
#define OAI_CORS_HEADERS "Authorization, Content-Type, X-Request-Id, " \
	"x-api-key, OpenAI-Organization, OpenAI-Project, OpenAI-Beta, " \
	"X-Stainless-Arch, X-Stainless-Lang, X-Stainless-OS, " \
	"X-Stainless-Package-Version, X-Stainless-Retry-Count, " \
	"X-Stainless-Runtime, X-Stainless-Runtime-Version, " \
	"X-Stainless-Timeout, X-Stainless-Read-Timeout, X-Stainless-Async, " \
	"X-Stainless-Raw-Response, X-Stainless-Helper-Method, " \
	"X-Stainless-Poll-Helper, X-Stainless-Custom-Poll-Interval"

static const struct rf_surface oai_surface = {
	.prefix = "/v1/",
	.routes = oai_routes,
	.nroutes = NELEM(oai_routes),
	.refuse = oai_refuse,
	.key_param = "HTTP_X_API_KEY",
	.cors_headers = OAI_CORS_HEADERS,
};

/* Tried in order: a surface whose prefix contains another's goes first
 * ("/api/v1/..." mounted at "/api" also reads as "/v1/..."). */
static const struct rf_surface *const surfaces[] = {
	&api_surface,
	&oai_surface,
};

/* ---- the target ---------------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
rf_router_decode_path(const char *src, size_t n, char *dst, size_t dstlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)src[i];

		if (c == '%') {
			int h, l;
			if (i + 2 >= n)
				return -1;
			h = hexval(src[i + 1]);
			l = hexval(src[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
			if (c == 0)
				return -1;
		}
		if (o + 1 >= dstlen)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

int
rf_router_query_get(const char *q, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);

	while (q != NULL && *q != '\0') {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);

		if (len > klen && strncmp(q, key, klen) == 0 && q[klen] == '=') {
			char tmp[1024];
			size_t vlen = len - klen - 1;
			if (vlen >= sizeof(tmp))
				return -1;
			memcpy(tmp, q + klen + 1, vlen);
			for (size_t i = 0; i < vlen; i++)
				if (tmp[i] == '+')
					tmp[i] = ' ';
			return rf_router_decode_path(tmp, vlen, out, outlen) == 0 ?
			    1 : -1;
		}
		if (len == klen && strncmp(q, key, klen) == 0) {
			if (outlen == 0)
				return -1;
			out[0] = '\0';
			return 1;
		}
		q = amp ? amp + 1 : NULL;
	}
	return 0;
}

static const char *
param(struct rf_request *rq, const char *name)
{
	return rq->param(rq->ctx, name);
}

/* The raw path of REQUEST_URI, decoded; -1 (a 404) for a bad escape.
 * *slash is the offset in the decoded path of the first encoded slash
 * (%2f), which would otherwise join two segments into one, or -1. */
static int
decode_target(const char *raw, size_t n, char *dst, size_t dstlen,
    long *slash)
{
	long escapes = 0;

	*slash = -1;
	for (size_t i = 0; i + 2 < n && *slash < 0; i++) {
		if (raw[i] != '%')
			continue;
		if (raw[i + 1] == '2' && (raw[i + 2] == 'f' || raw[i + 2] == 'F'))
			*slash = (long)i - 2 * escapes;
		escapes++;
	}
	return rf_router_decode_path(raw, n, dst, dstlen);
}

/* Path and query from REQUEST_URI (SCRIPT_NAME + PATH_INFO as a fallback,
 * taken as they are: the server has decoded them already). */
static int
parse_target(struct rf_request *rq, long *slash)
{
	const char *uri = param(rq, "REQUEST_URI");
	const char *q;
	int n;

	*slash = -1;
	if (uri == NULL || *uri == '\0') {
		const char *sn = param(rq, "SCRIPT_NAME"), *pi = param(rq, "PATH_INFO");

		rq->query = param(rq, "QUERY_STRING");
		if (rq->query == NULL)
			rq->query = "";
		n = snprintf(rq->path, sizeof(rq->path), "%s%s", sn ? sn : "",
		    pi ? pi : "");
		return n < 0 || (size_t)n >= sizeof(rq->path) ? -1 : 0;
	}
	q = strchr(uri, '?');
	rq->query = q ? q + 1 : "";
	return decode_target(uri, q ? (size_t)(q - uri) : strlen(uri),
	    rq->path, sizeof(rq->path), slash);
}

/* true when a surface's prefix starts with the n bytes of mount and a
 * slash: the mount point is where that surface begins (lighttpd's "/api"
 * and "/v1" keys), not a place the API was mounted under. */
static bool
mount_is_surface(const struct rf_surface *const *sv, size_t nsv,
    const char *mount, size_t n)
{
	for (size_t i = 0; i < nsv; i++)
		if (strncmp(sv[i]->prefix, mount, n) == 0 &&
		    sv[i]->prefix[n] == '/')
			return true;
	return false;
}

/* What follows the mount point the server reports (SCRIPT_NAME, without a
 * trailing slash) when the path starts with it at a segment boundary;
 * NULL otherwise, and NULL when the mount point is where a surface
 * begins: such a path is routed from its start or not at all, so
 * /api/api/v1/logs (mounted at /api) or /v1/api/v1/logs (at /v1) is not
 * /api/v1/logs. */
static const char *
after_mount(const struct rf_surface *const *sv, size_t nsv,
    struct rf_request *rq)
{
	const char *sn = param(rq, "SCRIPT_NAME");
	size_t n = sn != NULL ? strlen(sn) : 0;

	while (n > 0 && sn[n - 1] == '/')
		n--;
	if (n == 0 || strncmp(rq->path, sn, n) != 0 || rq->path[n] != '/' ||
	    mount_is_surface(sv, nsv, sn, n))
		return NULL;
	return rq->path + n;
}

/* The first surface whose prefix starts the path, or what follows the
 * mount point; rq->route is the rest.  NULL (and rq->route NULL) when
 * none does. */
static const struct rf_surface *
find_surface(const struct rf_surface *const *sv, size_t n, struct rf_request *rq)
{
	const char *mounted = after_mount(sv, n, rq);

	rq->route = NULL;
	for (size_t i = 0; i < n; i++) {
		size_t plen = strlen(sv[i]->prefix);

		if (strncmp(rq->path, sv[i]->prefix, plen) == 0)
			rq->route = rq->path + plen;
		else if (mounted != NULL &&
		    strncmp(mounted, sv[i]->prefix, plen) == 0)
			rq->route = mounted + plen;
		if (rq->route != NULL)
			return sv[i];
	}
	return NULL;
}

/* ---- the routes -------------------------------------------------------- */

static bool
route_matches(const struct rf_route *r, const char *key)
{
	size_t n = strlen(r->path);

	if (n > 0 && r->path[n - 1] == '*')
		return strncmp(r->path, key, n - 1) == 0;
	return strcmp(r->path, key) == 0;
}

/* "GET, POST, OPTIONS": the methods of every route on this path. */
static void
allow_list(const struct rf_surface *s, const char *key, char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < s->nroutes; i++)
		if (route_matches(&s->routes[i], key))
			snprintf(out + strlen(out), len - strlen(out), "%s, ",
			    s->routes[i].method);
	strncat(out, "OPTIONS", len - strlen(out) - 1);
}

/* The route for key and method; *known tells whether the path exists. */
static const struct rf_route *
find_route(const struct rf_surface *s, const char *key, const char *method,
    bool *known)
{
	const struct rf_route *match = NULL;

	*known = false;
	for (size_t i = 0; key != NULL && i < s->nroutes; i++) {
		if (!route_matches(&s->routes[i], key))
			continue;
		*known = true;
		if (match == NULL && strcmp(s->routes[i].method, method) == 0)
			match = &s->routes[i];
	}
	return match;
}

/* An encoded slash at offset slash of the path is data only inside what
 * a route's trailing '*' matches; anywhere else the path is no route. */
static bool
slash_in_wildcard(const struct rf_surface *s, const struct rf_request *rq,
    long slash)
{
	long at = (long)(rq->route - rq->path);

	for (size_t i = 0; i < s->nroutes; i++) {
		size_t n = strlen(s->routes[i].path);

		if (n > 0 && s->routes[i].path[n - 1] == '*' &&
		    route_matches(&s->routes[i], rq->route) &&
		    slash >= at + (long)n - 1)
			return true;
	}
	return false;
}

/* ---- the guards -------------------------------------------------------- */

/* want against the m bytes at got, in time independent of where they
 * differ (it depends only on the lengths). */
static bool
same_secret(const char *got, size_t m, const char *want)
{
	size_t n = strlen(want);
	unsigned char diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? got[i] : 0);
	return diff == 0 && m == n;
}

/* "Bearer <token>" (any case, spaces around the token ignored). */
static bool
bearer_ok(const char *auth, const char *want)
{
	size_t m;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	auth += 7;
	while (*auth == ' ')
		auth++;
	m = strlen(auth);
	while (m > 0 && auth[m - 1] == ' ')
		m--;
	return same_secret(auth, m, want);
}

static bool
token_ok(const struct rf_surface *s, struct rf_request *rq, const char *want)
{
	const char *key;

	if (bearer_ok(param(rq, "HTTP_AUTHORIZATION"), want))
		return true;
	if (s->key_param == NULL || (key = param(rq, s->key_param)) == NULL)
		return false;
	return same_secret(key, strlen(key), want);
}

/* ---- Content-Type (RFC 9110 section 8.3) ---- */

static const char *
ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The end of the token at p (p itself when there is none). */
static const char *
token_end(const char *p)
{
	while (*p != '\0' && (isalnum((unsigned char)*p) ||
	    strchr("!#$%&'*+-.^_`|~", *p) != NULL))
		p++;
	return p;
}

/* A parameter value at p, a token or a quoted-string, into v (cut at
 * vlen - 1; *n is its whole length).  The end, or NULL when malformed. */
static const char *
param_value(const char *p, char *v, size_t vlen, size_t *n)
{
	const char *e;

	*n = 0;
	if (*p != '"') {
		if ((e = token_end(p)) == p)
			return NULL;
		for (; p < e; p++, (*n)++)
			if (*n + 1 < vlen)
				v[*n] = *p;
	} else {
		for (p++; *p != '"'; p++, (*n)++) {
			if (*p == '\\' && p[1] != '\0')
				p++; /* a quoted-pair */
			if (*p == '\0')
				return NULL;
			if (*n + 1 < vlen)
				v[*n] = *p;
		}
		e = p + 1;
	}
	v[*n + 1 < vlen ? *n : vlen - 1] = '\0';
	return e;
}

/* application/json in any case, its parameters in any order, names in any
 * case, values quoted or not; a charset must be utf-8, other parameters
 * are ignored (RFC 8259 defines none).  Anything malformed is not JSON. */
static bool
is_json_type(const char *ct)
{
	const char *p, *name;
	char v[16];
	size_t vn;

	if (ct == NULL)
		return false;
	p = ows(ct);
	if (strncasecmp(p, "application/json", 16) != 0 || token_end(p + 16) !=
	    p + 16)
		return false;
	for (p = ows(p + 16); *p == ';'; p = ows(p)) {
		p = ows(p + 1);
		if (*p == ';' || *p == '\0')
			continue; /* an empty parameter */
		name = p;
		if ((p = token_end(p)) == name || *p != '=' ||
		    (p = param_value(p + 1, v, sizeof(v), &vn)) == NULL)
			return false;
		if (p - name > 8 && strncasecmp(name, "charset=", 8) == 0 &&
		    (vn != 5 || strcasecmp(v, "utf-8") != 0))
			return false;
	}
	return *p == '\0';
}

/* Read the body: CONTENT_LENGTH bytes when set, else to EOF; capped.
 * 0, or -1 after the refusal has been sent. */
static int
read_body(const struct rf_surface *s, struct rf_worker *w, struct rf_request *rq)
{
	const char *cl = param(rq, "CONTENT_LENGTH");
	long max = w->cfg->max_body_bytes;
	char buf[8192];
	long want = -1, got;

	if (cl != NULL && *cl != '\0') {
		char *end;
		want = strtol(cl, &end, 10);
		if (*end != '\0' || want < 0)
			goto bad_length;
		if (want > max)
			goto too_large;
	}
	rf_buf_init(&rq->body, (size_t)max);
	while (want < 0 || (long)rq->body.len < want) {
		size_t n = sizeof(buf);
		if (want >= 0 && (size_t)(want - (long)rq->body.len) < n)
			n = (size_t)(want - (long)rq->body.len);
		got = rq->read(rq->ctx, buf, n);
		if (got <= 0)
			break;
		if (rf_buf_append(&rq->body, buf, (size_t)got) != 0)
			goto too_large;
	}
	return 0;
bad_length:
	s->refuse(rq, RF_ERR_VALIDATION, "Bad Content-Length.", "body", NULL);
	return -1;
too_large:
	s->refuse(rq, RF_ERR_PAYLOAD_TOO_LARGE, NULL, NULL, NULL);
	return -1;
}

/* The per-client limit; true when this request is over it.  Never open:
 * without a store that answers, this process counts (src/ratelimit.c). */
static bool
over_limit(const struct rf_surface *s, struct rf_worker *w, struct rf_request *rq)
{
	const char *ip = param(rq, "REMOTE_ADDR");
	int retry_s = 0;
	char h[64];

	if (rf_rate_hit(w->store, ip, w->cfg->rate_limit, rf_now_ms(),
	    &retry_s) != 0)
		return false;
	snprintf(h, sizeof(h), "Retry-After: %d\r\n", retry_s);
	s->refuse(rq, RF_ERR_RATE_LIMITED, NULL, NULL, h);
	return true;
}

/* 401, 415, 413 and 429 for a matched route.  0 = go on. */
static int
guard(const struct rf_surface *s, struct rf_worker *w, struct rf_request *rq,
    const struct rf_route *r)
{
	const struct rf_config *cfg = w->cfg;
	const char *tok = r->guard == RF_GUARD_API ? cfg->api_token :
	    r->guard == RF_GUARD_ADMIN ? cfg->admin_token : NULL;
	bool post = strcmp(r->method, "POST") == 0;

	if (tok != NULL && !token_ok(s, rq, tok)) {
		s->refuse(rq, RF_ERR_UNAUTHORIZED, NULL, NULL,
		    "WWW-Authenticate: Bearer realm=\"relayforge\"\r\n");
		return -1;
	}
	if (post && !is_json_type(param(rq, "CONTENT_TYPE"))) {
		s->refuse(rq, RF_ERR_UNSUPPORTED_MEDIA, NULL, NULL, NULL);
		return -1;
	}
	if (post && read_body(s, w, rq) != 0)
		return -1;
	if (r->limited && cfg->rate_limit > 0 && over_limit(s, w, rq))
		return -1;
	return 0;
}

/* ---- one request ------------------------------------------------------- */

/* The request id (the client's when valid) and the CORS origin to echo. */
static void
identify(struct rf_worker *w, struct rf_request *rq)
{
	const char *id = param(rq, "HTTP_X_REQUEST_ID");
	const char *origin = param(rq, "HTTP_ORIGIN");

	if (id != NULL && rf_request_id_valid(id))
		snprintf(rq->request_id, sizeof(rq->request_id), "%s", id);
	else
		rf_request_id(rq->request_id);
	rq->origin = origin != NULL && rf_config_origin_allowed(w->cfg, origin) ? origin : NULL;
	if (rq->origin != NULL && strcmp(w->cfg->cors_origins, "*") == 0)
		rq->origin = "*";
}

void
rf_router_serve_with(const struct rf_surface *const *sv, size_t n,
    struct rf_worker *w, struct rf_request *rq)
{
	const struct rf_surface *s = NULL;
	const struct rf_route *match;
	bool known;
	char allow[128], h[160];
	long slash;

	rq->method = param(rq, "REQUEST_METHOD");
	if (rq->method == NULL)
		rq->method = "GET";
	identify(w, rq);
	rq->route = NULL;
	if (parse_target(rq, &slash) == 0)
		s = find_surface(sv, n, rq);
	if (s == NULL)
		s = sv[0];
	match = find_route(s, rq->route, rq->method, &known);
	if (known && slash >= 0 && !slash_in_wildcard(s, rq, slash))
		known = false;
	if (!known) {
		s->refuse(rq, RF_ERR_NOT_FOUND, NULL, NULL, NULL);
		goto out;
	}
	allow_list(s, rq->route, allow, sizeof(allow));
	if (strcmp(rq->method, "OPTIONS") == 0) {
		rf_reply_preflight(rq, allow, s->cors_headers);
		goto out;
	}
	if (match == NULL) {
		snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
		s->refuse(rq, RF_ERR_METHOD_NOT_ALLOWED, NULL, NULL, h);
		goto out;
	}
	if (guard(s, w, rq, match) == 0)
		match->handler(w, rq);
out:
	rf_buf_free(&rq->body);
}

void
rf_router_serve(struct rf_worker *w, struct rf_request *rq)
{
	rf_router_serve_with(surfaces, NELEM(surfaces), w, rq);
}
