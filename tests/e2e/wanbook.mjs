// Students at home open a big scanned book through a relay (issue 24, item 3): run by
// tests/wan/book.sh inside the rig's school namespace, where the teacher's server is; each home
// cell's students are pages of one Chromium launched inside that home's namespace, opening the
// relay's link for the first time, all together. The teacher is on page BOOK_PAGE.
//
// The clock starts when the link is opened (the page's own navigation start, scripts included) and
// stops when the lesson's page is on screen; the harness types the name and taps at once. It
// reports p50/p95 per cell and the bytes the home received in the first SECONDS, against the book.
// Every piece is checked against the manifest the teacher signed: the run fails if a page asked the
// relay for anything but the manifest and ranges, or drew nothing.
//
// Environment (set by tests/wan/book.sh): WAN_READY (the server's ready line), WAN_PK (the
// teacher's public key), WAN_HOMES (JSON: [{"cell","ns","relay" (address:port),"students"}]),
// BOOK_BYTES, BOOK_PAGE, SECONDS, OUT; WATERFALL=1 also prints the first student's resource timings
// in each cell, and PAGE_WAIT_MS bounds the wait for a page (120 s).
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { check, finish, pct, run } from "./lib.mjs";
import { chromiumIn } from "./netns.mjs";

const ready = JSON.parse(process.env.WAN_READY);
const PAGE = Number(process.env.BOOK_PAGE ?? 300);
const SECONDS = Number(process.env.SECONDS ?? 60);
const BOOK = Number(process.env.BOOK_BYTES);
const out = process.env.OUT ?? "target/e2e";

/** This machine's CPU time so far (all cores) and the idle part of it, in clock ticks; and the
 * relay's own CPU seconds: a figure for many students is this machine's, not the link's, when the
 * machine had no idle time left while it was taken. */
function cpuNow() {
  const v = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  let relay = 0;
  try {
    const f = readFileSync(`/proc/${process.env.RELAY_PID}/stat`, "utf8").split(")").pop().trim().split(/\s+/);
    relay = (Number(f[11]) + Number(f[12])) / 100; // USER_HZ
  } catch {
    // No relay pid: its CPU is not reported.
  }
  return { total: v.reduce((a, b) => a + b, 0), idle: v[3] + v[4], relay };
}

const rxBytes = (ns) => Number(execFileSync("ip", ["netns", "exec", ns, "cat", "/sys/class/net/wh0/statistics/rx_bytes"]).toString());

/** The teacher, over the protocol from the school: turns to PAGE. */
async function turnTo(page) {
  const teacher = new WebSocket(ready.ws, "lectern.v1", { rejectUnauthorized: false });
  await new Promise((r, j) => teacher.on("open", r).on("error", j));
  teacher.send(JSON.stringify({ t: "hello", v: 1, role: "teacher", key: ready.teacher_key, device: "wan-teacher-01" }));
  const ok = new Promise((resolve) => teacher.on("message", (m) => JSON.parse(String(m)).t === "ok" && resolve()));
  teacher.send(JSON.stringify({ t: "set", id: 1, patch: { page } }));
  await ok;
  return teacher;
}

/** One home cell's students opening the link together: each one's time to the page, and what
 * each asked the relay for. */
