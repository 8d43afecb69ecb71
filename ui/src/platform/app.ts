// The app build's platform: what `@platform` is in `vite build --mode app` (ui/dist-app, which the
// Tauri app embeds), and what the app's own start page imports. App-only: no page of the browser
// build may import this file.
import type { Platform } from "./contract";
import { tauriPlatform } from "./tauri";

export { appShell } from "./tauri";
export type { AppLaunch } from "../generated/AppLaunch";
export type { Found } from "../generated/Found";
export type { JoinTarget } from "../generated/JoinTarget";

/** The platform this page runs on: the Lectern app's webview. */
export const platform: Platform = tauriPlatform();
