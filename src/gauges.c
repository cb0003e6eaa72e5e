/*
 * gauges: this process's live gauges and their publication to the store
 * (see include/gauges.h).  Publications are serialised by one mutex, so
 * two threads never write this process's row out of order; the store
 * also refuses a report older than the stored one.
 */
#include "gauges.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "logq.h"
#include "util.h"

/* The longest a publication waits for the store: a heartbeat skipped
 * while the store is locked costs nothing (the next one follows), and a
 * stopping process must not wait the store's 10 s busy timeout. */
#define PUBLISH_MS 1000

static atomic_long open_streams;
static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t name_once = PTHREAD_ONCE_INIT;
static char name[160];

void
rf_gauges_stream_begin(void)
{
	atomic_fetch_add(&open_streams, 1);
}

void
rf_gauges_stream_end(void)
{
	atomic_fetch_sub(&open_streams, 1);
}

void
rf_gauges_read(struct rf_process_gauges *g)
{
	struct rf_logq_health h;

	rf_logq_health(&h);
	g->open_streams = atomic_load(&open_streams);
	g->queue_rows = h.rows;
	g->dropped_rows = h.dropped;
}

/* The host, the pid and the time of the first call: a pid alone comes
 * back after a restart, and the rows of two machines share one store. */
static void
name_init(void)
{
	char host[64] = "";

	if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof host, "localhost");
	snprintf(name, sizeof name, "%s:%ld:%lld", host, (long)getpid(),
	    (long long)rf_now_ms());
}

const char *
rf_gauges_process(void)
{
	pthread_once(&name_once, name_init);
	return name;
}

int
rf_gauges_publish(struct rf_store *s, bool wait)
{
	struct rf_process_gauges g;
	const char *process = rf_gauges_process();
	int rc, was;

	if (s == NULL)
		return -1;
	if (wait)
		pthread_mutex_lock(&publish_lock);
	else if (pthread_mutex_trylock(&publish_lock) != 0)
		return 1;
	was = rf_store_budget(PUBLISH_MS);
	if (was > 0)
		rf_store_budget(was); /* the caller's own budget stands */
	rf_gauges_read(&g);
	rc = rf_store_gauges_publish(s, process, &g, rf_now_ms());
	rf_store_budget(was);
	pthread_mutex_unlock(&publish_lock);
	return rc;
}
