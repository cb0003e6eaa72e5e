/*
 * logq: a bounded FIFO of request-log entries and the one thread per
 * process that writes them to the store in batches.
 *
 * Each queued entry is one allocation: the struct, its attempts and every
 * string it points to, copied together, so the caller's strings may go
 * away as soon as rf_logq_push returns.  The writer takes up to LOGQ_BATCH
 * entries off the head under the lock, writes them outside it (one
 * transaction; entry by entry when that fails) and frees them.  An entry
 * it cannot write -- no store, or its own write fails -- is dropped and
 * rf_logq_failed() turns true for the life of the process (/health says
 * degraded; the reason is on stderr already, from the store's failed write
 * or from the opener that could not open it).  Stopping drains the queue
 * before the thread exits.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "logq.h"

#define LOGQ_BATCH 128  /* entries per transaction */

struct item {
	struct item *next;
	struct rf_log_entry e;
	struct rf_log_attempt att[]; /* then the strings */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct item *head, *tail;
static int queued;
static bool running, stopping;
static pthread_t writer;
static struct rf_store *(*store_of)(void);
static atomic_bool failed;

bool
rf_logq_failed(void)
{
	return atomic_load(&failed);
}

static size_t
slen(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

/* Copy s into the blob at *p; NULL stays NULL. */
static const char *
put(char **p, const char *s)
{
	char *d = *p;
	size_t n = slen(s);

	if (s == NULL)
		return NULL;
	memcpy(d, s, n);
	*p += n;
	return d;
}

static struct item *
copy(const struct rf_log_entry *e)
{
	size_t strs = slen(e->request_id) + slen(e->endpoint) + slen(e->strategy) +
	    slen(e->attempted_provider) + slen(e->final_provider) +
	    slen(e->error_code) + slen(e->model) + slen(e->source) +
	    slen(e->prompt_preview) + slen(e->streamed);
	struct item *it;
	char *p;

	for (size_t i = 0; i < e->nattempts; i++)
		strs += slen(e->attempts[i].provider) + slen(e->attempts[i].outcome) +
		    slen(e->attempts[i].reason);
	it = malloc(sizeof(*it) + e->nattempts * sizeof(it->att[0]) + strs);
	if (it == NULL)
		return NULL;
	p = (char *)&it->att[e->nattempts];
	it->next = NULL;
	it->e = *e;
	it->e.request_id = put(&p, e->request_id);
	it->e.endpoint = put(&p, e->endpoint);
	it->e.strategy = put(&p, e->strategy);
	it->e.attempted_provider = put(&p, e->attempted_provider);
	it->e.final_provider = put(&p, e->final_provider);
	it->e.error_code = put(&p, e->error_code);
	it->e.model = put(&p, e->model);
	it->e.source = put(&p, e->source);
	it->e.prompt_preview = put(&p, e->prompt_preview);
	it->e.streamed = put(&p, e->streamed);
	for (size_t i = 0; i < e->nattempts; i++) {
		it->att[i] = e->attempts[i];
		it->att[i].provider = put(&p, e->attempts[i].provider);
		it->att[i].outcome = put(&p, e->attempts[i].outcome);
		it->att[i].reason = put(&p, e->attempts[i].reason);
	}
	it->e.attempts = it->att;
	return it;
}

/* Whether a push may queue now; called with lock held. */
static bool
accepting(void)
{
	return running && !stopping && queued < RF_LOGQ_MAX;
}

int
rf_logq_push(const struct rf_log_entry *e)
{
	struct item *it = NULL;
	bool open;
	int rc = -1;

	/* A first look, so a full or stopped queue costs no allocation; the
	 * copy is made outside the lock; the second look decides. */
	pthread_mutex_lock(&lock);
	open = accepting();
	pthread_mutex_unlock(&lock);
	if (!open || (it = copy(e)) == NULL)
		goto done;
	pthread_mutex_lock(&lock);
	if (accepting()) {
		if (tail != NULL)
			tail->next = it;
		else
			head = it;
		tail = it;
		queued++;
		it = NULL;
		rc = 0;
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
done:
	free(it);
	return rc;
}

/* Write one batch: one transaction, or entry by entry if it fails (so one
 * bad entry cannot lose the others). */
static void
write_batch(struct item **items, int n)
{
	const struct rf_log_entry *es[LOGQ_BATCH];
	struct rf_store *s = store_of();

	for (int i = 0; i < n; i++)
		es[i] = &items[i]->e;
	if (s != NULL && rf_store_log_requests(s, es, (size_t)n) == 0)
		return;
	for (int i = 0; i < n; i++)
		if (s == NULL || rf_store_log_request(s, es[i]) != 0)
			atomic_store(&failed, true);
}

static void *
writer_main(void *arg)
{
	struct item *items[LOGQ_BATCH];

	(void)arg;
	for (;;) {
		int n = 0;

		pthread_mutex_lock(&lock);
		while (head == NULL && !stopping)
			pthread_cond_wait(&wake, &lock);
		while (head != NULL && n < LOGQ_BATCH) {
			items[n++] = head;
			head = head->next;
			queued--;
		}
		if (head == NULL)
			tail = NULL;
		bool done = n == 0 && stopping;
		pthread_mutex_unlock(&lock);
		if (done)
			return NULL;
		write_batch(items, n);
		for (int i = 0; i < n; i++)
			free(items[i]);
	}
}

int
rf_logq_start(struct rf_store *(*get_store)(void))
{
	int rc = 0;

	pthread_mutex_lock(&lock);
	store_of = get_store;
	stopping = false;
	if (!running && pthread_create(&writer, NULL, writer_main, NULL) != 0)
		rc = -1;
	else
		running = true;
	pthread_mutex_unlock(&lock);
	return rc;
}

void
rf_logq_stop(void)
{
	pthread_mutex_lock(&lock);
	if (!running) {
		pthread_mutex_unlock(&lock);
		return;
	}
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(writer, NULL);
	pthread_mutex_lock(&lock);
	running = false;
	pthread_mutex_unlock(&lock);
}
