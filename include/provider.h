/*
 * provider: providers are data.  Each provider is one const struct
 * rf_provider (its id, names, defaults, quirks and flags) pointing at the
 * ops table of the wire it speaks; the array of them, rf_providers[] in
 * catalog.c, is the catalog, and a pid is an index into it.  The fallback
 * engine knows only this table.  Adapters never do I/O: they fill a plain request
 * (struct rf_up_req: URL, body, header strings) and read bodies from
 * memory, so they are tested against wire fixtures alone; only upstream.c
 * speaks HTTP.
 *
 * Where things live: provider_openai.c (the OpenAI-compatible wire
 * that Groq, SambaNova, Cerebras and OpenRouter speak), provider_gemini.c
 * (Gemini's wire), provider_mock.c (the built-in demo wire, answered
 * in-process), catalog.c (rf_providers[]: every provider as one entry),
 * provider.c (the records and helpers the adapters share).  docs/providers.md says how to add a provider.
 * Prefix: rf_provider_ / rf_ops_ / rf_result_ / rf_failure_ / rf_adapter_.
 */
#ifndef RF_PROVIDER_H
#define RF_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "upstream.h"
#include "util.h"

/* One message of the conversation (borrowed strings). */
struct rf_msg {
	const char *role;    /* "system" | "user" | "assistant" */
	const char *content;
};

struct json_object;

/* What a request of the OpenAI surface (/v1) asks to be passed on as
 * given, beyond the normalised prompt.  The JSON is borrowed from the
 * parsed request, already validated by the contract. */
struct rf_oai_params {
	struct json_object *messages; /* the messages array: roles system,
	                               * developer, user, assistant, tool;
	                               * string or part-array content;
	                               * assistant tool_calls, tool_call_id */
	struct json_object *fields;   /* an object with only the fields the
	                               * client set among tools, tool_choice,
	                               * parallel_tool_calls, response_format,
	                               * stop, seed, top_p, presence_penalty,
	                               * frequency_penalty, user */
	bool completion_tokens;       /* the client named max_completion_tokens
	                               * (max_tokens otherwise) */
};

/* The normalised request every adapter translates. */
struct rf_prompt {
	const struct rf_msg *msgs; /* at least one; the last is "user" */
	size_t nmsgs;
	const char *system;        /* NULL when absent */
	int max_tokens;
	double temperature;
	const struct rf_oai_params *oai; /* /v1 requests; NULL for /api/v1 */
	const char *model;         /* this tier's upstream model for this
	                            * request; NULL = the configured one */
};

/* build's answer when the wire cannot express the request (the tier is
 * skipped with reason "unsupported", never sent a different request). */
#define RF_BUILD_UNSUPPORTED (-2)

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
	struct rf_buf tool_calls;/* the answer's tool calls as the JSON text of
	                          * an OpenAI "tool_calls" array; empty: none.
	                          * Chat only: a stream's calls leave as
	                          * deltas (parse_chunk's tools) */
	int ntool_calls;         /* calls in tool_calls (chat), or begun so far
	                          * (streams: the index the next new call of a
	                          * wire without indexes takes) */
};

void rf_result_init(struct rf_result *r);  /* usage -1, text capped 1 MiB */
void rf_result_reset(struct rf_result *r); /* for the next attempt */
void rf_result_free(struct rf_result *r);
/* r's tool calls as one OpenAI tool_calls delta array (each call whole,
 * with its index) appended to out, for a stream of an answer made whole
 * (the mock's).  0, or -1 (not an array, cap, memory; out unchanged). */
int rf_result_tool_deltas(const struct rf_result *r, struct rf_buf *out);
/* Where an adapter's result enters the engine (scrub.h): model and safety
 * reason kept only as identifiers without a secret (else ""), the finish
 * reason mapped to the known set.  The text is not touched.  false when
 * the model or the safety reason was rejected. */
bool rf_result_scrub(struct rf_result *r);

