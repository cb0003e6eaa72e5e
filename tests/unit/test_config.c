/* Unit tests of config: defaults (taken from the catalog), environment
 * over file, the file format, bounds, URLs, the chain rules, CORS origins,
 * and that no value ever reaches an error message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "store.h"
#include "provider.h"

#ifndef RF_DEFAULT_DB
#define RF_DEFAULT_DB "var/relayforge.db"
#endif

extern char **environ;

/* Pids are catalog indexes, looked up by id. */
#define GROQ rf_config_pid("groq")
#define SAMBANOVA rf_config_pid("sambanova")
#define CEREBRAS rf_config_pid("cerebras")
#define GEMINI rf_config_pid("gemini")
#define OPENROUTER rf_config_pid("openrouter")
#define MOCK rf_config_pid("mock")

static char cfg_path[64];

/* Remove every RELAYFORGE_* and *_API_KEY variable (names first, since
 * unsetenv changes environ under our feet). */
static void
clear_env(void)
{
	char *names[256];
	size_t n = 0, i, l;
	const char *e, *eq;

	for (i = 0; environ[i] != NULL && n < 256; i++) {
		e = environ[i];
		if ((eq = strchr(e, '=')) == NULL)
			continue;
		l = (size_t)(eq - e);
		if (strncmp(e, "RELAYFORGE_", 11) == 0 ||
		    (l > 8 && strncmp(eq - 8, "_API_KEY", 8) == 0))
			names[n++] = strndup(e, l);
	}
	for (i = 0; i < n; i++) {
		unsetenv(names[i]);
		free(names[i]);
	}
}

static int
setup(void **state)
{
	(void)state;
	clear_env();
	cfg_path[0] = '\0';
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	clear_env();
	if (cfg_path[0] != '\0')
		unlink(cfg_path);
	return 0;
}

