// The browser build's platform: what `@platform` is in `vite build` (ui/dist, which the lectern
// binary serves to students' and teachers' browsers), and in tsc and Vitest. It names no Tauri
// module, so none of the app's code reaches a browser (`npm run check:bundle` holds that).
import type { Platform } from "./contract";
import { webPlatform } from "./web";

/** The platform this page runs on: a browser tab, served by a Lectern server. */
export const platform: Platform = webPlatform();
