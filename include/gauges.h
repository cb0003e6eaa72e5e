/*
 * gauges: this responder process's live gauges -- the event streams it is
 * answering now, the log rows waiting in its spool, the rows it dropped
 * since its start -- and their publication to the shared store, where
 * GET /api/v1/metrics sums the rows of the processes alive now.  So every
 * process answers /metrics with the same figures (docs/operations.md), and a
 * process that dies stops counting once its row is older than
 * RF_GAUGES_LIVE_MS.
 *
 * Nothing here writes on a request's path: handlers only move an atomic
 * counter; the janitor thread (src/main.c) publishes every
 * RF_GAUGES_HEARTBEAT_MS, the /metrics handler publishes its own process's
 * row before it reads (without waiting), and a process publishes once more
 * when it ends (plain CGI: after its one request -- its streams are then
 * never seen open).  Prefix: rf_gauges_.
 */
#ifndef RF_GAUGES_H
#define RF_GAUGES_H

#include <stdbool.h>

#include "store.h"

#define RF_GAUGES_HEARTBEAT_MS 5000
/* A process whose last report is older is not alive: its open streams
 * and queued rows no longer count (its dropped rows still do). */
#define RF_GAUGES_LIVE_MS 15000

/* An event stream starts / ends being answered (once each, paired). */
void rf_gauges_stream_begin(void);
void rf_gauges_stream_end(void);

/* This process's figures now. */
void rf_gauges_read(struct rf_process_gauges *g);
/* "host:pid:start_ms": the name of this process's row. */
const char *rf_gauges_process(void);

/* Write this process's row to s as of now, waiting for the store at most
 * 1 s (or the calling thread's shorter budget: rf_store_budget).  wait
 * false: when another thread is publishing at this moment, return 1 at
 * once (its write is as fresh).  0, 1, or -1 when the store did not take
 * the write. */
int rf_gauges_publish(struct rf_store *s, bool wait);

#endif
