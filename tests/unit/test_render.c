/* Unit tests of render: the exact key sets and values of the attempts,
 * the chat / start / final meta, the error object and the envelopes, each
 * rendered from the log entry rf_chain_entry makes of a chain result (the
 * one form the meta and /logs share), plus a /logs item of that entry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "render.h"
#include "util.h"


static int64_t
fixed_clock(void)
{
	return 1767268800123LL;
}

/* A result like the docs/api.md example, with a same-provider retry. */
static void
sample_result(struct rf_chain_result *r)
{
	static struct rf_log_attempt trail[8]; /* never freed: no result_free */

	rf_chain_result_init(r);
	r->attempts = trail;
	r->capattempts = sizeof(trail) / sizeof(trail[0]);
	snprintf(r->request_id, sizeof(r->request_id), "req-1");
	r->attempts[0] = (struct rf_log_attempt){ "groq",
	    "provider_rate_limited", NULL, 429, 31, 0 };
	r->attempts[1] = (struct rf_log_attempt){ "sambanova", "skipped",
	    "unconfigured", 0, -1, 0 };
	r->attempts[2] = (struct rf_log_attempt){ "openrouter",
	    "provider_unavailable", NULL, 503, 20, 0 };
	r->attempts[3] = (struct rf_log_attempt){ "openrouter", "ok", NULL,
	    200, 790, 1 };
	r->nattempts = 4;
	r->attempted = rf_config_pid("groq");
	r->final_pid = rf_config_pid("openrouter");
	r->fallback = true;
	r->degraded = true;
	r->demo = false;
	r->err = RF_OK;
	r->res.usage.prompt_tokens = 12;
	r->res.usage.completion_tokens = 80;
	snprintf(r->res.model, sizeof(r->res.model), "m/1");
	snprintf(r->res.finish_reason, sizeof(r->res.finish_reason), "stop");
	r->started_ms = 1767268800000LL;
	r->latency_ms = 842;
	r->ttft_ms = 120;
	r->restarts = 0;
	r->skipped_chunks = 2;
	r->retry_after_ms = -1;
}

/* The one conversion every shape is rendered from. */
static struct rf_log_entry
entry_of(const struct rf_chat_req *req, const struct rf_chain_result *r)
{
	struct rf_log_entry e;

	rf_chain_entry(req, r, "chat", r->err == RF_OK ? 200 :
	    rf_err_status(r->err), &e);
	return e;
}

/* Dump obj (taken), parse it back: what a client would see. */
static json_object *
round_trip(json_object *obj)
{
	char *text = rf_render_text(obj);
	json_object *back;

	assert_non_null(text);
	json_object_put(obj);
	back = json_tokener_parse(text);
	assert_non_null(back);
	free(text);
	return back;
}

static void
assert_keys(json_object *o, const char *const *want, size_t n)
{
	size_t i = 0;

	assert_true(json_object_is_type(o, json_type_object));
	json_object_object_foreach(o, key, val) {
		(void)val;
		if (i >= n || strcmp(key, want[i]) != 0)
			fail_msg("key %zu is \"%s\", want \"%s\"", i, key,
			    i < n ? want[i] : "(none)");
		i++;
	}
	assert_int_equal(i, n);
}

static json_object *
get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no key %s", key);
	return v;
}

static const char *
str(json_object *o, const char *key)
{
	return json_object_get_string(get(o, key));
}

