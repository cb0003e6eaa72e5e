/*
 * logq: the request log leaves the request's thread.  Handlers push a copy
 * of each log entry; one writer thread per process writes what has queued
 * up in one transaction (group commit), so a burst of N requests costs one
 * commit instead of N, and no worker waits on the SQLite write lock after
 * its answer.  The queue is bounded: when it is full, or not running (plain
 * CGI, unit tests), rf_logq_push returns -1 and the caller writes the entry
 * itself.  Prefix: rf_logq_.
 */
#ifndef RF_LOGQ_H
#define RF_LOGQ_H

#include <stdbool.h>

#include "store.h"

/* Start the writer thread; get_store returns the process's store (or NULL
 * while it cannot be opened).  Returns 0 or -1. */
int rf_logq_start(struct rf_store *(*get_store)(void));
/* Queue a deep copy of e.  0, or -1 when not running, full or out of
 * memory (nothing queued). */
int rf_logq_push(const struct rf_log_entry *e);
/* Write everything queued, then stop and join the writer.  No-op when not
 * running. */
void rf_logq_stop(void);
/* true once a queued entry could not be written (/health: degraded). */
bool rf_logq_failed(void);

#endif
