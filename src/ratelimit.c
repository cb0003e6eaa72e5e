/*
 * ratelimit: the per-client limit's verdict, from the store's shared count
 * or, when the store does not answer within its budget, from this
 * process's own count of the same minute.
 *
 * Memory: a fixed open-addressed table of RF_RATE_CLIENTS entries under one
 * mutex, probed PROBE slots from the client's hash.  An entry holds the
 * client, the minute it counts, the count the store last returned for it
 * (base) and the requests counted here that the store has not seen
 * (unsynced).  The verdict in memory is base + unsynced; when the store
 * answers again, the unsynced requests go with the next one of that client
 * (one statement adds them all), so the shared count catches up.  An entry
 * of a past minute is free; when all PROBE entries are of this minute, the
 * one with the fewest requests gives way, so a client that hammers is
 * never the one forgotten.
 *
 * The store is tried for every request while it answers.  When it does
 * not (within RF_STORE_HOT_MS), requests are counted in memory only for
 * RF_RATE_RETRY_MS, then the store is tried again: one request per second
 * pays the budget while the store stays locked, the others nothing.  The
 * change is said on stderr once each way.
 *
 * Plain CGI (rf_rate_single_request) has no memory between requests:
 * there the store gets a longer budget and a silence fails closed.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "ratelimit.h"
#include "util.h"

#define MINUTE_MS 60000
#define PROBE 16
#define CLIENT_MAX 64

struct entry {
	char client[CLIENT_MAX]; /* "" = free */
	int64_t window;          /* the minute it counts (wall-clock ms) */
	long base;               /* the store's count, last it answered */
	long unsynced;           /* counted here, not in the store */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry table[RF_RATE_CLIENTS];
static int64_t retry_at;     /* monotonic: skip the store until then */
static bool degraded;        /* said "counted in memory" */
static bool single;          /* plain CGI: one request per process */

void
rf_rate_single_request(void)
{
	pthread_mutex_lock(&lock);
	single = true;
	pthread_mutex_unlock(&lock);
}

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Whether x makes room more cheaply than spare: a free entry first, then
 * one of an older minute, then the fewest requests. */
static bool
better_spare(const struct entry *x, const struct entry *spare)
{
	if (spare == NULL || x->client[0] == '\0')
		return spare == NULL || spare->client[0] != '\0';
	if (spare->client[0] == '\0')
		return false;
	if (x->window != spare->window)
		return x->window < spare->window;
	return x->base + x->unsynced < spare->base + spare->unsynced;
}

/* The entry of client, counting window: its own, else the cheapest of
 * its probe run, taken over (lock held). */
static struct entry *
entry_of(const char *client, int64_t window)
{
	uint32_t h = hash(client);
	struct entry *spare = NULL;

	for (int i = 0; i < PROBE; i++) {
		struct entry *x = &table[(h + (uint32_t)i) % RF_RATE_CLIENTS];

		if (x->client[0] != '\0' &&
		    strncmp(x->client, client, CLIENT_MAX - 1) == 0) {
			if (x->window != window) {
				x->window = window;
				x->base = x->unsynced = 0;
			}
			return x;
		}
		if (better_spare(x, spare))
			spare = x;
	}
	*spare = (struct entry){ .window = window };
	snprintf(spare->client, sizeof spare->client, "%s", client);
	return spare;
}

/* The seconds until the next minute, at least one. */
static int
retry_after(int64_t window, int64_t now_ms)
{
	int64_t left = window + MINUTE_MS - now_ms;
	int secs = (int)((left + 999) / 1000);

	return secs >= 1 ? secs : 1;
}

/* Claim the client's unsynced requests for one store call, or -1 when the
 * store is left alone for now (lock held). */
static long
claim(struct entry *e, struct rf_store *s)
{
	long n;

	if (s == NULL || rf_mono_ms() < retry_at)
		return -1;
	n = e->unsynced;
	e->unsynced = 0;
	return n;
}

/* The store's count of this request plus the claimed ones, or -1. */
static long
ask_store(struct rf_store *s, const char *client, long claimed,
    int64_t now_ms, int budget_ms)
{
	int was = rf_store_budget(budget_ms);
	long count = rf_store_rate_count(s, client,
	    claimed + 1 > 1000000 ? 1000000 : (int)claimed + 1, now_ms);

	rf_store_budget(was);
	return count;
}

/* Record the store's answer (count >= 0) or its silence; returns this
 * process's count of the client's minute (lock held). */
static long
settle(struct entry *e, long claimed, long count)
{
	if (count >= 0) {
		if (count > e->base)
			e->base = count;
		if (degraded) {
			degraded = false;
			RF_LOG_INFO(NULL, NULL, "the store answers again: the rate "
			    "limit is shared by every process again");
		}
		retry_at = 0;
		return e->base + e->unsynced;
	}
	e->unsynced += claimed + 1;
	return e->base + e->unsynced;
}

/* The store did not answer: leave it alone for a while (lock held). */
static void
store_silent(void)
{
	retry_at = rf_mono_ms() + RF_RATE_RETRY_MS;
	if (degraded)
		return;
	degraded = true;
	if (single)
		RF_LOG_WARN(NULL, NULL, "the store did not answer within %d ms: "
		    "request refused (plain CGI keeps no count of its own)",
		    RF_RATE_CGI_MS);
	else
		RF_LOG_WARN(NULL, NULL, "the store did not answer within %d ms: "
		    "the rate limit is counted in this process until it does",
		    RF_STORE_HOT_MS);
}

static int
refuse(int secs, int *retry_after_s)
{
	if (retry_after_s != NULL)
		*retry_after_s = secs;
	return 0;
}

int
rf_rate_hit(struct rf_store *s, const char *client, int limit, int64_t now_ms,
    int *retry_after_s)
{
	int64_t window = now_ms - now_ms % MINUTE_MS;
	long claimed, count = -1, n;
	bool closed;
	struct entry *e;

	if (limit <= 0)
		return 1;
	if (client == NULL || client[0] == '\0')
		client = "unknown";
	pthread_mutex_lock(&lock);
	claimed = claim(entry_of(client, window), s);
	closed = single;
	pthread_mutex_unlock(&lock);
	if (claimed >= 0)
		count = ask_store(s, client, claimed, now_ms,
		    closed ? RF_RATE_CGI_MS : RF_STORE_HOT_MS);
	pthread_mutex_lock(&lock);
	/* Found again: another client may have taken the entry meanwhile. */
	e = entry_of(client, window);
	if (claimed >= 0 && count < 0)
		store_silent();
	n = settle(e, claimed < 0 ? 0 : claimed, count);
	pthread_mutex_unlock(&lock);
	if (closed && claimed >= 0 && count < 0)
		return refuse(1, retry_after_s);
	if (n <= limit)
		return 1;
	return refuse(retry_after(window, now_ms), retry_after_s);
}
