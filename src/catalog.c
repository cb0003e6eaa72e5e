/*
 * catalog: the list of providers, in the default routing order of SPEC
 * section 3 (RELAYFORGE_CHAIN's default is this order).  A pid is an index
 * into it.  Each entry is a const struct rf_provider defined beside the
 * wire it speaks; adding a provider is its struct plus one line here
 * (docs/providers.md).  This file holds nothing else, so a unit test can
 * link its own catalog in place of this one (tests/unit/test_catalog.c).
 */
#include "provider.h"

const struct rf_provider *const rf_providers[] = {
	&rf_provider_groq,
	&rf_provider_sambanova,
	&rf_provider_cerebras,
	&rf_provider_gemini,
	&rf_provider_openrouter,
	&rf_provider_mock,
};

const int rf_nproviders = (int)(sizeof(rf_providers) / sizeof(rf_providers[0]));

_Static_assert(sizeof(rf_providers) / sizeof(rf_providers[0]) <=
    RF_MAX_PROVIDERS, "the catalog is larger than RF_MAX_PROVIDERS");
