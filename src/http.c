/*
 * http: the front door (SPEC section 4, "Common rules").
 *
 * Routing reads REQUEST_URI (the path before '?', percent-decoded by us) and
 * routes on what follows "/api/v1/", so the API answers the same however
 * the web server mounts the responder.  Before a handler runs, requests are
 * refused in this order: 404 / 405, 401 (tokens), 415, 413, 429 (the shared
 * per-client limit).  Refused requests are never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chain.h"
#include "contract.h"
#include "error.h"
#include "handlers.h"
#include "http.h"
#include "store.h"

enum guard { GUARD_NONE, GUARD_API, GUARD_ADMIN };

struct route {
	const char *path;   /* after /api/v1/ */
	const char *method;
	enum guard guard;
	bool limited;       /* counts against RELAYFORGE_RATE_LIMIT */
	void (*handler)(struct rf_worker *, struct rf_request *);
};

static const struct route routes[] = {
	{ "chat",             "POST", GUARD_API,   true,  rf_handle_chat },
	{ "stream",           "POST", GUARD_API,   true,  rf_handle_stream },
	{ "health",           "GET",  GUARD_NONE,  false, rf_handle_health },
	{ "providers/status", "GET",  GUARD_NONE,  false, rf_handle_status },
	{ "logs",             "GET",  GUARD_ADMIN, false, rf_handle_logs },
	{ "usage",            "GET",  GUARD_ADMIN, false, rf_handle_usage },
};

int rf_out_write(struct rf_out *o, const char *p, size_t n)
{
	if (o->failed)
		return -1;
	if (n > 0 && o->write(o->ctx, p, n) != 0)
		o->failed = true;
	return o->failed ? -1 : 0;
}

int rf_out_puts(struct rf_out *o, const char *s)
{
	return rf_out_write(o, s, strlen(s));
}

int rf_out_flush(struct rf_out *o)
{
	if (o->failed)
		return -1;
	if (o->flush(o->ctx) != 0)
		o->failed = true;
	return o->failed ? -1 : 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int rf_http_decode_path(const char *src, size_t n, char *dst, size_t dstlen)
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

int rf_http_query_get(const char *q, const char *key, char *out, size_t outlen)
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
			return rf_http_decode_path(tmp, vlen, out, outlen);
		}
		if (len == klen && strncmp(q, key, klen) == 0) {
			if (outlen > 0)
				out[0] = '\0';
			return 0;
		}
		q = amp ? amp + 1 : NULL;
	}
	return -1;
}

static const char *param(struct rf_request *rq, const char *name)
{
	return rq->param(rq->ctx, name);
}

/* Headers every response carries. */
static int common_headers(struct rf_request *rq, int status)
{
	struct rf_buf h = { 0 };
	int rc;

	rf_buf_printf(&h, "Status: %d %s\r\nX-Request-Id: %s\r\n", status,
	    rf_http_reason(status), rq->request_id);
	if (rq->origin != NULL)
		rf_buf_printf(&h, "Access-Control-Allow-Origin: %s\r\n"
		    "Access-Control-Expose-Headers: X-Request-Id, X-RelayForge-Provider, "
		    "X-RelayForge-Fallback, Retry-After\r\nVary: Origin\r\n", rq->origin);
	rc = rf_out_write(&rq->out, h.data, h.len);
	rf_buf_free(&h);
	rq->head_sent = true;
	return rc;
}

int rf_http_send_json(struct rf_request *rq, int status, const char *extra,
    json_object *body)
{
	char *text = rf_contract_dump(body);
	struct rf_buf h = { 0 };
	int rc = -1;

	json_object_put(body);
	if (text == NULL)
		return -1;
	rf_buf_printf(&h, "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n",
	    strlen(text), extra ? extra : "");
	if (common_headers(rq, status) == 0 && rf_out_write(&rq->out, h.data, h.len) == 0 &&
	    rf_out_puts(&rq->out, text) == 0)
		rc = rf_out_flush(&rq->out);
	rf_buf_free(&h);
	free(text);
	return rc;
}

int rf_http_send_error(struct rf_request *rq, int code, const char *message,
    const char *field, const char *extra)
{
	json_object *e = rf_contract_error((enum rf_err)code, message, NULL, NULL,
	    false, rq->request_id, NULL, field);

	return rf_http_send_json(rq, rf_err_status((enum rf_err)code), extra,
	    rf_contract_failure(e));
}

int rf_http_start_sse(struct rf_request *rq, const char *extra)
{
	if (common_headers(rq, 200) != 0)
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

/* Constant-time comparison of "Bearer <token>" against the expected token. */
static bool token_ok(const char *auth, const char *want)
{
	size_t n = strlen(want), m;
	unsigned char diff = 0;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	auth += 7;
	while (*auth == ' ')
		auth++;
	m = strlen(auth);
	while (m > 0 && auth[m - 1] == ' ')
		m--;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? auth[i] : 0);
	return diff == 0 && m == n;
}

/* Path and query from REQUEST_URI (SCRIPT_NAME + PATH_INFO as a fallback). */
static int parse_target(struct rf_request *rq)
{
	const char *uri = param(rq, "REQUEST_URI");
	char joined[1024];
	const char *q;

	if (uri == NULL || *uri == '\0') {
		const char *sn = param(rq, "SCRIPT_NAME"), *pi = param(rq, "PATH_INFO");
		snprintf(joined, sizeof(joined), "%s%s", sn ? sn : "", pi ? pi : "");
		uri = joined;
		rq->query = param(rq, "QUERY_STRING");
		if (rq->query == NULL)
			rq->query = "";
		return rf_http_decode_path(uri, strlen(uri), rq->path, sizeof(rq->path));
	}
	q = strchr(uri, '?');
	rq->query = q ? q + 1 : "";
	return rf_http_decode_path(uri, q ? (size_t)(q - uri) : strlen(uri),
	    rq->path, sizeof(rq->path));
}