/* Write text to a temporary file and point RELAYFORGE_CONFIG at it. */
static void
use_file(const char *text)
{
	FILE *fp;
	int fd;

	snprintf(cfg_path, sizeof(cfg_path), "/tmp/rf-test-cfg-XXXXXX");
	fd = mkstemp(cfg_path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	setenv("RELAYFORGE_CONFIG", cfg_path, 1);
}

static void
load_ok(struct rf_config *cfg)
{
	char err[256];

	if (rf_config_load(cfg, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
}

/* Load must fail; err receives the message; the config is left zeroed. */
static void
load_fail(char *err, size_t errlen)
{
	struct rf_config cfg;

	memset(&cfg, 0x5a, sizeof(cfg));
	assert_int_equal(rf_config_load(&cfg, err, errlen), -1);
	assert_null(cfg.db_path);
	assert_int_equal(cfg.chain_len, 0);
	assert_null(cfg.providers[0].url);
}

static void
assert_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

static void
test_defaults(void **state)
{
	static const char *urls[] = { "https://api.groq.com/openai/v1",
	    "https://api.sambanova.ai/v1", "https://api.cerebras.ai/v1",
	    "https://generativelanguage.googleapis.com/v1beta",
	    "https://openrouter.ai/api/v1", "" };
	static const char *models[] = { "llama-3.1-8b-instant",
	    "Meta-Llama-3.3-70B-Instruct", "gpt-oss-120b",
	    "gemini-2.5-flash-lite", "meta-llama/llama-3.3-70b-instruct:free",
	    "relayforge-mock-1" };
	static const char *names[] = { "Groq", "SambaNova", "Cerebras",
	    "Gemini", "OpenRouter", "Mock" };
	static const struct rf_provider_ops *const wires[] = { &rf_ops_openai,
	    &rf_ops_openai, &rf_ops_openai, &rf_ops_gemini, &rf_ops_openai,
	    &rf_ops_mock };
	struct rf_config cfg;
	int i;

	(void)state;
	load_ok(&cfg);
	assert_string_equal(cfg.db_path, RF_DEFAULT_DB);
	assert_int_equal(cfg.chain_len, 6);
	assert_int_equal(cfg.nproviders, 6);
	assert_int_equal(rf_nproviders, 6);
	for (i = 0; i < cfg.nproviders; i++) {
		assert_int_equal(cfg.chain[i], i);
		assert_string_equal(cfg.providers[i].id, rf_config_id(i));
		assert_string_equal(cfg.providers[i].name, names[i]);
		assert_string_equal(cfg.providers[i].url, urls[i]);
		assert_string_equal(cfg.providers[i].model, models[i]);
		assert_ptr_equal(cfg.providers[i].def, &rf_providers[i]);
		assert_ptr_equal(cfg.providers[i].def->ops, wires[i]);
		assert_null(cfg.providers[i].key);
		assert_int_equal(cfg.providers[i].configured, i == MOCK);
	}
	assert_true(cfg.mock_on);
	assert_int_equal(cfg.mock_delay_ms, 15);
	assert_int_equal(cfg.connect_timeout_ms, 3000);
	assert_int_equal(cfg.timeout_ms, 60000);
	assert_int_equal(cfg.first_token_timeout_ms, 10000);
	assert_int_equal(cfg.stream_idle_timeout_ms, 20000);
	assert_int_equal(cfg.stream_timeout_ms, 300000);
	assert_int_equal(cfg.retries, 1);
	assert_int_equal(cfg.retry_after_max_ms, 2000);
	assert_int_equal(cfg.cooldown_ms, 30000);
	assert_int_equal(cfg.failure_threshold, 3);
	assert_int_equal(cfg.max_body_bytes, 65536);
	assert_int_equal(cfg.max_prompt_chars, 32000);
	assert_int_equal(cfg.max_tokens_limit, 4096);
	assert_string_equal(cfg.cors_origins, "");
	assert_null(cfg.api_token);
	assert_null(cfg.admin_token);
	assert_int_equal(cfg.rate_limit, 60);
	assert_false(cfg.log_prompts);
	assert_int_equal(cfg.retention_days, 30);
	assert_int_equal(cfg.threads, 8);
	assert_int_equal(cfg.max_streams, 10000);
	rf_config_free(&cfg);
	assert_null(cfg.db_path);
	rf_config_free(&cfg); /* twice is safe */
}

static void
test_env_values(void **state)
{
	struct rf_config cfg;

	(void)state;
	setenv("RELAYFORGE_DB", "/srv/rf.db", 1);
	setenv("RELAYFORGE_THREADS", "1024", 1);
	setenv("RELAYFORGE_MAX_STREAMS", "1000000", 1);
	setenv("RELAYFORGE_RATE_LIMIT", "0", 1);
	setenv("RELAYFORGE_LOG_PROMPTS", "preview", 1);
	setenv("RELAYFORGE_API_TOKEN", "tok1", 1);
	setenv("RELAYFORGE_ADMIN_TOKEN", "", 1);
	setenv("GROQ_API_KEY", "gsk_1", 1);
	setenv("GEMINI_API_KEY", "", 1); /* empty = unset */
	setenv("RELAYFORGE_GROQ_MODEL", "llama-x", 1);
	setenv("RELAYFORGE_CEREBRAS_URL", "HTTP://127.0.0.1:9999/v1//", 1);
	load_ok(&cfg);
	assert_string_equal(cfg.db_path, "/srv/rf.db");
	assert_int_equal(cfg.threads, 1024);
	assert_int_equal(cfg.max_streams, 1000000);
	assert_int_equal(cfg.rate_limit, 0);
	assert_true(cfg.log_prompts);
	assert_string_equal(cfg.api_token, "tok1");
	assert_null(cfg.admin_token);
	assert_true(cfg.providers[GROQ].configured);
	assert_string_equal(cfg.providers[GROQ].key, "gsk_1");
	assert_string_equal(cfg.providers[GROQ].model, "llama-x");
	assert_false(cfg.providers[GEMINI].configured);
	assert_null(cfg.providers[GEMINI].key);
	assert_string_equal(cfg.providers[CEREBRAS].url,
	    "HTTP://127.0.0.1:9999/v1");
	rf_config_free(&cfg);
}

static void
test_env_wins_over_file(void **state)
{
	struct rf_config cfg;

	(void)state;
	use_file("RELAYFORGE_TIMEOUT_MS=5000\nRELAYFORGE_RETRIES=3\n"
	    "GROQ_API_KEY=from-file\n");
	setenv("RELAYFORGE_TIMEOUT_MS", "7000", 1);
	setenv("GROQ_API_KEY", "from-env", 1);
	load_ok(&cfg);
	assert_int_equal(cfg.timeout_ms, 7000);
	assert_int_equal(cfg.retries, 3);
	assert_string_equal(cfg.providers[GROQ].key, "from-env");
	rf_config_free(&cfg);
}

static void
test_file_format(void **state)
{
	struct rf_config cfg;

	(void)state;
	use_file("# RelayForge settings\n"
	    "\n"
	    "   \t\n"
	    "  RELAYFORGE_THREADS =  \"4\"  \n"
	    "RELAYFORGE_CHAIN = groq , mock\r\n"
	    "SAMBANOVA_API_KEY=\"sn-key\"\n"
	    "OTHER_SETTING=whatever\n"
	    "RELAYFORGE_CORS_ORIGINS=\"https://a.example\"\n"
	    "RELAYFORGE_MOCK_DELAY_MS=1\n"
	    "RELAYFORGE_MOCK_DELAY_MS=2\n"
	    "# RELAYFORGE_NOT_A_KEY=1 is only a comment\n");
	load_ok(&cfg);
	assert_int_equal(cfg.threads, 4);
	assert_int_equal(cfg.chain_len, 2);
	assert_int_equal(cfg.chain[0], GROQ);
	assert_int_equal(cfg.chain[1], MOCK);
	assert_string_equal(cfg.providers[SAMBANOVA].key, "sn-key");
	assert_true(cfg.providers[SAMBANOVA].configured);
	assert_string_equal(cfg.cors_origins, "https://a.example");
	assert_int_equal(cfg.mock_delay_ms, 2); /* the last line wins */
	rf_config_free(&cfg);
}

static void
test_file_unknown_key(void **state)
{
	char err[256];

	(void)state;
	use_file("RELAYFORGE_THREADS=2\nRELAYFORGE_TIMEOUTMS=5\n");
	load_fail(err, sizeof(err));
	assert_prefix(err, "RELAYFORGE_CONFIG:");
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "RELAYFORGE_TIMEOUTMS"));
}

static void
test_file_bad_line(void **state)
{
	char err[256];

	(void)state;
	use_file("# ok\nRELAYFORGE_THREADS=2\nthis line has no equals sign\n");
	load_fail(err, sizeof(err));
	assert_prefix(err, "RELAYFORGE_CONFIG:");
	assert_non_null(strstr(err, "line 3"));
	assert_null(strstr(err, "equals sign"));
	unlink(cfg_path);
	use_file("=value\n");
	load_fail(err, sizeof(err));
	assert_non_null(strstr(err, "line 1"));
}

static void
test_file_unreadable(void **state)
{
	char err[256];

	(void)state;
	setenv("RELAYFORGE_CONFIG", "/nonexistent/relayforge.conf", 1);
	load_fail(err, sizeof(err));
	assert_prefix(err, "RELAYFORGE_CONFIG:");
	assert_null(strstr(err, "nonexistent/relayforge"));
}

static void
test_bounds(void **state)
{
	static const struct {
		const char *key;
		const char *val;
	} bad[] = {
		{ "RELAYFORGE_THREADS", "0" },
		{ "RELAYFORGE_THREADS", "1025" },
		{ "RELAYFORGE_THREADS", "abc" },
		{ "RELAYFORGE_THREADS", "" },
		{ "RELAYFORGE_THREADS", "4x" },
		{ "RELAYFORGE_THREADS", "0x10" },
		{ "RELAYFORGE_THREADS", "+4" },
		{ "RELAYFORGE_THREADS", " 4" },
		{ "RELAYFORGE_THREADS", "4.0" },
		{ "RELAYFORGE_RATE_LIMIT", "-1" },
		{ "RELAYFORGE_RATE_LIMIT", "1000001" },
		{ "RELAYFORGE_RETRIES", "6" },
		{ "RELAYFORGE_TIMEOUT_MS", "0" },
		{ "RELAYFORGE_TIMEOUT_MS", "99999999999999999999999" },
		{ "RELAYFORGE_CONNECT_TIMEOUT_MS", "86400001" },
		{ "RELAYFORGE_FIRST_TOKEN_TIMEOUT_MS", "0" },
		{ "RELAYFORGE_STREAM_IDLE_TIMEOUT_MS", "-5" },
		{ "RELAYFORGE_STREAM_TIMEOUT_MS", "1e6" },
		{ "RELAYFORGE_RETRY_AFTER_MAX_MS", "600001" },
		{ "RELAYFORGE_COOLDOWN_MS", "-1" },
		{ "RELAYFORGE_FAILURE_THRESHOLD", "0" },
		{ "RELAYFORGE_MAX_BODY_BYTES", "1023" },
		{ "RELAYFORGE_MAX_BODY_BYTES", "67108865" },
		{ "RELAYFORGE_MAX_PROMPT_CHARS", "0" },
		{ "RELAYFORGE_MAX_TOKENS_LIMIT", "1000001" },
		{ "RELAYFORGE_RETENTION_DAYS", "0" },
		{ "RELAYFORGE_RETENTION_DAYS", "3651" },
		{ "RELAYFORGE_MOCK_DELAY_MS", "60001" },
		{ "RELAYFORGE_MOCK", "yes" },
		{ "RELAYFORGE_LOG_PROMPTS", "on" },
		{ "RELAYFORGE_DB", "" },
		{ "RELAYFORGE_API_TOKEN", "two words" },
		{ "RELAYFORGE_LOG_QUEUE", "0" },
		{ "RELAYFORGE_LOG_QUEUE", "10000001" },
		{ "RELAYFORGE_MAX_STREAMS", "0" },
		{ "RELAYFORGE_MAX_STREAMS", "1000001" },
		{ "RELAYFORGE_MAX_STREAMS", "-5" },
		{ "RELAYFORGE_MAX_STREAMS", "10k" },
		{ "RELAYFORGE_SPOOL_DIR", "a\nb" },
		{ "RELAYFORGE_NODE", "two words" },
		{ "RELAYFORGE_NODE", "gw/1" },
		{ "RELAYFORGE_NODE", "g\xc3\xa9" },
		{ "RELAYFORGE_NODE", "x12345678901234567890123456789012345678901"
		    "234567890123456789012345" },
	};
	char err[256], prefix[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv(bad[i].key, bad[i].val, 1);
		load_fail(err, sizeof(err));
		snprintf(prefix, sizeof(prefix), "%s:", bad[i].key);
		assert_prefix(err, prefix);
	}
	clear_env();
	setenv("RELAYFORGE_TIMEOUT_MS", "0", 1);
	load_fail(err, sizeof(err));
	assert_string_equal(err, "RELAYFORGE_TIMEOUT_MS: must be an integer "
	    "between 1 and 86400000");
	clear_env();
	setenv("RELAYFORGE_MOCK", "maybe", 1);
	load_fail(err, sizeof(err));
	assert_string_equal(err, "RELAYFORGE_MOCK: must be off or on");
}

/* RELAYFORGE_LOG_QUEUE and the spool directory: set, or beside the
 * SQLite file, or a fixed default for a URI (no file to be beside). */
static void
test_spool_settings(void **state)
{
	static const struct {
		const char *db, *want;
	} derived[] = {
		{ "/var/lib/relayforge/relayforge.db",
		  "/var/lib/relayforge/relayforge.spool" },
		{ "var/x.sqlite", "var/x.sqlite.spool" },
		{ "rf.db", "rf.spool" },
		{ "postgresql://u:secret@db/rf", "var/relayforge.spool" },
	};
	struct rf_config cfg;

	(void)state;
	load_ok(&cfg);
	assert_int_equal(cfg.log_queue, 100000);
	assert_string_equal(cfg.spool_dir, "var/relayforge.spool");
	rf_config_free(&cfg);
	for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++) {
		setenv("RELAYFORGE_DB", derived[i].db, 1);
		load_ok(&cfg);
		assert_string_equal(cfg.spool_dir, derived[i].want);
		rf_config_free(&cfg);
	}
	setenv("RELAYFORGE_SPOOL_DIR", "/srv/spool", 1);
	setenv("RELAYFORGE_LOG_QUEUE", "1", 1);
	load_ok(&cfg);
	assert_string_equal(cfg.spool_dir, "/srv/spool");
	assert_int_equal(cfg.log_queue, 1);
	rf_config_free(&cfg);
}

