/*
 * relay: the loop threads and the life of a job on them (relay.h).
 *
 * A job's life on its loop:
 *   begin:   watch the connection (input: the web server closing it means
 *            the client left), send what the worker already framed (an
 *            SSE head), start the chain;
 *   running: the chain's sink writes into the connection's backlog and
 *            flushes; what the socket does not take at once waits for
 *            EPOLLOUT, under the write deadline (the client must take a
 *            byte within RELAYFORGE_STREAM_IDLE_TIMEOUT_MS, else it is
 *            gone); a hang-up aborts the chain, which then finishes as
 *            client_closed;
 *   ending:  the handler's finish (log row, terminal events), END_REQUEST,
 *            the rest of the backlog under the same deadline, then close.
 * Each step is on the loop's thread; the only shared state is the
 * process's count of open jobs (atomic) and each loop's post queue.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "contract.h"
#include "fcgi.h"
#include "log.h"
#include "pstate.h"
#include "relay.h"
#include "upstream.h"

#define MAX_LOOPS 8
/* Loop threads run the chain, curl and json-c: small stacks do. */
#define LOOP_STACK (512 * 1024)

struct loop_thread {
	pthread_t tid;
	struct rf_worker w;         /* cfg, store, up and loop of this thread */
	struct rf_store *(*get_store)(void);
	atomic_int jobs;            /* open jobs on this loop */
	bool draining;              /* no new jobs: stop when none is left */
};

static struct loop_thread g_loops[MAX_LOOPS];
static int g_nloops;
static atomic_int g_open;       /* open jobs of the process */
static long g_write_timeout_ms = 20000;

int
rf_relay_open(void)
{
	return atomic_load(&g_open);
}

int
rf_relay_admit(const struct rf_config *cfg)
{
	if (g_nloops == 0)
		return 0;
	if (atomic_fetch_add(&g_open, 1) >= cfg->max_streams) {
		atomic_fetch_sub(&g_open, 1);
		return -1;
	}
	return 0;
}

/* ---- a job on its loop ------------------------------------------------ */

/* Close the connection and free the job: one that no loop watches. */
static void
job_free(struct rf_relay_job *job)
{
	struct loop_thread *lt = job->lt;

	rf_fcgi_stream_close(job->st);
	free(job);
	atomic_fetch_sub(&lt->jobs, 1);
	atomic_fetch_sub(&g_open, 1);
}

static void
job_close(struct rf_relay_job *job)
{
	rf_loop_watch(job->lt->w.loop, &job->watch, 0);
	rf_loop_timer_stop(job->lt->w.loop, &job->timer);
	job_free(job);
}

/* The client is gone (hung up, or took nothing for the write deadline):
 * a running chain stops now and finishes as client_closed (its finish
 * writes nothing more); an ending job closes. */
static void
job_gone(struct rf_relay_job *job)
{
	rf_fcgi_stream_fail(job->st);
	if (job->run != NULL)
		rf_chain_abort(job->run); /* its done callback ends the job */
	else if (job->ending)
		job_close(job);
}

/* Watch the connection: always for its end, for room while bytes wait
 * (then under the write deadline). */
static void
job_watch(struct rf_relay_job *job, bool waiting)
{
	struct rf_loop *loop = job->lt->w.loop;

	rf_loop_watch(loop, &job->watch, EPOLLIN | EPOLLRDHUP |
	    (waiting ? EPOLLOUT : 0));
	if (waiting && job->timer.slot == 0)
		rf_loop_timer_at(loop, &job->timer,
		    rf_fcgi_stream_progress(job->st) + g_write_timeout_ms);
}

/* Send what the socket takes; watch for room while bytes are left.
 * Returns false when the job was closed. */
static bool
job_send(struct rf_relay_job *job)
{
	int rc = rf_fcgi_stream_send(job->st);

	if (rc == 0 && job->ending) {
		job_close(job);
		return false;
	}
	if (rc < 0) {
		job_gone(job);
		return false;
	}
	if (job->run != NULL &&
	    rf_fcgi_stream_backlog(job->st) < RF_FCGI_BACKLOG_LOW)
		rf_chain_resume(job->run);
	job_watch(job, rc > 0);
	return true;
}

