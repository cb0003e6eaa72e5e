// The workspace against the live gateway with the mock provider (no keys):
// streaming renders tokens before `done`, Stop aborts, markup in a prompt
// stays text, errors show the error shape's message, and the recent-logs
// table refreshes and pages.

import assert from "node:assert/strict";
import { after, before, beforeEach, afterEach, describe, it } from "node:test";
import { apiPost, launch, screenshot, sleep, startServer, watchedPage } from "./harness.mjs";

let server;
let browser;
let w;

const state = (page) => page.locator("#output").getAttribute("data-state");
const answerText = (page) => page.evaluate(() => document.querySelector("#output").textContent);

async function openWorkspace() {
  w = await watchedPage(browser);
  await w.page.goto(server.url + "workspace.html");
  await w.page.waitForFunction(() => document.querySelector("#strategy").options.length > 1);
  await w.page.waitForLoadState("networkidle");
}

before(async () => {
  server = await startServer({ RELAYFORGE_NODE: "ws-node-1" });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

beforeEach(openWorkspace);
afterEach(async () => { if (w) await w.close(); });

describe("workspace", () => {
  it("streams a mock answer with the first token on the page before done", async () => {
    const { page } = w;
    await page.fill("#prompt", "Explain the fallback strategy in RelayForge");
    // Record every change of the output as it happens, in the page.
    await page.evaluate(() => {
      const out = document.querySelector("#output");
      window.__seen = [];
      new MutationObserver(() => {
        const a = out.querySelector(".answer");
        window.__seen.push({ state: out.dataset.state, text: a ? a.textContent : "", stop: !document.querySelector("#stop").disabled });
      }).observe(out, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await page.click("#send");
    await page.waitForFunction(() => document.querySelector("#output").dataset.state === "done", null, { timeout: 15000 });
    const seen = await page.evaluate(() => window.__seen);
    const firstIdx = seen.findIndex((s) => s.text.length > 0);
    const doneIdx = seen.findIndex((s) => s.state === "done");
    assert.ok(firstIdx >= 0 && firstIdx < doneIdx, "a token was on the page before done");
    assert.equal(seen[firstIdx].state, "streaming");
    assert.ok(seen[firstIdx].stop, "Stop is enabled while streaming");
    const firstText = seen[firstIdx].text;
    const distinct = new Set(seen.filter((s) => s.state === "streaming").map((s) => s.text)).size;
    assert.ok(distinct >= 5, `tokens arrived one by one (${distinct} distinct states seen)`);
    const full = await answerText(page);
    assert.ok(full.length > firstText.length, "more text arrived after the first token");
    assert.ok(full.startsWith(firstText));
    assert.match(full, /demo path/);
    // Meta of the final event and the attempt trail.
    assert.equal(await page.textContent('#meta dd[data-key="Final provider"]'), "mock");
    assert.equal(await page.textContent('#meta dd[data-key="Demo (mock)"]'), "yes");
    assert.equal(await page.textContent('#meta dd[data-key="Model"]'), "relayforge-mock-1");
    assert.match(await page.textContent('#meta dd[data-key="TTFT"]'), /^(<1|[\d,]+) ms$/);
    assert.equal(await page.getAttribute('#trail li[data-provider="mock"]', "data-outcome"), "ok");
    assert.equal(await page.getAttribute('#trail li[data-provider="groq"]', "data-outcome"), "skipped");
    assert.equal(await page.locator("#send").isEnabled(), true);
    assert.equal(await page.locator("#stop").isEnabled(), false);
    // The logs table refreshes by itself after the request.
    const rid = await page.textContent('#meta dd[data-key="Request id"]');
    await page.locator(`#logs-body tr[data-request-id="${rid}"]`).waitFor({ timeout: 5000 });
    // It names the gateway machine that served it (RELAYFORGE_NODE).
    assert.equal(await page.textContent(`#logs-body tr[data-request-id="${rid}"] .node`), "ws-node-1");
    await screenshot(page, "workspace-answered-1280");
    await page.setViewportSize({ width: 375, height: 900 });
    await screenshot(page, "workspace-answered-375");
    assert.deepEqual(w.problems, []);
  });

  it("the stop button aborts the stream", async () => {
    const { page } = w;
    w.allow("aborted");
    await page.fill("#prompt", "Tell me a long story about fallback chains and cooldowns");
    await page.click("#send");
    await page.waitForFunction(() => document.querySelector("#output").dataset.state === "streaming" &&
      document.querySelector("#output .answer").textContent.length > 0, null, { polling: "raf", timeout: 10000 });
    await page.click("#stop");
    await page.waitForFunction(() => document.querySelector("#output").dataset.state === "stopped", null, { timeout: 5000 });
    const atStop = await answerText(page);
    await sleep(700); // the mock would have sent ~20 more tokens by now
    assert.equal(await answerText(page), atStop, "no token arrived after Stop");
    assert.ok(!/done/.test(await page.textContent("#run-state")));
    assert.equal(await page.locator("#send").isEnabled(), true);
    assert.equal(await page.locator("#stop").isEnabled(), false);
    // The gateway saw the client go away and logged it.
    let code = null;
    for (let i = 0; i < 25 && code !== "client_closed"; i++) {
      const logs = await (await fetch(server.url + "api/v1/logs?limit=1")).json();
      code = logs.data.items.length ? logs.data.items[0].errorCode : null;
      if (code !== "client_closed") await sleep(200);
    }
    assert.equal(code, "client_closed");
    // The recent requests show it cancelled, neither ok nor an error.
    await page.click("#logs-refresh");
    await page.waitForFunction(() => {
      const b = document.querySelector("#logs-body tr .badge");
      return b && b.textContent === "cancelled" && b.classList.contains("s-neutral");
    }, null, { timeout: 5000 });
    assert.deepEqual(w.realProblems(), []);
  });

  for (const stream of [true, false]) {
    it(`a prompt with markup renders as text (${stream ? "stream" : "chat"})`, async () => {
      const { page } = w;
      const evil = "<img src=x onerror=alert(1)>";
      if (!stream) await page.uncheck("#stream");
      await page.fill("#prompt", evil);
      await page.click("#send");
      await page.waitForFunction(() => document.querySelector("#output").dataset.state === "done", null, { timeout: 15000 });
      // The mock quotes the prompt back: it must show as characters.
      assert.ok((await answerText(page)).includes(evil), "the quoted prompt is shown literally");
      assert.equal(await page.locator("main img").count(), 0, "no img element was created");
      assert.deepEqual(w.problems.filter((p) => p.startsWith("dialog")), [], "no dialog opened");
      assert.deepEqual(w.problems, []);
    });
  }

  it("a validation error from the gateway shows its message and field", async () => {
    const { page } = w;
    w.allow(400);
    await page.fill("#maxTokens", "100000");
    await page.click("#send");
    const box = page.locator("#error .error-box");
    await box.waitFor({ timeout: 5000 });
    assert.equal(await box.locator(".code").textContent(), "validation_error");
    const text = await box.textContent();
    assert.match(text, /options\.maxTokens/);
    assert.ok((await box.locator(".msg").textContent()).trim().length > 0, "the message is shown");
    assert.equal(await page.getAttribute("#maxTokens", "aria-invalid"), "true");
    assert.equal(await state(page), "error");
    assert.deepEqual(w.realProblems(), []);
  });

  it("a blank prompt is stopped in the page, and one that slips past is refused by the gateway", async () => {
    const { page } = w;
    w.allow(400);
    let posted = 0;
    page.on("request", (r) => { if (r.method() === "POST") posted++; });
    await page.fill("#prompt", "   ");
    await page.click("#send");
    assert.match(await page.textContent("#form-msg"), /prompt/i);
    assert.equal(await page.getAttribute("#prompt", "aria-invalid"), "true");
    assert.equal(posted, 0, "nothing was sent");
    // Bypass the page's check: blank the prompt on the wire.
    await page.route("**/api/v1/stream", (route) => {
      const body = JSON.parse(route.request().postData());
      body.prompt = " ";
      route.continue({ postData: JSON.stringify(body) });
    });
    await page.fill("#prompt", "hello");
    await page.click("#send");
    const box = page.locator("#error .error-box");
    await box.waitFor({ timeout: 5000 });
    assert.equal(await box.locator(".code").textContent(), "validation_error");
    assert.match(await box.textContent(), /prompt/);
    assert.equal(await page.getAttribute("#prompt", "aria-invalid"), "true");
    assert.deepEqual(w.realProblems(), []);
  });

  it("the recent-logs table pages with Older and Newest", async () => {
    const { page } = w;
    for (let i = 0; i < 12; i++) {
      const r = await apiPost(server.url, "/api/v1/chat", { prompt: `paging ${i}` });
      assert.equal(r.status, 200, r.text);
    }
    await page.click("#logs-refresh");
    await page.waitForFunction(() => document.querySelectorAll("#logs-body tr[data-request-id]").length === 10);
    const first = await page.$$eval("#logs-body tr[data-request-id]", (rows) => rows.map((r) => r.dataset.requestId));
    assert.equal(await page.locator("#logs-older").isEnabled(), true);
    await page.click("#logs-older");
    await page.waitForFunction((ids) => {
      const rows = [...document.querySelectorAll("#logs-body tr[data-request-id]")];
      return rows.length > 0 && !ids.includes(rows[0].dataset.requestId);
    }, first);
    const second = await page.$$eval("#logs-body tr[data-request-id]", (rows) => rows.map((r) => r.dataset.requestId));
    assert.ok(second.every((id) => !first.includes(id)), "the older page holds other rows");
    assert.equal(await page.locator("#logs-newest").isEnabled(), true);
    await page.click("#logs-newest");
    await page.waitForFunction((id) => document.querySelector("#logs-body tr[data-request-id]").dataset.requestId === id, first[0]);
    assert.deepEqual(w.problems, []);
  });

  it("strategy lists auto and every provider of the chain", async () => {
    const { page } = w;
    const status = await (await fetch(server.url + "api/v1/providers/status")).json();
    const values = await page.$$eval("#strategy option", (os) => os.map((o) => o.value));
    assert.deepEqual(values, ["auto", ...status.data.routingOrder]);
    // Manual mode: the request names the chosen provider.
    let sent = null;
    page.on("request", (r) => { if (r.url().endsWith("/api/v1/stream")) sent = JSON.parse(r.postData()); });
    await page.selectOption("#strategy", "mock");
    await page.click("#send");
    await page.waitForFunction(() => document.querySelector("#output").dataset.state === "done", null, { timeout: 15000 });
    assert.equal(sent.options.strategy, "mock");
    assert.equal(sent.options.streamRecovery, "restart");
    assert.equal(await page.textContent('#meta dd[data-key="Strategy"]'), "mock");
    assert.deepEqual(w.problems, []);
  });
});
