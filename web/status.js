// Status page: the routing chain (state, cooldown countdown, success rate,
// latencies, last error, quota) and the usage charts for a chosen window.

import {
  $, apiGet, el, errorBox, fill, fmtAgo, fmtClock, fmtCountdown, fmtInt, fmtMs, fmtPct,
  initChrome, noteServerTime, parseTime, scrollHint, serverNow, showError, stackTable, stateBadge, windowEnds,
} from "./app.js";
import { latencyChart, providerChart, providerTable, requestsChart } from "./charts.js";

const REFRESH_MS = 5000;
let usageWindow = "24h";
let statusBusy = false;
let usageBusy = false;

// ----------------------------------------------------------------- chain

function windowText(seconds) {
  if (!Number.isFinite(seconds)) return "the window";
  if (seconds % 3600 === 0) return `the last ${seconds / 3600} h`;
  if (seconds % 60 === 0) return `the last ${seconds / 60} min`;
  return `the last ${seconds} s`;
}

function countdown(until) {
  const span = el("span", { class: "countdown", attrs: { "data-until": until } });
  tickOne(span);
  return span;
}

function tickOne(span) {
  const end = parseTime(span.dataset.until);
  const left = end ? end.getTime() - serverNow() : 0;
  span.textContent = left > 0 ? `${fmtCountdown(left)} left` : "ended";
  return left > 0;
}

function quotaText(q) {
  if (!q) return "not reported";
  const parts = [];
  if (q.remainingRequests !== null && q.remainingRequests !== undefined) parts.push(`${fmtInt(q.remainingRequests)} requests`);
  if (q.remainingTokens !== null && q.remainingTokens !== undefined) parts.push(`${fmtInt(q.remainingTokens)} tokens`);
  return parts.length ? parts.join(" · ") + " left" : "not reported";
}

function providerCard(p, i) {
  const st = p.stats || {};
  const rows = [];
  const row = (k, ...v) => rows.push(el("dt", { text: k }), el("dd", { attrs: { "data-key": k } }, ...v));
  row("Model", p.model || "–");
  // The mock is part of the gateway: it has no key to configure.
  row("API key", p.id === "mock" ? "built in, no key" : p.configured ? "configured" : "not set: skipped");
  if (p.cooldownUntil && parseTime(p.cooldownUntil) && parseTime(p.cooldownUntil).getTime() > serverNow()) {
    row("Cooldown", countdown(p.cooldownUntil), el("span", { class: "muted", text: ` (until ${fmtClock(p.cooldownUntil)})` }));
  } else {
    row("Cooldown", "none");
  }
  row("Success rate", st.requests
    ? `${fmtPct(st.successRate)} (${fmtInt(st.successes)} of ${fmtInt(st.requests)} in ${windowText(st.windowSeconds)})`
    : `no requests in ${windowText(st.windowSeconds)}`);
  row("Latency", st.requests ? `avg ${fmtMs(st.avgLatencyMs)} · p95 ${fmtMs(st.p95LatencyMs)}` : "–");
  row("Last error", p.lastError ? `${p.lastError.code} · ${fmtAgo(p.lastError.at)}` : "none");
  row("Last success", p.lastSuccessAt ? fmtAgo(p.lastSuccessAt) : "never");
  const q = p.quota;
  row("Quota", quotaText(q), q && q.resetAt ? el("span", { class: "muted", text: ` · resets ${fmtClock(q.resetAt)}` }) : null);
  return el("li", { class: "card provider-card", attrs: { "data-provider": p.id, "data-state": p.state } },
    el("div", { class: "card-head" },
      el("h3", {}, el("span", { class: "pos", text: `#${p.position || i + 1}` }), el("span", { text: p.name || p.id }),
        // The id is what strategy takes; show it when the name differs.
        p.name && p.name.toLowerCase() !== p.id ? el("span", { class: "pid", text: p.id }) : null),
      stateBadge(p.state)),
    el("dl", { class: "kv" }, rows));
}

function summary(providers) {
  const counts = {};
  for (const p of providers) counts[p.state] = (counts[p.state] || 0) + 1;
  return Object.entries(counts).map(([s, n]) => `${n} ${s.replace("_", " ")}`).join(" · ");
}

async function loadStatus() {
  if (statusBusy) return;
  statusBusy = true;
  try {
    const s = await apiGet("/api/v1/providers/status");
    noteServerTime(s.generatedAt);
    fill($("#chain-error"));
    const byId = new Map((s.providers || []).map((p) => [p.id, p]));
    const order = (s.routingOrder && s.routingOrder.length) ? s.routingOrder : [...byId.keys()];
    const list = order.map((id) => byId.get(id)).filter(Boolean);
    fill($("#chain"), list.length ? list.map(providerCard) : el("li", { class: "card muted", text: "The chain is empty." }));
    fill($("#chain-sub"), "In routing order for ", el("code", { text: "auto" }), `: ${order.join(" → ")}. ${summary(list)}.`);
    $("#updated").textContent = `Updated ${fmtClock(s.generatedAt)}`;
  } catch (e) {
    fill($("#chain-error"), errorBox(e, "status:"));
  } finally {
    statusBusy = false;
  }
}

