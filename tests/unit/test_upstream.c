/*
 * test_upstream: rf_up_perform against a tiny HTTP/1.1 server on
 * 127.0.0.1:0 started inside the test (one thread accepts, one thread per
 * connection answers, keep-alive honoured).  The request path picks the
 * answer: a 200 body, a chunked stream read through on_data, a 429 with
 * Retry-After and x-ratelimit-* headers, a body over the cap, a stall for
 * the total timeout.  Also: a refused connection, connection reuse across
 * calls, the header strings arriving as given, and the Retry-After parser.
 * The test includes upstream.c itself so that the multi handle's calls
 * can be made to fail (curl_multi_socket_action): the call must end as
 * RF_UP_ERROR with curl's own error name, and the handle set must stay
 * usable.
 */
#define _GNU_SOURCE /* strcasestr */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "provider.h"

/* Fault injection: upstream.c's socket_action calls go through this; the
 * n-th call (1-based, counted per test) fails with fail_rc, 0 = never. */
static int fail_action_at, action_calls;
static CURLMcode fail_rc;
static CURLMcode fake_action(CURLM *m, curl_socket_t s, int mask, int *running);
#define curl_multi_socket_action fake_action
#include "../../src/upstream.c"
#undef curl_multi_socket_action

static CURLMcode
fake_action(CURLM *m, curl_socket_t s, int mask, int *running)
{
	if (fail_action_at > 0 && ++action_calls >= fail_action_at)
		return fail_rc;
	return curl_multi_socket_action(m, s, mask, running);
}

#define HEAD_MAX 16384
#define FIXED_NOW 1700000000000LL

static int listen_fd = -1;
static int port;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen[HEAD_MAX * 2]; /* the last request: head and body */

static int64_t
fixed_clock(void)
{
	return FIXED_NOW;
}

/* ---- the loopback server ---- */

static int
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

/* Read one request (head and Content-Length body) into buf and remember
 * it in seen.  Returns 0, or -1 at EOF or when it does not fit. */
static int
read_request(int fd, char *buf, size_t cap)
{
	size_t got = 0, need;
	const char *end, *cl;
	ssize_t r;

	for (;;) {
		buf[got] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
		if (got + 1 >= cap || (r = recv(fd, buf + got, cap - got - 1, 0)) <= 0)
			return -1;
		got += (size_t)r;
	}
	cl = strcasestr(buf, "\r\nContent-Length:");
	need = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
	while (got < need && got + 1 < cap) {
		if ((r = recv(fd, buf + got, cap - got - 1, 0)) <= 0)
			return -1;
		got += (size_t)r;
	}
	buf[got] = '\0';
	pthread_mutex_lock(&seen_lock);
	snprintf(seen, sizeof(seen), "%s", buf);
	pthread_mutex_unlock(&seen_lock);
	return 0;
}

static int
answer_ok(int fd)
{
	return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 11\r\n\r\n{\"ok\":true}");
}

/* Three chunks, a little apart, so on_data sees them one by one. */
static int
answer_stream(int fd)
{
	static const char *const chunks[] = { "b\r\ndata: one\n\n\r\n",
	    "b\r\ndata: two\n\n\r\n", "d\r\ndata: three\n\n\r\n", "0\r\n\r\n" };
	size_t i;

	if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n") != 0)
		return -1;
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		usleep(20000);
		if (send_str(fd, chunks[i]) != 0)
			return -1;
	}
	return 0;
}

static int
answer_limited(int fd)
{
	return send_str(fd, "HTTP/1.1 429 Too Many Requests\r\n"
	    "Retry-After: 7\r\n"
	    "x-ratelimit-remaining-requests: 0\r\n"
	    "x-ratelimit-reset-requests: 2m59.56s\r\n"
	    "x-ratelimit-remaining-tokens: 12000\r\n"
	    "x-ratelimit-reset-tokens: 7.66s\r\n"
	    "X-RateLimit-Remaining-Requests-Day: 5\r\n"
	    "x-ratelimit-reset-requests-day: 33011.38\r\n"
	    "Content-Length: 21\r\n\r\n{\"error\":\"slow down\"}");
}

/* One byte more than a buffered body may hold. */
static int
answer_big(int fd)
{
	char head[128], block[65536];
	size_t left = RF_UP_BODY_MAX + 1, n;

	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu"
	    "\r\n\r\n", left);
	if (send_str(fd, head) != 0)
		return -1;
	memset(block, 'x', sizeof(block));
	for (; left > 0; left -= n) {
		n = left < sizeof(block) ? left : sizeof(block);
		if (send_all(fd, block, n) != 0)
			return -1; /* the client gave up at its cap */
	}
	return 0;
}

/* Headers, then nothing until the client hangs up (at most 5 s). */
static int
answer_slow(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") != 0)
		return -1;
	if (poll(&p, 1, 5000) > 0)
		(void)recv(fd, &c, 1, 0);
	return -1;
}

