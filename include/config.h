/*
 * config: every setting of docs/configuration.md, read once at start from the
 * environment and then from the RELAYFORGE_CONFIG file (the environment
 * wins), for every provider of the catalog (provider.h) and every scalar
 * setting.  A bad value stops start-up with a message naming the key.
 * Prefix: rf_config_.
 */
#ifndef RF_CONFIG_H
#define RF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* A compile-time cap on the catalog, for arrays indexed by pid.  The
 * catalog itself (provider.h: rf_providers[], rf_nproviders) says how many
 * providers there are; cfg->nproviders is the same figure. */
#define RF_MAX_PROVIDERS 16

struct rf_provider;

/* One provider as configured: its catalog entry plus what the settings
 * made of it.  A pid is the index of this record, the same as the index of
 * def in the catalog. */
struct rf_provider_conf {
	const char *id;   /* "groq" (static; def->id) */
	const char *name; /* "Groq" (static; def->name) */
	const struct rf_provider *def; /* the catalog entry: quirks, flags, ops */
	char *url;        /* base URL, e.g. https://api.groq.com/openai/v1 (owned) */
	char *model;      /* model id sent upstream (owned) */
	char *key;        /* API key or NULL (owned; never printed) */
	bool configured;  /* key set (built-in providers: always true) */
};

struct rf_config {
	char *db_path;
	struct rf_provider_conf providers[RF_MAX_PROVIDERS]; /* by pid */
	int nproviders;         /* the catalog's size: pids are 0..nproviders-1 */
	int chain[RF_MAX_PROVIDERS]; /* routing order for auto, as pids */
	int chain_len;          /* built-ins last when the mock is on, else absent */
	bool mock_on;
	long mock_delay_ms;
	long connect_timeout_ms;
	long timeout_ms;
	long first_token_timeout_ms;
	long stream_idle_timeout_ms;
	long stream_timeout_ms;
	int retries;
	long retry_after_max_ms;
	long cooldown_ms;
	int failure_threshold;
	long max_body_bytes;
	long max_prompt_chars;
	int max_tokens_limit;
	char *cors_origins; /* "" = same origin only, "*" or a comma list */
	char *api_token;    /* NULL when unset */
	char *admin_token;  /* NULL when unset */
	int rate_limit;     /* per minute per client; 0 = off */
	bool log_prompts;   /* RELAYFORGE_LOG_PROMPTS=preview */
	int retention_days;
	int threads;
	long log_queue;     /* rows that may wait in the spool */
	int max_streams;    /* open engine requests per process; past it 503 */
	char *spool_dir;    /* RELAYFORGE_SPOOL_DIR, or derived from db_path */
	char *node;         /* RELAYFORGE_NODE, or the host name */
};

/* Load from getenv() and the file named by RELAYFORGE_CONFIG.
 * Returns 0, or -1 with a message naming the bad key in err.  On -1 the
 * config is freed and zeroed.  The caller frees with rf_config_free(). */
int rf_config_load(struct rf_config *cfg, char *err, size_t errlen);
void rf_config_free(struct rf_config *cfg);

/* The pid (catalog index) of an id ("groq"), or -1. */
int rf_config_pid(const char *id);
/* The id of a pid ("groq", static), or NULL when out of range. */
const char *rf_config_id(int pid);
/* Position of pid in the chain (0-based), or -1 when not in the chain. */
int rf_config_chain_pos(const struct rf_config *cfg, int pid);
/* true when origin may call the API cross-origin. */
bool rf_config_origin_allowed(const struct rf_config *cfg, const char *origin);

#endif
