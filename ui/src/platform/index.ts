// What the pages need from the device, behind one interface: the browser build uses `web.ts`; the
// Tauri app will add `tauri.ts` (the only file allowed to import @tauri-apps/*).
export interface Platform {
  /** A small persistent key-value store (device id, resume token, language). */
  get(key: string): string | null;
  /** Stores (or with null, removes) a value. */
  set(key: string, value: string | null): void;
  /** A cached document's bytes by sha256, if present. */
  cachedDoc(sha256: string): Promise<ArrayBuffer | null>;
  /** Keeps a document's bytes under its sha256. */
  cacheDoc(sha256: string, bytes: ArrayBuffer): Promise<void>;
  /** Copies text to the clipboard; false when not allowed. */
  copy(text: string): Promise<boolean>;
}

export { web as platform } from "./web";
