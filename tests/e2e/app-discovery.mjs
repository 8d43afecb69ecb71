// The student app finds a classroom by mDNS and joins it with one tap, with real multicast packets
// between two network namespaces this test makes (and removes): `lectern serve` announces in one, and
// the student app (its WebDriver, its window on the root namespace's Xvfb) browses in the other. The
// student types only a name, once; the teacher (a protocol-level bot in the server's namespace) lets
// them in. No packet leaves the two namespaces. Needs root (CI runs as root); elsewhere it says so and
// skips.
//
//   node tests/e2e/app-discovery.mjs
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bin, check, finish, until } from "./lib.mjs";
import { netPair, serveIn } from "./netns.mjs";
import { App, children, driver, runTest, screenshotsTo, stopAll } from "./webdriver.mjs";

const NAME = "Yusuf";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.env.E2E_OUT ?? path.resolve(here, "../../target/e2e");
async function main() {
  if (process.getuid?.() !== 0) {
    console.log("skipping: network namespaces need root (CI runs as root)");
    return;
  }
  mkdirSync(out, { recursive: true });
  screenshotsTo(out);
  const net = netPair("ap", 214);
  const dirs = [0, 1, 2].map(() => mkdtempSync(path.join(os.tmpdir(), "lectern-disc-")));
  let app;
  try {
    // The classroom, announcing on its veth end only.
    const served = serveIn(net.a, ["--data-dir", dirs[0], "--listen", `${net.addrA}:0`, "--mdns-interface", net.va,
      "--name", "Room 12", "--title", "Quran, level 2"]);
    const server = served.child;
    children.push(server);
    const ready = await served.ready;

    // The student app in the other namespace: its tauri-driver listens there, so this test talks to
    // it through a forwarder the namespace runs (`ip netns exec` + node's own TCP relay).
    const port = 4460;
    const relay = spawn("ip", ["netns", "exec", net.b, process.execPath, "-e", `
      const net = require("node:net");
      net.createServer((c) => { const u = net.connect(${port}, "127.0.0.1"); c.pipe(u).pipe(c); u.on("error", () => c.destroy()); c.on("error", () => u.destroy()); })
        .listen("/tmp/lectern-wd-${process.pid}.sock");
    `], { stdio: "ignore" });
    children.push(relay);
    const sock = `/tmp/lectern-wd-${process.pid}.sock`;
    await driver(port, { LECTERN_LOG: "warn" }, ["ip", "netns", "exec", net.b], sock);
    app = await App.open(port, ["--mode", "student", "--data-dir", dirs[1]], sock);
    const found = await until("the student app lists the classroom found by mDNS", () =>
      app.poll("const b = document.querySelector('.class-item'); return b ? b.textContent : null"), 30000);
    check(found.includes("Quran, level 2") && found.includes("Room 12"), `the class list shows the lesson and the classroom: "${found}"`);
    await app.screenshot("app-student-classes-en.png");
    // The teacher, in the classroom's namespace, lets in whoever asks under the student's name.
    const bot = spawn("ip", ["netns", "exec", net.a, process.execPath, path.join(here, "teacher-bot.mjs"), ready.ws,
      ready.fingerprint, ready.teacher_key, NAME], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(bot);
    const botSaid = [];
    bot.stdout.on("data", (d) => botSaid.push(...String(d).split("\n").filter(Boolean).map((l) => JSON.parse(l))));
    await until("the teacher is in", () => botSaid.some((e) => e.event === "welcome"), 15000);

    await app.click(".class-item");
    // The form puts the cursor in the name field once it has read what the device remembers; typing
    // before that could land in the wrong field. There is no code to type.
    await until("the join form, asking only for a name", () =>
      app.poll("return !document.querySelector('#join')?.hidden && document.activeElement?.id === 'name'"), 60000);
    check(!(await app.poll("return document.querySelector('#code').offsetParent !== null")), "joining a class found on the network asks for no code");
    await app.type("#name", NAME);
    await app.click("#join-button");
    await until("the teacher lets the student in", () => botSaid.some((e) => e.event === "admitted" && e.name === NAME), 30000);
    check(true, "the student asked to join and the teacher let them in");
    await until("the student app follows the lesson, pinned to the announced fingerprint", () =>
      app.poll("return document.querySelector('#status')?.dataset.status === 'connected' && document.querySelector('.page')?.dataset.page === '1'"), 30000)
      .catch(async (e) => {
        await app.screenshot("app-discovery-failed.png", { raw: true });
        console.error("join error:", await app.poll("return document.querySelector('#join-error')?.textContent + ' | ' + document.querySelector('#status')?.dataset.status + ' | ' + location.href"));
        throw e;
      });
    check(true, "the student app found the classroom in another namespace and joined it");

    // The name is typed once: back at the class list, one tap rejoins, with nothing to type.
    await app.close();
    app = await App.open(port, ["--mode", "student", "--data-dir", dirs[1]], sock);
    await until("the class list again", () => app.poll("return document.querySelector('.class-item') ? true : null"), 30000);
    await app.click(".class-item");
    await until("one tap rejoins the lesson", () =>
      app.poll("return document.querySelector('#status')?.dataset.status === 'connected' && document.querySelector('.page')?.dataset.page === '1'"), 30000);
    const asked = botSaid.filter((e) => e.event === "admitted").length;
    check(asked === 1, `a second visit joins with one tap and nothing typed, by its token, without asking again (${asked} knock)`);

    // An impostor takes the classroom's name, address and port with another certificate (the real
    // server is gone). The student app, pinned to the announced fingerprint, refuses it and says why.
    server.kill("SIGTERM");
    await until("the student app notices the classroom is gone", () =>
      app.poll("return document.querySelector('#status')?.dataset.status !== 'connected'"), 30000);
    const impostor = spawn("ip", ["netns", "exec", net.a, bin, "serve", "--json", "--data-dir", dirs[2], "--listen",
      new URL(ready.http).host, "--mdns-interface", net.va, "--name", "Room 12", "--title", "Quran, level 2"], { stdio: ["ignore", "ignore", "inherit"] });
    children.push(impostor);
    const said = await until("the student app refuses the impostor's certificate", () =>
      app.poll("const s = document.querySelector('#stopped'); return s && !s.hidden ? document.querySelector('#stopped-text').textContent : null"), 60000);
    check(/certificate/.test(said), `a server announcing the same name with another certificate is refused: "${said}"`);
  } finally {
    await app?.close();
    stopAll();
    net.remove();
    rmSync(`/tmp/lectern-wd-${process.pid}.sock`, { force: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  finish(out);
}

runTest(main);