/* The route part after "/api/v1/" ("" when the path has none). */
static const char *route_key(const char *path)
{
	const char *p = strstr(path, "/api/v1/");

	return p ? p + 8 : NULL;
}

static void allow_list(const char *key, char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].path, key) == 0)
			snprintf(out + strlen(out), len - strlen(out), "%s, ", routes[i].method);
	strncat(out, "OPTIONS", len - strlen(out) - 1);
}

static void preflight(struct rf_request *rq, const char *allow)
{
	char h[512];

	snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
	common_headers(rq, 204);
	rf_out_puts(&rq->out, h);
	if (rq->origin != NULL)
		rf_out_puts(&rq->out, "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
		    "Access-Control-Allow-Headers: Content-Type, Authorization, X-Request-Id\r\n"
		    "Access-Control-Max-Age: 600\r\n");
	rf_out_puts(&rq->out, "Cache-Control: no-store\r\n\r\n");
	rf_out_flush(&rq->out);
}

/* application/json, optionally with charset=utf-8. */
static bool is_json_type(const char *ct)
{
	const char *semi;

	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "application/json", 16) != 0)
		return false;
	semi = ct + 16;
	while (*semi == ' ')
		semi++;
	if (*semi == '\0')
		return true;
	if (*semi != ';')
		return false;
	semi++;
	while (*semi == ' ')
		semi++;
	return *semi == '\0' || strncasecmp(semi, "charset=utf-8", 13) == 0 ||
	    strncasecmp(semi, "charset=\"utf-8\"", 15) == 0;
}

/* Read the body: CONTENT_LENGTH bytes when set, else to EOF; capped. */
static int read_body(struct rf_worker *w, struct rf_request *rq)
{
	const char *cl = param(rq, "CONTENT_LENGTH");
	long max = w->cfg->max_body_bytes;
	char buf[8192];
	long want = -1, got;

	if (cl != NULL && *cl != '\0') {
		char *end;
		want = strtol(cl, &end, 10);
		if (*end != '\0' || want < 0)
			return rf_http_send_error(rq, RF_ERR_VALIDATION, "Bad Content-Length.", "body", NULL), -1;
		if (want > max)
			return rf_http_send_error(rq, RF_ERR_PAYLOAD_TOO_LARGE, NULL, NULL, NULL), -1;
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
			return rf_http_send_error(rq, RF_ERR_PAYLOAD_TOO_LARGE, NULL, NULL, NULL), -1;
	}
	return 0;
}

/* 401, 415 and 429 checks for a matched route.  0 = go on. */
static int guard(struct rf_worker *w, struct rf_request *rq, const struct route *r)
{
	const struct rf_config *cfg = w->cfg;
	const char *tok = r->guard == GUARD_API ? cfg->api_token :
	    r->guard == GUARD_ADMIN ? cfg->admin_token : NULL;
	int retry_s = 0;

	if (tok != NULL && !token_ok(param(rq, "HTTP_AUTHORIZATION"), tok)) {
		rf_http_send_error(rq, RF_ERR_UNAUTHORIZED, NULL, NULL,
		    "WWW-Authenticate: Bearer realm=\"relayforge\"\r\n");
		return -1;
	}
	if (strcmp(r->method, "POST") == 0 && !is_json_type(param(rq, "CONTENT_TYPE"))) {
		rf_http_send_error(rq, RF_ERR_UNSUPPORTED_MEDIA, NULL, NULL, NULL);
		return -1;
	}
	if (strcmp(r->method, "POST") == 0 && read_body(w, rq) != 0)
		return -1;
	if (r->limited && cfg->rate_limit > 0 && w->store != NULL) {
		const char *ip = param(rq, "REMOTE_ADDR");
		if (rf_store_rate_hit(w->store, ip ? ip : "unknown", cfg->rate_limit,
		    rf_now_ms(), &retry_s) == 0) {
			char h[64];
			snprintf(h, sizeof(h), "Retry-After: %d\r\n", retry_s);
			rf_http_send_error(rq, RF_ERR_RATE_LIMITED, NULL, NULL, h);
			return -1;
		}
	}
	return 0;
}

static void identify(struct rf_worker *w, struct rf_request *rq)
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

void rf_http_serve(struct rf_worker *w, struct rf_request *rq)
{
	const struct route *match = NULL;
	const char *key;
	bool path_known = false;
	char allow[128];

	rq->method = param(rq, "REQUEST_METHOD");
	if (rq->method == NULL)
		rq->method = "GET";
	identify(w, rq);
	key = parse_target(rq) == 0 ? route_key(rq->path) : NULL;
	for (size_t i = 0; key != NULL && i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, key) != 0)
			continue;
		path_known = true;
		if (strcmp(routes[i].method, rq->method) == 0)
			match = &routes[i];
	}
	if (!path_known) {
		rf_http_send_error(rq, RF_ERR_NOT_FOUND, NULL, NULL, NULL);
		goto out;
	}
	allow_list(key, allow, sizeof(allow));
	if (strcmp(rq->method, "OPTIONS") == 0) {
		preflight(rq, allow);
		goto out;
	}
	if (match == NULL) {
		char h[160];
		snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
		rf_http_send_error(rq, RF_ERR_METHOD_NOT_ALLOWED, NULL, NULL, h);
		goto out;
	}
	if (guard(w, rq, match) == 0)
		match->handler(w, rq);
out:
	rf_buf_free(&rq->body);
}
