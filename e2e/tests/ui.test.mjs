// The Web UI in a real browser against `jobsched standalone`: every page, each role, live output.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  ADMIN_PASSWORD, acceptNextDialog, api, browser, createJob, loginToken, newPage, shot, standalone, step,
  uiLogin, waitFor,
} from "../lib/harness.mjs";

const SUITE = "ui";
let server;
let ctx;
let page;
const errors = [];

before(async () => {
  server = await standalone("ui");
  ctx = await browser();
  page = await newPage(ctx, errors);
});

after(async () => {
  await ctx?.close();
  await server?.stop();
});

/** Fails on script errors the pages reported. */
function noScriptErrors() {
  assert.deepEqual(errors.splice(0), [], "the pages reported no script errors");
}

test("logging in: a wrong password is refused on the page, the right one opens the dashboard", async () => {
  await step(page, SUITE, "login", async () => {
    await page.goto(server.base + "/jobs");
    await page.waitForURL(/\/login\?next=%2Fjobs|\/login\?next=\/jobs/);
    await shot(page, SUITE, "login");
    await page.fill("#name", "admin");
    await page.fill("#password", "not the password");
    await page.click("button[type=submit]");
    await page.locator(".form-error").waitFor({ state: "visible" });
    assert.match(await page.locator(".form-error").innerText(), /name or password/i);
    await page.fill("#password", ADMIN_PASSWORD);
    await page.click("button[type=submit]");
    await page.waitForURL(server.base + "/jobs");
    await page.goto(server.base + "/");
    await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    await page.getByText("1 online").waitFor();
    // The session is an HttpOnly cookie: scripts cannot read it.
    const cookies = await ctx.cookies(server.base);
    const session = cookies.find((c) => c.name === "jobsched_session");
    assert.ok(session?.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
    assert.equal(await page.evaluate(() => document.cookie.includes("jobsched_session")), false);
    await shot(page, SUITE, "dashboard");
  });
  noScriptErrors();
});

test("the job form shows the server's message at the field, previews fires, and creates the job", async () => {
  await step(page, SUITE, "job-form", async () => {
    await page.goto(server.base + "/jobs/new");
    await page.fill("#name", "Every two seconds");
    await page.fill("#job_id", "every-two");
    await page.fill("#command", "echo tick");
    await page.fill("#cron_expression", "*/2 * * * * * 99");
    // The preview names what is wrong, at the cron field.
    const fieldError = page.locator("#cron_expression ~ .field-error");
    await fieldError.waitFor({ state: "visible" });
    assert.match(await fieldError.innerText(), /cron_expression/);
    assert.equal(await page.locator("#cron_expression").getAttribute("aria-invalid"), "true");
    await page.click("button[type=submit]");
    await fieldError.waitFor({ state: "visible" });
    await shot(page, SUITE, "job-form-error");
    await page.fill("#cron_expression", "*/2 * * * * *");
    await page.fill("#time_zone", "Asia/Tokyo");
    await waitFor("ten previewed fires", async () => (await page.locator("[data-preview-list] li").count()) === 10);
    assert.match(await page.locator("[data-preview-zone]").innerText(), /Asia\/Tokyo/);
    assert.match(await page.locator("[data-preview-list] li").first().innerText(), /JST/);
    assert.equal(await fieldError.isVisible(), false);
    await shot(page, SUITE, "job-form");
    await page.click("button[type=submit]");
    await page.waitForURL(server.base + "/jobs/every-two");
    await page.getByRole("heading", { name: "Every two seconds" }).waitFor();
    // It runs: a run appears in its history.
    await waitFor("a run on the job page", async () => {
      await page.reload();
      return (await page.locator("table.runs tbody tr").count()) > 0;
    });
    await page.locator("table.runs .badge.ok").first().waitFor();
    await shot(page, SUITE, "job");
    // Disable it in place from the list.
    await page.goto(server.base + "/jobs");
    const toggle = page.getByRole("switch", { name: "Enabled: Every two seconds" });
    assert.equal(await toggle.getAttribute("aria-checked"), "true");
    await toggle.click();
    await page.getByRole("switch", { name: "Enabled: Every two seconds" }).and(page.locator('[aria-checked="false"]')).waitFor();
    await shot(page, SUITE, "jobs");
  });
  noScriptErrors();
});

test("a running task's output arrives live on its page and stops when it ends", async () => {
  await createJob(server.base, server.token, {
    job_id: "ticker", name: "Ticker",
    command: "for i in $(seq 1 12); do echo line $i; sleep 0.2; done",
  });
  await step(page, SUITE, "live", async () => {
    await page.goto(server.base + "/jobs/ticker");
    await page.getByRole("button", { name: "Run now" }).click();
    await page.waitForURL(/\/tasks\//);
    const log = page.locator("pre[data-log-stream]");
    await log.waitFor();
    // Lines arrive while the task still runs.
    await waitFor("the first lines", async () => (await log.innerText()).includes("line 2"));
    const partial = await log.innerText();
    assert.ok(!partial.includes("line 12"), `seen before the end: ${partial}`);
    await shot(page, SUITE, "task-live");
    // Then all of them, and the page says the task ended.
    await page.locator('pre[data-ended="succeeded"]').waitFor({ timeout: 30000 });
    const lines = (await log.innerText()).trim().split("\n");
    assert.deepEqual(lines, Array.from({ length: 12 }, (_, i) => `line ${i + 1}`));
    assert.equal(await page.locator("[data-task-status]").innerText(), "succeeded");
    await page.reload();
    await page.getByRole("heading", { name: "Standard output" }).waitFor();
    await shot(page, SUITE, "task");
  });
  noScriptErrors();
});

test("a long run is cancelled from its page", async () => {
  await createJob(server.base, server.token, { job_id: "sleeper", name: "Sleeper", command: "sleep 300" });
  await step(page, SUITE, "cancel", async () => {
    await page.goto(server.base + "/jobs/sleeper");
    await page.getByRole("button", { name: "Run now" }).click();
    await page.waitForURL(/\/tasks\//);
    await waitFor("the task to run", async () => {
      await page.reload();
      return (await page.locator("[data-task-status]").innerText()) === "running";
    });
    acceptNextDialog(page);
    await page.getByRole("button", { name: "Cancel" }).click();
    await waitFor("the task to be cancelled", async () => {
      await page.reload();
      return (await page.locator("[data-task-status]").innerText()) === "cancelled";
    });
    await shot(page, SUITE, "task-cancelled");
  });
  noScriptErrors();
});

test("an executor is disabled and enabled again", async () => {
  await step(page, SUITE, "executors", async () => {
    await page.goto(server.base + "/executors");
    const row = page.locator("tr[data-executor]").first();
    await row.getByRole("button", { name: /Disable/ }).click();
    await page.locator("tr[data-executor]").first().getByText("disabled", { exact: true }).waitFor();
    await shot(page, SUITE, "executors-disabled");
    await page.locator("tr[data-executor]").first().getByRole("button", { name: /Enable/ }).click();
    await page.locator("tr[data-executor]").first().getByText("enabled", { exact: true }).waitFor();
    await shot(page, SUITE, "executors");
  });
  noScriptErrors();
});

test("the configuration is edited with the server's validation", async () => {
  await step(page, SUITE, "config", async () => {
    await page.goto(server.base + "/system");
    await page.fill("#cfg-kill_grace_secs", "9999");
    await page.getByRole("button", { name: "Save configuration" }).click();
    const err = page.locator("#cfg-kill_grace_secs ~ .field-error");
    await err.waitFor({ state: "visible" });
    assert.match(await err.innerText(), /kill_grace_secs: must be between 0 and 600/);
    await page.fill("#cfg-kill_grace_secs", "7");
    await page.getByRole("button", { name: "Save configuration" }).click();
    await page.getByText("version 1").waitFor();
    assert.equal(await page.inputValue("#cfg-kill_grace_secs"), "7");
    await shot(page, SUITE, "system");
    await page.goto(server.base + "/system/audit");
    await page.getByText("config.update").first().waitFor();
    await shot(page, SUITE, "audit");
    await page.goto(server.base + "/system/users");
    await shot(page, SUITE, "users");
  });
  noScriptErrors();
});

test("the alerts page shows an alert firing for a failing job, and its rule", async () => {
  let r = await api(server.base, server.token, "PUT", "/api/alerts/config", {
    rules: [{ id: "etl-failures", name: "ETL failures", condition: { kind: "task_failure", job_id: "etl-broken" } }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await createJob(server.base, server.token, { job_id: "etl-broken", name: "etl-broken", command: "exit 4" });
  r = await api(server.base, server.token, "POST", "/api/jobs/etl-broken/execute");
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await waitFor("the alert to fire", async () => {
    const f = await api(server.base, server.token, "GET", "/api/alerts/firing");
    return f.body.items.length === 1;
  });
  await step(page, SUITE, "alerts", async () => {
    await page.goto(server.base + "/system/alerts");
    const firing = page.locator("section", { has: page.getByRole("heading", { name: "Firing now" }) });
    await firing.getByText("job=etl-broken").waitFor();
    assert.match(await firing.innerText(), /etl-failures[\s\S]*job 'etl-broken' failed/);
    const rules = page.locator("section", { has: page.getByRole("heading", { name: "Rules" }) });
    assert.match(await rules.innerText(), /task failure of job etl-broken/);
    // The notification is recorded, quiet: the rule has no channel.
    await page.getByText("no channel").first().waitFor();
    await shot(page, SUITE, "alerts");
    // Edited on the page: the server's message for a rule naming a missing channel, then a good change.
    const doc = JSON.parse(await page.inputValue("#alerts-document"));
    doc.rules[0].channels = ["nowhere"];
    await page.fill("#alerts-document", JSON.stringify(doc, null, 2));
    await page.getByRole("button", { name: "Save alert configuration" }).click();
    const err = page.locator("#alerts-form .form-error");
    await err.waitFor({ state: "visible" });
    assert.match(await err.innerText(), /rules\.etl-failures\.channels: no channel 'nowhere'/);
    doc.rules[0].channels = [];
    doc.rules[0].muted = true;
    await page.fill("#alerts-document", JSON.stringify(doc, null, 2));
    await page.getByRole("button", { name: "Save alert configuration" }).click();
    await page.getByText("Configuration version 2").waitFor();
    await page.locator(".badge", { hasText: "muted" }).first().waitFor();
  });
  noScriptErrors();
});

test("values from users and tasks are shown as text, never run", async () => {
  const evil = "<img src=x onerror=alert(1)>";
  await createJob(server.base, server.token, { job_id: "evil", name: evil, command: `echo '${evil}'` });
  await step(page, SUITE, "escaping", async () => {
    await page.goto(server.base + "/jobs?name=" + encodeURIComponent("<img"));
    await page.getByText(evil, { exact: true }).waitFor();
    assert.equal(await page.locator("main img").count(), 0, "no element was made from the name");
    await page.goto(server.base + "/jobs/evil");
    await page.getByRole("heading", { name: evil }).waitFor();
    assert.equal(await page.locator("main img").count(), 0);
  });
  noScriptErrors();
});

test("a read-only user sees no edit buttons and a forged change from its session is refused", async () => {
  let r = await api(server.base, server.token, "POST", "/api/users", { name: "viewer", role: "read_only", password: "viewer password 1" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const other = await browser();
  try {
    const p = await newPage(other, errors);
    await step(p, SUITE, "read-only", async () => {
      await uiLogin(p, server.base, "viewer", "viewer password 1");
      await p.goto(server.base + "/jobs");
      await p.getByRole("link", { name: "Ticker" }).waitFor();
      assert.equal(await p.getByRole("link", { name: "New job" }).count(), 0);
      assert.equal(await p.getByRole("switch").count(), 0);
      assert.equal(await p.getByText("Run now").count(), 0);
      await p.goto(server.base + "/jobs/ticker");
      assert.equal(await p.getByRole("button", { name: "Run now" }).count(), 0);
      assert.equal(await p.getByRole("link", { name: "Edit" }).count(), 0);
      await p.goto(server.base + "/system");
      assert.equal(await p.locator("#cfg-kill_grace_secs").getAttribute("readonly"), "");
      await shot(p, SUITE, "read-only-jobs");
      // The same request the buttons would send, with the session's CSRF token: refused.
      const forged = await p.evaluate(async () => {
        const csrf = document.cookie.split("; ").find((c) => c.startsWith("jobsched_csrf=")).split("=")[1];
        const res = await fetch("/api/jobs/ticker/execute", { method: "POST", headers: { "x-csrf-token": csrf } });
        return { status: res.status, body: await res.json() };
      });
      assert.equal(forged.status, 403, JSON.stringify(forged));
      // Without the CSRF token even the permission check is not reached.
      const noCsrf = await p.evaluate(async () => (await fetch("/api/jobs/ticker/execute", { method: "POST" })).status);
      assert.equal(noCsrf, 403);
      // The new-job page itself says no.
      const res = await p.goto(server.base + "/jobs/new");
      assert.equal(res.status(), 403);
    });
  } finally {
    await other.close();
  }
  noScriptErrors();
});

test("another user cannot open the first user's job by its URL", async () => {
  for (const name of ["alice", "mallory"]) {
    const r = await api(server.base, server.token, "POST", "/api/users", { name, role: "user", password: `${name} password 12` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  const alice = await loginToken(server.base, "alice", "alice password 12");
  await createJob(server.base, alice, { job_id: "alices-job", name: "Alice's job", command: "true" });
  const other = await browser();
  try {
    const p = await newPage(other, errors);
    await step(p, SUITE, "ownership", async () => {
      await uiLogin(p, server.base, "mallory", "mallory password 12");
      const res = await p.goto(server.base + "/jobs/alices-job");
      assert.equal(res.status(), 404);
      await p.getByRole("heading", { name: "Not found" }).waitFor();
      await p.goto(server.base + "/jobs");
      assert.equal(await p.getByText("Alice's job").count(), 0);
      await shot(p, SUITE, "not-found");
    });
  } finally {
    await other.close();
  }
});

test("pages fit a 390 px phone screen", async () => {
  const phone = await browser({ width: 390, height: 844, colorScheme: "dark" });
  try {
    const p = await newPage(phone, errors);
    await step(p, SUITE, "phone", async () => {
      await uiLogin(p, server.base, "admin", ADMIN_PASSWORD);
      for (const [path, name] of [["/", "phone-dashboard"], ["/jobs", "phone-jobs"], ["/jobs/ticker", "phone-job"], ["/jobs/new", "phone-job-form"]]) {
        await p.goto(server.base + path);
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${path} is ${overflow} px wider than the screen`);
        await shot(p, SUITE, name);
      }
    });
  } finally {
    await phone.close();
  }
  noScriptErrors();
});

test("the dashboard shows what ran, what failed and what fires next", async () => {
  await createJob(server.base, server.token, {
    job_id: "nightly-report", name: "Nightly report", command: "true",
    schedule_type: "cron", cron_expression: "0 3 * * *", time_zone: "Europe/Berlin",
  });
  await createJob(server.base, server.token, {
    job_id: "flaky-export", name: "Flaky export", command: "echo 'export: connection refused' >&2; exit 3",
  });
  const task = (await api(server.base, server.token, "POST", "/api/jobs/flaky-export/execute")).body.task_id;
  await waitFor("the failed run", async () => (await api(server.base, server.token, "GET", `/api/tasks/${task}`)).body.status === 2);
  await step(page, SUITE, "dashboard-after", async () => {
    await page.goto(server.base + "/");
    await page.getByRole("link", { name: "Nightly report" }).waitFor();
    await page.locator("section[aria-labelledby=failures]").getByText("flaky-export").waitFor();
    await page.locator("section[aria-labelledby=failures]").getByText("export: connection refused").waitFor();
    // The last 24 hours count this test's runs (the dashboard reads the last hours at most every 5 s):
    // some succeeded, the cancelled one, the failed one.
    await waitFor("the day's counts to include the failed run", async () => {
      await page.reload();
      const day = await page.locator("section[aria-labelledby=outcomes] tbody tr").nth(1).innerText();
      const [, ok, failed, cancelled] = day.split("\t").map((c) => Number(c.trim()));
      return ok >= 2 && failed >= 1 && cancelled >= 1;
    });
    await shot(page, SUITE, "dashboard-after");
  });
  noScriptErrors();
});

test("logging out ends the session", async () => {
  await step(page, SUITE, "logout", async () => {
    await page.goto(server.base + "/");
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(/\/login/);
    await page.goto(server.base + "/jobs");
    await page.waitForURL(/\/login/);
    const r = await page.evaluate(async () => (await fetch("/api/auth/me")).status);
    assert.equal(r, 401);
  });
  noScriptErrors();
});
