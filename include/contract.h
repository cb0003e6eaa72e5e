/*
 * contract: the request side of the wire contract (SPEC section 4).
 * Parses and validates chat/stream request bodies (bounded JSON depth,
 * strict UTF-8) into struct rf_chat_req.  After this module nothing reads
 * raw request JSON; the answers' shapes live in render.h.
 * Prefix: rf_contract_.
 */
#ifndef RF_CONTRACT_H
#define RF_CONTRACT_H

#include <json-c/json.h>

#include "config.h"
#include "error.h"
#include "request.h"

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

#endif
