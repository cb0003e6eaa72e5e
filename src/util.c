/*
 * util: the small pieces every module leans on.  The byte buffer is the
 * one place memory grows, and it always has a cap when the bytes come from
 * the network (curl's Curl_dyn_init(s, toobig) idea): past the cap is an
 * error, never unbounded growth.  Clocks are split in two: the wall clock
 * (timestamps, cooldowns; replaceable by tests) and the monotonic clock
 * (latencies and deadlines; never replaced, never jumps).  The duration
 * parser is here because two modules read durations (upstream headers and
 * provider bodies) and they must agree on what a bare number means.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define RF_BUF_MIN 64

void
rf_buf_init(struct rf_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Make room for need bytes of content plus the NUL.  Geometric growth,
 * clamped to the cap (+1 for the NUL).  0, or -1 with b untouched. */
static int
buf_reserve(struct rf_buf *b, size_t need)
{
	size_t ncap;
	char *p;

	if (need + 1 <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : RF_BUF_MIN;
	while (ncap < need + 1) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need + 1;
			break;
		}
		ncap *= 2;
	}
	if (b->max && ncap > b->max + 1)
		ncap = b->max + 1;
	if ((p = realloc(b->data, ncap)) == NULL)
		return -1;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
rf_buf_append(struct rf_buf *b, const void *p, size_t n)
{
	if (n > SIZE_MAX - 1 - b->len)
		return -1;
	if (b->max && b->len + n > b->max)
		return -1;
	if (buf_reserve(b, b->len + n) == -1)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
rf_buf_puts(struct rf_buf *b, const char *s)
{
	return rf_buf_append(b, s, strlen(s));
}

int
rf_buf_printf(struct rf_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	char *big = NULL;
	int n, rc = -1;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	if ((size_t)n < sizeof(small)) {
		rc = rf_buf_append(b, small, (size_t)n);
		goto out;
	}
	/* Too long for the stack: format once more into a heap copy, so the
	 * buffer stays unchanged if the result does not fit under the cap. */
	if ((big = malloc((size_t)n + 1)) == NULL)
		goto out;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = rf_buf_append(b, big, (size_t)n);
out:
	free(big);
	return rc;
}

void
rf_buf_reset(struct rf_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
rf_buf_free(struct rf_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

const char *
rf_buf_str(const struct rf_buf *b)
{
	return b->data ? b->data : "";
}

/* Set only by tests, read by every thread: atomic so the read is clean. */
static _Atomic(rf_clock_fn) test_clock;

int64_t
rf_now_ms(void)
{
	rf_clock_fn fn = atomic_load(&test_clock);
	struct timespec ts;

	if (fn)
		return fn();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
rf_time_set_clock(rf_clock_fn fn)
{
	atomic_store(&test_clock, fn);
}

int64_t
rf_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
rf_time_iso(int64_t ms, char out[25])
{
	time_t sec;
	struct tm tm;
	int msec;
	char date[20];

	/* Floor division, so times before 1970 still get 0..999 ms. */
	sec = (time_t)(ms / 1000);
	msec = (int)(ms % 1000);
	if (msec < 0) {
		msec += 1000;
		sec -= 1;
	}
	if (gmtime_r(&sec, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
		snprintf(out, 25, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out, 25, "%s.%03dZ", date, msec);
}

void
rf_sleep_ms(long ms)
{
	struct timespec ts, rem;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
		ts = rem;
}

/* Last resort when the kernel gives no randomness: ids only need to be
 * unique, not secret, so mix the clocks, the pid and a counter (xorshift). */
static void
fallback_bytes(unsigned char *p, size_t n)
{
	static _Atomic uint64_t counter;
	uint64_t x;
	size_t i;

	x = (uint64_t)rf_now_ms() ^ ((uint64_t)rf_mono_ms() << 20) ^
	    ((uint64_t)getpid() << 40) ^ atomic_fetch_add(&counter, 1) *
	    0x9e3779b97f4a7c15ULL;
	x |= 1; /* xorshift never leaves 0 */
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
}

/* Fill p with n random bytes: getrandom(), else /dev/urandom, else (last
 * resort) fallback_bytes(). */
static void
random_bytes(unsigned char *p, size_t n)
{
	size_t got = 0;
	ssize_t r;
	int fd;

	while (got < n) {
		r = getrandom(p + got, n - got, 0);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		break;
	}
	if (got < n && (fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) != -1) {
		while (got < n && (r = read(fd, p + got, n - got)) != 0) {
			if (r > 0)
				got += (size_t)r;
			else if (errno != EINTR)
				break;
		}
		close(fd);
	}
	if (got < n)
		fallback_bytes(p + got, n - got);
}

void
rf_request_id(char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];
	size_t i;

	random_bytes(raw, sizeof(raw));
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0x0f];
	}
	out[32] = '\0';
}

bool
rf_request_id_valid(const char *s)
{
	size_t i;
	char c;

	if (s == NULL || *s == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 64)
			return false;
		c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* A continuation byte is 10xxxxxx; every other byte starts a code point. */
#define IS_CONT(c) (((unsigned char)(c) & 0xc0) == 0x80)

size_t
rf_utf8_len(const char *s, size_t n)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++)
		if (!IS_CONT(s[i]))
			count++;
	return count;
}

size_t
rf_utf8_prefix(const char *s, size_t n, size_t max)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++) {
		if (!IS_CONT(s[i])) {
			if (count == max)
				return i;
			count++;
		}
	}
	return n;
}

/* The largest duration accepted, in ms (1e9 seconds, about 31 years). */
#define RF_DURATION_MAX_MS 1e12

/*
 * One "<digits>[.<digits>][unit]" group, in ms; -1 when there is none.
 * *bare is set when the number has no unit: it is seconds and it is the
 * last group.  At most 12 integer digits; fraction digits past the ninth
 * are read and ignored.
 */
static double
duration_group(const char **pp, bool *bare)
{
	const char *p = *pp;
	double v = 0, scale = 1;
	int digits = 0;

	for (; isdigit((unsigned char)*p) && digits < 12; p++, digits++)
		v = v * 10 + (*p - '0');
	if (digits == 0 || isdigit((unsigned char)*p))
		return -1;
	if (p[0] == '.' && isdigit((unsigned char)p[1]))
		for (p++; isdigit((unsigned char)*p); p++)
			if (scale > 1e-9)
				v += (*p - '0') * (scale /= 10);
	*bare = false;
	if (p[0] == 'm' && p[1] == 's')
		p += 2;
	else if (*p == 'h')
		v *= 3600000.0, p++;
	else if (*p == 'm')
		v *= 60000.0, p++;
	else if (*p == 's')
		v *= 1000.0, p++;
	else if (isalpha((unsigned char)*p))
		return -1;
	else
		v *= 1000.0, *bare = true;
	*pp = p;
	return v;
}

int64_t
rf_duration_ms(const char *s, const char **end)
{
	double total = 0, v;
	bool bare = false;
	int groups = 0;

	while (s != NULL && *s == ' ')
		s++;
	while (s != NULL && !bare && (v = duration_group(&s, &bare)) >= 0) {
		total += v;
		groups++;
	}
	if (end != NULL)
		*end = s;
	if (groups == 0 || total > RF_DURATION_MAX_MS)
		return -1;
	return (int64_t)(total + 0.5);
}
