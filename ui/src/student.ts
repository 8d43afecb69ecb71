// The student view: join with a code and a name (prefilled from the link's fragment), then follow the
// teacher's page, pointer and highlight; browse freely when the teacher allows it (or is offline).
import "./style.css";
import { LessonClient, type StopReason } from "./client";
import { $, deviceId, fragment, initLang, now, probe, renderStatus, toggleLang } from "./common";
import { loadDoc } from "./docs";
import { isSignificant } from "./lesson";
import { PdfView } from "./pdfview";
import { platform } from "./platform";
import { t } from "./strings";
import type { LessonState } from "./generated/LessonState";

initLang();

const joinForm = $<HTMLFormElement>("#join-form");
const codeInput = $<HTMLInputElement>("#code");
const nameInput = $<HTMLInputElement>("#name");
const joinError = $("#join-error");
const viewer = $("#viewer");
const stage = $("#stage");
const placeholder = $("#placeholder");
const statusEl = $("#status");
const pageLabel = $("#page-label");
const modeLabel = $("#mode-label");
const returnButton = $<HTMLButtonElement>("#return");
const handButton = $<HTMLButtonElement>("#hand");
const noticeEl = $("#notice");

document.querySelectorAll(".lang-toggle").forEach((b) => b.addEventListener("click", toggleLang));

const frag = fragment();
const linkCode = frag.get("code");
codeInput.value = linkCode ?? platform.get("student.code") ?? "";
nameInput.value = platform.get("student.name") ?? "";

const view = new PdfView(stage);
let client: LessonClient | null = null;
let state: LessonState | null = null;
let seq = 0;
/** The page this student looks at while browsing freely; null while following. */
let ownPage: number | null = null;
let handUp = false;
let pendingAck = 0;
/** The document being fetched and parsed, shared by every render that needs it. */
let docLoading: { sha: string; done: Promise<void> } | null = null;
const marks = probe();

function tokenStore(code: string) {
  // A token belongs to the code it joined with: a new lesson's link starts afresh.
  return {
    load: () => (platform.get("student.tokenCode") === code ? platform.get("student.token") : null),
    save: (token: string | null) => {
      platform.set("student.token", token);
      platform.set("student.tokenCode", token ? code : null);
    },
  };
}

function canBrowse(): boolean {
  return !!state && (state.mode === "free" || !(client?.teacherOnline ?? true));
}

function shownPage(): number {
  return (canBrowse() && ownPage !== null ? ownPage : state?.page) ?? 1;
}

async function render(): Promise<void> {
  if (!state) return;
  const doc = state.doc;
  placeholder.hidden = !!doc && view.loaded;
  if (!doc) {
    placeholder.textContent = t("noDocument");
    placeholder.hidden = false;
    view.root.hidden = true;
    pageLabel.textContent = "";
    return;
  }
  if (view.key !== doc.sha256) {
    placeholder.textContent = t("loadingDoc");
    placeholder.hidden = false;
    // One download per document, however many changes arrive while it loads.
    if (docLoading?.sha !== doc.sha256) {
      const token = platform.get("student.token") ?? "";
      const sha = doc.sha256;
      docLoading = { sha, done: loadDoc(doc, token, platform).then((bytes) => view.load(sha, bytes)) };
    }
    const loading = docLoading;
    try {
      await loading.done;
    } catch (e) {
      if (docLoading === loading) docLoading = null; // the next change tries again
      placeholder.textContent = `${t("loadingDoc")} (${String(e)})`;
      return;
    }
    if (state.doc?.sha256 !== doc.sha256 || view.key !== doc.sha256) return; // a newer document won
  }
  placeholder.hidden = true;
  view.root.hidden = false;
  const page = Math.min(shownPage(), doc.pages);
  pageLabel.textContent = t("page", { page, pages: doc.pages });
  await view.show(page, t("page", { page, pages: doc.pages }));
  const following = page === state.page;
  view.setPointer(following ? state.pos : null);
  view.setHighlight(state.highlight);
  const browsing = canBrowse();
  modeLabel.textContent = browsing ? (client?.teacherOnline === false ? t("teacherOffline") : t("freeBrowsing")) : t("following");
  returnButton.hidden = !browsing || following;
  $<HTMLButtonElement>("#prev").disabled = !browsing || page <= 1;
  $<HTMLButtonElement>("#next").disabled = !browsing || page >= doc.pages;
  noticeEl.hidden = !state.notice;
  noticeEl.textContent = state.notice ?? "";
}

view.onRendered = (page) => {
  marks.marks.push({ page, at: now(), seq });
  if (pendingAck && state && page === state.page) {
    client?.ack(pendingAck);
    pendingAck = 0;
  }
};

