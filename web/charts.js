// Charts for the landing and status pages, drawn by Chart.js (Debian's
// libjs-chart.js, copied to web/vendor/ by `make`; loaded as a classic
// script, so it is the global `Chart`).  Every value comes from
// GET /api/v1/usage; an empty window shows a sentence, not a flat line.

import { el, fill, fmtInt, fmtLocal, fmtMs, fmtPct, parseTime } from "./app.js";

const PROVIDER_COLORS = {
  groq: "#f59e5b",
  sambanova: "#b49cff",
  cerebras: "#2dd4e8",
  gemini: "#6cb6ff",
  openrouter: "#f47fc0",
  mock: "#9aa7bd",
};
const SPARE = ["#3ddc97", "#f7c04a", "#ff7b7b", "#8b9bff", "#7dd3fc", "#fca5a5"];

export function providerColor(id, i = 0) {
  return PROVIDER_COLORS[id] || SPARE[i % SPARE.length];
}

export function chartLib() {
  return typeof window.Chart === "function" ? window.Chart : null;
}

let themed = false;
function theme(Chart) {
  if (themed) return;
  themed = true;
  Chart.defaults.color = "#a3aec4";
  Chart.defaults.borderColor = "rgba(163, 174, 196, 0.14)";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
  Chart.defaults.plugins.tooltip.backgroundColor = "#0e1422";
  Chart.defaults.plugins.tooltip.borderColor = "#34446a";
  Chart.defaults.plugins.tooltip.borderWidth = 1;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 250 };
}

// A bucket's label: its start in the pages' one local date-time format
// ("2026-12-01 21:00"), whatever the bucket size, so a label never names
// a time that has not come yet.
export function bucketLabel(t) {
  return parseTime(t) ? fmtLocal(t) : String(t);
}

// Create the chart on canvas, or update the one already there in place.
function upsert(canvas, config) {
  const Chart = chartLib();
  theme(Chart);
  const existing = Chart.getChart(canvas);
  if (existing) {
    existing.data.labels = config.data.labels;
    existing.data.datasets.forEach((ds, i) => { ds.data = config.data.datasets[i].data; });
    if (config.data.datasets.some((ds, i) => ds.backgroundColor !== existing.data.datasets[i].backgroundColor)) {
      existing.data.datasets.forEach((ds, i) => { ds.backgroundColor = config.data.datasets[i].backgroundColor; });
    }
    existing.update();
    return existing;
  }
  return new Chart(canvas, config);
}

// Show the "no data" sentence over an empty chart box, or hide it.
function emptyState(box, message) {
  let note = box.querySelector(".chart-empty");
  if (!note) {
    note = el("div", { class: "chart-empty" });
    box.append(note);
  }
  if (message) {
    note.textContent = message;
    note.hidden = false;
  } else {
    note.hidden = true;
  }
}

function noLib(box) {
  emptyState(box, "Charts need Chart.js at web/vendor/chart.umd.min.js; `make` copies it from Debian's libjs-chart.js.");
  return false;
}

function labelsOf(usage) {
  return (usage.timeseries || []).map((b) => bucketLabel(b.t));
}

const axisInt = { beginAtZero: true, ticks: { precision: 0 } };
const xAxis = { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } };

// Latency of an empty bucket is no measurement: null leaves a gap.
const lat = (b, k) => (b.requests > 0 && Number.isFinite(b[k]) ? b[k] : null);

// Requests (bars), errors, fallbacks and cancelled requests (lines) per
// bucket.  A request whose client hung up is cancelled, never an error.
export function requestsChart(canvas, usage, emptyText) {
  const box = canvas.parentElement;
  if (!chartLib()) return noLib(box);
  const ts = usage.timeseries || [];
  upsert(canvas, {
    type: "bar",
    data: {
      labels: labelsOf(usage),
      datasets: [
        { type: "bar", label: "Requests", data: ts.map((b) => b.requests || 0), backgroundColor: "rgba(139, 155, 255, 0.65)", borderRadius: 3, order: 2 },
        { type: "line", label: "Errors", data: ts.map((b) => b.errors || 0), borderColor: "#ff7b7b", backgroundColor: "#ff7b7b", pointRadius: 0, tension: 0.25, order: 1 },
        { type: "line", label: "Fallbacks", data: ts.map((b) => b.fallbacks || 0), borderColor: "#f7c04a", backgroundColor: "#f7c04a", borderDash: [4, 3], pointRadius: 0, tension: 0.25, order: 1 },
        { type: "line", label: "Cancelled", data: ts.map((b) => b.cancelled || 0), borderColor: "#9aa7bd", backgroundColor: "#9aa7bd", borderDash: [2, 3], pointRadius: 0, tension: 0.25, order: 1 },
      ],
    },
    options: { interaction: { mode: "index", intersect: false }, scales: { x: xAxis, y: axisInt } },
  });
  emptyState(box, usage.totals && usage.totals.requests > 0 ? "" : emptyText);
  const t = usage.totals || {};
  canvas.setAttribute("aria-label", `Requests per bucket in the last ${usage.window}: ${fmtInt(t.requests || 0)} requests, ${fmtInt(t.errors || 0)} errors, ${fmtInt(t.cancelled || 0)} cancelled.`);
  return true;
}

