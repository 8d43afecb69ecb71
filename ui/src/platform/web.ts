// The browser's platform: WebSockets and fetch to the server that served the page, localStorage for
// small values, documents fetched in chunks (the first page after only the bytes it needs) and kept
// in the Cache API by sha256 once whole (so a document is fetched once however many lessons use it),
// window.confirm and alert, an <input type=file> and a download link.
import type { ApiError } from "../generated/ApiError";
import type { Doc } from "../generated/Doc";
import { openDoc, type DocIO, type RangeFetch } from "../docfetch";
import { sha256Hex } from "../docverify";
import type { Dialogs, KeyValueStore, Platform, Server } from "./contract";
import { webNetworkWithFallback } from "./sse";
import { webNetwork } from "./websocket";

const CACHE = "lectern-docs-v1";

/** The platform of a page served by a Lectern server. Touches no browser API until used. */
export function webPlatform(): Platform {
  const baseUrl = () => location.origin;
  return {
    // WebSockets, or server-sent events where they fail (`?transport=sse` forces those).
    network: webNetworkWithFallback(webNetwork(baseUrl), baseUrl, () => new URLSearchParams(location.search).get("transport") === "sse"),
    server: webServer(baseUrl),
    store: webStore(),
    dialogs: webDialogs(),
    launch: () => ({
      query: new URLSearchParams(location.search),
      fragment: new URLSearchParams(location.hash.replace(/^#/, "")),
      languages: navigator.languages ?? [navigator.language],
    }),
    copy: copyText,
    stayAwake: webStayAwake(),
  };
}

/** The Screen Wake Lock API, held while asked for. A browser drops the lock when the page is hidden,
 * so it is asked for again when the page is shown. */
export function webStayAwake(): (on: boolean) => Promise<void> {
  let want = false;
  let lock: WakeLockSentinel | null = null;
  const take = async () => {
    if (!("wakeLock" in navigator)) throw new Error("this browser cannot keep the screen on");
    if (lock && !lock.released) return;
    const taken = await navigator.wakeLock.request("screen");
    // Let go meanwhile (the lesson stopped while the browser answered): not kept.
    if (want) lock = taken;
    else void taken.release();
  };
  document.addEventListener("visibilitychange", () => {
    if (want && document.visibilityState === "visible") void take().catch(() => {});
  });
  return async (on) => {
    want = on;
    if (on) return take();
    const held = lock;
    lock = null;
    await held?.release();
  };
}

/** Copies text to the clipboard; false when the page may not. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** localStorage under `lectern.` keys; storage that is missing or refused loses values quietly. */
export function webStore(): KeyValueStore {
  const storage = (): Storage | null => {
    try {
      return globalThis.localStorage ?? null;
    } catch {
      return null; // private mode, or storage disabled
    }
  };
  return {
    async get(key) {
      try {
        return storage()?.getItem(`lectern.${key}`) ?? null;
      } catch {
        return null;
      }
    },
    async set(key, value) {
      const s = storage();
      if (!s) return;
      try {
        if (value === null) s.removeItem(`lectern.${key}`);
        else s.setItem(`lectern.${key}`, value);
      } catch {
        // Storage full or refused: the lesson goes on; only a rejoin after a reload is lost.
      }
    },
  };
}

/** Why a response failed: the server's `{"error": …}` when it sent one, else its status. */
async function failure(res: Response): Promise<Error> {
  let reason = `${res.status} ${res.statusText}`.trim();
  try {
    const body: unknown = await res.json();
    if (isApiError(body)) reason = body.error;
  } catch {
    /* not JSON */
  }
  return new Error(reason);
}

function isApiError(body: unknown): body is ApiError {
  return typeof body === "object" && body !== null && "error" in body && typeof body.error === "string";
}

/** A GET against the page's own server with a bearer; rejects with the server's reason. */
type Get = (path: string, bearer: string) => Promise<Response>;

/** fetch against the page's own server, with the Cache API in front of documents. */
export function webServer(baseUrl: () => string): Server {
  const get: Get = async (path, bearer) => {
    const res = await fetch(`${baseUrl()}${path}`, { headers: { Authorization: `Bearer ${bearer}` } });
    if (!res.ok) throw await failure(res);
    return res;
  };
  const docs = webDocs(baseUrl, get);
  return {
    get baseUrl() {
      return baseUrl();
    },
    async getJson<T>(path: string, bearer: string): Promise<T> {
      return (await get(path, bearer)).json();
    },
    async getBytes(path, bearer) {
      return (await get(path, bearer)).arrayBuffer();
    },
    openDoc: (doc, bearer, untrusted) => openDoc(docs, doc, bearer, untrusted),
    async uploadDoc(title, bytes, bearer) {
      const res = await fetch(`${baseUrl()}/v1/docs?title=${encodeURIComponent(title)}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/pdf" },
        body: bytes,
      });
      if (!res.ok) throw await failure(res);
      const doc: Doc = await res.json();
      await cacheDoc(doc.sha256, new Uint8Array(bytes));
      return doc;
    },
  };
}

/** Documents in the Cache API by sha256, fetched from the page's own server. */
function webDocs(baseUrl: () => string, get: Get): DocIO {
  const path = (doc: Doc) => `/v1/docs/${encodeURIComponent(doc.id)}`;
  return {
    cached: (doc) => cachedDoc(doc.sha256),
    keep: (doc, bytes, checked) => (checked ? cacheDoc(doc.sha256, bytes) : keepChecked(doc, bytes)),
    fetchWhole: async (doc, bearer) => (await get(path(doc), bearer)).arrayBuffer(),
    fetchRange: (doc, bearer) => rangeFetch(`${baseUrl()}${path(doc)}`, bearer),
    scanIndex: async (doc, bearer) => (await get(`${path(doc)}/scan`, bearer)).json(),
    manifest: async (doc, bearer) => (await get(`${path(doc)}/manifest`, bearer)).arrayBuffer(),
  };
}

/** Fetches byte ranges of one document with the bearer: `206` with `Content-Range` says the
 * document's length; a server that sends the whole document (`200`) is taken at its word. */
export function rangeFetch(url: string, bearer: string): RangeFetch {
  return async (begin, end) => {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${bearer}`, Range: `bytes=${begin}-${end - 1}` } });
    if (!res.ok) throw await failure(res);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 206) return { bytes, total: bytes.length, whole: true };
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get("Content-Range") ?? "");
    if (!range || Number(range[1]) !== begin) throw new Error(`the server answered bytes ${begin}- with ${res.headers.get("Content-Range")}`);
    return { bytes, total: Number(range[3]) };
  };
}

