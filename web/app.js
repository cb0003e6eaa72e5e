// RelayForge web client: the shared module.  API calls (JSON and SSE over
// POST), DOM building that only ever sets textContent, the error shape,
// the bearer-token prompt, number and date formatting, the provider-health
// list, the page chrome (footer, phone menu) and wide tables on a phone.
// Pages import what they need; there is no build step and no framework.

import { API_BASE } from "./config.js";

// ------------------------------------------------------------------ DOM

// el("p", {class: "x", text: "hi", attrs: {...}, on: {click: fn}}, ...kids)
// Strings among kids become text nodes; null/false kids are skipped.
// Nothing here parses HTML: data can never become markup.
export function el(tag, props = {}, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "attrs") for (const [a, av] of Object.entries(v)) {
      if (av !== undefined && av !== null && av !== false) node.setAttribute(a, av === true ? "" : String(av));
    }
    else node[k] = v;
  }
  append(node, kids);
  return node;
}

function append(node, kids) {
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function fill(node, ...kids) {
  clear(node);
  append(node, kids);
  return node;
}

export const $ = (sel, root = document) => root.querySelector(sel);

// ------------------------------------------------------------- formatting

const dash = "–";

export function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : dash;
}

// Durations.  The gateway measures whole milliseconds, so 0 means "less
// than one": it shows as <1 ms, never as 0 ms, which reads like a bug.
export function fmtMs(n) {
  if (!Number.isFinite(n) || n < 0) return dash;
  if (n < 1) return "<1 ms";
  if (n >= 10000) return (n / 1000).toFixed(1) + " s";
  return Math.round(n).toLocaleString("en-US") + " ms";
}

export function fmtPct(frac, digits = 1) {
  if (!Number.isFinite(frac)) return dash;
  const p = frac * 100;
  return (p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(digits)) + "%";
}

export function fmtBool(b) {
  if (b === true) return "yes";
  if (b === false) return "no";
  return dash;
}

export function parseTime(t) {
  if (t === null || t === undefined || t === "") return null;
  if (typeof t === "number") return new Date(t < 1e12 ? t * 1000 : t);
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtClock(t) {
  const d = parseTime(t);
  return d ? d.toLocaleTimeString("en-GB", { hour12: false }) : dash;
}

const two = (n) => String(n).padStart(2, "0");

// The one date-time format of the pages: ISO-like, in the viewer's local
// time, "2026-12-01 21:00" (with seconds: "2026-12-01 21:00:05").
export function fmtLocal(t, { seconds = false } = {}) {
  const d = parseTime(t);
  if (!d) return dash;
  const s = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
  return seconds ? `${s}:${two(d.getSeconds())}` : s;
}

export function fmtDateTime(t) {
  return fmtLocal(t, { seconds: true });
}

// A usage window as [from, to] labels.  The gateway's window ends with the
// bucket now falls in, a little in the future; the label ends at now.
export function windowEnds(from, to) {
  const end = parseTime(to);
  const now = serverNow();
  if (end && end.getTime() > now) return [fmtLocal(from), fmtLocal(now) + " (now)"];
  return [fmtLocal(from), fmtLocal(end)];
}

// "3 min ago" relative to now (plus the server clock offset, see skew()).
export function fmtAgo(t) {
  const d = parseTime(t);
  if (!d) return dash;
  const s = Math.round((serverNow() - d.getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}

// mm:ss or h:mm:ss for a count of milliseconds.
export function fmtCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

// The browser's clock and the gateway's may differ; status answers carry
// generatedAt, so cooldown countdowns run on the gateway's clock.
let clockSkewMs = 0;
export function noteServerTime(iso) {
  const d = parseTime(iso);
  if (d) clockSkewMs = d.getTime() - Date.now();
}
export function serverNow() {
  return Date.now() + clockSkewMs;
}

// ------------------------------------------------------------------- API

export class ApiError extends Error {
  constructor(status, err = {}) {
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || (status ? `http_${status}` : "network_error");
    this.field = err.field || null;
    this.technicalDetails = err.technicalDetails || null;
    this.provider = err.provider || null;
    this.requestId = err.requestId || null;
    this.attempts = Array.isArray(err.attempts) ? err.attempts : [];
    this.fallbackActivated = err.fallbackActivated;
    this.retryAfter = err.retryAfter || null;
  }
}

export function apiUrl(path) {
  return API_BASE.replace(/\/+$/, "") + path;
}

// Tokens the operator may require (docs/configuration.md): "api" for chat and
// stream (RELAYFORGE_API_TOKEN), "admin" for logs and usage
// (RELAYFORGE_ADMIN_TOKEN).  Kept for this tab only.
const TOKEN_KEYS = { api: "relayforge.apiToken", admin: "relayforge.adminToken" };

export function getToken(kind) {
  try { return sessionStorage.getItem(TOKEN_KEYS[kind]) || ""; } catch { return ""; }
}
export function setToken(kind, value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEYS[kind], value);
    else sessionStorage.removeItem(TOKEN_KEYS[kind]);
  } catch { /* storage disabled: the token lives for this call only */ }
}

// kind: "get" (JSON answer), "post" (JSON body and answer), "stream".
function headers(auth, kind) {
  const h = { Accept: kind === "stream" ? "text/event-stream, application/json" : "application/json" };
  if (kind !== "get") h["Content-Type"] = "application/json";
  const tok = auth ? getToken(auth) : "";
  if (tok) h.Authorization = "Bearer " + tok;
  return h;
}

// Turn a non-2xx answer into an ApiError carrying the error shape.
async function errorFrom(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON: keep the status line */ }
  const err = body && body.error ? body.error : {
    code: `http_${res.status}`,
    message: `The gateway answered HTTP ${res.status}${res.statusText ? " " + res.statusText : ""} without the JSON error shape.`,
  };
  const e = new ApiError(res.status, err);
  const ra = res.headers.get("Retry-After");
  if (ra) e.retryAfter = ra;
  if (!e.requestId) e.requestId = res.headers.get("X-Request-Id");
  return e;
}

