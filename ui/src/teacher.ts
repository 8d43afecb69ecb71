// The teacher console: the join code (big enough for a projector) with its link and QR code, the
// document (open or choose, pdf.js, pages by buttons, keys and swipes, laser pointer, highlight),
// follow/free, a notice, the student grid, end lesson, history and attendance.
import "./style.css";
import qrcode from "qrcode-generator";
import { LessonClient } from "./client";
import { $, deviceId, fragment, initLang, now, probe, renderStatus, toggleLang, translate } from "./common";
import { loadDoc } from "./docs";
import { changesBehind, isSignificant, rectFrom } from "./lesson";
import { PdfView, type Point } from "./pdfview";
import { platform } from "./platform";
import { t } from "./strings";
import type { Doc } from "./generated/Doc";
import type { LessonState } from "./generated/LessonState";
import type { RosterEntry } from "./generated/RosterEntry";

initLang();
document.querySelectorAll(".lang-toggle").forEach((b) => b.addEventListener("click", () => {
  toggleLang();
  renderGrid();
  void render();
}));

const key = fragment().get("key") ?? platform.get("teacher.key");
const marks = probe();

if (!key) {
  $("#console").hidden = true;
  $("#no-key").hidden = false;
  throw new Error("no teacher key");
}
platform.set("teacher.key", key);
const auth = { Authorization: `Bearer ${key}` };

const stage = $("#stage");
const view = new PdfView(stage);
const placeholder = $("#placeholder");
const pageLabel = $("#page-label");
const grid = $("#grid");
const docSelect = $<HTMLSelectElement>("#doc-select");
let state: LessonState | null = null;
let seq = 0;
/** Seqs of significant changes, ascending: a student's ack tells how many it lacks. */
const significant: number[] = [];
let lastRoom: string | null = null;
const roster = new Map<string, RosterEntry>();
let tool: "none" | "laser" | "mark" = "none";
/** The document being fetched and parsed, shared by every render that needs it. */
let docLoading: { sha: string; done: Promise<void> } | null = null;

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, { ...init, headers: { ...auth, ...(init.headers ?? {}) } });
  if (!res.ok) {
    let reason = `${res.status}`;
    try {
      reason = ((await res.json()) as { error?: string }).error ?? reason;
    } catch {
      /* not JSON */
    }
    throw new Error(reason);
  }
  return (await res.json()) as T;
}

// --- join code, link, QR -------------------------------------------------------------------------

function qrDataUrl(text: string): string {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return qr.createDataURL(8, 2);
}

async function loadJoinInfo(): Promise<void> {
  const info = await api<{ code: string; fingerprint: string; title: string; room: string }>("/v1/lesson");
  const link = `${location.origin}/join#code=${info.code}&fp=${info.fingerprint}`;
  const spaced = `${info.code.slice(0, 3)} ${info.code.slice(3)}`;
  $("#code-big").textContent = spaced;
  $("#present-code").textContent = spaced;
  $("#join-link").textContent = link;
  $("#present-link").textContent = link;
  const url = qrDataUrl(link);
  for (const id of ["#qr", "#present-qr"]) {
    const img = $<HTMLImageElement>(id);
    img.src = url;
    img.alt = t("qrAlt");
  }
  $("#lesson-title").textContent = info.title;
  document.title = `${info.title} · Lectern`;
  $("#copy").onclick = async () => {
    if (await platform.copy(link)) $("#copy").textContent = t("copied");
  };
}

$("#code-big").addEventListener("click", () => ($("#present").hidden = false));
$("#present").addEventListener("click", () => ($("#present").hidden = true));

// --- documents -----------------------------------------------------------------------------------

async function loadDocs(selected?: string): Promise<void> {
  const { docs } = await api<{ docs: Doc[] }>("/v1/docs");
  docSelect.replaceChildren(
    new Option(t("chooseDocument"), ""),
    ...docs.map((d) => new Option(`${d.title} (${d.pages})`, d.id)),
  );
  docSelect.value = selected ?? state?.doc?.id ?? "";
}