/* Why an attempt failed (filled by adapters and the upstream module). */
struct rf_failure {
	enum rf_err code;        /* a provider_* code, malformed_response, content_filtered */
	char details[160];       /* technicalDetails: short and safe */
	char message[200];       /* readable message ("" = use the default) */
	int64_t retry_after_ms;  /* from the body (Gemini retryDelay), -1 none */
	bool auth;               /* auth failure: 10 minute cooldown */
};

void rf_failure_set(struct rf_failure *f, enum rf_err code, const char *details);
/* Where a failure enters the engine: details and message with every
 * secret run redacted, valid UTF-8 (scrub.h). */
void rf_failure_scrub(struct rf_failure *f);

/* What one parsed stream event meant. */
enum rf_chunk {
	RF_CHUNK_DATA,      /* ok; delta may be empty (role-only, keep-alive) */
	RF_CHUNK_DONE,      /* [DONE]: the stream is complete */
	RF_CHUNK_ERROR,     /* an in-stream error; f is filled */
	RF_CHUNK_MALFORMED  /* not the provider's shape; skip and count */
};

/*
 * What a wire implements (lighttpd's struct plugin shape: a table of
 * function pointers filled with designated initialisers).  A network wire
 * fills the first four slots and leaves answer / next_token NULL; an
 * in-process provider (the mock) fills answer / next_token and leaves the
 * network slots NULL.  The engine tells them apart by answer != NULL.
 */
struct rf_provider_ops {
	/* Network: fill rq (reset first) with the POST for pc: the full URL,
	 * the JSON body and the header lines, auth included.  Returns 0,
	 * RF_BUILD_UNSUPPORTED (the wire cannot express p: never a different
	 * request) or -1 (a header value with CR/LF, a cap, memory), both with
	 * rq reset.  The caller owns rq (rf_up_req_free wipes the key from
	 * it). */
	int (*build)(const struct rf_provider_conf *pc, const struct rf_prompt *p,
	    bool stream, struct rf_up_req *rq);
	/* Network: read a 2xx non-streaming body into res.  Returns 0 (res
	 * filled; the text may be empty, a safety block sets
	 * res->safety_block) or -1 (f filled: malformed_response, or an error
	 * object inside a 200). */
	int (*parse_response)(const char *body, size_t len, struct rf_result *res,
	    struct rf_failure *f);
	/* Network: read one SSE event (event name or NULL, data payload): new
	 * text goes to delta (appended), the event's tool calls to tools (the
	 * JSON text of one OpenAI tool_calls delta array, every element with
	 * its index; left as it was when there are none), usage / model /
	 * finish reason / ntool_calls into acc.  A MALFORMED chunk changes
	 * none of them. */
	enum rf_chunk (*parse_chunk)(const char *event, const char *data,
	    size_t len, struct rf_result *acc, struct rf_buf *delta,
	    struct rf_buf *tools, struct rf_failure *f);
	/* Network: classify a non-2xx answer: code, details, auth, a retry
	 * delay found in the body, and content-policy 400s as
	 * content_filtered. */
	void (*classify_error)(long status, const char *body, size_t len,
	    struct rf_failure *f);
	/* In-process: the whole answer to p into res (text and tool calls
	 * replaced, model, finish reason, usage).  Never fails. */
	void (*answer)(const struct rf_prompt *p, struct rf_result *res);
	/* In-process: the next stream token of text starting at *pos; returns
	 * its length (0 at the end) and advances *pos.  The tokens of an
	 * answer concatenate back to its text. */
	size_t (*next_token)(const char *text, size_t *pos);
};

/*
 * One provider: everything that differs between two providers of the same
 * wire is a field here, never a strcmp on the id.
 */
