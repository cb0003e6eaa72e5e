/*
 * ratelimit: the per-client request limit (RELAYFORGE_RATE_LIMIT requests
 * per client address and wall-clock minute; docs/api.md), its verdict
 * and its Retry-After.
 *
 * The count is shared by every process through the store, which is given
 * RF_STORE_HOT_MS to answer.  When it does not (locked, unwritable, not
 * open), the limit is enforced in this process's memory for the same
 * minute: the count the store last gave this process for the client plus
 * the requests counted here since -- never open, never waiting.  Those
 * requests are added to the store's count the next time it answers for
 * that client in the same minute.  After a refusal by the store, the
 * store is asked again after RF_RATE_RETRY_MS; meanwhile requests are
 * counted in memory only.
 *
 * Prefix: rf_rate_.  Safe from any thread.
 */
#ifndef RF_RATELIMIT_H
#define RF_RATELIMIT_H

#include <stdint.h>

#include "store.h"

/* How long the store is left alone after it did not answer in time. */
#define RF_RATE_RETRY_MS 1000
/* Clients remembered per process (a fixed table; when it is full, the
 * client with the fewest requests this minute makes room). */
#define RF_RATE_CLIENTS 4096

/* Plain CGI: the process serves one request, so no count of its own
 * outlives it and counting in memory would let every request through.
 * From this call on, the store is given RF_RATE_CGI_MS to answer, and a
 * request it does not answer in time is refused (fail closed, Retry-After
 * 1 s).  Without any store (it cannot be opened) requests still pass: the
 * The gateway keeps chat working then, and the process says on stderr that the
 * store is unavailable. */
#define RF_RATE_CGI_MS 100
void rf_rate_single_request(void);

/* Count one request of client (its address; at most 63 bytes are told
 * apart) at now_ms against limit per minute.  1 = allowed; 0 = over the
 * limit, *retry_after_s (may be NULL) set to the seconds until the next
 * minute (>= 1).  limit <= 0 = no limit (1, nothing counted).  s NULL =
 * no store: counted in memory. */
int rf_rate_hit(struct rf_store *s, const char *client, int limit,
    int64_t now_ms, int *retry_after_s);

#endif