static void
test_attempts_shape(void **state)
{
	static const char *const failed[] = { "provider", "outcome",
	    "httpStatus", "latencyMs" };
	static const char *const skipped[] = { "provider", "outcome", "reason" };
	static const char *const retried[] = { "provider", "outcome",
	    "httpStatus", "latencyMs", "retry" };
	struct rf_chain_result r;
	json_object *a, *e;

	(void)state;
	sample_result(&r);
	a = round_trip(rf_render_attempts(r.attempts, r.nattempts));
	assert_int_equal(json_object_array_length(a), 4);
	e = json_object_array_get_idx(a, 0);
	assert_keys(e, failed, 4);
	assert_string_equal(str(e, "provider"), "groq");
	assert_string_equal(str(e, "outcome"), "provider_rate_limited");
	assert_int_equal(json_object_get_int(get(e, "httpStatus")), 429);
	assert_int_equal(json_object_get_int(get(e, "latencyMs")), 31);
	e = json_object_array_get_idx(a, 1);
	assert_keys(e, skipped, 3);
	assert_string_equal(str(e, "outcome"), "skipped");
	assert_string_equal(str(e, "reason"), "unconfigured");
	e = json_object_array_get_idx(a, 2);
	assert_keys(e, failed, 4);
	assert_string_equal(str(e, "outcome"), "provider_unavailable");
	e = json_object_array_get_idx(a, 3);
	assert_keys(e, retried, 5);
	assert_string_equal(str(e, "provider"), "openrouter");
	assert_string_equal(str(e, "outcome"), "ok");
	assert_int_equal(json_object_get_int(get(e, "retry")), 1);
	assert_int_equal(json_object_get_int(get(e, "latencyMs")), 790);
	json_object_put(a);

	/* a connection failure has no HTTP status: no httpStatus key */
	r.attempts[0].http_status = 0;
	r.nattempts = 1;
	a = round_trip(rf_render_attempts(r.attempts, r.nattempts));
	e = json_object_array_get_idx(a, 0);
	assert_false(json_object_object_get_ex(e, "httpStatus", NULL));
	assert_true(json_object_object_get_ex(e, "latencyMs", NULL));
	json_object_put(a);
}

static void
test_meta_chat(void **state)
{
	static const char *const keys[] = { "requestId", "strategy",
	    "attemptedProvider", "finalProvider", "fallbackActivated",
	    "degradedMode", "demoMode", "latencyMs", "model", "timestamp",
	    "finishReason", "usage", "attempts" };
	struct rf_chain_result r;
	struct rf_chat_req req;
	struct rf_log_entry e;
	json_object *m, *u;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.strategy = -1;
	sample_result(&r);
	e = entry_of(&req, &r);
	m = round_trip(rf_render_meta(&e, RF_META_CHAT));
	assert_keys(m, keys, sizeof(keys) / sizeof(keys[0]));
	assert_string_equal(str(m, "requestId"), "req-1");
	assert_string_equal(str(m, "strategy"), "auto");
	assert_string_equal(str(m, "attemptedProvider"), "groq");
	assert_string_equal(str(m, "finalProvider"), "openrouter");
	assert_true(json_object_get_boolean(get(m, "fallbackActivated")));
	assert_true(json_object_get_boolean(get(m, "degradedMode")));
	assert_false(json_object_get_boolean(get(m, "demoMode")));
	assert_int_equal(json_object_get_int(get(m, "latencyMs")), 842);
	assert_string_equal(str(m, "model"), "m/1");
	assert_string_equal(str(m, "timestamp"), "2026-01-01T12:00:00.000Z");
	assert_string_equal(str(m, "finishReason"), "stop");
	u = get(m, "usage");
	assert_int_equal(json_object_get_int(get(u, "promptTokens")), 12);
	assert_int_equal(json_object_get_int(get(u, "completionTokens")), 80);
	assert_int_equal(json_object_array_length(get(m, "attempts")), 4);
	json_object_put(m);
}

static void
test_meta_nulls(void **state)
{
	struct rf_chain_result r;
	struct rf_chat_req req;
	struct rf_log_entry e;
	json_object *m, *u;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.strategy = rf_config_pid("gemini");
	sample_result(&r);
	r.attempted = -1;
	r.final_pid = -1;
	r.res.model[0] = '\0';
	r.res.finish_reason[0] = '\0';
	r.res.usage.prompt_tokens = -1;
	r.res.usage.completion_tokens = -1;
	r.ttft_ms = -1;
	e = entry_of(&req, &r);
	m = round_trip(rf_render_meta(&e, RF_META_FINAL));
	assert_string_equal(str(m, "strategy"), "gemini");
	assert_null(get(m, "attemptedProvider"));
	assert_null(get(m, "finalProvider"));
	assert_null(get(m, "model"));
	assert_null(get(m, "finishReason"));
	assert_null(get(m, "ttftMs"));
	u = get(m, "usage");
	assert_null(get(u, "promptTokens"));
	assert_null(get(u, "completionTokens"));
	json_object_put(m);
}

