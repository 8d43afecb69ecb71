// The student view: join with a code and a name (prefilled from the link's fragment), or without a
// code by asking the teacher to be let in (a knock: the app's tap on a class found on the network);
// then follow the teacher's page, pointer and highlight; browse freely when the teacher allows it (or
// is offline).
import type { Info } from "../generated/Info";
import { LessonClient, type ClientEvents } from "../client";
import { errorText, retryable, stopText } from "../reconnect";
import { titleSigned } from "../relaycheck";
import { $, initLang, now, probe, reason, renderStatus, toggleLang, type Probe } from "../common";
import { deviceId, studentTokens } from "../device";
import { DocPane } from "../docpane";
import type { LessonState } from "../generated/LessonState";
import { isSignificant } from "../lesson";
import { bindPageKeys, bindSwipe } from "../nav";
import type { Platform } from "../platform/contract";
import { t } from "../strings";
import { ZoomControl, bindZoomKeys } from "../zoom";
import type { Region } from "../region";

/** Opens the student view; rejoins at once when this device holds a token for the linked code. */
export async function startStudent(platform: Platform): Promise<void> {
  const page = new StudentView(platform);
  await initLang(platform);
  await page.restore();
}

/** The student page's state and behaviour; the DOM is index.html's. */
export class StudentView {
  private readonly joinForm = $<HTMLFormElement>("#join-form");
  private readonly codeInput = $<HTMLInputElement>("#code");
  private readonly nameInput = $<HTMLInputElement>("#name");
  private readonly joinButton = $<HTMLButtonElement>("#join-button");
  private readonly joinError = $("#join-error");
  private readonly viewer = $("#viewer");
  private readonly returnButton = $<HTMLButtonElement>("#return");
  private readonly handButton = $<HTMLButtonElement>("#hand");
  private readonly pane: DocPane;
  private readonly marks: Probe = probe();
  private readonly linkCode: string | null;
  /** Opened on a class found on the network (a pinned fingerprint, no code): knock, ask only the name. */
  private readonly knockOnly: boolean;
  /** Welcomes so far: a title checked late never replaces a later welcome's. */
  private welcomes = 0;
  /** Whether the link pins the server's certificate (a relay link checked by name does not). */
  private readonly pinned: boolean;
  /** Joining through a relay: the room and the teacher's key to check every state against. */
  private readonly relay: { room: string; pk: string } | undefined;
  /** Where this server's knock token is kept (a knock has no code to key it by). */
  private readonly knockKey: string;
  /** This device's id, read (or made) once. */
  private readonly device: Promise<string>;
  private client: LessonClient | null = null;
  private state: LessonState | null = null;
  private seq = 0;
  /** The page this student looks at while browsing freely; null while following. */
  private ownPage: number | null = null;
  /** The region this student zoomed to while browsing freely; undefined while following the teacher's. */
  private ownRegion: Region | null | undefined = undefined;
  private readonly zoom: ZoomControl;
  private handUp = false;
  /** A seq to acknowledge once its page is drawn (0: none). */
  private pendingAck = 0;
  /** Joins asked for so far: the latest wins. */
  private joins = 0;
  /** The link was down (reconnecting or offline) at the last status. */
  private away = false;
  /** Whether the screen is asked to stay on (while in a lesson). */
  private awake = false;

