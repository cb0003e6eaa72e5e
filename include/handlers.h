/*
 * handlers: one function per endpoint.  Each is called by the front door
 * after routing and guards, with the body already read.  Prefix: rf_handle_.
 */
#ifndef RF_HANDLERS_H
#define RF_HANDLERS_H

struct rf_worker;
struct rf_request;

void rf_handle_chat(struct rf_worker *w, struct rf_request *rq);
void rf_handle_stream(struct rf_worker *w, struct rf_request *rq);
void rf_handle_health(struct rf_worker *w, struct rf_request *rq);

/* Read-only observability (src/observe.c): GET /providers/status, /logs
 * (limit, before, provider, status -- success, error, cancelled --,
 * endpoint) and /usage (window).  Bad
 * query values get 400 validation_error naming the parameter; no store
 * gets 503 internal_error. */
void rf_handle_status(struct rf_worker *w, struct rf_request *rq);
void rf_handle_logs(struct rf_worker *w, struct rf_request *rq);
void rf_handle_usage(struct rf_worker *w, struct rf_request *rq);
/* GET /metrics (src/observe.c): the Prometheus text exposition, the same
 * from every process (docs/operations.md). */
void rf_handle_metrics(struct rf_worker *w, struct rf_request *rq);

#endif
