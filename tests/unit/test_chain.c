/* Unit tests of the fallback engine's decisions: which failures retry on
 * the same provider, cooldown arithmetic (with an injected clock), and
 * whole runs over a mock-only configuration (order, skipped tiers, manual
 * strategy, flags, the "nobody could be called" answers, and the stream
 * sink's event order).  The upstream header parsers moved with their code:
 * durations to test_util.c, Retry-After to test_upstream.c.
 *
 * /v1 requests (rf_chat_req.oai): a tier whose wire cannot express the
 * request is skipped as "unsupported" (no call, no failure, no fallback
 * event); a stream commits on its first tool-call delta and relays it
 * through the sink's tool_delta; an answer of tool calls alone is an
 * answer -- against the mock and against a loopback upstream that serves
 * the tests/fixtures tool-call samples. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "chain.h"
#include "upstream.h"

static struct rf_config cfg;

/* The mock's pid: an index into the catalog, looked up by id. */
#define MOCK_PID rf_config_pid("mock")

static int64_t
fixed_clock(void)
{
	return 1700000000000LL;
}

static int
setup(void **state)
{
	(void)state;
	unsetenv("RELAYFORGE_CONFIG");
	unsetenv("RELAYFORGE_MOCK");
	unsetenv("GROQ_API_KEY");
	setenv("RELAYFORGE_MOCK_DELAY_MS", "0", 1);
	char err[256];
	assert_int_equal(rf_config_load(&cfg, err, sizeof(err)), 0);
	rf_time_set_clock(fixed_clock);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	rf_config_free(&cfg);
	rf_time_set_clock(NULL);
	return 0;
}

static void
test_retryable(void **state)
{
	(void)state;
	assert_true(rf_chain_retryable(RF_ERR_PROVIDER_UNAVAILABLE, 0, true));
	assert_false(rf_chain_retryable(RF_ERR_PROVIDER_UNAVAILABLE, 0, false));
	assert_true(rf_chain_retryable(RF_ERR_PROVIDER_UNAVAILABLE, 500, false));
	assert_true(rf_chain_retryable(RF_ERR_PROVIDER_UNAVAILABLE, 502, false));
	assert_true(rf_chain_retryable(RF_ERR_PROVIDER_UNAVAILABLE, 503, false));
	assert_true(rf_chain_retryable(RF_ERR_PROVIDER_TIMEOUT, 504, false));
	assert_false(rf_chain_retryable(RF_ERR_PROVIDER_TIMEOUT, 0, false));
	assert_false(rf_chain_retryable(RF_ERR_PROVIDER_RATE_LIMITED, 429, false));
	assert_false(rf_chain_retryable(RF_ERR_PROVIDER_BAD_REQUEST, 400, false));
	assert_false(rf_chain_retryable(RF_ERR_PROVIDER_AUTH, 401, false));
}

static void
test_cooldown_arithmetic(void **state)
{
	struct rf_try_outcome o = { .code = RF_ERR_PROVIDER_RATE_LIMITED,
	    .http_status = 429, .retry_after_ms = 30000 };
	int64_t now = rf_now_ms();

	(void)state;
	assert_int_equal(now, 1700000000000LL);
	/* Retry-After (header, else the body's hint such as Gemini's
	 * retryDelay: the outcome carries whichever was found) */
	assert_int_equal(rf_chain_cooldown_until(&cfg, &o, now), now + 30000);
	o.retry_after_ms = 34400;
	assert_int_equal(rf_chain_cooldown_until(&cfg, &o, now), now + 34400);
	/* neither: RELAYFORGE_COOLDOWN_MS */
	o.retry_after_ms = -1;
	assert_int_equal(rf_chain_cooldown_until(&cfg, &o, now), now + cfg.cooldown_ms);
	/* capped at ten minutes */
	o.retry_after_ms = 86399000;
	assert_int_equal(rf_chain_cooldown_until(&cfg, &o, now), now + 600000);
	/* auth failures: ten minutes */
	o = (struct rf_try_outcome){ .code = RF_ERR_PROVIDER_AUTH,
	    .http_status = 401, .retry_after_ms = -1, .auth = true };
	assert_int_equal(rf_chain_cooldown_until(&cfg, &o, now), now + 600000);
	/* anything else: only the failure threshold (below) */
	o = (struct rf_try_outcome){ .code = RF_ERR_PROVIDER_UNAVAILABLE,
	    .http_status = 503, .retry_after_ms = 5000 };
	assert_int_equal(rf_chain_cooldown_until(&cfg, &o, now), 0);
}

