/*
 * scrub: the secret matcher (shared with log.c), the free-text redactor,
 * the identifier shapes and the UTF-8 repair that every upstream-derived
 * string goes through (scrub.h says where).
 *
 * The secret table is append-only: an adder fills a slot (and the filter
 * of its 8-byte pieces) under a mutex and then publishes it by raising the
 * count (release); readers read the count (acquire) and the slots below it
 * without a lock.  The filter keeps a scan near 2 us per 1 KiB with a
 * handful of keys registered, where scanning every key at every position
 * cost ten times that.
 *
 * UTF-8 follows Table 3-7 of the Unicode standard (well-formed byte
 * sequences): overlong forms (C0 80, E0 80 80, F0 80 80 80), UTF-16
 * surrogates (ED A0 80 .. ED BF BF), code points above U+10FFFF (F4 90 ..,
 * F5 .. FF) and truncated sequences are invalid; each maximal subpart of an
 * invalid sequence becomes one U+FFFD.
 */
#include "scrub.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

struct secret {
	char *s;
	size_t len;
};

static struct secret secrets[RF_SCRUB_SECRETS_MAX];
static atomic_size_t nsecrets;
static atomic_bool any_short;  /* a secret shorter than RUN_MIN exists */
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;

/* A filter of every RUN_MIN-byte piece of every secret (2^GRAM_BITS bits,
 * 8 KiB): most positions are cleared by one lookup instead of a scan of
 * each secret. */
#define RUN_MIN RF_SCRUB_RUN_MIN
#define GRAM_BITS 16
static atomic_uint_least64_t grams[(1u << GRAM_BITS) / 64];

/* ---- the secret matcher ---------------------------------------------- */

/* Length of the longest run at s[0..n) that is a piece of sec (at least
 * RUN_MIN bytes, or the whole secret when it is shorter); 0 when none. */
