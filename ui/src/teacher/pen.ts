// The teacher's pen and laser on the page (PROTOCOL-ADDITIONS.md section M), from Pointer Events,
// and the eraser's touches (`eraser.ts`). A stroke's points are smoothed here, once, and sent as whole
// numbers, so every screen draws the same line; they stream as steps of the state's `live` stroke,
// one per displayed frame, and the `set` that ends a pen stroke keeps it as a mark.
//
// The pen comes before touch: once this device has seen a pen (remembered across reloads), a finger
// or a resting palm never draws, a touch as wide as a palm never does, and a touch stroke under way
// when the pen comes down is dropped. A step the link could not carry is sent again with the next; one
// the server refused (a step lost on a reconnect) starts the stroke again from its first point.
import type { InkColor } from "../generated/InkColor";
import type { LiveInk } from "../generated/LiveInk";
import type { Mark } from "../generated/Mark";
import type { SetPatch } from "../generated/SetPatch";
import { MAX_PRESSURE, POINT_SCALE, type InkPoint } from "../ink";
import type { PdfView, Point } from "../pdfview";
import { Eraser } from "./eraser";

/** The most points one stroke holds (src-server/protocol/src/ink.rs): a longer line goes on as a
 * new stroke from the last point. */
export const MAX_STROKE_POINTS = 500;

/** How much of each new input point a smoothed point takes (the rest is the last smoothed point). */
const SMOOTHING = 0.6;

/** A touch this large (CSS px², width × height) is a palm, not a finger. */
const PALM_AREA = 40 * 40;

/** Where this device remembers that it has a pen. */
const PEN_SEEN_KEY = "lectern.penSeen";

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
  /** A new id for a mark on `page` (unique per console and on the page). */
  nextId(page: number): number;
  /** Sends a change; its request id, or null when it could not be sent (offline). */
  send(patch: SetPatch): number | null;
  /** Strokes this console kept, for undo: `joined` continues the last one (a long line's pieces). */
  kept(page: number, mark: Mark, joined: boolean): void;
  /** A kept stroke the server refused: undo forgets it. */
  refused(page: number, id: number): void;
}

/** A stroke under the pen: the points so far, and how many were sent. */
interface Stroke {
  pointer: number;
  kind: "pen" | "laser" | "eraser";
  live: LiveInk;
  sent: number;
  last: Point;
  /** The stroke continues a piece kept when it reached the cap. */
  joined: boolean;
}

/** The pen, laser and eraser of one console. */
export class Pen {
  private stroke: Stroke | null = null;
  /** Strokes kept and not yet in the state's marks: shown meanwhile, so a lifted pen never blinks. */
  private landing: LiveInk[] = [];
  /** Requests of this pen not yet answered: steps, and strokes kept. */
  private readonly requests = new Map<number, { keep?: LiveInk }>();
  private penSeen = localStorage.getItem(PEN_SEEN_KEY) === "1";
  private framePending = false;
  private readonly eraser: Eraser;

  constructor(private readonly host: PenHost) {
    const root = host.view.root;
    this.eraser = new Eraser({
      page: () => host.page(),
      marks: (page) => host.marks(page),
      aspect: () => host.view.pageSize.h / host.view.pageSize.w,
      send: (patch) => host.send(patch),
    });
    root.addEventListener("pointerdown", (ev) => this.down(ev));
    root.addEventListener("pointermove", (ev) => this.move(ev));
    root.addEventListener("pointerup", (ev) => this.up(ev, true));
    root.addEventListener("pointercancel", (ev) => this.up(ev, false));
  }

  /** Whether a stroke is under the pen now (pans and swipes wait). */
  get drawing(): boolean {
    return this.stroke !== null;
  }

  /** The strokes this console shows as being drawn: its own while the pen is down and those just
   * kept (until the state has them), else the state's. */
  shown(state: LiveInk | null): LiveInk | null {
    this.landing = this.landing.filter((l) => !this.host.marks(l.page).some((m) => m.id === l.id));
    return this.stroke?.live ?? this.landing.at(-1) ?? state;
  }

