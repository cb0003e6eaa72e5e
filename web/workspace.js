// Workspace: build a request from the form, send it to /chat or /stream,
// render tokens as they arrive (restarts kept visible, struck through),
// the meta and attempt trail of the answer, errors from the error shape,
// and the recent-logs table with paging (a card per row on a phone).

import {
  $, apiGet, apiPost, apiStream, ApiError, el, errorBox, fill, fmtBool, fmtDateTime, fmtInt, fmtMs,
  initChrome, labelCells, scrollHint, showError, stackTable, STATE_TEXT,
} from "./app.js";

const FIELD_INPUT = {
  prompt: "prompt",
  messages: "prompt",
  "options.maxTokens": "maxTokens",
  "options.temperature": "temperature",
  "options.strategy": "strategy",
  "options.fallback": "fallback",
  "options.stream": "stream",
};
const LOG_PAGE = 10;

let controller = null;   // AbortController of the request in flight
let run = null;          // the request in flight: { text, t0, tFirst, ... }

// ----------------------------------------------------------------- form

function readForm() {
  const prompt = $("#prompt").value;
  const maxRaw = $("#maxTokens").value.trim();
  const temperature = Number($("#temperature").value);
  if (!prompt.trim()) return { problem: ["prompt", "Write a prompt first: it cannot be blank."] };
  if (!/^-?\d+$/.test(maxRaw)) return { problem: ["maxTokens", "Max tokens must be a whole number."] };
  const stream = $("#stream").checked;
  const options = {
    strategy: $("#strategy").value,
    stream,
    maxTokens: Number(maxRaw),
    temperature,
    fallback: $("#fallback").checked,
  };
  if (stream) options.streamRecovery = "restart";
  return { payload: { prompt, options, metadata: { source: "relayforge-web" } } };
}

function clearInvalid() {
  for (const n of document.querySelectorAll("#ask [aria-invalid]")) n.removeAttribute("aria-invalid");
  $("#form-msg").textContent = "";
}

function markInvalid(inputId, message) {
  const input = inputId ? document.getElementById(inputId) : null;
  if (input) input.setAttribute("aria-invalid", "true");
  $("#form-msg").textContent = message;
  if (input) input.focus();
}

function setRunning(on) {
  $("#send").disabled = on;
  $("#stop").disabled = !on;
  $("#clear").disabled = on;
  $("#ask").setAttribute("aria-busy", on ? "true" : "false");
}

function setState(state, text) {
  const out = $("#output");
  out.dataset.state = state;
  const badge = $("#run-state");
  const cls = { idle: "neutral", waiting: "neutral", streaming: "cooling_down", done: "ok", stopped: "degraded", error: "down" }[state] || "neutral";
  badge.className = `badge s-${cls}`;
  badge.textContent = text || state;
}

// --------------------------------------------------------------- output

function resetOutput() {
  const out = $("#output");
  out.classList.remove("is-empty");
  fill(out);
  fill($("#notes"));
  fill($("#error"));
  fill($("#timing"));
  fill($("#meta"), el("p", { class: "muted small", text: "Waiting for the gateway…" }));
  fill($("#trail"));
}

// The answer being written: a text node in its own span, followed by a
// blinking cursor while tokens flow.
function newAnswer() {
  const text = document.createTextNode("");
  const span = el("span", { class: "answer" }, text);
  $("#output").append(span);
  return text;
}

function cursor(on) {
  const out = $("#output");
  const cur = out.querySelector(".cursor");
  if (on && !cur) out.append(el("span", { class: "cursor", attrs: { "aria-hidden": "true" } }));
  if (!on && cur) cur.remove();
}

function note(text) {
  $("#notes").append(el("li", { text }));
}

// meta restart: keep what was discarded, struck through, with who failed
// and who took over, then start a fresh answer below it.
function restart(m) {
  const old = run.text;
  const block = el("div", { class: "discarded" },
    el("p", { class: "note", text: `${m.from} failed (${m.code}), ${m.to} took over. Its partial answer was discarded:` }),
    el("del", { text: old.data || "(no text yet)" }));
  old.parentNode.replaceWith(block);
  cursor(false);
  run.text = newAnswer();
  run.restarts += 1;
  setState("waiting", `restarted on ${m.to}`);
}

function onToken(t) {
  if (!run.tFirst) {
    run.tFirst = performance.now();
    setState("streaming", `streaming from ${run.provider || "provider"}`);
  }
  run.text.appendData(t);
  cursor(true);
}