  constructor(private readonly platform: Platform) {
    this.pane = new DocPane(
      { stage: $("#stage"), placeholder: $("#placeholder"), pageLabel: $("#page-label") },
      // Behind a relay, every piece of a document is checked against its signed manifest (see `openDoc`).
      (doc) => platform.server.openDoc(doc, this.client?.token ?? "", !!this.relay),
    );
    // The teacher's region of the page, fitted to this screen; in free mode, this student's own.
    this.zoom = new ZoomControl(this.pane.view, $("#stage"), {
      enabled: () => this.canBrowse(),
      canPan: () => true,
      changed: (region) => {
        this.ownRegion = region;
        void this.render();
      },
    });
    this.device = deviceId(platform.store, "student");
    const fragment = platform.launch().fragment;
    this.linkCode = fragment.get("code");
    // A relay's link names the room on the teacher's server and the teacher's key
    // (PROTOCOL-ADDITIONS.md, section E): every state must then be signed with it.
    const [room, pk] = [fragment.get("room"), fragment.get("pk")];
    this.relay = room && pk ? { room, pk } : undefined;
    this.pinned = !!fragment.get("fp");
    this.knockOnly = !this.linkCode && !!fragment.get("fp");
    this.knockKey = `knock@${fragment.get("fp") ?? location.host}`;
    if (!this.linkCode && !this.knockOnly) {
      const hint = $(".hint", this.joinForm);
      hint.dataset.t = "noCodeHint";
      hint.textContent = t("noCodeHint");
    }
    if (this.linkCode || this.knockOnly) {
      // The link carries the code, or the class was found on the network: ask only for the name,
      // under the class's title.
      this.codeInput.value = this.linkCode ?? "";
      this.joinForm.classList.add("has-code");
      if (this.knockOnly) {
        this.joinButton.dataset.t = "askToJoin";
        this.joinButton.textContent = t("askToJoin");
      }
      // A relay serves many rooms: it is asked about the link's.
      const info = this.relay ? `/v1/info?room=${encodeURIComponent(this.relay.room)}` : "/v1/info";
      platform.server.getJson<Info>(info, "").then(
        async (info) => {
          if (!info || typeof info.title !== "string") return;
          // Before joining, at the epoch the relay states (a join page has no state to hold it to).
          const shown = await this.shownTitle(info, info.title_epoch);
          if (shown === null) return;
          const title = $("#join-title");
          title.removeAttribute("data-t");
          title.textContent = shown;
          const hint = $(".hint", this.joinForm);
          hint.removeAttribute("data-t");
          hint.textContent = t("joinWithName", { name: this.relay ? shown : info.name });
        },
        () => {}, // the title is a courtesy; the form works without it
      );
    }
    this.pane.view.onRendered = (page, ahead) => {
      this.marks.marks.push({ page, at: now(), seq: this.seq, ahead });
      if (this.pendingAck && this.state && page === this.state.page) {
        this.client?.ack(this.pendingAck);
        this.pendingAck = 0;
      }
    };
    this.bind();
  }

  /** Fills the form from what this device remembers, and rejoins when it holds a token for the code. */
  async restore(): Promise<void> {
    const store = this.platform.store;
    const storedCode = await store.get("student.code");
    if (!this.codeInput.value) this.codeInput.value = storedCode ?? "";
    if (!this.nameInput.value) this.nameInput.value = (await store.get("student.name")) ?? "";
    const name = this.nameInput.value;
    if (this.knockOnly) {
      // One tap: a name this device already gave is all a knock needs.
      if (name) void this.join(null, name);
      else this.nameInput.focus();
      return;
    }
    const code = this.linkCode ?? storedCode;
    const resumable = !!code && !!(await studentTokens(store, code).load());
    if (resumable && code && name) void this.join(code, name);
    else (this.codeInput.value ? this.nameInput : this.codeInput).focus();
  }

