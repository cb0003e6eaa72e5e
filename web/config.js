// The web client's only setting: where the API lives.  "" means the same
// origin that served these pages (the API answers under /api/v1 there).
// For another origin, put its base URL here, e.g. "https://gw.example.org",
// and list this site's origin in the gateway's RELAYFORGE_CORS_ORIGINS.
export const API_BASE = "";
