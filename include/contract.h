/*
 * contract: the wire contract of SPEC sections 4 and 6.  Parses and
 * validates chat/stream request bodies (bounded JSON depth), and builds the
 * success, meta, attempts and error JSON.  After this module nothing reads
 * raw request JSON.  Prefix: rf_contract_.
 */
#ifndef RF_CONTRACT_H
#define RF_CONTRACT_H

#include <json-c/json.h>

#include "config.h"
#include "error.h"
#include "request.h"

struct rf_chain_result;

#define RF_JSON_MAX_DEPTH 16

/* Why a request was refused: code (invalid_json or validation_error),
 * the field ("options.temperature", "prompt"), a readable message. */
struct rf_field_err {
	enum rf_err code;
	char field[64];
	char message[200];
};

/* Parse body into req (req->owner keeps the JSON; free with
 * rf_contract_free).  Returns 0, or -1 with fe filled and req freed. */
int rf_contract_parse(const struct rf_config *cfg, const char *body,
    size_t len, struct rf_chat_req *req, struct rf_field_err *fe);
void rf_contract_free(struct rf_chat_req *req);

/* "auto" or the provider id of req->strategy. */
const char *rf_contract_strategy(const struct rf_chat_req *req);

/* The attempts array of SPEC section 4 (new reference). */
json_object *rf_contract_attempts(const struct rf_chain_result *r);
/* The chat meta (requestId ... attempts).  final adds ttftMs,
 * skippedChunks and restarts for streams; start omits latency, usage,
 * finishReason and timestamp-of-end fields not yet known. */
enum rf_meta_kind { RF_META_CHAT, RF_META_START, RF_META_FINAL };
json_object *rf_contract_meta(const struct rf_chat_req *req,
    const struct rf_chain_result *r, enum rf_meta_kind kind);

/* The error object of SPEC section 6 (not yet wrapped).  message NULL =
 * the code's default; details, provider, request_id, field may be NULL;
 * attempts is taken (may be NULL: then no "attempts" key). */
json_object *rf_contract_error(enum rf_err code, const char *message,
    const char *details, const char *provider, bool fallback,
    const char *request_id, json_object *attempts, const char *field);
/* The error object for a chain that failed (code, message, provider,
 * fallbackActivated, attempts from r). */
json_object *rf_contract_chain_error(const struct rf_chain_result *r);

/* {"success":true,"data":data} and {"success":false,"error":error};
 * both take their argument. */
json_object *rf_contract_success(json_object *data);
json_object *rf_contract_failure(json_object *error);

/* Compact JSON text of obj into a new string (caller frees). */
char *rf_contract_dump(json_object *obj);

#endif
