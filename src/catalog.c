/*
 * catalog: every provider RelayForge knows, as data, in the default routing
 * order of RELAYFORGE_CHAIN (groq, sambanova, cerebras, gemini,
 * openrouter, mock).  A pid is an index into rf_providers[].  An entry is
 * the provider's id and names, its defaults, its quirks and the ops table
 * of the wire it speaks (rf_ops_openai in provider_openai.c, rf_ops_gemini
 * in provider_gemini.c, rf_ops_mock in provider_mock.c): adding a
 * provider that speaks one of those wires is one entry here, nothing else
 * (docs/providers.md).  The mock stays last.
 *
 * RF_CATALOG_EXTRA: entries a unit test adds before the mock when it
 * #includes this file (tests/unit/test_catalog.c); empty in the program.
 */
#include "provider.h"

#ifndef RF_CATALOG_EXTRA
#define RF_CATALOG_EXTRA
#endif

const struct rf_provider rf_providers[] = {
	/* Groq and Cerebras deprecate max_tokens for max_completion_tokens;
	 * SambaNova and OpenRouter want max_tokens. */
	{
		.id = "groq", .name = "Groq", .env = "GROQ",
		.url = "https://api.groq.com/openai/v1",
		.model = "llama-3.1-8b-instant",
		.max_tokens_field = "max_completion_tokens",
		.ops = &rf_ops_openai,
	},
	{
		.id = "sambanova", .name = "SambaNova", .env = "SAMBANOVA",
		.url = "https://api.sambanova.ai/v1",
		.model = "Meta-Llama-3.3-70B-Instruct",
		.max_tokens_field = "max_tokens",
		.flat_text_parts = true, /* content strings: providers.md s. 3 */
		.ops = &rf_ops_openai,
	},
	{
		.id = "cerebras", .name = "Cerebras", .env = "CEREBRAS",
		.url = "https://api.cerebras.ai/v1",
		.model = "gpt-oss-120b",
		.max_tokens_field = "max_completion_tokens",
		.ops = &rf_ops_openai,
	},
	{
		.id = "gemini", .name = "Gemini", .env = "GEMINI",
		.url = "https://generativelanguage.googleapis.com/v1beta",
		.model = "gemini-2.5-flash-lite",
		.ops = &rf_ops_gemini,
	},
	/* OpenRouter asks apps to name themselves (its attribution header). */
	{
		.id = "openrouter", .name = "OpenRouter", .env = "OPENROUTER",
		.url = "https://openrouter.ai/api/v1",
		.model = "meta-llama/llama-3.3-70b-instruct:free",
		.max_tokens_field = "max_tokens",
		.extra_header = { "X-OpenRouter-Title", "RelayForge" },
		.ops = &rf_ops_openai,
	},
	RF_CATALOG_EXTRA
	/* No env prefix: nothing to configure; RELAYFORGE_MOCK turns it on
	 * or off. */
	{
		.id = "mock", .name = "Mock", .env = NULL, .url = "",
		.model = RF_MOCK_MODEL, .builtin = true, .ops = &rf_ops_mock,
	},
};

const int rf_nproviders = (int)(sizeof(rf_providers) / sizeof(rf_providers[0]));

_Static_assert(sizeof(rf_providers) / sizeof(rf_providers[0]) <=
    RF_MAX_PROVIDERS, "the catalog is larger than RF_MAX_PROVIDERS");
