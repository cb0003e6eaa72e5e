/*
 * util: the small pieces every module needs -- a growable byte buffer with a
 * hard cap (everything from the network is bounded), clocks, ISO-8601 time,
 * request ids, UTF-8 counting and the one duration parser.
 * Prefix: rf_buf_ / rf_time_ / rf_.
 */
#ifndef RF_UTIL_H
#define RF_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer, always NUL-terminated when data != NULL.
 * max is the largest len allowed (0 = no cap).  Zero-initialised is valid
 * (no cap).  Owner frees with rf_buf_free(). */
struct rf_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void rf_buf_init(struct rf_buf *b, size_t max);
/* Append n bytes.  Returns 0, or -1 when the cap would be passed or memory
 * ran out; on -1 the buffer is unchanged. */
int rf_buf_append(struct rf_buf *b, const void *p, size_t n);
int rf_buf_puts(struct rf_buf *b, const char *s);
int rf_buf_printf(struct rf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Keep the allocation, drop the contents. */
void rf_buf_reset(struct rf_buf *b);
void rf_buf_free(struct rf_buf *b);
/* "" when empty, never NULL. */
const char *rf_buf_str(const struct rf_buf *b);

/* Wall-clock milliseconds since the epoch.  Tests may replace the clock. */
typedef int64_t (*rf_clock_fn)(void);
int64_t rf_now_ms(void);
void rf_time_set_clock(rf_clock_fn fn); /* NULL restores the real clock */
/* Monotonic milliseconds (for latencies and deadlines); never replaced. */
int64_t rf_mono_ms(void);
/* "2026-01-01T12:00:00.000Z" into out (at least 25 bytes). */
void rf_time_iso(int64_t ms, char out[25]);
/* Sleep ms milliseconds (restarts on EINTR). */
void rf_sleep_ms(long ms);

/* A fresh random request id (32 hex chars + NUL). */
void rf_request_id(char out[33]);
/* true when s is 1..64 chars of [A-Za-z0-9._-] (a client's X-Request-Id). */
bool rf_request_id_valid(const char *s);

/* Count UTF-8 code points (what "characters" means for limits). */
size_t rf_utf8_len(const char *s, size_t n);
/* Byte length of the first max code points of s. */
size_t rf_utf8_prefix(const char *s, size_t n, size_t max);

/*
 * The one duration parser (upstream rate-limit headers, Groq's "try again
 * in ...", Gemini's retryDelay).  A duration is one or more groups
 * "<digits>[.<digits>]<unit>" written together, unit h, m, s or ms:
 * "2m59.56s", "7.66s", "120ms", "1h2m".  Leading spaces are skipped.
 *
 * The rule for a bare number: a number without a unit is SECONDS ("30" is
 * 30000 ms, "33011.38" is 33011380 ms), as Retry-After and the
 * x-ratelimit-reset-* headers of Cerebras and SambaNova write it; it ends
 * the duration ("1m30" is 90 s).  A caller that wants a unit (Gemini's
 * retryDelay is documented as "<n>s") checks that the last byte consumed
 * is a letter.
 *
 * Parsed by hand: no exponents, hex, signs or locale decimal commas.  A
 * number run straight into another letter ("1e9s", "5x") is not a duration.
 * Returns milliseconds (rounded), or -1 when s (NULL allowed) does not
 * start with a duration or it passes 1e9 seconds.  *end (may be NULL) gets
 * the first byte not consumed; the caller decides whether trailing text is
 * allowed.
 */
int64_t rf_duration_ms(const char *s, const char **end);

#endif
