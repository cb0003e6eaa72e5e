/*
 * bench_usage: how fast /api/v1/usage answers over a large store
 * (docs/performance.md: under 50 ms over 1,000,000 logged requests).
 *
 *   build/tests/bench_usage [path [count]]
 *
 * Fills path (default build/bench-usage.db) with count (default 1000000)
 * requests spread over the last 30 days through rf_store_log_request --
 * the real write path, so the rollups are the ones a responder keeps --
 * unless the file already holds that many; then times rf_store_usage for
 * each window and the whole usage handler (JSON included) for 30d, and
 * prints the figures.  Not a test: nothing fails on a slow machine.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "config.h"
#include "handlers.h"
#include "request.h"
#include "store.h"
#include "util.h"

#define DAY_MS 86400000LL
#define RUNS 25

static uint64_t rng = 88172645463325252ULL;

/* xorshift64: deterministic, so two runs build the same store. */
static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A latency with a long tail: mostly 100..1100 ms, some up to 20 s. */
static long
fake_latency(void)
{
	uint64_t r = next_rand();

	if (r % 100 < 90)
		return 100 + (long)(r >> 8) % 1000;
	return 1000 + (long)(r >> 8) % 19000;
}

static void
fake_entry(struct rf_log_entry *e, struct rf_log_attempt *a,
    int64_t ts, long i)
{
	static const char *const prov[] = { "groq", "groq", "groq",
	    "cerebras", "cerebras", "gemini", "openrouter", "mock" };
	uint64_t r = next_rand();
	const char *final = prov[r % 8];
	bool fb = (r >> 8) % 10 == 0, ok = (r >> 16) % 20 != 0;
	static char rid[40];

	snprintf(rid, sizeof rid, "bench-%ld", i);
	a[0] = (struct rf_log_attempt){ fb ? "groq" : final, fb ?
	    "provider_rate_limited" : ok ? "ok" : "provider_unavailable",
	    NULL, fb ? 429 : ok ? 200 : 503, 30, 0 };
	a[1] = (struct rf_log_attempt){ final, ok ? "ok" :
	    "provider_unavailable", NULL, ok ? 200 : 503, 0, 0 };
	*e = (struct rf_log_entry){ .request_id = rid, .ts_ms = ts,
	    .endpoint = r % 3 ? "chat" : "stream", .strategy = "auto",
	    .attempted_provider = fb ? "groq" : final, .final_provider = final,
	    .fallback = fb, .degraded = fb, .demo = strcmp(final, "mock") == 0,
	    .success = ok, .error_code = ok ? NULL : "provider_unavailable",
	    .http_status = ok ? 200 : 502, .latency_ms = fake_latency(),
	    .ttft_ms = -1, .model = "bench-model", .prompt_chars = 40,
	    .prompt_tokens = 12, .completion_tokens = ok ? 80 : -1,
	    .source = "bench", .attempts = a, .nattempts = fb ? 2 : 1 };
	a[1].latency_ms = e->latency_ms;
}

static long
count_rows(struct rf_store *s, int64_t now)
{
	struct rf_usage_report r;
	int64_t to = now - now % DAY_MS + DAY_MS;
	long n;

	if (rf_store_usage(s, to - 31 * DAY_MS, to, DAY_MS, &r) != 0)
		return -1;
	n = (long)r.totals.requests;
	rf_store_usage_free(&r);
	return n;
}