/* RELAYFORGE_NODE: this machine's name, the host name by default. */
static void
test_node(void **state)
{
	struct rf_config cfg;
	char host[256] = "";

	(void)state;
	load_ok(&cfg);
	assert_true(rf_store_node_valid(cfg.node));
	if (gethostname(host, sizeof host - 1) == 0 &&
	    rf_store_node_valid(host))
		assert_string_equal(cfg.node, host);
	rf_config_free(&cfg);
	setenv("RELAYFORGE_NODE", "gw-2.eu_west", 1);
	load_ok(&cfg);
	assert_string_equal(cfg.node, "gw-2.eu_west");
	rf_config_free(&cfg);
	/* 64 characters is the most. */
	setenv("RELAYFORGE_NODE", "a123456789012345678901234567890123456789"
	    "012345678901234567890123", 1);
	load_ok(&cfg);
	assert_int_equal(strlen(cfg.node), 64);
	rf_config_free(&cfg);
}

static void
test_bounds_edges_accepted(void **state)
{
	struct rf_config cfg;

	(void)state;
	setenv("RELAYFORGE_THREADS", "1", 1);
	setenv("RELAYFORGE_RETRIES", "0", 1);
	setenv("RELAYFORGE_MAX_BODY_BYTES", "1024", 1);
	setenv("RELAYFORGE_MOCK_DELAY_MS", "0", 1);
	setenv("RELAYFORGE_RETENTION_DAYS", "3650", 1);
	setenv("RELAYFORGE_MOCK", "OFF", 1);
	load_ok(&cfg);
	assert_int_equal(cfg.threads, 1);
	assert_int_equal(cfg.retries, 0);
	assert_int_equal(cfg.max_body_bytes, 1024);
	assert_int_equal(cfg.mock_delay_ms, 0);
	assert_int_equal(cfg.retention_days, 3650);
	assert_false(cfg.mock_on);
	rf_config_free(&cfg);
}

