/*
 * Unit tests of the handlers as the router drives them: each request is an
 * in-memory fake (a CGI parameter table, a body, an output buffer that
 * captures headers and body) served by rf_router_serve, with the mock as
 * the only provider, a real store in a mkdtemp directory and no log writer
 * thread (so the handler writes its row itself, read back through
 * rf_store_logs).  Covers chat, stream, health, a 400 with its field, and
 * the router's 404, 405 + Allow and 401.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "request.h"
#include "router.h"
#include "store.h"
#include "upstream.h"
#include "util.h"

#define TOKEN "tok-handlers"

static const char *const key_env[] = { "GROQ_API_KEY", "SAMBANOVA_API_KEY",
	"CEREBRAS_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY",
	"RELAYFORGE_CONFIG", "RELAYFORGE_CHAIN", "RELAYFORGE_ADMIN_TOKEN",
	"RELAYFORGE_CORS_ORIGINS", "RELAYFORGE_MAX_BODY_BYTES" };

struct fixture {
	char dir[64];
	char path[128];
	struct rf_config cfg;
	struct rf_worker w;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/rf-handlers-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/relayforge.db", f->dir);
	for (size_t i = 0; i < sizeof(key_env) / sizeof(key_env[0]); i++)
		unsetenv(key_env[i]);
	setenv("RELAYFORGE_MOCK", "on", 1);
	setenv("RELAYFORGE_MOCK_DELAY_MS", "0", 1);
	setenv("RELAYFORGE_API_TOKEN", TOKEN, 1);
	setenv("RELAYFORGE_DB", f->path, 1);
	if (rf_config_load(&f->cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	f->w.cfg = &f->cfg;
	f->w.store = rf_store_open(f->path, err, sizeof(err));
	f->w.up = rf_up_new();
	if (f->w.store == NULL || f->w.up == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[200];

	rf_up_free(f->w.up);
	rf_store_close(f->w.store);
	rf_config_free(&f->cfg);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	unsetenv("RELAYFORGE_MOCK");
	unsetenv("RELAYFORGE_MOCK_DELAY_MS");
	unsetenv("RELAYFORGE_API_TOKEN");
	unsetenv("RELAYFORGE_DB");
	free(f);
	return 0;
}

/* ---- the fake request -------------------------------------------------- */

struct fake {
	const char *params[24]; /* name, value pairs, NULL-terminated */
	const char *body;
	size_t off;
	struct rf_buf out;      /* headers and body as the client gets them */
};

static const char *
fake_param(void *ctx, const char *name)
{
	struct fake *k = ctx;

	for (int i = 0; k->params[i] != NULL; i += 2)
		if (strcmp(k->params[i], name) == 0)
			return k->params[i + 1];
	return NULL;
}

