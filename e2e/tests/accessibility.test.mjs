// Every page checked with axe-core (WCAG 2 A and AA rules: contrast, labels, names, structure), in the
// light and the dark scheme, and the main actions reached with the keyboard alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import {
  ADMIN_PASSWORD, api, browser, createJob, newPage, shot, standalone, step, uiLogin,
} from "../lib/harness.mjs";

const SUITE = "accessibility";
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
let server;

before(async () => {
  server = await standalone("a11y");
  await createJob(server.base, server.token, { job_id: "a11y-job", name: "Accessible job", command: "echo hi" });
  const r = await api(server.base, server.token, "POST", "/api/jobs/a11y-job/execute");
  assert.equal(r.status, 202, JSON.stringify(r.body));
  server.task = r.body.task_id;
});

after(async () => {
  await server?.stop();
});

/** The axe-core violations of the page as it is now. */
async function violations(page) {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
}

for (const scheme of ["light", "dark"]) {
  test(`every page passes axe-core's WCAG 2 AA checks (${scheme})`, async () => {
    const ctx = await browser({ colorScheme: scheme, bypassCSP: true });
    const errors = [];
    try {
      const page = await newPage(ctx, errors);
      await uiLogin(page, server.base, "admin", ADMIN_PASSWORD);
      const pages = ["/", "/jobs", "/jobs/new", "/jobs/a11y-job", `/tasks/${server.task}`, "/executors", "/system",
        "/system/audit", "/system/users", "/system/alerts"];
      const found = {};
      for (const path of pages) {
        await step(page, SUITE, `${scheme}${path.replace(/\W+/g, "-")}`, async () => {
          await page.goto(server.base + path);
          await page.locator("main h1").first().waitFor();
          const v = await violations(page);
          if (v.length) found[path] = v;
        });
      }
      await page.context().clearCookies();
      await page.goto(server.base + "/login");
      const v = await violations(page);
      if (v.length) found["/login"] = v;
      assert.deepEqual(found, {}, JSON.stringify(found, null, 2));
    } finally {
      await ctx.close();
    }
    assert.deepEqual(errors, []);
  });
}

test("the main actions are reached with the keyboard alone", async () => {
  const ctx = await browser();
  try {
    const page = await newPage(ctx, []);
    await step(page, SUITE, "keyboard", async () => {
      await page.goto(server.base + "/login");
      // Chromium applies `autofocus` in a rendering step that may come after the load event.
      await page.waitForFunction(() => document.activeElement && document.activeElement.id === "name");
      await page.keyboard.type("admin");
      await page.keyboard.press("Tab");
      await page.keyboard.type(ADMIN_PASSWORD);
      await page.keyboard.press("Enter");
      await page.waitForURL(server.base + "/");
      // The first Tab reaches the skip link, which moves the focus to the content.
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
      await page.keyboard.press("Enter");
      assert.equal(await page.evaluate(() => document.activeElement.id), "main");
      // Tabbing from the top reaches the Jobs link; Enter opens it.
      await page.goto(server.base + "/");
      let reached = false;
      for (let i = 0; i < 10 && !reached; i++) {
        await page.keyboard.press("Tab");
        reached = await page.evaluate(() => document.activeElement.getAttribute("href") === "/jobs");
      }
      assert.ok(reached, "the Jobs link is reached with Tab");
      await page.keyboard.press("Enter");
      await page.waitForURL(server.base + "/jobs");
      // Focus is visible: the focused element has an outline.
      const outline = await page.evaluate(() => {
        document.querySelector("#f-name").focus();
        return getComputedStyle(document.activeElement).outlineStyle;
      });
      assert.notEqual(outline, "none");
      await shot(page, SUITE, "keyboard-focus");
    });
  } finally {
    await ctx.close();
  }
});
