// The screenshots the README shows (docs/workspace.png, docs/status.png),
// taken from a live gateway whose first provider fails: Groq has a key but
// its URL is a closed loopback port, so requests fall back to the mock and
// Groq cools down.  Each test first checks that the page shows what the
// picture is for (a streamed answer with its route; the chain and usage
// with traffic), then writes the picture to tests/out/screenshots/.
//
// To refresh the committed copies in docs/:
//   UPDATE_DOCS_SCREENSHOTS=1 tests/browser/run.sh tests/browser/screenshots.test.mjs

import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { OUT, ROOT, apiPost, launch, startServer, watchedPage } from "./harness.mjs";

const WIDTH = 1280;
const PROMPT = "How does RelayForge choose a provider, and what happens when one fails?";
const UPDATE = process.env.UPDATE_DOCS_SCREENSHOTS === "1";

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

// Write the picture of page (from the top down to `bottom` px) as
// tests/out/screenshots/docs-<name>.png, and into docs/ when asked.
async function picture(page, name, bottom) {
  mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `docs-${name}.png`);
  await page.evaluate(() => window.scrollTo({ top: 0, behavior: "instant" }));
  await page.screenshot({ path: file, fullPage: true, clip: { x: 0, y: 0, width: WIDTH, height: Math.ceil(bottom) } });
  if (UPDATE) copyFileSync(file, path.join(ROOT, "docs", `${name}.png`));
  return file;
}

// Width and height from a PNG's IHDR chunk.
function pngSize(file) {
  const b = readFileSync(file);
  assert.equal(b.toString("latin1", 1, 4), "PNG", `${file} is a PNG`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

describe("docs screenshots", () => {
  it("docs/workspace.png: a streamed answer with its route", async () => {
    const w = await watchedPage(browser, { width: WIDTH, height: 1000 });
    try {
      const { page } = w;
      await page.goto(server.url + "workspace.html");
      await page.waitForFunction(() => document.querySelector("#strategy").options.length > 1);
      await page.fill("#prompt", PROMPT);
      assert.equal(await page.isChecked("#stream"), true, "the request streams");
      await page.click("#send");
      await page.waitForFunction(() => document.querySelector("#output").dataset.state === "done", null, { timeout: 15000 });
      // What the picture must show: the answer, the fallback and the route.
      assert.match(await page.textContent("#output .answer"), /demo path/);
      assert.match(await page.textContent("#notes"), /groq could not serve it/);
      assert.equal(await page.getAttribute('#trail li[data-provider="groq"]', "data-outcome"), "provider_unavailable");
      assert.equal(await page.getAttribute('#trail li[data-provider="mock"]', "data-outcome"), "ok");
      assert.equal(await page.getAttribute("#meta dl", "data-final"), "true");
      assert.equal(await page.textContent('#meta dd[data-key="Fallback"]'), "yes");
      const rid = await page.textContent('#meta dd[data-key="Request id"]');
      await page.locator(`#logs-body tr[data-request-id="${rid}"]`).waitFor({ timeout: 5000 });
      // Take the form, the answer and its route: the page down to the end
      // of the workspace grid.
      await page.locator("#send").blur();
      const bottom = await page.evaluate(() => document.querySelector(".workspace").getBoundingClientRect().bottom + window.scrollY + 16);
      const file = await picture(page, "workspace", bottom);
      assert.equal(pngSize(file).width, WIDTH);
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  it("docs/status.png: the chain, a cooldown and usage with traffic", async () => {
    for (let i = 0; i < 4; i++) {
      const r = await apiPost(server.url, "/api/v1/chat", { prompt: `screenshot traffic ${i}` });
      assert.equal(r.status, 200, r.text);
    }
    const w = await watchedPage(browser, { width: WIDTH, height: 1000 });
    try {
      const { page } = w;
      await page.goto(server.url + "status.html");
      await page.locator('#chain li[data-provider="groq"] .countdown').waitFor();
      await page.waitForFunction(() => window.Chart && Chart.getChart(document.querySelector("#chart-providers")) &&
        document.querySelector("#providers-body tr td.num"));
      await page.waitForLoadState("networkidle");
      assert.equal(await page.getAttribute('#chain li[data-provider="groq"]', "data-state"), "cooling_down");
      assert.equal(await page.textContent('#chain li[data-provider="mock"] dd[data-key="API key"]'), "built in, no key");
      assert.ok(Number(await page.textContent('[data-stat="Requests"] .v')) >= 5);
      assert.ok(Number(await page.textContent('[data-stat="Fallbacks"] .v')) >= 1);
      // Everything above the footer.
      const bottom = await page.evaluate(() => document.querySelector("footer").getBoundingClientRect().top + window.scrollY);
      const file = await picture(page, "status", bottom);
      assert.equal(pngSize(file).width, WIDTH);
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  it("the committed copies exist, as wide as this test takes them", () => {
    for (const name of ["workspace", "status"]) {
      const file = path.join(ROOT, "docs", `${name}.png`);
      assert.ok(existsSync(file), `${file} is committed`);
      assert.equal(pngSize(file).width, WIDTH, `${file} is ${WIDTH} px wide, as this test takes it`);
    }
  });
});
