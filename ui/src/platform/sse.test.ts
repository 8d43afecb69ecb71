// The fallback transport against a stand-in fetch: events are split right however the stream is cut,
// frames go out in order one POST at a time, a close event closes with its code, and the network
// falls back after two WebSockets fail to open and returns when a probe opens one.
import { describe, expect, it, vi } from "vitest";
import type { ServerMsg } from "../generated/ServerMsg";
import type { Network, Transport } from "./contract";
import { fallbackNetwork, httpBase, parseEvents, sseTransport } from "./sse";

describe("event stream parsing", () => {
  it("splits whole events and keeps a cut one for the next chunk", () => {
    const first = parseEvents('data: {"t":"pong"}\n\nevent: close\ndata: {"code":4003');
    expect(first.events).toEqual([{ event: "message", data: '{"t":"pong"}' }]);
    const second = parseEvents(first.rest + ',"reason":"removed"}\n\n');
    expect(second.events).toEqual([{ event: "close", data: '{"code":4003,"reason":"removed"}' }]);
    expect(second.rest).toBe("");
  });
  it("reads CRLF streams and skips comments", () => {
    expect(parseEvents(": keepalive\r\n\r\ndata: x\r\n\r\n").events).toEqual([{ event: "message", data: "x" }]);
  });
  it("finds the server's origin from its WebSocket URL", () => {
    expect(httpBase("wss://192.168.1.20:7443/v1/ws")).toBe("https://192.168.1.20:7443");
  });
});

/** A stand-in server: answers the open, streams what the test pushes, records POSTs. */
function fakeServer() {
  const posts: string[] = [];
  let push: (text: string) => void = () => {};
  let end: () => void = () => {};
  const state = { gets: 0, gone: false };
  const fetchFn = vi.fn(async (url: string, init?: RequestInit) => {
    const method = init?.method ?? "GET";
    if (method === "POST" && url.endsWith("/v1/sse")) {
      posts.push(`open ${String(init?.body)}`);
      return new Response(JSON.stringify({ link: "secret" }), { status: 201 });
    }
    if (method === "POST") {
      posts.push(String(init?.body));
      expect((init?.headers as Record<string, string>).authorization).toBe("Bearer secret");
      return new Response(null, { status: 204 });
    }
    if (method === "DELETE") return new Response(null, { status: 204 });
    state.gets++;
    if (state.gone) return new Response(null, { status: 404 });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (text) => controller.enqueue(new TextEncoder().encode(text));
        end = () => controller.close();
      },
    });
    return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  });
  return { fetchFn, posts, state, push: (t: string) => push(t), end: () => end() };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("sse transport", () => {
  it("says hello in the open, then streams frames and posts the client's in order", async () => {
    const server = fakeServer();
    const t = sseTransport("https://h:1", server.fetchFn as unknown as typeof fetch);
    const frames: ServerMsg[] = [];
    let closed: number | null = null;
    t.onFrame((f) => frames.push(f));
    t.onClose((code) => (closed = code));
    await new Promise<void>((r) => t.onOpen(r));
    expect(t.send({ t: "hello", v: 1, role: "student", code: "1", name: "A", device: "dddddddd" })).toBe(true);
    for (let i = 0; i < 5; i++) await tick();
    t.send({ t: "hand", up: true });
    t.send({ t: "ping", id: 3 });
    for (let i = 0; i < 5; i++) await tick();
    expect(server.posts[0]).toMatch(/^open \{"t":"hello"/);
    expect(server.posts.slice(1).join("\n")).toBe('{"t":"hand","up":true}\n{"t":"ping","id":3}');
    server.push('data: {"t":"pong","id":3,"time":1}\n\ndata: {"t":"te');
    server.push('acher","online":true}\n\n');
    for (let i = 0; i < 5; i++) await tick();
    expect(frames.map((f) => f.t)).toEqual(["pong", "teacher"]);
    server.push('event: close\ndata: {"code":4003,"reason":"removed"}\n\n');
    for (let i = 0; i < 5; i++) await tick();
    expect(closed).toBe(4003);
    expect(t.send({ t: "ping" })).toBe(false);
  });
  it("never posts more than the server takes at once: what waits goes in order, in several POSTs", async () => {
    const server = fakeServer();
    const t = sseTransport("https://h:1", server.fetchFn as unknown as typeof fetch);
    await new Promise<void>((r) => t.onOpen(r));
    t.send({ t: "hello", v: 1, role: "teacher", key: "k", device: "dddddddd" });
    for (let i = 0; i < 5; i++) await tick();
    // 40 notices of about 4 KiB each, queued at once: about 160 KiB, more than one POST may carry.
    const notice = "ن".repeat(2000);
    for (let i = 0; i < 40; i++) t.send({ t: "set", id: i, patch: { notice: `${i} ${notice}` } });
    for (let i = 0; i < 40; i++) await tick();
    const bodies = server.posts.slice(1);
    expect(bodies.length).toBeGreaterThan(2);
    for (const body of bodies) expect(new TextEncoder().encode(body).length).toBeLessThanOrEqual(64 * 1024);
    const ids = bodies.flatMap((b) => b.split("\n")).map((f) => (JSON.parse(f) as { id: number }).id);
    expect(ids).toEqual([...Array(40).keys()]);
  });
  it("sends again what the server was too busy to read, in order, and keeps the link", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "setInterval"] });
    const server = fakeServer();
    let busy = 1;
    const fetchFn = vi.fn(async (url: string, init?: RequestInit) => {
      if (init?.method === "POST" && url.endsWith("/send") && busy-- > 0) return new Response(null, { status: 503 });
      return server.fetchFn(url, init);
    });
    const t = sseTransport("https://h:1", fetchFn as unknown as typeof fetch);
    let closed: number | null = null;
    t.onClose((code) => (closed = code));
    await vi.advanceTimersByTimeAsync(1);
    t.send({ t: "hello", v: 1, role: "student", code: "1", name: "A", device: "dddddddd" });
    await vi.advanceTimersByTimeAsync(1);
    t.send({ t: "hand", up: true });
    await vi.advanceTimersByTimeAsync(1);
    t.send({ t: "ping", id: 4 });
    await vi.advanceTimersByTimeAsync(1100);
    expect(closed).toBeNull();
    expect(server.posts.slice(1).join("\n")).toBe('{"t":"hand","up":true}\n{"t":"ping","id":4}');
    vi.useRealTimers();
  });
  it("asks for a broken event stream again, and closes with 1006 once the link is gone", async () => {
    // Fake clocks: the transport asks again after a back-off, which the test moves past, not waits.
    vi.useFakeTimers({ toFake: ["setTimeout", "setInterval"] });
    const step = () => vi.advanceTimersByTimeAsync(1);
    const server = fakeServer();
    const t = sseTransport("https://h:1", server.fetchFn as unknown as typeof fetch);
    let closed: number | null = null;
    const frames: ServerMsg[] = [];
    t.onFrame((f) => frames.push(f));
    t.onClose((code) => (closed = code));
    await step();
    t.send({ t: "hello", v: 1, role: "teacher", key: "k", device: "dddddddd" });
    for (let i = 0; i < 5; i++) await step();
    server.end(); // a proxy cut the response
    await vi.advanceTimersByTimeAsync(400);
    expect(server.state.gets).toBe(2);
    expect(closed).toBeNull();
    expect(server.posts.at(-1)).toBe('{"t":"resync"}'); // a snapshot covers what the break lost
    server.push('data: {"t":"teacher","online":true}\n\n');
    for (let i = 0; i < 5; i++) await step();
    expect(frames.map((f) => f.t)).toEqual(["teacher"]);
    server.state.gone = true;
    server.end();
    await vi.advanceTimersByTimeAsync(400);
    expect(closed).toBe(1006);
    vi.useRealTimers();
  });
});

