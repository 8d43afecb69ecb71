// The contract between the pages and the device they run on: what every platform provides, and
// nothing else (types only). The browser build's pages get `web.ts`'s, the app build's `tauri.ts`'s
// (the only file allowed to import @tauri-apps/*, where Rust holds the lesson's socket and the TLS
// pin and frames cross IPC instead of a WebSocket), chosen when the bundle is built: a page imports
// `platform` from `@platform`, which vite.config.ts resolves to `browser.ts` or `app.ts`.
//
// What belongs here: every API that is not the same in a browser tab and in the app's webview, or
// that the app must do in Rust. That is the network (WebSocket, fetch, online/offline events), the
// server's address, persistent storage and the document cache, what the page was opened with (the
// URL's query and fragment, the preferred languages), dialogs (confirm, alert, choosing a file,
// saving a file) and the clipboard. Outside this folder the pages build and draw the DOM, listen to
// input events, and use timers, `requestAnimationFrame`, `devicePixelRatio`, `performance` and
// `crypto.getRandomValues`: a webview has those everywhere, and none of them reaches the network
// or the disk.
import type { ClientMsg } from "../generated/ClientMsg";
import type { Doc } from "../generated/Doc";
import type { ServerMsg } from "../generated/ServerMsg";
import type { DocSource } from "../docfetch";

/** One connection to a lesson (PROTOCOL.md §2): typed frames each way, never raw text. Events
 * arrive asynchronously, never during `connect`, so handlers set right after it miss nothing. Each
 * `on…` sets the one handler for its event (a connection has one owner). */
export interface Transport {
  /** Sends a frame; false when the connection is not open (the frame is dropped). */
  send(frame: ClientMsg): boolean;
  /** Closes the connection; `onClose` still follows, with the code the close ended with. */
  close(code?: number, reason?: string): void;
  /** The connection is open: the client says `hello` now. */
  onOpen(cb: () => void): void;
  /** A frame from the server. Frames that are not JSON objects with a `t` never get here. */
  onFrame(cb: (frame: ServerMsg) => void): void;
  /** The connection is over (also when it never opened): a close code of §10, or 1006. */
  onClose(cb: (code: number, reason: string) => void): void;
}

/** The device's network, as far as a lesson's connection cares. */
export interface Network {
  /** Opens a connection to a lesson; `url` defaults to this server's `/v1/ws`. */
  connect(url?: string): Transport;
  /** False when the device knows it has no network (the status then says "offline"). */
  online(): boolean;
  /** Calls `cb` whenever the network comes back; returns what stops that. */
  onOnline(cb: () => void): () => void;
}

/** The lesson's server over HTTPS (PROTOCOL.md §9). Each call takes the bearer it needs: a
 * participant's resume token or the teacher key. Failures reject with an Error whose message says
 * why (the server's own reason when it gave one). */
export interface Server {
  /** Its origin, such as `https://192.168.1.20:8443`: join links are made from it. */
  readonly baseUrl: string;
  /** GETs a JSON answer. */
  getJson<T>(path: string, bearer: string): Promise<T>;
  /** GETs bytes (an attendance export, say). */
  getBytes(path: string, bearer: string): Promise<ArrayBuffer>;
  /** A document: from this device's cache, or else fetched in chunks, so the first page comes
   * early. From a server not trusted (a relay, which could change a page's bytes) every piece is
   * checked against the manifest the teacher signed before anything is drawn from it (or, for a
   * document without one, the whole against its sha256). */
  openDoc(doc: Doc, bearer: string, untrusted?: boolean): Promise<DocSource>;
  /** Uploads a PDF (teacher) and keeps its bytes in the cache; resolves with the stored document. */
  uploadDoc(title: string, bytes: ArrayBuffer, bearer: string): Promise<Doc>;
}

/** A small persistent key-value store (device id, resume token, language, teacher key). It never
 * rejects: a store that is full or refused loses the value, and the lesson goes on. */
export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  /** Stores a value, or with null removes it. */
  set(key: string, value: string | null): Promise<void>;
}

/** A file the person chose. */
export interface PickedFile {
  name: string;
  bytes: ArrayBuffer;
}

/** What needs the person's answer or hands them something, the device's way. */
export interface Dialogs {
  /** Asks yes or no. */
  confirm(message: string): Promise<boolean>;
  /** Tells something that needs no answer. */
  alert(message: string): Promise<void>;
  /** Lets the person choose a PDF; null when they cancel. Call it straight from the click that
   * asks for it (a browser opens a file chooser only while it is handling a click). */
  pickPdf(): Promise<PickedFile | null>;
  /** Hands a file to the person (a download in a browser, a save dialog in the app). */
  saveFile(name: string, bytes: ArrayBuffer, mime: string): Promise<void>;
}

/** What the page was opened with: in a browser its URL; in the app, the link Rust was given. */
export interface LaunchParams {
  /** The query (`?lang=ar`). */
  query: URLSearchParams;
  /** The fragment's values (`#code=482913&fp=…`, `#key=…`): they never reach a server log. */
  fragment: URLSearchParams;
  /** The person's languages, best first. */
  languages: readonly string[];
}

/** Everything device-specific the pages use. */
export interface Platform {
  readonly network: Network;
  readonly server: Server;
  readonly store: KeyValueStore;
  readonly dialogs: Dialogs;
  launch(): LaunchParams;
  /** Copies text to the clipboard; false when not allowed. */
  copy(text: string): Promise<boolean>;
  /** Keeps the screen on while `on` (a lesson is being followed or taught), or lets it dim again;
   * rejects with the reason when the browser or the system will not. */
  stayAwake(on: boolean): Promise<void>;
}
