/*
 * error: one table gives every rf_err its wire code, HTTP status and the
 * message a person reads when nothing more precise is known (docs/api.md).  Callees fill the code; only this file turns it into words.
 */
#include "error.h"

#include <stddef.h>

struct err_row {
	const char *code;
	int status;
	const char *message;
};

/* Indexed by enum rf_err; the static assert below keeps the two in step. */
static const struct err_row err_table[] = {
	[RF_OK] = { "ok", 200, "OK." },
	[RF_ERR_INVALID_JSON] = { "invalid_json", 400,
	    "The request body is not valid JSON." },
	[RF_ERR_VALIDATION] = { "validation_error", 400,
	    "The request does not follow the API contract." },
	[RF_ERR_UNAUTHORIZED] = { "unauthorized", 401,
	    "A valid bearer token is required." },
	[RF_ERR_NOT_FOUND] = { "not_found", 404,
	    "No such endpoint." },
	[RF_ERR_METHOD_NOT_ALLOWED] = { "method_not_allowed", 405,
	    "This method is not allowed on this endpoint." },
	[RF_ERR_PAYLOAD_TOO_LARGE] = { "payload_too_large", 413,
	    "The request body is too large." },
	[RF_ERR_CONTENT_FILTERED] = { "content_filtered", 422,
	    "The provider withheld the answer for safety reasons." },
	[RF_ERR_UNSUPPORTED_MEDIA] = { "unsupported_media_type", 415,
	    "The request body must be application/json." },
	[RF_ERR_RATE_LIMITED] = { "rate_limited", 429,
	    "Too many requests from this client; try again later." },
	[RF_ERR_PROVIDER_RATE_LIMITED] = { "provider_rate_limited", 429,
	    "The provider returned a rate-limit response." },
	[RF_ERR_PROVIDER_AUTH] = { "provider_auth_failed", 502,
	    "The provider rejected the gateway's credentials." },
	[RF_ERR_PROVIDER_BAD_REQUEST] = { "provider_bad_request", 502,
	    "The provider rejected the request." },
	[RF_ERR_PROVIDER_UNAVAILABLE] = { "provider_unavailable", 502,
	    "The provider could not be reached or failed." },
	[RF_ERR_MALFORMED_RESPONSE] = { "malformed_response", 502,
	    "The provider returned a response the gateway could not read." },
	[RF_ERR_PROVIDER_TIMEOUT] = { "provider_timeout", 504,
	    "The provider did not answer in time." },
	[RF_ERR_STREAM_INTERRUPTED] = { "stream_interrupted", 502,
	    "The stream broke after it had started." },
	[RF_ERR_INTERNAL] = { "internal_error", 500,
	    "An internal error occurred." },
	[RF_ERR_CLIENT_CLOSED] = { "client_closed", 499,
	    "The client closed the connection." },
	[RF_ERR_MODEL_NOT_FOUND] = { "model_not_found", 404,
	    "The model does not exist or no provider serves it." },
};

_Static_assert(sizeof(err_table) / sizeof(err_table[0]) == RF_ERR__COUNT,
    "err_table must have one row per enum rf_err");

/* An out-of-range value is a bug; answer as internal_error, never NULL. */
static const struct err_row *
err_row(enum rf_err e)
{
	if ((int)e < 0 || e >= RF_ERR__COUNT)
		e = RF_ERR_INTERNAL;
	return &err_table[e];
}

const char *
rf_err_code(enum rf_err e)
{
	return err_row(e)->code;
}

int
rf_err_status(enum rf_err e)
{
	return err_row(e)->status;
}

const char *
rf_err_message(enum rf_err e)
{
	return err_row(e)->message;
}

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 200, "OK" },
	{ 201, "Created" },
	{ 204, "No Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 413, "Payload Too Large" },
	{ 415, "Unsupported Media Type" },
	{ 422, "Unprocessable Content" },
	{ 429, "Too Many Requests" },
	{ 499, "Client Closed Request" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
};

const char *
rf_err_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}
