/*
 * log: builds every stderr line and writes it with one write(2).
 *
 * A line is built in three steps, each bounded by RF_LOG_LINE_MAX:
 *   1. the body "[rid=..] [provider=..] <message>" is formatted and every
 *      control byte in it becomes '?' (a newline in a value must not start
 *      a forged line);
 *   2. registered secrets are replaced by "[redacted]" in the body (never
 *      in the prefix: level and function name come from our own code);
 *   3. the prefix "relayforge[pid]: level func: " goes in front, and a body
 *      that does not fit is cut (on a UTF-8 boundary) and ends in "...".
 * One write(2) of at most 1 KiB to a pipe or file is atomic (PIPE_BUF is
 * 4 KiB), which is what keeps lines of concurrent threads whole.
 *
 * The secret table is append-only: an adder fills a slot (and the filter
 * of its 8-byte pieces) under a mutex and then publishes it by raising the
 * count (release); writers read the count (acquire) and the slots below it
 * without a lock.  The filter keeps redaction near 2 us a line with a
 * handful of keys registered, where scanning every key at every position
 * cost ten times that.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_MIN 8                 /* bytes of a secret that give it away */
#define REDACTED "[redacted]"
#define ELLIPSIS "..."

struct secret {
	char *s;    /* control bytes already replaced, as in a line */
	size_t len;
};

static struct secret secrets[RF_LOG_SECRETS_MAX];
static atomic_size_t nsecrets;
static atomic_bool any_short;  /* a secret shorter than RUN_MIN exists */
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;

/* A filter of every RUN_MIN-byte piece of every secret (2^GRAM_BITS bits,
 * 8 KiB): most positions of a line are cleared by one lookup instead of a
 * scan of each secret. */
#define GRAM_BITS 16
static atomic_uint_least64_t grams[(1u << GRAM_BITS) / 64];

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

/* Length of the longest run at line[0..n) that is a piece of sec (at least
 * RUN_MIN bytes, or the whole secret when it is shorter); 0 when none. */
static size_t
secret_run(const struct secret *sec, const char *line, size_t n)
{
	size_t need = sec->len < RUN_MIN ? sec->len : RUN_MIN, best = 0;

	if (n < need)
		return 0;
	if (sec->len < RUN_MIN)
		return memcmp(line, sec->s, need) == 0 ? need : 0;
	/* Each place the first RUN_MIN bytes occur in the secret, extended as
	 * far as line and secret agree. */
	for (const char *at = sec->s, *end = sec->s + sec->len;
	    (at = memchr(at, line[0], (size_t)(end - at))) != NULL; at++) {
		size_t k = 0;

		if ((size_t)(end - at) < need || memcmp(at, line, need) != 0)
			continue;
		k = need;
		while (k < n && at + k < end && line[k] == at[k])
			k++;
		if (k > best)
			best = k;
	}
	return best;
}

static unsigned
gram_hash(const char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return (unsigned)((v * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - GRAM_BITS));
}

static void
gram_add(const char *p)
{
	unsigned h = gram_hash(p);

	atomic_fetch_or_explicit(&grams[h / 64], UINT64_C(1) << (h % 64),
	    memory_order_relaxed);
}

/* false when no secret has the RUN_MIN bytes at p. */
static bool
gram_maybe(const char *p)
{
	unsigned h = gram_hash(p);

	return (atomic_load_explicit(&grams[h / 64], memory_order_relaxed) >>
	    (h % 64)) & 1;
}

/* The longest run of any of the first count secrets at line[0..n). */
static size_t
longest_run(const char *line, size_t n, size_t count, bool shorts)
{
	bool maybe = n >= RUN_MIN && gram_maybe(line);
	size_t run = 0;

	if (!maybe && !shorts)
		return 0;
	for (size_t s = 0; s < count; s++) {
		size_t r;

		if (secrets[s].len >= RUN_MIN && !maybe)
			continue;
		if ((r = secret_run(&secrets[s], line, n)) > run)
			run = r;
	}
	return run;
}

/* Copy body[0..n) into out, each run of a secret replaced. */
static void
redact(const char *body, size_t n, struct text *out)
{
	size_t count = atomic_load_explicit(&nsecrets, memory_order_acquire);
	bool shorts = atomic_load_explicit(&any_short, memory_order_relaxed);
	size_t i = 0;

	while (i < n && !out->full) {
		size_t run = count > 0 ? longest_run(body + i, n - i, count,
		    shorts) : 0;

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

/* Format "[rid=..] [provider=..] message" into body (neutralised);
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
	neutralise(body, (size_t)n);
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
	line.full = line.full || cut;
	finish(&line);
	while (write(STDERR_FILENO, line.p, line.len) < 0 && errno == EINTR)
		;
	errno = saved;
}

static bool
secret_known(const char *s, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(secrets[i].s, s) == 0)
			return true;
	return false;
}

int
rf_log_add_secret(const char *s)
{
	size_t count;
	char *copy = NULL;
	int rc = 0;

	if (s == NULL || *s == '\0')
		return 0;
	pthread_mutex_lock(&secrets_lock);
	count = atomic_load_explicit(&nsecrets, memory_order_relaxed);
	if ((copy = strdup(s)) == NULL) {
		rc = -1;
		goto done;
	}
	neutralise(copy, strlen(copy));
	if (secret_known(copy, count)) {
		free(copy);
		goto done;
	}
	if (count == RF_LOG_SECRETS_MAX) {
		free(copy);
		rc = -1;
		goto done;
	}
	secrets[count].s = copy;
	secrets[count].len = strlen(copy);
	for (size_t j = 0; j + RUN_MIN <= secrets[count].len; j++)
		gram_add(copy + j);
	if (secrets[count].len < RUN_MIN)
		atomic_store_explicit(&any_short, true, memory_order_relaxed);
	atomic_store_explicit(&nsecrets, count + 1, memory_order_release);
done:
	pthread_mutex_unlock(&secrets_lock);
	return rc;
}
