/*
 * request: the types every layer of a request shares, and nothing else.
 * The FastCGI/CGI glue (fcgi.c) fills a struct rf_request and its output
 * sink; the router (router.c) completes it; the reply writer (reply.c) and
 * the handlers answer through it; the contract (contract.c) parses a body
 * into a struct rf_chat_req; each worker thread carries a struct rf_worker.
 * They live here, not in the engine's header, so that the front door and
 * the contract do not depend on the fallback engine.  No functions.
 */
#ifndef RF_REQUEST_H
#define RF_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "provider.h"
#include "util.h"

struct rf_config;
struct rf_store;
struct rf_up;

#define RF_MAX_MESSAGES 50

/* Where a response goes.  write/flush return 0 or -1 (client gone). Once a
 * call fails, failed stays true and later calls return -1 at once (see
 * rf_out_write in reply.h). */
struct rf_out {
	int (*write)(void *ctx, const char *p, size_t n);
	int (*flush)(void *ctx);
	void *ctx;
	bool failed;
	/* May be NULL (never full): true while enough output waits for the
	 * client that the producer should pause (rf_out_full). */
	bool (*full)(void *ctx);
};

/* One request.  Its strings are borrowed from the connection (params) or
 * from path[]; body is owned and freed by the router when it returns. */
struct rf_request {
	/* Provided by the connection (fcgi.c, or a test's fake). */
	const char *(*param)(void *ctx, const char *name); /* CGI variable */
	long (*read)(void *ctx, char *buf, size_t n);        /* body; 0 = EOF */
	void *ctx;
	struct rf_out out;

	/* Filled by the router. */
	const char *method;
	char path[1024];          /* decoded path, before '?' */
	const char *query;        /* raw query string after '?', "" if none */
	const char *route;        /* path after the surface prefix, or NULL */
	char request_id[65];
	const char *origin;       /* allowed CORS origin to echo, or NULL */
	struct rf_buf body;
	bool head_sent;
};

struct rf_loop;

/* What a thread uses: the process's store (a shared connection pool) and,
 * on a thread that runs an event loop, that loop and its curl handles.
 * main.c and relay.c own them. */
struct rf_worker {
	const struct rf_config *cfg;
	struct rf_store *store; /* NULL when the store cannot be opened */
	struct rf_up *up;       /* NULL: network tiers are passed over */
	struct rf_loop *loop;   /* NULL: a call makes one for itself */
};

/* A validated chat or stream request (filled by rf_contract_parse). */
struct rf_chat_req {
	struct rf_msg msgs[RF_MAX_MESSAGES + 1];
	size_t nmsgs;          /* >= 1; the last is "user" */
	const char *system;    /* NULL when absent */
	int strategy;          /* -1 = auto, else a provider index (pid) */
	bool fallback;         /* options.fallback, default true */
	bool restart;          /* options.streamRecovery == "restart" */
	int max_tokens;        /* default 512 */
	double temperature;    /* default 0.7 */
	const char *source;    /* metadata.source or NULL */
	long prompt_chars;     /* characters of prompt / all message contents */
	void *owner;           /* the parsed JSON that owns the strings */
	/* The OpenAI surface (/v1) only; zeroed (model_pid -1) otherwise. */
	struct rf_oai_params oai;   /* what is passed on as given */
	int model_pid;         /* "provider/model": the provider whose upstream
	                        * model this request names, -1 none */
	const char *upstream_model; /* that model */
	bool include_usage;    /* stream_options.include_usage */
};

#endif