static int
fill(struct rf_store *s, long count, int64_t now)
{
	struct rf_log_entry e;
	struct rf_log_attempt a[2];
	int64_t start = now - 30 * DAY_MS, t0 = rf_mono_ms();

	for (long i = 0; i < count; i++) {
		fake_entry(&e, a, start + (int64_t)((double)i / (double)count *
		    (double)(30 * DAY_MS)), i);
		if (rf_store_log_request(s, &e) != 0)
			return -1;
		if ((i + 1) % 100000 == 0)
			fprintf(stderr, "  %ld requests logged (%.0f/s)\n", i + 1,
			    (double)(i + 1) * 1000.0 /
			    (double)(rf_mono_ms() - t0 + 1));
	}
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Milliseconds of one call, from a monotonic clock with microseconds. */
static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void
time_window(struct rf_store *s, const char *name, int64_t bucket,
    int64_t window, int64_t now)
{
	double t[RUNS];
	int64_t to = now - now % bucket + bucket;
	struct rf_usage_report r;
	long n = 0;

	for (int i = 0; i < RUNS; i++) {
		double t0 = now_us();
		if (rf_store_usage(s, to - window, to, bucket, &r) != 0) {
			printf("usage %s: failed\n", name);
			return;
		}
		t[i] = (now_us() - t0) / 1000.0;
		n = (long)r.totals.requests;
		rf_store_usage_free(&r);
	}
	qsort(t, RUNS, sizeof t[0], cmp_double);
	printf("usage %-3s over %ld requests: median %.2f ms, max %.2f ms"
	    " (store query)\n", name, n, t[RUNS / 2], t[RUNS - 1]);
}

/* The status report and a few log pages on the same store (not a documented
 * figure, but they must not fall over at this size either). */
static void
time_reads(struct rf_store *s, int64_t now)
{
	static const char *const ids[] = { "groq", "sambanova", "cerebras",
	    "gemini", "openrouter", "mock" };
	static const struct rf_log_query qs[] = {
		{ .limit = 50 },
		{ .limit = 50, .status = "error" },
		{ .limit = 50, .provider = "gemini" },
		{ .limit = 50, .endpoint = "stream", .status = "error" },
		{ .limit = 200, .before_id = 500000 },
	};
	static const char *const names[] = { "newest 50", "status=error",
	    "provider=gemini", "endpoint=stream&status=error",
	    "limit=200&before=500000" };
	struct rf_provider_report rep[6];
	struct rf_log_page pg;
	double t0 = now_us();

	if (rf_store_provider_reports(s, ids, 6, now - 900000, rep) == 0)
		printf("status report (15 min window, %ld groq calls): %.2f ms\n",
		    rep[0].requests, (now_us() - t0) / 1000.0);
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		t0 = now_us();
		if (rf_store_logs(s, &qs[i], &pg) != 0)
			continue;
		printf("logs page %-28s %3zu items: %.2f ms\n", names[i],
		    pg.nitems, (now_us() - t0) / 1000.0);
		rf_store_log_page_free(&pg);
	}
}

/* ---- the whole handler, output discarded ---- */

static const char *
no_param(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

static long
no_read(void *ctx, char *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	return 0;
}

static int
sink_write(void *ctx, const char *p, size_t n)
{
	*(size_t *)ctx += n;
	(void)p;
	return 0;
}

static int
sink_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static void
time_handler(struct rf_store *s, const struct rf_config *cfg)
{
	struct rf_worker w = { .cfg = cfg, .store = s };
	double t[RUNS];
	size_t bytes = 0;

	for (int i = 0; i < RUNS; i++) {
		struct rf_request rq = { .param = no_param, .read = no_read,
		    .out = { sink_write, sink_flush, &bytes, false },
		    .method = "GET", .query = "window=30d" };
		double t0 = now_us();
		snprintf(rq.request_id, sizeof rq.request_id, "bench");
		rf_handle_usage(&w, &rq);
		t[i] = (now_us() - t0) / 1000.0;
		rf_buf_free(&rq.body);
	}
	qsort(t, RUNS, sizeof t[0], cmp_double);
	printf("GET /api/v1/usage?window=30d handler: median %.2f ms,"
	    " max %.2f ms (%zu bytes per answer)\n", t[RUNS / 2],
	    t[RUNS - 1], bytes / RUNS);
}

static struct rf_store *
open_store(const char *path, char *err, size_t n)
{
	return rf_store_open(path, err, n);
}

static void
remove_db(const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[1024];

	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		unlink(p);
	}
}

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "build/bench-usage.db";
	long count = argc > 2 ? strtol(argv[2], NULL, 10) : 1000000;
	struct rf_config cfg;
	struct rf_store *s;
	char err[256];
	int64_t now = rf_now_ms();
	long have;

	if (rf_config_load(&cfg, err, sizeof err) != 0) {
		fprintf(stderr, "bench_usage: %s\n", err);
		return 1;
	}
	s = open_store(path, err, sizeof err);
	have = s != NULL ? count_rows(s, now) : -1;
	if (s != NULL && have < count) {
		/* Missing, or older than the window: start over. */
		rf_store_close(s);
		remove_db(path);
		s = open_store(path, err, sizeof err);
		if (s != NULL) {
			printf("filling %s with %ld requests over 30 days...\n",
			    path, count);
			if (fill(s, count, now) != 0)
				snprintf(err, sizeof err, "logging failed");
			else
				have = count;
		}
	} else if (s != NULL) {
		printf("reusing %s (%ld requests in the last 30 days)\n", path,
		    have);
	}
	if (s == NULL || have < count) {
		fprintf(stderr, "bench_usage: %s\n", err);
		rf_store_close(s);
		rf_config_free(&cfg);
		return 1;
	}
	time_window(s, "1h", 60000, 3600000, now);
	time_window(s, "24h", 3600000, DAY_MS, now);
	time_window(s, "7d", 21600000, 7 * DAY_MS, now);
	time_window(s, "30d", DAY_MS, 30 * DAY_MS, now);
	time_handler(s, &cfg);
	time_reads(s, now);
	rf_store_close(s);
	rf_config_free(&cfg);
	return 0;
}
