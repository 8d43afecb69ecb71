// The console's student grid: one tile a student, online ones first, raised hands next, then by
// name; each tile says where the student is (on the page, behind by n changes, or the page viewed in
// free mode), online or away, in class or remote, and the round trip, with a button to remove them.
import { $ } from "../common";
import type { RosterEntry } from "../generated/RosterEntry";
import { changesBehind } from "../lesson";
import { t } from "../strings";

/** What a tile needs beyond its entry. */
export interface GridContext {
  /** Seqs of significant changes, ascending. */
  significant: readonly number[];
  /** Whether students browse freely now (the page they view is then worth showing). */
  free: boolean;
  /** The teacher asked to remove a student. */
  kick(entry: RosterEntry): void;
}

/** Redraws the grid, its count and its "no students yet" line. */
export function renderGrid(roster: Iterable<RosterEntry>, ctx: GridContext): void {
  const entries = [...roster].filter((e) => !e.kicked);
  entries.sort((a, b) => Number(b.online) - Number(a.online) || Number(b.hand) - Number(a.hand) || a.name.localeCompare(b.name));
  $("#student-count").textContent = String(entries.filter((e) => e.online).length);
  $("#no-students").hidden = entries.length > 0;
  $("#grid").replaceChildren(...entries.map((e) => tile(e, ctx)));
}

function tile(e: RosterEntry, ctx: GridContext): HTMLLIElement {
  const li = document.createElement("li");
  li.className = "tile";
  li.dataset.online = String(e.online);
  li.dataset.hand = String(e.hand);
  li.dataset.id = e.id;
  const behind = changesBehind(ctx.significant, e.acked);
  const where =
    e.view !== null && e.view !== undefined && ctx.free
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
    ${e.like_removed ? `<div class="tile-meta like-removed">${t("likeRemoved")}</div>` : ""}
    <div class="tile-meta muted"><span>${e.online ? t("online") : t("away")} · ${e.remote ? t("remote") : t("local")}</span>
      <span>${e.rtt_ms !== null && e.rtt_ms !== undefined ? t("rtt", { ms: e.rtt_ms }) : ""}</span></div>
    <button class="kick small" type="button"></button>`;
  $(".tile-name", li).textContent = e.name;
  $(".where", li).textContent = where;
  li.dataset.behind = String(behind ?? "");
  const kick = $<HTMLButtonElement>(".kick", li);
  kick.textContent = t("kick");
  kick.setAttribute("aria-label", `${t("kick")}: ${e.name}`);
  kick.onclick = () => ctx.kick(e);
  return li;
}
