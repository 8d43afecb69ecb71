// The app's start page: teach or join (asked once, remembered, changeable); in teacher mode it opens
// the console on the classroom this device serves; in student mode it lists the classes announced on
// the network (mDNS, found by Rust) and opens the student view on the one tapped, pinned to the
// certificate its announcement carries. A pasted or opened join link works where multicast is blocked.
import "../style.css";
import { initLang, toggleLang, $ } from "../common";
import { appShell, platform, type AppLaunch, type Found, type JoinTarget } from "../platform/app";
import { t } from "../strings";

type Resolved = Extract<Found, { event: "resolved" }>;

function show(id: "choose" | "starting" | "classes"): void {
  for (const s of ["choose", "starting", "classes"]) $(`#${s}`).hidden = s !== id;
}

/** The WebSocket and HTTPS bases of an announced classroom: IPv4 first, as announced. */
export function targetOf(c: Resolved): JoinTarget | null {
  const addr = c.addresses[0];
  if (!addr) return null;
  const host = addr.includes(":") ? `[${addr}]` : addr;
  return { ws: `wss://${host}:${c.port}${c.path}`, http: `https://${host}:${c.port}`, code: null, fingerprint: c.fingerprint, room: null, pk: null };
}

/** The fragment that tells a page which classroom to talk to (platform/tauri.ts reads it). */
export function fragmentOf(params: Record<string, string | null | undefined>): string {
  const f = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) f.set(k, v);
  return f.toString();
}

function teach(info: AppLaunch): void {
  const c = info.teacher;
  if (!c) return;
  location.replace(`teacher.html#${fragmentOf({ key: c.teacher_key, ws: c.ws, http: c.http, fp: c.fingerprint, lan: info.lan })}`);
}

function join(target: JoinTarget): void {
  // A relay's link keeps its room and the teacher's key: the view then checks every state (section E).
  const fragment = fragmentOf({ ws: target.ws, http: target.http, fp: target.fingerprint, code: target.code, room: target.room, pk: target.pk });
  location.replace(`index.html#${fragment}`);
}

function listClasses(): void {
  show("classes");
  showAuthorities();
  const list = $("#class-list");
  const found = new Map<string, Resolved>();
  const render = () => {
    list.replaceChildren();
    for (const c of found.values()) {
      const target = targetOf(c);
      if (!target) continue;
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "class-item";
      button.dataset.room = c.room;
      const title = document.createElement("strong");
      title.textContent = c.title || c.name;
      const who = document.createElement("span");
      who.textContent = c.name;
      const tap = document.createElement("span");
      tap.className = "tap";
      tap.textContent = t("tapToJoin");
      button.append(title, who, tap);
      button.addEventListener("click", () => {
        stop();
        join(target);
      });
      li.append(button);
      list.append(li);
    }
    $("#looking").textContent = found.size ? "" : t("noClassesYet");
  };
  const stop = appShell.browse((ev) => {
    if (ev.event === "resolved") found.set(ev.fullname, ev);
    else found.delete(ev.fullname);
    render();
  });
  setTimeout(() => render(), 4000);
  $<HTMLFormElement>("#link-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const link = $<HTMLInputElement>("#link").value;
    appShell.openLink(link).then(
      (target) => {
        stop();
        join(target);
      },
      () => ($("#link-error").textContent = t("badLink")),
    );
  });
  $("#change-mode").addEventListener("click", async () => {
    stop();
    start(await appShell.chooseMode(null));
  });
}

/** The district's certificate authorities (a relay whose certificate a school district's own ACME
 * authority issued): how many the app trusts, a button to choose a file of them and one to forget
 * them. Bound once; the returned function says again what the app trusts. */
function bindAuthorities(): () => void {
  const state = $("#authorities-state");
  const error = $("#authorities-error");
  const trust = $<HTMLButtonElement>("#trust-authorities");
  const forget = $<HTMLButtonElement>("#forget-authorities");
  const say = (n: number) => {
    const key = n > 1 ? "authoritiesSome" : n === 1 ? "authoritiesOne" : "authoritiesNone";
    state.dataset.t = key;
    state.dataset.n = String(n);
    state.textContent = t(key, { n });
    forget.hidden = n === 0;
  };
  // One change at a time: a second click while a dialog is open does nothing.
  const act = (call: () => Promise<number | null>) => {
    if (trust.disabled) return;
    trust.disabled = forget.disabled = true;
    error.textContent = "";
    call()
      // In the page's language, then the device's own words (a path, the system's error) as detail.
      .then((n) => n !== null && say(n), (e: unknown) => (error.textContent = `${t("authoritiesRefused")} ${String(e)}`))
      .finally(() => (trust.disabled = forget.disabled = false));
  };
  trust.addEventListener("click", () => act(() => appShell.trustAuthorities()));
  forget.addEventListener("click", () => act(async () => (await appShell.forgetAuthorities(), 0)));
  return () => void appShell.authorities().then(say);
}

let showAuthorities = () => {};

function start(info: AppLaunch): void {
  if (info.mode === "teacher") {
    show("starting");
    teach(info);
  } else if (info.mode === "student") {
    if (info.link) join(info.link);
    else listClasses();
  } else {
    show("choose");
  }
}

async function main(): Promise<void> {
  await initLang(platform);
  showAuthorities = bindAuthorities();
  document.querySelectorAll(".lang-toggle").forEach((b) => b.addEventListener("click", () => toggleLang(platform.store)));
  $("#choose-teach").addEventListener("click", async () => {
    show("starting");
    try {
      start(await appShell.chooseMode("teacher"));
    } catch (e) {
      $("#start-error").textContent = String(e);
    }
  });
  $("#choose-join").addEventListener("click", async () => start(await appShell.chooseMode("student")));
  appShell.onLink((target) => join(target));
  start(await appShell.launch());
}

void main();
