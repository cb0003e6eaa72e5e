// Mid-stream recovery as a person sees it: Groq (the scriptable mock
// upstream) breaks after three tokens, the gateway restarts the answer on
// the next tier (the workspace asks for streamRecovery "restart"), and the
// page keeps the discarded text struck through with who failed and who
// took over, then shows the whole new answer.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { launch, screenshot, startMockUpstream, startServer, watchedPage } from "./harness.mjs";

let mock;
let server;
let browser;

before(async () => {
  mock = await startMockUpstream();
  server = await startServer({
    GROQ_API_KEY: "test-key-browser-not-secret",
    RELAYFORGE_GROQ_URL: mock.url("groq"),
  });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (mock) await mock.stop();
});

describe("stream restart", () => {
  it("shows the discarded partial answer struck through and the provider that took over", async () => {
    await mock.script("groq", [{ kind: "ok", tokens: ["Partial ", "answer ", "from ", "groq ", "never ", "finished"], delay_ms: 40, break_after: 3 }]);
    const w = await watchedPage(browser);
    try {
      const { page } = w;
      await page.goto(server.url + "workspace.html");
      await page.waitForFunction(() => document.querySelector("#strategy").options.length > 1);
      await page.click("#send");
      await page.waitForFunction(() => document.querySelector("#output").dataset.state === "done", null, { timeout: 20000 });
      const discarded = page.locator("#output .discarded");
      assert.equal(await discarded.count(), 1);
      assert.equal(await discarded.locator("del").textContent(), "Partial answer from ");
      assert.match(await discarded.locator(".note").textContent(), /^groq failed \([a-z_]+\), mock took over/);
      const answer = await page.locator("#output .answer").textContent();
      assert.match(answer, /demo path/);
      assert.ok(!answer.includes("Partial"), "the new answer does not repeat the discarded text");
      assert.equal(await page.textContent('#meta dd[data-key="Restarts"]'), "1");
      assert.equal(await page.textContent('#meta dd[data-key="Final provider"]'), "mock");
      await screenshot(page, "workspace-restart-1280");
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });
});
