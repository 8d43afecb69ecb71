// The eraser (PROTOCOL-ADDITIONS.md section M): whole strokes and highlights under it are taken off
// the page, batched once per displayed frame. A removal in flight is not sent again; one the server
// refused (another console took the mark off first) may be sent again at the next touch.
import type { Mark } from "../generated/Mark";
import type { SetPatch } from "../generated/SetPatch";
import { POINT_SCALE, pressureScale } from "../ink";
import type { Point } from "../pdfview";

/** How far from a line the eraser reaches, in page widths. */
const REACH = 0.012;

/** What the eraser needs from the console. */
export interface EraserHost {
  /** The page shown, when a document is open. */
  page(): number | null;
  /** The marks on a page as the console has them. */
  marks(page: number): readonly Mark[];
  /** The shown page's height over its width. */
  aspect(): number;
  /** Sends a change; its request id, or null when it could not be sent (offline). */
  send(patch: SetPatch): number | null;
}

/** One console's eraser. */
export class Eraser {
  /** Marks under the eraser since the last frame. */
  private readonly hit = new Set<number>();
  /** Removals sent and not yet answered, by request id. */
  private readonly inFlight = new Map<number, number[]>();
  private framePending = false;

  constructor(private readonly host: EraserHost) {}

  /** The eraser touches the page at `at`. */
  touch(at: Point): void {
    const page = this.host.page();
    if (page === null) return;
    const aspect = this.host.aspect();
    for (const m of this.host.marks(page)) if (touches(m, at, aspect)) this.hit.add(m.id);
    if (!this.hit.size || this.framePending) return;
    this.framePending = true;
    requestAnimationFrame(() => {
      this.framePending = false;
      this.flush();
    });
  }

  /** Sends the removals of the marks hit that are still on the page and not already on their way. */
  private flush(): void {
    const page = this.host.page();
    if (page === null) return;
    const there = new Set(this.host.marks(page).map((m) => m.id));
    // A removal whose answer never came (the link dropped) is forgotten once its marks are gone.
    for (const [request, ids] of this.inFlight) if (!ids.some((id) => there.has(id))) this.inFlight.delete(request);
    const sending = new Set([...this.inFlight.values()].flat());
    const ids = [...this.hit].filter((id) => there.has(id) && !sending.has(id)).slice(0, 32);
    this.hit.clear();
    if (!ids.length) return;
    const request = this.host.send({ marks: ids.map((id) => ({ op: "remove" as const, page, id })) });
    if (request !== null) this.inFlight.set(request, ids);
  }

  /** The answer to a request: true when it was the eraser's (a refusal says nothing to the teacher:
   * the marks are gone already, or are sent again at the next touch). */
  answered(request: number): boolean {
    return this.inFlight.delete(request);
  }
}

/** Whether the eraser at `at` touches a mark: a highlight anywhere in it, a stroke near its line.
 * Distances are measured in page widths (`aspect` is the page's height over its width). */
export function touches(m: Mark, at: Point, aspect = 1): boolean {
  const reachY = REACH / aspect;
  if (at.x < m.x - REACH || at.x > m.x + m.w + REACH || at.y < m.y - reachY || at.y > m.y + m.h + reachY) return false;
  if (!m.ink) return true;
  const width = m.ink.width;
  const pts = m.ink.points.map(([x, y, p]) => ({ x: x / POINT_SCALE, y: (y / POINT_SCALE) * aspect, r: (width / 2000) * pressureScale(p) }));
  const q = { x: at.x, y: at.y * aspect };
  if (pts.length === 1) return Math.hypot(q.x - pts[0].x, q.y - pts[0].y) <= pts[0].r + REACH;
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1];
    const b = pts[i];
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const t = dx || dy ? Math.max(0, Math.min(1, ((q.x - a.x) * dx + (q.y - a.y) * dy) / (dx * dx + dy * dy))) : 0;
    if (Math.hypot(q.x - (a.x + t * dx), q.y - (a.y + t * dy)) <= Math.max(a.r, b.r) + REACH) return true;
  }
  return false;
}