static long
fake_read(void *ctx, char *buf, size_t n)
{
	struct fake *k = ctx;
	size_t left = k->body ? strlen(k->body) - k->off : 0;

	if (n > left)
		n = left;
	if (n > 0)
		memcpy(buf, k->body + k->off, n);
	k->off += n;
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

/* Serve k through the router; returns the whole output (owned by k). */
static const char *
serve(struct fixture *f, struct fake *k)
{
	struct rf_request rq = {
		.param = fake_param, .read = fake_read, .ctx = k,
		.out = { .write = fake_write, .flush = fake_flush, .ctx = k },
	};

	rf_buf_init(&k->out, 0);
	rf_router_serve(&f->w, &rq);
	assert_non_null(k->out.data);
	return k->out.data;
}

static int
status_of(const char *out)
{
	int st = 0;

	assert_int_equal(sscanf(out, "Status: %d", &st), 1);
	return st;
}

/* The JSON body after the blank line (put by the caller). */
static json_object *
body_of(const char *out)
{
	const char *b = strstr(out, "\r\n\r\n");
	json_object *o;

	assert_non_null(b);
	o = json_tokener_parse(b + 4);
	assert_non_null(o);
	return o;
}

static json_object *
get(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

/* The newest logged request (the only one in these tests' stores). */
static void
assert_logged(struct fixture *f, const char *endpoint, int status)
{
	struct rf_log_query q = { .limit = 10 };
	struct rf_log_page page = { 0 };

	assert_int_equal(rf_store_logs(f->w.store, &q, &page), 0);
	assert_int_equal(page.nitems, 1);
	assert_string_equal(page.items[0].e.endpoint, endpoint);
	assert_string_equal(page.items[0].e.final_provider, "mock");
	assert_int_equal(page.items[0].e.http_status, status);
	assert_true(page.items[0].e.success);
	rf_store_log_page_free(&page);
}

/* ---- the cases --------------------------------------------------------- */

static void
test_chat(void **state)
{
	struct fixture *f = *state;
	struct fake k = { .params = { "REQUEST_METHOD", "POST",
		"REQUEST_URI", "/api/v1/chat", "CONTENT_TYPE", "application/json",
		"HTTP_AUTHORIZATION", "Bearer " TOKEN, "HTTP_X_REQUEST_ID", "chat-1",
		NULL }, .body = "{\"prompt\":\"hello there\"}" };
	const char *o = serve(f, &k);
	json_object *doc = body_of(o), *data, *meta;

	assert_int_equal(status_of(o), 200);
	assert_non_null(strstr(o, "X-Request-Id: chat-1\r\n"));
	assert_non_null(strstr(o, "X-RelayForge-Provider: mock\r\n"));
	assert_non_null(strstr(o, "Content-Type: application/json; charset=utf-8\r\n"));
	assert_non_null(strstr(o, "Cache-Control: no-store\r\n"));
	assert_true(json_object_get_boolean(get(doc, "success")));
	data = get(doc, "data");
	assert_true(json_object_get_string_len(get(data, "text")) > 0);
	meta = get(data, "meta");
	assert_string_equal(json_object_get_string(get(meta, "requestId")), "chat-1");
	assert_string_equal(json_object_get_string(get(meta, "finalProvider")), "mock");
	assert_true(json_object_get_boolean(get(meta, "demoMode")));
	assert_true(json_object_array_length(get(meta, "attempts")) >= 1);
	json_object_put(doc);
	assert_logged(f, "chat", 200);
	rf_buf_free(&k.out);
}

/* The event names of an SSE body, in order, comma-separated into out. */
static void
event_names(const char *o, char *out, size_t len)
{
	const char *p = strstr(o, "\r\n\r\n");

	out[0] = '\0';
	while (p != NULL && (p = strstr(p, "event: ")) != NULL) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p - 7) : strlen(p + 7);
		snprintf(out + strlen(out), len - strlen(out), "%s%.*s",
		    out[0] ? "," : "", (int)n, p + 7);
		p += 7;
	}
}

static void
test_stream(void **state)
{
	struct fixture *f = *state;
	struct fake k = { .params = { "REQUEST_METHOD", "POST",
		"REQUEST_URI", "/api/v1/stream", "CONTENT_TYPE", "application/json",
		"HTTP_AUTHORIZATION", "Bearer " TOKEN, NULL },
		.body = "{\"prompt\":\"stream me\"}" };
	const char *o = serve(f, &k);
	char names[4096];
	size_t n;

	assert_int_equal(status_of(o), 200);
	assert_non_null(strstr(o, "Content-Type: text/event-stream; charset=utf-8\r\n"));
	assert_non_null(strstr(o, "Cache-Control: no-cache\r\n"));
	assert_non_null(strstr(o, "\"phase\":\"start\""));
	assert_non_null(strstr(o, "\"phase\":\"final\""));
	event_names(o, names, sizeof(names));
	/* meta (start), token..., meta (final), done: nothing else between */
	assert_true(strncmp(names, "meta,token,", 11) == 0);
	n = strlen(names);
	assert_true(n > 16);
	assert_string_equal(names + n - 16, ",token,meta,done");
	names[n - 10] = '\0';
	for (char *t = names + 5; t != NULL; t = strchr(t, ',') ? strchr(t, ',') + 1 : NULL)
		assert_true(strncmp(t, "token", 5) == 0 && (t[5] == ',' || t[5] == '\0'));
	assert_non_null(strstr(o, "event: done\ndata: {\"ok\":true}\n\n"));
	assert_logged(f, "stream", 200);
	rf_buf_free(&k.out);
}

