/*
 * answer: what every endpoint that runs the fallback engine does around
 * it, on either surface (/api/v1's chat and stream in handlers.c, /v1's
 * chat completions in handlers_openai.c): start a request's result, the
 * X-RelayForge-* header lines of its answer, and making its log row
 * durable before the answer's last byte.  Prefix: rf_answer_.
 */
#ifndef RF_ANSWER_H
#define RF_ANSWER_H

#include "chain.h"
#include "request.h"
#include "store.h"
#include "util.h"

/* Initialise r for the request rq: its request id, the wall clock and
 * the monotonic clock at arrival. */
void rf_answer_begin(const struct rf_request *rq, struct rf_chain_result *r);

/* Append to out the header lines (each ending in "\r\n") of the answer
 * to e: X-RelayForge-Provider (the final provider, "none"),
 * X-RelayForge-Fallback (true | false), X-RelayForge-Attempts (every
 * try as "provider:outcome", a skipped tier as "provider:<reason>", comma
 * separated: "groq:provider_rate_limited,sambanova:ok"), and for a failed
 * request answered 429 or 503 Retry-After in whole seconds (rounded up)
 * when r knows when to come back.  0, or -1 when out is full. */
int rf_answer_headers(const struct rf_log_entry *e,
    const struct rf_chain_result *r, struct rf_buf *out);

/* Make the request's row durable (rf_logq_log), with the prompt preview
 * when RELAYFORGE_LOG_PROMPTS=preview: the first 120 characters of the
 * last user message (of the last message when none is a user's).  Call
 * before the answer's last byte.  Never fails the request: a lost row is
 * counted for /health.  e->prompt_preview is NULL again on return. */
void rf_answer_log(struct rf_worker *w, const struct rf_chat_req *req,
    struct rf_log_entry *e);

#endif
