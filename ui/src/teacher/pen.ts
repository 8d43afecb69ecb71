// The teacher's pen, laser and eraser on the page (PROTOCOL-ADDITIONS.md section M), from Pointer
// Events. A stroke's points are smoothed here, once, and sent as whole numbers, so every screen draws
// the same line; they stream as steps of the state's `live` stroke, one per displayed frame, and the
// `set` that ends a pen stroke keeps it as a mark. The pen comes before touch: once this device has
// seen a pen, a finger or a resting palm never draws (it pans and zooms instead), and a touch stroke
// under way when the pen comes down is dropped.
import type { InkColor } from "../generated/InkColor";
import type { LiveInk } from "../generated/LiveInk";
import type { Mark } from "../generated/Mark";
import type { SetPatch } from "../generated/SetPatch";
import { MAX_PRESSURE, POINT_SCALE, pressureScale, type InkPoint } from "../ink";
import type { PdfView, Point } from "../pdfview";

/** The most points one stroke holds (src-server/protocol/src/ink.rs): a longer line goes on as a
 * new stroke from the last point. */
export const MAX_STROKE_POINTS = 500;

/** How much of each new input point a smoothed point takes (the rest is the last smoothed point). */
const SMOOTHING = 0.6;

/** What the pen needs from the console. */
export interface PenHost {
  view: PdfView;
  /** The tool in hand. */
  tool(): "pen" | "laser" | "eraser" | "other";
  /** The page shown, when a document is open. */
  page(): number | null;
  /** The marks on a page as the console has them. */
  marks(page: number): readonly Mark[];
  color(): InkColor;
  width(): number;
  /** A new id for a stroke (unique per console, see the console's `nextMarkId`). */
  nextId(): number;
  send(patch: SetPatch): void;
  /** A stroke this console kept, for undo. */
  kept(page: number, mark: Mark): void;
}

/** A stroke under the pen: the points so far, and how many were sent. */
interface Stroke {
  pointer: number;
  live: LiveInk;
  sent: number;
  last: Point;
}

/** The pen, laser and eraser of one console. */
export class Pen {
  private stroke: Stroke | null = null;
  /** The stroke kept last, shown until the state has it (so a lifted pen never blinks). */
  private landing: LiveInk | null = null;
  private penSeen = false;
  private framePending = false;
  private readonly erased = new Set<number>();

  constructor(private readonly host: PenHost) {
    const root = host.view.root;
    root.addEventListener("pointerdown", (ev) => this.down(ev));
    root.addEventListener("pointermove", (ev) => this.move(ev));
    root.addEventListener("pointerup", (ev) => this.up(ev, true));
    root.addEventListener("pointercancel", (ev) => this.up(ev, false));
  }

  /** Whether a stroke is under the pen now (pans and swipes wait). */
  get drawing(): boolean {
    return this.stroke !== null;
  }

  /** The stroke this console shows as being drawn: its own while the pen is down (or just kept and
   * not yet in the state's marks), else the state's. */
  shown(state: LiveInk | null): LiveInk | null {
    if (this.stroke) return this.stroke.live;
    const l = this.landing;
    if (l && !this.host.marks(l.page).some((m) => m.id === l.id)) return l;
    this.landing = null;
    return state;
  }

  /** Whether this pointer may draw: a pen always, a finger or mouse only until a pen is seen. */
  private draws(ev: PointerEvent): boolean {
    if (ev.pointerType === "pen") {
      this.penSeen = true;
      return true;
    }
    return !(ev.pointerType === "touch" && this.penSeen);
  }

  private down(ev: PointerEvent): void {
    const tool = this.host.tool();
    const page = this.host.page();
    if (tool === "other" || page === null || !this.draws(ev)) return;
    if (ev.pointerType === "pen" && this.stroke && this.stroke.pointer !== ev.pointerId) {
      this.drop(); // a palm's stroke, begun before the pen came down
    }
    if (this.stroke) return;
    ev.preventDefault();
    try {
      this.host.view.root.setPointerCapture(ev.pointerId);
    } catch {
      // A pointer the browser does not track (a synthetic one) draws without capture.
    }
    if (tool === "eraser") {
      this.erased.clear();
      this.stroke = { pointer: ev.pointerId, live: this.newLive(page, false, []), sent: 0, last: this.host.view.toPage(ev) };
      this.erase(this.stroke.last);
      return;
    }
    const at = this.host.view.toPage(ev);
    this.stroke = { pointer: ev.pointerId, live: this.newLive(page, tool === "laser", [quantize(at, ev)]), sent: 0, last: at };
    this.changed();
  }

  private move(ev: PointerEvent): void {
    const s = this.stroke;
    if (!s || ev.pointerId !== s.pointer) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents?.() ?? [];
    for (const e of events.length ? events : [ev]) {
      const raw = this.host.view.toPage(e);
      const at = { x: s.last.x + SMOOTHING * (raw.x - s.last.x), y: s.last.y + SMOOTHING * (raw.y - s.last.y) };
      if (this.host.tool() === "eraser") {
        this.erase(raw);
        s.last = raw;
        continue;
      }
      this.add(quantize(at, e));
      s.last = at;
    }
  }

