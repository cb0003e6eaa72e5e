/*
 * provider: the interface every upstream adapter implements.  Providers are
 * data: each wire format exports one const struct rf_adapter; the fallback
 * engine knows only this table.  Adapters never do I/O: they build requests
 * and read bodies, so they are tested against wire fixtures alone.
 * Prefix: rf_adapter_ / rf_result_ / rf_mock_.
 */
#ifndef RF_PROVIDER_H
#define RF_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "config.h"
#include "error.h"
#include "util.h"

/* One message of the conversation (borrowed strings). */
struct rf_msg {
	const char *role;    /* "system" | "user" | "assistant" */
	const char *content;
};

/* The normalised request every adapter translates. */
struct rf_prompt {
	const struct rf_msg *msgs; /* at least one; the last is "user" */
	size_t nmsgs;
	const char *system;        /* NULL when absent */
	int max_tokens;
	double temperature;
};

struct rf_usage {
	long prompt_tokens;     /* -1 when unknown */
	long completion_tokens; /* -1 when unknown */
};

/* What a successful upstream answer contained. */
struct rf_result {
	struct rf_buf text;      /* the answer (thought / reasoning excluded) */
	char model[128];         /* model reported upstream, "" if none */
	char finish_reason[32];  /* normalised: stop | length | content_filter | ... */
	struct rf_usage usage;
	bool safety_block;       /* text withheld or cut for safety */
	char safety_reason[96];  /* e.g. "PROHIBITED_CONTENT" (safe, short) */
};

void rf_result_init(struct rf_result *r);  /* usage -1, text capped 1 MiB */
void rf_result_reset(struct rf_result *r); /* for the next attempt */
void rf_result_free(struct rf_result *r);

/* Why an attempt failed (filled by adapters and the upstream module). */
struct rf_failure {
	enum rf_err code;        /* a provider_* code, malformed_response, content_filtered */
	char details[160];       /* technicalDetails: short and safe */
	char message[200];       /* readable message ("" = use the default) */
	int64_t retry_after_ms;  /* from the body (Gemini retryDelay), -1 none */
	bool auth;               /* auth failure: 10 minute cooldown */
};

void rf_failure_set(struct rf_failure *f, enum rf_err code, const char *details);

/* What one parsed stream event meant. */
enum rf_chunk {
	RF_CHUNK_DATA,      /* ok; delta may be empty (role-only, keep-alive) */
	RF_CHUNK_DONE,      /* [DONE]: the stream is complete */
	RF_CHUNK_ERROR,     /* an in-stream error; f is filled */
	RF_CHUNK_MALFORMED  /* not the provider's shape; skip and count */
};

struct rf_adapter {
	/* Build the POST: full URL, JSON body and headers (auth included;
	 * the caller frees *hdrs with curl_slist_free_all).  0 or -1. */
	int (*build)(const struct rf_provider_conf *pc, const struct rf_prompt *p,
	    bool stream, struct rf_buf *url, struct rf_buf *body,
	    struct curl_slist **hdrs);
	/* Read a 2xx non-streaming body into res.  Returns 0 (res filled; the
	 * text may be empty, a safety block sets res->safety_block) or -1
	 * (f filled: malformed_response, or an error object inside a 200). */
	int (*parse_response)(const char *body, size_t len, struct rf_result *res,
	    struct rf_failure *f);
	/* Read one SSE event (event name or NULL, data payload): new text goes
	 * to delta (appended), usage / model / finish reason into acc. */
	enum rf_chunk (*parse_chunk)(const char *event, const char *data,
	    size_t len, struct rf_result *acc, struct rf_buf *delta,
	    struct rf_failure *f);
	/* Classify a non-2xx answer: code, details, auth, a retry delay found in
	 * the body, and content-policy 400s as content_filtered. */
	void (*classify_error)(long status, const char *body, size_t len,
	    struct rf_failure *f);
};

extern const struct rf_adapter rf_adapter_openai;
extern const struct rf_adapter rf_adapter_gemini;
/* NULL for RF_WIRE_MOCK. */
const struct rf_adapter *rf_adapter_for(enum rf_wire w);

/* The built-in mock (SPEC section 9): deterministic text from the prompt,
 * model "relayforge-mock-1", token counts.  Fills res; never fails. */
void rf_mock_answer(const struct rf_prompt *p, struct rf_result *res);
/* The next word-sized token of text starting at *pos (a word plus the
 * spaces after it); returns its length, 0 at the end.  Advances *pos. */
size_t rf_mock_next_token(const char *text, size_t *pos);

/* Helpers shared by the adapters (provider.c).  Not for other modules. */
struct json_object;
/* Largest JSON nesting an upstream body may have. */
#define RF_ADAPTER_JSON_DEPTH 64
/* Parse len bytes as one JSON value (depth-bounded; only whitespace may
 * follow it).  Returns the root, which the caller puts, or NULL. */
struct json_object *rf_adapter_json(const char *s, size_t len);
/* Borrowed member at a path like "choices[0].message.content", or NULL when
 * any step is missing or has the wrong type. */
struct json_object *rf_adapter_get(struct json_object *o, const char *path);
/* The string at path, or NULL when missing or not a string. */
const char *rf_adapter_str(struct json_object *o, const char *path);
/* The integer at path into *out; false when missing or not an integer. */
bool rf_adapter_long(struct json_object *o, const char *path, long *out);
/* Copy src (NULL = "") keeping only printable ASCII, truncated to dstlen. */
void rf_adapter_copy(char *dst, size_t dstlen, const char *src);
/* true for a short error code fit for technicalDetails: 1..48 of
 * [A-Za-z0-9_.-]. */
bool rf_adapter_safe_code(const char *s);
/* true when s contains word, ignoring ASCII case (NULL s: false). */
bool rf_adapter_has(const char *s, const char *word);
/* rf_failure_set with details "HTTP <status> from upstream provider" plus
 * ", code <code>" when code is safe. */
void rf_adapter_http_failure(struct rf_failure *f, enum rf_err e, long status,
    const char *code);
/* The readable message of a content-policy refusal, with the provider's own
 * message appended when it is short and printable. */
void rf_adapter_policy_message(struct rf_failure *f, const char *upstream_msg);
/* "34.4s", "2m39.5s", "120ms", "1h2m" to milliseconds; -1 when not a
 * duration.  *end (may be NULL) gets the first byte not consumed. */
int64_t rf_adapter_duration(const char *s, const char **end);
/* Append "name: value" to *l (value without CR/LF).  0 or -1 (*l kept). */
int rf_adapter_header(struct curl_slist **l, const char *name,
    const char *value);
/* Serialise root compactly into body (appended).  0 or -1 (cap, memory). */
int rf_adapter_json_out(struct json_object *root, struct rf_buf *body);
/* A JSON number that prints as written by a person (0.7, not
 * 0.69999999999999996), independent of the locale. */
struct json_object *rf_adapter_number(double v);
/* The error code of a bare HTTP status: 401/403 auth, 429 rate limited,
 * 408/504 timeout, 5xx/498/499 unavailable, other 4xx bad request. */
enum rf_err rf_adapter_status_err(long status);

#endif
