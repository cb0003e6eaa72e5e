// Browser-test harness: a real lighttpd with the shipped run config
// (deploy/lighttpd-run.conf.in, templated only for ports and paths), the
// built responder, a private SQLite file, and headless Debian Chromium
// driven by playwright-core.  Each test file starts its own server, so the
// files are independent; everything started here is stopped by stop().

import { spawn } from "node:child_process";
import { accessSync, closeSync, constants, existsSync, mkdtempSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const OUT = path.join(ROOT, "tests", "out", "screenshots");
const TEMPLATE = path.join(ROOT, "deploy", "lighttpd-run.conf.in");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PROVIDERS = ["groq", "sambanova", "cerebras", "gemini", "openrouter"];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function binary() {
  const bin = path.resolve(process.env.BIN || path.join(ROOT, "cgi-bin", "relayforge.fcgi"));
  try { accessSync(bin, constants.X_OK); } catch {
    throw new Error(`responder binary missing: ${bin} (run make)`);
  }
  return bin;
}

function checkVendor() {
  const chart = path.join(ROOT, "web", "vendor", "chart.umd.min.js");
  if (!existsSync(chart)) throw new Error(`${chart} is missing: make copies it from Debian's libjs-chart.js`);
}

// The responder processes lighttpd spawned (children by parent pid).
function childPids(pid) {
  const kids = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) kids.push(Number(d));
    } catch { /* gone */ }
  }
  return kids;
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function healthy(url) {
  try {
    const r = await fetch(url + "api/v1/health", { signal: AbortSignal.timeout(3000) });
    const body = await r.json();
    return body && "success" in body;
  } catch { return false; }
}