  private up(ev: PointerEvent, kept: boolean): void {
    const s = this.stroke;
    if (!s || ev.pointerId !== s.pointer) return;
    if (this.host.tool() === "eraser" || !s.live.points.length) {
      this.stroke = null;
      return;
    }
    // The stroke ends where the pen lifted, not where the smoothing had got to.
    if (kept) this.add(quantize(this.host.view.toPage(ev), ev));
    this.finish(kept);
  }

  /** Adds a point to the stroke; one that reaches the cap ends it and goes on as a new one. */
  private add(p: InkPoint): void {
    const s = this.stroke;
    if (!s) return;
    const pts = s.live.points;
    const prev = pts[pts.length - 1];
    if (prev && prev[0] === p[0] && prev[1] === p[1]) return;
    s.live = { ...s.live, points: [...pts, p] };
    if (s.live.points.length >= MAX_STROKE_POINTS) {
      const { pointer, last } = s;
      const next = this.newLive(s.live.page, s.live.laser, [p]);
      this.finish(true);
      this.stroke = { pointer, live: next, sent: 0, last };
    }
    this.changed();
  }

  /** Shows the stroke at once and sends its new points at the next frame. */
  private changed(): void {
    if (this.stroke) this.host.view.setLive(this.stroke.live);
    if (this.framePending) return;
    this.framePending = true;
    requestAnimationFrame(() => {
      this.framePending = false;
      this.flush();
    });
  }

  /** Sends the points not sent yet, as one step of the live stroke. */
  private flush(extra: SetPatch = {}): void {
    const s = this.stroke;
    if (!s) return;
    const { id, page, color, width, laser, points } = s.live;
    const fresh = points.slice(s.sent);
    if (!fresh.length) {
      if (Object.keys(extra).length) this.host.send(extra);
      return;
    }
    this.host.send({ ...extra, live: { id, page, color, width, laser, from: s.sent, points: fresh } });
    s.sent = points.length;
  }

  /** Ends the stroke: a pen stroke is kept (in the same `set` that ends it), a laser stroke fades. */
  private finish(kept: boolean): void {
    const s = this.stroke;
    if (!s) return;
    this.flush();
    this.stroke = null;
    const live = s.live;
    if (!kept || live.laser) {
      this.host.send({ live: null });
      this.host.view.setLive(null);
      return;
    }
    const [x, y, w, h] = span(live.points);
    const mark: Mark = { id: live.id, x, y, w, h, ink: { color: live.color, width: live.width, points: live.points } };
    this.landing = live;
    this.host.kept(live.page, mark);
    this.host.send({ live: null, marks: [{ op: "add", page: live.page, mark }] });
  }

  /** Drops the stroke under way without keeping it. */
  private drop(): void {
    this.stroke = null;
    this.host.send({ live: null });
    this.host.view.setLive(null);
  }

  private newLive(page: number, laser: boolean, points: InkPoint[]): LiveInk {
    return { id: this.host.nextId(), page, color: laser ? "red" : this.host.color(), width: laser ? 6 : this.host.width(), laser, points };
  }

  /** Takes off the page every stroke (and highlight) under the eraser. */
  private erase(at: Point): void {
    const page = this.host.page();
    if (page === null) return;
    const hit = this.host.marks(page).filter((m) => !this.erased.has(m.id) && touches(m, at));
    if (!hit.length) return;
    const some = hit.slice(0, 32); // the most one `set` carries; the rest go at the next move
    for (const m of some) this.erased.add(m.id);
    this.host.send({ marks: some.map((m) => ({ op: "remove" as const, page, id: m.id })) });
  }
}

/** A point of the page as a stroke's whole-number point, with the pen's pressure (50 without one). */
function quantize(at: Point, ev: { pointerType: string; pressure: number }): InkPoint {
  const q = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * POINT_SCALE);
  const p = ev.pointerType === "pen" && ev.pressure > 0 ? Math.round(ev.pressure * MAX_PRESSURE) : 50;
  return [q(at.x), q(at.y), Math.min(MAX_PRESSURE, p)];
}

/** The box points span, normalized to the page: `[x, y, w, h]` (as the server checks it). */
export function span(points: readonly InkPoint[]): [number, number, number, number] {
  let [x0, y0, x1, y1] = [POINT_SCALE, POINT_SCALE, 0, 0];
  for (const [x, y] of points) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  return [x0 / POINT_SCALE, y0 / POINT_SCALE, (x1 - x0) / POINT_SCALE, (y1 - y0) / POINT_SCALE];
}

/** Whether the eraser at `at` touches a mark: a highlight anywhere in it, a stroke near its line. */
export function touches(m: Mark, at: Point): boolean {
  const reach = 0.012;
  if (at.x < m.x - reach || at.x > m.x + m.w + reach || at.y < m.y - reach || at.y > m.y + m.h + reach) return false;
  if (!m.ink) return true;
  const pts = m.ink.points.map(([x, y, p]) => ({ x: x / POINT_SCALE, y: y / POINT_SCALE, r: (m.ink!.width / 2000) * pressureScale(p) }));
  if (pts.length === 1) return Math.hypot(at.x - pts[0].x, at.y - pts[0].y) <= pts[0].r + reach;
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1];
    const b = pts[i];
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const t = dx || dy ? Math.max(0, Math.min(1, ((at.x - a.x) * dx + (at.y - a.y) * dy) / (dx * dx + dy * dy))) : 0;
    if (Math.hypot(at.x - (a.x + t * dx), at.y - (a.y + t * dy)) <= Math.max(a.r, b.r) + reach) return true;
  }
  return false;
}
