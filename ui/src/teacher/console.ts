// The teacher console: the document (open or choose, pdf.js, pages by buttons, keys and swipes,
// laser pointer, highlight, pen), follow/free, a notice, the student grid and ending the lesson, around
// one LessonClient. The join code and history are in `lessoninfo.ts`, the grid in `grid.ts`, the pen
// in `pen.ts`, undo and the ink bar in `marks.ts`.
import { LessonClient } from "../client";
import { $, initLang, now, probe, reason, renderStatus, toggleLang, translate, type Probe } from "../common";
import { deviceId, teacherTokens } from "../device";
import { DocPane } from "../docpane";
import { preloadPdfJs } from "../pdfview";
import type { DocList } from "../generated/DocList";
import type { LessonState } from "../generated/LessonState";
import type { RosterEntry } from "../generated/RosterEntry";
import type { SetPatch } from "../generated/SetPatch";
import { isSignificant, rectFrom } from "../lesson";
import { bindPageKeys, bindSwipe } from "../nav";
import type { Point } from "../pdfview";
import type { PickedFile, Platform } from "../platform/contract";
import { t } from "../strings";
import { ZoomControl, bindZoomKeys } from "../zoom";
import { renderGrid } from "./grid";
import { KnockPanel } from "./knocks";
import { MarkHistory } from "./marks";
import { Pen } from "./pen";
import { bindPresent, showGuessing, showHistory, showJoinInfo } from "./lessoninfo";

/** Opens the console: with the key from the link (or the one this device kept), else says how. */
export async function startTeacher(platform: Platform): Promise<void> {
  let opened: TeacherConsole | null = null;
  document.querySelectorAll(".lang-toggle").forEach((b) =>
    b.addEventListener("click", () => {
      toggleLang(platform.store);
      opened?.redraw();
    }),
  );
  await initLang(platform);
  const key = platform.launch().fragment.get("key") ?? (await platform.store.get("teacher.key"));
  if (!key) {
    $("#console").hidden = true;
    $("#no-key").hidden = false;
    return;
  }
  await platform.store.set("teacher.key", key);
  opened = new TeacherConsole(platform, key, await deviceId(platform.store, "teacher"));
  await opened.start();
}

type Tool = "none" | "laser" | "mark" | "pen" | "eraser";

/** The console's state and behaviour; the DOM is teacher.html's. */
export class TeacherConsole {
  private readonly client: LessonClient;
  private readonly pane: DocPane;
  private readonly docSelect = $<HTMLSelectElement>("#doc-select");
  private readonly marks: Probe = probe();
  private state: LessonState | null = null;
  private seq = 0;
  /** Seqs of significant changes, ascending: a student's ack tells how many it lacks. */
  private readonly significant: number[] = [];
  private lastRoom: string | null = null;
  private readonly roster = new Map<string, RosterEntry>();
  private tool: Tool = "none";
  /** The page last asked for and not yet confirmed by its patch: quick taps count from it. */
  private wantedPage: number | null = null;
  private toastTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly knocks: KnockPanel;
  /** The id of a `new_code` awaiting its `ok`. */
  private newCodeRequest: number | null = null;
  /** The teacher's zoom and pan over the page: what students in follow mode see. */
  private readonly zoom: ZoomControl;
  /** The next draw takes the state's region (a snapshot, or a new document), not the hand's. */
  private adoptView = true;
  /** The marks this console gave, for undo; the pen's colour and width. */
  private readonly history: MarkHistory;
  private readonly pen: Pen;

