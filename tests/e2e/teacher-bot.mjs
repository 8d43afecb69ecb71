// A protocol-level teacher for tests that have no console to click: it joins with the teacher key
// over TLS pinned to the server's fingerprint, lets in every student who asks to join under one of
// the given names, and prints one JSON line per thing it did. Run it where the server is reachable
// (inside a test's network namespace, say):
//
//   node tests/e2e/teacher-bot.mjs wss://HOST:PORT/v1/ws FINGERPRINT TEACHER_KEY NAME...
import { createHash } from "node:crypto";
import WebSocket from "ws";

const [url, fingerprint, key, ...names] = process.argv.slice(2);
if (!url || !fingerprint || !key) {
  console.error("usage: teacher-bot.mjs WS_URL FINGERPRINT TEACHER_KEY NAME...");
  process.exit(2);
}
const say = (o) => console.log(JSON.stringify(o));

// The certificate is self-signed: trust it by its fingerprint (PROTOCOL.md §2), as native clients do,
// and check it before the key is sent.
const ws = new WebSocket(url, "lectern.v1", { rejectUnauthorized: false });
let pinned = false;
ws.on("upgrade", (res) => {
  const fp = createHash("sha256").update(res.socket.getPeerCertificate().raw).digest("base64url");
  pinned = fp === fingerprint;
  if (!pinned) {
    say({ event: "error", message: `certificate ${fp} is not the pinned ${fingerprint}` });
    ws.terminate();
  }
});
let id = 1;
ws.on("open", () => pinned && ws.send(JSON.stringify({ t: "hello", v: 1, role: "teacher", key, device: "teacher-bot-0001" })));
ws.on("message", (data) => {
  const msg = JSON.parse(String(data));
  if (msg.t === "welcome") say({ event: "welcome", room: msg.room });
  if (msg.t === "knocks") {
    const wanted = msg.knocks.filter((k) => names.includes(k.name));
    if (wanted.length) {
      ws.send(JSON.stringify({ t: "admit", id: id++, knocks: wanted.map((k) => k.id) }));
      for (const k of wanted) say({ event: "admitted", name: k.name });
    }
  }
});
ws.on("close", (code, reason) => {
  say({ event: "closed", code, reason: String(reason) });
  process.exit(0);
});
ws.on("error", (e) => {
  say({ event: "error", message: e.message });
  process.exit(1);
});
