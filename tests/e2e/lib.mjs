// Helpers shared by the end-to-end tests (run.mjs: the browser UI; app.mjs: the Tauri app).
import { spawn } from "node:child_process";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";

export const target = process.env.CARGO_TARGET_DIR ?? path.join(os.homedir(), ".cache/lectern-target");
export const bin = process.env.LECTERN_BIN ?? path.join(target, "release/lectern");

let failures = 0;
/** Records and prints one check. */
export function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}

/** Polls `fn` until it returns something truthy. */
export async function until(what, fn, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts `lectern serve` on loopback; resolves with the child and its ready line. */
export function startServer(dataDir, extra = []) {
  const child = spawn(bin, ["serve", "--json", "--no-mdns", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--title", "Quran, level 2", ...extra], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const line = buf.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve({ child, ready: JSON.parse(line) });
    });
    child.on("exit", (code) => reject(new Error(`lectern serve exited with ${code}`)));
  });
}

/** A TCP proxy whose connections the test can cut, as a Wi-Fi drop would. */
export function cuttableProxy(port) {
  const sockets = new Set();
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) return client.destroy();
    const upstream = net.connect(port, "127.0.0.1");
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: server.address().port,
        cut() {
          blocked = true;
          for (const s of sockets) s.resetAndDestroy ? s.resetAndDestroy() : s.destroy();
        },
        restore() {
          blocked = false;
        },
        close: () => server.close(),
      }),
    ),
  );
}

/** The q-quantile of a list of numbers. */
export const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};


/** Runs a test's `main` (which ends with `finish`): a thrown error fails the test. */
export function run(main) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

/** Says where the screenshots are and exits: 1 if any check failed. It exits either way, so a
 * socket or a child left open cannot keep a finished test (and CI) waiting. */
export function finish(out) {
  console.log(`screenshots: ${out}`);
  if (failures) console.error(`${failures} check(s) failed`);
  process.exit(failures ? 1 : 0);
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what browsers and WebDriver send) into
 * { width, height, channels, data }, so a test can look at the pixels of its screenshots. */
export function decodePng(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error("not a PNG");
  let width = 0, height = 0, channels = 0;
  const idat = [];
  for (let at = 8; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    const type = buf.toString("latin1", at + 4, at + 8);
    const body = buf.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const [depth, color, , , interlace] = body.subarray(8, 13);
      channels = color === 6 ? 4 : color === 2 ? 3 : 0;
      if (depth !== 8 || !channels || interlace) throw new Error(`a PNG this reader does not take (depth ${depth}, colour ${color})`);
    } else if (type === "IDAT") idat.push(body);
    at += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const data = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? data[y * stride + x - channels] : 0;
      const b = y > 0 ? data[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? data[(y - 1) * stride + x - channels] : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      const add = [0, a, b, (a + b) >> 1, paeth][filter];
      data[y * stride + x] = (line[x] + add) & 0xff;
    }
  }
  return { width, height, channels, data };
}

/** How much of a screenshot (optionally only the rectangle `r`, in image pixels) is drawn: the share
 * of sampled pixels unlike the most common colour there, and of dark ones (text and ink). */
export function drawnPixels(png, r = { x: 0, y: 0, w: png.width, h: png.height }) {
  const counts = new Map();
  const samples = [];
  const x0 = Math.max(0, Math.floor(r.x)), y0 = Math.max(0, Math.floor(r.y));
  const x1 = Math.min(png.width, Math.ceil(r.x + r.w)), y1 = Math.min(png.height, Math.ceil(r.y + r.h));
  for (let y = y0; y < y1; y += 2) {
    for (let x = x0; x < x1; x += 2) {
      const i = (y * png.width + x) * png.channels;
      const rgb = (png.data[i] << 16) | (png.data[i + 1] << 8) | png.data[i + 2];
      samples.push(rgb);
      counts.set(rgb, (counts.get(rgb) ?? 0) + 1);
    }
  }
  if (!samples.length) return { unlike: 0, dark: 0 };
  const common = [...counts.entries()].reduce((m, e) => (e[1] > m[1] ? e : m))[0];
  let unlike = 0, dark = 0;
  for (const s of samples) {
    if (s !== common) unlike++;
    if (((s >> 16) & 255) + ((s >> 8) & 255) + (s & 255) < 300) dark++;
  }
  return { unlike: unlike / samples.length, dark: dark / samples.length };
}

/** Saves a Playwright screenshot (of a page or a locator) and checks that it shows something drawn:
 * not one flat colour, and with `page`, the document's own text inside the page element. A page
 * still drawing is given up to 10 s; then the test fails, naming the file. */
export async function shot(target, file, { page = false } = {}) {
  let seen = null;
  await until(`${path.basename(file)} shows drawn pixels`, async () => {
    const img = decodePng(await target.screenshot({ path: file }));
    const whole = drawnPixels(img);
    let inPage = null;
    if (page) {
      const box = await target.locator(".page:visible").first().boundingBox();
      inPage = box ? drawnPixels(img, { x: box.x, y: box.y, w: box.width, h: box.height }) : null;
    }
    seen = { whole, inPage };
    return whole.unlike > 0.02 && (!page || (inPage && inPage.dark > 0.002));
  });
  const share = (v) => `${(v * 100).toFixed(1)}%`;
  check(true, `${path.basename(file)}: drawn (${share(seen.whole.unlike)} of it${seen.inPage ? `, ${share(seen.inPage.dark)} of the page dark with its text` : ""})`);
}