static void
test_health(void **state)
{
	struct fixture *f = *state;
	struct fake k = { .params = { "REQUEST_METHOD", "GET",
		"REQUEST_URI", "/api/v1/health", NULL } };
	const char *o = serve(f, &k);
	json_object *doc = body_of(o);

	assert_int_equal(status_of(o), 200);
	assert_string_equal(json_object_get_string(get(get(doc, "data"), "status")), "ok");
	assert_string_equal(json_object_get_string(get(get(doc, "data"), "db")), "ok");
	json_object_put(doc);
	rf_buf_free(&k.out);
}

static void
test_validation(void **state)
{
	struct fixture *f = *state;
	struct fake k = { .params = { "REQUEST_METHOD", "POST",
		"REQUEST_URI", "/api/v1/chat", "CONTENT_TYPE", "application/json",
		"HTTP_AUTHORIZATION", "Bearer " TOKEN, NULL },
		.body = "{\"prompt\":\"hi\",\"options\":{\"temperature\":9}}" };
	const char *o = serve(f, &k);
	json_object *doc = body_of(o), *err;
	struct rf_log_query q = { .limit = 10 };
	struct rf_log_page page = { 0 };

	assert_int_equal(status_of(o), 400);
	assert_false(json_object_get_boolean(get(doc, "success")));
	err = get(doc, "error");
	assert_string_equal(json_object_get_string(get(err, "code")), "validation_error");
	assert_string_equal(json_object_get_string(get(err, "field")), "options.temperature");
	json_object_put(doc);
	/* refused before the chain: not logged */
	assert_int_equal(rf_store_logs(f->w.store, &q, &page), 0);
	assert_int_equal(page.nitems, 0);
	rf_store_log_page_free(&page);
	rf_buf_free(&k.out);
}

static void
test_refusals(void **state)
{
	struct fixture *f = *state;
	struct fake nf = { .params = { "REQUEST_METHOD", "GET",
		"REQUEST_URI", "/api/v1/nothing-here", NULL } };
	struct fake mf = { .params = { "REQUEST_METHOD", "DELETE",
		"REQUEST_URI", "/api/v1/health", NULL } };
	struct fake af = { .params = { "REQUEST_METHOD", "POST",
		"REQUEST_URI", "/api/v1/chat", "CONTENT_TYPE", "application/json",
		"HTTP_AUTHORIZATION", "Bearer not-the-token", NULL },
		.body = "{\"prompt\":\"hi\"}" };
	const char *o;

	o = serve(f, &nf);
	assert_int_equal(status_of(o), 404);
	assert_non_null(strstr(o, "\"code\":\"not_found\""));
	o = serve(f, &mf);
	assert_int_equal(status_of(o), 405);
	assert_non_null(strstr(o, "Allow: GET, OPTIONS\r\n"));
	assert_non_null(strstr(o, "\"code\":\"method_not_allowed\""));
	o = serve(f, &af);
	assert_int_equal(status_of(o), 401);
	assert_non_null(strstr(o, "WWW-Authenticate: Bearer realm=\"relayforge\"\r\n"));
	assert_non_null(strstr(o, "\"code\":\"unauthorized\""));
	rf_buf_free(&nf.out);
	rf_buf_free(&mf.out);
	rf_buf_free(&af.out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
