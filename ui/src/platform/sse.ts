// The fallback transport (docs/PROTOCOL-ADDITIONS.md, I): the lesson's frames as server-sent events
// on a long GET, and the client's in POSTs, for networks and browsers that break WebSockets (a
// school proxy that strips `Upgrade`; iPad Safari refusing `wss://` to a self-signed server). The
// link's secret travels in a header, never in a URL. `fallbackNetwork` picks the transport: the
// WebSocket while it works, this after two WebSockets in a row failed to open, and the WebSocket
// again as soon as a probe opens one.
import type { ServerMsg } from "../generated/ServerMsg";
import type { Network, Transport } from "./contract";
import { parseFrame, webSocketTransport, wsUrl } from "./websocket";

/** How often an idle link tells the server it is still here (the server closes links unheard for
 * three heartbeats, at least 30 s). */
const KEEPALIVE_MS = 5000;
/** An event stream silent this long is taken for broken and asked for again (the server sends a
 * comment every heartbeat, 10 s by default). */
const STALE_MS = 35000;
/** The most a POST to `/v1/sse/send` carries (the server takes 64 KiB; frames are at most 16 KiB). */
const SEND_BYTES = 60 * 1024;
const utf8 = new TextEncoder();
/** How long frames the server was too busy to read wait before they go again (its Retry-After). */
const SEND_RETRY_MS = 1000;

/** One event of a `text/event-stream` (only `event` and `data` lines matter here). */
export interface SseEvent {
  event: string;
  data: string;
}

/** Splits a stream's text into whole events; what is left over (an event cut in two) is returned
 * to be prefixed to the next chunk. */
export function parseEvents(text: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  const blocks = text.replace(/\r\n/g, "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length) events.push({ event, data: data.join("\n") });
  }
  return { events, rest };
}

/** The server's origin for a WebSocket URL (`wss://h:p/v1/ws` → `https://h:p`). */
export function httpBase(wsUrl: string): string {
  const url = new URL(wsUrl.replace(/^ws/, "http"));
  return url.origin;
}

/** Opens a lesson connection over server-sent events and POSTs to the server at `base`. */
export function sseTransport(base: string, fetchFn: typeof fetch = fetch): Transport {
  let opened: () => void = () => {};
  let received: (frame: ServerMsg) => void = () => {};
  let closed: (code: number, reason: string) => void = () => {};
  const abort = new AbortController();
  let link: string | null = null;
  let opening = false;
  let done = false;
  let posting = false;
  const outbox: string[] = [];
  let keepalive: ReturnType<typeof setInterval> | null = null;
  let reader: ReadableStreamDefaultReader<string> | null = null;
  let lastChunk = Date.now();
  let gets = 0;
  const auth = () => ({ authorization: `Bearer ${link}` });

  const finish = (code: number, reason: string) => {
    if (done) return;
    done = true;
    if (keepalive) clearInterval(keepalive);
    abort.abort();
    if (link) void fetchFn(`${base}/v1/sse`, { method: "DELETE", headers: auth() }).catch(() => {});
    closed(code, reason);
  };

  const open = async (hello: string) => {
    try {
      const res = await fetchFn(`${base}/v1/sse`, { method: "POST", body: hello, signal: abort.signal });
      if (!res.ok) return finish(res.status === 429 ? 4029 : 1006, await res.text());
      link = String(((await res.json()) as { link: string }).link);
      keepalive = setInterval(() => {
        void post(true);
        // A stream that went silent (its connection died without a word): ask for it again.
        if (reader && Date.now() - lastChunk > STALE_MS) void reader.cancel().catch(() => {});
      }, KEEPALIVE_MS);
      void listen();
      void post(false);
    } catch (e) {
      finish(1006, e instanceof Error ? e.message : String(e));
    }
  };

  // A stream that breaks while the link lives (a proxy cut a long response) is asked for again, a
  // few times: the server kept what came meanwhile. `409`: the server has not seen the old one go yet.
  let breaks = 0;
  const again = (why: string) => {
    if (done) return;
    if (++breaks > 3) return finish(1006, why);
    setTimeout(() => void listen(), 250 * breaks);
  };
  const listen = async () => {
    try {
      const res = await fetchFn(`${base}/v1/sse`, { headers: { ...auth(), accept: "text/event-stream" }, signal: abort.signal });
      if (res.status === 409) return again("the event stream is held elsewhere");
      if (!res.ok || !res.body) return finish(1006, `the event stream was refused (${res.status})`);
      // Frames handed to a stream that then broke may be lost: a snapshot after each new stream.
      if (gets++ > 0) {
        outbox.push(JSON.stringify({ t: "resync" }));
        void post(false);
      }
      reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      lastChunk = Date.now();
      let rest = "";
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended || done) break;
        lastChunk = Date.now();
        const parsed = parseEvents(rest + value);
        rest = parsed.rest;
        for (const ev of parsed.events) {
          if (ev.event === "close") {
            const c = JSON.parse(ev.data) as { code?: number; reason?: string };
            return finish(Number(c.code) || 1006, String(c.reason ?? ""));
          }
          const frame = parseFrame(ev.data);
          if (frame && !done) {
            breaks = 0;
            received(frame);
          }
        }
      }
      reader = null;
      again("the event stream ended");
    } catch (e) {
      reader = null;
      if (!done) again(e instanceof Error ? e.message : String(e));
    }
  };

  /** Sends what waits, in order, one POST at a time; `beat` sends even when nothing waits. */
  const post = async (beat: boolean) => {
    if (posting || !link || done || (!beat && outbox.length === 0)) return;
    posting = true;
    // At most SEND_BYTES a POST (the server refuses a larger body); the rest goes in the next one.
    let take = 0;
    let size = 0;
    while (take < outbox.length && (take === 0 || size + utf8.encode(outbox[take]).length + 1 <= SEND_BYTES)) {
      size += utf8.encode(outbox[take]).length + 1;
      take++;
    }
    const batch = outbox.splice(0, take);
    let retry = false;
    try {
      const res = await fetchFn(`${base}/v1/sse/send`, {
        method: "POST",
        body: batch.join("\n"),
        headers: auth(),
        signal: abort.signal,
      });
      // 503: the server is reading too many requests at once; these frames go again, first.
      retry = res.status === 503;
      if (retry) outbox.unshift(...batch);
      else if (!res.ok) finish(1006, "the server has lost this connection");
    } catch {
      finish(1006, "cannot reach the server");
    }
    posting = false;
    if (retry) setTimeout(() => void post(false), SEND_RETRY_MS);
    else if (outbox.length) void post(false);
  };

  setTimeout(() => opened(), 0);
  return {
    send(frame) {
      if (done) return false;
      const text = JSON.stringify(frame);
      if (!link && !opening) {
        opening = true;
        void open(text);
      } else {
        outbox.push(text);
        void post(false);
      }
      return true;
    },
    close(code = 1000, reason = "") {
      finish(code, reason);
    },
    onOpen: (cb) => void (opened = cb),
    onFrame: (cb) => void (received = cb),
    onClose: (cb) => void (closed = cb),
  };
}

