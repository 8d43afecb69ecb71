// The app's platform (Tauri 2): the only file that imports @tauri-apps/*. The webview cannot pin the
// classroom's self-signed certificate, so it never opens a socket or a request to it: frames cross
// IPC to Rust, which holds the pinned connection (`connect`/`send`/`disconnect` with a Channel back),
// and HTTPS requests and documents go through Rust too (documents cached on disk by sha256).
//
// Which classroom a page talks to comes from its fragment, set by the app's start page:
// `#ws=wss://…&http=https://…&fp=…` (plus `code` for a student, `key` for the teacher, and
// `lan=https://LAN-ADDRESS:PORT`, the address students use, for the teacher's join link).
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import { BACKGROUND, checkScans, checkedWhole, openChunked, type RangeFetch } from "../docfetch";
import type { Doc } from "../generated/Doc";
import type { ServerMsg } from "../generated/ServerMsg";
import type { Dialogs, KeyValueStore, Network, Platform, Server, Transport } from "./index";
import { copyText } from "./web";
import { parseFrame } from "./websocket";

/** What Rust reports about one lesson connection, in order (src-tauri/src/bridge.rs). */
export type LinkEvent =
  | { kind: "open" }
  | { kind: "frame"; text: string }
  | { kind: "closed"; code: number; reason: string };

