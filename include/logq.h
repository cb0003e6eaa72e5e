/*
 * logq: the request log, durable before the answer completes and written
 * to the store off the request's thread.  A handler hands each request's
 * entry to rf_logq_log before the last byte of its answer: the entry is
 * appended to this process's spool file (spool.h: one write(2), no store,
 * no fsync), and one writer thread per process moves the spooled rows into
 * the store in batches, one transaction per batch (group commit) that also
 * records how far the spool is written (so no row is written twice).
 * While the store cannot be written the rows wait in the spool, up to
 * max_rows (RELAYFORGE_LOG_QUEUE); past that new rows are dropped and
 * counted.  The writer also replays the spool files that dead processes
 * left behind, at start and every 30 s.
 *
 * Without a spool (not started, or its directory is unusable) an entry is
 * written to the store on the caller's thread instead, before the answer.
 * Prefix: rf_logq_.
 */
#ifndef RF_LOGQ_H
#define RF_LOGQ_H

#include <stdbool.h>

#include "spool.h"
#include "store.h"

/* Open this process's spool as c says and start the writer thread;
 * get_store returns the process's store (or NULL while it cannot be
 * opened) and is called by the writer whenever it needs the store.
 * Returns 0, or -1 (the reason on stderr) when the spool or the thread
 * cannot be had: rf_logq_log then writes on the caller's thread, and
 * rf_logq_health names the problem. */
int rf_logq_start(struct rf_store *(*get_store)(void),
    const struct rf_spool_conf *c);

/* Make e durable (e and its strings may go away on return): spooled, or
 * -- not running, stopping, or the spool file cannot be written -- written
 * to s (may be NULL) on this thread.  0 once the row cannot be lost by
 * the death of this process; -1 when it is lost (the spool is full, or
 * the direct write failed), which is counted in rf_logq_health's dropped. */
int rf_logq_log(struct rf_store *s, const struct rf_log_entry *e);

/* Stop taking rows, write what this process spooled while the store takes
 * it, then end the writer.  A spool that could not be emptied (the store
 * refused a write) stays on disk for the next process.  A replay of a dead
 * process's file stops after its current batch.  No-op when not running. */
void rf_logq_stop(void);

/* The state /api/v1/health reports. */
struct rf_logq_health {
	long rows;            /* rows waiting in the spool: this process's,
	                         and those of a dead process's file it is
	                         replaying */
	long dropped;         /* rows lost since start: the spool was full,
	                         the store refused the row, a dead spool's
	                         record was unreadable, or a direct write
	                         failed */
	const char *problem;  /* NULL, or why the log is not healthy now
	                         (static text) */
};

void rf_logq_health(struct rf_logq_health *h);

#endif