function networkError(e) {
  if (e && e.name === "AbortError") return e;
  return new ApiError(0, {
    code: "network_error",
    message: `Could not reach the gateway (${apiUrl("/api/v1") || "/api/v1"}): ${e && e.message ? e.message : e}`,
  });
}

// GET a JSON endpoint; resolves to `data`, rejects with ApiError.
export async function apiGet(path, { auth = null, signal } = {}) {
  let res;
  try {
    res = await fetch(apiUrl(path), { headers: headers(auth, "get"), signal, cache: "no-store" });
  } catch (e) { throw networkError(e); }
  if (!res.ok) throw await errorFrom(res);
  const body = await res.json().catch(() => null);
  if (!body || body.success !== true) throw new ApiError(res.status, body && body.error ? body.error : { code: "malformed_response", message: "The gateway's answer was not the JSON success shape." });
  return body.data;
}

export async function apiPost(path, payload, { auth = "api", signal } = {}) {
  let res;
  try {
    res = await fetch(apiUrl(path), { method: "POST", headers: headers(auth, "post"), body: JSON.stringify(payload), signal });
  } catch (e) { throw networkError(e); }
  if (!res.ok) throw await errorFrom(res);
  const body = await res.json().catch(() => null);
  if (!body || body.success !== true) throw new ApiError(res.status, { code: "malformed_response", message: "The gateway's answer was not the JSON success shape." });
  return { data: body.data, requestId: res.headers.get("X-Request-Id") };
}

// ------------------------------------------------------------------- SSE

const SSE_MAX_LINE = 1 << 20;