function onStreamEvent(name, data) {
  if (!run) return;
  if (name === "token") {
    if (data && typeof data.text === "string") onToken(data.text);
  } else if (name === "meta") {
    if (data.phase === "fallback") note(`${data.from} could not serve it (${data.code}): trying ${data.to}.`);
    else if (data.phase === "start") { run.provider = data.finalProvider; run.requestId = data.requestId; renderMeta(data, false); }
    else if (data.phase === "restart") restart(data);
    else if (data.phase === "final") { run.final = data; renderMeta(data, true); }
  } else if (name === "error") {
    run.failed = true;
    const e = new ApiError(0, data);
    run.requestId = run.requestId || e.requestId;
    fill($("#error"), errorBox(e));
    if (e.attempts.length) renderTrail(e.attempts);
    if (e.field) markInvalid(FIELD_INPUT[e.field], `${e.field}: ${e.message}`);
  }
}

// ----------------------------------------------------------------- meta

// What the gateway's two clocks measure (the timing line under the answer
// is this browser's own).
const META_TITLE = {
  Latency: "Measured in the gateway, from the request's arrival to the last byte.",
  TTFT: "Time to first token, measured in the gateway from the request's arrival (failed tiers included); under 1 ms reads <1 ms.",
};

function renderMeta(m, final) {
  const rows = [
    ["Final provider", m.finalProvider],
    ["Attempted provider", m.attemptedProvider],
    ["Strategy", m.strategy],
    ["Fallback", fmtBool(m.fallbackActivated)],
    ["Degraded", fmtBool(m.degradedMode)],
    ["Demo (mock)", fmtBool(m.demoMode)],
    ["Latency", final ? fmtMs(m.latencyMs) : "…"],
    ["TTFT", m.ttftMs !== undefined ? fmtMs(m.ttftMs) : final ? "–" : "…"],
    ["Model", m.model || "–"],
    ["Tokens in / out", m.usage ? `${fmtInt(m.usage.promptTokens)} / ${fmtInt(m.usage.completionTokens)}` : final ? "–" : "…"],
    ["Finish reason", m.finishReason || (final ? "–" : "…")],
  ];
  if (m.restarts) rows.push(["Restarts", String(m.restarts)]);
  if (m.skippedChunks) rows.push(["Skipped chunks", String(m.skippedChunks)]);
  rows.push(["Request id", m.requestId || "–"]);
  fill($("#meta"), el("dl", { class: "meta-grid", attrs: { "data-final": final ? "true" : "false" } },
    rows.map(([k, v]) => el("div", { class: k === "Request id" ? "wide" : null },
      el("dt", { text: k, title: META_TITLE[k] }), el("dd", { text: v ?? "–", attrs: { "data-key": k } })))));
  if (Array.isArray(m.attempts)) renderTrail(m.attempts);
}

function attemptDetail(a) {
  if (a.outcome === "skipped") return a.reason === "unconfigured" ? "no API key configured" : a.reason === "cooling_down" ? "in cooldown" : a.reason || "";
  const bits = [];
  if (a.httpStatus) bits.push(`HTTP ${a.httpStatus}`);
  if (Number.isFinite(a.latencyMs)) bits.push(fmtMs(a.latencyMs));
  if (a.retry) bits.push(`retry ${a.retry}`);
  return bits.join(" · ");
}

function renderTrail(attempts) {
  if (!attempts.length) {
    fill($("#trail"), el("li", { class: "placeholder" }, el("span", { class: "det", text: "No provider was called." })));
    return;
  }
  fill($("#trail"), attempts.map((a) => {
    const cls = a.outcome === "ok" ? "ok" : a.outcome === "skipped" ? "skipped" : "error";
    return el("li", { attrs: { "data-provider": a.provider, "data-outcome": a.outcome } },
      el("span", { class: "prov", text: a.provider }),
      el("span", { class: `badge s-${cls}`, text: a.outcome === "ok" ? "answered" : a.outcome }),
      el("span", { class: "det", text: attemptDetail(a) }));
  }));
}

function timing() {
  const bits = [];
  if (run.tFirst) bits.push(`first token after ${fmtMs(run.tFirst - run.t0)} (in this browser)`);
  bits.push(`total ${fmtMs(performance.now() - run.t0)}`);
  fill($("#timing"), bits.join(" · "));
}

// ----------------------------------------------------------------- send

