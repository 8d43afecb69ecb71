// The app's platform (Tauri 2): with the IPC client generated from src-tauri/src/ipc.rs
// (../generated/ipc.ts), the only code that reaches @tauri-apps/*, and only the app build's pages
// reach it (through `app.ts`; the browser build has none of it). The webview cannot pin the
// classroom's self-signed certificate, so it never opens a socket or a request to it: frames cross
// IPC to Rust, which holds the pinned connection (`connect`/`send`/`disconnect` with a Channel back),
// and HTTPS requests and documents go through Rust too (documents cached on disk by sha256).
//
// Which classroom a page talks to comes from its fragment, set by the app's start page:
// `#ws=wss://…&http=https://…&fp=…` (plus `code` for a student, `key` for the teacher, and
// `lan=https://LAN-ADDRESS:PORT`, the address students use, for the teacher's join link).
import { Channel, commands, events as appEvents } from "../generated/ipc";
import { openDoc, type DocIO } from "../docfetch";
import type { Doc } from "../generated/Doc";
import type { ServerMsg } from "../generated/ServerMsg";
import type { Dialogs, KeyValueStore, Network, Platform, Server, Transport } from "./contract";
import type { AppMode } from "../generated/AppMode";
import type { Found } from "../generated/Found";
import type { LinkEvent } from "../generated/LinkEvent";
import type { JoinTarget } from "../generated/JoinTarget";
import { copyText } from "./web";
import { parseFrame } from "./websocket";

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
  commands.connect({ url, fingerprint, onEvent: events }).then(
    (n) => {
      id = n;
      if (pendingClose) void commands.disconnect({ id, code: pendingClose[0], reason: pendingClose[1] });
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
      sending = sending.then(() => commands.send({ id: link, frame: text })).catch(() => {});
      return true;
    },
    close(code = 1000, reason = "") {
      if (id === null) pendingClose = [code, reason];
      else void commands.disconnect({ id, code, reason });
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
  return commands.http(body ? new Uint8Array(body) : new Uint8Array(0), { method, url, fingerprint, bearer });
}

function tauriServer(): Server {
  const f = fragment();
  const api = f.get("http") ?? "";
  const fp = f.get("fp") ?? "";
  const docs = tauriDocs(api, fp);
  return {
    baseUrl: f.get("lan") ?? api,
    async getJson<T>(path: string, bearer: string) {
      const bytes = await http("GET", `${api}${path}`, fp, bearer);
      return JSON.parse(new TextDecoder().decode(bytes)) as T;
    },
    getBytes: (path, bearer) => http("GET", `${api}${path}`, fp, bearer),
    openDoc: (doc, bearer, untrusted) => openDoc(docs, doc, bearer, untrusted),
    async uploadDoc(title, bytes, bearer) {
      const answer = await http("POST", `${api}/v1/docs?title=${encodeURIComponent(title)}`, fp, bearer, bytes);
      return JSON.parse(new TextDecoder().decode(answer)) as Doc;
    },
  };
}

/** For the end-to-end test: what the view asked Rust for, of documents, in order (the first 200). */
function probeDocs(what: string): void {
  const probe = (window.lectern ??= { marks: [] }) as { docs?: string[] };
  if ((probe.docs ??= []).length < 200) probe.docs.push(what);
}

/** Documents kept on disk by Rust, which checks them against their sha256 (whether or not they were
 * checked here): a Mushaf crosses the Wi-Fi once per device. Behind a relay, Rust also checks each
 * piece against the signed manifest. */
function tauriDocs(api: string, fp: string): DocIO {
  const url = (doc: Doc) => `${api}/v1/docs/${encodeURIComponent(doc.id)}`;
  return {
    async cached(doc) {
      const bytes = await commands.cachedDoc({ doc });
      return bytes.byteLength > 0 ? bytes : null;
    },
    async keep(doc, bytes) {
      // Only the (ASCII) sha256 in a header: a title may not survive one.
      await commands.keepDoc(bytes, { sha256: doc.sha256 }).catch((e) => console.error(e));
    },
    fetchWhole: (doc, bearer) => {
      probeDocs("whole");
      return http("GET", url(doc), fp, bearer);
    },
    fetchRange: (doc, bearer, checked = false) => async (begin, end) => {
      probeDocs(`${checked ? "checked" : "unchecked"} ${begin}-${end}`);
      // The whole length in 8 big-endian bytes, then the bytes (see `doc_range`; `checked`: Rust
      // checks each piece against the signed manifest first, and gives nothing unchecked).
      const answer = new Uint8Array(await commands.docRange({ base: api, fingerprint: fp, bearer, doc, begin, end, checked }));
      const total = Number(new DataView(answer.buffer, answer.byteOffset, 8).getBigUint64(0));
      return { bytes: answer.subarray(8), total };
    },
    async scanIndex(doc, bearer) {
      return JSON.parse(new TextDecoder().decode(await http("GET", `${url(doc)}/scan`, fp, bearer))) as unknown;
    },
    // As it came (the view judges it, as a browser does); Rust keeps it if it is the signed one.
    manifest: (doc, bearer) => {
      probeDocs("manifest");
      return commands.docManifest({ base: api, fingerprint: fp, bearer, doc });
    },
  };
}

/** The app's settings file, through Rust. */
export const tauriStore: KeyValueStore = {
  async get(key) {
    try {
      return (await commands.storeGet({ key })) ?? null;
    } catch {
      return null;
    }
  },
  async set(key, value) {
    try {
      await commands.storeSet({ key, value });
    } catch {
      // A settings file that cannot be written loses the value; the lesson goes on.
    }
  },
};

const dialogs: Dialogs = {
  confirm: async (message) => window.confirm(message),
  alert: async (message) => window.alert(message),
  async pickPdf() {
    const picked = await commands.pickPdf();
    if (!picked) return null;
    return { name: picked.name, bytes: await commands.readPicked({ path: picked.path }) };
  },
  async saveFile(name, bytes) {
    await commands.saveFile(new Uint8Array(bytes), { name });
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
    stayAwake: async (on) => {
      await commands.stayAwake({ on });
    },
  };
}

/** The app shell's own calls, for its start page. */
export const appShell = {
  launch: () => commands.launch(),
  chooseMode: (mode: AppMode | null) => commands.chooseMode({ mode }),
  openLink: (link: string) => commands.openLink({ link }),
  /** Calls `cb` with each join link the app is handed while it runs (a second launch, a deep link). */
  onLink(cb: (target: JoinTarget) => void): void {
    void appEvents.onLink(cb);
  },
  /** How many of its district's certificate authorities the app trusts for relays (0: the web's only). */
  authorities: () => commands.authorities(),
  /** Lets the person choose a PEM file of their district's authorities and trusts them: null when
   * they cancel, else how many; rejects with why the file was not taken. */
  trustAuthorities: () => commands.trustAuthorities(),
  /** Stops trusting the district's authorities. */
  forgetAuthorities: () => commands.forgetAuthorities(),
  /** Reports classrooms as they come and go until the returned function is called. */
  browse(onFound: (found: Found) => void): () => void {
    const events = new Channel<Found>();
    events.onmessage = onFound;
    void commands.browse({ onEvent: events });
    return () => void commands.stopBrowse();
  },
};
