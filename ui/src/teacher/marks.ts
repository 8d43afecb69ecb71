// The console's marks that stay (PROTOCOL-ADDITIONS.md sections L and M): the ids it gives, what
// undo takes back and redo puts back, clearing a page, and the ink bar (colour and width).
import { $ } from "../common";
import type { InkColor } from "../generated/InkColor";
import type { LessonState } from "../generated/LessonState";
import type { Mark } from "../generated/Mark";
import type { SetPatch } from "../generated/SetPatch";

/** The pen's widths, in thousandths of the page's width. */
const WIDTHS = { thin: 2, medium: 4, thick: 8 } as const;

/** One console's marks, for undo and redo, and the pen's colour and width. */
export class MarkHistory {
  /** The count of marks this console gave, and its random tag (see `nextId`). */
  private count = 0;
  private readonly tag = crypto.getRandomValues(new Uint16Array(1))[0];
  /** This console's marks, for undo, and those taken back, for redo: each entry one mark, or the
   * pieces of one long stroke. */
  private readonly done: { page: number; marks: Mark[] }[] = [];
  private readonly undone: { page: number; marks: Mark[] }[] = [];
  private inkColor: InkColor = "red";
  private inkWidth: number = WIDTHS.medium;

  constructor(private readonly host: { state(): LessonState | null; set(patch: SetPatch): void }) {
    for (const b of document.querySelectorAll<HTMLButtonElement>("#ink-colors [data-color]")) {
      b.addEventListener("click", () => {
        this.inkColor = b.dataset.color as InkColor;
        for (const o of document.querySelectorAll("#ink-colors [data-color]")) o.setAttribute("aria-pressed", String(o === b));
      });
    }
    const width = $<HTMLSelectElement>("#ink-width");
    width.addEventListener("change", () => (this.inkWidth = WIDTHS[width.value as keyof typeof WIDTHS] ?? WIDTHS.medium));
    $("#undo").addEventListener("click", () => this.undo(false));
    $("#redo").addEventListener("click", () => this.undo(true));
    $("#clear-mark").addEventListener("click", () => this.clear());
  }

  /** The pen's colour. */
  color(): InkColor {
    return this.inkColor;
  }

  /** The pen's width. */
  width(): number {
    return this.inkWidth;
  }

  /** An id for a new mark on `page`: this console's own random high 16 bits and a count below them,
   * so two consoles of one lesson (a laptop and a tablet) do not pick the same, and undo takes back
   * only this console's marks; one the page has already (the count wrapped) is skipped. */
  nextId(page: number): number {
    const taken = new Set((this.host.state()?.marks[String(page)] ?? []).map((m) => m.id));
    for (let tries = 0; tries < 0x10000; tries++) {
      this.count = (this.count + 1) & 0xffff;
      const id = ((this.tag << 16) >>> 0) + this.count;
      if (!taken.has(id)) return id;
    }
    return ((this.tag << 16) >>> 0) + this.count;
  }

  /** Notes a mark this console put on a page (a new one: redo forgets what was taken back);
   * `joined` makes it one with the last (the next piece of a long stroke). */
  kept(page: number, mark: Mark, joined = false): void {
    this.undone.length = 0;
    const last = this.done.at(-1);
    if (joined && last && last.page === page) last.marks.push(mark);
    else this.done.push({ page, marks: [mark] });
  }

  /** Forgets a mark the server refused. */
  refused(page: number, id: number): void {
    for (const e of this.done) if (e.page === page) e.marks = e.marks.filter((m) => m.id !== id);
    const keep = this.done.filter((e) => e.marks.length);
    this.done.splice(0, this.done.length, ...keep);
  }

  /** Puts a highlight on the page that stays there for the lesson (and is the current highlight). */
  highlight(r: { page: number; x: number; y: number; w: number; h: number }): void {
    const mark = { id: this.nextId(r.page), x: r.x, y: r.y, w: r.w, h: r.h };
    this.kept(r.page, mark);
    this.host.set({ highlight: r, marks: [{ op: "add", page: r.page, mark }] });
  }

  /** Takes every mark, highlights and ink, off the page shown. */
  clear(): void {
    const state = this.host.state();
    if (!state) return;
    const has = (state.marks[String(state.page)] ?? []).length > 0;
    this.host.set(has ? { highlight: null, marks: [{ op: "clear", page: state.page }] } : { highlight: null });
  }

  /** Takes back this console's last mark (Ctrl+Z), or puts back the last one taken back (Ctrl+Y,
   * Ctrl+Shift+Z); a mark cleared or erased meanwhile is skipped. */
  undo(redo: boolean): void {
    const from = redo ? this.undone : this.done;
    const to = redo ? this.done : this.undone;
    const state = this.host.state();
    while (state && from.length) {
      const last = from.pop()!;
      const onPage = new Set((state.marks[String(last.page)] ?? []).map((m) => m.id));
      // Only the pieces still there (undo) or still gone (redo): a mark erased or put back meanwhile
      // is skipped, and an entry with none left is.
      const marks = last.marks.filter((m) => onPage.has(m.id) !== redo).slice(0, 32);
      if (!marks.length) continue;
      to.push(last);
      const page = last.page;
      this.host.set(
        redo
          ? { marks: marks.map((mark) => ({ op: "add" as const, page, mark })) }
          : { highlight: null, marks: marks.map((m) => ({ op: "remove" as const, page, id: m.id })) },
      );
      return;
    }
  }
}
