/*
 * pstate: the providers' shared state (failure streaks, cooldowns, quota
 * snapshots; docs/api.md) as this process knows it, written through to
 * the store without ever making a request wait for it.
 *
 * The engine (src/chain.c) decides; pstate remembers and persists.  Every
 * write is tried on the caller's thread within RF_STORE_HOT_MS; when the
 * store does not take it in time (another process or an operator holds
 * the write lock, the store cannot be opened), it is kept in this
 * process and a background writer retries it until the store takes it --
 * then the other processes see it at their next read.  While any write
 * waits, later ones queue behind it (the store sees them in order) and
 * the request's path does not touch the store for them at all.
 *
 * Reads (rf_pstate_load) are the store's state as last read -- a
 * snapshot at most RF_PSTATE_READ_MS old -- overlaid with this process's
 * writes (the later cooldown wins; a success clears what came before it).
 * So this process's own writes are seen at once, and another process's or
 * machine's at most RF_PSTATE_READ_MS later.  The snapshot is read again
 * by one thread at a time, within the request budget; meanwhile the other
 * threads decide from the previous one and never wait for it.  Once a
 * write is in the store, the store's view wins at the next read: another
 * process that clears a provider clears it here too.
 *
 * Threads: every function may be called from any thread.  A thread that
 * must never wait for the store (an event loop) says so with
 * rf_pstate_thread_nowait.  Prefix: rf_pstate_.
 */
#ifndef RF_PSTATE_H
#define RF_PSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Each store call of the background writer waits at most this long (for
 * the lock): a write waiting behind an operator's lock is made within a
 * millisecond of its release, and stopping never waits longer. */
#define RF_PSTATE_WRITE_MS 1000
/* The writer's first pause after a refusal (then doubled, up to 1 s). */
#define RF_PSTATE_RETRY_MS 100

/* How old the snapshot of the store's provider state may be before a
 * load reads it again.  Each read is a round trip to the store (to the
 * database server, with PostgreSQL) on a request's path; at 250 ms a
 * process reads it at most 4 times a second whatever its traffic, and a
 * cooldown set by another process or machine is obeyed here at most a
 * quarter of a second later (a provider may get a few more calls from this
 * process meanwhile -- the ones it would have got while the cooldown's
 * write was on its way anyway).  Compile-time: no setting to get wrong. */
#define RF_PSTATE_READ_MS 250

/* Start the background writer; get_store returns the process's store (or
 * NULL while it cannot be opened) and is called before each try.  Without
 * it (plain CGI, tests) a request that finds writes waiting first tries
 * to make them itself, within the same budget.  0, or -1 (no thread: the
 * same as not started). */
int rf_pstate_start(struct rf_store *(*get_store)(void));
/* Stop the writer (if started), then write what still waits to s (NULL:
 * nothing can be) with budget_ms per store call; what cannot be written
 * is said on stderr, provider by provider.  A FastCGI process stopping
 * gives RF_PSTATE_WRITE_MS; plain CGI, whose client waits for the process
 * to end, RF_PSTATE_CGI_MS. */
void rf_pstate_stop(struct rf_store *s, int budget_ms);
#define RF_PSTATE_CGI_MS 100

/* Fill st[i] for the n provider ids: see above.  s NULL = no store.
 * Until a first snapshot of an id exists, the load reads the store
 * (except on a nowait thread). */
void rf_pstate_load(struct rf_store *s, const char *const *ids, size_t n,
    struct rf_provider_state *st);

/* This thread never calls the store from pstate while on is true: writes
 * go to this process's table and the background writer at once (the
 * streak returned is the one this process knows), and a load whose
 * snapshot is too old asks the writer to read it again instead of reading
 * it here.  Needs rf_pstate_start (without the writer, writes wait for
 * the next thread that may call the store).  Per thread; off by default. */
void rf_pstate_thread_nowait(bool on);

/* How many store calls pstate has made on the calling thread (tests and
 * diagnosis: a hot path's share of the store). */
long rf_pstate_thread_store_calls(void);

/* Set the snapshot's lifetime (see RF_PSTATE_READ_MS) to ms, 0 = every
 * load reads the store; returns the previous one.  For tests: the
 * product keeps RF_PSTATE_READ_MS. */
int rf_pstate_read_window(int ms);

/* A failure of provider id (rf_store_provider_failed's meaning: the
 * shared streak grows by one, error_code is remembered at now_ms, and
 * cooldown_until_ms > 0 is a cooldown with error_code as its reason).
 * Returns the streak the engine applies its threshold to: the store's new
 * count when it took the write, else the one this process knows. */
int rf_pstate_failed(struct rf_store *s, const char *id,
    const char *error_code, int64_t now_ms, int64_t cooldown_until_ms);
/* A cooldown until until_ms (<= 0: nothing) with its reason. */
void rf_pstate_cooldown(struct rf_store *s, const char *id, int64_t until_ms,
    const char *reason);
/* A success: the streak and the cooldown are cleared. */
void rf_pstate_ok(struct rf_store *s, const char *id, int64_t now_ms);
/* The latest quota figures (rf_store_provider_quota's meaning). */
void rf_pstate_quota(struct rf_store *s, const char *id,
    long remaining_requests, long remaining_tokens, int64_t reset_ms,
    int64_t now_ms);

/* Write what waits now, on the caller's thread, each store call within
 * budget_ms.  Returns how many providers still have writes waiting (0 =
 * the store has everything). */
int rf_pstate_flush(struct rf_store *s, int budget_ms);
/* How many providers have writes the store has not taken yet. */
int rf_pstate_waiting(void);

#endif