/* The sink's flush left bytes in the backlog.  (A failed send needs
 * nothing here: the sink's write fails and the chain ends as
 * client_closed -- never from inside its callbacks.) */
static void
job_want(void *ud)
{
	job_watch(ud, true);
}

static void
on_conn(struct rf_watch *w, uint32_t ev)
{
	struct rf_relay_job *job = (struct rf_relay_job *)((char *)w -
	    offsetof(struct rf_relay_job, watch));

	if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
	    (rf_fcgi_stream_input(job->st) != 0 ||
	    (ev & (EPOLLHUP | EPOLLERR)))) {
		job_gone(job);
		return;
	}
	if (ev & EPOLLOUT)
		job_send(job);
}

/* The write deadline: no byte taken for the whole timeout. */
static void
on_write_deadline(struct rf_timer *t)
{
	struct rf_relay_job *job = (struct rf_relay_job *)((char *)t -
	    offsetof(struct rf_relay_job, timer));
	int64_t due;

	if (rf_fcgi_stream_backlog(job->st) == 0)
		return;
	due = rf_fcgi_stream_progress(job->st) + g_write_timeout_ms;
	if (rf_mono_ms() < due) {
		rf_loop_timer_at(job->lt->w.loop, t, due);
		return;
	}
	RF_LOG_INFO(job->rq.request_id, NULL, "the client took no output for "
	    "%ld ms; dropping the response", g_write_timeout_ms);
	job_gone(job);
}

/* The chain is done: the handler's finish, then the end of the response. */
static void
job_done(void *ud)
{
	struct rf_relay_job *job = ud;

	job->run = NULL;
	job->finish(&job->lt->w, job);
	job->ending = true;
	rf_fcgi_stream_end(job->st);
	job_send(job);
}

static void
job_begin(void *arg)
{
	struct rf_relay_job *job = arg;
	struct loop_thread *lt = job->lt;

	if (lt->w.store == NULL)
		lt->w.store = lt->get_store();
	job->watch = (struct rf_watch){ .fd = rf_fcgi_stream_fd(job->st),
		.cb = on_conn };
	job->timer.cb = on_write_deadline;
	/* A head the worker wrote goes now; if the connection failed, the
	 * chain's first write finds it (and a chat's row is logged). */
	job_send(job);
	rf_chain_start(&lt->w, &job->req, job->sink, job->pst, &job->r,
	    &job->run, job_done, job);
}

/* ---- handing over ------------------------------------------------------ */

/* The loop with the fewest open jobs. */
static struct loop_thread *
pick_loop(void)
{
	struct loop_thread *best = &g_loops[0];

	for (int i = 1; i < g_nloops; i++)
		if (atomic_load(&g_loops[i].jobs) < atomic_load(&best->jobs))
			best = &g_loops[i];
	return best;
}

struct rf_relay_job *
rf_relay_job_new(size_t size)
{
	/* malloc, not calloc: the request and its result (kilobytes) are
	 * written whole by the contract and rf_answer_begin anyway. */
	struct rf_relay_job *job = malloc(size);

	if (job == NULL)
		return NULL;
	memset(&job->sink, 0, sizeof(*job) - offsetof(struct rf_relay_job,
	    sink));
	return job;
}

/* The job's copy of rq: nothing of it may point into the params, which
 * go with the worker's connection. */
static void
copy_request(struct rf_relay_job *job, const struct rf_request *rq)
{
	job->rq = *rq;
	rf_buf_init(&job->rq.body, 0); /* the router frees the body */
	job->rq.method = "POST";
	job->rq.query = "";
	job->rq.route = NULL;
	job->rq.origin = NULL;
	if (rq->origin != NULL) {
		snprintf(job->origin, sizeof(job->origin), "%s", rq->origin);
		job->rq.origin = job->origin;
	}
}

/* No loop threads, or the connection cannot be handed over: the job runs
 * to its end here. */