async function loadHealth() {
  try {
    const h = await apiGet("/api/v1/health");
    fill($("#gateway"),
      el("span", { class: `badge s-${h.status === "ok" ? "ok" : "degraded"}`, text: `gateway ${h.status}` }),
      el("span", { class: "pill", text: `store ${h.db}` }),
      el("span", { class: "pill", text: `v${h.version}` }));
  } catch (e) {
    fill($("#gateway"), el("span", { class: "badge s-down", text: `health: ${e.code}` }));
  }
}

// ----------------------------------------------------------------- usage

function stat(k, v, d) {
  return el("div", { class: "stat", attrs: { "data-stat": k } },
    el("div", { class: "k", text: k }), el("div", { class: "v", text: v }), d ? el("div", { class: "d", text: d }) : null);
}

// One meaning per number: requests = succeeded + errors + cancelled, where
// cancelled (the client hung up) is neither; the provider cards above
// leave hang-ups out of a provider's calls too, so the two never disagree.
function renderTotals(u) {
  const t = u.totals || {};
  const n = t.requests || 0;
  const cancelled = t.cancelled || 0;
  fill($("#totals"),
    stat("Requests", fmtInt(n), `${fmtInt(t.successes)} succeeded`),
    stat("Errors", fmtInt(t.errors), n ? `${fmtPct(t.errors / n)} of requests · ${fmtInt(cancelled)} cancelled` : "no requests in this window yet"),
    stat("Fallbacks", fmtInt(t.fallbacks), n ? `${fmtPct(t.fallbackRate)} of requests` : "–"),
    stat("Latency avg", fmtMs(t.avgLatencyMs), n ? `p50 ${fmtMs(t.p50LatencyMs)}` : "–"),
    stat("Latency p95", fmtMs(t.p95LatencyMs), n ? `p99 ${fmtMs(t.p99LatencyMs)}` : "–"),
    stat("Tokens out", fmtInt(t.completionTokens), `${fmtInt(t.promptTokens)} prompt tokens in`));
}

async function loadUsage() {
  if (usageBusy) return;
  usageBusy = true;
  const w = usageWindow;
  try {
    const u = await apiGet(`/api/v1/usage?window=${encodeURIComponent(w)}`, { auth: "admin" });
    if (w !== usageWindow) return;
    fill($("#usage-error"));
    const bucket = u.bucketSeconds >= 86400 ? `${u.bucketSeconds / 86400} day` : u.bucketSeconds >= 3600 ? `${u.bucketSeconds / 3600} h` : `${Math.round(u.bucketSeconds / 60)} min`;
    const [from, to] = windowEnds(u.from, u.to);
    fill($("#usage-range"), `Window ${u.window}: `, el("span", { class: "nowrap", text: from }), " to ",
      el("span", { class: "nowrap", text: to }), `, ${bucket} buckets.`);
    renderTotals(u);
    const empty = "No requests in this window yet.";
    requestsChart($("#chart-requests"), u, empty);
    latencyChart($("#chart-latency"), u, empty);
    providerChart($("#chart-providers"), u, empty);
    providerTable($("#providers-body"), u);
    stackTable($("#providers-body").closest("table"));
  } catch (e) {
    showError($("#usage-error"), e, { kind: "admin", retry: loadUsage, title: "usage:" });
  } finally {
    usageBusy = false;
  }
}

// ------------------------------------------------------------------ init

function refresh() {
  loadStatus();
  loadHealth();
  loadUsage();
}

function main() {
  initChrome();
  scrollHint($("#providers-body").closest(".table-wrap"));
  $("#refresh").addEventListener("click", refresh);
  for (const r of document.querySelectorAll('#window input[name="window"]')) {
    r.addEventListener("change", () => { if (r.checked) { usageWindow = r.value; usageBusy = false; loadUsage(); } });
  }
  refresh();
  setInterval(() => { if ($("#auto").checked && !document.hidden) refresh(); }, REFRESH_MS);
  // Countdowns tick every second on the gateway's clock; one that reaches
  // zero asks for fresh status.
  setInterval(() => {
    let ended = false;
    for (const span of document.querySelectorAll(".countdown[data-until]")) if (!tickOne(span)) ended = true;
    if (ended) loadStatus();
  }, 1000);
}

main();
