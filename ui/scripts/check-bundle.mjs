// Fails when the browser's bundle (dist/, which the lectern binary serves to every student) carries any
// of the Tauri app's code: the pages get their platform when they are built (vite.config.ts), and a
// page that imported platform/tauri.ts or @tauri-apps/* again would bring it back without a sign.
// The same markers must find the app's bundle (dist-app/), or they have stopped meaning anything.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ui = fileURLToPath(new URL("..", import.meta.url));

/** What Tauri's JavaScript API leaves in a bundle (its globals, its IPC origin, its event plugin's
 * commands, its package name), and the app's own IPC command, in case the API's names change. */
const MARKERS = ["__TAURI_", "@tauri-apps", "ipc.localhost", "plugin:event|", "keep_doc"];

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));

/** The files of a build that hold a marker, with the markers each holds (the .br and .gz copies are
 * the same bytes compressed). */
function tauriCode(dir) {
  return walk(dir)
    .filter((f) => !/\.(br|gz)$/.test(f))
    .map((f) => [`ui/${relative(ui, f)}`, MARKERS.filter((m) => readFileSync(f, "latin1").includes(m))])
    .filter(([, found]) => found.length > 0);
}

const web = join(ui, "dist");
if (!existsSync(join(web, "index.html"))) {
  console.error("check-bundle: ui/dist has no index.html; run `vite build` first");
  process.exit(1);
}
const found = tauriCode(web);
if (found.length > 0) {
  for (const [file, markers] of found) console.error(`check-bundle: ${file} holds Tauri code (${markers.join(", ")})`);
  console.error("check-bundle: a browser page imports platform/app.ts or platform/tauri.ts; only app.html's may");
  process.exit(1);
}

const app = join(ui, "dist-app");
if (existsSync(app) && tauriCode(app).length === 0) {
  console.error("check-bundle: no marker finds Tauri's code in ui/dist-app either: the markers need updating");
  process.exit(1);
}

const scripts = walk(join(web, "assets")).filter((f) => f.endsWith(".js"));
const size = (f) => (existsSync(f) ? statSync(f).size : 0);
const raw = scripts.reduce((n, f) => n + size(f), 0);
const br = scripts.reduce((n, f) => n + (size(`${f}.br`) || size(f)), 0);
console.log(`check-bundle: no Tauri code in ui/dist; its JavaScript is ${raw} bytes (${br} with brotli)`);
