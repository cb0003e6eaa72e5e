/*
 * provider_mock: the built-in last tier (SPEC section 9), rf_provider_mock
 * with its in-process wire rf_ops_mock (the answer and next_token slots of
 * struct rf_provider_ops; the network slots stay NULL).  It answers
 * deterministically from the prompt (quoting the question, shortened at a
 * word boundary with an ellipsis), says plainly that this is the demo
 * path, and reports token counts, so the whole product (streams, logs,
 * charts) works with no key configured.  No I/O: the streaming pace is the
 * chain's business; this file only cuts the text into word tokens.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "provider.h"

#define MOCK_QUOTE_CHARS 60
#define MOCK_ELLIPSIS "\xe2\x80\xa6" /* U+2026, marks a shortened quote */
/* The quote's characters (up to 4 bytes each), the ellipsis, the NUL. */
#define MOCK_QUOTE_BYTES (MOCK_QUOTE_CHARS * 4 + sizeof(MOCK_ELLIPSIS))

/* The last user message (the question being asked). */
static const char *
last_user(const struct rf_prompt *p)
{
	size_t i;

	for (i = p->nmsgs; i > 0; i--)
		if (p->msgs[i - 1].role != NULL &&
		    strcmp(p->msgs[i - 1].role, "user") == 0 &&
		    p->msgs[i - 1].content != NULL)
			return p->msgs[i - 1].content;
	return "";
}

/* Bytes of the character at s: a lead byte and its continuations. */
static size_t
char_len(const char *s)
{
	size_t n = 1;

	while (n < 4 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n++;
	return n;
}

/* A blank for the quote: whitespace and control characters. */
static bool
blank(const char *s)
{
	return (unsigned char)*s <= 0x20 || *s == 0x7f;
}

/* A longer prompt is cut back to the end of its last whole word (a word
 * cut in half reads like a bug), without a separator left dangling, and
 * marked with an ellipsis.  o is the length of out so far, cut the offset
 * of its last word boundary (0: none), mid_word whether the cut fell inside
 * a word. */
static size_t
mark_cut(char *out, size_t o, size_t cut, bool mid_word)
{
	if (mid_word && cut > 0)
		o = cut;
	while (o > 1 && strchr(",;:", out[o - 1]) != NULL)
		o--;
	memcpy(out + o, MOCK_ELLIPSIS, sizeof(MOCK_ELLIPSIS) - 1);
	return o + sizeof(MOCK_ELLIPSIS) - 1;
}

/* At most MOCK_QUOTE_CHARS characters of s with every run of whitespace
 * or control characters collapsed to one space, trimmed, never cutting a
 * UTF-8 sequence or (unless one word is longer than the quote) a word in
 * half.  outlen must be at least MOCK_QUOTE_BYTES. */
static void
quote_prompt(const char *s, char *out, size_t outlen)
{
	size_t o = 0, chars = 0, cut = 0, n, room;
	bool space = false, more = false;

	/* Room for the text; the ellipsis and the NUL always fit after it. */
	room = outlen - sizeof(MOCK_ELLIPSIS);
	for (; *s != '\0'; s += n) {
		n = char_len(s);
		if (blank(s)) {
			space = o > 0;
			continue;
		}
		if (chars + (space ? 1 : 0) + 1 > MOCK_QUOTE_CHARS ||
		    o + (space ? 1 : 0) + n > room) {
			more = true;
			break;
		}
		if (space) {
			cut = o;
			out[o++] = ' ';
			chars++;
			space = false;
		}
		memcpy(out + o, s, n);
		o += n;
		chars++;
	}
	if (more)
		o = mark_cut(out, o, cut, !space);
	out[o] = '\0';
}

static long
count_words(const char *s)
{
	long words = 0;
	bool in = false;

	for (; *s != '\0'; s++) {
		if (isspace((unsigned char)*s))
			in = false;
		else if (!in)
			in = true, words++;
	}
	return words;
}

/* Characters of everything the model would read. */
static long
prompt_chars(const struct rf_prompt *p)
{
	long n = 0;
	size_t i;

	if (p->system != NULL)
		n += (long)rf_utf8_len(p->system, strlen(p->system));
	for (i = 0; i < p->nmsgs; i++)
		if (p->msgs[i].content != NULL)
			n += (long)rf_utf8_len(p->msgs[i].content,
			    strlen(p->msgs[i].content));
	return n;
}

static void
mock_answer(const struct rf_prompt *p, struct rf_result *res)
{
	char quote[MOCK_QUOTE_BYTES];
	long chars = prompt_chars(p);

	quote_prompt(last_user(p), quote, sizeof(quote));
	rf_buf_reset(&res->text);
	rf_buf_printf(&res->text,
	    "This is the RelayForge demo path: the built-in mock answered "
	    "because no upstream provider key is configured or no provider "
	    "could serve the request. You asked about \"%s\". Configure "
	    "GROQ_API_KEY or another provider key for real answers.", quote);
	snprintf(res->model, sizeof(res->model), "%s", RF_MOCK_MODEL);
	snprintf(res->finish_reason, sizeof(res->finish_reason), "stop");
	res->usage.prompt_tokens = chars > 0 ? (chars + 3) / 4 : 1;
	res->usage.completion_tokens = count_words(rf_buf_str(&res->text));
	res->safety_block = false;
	res->safety_reason[0] = '\0';
}

/* A word plus the spaces after it (leading blanks ride with the first). */
static size_t
mock_next_token(const char *text, size_t *pos)
{
	size_t start = *pos, i = start;

	if (text == NULL)
		return 0;
	/* Leading blanks (only at the very start) ride with the first word. */
	while (text[i] != '\0' && isspace((unsigned char)text[i]))
		i++;
	while (text[i] != '\0' && !isspace((unsigned char)text[i]))
		i++;
	while (text[i] != '\0' && isspace((unsigned char)text[i]))
		i++;
	*pos = i;
	return i - start;
}

/* ---- the wire and its provider ---- */

const struct rf_provider_ops rf_ops_mock = {
	.answer = mock_answer,
	.next_token = mock_next_token,
};
