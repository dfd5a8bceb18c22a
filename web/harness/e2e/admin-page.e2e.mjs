/**
 * Real-browser end-to-end test of the R2R admin page (run by scripts/web_test).
 *
 * Starts, as child processes it stops at the end (by pid):
 *   - the standalone admin API (python -m onyx.server.r2r.standalone) on the test database
 *     (ONYX_R2R_TEST_DB, when set, names a test ledger database of this checkout's own),
 *     the stack's Redis and R2R, with a fresh encryption key and admin token;
 *   - the harness (vite preview of the built page), proxying /api to that API;
 *   - a real `onyx-r2r worker` whose environment points at NO usable R2R, so it can only
 *     sync with the credential saved through the page;
 * then drives headless Chromium (Debian's /usr/bin/chromium, playwright-core) through:
 *   save a credential (a wrong key first: R2R's reason is shown), test it, push documents
 *   and watch the counts change, revoke the key in R2R so a document is dead-lettered,
 *   save a new key, replay the dead letter, start a reconcile; screenshots go to
 *   artifacts/ (git-ignored). Secrets must not appear in the page or in any log.
 */

import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const harness = path.resolve(here, "..");
const repo = path.resolve(harness, "../..");
const artifacts = path.join(repo, "artifacts");
const logDir = path.join(artifacts, "web-test-logs");
fs.mkdirSync(logDir, { recursive: true });

const python = path.join(repo, ".venv/bin/python");
const helpers = path.join(repo, "backend/tests/integration/admin_helpers.py");
const CHROMIUM = "/usr/bin/chromium";
const TIMEOUT = 120_000;

// ------------------------------------------------------------------ setup
function stackEnv() {
  const file = path.join(process.env.STACK_DIR ?? path.join(repo, ".stack"), "stack.env");
  const env = {};
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = line.match(/^\s*([A-Z0-9_]+)=(.*)$/);
    if (m) env[m[1]] = m[2].trim();
  }
  return env;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const children = [];

function start(name, command, args, env, cwd = repo) {
  const log = path.join(logDir, `${name}.log`);
  const fd = fs.openSync(log, "w");
  const child = spawn(command, args, { env, cwd, stdio: ["ignore", fd, fd], detached: true });
  children.push({ name, child, log });
  return { child, log, read: () => fs.readFileSync(log, "utf8") };
}

function running(child) {
  return child.exitCode === null && child.signalCode === null;
}