static void
test_meta_start_and_final(void **state)
{
	static const char *const start[] = { "phase", "requestId", "strategy",
	    "attemptedProvider", "finalProvider", "fallbackActivated",
	    "degradedMode", "demoMode", "model", "attempts" };
	static const char *const final[] = { "phase", "requestId", "strategy",
	    "attemptedProvider", "finalProvider", "fallbackActivated",
	    "degradedMode", "demoMode", "latencyMs", "ttftMs", "model",
	    "timestamp", "finishReason", "usage", "skippedChunks", "restarts",
	    "attempts" };
	struct rf_chain_result r;
	struct rf_chat_req req;
	struct rf_log_entry e;
	json_object *m;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.strategy = -1;
	sample_result(&r);
	r.stream = true;
	e = entry_of(&req, &r);
	m = round_trip(rf_render_meta(&e, RF_META_START));
	assert_keys(m, start, sizeof(start) / sizeof(start[0]));
	assert_string_equal(str(m, "phase"), "start");
	json_object_put(m);
	m = round_trip(rf_render_meta(&e, RF_META_FINAL));
	assert_string_equal(str(m, "phase"), "final");
	assert_keys(m, final, sizeof(final) / sizeof(final[0]));
	assert_int_equal(json_object_get_int(get(m, "ttftMs")), 120);
	assert_int_equal(json_object_get_int(get(m, "skippedChunks")), 2);
	assert_int_equal(json_object_get_int(get(m, "restarts")), 0);
	json_object_put(m);
}

static void
test_error_object(void **state)
{
	static const char *const all[] = { "code", "message", "technicalDetails",
	    "provider", "fallbackActivated", "timestamp", "requestId",
	    "attempts", "field" };
	static const char *const min[] = { "code", "message",
	    "fallbackActivated", "timestamp" };
	json_object *e;

	(void)state;
	rf_time_set_clock(fixed_clock);
	e = round_trip(rf_render_error(RF_ERR_PROVIDER_RATE_LIMITED,
	    "Groq returned a rate-limit response.",
	    "HTTP 429 from upstream provider", "groq", true, "req-2",
	    json_object_new_array(), "options.x"));
	assert_keys(e, all, sizeof(all) / sizeof(all[0]));
	assert_string_equal(str(e, "code"), "provider_rate_limited");
	assert_string_equal(str(e, "message"),
	    "Groq returned a rate-limit response.");
	assert_string_equal(str(e, "technicalDetails"),
	    "HTTP 429 from upstream provider");
	assert_string_equal(str(e, "provider"), "groq");
	assert_true(json_object_get_boolean(get(e, "fallbackActivated")));
	assert_string_equal(str(e, "timestamp"), "2026-01-01T12:00:00.123Z");
	assert_string_equal(str(e, "requestId"), "req-2");
	assert_int_equal(json_object_array_length(get(e, "attempts")), 0);
	assert_string_equal(str(e, "field"), "options.x");
	json_object_put(e);

	e = round_trip(rf_render_error(RF_ERR_INVALID_JSON, NULL, NULL, NULL,
	    false, NULL, NULL, NULL));
	assert_keys(e, min, sizeof(min) / sizeof(min[0]));
	assert_string_equal(str(e, "code"), "invalid_json");
	assert_string_equal(str(e, "message"),
	    rf_err_message(RF_ERR_INVALID_JSON));
	assert_false(json_object_get_boolean(get(e, "fallbackActivated")));
	json_object_put(e);
	rf_time_set_clock(NULL);
}