docSelect.addEventListener("change", () => {
  if (docSelect.value) client.set({ doc: docSelect.value });
});

$<HTMLInputElement>("#file").addEventListener("change", async (ev) => {
  const input = ev.target as HTMLInputElement;
  const file = input.files?.[0];
  if (!file) return;
  toast(t("uploading"));
  try {
    const title = file.name.replace(/\.pdf$/i, "");
    const doc = await api<Doc>(`/v1/docs?title=${encodeURIComponent(title)}`, {
      method: "POST",
      headers: { "Content-Type": "application/pdf" },
      body: file,
    });
    await platform.cacheDoc(doc.sha256, await file.arrayBuffer());
    await loadDocs(doc.id);
    client.set({ doc: doc.id });
  } catch (e) {
    toast(t("uploadFailed", { reason: e instanceof Error ? e.message : String(e) }));
  } finally {
    input.value = "";
  }
});

/** Shows a short message over the document for a few seconds (errors, uploads). */
let toastTimer: ReturnType<typeof setTimeout> | null = null;
function toast(message: string): void {
  const el = $("#toast");
  el.textContent = message;
  el.hidden = false;
  if (toastTimer) clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 5000);
}

// --- the page --------------------------------------------------------------------------------------

async function render(): Promise<void> {
  if (!state) return;
  const doc = state.doc;
  if (!doc) {
    placeholder.hidden = false;
    placeholder.textContent = t("noDocument");
    view.root.hidden = true;
    pageLabel.textContent = "";
    return;
  }
  if (view.key !== doc.sha256) {
    placeholder.hidden = false;
    placeholder.textContent = t("loadingDoc");
    if (docLoading?.sha !== doc.sha256) {
      const sha = doc.sha256;
      docLoading = { sha, done: loadDoc(doc, key!, platform).then((bytes) => view.load(sha, bytes)) };
    }
    const loading = docLoading;
    try {
      await loading.done;
    } catch (e) {
      if (docLoading === loading) docLoading = null;
      placeholder.textContent = `${t("loadingDoc")} (${e instanceof Error ? e.message : String(e)})`;
      return;
    }
    if (state.doc?.sha256 !== doc.sha256 || view.key !== doc.sha256) return;
  }
  placeholder.hidden = true;
  view.root.hidden = false;
  const label = t("page", { page: state.page, pages: doc.pages });
  pageLabel.textContent = label;
  await view.show(state.page, label);
  view.setPointer(state.pos);
  view.setHighlight(state.highlight);
  $<HTMLButtonElement>("#prev").disabled = state.page <= 1;
  $<HTMLButtonElement>("#next").disabled = state.page >= doc.pages;
  $("#mode-follow").setAttribute("aria-pressed", String(state.mode === "follow"));
  $("#mode-free").setAttribute("aria-pressed", String(state.mode === "free"));
  if (docSelect.value !== doc.id) docSelect.value = doc.id;
}

/** The page last asked for and not yet confirmed by its patch: quick taps count from it. */
let wantedPage: number | null = null;

function turn(delta: number): void {
  if (!state?.doc) return;
  const from = wantedPage ?? state.page;
  const page = Math.min(Math.max(1, from + delta), state.doc.pages);
  if (page === from) return;
  wantedPage = page;
  marks.marks.push({ page, at: now() });
  client.set({ page, highlight: null });
}

$("#prev").addEventListener("click", () => turn(-1));
$("#next").addEventListener("click", () => turn(1));
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof Element && ev.target.closest("input, select, textarea")) return;
  const rtl = document.dir === "rtl";
  if (ev.key === "ArrowRight" || ev.key === "PageDown" || ev.key === " ") turn(rtl ? -1 : 1);
  else if (ev.key === "ArrowLeft" || ev.key === "PageUp") turn(rtl ? 1 : -1);
  else if (ev.key === "Escape") $("#present").hidden = true;
  else return;
  ev.preventDefault();
});

