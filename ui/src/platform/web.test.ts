// The browser platform against stand-ins for the browser's own APIs (localStorage, WebSocket, fetch,
// the Cache API, window.confirm, a file input): what crosses the seam is typed and asynchronous.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ServerMsg } from "../generated/ServerMsg";
import { webDialogs, webServer, webStore } from "./web";
import { parseFrame, webSocketTransport, wsUrl } from "./websocket";

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("web store", () => {
  it("keeps values under lectern.* and answers asynchronously", async () => {
    const data = new Map<string, string>();
    vi.stubGlobal("localStorage", {
      getItem: (k: string) => data.get(k) ?? null,
      setItem: (k: string, v: string) => data.set(k, v),
      removeItem: (k: string) => data.delete(k),
    });
    const store = webStore();
    const pending = store.set("lang", "ar");
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(data.get("lectern.lang")).toBe("ar");
    expect(await store.get("lang")).toBe("ar");
    await store.set("lang", null);
    expect(data.size).toBe(0);
    expect(await store.get("lang")).toBeNull();
  });
  it("never rejects when storage is full or missing", async () => {
    vi.stubGlobal("localStorage", {
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("quota");
      },
      removeItem: () => {},
    });
    await expect(webStore().set("k", "v")).resolves.toBeUndefined();
    await expect(webStore().get("k")).resolves.toBeNull();
    vi.stubGlobal("localStorage", undefined);
    await expect(webStore().get("k")).resolves.toBeNull();
  });
});

describe("frames", () => {
  it("are JSON objects with a type; anything else is dropped", () => {
    expect(parseFrame('{"t":"teacher","online":false}')).toEqual({ t: "teacher", online: false });
    expect(parseFrame("not json")).toBeNull();
    expect(parseFrame('"text"')).toBeNull();
    expect(parseFrame('{"seq":3}')).toBeNull();
    expect(parseFrame(new ArrayBuffer(4))).toBeNull();
  });
  it("go to the server's /v1/ws, over TLS when the page is", () => {
    expect(wsUrl("https://10.0.0.5:8443")).toBe("wss://10.0.0.5:8443/v1/ws");
    expect(wsUrl("http://localhost:5173")).toBe("ws://localhost:5173/v1/ws");
  });
});

/** A stand-in for the browser's WebSocket. */
class FakeSocket {
  static last: FakeSocket;
  readyState = 0;
  sent: string[] = [];
  closedWith: [number?, string?] | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocol: string,
  ) {
    FakeSocket.last = this;
  }
  send(text: string) {
    this.sent.push(text);
  }
  close(code?: number, reason?: string) {
    this.closedWith = [code, reason];
  }
}

describe("WebSocket transport", () => {
  it("offers lectern.v1, sends JSON once open, and hands over typed frames and close codes", () => {
    vi.stubGlobal("WebSocket", FakeSocket);
    const transport = webSocketTransport("wss://h/v1/ws");
    const socket = FakeSocket.last;
    expect([socket.url, socket.protocol]).toEqual(["wss://h/v1/ws", "lectern.v1"]);
    const frames: ServerMsg[] = [];
    const closes: [number, string][] = [];
    let opened = 0;
    transport.onOpen(() => opened++);
    transport.onFrame((f) => frames.push(f));
    transport.onClose((code, reason) => closes.push([code, reason]));

    expect(transport.send({ t: "resync" })).toBe(false);
    socket.readyState = 1;
    socket.onopen?.();
    expect(opened).toBe(1);
    expect(transport.send({ t: "hand", up: true })).toBe(true);
    expect(socket.sent).toEqual(['{"t":"hand","up":true}']);

    socket.onmessage?.({ data: '{"t":"pong","id":3,"time":5}' });
    socket.onmessage?.({ data: "garbage" });
    expect(frames).toEqual([{ t: "pong", id: 3, time: 5 }]);

    transport.close(4999, "dropped");
    expect(socket.closedWith).toEqual([4999, "dropped"]);
    socket.onclose?.({ code: 4409, reason: "replaced" });
    expect(closes).toEqual([[4409, "replaced"]]);
  });
  it("reports a connection that cannot even start as closed, after its handlers are set", async () => {
    vi.stubGlobal(
      "WebSocket",
      class {
        constructor() {
          throw new SyntaxError("bad url");
        }
      },
    );
    const transport = webSocketTransport("nonsense");
    const closed = new Promise<[number, string]>((resolve) => transport.onClose((c, r) => resolve([c, r])));
    expect(await closed).toEqual([1006, "bad url"]);
  });
});

