// Docs page: navigation state and one live line saying which gateway
// version answers here.  The reference itself is static text.

import { $, apiGet, initChrome } from "./app.js";

initChrome();
apiGet("/api/v1/health").then(
  (h) => { $("#live-version").textContent = `This gateway: ${h.status}, version ${h.version}, store ${h.db}.`; },
  (e) => { $("#live-version").textContent = `This gateway did not answer /health (${e.code}).`; },
);
