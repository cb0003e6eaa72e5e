/*
 * sse: Server-Sent Events both ways.
 *
 * The parser follows the WHATWG event-stream rules for what the upstream
 * providers send, with bytes split anywhere across reads.  Its state:
 *   line      bytes of the current line (no terminator yet)
 *   last_cr   the previous feed ended in \r, so a \n opening the next feed
 *             finishes that same line end (\r\n split across reads)
 *   event, data, has_data   the event being assembled; a blank line
 *             dispatches it when some "data" line was seen
 *   junk      lines that are not SSE fields (a raw JSON error that Gemini
 *             appends after the last event), kept for the end-of-stream check
 * Every buffer has a cap: a line or an event past it makes the stream
 * unusable (-1); junk past its cap is silently cut.
 *
 * The writer emits one client event per call and flushes at once, so each
 * token leaves the process the moment it exists.
 */
#include <string.h>

#include "reply.h"
#include "sse.h"

void
rf_sse_init(struct rf_sse_parser *p, rf_sse_event_fn fn, void *ud)
{
	memset(p, 0, sizeof(*p));
	rf_buf_init(&p->line, RF_SSE_MAX_LINE);
	rf_buf_init(&p->data, RF_SSE_MAX_EVENT + 1); /* + the last \n */
	rf_buf_init(&p->event, RF_SSE_MAX_LINE);
	rf_buf_init(&p->junk, RF_SSE_MAX_JUNK);
	p->fn = fn;
	p->ud = ud;
}

static void
junk_add(struct rf_sse_parser *p, const char *s, size_t n)
{
	size_t room;

	if (p->junk.len > 0 && rf_buf_append(&p->junk, "\n", 1) != 0)
		return;
	room = RF_SSE_MAX_JUNK - p->junk.len;
	rf_buf_append(&p->junk, s, n < room ? n : room);
}

static int
dispatch(struct rf_sse_parser *p)
{
	const char *event;
	int rc = 0;

	if (p->has_data) {
		/* Lines were joined with \n; the last one is not part of it. */
		if (p->data.len > 0)
			p->data.data[--p->data.len] = '\0';
		event = p->event.len > 0 ? rf_buf_str(&p->event) : NULL;
		rc = p->fn(p->ud, event, rf_buf_str(&p->data), p->data.len);
	}
	rf_buf_reset(&p->data);
	rf_buf_reset(&p->event);
	p->has_data = false;
	return rc;
}

/* One complete line (without its terminator). */
static int
process_line(struct rf_sse_parser *p, const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	const char *v = colon != NULL ? colon + 1 : s + n;
	size_t flen = colon != NULL ? (size_t)(colon - s) : n;
	size_t vlen = (size_t)(s + n - v);

	if (n == 0)
		return dispatch(p);
	if (colon == s)
		return 0; /* comment: OpenRouter's ": OPENROUTER PROCESSING" */
	if (vlen > 0 && *v == ' ')
		v++, vlen--;
	if (flen == 4 && memcmp(s, "data", 4) == 0) {
		if (rf_buf_append(&p->data, v, vlen) != 0 ||
		    rf_buf_append(&p->data, "\n", 1) != 0)
			return -1;
		p->has_data = true;
	} else if (flen == 5 && memcmp(s, "event", 5) == 0) {
		rf_buf_reset(&p->event);
		if (rf_buf_append(&p->event, v, vlen) != 0)
			return -1;
	} else if (!(flen == 2 && memcmp(s, "id", 2) == 0) &&
	    !(flen == 5 && memcmp(s, "retry", 5) == 0)) {
		junk_add(p, s, n);
	}
	return 0;
}

/* The line buffer holds the line's start; s[0..n) is its end. */
static int
finish_line(struct rf_sse_parser *p, const char *s, size_t n)
{
	int rc;

	/* The same cap whether the line came in one read or in many. */
	if (n > RF_SSE_MAX_LINE - p->line.len)
		return -1;
	if (p->line.len == 0)
		return process_line(p, s, n);
	if (rf_buf_append(&p->line, s, n) != 0)
		return -1;
	rc = process_line(p, p->line.data, p->line.len);
	rf_buf_reset(&p->line);
	return rc;
}