static size_t
secret_run(const struct secret *sec, const char *s, size_t n)
{
	size_t need = sec->len < RUN_MIN ? sec->len : RUN_MIN, best = 0;

	if (n < need)
		return 0;
	if (sec->len < RUN_MIN)
		return memcmp(s, sec->s, need) == 0 ? need : 0;
	/* Each place the first RUN_MIN bytes occur in the secret, extended as
	 * far as s and secret agree. */
	for (const char *at = sec->s, *end = sec->s + sec->len;
	    (at = memchr(at, s[0], (size_t)(end - at))) != NULL; at++) {
		size_t k;

		if ((size_t)(end - at) < need || memcmp(at, s, need) != 0)
			continue;
		k = need;
		while (k < n && at + k < end && s[k] == at[k])
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

size_t
rf_scrub_secret_at(const char *s, size_t n)
{
	size_t count = atomic_load_explicit(&nsecrets, memory_order_acquire);
	bool shorts = atomic_load_explicit(&any_short, memory_order_relaxed);
	bool maybe;
	size_t run = 0;

	if (count == 0 || n == 0)
		return 0;
	maybe = n >= RUN_MIN && gram_maybe(s);
	if (!maybe && !shorts)
		return 0;
	for (size_t i = 0; i < count; i++) {
		size_t r;

		if (secrets[i].len >= RUN_MIN && !maybe)
			continue;
		if ((r = secret_run(&secrets[i], s, n)) > run)
			run = r;
	}
	return run;
}

bool
rf_scrub_has_secret(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rf_scrub_secret_at(s + i, n - i) > 0)
			return true;
	return false;
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
rf_scrub_add_secret(const char *s)
{
	size_t count, len;
	char *copy = NULL;
	int rc = 0;

	if (s == NULL || *s == '\0')
		return 0;
	pthread_mutex_lock(&secrets_lock);
	count = atomic_load_explicit(&nsecrets, memory_order_relaxed);
	if (secret_known(s, count))
		goto done;
	if (count == RF_SCRUB_SECRETS_MAX || (copy = strdup(s)) == NULL) {
		rc = -1;
		goto done;
	}
	len = strlen(copy);
	secrets[count] = (struct secret){ copy, len };
	for (size_t j = 0; j + RUN_MIN <= len; j++)
		gram_add(copy + j);
	if (len < RUN_MIN)
		atomic_store_explicit(&any_short, true, memory_order_relaxed);
	atomic_store_explicit(&nsecrets, count + 1, memory_order_release);
done:
	pthread_mutex_unlock(&secrets_lock);
	return rc;
}

/* ---- UTF-8 ----------------------------------------------------------- */

/* The sequence at p[0..n) (n > 0): its length when well-formed, else
 * minus the length of its maximal invalid subpart (Table 3-7). */
static int
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	int need;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;      /* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f;      /* surrogates U+D800..U+DFFF */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;      /* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f;      /* above U+10FFFF */
	} else {
		return -1;              /* 80..C1 (C0/C1: overlong), F5..FF */
	}
	for (int k = 1; k <= need; k++) {
		if ((size_t)k >= n || p[k] < lo || p[k] > hi)
			return -k;
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

size_t
rf_scrub_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	int k;

	while (i < n) {
		if (p[i] < 0x80) {      /* the common case, byte by byte */
			i++;
			continue;
		}
		if ((k = utf8_seq(p + i, n - i)) < 0)
			break;
		i += (size_t)k;
	}
	return i;
}

/* Append the repair of s[0..n) to out; 0 or -1 (out's cap). */
static int
utf8_repair(const char *s, size_t n, struct rf_buf *out)
{
	size_t i = 0;

	while (i < n) {
		size_t v = rf_scrub_utf8_valid(s + i, n - i);
		int k;

		if (rf_buf_append(out, s + i, v) != 0)
			return -1;
		if ((i += v) == n)
			break;
		k = utf8_seq((const unsigned char *)s + i, n - i);
		if (rf_buf_append(out, REPLACEMENT, 3) != 0)
			return -1;
		i += (size_t)-k;
	}
	return 0;
}

int
rf_scrub_utf8(struct rf_buf *b)
{
	struct rf_buf fixed;
	size_t v;

	if (b->data == NULL || (v = rf_scrub_utf8_valid(b->data, b->len)) ==
	    b->len)
		return 0;
	rf_buf_init(&fixed, b->max);
	if (utf8_repair(b->data, b->len, &fixed) != 0) {
		rf_buf_free(&fixed);
		return -1;
	}
	rf_buf_free(b);
	*b = fixed;
	return 0;
}

/* ---- free text --------------------------------------------------------- */

/* Copy s[0..n) into out[0..lim), each secret run replaced; returns the
 * length written (a replacement that does not fit is cut). */
static size_t
redact(const char *s, size_t n, char *out, size_t lim)
{
	size_t i = 0, o = 0;

	while (i < n && o < lim) {
		size_t run = rf_scrub_secret_at(s + i, n - i);

		if (run > 0) {
			size_t r = sizeof(RF_SCRUB_REDACTED) - 1;

			if (r > lim - o)
				r = lim - o;
			memcpy(out + o, RF_SCRUB_REDACTED, r);
			o += r;
			i += run;
		} else {
			out[o++] = s[i++];
		}
	}
	return o;
}

void
rf_scrub_text(char *s, size_t cap)
{
	char red[RF_SCRUB_TEXT_MAX];
	const unsigned char *p = (const unsigned char *)red;
	size_t lim, n, i = 0, o = 0;

	if (cap == 0)
		return;
	lim = (cap < sizeof(red) ? cap : sizeof(red)) - 1;
	n = redact(s, strnlen(s, cap), red, lim);
	/* Whole characters only: a repair that does not fit ends the text. */
	while (i < n) {
		int k = utf8_seq(p + i, n - i);
		const char *put = k > 0 ? red + i : REPLACEMENT;
		size_t len = k > 0 ? (size_t)k : 3;

		if (len > lim - o)
			break;
		memcpy(s + o, put, len);
		o += len;
		i += k > 0 ? (size_t)k : (size_t)-k;
	}
	s[o] = '\0';
}

/* ---- identifiers ------------------------------------------------------- */

static bool
shaped(const char *s, size_t max, const char *chars)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && strspn(s, chars) == n &&
	    !rf_scrub_has_secret(s, n);
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

bool
rf_scrub_model(char *id)
{
	if (id[0] == '\0' || shaped(id, RF_SCRUB_MODEL_MAX, ALNUM "._:/@+-"))
		return true;
	id[0] = '\0';
	return false;
}

void
rf_scrub_finish(char *fr, size_t cap)
{
	static const char *const known[] = { "stop", "length",
	    "content_filter", "tool_calls", NULL };

	if (fr[0] == '\0')
		return;
	for (size_t i = 0; known[i] != NULL; i++)
		if (strcmp(fr, known[i]) == 0)
			return;
	snprintf(fr, cap, "%s", strcmp(fr, "function_call") == 0 ?
	    "tool_calls" : "stop");
}

bool
rf_scrub_code_ok(const char *s)
{
	return s != NULL && shaped(s, RF_SCRUB_CODE_MAX, ALNUM "_.-");
}

bool
rf_scrub_code(char *s)
{
	if (s[0] == '\0' || rf_scrub_code_ok(s))
		return true;
	s[0] = '\0';
	return false;
}
