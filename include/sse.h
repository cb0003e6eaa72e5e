/*
 * sse: Server-Sent Events in both directions.
 *  - An incremental parser for upstream streams: bytes may be split anywhere
 *    across reads; \n, \r\n and \r line ends; "event:" and multi-line
 *    "data:" (joined with \n); ":" comments skipped; "id:" / "retry:"
 *    ignored; bounded line and event sizes.  Lines that are not SSE fields
 *    (e.g. a raw JSON error appended after the last event, as Gemini does)
 *    are kept as "junk" so the caller can look for an error at the end.
 *  - A writer for the client side: one event, then one flush.
 * Prefix: rf_sse_.
 */
#ifndef RF_SSE_H
#define RF_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct rf_out;

/* Called once per complete event.  event is NULL when no "event:" line was
 * given.  data is NUL-terminated (len excludes the NUL).  Return 0 to go on,
 * non-zero to stop: rf_sse_feed then returns that value. */
typedef int (*rf_sse_event_fn)(void *ud, const char *event, const char *data,
    size_t len);

/* Treat the members as private. */
struct rf_sse_parser {
	struct rf_buf line;   /* current partial line */
	struct rf_buf data;   /* data of the current event */
	struct rf_buf event;  /* event name of the current event */
	struct rf_buf junk;   /* non-field lines, for the end-of-stream check */
	bool has_data;
	bool last_cr;         /* previous byte was \r (so a following \n is eaten) */
	rf_sse_event_fn fn;
	void *ud;
};

#define RF_SSE_MAX_LINE  (256 * 1024)
#define RF_SSE_MAX_EVENT (1024 * 1024)
#define RF_SSE_MAX_JUNK  (16 * 1024)

void rf_sse_init(struct rf_sse_parser *p, rf_sse_event_fn fn, void *ud);
/* Feed n bytes.  Returns 0, a callback's non-zero value, or -1 when a line
 * or an event passed its cap (the stream is then unusable). */
int rf_sse_feed(struct rf_sse_parser *p, const char *buf, size_t n);
/* End of stream: a pending unterminated line is processed, a pending event
 * with data is dispatched.  Returns like rf_sse_feed. */
int rf_sse_finish(struct rf_sse_parser *p);
/* Non-field lines seen so far, joined with \n ("" when none). */
const char *rf_sse_junk(const struct rf_sse_parser *p);
/* Forget everything (keeps allocations) for the next stream. */
void rf_sse_reset(struct rf_sse_parser *p);
void rf_sse_free(struct rf_sse_parser *p);

/* Client side: write "event: <event>\ndata: <data>\n\n" and flush.
 * data must not contain a newline (compact JSON).  Returns 0, or -1 when
 * the client has gone (the write or the flush failed). */
int rf_sse_write(struct rf_out *out, const char *event, const char *data);
/* Write a ": <text>\n\n" comment and flush (keep-alive). */
int rf_sse_comment(struct rf_out *out, const char *text);

#endif