/* The tier loop's decision, driven by plain outcome records: what follows
 * each kind of try, and what the budget allows. */
static void
test_decide(void **state)
{
	static const struct {
		struct rf_try_outcome o;
		bool restart;
		enum rf_step step;
		bool failure;
	} cases[] = {
		/* answered */
		{ { RF_OK, 200, false, -1, false, false }, false, RF_STEP_OK, false },
		/* reset before any byte, 500/502/503/504: retried */
		{ { RF_ERR_PROVIDER_UNAVAILABLE, 0, true, -1, false, false }, false, RF_STEP_RETRY, false },
		{ { RF_ERR_PROVIDER_UNAVAILABLE, 503, false, -1, false, false }, false, RF_STEP_RETRY, false },
		{ { RF_ERR_PROVIDER_TIMEOUT, 504, false, -1, false, false }, false, RF_STEP_RETRY, false },
		/* a short Retry-After on a 429: waited for once */
		{ { RF_ERR_PROVIDER_RATE_LIMITED, 429, false, 1500, false, false }, false, RF_STEP_RETRY, false },
		/* a long one, a timeout, a 4xx, an auth failure: promote */
		{ { RF_ERR_PROVIDER_RATE_LIMITED, 429, false, 30000, false, false }, false, RF_STEP_PROMOTE, true },
		{ { RF_ERR_PROVIDER_TIMEOUT, 0, false, -1, false, false }, false, RF_STEP_PROMOTE, true },
		{ { RF_ERR_PROVIDER_AUTH, 401, false, -1, true, false }, false, RF_STEP_PROMOTE, true },
		{ { RF_ERR_PROVIDER_AUTH, 403, false, -1, true, false }, false, RF_STEP_PROMOTE, true },
		{ { RF_ERR_MALFORMED_RESPONSE, 200, false, -1, false, false }, false, RF_STEP_PROMOTE, true },
		/* the request itself was refused (400/404/413/422): the next
		 * tier may answer, but the provider did not fail -- any client
		 * could send such requests until it cooled down for everyone */
		{ { RF_ERR_PROVIDER_BAD_REQUEST, 400, false, -1, false, false }, false, RF_STEP_PROMOTE, false },
		{ { RF_ERR_PROVIDER_BAD_REQUEST, 404, false, -1, false, false }, false, RF_STEP_PROMOTE, false },
		{ { RF_ERR_PROVIDER_BAD_REQUEST, 413, false, -1, false, false }, false, RF_STEP_PROMOTE, false },
		{ { RF_ERR_PROVIDER_BAD_REQUEST, 422, false, -1, false, false }, false, RF_STEP_PROMOTE, false },
		/* ... unless it says the key is bad (Gemini's API_KEY_INVALID is
		 * a 400), or the provider named its own fault in a 400 */
		{ { RF_ERR_PROVIDER_AUTH, 400, false, -1, true, false }, false, RF_STEP_PROMOTE, true },
		{ { RF_ERR_PROVIDER_UNAVAILABLE, 400, false, -1, false, false }, false, RF_STEP_PROMOTE, true },
		/* other 4xx say our call is wrong (URL, method): the provider's
		 * entry is broken for every request */
		{ { RF_ERR_PROVIDER_BAD_REQUEST, 405, false, -1, false, false }, false, RF_STEP_PROMOTE, true },
		{ { RF_ERR_PROVIDER_BAD_REQUEST, 410, false, -1, false, false }, false, RF_STEP_PROMOTE, true },
		/* a safety block, a client that hung up: final, not a failure */
		{ { RF_ERR_CONTENT_FILTERED, 400, false, -1, false, false }, false, RF_STEP_FINAL, false },
		{ { RF_ERR_CLIENT_CLOSED, 200, false, -1, false, true }, true, RF_STEP_FINAL, false },
		/* broken after its first token: final, or a restart */
		{ { RF_ERR_PROVIDER_UNAVAILABLE, 200, false, -1, false, true }, false, RF_STEP_FINAL, true },
		{ { RF_ERR_PROVIDER_UNAVAILABLE, 503, false, -1, false, true }, true, RF_STEP_PROMOTE, true },
		{ { RF_ERR_CONTENT_FILTERED, 200, false, -1, false, true }, false, RF_STEP_FINAL, true },
	};
	int64_t now = rf_now_ms();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rf_retry_budget b = { 0 };
		struct rf_decision d;

		rf_chain_decide(&cfg, &cases[i].o, cases[i].restart, now, &b, &d);
		if (d.step != cases[i].step || d.failure != cases[i].failure)
			fail_msg("case %zu: step %d failure %d", i, (int)d.step,
			    (int)d.failure);
		assert_int_equal(d.restart, cases[i].o.committed &&
		    cases[i].restart && d.step == RF_STEP_PROMOTE);
		/* no failure, no cooldown of its own */
		if (!d.failure)
			assert_int_equal(d.cooldown_until_ms, 0);
	}
}