static void *
serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg, rc = 0;
	char *buf = malloc(HEAD_MAX);

	while (buf != NULL && rc == 0 && read_request(fd, buf, HEAD_MAX) == 0) {
		if (strncmp(buf, "POST /stream ", 13) == 0)
			rc = answer_stream(fd);
		else if (strncmp(buf, "POST /limited ", 14) == 0)
			rc = answer_limited(fd);
		else if (strncmp(buf, "POST /big ", 10) == 0)
			rc = answer_big(fd);
		else if (strncmp(buf, "POST /slow ", 11) == 0)
			rc = answer_slow(fd);
		else
			rc = answer_ok(fd);
	}
	free(buf);
	close(fd);
	return NULL;
}

static void *
accept_loop(void *arg)
{
	pthread_t t;
	int fd;

	(void)arg;
	while ((fd = accept(listen_fd, NULL, NULL)) >= 0) {
		if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd) != 0)
			close(fd);
		else
			pthread_detach(t);
	}
	return NULL;
}

/* A bound 127.0.0.1 socket on a free port; *p gets the port. */
static int
bind_loopback(int *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*p = ntohs(a.sin_port);
	return fd;
}

static int
group_setup(void **state)
{
	pthread_t t;

	(void)state;
	assert_int_equal(rf_up_global_init(), 0);
	listen_fd = bind_loopback(&port);
	assert_int_equal(listen(listen_fd, 16), 0);
	assert_int_equal(pthread_create(&t, NULL, accept_loop, NULL), 0);
	pthread_detach(t);
	rf_time_set_clock(fixed_clock);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	shutdown(listen_fd, SHUT_RDWR);
	close(listen_fd);
	rf_time_set_clock(NULL);
	rf_up_global_cleanup();
	return 0;
}

/* ---- the client side ---- */

struct got {
	struct rf_buf data;
	int calls;
	int stop_after; /* 0: never */
};

static int
on_data(void *ud, const char *p, size_t n)
{
	struct got *g = ud;

	rf_buf_append(&g->data, p, n);
	g->calls++;
	return g->stop_after > 0 && g->calls >= g->stop_after;
}

/* A request to path on the loopback server with the usual headers. */
static void
req_for(struct rf_up_req *rq, int to_port, const char *path)
{
	rf_up_req_init(rq);
	rf_buf_printf(&rq->url, "http://127.0.0.1:%d%s", to_port, path);
	rf_buf_puts(&rq->body, "{\"q\":1}");
	assert_int_equal(rf_adapter_header(rq, "Content-Type",
	    "application/json"), 0);
	assert_int_equal(rf_adapter_header(rq, "Expect", ""), 0);
}

/* One call; the caller frees reply. */
static void
perform(struct rf_up *up, const char *path, long timeout_ms, struct got *g,
    struct rf_up_reply *reply)
{
	struct rf_up_req rq;
	struct rf_up_call call = { .pid = 0, .req = &rq, .connect_ms = 2000,
	    .timeout_ms = timeout_ms, .on_data = g ? on_data : NULL, .ud = g };

	req_for(&rq, port, path);
	rf_up_reply_init(reply);
	assert_int_equal(rf_up_perform(up, &call, reply), 0);
	rf_up_req_free(&rq);
}

static void
test_ok_body(void **state)
{
	struct rf_up *up = rf_up_new();
	struct rf_up_reply r;

	(void)state;
	perform(up, "/ok", 5000, NULL, &r);
	assert_int_equal(r.end, RF_UP_DONE);
	assert_int_equal(r.status, 200);
	assert_string_equal(rf_buf_str(&r.body), "{\"ok\":true}");
	assert_int_equal(r.retry_after_ms, -1);
	assert_false(r.quota.have);
	rf_up_reply_free(&r);
	rf_up_free(up);
}

static void
test_stream_through_on_data(void **state)
{
	struct rf_up *up = rf_up_new();
	struct got g = { .stop_after = 0 };
	struct rf_up_reply r;

	(void)state;
	perform(up, "/stream", 5000, &g, &r);
	assert_int_equal(r.end, RF_UP_DONE);
	assert_int_equal(r.status, 200);
	assert_string_equal(rf_buf_str(&g.data),
	    "data: one\n\ndata: two\n\ndata: three\n\n");
	assert_true(g.calls >= 2); /* it arrived in pieces, as it was sent */
	assert_int_equal(r.body.len, 0); /* nothing buffered */
	rf_up_reply_free(&r);
	rf_buf_free(&g.data);

	/* A callback that says stop ends the transfer as aborted. */
	memset(&g, 0, sizeof(g));
	g.stop_after = 1;
	perform(up, "/stream", 5000, &g, &r);
	assert_int_equal(r.end, RF_UP_ABORTED);
	assert_int_equal(g.calls, 1);
	rf_up_reply_free(&r);
	rf_buf_free(&g.data);
	rf_up_free(up);
}