static void
test_urls(void **state)
{
	static const char *bad[] = { "ftp://api.example.com", "file:///etc/passwd",
	    "", "https://", "http:///v1", "https:///", "https://a b.com",
	    "api.groq.com/openai/v1", "javascript:alert(1)", "https://?x",
	    "https://host/\n" };
	char err[256];
	struct rf_config cfg;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv("RELAYFORGE_GEMINI_URL", bad[i], 1);
		load_fail(err, sizeof(err));
		assert_prefix(err, "RELAYFORGE_GEMINI_URL:");
	}
	clear_env();
	setenv("RELAYFORGE_OPENROUTER_URL", "https://openrouter.ai/api/v1/", 1);
	setenv("RELAYFORGE_GROQ_URL", "http://localhost", 1);
	load_ok(&cfg);
	assert_string_equal(cfg.providers[OPENROUTER].url,
	    "https://openrouter.ai/api/v1");
	assert_string_equal(cfg.providers[GROQ].url, "http://localhost");
	rf_config_free(&cfg);
}

static void
test_models(void **state)
{
	char err[256], m[130];
	struct rf_config cfg;

	(void)state;
	setenv("RELAYFORGE_SAMBANOVA_MODEL", "", 1);
	load_fail(err, sizeof(err));
	assert_prefix(err, "RELAYFORGE_SAMBANOVA_MODEL:");
	setenv("RELAYFORGE_SAMBANOVA_MODEL", "a\tb", 1);
	load_fail(err, sizeof(err));
	assert_prefix(err, "RELAYFORGE_SAMBANOVA_MODEL:");
	memset(m, 'm', 129);
	m[129] = '\0';
	setenv("RELAYFORGE_SAMBANOVA_MODEL", m, 1);
	load_fail(err, sizeof(err));
	assert_prefix(err, "RELAYFORGE_SAMBANOVA_MODEL:");
	m[128] = '\0';
	setenv("RELAYFORGE_SAMBANOVA_MODEL", m, 1);
	load_ok(&cfg);
	assert_string_equal(cfg.providers[SAMBANOVA].model, m);
	rf_config_free(&cfg);
}

