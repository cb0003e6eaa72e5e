/* Unit tests of error: the code table of docs/api.md and the HTTP
 * reason phrases. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "error.h"

static const struct {
	enum rf_err e;
	const char *code;
	int status;
} spec_table[] = {
	{ RF_OK, "ok", 200 },
	{ RF_ERR_INVALID_JSON, "invalid_json", 400 },
	{ RF_ERR_VALIDATION, "validation_error", 400 },
	{ RF_ERR_UNAUTHORIZED, "unauthorized", 401 },
	{ RF_ERR_NOT_FOUND, "not_found", 404 },
	{ RF_ERR_METHOD_NOT_ALLOWED, "method_not_allowed", 405 },
	{ RF_ERR_PAYLOAD_TOO_LARGE, "payload_too_large", 413 },
	{ RF_ERR_CONTENT_FILTERED, "content_filtered", 422 },
	{ RF_ERR_UNSUPPORTED_MEDIA, "unsupported_media_type", 415 },
	{ RF_ERR_RATE_LIMITED, "rate_limited", 429 },
	{ RF_ERR_PROVIDER_RATE_LIMITED, "provider_rate_limited", 429 },
	{ RF_ERR_PROVIDER_AUTH, "provider_auth_failed", 502 },
	{ RF_ERR_PROVIDER_BAD_REQUEST, "provider_bad_request", 502 },
	{ RF_ERR_PROVIDER_UNAVAILABLE, "provider_unavailable", 502 },
	{ RF_ERR_MALFORMED_RESPONSE, "malformed_response", 502 },
	{ RF_ERR_PROVIDER_TIMEOUT, "provider_timeout", 504 },
	{ RF_ERR_STREAM_INTERRUPTED, "stream_interrupted", 502 },
	{ RF_ERR_INTERNAL, "internal_error", 500 },
	{ RF_ERR_CLIENT_CLOSED, "client_closed", 499 },
	{ RF_ERR_MODEL_NOT_FOUND, "model_not_found", 404 },
};

static void
test_codes_and_statuses(void **state)
{
	size_t i, n = sizeof(spec_table) / sizeof(spec_table[0]);

	(void)state;
	assert_int_equal(n, RF_ERR__COUNT); /* every code is listed above */
	for (i = 0; i < n; i++) {
		assert_string_equal(rf_err_code(spec_table[i].e),
		    spec_table[i].code);
		assert_int_equal(rf_err_status(spec_table[i].e),
		    spec_table[i].status);
	}
}

static void
test_messages_readable(void **state)
{
	const char *m;
	size_t len;
	int e;

	(void)state;
	for (e = 0; e < RF_ERR__COUNT; e++) {
		m = rf_err_message((enum rf_err)e);
		assert_non_null(m);
		len = strlen(m);
		assert_true(len > 2);
		/* a sentence: capital first, full stop last, not the code */
		assert_true(m[0] >= 'A' && m[0] <= 'Z');
		assert_int_equal(m[len - 1], '.');
		assert_null(strchr(m, '_'));
	}
	assert_string_equal(rf_err_message(RF_ERR_PROVIDER_RATE_LIMITED),
	    "The provider returned a rate-limit response.");
}

static void
test_out_of_range(void **state)
{
	(void)state;
	assert_string_equal(rf_err_code(RF_ERR__COUNT), "internal_error");
	assert_int_equal(rf_err_status((enum rf_err)-1), 500);
	assert_non_null(rf_err_message((enum rf_err)999));
}

static void
test_reasons(void **state)
{
	static const struct {
		int status;
		const char *reason;
	} cases[] = {
		{ 200, "OK" }, { 204, "No Content" }, { 400, "Bad Request" },
		{ 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 408, "Request Timeout" }, { 409, "Conflict" },
		{ 413, "Payload Too Large" }, { 415, "Unsupported Media Type" },
		{ 422, "Unprocessable Content" }, { 429, "Too Many Requests" },
		{ 499, "Client Closed Request" },
		{ 500, "Internal Server Error" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
		{ 0, "Unknown" }, { 299, "Unknown" }, { 999, "Unknown" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(rf_err_reason(cases[i].status),
		    cases[i].reason);
	/* every status of the table has a real phrase */
	for (i = 0; i < RF_ERR__COUNT; i++)
		assert_string_not_equal(rf_err_reason(
		    rf_err_status((enum rf_err)i)), "Unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_and_statuses),
		cmocka_unit_test(test_messages_readable),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_reasons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