async function cell(name, ns, relay, students, dir) {
  const browser = await chromiumIn(ns, dir);
  try {
    const link = `https://${relay}/join#room=${ready.room}&code=${ready.code}&pk=${process.env.WAN_PK}`;
    const pages = [];
    for (let i = 0; i < students; i++) {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 800, height: 1100 } });
      const page = await ctx.newPage();
      // Noted by the page's own clock (ms since its navigation started) the moment PAGE is drawn.
      await page.addInitScript((want) => {
        new MutationObserver((_, obs) => {
          if (document.querySelector(`.page[data-page="${want}"]`)) {
            window.drawnAt = performance.now();
            obs.disconnect();
          }
        }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-page"] });
      }, PAGE);
      const asked = [];
      page.on("request", (r) => r.url().includes("/v1/docs/") && asked.push({ url: r.url(), range: r.headers().range }));
      page.on("pageerror", (e) => check(false, `${name}: page error: ${e.message}`));
      page.on("console", (m) => m.type() === "error" && console.error(`${name} student ${i + 1}: ${m.text()}`));
      page.on("response", (r) => r.status() >= 400 && console.error(`${name} student ${i + 1}: ${r.status()} for ${r.url()}`));
      pages.push({ page, asked });
    }
    const before = rxBytes(ns);
    const cpuBefore = cpuNow();
    const started = Date.now();
    const times = await Promise.all(pages.map(async ({ page }, i) => {
      await page.goto(link); // (its scripts loaded: a tap before them would submit the form as HTML)
      await page.fill("#name", `Student ${name} ${i + 1}`, { timeout: 60_000 });
      await page.click("#join-button");
      await page.waitForSelector(`.page[data-page="${PAGE}"]`, { timeout: Number(process.env.PAGE_WAIT_MS ?? 120_000) }).catch(async (e) => {
        console.error(`${name} student ${i + 1}: status ${await page.textContent("#status").catch(() => "?")}, ${await page.textContent("body").catch(() => "?")}`);
        throw e;
      });
      if (process.env.WATERFALL && i === 0) {
        const entries = await page.evaluate(() => performance.getEntriesByType("resource").concat(performance.getEntriesByType("navigation"))
          .map((e) => `${Math.round(e.startTime)}-${Math.round(e.responseEnd)} ${e.name.replace(/^https:\/\/[^/]+/, "").slice(0, 60)} ${e.transferSize}`));
        console.error(`${name} student 1's waterfall (ms since opening the link):\n  ${entries.join("\n  ")}`);
      }
      return page.evaluate(() => window.drawnAt);
    }));
    const untilAll = rxBytes(ns) - before;
    const cpuAfter = cpuNow();
    await new Promise((r) => setTimeout(r, Math.max(0, started + SECONDS * 1000 - Date.now())));
    const window = rxBytes(ns) - before;
    const wrong = pages.flatMap(({ asked }) => asked).filter((r) => !/\/(manifest|scan)$/.test(r.url) && !/^bytes=\d+-\d+$/.test(r.range ?? ""));
    check(wrong.length === 0, `${name}: every request for the book was the signed manifest or a range of checked pieces (${JSON.stringify(wrong.slice(0, 3))})`);
    return { cell: name, students, page: PAGE, book_bytes: BOOK,
      first_page_p50_ms: Math.round(pct(times, 0.5)), first_page_p95_ms: Math.round(pct(times, 0.95)), first_page_max_ms: Math.round(Math.max(...times)),
      bytes_until_every_first_page: untilAll, seconds_measured: SECONDS, bytes_in_window: window,
      share_of_the_book_per_student: window / students / BOOK,
      // Until every student had the page.
      machine_idle_percent: Math.round((1000 * (cpuAfter.idle - cpuBefore.idle)) / Math.max(1, cpuAfter.total - cpuBefore.total)) / 10,
      relay_cpu_seconds: Math.round(100 * (cpuAfter.relay - cpuBefore.relay)) / 100 };
  } finally {
    await browser.close().catch(() => {});
  }
}

async function main() {
  mkdirSync(out, { recursive: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), "lectern-wanbook-"));
  const teacher = await turnTo(PAGE);
  try {
    for (const { cell: name, ns, relay, students } of JSON.parse(process.env.WAN_HOMES)) {
      const report = await cell(name, ns, relay, students, dir);
      console.log(JSON.stringify(report));
      appendFileSync(path.join(out, "wan-book.jsonl"), `${JSON.stringify(report)}\n`);
      check(report.bytes_until_every_first_page < BOOK, `${name}: ${report.students} students drew page ${PAGE} of the ${(BOOK / 1e6).toFixed(0)} MB book while it was still arriving (p50 ${report.first_page_p50_ms} ms, p95 ${report.first_page_p95_ms} ms)`);
    }
  } finally {
    teacher.close();
    rmSync(dir, { recursive: true, force: true });
  }
  finish(out);
}

run(main);
