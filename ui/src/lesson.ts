// The lesson state a client mirrors (PROTOCOL.md §1, §4, §5): apply patches in seq order, ask for a
// snapshot on a gap, ignore what is stale. Pure, so it is unit-tested without a browser or a server.
import type { LessonState } from "./generated/LessonState";
import type { LiveStep } from "./generated/LiveStep";
import type { MarkOp } from "./generated/MarkOp";
import type { Patch } from "./generated/Patch";

/** What became of a patch offered to the mirror. */
export type PatchOutcome = "applied" | "stale" | "gap";

/** The state a client starts with before its first welcome. */
export function emptyState(): LessonState {
  return { doc: null, page: 1, pos: null, zoom: 1, view: null, highlight: null, mode: "follow", notice: null, ended: false, marks: {}, live: null };
}

/** Applies a patch to a state, as the server does: a field present in the patch replaces the state's. */
export function applyPatch(state: LessonState, patch: Patch): LessonState {
  const next = { ...state };
  if (patch.doc !== undefined) {
    next.doc = patch.doc;
    next.marks = {}; // marks belong to the old document's pages
  }
  if (patch.marks) next.marks = applyMarks(next.marks ?? {}, patch.marks);
  if (patch.page !== undefined) next.page = patch.page;
  if (patch.pos !== undefined) next.pos = patch.pos;
  if (patch.zoom !== undefined) next.zoom = patch.zoom;
  if (patch.view !== undefined) next.view = patch.view;
  if (patch.highlight !== undefined) next.highlight = patch.highlight;
  if (patch.mode !== undefined) next.mode = patch.mode;
  if (patch.notice !== undefined) next.notice = patch.notice;
  if (patch.ended !== undefined) next.ended = patch.ended;
  if (patch.live !== undefined) next.live = patch.live && applyStep(next.live ?? null, patch.live);
  return next;
}

/** The stroke being drawn after a step of it (section M): the step's points added where the stroke
 * ends, or a new stroke when the step starts one. */
export function applyStep(live: LessonState["live"], step: LiveStep): NonNullable<LessonState["live"]> {
  if (live && step.from !== 0 && live.id === step.id) return { ...live, points: [...live.points, ...step.points] };
  return { id: step.id, page: step.page, color: step.color, width: step.width, laser: step.laser ?? false, points: step.points };
}

/** The marks after `ops`, as the server applies them; only the pages changed are new lists. */
export function applyMarks(marks: LessonState["marks"], ops: readonly MarkOp[]): LessonState["marks"] {
  const next = { ...marks };
  // Each page's list is copied once per patch, then changed in place.
  const copied = new Set<string>();
  const own = (key: string) => {
    if (!copied.has(key)) {
      next[key] = [...(next[key] ?? [])];
      copied.add(key);
    }
    return next[key]!;
  };
  for (const op of ops) {
    const key = String(op.page);
    if (op.op === "add") own(key).push(op.mark);
    else if (op.op === "remove") {
      const list = own(key);
      const at = list.findIndex((m) => m.id === op.id);
      if (at >= 0) list.splice(at, 1);
    } else {
      delete next[key];
      copied.delete(key);
    }
  }
  for (const key of copied) if (next[key]?.length === 0) delete next[key];
  return next;
}

/** Whether a patch changes more than the pointer and the teacher's region (what students
 * acknowledge, §6): those stream at the display's rate while the teacher points or pinches. */
export function isSignificant(patch: Patch): boolean {
  return Object.keys(patch).some((k) => k !== "pos" && k !== "view" && k !== "zoom");
}

/** A client's copy of the lesson: the state at `seq`. */
export class LessonMirror {
  seq = 0;
  state: LessonState = emptyState();
  /** Whether any snapshot has arrived yet. */
  synced = false;

  /** Takes a welcome's or a sync's snapshot: always adopted, whatever the seq (§5). */
  snapshot(seq: number, state: LessonState): void {
    this.seq = seq;
    this.state = state;
    this.synced = true;
  }

  /** Offers a patch: applied only when it is the one after ours. */
  patch(seq: number, patch: Patch): PatchOutcome {
    if (!this.synced || seq <= this.seq) return this.synced ? "stale" : "gap";
    if (seq !== this.seq + 1) return "gap";
    this.state = applyPatch(this.state, patch);
    this.seq = seq;
    return "applied";
  }
}

/** How many significant changes (`significant`, ascending seqs) a student who acked `acked` lacks;
 * null before its first ack. Pointer moves are never acked, so they never count. */
export function changesBehind(significant: readonly number[], acked: number | null | undefined): number | null {
  if (acked === null || acked === undefined) return null;
  let n = 0;
  for (let i = significant.length - 1; i >= 0 && significant[i] > acked; i--) n++;
  return n;
}

/** Limits a normalized coordinate to the page. */
export function clampUnit(v: number): number {
  return Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0));
}

/** A normalized rectangle from two corners dragged in any direction. */
export function rectFrom(page: number, a: { x: number; y: number }, b: { x: number; y: number }) {
  const x = clampUnit(Math.min(a.x, b.x));
  const y = clampUnit(Math.min(a.y, b.y));
  return { page, x, y, w: clampUnit(Math.max(a.x, b.x)) - x, h: clampUnit(Math.max(a.y, b.y)) - y };
}
