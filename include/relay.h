/*
 * relay: where a request that runs the fallback engine lives once its
 * worker thread has parsed it.  A FastCGI process runs a few loop threads
 * (about one per core), each an event loop (loop.h) with its own curl
 * handles; a worker thread accepts and parses a request (router, guards,
 * contract), then hands it over with rf_relay_submit and accepts the next
 * one.  From then on the request is a struct rf_relay_job that the loop
 * drives: the chain's steps (rf_chain_start), the writes to the web
 * server (only when its socket takes them, fcgi.h's detached stream), the
 * client's hang-up (the web server closes the connection: the chain stops
 * at once), the write deadline of a client that stops reading, and the
 * end (the handler's finish, then END_REQUEST).  An open request costs its
 * job, its chain run and a curl transfer -- kilobytes, not a thread.
 *
 * Without loop threads (plain CGI, the tests) a submitted job runs to its
 * end on the caller's thread, through the same chain and the same finish.
 *
 * Threads: rf_relay_start/stop on the main thread; rf_relay_admit and
 * rf_relay_submit on worker threads; a job's sink callbacks and finish on
 * its loop's thread.  Prefix: rf_relay_.
 */
#ifndef RF_RELAY_H
#define RF_RELAY_H

#include <stdbool.h>

#include "chain.h"
#include "loop.h"
#include "request.h"

struct rf_fcgi_stream;

/*
 * One request on its way.  A handler allocates the block that holds it
 * (with malloc; the job must be its first member, the relay frees the
 * block), fills req, r (rf_answer_begin), sink (NULL for chat) and finish,
 * and submits it; after that the handler no longer touches it or the
 * worker's rq.  The sink writes to job->rq, the request's own copy.
 */
struct rf_relay_job {
	struct rf_request rq;       /* the request's copy: answers go here */
	struct rf_chat_req req;
	struct rf_chain_result r;
	const struct rf_stream_sink *sink;
	/* The chain is done (r final): render and log the answer, write it
	 * to job->rq, free req and r.  On the job's loop with its worker. */
	void (*finish)(struct rf_worker *w, struct rf_relay_job *job);

	/* The relay's own. */
	char origin[256];           /* rq.origin, kept past the params */
	struct rf_fcgi_stream *st;  /* the detached connection; NULL: sync */
	struct rf_chain_run *run;   /* while the chain runs */
	struct rf_provider_state pst[RF_MAX_PROVIDERS]; /* read by the worker */
	struct rf_watch watch;
	struct rf_timer timer;      /* the write deadline */
	struct loop_thread *lt;
	bool ending;                /* finish ran: sending the rest, then close */
};

/* A block of size bytes (>= sizeof(struct rf_relay_job)) whose job is
 * ready to fill: the relay's part, sink and finish zeroed, the rest of the
 * block (req, r, the handler's own) left to the handler.  NULL: memory. */
struct rf_relay_job *rf_relay_job_new(size_t size);

/* Start n loop threads (n <= 0: one per online core, at most 8) for this
 * process; get_store gives the process's store (NULL while it cannot be
 * opened).  0, or -1 when none could start (the relay then runs jobs on
 * the caller's thread). */
int rf_relay_start(const struct rf_config *cfg,
    struct rf_store *(*get_store)(void), int n);
/* Let every open request finish (no new ones may be submitted), then
 * stop and join the loop threads. */
void rf_relay_stop(void);

/* Take a place for one more open request: 0, or -1 when this process
 * already holds RELAYFORGE_MAX_STREAMS (the caller refuses it with a
 * 503).  Always 0 without loop threads.  A place taken is given back when
 * the submitted job ends. */
int rf_relay_admit(const struct rf_config *cfg);
/* Hand the parsed request over (see struct rf_relay_job).  rq is the
 * worker's; its connection goes with the job. */
void rf_relay_submit(struct rf_worker *w, struct rf_request *rq,
    struct rf_relay_job *job);
/* Requests this process holds open now. */
int rf_relay_open(void);

#endif
