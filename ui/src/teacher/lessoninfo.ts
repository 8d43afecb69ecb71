// The console's lesson panel: the join code (big enough for a projector, and full screen on a tap)
// with its link and QR code, and the session history with each lesson's attendance export.
import qrcode from "qrcode-generator";
import { $, reason } from "../common";
import type { Lesson } from "../generated/Lesson";
import type { LessonList } from "../generated/LessonList";
import type { Platform } from "../platform/contract";
import { t } from "../strings";

/** The join link a student's device opens (PROTOCOL.md §8): the fragment never reaches a log. The
 * teacher's signing key travels with the fingerprint (PROTOCOL-ADDITIONS.md, section E). */
export function joinLink(baseUrl: string, code: string, fingerprint: string, pk?: string): string {
  return `${baseUrl}/join#code=${code}&fp=${fingerprint}${pk ? `&pk=${pk}` : ""}`;
}

/** The join link for students at home (PROTOCOL-ADDITIONS.md, section E): a relay's address, the
 * room on this server, and the teacher's key every state is checked against. `relayUrl` is
 * `https://HOST[:PORT]`, with `#fp=…` when the relays' fingerprint is configured (apps pin it). */
export function remoteLink(relayUrl: string, room: string, code: string, pk: string): string {
  const [base, fp] = relayUrl.split("#fp=");
  return `${base}/join#room=${room}&code=${code}&pk=${pk}${fp ? `&fp=${fp}` : ""}`;
}

function qrDataUrl(text: string): string {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return qr.createDataURL(8, 2);
}

/** Lets the code open full screen, and a tap or Escape close it. */
export function bindPresent(): void {
  const present = $("#present");
  $("#code-big").addEventListener("click", () => (present.hidden = false));
  present.addEventListener("click", () => (present.hidden = true));
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape" || present.hidden) return;
    present.hidden = true;
    ev.preventDefault();
  });
}

/** Shows the lesson's join code, link and QR code, and the title. */
export async function showJoinInfo(platform: Platform, key: string): Promise<void> {
  const info = await platform.server.getJson<Lesson>("/v1/lesson", key);
  const link = joinLink(platform.server.baseUrl, info.code, info.fingerprint, info.pk);
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
  // Students at home, when the lesson is bridged and the relays' address is configured.
  const remote = info.relay_url ? remoteLink(info.relay_url, info.room, info.code, info.pk) : null;
  $("#remote-row").hidden = remote === null;
  $("#remote-link").textContent = remote ?? "";
  $("#copy-remote").onclick = async () => {
    if (remote && (await platform.copy(remote))) $("#copy-remote").textContent = t("copied");
  };
}

/** Tells the teacher someone is trying wrong join codes (none: hides it), with what happens now. */
export function showGuessing(wrong: number, waitingRoom: boolean): void {
  const box = $("#guessing");
  box.hidden = wrong === 0;
  $("#guessing-text").textContent = wrong === 0 ? "" : t(waitingRoom ? "guessingWaiting" : "guessing", { count: wrong });
}

/** Lists the last lessons, each with its attendance export. */
export async function showHistory(platform: Platform, key: string, toast: (message: string) => void): Promise<void> {
  const { lessons } = await platform.server.getJson<LessonList>("/v1/lessons", key);
  $("#history").replaceChildren(
    ...lessons.slice(0, 20).map((l) => {
      const li = document.createElement("li");
      const when = new Date(l.started_ms).toLocaleString(document.documentElement.lang);
      li.innerHTML = `<span class="h-title"></span><span class="muted h-when"></span><button class="small link h-csv"></button><button class="small link h-pdf"></button>`;
      $(".h-title", li).textContent = l.title;
      $(".h-when", li).textContent = when;
      // Each export is fetched with the key and handed over (a download, or the app's save dialog).
      const exporter = (sel: string, label: "attendance" | "annotatedPdf", path: string, name: string, mime: string) => {
        const b = $<HTMLButtonElement>(sel, li);
        b.textContent = t(label);
        b.onclick = async () => {
          try {
            await platform.dialogs.saveFile(name, await platform.server.getBytes(path, key), mime);
          } catch (e) {
            toast(`${t(label)}: ${reason(e)}`);
          }
        };
      };
      exporter(".h-csv", "attendance", `/v1/lessons/${l.id}/attendance.csv`, `lesson-${l.id}-attendance.csv`, "text/csv");
      // The pages the lesson showed with the highlights and ink drawn on them, for absent students.
      exporter(".h-pdf", "annotatedPdf", `/v1/lessons/${l.id}/annotated.pdf`, `lesson-${l.id}-annotated.pdf`, "application/pdf");
      return li;
    }),
  );
}