/* The attempt trail holds the worst case: every tier of the order (one
 * entry each when skipped) with its first try, the one wait on a 429 and
 * every retry the decision allows -- also when RELAYFORGE_RETRIES asks
 * for more than the engine spends. */
static void
test_trail_bound(void **state)
{
	static const int asked[] = { 0, 1, 5, 50 };
	int64_t now = rf_now_ms();

	(void)state;
	for (size_t k = 0; k < sizeof(asked) / sizeof(asked[0]); k++) {
		struct rf_config c = cfg;
		struct rf_retry_budget b = { 0 };
		struct rf_try_outcome limited = { RF_ERR_PROVIDER_RATE_LIMITED, 429,
		    false, 0, false, false };
		struct rf_try_outcome down = { RF_ERR_PROVIDER_UNAVAILABLE, 503,
		    false, -1, false, false };
		struct rf_decision d;
		int tries = 1;

		c.retries = asked[k];
		rf_chain_decide(&c, &limited, false, now, &b, &d);
		assert_int_equal(d.step, RF_STEP_RETRY);
		for (;;) {
			tries++;
			rf_chain_decide(&c, &down, false, now, &b, &d);
			if (d.step != RF_STEP_RETRY)
				break;
		}
		assert_int_equal(d.step, RF_STEP_PROMOTE);
		assert_true(tries <= 2 + RF_CHAIN_MAX_RETRIES);
		assert_int_equal(tries, 2 + (asked[k] < RF_CHAIN_MAX_RETRIES ?
		    asked[k] : RF_CHAIN_MAX_RETRIES));
	}
	assert_true(RF_MAX_ATTEMPTS >= RF_MAX_PROVIDERS *
	    (2 + RF_CHAIN_MAX_RETRIES));
}

/* What a retry costs and how often: the budget runs out. */
static void
test_decide_budget(void **state)
{
	struct rf_try_outcome o = { RF_ERR_PROVIDER_UNAVAILABLE, 502, false, -1,
	    false, false };
	struct rf_retry_budget b = { 0 };
	struct rf_decision d;
	int64_t now = rf_now_ms();

	(void)state;
	assert_int_equal(cfg.retries, 1);
	rf_chain_decide(&cfg, &o, false, now, &b, &d);
	assert_int_equal(d.step, RF_STEP_RETRY);
	assert_int_equal(d.pause_min_ms, 100);
	assert_int_equal(d.pause_max_ms, 300);
	rf_chain_decide(&cfg, &o, false, now, &b, &d);
	assert_int_equal(d.step, RF_STEP_PROMOTE);
	assert_true(d.failure);
	assert_int_equal(d.cooldown_until_ms, 0); /* the threshold decides */

	/* 429: exactly the Retry-After, once; then its own cooldown */
	o = (struct rf_try_outcome){ RF_ERR_PROVIDER_RATE_LIMITED, 429, false,
	    1200, false, false };
	b = (struct rf_retry_budget){ 0 };
	rf_chain_decide(&cfg, &o, false, now, &b, &d);
	assert_int_equal(d.step, RF_STEP_RETRY);
	assert_int_equal(d.pause_min_ms, 1200);
	assert_int_equal(d.pause_max_ms, 1200);
	rf_chain_decide(&cfg, &o, false, now, &b, &d);
	assert_int_equal(d.step, RF_STEP_PROMOTE);
	assert_int_equal(d.cooldown_until_ms, now + 1200);

	/* RELAYFORGE_RETRIES=0: a 503 promotes at once */
	{
		struct rf_config c = cfg;

		c.retries = 0;
		o = (struct rf_try_outcome){ RF_ERR_PROVIDER_UNAVAILABLE, 503,
		    false, -1, false, false };
		b = (struct rf_retry_budget){ 0 };
		rf_chain_decide(&c, &o, false, now, &b, &d);
		assert_int_equal(d.step, RF_STEP_PROMOTE);
	}
}