static void
test_rate_limit_headers(void **state)
{
	struct rf_up *up = rf_up_new();
	struct got g = { .stop_after = 0 };
	struct rf_up_reply r;

	(void)state;
	/* A non-2xx body is buffered even when streaming. */
	perform(up, "/limited", 5000, &g, &r);
	assert_int_equal(r.end, RF_UP_DONE);
	assert_int_equal(r.status, 429);
	assert_string_equal(rf_buf_str(&r.body), "{\"error\":\"slow down\"}");
	assert_int_equal(g.calls, 0);
	assert_int_equal(r.retry_after_ms, 7000);
	assert_true(r.quota.have);
	/* The smallest figure of each kind; the reset of the empty window. */
	assert_int_equal(r.quota.remaining_requests, 0);
	assert_int_equal(r.quota.remaining_tokens, 12000);
	assert_int_equal(r.quota.reset_at_ms, FIXED_NOW + 179560);
	rf_up_reply_free(&r);
	rf_buf_free(&g.data);
	rf_up_free(up);
}

static void
test_refused(void **state)
{
	struct rf_up *up = rf_up_new();
	struct rf_up_reply r;
	struct rf_up_req rq;
	int closed_port, fd;
	struct rf_up_call call = { .pid = 0, .req = &rq, .connect_ms = 2000,
	    .timeout_ms = 5000 };

	(void)state;
	fd = bind_loopback(&closed_port);
	close(fd); /* nobody listens there now */
	req_for(&rq, closed_port, "/ok");
	rf_up_reply_init(&r);
	rf_up_perform(up, &call, &r);
	assert_int_equal(r.end, RF_UP_CONNECT);
	assert_int_equal(r.status, 0);
	assert_true(r.curl_err[0] != '\0');
	rf_up_reply_free(&r);
	rf_up_req_free(&rq);
	rf_up_free(up);
}

static void
test_too_big(void **state)
{
	struct rf_up *up = rf_up_new();
	struct rf_up_reply r;

	(void)state;
	perform(up, "/big", 10000, NULL, &r);
	assert_int_equal(r.end, RF_UP_TOO_BIG);
	assert_int_equal(r.status, 200);
	assert_true(r.body.len <= RF_UP_BODY_MAX);
	rf_up_reply_free(&r);
	rf_up_free(up);
}

static void
test_total_timeout(void **state)
{
	struct rf_up *up = rf_up_new();
	struct rf_up_reply r;
	int64_t t0 = rf_mono_ms(), took;

	(void)state;
	perform(up, "/slow", 300, NULL, &r);
	took = rf_mono_ms() - t0;
	assert_int_equal(r.end, RF_UP_TIMEOUT);
	assert_true(took >= 250 && took < 3000);
	rf_up_reply_free(&r);
	rf_up_free(up);
}

static void
test_connection_reused(void **state)
{
	struct rf_up *up = rf_up_new();
	struct rf_up_reply r;
	int i;

	(void)state;
	assert_int_equal(rf_up_connects(up), 0);
	for (i = 0; i < 3; i++) {
		perform(up, "/ok", 5000, NULL, &r);
		assert_int_equal(r.status, 200);
		rf_up_reply_free(&r);
		assert_int_equal(rf_up_connects(up), 1);
	}
	rf_up_free(up);
}

