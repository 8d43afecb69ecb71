// End-to-end: the teacher's ink (PROTOCOL-ADDITIONS.md section M) in Debian's Chromium. A synthetic
// pen (Pointer Events with pointerType "pen" and a pressure) writes on the teacher's page; every
// student's screen shows the stroke while it is drawn and once it is kept, checked on the screenshot's
// pixels. Also: a palm on the screen draws nothing, undo and redo, turning away and back, a late
// joiner, the eraser, a laser stroke that fades, and a zoomed region followed on 16:10 and 4:3 screens
// with the ink where it was drawn. Then a fast writer for a few seconds: how long each new piece of a
// stroke takes from the pen event on the teacher's page to the student's canvas (one clock), and the
// bytes a second it costs each student. Screenshots in English and Arabic go to E2E_OUT.
//
//   node tests/e2e/ink.mjs            (LECTERN_BIN, CHROMIUM, E2E_OUT and INK_STROKES override)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { check, decodePng, finish, pct, run, shot, startServer, until } from "./lib.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.env.E2E_OUT ?? path.resolve(here, "../../target/e2e");
const STROKES = Number(process.env.INK_STROKES ?? 24);

/** Red ink's pixels in a screenshot, inside the rectangle `r` (CSS pixels): their count, their mean
 * y, and the thickest column of them. */
function redInk(png, r) {
  let n = 0, ySum = 0;
  const columns = new Map();
  for (let y = Math.max(0, Math.floor(r.y)); y < Math.min(png.height, r.y + r.h); y++) {
    for (let x = Math.max(0, Math.floor(r.x)); x < Math.min(png.width, r.x + r.w); x++) {
      const i = (y * png.width + x) * png.channels;
      const [R, G, B] = [png.data[i], png.data[i + 1], png.data[i + 2]];
      if (R > 150 && G < 110 && B < 110) {
        n++;
        ySum += y;
        columns.set(x, (columns.get(x) ?? 0) + 1);
      }
    }
  }
  return { n, y: n ? ySum / n : null, columns };
}

/** The red ink on a page's screen, inside its page element (`part` of it, normalized: 0..1). */
async function inkOn(page, part = { x: 0, y: 0, w: 1, h: 1 }) {
  const box = await page.locator(".page").first().boundingBox();
  const png = decodePng(await page.screenshot());
  const r = { x: box.x + part.x * box.width, y: box.y + part.y * box.height, w: part.w * box.width, h: part.h * box.height };
  const ink = redInk(png, r);
  return { ...ink, box, yNorm: ink.y === null ? null : (ink.y - box.y) / box.height };
}

/** Pointer events on the teacher's page, dispatched where they land, one displayed frame apart:
 * `[type, pointerType, id, x, y, pressure]` with x and y normalized to the page. */
function pointer(teacher, frames) {
  return teacher.evaluate(async (frames) => {
    const page = document.querySelector(".page");
    for (const [type, pointerType, id, fx, fy, pressure] of frames) {
      const r = page.getBoundingClientRect();
      const x = r.left + fx * r.width, y = r.top + fy * r.height;
      const target = document.elementFromPoint(x, y) ?? page;
      target.dispatchEvent(new PointerEvent(type, {
        pointerId: id, pointerType, isPrimary: true, clientX: x, clientY: y, pressure: pressure ?? 0,
        buttons: type === "pointerup" ? 0 : 1, bubbles: true, cancelable: true, composed: true,
      }));
      await new Promise((r) => requestAnimationFrame(r));
    }
  }, frames);
}

/** A pen stroke across the page at height `y`, from x0 to x1 in `n` moves, its pressure going from
 * p0 to p1. */
function penStroke(y, x0, x1, n, p0 = 0.5, p1 = 0.5) {
  const frames = [["pointerdown", "pen", 2, x0, y, p0]];
  for (let i = 1; i <= n; i++) frames.push(["pointermove", "pen", 2, x0 + ((x1 - x0) * i) / n, y, p0 + ((p1 - p0) * i) / n]);
  frames.push(["pointerup", "pen", 2, x1, y, 0]);
  return frames;
}

