/*
 * log: builds every stderr line and writes it with one write(2).
 *
 * A line is built in three steps, each bounded by RF_LOG_LINE_MAX:
 *   1. the body "[rid=..] [provider=..] <message>" is formatted;
 *   2. the prefix "relayforge[pid]: level func: " goes in front, then the
 *      body with every registered secret replaced by "[redacted]" (the
 *      matcher and the secret table are scrub.c's, shared with what
 *      upstream strings go through), and every control byte of the line
 *      becomes '?' (a newline in a value must not start a forged line);
 *   3. a body that does not fit is cut (on a UTF-8 boundary) and ends in
 *      "...".
 * One write(2) of at most 1 KiB to a pipe or file is atomic (PIPE_BUF is
 * 4 KiB), which is what keeps lines of concurrent threads whole.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "scrub.h"

#define REDACTED RF_SCRUB_REDACTED
#define ELLIPSIS "..."

/* A bounded piece of text being built; full = something did not fit. */
struct text {
	char *p;
	size_t len, cap;
	bool full;
};

static const char *
level_name(enum rf_log_level level)
{
	switch (level) {
	case RF_LOG_LEVEL_ERR:
		return "error";
	case RF_LOG_LEVEL_WARN:
		return "warn";
	case RF_LOG_LEVEL_INFO:
		return "info";
	}
	return "?";
}

static void
neutralise(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

static void
text_put(struct text *t, const char *s, size_t n)
{
	if (n > t->cap - t->len) {
		n = t->cap - t->len;
		t->full = true;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
}

/* Copy body[0..n) into out, each run of a secret replaced. */
static void
redact(const char *body, size_t n, struct text *out)
{
	size_t i = 0;

	while (i < n && !out->full) {
		size_t run = rf_scrub_secret_at(body + i, n - i);

		if (run > 0) {
			text_put(out, REDACTED, sizeof(REDACTED) - 1);
			i += run;
		} else {
			text_put(out, body + i, 1);
			i++;
		}
	}
	if (i < n)
		out->full = true;
}

/* Format "[rid=..] [provider=..] message" into body;
 * returns its length and sets *cut when the message did not fit. */
static size_t __attribute__((format(printf, 5, 0)))
format_body(char *body, size_t cap, const char *rid, const char *provider,
    const char *fmt, va_list ap, bool *cut)
{
	int n = 0, m;

	if (rid != NULL)
		n = snprintf(body, cap, "[rid=%s] ", rid);
	if (provider != NULL && n >= 0 && (size_t)n < cap)
		n += snprintf(body + n, cap - (size_t)n, "[provider=%s] ",
		    provider);
	if (n < 0)
		n = 0;
	if ((size_t)n < cap) {
		m = vsnprintf(body + n, cap - (size_t)n, fmt, ap);
		if (m > 0)
			n += m;
	}
	*cut = (size_t)n >= cap;
	if (*cut)
		n = (int)cap - 1;
	return (size_t)n;
}

/* Cut line to fit with the ellipsis and the newline, on a UTF-8 boundary. */
static void
finish(struct text *line)
{
	size_t keep = line->len;

	if (line->full) {
		keep = RF_LOG_LINE_MAX - 1 - (sizeof(ELLIPSIS) - 1);
		if (keep > line->len)
			keep = line->len;
		while (keep > 0 && keep < line->len &&
		    ((unsigned char)line->p[keep] & 0xc0) == 0x80)
			keep--;
		memcpy(line->p + keep, ELLIPSIS, sizeof(ELLIPSIS) - 1);
		keep += sizeof(ELLIPSIS) - 1;
	}
	line->p[keep++] = '\n';
	line->len = keep;
}

void
rf_log_write(enum rf_log_level level, const char *func, const char *rid,
    const char *provider, const char *fmt, ...)
{
	char body[RF_LOG_LINE_MAX], buf[RF_LOG_LINE_MAX];
	struct text line = { buf, 0, RF_LOG_LINE_MAX - 1, false };
	int saved = errno, n;
	bool cut;
	size_t blen;
	va_list ap;

	va_start(ap, fmt);
	blen = format_body(body, sizeof(body), rid, provider, fmt, ap, &cut);
	va_end(ap);
	n = snprintf(buf, sizeof(buf), "relayforge[%ld]: %s %s: ",
	    (long)getpid(), level_name(level), func != NULL ? func : "?");
	line.len = n > 0 && (size_t)n < line.cap ? (size_t)n : 0;
	redact(body, blen, &line);
	/* After redaction, so a secret with a control byte still matches. */
	neutralise(line.p, line.len);
	line.full = line.full || cut;
	finish(&line);
	while (write(STDERR_FILENO, line.p, line.len) < 0 && errno == EINTR)
		;
	errno = saved;
}
