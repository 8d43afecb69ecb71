// A small W3C WebDriver client for the Lectern app's windows (tauri-driver in front of Debian's
// WebKitWebDriver), shared by the app's end-to-end tests.
import { spawn } from "node:child_process";
import http from "node:http";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { check, decodePng, drawnPixels, target, until } from "./lib.mjs";

export const appBin = process.env.APP_BIN ?? path.join(target, "release/lectern-app");
export const driverBin = process.env.TAURI_DRIVER ?? path.join(os.homedir(), ".cargo/bin/tauri-driver");
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";
/** Every process the tests started, stopped at the end. */
export const children = [];
let out = "";

/** Where screenshots go. */
export function screenshotsTo(dir) {
  out = dir;
}

/** One WebDriver HTTP exchange with a driver on a local port, or through a Unix socket relay. */
function request(to, method, p, body) {
  const data = body ? JSON.stringify(body) : undefined;
  const where = to.socketPath ? { socketPath: to.socketPath } : { host: "127.0.0.1", port: to.port };
  return new Promise((resolve, reject) => {
    const req = http.request({ ...where, method, path: p, headers: { "content-type": "application/json", ...(data ? { "content-length": Buffer.byteLength(data) } : {}) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error(`${method} ${p}: not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

/** A tauri-driver on `port`, launching apps with `env` (the app reads LECTERN_* like the CLI);
 * `prefix` runs it under another command (`ip netns exec NS`), `socketPath` reaches it from here. */
export async function driver(port, env, prefix = [], socketPath = undefined) {
  const cmd = [...prefix, driverBin, "--port", String(port), "--native-port", String(port + 1)];
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ...env } });
  children.push(child);
  await until(`tauri-driver on ${port}`, async () => {
    try {
      return !!(await request({ port, socketPath }, "GET", "/status"));
    } catch {
      return false;
    }
  });
  return port;
}

/** A WebDriver session: one app window. */
export class App {
  static async open(port, args, socketPath = undefined) {
    const app = new App(port, socketPath);
    const caps = { capabilities: { alwaysMatch: { "tauri:options": { application: appBin, args } } } };
    const session = await app.call("POST", "/session", caps);
    app.sid = session.sessionId;
    return app;
  }
  constructor(port, socketPath) {
    this.to = { port, socketPath };
  }
  async call(method, p, body) {
    const full = this.sid && !p.startsWith("/session") ? `/session/${this.sid}${p}` : p;
    const json = await request(this.to, method, full, body).catch((e) => {
      throw new Error(`${method} ${full}: ${e.message}`);
    });
    if (json.value && json.value.error) throw new Error(`${method} ${p}: ${json.value.error}: ${json.value.message}`);
    return json.value;
  }
  exec(script, ...args) {
    return this.call("POST", "/execute/sync", { script, args });
  }
  /** Like `exec`, for polling: a page that is navigating answers null instead of failing. */
  async poll(script) {
    try {
      return await this.exec(script);
    } catch (e) {
      if (/no such frame|unload|no such window|JavaScript error/.test(String(e))) return null;
      throw e;
    }
  }
  async find(css) {
    return (await this.call("POST", "/element", { using: "css selector", value: css }))[ELEMENT];
  }
  async click(css) {
    await this.call("POST", `/element/${await this.find(css)}/click`, {});
  }
  async type(css, text) {
    await this.call("POST", `/element/${await this.find(css)}/value`, { text });
  }
  async key(key) {
    const actions = [{ type: "key", id: "keyboard", actions: [{ type: "keyDown", value: key }, { type: "keyUp", value: key }] }];
    await this.call("POST", "/actions", { actions });
  }
  /** Drags the mouse across an element, from and to fractions of its size. */
  async drag(css, [x0, y0], [x1, y1]) {
    const el = await this.find(css);
    const rect = await this.call("GET", `/element/${el}/rect`);
    const at = (fx, fy) => ({ x: Math.round(rect.x + rect.width * fx), y: Math.round(rect.y + rect.height * fy) });
    const moves = [
      { type: "pointerMove", duration: 0, origin: "viewport", ...at(x0, y0) },
      { type: "pointerDown", button: 0 },
      { type: "pointerMove", duration: 200, origin: "viewport", ...at(x1, y1) },
      { type: "pointerUp", button: 0 },
    ];
    await this.call("POST", "/actions", { actions: [{ type: "pointer", id: "mouse", parameters: { pointerType: "mouse" }, actions: moves }] });
  }
  /** Places the window: two app windows share the test's screen, side by side (an X server with no
   * window manager, where an occluded window is not painted). */
  async place(x, y, width, height) {
    await this.call("POST", "/window/rect", { x, y, width, height });
  }
  /** Saves a screenshot of the window, and checks that it shows something drawn: not one flat
   * colour, and with `page`, the document's own text inside the page element (a blank page canvas
   * fails). A window still painting is given up to 15 s; then the test fails, naming the file.
   * `raw` saves it unchecked (a failure's picture). */
  async screenshot(name, { page = false, raw = false } = {}) {
    if (raw) {
      // A failure's picture, for the person reading the log: saved as it is.
      writeFileSync(path.join(out, name), Buffer.from(await this.call("GET", "/screenshot"), "base64"));
      return;
    }
    let seen = null;
    await until(`${name} shows drawn pixels`, async () => {
      const png = Buffer.from(await this.call("GET", "/screenshot"), "base64");
      writeFileSync(path.join(out, name), png);
      const img = decodePng(png);
      const whole = drawnPixels(img);
      const rect = page
        ? await this.exec("const p = document.querySelector('.page'); if (!p || p.hidden) return null; const r = p.getBoundingClientRect(); const s = p.parentElement.getBoundingClientRect(); const k = devicePixelRatio; const x = Math.max(r.left, s.left), y = Math.max(r.top, s.top); return { x: x * k, y: y * k, w: (Math.min(r.right, s.right) - x) * k, h: (Math.min(r.bottom, s.bottom) - y) * k };")
        : null;
      const inPage = rect ? drawnPixels(img, rect) : null;
      seen = { whole, inPage };
      return whole.unlike > 0.02 && (!page || (inPage && inPage.dark > 0.002)) ? seen : null;
    }, 15000);
    const share = (v) => `${(v * 100).toFixed(1)}%`;
    check(true, `${name}: drawn (${share(seen.whole.unlike)} of the window${seen.inPage ? `, ${share(seen.inPage.dark)} of the page dark with its text` : ""})`);
  }
  close() {
    return this.call("DELETE", "").catch(() => {});
  }
}


/** Stops every process the test started. */
export function stopAll() {
  for (const c of children) c.kill("SIGTERM");
}

/** Runs a test's main; on any failure, says why, stops what it started and exits 1. */
export function runTest(main) {
  main().catch((e) => {
    console.error(e);
    stopAll();
    process.exit(1);
  });
}
