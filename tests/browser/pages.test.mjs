// Every page loads with no console error, no uncaught exception and no
// failed request, at 1280 px and at 375 px, and each is screenshotted into
// tests/out/screenshots/ for a person to look at.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { apiPost, launch, screenshot, startServer, watchedPage } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
  // A few requests first, so the charts and tables have something to show.
  for (let i = 0; i < 3; i++) {
    const r = await apiPost(server.url, "/api/v1/chat", { prompt: `warm-up request ${i}`, metadata: { source: "browser-test" } });
    assert.equal(r.status, 200, r.text);
  }
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

// What "loaded" means on each page: its live parts have rendered.
const READY = {
  "index.html": async (page) => {
    await page.locator("#health .health-list li").first().waitFor();
    // A fresh install answers from the mock only, so the preview runs by itself.
    await page.waitForFunction(() => document.querySelector("#preview-output").dataset.state === "done", null, { timeout: 15000 });
    await page.waitForFunction(() => window.Chart && Chart.getChart(document.querySelector("#chart-timeline")));
  },
  "docs.html": async (page) => {
    await page.waitForFunction(() => document.querySelector("#live-version").textContent.includes("version"));
  },
  "workspace.html": async (page) => {
    await page.locator("#logs-body tr").first().waitFor();
    await page.waitForFunction(() => document.querySelector("#strategy").options.length > 1);
  },
  "status.html": async (page) => {
    await page.locator("#chain li[data-provider]").first().waitFor();
    await page.waitForFunction(() => window.Chart && Chart.getChart(document.querySelector("#chart-requests")));
  },
};

describe("pages", () => {
  for (const name of Object.keys(READY)) {
    for (const width of [1280, 375]) {
      it(`${name} at ${width} px loads cleanly`, async () => {
        const w = await watchedPage(browser, { width, height: 900 });
        try {
          const res = await w.page.goto(server.url + name);
          assert.equal(res.status(), 200);
          await READY[name](w.page);
          await w.page.waitForLoadState("networkidle");
          // Nothing may stick out sideways at phone width.
          const overflow = await w.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(overflow <= 0, `page is ${overflow} px wider than the viewport`);
          await screenshot(w.page, `${name.replace(".html", "")}-${width}`);
          assert.deepEqual(w.problems, []);
        } finally {
          await w.close();
        }
      });
    }
  }

  it("every page has one h1, a main landmark and labelled form controls", async () => {
    const w = await watchedPage(browser);
    try {
      for (const name of Object.keys(READY)) {
        await w.page.goto(server.url + name);
        await READY[name](w.page);
        const report = await w.page.evaluate(() => {
          const unlabelled = [...document.querySelectorAll("input, select, textarea")]
            .filter((n) => n.type !== "hidden" && !(n.labels && n.labels.length) && !n.getAttribute("aria-label"))
            .map((n) => n.id || n.name || n.outerHTML.slice(0, 60));
          return { h1: document.querySelectorAll("h1").length, main: !!document.querySelector("main"), unlabelled };
        });
        assert.equal(report.h1, 1, `${name}: h1 count`);
        assert.ok(report.main, `${name}: no <main>`);
        assert.deepEqual(report.unlabelled, [], `${name}: unlabelled controls`);
      }
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });
});