// Start lighttpd + responder.  extra: more KEY=VALUE settings for the
// RELAYFORGE_CONFIG file.  Returns { url, tmp, log(), stop() }.
export async function startServer(extra = {}) {
  const bin = binary();
  checkVendor();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "rf-browser-"));
  const run = path.join(tmp, "run");
  mkdirSync(run);
  const conf = path.join(tmp, "relayforge.conf");
  const cfg = {
    RELAYFORGE_DB: path.join(tmp, "relayforge.db"),
    RELAYFORGE_MOCK_DELAY_MS: "30",
    RELAYFORGE_RATE_LIMIT: "0",
    ...extra,
  };
  // No key is set, so no provider is called; the URLs point at a closed
  // loopback port all the same, so nothing here can reach the internet.
  for (const p of PROVIDERS) cfg[`RELAYFORGE_${p.toUpperCase()}_URL`] ??= "http://127.0.0.1:9/";
  writeFileSync(conf, "# written by tests/browser/harness.mjs\n" +
    Object.entries(cfg).map(([k, v]) => `${k}=${v}\n`).join(""));
  const logPath = path.join(tmp, "server.log");
  let lastErr = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const subst = { "@PORT@": String(port), "@ROOT@": ROOT, "@WEB@": path.join(ROOT, "web"), "@BIN@": bin, "@RUN@": run, "@CONFIG@": conf, "@PROCS@": "2" };
    let text = readFileSync(TEMPLATE, "utf8");
    for (const [k, v] of Object.entries(subst)) text = text.split(k).join(v);
    const left = text.match(/@[A-Z]+@/g);
    if (left) throw new Error(`unrendered placeholders: ${left.join(" ")}`);
    const lconf = path.join(run, "lighttpd.conf");
    writeFileSync(lconf, text);
    const fd = openSync(logPath, "a");
    const proc = spawn("lighttpd", ["-D", "-f", lconf], { stdio: ["ignore", fd, fd], env: { PATH: process.env.PATH || "/usr/bin:/bin" } });
    closeSync(fd);
    let exited = false;
    proc.on("exit", () => { exited = true; });
    const url = `http://127.0.0.1:${port}/`;
    const end = Date.now() + 20000;
    while (!exited && Date.now() < end && !(await healthy(url))) await sleep(100);
    if (!exited && (await healthy(url))) {
      const log = () => { try { return readFileSync(logPath, "utf8"); } catch { return ""; } };
      const stop = async () => {
        const kids = childPids(proc.pid);
        if (!exited) {
          proc.kill("SIGTERM");
          const until = Date.now() + 10000;
          while (!exited && Date.now() < until) await sleep(50);
          if (!exited) proc.kill("SIGKILL");
        }
        const until = Date.now() + 5000;
        for (const pid of kids) {
          while (alive(pid) && Date.now() < until) await sleep(50);
          if (alive(pid)) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
        }
        if (!process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
      };
      return { url, tmp, log, stop };
    }
    if (!exited) proc.kill("SIGKILL");
    lastErr = (() => { try { return readFileSync(logPath, "utf8"); } catch { return ""; } })();
    if (!/Address already in use/.test(lastErr)) break;
  }
  throw new Error("lighttpd did not come up:\n" + lastErr.slice(-3000));
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// A page that records what a person would see as broken: console errors,
// uncaught exceptions, failed requests and HTTP errors.  expectStatus()
// lets a test allow a status it provokes on purpose (e.g. a 400).
// timezoneId (e.g. "Asia/Kolkata") sets the browser's local time zone.
export async function watchedPage(browser, { width = 1280, height = 900, timezoneId } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, ...(timezoneId ? { timezoneId } : {}) });
  const page = await context.newPage();
  const problems = [];
  const allowed = new Set();
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`exception: ${e.message}`));
  page.on("dialog", (d) => { problems.push(`dialog: ${d.type()} ${d.message()}`); d.dismiss().catch(() => {}); });
  page.on("requestfailed", (r) => {
    const why = r.failure() ? r.failure().errorText : "?";
    // A request the page aborts on purpose (Stop) is not a failure.
    if (!/ERR_ABORTED/.test(why) || !allowed.has("aborted")) problems.push(`request failed: ${r.method()} ${r.url()} ${why}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && !allowed.has(r.status())) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  return {
    page,
    context,
    problems,
    allow(what) { allowed.add(what); },
    // Console lines Chromium prints for an allowed HTTP error are expected.
    realProblems() {
      return problems.filter((p) => !(p.startsWith("console: Failed to load resource") && [...allowed].some((a) => p.includes(`status of ${a}`))));
    },
    close: () => context.close(),
  };
}

export async function screenshot(page, name) {
  mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `${name}.png`);
  // From the top, so the sticky header is drawn where it belongs.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Send requests straight to the API (not through a page), e.g. to give the
// charts something to show.
export async function apiPost(url, route, body) {
  const r = await fetch(url + route.replace(/^\//, ""), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, text };
}

// The scriptable loopback mock upstream (tests/mock_upstream.py), for
// tests that need a real provider to misbehave.  Returns
// { url(name), script(name, behaviours), stop() }.
export async function startMockUpstream() {
  const proc = spawn("python3", [path.join(ROOT, "tests", "mock_upstream.py"), "--port", "0"], { stdio: ["ignore", "pipe", "ignore"] });
  const port = await new Promise((resolve, reject) => {
    let buf = "";
    const t = setTimeout(() => reject(new Error("mock upstream did not start")), 10000);
    proc.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/^PORT (\d+)/m);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    proc.on("exit", () => { clearTimeout(t); reject(new Error("mock upstream exited")); });
  });
  const base = `http://127.0.0.1:${port}`;
  const control = async (route, body) => {
    const r = await fetch(base + route, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`mock ${route}: HTTP ${r.status}`);
    return r.json();
  };
  return {
    url: (name) => `${base}/${name}`,
    script: (name, behaviours) => control(`/_script/${name}`, behaviours),
    stop: async () => {
      if (proc.exitCode === null) {
        proc.kill("SIGTERM");
        await new Promise((r) => { proc.on("exit", r); setTimeout(r, 5000); });
      }
    },
  };
}