struct rf_provider {
	const char *id;     /* "groq": API ids, logs, RELAYFORGE_CHAIN */
	const char *name;   /* "Groq": messages and the dashboard */
	/* "GROQ": the settings GROQ_API_KEY, RELAYFORGE_GROQ_URL and
	 * RELAYFORGE_GROQ_MODEL.  NULL (built-in providers only): none. */
	const char *env;
	const char *url;    /* default base URL, no trailing slash ("" builtin) */
	const char *model;  /* default model id sent upstream */
	/* Quirks of the OpenAI-compatible wire (ignored by the others). */
	const char *max_tokens_field; /* "max_tokens" or "max_completion_tokens" */
	bool flat_text_parts;         /* /v1 content that is only text parts
	                               * goes as one string (SambaNova) */
	struct {
		const char *name;  /* NULL: none */
		const char *value;
	} extra_header;               /* one more header sent as is */
	/* Answers in-process: needs no key, is always configured, never cools
	 * down, and its answers are demoMode (docs/providers.md).  Shown last in
	 * the chain when RELAYFORGE_MOCK is on, absent when it is off. */
	bool builtin;
	const struct rf_provider_ops *ops; /* the wire */
};

/* The wires. */
extern const struct rf_provider_ops rf_ops_openai;
extern const struct rf_provider_ops rf_ops_gemini;
extern const struct rf_provider_ops rf_ops_mock;

/* The model the built-in mock reports. */
#define RF_MOCK_MODEL "relayforge-mock-1"

/*
 * The catalog (catalog.c): every provider in the default routing order;
 * a pid is an index into it.  rf_nproviders <= RF_MAX_PROVIDERS.
 */
extern const struct rf_provider rf_providers[];
extern const int rf_nproviders;

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
 * [A-Za-z0-9_.-], no piece of a secret (rf_scrub_code_ok). */
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
/* A duration in a body, which must carry its unit ("34.4s", "2m39.5s";
 * not "7"): rf_duration_ms (util.h), then -1 unless the last byte consumed
 * is a unit letter.  *end (may be NULL) as for rf_duration_ms. */
int64_t rf_adapter_unit_duration(const char *s, const char **end);
/* Empty rq for a build: URL and body reset (allocations kept), header
 * lines wiped (they may hold a key) and dropped. */
void rf_adapter_req_clear(struct rf_up_req *rq);
/* Add the line "name: value" to rq's headers (value without CR/LF, the
 * line shorter than RF_UP_HDR_LEN, at most RF_UP_MAX_HDRS lines).  0, or
 * -1 with rq's headers unchanged. */
int rf_adapter_header(struct rf_up_req *rq, const char *name,
    const char *value);
/* Serialise root compactly into body (appended).  0 or -1 (cap, memory). */
int rf_adapter_json_out(struct json_object *root, struct rf_buf *body);
/* A JSON number that prints as written by a person (0.7, not
 * 0.69999999999999996), independent of the locale. */
struct json_object *rf_adapter_number(double v);
/* The error code of a bare HTTP status: 401/403 auth, 429 rate limited,
 * 408/504 timeout, 5xx/498/499 unavailable, other 4xx bad request. */
enum rf_err rf_adapter_status_err(long status);

/* ---- tool calls (the OpenAI shape every surface speaks) ---- */
/* The most tool calls one answer may make (an index past it is not a
 * provider's answer). */
#define RF_ADAPTER_MAX_TOOL_CALLS 128
/* A new tool call, or a delta of one: {"index","id","type":"function",
 * "function":{"name","arguments"}} with each part left out when index < 0
 * or the string is NULL ("type" goes with the id).  The caller puts it. */
struct json_object *rf_adapter_tool_call(int index, const char *id,
    const char *name, const char *args);
/* A call's arguments as the JSON string OpenAI sends: a string as is, an
 * object or array serialised, missing or null "{}".  The pointer lives
 * as long as v (or is static).  NULL for other types. */
const char *rf_adapter_tool_args(struct json_object *v);
/* The function name of the call id made by an assistant message before
 * messages[upto] (the nearest one: ids may repeat across turns), or
 * NULL. */
const char *rf_adapter_tool_name(struct json_object *messages, size_t upto,
    const char *id);
/* s's value as the text of an OpenAI message content: a string as is,
 * an array of parts of type "text" (and "refusal") joined with no
 * separator into buf.  NULL when s is another shape or holds another
 * part; "" for null.  buf is reset first; the result may point into it. */
const char *rf_adapter_content_text(struct json_object *content,
    struct rf_buf *buf);

#endif