static void
test_headers_sent_as_given(void **state)
{
	struct rf_up *up = rf_up_new();
	struct rf_up_reply r;
	struct rf_up_req rq;
	struct rf_up_call call = { .pid = 0, .req = &rq, .connect_ms = 2000,
	    .timeout_ms = 5000 };
	char got[sizeof(seen)];

	(void)state;
	req_for(&rq, port, "/echo");
	assert_int_equal(rf_adapter_header(&rq, "Authorization",
	    "Bearer k-123"), 0);
	assert_int_equal(rf_adapter_header(&rq, "X-Test", "a b  c"), 0);
	rf_up_reply_init(&r);
	rf_up_perform(up, &call, &r);
	assert_int_equal(r.status, 200);
	pthread_mutex_lock(&seen_lock);
	snprintf(got, sizeof(got), "%s", seen);
	pthread_mutex_unlock(&seen_lock);
	assert_true(strncmp(got, "POST /echo HTTP/1.1\r\n", 21) == 0);
	assert_non_null(strstr(got, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(got, "\r\nAuthorization: Bearer k-123\r\n"));
	assert_non_null(strstr(got, "\r\nX-Test: a b  c\r\n"));
	assert_non_null(strstr(got, "\r\nContent-Length: 7\r\n"));
	/* "Expect: " with no value removes curl's own Expect header. */
	assert_null(strcasestr(got, "\r\nExpect:"));
	assert_non_null(strstr(got, "\r\n\r\n{\"q\":1}"));
	rf_up_reply_free(&r);
	rf_up_req_free(&rq);
	rf_up_free(up);
}

static void
test_bad_call(void **state)
{
	struct rf_up *up = rf_up_new();
	struct rf_up_reply r;
	struct rf_up_req rq;
	struct rf_up_call call = { .pid = RF_MAX_PROVIDERS, .req = &rq };

	(void)state;
	req_for(&rq, port, "/ok");
	rf_up_reply_init(&r);
	rf_up_perform(up, &call, &r);
	assert_int_equal(r.end, RF_UP_ERROR);
	assert_string_equal(r.curl_err, "bad provider");
	assert_int_equal(rf_up_connects(up), 0);
	rf_up_reply_free(&r);
	rf_up_req_free(&rq);
	rf_up_req_free(NULL);
	rf_up_free(up);
	rf_up_free(NULL);
}

/* A worker without a handle set (rf_up_new failed) gets an error reply,
 * not a crash. */
static void
test_no_handle(void **state)
{
	struct rf_up_reply r;
	struct rf_up_req rq;
	struct rf_up_call call = { .pid = 0, .req = &rq, .connect_ms = 2000,
	    .timeout_ms = 5000 };

	(void)state;
	req_for(&rq, port, "/ok");
	rf_up_reply_init(&r);
	assert_int_equal(rf_up_perform(NULL, &call, &r), 0);
	assert_int_equal(r.end, RF_UP_ERROR);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.curl_err, "no upstream handle");
	rf_up_reply_free(&r);
	rf_up_req_free(&rq);
}

/* The multi handle fails: the call ends at once as RF_UP_ERROR with
 * curl's error name (never as a completed transfer), and the next call
 * on the same handle set works. */
static void
test_multi_failures(void **state)
{
	struct rf_up *up = rf_up_new();
	struct got g = { .stop_after = 0 };
	struct rf_up_reply r;

	(void)state;
	/* the multi handle fails on its third action, inside a stalled body */
	action_calls = 0;
	fail_rc = CURLM_OUT_OF_MEMORY;
	fail_action_at = 3;
	perform(up, "/slow", 10000, NULL, &r);
	fail_action_at = 0;
	assert_int_equal(r.end, RF_UP_ERROR);
	assert_string_equal(r.curl_err, curl_multi_strerror(CURLM_OUT_OF_MEMORY));
	rf_up_reply_free(&r);

	/* it fails while a stream is read */
	action_calls = 0;
	fail_rc = CURLM_INTERNAL_ERROR;
	fail_action_at = 2;
	perform(up, "/stream", 5000, &g, &r);
	fail_action_at = 0;
	assert_int_equal(r.end, RF_UP_ERROR);
	assert_string_equal(r.curl_err, curl_multi_strerror(CURLM_INTERNAL_ERROR));
	rf_up_reply_free(&r);
	rf_buf_free(&g.data);

	/* the handle set still serves */
	perform(up, "/ok", 5000, NULL, &r);
	assert_int_equal(r.end, RF_UP_DONE);
	assert_int_equal(r.status, 200);
	assert_string_equal(rf_buf_str(&r.body), "{\"ok\":true}");
	rf_up_reply_free(&r);
	rf_up_free(up);
}

/* Moved here from test_chain.c with the parser. */
static void
test_retry_after(void **state)
{
	int64_t now = rf_now_ms();

	(void)state;
	assert_int_equal(now, FIXED_NOW);
	assert_int_equal(rf_up_parse_retry_after("30", now), 30000);
	assert_int_equal(rf_up_parse_retry_after("1.5", now), 1500);
	assert_int_equal(rf_up_parse_retry_after("-3", now), -1);
	assert_int_equal(rf_up_parse_retry_after("", now), -1);
	/* an HTTP date 90 s after the injected now (Tue, 14 Nov 2023 22:13:20 GMT) */
	assert_int_equal(rf_up_parse_retry_after("Tue, 14 Nov 2023 22:14:50 GMT",
	    now), 90000);
	/* a date in the past means "now" */
	assert_int_equal(rf_up_parse_retry_after("Tue, 14 Nov 2023 20:00:00 GMT",
	    now), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_body),
		cmocka_unit_test(test_stream_through_on_data),
		cmocka_unit_test(test_rate_limit_headers),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_total_timeout),
		cmocka_unit_test(test_connection_reused),
		cmocka_unit_test(test_headers_sent_as_given),
		cmocka_unit_test(test_bad_call),
		cmocka_unit_test(test_no_handle),
		cmocka_unit_test(test_multi_failures),
		cmocka_unit_test(test_retry_after),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