/** What `fallbackNetwork` needs to open each kind of connection. */
export interface Openers {
  webSocket(url: string): Transport;
  sse(url: string): Transport;
  /** Whether a WebSocket to `url` opens now (a probe, closed at once). */
  probe(url: string): Promise<boolean>;
}

/** After this many WebSockets in a row failed (closed 1006 before a single frame came: refused, or
 * opened by a proxy that then passes nothing), the fallback is used. */
const FAILURES_BEFORE_FALLBACK = 2;
/** Probes that must open in a row before the fallback gives way to WebSockets again. */
const PROBES_TO_RETURN = 2;
/** How often, on the fallback, a WebSocket is tried again. */
const PROBE_EVERY_MS = 30000;

/** A network that falls back to server-sent events when WebSockets fail, and returns when they
 * work again. `forced` starts on the fallback (`?transport=sse`). */
export function fallbackNetwork(base: Network, open: Openers, forced = false): Network & { mode(): "ws" | "sse" } {
  let mode: "ws" | "sse" = forced ? "sse" : "ws";
  let failures = 0;
  return {
    ...base,
    mode: () => mode,
    connect(url?: string): Transport {
      const target = url ?? "";
      if (mode === "ws") {
        const ws = open.webSocket(target);
        let heard = false;
        let frameCb: (frame: ServerMsg) => void = () => {};
        let closedCb: (code: number, reason: string) => void = () => {};
        ws.onFrame((frame) => {
          heard = true;
          failures = 0;
          frameCb(frame);
        });
        ws.onClose((code, reason) => {
          if (!heard && code === 1006 && ++failures >= FAILURES_BEFORE_FALLBACK) mode = "sse";
          closedCb(code, reason);
        });
        return { ...ws, onFrame: (cb) => void (frameCb = cb), onClose: (cb) => void (closedCb = cb) };
      }
      const sse = open.sse(target);
      let closedCb: (code: number, reason: string) => void = () => {};
      let over = false;
      let opened = 0;
      // Back to WebSockets once probes open them twice in a row: this link closes as a server
      // restart would, and the client reconnects at once (resuming with its token) over a WebSocket.
      const timer = forced
        ? null
        : setInterval(() => {
            void open.probe(target).then((ok) => {
              opened = ok ? opened + 1 : 0;
              if (opened < PROBES_TO_RETURN || over) return;
              mode = "ws";
              failures = 0;
              sse.close(1012, "WebSockets work again");
            });
          }, PROBE_EVERY_MS);
      sse.onClose((code, reason) => {
        over = true;
        if (timer) clearInterval(timer);
        closedCb(code, reason);
      });
      return { ...sse, onClose: (cb) => void (closedCb = cb) };
    },
  };
}

/** Whether a WebSocket to `url` opens within `timeoutMs` (closed at once either way). */
export function probeWebSocket(url: string, timeoutMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, "lectern.v1");
    } catch {
      return resolve(false);
    }
    const timer = setTimeout(() => {
      ws.close();
      resolve(false);
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      ws.close(1000);
      resolve(true);
    };
    ws.onclose = () => {
      clearTimeout(timer);
      resolve(false);
    };
  });
}

/** The browser's network with the fallback: WebSockets to `baseUrl()` while they work, else server-
 * sent events. The page's `<html data-transport>` says which one the lesson uses now. */
export function webNetworkWithFallback(base: Network, baseUrl: () => string, forced: () => boolean): Network {
  const target = (url: string) => url || wsUrl(baseUrl());
  let network: ReturnType<typeof fallbackNetwork> | null = null;
  return {
    ...base,
    connect(url) {
      network ??= fallbackNetwork(
        base,
        {
          webSocket: (u) => webSocketTransport(target(u)),
          sse: (u) => sseTransport(httpBase(target(u))),
          probe: (u) => probeWebSocket(target(u)),
        },
        forced(),
      );
      const transport = network.connect(url);
      if (typeof document !== "undefined") document.documentElement.dataset.transport = network.mode();
      return transport;
    },
  };
}
