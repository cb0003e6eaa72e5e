// Landing page: gateway health pills, the routing-chain snapshot, a live
// stream preview and the usage charts, all from the live API.

import {
  $, apiGet, apiStream, ApiError, el, errorBox, fill, fmtInt, fmtMs, fmtPct, fmtClock,
  healthList, initChrome, noteServerTime, showError,
} from "./app.js";
import { providerChart, requestsLatencyChart } from "./charts.js";

const PREVIEW_PROMPT = "In two sentences, what does a gateway's fallback chain do for a client?";
let lastStatus = null;

async function loadHealth() {
  const box = $("#hero-pills");
  try {
    const h = await apiGet("/api/v1/health");
    fill(box,
      el("span", { class: `badge s-${h.status === "ok" ? "ok" : "degraded"}`, text: `gateway ${h.status}` }),
      el("span", { class: "pill", text: `version ${h.version}` }),
      el("span", { class: "pill", text: `store ${h.db}` }));
  } catch (e) {
    fill(box, el("span", { class: "badge s-down", text: `gateway unreachable: ${e.code}` }), el("span", { class: "pill", text: e.message }));
  }
}

function renderStatus() {
  const s = lastStatus;
  if (!s) return;
  fill($("#health"), healthList(s));
  const order = (s.routingOrder || []).join(" → ");
  $("#health-foot").textContent = `Routing order: ${order}. Generated ${fmtClock(s.generatedAt)}; refreshes every 10 s.`;
}

async function loadStatus() {
  try {
    lastStatus = await apiGet("/api/v1/providers/status");
    noteServerTime(lastStatus.generatedAt);
    renderStatus();
  } catch (e) {
    fill($("#health"), errorBox(e, "status:"));
  }
  return lastStatus;
}

// ------------------------------------------------------------- preview

let previewRunning = false;

function previewMeta(parts) {
  fill($("#preview-meta"), parts.map(([k, v]) => el("span", { class: "pill" }, el("span", { class: "muted", text: k + " " }), v)));
}

async function runPreview() {
  if (previewRunning) return;
  previewRunning = true;
  const btn = $("#preview-run");
  const out = $("#preview-output");
  btn.disabled = true;
  out.classList.remove("is-empty");
  out.dataset.state = "waiting";
  fill(out, el("span", { class: "muted", text: "Waiting for the first token…" }));
  fill($("#preview-meta"));
  const text = document.createTextNode("");
  let started = false;
  const payload = {
    prompt: PREVIEW_PROMPT,
    options: { strategy: "auto", stream: true, maxTokens: 96, temperature: 0.3, streamRecovery: "restart" },
    metadata: { source: "relayforge-landing" },
  };
  try {
    const done = await apiStream(payload, {
      onEvent(name, data) {
        if (name === "token" && data && typeof data.text === "string") {
          if (!started) { fill(out, text, el("span", { class: "cursor", attrs: { "aria-hidden": "true" } })); started = true; out.dataset.state = "streaming"; }
          text.appendData(data.text);
        } else if (name === "meta" && data.phase === "start") {
          previewMeta([["via", data.finalProvider], ["model", data.model]]);
        } else if (name === "meta" && data.phase === "restart") {
          text.data = "";
          previewMeta([["restart", `${data.from} failed (${data.code}), ${data.to} took over`]]);
        } else if (name === "meta" && data.phase === "final") {
          previewMeta([
            ["provider", data.finalProvider], ["model", data.model],
            ["latency", fmtMs(data.latencyMs)], ["TTFT", fmtMs(data.ttftMs)],
            ["fallback", data.fallbackActivated ? "yes" : "no"], ["demo", data.demoMode ? "yes" : "no"],
          ]);
        } else if (name === "error") {
          out.append(errorBox(new ApiError(0, data)));
        }
      },
    });
    out.dataset.state = done ? "done" : "error";
    if (!done) out.append(errorBox(new ApiError(0, { code: "stream_interrupted", message: "The stream ended without its done event." })));
  } catch (e) {
    out.dataset.state = "error";
    fill(out, errorBox(e));
  } finally {
    const cur = out.querySelector(".cursor");
    if (cur) cur.remove();
    btn.disabled = false;
    btn.textContent = "Run it again";
    previewRunning = false;
    setTimeout(() => { loadStatus(); loadUsage(); }, 500);
  }
}

// -------------------------------------------------------------- charts

async function loadUsage() {
  const errBox = $("#tele-error");
  try {
    const u = await apiGet("/api/v1/usage?window=24h", { auth: "admin" });
    fill(errBox);
    const t = u.totals || {};
    $("#tele-totals").textContent = t.requests > 0
      ? `${fmtInt(t.requests)} requests in the last 24 h · ${fmtPct(t.requests ? t.errors / t.requests : 0)} errors · avg ${fmtMs(t.avgLatencyMs)} · p95 ${fmtMs(t.p95LatencyMs)}`
      : "No requests in this window yet.";
    const empty = "No requests in the last 24 hours yet. Send one from the workspace.";
    requestsLatencyChart($("#chart-timeline"), u, empty);
    providerChart($("#chart-providers"), u, empty);
  } catch (e) {
    showError(errBox, e, { kind: "admin", retry: loadUsage, title: "usage:" });
  }
}

// A fresh install with no key set answers from the mock only; running the
// preview then costs nothing, so it starts by itself.  With real keys it
// waits for a click, so a page view never spends a provider's quota.
function demoOnly(status) {
  const ps = (status && status.providers) || [];
  return ps.length > 0 && ps.every((p) => p.id === "mock" || p.configured === false);
}

async function main() {
  initChrome();
  $("#preview-run").addEventListener("click", runPreview);
  loadHealth();
  loadUsage();
  const status = await loadStatus();
  if (demoOnly(status)) runPreview();
  setInterval(loadStatus, 10000);
  setInterval(() => { if (lastStatus && (lastStatus.providers || []).some((p) => p.state === "cooling_down")) renderStatus(); }, 1000);
  setInterval(loadUsage, 30000);
}

main();
