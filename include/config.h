/*
 * config: every setting of SPEC section 3, read once at start from the
 * environment and then from the RELAYFORGE_CONFIG file (the environment
 * wins).  A bad value stops start-up with a message naming the key.
 * Prefix: rf_config_.
 */
#ifndef RF_CONFIG_H
#define RF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Which wire format a provider speaks. */
enum rf_wire { RF_WIRE_OPENAI, RF_WIRE_GEMINI, RF_WIRE_MOCK };

/* The catalog: fixed indexes, used everywhere a provider is named by number. */
enum rf_pid {
	RF_P_GROQ = 0,
	RF_P_SAMBANOVA,
	RF_P_CEREBRAS,
	RF_P_GEMINI,
	RF_P_OPENROUTER,
	RF_P_MOCK,
	RF_P__COUNT
};

struct rf_provider_conf {
	const char *id;   /* "groq" (static) */
	const char *name; /* "Groq" (static) */
	enum rf_wire wire;
	char *url;        /* base URL, e.g. https://api.groq.com/openai/v1 (owned) */
	char *model;      /* model id sent upstream (owned) */
	char *key;        /* API key or NULL (owned; never printed) */
	bool configured;  /* key set (mock: always true) */
};

struct rf_config {
	char *db_path;
	struct rf_provider_conf providers[RF_P__COUNT]; /* indexed by enum rf_pid */
	int chain[RF_P__COUNT]; /* routing order for auto, as enum rf_pid */
	int chain_len;          /* the mock is last when on, absent when off */
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
};

/* Load from getenv() and the file named by RELAYFORGE_CONFIG.
 * Returns 0, or -1 with a message naming the bad key in err.  On -1 the
 * config is freed and zeroed.  The caller frees with rf_config_free(). */
int rf_config_load(struct rf_config *cfg, char *err, size_t errlen);
void rf_config_free(struct rf_config *cfg);

/* Provider index of an id ("groq"), or -1. */
int rf_config_pid(const char *id);
/* The id of a provider index ("groq", static), or NULL when out of range. */
const char *rf_config_id(int pid);
/* Position of pid in the chain (0-based), or -1 when not in the chain. */
int rf_config_chain_pos(const struct rf_config *cfg, int pid);
/* true when origin may call the API cross-origin. */
bool rf_config_origin_allowed(const struct rf_config *cfg, const char *origin);

#endif
