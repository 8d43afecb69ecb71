// The teacher's ink over a page (PROTOCOL-ADDITIONS.md section M): the strokes kept on the page, the
// stroke being drawn, and laser strokes fading out. Each is drawn into a canvas placed exactly over
// the drawn part of the page, so it moves and scales with it while the teacher zooms. Every screen
// draws a stroke the same way, from the same whole-number points: each segment as wide as its two
// ends' mean, round ends (and `src-server/src/docs/annotate.rs` draws the PDF so too).
import { now, probe } from "./common";
import type { InkColor } from "./generated/InkColor";
import type { LiveInk } from "./generated/LiveInk";
import type { Mark } from "./generated/Mark";
import type { Region } from "./region";

/** Where a point's coordinates end (the page's far edge), and the largest pressure. */
export const POINT_SCALE = 10_000;
export const MAX_PRESSURE = 100;

/** How long a laser stroke takes to fade once it ends, in ms. */
export const LASER_FADE_MS = 2500;

/** The palette, as every screen and the PDF paint it (src-server/protocol/src/ink.rs). */
export const INK_RGB: Record<InkColor, string> = {
  black: "#111111",
  red: "#d32f2f",
  blue: "#1565c0",
  green: "#2e7d32",
  orange: "#ef6c00",
};

/** A stroke's points: `[x, y, pressure]`. */
export type InkPoint = [number, number, number];

/** How a point's pressure scales the stroke's width: 0.4× with none, 1× at 50, 1.6× at 100. */
export function pressureScale(p: number): number {
  return 0.4 + (1.2 * Math.min(p, MAX_PRESSURE)) / MAX_PRESSURE;
}

/** Where the canvas is: the part of the page it covers, and its size in device pixels. */
interface Place {
  covers: Region;
  w: number;
  h: number;
}

