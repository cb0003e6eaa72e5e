/* Unit tests of the router: path decoding, query parsing, and whole
 * requests through rf_router_serve with fake CGI parameters (routing, 404,
 * 405 + Allow, 415, 413, 401, preflight, request ids, status lines); then a
 * second surface with its own refusal renderer, through
 * rf_router_serve_with, as docs/openai.md's /v1/ will be added. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "reply.h"
#include "request.h"
#include "router.h"
#include "upstream.h"

struct fake {
	const char *params[32]; /* name, value pairs, NULL-terminated */
	const char *body;
	size_t off;
	struct rf_buf out;
};

static const char *
fake_param(void *ctx, const char *name)
{
	struct fake *f = ctx;

	for (int i = 0; f->params[i] != NULL; i += 2)
		if (strcmp(f->params[i], name) == 0)
			return f->params[i + 1];
	return NULL;
}

static long
fake_read(void *ctx, char *buf, size_t n)
{
	struct fake *f = ctx;
	size_t left = f->body ? strlen(f->body) - f->off : 0;

	if (n > left)
		n = left;
	memcpy(buf, f->body + f->off, n);
	f->off += n;
	return (long)n;
}

static int
fake_write(void *ctx, const char *p, size_t n)
{
	return rf_buf_append(&((struct fake *)ctx)->out, p, n);
}

static int
fake_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static struct rf_config cfg;

static int
setup(void **state)
{
	char err[256];

	(void)state;
	unsetenv("RELAYFORGE_CONFIG");
	setenv("RELAYFORGE_MAX_BODY_BYTES", "2048", 1);
	setenv("RELAYFORGE_API_TOKEN", "tok-123", 1);
	setenv("RELAYFORGE_CORS_ORIGINS", "https://app.example", 1);
	assert_int_equal(rf_config_load(&cfg, err, sizeof(err)), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	rf_config_free(&cfg);
	unsetenv("RELAYFORGE_MAX_BODY_BYTES");
	unsetenv("RELAYFORGE_API_TOKEN");
	unsetenv("RELAYFORGE_CORS_ORIGINS");
	return 0;
}

/* Serve one fake request; returns the whole output (caller frees). */
static char *
serve(struct fake *f)
{
	struct rf_worker w = { .cfg = &cfg, .up = rf_up_new() };
	struct rf_request rq = {
		.param = fake_param, .read = fake_read, .ctx = f,
		.out = { .write = fake_write, .flush = fake_flush, .ctx = f },
	};

	rf_buf_init(&f->out, 0);
	rf_router_serve(&w, &rq);
	rf_up_free(w.up);
	return f->out.data;
}

static void
test_decode_and_query(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(rf_router_decode_path("/api/v1/%63hat", 14, out, sizeof(out)), 0);
	assert_string_equal(out, "/api/v1/chat");
	assert_int_equal(rf_router_decode_path("/a%2", 4, out, sizeof(out)), -1);
	assert_int_equal(rf_router_decode_path("/a%zz", 5, out, sizeof(out)), -1);
	assert_int_equal(rf_router_decode_path("/a%00b", 6, out, sizeof(out)), -1);
	assert_int_equal(rf_router_decode_path("/abcdef", 7, out, 4), -1);
	assert_int_equal(rf_router_query_get("limit=5&provider=groq", "provider", out, sizeof(out)), 1);
	assert_string_equal(out, "groq");
	assert_int_equal(rf_router_query_get("window=24h", "win", out, sizeof(out)), 0);
	assert_int_equal(rf_router_query_get("a=x+y%21", "a", out, sizeof(out)), 1);
	assert_string_equal(out, "x y!");
}

static void
test_routing_errors(void **state)
{
	(void)state;
	struct fake nf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/api/v1/nope?x=1", NULL } };
	char *o = serve(&nf);
	assert_non_null(strstr(o, "Status: 404 Not Found\r\n"));
	assert_non_null(strstr(o, "\"code\":\"not_found\""));
	assert_non_null(strstr(o, "Cache-Control: no-store\r\n"));
	free(o);

	struct fake mf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/prefix/api/v1/chat",
		"SCRIPT_NAME", "/prefix", NULL } };
	o = serve(&mf);
	assert_non_null(strstr(o, "Status: 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(o, "Allow: POST, OPTIONS\r\n"));
	free(o);
}

static void
test_guards(void **state)
{
	(void)state;
	/* no token */
	struct fake a = { .params = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/api/v1/chat",
		"CONTENT_TYPE", "application/json", NULL }, .body = "{\"prompt\":\"hi\"}" };
	char *o = serve(&a);
	assert_non_null(strstr(o, "Status: 401 Unauthorized\r\n"));
	free(o);
	/* token, wrong type */
	struct fake b = { .params = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/api/v1/chat",
		"HTTP_AUTHORIZATION", "Bearer tok-123", "CONTENT_TYPE", "text/plain", NULL },
		.body = "hi" };
	o = serve(&b);
	assert_non_null(strstr(o, "Status: 415 Unsupported Media Type\r\n"));
	free(o);
	/* too large by Content-Length */
	struct fake c = { .params = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/api/v1/chat",
		"HTTP_AUTHORIZATION", "Bearer tok-123", "CONTENT_TYPE", "application/json",
		"CONTENT_LENGTH", "4096", NULL }, .body = "{}" };
	o = serve(&c);
	assert_non_null(strstr(o, "Status: 413 Payload Too Large\r\n"));
	free(o);
	/* the right token and a good body: the mock answers */
	struct fake d = { .params = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/api/v1/chat",
		"HTTP_AUTHORIZATION", "Bearer tok-123", "CONTENT_TYPE", "application/json; charset=utf-8",
		"HTTP_X_REQUEST_ID", "my-id.1", NULL }, .body = "{\"prompt\":\"hi\"}" };
	o = serve(&d);
	assert_non_null(strstr(o, "Status: 200 OK\r\n"));
	assert_non_null(strstr(o, "X-Request-Id: my-id.1\r\n"));
	assert_non_null(strstr(o, "X-RelayForge-Provider: mock\r\n"));
	assert_non_null(strstr(o, "\"demoMode\":true"));
	free(o);
}

