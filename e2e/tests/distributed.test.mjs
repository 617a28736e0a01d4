// The Web UI of a distributed deployment: a scheduler on MariaDB, Kafka and ZooKeeper, and two executor
// processes. The executors page shows both; a task on a remote executor streams its output through Kafka.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  ADMIN_PASSWORD, CI, api, browser, createJob, freshDatabase, loginToken, mysqlServer, newPage, removeQuietly, shot,
  startJobsched, step, tempDir, uiLogin, waitFor,
} from "../lib/harness.mjs";

const SUITE = "distributed";
const kafka = process.env.JOBSCHED_TEST_KAFKA;
const zookeeper = process.env.JOBSCHED_TEST_ZOOKEEPER;
const mysql = mysqlServer();
const missing = !kafka || !zookeeper || !mysql;
if (missing && CI) {
  throw new Error("the distributed browser test needs the servers: eval \"$(scripts/services.sh env)\"");
}

const procs = [];
let base;
let ctx;
let dir;

before(async () => {
  if (missing) return;
  const tag = Date.now().toString(36);
  dir = tempDir("cluster");
  const key = path.join(dir, "jwt.key");
  fs.writeFileSync(key, `e2e-signing-key-${tag}-${Math.random().toString(36).slice(2)}`, { mode: 0o600 });
  // The cluster key Kafka records are signed with (what `jobsched keygen` writes), and the ZooKeeper
  // identity every node is guarded by.
  const clusterKey = path.join(dir, "cluster.key");
  fs.writeFileSync(clusterKey, `${crypto.randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
  const zkAuth = path.join(dir, "zk.auth");
  fs.writeFileSync(zkAuth, `jobsched:${crypto.randomBytes(16).toString("hex")}\n`, { mode: 0o600 });
  const common = ["--kafka", kafka, "--zookeeper", `${zookeeper}/jse2e-ui-${tag}`, "--kafka-prefix", `ui${tag}`,
    "--jwt-secret-file", key, "--cluster-key-file", clusterKey, "--zk-auth-file", zkAuth,
    "--zk-session-timeout-secs", "4", "--shutdown-grace-secs", "2"];
  const scheduler = await startJobsched("scheduler", ["scheduler", "--id", "ui-scheduler", "--store",
    freshDatabase(mysql, tag), "--data-dir", dir, ...common]);
  procs.push(scheduler);
  base = scheduler.base;
  for (const id of ["ui-executor-1", "ui-executor-2"]) {
    procs.push(await startJobsched(id, ["executor", "--id", id, "--capacity", "2", "--group", "ui", ...common]));
  }
  const token = await loginToken(base, "admin", ADMIN_PASSWORD);
  await waitFor("both executors online", async () => {
    const r = await api(base, token, "GET", "/api/executors");
    return r.body?.items?.filter((e) => e.status === 1).length === 2;
  }, 60000);
  await createJob(base, token, {
    job_id: "remote-ticker", name: "Remote ticker", executor_group: "ui",
    command: "for i in $(seq 1 15); do echo remote line $i; sleep 0.2; done",
  });
  ctx = await browser();
});

after(async () => {
  await ctx?.close();
  for (const p of procs.reverse()) await p.stop();
  if (dir) removeQuietly(dir);
});

test("the executors page shows both executors, and a remote task's output streams live through Kafka", { skip: missing && "the servers of scripts/services.sh are not configured" }, async () => {
  const errors = [];
  const page = await newPage(ctx, errors);
  await step(page, SUITE, "cluster", async () => {
    await uiLogin(page, base, "admin", ADMIN_PASSWORD);
    await page.goto(base + "/executors");
    for (const id of ["ui-executor-1", "ui-executor-2"]) {
      const row = page.locator(`tr[data-executor="${id}"]`);
      await row.getByText("online", { exact: true }).waitFor();
      await row.getByText("ui", { exact: true }).waitFor();
    }
    await shot(page, SUITE, "executors");
    await page.goto(base + "/");
    await page.getByText("2 online").waitFor();
    await shot(page, SUITE, "dashboard");
    await page.goto(base + "/jobs/remote-ticker");
    await page.getByRole("button", { name: "Run now" }).click();
    await page.waitForURL(/\/tasks\//);
    const log = page.locator("pre[data-log-stream]");
    await waitFor("remote lines", async () => (await log.innerText()).includes("remote line 2"));
    assert.ok(!(await log.innerText()).includes("remote line 15"), "lines arrive while the task runs");
    await shot(page, SUITE, "task-live");
    await page.locator('pre[data-ended="succeeded"]').waitFor({ timeout: 30000 });
    const lines = (await log.innerText()).trim().split("\n");
    assert.deepEqual(lines, Array.from({ length: 15 }, (_, i) => `remote line ${i + 1}`));
    await page.reload();
    const executor = await page.locator(".attempt dd.mono").first().innerText();
    assert.match(executor, /^ui-executor-[12]$/);
  });
  assert.deepEqual(errors, []);
});