static void
test_chain_error(void **state)
{
	static const char *const keys[] = { "code", "message",
	    "technicalDetails", "provider", "fallbackActivated", "timestamp",
	    "requestId", "attempts" };
	static const char *const bare[] = { "code", "message",
	    "fallbackActivated", "timestamp", "requestId", "attempts" };
	struct rf_chain_result r;
	struct rf_chat_req req;
	struct rf_log_entry le;
	json_object *e;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.strategy = -1;
	sample_result(&r);
	r.err = RF_ERR_PROVIDER_RATE_LIMITED;
	r.final_pid = rf_config_pid("groq");
	r.nattempts = 1;
	snprintf(r.fail.details, sizeof(r.fail.details),
	    "HTTP 429 from upstream provider");
	le = entry_of(&req, &r);
	e = round_trip(rf_render_chain_error(&le, r.err, r.fail.message,
	    r.fail.details));
	assert_keys(e, keys, sizeof(keys) / sizeof(keys[0]));
	assert_string_equal(str(e, "code"), "provider_rate_limited");
	assert_string_equal(str(e, "message"),
	    "The provider returned a rate-limit response.");
	assert_string_equal(str(e, "provider"), "groq");
	assert_string_equal(str(e, "requestId"), "req-1");
	assert_true(json_object_get_boolean(get(e, "fallbackActivated")));
	assert_int_equal(json_object_array_length(get(e, "attempts")), 1);
	json_object_put(e);

	/* a readable message from the adapter wins; no provider called */
	snprintf(r.fail.message, sizeof(r.fail.message), "Every tier failed.");
	r.fail.details[0] = '\0';
	r.final_pid = -1;
	r.fallback = false;
	r.err = RF_ERR_PROVIDER_UNAVAILABLE;
	le = entry_of(&req, &r);
	e = round_trip(rf_render_chain_error(&le, r.err, r.fail.message,
	    r.fail.details));
	assert_keys(e, bare, sizeof(bare) / sizeof(bare[0]));
	assert_string_equal(str(e, "message"), "Every tier failed.");
	assert_string_equal(str(e, "code"), "provider_unavailable");
	json_object_put(e);
}

static void
test_wrappers_and_dump(void **state)
{
	json_object *d = json_object_new_object();
	json_object *o;
	char *text;

	(void)state;
	json_object_object_add(d, "path", json_object_new_string("a/b"));
	o = rf_render_success(d);
	text = rf_render_text(o);
	assert_string_equal(text, "{\"success\":true,\"data\":{\"path\":\"a/b\"}}");
	free(text);
	json_object_put(o);

	o = rf_render_failure(rf_render_error(RF_ERR_NOT_FOUND, "x", NULL,
	    NULL, false, NULL, NULL, NULL));
	o = round_trip(o);
	assert_false(json_object_get_boolean(get(o, "success")));
	assert_string_equal(str(get(o, "error"), "code"), "not_found");
	json_object_put(o);
}

/* The meta a client saw and the /logs item of the same entry agree. */
static void
test_meta_and_log_item_agree(void **state)
{
	struct rf_chain_result r;
	struct rf_chat_req req;
	struct rf_log_entry e;
	struct rf_log_item item;
	struct rf_log_page page = { .items = &item, .nitems = 1 };
	json_object *m, *d, *it, *am, *ai;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.strategy = -1;
	req.prompt_chars = 7;
	sample_result(&r);
	e = entry_of(&req, &r);
	item = (struct rf_log_item){ .id = 9, .e = e };
	item.e.node = "gw-b";
	m = round_trip(rf_render_meta(&e, RF_META_CHAT));
	d = round_trip(rf_render_logs(&page, false));
	it = json_object_array_get_idx(get(d, "items"), 0);
	/* The machine that served it: in the item, not in the meta. */
	assert_string_equal(str(it, "node"), "gw-b");
	assert_false(json_object_object_get_ex(m, "node", NULL));
	assert_string_equal(str(it, "requestId"), str(m, "requestId"));
	assert_string_equal(str(it, "finalProvider"), str(m, "finalProvider"));
	assert_string_equal(str(it, "status"), "success");
	assert_int_equal(json_object_get_int(get(it, "promptChars")), 7);
	assert_false(json_object_object_get_ex(it, "promptPreview", NULL));
	am = get(m, "attempts");
	ai = get(it, "attempts");
	assert_string_equal(json_object_to_json_string(am),
	    json_object_to_json_string(ai));
	assert_null(get(d, "nextBefore"));
	json_object_put(m);
	json_object_put(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attempts_shape),
		cmocka_unit_test(test_meta_chat),
		cmocka_unit_test(test_meta_nulls),
		cmocka_unit_test(test_meta_start_and_final),
		cmocka_unit_test(test_error_object),
		cmocka_unit_test(test_chain_error),
		cmocka_unit_test(test_wrappers_and_dump),
		cmocka_unit_test(test_meta_and_log_item_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
