// The browser's lesson connection: a WebSocket with the `lectern.v1` subprotocol (PROTOCOL.md §2),
// one JSON object per text frame, parsed here so that only typed frames cross the seam.
import type { ServerMsg } from "../generated/ServerMsg";
import type { Network, Transport } from "./contract";

/** `WebSocket.OPEN`, without needing the global (tests stand a fake in for it). */
const OPEN = 1;

/** A frame as the server sent it, or null for anything that is not a JSON object with a string `t`
 * (a binary frame, broken JSON): those are dropped, as unknown fields are ignored (§2). */
export function parseFrame(data: unknown): ServerMsg | null {
  if (typeof data !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  return isFrame(value) ? value : null;
}

function isFrame(value: unknown): value is ServerMsg {
  return typeof value === "object" && value !== null && "t" in value && typeof value.t === "string";
}

/** The lesson's WebSocket URL on the server at `baseUrl` (`https:` becomes `wss:`). */
export function wsUrl(baseUrl: string): string {
  return `${baseUrl.replace(/^http/, "ws")}/v1/ws`;
}

/** Opens a WebSocket transport to `url`. */
export function webSocketTransport(url: string): Transport {
  let opened: () => void = () => {};
  let received: (frame: ServerMsg) => void = () => {};
  let closed: (code: number, reason: string) => void = () => {};
  let ws: WebSocket | null = null;
  try {
    ws = new WebSocket(url, "lectern.v1");
  } catch (e) {
    // A malformed URL, say: report it as a failed connection, after the caller set its handlers.
    setTimeout(() => closed(1006, e instanceof Error ? e.message : String(e)), 0);
  }
  if (ws) {
    ws.onopen = () => opened();
    ws.onmessage = (ev) => {
      const frame = parseFrame(ev.data);
      if (frame) received(frame);
    };
    ws.onclose = (ev) => closed(ev.code, ev.reason);
  }
  return {
    send(frame) {
      if (ws?.readyState !== OPEN) return false;
      ws.send(JSON.stringify(frame));
      return true;
    },
    close(code = 1000, reason = "") {
      try {
        ws?.close(code, reason);
      } catch {
        ws?.close(); // a code the browser refuses: close all the same
      }
    },
    onOpen: (cb) => void (opened = cb),
    onFrame: (cb) => void (received = cb),
    onClose: (cb) => void (closed = cb),
  };
}

/** The browser's network: WebSockets to `baseUrl()`, and `navigator.onLine` with its events. */
export function webNetwork(baseUrl: () => string): Network {
  return {
    connect: (url) => webSocketTransport(url ?? wsUrl(baseUrl())),
    online: () => navigator.onLine !== false,
    onOnline(cb) {
      window.addEventListener("online", cb);
      return () => window.removeEventListener("online", cb);
    },
  };
}
