// A browser student through a relay (docs/RELAY.md), in a real Chromium: a real redis-server,
// `lectern serve --redis --relay-url`, and `lectern relay`. The teacher's console shows the link for
// students at home; the student opens it (the relay's address, room, code and the teacher's public
// key), follows a page turn that the teacher's server signed, and draws the
// lesson's PDF from the relay, every piece checked against the manifest the teacher signed. A second student whose link carries another
// key refuses the lesson and draws nothing.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { check, finish, run, shot } from "./lib.mjs";
import { publicOf, relayRig } from "./relayrig.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.env.E2E_OUT ?? path.resolve(here, "../../target/e2e");

async function main() {
  mkdirSync(out, { recursive: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), "lectern-relay-e2e-"));
  const children = [];
  let browser;
  try {
    const { base, ready, pk } = await relayRig(dir, children);

    // The teacher, over the protocol: turns to page 3 once a student is in.
    const teacher = new WebSocket(ready.ws, "lectern.v1", { rejectUnauthorized: false });
    await new Promise((r) => teacher.on("open", r));
    teacher.send(JSON.stringify({ t: "hello", v: 1, role: "teacher", key: ready.teacher_key, device: "e2e-teacher-01" }));

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"],
    });
    // The console shows the link for students at home; that is the link the student opens.
    const consoleCtx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
    const teacherPage = await consoleCtx.newPage();
    await teacherPage.goto(`${ready.http}/teacher#key=${ready.teacher_key}`);
    await teacherPage.waitForSelector("#remote-row:not([hidden])", { timeout: 20_000 });
    const remote = (await teacherPage.textContent("#remote-link")).trim();
    check(remote === `${base}/join#room=${ready.room}&code=${ready.code}&pk=${pk}`, `the console shows the link for students at home: ${remote}`);
    await shot(teacherPage.locator(".join-info"), path.join(out, "relay-console-link.png"));
    await consoleCtx.close();
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 900, height: 700 } });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => check(false, `page error: ${e.message}`));
    const docRequests = [];
    page.on("request", (r) => r.url().includes("/v1/docs/") && docRequests.push({ url: r.url(), range: r.headers().range }));
    // Every lesson connection the page opens, with the frames each carried.
    const sockets = [];
    page.on("websocket", (ws) => {
      const s = { url: ws.url(), sent: [], got: [] };
      ws.on("framesent", (f) => s.sent.push(String(f.payload)));
      ws.on("framereceived", (f) => s.got.push(String(f.payload)));
      sockets.push(s);
    });
    await page.goto(remote);
    await page.fill("#name", "Remote Amina");
    await page.click("#join-button");
    await page.waitForSelector('#status[data-status="connected"]', { timeout: 20_000 });
    await page.waitForSelector('.page[data-page="1"]', { timeout: 20_000 });
    check(true, "a browser student joins through the relay and draws the lesson's PDF");
    // The room's title comes from Redis through the relay: it is shown only with the teacher's signature.
    await page.waitForFunction(() => (document.querySelector("#room-title")?.textContent ?? "") !== "", null, { timeout: 10_000 });
    check(true, `the room's title, signed by the teacher, is shown behind the relay ("${await page.textContent("#room-title")}")`);
    const ranges = docRequests.filter((r) => !/\/(manifest|scan)$/.test(r.url));
    check(
      docRequests.some((r) => r.url.endsWith("/manifest")) && ranges.length > 0 && ranges.every((r) => /^bytes=\d+-\d+$/.test(r.range ?? "")),
      `from the signed manifest and ranges of checked pieces, never the whole document: ${JSON.stringify(docRequests.map((r) => r.range ?? r.url.split("/").pop()))}`,
    );
    teacher.send(JSON.stringify({ t: "set", id: 1, patch: { page: 3 } }));
    await page.waitForSelector('.page[data-page="3"]', { timeout: 20_000 });
    check(true, "the teacher's signed page turn reaches the browser through the relay");
    await shot(page, path.join(out, "relay-student.png"), { page: true });

    // The relay offers a second path (PROTOCOL-ADDITIONS.md, section N): the page opens it a few
    // seconds after its welcome, and the next page turn comes on both connections.
    const isSecond = (s) => s.sent.some((t) => t.includes('"second":true')) && s.got.some((t) => t.includes('"t":"welcome"'));
    const until = Date.now() + 15_000;
    while (!sockets.some(isSecond) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const second = sockets.find(isSecond);
    check(!!second, `the browser opens a second path to the relay (${sockets.length} lesson connections)`);
    teacher.send(JSON.stringify({ t: "set", id: 2, patch: { page: 4 } }));
    await page.waitForSelector('.page[data-page="4"]', { timeout: 20_000 });
    const turned = (s) => s.got.some((t) => t.includes('"t":"patch"') && t.includes('"page":4'));
    check(
      sockets.filter((s) => s.url.endsWith("/v1/ws")).length === 2 && sockets.every(turned),
      "the page turn comes on both paths, and the page shows it once",
    );
    check(second?.sent.every((t) => /"t":"(hello|ping)"/.test(t)) ?? false, "the second path says nothing but its hello and pings");

    // A link with another teacher's key: every state is refused, nothing is drawn.
    const other = publicOf(Buffer.alloc(32, 3));
    const bad = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
    const refused = [];
    bad.on("console", (m) => m.type() === "error" && refused.push(m.text()));
    await bad.goto(`${base}/join#room=${ready.room}&code=${ready.code}&pk=${other}`);
    await bad.fill("#name", "Other Key");
    await bad.click("#join-button");
    const deadline = Date.now() + 10_000;
    while (!refused.some((t) => t.includes("did not sign")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    check(refused.some((t) => t.includes("did not sign")), "a student whose link carries another key refuses the lesson");
    check((await bad.$(".page[data-page]")) === null, "and draws nothing");
    const badTitle = await bad.textContent("#join-title");
    check(badTitle === "Join your class", `nor shows the relay's title, which that key did not sign ("${badTitle}")`);
    teacher.close();
  } finally {
    await browser?.close().catch(() => {});
    for (const c of children.reverse()) c.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
  finish(out);
}

run(main);