function setTool(next: typeof tool): void {
  tool = tool === next ? "none" : next;
  $("#tool-laser").setAttribute("aria-pressed", String(tool === "laser"));
  $("#tool-mark").setAttribute("aria-pressed", String(tool === "mark"));
  stage.dataset.tool = tool;
  if (tool !== "laser" && state?.pos) client.set({ pos: null });
}
$("#tool-laser").addEventListener("click", () => setTool("laser"));
$("#tool-mark").addEventListener("click", () => setTool("mark"));
$("#clear-mark").addEventListener("click", () => client.set({ highlight: null }));
$("#mode-follow").addEventListener("click", () => client.set({ mode: "follow" }));
$("#mode-free").addEventListener("click", () => client.set({ mode: "free" }));

// The laser pointer: the latest position is sent once per frame the display draws.
let pendingPos: Point | null | undefined;
let frameQueued = false;
function sendPos(pos: Point | null): void {
  pendingPos = pos;
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    if (pendingPos !== undefined) client.set({ pos: pendingPos });
    pendingPos = undefined;
  });
}

let dragFrom: Point | null = null;
let swipeFrom: number | null = null;
view.root.addEventListener("pointerdown", (ev) => {
  if (tool === "mark") {
    dragFrom = view.toPage(ev);
    view.root.setPointerCapture(ev.pointerId);
  } else if (tool === "laser") {
    sendPos(view.toPage(ev));
  } else {
    swipeFrom = ev.clientX;
  }
});
view.root.addEventListener("pointermove", (ev) => {
  if (tool === "laser" && (ev.pointerType === "mouse" || ev.buttons)) sendPos(view.toPage(ev));
  if (tool === "mark" && dragFrom && state) {
    const r = rectFrom(state.page, dragFrom, view.toPage(ev));
    view.setDraft(r);
  }
});
view.root.addEventListener("pointerup", (ev) => {
  if (tool === "mark" && dragFrom && state) {
    const r = rectFrom(state.page, dragFrom, view.toPage(ev));
    dragFrom = null;
    view.setDraft(null);
    if (r.w > 0.005 && r.h > 0.005) client.set({ highlight: r });
  } else if (swipeFrom !== null) {
    const dx = ev.clientX - swipeFrom;
    swipeFrom = null;
    if (Math.abs(dx) > 60) turn((dx < 0 ? 1 : -1) * (document.dir === "rtl" ? -1 : 1));
  }
});
view.root.addEventListener("pointerleave", () => {
  if (tool === "laser") sendPos(null);
});

$<HTMLFormElement>("#notice-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $<HTMLInputElement>("#notice-input").value.trim();
  client.set({ notice: text || null });
});
$("#notice-clear").addEventListener("click", () => {
  $<HTMLInputElement>("#notice-input").value = "";
  client.set({ notice: null });
});

// --- students ----------------------------------------------------------------------------------------

function renderGrid(): void {
  const entries = [...roster.values()].filter((e) => !e.kicked);
  entries.sort((a, b) => Number(b.online) - Number(a.online) || Number(b.hand) - Number(a.hand) || a.name.localeCompare(b.name));
  $("#student-count").textContent = String(entries.filter((e) => e.online).length);
  $("#no-students").hidden = entries.length > 0;
  grid.replaceChildren(
    ...entries.map((e) => {
      const li = document.createElement("li");
      li.className = "tile";
      li.dataset.online = String(e.online);
      li.dataset.hand = String(e.hand);
      li.dataset.id = e.id;
      const behind = changesBehind(significant, e.acked === null || e.acked === undefined ? null : Number(e.acked));
      const where =
        e.view !== null && e.view !== undefined && state?.mode === "free"
          ? t("viewing", { page: e.view })
          : behind === null
            ? t("notYet")
            : behind === 0
              ? t("onPage")
              : t("behind", { n: behind });
      li.innerHTML = `
        <div class="tile-top"><span class="dot" aria-hidden="true"></span><strong class="tile-name"></strong>
          ${e.hand ? `<span class="tile-hand" role="img" aria-label="${t("hand")}">✋</span>` : ""}</div>
        <div class="tile-meta"><span class="where"></span></div>
        <div class="tile-meta muted"><span>${e.online ? t("online") : t("away")} · ${e.remote ? t("remote") : t("local")}</span>
          <span>${e.rtt_ms !== null && e.rtt_ms !== undefined ? t("rtt", { ms: Number(e.rtt_ms) }) : ""}</span></div>
        <button class="kick small" type="button"></button>`;
      li.querySelector(".tile-name")!.textContent = e.name;
      li.querySelector(".where")!.textContent = where;
      li.dataset.behind = String(behind ?? "");
      const kick = li.querySelector<HTMLButtonElement>(".kick")!;
      kick.textContent = t("kick");
      kick.setAttribute("aria-label", `${t("kick")}: ${e.name}`);
      kick.onclick = () => {
        if (confirm(t("kickConfirm", { name: e.name }))) client.request({ t: "kick", who: e.id });
      };
      return li;
    }),
  );
}

