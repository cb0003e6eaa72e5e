/*
 * error: the one error enum of the program, and the table that gives each
 * code its wire name, HTTP status and default message (docs/api.md).
 * Prefix: rf_err_.
 */
#ifndef RF_ERROR_H
#define RF_ERROR_H

#include <stdbool.h>

enum rf_err {
	RF_OK = 0,
	RF_ERR_INVALID_JSON,         /* 400 */
	RF_ERR_VALIDATION,           /* 400 */
	RF_ERR_UNAUTHORIZED,         /* 401 */
	RF_ERR_NOT_FOUND,            /* 404 */
	RF_ERR_METHOD_NOT_ALLOWED,   /* 405 */
	RF_ERR_PAYLOAD_TOO_LARGE,    /* 413 */
	RF_ERR_CONTENT_FILTERED,     /* 422 */
	RF_ERR_UNSUPPORTED_MEDIA,    /* 415 */
	RF_ERR_RATE_LIMITED,         /* 429, the gateway's own limit */
	RF_ERR_PROVIDER_RATE_LIMITED,/* 429 */
	RF_ERR_PROVIDER_AUTH,        /* 502 */
	RF_ERR_PROVIDER_BAD_REQUEST, /* 502 */
	RF_ERR_PROVIDER_UNAVAILABLE, /* 502 */
	RF_ERR_MALFORMED_RESPONSE,   /* 502 */
	RF_ERR_PROVIDER_TIMEOUT,     /* 504 */
	RF_ERR_STREAM_INTERRUPTED,   /* event only */
	RF_ERR_INTERNAL,             /* 500 */
	RF_ERR_CLIENT_CLOSED,        /* log only: the client hung up */
	RF_ERR_MODEL_NOT_FOUND,      /* 404, /v1: no route for "model" */
	RF_ERR__COUNT
};

/* Wire name ("provider_rate_limited").  Never NULL. */
const char *rf_err_code(enum rf_err e);
/* HTTP status (stream_interrupted and client_closed: 502 / 499). */
int rf_err_status(enum rf_err e);
/* A readable default message ("The request body is not valid JSON."). */
const char *rf_err_message(enum rf_err e);
/* The reason phrase of an HTTP status ("Too Many Requests"). */
const char *rf_err_reason(int status);

#endif