async function send(ev) {
  if (ev) ev.preventDefault();
  if (controller) return;
  clearInvalid();
  const { payload, problem } = readForm();
  if (problem) { markInvalid(problem[0], problem[1]); return; }
  resetOutput();
  controller = new AbortController();
  run = { text: newAnswer(), t0: performance.now(), tFirst: 0, restarts: 0, provider: null, final: null, failed: false };
  setRunning(true);
  setState("waiting", "waiting for the first token");
  try {
    if (payload.options.stream) await sendStream(payload);
    else await sendChat(payload);
  } catch (e) {
    if (e && e.name === "AbortError") {
      setState("stopped", "stopped");
      note("Stopped: the request was aborted; the gateway cancels the upstream call and logs it as client_closed.");
    } else {
      setState("error", "failed");
      handleError(e);
    }
  } finally {
    cursor(false);
    timing();
    if (!run.text.data && !$("#output .discarded")) {
      const out = $("#output");
      out.classList.add("is-empty");
      fill(out, run.failed || $("#error").firstChild ? "No answer text." : "No text arrived.");
    }
    controller = null;
    setRunning(false);
    const rid = run.requestId;
    setTimeout(() => refreshLogsFor(rid, 3), 300);
  }
}

async function sendStream(payload) {
  const done = await apiStream(payload, { signal: controller.signal, onEvent: onStreamEvent });
  if (run.failed) setState("error", "failed");
  else if (done && run.final) setState("done", `done · ${run.final.finalProvider}`);
  else {
    setState("error", "failed");
    fill($("#error"), errorBox(new ApiError(0, { code: "stream_interrupted", message: "The stream closed before its done event; the answer may be incomplete." })));
  }
}

async function sendChat(payload) {
  const { data, requestId } = await apiPost("/api/v1/chat", payload, { signal: controller.signal });
  run.requestId = requestId;
  run.text.appendData(data.text || "");
  renderMeta(data.meta || {}, true);
  setState("done", `done · ${data.meta ? data.meta.finalProvider : "?"}`);
}

function handleError(e) {
  showError($("#error"), e, { kind: "api", retry: () => send() });
  if (e.attempts && e.attempts.length) renderTrail(e.attempts);
  else fill($("#trail"), el("li", { class: "placeholder" }, el("span", { class: "det", text: e.status === 400 || e.status === 413 || e.status === 415 || e.status === 401 ? "Refused before any provider was called." : "No attempts reported." })));
  fill($("#meta"), el("p", { class: "muted small", text: `No answer: ${e.code}.` }));
  if (e.field) markInvalid(FIELD_INPUT[e.field], `${e.field}: ${e.message}`);
}

function stop() {
  if (controller) controller.abort();
}

// ------------------------------------------------------------ providers

// A provider's state, as short as a phone-wide select needs; a provider
// that can answer needs no note.
const STRATEGY_NOTE = { unconfigured: "no key", cooling_down: "cooldown", down: "down", degraded: "degraded" };

// The options stay short enough for a phone-wide select; the whole chain
// is spelled out under it, where it can wrap.
async function loadStrategies() {
  const sel = $("#strategy");
  try {
    const s = await apiGet("/api/v1/providers/status");
    const byId = new Map((s.providers || []).map((p) => [p.id, p]));
    const order = s.routingOrder || [];
    const keep = sel.value;
    fill(sel, el("option", { value: "auto", text: "auto: the whole chain" }),
      order.map((id) => {
        const p = byId.get(id) || { id };
        const note = STRATEGY_NOTE[p.state];
        return el("option", { value: id, text: `${p.name || id} first${note ? ` (${note})` : ""}`, title: STATE_TEXT[p.state] || "" });
      }));
    sel.value = [...sel.options].some((o) => o.value === keep) ? keep : "auto";
    fill($("#strategy-hint"), "Chain: ", el("span", { id: "strategy-chain", class: "chain-line", text: order.join(" → ") }),
      ". A provider tries that one first, then the rest of the chain.");
  } catch (e) {
    $("#strategy-hint").textContent = `Could not read the chain (${e.code}); only auto is offered.`;
  }
}

// ----------------------------------------------------------------- logs

const logs = { before: null, next: null, page: 0 };

// Log rows name the endpoint that served them: /api/v1's chat and stream,
// and the OpenAI-compatible /v1/chat/completions (plain or streamed).
const ENDPOINT_LABEL = { chat: "chat", stream: "stream", openai: "v1 chat", openai_stream: "v1 stream" };
const endpointLabel = (e) => ENDPOINT_LABEL[e] || e || "?";