// An incremental text/event-stream parser: push() decoded text in any
// slicing, onEvent(name, data) fires once per complete event (blank line).
// data is the JSON-parsed payload (or the raw string when it is not JSON).
export function sseParser(onEvent) {
  let buf = "";
  let name = "";
  let data = [];
  const dispatch = () => {
    if (data.length) {
      const raw = data.join("\n");
      let val = raw;
      try { val = JSON.parse(raw); } catch { /* keep the string */ }
      onEvent(name || "message", val);
    }
    name = "";
    data = [];
  };
  const line = (l) => {
    if (l === "") return dispatch();
    if (l.startsWith(":")) return; // comment, e.g. ": keep-alive"
    const i = l.indexOf(":");
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? "" : l.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  };
  return {
    push(text) {
      buf += text;
      let m;
      const re = /\r\n|\r(?!$)|\n/g;
      let start = 0;
      while ((m = re.exec(buf)) !== null) {
        line(buf.slice(start, m.index));
        start = m.index + m[0].length;
      }
      buf = buf.slice(start);
      if (buf.length > SSE_MAX_LINE) throw new ApiError(0, { code: "malformed_response", message: "An SSE line exceeded 1 MiB." });
    },
    end() {
      if (buf) line(buf);
      buf = "";
      dispatch();
    },
  };
}

// POST /api/v1/stream and feed each event to onEvent(name, data).  Resolves
// to true when a `done` event arrived, false when the stream just ended.
// Rejects with ApiError for a JSON error answer (no stream opened), or with
// the AbortError when `signal` fires.
export async function apiStream(payload, { signal, onEvent }) {
  let res;
  try {
    res = await fetch(apiUrl("/api/v1/stream"), { method: "POST", headers: headers("api", "stream"), body: JSON.stringify(payload), signal });
  } catch (e) { throw networkError(e); }
  const ct = res.headers.get("Content-Type") || "";
  if (!res.ok || !ct.includes("text/event-stream")) throw await errorFrom(res);
  let sawDone = false;
  const parser = sseParser((name, data) => {
    if (name === "done") sawDone = true;
    onEvent(name, data);
  });
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(dec.decode(value, { stream: true }));
    }
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    if (!sawDone) throw networkError(e);
  }
  parser.push(dec.decode());
  parser.end();
  return sawDone;
}

// ------------------------------------------------------- error rendering

// The error shape of docs/api.md, as a block: code, message, and the
// details a person needs to report it.  Everything goes in as text.
export function errorBox(err, title) {
  const rows = [];
  const add = (k, v) => { if (v !== null && v !== undefined && v !== "") rows.push(el("dt", { text: k }), el("dd", { text: v })); };
  add("field", err.field);
  add("provider", err.provider);
  add("details", err.technicalDetails);
  add("HTTP", err.status ? String(err.status) : null);
  add("retry after", err.retryAfter ? err.retryAfter + " s" : null);
  add("request id", err.requestId);
  return el("div", { class: "error-box", attrs: { role: "alert" } },
    el("div", {}, title ? el("span", { class: "muted", text: title + " " }) : null, el("span", { class: "code", text: err.code || "error" })),
    el("p", { class: "msg", text: err.message || String(err) }),
    rows.length ? el("dl", {}, rows) : null);
}

// For a 401 from a guarded endpoint: say why and let the person paste the
// token.  onSaved() is called after the token is stored.
export function tokenPrompt(kind, err, onSaved) {
  const had = !!getToken(kind);
  const what = kind === "admin"
    ? ["Logs and usage need the admin token", "RELAYFORGE_ADMIN_TOKEN"]
    : ["Chat and stream need the API token", "RELAYFORGE_API_TOKEN"];
  const id = "tok-" + kind + "-" + Math.random().toString(36).slice(2, 8);
  const input = el("input", { type: "password", id, autocomplete: "off", attrs: { spellcheck: "false" } });
  const form = el("form", { class: "token-form" },
    el("label", { htmlFor: id, class: "label", text: "Token" }),
    el("div", { class: "row" }, input,
      el("button", { class: "btn btn-small btn-primary", type: "submit", text: "Use token" }),
      had ? el("button", { class: "btn btn-small", type: "button", text: "Forget saved token", on: { click: () => { setToken(kind, ""); onSaved(); } } }) : null));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = input.value.trim();
    if (!v) { input.setAttribute("aria-invalid", "true"); input.focus(); return; }
    setToken(kind, v);
    onSaved();
  });
  return el("div", { class: "notice", attrs: { role: "alert" } },
    el("strong", { text: had ? "The saved token was refused. " : what[0] + ". " }),
    el("span", { text: `This gateway's operator set ${what[1]}; the server answered ${err.code}: ${err.message} ` }),
    el("span", { text: "Paste the token to continue. It stays in this browser tab (sessionStorage) and is sent as Authorization: Bearer." }),
    form);
}

