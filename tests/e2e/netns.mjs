// Two network namespaces joined by a veth pair, made by a test and removed when it ends (root only):
// `a` serves, `b` is the students' side. Offloads are off on both ends, so that one dropped packet is
// one lost segment, and `loss`/`blackhole` drop packets where they arrive in `b` (never in a sender's
// OUTPUT chain: TCP would see a local error, which no radio loss is).
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { bin } from "./lib.mjs";

const ip = (...args) => execFileSync("ip", args, { stdio: "ignore" });
const inNs = (ns, ...cmd) => execFileSync("ip", ["netns", "exec", ns, ...cmd], { stdio: "ignore" });

/** Makes the pair; `tag` keeps names apart between tests, `net` is the second octet of 10.x.y.0/24. */
export function netPair(tag, net) {
  const id = process.pid % 10000;
  const subnet = (process.pid % 200) + 20;
  const p = { a: `lc${tag}${id}a`, b: `lc${tag}${id}b`, va: `l${tag}${id}a`, vb: `l${tag}${id}b`, addrA: `10.${net}.${subnet}.1`, addrB: `10.${net}.${subnet}.2` };
  ip("netns", "add", p.a);
  ip("netns", "add", p.b);
  ip("link", "add", p.va, "netns", p.a, "type", "veth", "peer", "name", p.vb, "netns", p.b);
  ip("-n", p.a, "addr", "add", `${p.addrA}/24`, "dev", p.va);
  ip("-n", p.b, "addr", "add", `${p.addrB}/24`, "dev", p.vb);
  for (const [ns, dev] of [[p.a, p.va], [p.b, p.vb], [p.a, "lo"], [p.b, "lo"]]) ip("-n", ns, "link", "set", dev, "up");
  p.offloadsOff = () => {
    for (const [ns, dev] of [[p.a, p.va], [p.b, p.vb]]) inNs(ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off");
  };
  /** Drops the fraction `prob` of what `b` receives. */
  p.loss = (prob) => {
    inNs(p.b, "iptables", "-F", "INPUT");
    inNs(p.b, "iptables", "-A", "INPUT", "-i", p.vb, "-m", "statistic", "--mode", "random", "--probability", String(prob), "-j", "DROP");
  };
  /** Drops everything `b` receives: a dead link no socket has noticed. */
  p.blackhole = () => {
    inNs(p.b, "iptables", "-F", "INPUT");
    inNs(p.b, "iptables", "-A", "INPUT", "-i", p.vb, "-j", "DROP");
  };
  p.remove = () => {
    for (const ns of [p.a, p.b]) {
      try {
        ip("netns", "del", ns);
      } catch {
        // already gone
      }
    }
  };
  return p;
}

/** `lectern serve --json` inside namespace `ns`; resolves with the child and its ready line. */
export function serveIn(ns, args, env = {}) {
  const child = spawn("ip", ["netns", "exec", ns, bin, "serve", "--json", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, LECTERN_LOG: "warn", ...env },
  });
  const ready = new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const line = buf.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line));
    });
    child.on("exit", (c) => reject(new Error(`lectern serve exited with ${c}`)));
  });
  return { child, ready };
}

/** Debian's Chromium launched inside namespace `ns` (through a wrapper in `dir` that keeps
 * playwright's pipe descriptors), headless. */
export function chromiumIn(ns, dir) {
  const wrapper = path.join(dir, "chromium-in-namespace");
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${process.env.CHROMIUM ?? "/usr/bin/chromium"} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return chromium.launch({
    executablePath: wrapper,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
}
