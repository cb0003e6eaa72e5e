/*
 * fuzz_scrub: libFuzzer target for the scrubber of upstream strings
 * (scrub.c).  Beyond crashes it checks what the rest of the program relies
 * on:
 *   - rf_scrub_utf8 leaves well-formed UTF-8 (by an independent decoder
 *     written here from the code point ranges), changes nothing that was
 *     already valid, and is idempotent;
 *   - rf_scrub_text stays inside its buffer, leaves valid UTF-8 and no run
 *     of a registered secret;
 *   - an identifier that survives rf_scrub_model / rf_scrub_code has its
 *     shape and no secret; a finish reason is one of the known words.
 *
 * Build and run: make fuzz (FUZZ_TARGETS), or by hand as fuzz_openai.c
 * says with tests/fuzz/fuzz_scrub.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

static const char *const secrets[] = { "gsk_fuzzSECRET0123456789",
    "tok42", "rf-admin-token-abcdefgh", NULL };

/* Independent of scrub.c: decode each sequence to its code point and
 * check the ranges (no overlong form, no surrogate, <= U+10FFFF). */
static bool
ref_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], len, cp;
		static const unsigned min[] = { 0, 0, 0x80, 0x800, 0x10000 };

		if (c < 0x80) {
			i++;
			continue;
		}
		len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		if (len == 0 || c >= 0xf8 || i + len > n)
			return false;
		cp = c & (0x7f >> len);
		for (unsigned k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min[len] || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static void
check_utf8(const uint8_t *d, size_t n)
{
	struct rf_buf b, again;
	bool valid = ref_valid(d, n);

	if ((rf_scrub_utf8_valid((const char *)d, n) == n) != valid)
		abort();
	rf_buf_init(&b, 0);
	if (rf_buf_append(&b, d, n) != 0 || rf_scrub_utf8(&b) != 0)
		abort();
	if (!ref_valid((const unsigned char *)rf_buf_str(&b), b.len))
		abort();
	if (valid && (b.len != n || memcmp(rf_buf_str(&b), d, n) != 0))
		abort();
	rf_buf_init(&again, 0);
	if (rf_buf_append(&again, rf_buf_str(&b), b.len) != 0 ||
	    rf_scrub_utf8(&again) != 0 || again.len != b.len ||
	    memcmp(rf_buf_str(&again), rf_buf_str(&b), b.len) != 0)
		abort();
	rf_buf_free(&again);
	rf_buf_free(&b);
}

static void
check_text(const uint8_t *d, size_t n)
{
	char buf[RF_SCRUB_TEXT_MAX + 1];
	size_t cap = n > 0 ? 1 + d[0] * 4u : 1, len;

	if (cap > sizeof(buf) - 1)
		cap = sizeof(buf) - 1;
	memset(buf, 'G', sizeof(buf));
	memcpy(buf, d, n < cap ? n : cap);
	if (n < cap)
		buf[n] = '\0';
	rf_scrub_text(buf, cap);
	len = strnlen(buf, cap);
	if (len >= cap || buf[cap] != 'G')
		abort();
	if (!ref_valid((const unsigned char *)buf, len) ||
	    rf_scrub_has_secret(buf, len))
		abort();
}

static void
check_ids(const uint8_t *d, size_t n)
{
	char id[RF_SCRUB_MODEL_MAX + 2], fr[32];
	size_t k = n < sizeof(id) - 1 ? n : sizeof(id) - 1;

	memcpy(id, d, k);
	id[k] = '\0';
	if (rf_scrub_model(id) && id[0] != '\0' &&
	    (strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._:/@+-") != strlen(id) ||
	    rf_scrub_has_secret(id, strlen(id))))
		abort();
	memcpy(id, d, k);
	id[k] = '\0';
	if (rf_scrub_code(id) && id[0] != '\0' && !rf_scrub_code_ok(id))
		abort();
	k = n < sizeof(fr) - 1 ? n : sizeof(fr) - 1;
	memcpy(fr, d, k);
	fr[k] = '\0';
	rf_scrub_finish(fr, sizeof(fr));
	if (fr[0] != '\0' && strcmp(fr, "stop") != 0 &&
	    strcmp(fr, "length") != 0 && strcmp(fr, "content_filter") != 0 &&
	    strcmp(fr, "tool_calls") != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static bool registered;

	if (!registered) {
		for (int i = 0; secrets[i] != NULL; i++)
			if (rf_scrub_add_secret(secrets[i]) != 0)
				abort();
		registered = true;
	}
	check_utf8(d, n);
	check_text(d, n);
	check_ids(d, n);
	return 0;
}