// Show err inside box: a token prompt for 401, else the error shape.
export function showError(box, err, { kind = "admin", retry, title } = {}) {
  if (err && err.status === 401 && retry) fill(box, tokenPrompt(kind, err, retry));
  else fill(box, errorBox(err, title));
}

// -------------------------------------------------------- provider states

export const STATE_TEXT = {
  healthy: "healthy",
  idle: "idle",
  degraded: "degraded",
  cooling_down: "cooling down",
  down: "down",
  unconfigured: "unconfigured",
};

export function stateBadge(state) {
  const s = STATE_TEXT[state] ? state : "neutral";
  return el("span", { class: `badge s-${s}`, text: STATE_TEXT[state] || String(state || "unknown"), attrs: { "data-state": state || "" } });
}

export function providerName(p) {
  return p.name || p.id;
}

// One short line per provider, for the landing page's snapshot.
export function healthDetail(p) {
  const st = p.stats || {};
  if (p.state === "unconfigured") return "no API key set: skipped";
  if (p.state === "cooling_down" && p.cooldownUntil) {
    const left = parseTime(p.cooldownUntil).getTime() - serverNow();
    return `cooling down, ${fmtCountdown(left)} left`;
  }
  if (!st.requests) return `${p.model || "model ?"} · no requests in the window yet`;
  return `${fmtPct(st.successRate)} ok · avg ${fmtMs(st.avgLatencyMs)} · p95 ${fmtMs(st.p95LatencyMs)} · ${fmtInt(st.requests)} req`;
}

export function healthList(status) {
  const byId = new Map((status.providers || []).map((p) => [p.id, p]));
  const order = status.routingOrder && status.routingOrder.length ? status.routingOrder : [...byId.keys()];
  const items = order.map((id, i) => {
    const p = byId.get(id) || { id, state: "unknown" };
    return el("li", { attrs: { "data-provider": id } },
      el("span", { class: "pos", text: String(p.position || i + 1) }),
      el("span", {}, el("span", { class: "name", text: providerName(p) }), el("span", { class: "detail", text: healthDetail(p) })),
      stateBadge(p.state));
  });
  return el("ul", { class: "health-list", attrs: { "aria-label": "Routing chain in order" } }, items);
}

// ----------------------------------------------------------- page chrome

// The footer every page shares (each page has an empty <footer>), so its
// links and the stated system boundaries live in one place.
const FOOTER_LINKS = [["./#features", "Features"], ["./#architecture", "Architecture"],
  ["docs.html", "Documentation"], ["workspace.html", "Workspace"], ["status.html", "Status"]];
const FOOTER_RUNTIME = ["C11 FastCGI responder (libfcgi)", "libcurl · json-c",
  "SQLite in WAL mode", "Chart.js from Debian"];
const FOOTER_BOUNDARIES = [
  "The browser gets one public setting, the API base URL; keys stay on the server.",
  "Logs, usage and provider state live in one SQLite file on one machine, shared by its responder processes; it is not a distributed store.",
  "The mock provider keeps a working demo path and says so in every answer.",
  "No accounts, billing or SDK: an HTTP API and this client.",
];

