// Helpers shared by the end-to-end tests (run.mjs: the browser UI; app.mjs: the Tauri app).
import { spawn } from "node:child_process";
import net from "node:net";
import os from "node:os";
import path from "node:path";

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