async function stopAll() {
  const stopping = children.splice(0).reverse();
  for (const { child } of stopping) {
    if (!running(child)) continue;
    try {
      process.kill(-child.pid, "SIGTERM"); // its own process group (detached), by id
    } catch {
      /* already gone */
    }
  }
  const deadline = Date.now() + 20_000;
  for (const { child } of stopping) {
    while (running(child) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (running(child)) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  }
}

async function waitFor(what, predicate, timeout = TIMEOUT, interval = 250) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await predicate();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

function helper(...args) {
  return execFileSync(python, [helpers, ...args], { cwd: repo, encoding: "utf8" }).trim();
}

function step(text) {
  console.log(`[e2e] ${text}`);
}

// --------------------------------------------------------------- the test
async function main() {
  const stack = stackEnv();
  const tenant = `e2e_web_${randomBytes(4).toString("hex")}`;
  const queue = `r2r_mirror_e2e_${randomBytes(4).toString("hex")}`;
  const encryptionKey = randomBytes(24).toString("base64");
  const adminToken = randomBytes(24).toString("hex");
  const [apiPort, webPort] = [await freePort(), await freePort()];
  const r2rUrl = stack.R2R_BASE_URL;
  const secrets = [encryptionKey, adminToken];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "onyx-r2r-e2e-"));

  // the test ledger as the Python tests see it (ONYX_R2R_TEST_DB: a database of its own),
  // created and migrated when missing
  const ledgerUrl = helper("ledger-url");
  const bridgeEnv = {
    ...process.env,
    PYTHONUNBUFFERED: "1",
    ONYX_R2R_DATABASE_URL: ledgerUrl,
    ONYX_R2R_BROKER_URL: stack.ONYX_R2R_BROKER_URL,
    ONYX_R2R_QUEUE: queue,
    ONYX_R2R_ENCRYPTION_KEY: encryptionKey,
  };
  for (const name of ["R2R_API_KEY", "R2R_API_KEY_FILE", "R2R_EMAIL", "R2R_PASSWORD"]) {
    delete bridgeEnv[name];
  }

  const first = JSON.parse(helper("create-key"));
  let second = null;
  secrets.push(first.api_key);
  let browser;
  try {
    step(`tenant ${tenant}, API on :${apiPort}, harness on :${webPort}`);
    const api = start(
      "admin-api",
      python,
      ["-m", "onyx.server.r2r.standalone", "--port", String(apiPort), "--log-level", "info"],
      {
        ...bridgeEnv,
        R2R_BASE_URL: r2rUrl, // the environment's server, without any key: "not connected"
        // the bridge switched on by the environment, nothing stored (issue 17: the page
        // showed export off / mode mirror for this)
        ONYX_EXPORT_R2R: "true",
        R2R_EXPORT_MODE: "replace",
        ONYX_INDEX_BACKEND: "",
        ONYX_R2R_ADMIN_TOKEN: adminToken,
        ONYX_R2R_DEFAULT_TENANT: tenant,
      }
    );
    const web = start(
      "harness",
      path.join(harness, "node_modules/.bin/vite"),
      ["preview", "--port", String(webPort), "--strictPort", "--host", "127.0.0.1"],
      {
        ...process.env,
        R2R_ADMIN_API: `http://127.0.0.1:${apiPort}`,
        ONYX_R2R_ADMIN_TOKEN: adminToken,
        HARNESS_TENANT: tenant,
      },
      harness
    );
    await waitFor("the admin API", async () => (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).ok, 60_000);
    await waitFor("the harness", async () => (await fetch(`http://127.0.0.1:${webPort}/`)).ok, 60_000);
    const denied = await fetch(`http://127.0.0.1:${apiPort}/admin/r2r/config`);
    if (denied.status !== 403) throw new Error(`the API without a token answered ${denied.status}`);

    browser = await chromium.launchPersistentContext(path.join(tmp, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 900 },
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(TIMEOUT);
    const consoleErrors = [];
    page.on("console", (msg) => {
      if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) {
        consoleErrors.push(msg.text());
      }
    });
    page.on("pageerror", (err) => consoleErrors.push(String(err)));

    const card = (id) => page.getByTestId(id).locator(".r2r-card-value");
    const count = async (id) => Number((await card(id).textContent()).replace(/[^\d]/g, "") || "0");

    // 1. first visit: nothing stored for this workspace
    step("open the page");
    await page.goto(`http://127.0.0.1:${webPort}/?refresh=1000`);
    await page.getByText("Not connected yet").waitFor();
    await page.getByText("Nothing mirrored yet").waitFor();
    await page.getByTestId("dead-letters-empty").waitFor();
    // the environment's choice, shown as the effective state with its source
    await page.getByText("Replace: R2R is Onyx's only index (writes and search).").waitFor();
    await page.getByText("From the environment (ONYX_EXPORT_R2R=true, R2R_EXPORT_MODE=replace).").waitFor();
    if ((await page.getByRole("switch").getAttribute("aria-checked")) !== "true") {
      throw new Error("the export switch is off although the environment switched it on");
    }
    if (!(await page.getByRole("radio", { name: /Replace/ }).isChecked())) {
      throw new Error("the mode shown is not the environment's (replace)");
    }

    // 2. a wrong key: R2R's reason is shown, nothing is saved
    step("test a wrong key");
    await page.getByLabel("R2R server URL").fill(r2rUrl);
    await page.getByLabel("API key", { exact: true }).fill("key_wrong0000.not-a-real-secret");
    await page.getByRole("button", { name: "Test connection" }).click();
    await page.getByRole("alert").filter({ hasText: "Invalid token or API key" }).waitFor();

    // 3. the real key: test, then save
    step("test and save the real key");
    await page.getByLabel("API key", { exact: true }).fill(first.api_key);
    await page.getByRole("button", { name: "Test connection" }).click();
    await page.getByText("Connection works").waitFor();
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByText("Connection saved").waitFor();
    await page.getByText(`Connected to ${r2rUrl}`).waitFor();
    if ((await page.getByLabel("API key", { exact: true }).inputValue()) !== "") {
      throw new Error("the API key field was not cleared after saving");
    }
    // saving a connection stores no export choice: still the environment's
    await page.getByText("From the environment (ONYX_EXPORT_R2R=true, R2R_EXPORT_MODE=replace).").waitFor();

    // 4. a real worker (its env has no usable R2R) and a small sync
    step("start a worker and push 5 documents");
    const worker = start(
      "worker",
      path.join(repo, ".venv/bin/onyx-r2r"),
      [
        "worker",
        "--concurrency",
        "2",
        "--beat",
        "--schedule-file",
        path.join(tmp, "beat"),
        "--hostname",
        `e2e-${randomBytes(3).toString("hex")}@%h`,
      ],
      {
        ...bridgeEnv,
        R2R_BASE_URL: "http://127.0.0.1:9", // nothing listens: only the stored credential works
        ONYX_R2R_CREDENTIAL_CACHE_SECONDS: "1",
        ONYX_R2R_MAX_ATTEMPTS: "3",
        ONYX_R2R_RETRY_BASE_SECONDS: "0.5",
        ONYX_R2R_SWEEP_INTERVAL_SECONDS: "1",
      },
      tmp
    );
    await waitFor("the worker to be ready", () => worker.read().includes(" ready."), 90_000);

    const docs = Array.from({ length: 5 }, (_, i) => ({
      id: `https://wiki.example.com/e2e/${tenant}/${i}`,
      semantic_identifier: `E2E page ${i}`,
      source: "web",
      sections: [{ text: `The admin page end-to-end test, document ${i}: mirrored into R2R.` }],
      metadata: { topic: "e2e" },
      acl: ["PUBLIC"],
    }));
    const batch = path.join(tmp, "batch.jsonl");
    fs.writeFileSync(batch, docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
    const push = (file) =>
      execFileSync(
        path.join(repo, ".venv/bin/onyx-r2r"),
        ["push", "--tenant", tenant, "--no-wait", file],
        { env: bridgeEnv, cwd: repo, encoding: "utf8" }
      );
    const seen = [];
    push(batch);
    await waitFor("5 synced documents on the page", async () => {
      const synced = await count("count-synced");
      const pending = await count("count-pending");
      if (!seen.length || seen.at(-1) !== `${pending}/${synced}`) seen.push(`${pending}/${synced}`);
      return synced === 5 && pending === 0;
    });
    step(`pending/synced as the page showed them: ${seen.join(" → ")}`);
    if (seen[0] === "0/5") throw new Error("the page never showed the documents before they synced");
    await page.locator("rect.r2r-bar").first().waitFor();

    // 5. the key is revoked in R2R: the next document becomes a dead letter
    step("revoke the key in R2R and push one more document");
    helper("revoke-key", first.key_id);
    const lateId = `https://wiki.example.com/e2e/${tenant}/late`;
    const late = path.join(tmp, "late.jsonl");
    fs.writeFileSync(
      late,
      JSON.stringify({ ...docs[0], id: lateId, semantic_identifier: "E2E late page" }) + "\n"
    );
    push(late);
    await waitFor("a dead letter on the page", async () => (await count("count-dead")) === 1);
    const row = page.getByRole("row").filter({ hasText: lateId });
    await row.getByText("rejected the API key").waitFor();
    await row.getByText("R2R credential or settings").waitFor();
    await page.screenshot({ path: path.join(artifacts, "admin-page-dead-letter.png"), fullPage: true });

    // 6. a new key: test, save, replay the dead letter
    step("save a new key and replay the dead letter");
    second = JSON.parse(helper("create-key"));
    secrets.push(second.api_key);
    await page.getByLabel("API key", { exact: true }).fill(second.api_key);
    await page.getByRole("button", { name: "Test connection" }).click();
    await page.getByText("Connection works").waitFor();
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByText("Connection saved").waitFor();
    await new Promise((r) => setTimeout(r, 1500)); // the worker's credential cache (1 s)
    // (the shared test R2R may briefly fail embeddings for another suite's fault test:
    // like an admin would, replay again when that is the reason)
    for (let round = 1; ; round++) {
      await row.getByRole("button", { name: `Replay ${lateId}` }).click();
      await page.getByText("Re-queued 1 document.").waitFor();
      await waitFor("the replayed row to leave the table", async () => (await row.count()) === 0, 30_000);
      const outcome = await waitFor("the replayed document to sync or fail again", async () => {
        if ((await count("count-synced")) === 6 && (await count("count-dead")) === 0) return "synced";
        if ((await count("count-dead")) === 1 && (await row.count()) === 1) {
          const reason = await row.textContent();
          if (/embeddings|unavailable|timed out/i.test(reason)) return "transient";
        }
        return false;
      });
      if (outcome === "synced") break;
      if (round >= 4) throw new Error("the replayed document kept failing on transient R2R errors");
      step(`replay round ${round} hit a transient R2R failure; replaying again`);
    }
    await page.getByTestId("dead-letters-empty").waitFor();

    // 7. maintenance: a reconcile, with confirmation
    step("start a reconcile");
    await page.getByRole("button", { name: "Reconcile with R2R" }).click();
    await page.getByRole("button", { name: "Start reconcile" }).click();
    await page.getByText(/Reconciliation started/).waitFor();

    await page.waitForTimeout(1200); // one more status refresh for the chart
    const shot = path.join(artifacts, "admin-page-e2e.png");
    await page.screenshot({ path: shot, fullPage: true });
    step(`screenshot: ${path.relative(repo, shot)}`);

    // 8. no secret in the page or in any log; no page errors
    const html = await page.content();
    const logs = children.map((c) => fs.readFileSync(c.log, "utf8")).join("\n");
    for (const secret of secrets) {
      const parts = [secret, ...secret.split(".").filter((p) => p.length >= 12)];
      for (const part of parts) {
        if (html.includes(part)) throw new Error("a secret appeared in the page");
        if (logs.includes(part)) throw new Error("a secret appeared in a process log");
      }
    }
    if (!api.read().includes("stored the r2r credential")) {
      throw new Error("the admin API log is missing the save (is logging captured?)");
    }
    if (consoleErrors.length) throw new Error(`browser errors: ${consoleErrors.join(" | ")}`);
    void web;
    step("passed");
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopAll();
    for (const key of [first, second]) {
      if (key) {
        try {
          helper("revoke-key", key.key_id);
        } catch {
          /* best effort */
        }
      }
    }
    try {
      helper("cleanup", tenant);
    } catch {
      /* best effort */
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`[e2e] FAILED: ${err.stack ?? err}`);
    console.error(`[e2e] logs: ${path.relative(repo, logDir)}/`);
    process.exit(1);
  }
);
