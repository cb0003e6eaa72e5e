/*
 * upstream: HTTP calls to providers.  The only module that speaks libcurl:
 * an adapter fills a plain struct rf_up_req (URL, body, header lines) and
 * this module sends it.  Each event loop (loop.h) owns one struct rf_up: a
 * multi handle driven by the loop (which owns the connection pool, so a
 * warm loop makes no new TCP/TLS handshake per request to any provider)
 * and a pool of easy handles.  A call is started with rf_up_start and
 * reports its end through a callback on the loop's thread; deadlines
 * beyond curl's own timeouts are the caller's timers.  Prefix: rf_up_.
 */
#ifndef RF_UPSTREAM_H
#define RF_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct rf_up;

/* Header lines of one request: a small fixed array, enough for every
 * provider (Content-Type, Expect, auth, Accept and one quirk today). */
#define RF_UP_MAX_HDRS 8
#define RF_UP_HDR_LEN 1024

/*
 * What one upstream call sends: a POST of body to url with the header
 * lines exactly as written ("Name: value"; "Name: " with an empty value
 * removes a header curl would add, e.g. "Expect: ").  Adapters fill it
 * (provider.h); rf_up_perform sends it.  URL and body are uncapped: both
 * come from the configuration and from a request the contract bounded.
 */
struct rf_up_req {
	struct rf_buf url;
	struct rf_buf body;
	char *hdrs[RF_UP_MAX_HDRS]; /* each from malloc, shorter than
	                             * RF_UP_HDR_LEN; an open request holds
	                             * only the bytes of its lines */
	int nhdrs;
};

/* An empty request.  The owner frees it with rf_up_req_free, which wipes
 * the header lines (an API key travels in one) and frees the buffers;
 * rf_up_req_free(NULL) is a no-op.  These three are defined in
 * provider.c, beside the adapters that fill the request, so that the
 * adapters (and their fuzz targets) link without libcurl. */
void rf_up_req_init(struct rf_up_req *rq);
void rf_up_req_free(struct rf_up_req *rq);
/* Wipe and free the header lines only (nhdrs 0 again). */
void rf_up_req_drop_headers(struct rf_up_req *rq);

/* Free-tier quota figures from rate-limit headers. */
struct rf_quota {
	bool have;
	long remaining_requests; /* -1 unknown */
	long remaining_tokens;   /* -1 unknown */
	int64_t reset_at_ms;     /* wall clock, 0 unknown */
};

enum rf_up_end {
	RF_UP_DONE = 0,  /* transfer completed (any HTTP status) */
	RF_UP_CONNECT,   /* refused, reset or DNS failure before any response */
	RF_UP_RESET,     /* connection broke after the status line */
	RF_UP_TIMEOUT,   /* connect or total timeout */
	RF_UP_ABORTED,   /* a callback asked to stop */
	RF_UP_TOO_BIG,   /* the body passed its cap */
	RF_UP_ERROR      /* anything else (details in curl_err) */
};

/* The cap of a buffered (non-streamed) body. */
#define RF_UP_BODY_MAX (4 * 1024 * 1024)

struct rf_up_reply {
	long status;             /* HTTP status, 0 when none arrived */
	struct rf_buf body;      /* non-streamed body (capped at RF_UP_BODY_MAX) */
	int64_t retry_after_ms;  /* Retry-After (seconds or HTTP date), -1 none */
	struct rf_quota quota;
	enum rf_up_end end;
	char curl_err[96];       /* curl's error name, safe for technicalDetails */
};

/* Streaming: called with body bytes of a 2xx answer.  0 takes them,
 * RF_UP_PAUSE leaves them (they come again after rf_up_resume), other
 * non-zero values abort. */
#define RF_UP_PAUSE 2
typedef int (*rf_up_data_fn)(void *ud, const char *p, size_t n);
/* rf_up_perform only: called at least every 50 ms while waiting.
 * Non-zero aborts. */
typedef int (*rf_up_tick_fn)(void *ud);
/* A started call has ended (reply filled).  Runs on the loop's thread,
 * never inside another curl callback; it may start the next call. */
typedef void (*rf_up_done_fn)(void *ud);

struct rf_up_call {
	int pid;                 /* the provider (checked; for diagnostics) */
	const struct rf_up_req *req; /* what to send (borrowed) */
	long connect_ms;
	long timeout_ms;         /* whole transfer, 0 = none */
	rf_up_data_fn on_data;   /* NULL: buffer the body in reply->body */
	rf_up_tick_fn on_tick;   /* may be NULL */
	void *ud;
};

/* Once per process, before any thread starts / after they all stopped
 * (libcurl's global state).  rf_up_global_init returns 0 or -1. */
int rf_up_global_init(void);
void rf_up_global_cleanup(void);

struct rf_loop;
struct rf_up_xfer;

/* The handle set of a loop, or NULL (memory).  rf_up_new makes a loop of
 * its own (freed with the handle; for one call at a time: plain CGI, the
 * tests).  rf_up_free(NULL) is a no-op; no call may be in flight. */
struct rf_up *rf_up_new_on(struct rf_loop *loop);
struct rf_up *rf_up_new(void);
void rf_up_free(struct rf_up *up);
/* The loop that drives up's transfers. */
struct rf_loop *rf_up_loop(const struct rf_up *up);
/* Calls in flight. */
int rf_up_active(const struct rf_up *up);
void rf_up_reply_init(struct rf_up_reply *r);
void rf_up_reply_free(struct rf_up_reply *r);
/* Start a call (call is copied; call->req and reply stay the caller's
 * until done runs).  NULL when it could not start: reply->end is then
 * RF_UP_ERROR and done will not run.  on_tick is not used. */
struct rf_up_xfer *rf_up_start(struct rf_up *up, const struct rf_up_call *call,
    struct rf_up_reply *reply, rf_up_done_fn done, void *ud);
/* Stop a call in flight at once: reply filled with end RF_UP_ABORTED;
 * done does not run.  Not from inside a curl callback (on_data). */
void rf_up_cancel(struct rf_up_xfer *x);
/* Go on with a call its on_data paused (RF_UP_PAUSE): the bytes it left
 * come again, perhaps before this returns.  Not from a curl callback. */
void rf_up_resume(struct rf_up_xfer *x);
/* Run one call to completion on up's loop.  Always fills reply->end;
 * returns 0. */
int rf_up_perform(struct rf_up *up, const struct rf_up_call *call,
    struct rf_up_reply *reply);
/* Connections opened by this handle set so far (for the bench). */
long rf_up_connects(const struct rf_up *up);

/* Retry-After: delta-seconds or an HTTP date, to ms from now_ms; -1.
 * Exposed for unit tests.  Rate-limit reset headers are durations
 * (rf_duration_ms in util.h: a bare number is seconds). */
int64_t rf_up_parse_retry_after(const char *value, int64_t now_ms);

#endif