function renderFooter(footer) {
  const list = (items) => el("ul", {}, items.map((t) => el("li", { text: t })));
  fill(footer, el("div", { class: "wrap" },
    el("div", { class: "footer-grid" },
      el("div", {},
        el("h2", { text: "RelayForge AI" }),
        el("p", { class: "muted small", text: "A unified AI gateway with streaming, fallback orchestration and real observability, as a FastCGI responder behind your web server." }),
        el("div", { class: "pill-row" }, ["SSE", "Server-held keys", "SQLite"].map((t) => el("span", { class: "pill", text: t })))),
      el("nav", { attrs: { "aria-labelledby": "f-product" } },
        el("h2", { id: "f-product", text: "Product" }),
        el("ul", {}, FOOTER_LINKS.map(([href, t]) => el("li", {}, el("a", { attrs: { href }, text: t }))))),
      el("div", {}, el("h2", { text: "Runtime" }), list(FOOTER_RUNTIME)),
      el("div", {}, el("h2", { text: "System boundaries" }), list(FOOTER_BOUNDARIES))),
    el("div", { class: "footer-base" },
      el("span", { text: "© 2026 RelayForge AI" }),
      el("span", { text: "Every number on these pages comes from this gateway's live API." }))));
}

// Below 600 px the main navigation folds into a menu button: a real
// <button> with aria-expanded and aria-controls, so it works with Enter,
// Space and a screen reader; Escape closes it and gives focus back to the
// button, and so does following a link.  Without JavaScript the links stay
// visible (the CSS folds them only under .has-nav-toggle).
function navToggle(header) {
  const nav = header.querySelector(".main-nav");
  const list = nav && nav.querySelector("ul");
  if (!list) return;
  list.id = list.id || "main-nav-list";
  const icon = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", "M4 7h16M4 12h16M4 17h16");
  icon.append(path);
  const btn = el("button", { type: "button", class: "nav-toggle", attrs: { "aria-expanded": "false", "aria-controls": list.id } },
    icon, el("span", { text: "Menu" }));
  const set = (open) => {
    btn.setAttribute("aria-expanded", open ? "true" : "false");
    nav.classList.toggle("is-open", open);
  };
  btn.addEventListener("click", () => set(btn.getAttribute("aria-expanded") !== "true"));
  header.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && btn.getAttribute("aria-expanded") === "true") { set(false); btn.focus(); }
  });
  list.addEventListener("click", (e) => { if (e.target.closest("a")) set(false); });
  document.addEventListener("click", (e) => { if (!header.contains(e.target)) set(false); });
  nav.before(btn);
  header.classList.add("has-nav-toggle");
}

// Fill the shared footer, mark the current page in the main navigation and
// give the navigation its phone menu.
export function initChrome() {
  const footer = document.querySelector("footer.site-footer");
  if (footer) renderFooter(footer);
  const here = location.pathname.split("/").pop() || "index.html";
  for (const a of document.querySelectorAll(".main-nav a")) {
    const target = (a.getAttribute("href") || "").split("#")[0].replace("./", "") || "index.html";
    if (target === here && !a.getAttribute("href").includes("#")) a.setAttribute("aria-current", "page");
  }
  const header = document.querySelector(".site-header");
  if (header) navToggle(header);
}

// ---------------------------------------------------------------- tables

// Wide tables on a phone: below 600 px a table.stack shows each row as a
// card of labelled values (style.css).  The labels are the column heads,
// copied here into each cell's data-label; call it again after new rows.
export function labelCells(table) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const tr of table.querySelectorAll("tbody tr")) {
    [...tr.cells].forEach((td, i) => {
      if (td.colSpan === 1 && heads[i]) td.dataset.label = heads[i];
    });
  }
}

export function stackTable(table) {
  table.classList.add("stack");
  labelCells(table);
}

// Where a table is still wider than its box (between the phone layout and
// a wide screen), say so under it: "Scroll sideways" with an arrow, shown
// only while there is something to scroll to.
export function scrollHint(wrap) {
  const hint = el("p", { class: "scroll-hint", hidden: true, attrs: { "aria-hidden": "true" } }, "Scroll sideways for more columns →");
  wrap.after(hint);
  const check = () => {
    const over = wrap.scrollWidth > wrap.clientWidth + 1;
    const atEnd = wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 1;
    wrap.dataset.overflow = over ? (atEnd ? "end" : "more") : "none";
    hint.hidden = !over;
  };
  new ResizeObserver(check).observe(wrap);
  if (wrap.firstElementChild) new ResizeObserver(check).observe(wrap.firstElementChild);
  wrap.addEventListener("scroll", check, { passive: true });
  check();
  return check;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
