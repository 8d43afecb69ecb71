// Students asking to join without a code (a knock from the app's class list, or a browser without
// the code): the console lists them, and the teacher lets each in, turns each away, or lets everyone
// in at once. The list arrives whole from the server whenever it changes.
import { $ } from "../common";
import type { KnockEntry } from "../generated/KnockEntry";
import { t } from "../strings";

/** What the knock panel asks of the console. */
export interface KnockActions {
  admit(ids: string[]): void;
  deny(ids: string[]): void;
  /** Someone new knocked since the last list (for one toast, however many came). */
  arrived(entries: KnockEntry[]): void;
}

/** A small label on a knock ("has the code", "wrong code", "like a removed student"). */
function tag(text: "hasCode" | "wrongCode" | "likeRemoved", cls: string): HTMLSpanElement {
  const span = document.createElement("span");
  span.className = `knock-tag ${cls}`;
  span.textContent = t(text);
  return span;
}

/** "Let everyone in" admits only the students shown at least this long: not one who knocked just
 * before the tap, whom the teacher never saw. */
const SEEN_FOR_MS = 1000;

/** The knock panel: renders each list the server sends and announces newcomers. */
export class KnockPanel {
  private list: KnockEntry[] = [];
  /** When each knock on the list was first shown. */
  private shownAt = new Map<string, number>();

  constructor(private readonly actions: KnockActions) {
    $("#admit-all").addEventListener("click", () => this.admitSeen(() => true));
    // While someone guesses codes, the classmates with the right one are marked: one tap for them all.
    $("#admit-code").addEventListener("click", () => this.admitSeen((k) => k.has_code === true));
  }

  /** Lets in the knocks that pass `which` and were shown long enough to be seen. */
  private admitSeen(which: (k: KnockEntry) => boolean): void {
    const now = Date.now();
    const seen = (k: KnockEntry) => now - (this.shownAt.get(k.id) ?? now) >= SEEN_FOR_MS;
    const ids = this.list.filter((k) => which(k) && seen(k)).map((k) => k.id);
    if (ids.length) this.actions.admit(ids);
  }

  /** Shows the server's current list. */
  update(list: KnockEntry[]): void {
    const now = Date.now();
    const fresh = list.filter((k) => !this.shownAt.has(k.id));
    this.shownAt = new Map(list.map((k) => [k.id, this.shownAt.get(k.id) ?? now]));
    if (fresh.length) this.actions.arrived(fresh);
    // Those with the right code first, those with a wrong one last.
    const rank = (k: KnockEntry) => (k.has_code ? 0 : k.wrong_code ? 2 : 1);
    this.list = [...list].sort((a, b) => rank(a) - rank(b));
    this.render();
  }

  /** Draws the panel again (after the language changed). */
  render(): void {
    $("#knocks").hidden = this.list.length === 0;
    $("#knock-count").textContent = String(this.list.length);
    const withCode = this.list.filter((k) => k.has_code).length;
    const wrong = this.list.filter((k) => k.wrong_code).length;
    $("#admit-code").hidden = withCode === 0 || (withCode === this.list.length && withCode < 2);
    $("#admit-code").textContent = t("letInWithCode").replace("{count}", String(withCode));
    $("#admit-all").hidden = this.list.length < 2 || wrong > 0;
    $("#knock-list").replaceChildren(...this.list.map((k) => this.item(k)));
  }

  private item(k: KnockEntry): HTMLLIElement {
    const li = document.createElement("li");
    li.className = k.wrong_code ? "knock wrong-code" : "knock";
    li.dataset.knock = k.id;
    const name = document.createElement("span");
    name.className = "knock-name";
    name.textContent = k.name;
    const admit = document.createElement("button");
    admit.type = "button";
    admit.className = "primary small admit";
    admit.textContent = t("letIn");
    admit.addEventListener("click", () => this.actions.admit([k.id]));
    const deny = document.createElement("button");
    deny.type = "button";
    deny.className = "small deny";
    deny.textContent = t("turnAway");
    deny.addEventListener("click", () => this.actions.deny([k.id]));
    const tags = [
      k.has_code ? tag("hasCode", "has-code") : null,
      k.wrong_code ? tag("wrongCode", "wrong-code") : null,
      k.like_removed ? tag("likeRemoved", "like-removed") : null,
    ];
    const who = document.createElement("div");
    who.className = "knock-who";
    who.append(name, ...tags.filter((x) => x !== null));
    li.append(who, admit, deny);
    return li;
  }
}