/* Load with the given chain / mock setting and compare the result. */
static void
check_chain(const char *chain, const char *mock, const int *want, int n)
{
	struct rf_config cfg;
	int i;

	clear_env();
	if (chain != NULL)
		setenv("RELAYFORGE_CHAIN", chain, 1);
	if (mock != NULL)
		setenv("RELAYFORGE_MOCK", mock, 1);
	load_ok(&cfg);
	assert_int_equal(cfg.chain_len, n);
	for (i = 0; i < n; i++)
		assert_int_equal(cfg.chain[i], want[i]);
	rf_config_free(&cfg);
}

static void
test_chain_normalised(void **state)
{
	const int appended[] = { GEMINI, GROQ, MOCK };
	const int moved[] = { CEREBRAS, OPENROUTER, MOCK };
	const int removed[] = { GROQ, SAMBANOVA, CEREBRAS, GEMINI, OPENROUTER };
	const int only_mock[] = { MOCK };
	const int trimmed[] = { SAMBANOVA, GROQ };

	(void)state;
	check_chain("gemini,groq", NULL, appended, 3);
	check_chain("cerebras,mock,openrouter", "on", moved, 3);
	check_chain(NULL, "off", removed, 5);
	check_chain("mock", NULL, only_mock, 1);
	check_chain(" sambanova ,, groq ,mock", "off", trimmed, 2);
}

