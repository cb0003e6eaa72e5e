/*
 * handlers_openai: the endpoints of the OpenAI-compatible surface (docs/openai.md),
 * called by the router's /v1/ surface after its guards, with
 * the body already read.  Every refusal and failure is in OpenAI's error
 * shape (rf_reply_oai_error).  Prefix: rf_handle_oai_.
 */
#ifndef RF_HANDLERS_OPENAI_H
#define RF_HANDLERS_OPENAI_H

struct rf_worker;
struct rf_request;

/* POST /v1/chat/completions: a chat.completion, or with "stream": true a
 * stream of chat.completion.chunk events whose head is held until the
 * first token.  Logged as endpoint "openai" / "openai_stream". */
void rf_handle_oai_chat(struct rf_worker *w, struct rf_request *rq);
/* GET /v1/models: "auto", then each configured provider of the chain as
 * its id and as "id/<configured model>". */
void rf_handle_oai_models(struct rf_worker *w, struct rf_request *rq);
/* GET /v1/models/{id} (the id may hold '/'): one of the list, or 404
 * model_not_found. */
void rf_handle_oai_model(struct rf_worker *w, struct rf_request *rq);

#endif
