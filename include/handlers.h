/*
 * handlers: one function per endpoint.  Each is called by the front door
 * after routing and guards, with the body already read.  Prefix: rf_handle_.
 */
#ifndef RF_HANDLERS_H
#define RF_HANDLERS_H

#include <stdbool.h>

struct rf_worker;
struct rf_request;

void rf_handle_chat(struct rf_worker *w, struct rf_request *rq);
void rf_handle_stream(struct rf_worker *w, struct rf_request *rq);
void rf_handle_health(struct rf_worker *w, struct rf_request *rq);

/* true once a log write has failed in this process (/health: degraded). */
bool rf_handlers_log_failed(void);

#endif
