// The Socket.IO peer of the benchmark: a teacher's "set" is stamped with the next seq and emitted to the
// lesson's room with io.to(room).emit, over the websocket transport and TLS, as a team would write it.
// Usage: node server.js CERT_DIR [HOST [PORT]]  -> prints {"ready":true,"host":H,"port":N} (HOST: 127.0.0.1)
//
// With REDIS_URL set, the node joins others through Socket.IO's Redis adapter (@socket.io/redis-adapter,
// the recipe for more than one node): a change emitted on the teacher's node reaches the students of
// every node, as Lectern's relays serve students at home (tests/wan/bench.sh).
"use strict";
const fs = require("fs");
const path = require("path");
const https = require("https");
const { Server } = require("socket.io");

const dir = process.argv[2];
const host = process.argv[3] ?? "127.0.0.1";
const port = Number(process.argv[4] ?? 0);
const httpsServer = https.createServer({
  cert: fs.readFileSync(path.join(dir, "cert.pem")),
  key: fs.readFileSync(path.join(dir, "key.pem")),
});
const io = new Server(httpsServer, { transports: ["websocket"], serveClient: false, maxHttpBufferSize: 16 * 1024 });
let seq = 0;
const state = { page: 1, pos: null };

io.on("connection", (socket) => {
  socket.on("hello", (role) => {
    socket.join("lesson");
    socket.emit("welcome", { seq, state, role });
  });
  socket.on("set", (msg) => {
    if (!msg || typeof msg !== "object" || typeof msg.patch !== "object") return;
    seq += 1;
    Object.assign(state, msg.patch);
    io.to("lesson").emit("patch", { seq, time: Date.now(), patch: msg.patch });
  });
});

async function start() {
  if (process.env.REDIS_URL) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  httpsServer.listen(port, host, () => {
    process.stdout.write(JSON.stringify({ ready: true, host, port: httpsServer.address().port }) + "\n");
  });
}
start().catch((e) => {
  console.error(e);
  process.exit(1);
});
process.on("SIGINT", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