function browse(delta: number): void {
  if (!canBrowse() || !state?.doc) return;
  const next = Math.min(Math.max(1, shownPage() + delta), state.doc.pages);
  ownPage = next === state.page ? null : next;
  client?.view(ownPage);
  void render();
}

function returnToTeacher(): void {
  ownPage = null;
  client?.view(null);
  void render();
}

function stopText(stop: StopReason | undefined): string {
  switch (stop) {
    case "ended":
      return t("ended");
    case "kicked":
      return t("kicked");
    case "replaced":
      return t("replaced");
    default:
      return t("stopped");
  }
}

function start(code: string, name: string): void {
  // One connection per device: a second tap (or a tap after the automatic rejoin) replaces it.
  client?.stop();
  const button = joinForm.querySelector<HTMLButtonElement>("#join-button")!;
  button.textContent = t("joining");
  button.disabled = true;
  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
  client = new LessonClient(wsUrl, deviceId("student"), { role: "student", code, name }, tokenStore(code), {
    welcome(msg) {
      platform.set("student.code", code);
      platform.set("student.name", name);
      $("#join").hidden = true;
      viewer.hidden = false;
      $("#room-title").textContent = msg.room.title;
      document.title = `${msg.room.title} · Lectern`;
    },
    state(next, nextSeq, patch) {
      const newDoc = next.doc?.sha256 !== state?.doc?.sha256;
      const turned = !state || next.page !== state.page || newDoc;
      state = next;
      seq = nextSeq;
      if (!canBrowse() || newDoc) ownPage = null;
      if (!patch || isSignificant(patch)) {
        // Ack once the change is on screen: at once unless a new page must be drawn first.
        if (turned && !canBrowse()) pendingAck = nextSeq;
        else client?.ack(nextSeq);
      }
      void render();
    },
    teacher() {
      if (!canBrowse()) ownPage = null;
      void render();
    },
    status(status, detail) {
      renderStatus(statusEl, status, detail.lastSync, detail.stop);
      if (status === "stopped") {
        if (detail.stop === "credentials") {
          viewer.hidden = true;
          $("#join").hidden = false;
          joinError.textContent = t("badCode");
          button.textContent = t("join");
          button.disabled = false;
          return;
        }
        $("#stopped-text").textContent = stopText(detail.stop);
        $("#stopped").hidden = false;
      }
    },
    error(_code, message) {
      joinError.textContent = message;
    },
  });
  (probe() as Record<string, unknown>).client = client;
  client.start();
}

joinForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const code = codeInput.value.replace(/\D/g, "");
  const name = nameInput.value.trim();
  joinError.textContent = "";
  if (code.length !== 6) {
    joinError.textContent = t("needCode");
    codeInput.focus();
    return;
  }
  if (!name) {
    joinError.textContent = t("needName");
    nameInput.focus();
    return;
  }
  start(code, name);
});

handButton.addEventListener("click", () => {
  handUp = !handUp;
  handButton.setAttribute("aria-pressed", String(handUp));
  const label = handUp ? t("lowerHand") : t("raiseHand");
  handButton.setAttribute("aria-label", label);
  handButton.querySelector(".hand-label")!.textContent = label;
  client?.hand(handUp);
});
$("#prev").addEventListener("click", () => browse(-1));
$("#next").addEventListener("click", () => browse(1));
returnButton.addEventListener("click", returnToTeacher);
document.addEventListener("keydown", (ev) => {
  if (viewer.hidden) return;
  const rtl = document.dir === "rtl";
  if (ev.key === "ArrowRight" || ev.key === "PageDown") browse(rtl ? -1 : 1);
  if (ev.key === "ArrowLeft" || ev.key === "PageUp") browse(rtl ? 1 : -1);
});
let swipeX: number | null = null;
stage.addEventListener("pointerdown", (ev) => (swipeX = ev.clientX));
stage.addEventListener("pointerup", (ev) => {
  if (swipeX === null) return;
  const dx = ev.clientX - swipeX;
  swipeX = null;
  if (Math.abs(dx) > 60) browse((dx < 0 ? 1 : -1) * (document.dir === "rtl" ? -1 : 1));
});

// Rejoin at once when this device already has a token for the linked code (a reload, a reopened tab).
const resumable = platform.get("student.token") && platform.get("student.tokenCode") === (linkCode ?? platform.get("student.code"));
if (resumable && nameInput.value) start(linkCode ?? platform.get("student.code") ?? "", nameInput.value);
else (codeInput.value ? nameInput : codeInput).focus();