function logRow(r) {
  const route = r.attemptedProvider && r.finalProvider && r.attemptedProvider !== r.finalProvider
    ? `${r.attemptedProvider} → ${r.finalProvider}` : r.finalProvider || r.attemptedProvider || "–";
  const ok = r.status === "success";
  // A client that hung up is cancelled: neither ok nor an error.
  const cancelled = r.status === "cancelled";
  const flags = [r.fallbackActivated && "fallback", r.degradedMode && "degraded", r.demoMode && "demo"].filter(Boolean);
  return el("tr", { attrs: { "data-request-id": r.requestId } },
    el("td", { class: "nowrap", text: fmtDateTime(r.timestamp), title: r.requestId ? `request id ${r.requestId}` : "" }),
    // Which gateway machine served it (RELAYFORGE_NODE): a sub-line.
    el("td", { title: r.endpoint ? `endpoint ${r.endpoint}` : "" },
      el("span", { class: "nowrap", text: `${endpointLabel(r.endpoint)} · ${r.strategy || "?"}` }),
      r.node ? el("span", { class: "sub node", text: r.node, title: "the gateway machine that served it" }) : null),
    el("td", {}, el("span", { class: "nowrap", text: route }), el("span", { class: "sub", text: r.model || "no model" })),
    el("td", {}, el("span", { class: `badge s-${ok ? "ok" : cancelled ? "neutral" : "error"}`, text: ok ? "ok" : cancelled ? "cancelled" : r.errorCode || r.status || "error", title: cancelled ? "the client hung up (client_closed)" : undefined })),
    el("td", { class: "num", text: r.httpStatus ?? "–" }),
    el("td", { class: "num", text: fmtMs(r.latencyMs) }),
    el("td", { class: "num", text: r.ttftMs === null || r.ttftMs === undefined ? "–" : fmtMs(r.ttftMs) }),
    el("td", { class: "num", text: r.usage ? `${fmtInt(r.usage.promptTokens)} / ${fmtInt(r.usage.completionTokens)}` : "–" }),
    el("td", { class: "flags", text: flags.length ? flags.join(", ") : "–" }));
}

// The log row is written just after the answer leaves the gateway: look
// again a few times until the request shows up.
async function refreshLogsFor(requestId, tries) {
  await loadLogs(null);
  const seen = requestId && [...document.querySelectorAll("#logs-body tr[data-request-id]")].some((tr) => tr.dataset.requestId === requestId);
  if (requestId && !seen && tries > 1) setTimeout(() => refreshLogsFor(requestId, tries - 1), 800);
}

async function loadLogs(before) {
  const body = $("#logs-body");
  const q = `/api/v1/logs?limit=${LOG_PAGE}` + (before ? `&before=${encodeURIComponent(before)}` : "");
  try {
    const d = await apiGet(q, { auth: "admin" });
    fill($("#logs-error"));
    if (before === null) logs.page = 0;
    logs.before = before;
    logs.next = d.nextBefore ?? null;
    const items = d.items || [];
    if (items.length) fill(body, items.map(logRow));
    else fill(body, el("tr", { class: "empty-row" }, el("td", { colSpan: 9, text: before ? "No older requests." : "No requests logged yet. Send one above." })));
    labelCells($("#logs"));
    $("#logs-caption").textContent = items.length
      ? `${logs.page === 0 ? "The" : `Page ${logs.page + 1}:`} ${items.length} ${logs.page === 0 ? "newest" : "older"} request${items.length === 1 ? "" : "s"}.`
      : "Nothing to show.";
    $("#logs-older").disabled = !logs.next;
    $("#logs-newest").disabled = logs.page === 0;
  } catch (e) {
    showError($("#logs-error"), e, { kind: "admin", retry: () => loadLogs(null), title: "logs:" });
    fill(body);
    $("#logs-caption").textContent = "Logs unavailable.";
  }
}

function older() {
  if (!logs.next) return;
  logs.page += 1;
  loadLogs(logs.next);
}

// ----------------------------------------------------------------- init

function main() {
  initChrome();
  const prompt = $("#prompt");
  const count = () => { $("#prompt-count").textContent = fmtInt(prompt.value.length); };
  prompt.addEventListener("input", count);
  count();
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("#ask").requestSubmit(); }
  });
  const temp = $("#temperature");
  const showTemp = () => { $("#temperature-out").textContent = Number(temp.value).toFixed(2); };
  temp.addEventListener("input", showTemp);
  showTemp();
  $("#ask").addEventListener("submit", send);
  $("#stop").addEventListener("click", stop);
  $("#clear").addEventListener("click", () => {
    clearInvalid();
    fill($("#notes")); fill($("#error")); fill($("#timing"));
    const out = $("#output");
    out.classList.add("is-empty");
    fill(out, "The answer appears here, token by token.");
    setState("idle", "idle");
    fill($("#meta"), el("p", { class: "muted small", text: "Which provider answered, and why, shows here after a request." }));
    fill($("#trail"), el("li", { class: "placeholder" }, el("span", { class: "det", text: "No request yet." })));
  });
  $("#logs-refresh").addEventListener("click", () => loadLogs(logs.page ? logs.before : null));
  $("#logs-newest").addEventListener("click", () => loadLogs(null));
  $("#logs-older").addEventListener("click", older);
  stackTable($("#logs"));
  scrollHint($("#logs").closest(".table-wrap"));
  loadStrategies();
  loadLogs(null);
}

main();
