// What the relay end-to-end tests share: a real redis-server, `lectern relay`, and a teacher's server
// bridged to them (`lectern serve --redis --relay-url`), all on loopback, and the teacher's public key
// that a link for students at home carries.
import { spawn } from "node:child_process";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { bin, startServer } from "./lib.mjs";

/** A free loopback port. */
export const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** The public key (base64url) of an Ed25519 seed. */
export function publicOf(seed) {
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  return createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" })).export({ format: "jwk" }).x;
}

/** A child's first JSON line on stdout. */
function readyLine(child) {
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const line = buf.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line));
    });
    child.on("exit", (c) => reject(new Error(`exited with ${c}`)));
  });
}

/**
 * Redis, a relay (with `relayArgs`, e.g. `--tls DIR`) and the teacher's server, in `dir`; every child
 * is pushed onto `children` for the caller to stop. Returns the relay's base URL, the server's ready
 * line, and the teacher's public key.
 */
export async function relayRig(dir, children, relayArgs = []) {
  const port = await freePort();
  const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  children.push(redis);
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await new Promise((r) => net.connect(port, "127.0.0.1").on("connect", function () { this.end(); r(true); }).on("error", () => r(false)))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const relay = spawn(bin, ["relay", "--json", "--redis", url, "--listen", "127.0.0.1:0", ...relayArgs], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(relay);
  const relayReady = await readyLine(relay);
  const base = `https://${relayReady.addr}`;
  const teacherDir = path.join(dir, "teacher");
  const { child: server, ready } = await startServer(teacherDir, ["--redis", url, "--relay-url", base]);
  children.push(server);
  const pk = publicOf(readFileSync(path.join(teacherDir, "signing.key")));
  return { base, ready, pk };
}