async function main() {
  mkdirSync(out, { recursive: true });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "lectern-ink-"));
  const { child, ready } = await startServer(dataDir);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-dev-shm-usage"],
  });
  try {
    const tctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1366, height: 860 } });
    const teacher = await tctx.newPage();
    teacher.on("pageerror", (e) => check(false, `teacher page error: ${e.message}`));
    await teacher.goto(`${ready.http}/teacher#key=${ready.teacher_key}`);
    await teacher.waitForSelector('.page[data-page="1"]');

    /** A student on a screen of this size, joined by the link; counts the bytes its socket receives. */
    const join = async (name, viewport, lang = "en") => {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport, hasTouch: true });
      const page = await ctx.newPage();
      page.on("pageerror", (e) => check(false, `${name}: page error: ${e.message}`));
      const student = { name, page, ctx, bytes: 0 };
      page.on("websocket", (ws) => ws.on("framereceived", (f) => (student.bytes += Buffer.byteLength(f.payload))));
      await page.goto(`${ready.http}/join?lang=${lang}#code=${ready.code}&fp=${ready.fingerprint}`);
      await page.fill("#name", name);
      await page.click("#join-button");
      await page.waitForSelector(".page[data-page]");
      return student;
    };
    const students = [
      await join("Aisha", { width: 1280, height: 800 }),
      await join("Omar", { width: 1024, height: 768 }),
      await join("Fatima", { width: 800, height: 1280 }, "ar"),
    ];
    await teacher.keyboard.press("ArrowRight"); // page 2: the ink goes here
    for (const s of students) await s.page.waitForSelector('.page[data-page="2"]');

    // A stroke with the pen, a palm resting on the screen before and during it.
    await teacher.click("#tool-pen");
    await teacher.selectOption("#ink-width", "thick");
    await pointer(teacher, [["pointerdown", "touch", 7, 0.3, 0.8], ["pointermove", "touch", 7, 0.4, 0.82], ["pointermove", "touch", 7, 0.5, 0.84]]);
    const stroke = penStroke(0.5, 0.15, 0.85, 30, 0.1, 0.95);
    await pointer(teacher, stroke.slice(0, 16));
    // Half drawn: every student already sees it.
    for (const s of students) {
      const seen = await until(`${s.name} sees the stroke while it is drawn`, async () => ((await inkOn(s.page)).n > 20 ? await inkOn(s.page) : null));
      check(Math.abs(seen.yNorm - 0.5) < 0.02, `${s.name} sees the stroke while it is drawn, where it is drawn (${seen.n} red pixels at ${(seen.yNorm * 100).toFixed(1)}% of the page's height)`);
    }
    await pointer(teacher, [["pointermove", "touch", 7, 0.6, 0.86], ...stroke.slice(16), ["pointerup", "touch", 7, 0.6, 0.86]]);
    const kept = await until("the stroke is kept", () => teacher.evaluate(() => window.lectern.client.mirror.state.marks["2"]));
    check(kept.length === 1 && kept[0].ink.points.length >= 20, `the pen's stroke is kept as one mark (${kept[0]?.ink.points.length} points) and the palm's is not`);
    const pressures = kept[0].ink.points.map((p) => p[2]);
    check(pressures[0] <= 20 && Math.max(...pressures) >= 85, `the stroke carries the pen's pressure (${pressures[0]} to ${Math.max(...pressures)})`);
    const ink = {};
    for (const s of students) {
      ink[s.name] = await until(`${s.name} sees the kept stroke`, async () => {
        const i = await inkOn(s.page);
        return i.n > 40 ? i : null;
      });
      const palm = await inkOn(s.page, { x: 0, y: 0.7, w: 1, h: 0.3 });
      check(palm.n === 0, `${s.name}: the palm drew nothing (${palm.n} red pixels where it lay)`);
    }
    // Pressure shows: the stroke is thicker where the pen pressed harder.
    const cols = ink.Aisha.columns;
    const xs = [...cols.keys()].sort((a, b) => a - b);
    const thin = Math.max(...xs.slice(2, Math.floor(xs.length * 0.15)).map((x) => cols.get(x)));
    const thick = Math.max(...xs.slice(Math.floor(xs.length * 0.85), -2).map((x) => cols.get(x)));
    check(thick >= thin * 1.6, `the stroke is ${thin} px thick where the pen pressed lightly and ${thick} px where it pressed hard`);
    await shot(students[0].page, path.join(out, "student-ink-en.png"), { page: true });
    await shot(students[2].page, path.join(out, "student-ink-ar.png"), { page: true });

    // Undo and redo (Ctrl+Z, Ctrl+Y), from every student's screen.
    await teacher.keyboard.press("Control+z");
    for (const s of students) await until(`${s.name}: the stroke is taken back`, async () => (await inkOn(s.page)).n === 0);
    await teacher.keyboard.press("Control+y");
    for (const s of students) await until(`${s.name}: the stroke is back`, async () => (await inkOn(s.page)).n > 40);
    check(true, "undo takes the stroke off every student's screen, and redo puts it back");

    // Turned away and back; a student who joins late.
    await teacher.keyboard.press("ArrowRight");
    for (const s of students) await s.page.waitForSelector('.page[data-page="3"]');
    check((await inkOn(students[0].page)).n === 0, "the next page shows no ink of the page before");
    await teacher.keyboard.press("ArrowLeft");
    for (const s of students) await until(`${s.name} sees the ink again`, async () => (await inkOn(s.page)).n > 40);
    check(true, "turned back, every student sees the page's ink again");
    const late = await join("Yusuf", { width: 1280, height: 800 });
    const lateInk = await until("the late joiner sees the ink", async () => {
      const i = await inkOn(late.page);
      return i.n > 40 ? i : null;
    });
    check(Math.abs(lateInk.yNorm - 0.5) < 0.02, `a student who joins late sees the stroke where it was drawn (${lateInk.n} red pixels)`);

    // Zoomed: the teacher shows the middle of the page; 16:10 and 4:3 students see the stroke there.
    await teacher.click("#tool-pen"); // the pen is put down: a drag pans
    for (let i = 0; i < 3; i++) await teacher.keyboard.press("+");
    const viewOf = (page) => page.evaluate(() => JSON.stringify(window.lectern.client.mirror.state.view));
    // The zoom is three steps: the students have followed when they show what the teacher shows.
    await until("the students follow the zoom", async () => {
      const v = await viewOf(teacher);
      return v !== "null" && (await viewOf(students[0].page)) === v && (await viewOf(students[1].page)) === v;
    });
    for (const s of students.slice(0, 2)) {
      // Measured once the page holds still: the same box before and after the screenshot.
      const seen = await until(`${s.name} sees the zoomed ink`, async () => {
        const vp = s.page.viewportSize();
        const before = await s.page.locator(".page").first().boundingBox();
        const png = decodePng(await s.page.screenshot());
        const box = await s.page.locator(".page").first().boundingBox();
        if (JSON.stringify(before) !== JSON.stringify(box)) return null;
        const r = redInk(png, { x: 0, y: 0, w: vp.width, h: vp.height });
        // Where the stroke (y = 0.5 of the page) must be on this screen.
        return r.n > 100 ? { r, want: box.y + 0.5 * box.height } : null;
      });
      check(Math.abs(seen.r.y - seen.want) < 6, `${s.name} (${s.page.viewportSize().width}×${s.page.viewportSize().height}) sees the zoomed stroke where the page has it (${seen.r.y.toFixed(0)} px, expected ${seen.want.toFixed(0)})`);
    }
    await shot(teacher, path.join(out, "teacher-ink-en.png"), { page: true });
    await shot(students[1].page, path.join(out, "student-ink-zoomed-en.png"), { page: true });
    await shot(students[2].page, path.join(out, "student-ink-zoomed-ar.png"), { page: true });
    await teacher.goto(`${ready.http}/teacher?lang=ar#key=${ready.teacher_key}`);
    await teacher.waitForSelector('.page[data-page="2"]');
    await until("the Arabic console shows the ink", async () => (await inkOn(teacher)).n > 40);
    await shot(teacher, path.join(out, "teacher-ink-ar.png"), { page: true });
    await teacher.keyboard.press("0"); // the whole page again
    for (const s of students) await until(`${s.name}: whole page`, () => s.page.evaluate(() => window.lectern.client.mirror.state.view === null));

    // The eraser takes the whole stroke off at one touch of it.
    await teacher.click("#tool-eraser");
    await pointer(teacher, [["pointerdown", "mouse", 1, 0.5, 0.5, 0.5], ["pointerup", "mouse", 1, 0.5, 0.5, 0]]);
    for (const s of [...students, late]) await until(`${s.name}: erased`, async () => (await inkOn(s.page)).n === 0);
    check(true, "the eraser takes the stroke off every student's screen");

      // A laser stroke: seen while drawn, then it fades on its own. (The pointer's dot stays where the
    // stroke ended, at x = 0.8: only the stroke's left part is looked at.)
    const band = { x: 0.1, y: 0.2, w: 0.6, h: 0.2 };
    await teacher.click("#tool-laser");
    await pointer(teacher, penStroke(0.3, 0.2, 0.8, 12).slice(0, -1));
    for (const s of students) await until(`${s.name} sees the laser stroke`, async () => (await inkOn(s.page, band)).n > 20);
    await pointer(teacher, penStroke(0.3, 0.2, 0.8, 12).slice(-1));
    const endedAt = Date.now();
    for (const s of students) await until(`${s.name}: the laser stroke fades`, async () => (await inkOn(s.page, band)).n === 0, 8000);
    check(Date.now() - endedAt >= 1500, `the laser stroke faded on every screen ${((Date.now() - endedAt) / 1000).toFixed(1)} s after it ended, and none kept it`);
    check(!(await teacher.evaluate(() => window.lectern.client.mirror.state.marks["2"])), "a laser stroke is never kept");

    // A fast writer: strokes of 40 moves, one per displayed frame; each piece's delay from the
    // teacher's pen event to every student's canvas, on one clock.
    await teacher.click("#tool-pen");
    await teacher.evaluate(() => (window.lectern.ink = []));
    for (const s of students) await s.page.evaluate(() => (window.lectern.ink = []));
    for (const s of students) s.bytes = 0;
    const started = Date.now();
    for (let i = 0; i < STROKES; i++) {
      const y = 0.1 + (0.8 * i) / STROKES;
      await pointer(teacher, penStroke(y, 0.1, 0.9, 40, 0.3, 0.8));
    }
    const seconds = (Date.now() - started) / 1000;
    const sent = await teacher.evaluate(() => window.lectern.ink);
    const lat = [];
    for (const s of students) {
      const got = await until(`${s.name} drew every stroke`, async () => {
        const g = await s.page.evaluate(() => window.lectern.ink);
        return new Set(g.map((e) => e.id)).size >= new Set(sent.map((e) => e.id)).size ? g : null;
      });
      for (const e of sent) {
        const first = got.find((g) => g.id === e.id && g.n >= e.n);
        if (first) lat.push(first.at - e.at);
      }
    }
    lat.sort((a, b) => a - b);
    const perStudent = students.map((s) => s.bytes / seconds);
    const report = {
      what: "ink: from the pen event on the teacher's page to the stroke drawn on each student's canvas (Chromium, loopback)",
      students: students.length,
      strokes: STROKES,
      pieces: lat.length,
      p50_ms: pct(lat, 0.5),
      p99_ms: pct(lat, 0.99),
      max_ms: lat.at(-1),
      bytes_per_second_per_student: Math.round(perStudent.reduce((a, b) => a + b, 0) / perStudent.length),
      seconds,
    };
    writeFileSync(path.join(out, "ink-latency.json"), JSON.stringify(report, null, 2));
    console.log(`ink: p50 ${report.p50_ms.toFixed(1)} ms, p99 ${report.p99_ms.toFixed(1)} ms over ${lat.length} pieces; ${report.bytes_per_second_per_student} bytes/s to each student`);
    check(lat.length > STROKES * 20, `every student drew the fast writer's strokes piece by piece (${lat.length} pieces timed)`);

    // The annotated PDF of the lesson, as the console's history exports it, opened in pdf.js: it is
    // put up as a document of the lesson, and every student's screen shows page 2 with the fast
    // writer's strokes drawn by pdf.js (the ink layer of a new document is empty) where they were.
    const exported = await teacher.evaluate(async (key) => {
      const lessons = await (await fetch("/v1/lessons", { headers: { Authorization: `Bearer ${key}` } })).json();
      const res = await fetch(`/v1/lessons/${lessons.lessons[0].id}/annotated.pdf`, { headers: { Authorization: `Bearer ${key}` } });
      if (!res.ok) return { error: `${res.status} ${await res.text()}` };
      const bytes = await res.arrayBuffer();
      const up = await fetch("/v1/docs?title=Annotated", { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/pdf" }, body: bytes });
      const doc = await up.json();
      window.lectern.client.set({ doc: doc.id, page: 2 });
      return { doc, size: bytes.byteLength };
    }, ready.teacher_key);
    check(!exported.error && exported.doc.pages === 3, `the console's export is a PDF of the 3 pages the lesson showed (${exported.size} bytes; ${exported.error ?? "ok"})`);
    for (const s of students) {
      await until(`${s.name} shows the exported page`, () => s.page.evaluate((id) => window.lectern.client.mirror.state.doc?.id === id && window.lectern.client.mirror.state.page === 2, exported.doc.id));
      const rows = await until(`${s.name} sees the exported ink`, async () => {
        const i = await inkOn(s.page);
        return i.n > 200 ? i : null;
      }, 15000);
      // The first and the middle stroke of the fast writer: at 10% and 50% of the page's height.
      const near = async (y) => (await inkOn(s.page, { x: 0.05, y: y - 0.01, w: 0.9, h: 0.02 })).n;
      const [top, middle, gap] = [await near(0.1), await near(0.5), await near(0.95)];
      check(top > 20 && middle > 20 && gap === 0, `${s.name}: the exported PDF, drawn by pdf.js, shows the strokes where they were drawn (${rows.n} red pixels; ${top} at 10%, ${middle} at 50%, ${gap} below the last)`);
    }
    await shot(students[0].page, path.join(out, "student-exported-pdf.png"), { page: true });

    // A late joiner to a page holding 2,000 strokes (20 points each): the bytes its socket receives
    // and the time from opening the link to the page's ink drawn, scripts and all.
    const HEAVY = 2000;
    await teacher.evaluate(async (n) => {
      const ops = [];
      for (let i = 0; i < n; i++) {
        const y = 500 + ((i * 37) % 9000);
        const points = Array.from({ length: 20 }, (_, j) => [500 + j * 450, y + (j % 3) * 15, 40 + j]);
        const ys = points.map((p) => p[1]);
        const mark = { id: 1_000_000 + i, x: 0.05, y: Math.min(...ys) / 10000, w: (points[19][0] - 500) / 10000, h: (Math.max(...ys) - Math.min(...ys)) / 10000,
          ink: { color: ["black", "blue", "green"][i % 3], width: 2, points } };
        ops.push({ op: "add", page: 3, mark });
      }
      for (let i = 0; i < ops.length; i += 32) window.lectern.client.set({ marks: ops.slice(i, i + 32) });
      window.lectern.client.set({ page: 3 });
    }, HEAVY);
    await until("the teacher's page holds the strokes", () => teacher.evaluate((n) => (window.lectern.client.mirror.state.marks["3"] ?? []).length === n && window.lectern.client.mirror.state.page === 3, HEAVY), 30000);
    const joins = [];
    for (let k = 0; k < 3; k++) {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
      const page = await ctx.newPage();
      let bytes = 0;
      page.on("websocket", (ws) => ws.on("framereceived", (f) => (bytes += Buffer.byteLength(f.payload))));
      const opened = Date.now();
      await page.goto(`${ready.http}/join#code=${ready.code}&fp=${ready.fingerprint}`);
      const clickAt = await page.evaluate(() => performance.timeOrigin);
      await page.fill("#name", `Late ${k}`);
      const joinedAt = await page.evaluate(() => performance.timeOrigin + performance.now());
      await page.click("#join-button");
      const kept = await until("the late joiner draws the 2,000 strokes", () => page.evaluate((n) => (window.lectern.kept?.strokes === n ? window.lectern.kept : null), HEAVY), 30000);
      joins.push({ bytes, from_link_ms: kept.at - clickAt, from_join_ms: kept.at - joinedAt, wall_ms: Date.now() - opened });
      await ctx.close();
    }
    const heavy = { strokes: HEAVY, points: HEAVY * 20, joins };
    writeFileSync(path.join(out, "ink-join.json"), JSON.stringify(heavy, null, 2));
    console.log(`join with ${HEAVY} strokes: ${joins.map((j) => `${(j.bytes / 1024).toFixed(0)} KiB, ${j.from_link_ms.toFixed(0)} ms from the link (${j.from_join_ms.toFixed(0)} ms from the join tap)`).join("; ")}`);
    check(joins.every((j) => j.bytes > HEAVY * 200), `a late joiner gets the page's ${HEAVY} strokes with the state and draws them`);
  } finally {
    await browser.close();
    child.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
  finish(out);
}

run(main);