  constructor(
    private readonly platform: Platform,
    private readonly key: string,
    device: string,
  ) {
    // The teacher's own documents are mostly drawn by pdf.js: its script loads while the console opens.
    void preloadPdfJs().catch(() => {});
    this.pane = new DocPane(
      { stage: $("#stage"), placeholder: $("#placeholder"), pageLabel: $("#page-label") },
      (doc) => platform.server.openDoc(doc, key),
    );
    const sendView = perFrame((view: SetPatch["view"]) => this.set({ view }));
    this.zoom = new ZoomControl(this.pane.view, $("#stage"), {
      enabled: () => !!this.state?.doc,
      canPan: () => this.tool === "none" && !this.pen.drawing,
      changed: (region) => sendView(region),
    });
    bindZoomKeys(this.zoom, () => !!this.state?.doc);
    document.addEventListener("keydown", (ev) => {
      if (!(ev.ctrlKey || ev.metaKey) || (ev.target instanceof Element && ev.target.closest("input, select, textarea"))) return;
      const key = ev.key.toLowerCase();
      if (key !== "z" && key !== "y") return;
      ev.preventDefault();
      this.history.undo(key === "y" || ev.shiftKey);
    });
    this.history = new MarkHistory({ state: () => this.state, set: (patch) => this.set(patch) });
    const inkTool = () => (this.tool === "pen" || this.tool === "laser" || this.tool === "eraser" ? this.tool : "other");
    this.pen = new Pen({
      view: this.pane.view,
      tool: inkTool,
      page: () => (this.state?.doc ? this.state.page : null),
      marks: (page) => this.state?.marks[String(page)] ?? [],
      color: () => this.history.color(),
      width: () => this.history.width(),
      nextId: (page) => this.history.nextId(page),
      send: (patch) => this.client.set(patch),
      kept: (page, mark, joined) => this.history.kept(page, mark, joined),
      refused: (page, id) => this.history.refused(page, id),
    });
    this.knocks = new KnockPanel({
      admit: (ids) => this.client.request({ t: "admit", knocks: ids }),
      deny: (ids) => this.client.request({ t: "deny", knocks: ids }),
      arrived: (ks) =>
        this.toast(ks.length === 1 ? t("asksToJoin", { name: ks[0].name }) : t("manyAskToJoin", { count: ks.length })),
    });
    this.client = new LessonClient(
      { network: platform.network, device, credentials: { role: "teacher", key }, tokens: teacherTokens(platform.store) },
      {
        welcome: (msg) => {
          if (msg.room.id !== this.lastRoom) {
            // A new lesson (the server restarted with --new-lesson, say): new join code and QR code.
            this.lastRoom = msg.room.id;
            void showJoinInfo(platform, key).catch((e) => console.error(e));
            void showHistory(platform, key, (m) => this.toast(m)).catch((e) => console.error(e));
          }
          this.roster.clear();
          this.knocks.update([]); // a welcome is followed by the list when anyone waits
          for (const e of msg.roster ?? []) this.roster.set(e.id, e);
          this.significant.length = 0;
          this.significant.push(msg.seq);
          this.renderGrid();
        },
        state: (next, nextSeq, patch) => {
          if (!patch || next.page === this.wantedPage) this.wantedPage = null;
          if (!patch || patch.doc !== undefined) this.adoptView = true;
          // A stroke left half drawn by a console that went away (this one, before a reload): ended.
          if (!patch && next.live && !this.pen.drawing) this.set({ live: null });
          this.state = next;
          this.seq = nextSeq;
          if (patch && isSignificant(patch)) this.significant.push(nextSeq);
          if (this.significant.length > 500) this.significant.splice(0, this.significant.length - 500);
          void this.render();
          if (patch && isSignificant(patch)) this.renderGrid();
        },
        knocks: (list) => this.knocks.update(list),
        roster: (changes) => {
          for (const e of changes) this.roster.set(e.id, { ...this.roster.get(e.id), ...e });
          this.renderGrid();
        },
        status: (status, detail) => renderStatus($("#status"), status, detail.lastSync, detail.stop),
        error: (_code, message, id) => {
          if (id != null && this.pen.answered(id, true)) return;
          this.wantedPage = null;
          this.toast(message);
        },
        guessing: (wrong, waitingRoom) => showGuessing(wrong, waitingRoom),
        waitingRoom: (on) => ($<HTMLInputElement>("#waiting-room").checked = on),
        ok: (id) => {
          this.pen.answered(id, false);
          if (id !== this.newCodeRequest) return;
          this.newCodeRequest = null;
          showGuessing(0, false);
          void showJoinInfo(platform, key).catch((e) => console.error(e));
          this.toast(t("newCodeDone"));
        },
      },
    );
    this.marks.client = this.client;
    this.marks.seq = () => this.seq;
    this.bindDocuments();
    this.bindNavigation();
    this.bindTools();
    this.bindLesson();
    // A new join code in one tap: students already in stay, the old code lets no one else in.
    $("#new-code").addEventListener("click", () => {
      this.newCodeRequest = this.client.request({ t: "new_code" });
    });
    // The waiting room: students with the code wait to be let in (the box shows what the server says).
    const waitingRoom = $<HTMLInputElement>("#waiting-room");
    waitingRoom.addEventListener("change", () => {
      this.client.request({ t: "waiting_room", on: waitingRoom.checked });
    });
  }

