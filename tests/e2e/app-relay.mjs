// The student app at home, through a relay (docs/RELAY.md), under Xvfb through WebDriver: a real
// redis-server, `lectern serve --redis --relay-url`, and `lectern relay` with a certificate from a
// district's own authority (made here with openssl), which the app trusts from the
// `trusted-authorities.pem` in its data folder. The app opens the link for students at home (the
// relay's address, room, code and the teacher's public key, no fingerprint: the relay is checked by
// name), joins, draws the lesson's PDF from pieces its Rust checks against the signed manifest, shows
// the room's title the teacher signed, and follows a signed page turn. Its class list says it trusts
// the district's authority, and its button forgets it: the same link is then refused, and the app
// says why.
//
//   node tests/e2e/app-relay.mjs
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { check, finish, until } from "./lib.mjs";
import { relayRig } from "./relayrig.mjs";
import { App, children, driver, runTest, screenshotsTo, stopAll } from "./webdriver.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.env.E2E_OUT ?? path.resolve(here, "../../target/e2e");

/** A district's authority, and a certificate it signs for the relay at 127.0.0.1 (`cert.pem` and
 * `key.pem` in `tlsDir`). Returns the authority's certificate file. */
function districtAuthority(dir, tlsDir) {
  const ssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
    "-days", "2", "-subj", "/CN=District 9 schools authority",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(tlsDir, "key.pem"),
    "-out", "relay.csr", "-subj", "/CN=relay.district9.example");
  writeFileSync(path.join(dir, "relay.ext"),
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ssl("x509", "-req", "-in", "relay.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
    "-extfile", "relay.ext", "-out", path.join(tlsDir, "cert.pem"));
  return path.join(dir, "ca.pem");
}

const studentPage = "return document.querySelector('#status')?.dataset.status === 'connected' ? document.querySelector('.page')?.dataset.page ?? null : null";

async function main() {
  mkdirSync(out, { recursive: true });
  screenshotsTo(out);
  const dir = mkdtempSync(path.join(os.tmpdir(), "lectern-app-relay-"));
  const tlsDir = path.join(dir, "relay-tls");
  mkdirSync(tlsDir);
  let app;
  let teacher;
  try {
    const authority = districtAuthority(dir, tlsDir);
    const { base, ready, pk } = await relayRig(dir, children, ["--tls", tlsDir]);
    const link = `${base}/join#room=${ready.room}&code=${ready.code}&pk=${pk}`;

    teacher = new WebSocket(ready.ws, "lectern.v1", { rejectUnauthorized: false });
    await new Promise((r) => teacher.on("open", r));
    teacher.send(JSON.stringify({ t: "hello", v: 1, role: "teacher", key: ready.teacher_key, device: "e2e-teacher-01" }));

    const port = 4470;
    await driver(port, { LECTERN_LOG: "warn" });
    const home = path.join(dir, "app-home");
    mkdirSync(home);
    copyFileSync(authority, path.join(home, "trusted-authorities.pem"));
    // The class list says what the app trusts besides the web's authorities, and can forget it.
    app = await App.open(port, ["--mode", "student", "--data-dir", home]);
    const trusted = await until("the class list says which authorities the app trusts", () =>
      app.poll("const s = document.querySelector('#authorities-state'); return s && s.offsetParent !== null && s.textContent ? s.textContent : null"), 60000);
    check(/school district/.test(trusted) && (await app.poll("return !document.querySelector('#forget-authorities').hidden")),
      `the app says it trusts the district's authority, and offers to stop: "${trusted}"`);
    // Two frames painted after the text came, so that the picture shows it (WebKitGTK under Xvfb can
    // hand WebDriver an older frame).
    await app.exec("return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))");
    await app.screenshot("app-student-authorities-en.png");
    await app.close();
    app = await App.open(port, ["--mode", "student", "--data-dir", home, link]);
    await app.place(0, 0, 1000, 700);
    await until("the join form asks only for the name", () =>
      app.poll("return !document.querySelector('#join')?.hidden && document.activeElement?.id === 'name'"), 60000);
    await app.type("#name", "Maryam at home");
    await app.click("#join-button");
    await until("the student app draws the lesson's first page through the relay", async () => (await app.poll(studentPage)) === "1", 60000)
      .catch(async (e) => {
        await app.screenshot("app-relay-failed.png", { raw: true });
        console.error("app state:", await app.poll("return document.querySelector('#stopped-text')?.textContent + ' | ' + document.querySelector('#status')?.dataset.status"));
        throw e;
      });
    check(true, "the student app joins through a relay whose certificate a district's authority signed, trusted from its data folder");
    const title = await until("the room's title the teacher signed", () =>
      app.poll("const t = document.querySelector('#room-title')?.textContent; return t ? t : null"), 15000);
    check(title === "Quran, level 2", `the room's title, signed by the teacher, is shown behind the relay ("${title}")`);
    teacher.send(JSON.stringify({ t: "set", id: 1, patch: { page: 3 } }));
    await until("the student app follows the signed page turn", async () => (await app.poll(studentPage)) === "3", 20000);
    await app.screenshot("app-relay-student-en.png", { page: true });
    check(true, "the teacher's signed page turn reaches the student app through the relay, and its page is drawn");
    // What the view asked Rust for: the signed manifest, then ranges Rust checks piece by piece
    // against it (`doc_range` with `checked`); never the document whole, never a range unchecked.
    const asked = await app.poll("return window.lectern?.docs ?? []");
    check(asked[0] === "manifest" && asked.length > 1 && asked.slice(1).every((a) => a.startsWith("checked ")),
      `the document comes from the signed manifest and checked ranges only: ${JSON.stringify(asked.slice(0, 6))}${asked.length > 6 ? ` (+${asked.length - 6})` : ""}`);
    await app.close();

    // The app stops trusting the authority (the class list's button), and in the same run the same
    // link is refused, with the reason.
    app = await App.open(port, ["--mode", "student", "--data-dir", home]);
    await until("the button to stop trusting", () => app.poll("return document.querySelector('#forget-authorities')?.offsetParent ? true : null"), 60000);
    await app.click("#forget-authorities");
    const none = await until("the class list says the web's authorities only", () =>
      app.poll("const s = document.querySelector('#authorities-state'); return s.dataset.t === 'authoritiesNone' ? s.textContent : null"), 15000);
    check(!existsSync(path.join(home, "trusted-authorities.pem")), `forgotten, and the file is gone: "${none}"`);
    await app.type("#link", link);
    await app.click("#link-form button[type=submit]");
    const said = await until("the app, in the same run, refuses the relay's certificate", () =>
      app.poll("const s = document.querySelector('#stopped'); return s && !s.hidden ? document.querySelector('#stopped-text').textContent : null"), 60000);
    check(/does not trust/.test(said) && (await app.poll("return document.querySelector('.page[data-page]') === null")),
      `once forgotten, the relay is refused and nothing drawn: "${said}"`);
    await app.screenshot("app-relay-untrusted-en.png");
  } finally {
    teacher?.close();
    await app?.close();
    stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  finish(out);
}

runTest(main);