/* The threshold rule the store used to apply: the shared streak reaching
 * RELAYFORGE_FAILURE_THRESHOLD cools down for RELAYFORGE_COOLDOWN_MS,
 * unless the failure brought a cooldown of its own (429, auth). */
static void
test_threshold_cooldown(void **state)
{
	struct rf_config c = cfg;
	int64_t now = rf_now_ms();

	(void)state;
	c.failure_threshold = 3;
	c.cooldown_ms = 30000;
	assert_int_equal(rf_chain_threshold_cooldown(&c, 1, 0, now), 0);
	assert_int_equal(rf_chain_threshold_cooldown(&c, 2, 0, now), 0);
	assert_int_equal(rf_chain_threshold_cooldown(&c, 3, 0, now), now + 30000);
	assert_int_equal(rf_chain_threshold_cooldown(&c, 7, 0, now), now + 30000);
	/* Its own cooldown stands, shorter or longer. */
	assert_int_equal(rf_chain_threshold_cooldown(&c, 3, now + 1000, now), 0);
	assert_int_equal(rf_chain_threshold_cooldown(&c, 3, now + 600000, now), 0);
	/* No streak known (the store failed): nothing. */
	assert_int_equal(rf_chain_threshold_cooldown(&c, 0, 0, now), 0);
	/* Threshold 0: off. */
	c.failure_threshold = 0;
	assert_int_equal(rf_chain_threshold_cooldown(&c, 5, 0, now), 0);
	/* The default configuration: 3 and RELAYFORGE_COOLDOWN_MS. */
	assert_int_equal(rf_chain_threshold_cooldown(&cfg, cfg.failure_threshold,
	    0, now), now + cfg.cooldown_ms);
}

/* The quota rule: a remaining figure at 0 before its reset cools down
 * until the reset; anything else does not. */
static void
test_quota_cooldown(void **state)
{
	int64_t now = rf_now_ms();
	struct rf_quota q = { true, 10, 5000, now + 20000 };

	(void)state;
	assert_int_equal(rf_chain_quota_cooldown(&q, now), 0);
	q.remaining_requests = 0;
	q.remaining_tokens = -1;
	assert_int_equal(rf_chain_quota_cooldown(&q, now), now + 20000);
	q.remaining_requests = 5;
	q.remaining_tokens = 0;
	assert_int_equal(rf_chain_quota_cooldown(&q, now), now + 20000);
	/* The reset is already past, or unknown. */
	q.reset_at_ms = now - 1;
	assert_int_equal(rf_chain_quota_cooldown(&q, now), 0);
	q.reset_at_ms = now;
	assert_int_equal(rf_chain_quota_cooldown(&q, now), 0);
	q.reset_at_ms = 0;
	assert_int_equal(rf_chain_quota_cooldown(&q, now), 0);
	/* Unknown figures (-1) are not 0; no headers at all: nothing. */
	q = (struct rf_quota){ true, -1, -1, now + 20000 };
	assert_int_equal(rf_chain_quota_cooldown(&q, now), 0);
	q = (struct rf_quota){ false, 0, 0, now + 20000 };
	assert_int_equal(rf_chain_quota_cooldown(&q, now), 0);
}

static void
run_prompt(struct rf_chat_req *req, const char *prompt)
{
	memset(req, 0, sizeof(*req));
	req->msgs[0] = (struct rf_msg){ "user", prompt };
	req->nmsgs = 1;
	req->strategy = -1;
	req->fallback = true;
	req->max_tokens = 64;
	req->temperature = 0.5;
	req->prompt_chars = (long)strlen(prompt);
	req->model_pid = -1;
}

static void
run(struct rf_chat_req *req, const struct rf_stream_sink *sink,
    struct rf_chain_result *r)
{
	struct rf_worker w = { .cfg = &cfg, .store = NULL, .up = rf_up_new() };

	rf_chain_result_init(r);
	r->started_ms = rf_now_ms();
	r->started_mono = rf_mono_ms();
	rf_chain_run(&w, req, sink, r);
	rf_up_free(w.up);
}

static void
test_mock_only_chat(void **state)
{
	struct rf_chat_req req;
	struct rf_chain_result r;

	(void)state;
	run_prompt(&req, "hello");
	run(&req, NULL, &r);
	assert_int_equal(r.err, RF_OK);
	assert_int_equal(r.final_pid, MOCK_PID);
	assert_int_equal(r.attempted, MOCK_PID);
	assert_true(r.demo);
	assert_true(r.degraded);
	assert_false(r.fallback);
	/* five unconfigured providers skipped, then the mock */
	assert_int_equal(r.nattempts, 6);
	for (int i = 0; i < 5; i++) {
		assert_string_equal(r.attempts[i].outcome, "skipped");
		assert_string_equal(r.attempts[i].reason, "unconfigured");
	}
	assert_string_equal(r.attempts[5].outcome, "ok");
	assert_true(r.res.text.len > 0);
	assert_string_equal(r.res.finish_reason, "stop");
	rf_chain_result_free(&r);
}

