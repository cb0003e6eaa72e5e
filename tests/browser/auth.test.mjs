// An operator who sets RELAYFORGE_ADMIN_TOKEN and RELAYFORGE_API_TOKEN: the
// pages say why logs, usage and chat are refused, take the token, keep it
// for the tab and send it as a bearer token.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { launch, startServer, watchedPage } from "./harness.mjs";

const ADMIN = "admin-token-for-browser-tests";
const API = "api-token-for-browser-tests";
let server;
let browser;

before(async () => {
  server = await startServer({ RELAYFORGE_ADMIN_TOKEN: ADMIN, RELAYFORGE_API_TOKEN: API });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

describe("tokens", () => {
  it("logs and usage ask for the admin token, refuse a wrong one and work with the right one", async () => {
    const w = await watchedPage(browser);
    w.allow(401);
    try {
      const { page } = w;
      await page.goto(server.url + "workspace.html");
      const notice = page.locator("#logs-error .notice");
      await notice.waitFor();
      assert.match(await notice.textContent(), /admin token/);
      assert.match(await notice.textContent(), /unauthorized/);
      await page.fill("#logs-error input[type=password]", "wrong");
      await page.click("#logs-error button[type=submit]");
      await page.waitForFunction(() => /refused/.test(document.querySelector("#logs-error").textContent));
      await page.fill("#logs-error input[type=password]", ADMIN);
      await page.click("#logs-error button[type=submit]");
      await page.waitForFunction(() => document.querySelector("#logs-caption").textContent !== "Logs unavailable.");
      assert.equal(await page.locator("#logs-error .notice").count(), 0);
      // Kept for the tab: the status page's usage loads without asking again.
      await page.goto(server.url + "status.html");
      await page.waitForFunction(() => document.querySelector('[data-stat="Requests"]'));
      assert.equal(await page.locator("#usage-error .notice").count(), 0);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("relayforge.adminToken")), ADMIN);
      assert.deepEqual(w.realProblems(), []);
    } finally {
      await w.close();
    }
  });

  it("chat asks for the API token and the request goes through with it", async () => {
    const w = await watchedPage(browser);
    w.allow(401);
    try {
      const { page } = w;
      await page.goto(server.url + "workspace.html");
      await page.click("#send");
      const notice = page.locator("#error .notice");
      await notice.waitFor();
      assert.match(await notice.textContent(), /API token/);
      await page.fill("#error input[type=password]", API);
      let auth = null;
      page.on("request", (r) => { if (r.url().endsWith("/api/v1/stream")) auth = r.headers().authorization; });
      await page.click("#error button[type=submit]");
      await page.waitForFunction(() => document.querySelector("#output").dataset.state === "done", null, { timeout: 15000 });
      assert.equal(auth, `Bearer ${API}`);
      assert.equal(await page.textContent('#meta dd[data-key="Final provider"]'), "mock");
      assert.deepEqual(w.realProblems(), []);
    } finally {
      await w.close();
    }
  });
});