// Average and p95 latency per bucket.
export function latencyChart(canvas, usage, emptyText) {
  const box = canvas.parentElement;
  if (!chartLib()) return noLib(box);
  const ts = usage.timeseries || [];
  upsert(canvas, {
    type: "line",
    data: {
      labels: labelsOf(usage),
      datasets: [
        { label: "Average (ms)", data: ts.map((b) => lat(b, "avgLatencyMs")), borderColor: "#2dd4e8", backgroundColor: "rgba(45, 212, 232, 0.15)", fill: true, tension: 0.25, pointRadius: 2, spanGaps: false },
        { label: "p95 (ms)", data: ts.map((b) => lat(b, "p95LatencyMs")), borderColor: "#b49cff", backgroundColor: "#b49cff", borderDash: [5, 4], tension: 0.25, pointRadius: 2, spanGaps: false },
      ],
    },
    options: { interaction: { mode: "index", intersect: false }, scales: { x: xAxis, y: { beginAtZero: true, title: { display: true, text: "ms" } } } },
  });
  emptyState(box, usage.totals && usage.totals.requests > 0 ? "" : emptyText);
  const t = usage.totals || {};
  canvas.setAttribute("aria-label", `Latency in the last ${usage.window}: average ${fmtMs(t.avgLatencyMs)}, p95 ${fmtMs(t.p95LatencyMs)}.`);
  return true;
}

// Requests as bars with the average latency as a line on a second axis:
// the landing page's single timeline.
export function requestsLatencyChart(canvas, usage, emptyText) {
  const box = canvas.parentElement;
  if (!chartLib()) return noLib(box);
  const ts = usage.timeseries || [];
  upsert(canvas, {
    type: "bar",
    data: {
      labels: labelsOf(usage),
      datasets: [
        { type: "bar", label: "Requests", data: ts.map((b) => b.requests || 0), backgroundColor: "rgba(139, 155, 255, 0.65)", borderRadius: 3, yAxisID: "y", order: 2 },
        { type: "line", label: "Avg latency (ms)", data: ts.map((b) => lat(b, "avgLatencyMs")), borderColor: "#2dd4e8", backgroundColor: "#2dd4e8", pointRadius: 2, tension: 0.25, yAxisID: "ms", spanGaps: false, order: 1 },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { x: xAxis, y: { ...axisInt, position: "left" }, ms: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "ms" } } },
    },
  });
  emptyState(box, usage.totals && usage.totals.requests > 0 ? "" : emptyText);
  canvas.setAttribute("aria-label", `Requests and average latency over the last ${usage.window}.`);
  return true;
}

// Final-provider distribution after fallback, as a doughnut.
export function providerChart(canvas, usage, emptyText) {
  const box = canvas.parentElement;
  if (!chartLib()) return noLib(box);
  const rows = (usage.providers || []).filter((p) => p.requests > 0);
  upsert(canvas, {
    type: "doughnut",
    data: {
      labels: rows.map((p) => p.provider),
      datasets: [{ label: "Requests", data: rows.map((p) => p.requests), backgroundColor: rows.map((p, i) => providerColor(p.provider, i)), borderColor: "#121a2b", borderWidth: 2 }],
    },
    options: { cutout: "62%", plugins: { legend: { position: "bottom" } } },
  });
  emptyState(box, rows.length ? "" : emptyText);
  canvas.setAttribute("aria-label", rows.length
    ? "Final provider distribution: " + rows.map((p) => `${p.provider} ${fmtPct(p.share)}`).join(", ")
    : "Final provider distribution: no requests in this window yet.");
  return true;
}

// The same distribution as a table (readable without the canvas).
export function providerTable(tbody, usage) {
  const rows = (usage.providers || []).filter((p) => p.requests > 0);
  if (!rows.length) {
    fill(tbody, el("tr", { class: "empty-row" }, el("td", { colSpan: 6, text: "No requests in this window yet." })));
    return;
  }
  fill(tbody, rows.map((p, i) => el("tr", {},
    el("td", {}, el("span", { class: "swatch", attrs: { "aria-hidden": "true" }, style: `background:${providerColor(p.provider, i)}` }), p.provider),
    el("td", { class: "num", text: fmtInt(p.requests) }),
    el("td", { class: "num", text: fmtPct(p.share) }),
    el("td", { class: "num", text: fmtInt(p.errors) }),
    el("td", { class: "num", text: fmtInt(p.cancelled || 0) }),
    el("td", { class: "num", text: fmtMs(p.avgLatencyMs) }))));
}
