/*
 * test_catalog: a new OpenAI-wire provider is one catalog entry.
 *
 * This test compiles src/catalog.c itself with one more entry, "acme"
 * (RF_CATALOG_EXTRA, below), written exactly as docs/providers.md says to
 * add one; the library's catalog.o defines nothing else, so the linker
 * takes these two symbols from here and never pulls it in.  With no other change,
 * configuration reads ACME_API_KEY, RELAYFORGE_ACME_URL and
 * RELAYFORGE_ACME_MODEL, the default chain holds acme before the mock,
 * RELAYFORGE_CHAIN may name it, its quirks reach the request, and the
 * fallback engine calls it: a chat run answered by a loopback server
 * playing Acme, and a run that falls back to the mock when Acme is down.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chain.h"
#include "config.h"
#include "provider.h"
#include "upstream.h"

/* The new provider: the one entry docs/providers.md adds to the catalog. */
#define RF_CATALOG_EXTRA \
	{ \
		.id = "acme", .name = "Acme", .env = "ACME", \
		.url = "https://api.acme.test/v1", .model = "acme-chat-1", \
		.max_tokens_field = "max_completion_tokens", \
		.extra_header = { "X-Acme-Client", "RelayForge" }, \
		.ops = &rf_ops_openai, \
	},
#include "../../src/catalog.c"

#define ACME 5
#define MOCK 6

static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: "
    "application/json\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s";
static const char answer_body[] = "{\"model\":\"acme-chat-1\",\"choices\":[{"
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hello from Acme\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
    "\"completion_tokens\":3}}";

static int listen_fd = -1;
static char request[8192]; /* what the server received */

/* Serve one request with answer, then close.  The request is read until
 * its body (Content-Length) is in. */
static void *
serve_once(void *arg)
{
	char out[1024];
	size_t got = 0;
	const char *end, *cl;
	ssize_t r;
	int fd;

	(void)arg;
	if ((fd = accept(listen_fd, NULL, NULL)) < 0)
		return NULL;
	while (got + 1 < sizeof(request) &&
	    (r = recv(fd, request + got, sizeof(request) - got - 1, 0)) > 0) {
		got += (size_t)r;
		request[got] = '\0';
		end = strstr(request, "\r\n\r\n");
		cl = strstr(request, "Content-Length: ");
		if (end != NULL && cl != NULL && got >= (size_t)(end + 4 -
		    request) + strtoul(cl + 16, NULL, 10))
			break;
	}
	snprintf(out, sizeof(out), answer, strlen(answer_body), answer_body);
	(void)send(fd, out, strlen(out), MSG_NOSIGNAL);
	close(fd);
	return NULL;
}