  /** The server answered request `id`: true when it was the pen's and the teacher need not hear of
   * it (a refused step is sent again whole; a refused stroke is said, as the server put it). */
  answered(id: number, refused: boolean): boolean {
    if (this.eraser.answered(id)) return true;
    const r = this.requests.get(id);
    if (!r) return false;
    this.requests.delete(id);
    if (!refused) return true;
    if (r.keep) {
      const k = r.keep;
      this.landing = this.landing.filter((l) => l !== k);
      this.host.refused(k.page, k.id);
      return false;
    }
    if (this.stroke) this.stroke.sent = 0; // the next frame sends the stroke again from its start
    this.changed();
    return true;
  }

  /** Ends the stroke under way (the tool changed): a pen stroke is kept. */
  end(): void {
    if (this.stroke?.kind === "eraser") this.stroke = null;
    else if (this.stroke) this.finish(true);
  }

  /** Whether this pointer may draw: a pen always, a finger or mouse only until a pen is seen. */
  private draws(ev: PointerEvent): boolean {
    if (ev.pointerType === "pen") {
      if (!this.penSeen) localStorage.setItem(PEN_SEEN_KEY, "1");
      this.penSeen = true;
      return true;
    }
    return !(ev.pointerType === "touch" && (this.penSeen || ev.width * ev.height >= PALM_AREA));
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
    // The pen and the eraser keep their pointer to the end; the laser does not, as the pointer's dot
    // it also moves never did (a capture's release must not read as the pointer leaving the page).
    if (tool !== "laser") {
      try {
        this.host.view.root.setPointerCapture(ev.pointerId);
      } catch {
        // A pointer the browser does not track (a synthetic one) draws without capture.
      }
    }
    const at = this.host.view.toPage(ev);
    const points = tool === "eraser" ? [] : [quantize(at, ev)];
    const live = this.newLive(page, tool === "laser", points);
    this.stroke = { pointer: ev.pointerId, kind: tool, live, sent: 0, last: at, joined: false };
    if (tool === "eraser") this.eraser.touch(at);
    else this.changed();
  }

  private move(ev: PointerEvent): void {
    const s = this.stroke;
    if (!s || ev.pointerId !== s.pointer) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents?.() ?? [];
    for (const e of events.length ? events : [ev]) {
      const raw = this.host.view.toPage(e);
      if (s.kind === "eraser") {
        this.eraser.touch(raw);
        continue;
      }
      const at = { x: s.last.x + SMOOTHING * (raw.x - s.last.x), y: s.last.y + SMOOTHING * (raw.y - s.last.y) };
      this.add(quantize(at, e));
      s.last = at;
    }
  }

  private up(ev: PointerEvent, kept: boolean): void {
    const s = this.stroke;
    if (!s || ev.pointerId !== s.pointer) return;
    if (s.kind === "eraser") {
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
      const { pointer, kind, last } = s;
      const next = this.newLive(s.live.page, s.live.laser, [p]);
      this.finish(true);
      this.stroke = { pointer, kind, live: next, sent: 0, last, joined: true };
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
  private flush(): void {
    const s = this.stroke;
    if (!s) return;
    const { id, page, color, width, laser, points } = s.live;
    const fresh = points.slice(s.sent);
    if (!fresh.length) return;
    const request = this.host.send({ live: { id, page, color, width, laser, from: s.sent, points: fresh } });
    if (request === null) return; // offline: the same points go with the next step
    this.note(request, {});
    s.sent = points.length;
  }

  private note(request: number, what: { keep?: LiveInk }): void {
    this.requests.set(request, what);
    // Answers lost with a dropped link are forgotten, oldest first.
    if (this.requests.size > 256) this.requests.delete(this.requests.keys().next().value!);
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
    this.landing.push(live);
    this.host.kept(live.page, mark, s.joined);
    const request = this.host.send({ live: null, marks: [{ op: "add", page: live.page, mark }] });
    if (request !== null) this.note(request, { keep: live });
  }

  /** Drops the stroke under way without keeping it. */
  private drop(): void {
    this.stroke = null;
    this.host.send({ live: null });
    this.host.view.setLive(null);
  }

  private newLive(page: number, laser: boolean, points: InkPoint[]): LiveInk {
    const style = laser ? { color: "red" as const, width: 6 } : { color: this.host.color(), width: this.host.width() };
    return { id: this.host.nextId(page), page, ...style, laser, points };
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