// --- lesson: end, history ---------------------------------------------------------------------------

$("#end").addEventListener("click", () => {
  if (confirm(t("endConfirm"))) client.request({ t: "end" });
});

interface LessonRow {
  id: number;
  title: string;
  started_ms: number;
  ended_ms: number | null;
  students: number;
}

async function loadHistory(): Promise<void> {
  const { lessons } = await api<{ lessons: LessonRow[] }>("/v1/lessons");
  $("#history").replaceChildren(
    ...lessons.slice(0, 20).map((l) => {
      const li = document.createElement("li");
      const when = new Date(l.started_ms).toLocaleString(document.documentElement.lang);
      li.innerHTML = `<span class="h-title"></span><span class="muted h-when"></span><button class="small link"></button>`;
      li.querySelector(".h-title")!.textContent = l.title;
      li.querySelector(".h-when")!.textContent = when;
      const b = li.querySelector("button")!;
      b.textContent = t("attendance");
      b.onclick = async () => {
        const res = await fetch(`/v1/lessons/${l.id}/attendance.csv`, { headers: auth });
        if (!res.ok) {
          toast(`${t("attendance")}: ${res.status} ${res.statusText}`);
          return;
        }
        const a = document.createElement("a");
        a.href = URL.createObjectURL(await res.blob());
        a.download = `lesson-${l.id}-attendance.csv`;
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      };
      return li;
    }),
  );
}

// --- the connection --------------------------------------------------------------------------------

const client = new LessonClient(
  `wss://${location.host}/v1/ws`,
  deviceId("teacher"),
  { role: "teacher", key },
  { load: () => platform.get("teacher.token"), save: (v) => platform.set("teacher.token", v) },
  {
    welcome(msg) {
      if (msg.room.id !== lastRoom) {
        // A new lesson (the server restarted with --new-lesson, say): new join code and QR code.
        lastRoom = msg.room.id;
        void loadJoinInfo().catch((e) => console.error(e));
        void loadHistory().catch((e) => console.error(e));
      }
      roster.clear();
      for (const e of msg.roster ?? []) roster.set(e.id, e);
      significant.length = 0;
      significant.push(Number(msg.seq));
      renderGrid();
    },
    state(next, nextSeq, patch) {
      if (!patch || next.page === wantedPage) wantedPage = null;
      state = next;
      seq = nextSeq;
      if (patch && isSignificant(patch)) significant.push(nextSeq);
      if (significant.length > 500) significant.splice(0, significant.length - 500);
      void render();
      if (patch && isSignificant(patch)) renderGrid();
    },
    roster(changes) {
      for (const e of changes) roster.set(e.id, { ...roster.get(e.id), ...e });
      renderGrid();
    },
    status(status, detail) {
      renderStatus($("#status"), status, detail.lastSync, detail.stop);
    },
    error(_code, message) {
      wantedPage = null;
      toast(message);
    },
  },
);
(marks as Record<string, unknown>).client = client;
(marks as Record<string, unknown>).seq = () => seq;
client.start();
translate(document.body);
void loadDocs().catch((e) => console.error(e));
