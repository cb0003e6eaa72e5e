/* Unit tests of the reply writer: the output sink's sticky failure, the
 * head every response carries (status line with reason phrase, request id,
 * CORS), JSON and error replies, the start of an event stream and the
 * preflight. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "request.h"

struct sink {
	struct rf_buf out;
	int writes;
	int fail_after;   /* writes that succeed before one fails; -1 never */
};

static int
sink_write(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	if (s->fail_after >= 0 && s->writes >= s->fail_after)
		return -1;
	s->writes++;
	return rf_buf_append(&s->out, p, n);
}

static int
sink_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static void
init(struct rf_request *rq, struct sink *s, const char *origin)
{
	memset(s, 0, sizeof(*s));
	s->fail_after = -1;
	rf_buf_init(&s->out, 0);
	*rq = (struct rf_request){
		.out = { .write = sink_write, .flush = sink_flush, .ctx = s },
		.origin = origin,
	};
	snprintf(rq->request_id, sizeof(rq->request_id), "rid-1");
}

static void
test_out_failure_sticks(void **state)
{
	struct rf_request rq;
	struct sink s;

	(void)state;
	init(&rq, &s, NULL);
	s.fail_after = 1;
	assert_int_equal(rf_out_puts(&rq.out, "a"), 0);
	assert_int_equal(rf_out_puts(&rq.out, "b"), -1);
	assert_true(rq.out.failed);
	s.fail_after = -1; /* the client does not come back */
	assert_int_equal(rf_out_puts(&rq.out, "c"), -1);
	assert_int_equal(rf_out_flush(&rq.out), -1);
	assert_int_equal(rf_out_write(&rq.out, "", 0), -1);
	assert_string_equal(rf_buf_str(&s.out), "a");
	rf_buf_free(&s.out);
}

static void
test_json_and_error(void **state)
{
	struct rf_request rq;
	struct sink s;
	json_object *o = json_object_new_object();

	(void)state;
	init(&rq, &s, "https://app.example");
	json_object_object_add(o, "k", json_object_new_string("v"));
	assert_int_equal(rf_reply_json(&rq, 200, "X-Extra: 1\r\n", o), 0);
	assert_true(rq.head_sent);
	assert_string_equal(rf_buf_str(&s.out),
	    "Status: 200 OK\r\nX-Request-Id: rid-1\r\n"
	    "Access-Control-Allow-Origin: https://app.example\r\n"
	    "Access-Control-Expose-Headers: X-Request-Id, X-RelayForge-Provider, "
	    "X-RelayForge-Fallback, X-RelayForge-Attempts, Retry-After, "
	    "x-should-retry\r\nVary: Origin\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: 9\r\nCache-Control: no-store\r\nX-Extra: 1\r\n\r\n"
	    "{\"k\":\"v\"}");
	rf_buf_free(&s.out);

	init(&rq, &s, NULL);
	assert_int_equal(rf_reply_error(&rq, RF_ERR_VALIDATION, "Bad.", "prompt", NULL), 0);
	assert_non_null(strstr(s.out.data, "Status: 400 Bad Request\r\n"));
	assert_null(strstr(s.out.data, "Access-Control"));
	assert_non_null(strstr(s.out.data, "{\"success\":false,\"error\":{\"code\":\"validation_error\""));
	assert_non_null(strstr(s.out.data, "\"field\":\"prompt\""));
	assert_non_null(strstr(s.out.data, "\"requestId\":\"rid-1\""));
	rf_buf_free(&s.out);
}

static void
test_sse_start_and_preflight(void **state)
{
	struct rf_request rq;
	struct sink s;

	(void)state;
	init(&rq, &s, NULL);
	assert_int_equal(rf_reply_sse_start(&rq, "X-A: b\r\n"), 0);
	assert_string_equal(rf_buf_str(&s.out),
	    "Status: 200 OK\r\nX-Request-Id: rid-1\r\n"
	    "Content-Type: text/event-stream; charset=utf-8\r\n"
	    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nX-A: b\r\n\r\n");
	rf_buf_free(&s.out);

	init(&rq, &s, "*");
	assert_int_equal(rf_reply_preflight(&rq, "POST, OPTIONS", NULL), 0);
	assert_non_null(strstr(s.out.data, "Status: 204 No Content\r\n"));
	assert_non_null(strstr(s.out.data, "Allow: POST, OPTIONS\r\n"));
	assert_non_null(strstr(s.out.data, "Access-Control-Allow-Headers: "
	    "Content-Type, Authorization, X-Request-Id\r\n"));
	assert_non_null(strstr(s.out.data, "Cache-Control: no-store\r\n\r\n"));
	rf_buf_free(&s.out);

	init(&rq, &s, NULL);
	assert_int_equal(rf_reply_preflight(&rq, "GET, OPTIONS", "X-Other"), 0);
	assert_null(strstr(s.out.data, "Access-Control-Allow-Headers"));
	rf_buf_free(&s.out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_out_failure_sticks),
		cmocka_unit_test(test_json_and_error),
		cmocka_unit_test(test_sse_start_and_preflight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
