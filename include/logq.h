/*
 * logq: the request log leaves the request's thread.  Handlers push a copy
 * of each log entry; one writer thread per process writes what has queued
 * up in one transaction (group commit), so a burst of N requests costs one
 * commit instead of N, and no worker waits on the SQLite write lock after
 * its answer.  The queue is bounded: when it is full, or not running (plain
 * CGI), rf_logq_push returns -1 and the caller writes the entry itself.
 * Prefix: rf_logq_.
 */
#ifndef RF_LOGQ_H
#define RF_LOGQ_H

#include <stdbool.h>

#include "store.h"

/* Entries waiting; past it callers write themselves. */
#define RF_LOGQ_MAX 4096

/* Start the writer thread; get_store returns the process's store (or NULL
 * while it cannot be opened) and is called by the writer once per batch.
 * Returns 0 or -1. */
int rf_logq_start(struct rf_store *(*get_store)(void));
/* Queue a deep copy of e (e and its strings may go away on return).
 * 0, or -1 when not running, stopping, full (RF_LOGQ_MAX waiting) or out
 * of memory: then nothing is queued and the entry is still the caller's
 * to write. */
int rf_logq_push(const struct rf_log_entry *e);
/* Write everything queued, then stop and join the writer.  No-op when not
 * running.  Pushes during the stop are refused (-1). */
void rf_logq_stop(void);
/* true once a queued entry could not be written, and for the rest of the
 * process (/health: degraded).  A batch is written in one transaction, or
 * entry by entry when that fails, so only the entries that cannot be
 * written are lost; with no store (get_store NULL) the whole batch is. */
bool rf_logq_failed(void);

#endif