describe("web server", () => {
  function fakeCache() {
    const entries = new Map<string, ArrayBuffer>();
    vi.stubGlobal("caches", {
      open: async () => ({
        match: async (key: string) => (entries.has(key) ? new Response(entries.get(key)) : undefined),
        put: async (key: string, res: Response) => void entries.set(key, await res.arrayBuffer()),
      }),
    });
    return entries;
  }
  // The sha256 of the bytes 1, 2, 3: a document is kept only once its bytes are checked against it.
  const doc = { id: "d 1", title: "Mushaf", pages: 3, sha256: "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81" };
  const key = `/lectern-doc/${doc.sha256}`;

  it("downloads a small document once with the bearer, checks it, then serves it from the cache", async () => {
    const entries = fakeCache();
    const fetch = vi.fn(async () => new Response(new Uint8Array([1, 2, 3]), { status: 206, headers: { "Content-Range": "bytes 0-2/3" } }));
    vi.stubGlobal("fetch", fetch);
    const server = webServer(() => "https://h:1");
    const first = await server.openDoc(doc, "tok");
    expect("bytes" in first && new Uint8Array(first.bytes)).toEqual(new Uint8Array([1, 2, 3]));
    expect(fetch).toHaveBeenCalledWith("https://h:1/v1/docs/d%201", { headers: { Authorization: "Bearer tok", Range: "bytes=0-4095" } });
    expect(entries.has(key)).toBe(true);
    const again = await server.openDoc(doc, "tok");
    expect("bytes" in again && new Uint8Array(again.bytes)).toEqual(new Uint8Array([1, 2, 3]));
    // The document's bytes crossed once (the list of scanned pages is asked for alongside).
    const calls = fetch.mock.calls as unknown as [string][];
    expect(calls.filter(([url]) => !url.endsWith("/scan"))).toHaveLength(1);
  });
  it("does not keep a document whose bytes do not match its sha256", async () => {
    const entries = fakeCache();
    vi.stubGlobal("fetch", async () => new Response(new Uint8Array([6, 6, 6])));
    await webServer(() => "https://h:1").openDoc(doc, "tok");
    expect(entries.has(key)).toBe(false);
  });
  it("behind a relay, takes a document only whole and only if its bytes are the teacher's", async () => {
    const entries = fakeCache();
    vi.stubGlobal("fetch", async () => new Response(new Uint8Array([6, 6, 6])));
    await expect(webServer(() => "https://h:1").openDoc(doc, "tok", true)).rejects.toThrow(/not the ones the teacher chose/);
    expect(entries.has(key)).toBe(false);
    const fetch = vi.fn(async () => new Response(new Uint8Array([1, 2, 3])));
    vi.stubGlobal("fetch", fetch);
    const got = await webServer(() => "https://h:1").openDoc(doc, "tok", true);
    expect("bytes" in got && new Uint8Array(got.bytes)).toEqual(new Uint8Array([1, 2, 3]));
    expect(fetch).toHaveBeenCalledWith("https://h:1/v1/docs/d%201", { headers: { Authorization: "Bearer tok" } });
    expect(entries.has(key)).toBe(true);
  });
  it("keeps an uploaded document's bytes, so that showing it downloads nothing", async () => {
    const entries = fakeCache();
    const fetch = vi.fn(async () => Response.json(doc));
    vi.stubGlobal("fetch", fetch);
    const server = webServer(() => "https://h:1");
    expect(await server.uploadDoc("Al Fatiha", new Uint8Array([9]).buffer, "key")).toEqual(doc);
    expect(fetch).toHaveBeenCalledWith("https://h:1/v1/docs?title=Al%20Fatiha", expect.objectContaining({ method: "POST" }));
    expect(entries.has(key)).toBe(true);
    await server.openDoc(doc, "key");
    expect(fetch).toHaveBeenCalledTimes(1);
  });
  it("rejects with the server's reason", async () => {
    vi.stubGlobal("fetch", async () => Response.json({ error: "not a PDF" }, { status: 400 }));
    await expect(webServer(() => "").getJson("/v1/docs", "k")).rejects.toThrow("not a PDF");
    vi.stubGlobal("fetch", async () => new Response("", { status: 404, statusText: "Not Found" }));
    await expect(webServer(() => "").getBytes("/v1/lessons/1/attendance.csv", "k")).rejects.toThrow("404 Not Found");
  });
});

