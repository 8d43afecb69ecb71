// Two network namespaces joined by a veth pair, made by a test and removed when it ends (root only):
// `a` serves, `b` is the students' side. Offloads are off on both ends, so that one dropped packet is
// one lost segment, and `loss`/`blackhole` drop packets where they arrive in `b` (never in a sender's
// OUTPUT chain: TCP would see a local error, which no radio loss is).
import { execFileSync } from "node:child_process";

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