  /** Connects, and lists the documents. The device is kept awake while the console is open (the app
   * holds it from the moment it serves); the console says so when it cannot be. */
  async start(): Promise<void> {
    this.platform.stayAwake(true).catch((e: unknown) => this.toast(t("deviceMaySleep", { reason: reason(e) })));
    await this.client.start();
    translate(document.body);
    void this.loadDocs().catch((e) => console.error(e));
  }

  /** Draws everything again (after the language changed). */
  redraw(): void {
    this.renderGrid();
    this.knocks.render();
    void this.render();
  }

  private set(patch: SetPatch): void {
    this.client.set(patch);
  }

  // --- documents ---------------------------------------------------------------------------------

  private async loadDocs(selected?: string): Promise<void> {
    const { docs } = await this.platform.server.getJson<DocList>("/v1/docs", this.key);
    this.docSelect.replaceChildren(
      new Option(t("chooseDocument"), ""),
      ...docs.map((d) => new Option(`${d.title} (${d.pages})`, d.id)),
    );
    this.docSelect.value = selected ?? this.state?.doc?.id ?? "";
  }

  private bindDocuments(): void {
    this.docSelect.addEventListener("change", () => {
      if (this.docSelect.value) this.set({ doc: this.docSelect.value });
    });
    // The file chooser opens only from the click itself: ask for it before anything is awaited.
    $("#open-doc").addEventListener("click", () => void this.upload(this.platform.dialogs.pickPdf()));
  }

  /** Uploads the PDF the teacher chose, lists it and shows it. */
  private async upload(picked: Promise<PickedFile | null>): Promise<void> {
    try {
      const file = await picked;
      if (!file) return;
      this.toast(t("uploading"));
      const title = file.name.replace(/\.pdf$/i, "");
      const doc = await this.platform.server.uploadDoc(title, file.bytes, this.key);
      await this.loadDocs(doc.id);
      this.set({ doc: doc.id });
    } catch (e) {
      this.toast(t("uploadFailed", { reason: reason(e) }));
    }
  }