static void
test_chain_errors(void **state)
{
	static const struct {
		const char *chain;
		const char *mock;
	} bad[] = {
		{ "groq,nosuch", NULL },
		{ "groq,Groq", NULL },
		{ "groq,cerebras,groq", NULL },
		{ "mock,mock", NULL },
		{ "mock", "off" },
		{ "", "off" },
		{ " , ", NULL },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv("RELAYFORGE_CHAIN", bad[i].chain, 1);
		if (bad[i].mock)
			setenv("RELAYFORGE_MOCK", bad[i].mock, 1);
		load_fail(err, sizeof(err));
		assert_prefix(err, "RELAYFORGE_CHAIN:");
	}
	clear_env();
	setenv("RELAYFORGE_CHAIN", "groq,cerebras,groq", 1);
	load_fail(err, sizeof(err));
	assert_non_null(strstr(err, "groq"));
	/* The known ids come from the catalog, in its order. */
	clear_env();
	setenv("RELAYFORGE_CHAIN", "nosuch", 1);
	load_fail(err, sizeof(err));
	assert_string_equal(err, "RELAYFORGE_CHAIN: unknown provider id (known: "
	    "groq, sambanova, cerebras, gemini, openrouter, mock)");
}

static void
test_origins(void **state)
{
	struct rf_config cfg;

	(void)state;
	load_ok(&cfg); /* default: same origin only */
	assert_false(rf_config_origin_allowed(&cfg, "https://a.example"));
	assert_false(rf_config_origin_allowed(&cfg, NULL));
	rf_config_free(&cfg);

	setenv("RELAYFORGE_CORS_ORIGINS", "*", 1);
	load_ok(&cfg);
	assert_true(rf_config_origin_allowed(&cfg, "https://anything.example"));
	assert_false(rf_config_origin_allowed(&cfg, ""));
	rf_config_free(&cfg);

	setenv("RELAYFORGE_CORS_ORIGINS",
	    " https://a.example , http://localhost:3000/ ,", 1);
	load_ok(&cfg);
	assert_string_equal(cfg.cors_origins,
	    "https://a.example,http://localhost:3000");
	assert_true(rf_config_origin_allowed(&cfg, "https://a.example"));
	assert_true(rf_config_origin_allowed(&cfg, "http://localhost:3000"));
	assert_false(rf_config_origin_allowed(&cfg, "https://A.example"));
	assert_false(rf_config_origin_allowed(&cfg, "https://a.example.evil"));
	assert_false(rf_config_origin_allowed(&cfg, "https://a.exampl"));
	assert_false(rf_config_origin_allowed(&cfg, "http://localhost"));
	assert_false(rf_config_origin_allowed(&cfg, "*"));
	rf_config_free(&cfg);
}

