// The status page and the charts, with a chain whose head fails: Groq has
// a key but its URL is a closed loopback port, so requests fall back to the
// mock, and after two failures Groq cools down.  Checks that the page lists
// every provider with its state, the cooldown counts down live, the
// workspace shows the fallback, and the charts hold the gateway's numbers.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { apiPost, launch, screenshot, sleep, startServer, watchedPage } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer({
    GROQ_API_KEY: "test-key-browser-not-secret",
    RELAYFORGE_GROQ_URL: "http://127.0.0.1:9/",
    RELAYFORGE_FAILURE_THRESHOLD: "2",
    RELAYFORGE_RETRIES: "0",
    RELAYFORGE_COOLDOWN_MS: "300000",
    RELAYFORGE_CONNECT_TIMEOUT_MS: "500",
  });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

async function api(route) {
  const r = await fetch(server.url + route.replace(/^\//, ""));
  const body = await r.json();
  assert.equal(body.success, true, JSON.stringify(body));
  return body.data;
}

const STATE_TEXT = { healthy: "healthy", idle: "idle", degraded: "degraded", cooling_down: "cooling down", down: "down", unconfigured: "unconfigured" };

describe("status and charts", () => {
  it("the workspace shows a fallback from the failing head of the chain", async () => {
    const w = await watchedPage(browser);
    try {
      await w.page.goto(server.url + "workspace.html");
      await w.page.waitForFunction(() => document.querySelector("#strategy").options.length > 1);
      await w.page.click("#send");
      await w.page.waitForFunction(() => document.querySelector("#output").dataset.state === "done", null, { timeout: 15000 });
      assert.match(await w.page.textContent("#notes"), /groq could not serve it \(provider_unavailable\): trying /);
      assert.equal(await w.page.getAttribute('#trail li[data-provider="groq"]', "data-outcome"), "provider_unavailable");
      assert.equal(await w.page.textContent('#meta dd[data-key="Attempted provider"]'), "groq");
      assert.equal(await w.page.textContent('#meta dd[data-key="Final provider"]'), "mock");
      assert.equal(await w.page.textContent('#meta dd[data-key="Fallback"]'), "yes");
      // TTFT counts from the request's arrival, so it holds the failed
      // Groq attempt too: the time the client waited for its first token.
      const rid = await w.page.textContent('#meta dd[data-key="Request id"]');
      let row = null;
      for (let i = 0; i < 25 && !row; i++) {
        row = (await api("/api/v1/logs?limit=5")).items.find((r) => r.requestId === rid) || null;
        if (!row) await sleep(200);
      }
      assert.ok(row, "the request was logged");
      const groq = row.attempts.find((a) => a.provider === "groq");
      assert.ok(row.ttftMs >= groq.latencyMs, `ttft ${row.ttftMs} ms >= the groq attempt's ${groq.latencyMs} ms`);
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  it("lists every chain provider in routing order with its state", async () => {
    // A second failure puts Groq in cooldown; three more land on the mock.
    for (let i = 0; i < 4; i++) {
      const r = await apiPost(server.url, "/api/v1/chat", { prompt: `status test ${i}` });
      assert.equal(r.status, 200, r.text);
    }
    // The cooldown reaches the store through the responder's writer
    // thread, a few milliseconds after the answer: look again briefly.
    let status = await api("/api/v1/providers/status");
    for (let i = 0; i < 20 && status.providers.find((p) => p.id === "groq").state !== "cooling_down"; i++) {
      await sleep(100);
      status = await api("/api/v1/providers/status");
    }
    assert.equal(status.providers.find((p) => p.id === "groq").state, "cooling_down");
    const w = await watchedPage(browser);
    try {
      await w.page.goto(server.url + "status.html");
      await w.page.locator("#chain li[data-provider]").first().waitFor();
      const shown = await w.page.$$eval("#chain li[data-provider]", (lis) => lis.map((li) => ({
        id: li.dataset.provider, state: li.querySelector(".badge").textContent,
      })));
      assert.deepEqual(shown.map((s) => s.id), status.routingOrder);
      for (const s of shown) {
        const p = status.providers.find((x) => x.id === s.id);
        assert.equal(s.state, STATE_TEXT[p.state], `${s.id} shows its state`);
      }
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  it("a cooling-down provider shows a countdown that ticks", async () => {
    const w = await watchedPage(browser);
    try {
      await w.page.goto(server.url + "status.html");
      const cd = w.page.locator('#chain li[data-provider="groq"] .countdown');
      await cd.waitFor();
      const t1 = await cd.textContent();
      assert.match(t1, /^\d\d:\d\d left$/);
      await sleep(2100);
      const t2 = await cd.textContent();
      assert.match(t2, /^\d\d:\d\d left$/);
      assert.notEqual(t1, t2, "the countdown moved");
      assert.match(await w.page.textContent('#chain li[data-provider="groq"] dd[data-key="Last error"]'), /provider_unavailable/);
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  it("after a few requests the status charts hold the gateway's numbers", async () => {
    // A client that hangs up in the middle of a stream: cancelled, shown
    // beside the errors and never among them.
    const ac = new AbortController();
    const r = await fetch(server.url + "api/v1/stream", {
      method: "POST", headers: { "Content-Type": "application/json" }, signal: ac.signal,
      body: JSON.stringify({ prompt: "Tell me a long story about gateways, fallbacks and the providers behind them.", options: { strategy: "mock" } }),
    });
    const reader = r.body.getReader();
    let seen = "";
    while (!seen.includes("event: token")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    ac.abort();
    let hungUp = [];
    for (let i = 0; i < 50 && !hungUp.length; i++) {
      hungUp = (await api("/api/v1/logs?status=cancelled")).items;
      if (!hungUp.length) await sleep(200);
    }
    assert.equal(hungUp.length, 1, "the hang-up is logged as cancelled");
    assert.equal(hungUp[0].errorCode, "client_closed");
    const usage = await api("/api/v1/usage?window=24h");
    assert.equal(usage.totals.cancelled, 1);
    assert.ok(usage.totals.requests >= 5, `requests counted: ${usage.totals.requests}`);
    const w = await watchedPage(browser);
    try {
      await w.page.goto(server.url + "status.html");
      await w.page.waitForFunction(() => window.Chart && Chart.getChart(document.querySelector("#chart-providers")));
      const charts = await w.page.evaluate(() => {
        const data = (id) => Chart.getChart(document.querySelector(id)).data;
        const sum = (a) => a.reduce((s, v) => s + (v || 0), 0);
        const req = data("#chart-requests");
        const lat = data("#chart-latency");
        const pie = data("#chart-providers");
        return {
          requests: sum(req.datasets[0].data), errors: sum(req.datasets[1].data), buckets: req.labels.length,
          cancelled: sum(req.datasets[3].data), errorsTile: document.querySelector('[data-stat="Errors"] .d').textContent,
          latencyPoints: lat.datasets[0].data.filter((v) => v !== null).length,
          pieLabels: pie.labels, pieSum: sum(pie.datasets[0].data),
          emptyShown: [...document.querySelectorAll(".chart-empty")].some((n) => !n.hidden),
          tile: document.querySelector('[data-stat="Requests"] .v').textContent,
        };
      });
      assert.equal(charts.requests, usage.totals.requests);
      assert.equal(charts.errors, usage.totals.errors);
      // A hang-up is cancelled, shown beside the errors, never among them.
      assert.equal(charts.cancelled, usage.totals.cancelled);
      assert.match(charts.errorsTile, new RegExp(`${usage.totals.cancelled} cancelled$`));
      assert.equal(charts.buckets, usage.timeseries.length);
      assert.ok(charts.latencyPoints >= 1, "latency has at least one bucket");
      assert.ok(charts.pieLabels.includes("mock"));
      assert.equal(charts.pieSum, usage.totals.requests);
      assert.equal(charts.emptyShown, false, "no 'no data' notice over a chart with data");
      assert.equal(charts.tile, usage.totals.requests.toLocaleString("en-US"));
      assert.equal(await w.page.locator("#providers-body tr").count(), usage.providers.filter((p) => p.requests > 0).length);

      // The window selector asks for another window and redraws.
      const asked = w.page.waitForRequest((r) => r.url().includes("/api/v1/usage?window=1h"));
      await w.page.check('#window input[value="1h"]', { force: true });
      await asked;
      const hour = await api("/api/v1/usage?window=1h");
      await w.page.waitForFunction((n) => Chart.getChart(document.querySelector("#chart-requests")).data.labels.length === n, hour.timeseries.length);
      assert.equal(hour.bucketSeconds, 60);
      await w.page.waitForLoadState("networkidle");
      await screenshot(w.page, "status-cooldown-1280");
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  it("the landing page charts and health snapshot are live", async () => {
    const usage = await api("/api/v1/usage?window=24h");
    const status = await api("/api/v1/providers/status");
    const w = await watchedPage(browser);
    try {
      await w.page.goto(server.url);
      await w.page.waitForFunction(() => window.Chart && Chart.getChart(document.querySelector("#chart-providers")));
      const got = await w.page.evaluate(() => {
        const sum = (a) => a.reduce((s, v) => s + (v || 0), 0);
        return {
          timeline: sum(Chart.getChart(document.querySelector("#chart-timeline")).data.datasets[0].data),
          providers: sum(Chart.getChart(document.querySelector("#chart-providers")).data.datasets[0].data),
          health: [...document.querySelectorAll("#health li[data-provider]")].map((li) => li.dataset.provider),
          preview: document.querySelector("#preview-output").dataset.state,
        };
      });
      assert.ok(got.timeline >= usage.totals.requests && got.timeline > 0);
      assert.equal(got.providers, got.timeline);
      assert.deepEqual(got.health, status.routingOrder);
      // A key is configured: the preview waits for a click, spending nothing.
      assert.equal(got.preview, "idle");
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });
});
