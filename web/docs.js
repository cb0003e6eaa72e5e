// Docs page: navigation state, one live line saying which gateway version
// answers here, and the reference tables made readable on a phone (a card
// per row below 600 px; a line break allowed after each comma inside code,
// so a list such as the default chain wraps between its names, never in
// the middle of one).  The reference itself is static text.

import { $, apiGet, initChrome, scrollHint, stackTable } from "./app.js";

// <wbr> after every comma of a code element's text: the copied text does
// not change, only where the line may break.
function breakAfterCommas(code) {
  for (const node of [...code.childNodes]) {
    if (node.nodeType !== Node.TEXT_NODE || !node.data.includes(",")) continue;
    const parts = node.data.split(/(?<=,)/);
    node.replaceWith(...parts.flatMap((p, i) => (i < parts.length - 1 ? [p, document.createElement("wbr")] : [p])));
  }
}

initChrome();
for (const table of document.querySelectorAll(".doc .table-wrap table")) {
  stackTable(table);
  for (const code of table.querySelectorAll("td code")) breakAfterCommas(code);
  scrollHint(table.closest(".table-wrap"));
}
apiGet("/api/v1/health").then(
  (h) => { $("#live-version").textContent = `This gateway: ${h.status}, version ${h.version}, store ${h.db}.`; },
  (e) => { $("#live-version").textContent = `This gateway did not answer /health (${e.code}).`; },
);