static void
test_no_value_in_errors(void **state)
{
	char err[256];

	(void)state;
	setenv("GROQ_API_KEY", "secret-xyz", 1);
	setenv("RELAYFORGE_THREADS", "lots", 1);
	load_fail(err, sizeof(err));
	assert_null(strstr(err, "secret"));
	assert_null(strstr(err, "lots"));

	clear_env();
	use_file("GEMINI_API_KEY=secret-in-file\nRELAYFORGE_CHAIN=secret-chain\n");
	load_fail(err, sizeof(err));
	assert_prefix(err, "RELAYFORGE_CHAIN:");
	assert_null(strstr(err, "secret"));

	clear_env();
	setenv("OPENROUTER_API_KEY", "secret\r\nX-Injected: 1", 1);
	load_fail(err, sizeof(err));
	assert_prefix(err, "OPENROUTER_API_KEY:");
	assert_null(strstr(err, "secret"));

	clear_env();
	setenv("RELAYFORGE_ADMIN_TOKEN", "secret\n", 1);
	load_fail(err, sizeof(err));
	assert_prefix(err, "RELAYFORGE_ADMIN_TOKEN:");
	assert_null(strstr(err, "secret"));

	clear_env();
	setenv("RELAYFORGE_GROQ_URL", "ftp://secret@host", 1);
	load_fail(err, sizeof(err));
	assert_null(strstr(err, "secret"));
}

static void
test_lookups(void **state)
{
	struct rf_config cfg;

	(void)state;
	assert_int_equal(rf_config_pid("groq"), GROQ);
	assert_int_equal(rf_config_pid("mock"), MOCK);
	assert_int_equal(rf_config_pid("openrouter"), OPENROUTER);
	assert_int_equal(rf_config_pid("GROQ"), -1);
	assert_int_equal(rf_config_pid(""), -1);
	assert_int_equal(rf_config_pid(NULL), -1);
	assert_string_equal(rf_config_id(GEMINI), "gemini");
	assert_null(rf_config_id(-1));
	assert_null(rf_config_id(rf_nproviders));
	assert_null(rf_config_id(RF_MAX_PROVIDERS));
	setenv("RELAYFORGE_CHAIN", "gemini,groq", 1);
	setenv("RELAYFORGE_MOCK", "off", 1);
	load_ok(&cfg);
	assert_int_equal(rf_config_chain_pos(&cfg, GEMINI), 0);
	assert_int_equal(rf_config_chain_pos(&cfg, GROQ), 1);
	assert_int_equal(rf_config_chain_pos(&cfg, MOCK), -1);
	assert_int_equal(rf_config_chain_pos(&cfg, CEREBRAS), -1);
	rf_config_free(&cfg);
}

static void
test_free_zeroed(void **state)
{
	struct rf_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	rf_config_free(&cfg);
	rf_config_free(&cfg);
	rf_config_free(NULL);
	assert_null(cfg.db_path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_wins_over_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_unknown_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_bad_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_unreadable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_settings, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bounds_edges_accepted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_models, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_normalised, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chain_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_origins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_value_in_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lookups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_zeroed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