/** A stand-in for an <input type=file>. */
class FakeInput {
  type = "";
  accept = "";
  hidden = false;
  files: { name: string; arrayBuffer(): Promise<ArrayBuffer> }[] | null = null;
  attached = false;
  clicks = 0;
  private listeners = new Map<string, () => void>();
  addEventListener(type: string, cb: () => void) {
    this.listeners.set(type, cb);
  }
  remove() {
    this.attached = false;
  }
  click() {
    this.clicks++;
  }
  fire(type: string) {
    this.listeners.get(type)?.();
  }
}

/** A document that makes FakeInputs; returns every input made. */
function fakeDocument(): FakeInput[] {
  const inputs: FakeInput[] = [];
  vi.stubGlobal("document", {
    createElement: () => {
      const input = new FakeInput();
      inputs.push(input);
      return input;
    },
    body: { append: (el: FakeInput) => void (el.attached = true) },
  });
  return inputs;
}

describe("web dialogs", () => {
  it("ask with window.confirm and tell with window.alert, answering through promises", async () => {
    const confirm = vi.fn(() => true);
    const alert = vi.fn();
    vi.stubGlobal("window", { confirm, alert });
    await expect(webDialogs().confirm("End the lesson for everyone?")).resolves.toBe(true);
    expect(confirm).toHaveBeenCalledWith("End the lesson for everyone?");
    await expect(webDialogs().alert("Uploaded")).resolves.toBeUndefined();
    expect(alert).toHaveBeenCalledWith("Uploaded");
  });
  it("pick a PDF with a file input: its name and bytes, or null when cancelled", async () => {
    const inputs = fakeDocument();
    const dialogs = webDialogs();
    const picking = dialogs.pickPdf();
    const input = inputs[0];
    expect([input.type, input.attached, input.clicks]).toEqual(["file", true, 1]);
    expect(input.accept).toContain("application/pdf");
    input.files = [{ name: "Al-Fatiha.pdf", arrayBuffer: async () => new Uint8Array([37, 80]).buffer }];
    input.fire("change");
    const picked = await picking;
    expect(picked?.name).toBe("Al-Fatiha.pdf");
    expect(new Uint8Array(picked!.bytes)).toEqual(new Uint8Array([37, 80]));
    expect(input.attached).toBe(false);

    const cancelled = dialogs.pickPdf();
    inputs[1].fire("cancel");
    expect(await cancelled).toBeNull();
  });
  it("settle a choice the browser never closed when a new one starts", async () => {
    const inputs = fakeDocument();
    const dialogs = webDialogs();
    const first = dialogs.pickPdf();
    void dialogs.pickPdf();
    expect(await first).toBeNull();
    expect(inputs[0].attached).toBe(false);
    expect(inputs[1].attached).toBe(true);
  });
});
