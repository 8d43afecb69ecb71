import { describe, expect, it } from "vitest";
import { LessonMirror, applyPatch, changesBehind, emptyState, isSignificant, rectFrom } from "./lesson";
import { touches } from "./teacher/eraser";
import { span } from "./teacher/pen";

const doc = { id: "d1", title: "Mushaf", pages: 604, sha256: "ab" };

describe("applyPatch", () => {
  it("replaces exactly the fields the patch names, null included", () => {
    const s = applyPatch({ ...emptyState(), doc, page: 3, pos: { x: 0.1, y: 0.2 } }, { page: 4, pos: null });
    expect(s.page).toBe(4);
    expect(s.pos).toBeNull();
    expect(s.doc).toEqual(doc);
    expect(s.mode).toBe("follow");
  });
  it("does not change the state it was given", () => {
    const before = emptyState();
    applyPatch(before, { page: 9 });
    expect(before.page).toBe(1);
  });
});

describe("the stroke being drawn", () => {
  const step = (from: number, points: [number, number, number][], id = 5) => ({ live: { id, page: 2, color: "red" as const, width: 4, laser: false, from, points } });
  it("grows by its steps' points in order, starts again from 0, and ends with null", () => {
    let s = applyPatch(emptyState(), step(0, [[1, 2, 50]]));
    s = applyPatch(s, step(1, [[3, 4, 50], [5, 6, 60]]));
    expect(s.live?.points).toEqual([[1, 2, 50], [3, 4, 50], [5, 6, 60]]);
    expect(s.live?.laser).toBe(false);
    s = applyPatch(s, step(0, [[9, 9, 9]], 6));
    expect(s.live).toMatchObject({ id: 6, points: [[9, 9, 9]] });
    expect(applyPatch(s, { live: null }).live).toBeNull();
  });
});

describe("ink geometry", () => {
  it("spans the points' box as the server checks it, and the eraser touches a stroke near its line only", () => {
    const points: [number, number, number][] = [[1000, 5000, 50], [9000, 5000, 50]];
    expect(span(points)).toEqual([0.1, 0.5, 0.8, 0]);
    const mark = { id: 1, x: 0.1, y: 0.5, w: 0.8, h: 0, ink: { color: "red" as const, width: 4, points } };
    expect(touches(mark, { x: 0.5, y: 0.505 })).toBe(true);
    expect(touches(mark, { x: 0.5, y: 0.6 })).toBe(false);
    expect(touches({ id: 2, x: 0.1, y: 0.1, w: 0.2, h: 0.2 }, { x: 0.2, y: 0.2 })).toBe(true);
    // On a tall page (A4: 1.41 times as tall as wide) a page-height step is shorter in page widths.
    expect(touches(mark, { x: 0.5, y: 0.5 + 0.012 / 1.41 + 0.001 }, 1.41)).toBe(false);
    expect(touches(mark, { x: 0.5, y: 0.5 + 0.012 / 1.41 }, 1.41)).toBe(true);
  });
});

describe("LessonMirror", () => {
  it("applies patches in seq order only", () => {
    const m = new LessonMirror();
    m.snapshot(10, { ...emptyState(), doc });
    expect(m.patch(11, { page: 2 })).toBe("applied");
    expect(m.patch(11, { page: 5 })).toBe("stale");
    expect(m.patch(9, { page: 5 })).toBe("stale");
    expect(m.state.page).toBe(2);
    expect(m.patch(13, { page: 7 })).toBe("gap");
    expect(m.state.page).toBe(2);
    expect(m.seq).toBe(11);
  });
  it("always adopts a snapshot, even at a lower seq (after a server restart)", () => {
    const m = new LessonMirror();
    m.snapshot(50, { ...emptyState(), page: 9 });
    m.snapshot(48, { ...emptyState(), page: 3 });
    expect(m.seq).toBe(48);
    expect(m.patch(49, { page: 4 })).toBe("applied");
  });
  it("asks for a snapshot before it has one", () => {
    expect(new LessonMirror().patch(1, { page: 2 })).toBe("gap");
  });
});

describe("students behind", () => {
  it("counts the significant changes after a student's ack", () => {
    const sig = [3, 8, 12];
    expect(changesBehind(sig, 12)).toBe(0);
    expect(changesBehind(sig, 14)).toBe(0);
    expect(changesBehind(sig, 8)).toBe(1);
    expect(changesBehind(sig, 2)).toBe(3);
    expect(changesBehind(sig, null)).toBeNull();
  });
  it("treats pointer moves as insignificant", () => {
    expect(isSignificant({ pos: { x: 0.5, y: 0.5 } })).toBe(false);
    expect(isSignificant({ pos: null, page: 2 })).toBe(true);
  });
});

describe("highlight rectangles", () => {
  it("normalizes a drag in any direction and clamps it to the page", () => {
    expect(rectFrom(4, { x: 0.8, y: 0.5 }, { x: 0.2, y: 0.1 })).toEqual({ page: 4, x: 0.2, y: 0.1, w: 0.6000000000000001, h: 0.4 });
    const r = rectFrom(1, { x: -0.5, y: 0.5 }, { x: 1.7, y: 0.6 });
    expect(r.x).toBe(0);
    expect(r.w).toBe(1);
  });
});

describe("marks that stay", () => {
  const mark = (id: number) => ({ id, x: 0.1, y: 0.2, w: 0.5, h: 0.05 });
  it("stay on their page, come off by id or page, and go with the document", () => {
    let s = applyPatch(emptyState(), { marks: [{ op: "add", page: 3, mark: mark(1) }, { op: "add", page: 3, mark: mark(2) }, { op: "add", page: 5, mark: mark(3) }] });
    expect(s.marks["3"]?.map((m) => m.id)).toEqual([1, 2]);
    const page5 = s.marks["5"];
    s = applyPatch(s, { page: 4, marks: [{ op: "remove", page: 3, id: 1 }] });
    expect(s.marks["3"]?.map((m) => m.id)).toEqual([2]);
    // An untouched page keeps its list (its digest is not computed again).
    expect(s.marks["5"]).toBe(page5);
    s = applyPatch(s, { marks: [{ op: "clear", page: 3 }] });
    expect(Object.keys(s.marks)).toEqual(["5"]);
    s = applyPatch(s, { doc: null, page: 1 });
    expect(s.marks).toEqual({});
  });
});
