// Shared by both pages: the language switch, the device id, the status pill, the test hooks.
import { platform } from "./platform";
import { pickLang, setLang, t, lang, type StringKey } from "./strings";
import type { LinkStatus, StopReason } from "./client";

/** Sets the page's language from `?lang=`, the stored choice or the browser, and fills static strings. */
export function initLang(): void {
  setLang(pickLang(location.search, platform.get("lang"), navigator.languages ?? [navigator.language]));
  translate(document.body);
}

/** Fills `data-t` (text), `data-t-label` (aria-label and title) and `data-t-ph` (placeholder). */
export function translate(root: ParentNode): void {
  root.querySelectorAll<HTMLElement>("[data-t]").forEach((el) => (el.textContent = t(el.dataset.t as StringKey)));
  root.querySelectorAll<HTMLElement>("[data-t-label]").forEach((el) => {
    const s = t(el.dataset.tLabel as StringKey);
    el.setAttribute("aria-label", s);
    el.title = s;
  });
  root
    .querySelectorAll<HTMLInputElement>("[data-t-ph]")
    .forEach((el) => (el.placeholder = t(el.dataset.tPh as StringKey)));
}

/** Switches between English and Arabic and reloads the strings. */
export function toggleLang(): void {
  const next = lang() === "ar" ? "en" : "ar";
  platform.set("lang", next);
  setLang(next);
  translate(document.body);
}

/** This device's stable id (PROTOCOL.md §3: 8 to 64 of [A-Za-z0-9_-]). */
export function deviceId(role: string): string {
  const key = `device.${role}`;
  let id = platform.get(key);
  if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
    const rand = crypto.getRandomValues(new Uint8Array(12));
    id = `${role}-${Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")}`;
    platform.set(key, id);
  }
  return id;
}

/** The values of a URL fragment such as `#code=482913&fp=…`. */
export function fragment(): URLSearchParams {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

/** Shows the link status honestly: connected, reconnecting or offline, with the last sync time. */
export function renderStatus(el: HTMLElement, status: LinkStatus, lastSync: number | null, stop?: StopReason): void {
  const key: StringKey =
    status === "stopped"
      ? stop === "ended"
        ? "lessonEnded"
        : stop === "kicked"
          ? "kicked"
          : stop === "replaced"
            ? "replaced"
            : "stopped"
      : status;
  el.dataset.status = status;
  const label = el.querySelector(".status-label");
  const when = el.querySelector(".status-when");
  if (label) label.textContent = t(key);
  if (when) {
    when.textContent =
      lastSync && status !== "connected"
        ? t("lastSync", { time: new Date(lastSync).toLocaleTimeString(lang() === "ar" ? "ar" : undefined) })
        : "";
  }
}

/** Timestamps the pages expose for the end-to-end test (page-own clocks, §issue 5). */
export interface Probe {
  /** Teacher: when each page turn was sent. Student: when each page was on screen. */
  marks: { page: number; at: number; seq?: number }[];
  [k: string]: unknown;
}

/** The page's probe, on `window.lectern`. */
export function probe(): Probe {
  const w = window as unknown as { lectern?: Probe };
  w.lectern ??= { marks: [] };
  return w.lectern;
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