/* Where the API answers: the surface prefix at the start of the path, or
 * right after the mount point the server reports (SCRIPT_NAME); the route
 * is what follows, matched exactly; an encoded slash is no separator.
 * A GET of chat is 405 when routed, 404 when not. */
static void
test_mount_rules(void **state)
{
	static const struct {
		const char *uri, *script, *path_info;
		bool routed;
	} cases[] = {
		/* lighttpd, key "/api" (deploy/lighttpd.conf, mod_cgi alias) */
		{ "/api/v1/chat", "/api", "/v1/chat", true },
		{ "/api/v1/chat?a=1", "/api", "/v1/chat", true },
		/* lighttpd, key "/api/" or "/api/v1"; nginx with plain
		 * fastcgi_params; no SCRIPT_NAME at all */
		{ "/api/v1/chat", "/api/v1", "/chat", true },
		{ "/api/v1/chat", "/api/v1/chat", NULL, true },
		{ "/api/v1/chat", NULL, NULL, true },
		/* cgi-bin/.htaccess; an Alias or ScriptAlias elsewhere */
		{ "/cgi-bin/relayforge.fcgi/api/v1/chat", "/cgi-bin/relayforge.fcgi",
		    "/api/v1/chat", true },
		{ "/gw/api/v1/chat", "/gw", "/api/v1/chat", true },
		{ "/gw/api/v1/chat", "/gw/", "api/v1/chat", true },
		/* an encoded letter is the letter */
		{ "/api/v1/%63hat", "/api", "/v1/chat", true },
		{ "/cgi-bin/relayforge%2efcgi/api/v1/chat",
		    "/cgi-bin/relayforge.fcgi", "/api/v1/chat", true },
		/* the prefix anywhere else */
		{ "/api/foo/api/v1/chat", "/api", "/foo/api/v1/chat", false },
		{ "/api/foo/api/v1/logs", "/api", "/foo/api/v1/logs", false },
		{ "/x/api/v1/chat", NULL, NULL, false },
		{ "/x/api/v1/chat", "/api", NULL, false },
		{ "/gw/x/api/v1/chat", "/gw", "/x/api/v1/chat", false },
		{ "/cgi-bin/relayforge.fcgi/x/api/v1/chat",
		    "/cgi-bin/relayforge.fcgi", "/x/api/v1/chat", false },
		{ "/cgi-bin/relayforge.fcgix/api/v1/chat",
		    "/cgi-bin/relayforge.fcgi", NULL, false },
		{ "//api/v1/chat", NULL, NULL, false },
		/* a mount point that is where a surface starts is no mount
		 * to route after: /api/api/v1/... under lighttpd's "/api",
		 * /v1/api/v1/... under its "/v1" would walk around a rule the
		 * server puts on /api/v1/logs */
		{ "/api/api/v1/chat", "/api", "/api/v1/chat", false },
		{ "/v1/api/v1/chat", "/v1", "/api/v1/chat", false },
		{ "/api/v1/api/v1/chat", "/api/v1", "/api/v1/chat", false },
		/* an encoded slash is not a separator */
		{ "/api/v1%2fchat", "/api", "/v1/chat", false },
		{ "/api/v1%2Fchat", "/api", "/v1/chat", false },
		{ "/api%2fv1/chat", "/api", "/v1/chat", false },
		{ "/gw%2fapi/v1/chat", "/gw", NULL, false },
		/* the route is the whole rest */
		{ "/api/v1/chat/x", "/api", "/v1/chat/x", false },
		{ "/api/v1/./chat", "/api", "/v1/./chat", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = { .params = { "REQUEST_METHOD", "GET",
			"REQUEST_URI", cases[i].uri,
			"SCRIPT_NAME", cases[i].script,
			"PATH_INFO", cases[i].path_info, NULL } };
		char *o;

		/* an absent variable ends the list early */
		if (cases[i].script == NULL)
			f.params[4] = NULL;
		else if (cases[i].path_info == NULL)
			f.params[6] = NULL;
		o = serve(&f);
		if (strstr(o, cases[i].routed ? "Status: 405 " : "Status: 404 ") ==
		    NULL)
			fail_msg("case %zu (%s, SCRIPT_NAME %s): %.40s", i,
			    cases[i].uri, cases[i].script ? cases[i].script : "-", o);
		free(o);
	}
}

/* Without REQUEST_URI the server's own split is used as it is (it has
 * already decoded both halves). */
static void
test_mount_without_request_uri(void **state)
{
	struct fake a = { .params = { "REQUEST_METHOD", "GET",
		"SCRIPT_NAME", "/cgi-bin/r.fcgi", "PATH_INFO", "/api/v1/chat", NULL } };
	struct fake b = { .params = { "REQUEST_METHOD", "GET",
		"SCRIPT_NAME", "/api", "PATH_INFO", "/v1/chat", NULL } };
	struct fake c = { .params = { "REQUEST_METHOD", "GET",
		"SCRIPT_NAME", "/api", "PATH_INFO", "/foo/api/v1/chat", NULL } };
	char *o;

	(void)state;
	o = serve(&a);
	assert_non_null(strstr(o, "Status: 405 "));
	free(o);
	o = serve(&b);
	assert_non_null(strstr(o, "Status: 405 "));
	free(o);
	o = serve(&c);
	assert_non_null(strstr(o, "Status: 404 "));
	free(o);
}

/* Content-Type is parsed (RFC 9110 section 8.3): application/json in any
 * case, parameters in any order, quoted or not, names in any case; a
 * charset must be utf-8; anything malformed is 415. */
static void
test_content_types(void **state)
{
	static const struct {
		const char *ct;
		bool ok;
	} cases[] = {
		{ "application/json", true },
		{ "Application/JSON", true },
		{ "application/json; charset=utf-8", true },
		{ "application/json;charset=UTF-8", true },
		{ "application/json ; charset=utf-8", true },
		{ "application/json;\tcharset=utf-8", true },
		{ "application/json; CharSet=\"utf-8\"", true },
		{ "application/json; foo=bar; charset=utf-8", true },
		{ "application/json; charset=utf-8; foo=\"a;b\\\"c\"", true },
		{ "application/json; foo=bar", true },
		{ "application/json;", true },
		{ "  application/json  ", true },
		{ "application/jsonx", false },
		{ "application/json+x", false },
		{ "application/json/x", false },
		{ "application/json-seq", false },
		{ "application/json charset=utf-8", false },
		{ "application/json; charset=latin1", false },
		{ "application/json; charset=\"latin1\"", false },
		{ "application/json; charset=utf-8x", false },
		{ "application/json; charset=utf-8;charset=latin1", false },
		{ "application/json; charset=\"utf-8\"x", false },
		{ "application/json; charset=\"utf-8", false },
		{ "application/json; charset=", false },
		{ "application/json; charset", false },
		{ "application/json; =utf-8", false },
		{ "application/json; charset = utf-8", false },
		{ "application/json; charset=utf-8 x", false },
		{ "text/json", false },
		{ "application /json", false },
		{ "", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = { .params = { "REQUEST_METHOD", "POST",
			"REQUEST_URI", "/api/v1/chat", "HTTP_AUTHORIZATION",
			"Bearer tok-123", "CONTENT_TYPE", cases[i].ct, NULL },
			.body = "{\"prompt\":\"hi\"}" };
		char *o = serve(&f);
		bool refused = strstr(o, "Status: 415 ") != NULL;

		if (refused == cases[i].ok)
			fail_msg("case %zu (%s): %.40s", i, cases[i].ct, o);
		free(o);
	}
}

/* The per-client limit holds without a store (it could not be opened):
 * this process counts the minute itself, never lets every request through.
 * The two requests are sent well inside one minute: it is the minute of
 * the wall clock, so the third could only pass if a new one began between
 * them -- checked, and the check repeated once if it did. */
static void
test_rate_limit_without_store(void **state)
{
	char addr[32];
	int tries = 0;
	bool refused = false;

	(void)state;
	cfg.rate_limit = 2;
	while (!refused && tries++ < 2) {
		int64_t minute = rf_now_ms() / 60000;
		char *o[3];

		snprintf(addr, sizeof addr, "198.51.100.%d", tries);
		for (int i = 0; i < 3; i++) {
			struct fake f = { .params = { "REQUEST_METHOD", "POST",
				"REQUEST_URI", "/api/v1/chat", "REMOTE_ADDR", addr,
				"HTTP_AUTHORIZATION", "Bearer tok-123",
				"CONTENT_TYPE", "application/json", NULL },
				.body = "{\"prompt\":\"hi\"}" };
			o[i] = serve(&f);
		}
		assert_non_null(strstr(o[0], "Status: 200 OK\r\n"));
		assert_non_null(strstr(o[1], "Status: 200 OK\r\n"));
		refused = strstr(o[2], "Status: 429 Too Many Requests\r\n") != NULL;
		if (refused) {
			assert_non_null(strstr(o[2], "Retry-After: "));
			assert_non_null(strstr(o[2], "\"code\":\"rate_limited\""));
		} else {
			assert_true(rf_now_ms() / 60000 != minute);
		}
		for (int i = 0; i < 3; i++)
			free(o[i]);
	}
	assert_true(refused);
}

static void
test_preflight(void **state)
{
	(void)state;
	struct fake a = { .params = { "REQUEST_METHOD", "OPTIONS", "REQUEST_URI", "/api/v1/stream",
		"HTTP_ORIGIN", "https://app.example", NULL } };
	char *o = serve(&a);
	assert_non_null(strstr(o, "Status: 204 No Content\r\n"));
	assert_non_null(strstr(o, "Access-Control-Allow-Origin: https://app.example\r\n"));
	assert_non_null(strstr(o, "Access-Control-Allow-Headers: "));
	free(o);
	struct fake b = { .params = { "REQUEST_METHOD", "OPTIONS", "REQUEST_URI", "/api/v1/stream",
		"HTTP_ORIGIN", "https://evil.example", NULL } };
	o = serve(&b);
	assert_non_null(strstr(o, "Status: 204 No Content\r\n"));
	assert_null(strstr(o, "Access-Control-Allow-Origin"));
	free(o);
}

/* ---- a second surface, as /v1/ will be added -------------------------- */

static int test_refusals;         /* calls of test_refuse */
static enum rf_err test_last;     /* its last code */
static int test_handled;          /* calls of test_handler */

/* Renders refusals in a shape of its own: {"error":{"message","code"}}. */
static void
test_refuse(struct rf_request *rq, enum rf_err code, const char *message,
    const char *field, const char *extra_headers)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	(void)field;
	test_refusals++;
	test_last = code;
	json_object_object_add(e, "message",
	    json_object_new_string(message ? message : rf_err_message(code)));
	json_object_object_add(e, "code", json_object_new_string(rf_err_code(code)));
	json_object_object_add(o, "error", e);
	rf_reply_json(rq, rf_err_status(code), extra_headers, o);
}

static void
test_handler(struct rf_worker *w, struct rf_request *rq)
{
	json_object *o = json_object_new_object();

	(void)w;
	test_handled++;
	json_object_object_add(o, "route", json_object_new_string(rq->route));
	rf_reply_json(rq, 200, NULL, o);
}

static const struct rf_route test_routes[] = {
	{ "POST", "chat/completions", RF_GUARD_API,  false, test_handler },
	{ "GET",  "models",           RF_GUARD_NONE, false, test_handler },
	{ "GET",  "models/*",         RF_GUARD_NONE, false, test_handler },
};

static const struct rf_surface test_surface = {
	.prefix = "/t/",
	.routes = test_routes,
	.nroutes = sizeof(test_routes) / sizeof(test_routes[0]),
	.refuse = test_refuse,
	.key_param = "HTTP_X_API_KEY",
	.cors_headers = "Authorization, X-Test",
};

/* A surface whose prefix contains "/t/": it must be tried first. */
static const struct rf_route other_routes[] = {
	{ "GET", "ping", RF_GUARD_NONE, false, test_handler },
};

static const struct rf_surface other_surface = {
	.prefix = "/x/t/",
	.routes = other_routes,
	.nroutes = 1,
	.refuse = test_refuse,
};

static const struct rf_surface *const test_table[] = {
	&other_surface, &test_surface,
};

static char *
serve_test(struct fake *f)
{
	struct rf_worker w = { .cfg = &cfg };
	struct rf_request rq = {
		.param = fake_param, .read = fake_read, .ctx = f,
		.out = { .write = fake_write, .flush = fake_flush, .ctx = f },
	};

	test_refusals = 0;
	test_handled = 0;
	test_last = RF_OK;
	rf_buf_init(&f->out, 0);
	rf_router_serve_with(test_table, 2, &w, &rq);
	return f->out.data;
}

static void
test_surface_refusals(void **state)
{
	(void)state;
	struct fake nf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/mount/t/nope", NULL } };
	char *o = serve_test(&nf);
	assert_int_equal(test_refusals, 1);
	assert_int_equal(test_last, RF_ERR_NOT_FOUND);
	assert_non_null(strstr(o, "Status: 404 Not Found\r\n"));
	assert_non_null(strstr(o, "{\"error\":{\"message\":"));
	assert_null(strstr(o, "\"success\""));
	free(o);

	struct fake mf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/t/chat/completions", NULL } };
	o = serve_test(&mf);
	assert_int_equal(test_refusals, 1);
	assert_int_equal(test_last, RF_ERR_METHOD_NOT_ALLOWED);
	assert_non_null(strstr(o, "Status: 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(o, "Allow: POST, OPTIONS\r\n"));
	assert_non_null(strstr(o, "\"code\":\"method_not_allowed\""));
	free(o);

	struct fake af = { .params = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/t/chat/completions",
		"CONTENT_TYPE", "application/json", "HTTP_X_API_KEY", "wrong", NULL }, .body = "{}" };
	o = serve_test(&af);
	assert_int_equal(test_refusals, 1);
	assert_int_equal(test_last, RF_ERR_UNAUTHORIZED);
	assert_non_null(strstr(o, "Status: 401 Unauthorized\r\n"));
	assert_non_null(strstr(o, "WWW-Authenticate: Bearer"));
	assert_non_null(strstr(o, "\"code\":\"unauthorized\""));
	free(o);

	/* No surface claims the path: the first surface of the table refuses. */
	struct fake uf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/elsewhere", NULL } };
	o = serve_test(&uf);
	assert_int_equal(test_refusals, 1);
	assert_int_equal(test_last, RF_ERR_NOT_FOUND);
	free(o);
}

static void
test_surface_routes(void **state)
{
	(void)state;
	/* the surface's own key header carries the token */
	struct fake kf = { .params = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/t/chat/completions",
		"CONTENT_TYPE", "application/json", "HTTP_X_API_KEY", "tok-123", NULL }, .body = "{}" };
	char *o = serve_test(&kf);
	assert_int_equal(test_refusals, 0);
	assert_int_equal(test_handled, 1);
	assert_non_null(strstr(o, "Status: 200 OK\r\n"));
	assert_non_null(strstr(o, "\"route\":\"chat/completions\""));
	free(o);
	/* a trailing '*' takes the rest of the path, slashes included */
	struct fake wf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/t/models/or/llama:free", NULL } };
	o = serve_test(&wf);
	assert_int_equal(test_handled, 1);
	assert_non_null(strstr(o, "\"route\":\"models/or/llama:free\""));
	free(o);
	/* the longer prefix listed first wins */
	struct fake pf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/x/t/ping", NULL } };
	o = serve_test(&pf);
	assert_int_equal(test_handled, 1);
	assert_non_null(strstr(o, "\"route\":\"ping\""));
	free(o);
	/* the surface's preflight headers */
	struct fake of = { .params = { "REQUEST_METHOD", "OPTIONS", "REQUEST_URI", "/t/models",
		"HTTP_ORIGIN", "https://app.example", NULL } };
	o = serve_test(&of);
	assert_int_equal(test_refusals, 0);
	assert_non_null(strstr(o, "Status: 204 No Content\r\n"));
	assert_non_null(strstr(o, "Allow: GET, OPTIONS\r\n"));
	assert_non_null(strstr(o, "Access-Control-Allow-Headers: Authorization, X-Test\r\n"));
	free(o);
}

/* The built-in /v1/ surface (docs/openai.md): OpenAI's error shape with
 * x-should-retry, x-api-key as the token, the SDK headers in the
 * preflight, /v1/models/{id} with '/' in the id, encoded or not -- and an
 * encoded slash anywhere else still no route. */
static void
test_oai_surface(void **state)
{
	(void)state;
	struct fake nf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/v1/embeddings", NULL } };
	char *o = serve(&nf);
	assert_non_null(strstr(o, "Status: 404 Not Found\r\n"));
	assert_non_null(strstr(o, "x-should-retry: false\r\n"));
	assert_non_null(strstr(o, "{\"error\":{\"message\":\"No such endpoint.\","
	    "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"not_found\"}}"));
	free(o);

	struct fake af = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/v1/models", NULL } };
	o = serve(&af);
	assert_non_null(strstr(o, "Status: 401 Unauthorized\r\n"));
	assert_non_null(strstr(o, "\"type\":\"authentication_error\""));
	free(o);

	struct fake kf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/v1/models",
		"HTTP_X_API_KEY", "tok-123", NULL } };
	o = serve(&kf);
	assert_non_null(strstr(o, "Status: 200 OK\r\n"));
	assert_non_null(strstr(o, "{\"object\":\"list\",\"data\":[{\"id\":\"auto\""));
	assert_non_null(strstr(o, "\"id\":\"mock/relayforge-mock-1\""));
	free(o);

	static const char *const ids[] = { "/v1/models/mock/relayforge-mock-1",
	    "/v1/models/mock%2Frelayforge-mock-1", "/v1/models/mock%2frelayforge-mock-1" };
	for (size_t i = 0; i < 3; i++) {
		struct fake mf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", ids[i],
			"HTTP_AUTHORIZATION", "Bearer tok-123", NULL } };
		o = serve(&mf);
		assert_non_null(strstr(o, "Status: 200 OK\r\n"));
		assert_non_null(strstr(o, "{\"id\":\"mock/relayforge-mock-1\",\"object\":\"model\""));
		free(o);
	}
	/* an encoded slash outside the id, on either surface: no route */
	static const char *const bad[] = { "/v1%2Fmodels/mock", "/v1/models%2Fmock",
	    "/api/v1%2fchat", "/v1/chat%2Fcompletions" };
	for (size_t i = 0; i < 4; i++) {
		struct fake bf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", bad[i],
			"HTTP_AUTHORIZATION", "Bearer tok-123", NULL } };
		o = serve(&bf);
		assert_non_null(strstr(o, "Status: 404 Not Found\r\n"));
		free(o);
	}
	struct fake uf = { .params = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/v1/models/gpt-4o",
		"HTTP_AUTHORIZATION", "Bearer tok-123", NULL } };
	o = serve(&uf);
	assert_non_null(strstr(o, "Status: 404 Not Found\r\n"));
	assert_non_null(strstr(o, "\"param\":\"model\",\"code\":\"model_not_found\""));
	free(o);

	struct fake pf = { .params = { "REQUEST_METHOD", "OPTIONS", "REQUEST_URI", "/v1/chat/completions",
		"HTTP_ORIGIN", "https://app.example", NULL } };
	o = serve(&pf);
	assert_non_null(strstr(o, "Status: 204 No Content\r\n"));
	assert_non_null(strstr(o, "Access-Control-Allow-Headers: Authorization, Content-Type, "
	    "X-Request-Id, x-api-key,"));
	assert_non_null(strstr(o, "X-Stainless-Package-Version"));
	assert_non_null(strstr(o, "X-Stainless-Retry-Count"));
	free(o);

	/* mounted at /v1 by lighttpd: SCRIPT_NAME /v1 */
	struct fake lf = { .params = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/v1/chat/completions",
		"SCRIPT_NAME", "/v1", "PATH_INFO", "/chat/completions", "CONTENT_TYPE", "application/json",
		"HTTP_AUTHORIZATION", "Bearer tok-123", NULL },
		.body = "{\"model\":\"mock\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" };
	o = serve(&lf);
	assert_non_null(strstr(o, "Status: 200 OK\r\n"));
	assert_non_null(strstr(o, "X-RelayForge-Attempts: mock:ok\r\n"));
	assert_non_null(strstr(o, "\"object\":\"chat.completion\""));
	free(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_and_query),
		cmocka_unit_test_setup_teardown(test_routing_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount_without_request_uri, setup, teardown),
		cmocka_unit_test_setup_teardown(test_content_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_without_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_surface_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_surface_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oai_surface, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