static void
test_manual_strategy_mock_first(void **state)
{
	struct rf_chat_req req;
	struct rf_chain_result r;

	(void)state;
	run_prompt(&req, "hello");
	req.strategy = MOCK_PID;
	run(&req, NULL, &r);
	assert_int_equal(r.err, RF_OK);
	/* the mock answered as the head of the requested order */
	assert_int_equal(r.nattempts, 1);
	assert_string_equal(r.attempts[0].provider, "mock");
	assert_true(r.degraded); /* the mock is always degraded */
	rf_chain_result_free(&r);
}

static void
test_nobody_configured_without_mock(void **state)
{
	struct rf_chat_req req;
	struct rf_chain_result r;
	char err[256];

	(void)state;
	rf_config_free(&cfg);
	setenv("RELAYFORGE_MOCK", "off", 1);
	assert_int_equal(rf_config_load(&cfg, err, sizeof(err)), 0);
	run_prompt(&req, "hello");
	run(&req, NULL, &r);
	assert_int_equal(r.err, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_int_equal(r.attempted, -1);
	assert_int_equal(r.nattempts, 5);
	for (size_t i = 0; i < r.nattempts; i++)
		assert_string_equal(r.attempts[i].outcome, "skipped");
	rf_chain_result_free(&r);
}

/* A worker whose upstream handle could not be made (rf_up_new failed):
 * network tiers fail as provider_unavailable without a call, the mock
 * still answers. */
static void
test_no_upstream_handle(void **state)
{
	struct rf_worker w = { .cfg = &cfg, .store = NULL, .up = NULL };
	struct rf_chat_req req;
	struct rf_chain_result r;
	char err[256];

	(void)state;
	rf_config_free(&cfg);
	setenv("GROQ_API_KEY", "k-test", 1);
	setenv("RELAYFORGE_GROQ_URL", "http://127.0.0.1:9/never", 1);
	assert_int_equal(rf_config_load(&cfg, err, sizeof(err)), 0);
	unsetenv("RELAYFORGE_GROQ_URL");
	run_prompt(&req, "hello");
	rf_chain_result_init(&r);
	r.started_ms = rf_now_ms();
	r.started_mono = rf_mono_ms();
	rf_chain_run(&w, &req, NULL, &r);
	assert_int_equal(r.err, RF_OK);
	assert_int_equal(r.final_pid, MOCK_PID);
	assert_true(r.fallback);
	assert_string_equal(r.attempts[0].provider, "groq");
	assert_string_equal(r.attempts[0].outcome, "provider_unavailable");
	assert_int_equal(r.attempts[0].retry, 0);
	assert_string_equal(r.attempts[r.nattempts - 1].outcome, "ok");
	assert_int_equal(r.nattempts, 6);
	rf_chain_result_free(&r);
}

/* A sink that records the event order and can hang up after n tokens. */
struct rec {
	char log[4096];
	int tokens;
	int hang_after;
};

static int
rec_fallback(void *ud, int from, int to, enum rf_err code)
{
	(void)ud; (void)from; (void)to; (void)code;
	strcat(((struct rec *)ud)->log, "F");
	return 0;
}

static int
rec_start(void *ud, const struct rf_chain_result *r)
{
	(void)r;
	strcat(((struct rec *)ud)->log, "S");
	return 0;
}

static int
rec_token(void *ud, const char *t, size_t n)
{
	struct rec *rc = ud;

	(void)t; (void)n;
	strcat(rc->log, "t");
	if (rc->hang_after > 0 && ++rc->tokens >= rc->hang_after)
		return -1;
	return 0;
}

static int
rec_restart(void *ud, int from, int to, enum rf_err code)
{
	(void)from; (void)to; (void)code;
	strcat(((struct rec *)ud)->log, "R");
	return 0;
}

static int
rec_tick(void *ud)
{
	(void)ud;
	return 0;
}

static void
test_mock_stream_events(void **state)
{
	struct rec rc = { .hang_after = 0 };
	struct rf_stream_sink sink = { .fallback = rec_fallback, .start = rec_start,
	    .token = rec_token, .restart = rec_restart, .tick = rec_tick, .ud = &rc };
	struct rf_chat_req req;
	struct rf_chain_result r;

	(void)state;
	run_prompt(&req, "hello world");
	run(&req, &sink, &r);
	assert_int_equal(r.err, RF_OK);
	assert_int_equal(rc.log[0], 'S');
	assert_null(strchr(rc.log, 'F'));
	assert_true(strlen(rc.log) > 5);
	assert_true(r.ttft_ms >= 0);
	assert_string_equal(r.streamed, "mock");
	assert_int_equal(r.restarts, 0);
	rf_chain_result_free(&r);
}

static void
test_stream_client_hangs_up(void **state)
{
	struct rec rc = { .hang_after = 3 };
	struct rf_stream_sink sink = { .fallback = rec_fallback, .start = rec_start,
	    .token = rec_token, .restart = rec_restart, .tick = rec_tick, .ud = &rc };
	struct rf_chat_req req;
	struct rf_chain_result r;

	(void)state;
	run_prompt(&req, "hello world");
	run(&req, &sink, &r);
	assert_int_equal(r.err, RF_ERR_CLIENT_CLOSED);
	assert_string_equal(rc.log, "Sttt");
	assert_int_equal(r.final_pid, MOCK_PID);
	assert_true(r.partial_chars > 0);
	rf_chain_result_free(&r);
}

/* ---- /v1 requests: unsupported tiers and tool calls ---------------- */

static char fixdir[1024] = "tests/fixtures";

/* The loopback upstream: every request gets srv_reply, then the
 * connection is closed. */
static int srv_fd = -1, srv_port;
static pthread_t srv_thread;
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rf_buf srv_reply;
static int srv_calls;

static void
srv_answer(int c)
{
	char buf[65536];
	size_t got = 0;
	ssize_t n;
	const char *end = NULL, *cl;

	/* The head, then Content-Length bytes of body. */
	while (got + 1 < sizeof(buf) && (n = recv(c, buf + got,
	    sizeof(buf) - got - 1, 0)) > 0) {
		got += (size_t)n;
		buf[got] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		cl = strstr(buf, "Content-Length: ");
		if (cl == NULL || got >= (size_t)(end + 4 - buf) +
		    strtoul(cl + 16, NULL, 10))
			break;
	}
	pthread_mutex_lock(&srv_lock);
	srv_calls++;
	if (send(c, srv_reply.data, srv_reply.len, MSG_NOSIGNAL) < 0)
		srv_calls += 1000; /* seen by the test as a broken server */
	pthread_mutex_unlock(&srv_lock);
}

static void *
srv_main(void *arg)
{
	int c;

	(void)arg;
	while ((c = accept(srv_fd, NULL, NULL)) >= 0) {
		srv_answer(c);
		close(c);
	}
	return NULL;
}

static void
srv_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	srv_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv_fd < 0 || bind(srv_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(srv_fd, 16) != 0 ||
	    getsockname(srv_fd, (struct sockaddr *)&a, &len) != 0 ||
	    pthread_create(&srv_thread, NULL, srv_main, NULL) != 0)
		abort();
	srv_port = ntohs(a.sin_port);
}