/** True inside the Lectern app's webview. */
export function inApp(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

function fragment(): URLSearchParams {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

/** A lesson connection held by Rust. */
export function ipcTransport(url: string, fingerprint: string): Transport {
  let opened: () => void = () => {};
  let received: (frame: ServerMsg) => void = () => {};
  let closed: (code: number, reason: string) => void = () => {};
  let open = false;
  let id: number | null = null;
  let pendingClose: [number, string] | null = null;
  let sending: Promise<unknown> = Promise.resolve();
  const events = new Channel<LinkEvent>();
  events.onmessage = (ev) => {
    if (ev.kind === "open") {
      open = true;
      // The connection's id may not be back yet: "open" counts once both are here.
      if (id !== null) opened();
    } else if (ev.kind === "frame") {
      const frame = parseFrame(ev.text);
      if (frame?.t === "patch") {
        // For the end-to-end test: when each patch crossed IPC (the page's own clock).
        const probe = (window.lectern ??= { marks: [] }) as { ipc?: { seq: number; at: number }[] };
        (probe.ipc ??= []).push({ seq: frame.seq, at: performance.timeOrigin + performance.now() });
      }
      if (frame) received(frame);
    } else {
      open = false;
      closed(ev.code, ev.reason);
    }
  };
  invoke<number>("connect", { url, fingerprint, onEvent: events }).then(
    (n) => {
      id = n;
      if (pendingClose) void invoke("disconnect", { id, code: pendingClose[0], reason: pendingClose[1] });
      else if (open) opened();
    },
    (e) => closed(1006, String(e)),
  );
  return {
    send(frame) {
      if (!open || id === null) return false;
      // One send after another: separate invokes are not promised to run in order.
      const link = id;
      const text = JSON.stringify(frame);
      sending = sending.then(() => invoke("send", { id: link, frame: text })).catch(() => {});
      return true;
    },
    close(code = 1000, reason = "") {
      if (id === null) pendingClose = [code, reason];
      else void invoke("disconnect", { id, code, reason });
    },
    onOpen: (cb) => void (opened = cb),
    onFrame: (cb) => void (received = cb),
    onClose: (cb) => void (closed = cb),
  };
}

function tauriNetwork(ws: () => string, fingerprint: () => string): Network {
  return {
    connect: (url) => ipcTransport(url ?? ws(), fingerprint()),
    online: () => navigator.onLine !== false,
    onOnline(cb) {
      window.addEventListener("online", cb);
      return () => window.removeEventListener("online", cb);
    },
  };
}

async function http(method: string, url: string, fingerprint: string, bearer: string, body?: ArrayBuffer): Promise<ArrayBuffer> {
  const headers: Record<string, string> = { method, url, fingerprint, bearer };
  return invoke<ArrayBuffer>("http", body ? new Uint8Array(body) : new Uint8Array(0), { headers });
}

function tauriServer(): Server {
  const f = fragment();
  const api = f.get("http") ?? "";
  const fp = f.get("fp") ?? "";
  return {
    baseUrl: f.get("lan") ?? api,
    async getJson<T>(path: string, bearer: string) {
      const bytes = await http("GET", `${api}${path}`, fp, bearer);
      return JSON.parse(new TextDecoder().decode(bytes)) as T;
    },
    getBytes: (path, bearer) => http("GET", `${api}${path}`, fp, bearer),
    async openDoc(doc: Doc, bearer, whole) {
      // Kept on disk by Rust, checked against its sha256: a Mushaf crosses the Wi-Fi once per device.
      const cached = await invoke<ArrayBuffer>("cached_doc", { doc });
      if (cached.byteLength > 0) return { bytes: cached };
      if (whole) {
        const bytes = await http("GET", `${api}/v1/docs/${encodeURIComponent(doc.id)}`, fp, bearer);
        const checked = await checkedWhole(bytes, doc.sha256);
        await invoke("keep_doc", new Uint8Array(bytes), { headers: { sha256: doc.sha256 } }).catch((e) => console.error(e));
        return checked;
      }
      const fetchRange: RangeFetch = async (begin, end) => {
        // The whole length in 8 big-endian bytes, then the bytes (see `doc_range`).
        const answer = new Uint8Array(await invoke<ArrayBuffer>("doc_range", { base: api, fingerprint: fp, bearer, doc, begin, end }));
        const total = Number(new DataView(answer.buffer, answer.byteOffset, 8).getBigUint64(0));
        return { bytes: answer.subarray(8), total };
      };
      const keep = async (bytes: Uint8Array) => {
        // Only the (ASCII) sha256 in a header: a title may not survive one.
        await invoke("keep_doc", bytes, { headers: { sha256: doc.sha256 } }).catch((e) => console.error(e));
      };
      // Asked for alongside the first chunk: which pages can be drawn from their own JPEG.
      const index = http("GET", `${api}/v1/docs/${encodeURIComponent(doc.id)}/scan`, fp, bearer)
        .then((bytes) => JSON.parse(new TextDecoder().decode(bytes)) as unknown)
        .catch(() => null);
      const scans = async (total: number) => checkScans(await index, doc.pages, total);
      return openChunked(fetchRange, keep, BACKGROUND, scans);
    },
    async uploadDoc(title, bytes, bearer) {
      const answer = await http("POST", `${api}/v1/docs?title=${encodeURIComponent(title)}`, fp, bearer, bytes);
      return JSON.parse(new TextDecoder().decode(answer)) as Doc;
    },
  };
}

/** The app's settings file, through Rust. */
export const tauriStore: KeyValueStore = {
  async get(key) {
    try {
      return (await invoke<string | null>("store_get", { key })) ?? null;
    } catch {
      return null;
    }
  },
  async set(key, value) {
    try {
      await invoke("store_set", { key, value });
    } catch {
      // A settings file that cannot be written loses the value; the lesson goes on.
    }
  },
};

const dialogs: Dialogs = {
  confirm: async (message) => window.confirm(message),
  alert: async (message) => window.alert(message),
  async pickPdf() {
    const picked = await invoke<{ name: string; path: string } | null>("pick_pdf");
    if (!picked) return null;
    return { name: picked.name, bytes: await invoke<ArrayBuffer>("read_picked", { path: picked.path }) };
  },
  async saveFile(name, bytes) {
    await invoke("save_file", new Uint8Array(bytes), { headers: { name } });
  },
};

/** The platform inside the app. */
export function tauriPlatform(): Platform {
  const f = fragment();
  return {
    network: tauriNetwork(() => f.get("ws") ?? "", () => f.get("fp") ?? ""),
    server: tauriServer(),
    store: tauriStore,
    dialogs,
    launch: () => ({
      query: new URLSearchParams(location.search),
      fragment: fragment(),
      languages: navigator.languages ?? [navigator.language],
    }),
    copy: copyText,
  };
}


/** The classroom this device serves (the ready line of `lectern serve --json`, and the LAN base). */
export interface Teaching {
  ready: boolean;
  ws: string;
  http: string;
  fingerprint: string;
  code: string;
  teacher_key: string;
  room: string;
}

/** Where a join link points. */
export interface JoinTarget {
  ws: string;
  http: string;
  code: string | null;
  fingerprint: string;
}

/** What the app starts with (src-tauri/src/commands.rs `Launch`). */
export interface AppLaunch {
  mode: "teacher" | "student" | null;
  teacher: Teaching | null;
  lan: string | null;
  link: JoinTarget | null;
}

/** A classroom announced on the network (lectern::discovery::Found). */
export type Found =
  | {
      event: "resolved";
      name: string;
      title: string;
      room: string;
      addresses: string[];
      port: number;
      fingerprint: string;
      path: string;
      fullname: string;
    }
  | { event: "removed"; fullname: string };

/** The app shell's own calls, for its start page. */
export const appShell = {
  launch: () => invoke<AppLaunch>("launch"),
  chooseMode: (mode: "teacher" | "student" | null) => invoke<AppLaunch>("choose_mode", { mode }),
  openLink: (link: string) => invoke<JoinTarget>("open_link", { link }),
  /** Calls `cb` with each join link the app is handed while it runs (a second launch, a deep link). */
  onLink(cb: (target: JoinTarget) => void): void {
    void listen<JoinTarget>("lectern://link", (ev) => cb(ev.payload));
  },
  /** Reports classrooms as they come and go until the returned function is called. */
  browse(onFound: (found: Found) => void): () => void {
    const events = new Channel<Found>();
    events.onmessage = onFound;
    void invoke("browse", { onEvent: events });
    return () => void invoke("stop_browse");
  },
};