static void
run_here(struct rf_worker *w, struct rf_relay_job *job, bool admitted)
{
	rf_chain_run(w, &job->req, job->sink, &job->r);
	job->finish(w, job);
	free(job);
	if (admitted)
		atomic_fetch_sub(&g_open, 1);
}

void
rf_relay_submit(struct rf_worker *w, struct rf_request *rq,
    struct rf_relay_job *job)
{
	struct loop_thread *lt;

	copy_request(job, rq);
	if (g_nloops == 0) {
		run_here(w, job, false);
		return;
	}
	/* The provider state may wait for the store: read it here, where
	 * waiting holds up no other request. */
	rf_chain_states(w, job->pst);
	lt = pick_loop();
	job->lt = lt;
	job->st = rf_fcgi_detach(&job->rq, job_want, job);
	if (job->st == NULL) {
		run_here(w, job, true);
		return;
	}
	atomic_fetch_add(&lt->jobs, 1);
	if (rf_loop_post(lt->w.loop, job_begin, job) != 0) {
		/* Out of memory: the connection is ours alone now. */
		RF_LOG_ERR(job->rq.request_id, NULL, "cannot hand the request "
		    "to a loop (out of memory); closing it");
		rf_chain_result_free(&job->r);
		rf_contract_free(&job->req);
		rf_fcgi_stream_fail(job->st);
		job_free(job); /* no loop has seen it: nothing to unwatch */
	}
}

/* ---- the loop threads --------------------------------------------------- */

static void *
loop_main(void *arg)
{
	struct loop_thread *lt = arg;

	/* This thread must never wait for the store: provider-state writes
	 * go to the process's table and its background writer. */
	rf_pstate_thread_nowait(true);
	while (!(lt->draining && atomic_load(&lt->jobs) == 0))
		if (rf_loop_run_once(lt->w.loop, 1000) < 0) {
			RF_LOG_ERR(NULL, NULL, "event loop failed; its "
			    "requests are lost");
			break;
		}
	return NULL;
}

static void
set_draining(void *arg)
{
	((struct loop_thread *)arg)->draining = true;
}

static void
free_loop(struct loop_thread *lt)
{
	struct rf_loop *loop = lt->w.loop;

	rf_up_free(lt->w.up);
	rf_loop_free(loop);
	lt->w.up = NULL;
	lt->w.loop = NULL;
}

static int
ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_LOOPS ? MAX_LOOPS : (int)n;
}

int
rf_relay_start(const struct rf_config *cfg,
    struct rf_store *(*get_store)(void), int n)
{
	pthread_attr_t attr;

	if (n <= 0)
		n = ncores();
	if (n > MAX_LOOPS)
		n = MAX_LOOPS;
	g_write_timeout_ms = cfg->stream_idle_timeout_ms;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, LOOP_STACK);
	for (int i = 0; i < n; i++) {
		struct loop_thread *lt = &g_loops[g_nloops];

		*lt = (struct loop_thread){ .get_store = get_store };
		lt->w.cfg = cfg;
		if ((lt->w.loop = rf_loop_new()) == NULL ||
		    (lt->w.up = rf_up_new_on(lt->w.loop)) == NULL ||
		    pthread_create(&lt->tid, &attr, loop_main, lt) != 0) {
			free_loop(lt);
			break;
		}
		g_nloops++;
	}
	pthread_attr_destroy(&attr);
	if (g_nloops < n)
		RF_LOG_ERR(NULL, NULL, "only %d of %d loop threads started",
		    g_nloops, n);
	return g_nloops > 0 ? 0 : -1;
}

void
rf_relay_stop(void)
{
	for (int i = 0; i < g_nloops; i++)
		if (rf_loop_post(g_loops[i].w.loop, set_draining, &g_loops[i]))
			g_loops[i].draining = true; /* racy, but it only stops */
	for (int i = 0; i < g_nloops; i++) {
		pthread_join(g_loops[i].tid, NULL);
		free_loop(&g_loops[i]);
	}
	g_nloops = 0;
}