static void
srv_stop(void)
{
	shutdown(srv_fd, SHUT_RDWR);
	close(srv_fd);
	pthread_join(srv_thread, NULL);
	rf_buf_free(&srv_reply);
}

/* Serve the fixture name as a 200 of content type type from now on. */
static void
srv_serve(const char *name, const char *type)
{
	char path[1200];
	char chunk[4096];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", fixdir, name);
	if ((fp = fopen(path, "rb")) == NULL)
		fail_msg("cannot open fixture %s", path);
	pthread_mutex_lock(&srv_lock);
	rf_buf_reset(&srv_reply);
	rf_buf_printf(&srv_reply, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
	    "Connection: close\r\n\r\n", type);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		rf_buf_append(&srv_reply, chunk, n);
	srv_calls = 0;
	pthread_mutex_unlock(&srv_lock);
	fclose(fp);
}

/* The configuration: RELAYFORGE_CHAIN chain, keys for groq and gemini,
 * groq at the loopback upstream, gemini nowhere (it must never be
 * called), the mock on or off. */
static void
reconfigure(const char *chain, bool mock)
{
	char url[64], err[256];

	rf_config_free(&cfg);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/groq", srv_port);
	setenv("RELAYFORGE_CHAIN", chain, 1);
	setenv("RELAYFORGE_MOCK", mock ? "on" : "off", 1);
	setenv("GROQ_API_KEY", "gsk-test", 1);
	setenv("RELAYFORGE_GROQ_URL", url, 1);
	setenv("GEMINI_API_KEY", "AIza-test", 1);
	setenv("RELAYFORGE_GEMINI_URL", "http://127.0.0.1:9/never", 1);
	assert_int_equal(rf_config_load(&cfg, err, sizeof(err)), 0);
	unsetenv("RELAYFORGE_CHAIN");
	unsetenv("RELAYFORGE_MOCK");
	unsetenv("GROQ_API_KEY");
	unsetenv("RELAYFORGE_GROQ_URL");
	unsetenv("GEMINI_API_KEY");
	unsetenv("RELAYFORGE_GEMINI_URL");
}

