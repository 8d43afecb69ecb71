// Documents on a thin link (docs/WIFI.md): a scanned book of 600 pages of about 50 MB (one JPEG per
// page, as a scanned Mushaf is), the server's side of the link limited to 20 Mbit/s with tbf, and 30
// browser students (one Chromium, launched inside the students' network namespace) joining together.
// It reports the time from each student's join (the tap, by the page's clock) to its first page drawn
// (p50, p95), the same counted from when this harness began sending each click, and the bytes
// the class moved in the first minute, to target/e2e/thin.json. A benchmark, not a timed test: its
// only checks are that every student drew its page and that the class fetched far less than the
// whole book. Needs root (network namespaces).
//
//   node tests/e2e/thin.mjs                       the figure: 30 students, 600 pages, a minute
//   THIN_STUDENTS=3 THIN_PAGES=60 THIN_SECONDS=0 node tests/e2e/thin.mjs     a quick check (CI)
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { scannedBook } from "./book.mjs";
import { check, finish, pct, run } from "./lib.mjs";
import { chromiumIn, netPair, serveIn } from "./netns.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.env.E2E_OUT ?? path.resolve(here, "../../target/e2e");
const STUDENTS = Number(process.env.THIN_STUDENTS ?? 30);
const PAGES = Number(process.env.THIN_PAGES ?? 600);
const SECONDS = Number(process.env.THIN_SECONDS ?? 60);
const RATE = process.env.THIN_RATE ?? "20mbit";

const rxBytes = (ns, dev) => Number(execFileSync("ip", ["netns", "exec", ns, "cat", `/sys/class/net/${dev}/statistics/rx_bytes`]).toString());

async function main() {
  if (process.getuid?.() !== 0) {
    console.log("skipping: network namespaces need root (CI runs as root)");
    return;
  }
  mkdirSync(out, { recursive: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), "lectern-thin-"));
  const jpegFile = path.join(dir, "scan.jpg");
  execFileSync("/usr/bin/convert", ["-size", "1050x1480", "plasma:wheat-tan", "-blur", "0x1", "-quality", "65", jpegFile]);
  const book = path.join(dir, "mushaf.pdf");
  const size = scannedBook(book, PAGES, readFileSync(jpegFile), 1050, 1480);
  console.log(`the book: ${PAGES} pages, ${(size / 1e6).toFixed(1)} MB`);

  const net = netPair("th", 217);
  net.offloadsOff();
  execFileSync("ip", ["netns", "exec", net.a, "tc", "qdisc", "replace", "dev", net.va, "root", "tbf", "rate", RATE, "burst", "32kb", "latency", "400ms"]);
  let server;
  let browser;
  try {
    const served = serveIn(net.a, ["--no-mdns", "--data-dir", path.join(dir, "data"), "--listen", `${net.addrA}:0`, "--doc", book, "--title", "Mushaf"]);
    server = served.child;
    const ready = await served.ready;
    browser = await chromiumIn(net.b, dir);
    // Every student's join page, open and named, before anyone joins: the class joins together.
    const pages = [];
    for (let i = 0; i < STUDENTS; i++) {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 800, height: 600 } });
      const page = await ctx.newPage();
      await page.goto(`${ready.http}/join#code=${ready.code}&fp=${ready.fingerprint}`);
      await page.fill("#name", `Student ${i + 1}`);
      pages.push(page);
    }
    const before = rxBytes(net.b, net.vb);
    const joined = Date.now();
    // Each page notes, by its own clock, when its join button was pressed and when page 1 was on
    // screen: the student's wait from the tap, apart from how long this harness took to deliver 30
    // clicks through one browser (measured too, from before each click is sent).
    await Promise.all(pages.map((page) => page.evaluate(() => {
      const w = /** @type {any} */ (window);
      document.querySelector("#join-button")?.addEventListener("click", () => (w.tappedAt = performance.now()), { capture: true });
      new MutationObserver((_, obs) => {
        if (document.querySelector('.page[data-page="1"]')) {
          w.drawnAt = performance.now();
          obs.disconnect();
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-page"] });
    })));
    const results = await Promise.all(pages.map(async (page) => {
      const at = Date.now();
      await page.click("#join-button");
      await page.waitForSelector('.page[data-page="1"]', { timeout: 120_000 });
      const inPage = await page.evaluate(() => /** @type {any} */ (window).drawnAt - /** @type {any} */ (window).tappedAt);
      return { harness: Date.now() - at, inPage };
    }));
    const times = results.map((r) => r.inPage);
    const harness = results.map((r) => r.harness);
    const firstPages = rxBytes(net.b, net.vb) - before;
    const rest = Math.max(0, joined + SECONDS * 1000 - Date.now());
    await new Promise((r) => setTimeout(r, rest)); // the minute is measured, not awaited for a result
    const minute = rxBytes(net.b, net.vb) - before;
    const report = {
      students: STUDENTS, pages: PAGES, book_bytes: size, link: RATE,
      first_page_p50_ms: Math.round(pct(times, 0.5)), first_page_p95_ms: Math.round(pct(times, 0.95)), first_page_max_ms: Math.round(Math.max(...times)),
      with_click_delivery_p50_ms: pct(harness, 0.5), with_click_delivery_p95_ms: pct(harness, 0.95),
      bytes_until_every_first_page: firstPages, seconds_measured: SECONDS, bytes_in_window: minute,
      share_of_one_book: minute / size,
    };
    writeFileSync(path.join(out, "thin.json"), JSON.stringify(report, null, 2));
    console.log(JSON.stringify(report));
    check(times.length === STUDENTS, `every student drew page 1 (p50 ${report.first_page_p50_ms} ms, p95 ${report.first_page_p95_ms} ms)`);
    check(minute < size * STUDENTS * 0.2, `the class fetched ${(minute / 1e6).toFixed(1)} MB, not ${STUDENTS} × ${(size / 1e6).toFixed(1)} MB`);
  } finally {
    await browser?.close().catch(() => {});
    server?.kill("SIGTERM");
    net.remove();
    rmSync(dir, { recursive: true, force: true });
  }
  finish(out);
}

run(main);