  /** Shows a short message over the document for a few seconds (errors, uploads). */
  private toast(message: string): void {
    const el = $("#toast");
    el.textContent = message;
    el.hidden = false;
    if (this.toastTimer) clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (el.hidden = true), 5000);
  }

  // --- the page ----------------------------------------------------------------------------------

  private async render(): Promise<void> {
    const doc = this.state?.doc ?? null;
    if (!this.state || !(await this.pane.ready(doc)) || !doc) return;
    if (this.state.doc?.sha256 !== doc.sha256) return; // a newer document won
    if (this.adoptView) {
      this.adoptView = false;
      this.zoom.follow(this.state.view);
    }
    await this.pane.showPage(this.state.page, doc.pages);
    const state = this.state;
    const view = this.pane.view;
    view.setPointer(state.pos);
    view.setMarks(state.marks[String(state.page)] ?? []);
    view.setLive(this.pen.shown(state.live ?? null));
    view.setHighlight(state.highlight);
    $<HTMLButtonElement>("#prev").disabled = state.page <= 1;
    $<HTMLButtonElement>("#next").disabled = state.page >= doc.pages;
    $("#mode-follow").setAttribute("aria-pressed", String(state.mode === "follow"));
    $("#mode-free").setAttribute("aria-pressed", String(state.mode === "free"));
    if (this.docSelect.value !== doc.id) this.docSelect.value = doc.id;
  }

  private turn(delta: number): void {
    const pages = this.state?.doc?.pages;
    if (!this.state || !pages) return;
    const from = this.wantedPage ?? this.state.page;
    const page = Math.min(Math.max(1, from + delta), pages);
    if (page === from) return;
    this.wantedPage = page;
    this.marks.marks.push({ page, at: now() });
    this.set({ page, highlight: null });
  }

  private bindNavigation(): void {
    $("#prev").addEventListener("click", () => this.turn(-1));
    $("#next").addEventListener("click", () => this.turn(1));
    bindPageKeys((delta) => this.turn(delta), { space: true });
    bindSwipe(this.pane.view.root, (delta) => this.turn(delta), () => this.tool === "none" && !this.zoom.zoomed && this.zoom.fingers <= 1);
    bindPresent();
  }

  // --- pointer and highlight ---------------------------------------------------------------------

  private setTool(next: Tool): void {
    this.pen.end();
    this.tool = this.tool === next ? "none" : next;
    for (const t of ["laser", "mark", "pen", "eraser"] as const) $(`#tool-${t}`).setAttribute("aria-pressed", String(this.tool === t));
    $("#stage").dataset.tool = this.tool;
    if (this.tool !== "laser" && this.state?.pos) this.set({ pos: null });
  }

  private bindTools(): void {
    $("#tool-laser").addEventListener("click", () => this.setTool("laser"));
    $("#tool-mark").addEventListener("click", () => this.setTool("mark"));
    $("#tool-pen").addEventListener("click", () => this.setTool("pen"));
    $("#tool-eraser").addEventListener("click", () => this.setTool("eraser"));
    $("#mode-follow").addEventListener("click", () => this.set({ mode: "follow" }));
    $("#mode-free").addEventListener("click", () => this.set({ mode: "free" }));

    // The laser pointer: the latest position is sent once per frame the display draws.
    const sendPos = perFrame((pos: Point | null) => this.set({ pos }));

    const view = this.pane.view;
    let dragFrom: Point | null = null;
    view.root.addEventListener("pointerdown", (ev) => {
      if (this.tool === "mark") {
        dragFrom = view.toPage(ev);
        view.root.setPointerCapture(ev.pointerId);
      } else if (this.tool === "laser") {
        sendPos(view.toPage(ev));
      }
    });
    view.root.addEventListener("pointermove", (ev) => {
      if (this.tool === "laser" && (ev.pointerType === "mouse" || ev.buttons)) sendPos(view.toPage(ev));
      if (this.tool === "mark" && dragFrom && this.state) view.setDraft(rectFrom(this.state.page, dragFrom, view.toPage(ev)));
    });
    view.root.addEventListener("pointerup", (ev) => {
      if (this.tool !== "mark" || !dragFrom || !this.state) return;
      const r = rectFrom(this.state.page, dragFrom, view.toPage(ev));
      dragFrom = null;
      view.setDraft(null);
      if (r.w > 0.005 && r.h > 0.005) this.history.highlight(r);
    });
    view.root.addEventListener("pointerleave", () => {
      if (this.tool === "laser") sendPos(null);
    });
  }

  // --- notice, students, end ---------------------------------------------------------------------

  private renderGrid(): void {
    renderGrid(this.roster.values(), {
      significant: this.significant,
      free: this.state?.mode === "free",
      kick: (e) => void this.kick(e),
    });
  }

  private async kick(e: RosterEntry): Promise<void> {
    if (await this.platform.dialogs.confirm(t("kickConfirm", { name: e.name }))) this.client.request({ t: "kick", who: e.id });
  }

  private bindLesson(): void {
    const input = $<HTMLInputElement>("#notice-input");
    $<HTMLFormElement>("#notice-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.set({ notice: input.value.trim() || null });
    });
    $("#notice-clear").addEventListener("click", () => {
      input.value = "";
      this.set({ notice: null });
    });
    $("#end").addEventListener("click", async () => {
      if (await this.platform.dialogs.confirm(t("endConfirm"))) this.client.request({ t: "end" });
    });
  }
}

/** Sends only the latest of the values given within one displayed frame, at that frame. */
function perFrame<T>(send: (value: T) => void): (value: T) => void {
  let pending: { value: T } | null = null;
  return (value) => {
    const queued = pending !== null;
    pending = { value };
    if (queued) return;
    requestAnimationFrame(() => {
      const p = pending;
      pending = null;
      if (p) send(p.value);
    });
  };
}