  private bind(): void {
    document.querySelectorAll(".lang-toggle").forEach((b) => b.addEventListener("click", () => toggleLang(this.platform.store)));
    this.joinForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const code = this.knockOnly ? "" : this.codeInput.value.replace(/\D/g, "");
      const name = this.nameInput.value.trim();
      this.joinError.textContent = "";
      if (code.length !== 6 && code.length !== 0) {
        this.joinError.textContent = t("needCode");
        this.codeInput.focus();
        return;
      }
      if (!name) {
        this.joinError.textContent = t("needName");
        this.nameInput.focus();
        return;
      }
      // No code: ask the teacher to let us in.
      void this.join(code || null, name);
    });
    this.handButton.addEventListener("click", () => {
      this.handUp = !this.handUp;
      this.handButton.setAttribute("aria-pressed", String(this.handUp));
      const label = this.handUp ? t("lowerHand") : t("raiseHand");
      this.handButton.setAttribute("aria-label", label);
      $(".hand-label", this.handButton).textContent = label;
      this.client?.hand(this.handUp);
    });
    $("#prev").addEventListener("click", () => this.browse(-1));
    $("#next").addEventListener("click", () => this.browse(1));
    this.returnButton.addEventListener("click", () => this.returnToTeacher());
    bindPageKeys((delta) => this.browse(delta), { enabled: () => !this.viewer.hidden });
    // A swipe turns the page unless the page is zoomed (a drag pans) or a second finger pinches.
    bindSwipe($("#stage"), (delta) => this.browse(delta), () => !this.zoom.zoomed && this.zoom.fingers <= 1);
    bindZoomKeys(this.zoom, () => !this.viewer.hidden && this.canBrowse());
  }

  /** Joins with a code (or knocks, without one) and a name. One connection per device: a second join
   * replaces the first. */
  private async join(code: string | null, name: string): Promise<void> {
    const serial = ++this.joins;
    const old = this.client;
    this.client = null; // first, so that the old client's last events are ignored
    old?.stop();
    this.joinButton.textContent = t("joining");
    this.joinButton.dataset.t = "joining";
    this.joinButton.disabled = true;
    const device = await this.device;
    if (serial !== this.joins) return; // a newer join replaced this one meanwhile
    const client: LessonClient = new LessonClient(
      {
        network: this.platform.network,
        device,
        credentials: { role: "student", code, name },
        tokens: studentTokens(this.platform.store, code ?? this.knockKey),
        relay: this.relay,
      },
      this.events(code, name, () => this.client === client),
    );
    this.client = client;
    this.marks.client = client;
    await client.start();
  }

  /** The room's title as this page may show it: behind a relay only when the teacher signed it (a
   * relay passes it on from Redis), else null and the page keeps its own words. */
  private async shownTitle(room: { title: string; title_sig?: string }, epoch: number | undefined): Promise<string | null> {
    if (!this.relay) return room.title;
    return (await titleSigned(this.relay.pk, this.relay.room, room.title, room.title_sig, epoch)) ? room.title : null;
  }

  /** What the page does with a client's news; `current` says whether that client is still ours. */
  private events(code: string | null, name: string, current: () => boolean): ClientEvents {
    const store = this.platform.store;
    return {
      welcome: (msg) => {
        if (!current()) return;
        if (code) void store.set("student.code", code);
        void store.set("student.name", name);
        $("#join").hidden = true;
        this.viewer.hidden = false;
        const welcome = ++this.welcomes;
        // At the epoch of the state it comes with: a title from before a rename is not shown.
        void this.shownTitle(msg.room, msg.signed?.epoch).then((title) => {
          // Only the latest welcome's title, once checked (two may be checked at once).
          if (!current() || welcome !== this.welcomes) return;
          $("#room-title").textContent = title ?? "";
          document.title = title === null ? "Lectern" : `${title} · Lectern`;
        });
      },
      state: (next, nextSeq, patch) => {
        if (!current()) return;
        const newDoc = next.doc?.sha256 !== this.state?.doc?.sha256;
        const turned = !this.state || next.page !== this.state.page || newDoc;
        this.state = next;
        this.seq = nextSeq;
        if (!this.canBrowse() || newDoc) {
          this.ownPage = null;
          this.ownRegion = undefined;
        }
        if (!patch || isSignificant(patch)) {
          // Ack once the change is on screen: at once unless a new page must be drawn first.
          if (turned && !this.canBrowse()) this.pendingAck = nextSeq;
          else this.client?.ack(nextSeq);
        }
        void this.render();
      },
      teacher: () => {
        if (!current()) return;
        if (!this.canBrowse()) {
          this.ownPage = null;
          this.ownRegion = undefined;
        }
        void this.render();
      },
      status: (status, detail) => {
        if (!current()) return;
        const wasAway = this.away;
        this.away = status !== "connected";
        if (status === "connected") this.stayAwake(true);
        else if (status === "stopped") this.stayAwake(false);
        if (wasAway && !this.away) this.pane.view.rerender();
        renderStatus($("#status"), status, detail.lastSync, detail.stop);
        if (status === "waiting") {
          this.joinButton.textContent = t("waiting");
          this.joinButton.dataset.t = "waiting";
        }
        if (status !== "stopped") return;
        if (detail.stop === "credentials" || detail.stop === "denied") {
          this.viewer.hidden = true;
          $("#join").hidden = false;
          this.joinError.textContent = t(detail.stop === "denied" ? "denied" : "badCode");
          const again = this.knockOnly ? "askToJoin" : "join";
          this.joinButton.dataset.t = again;
          this.joinButton.textContent = t(again);
          this.joinButton.disabled = false;
          return;
        }
        $("#stopped-text").textContent = stopText(detail.stop, detail.reason, this.pinned);
        const retry = $<HTMLButtonElement>("#stopped-retry");
        retry.hidden = !retryable(detail.stop, this.pinned);
        retry.onclick = () => {
          $("#stopped").hidden = true;
          void this.join(code, name);
        };
        $("#stopped").hidden = false;
      },
      error: (code, message) => {
        if (current()) this.joinError.textContent = message || errorText(code);
      },
    };
  }

  /** Keeps the screen on while in a lesson (a tablet that dims misses page turns), and says so when
   * the browser or the device will not. */
  private stayAwake(on: boolean): void {
    if (on === this.awake) return;
    this.awake = on;
    const note = $("#awake-note");
    this.platform.stayAwake(on).then(
      () => (note.hidden = true),
      (e: unknown) => {
        if (!this.awake) return;
        note.textContent = t("screenMayDim", { reason: reason(e) });
        note.hidden = false;
      },
    );
  }

  private canBrowse(): boolean {
    return !!this.state && (this.state.mode === "free" || !(this.client?.teacherOnline ?? true));
  }

  private shownPage(): number {
    return (this.canBrowse() && this.ownPage !== null ? this.ownPage : this.state?.page) ?? 1;
  }

  private async render(): Promise<void> {
    const doc = this.state?.doc ?? null;
    if (!this.state || !(await this.pane.ready(doc)) || !doc) return;
    if (this.state.doc?.sha256 !== doc.sha256) return; // a newer document won
    const page = Math.min(this.shownPage(), doc.pages);
    if (this.ownRegion === undefined) this.zoom.follow(this.state.view);
    await this.pane.showPage(page, doc.pages);
    const state = this.state;
    const following = page === state.page && this.ownRegion === undefined;
    this.pane.view.setPointer(page === state.page ? state.pos : null);
    this.pane.view.setMarks(state.marks[String(page)] ?? []);
    // A stroke the teacher left half drawn when its console went away is not shown.
    this.pane.view.setLive(this.client?.teacherOnline === false ? null : (state.live ?? null));
    this.pane.view.setHighlight(state.highlight);
    const browsing = this.canBrowse();
    $("#mode-label").textContent = browsing
      ? this.client?.teacherOnline === false
        ? t("teacherOffline")
        : t("freeBrowsing")
      : t("following");
    this.returnButton.hidden = !browsing || following;
    $<HTMLButtonElement>("#prev").disabled = !browsing || page <= 1;
    $<HTMLButtonElement>("#next").disabled = !browsing || page >= doc.pages;
    const notice = $("#notice");
    notice.hidden = !state.notice;
    notice.textContent = state.notice ?? "";
  }

  private browse(delta: number): void {
    const pages = this.state?.doc?.pages;
    if (!this.canBrowse() || !this.state || !pages) return;
    const next = Math.min(Math.max(1, this.shownPage() + delta), pages);
    this.ownPage = next === this.state.page ? null : next;
    this.client?.view(this.ownPage);
    void this.render();
  }

  private returnToTeacher(): void {
    this.ownPage = null;
    this.ownRegion = undefined;
    this.client?.view(null);
    void this.render();
  }
}
