/*
 * scrub: what an upstream sends, made fit to pass on.  An upstream can echo
 * the key it was sent (a proxy, a debug endpoint, a misconfigured
 * RELAYFORGE_<P>_URL) into any string of its answer, and its bytes need not
 * be UTF-8.  Every upstream-derived string passes through here where it
 * enters the engine's result (chain.c, through rf_result_scrub and
 * rf_failure_scrub of provider.h), before it can reach a response, an SSE
 * event, a log row or stderr:
 *
 *   - secrets: the keys and tokens registered at start are found wherever
 *     RF_SCRUB_RUN_MIN or more of their consecutive bytes appear (a key cut
 *     short is still a key), or, for a secret shorter than that, where it
 *     appears whole.  log.c uses the same matcher for every stderr line.
 *   - free text (a failure's message and technicalDetails): every secret
 *     run becomes "[redacted]", then the text is made valid UTF-8.
 *   - identifiers (model id, finish reason, error code, safety reason) are
 *     kept only in their expected shape and length and without a secret
 *     run; anything else becomes a neutral value.
 *   - the answer text is the product and is not redacted: it is only made
 *     valid UTF-8 (each maximal invalid subpart becomes U+FFFD, as Unicode
 *     recommends), so json-c never writes raw invalid bytes to a client.
 *
 * docs/security.md ("Upstream strings") says what this defends and what it
 * cannot.  Prefix: rf_scrub_.
 */
#ifndef RF_SCRUB_H
#define RF_SCRUB_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Consecutive bytes of a secret that give it away. */
#define RF_SCRUB_RUN_MIN 8
/* What a secret run is replaced by. */
#define RF_SCRUB_REDACTED "[redacted]"

/* Register a secret (an API key, a token).  The string is copied and kept
 * for the life of the process; registering the same one twice is
 * harmless.  NULL or "" is ignored (0).  Safe from any thread, and
 * lock-free for the readers below.  Returns 0, or -1 when
 * RF_SCRUB_SECRETS_MAX are already registered or memory ran out (nothing
 * registered). */
#define RF_SCRUB_SECRETS_MAX 32
int rf_scrub_add_secret(const char *s);

/* Length of the longest secret run starting at s[0..n): at least
 * RF_SCRUB_RUN_MIN bytes of a secret, or a whole shorter secret; 0 when
 * none starts there. */
size_t rf_scrub_secret_at(const char *s, size_t n);
/* true when a secret run starts anywhere in s[0..n). */
bool rf_scrub_has_secret(const char *s, size_t n);

/* Free text, in place.  s is a string in a buffer of cap bytes (read up to
 * its NUL or cap bytes); it becomes that text with every secret run
 * replaced by "[redacted]", made valid UTF-8, and cut to fit cap bytes
 * with its NUL (at most RF_SCRUB_TEXT_MAX are used) between characters. */
#define RF_SCRUB_TEXT_MAX 1024
void rf_scrub_text(char *s, size_t cap);

/* A model id: 1..RF_SCRUB_MODEL_MAX of [A-Za-z0-9._:/@+-] without a secret
 * run.  In place: "" stays "", anything else not of that shape becomes ""
 * (unknown) and false is returned. */
#define RF_SCRUB_MODEL_MAX 128
bool rf_scrub_model(char *id);

/* A finish reason, in place: "" stays "" (none yet); stop, length,
 * content_filter and tool_calls stay; function_call becomes tool_calls;
 * anything else becomes "stop" (the only other finish reason an OpenAI
 * client expects: docs/openai.md).  cap >= 15. */
void rf_scrub_finish(char *fr, size_t cap);

/* An error code (and a safety reason): 1..RF_SCRUB_CODE_MAX of
 * [A-Za-z0-9_.-] without a secret run. */
#define RF_SCRUB_CODE_MAX 48
bool rf_scrub_code_ok(const char *s);
/* In place: "" stays "", a code that is not ok becomes "" and false is
 * returned. */
bool rf_scrub_code(char *s);

/* Length of the longest prefix of s[0..n) that is well-formed UTF-8 (no
 * overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 * sequence). */
size_t rf_scrub_utf8_valid(const char *s, size_t n);
/* Make b well-formed UTF-8 in place: each maximal invalid subpart becomes
 * U+FFFD.  Returns 0, or -1 when the repaired text would pass b's cap or
 * memory ran out (b unchanged). */
int rf_scrub_utf8(struct rf_buf *b);

#endif