/** A transport that opens (and hears a frame) or fails as told. */
function fakeTransport(kind: string, log: string[], opens: boolean): Transport {
  let opened = () => {};
  let frame: (f: ServerMsg) => void = () => {};
  let closed: (code: number, reason: string) => void = () => {};
  setTimeout(() => {
    if (!opens) return closed(1006, "");
    opened();
    frame({ t: "teacher", online: true });
  }, 0);
  log.push(kind);
  return {
    send: () => true,
    close: (code = 1000) => closed(code, ""),
    onOpen: (cb) => void (opened = cb),
    onFrame: (cb) => void (frame = cb),
    onClose: (cb) => void (closed = cb),
  };
}

describe("fallback network", () => {
  const base: Network = { connect: () => fakeTransport("base", [], true), online: () => true, onOnline: () => () => {} };

  it("falls back after two WebSockets in a row fail to open, and returns when a probe opens one", async () => {
    vi.useFakeTimers();
    const log: string[] = [];
    let wsWorks = false;
    const network = fallbackNetwork(base, {
      webSocket: () => fakeTransport("ws", log, wsWorks),
      sse: () => fakeTransport("sse", log, true),
      probe: async () => wsWorks,
    });
    for (let i = 0; i < 2; i++) {
      const t = network.connect();
      const closed = new Promise<number>((r) => t.onClose(r));
      await vi.runOnlyPendingTimersAsync();
      expect(await closed).toBe(1006);
    }
    expect(network.mode()).toBe("sse");
    const fallback = network.connect();
    const closed = new Promise<number>((r) => fallback.onClose(r));
    await vi.advanceTimersByTimeAsync(30000);
    expect(network.mode()).toBe("sse"); // the probe failed: stay
    wsWorks = true;
    await vi.advanceTimersByTimeAsync(30000);
    expect(network.mode()).toBe("sse"); // one probe is not enough
    await vi.advanceTimersByTimeAsync(30000);
    expect(await closed).toBe(1012);
    expect(network.mode()).toBe("ws");
    network.connect();
    expect(log).toEqual(["ws", "ws", "sse", "ws"]);
    vi.useRealTimers();
  });
  it("a WebSocket that opens but passes nothing counts as failed", async () => {
    vi.useFakeTimers();
    const log: string[] = [];
    const network = fallbackNetwork(base, {
      webSocket: () => {
        const t = fakeTransport("ws", log, false);
        return t;
      },
      sse: () => fakeTransport("sse", log, true),
      probe: async () => false,
    });
    for (let i = 0; i < 2; i++) {
      network.connect();
      await vi.runOnlyPendingTimersAsync();
    }
    expect(network.mode()).toBe("sse");
    vi.useRealTimers();
  });
  it("one failure is not enough, and a WebSocket that opened resets the count", async () => {
    vi.useFakeTimers();
    const log: string[] = [];
    const outcomes = [false, true, false];
    const network = fallbackNetwork(base, {
      webSocket: () => fakeTransport("ws", log, outcomes.shift() ?? true),
      sse: () => fakeTransport("sse", log, true),
      probe: async () => false,
    });
    for (let i = 0; i < 3; i++) {
      network.connect();
      await vi.runOnlyPendingTimersAsync();
    }
    expect(network.mode()).toBe("ws");
    vi.useRealTimers();
  });
});