/* A /v1 request (its JSON owned by o). */
struct v1 {
	json_object *messages, *fields;
};

static void
v1_prompt(struct rf_chat_req *req, struct v1 *o, const char *messages,
    const char *fields)
{
	run_prompt(req, "weather in Oslo?");
	o->messages = json_tokener_parse(messages);
	o->fields = fields != NULL ? json_tokener_parse(fields) : NULL;
	assert_non_null(o->messages);
	req->oai = (struct rf_oai_params){ .messages = o->messages,
	    .fields = o->fields };
}

static void
v1_free(struct v1 *o)
{
	json_object_put(o->messages);
	json_object_put(o->fields);
}

static const char ask[] =
    "[{\"role\":\"user\",\"content\":\"weather in Oslo?\"}]";
static const char ask_image[] =
    "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"this?\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.png\"}}]}]";
static const char weather_tool[] =
    "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
    "\"string\"}},\"required\":[\"city\"]}}}]}";

/* A sink that also records tool deltas ('T', their JSON one per line). */
struct trec {
	struct rec rec;
	char tools[4096];
};

static int
trec_tool(void *ud, const char *json, size_t n)
{
	struct trec *t = ud;

	strcat(t->rec.log, "T");
	strncat(t->tools, json, n);
	strcat(t->tools, "\n");
	return 0;
}

static int
trec_tick(void *ud)
{
	(void)ud;
	return 0;
}

static struct rf_stream_sink
tool_sink(struct trec *t, bool with_tools)
{
	memset(t, 0, sizeof(*t));
	return (struct rf_stream_sink){ .fallback = rec_fallback,
	    .start = rec_start, .token = rec_token, .restart = rec_restart,
	    .tick = trec_tick, .tool_delta = with_tools ? trec_tool : NULL,
	    .ud = t };
}

/* A tier whose wire cannot express the request is skipped, never
 * called: no failure, no fallback event, the next tier answers. */
static void
test_unsupported_tier_is_skipped(void **state)
{
	struct rf_chat_req req;
	struct rf_chain_result r;
	struct rf_stream_sink sink;
	struct trec t;
	struct v1 o;

	(void)state;
	reconfigure("gemini", true);
	v1_prompt(&req, &o, ask_image, NULL);
	run(&req, NULL, &r);
	assert_int_equal(r.err, RF_OK);
	assert_int_equal(r.final_pid, MOCK_PID);
	assert_int_equal(r.attempted, MOCK_PID);
	assert_false(r.fallback);
	assert_int_equal(r.nattempts, 2);
	assert_string_equal(r.attempts[0].provider, "gemini");
	assert_string_equal(r.attempts[0].outcome, "skipped");
	assert_string_equal(r.attempts[0].reason, "unsupported");
	assert_int_equal(r.attempts[0].latency_ms, -1);
	rf_chain_result_free(&r);

	sink = tool_sink(&t, true);
	run(&req, &sink, &r);
	assert_int_equal(r.err, RF_OK);
	assert_null(strchr(t.rec.log, 'F'));
	assert_int_equal(t.rec.log[0], 'S');
	assert_string_equal(r.attempts[0].reason, "unsupported");
	rf_chain_result_free(&r);

	/* Nobody else: the request cannot be served, and the error says
	 * why. */
	reconfigure("gemini", false);
	run(&req, NULL, &r);
	assert_int_equal(r.err, RF_ERR_PROVIDER_UNAVAILABLE);
	assert_int_equal(r.attempted, -1);
	assert_non_null(strstr(r.fail.message, "unsupported"));
	rf_chain_result_free(&r);
	v1_free(&o);
}

