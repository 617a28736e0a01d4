// The browser tests' harness: starts `jobsched` processes on temporary data directories, drives a
// headless Chromium (Debian's, through playwright-core: no browser download), saves screenshots, and
// talks to the API for setup. Everything waits for elements, events or answers, never fixed times.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../..");
export const BIN = process.env.JOBSCHED_BIN || path.join(root, "target/debug/jobsched");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const OUTPUT = path.join(root, "e2e/output");
export const ADMIN_PASSWORD = "e2e admin password 1";

/** A fresh temporary directory. */
export function tempDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `jobsched-e2e-${tag}-`));
}

/** `jobsched ARGS` as a child process; resolves once it printed the address it listens on. */
export async function startJobsched(name, args, env = {}) {
  const logDir = path.join(OUTPUT, "logs");
  fs.mkdirSync(logDir, { recursive: true });
  const log = fs.openSync(path.join(logDir, `${name}.log`), "w");
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("JOBSCHED_")));
  const child = spawn(BIN, [...args, "--listen", "127.0.0.1:0"], {
    env: { ...clean, JOBSCHED_LOG: "info", JOBSCHED_ADMIN_PASSWORD: ADMIN_PASSWORD, ...env },
    stdio: ["ignore", "pipe", log],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s; see ${logDir}`)), 60000);
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}; see ${logDir}/${name}.log`)));
    lines.once("line", (line) => { clearTimeout(timer); resolve(line.trim().split(/\s+/).pop()); });
  });
  return {
    name,
    base,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await done;
    },
  };
}

/** `jobsched standalone` on a fresh data directory (removed when it stops). */
export async function standalone(tag) {
  const dir = tempDir(tag);
  // Alert rules are evaluated every 200 ms, so a test sees an alert fire without waiting.
  const p = await startJobsched(`standalone-${tag}`, ["standalone", "--data-dir", dir, "--capacity", "4"],
    { JOBSCHED_ALERT_INTERVAL_MS: "200" });
  const stop = p.stop;
  p.stop = async () => {
    await stop();
    removeQuietly(dir);
  };
  const token = await loginToken(p.base, "admin", ADMIN_PASSWORD);
  await waitFor("the scheduler to be active with its executor", async () => {
    const s = await api(p.base, token, "GET", "/api/system/status");
    return s.body.active === true && s.body.executors_online === 1;
  });
  return { ...p, dir, token };
}

/** Polls `check` every 50 ms until it is truthy (its value is returned); fails after `ms`. */
export async function waitFor(what, check, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One API call with a bearer token: `{status, body}`. */
export async function api(base, token, method, p, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  return { status: res.status, body: parsed };
}

/** A login token of `name`. */
export async function loginToken(base, name, password) {
  const r = await api(base, "", "POST", "/api/auth/login", { name, password });
  if (r.status !== 200) throw new Error(`login of ${name} failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token;
}

/** A job through the API (manual unless the spec says otherwise); returns it. */
export async function createJob(base, token, spec) {
  const r = await api(base, token, "POST", "/api/jobs", { schedule_type: "manual", ...spec });
  if (r.status !== 201) throw new Error(`creating job ${spec.job_id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A headless Chromium with its own fresh profile (`bypassCSP` only to inject axe-core). */
export async function browser({ width = 1280, height = 900, colorScheme = "light", bypassCSP = false } = {}) {
  const profile = tempDir("chromium");
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width, height },
    colorScheme,
    bypassCSP,
    timezoneId: "Europe/Berlin",
    locale: "en-GB",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  // The profile goes once the browser has exited (it writes into it while it shuts down).
  const close = ctx.close.bind(ctx);
  ctx.close = async () => {
    await close();
    removeQuietly(profile);
  };
  return ctx;
}

/** Removes a temporary directory, retrying while a process that is exiting still writes into it; never
 *  fails a test (what is left is in the system's temporary directory). */
export function removeQuietly(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch (e) {
    console.error(`could not remove ${dir}: ${e.message}`);
  }
}

/** A page that fails the test on any script error or console error it reports. */
export async function newPage(ctx, errors) {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  // Answers with an error status (a refused login, a validation message) are expected; script errors are not.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(`console error: ${m.text()}`);
  });
  page.on("dialog", (d) => {
    if (page.acceptDialogs > 0) {
      page.acceptDialogs -= 1;
      d.accept();
    } else {
      errors.push(`unexpected dialog: ${d.message()}`);
      d.dismiss();
    }
  });
  page.acceptDialogs = 0;
  return page;
}

/** Accepts the next confirmation the page asks for. */
export function acceptNextDialog(page) {
  page.acceptDialogs += 1;
}

/** Logs in through the login page. */
export async function uiLogin(page, base, name, password) {
  await page.goto(base + "/");
  await page.waitForURL(/\/login/);
  await page.fill("#name", name);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
}

/** Saves a full-page screenshot as `<suite>/<name>.png` under the output folder. */
export async function shot(page, suite, name) {
  const dir = path.join(OUTPUT, suite);
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/** Runs `body(page)`; on failure saves the page's screenshot as `<suite>/FAILED-<name>.png` first. */
export async function step(page, suite, name, body) {
  try {
    await body();
  } catch (e) {
    try { await shot(page, suite, `FAILED-${name}`); } catch { /* the page may be gone */ }
    throw e;
  }
}

/** The MariaDB server of the test environment (`scripts/services.sh env`), or null. */
export function mysqlServer() {
  const url = process.env.JOBSCHED_TEST_MYSQL;
  if (!url) return null;
  const u = new URL(url);
  return { url, host: u.hostname, port: u.port || "3306", user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

/** A fresh database on `server`; its store URL. */
export function freshDatabase(server, tag) {
  const name = `jse2e_${tag}_${Date.now().toString(36)}`;
  execFileSync("mariadb", ["-h", server.host, "-P", server.port, "-u", server.user, `-p${server.password}`, "-e", `CREATE DATABASE ${name}`]);
  return `mysql://${encodeURIComponent(server.user)}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${name}`;
}

/** True when the run must not skip a test for a missing server. */
export const CI = process.env.CI === "true";