/** Keeps a whole document under its sha256, once its bytes are checked against it. */
async function keepChecked(doc: Doc, bytes: Uint8Array): Promise<void> {
  if (typeof crypto?.subtle === "undefined") return;
  if ((await sha256Hex(bytes)) === doc.sha256) await cacheDoc(doc.sha256, bytes);
  else console.error(`document ${doc.id}: its bytes do not match its sha256; not kept`);
}

/** A cached document's bytes by sha256, if present. */
async function cachedDoc(sha256: string): Promise<ArrayBuffer | null> {
  if (typeof caches === "undefined") return null;
  try {
    const hit = await (await caches.open(CACHE)).match(`/lectern-doc/${sha256}`);
    return hit ? await hit.arrayBuffer() : null;
  } catch {
    return null;
  }
}

/** Keeps a document's bytes under its sha256. */
async function cacheDoc(sha256: string, bytes: Uint8Array): Promise<void> {
  if (typeof caches === "undefined") return;
  try {
    await (await caches.open(CACHE)).put(`/lectern-doc/${sha256}`, new Response(bytes.slice()));
  } catch {
    // A full or disabled cache only costs a download next time.
  }
}

/** window.confirm and alert, a file input, and a download link. */
export function webDialogs(): Dialogs {
  /** Settles the file choice still open, if any (a browser may never say it was cancelled). */
  let abandon: (() => void) | null = null;
  return {
    confirm: async (message) => window.confirm(message),
    alert: async (message) => window.alert(message),
    pickPdf() {
      abandon?.();
      return new Promise((resolve, reject) => {
        const input = document.createElement("input");
        input.type = "file";
        input.accept = "application/pdf,.pdf";
        input.hidden = true;
        const settle = () => {
          input.remove();
          if (abandon === cancel) abandon = null;
        };
        const cancel = () => {
          settle();
          resolve(null);
        };
        input.addEventListener("change", () => {
          settle();
          const file = input.files?.[0];
          if (!file) return resolve(null);
          file.arrayBuffer().then((bytes) => resolve({ name: file.name, bytes }), reject);
        });
        input.addEventListener("cancel", cancel);
        abandon = cancel;
        // In the document while it is open, so that automation sees a page's own file chooser.
        document.body.append(input);
        input.click();
      });
    },
    async saveFile(name, bytes, mime) {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([bytes], { type: mime }));
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
    },
  };
}