/** Draws segments `from`.. of a stroke into a canvas placed at `at`. */
export function drawStroke(
  ctx: CanvasRenderingContext2D,
  at: Place,
  s: { color: InkColor; width: number; points: readonly InkPoint[] },
  from = 0,
): void {
  const c = at.covers;
  const pageW = at.w / c.w;
  const sx = (x: number) => ((x / POINT_SCALE - c.x) / c.w) * at.w;
  const sy = (y: number) => ((y / POINT_SCALE - c.y) / c.h) * at.h;
  const base = (s.width / 1000) * pageW;
  ctx.strokeStyle = INK_RGB[s.color] ?? INK_RGB.black;
  ctx.fillStyle = ctx.strokeStyle;
  ctx.lineCap = "round";
  const pts = s.points;
  if (pts.length === 1 && from === 0) {
    const [x, y, p] = pts[0];
    ctx.beginPath();
    ctx.arc(sx(x), sy(y), (base * pressureScale(p)) / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  for (let i = Math.max(1, from); i < pts.length; i++) {
    const [x0, y0, p0] = pts[i - 1];
    const [x1, y1, p1] = pts[i];
    ctx.lineWidth = Math.max(0.5, (base * (pressureScale(p0) + pressureScale(p1))) / 2);
    ctx.beginPath();
    ctx.moveTo(sx(x0), sy(y0));
    ctx.lineTo(sx(x1), sy(y1));
    ctx.stroke();
  }
}

/** Whether a mark's box (grown by `pad`) meets the region. */
function meets(m: { x: number; y: number; w: number; h: number }, r: Region, pad: number): boolean {
  return m.x - pad <= r.x + r.w && m.x + m.w + pad >= r.x && m.y - pad <= r.y + r.h && m.y + m.h + pad >= r.y;
}

/** The ink over one page view: kept strokes, the stroke being drawn, laser strokes fading. */
export class InkLayer {
  private readonly kept: HTMLCanvasElement;
  private readonly live: HTMLCanvasElement;
  private place: Place = { covers: { x: 0, y: 0, w: 1, h: 1 }, w: 0, h: 0 };
  private marks: readonly Mark[] = [];
  /** The strokes drawn on `kept`, for drawing only what a change adds. */
  private drawnMarks: readonly Mark[] = [];
  private liveInk: LiveInk | null = null;
  private liveDrawn = 0;

  constructor(private readonly root: HTMLElement) {
    this.kept = this.canvas("ink");
    this.live = this.canvas("ink live");
    root.append(this.kept, this.live);
  }

  private canvas(className: string): HTMLCanvasElement {
    const c = document.createElement("canvas");
    // No pixels until there is ink (a canvas is 300 × 150 unless told otherwise).
    c.width = 0;
    c.height = 0;
    c.className = className;
    c.setAttribute("aria-hidden", "true");
    return c;
  }

  /** Places the layer over the drawn part of the page: `covers` of it, `w`×`h` device pixels. */
  setPlace(covers: Region, w: number, h: number): void {
    const p = this.place;
    const c = p.covers;
    if (p.w === w && p.h === h && c.x === covers.x && c.y === covers.y && c.w === covers.w && c.h === covers.h) return;
    this.place = { covers, w, h };
    // A canvas takes the page's pixels only once it has ink to draw: most pages have none, and a
    // page turn should not composite two empty layers the size of the screen.
    for (const el of [this.kept, this.live]) placeCanvas(el, this.place, el.width > 0);
    this.drawnMarks = [];
    this.drawKept();
    this.liveDrawn = 0;
    this.drawLive();
  }

  /** Shows the strokes kept on the page (highlights among `marks` are the view's). */
  setMarks(marks: readonly Mark[]): void {
    if (marks === this.marks) return;
    this.marks = marks;
    this.drawKept();
  }

  /** Shows the stroke being drawn on the page (null: none). A laser stroke that ends, or gives way
   * to another, fades out. */
  setLive(live: LiveInk | null): void {
    const was = this.liveInk;
    if (live === was) return;
    if (was?.laser && (!live || live.id !== was.id)) this.fade(was);
    const grows = !!live && !!was && live.id === was.id && live.points.length >= this.liveDrawn;
    this.liveInk = live;
    if (!grows) this.liveDrawn = 0;
    this.drawLive();
    if (live) {
      const p = probe();
      ((p.ink as { id: number; n: number; at: number }[] | undefined) ??= []).push({ id: live.id, n: live.points.length, at: now() });
    }
  }

  private drawKept(): void {
    const { w, h, covers } = this.place;
    if (!w || !h) return;
    const inked = this.marks.some((m) => m.ink);
    if (!inked && this.kept.width === 0) {
      this.drawnMarks = this.marks;
      return;
    }
    placeCanvas(this.kept, this.place, true);
    const ctx = this.kept.getContext("2d");
    if (!ctx) return;
    const old = this.drawnMarks;
    // A change that only adds strokes draws only them; anything else draws the page's ink again.
    const adds = old.length > 0 && old.length <= this.marks.length && old.every((m, i) => this.marks[i] === m);
    if (!adds) ctx.clearRect(0, 0, w, h);
    for (const m of this.marks.slice(adds ? old.length : 0)) {
      if (m.ink && meets(m, covers, 0.05)) drawStroke(ctx, this.place, m.ink);
    }
    this.drawnMarks = this.marks;
    // For the join benchmark (tests/e2e/ink.mjs): when a page's ink was last drawn, and how much.
    probe().kept = { strokes: this.marks.filter((m) => m.ink).length, at: now() };
  }

  private drawLive(): void {
    const { w, h } = this.place;
    const live = this.liveInk;
    if (!w || !h || (!live && this.live.width === 0)) return;
    placeCanvas(this.live, this.place, true);
    const ctx = this.live.getContext("2d");
    if (!ctx) return;
    if (this.liveDrawn === 0) ctx.clearRect(0, 0, w, h);
    if (!live) return;
    drawStroke(ctx, this.place, live, this.liveDrawn === 0 ? 0 : this.liveDrawn);
    this.liveDrawn = live.points.length;
  }

  /** Fades a laser stroke out over LASER_FADE_MS, on a canvas of its own. */
  private fade(laser: LiveInk): void {
    const { w, h } = this.place;
    if (!w || !h) return;
    const el = this.canvas("ink laser");
    placeCanvas(el, this.place, true);
    const ctx = el.getContext("2d");
    if (!ctx) return;
    drawStroke(ctx, this.place, laser);
    this.root.append(el);
    const anim = el.animate([{ opacity: 1 }, { opacity: 0 }], { duration: LASER_FADE_MS, easing: "ease-in" });
    anim.onfinish = () => el.remove();
  }
}

/** Places a canvas over the part of the page it covers; `sized` gives it the pixels too. */
function placeCanvas(el: HTMLCanvasElement, p: Place, sized: boolean): void {
  if (sized && el.width !== p.w) el.width = p.w;
  if (sized && el.height !== p.h) el.height = p.h;
  const s = el.style;
  s.left = `${p.covers.x * 100}%`;
  s.top = `${p.covers.y * 100}%`;
  s.width = `${p.covers.w * 100}%`;
  s.height = `${p.covers.h * 100}%`;
}
