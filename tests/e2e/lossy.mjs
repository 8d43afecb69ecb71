// The browser client on weak Wi-Fi (docs/WIFI.md): `lectern serve` in one network namespace, a real
// Chromium in another (launched inside it through a wrapper), and 10% of the packets to the browser
// dropped where they arrive. The student view must never say the link dropped; once the link really
// dies (everything dropped), it must say so within two heartbeats. The heartbeat is 1 s here, so that a
// client that took a pong held up by loss for death would show it many times over. Needs root (CI
// runs as root); elsewhere it says so and skips.
//
//   node tests/e2e/lossy.mjs
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { check, finish, run, until, shot } from "./lib.mjs";
import { chromiumIn, netPair, serveIn } from "./netns.mjs";

const HEARTBEAT_MS = 1000;
async function main() {
  if (process.getuid?.() !== 0) {
    console.log("skipping: network namespaces need root (CI runs as root)");
    return;
  }
  const net = netPair("lo", 216);
  net.offloadsOff();
  const dir = mkdtempSync(path.join(os.tmpdir(), "lectern-lossy-"));
  let server;
  let browser;
  try {
    const served = serveIn(net.a, ["--no-mdns", "--data-dir", path.join(dir, "data"), "--listen", `${net.addrA}:0`], { LECTERN_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    server = served.child;
    const ready = await served.ready;
    // Chromium runs inside the students' namespace.
    browser = await chromiumIn(net.b, dir);
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1024, height: 700 } });
    const page = await ctx.newPage();
    await page.goto(`${ready.http}/join#code=${ready.code}&fp=${ready.fingerprint}`);
    await page.fill("#name", "Aisha");
    await page.click("#join-button");
    await page.waitForSelector('#status[data-status="connected"]', { timeout: 20000 });
    // Every status the page shows from now on, with the page's own clock.
    await page.evaluate(() => {
      window.__statuses = [];
      new MutationObserver(() => window.__statuses.push({ s: document.querySelector("#status").dataset.status, at: Date.now() }))
        .observe(document.querySelector("#status"), { attributes: true, attributeFilter: ["data-status"] });
    });

    net.loss(0.1);
    await new Promise((r) => setTimeout(r, 30 * HEARTBEAT_MS)); // the link is measured, not awaited
    await shot(page, path.join(path.dirname(new URL(import.meta.url).pathname), "../../target/e2e/student-lossy.png"), { page: true });
    const seen = await page.evaluate(() => window.__statuses.map((x) => x.s));
    check(seen.every((s) => s === "connected"), `at 10% loss for 30 heartbeats the browser never declared the link dead (statuses shown: ${JSON.stringify([...new Set(seen)])})`);

    const died = await page.evaluate(() => Date.now());
    net.blackhole();
    const noticed = await until("the browser notices the dead link", () =>
      page.evaluate(() => window.__statuses.find((x) => x.s !== "connected")?.at ?? null), 6 * HEARTBEAT_MS);
    const after = noticed - died;
    check(after <= 2 * HEARTBEAT_MS + 400, `a dead link is noticed within two heartbeats (${after} ms; heartbeat ${HEARTBEAT_MS} ms)`);
  } finally {
    await browser?.close().catch(() => {});
    server?.kill("SIGTERM");
    net.remove();
    rmSync(dir, { recursive: true, force: true });
  }
  finish(path.join(path.dirname(new URL(import.meta.url).pathname), "../../target/e2e"));
}

run(main);