int
rf_sse_feed(struct rf_sse_parser *p, const char *buf, size_t n)
{
	size_t i = 0, j;
	int rc;

	if (n == 0)
		return 0;
	if (p->last_cr && buf[0] == '\n')
		i = 1; /* the \n of a \r\n split between two reads */
	p->last_cr = false;
	while (i < n) {
		for (j = i; j < n && buf[j] != '\n' && buf[j] != '\r'; j++)
			;
		if (j == n) {
			/* No line end yet: keep the partial line. */
			if (rf_buf_append(&p->line, buf + i, n - i) != 0)
				return -1;
			break;
		}
		if ((rc = finish_line(p, buf + i, j - i)) != 0)
			return rc;
		if (buf[j] == '\r' && j + 1 == n)
			p->last_cr = true;
		else if (buf[j] == '\r' && buf[j + 1] == '\n')
			j++;
		i = j + 1;
	}
	return 0;
}

int
rf_sse_finish(struct rf_sse_parser *p)
{
	int rc = 0;

	if (p->line.len > 0)
		rc = finish_line(p, "", 0);
	p->last_cr = false;
	/* Gemini may close without the final blank line. */
	if (rc == 0)
		rc = dispatch(p);
	return rc;
}

const char *
rf_sse_junk(const struct rf_sse_parser *p)
{
	return rf_buf_str(&p->junk);
}

void
rf_sse_reset(struct rf_sse_parser *p)
{
	rf_buf_reset(&p->line);
	rf_buf_reset(&p->data);
	rf_buf_reset(&p->event);
	rf_buf_reset(&p->junk);
	p->has_data = false;
	p->last_cr = false;
}

void
rf_sse_free(struct rf_sse_parser *p)
{
	if (p == NULL)
		return;
	rf_buf_free(&p->line);
	rf_buf_free(&p->data);
	rf_buf_free(&p->event);
	rf_buf_free(&p->junk);
	p->has_data = false;
	p->last_cr = false;
}

/* ---- the writer (client side) ---- */

/* "data: " lines for s; a stray line end starts a new data line so the
 * framing can never break (the client joins them back with \n). */
static int
data_lines(struct rf_buf *b, const char *s)
{
	size_t n;

	for (;;) {
		n = strcspn(s, "\r\n");
		if (rf_buf_puts(b, "data: ") != 0 ||
		    rf_buf_append(b, s, n) != 0 || rf_buf_puts(b, "\n") != 0)
			return -1;
		if (s[n] == '\0')
			return 0;
		s += n + (s[n] == '\r' && s[n + 1] == '\n' ? 2 : 1);
	}
}

static int
send_flush(struct rf_out *out, const struct rf_buf *b)
{
	if (rf_out_write(out, b->data, b->len) != 0)
		return -1;
	return rf_out_flush(out) != 0 ? -1 : 0;
}

int
rf_sse_write(struct rf_out *out, const char *event, const char *data)
{
	struct rf_buf b = { 0 };
	int rc = -1;

	if (event != NULL && event[0] != '\0' &&
	    (strpbrk(event, "\r\n") != NULL ||
	    rf_buf_printf(&b, "event: %s\n", event) != 0))
		goto out;
	if (data_lines(&b, data != NULL ? data : "") != 0 ||
	    rf_buf_puts(&b, "\n") != 0)
		goto out;
	rc = send_flush(out, &b);
out:
	rf_buf_free(&b);
	return rc;
}

int
rf_sse_comment(struct rf_out *out, const char *text)
{
	struct rf_buf b = { 0 };
	int rc = -1;

	if (rf_buf_puts(&b, ": ") != 0 ||
	    rf_buf_append(&b, text, strcspn(text, "\r\n")) != 0 ||
	    rf_buf_puts(&b, "\n\n") != 0)
		goto out;
	rc = send_flush(out, &b);
out:
	rf_buf_free(&b);
	return rc;
}
