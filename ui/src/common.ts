// Shared by both pages: the language switch, the status pill, the test probes, small DOM helpers.
import type { LinkStatus, StopReason } from "./client";
import type { KeyValueStore, Platform } from "./platform/contract";
import { pickLang, setLang, t, lang, type StringKey } from "./strings";

/** Sets the page's language from `?lang=`, the stored choice or the person's, and fills static strings. */
export async function initLang(platform: Platform): Promise<void> {
  const { query, languages } = platform.launch();
  setLang(pickLang(query.toString(), await platform.store.get("lang"), languages));
  translate(document.body);
}

/** Fills `data-t` (text, its blanks from the element's other data attributes), `data-t-label` (aria-label and title) and `data-t-ph` (placeholder). */
export function translate(root: ParentNode): void {
  // An element's other data attributes fill the string's blanks (`data-n` for "{n}").
  root.querySelectorAll<HTMLElement>("[data-t]").forEach((el) => (el.textContent = t(el.dataset.t as StringKey, { ...el.dataset } as Record<string, string>)));
  root.querySelectorAll<HTMLElement>("[data-t-label]").forEach((el) => {
    const s = t(el.dataset.tLabel as StringKey);
    el.setAttribute("aria-label", s);
    el.title = s;
  });
  root
    .querySelectorAll<HTMLInputElement>("[data-t-ph]")
    .forEach((el) => (el.placeholder = t(el.dataset.tPh as StringKey)));
}

/** Switches between English and Arabic, reloads the strings, and remembers the choice. */
export function toggleLang(store: KeyValueStore): void {
  const next = lang() === "ar" ? "en" : "ar";
  setLang(next);
  translate(document.body);
  void store.set("lang", next);
}

/** Shows the link status honestly: connected, reconnecting or offline, with the last sync time. */
export function renderStatus(el: HTMLElement, status: LinkStatus, lastSync: number | null, stop?: StopReason): void {
  const key: StringKey =
    status === "stopped"
      ? stop === "ended"
        ? "lessonEnded"
        : stop === "kicked" || stop === "denied"
          ? stop
          : stop === "replaced"
            ? "replaced"
            : "stopped"
      : status;
  el.dataset.status = status;
  const label = el.querySelector(".status-label");
  const when = el.querySelector(".status-when");
  if (label) {
    // Keyed, so a language switch re-translates it with the page's static strings.
    (label as HTMLElement).dataset.t = key;
    label.textContent = t(key);
  }
  if (when) {
    when.textContent =
      lastSync && status !== "connected"
        ? t("lastSync", { time: new Date(lastSync).toLocaleTimeString(lang() === "ar" ? "ar" : undefined) })
        : "";
  }
}

/** Timestamps the pages expose for the end-to-end test (page-own clocks). */
export interface Probe {
  /** Teacher: when each page turn was sent. Student: when each page was on screen. */
  marks: { page: number; at: number; seq?: number; ahead?: boolean }[];
  [k: string]: unknown;
}

declare global {
  interface Window {
    /** The page's probe (see `probe`). */
    lectern?: Probe;
  }
}

/** The page's probe, on `window.lectern` (tests/e2e/run.mjs reads it). */
export function probe(): Probe {
  window.lectern ??= { marks: [] };
  return window.lectern;
}

/** Wall-clock time in ms with sub-ms precision, comparable across pages of one machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** `document.querySelector` that must find its element. */
export function $<T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`missing ${sel}`);
  return el;
}

/** An error's message, for a person. */
export function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
