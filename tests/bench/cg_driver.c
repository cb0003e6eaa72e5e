/*
 * cg_driver: serves chat requests in-process, for `make bench-check`.
 *
 *   cg_driver N      (configuration from the environment, as the responder)
 *
 * It links the responder's library and calls rf_router_serve exactly as
 * main.c's worker threads do, with the FastCGI glue replaced by memory: the
 * request comes from a buffer, the response goes to one.  A few warm-up
 * requests open the store and the upstream connection; then cg_measured()
 * serves N more.  Run under
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=cg_measured
 * the instruction count divided by N is the cost of one warm chat request:
 * parsing, the fallback chain, the upstream call through libcurl, the JSON
 * answer and the SQLite log write -- everything but the wait for the wire.
 * Exits 1 unless every request answered 200 with no new upstream connection
 * after the warm-up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "chain.h"
#include "config.h"
#include "router.h"
#include "store.h"
#include "upstream.h"

#define WARMUP 5
#define OUT_MAX (1024 * 1024)

static const char body[] = "{\"prompt\":\"Explain the fallback strategy in"
    " RelayForge\",\"options\":{\"maxTokens\":64}}";

struct mem {
	char clen[16];
	size_t off;
	struct rf_buf out;
};

static const char *
mem_param(void *ctx, const char *name)
{
	struct mem *m = ctx;
	static const char *const fixed[][2] = {
		{ "REQUEST_METHOD", "POST" },
		{ "REQUEST_URI", "/api/v1/chat" },
		{ "SCRIPT_NAME", "/api" },
		{ "PATH_INFO", "/v1/chat" },
		{ "CONTENT_TYPE", "application/json" },
		{ "REMOTE_ADDR", "127.0.0.1" },
		{ "SERVER_PROTOCOL", "HTTP/1.1" },
	};

	if (strcmp(name, "CONTENT_LENGTH") == 0)
		return m->clen;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(fixed[i][0], name) == 0)
			return fixed[i][1];
	return NULL;
}

static long
mem_read(void *ctx, char *buf, size_t n)
{
	struct mem *m = ctx;
	size_t left = sizeof(body) - 1 - m->off;

	if (n > left)
		n = left;
	memcpy(buf, body + m->off, n);
	m->off += n;
	return (long)n;
}

static int
mem_write(void *ctx, const char *p, size_t n)
{
	return rf_buf_append(&((struct mem *)ctx)->out, p, n);
}

static int
mem_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

/* Serve one chat request; 0 when it answered 200. */
static int
serve_one(struct rf_worker *w, struct mem *m)
{
	struct rf_request rq = {
		.param = mem_param, .read = mem_read, .ctx = m,
		.out = { .write = mem_write, .flush = mem_flush, .ctx = m },
	};

	m->off = 0;
	rf_buf_reset(&m->out);
	rf_router_serve(w, &rq);
	return strncmp(rf_buf_str(&m->out), "Status: 200", 11) == 0 ? 0 : -1;
}

/* The measured part: callgrind counts only inside this function. */
__attribute__((noinline)) int cg_measured(struct rf_worker *w, struct mem *m,
    int n);
__attribute__((noinline)) int cg_measured(struct rf_worker *w, struct mem *m,
    int n)
{
	int failed = 0;

	for (int i = 0; i < n; i++)
		failed += serve_one(w, m) != 0;
	return failed;
}

int
main(int argc, char **argv)
{
	static struct rf_config cfg;
	struct rf_worker w = { .cfg = &cfg };
	struct mem m;
	char err[512];
	int n = argc > 1 ? atoi(argv[1]) : 100, failed = 0;
	long warm_connects;

	if (n <= 0 || rf_config_load(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "cg_driver: %s\n", n <= 0 ? "usage: cg_driver N" : err);
		return 2;
	}
	rf_up_global_init();
	snprintf(m.clen, sizeof(m.clen), "%zu", sizeof(body) - 1);
	rf_buf_init(&m.out, OUT_MAX);
	w.store = rf_store_open(cfg.db_path, err, sizeof(err));
	w.up = rf_up_new();
	if (w.store == NULL || w.up == NULL) {
		fprintf(stderr, "cg_driver: store: %s\n", err);
		return 2;
	}
	for (int i = 0; i < WARMUP; i++)
		failed += serve_one(&w, &m) != 0;
	warm_connects = rf_up_connects(w.up);
	failed += cg_measured(&w, &m, n);
	if (failed > 0)
		fprintf(stderr, "cg_driver: %d of %d requests failed; last answer:\n%s\n",
		    failed, n + WARMUP, rf_buf_str(&m.out));
	printf("cg_driver: %d requests, %ld upstream connections after warm-up\n",
	    n, rf_up_connects(w.up) - warm_connects);
	failed += rf_up_connects(w.up) != warm_connects;
	rf_buf_free(&m.out);
	rf_store_close(w.store);
	rf_up_free(w.up);
	rf_up_global_cleanup();
	rf_config_free(&cfg);
	return failed > 0 ? 1 : 0;
}
