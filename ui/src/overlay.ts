// What is drawn over a page, in page coordinates: the teacher's pointer, the highlight, the rectangle
// being dragged, the marks that stay on the page and the ink (section L, M). Every piece is placed in
// percent of the page box, so it follows the page wherever the view places and zooms it.
import type { LiveInk } from "./generated/LiveInk";
import type { Mark } from "./generated/Mark";
import { InkLayer } from "./ink";
import type { Region } from "./region";

/** A rectangle on a page, normalized to it. */
type Box = { x: number; y: number; w: number; h: number };

/** The layers over one page view. */
export class PageOverlay {
  private readonly pointer: HTMLElement;
  /** The teacher's ink over the page. */
  private readonly ink: InkLayer;
  private readonly mark: HTMLElement;
  private readonly draft: HTMLElement;
  /** The boxes of the marks that stay on the page shown, reused as they come and go. */
  private readonly kept: HTMLElement[] = [];
  private keptMarks: readonly Mark[] = [];
  private highlight: (Box & { page: number }) | null = null;

  /** Adds the layers to `root` (the page box, after its canvas); `page` is the page shown. */
  constructor(
    private readonly root: HTMLElement,
    private readonly page: () => number,
  ) {
    this.pointer = layer("laser");
    this.mark = layer("mark");
    this.draft = layer("mark draft");
    this.ink = new InkLayer(root);
    root.append(this.mark, this.draft, this.pointer);
  }

  /** Where the page's drawn part is (`covers`, normalized) and its canvas size, for the ink. */
  setPlace(covers: Region, width: number, height: number): void {
    this.ink.setPlace(covers, width, height);
  }

  /** Places the laser pointer, or hides it. */
  setPointer(pos: { x: number; y: number } | null): void {
    this.pointer.hidden = !pos;
    if (pos) {
      this.pointer.style.left = `${pos.x * 100}%`;
      this.pointer.style.top = `${pos.y * 100}%`;
    }
  }

  /** Draws the highlight when it is on the page shown (and not one of its marks), or hides it. */
  setHighlight(h: (Box & { page: number }) | null): void {
    this.highlight = h;
    const kept = !!h && this.keptMarks.some((m) => m.x === h.x && m.y === h.y && m.w === h.w && m.h === h.h);
    placeBox(this.mark, h && h.page === this.page() && !kept ? h : null);
  }

  /** Draws the marks that stay on the page shown: highlights as boxes, strokes as ink. */
  setMarks(marks: readonly Mark[]): void {
    this.ink.setMarks(marks);
    if (marks === this.keptMarks) return;
    const boxes = marks.filter((m) => !m.ink);
    while (this.kept.length < boxes.length) {
      const el = document.createElement("div");
      el.className = "mark kept";
      this.root.insertBefore(el, this.draft);
      this.kept.push(el);
    }
    this.kept.forEach((el, i) => placeBox(el, boxes[i] ?? null));
    this.keptMarks = marks;
    this.setHighlight(this.highlight);
  }

  /** Draws the stroke being drawn when it is on the page shown, or none. */
  setLive(live: LiveInk | null): void {
    this.ink.setLive(live && live.page === this.page() ? live : null);
  }

  /** Draws the rectangle being dragged (teacher), or hides it. */
  setDraft(h: Box | null): void {
    placeBox(this.draft, h);
  }
}

/** A hidden layer of this class. */
function layer(className: string): HTMLElement {
  const el = document.createElement("div");
  el.className = className;
  el.hidden = true;
  return el;
}

function placeBox(el: HTMLElement, h: Box | null): void {
  el.hidden = !h;
  if (!h) return;
  el.style.left = `${h.x * 100}%`;
  el.style.top = `${h.y * 100}%`;
  el.style.width = `${h.w * 100}%`;
  el.style.height = `${h.h * 100}%`;
}