/* Listen on 127.0.0.1:0; returns the port. */
static int
listen_loopback(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(listen_fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(listen_fd, 4), 0);
	assert_int_equal(getsockname(listen_fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

static int
setup(void **state)
{
	int i;
	char name[64];

	(void)state;
	unsetenv("RELAYFORGE_CONFIG");
	unsetenv("RELAYFORGE_CHAIN");
	unsetenv("RELAYFORGE_MOCK");
	unsetenv("RELAYFORGE_ACME_URL");
	unsetenv("RELAYFORGE_ACME_MODEL");
	setenv("RELAYFORGE_MOCK_DELAY_MS", "0", 1);
	for (i = 0; i < rf_nproviders; i++) {
		if (rf_providers[i].env == NULL)
			continue;
		snprintf(name, sizeof(name), "%s_API_KEY", rf_providers[i].env);
		unsetenv(name);
	}
	return 0;
}

static void
load(struct rf_config *cfg)
{
	char err[256];

	if (rf_config_load(cfg, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
}

static void
test_config_reads_the_new_entry(void **state)
{
	struct rf_config cfg;
	int i;

	(void)state;
	load(&cfg);
	assert_int_equal(cfg.nproviders, 7);
	assert_int_equal(rf_config_pid("acme"), ACME);
	assert_string_equal(rf_config_id(ACME), "acme");
	assert_ptr_equal(cfg.providers[ACME].def, &rf_providers[ACME]);
	assert_string_equal(cfg.providers[ACME].name, "Acme");
	assert_string_equal(cfg.providers[ACME].url, "https://api.acme.test/v1");
	assert_string_equal(cfg.providers[ACME].model, "acme-chat-1");
	assert_false(cfg.providers[ACME].configured);
	/* The default chain is the catalog order, the mock last. */
	assert_int_equal(cfg.chain_len, 7);
	for (i = 0; i < 7; i++)
		assert_int_equal(cfg.chain[i], i);
	rf_config_free(&cfg);

	setenv("ACME_API_KEY", "acme-key", 1);
	setenv("RELAYFORGE_ACME_URL", "http://127.0.0.1:9/v1/", 1);
	setenv("RELAYFORGE_ACME_MODEL", "acme-chat-2", 1);
	setenv("RELAYFORGE_CHAIN", "acme, groq", 1);
	load(&cfg);
	assert_true(cfg.providers[ACME].configured);
	assert_string_equal(cfg.providers[ACME].key, "acme-key");
	assert_string_equal(cfg.providers[ACME].url, "http://127.0.0.1:9/v1");
	assert_string_equal(cfg.providers[ACME].model, "acme-chat-2");
	assert_int_equal(cfg.chain_len, 3);
	assert_int_equal(cfg.chain[0], ACME);
	assert_int_equal(cfg.chain[2], MOCK);
	rf_config_free(&cfg);
}

static void
test_config_file_knows_the_new_keys(void **state)
{
	char path[] = "/tmp/rf-test-catalog-XXXXXX";
	struct rf_config cfg;
	FILE *fp;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs("RELAYFORGE_ACME_URL=https://eu.acme.test/v1\n"
	    "RELAYFORGE_ACME_MODEL=acme-eu\nACME_API_KEY=k\n", fp);
	fclose(fp);
	setenv("RELAYFORGE_CONFIG", path, 1);
	load(&cfg);
	assert_string_equal(cfg.providers[ACME].url, "https://eu.acme.test/v1");
	assert_string_equal(cfg.providers[ACME].model, "acme-eu");
	assert_true(cfg.providers[ACME].configured);
	rf_config_free(&cfg);
	unlink(path);
}

static void
run_chat(struct rf_config *cfg, struct rf_chain_result *r)
{
	struct rf_worker w = { .cfg = cfg, .store = NULL, .up = rf_up_new() };
	struct rf_chat_req req;

	memset(&req, 0, sizeof(req));
	req.msgs[0] = (struct rf_msg){ "user", "hello" };
	req.nmsgs = 1;
	req.strategy = -1;
	req.fallback = true;
	req.max_tokens = 64;
	req.temperature = 0.5;
	rf_chain_result_init(r);
	r->started_ms = rf_now_ms();
	r->started_mono = rf_mono_ms();
	rf_chain_run(&w, &req, NULL, r);
	rf_up_free(w.up);
}

static void
test_chain_calls_the_new_provider(void **state)
{
	struct rf_config cfg;
	struct rf_chain_result r;
	char url[64];
	pthread_t t;

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", listen_loopback());
	assert_int_equal(pthread_create(&t, NULL, serve_once, NULL), 0);
	setenv("ACME_API_KEY", "acme-key", 1);
	setenv("RELAYFORGE_ACME_URL", url, 1);
	setenv("RELAYFORGE_CHAIN", "acme", 1);
	load(&cfg);
	run_chat(&cfg, &r);
	pthread_join(t, NULL);
	close(listen_fd);
	assert_int_equal(r.err, RF_OK);
	assert_int_equal(r.final_pid, ACME);
	assert_false(r.demo);
	assert_false(r.degraded);
	assert_string_equal(rf_buf_str(&r.res.text), "Hello from Acme");
	/* The request carried its URL, key and quirks. */
	assert_true(strncmp(request, "POST /v1/chat/completions ", 26) == 0);
	assert_non_null(strstr(request, "\r\nAuthorization: Bearer acme-key\r\n"));
	assert_non_null(strstr(request, "\r\nX-Acme-Client: RelayForge\r\n"));
	assert_non_null(strstr(request, "\"max_completion_tokens\":64"));
	assert_non_null(strstr(request, "\"model\":\"acme-chat-1\""));
	rf_chain_result_free(&r);
	rf_config_free(&cfg);
}

static void
test_chain_falls_back_from_the_new_provider(void **state)
{
	struct rf_config cfg;
	struct rf_chain_result r;
	char url[64];
	int port;

	(void)state;
	port = listen_loopback();
	close(listen_fd); /* Acme is down: connections are refused */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", port);
	setenv("ACME_API_KEY", "acme-key", 1);
	setenv("RELAYFORGE_ACME_URL", url, 1);
	setenv("RELAYFORGE_CHAIN", "acme", 1);
	setenv("RELAYFORGE_RETRIES", "0", 1);
	load(&cfg);
	run_chat(&cfg, &r);
	unsetenv("RELAYFORGE_RETRIES");
	assert_int_equal(r.err, RF_OK);
	assert_int_equal(r.attempted, ACME);
	assert_int_equal(r.final_pid, MOCK);
	assert_true(r.fallback);
	assert_true(r.demo);
	assert_string_equal(r.attempts[0].provider, "acme");
	assert_string_equal(r.attempts[0].outcome, "provider_unavailable");
	rf_chain_result_free(&r);
	rf_config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_reads_the_new_entry,
		    setup, NULL),
		cmocka_unit_test_setup_teardown(test_config_file_knows_the_new_keys,
		    setup, NULL),
		cmocka_unit_test_setup_teardown(test_chain_calls_the_new_provider,
		    setup, NULL),
		cmocka_unit_test_setup_teardown(
		    test_chain_falls_back_from_the_new_provider, setup, NULL),
	};
	int rc;

	rf_up_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rf_up_global_cleanup();
	return rc;
}
