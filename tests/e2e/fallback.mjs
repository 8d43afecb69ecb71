// The fallback transport in a real Chromium (issue 15; docs/PROTOCOL-ADDITIONS.md, I): one student's
// browser has WebSockets blocked (every `/v1/ws` is refused, as a school proxy that strips
// `Upgrade` would), another's works. The blocked one falls back to server-sent events on its own and
// follows the lesson; when WebSockets work again it returns to them. Both see the same pointer moves,
// and the latency of each transport is reported side by side (send by the teacher to the pointer
// moving on the student's screen, same clock).
//
//   node tests/e2e/fallback.mjs            (MOVES=300 for a longer measurement)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { check, finish, pct, run, startServer, until, shot } from "./lib.mjs";

const MOVES = Number(process.env.MOVES ?? 120);
const out = path.join(path.dirname(new URL(import.meta.url).pathname), "../../target/e2e");

async function student(browser, ready, name, blocked) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1024, height: 700 } });
  const state = { blocked };
  // A refused WebSocket, as the browser sees one behind a proxy that strips Upgrade. (Only this
  // student's are routed: Playwright relays a routed WebSocket itself, which would slow it.)
  if (blocked) await ctx.routeWebSocket(/\/v1\/ws/, (ws) => (state.blocked ? ws.close({ code: 1006 }) : ws.connectToServer()));
  const page = await ctx.newPage();
  page.on("pageerror", (e) => check(false, `${name}: page error: ${e.message}`));
  await page.goto(`${ready.http}/join#code=${ready.code}&fp=${ready.fingerprint}`);
  await page.fill("#name", name);
  await page.click("#join-button");
  await page.waitForSelector('#status[data-status="connected"]', { timeout: 20000 });
  await page.waitForSelector('.page[data-page="1"]');
  // Every pointer position the page shows, with the page's clock.
  await page.evaluate(() => {
    window.__moves = [];
    const laser = document.querySelector(".laser");
    new MutationObserver(() => window.__moves.push({ left: laser.style.left, at: Date.now() })).observe(laser, {
      attributes: true,
      attributeFilter: ["style"],
    });
  });
  return { ctx, page, state };
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lectern-fallback-"));
  const { child, ready } = await startServer(path.join(dir, "data"));
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const teacher = new WebSocket(ready.ws, "lectern.v1", { rejectUnauthorized: false });
  try {
    await new Promise((r) => teacher.on("open", r));
    teacher.send(JSON.stringify({ t: "hello", v: 1, role: "teacher", key: ready.teacher_key, device: "fallback-teacher" }));
    const ws = await student(browser, ready, "Aisha", false);
    const sse = await student(browser, ready, "Omar", true);
    check((await ws.page.getAttribute("html", "data-transport")) === "ws", "an open network keeps the WebSocket");
    check((await sse.page.getAttribute("html", "data-transport")) === "sse", "with WebSockets refused, the browser falls back to server-sent events on its own");

    // The teacher moves the pointer, 20 times a second; each student's screen follows.
    const sent = new Map();
    for (let i = 1; i <= MOVES; i++) {
      const x = i / (MOVES + 1);
      sent.set(Math.round(x * 1e4), Date.now());
      teacher.send(JSON.stringify({ t: "set", id: i, patch: { pos: { x, y: 0.5 } } }));
      await new Promise((r) => setTimeout(r, 50));
    }
    // The page shows `left` as a percentage, as the browser writes it back (perhaps rounded).
    const key = (left) => Math.round(parseFloat(left) * 100);
    const last = Math.round((MOVES / (MOVES + 1)) * 1e4);
    const latencies = async (page) => {
      await until("the last pointer move on screen", async () => (await page.evaluate(() => window.__moves)).some((m) => key(m.left) === last));
      const moves = await page.evaluate(() => window.__moves);
      return moves.filter((m) => sent.has(key(m.left))).map((m) => m.at - sent.get(key(m.left)));
    };
    const lws = await latencies(ws.page);
    const lsse = await latencies(sse.page);
    check(lsse.length >= MOVES * 0.95, `the fallback student saw ${lsse.length} of ${MOVES} pointer moves`);
    const row = (name, xs) => ({ transport: name, moves: xs.length, p50_ms: pct(xs, 0.5), p99_ms: pct(xs, 0.99), max_ms: Math.max(...xs) });
    const report = [row("websocket", lws), row("server-sent events", lsse)];
    console.table(report);
    writeFileSync(path.join(out, "fallback-latency.json"), JSON.stringify(report, null, 2));

    // The student talks back over POSTs: a raised hand reaches the teacher.
    const hand = new Promise((resolve) =>
      teacher.on("message", (d) => {
        const m = JSON.parse(String(d));
        if (m.t === "roster" && m.changes.some((e) => e.name === "Omar" && e.hand)) resolve(true);
      }),
    );
    await sse.page.click("#hand");
    check(await Promise.race([hand, new Promise((r) => setTimeout(() => r(false), 5000))]), "a hand raised on the fallback reaches the teacher");
    await shot(sse.page, path.join(out, "student-fallback.png"), { page: true });

    // WebSockets work again: the student returns to them once two probes in a row open (30 s apart).
    sse.state.blocked = false;
    await until("back on WebSockets", async () => (await sse.page.getAttribute("html", "data-transport")) === "ws", 80000);
    await sse.page.waitForSelector('#status[data-status="connected"]');
    check(true, "once WebSockets work again, the student returns to them and stays in the lesson");
  } finally {
    teacher.close();
    await browser.close();
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
  finish(out);
}

run(main);