/* The mock's tool call, streamed: the start event, then the delta; the
 * stream committed on it. */
static void
test_stream_commits_on_tool_delta(void **state)
{
	struct rf_chat_req req;
	struct rf_chain_result r;
	struct rf_stream_sink sink;
	struct trec t;
	struct v1 o;

	(void)state;
	sink = tool_sink(&t, true);
	v1_prompt(&req, &o, ask, weather_tool);
	run(&req, &sink, &r);
	assert_int_equal(r.err, RF_OK);
	assert_string_equal(t.rec.log, "ST");
	assert_string_equal(t.tools, "[{\"index\":0,\"id\":\"call_mock_1\","
	    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
	    "\"arguments\":\"{\\\"city\\\":\\\"example\\\"}\"}}]\n");
	assert_string_equal(r.res.finish_reason, "tool_calls");
	assert_string_equal(r.streamed, "mock");
	assert_true(r.ttft_ms >= 0);
	rf_chain_result_free(&r);
	/* Chat: the calls whole in the result. */
	run(&req, NULL, &r);
	assert_int_equal(r.err, RF_OK);
	assert_int_equal(r.res.text.len, 0);
	assert_non_null(strstr(rf_buf_str(&r.res.tool_calls),
	    "\"name\":\"get_weather\""));
	rf_chain_result_free(&r);
	v1_free(&o);
}

/* An upstream that answers with tool calls alone (Groq's samples): an
 * answer for /v1, relayed as deltas in a stream; for a surface without
 * tool calls (/api/v1) it is no answer and the next tier serves. */
static void
test_upstream_tool_calls(void **state)
{
	struct rf_chat_req req;
	struct rf_chain_result r;
	struct rf_stream_sink sink;
	struct trec t;
	struct v1 o;

	(void)state;
	reconfigure("groq", true);
	v1_prompt(&req, &o, ask, weather_tool);
	srv_serve("groq_tools_stream.sse", "text/event-stream");
	sink = tool_sink(&t, true);
	run(&req, &sink, &r);
	assert_int_equal(r.err, RF_OK);
	assert_string_equal(rf_config_id(r.final_pid), "groq");
	assert_string_equal(t.rec.log, "ST");
	assert_string_equal(t.tools, "[{\"index\":0,\"id\":\"call_d5wg\","
	    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
	    "\"arguments\":\"{\\\"city\\\":\\\"Tampere\\\"}\"}}]\n");
	assert_string_equal(r.res.finish_reason, "tool_calls");
	assert_int_equal(r.res.usage.completion_tokens, 21);
	assert_int_equal(srv_calls, 1);
	rf_chain_result_free(&r);

	srv_serve("groq_tools.json", "application/json");
	run(&req, NULL, &r);
	assert_int_equal(r.err, RF_OK);
	assert_string_equal(rf_config_id(r.final_pid), "groq");
	assert_int_equal(r.res.text.len, 0);
	assert_int_equal(r.res.ntool_calls, 2);
	assert_non_null(strstr(rf_buf_str(&r.res.tool_calls), "\"call_d5wf\""));
	rf_chain_result_free(&r);
	v1_free(&o);

	/* /api/v1: the same answers are empty, the mock takes over. */
	run_prompt(&req, "weather in Oslo?");
	run(&req, NULL, &r);
	assert_int_equal(r.final_pid, MOCK_PID);
	assert_string_equal(r.attempts[0].outcome, "malformed_response");
	rf_chain_result_free(&r);
	srv_serve("groq_tools_stream.sse", "text/event-stream");
	sink = tool_sink(&t, false);
	run(&req, &sink, &r);
	assert_int_equal(r.final_pid, MOCK_PID);
	assert_int_equal(t.rec.log[0], 'F');
	rf_chain_result_free(&r);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_retryable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cooldown_arithmetic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decide, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decide_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trail_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_upstream_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threshold_cooldown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_cooldown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mock_only_chat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manual_strategy_mock_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nobody_configured_without_mock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mock_stream_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_client_hangs_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_tier_is_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_commits_on_tool_delta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_tool_calls, setup, teardown),
	};
	const char *env = getenv("RF_FIXTURES");
	const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
	int rc;

	if (env != NULL && env[0] != '\0')
		snprintf(fixdir, sizeof(fixdir), "%s", env);
	else if (slash != NULL)
		snprintf(fixdir, sizeof(fixdir), "%.*s/../../tests/fixtures",
		    (int)(slash - argv[0]), argv[0]);
	srv_start();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	srv_stop();
	return rc;
}
