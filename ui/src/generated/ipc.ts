// Generated from src-tauri/src/ipc.rs by `cargo test -p lectern-app`: do not edit.
// The app's commands and events, typed; the view calls Rust only through these.
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { AppLaunch } from "./AppLaunch";
import type { AppMode } from "./AppMode";
import type { Doc } from "./Doc";
import type { Found } from "./Found";
import type { JoinTarget } from "./JoinTarget";
import type { LinkEvent } from "./LinkEvent";
import type { Picked } from "./Picked";

export { Channel };

/** Every command of the app, by its Rust name. */
export const commands = {
  launch: (): Promise<AppLaunch> => invoke<AppLaunch>("launch"),
  chooseMode: (args: { mode: AppMode | null }): Promise<AppLaunch> => invoke<AppLaunch>("choose_mode", args),
  openLink: (args: { link: string }): Promise<JoinTarget> => invoke<JoinTarget>("open_link", args),
  browse: (args: { onEvent: Channel<Found> }): Promise<null> => invoke<null>("browse", args),
  stopBrowse: (): Promise<null> => invoke<null>("stop_browse"),
  connect: (args: { url: string; fingerprint: string; onEvent: Channel<LinkEvent> }): Promise<number> => invoke<number>("connect", args),
  send: (args: { id: number; frame: string }): Promise<null> => invoke<null>("send", args),
  disconnect: (args: { id: number; code: number; reason: string }): Promise<null> => invoke<null>("disconnect", args),
  fetchDoc: (args: { base: string; fingerprint: string; bearer: string; doc: Doc }): Promise<ArrayBuffer> => invoke<ArrayBuffer>("fetch_doc", args),
  cachedDoc: (args: { doc: Doc }): Promise<ArrayBuffer> => invoke<ArrayBuffer>("cached_doc", args),
  docRange: (args: { base: string; fingerprint: string; bearer: string; doc: Doc; begin: number; end: number; checked: boolean }): Promise<ArrayBuffer> => invoke<ArrayBuffer>("doc_range", args),
  docManifest: (args: { base: string; fingerprint: string; bearer: string; doc: Doc }): Promise<ArrayBuffer> => invoke<ArrayBuffer>("doc_manifest", args),
  keepDoc: (body: ArrayBuffer | Uint8Array, headers: { sha256: string }): Promise<null> =>
    invoke<null>("keep_doc", body, { headers }),
  http: (body: ArrayBuffer | Uint8Array, headers: { method: string; url: string; fingerprint: string; bearer?: string }): Promise<ArrayBuffer> =>
    invoke<ArrayBuffer>("http", body, { headers }),
  pickPdf: (): Promise<Picked | null> => invoke<Picked | null>("pick_pdf"),
  readPicked: (args: { path: string }): Promise<ArrayBuffer> => invoke<ArrayBuffer>("read_picked", args),
  trustAuthorities: (): Promise<number | null> => invoke<number | null>("trust_authorities"),
  authorities: (): Promise<number> => invoke<number>("authorities"),
  forgetAuthorities: (): Promise<null> => invoke<null>("forget_authorities"),
  saveFile: (body: ArrayBuffer | Uint8Array, headers: { name: string }): Promise<boolean> =>
    invoke<boolean>("save_file", body, { headers }),
  storeGet: (args: { key: string }): Promise<string | null> => invoke<string | null>("store_get", args),
  storeSet: (args: { key: string; value: string | null }): Promise<null> => invoke<null>("store_set", args),
  stayAwake: (args: { on: boolean }): Promise<null> => invoke<null>("stay_awake", args),
} as const;

/** Every event the app emits to the view. */
export const events = {
  onLink: (cb: (payload: JoinTarget) => void): Promise<UnlistenFn> => listen<JoinTarget>("lectern://link", (e) => cb(e.payload)),
} as const;
