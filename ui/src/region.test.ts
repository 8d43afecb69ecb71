import { describe, expect, it } from "vitest";
import { FIT, MAX_ZOOM, cameraOf, fitWidthAt, panBy, place, regionOf, visible, zoomAbout, type Region } from "./region";

const A4 = { w: 595, h: 842 };
const TEACHER = { w: 1342, h: 700 }; // a 13-inch laptop's stage
const FOUR_THREE = { w: 1000, h: 750 };
const SIXTEEN_TEN = { w: 1280, h: 800 };
const PORTRAIT = { w: 800, h: 1200 };

/** Where a page point lands in a box, for a placement. */
const onScreen = (p: ReturnType<typeof place>, x: number, y: number) => ({ x: p.left + x * A4.w * p.scale, y: p.top + y * A4.h * p.scale });

describe("a region followed on another screen", () => {
  const line: Region = { x: 0.05, y: 0.4, w: 0.9, h: 0.12 };

  for (const [name, box] of [["4:3", FOUR_THREE], ["16:10", SIXTEEN_TEN], ["portrait", PORTRAIT]] as const) {
    it(`is whole and centred on a ${name} screen`, () => {
      const p = place(line, A4, box);
      const tl = onScreen(p, line.x, line.y);
      const br = onScreen(p, line.x + line.w, line.y + line.h);
      // Never cropped: both corners are inside the screen, and one pair of edges touches it.
      expect(tl.x).toBeGreaterThanOrEqual(-1e-6);
      expect(tl.y).toBeGreaterThanOrEqual(-1e-6);
      expect(br.x).toBeLessThanOrEqual(box.w + 1e-6);
      expect(br.y).toBeLessThanOrEqual(box.h + 1e-6);
      expect(Math.min(tl.x, tl.y, box.w - br.x, box.h - br.y)).toBeCloseTo(0, 6);
      // Centred.
      expect((tl.x + br.x) / 2).toBeCloseTo(box.w / 2, 6);
      expect((tl.y + br.y) / 2).toBeCloseTo(box.h / 2, 6);
      // What that screen shows holds the region.
      const v = visible(p, A4, box);
      expect(v.x).toBeLessThanOrEqual(line.x + 1e-9);
      expect(v.x + v.w).toBeGreaterThanOrEqual(line.x + line.w - 1e-9);
    });
  }

  it("the whole page is the page fitted", () => {
    const p = place(null, A4, SIXTEEN_TEN);
    expect(p.scale).toBeCloseTo(800 / 842, 9);
    expect(visible(p, A4, SIXTEEN_TEN)).toEqual({ x: 0, y: 0, w: 1, h: 1 });
  });
});

describe("the teacher's camera", () => {
  it("shows the whole page at zoom 1, and says so with no region", () => {
    expect(regionOf(FIT, A4, TEACHER)).toBeNull();
  });

  it("zooms about the point under the fingers: that point stays where it was on the screen", () => {
    // Zoomed in enough that the page is wider than the screen (below that it stays centred across).
    const at = { x: 0.3, y: 0.6 };
    const zoomed = zoomAbout(FIT, 3, { x: 0.4, y: 0.5 }, A4, TEACHER);
    const before = place(regionOf(zoomed, A4, TEACHER), A4, TEACHER);
    const after = place(regionOf(zoomAbout(zoomed, 1.5, at, A4, TEACHER), A4, TEACHER), A4, TEACHER);
    const a = onScreen(before, at.x, at.y);
    const b = onScreen(after, at.x, at.y);
    expect(b.x).toBeCloseTo(a.x, 0);
    expect(b.y).toBeCloseTo(a.y, 0);
    expect(after.scale / before.scale).toBeCloseTo(1.5, 2);
  });

  it("sends a region the server accepts, even zoomed all the way in at a corner", () => {
    let c = zoomAbout(FIT, 100, { x: 1, y: 1 }, A4, TEACHER);
    expect(c.zoom).toBe(MAX_ZOOM);
    c = panBy(c, -1e6, -1e6, A4, TEACHER);
    const r = regionOf(c, A4, TEACHER)!;
    expect(Math.max(r.w, r.h)).toBeGreaterThanOrEqual(1 / MAX_ZOOM);
    expect(r.x + r.w).toBeLessThanOrEqual(1 + 1e-9);
    expect(r.y + r.h).toBeLessThanOrEqual(1 + 1e-9);
    expect(Math.min(r.x, r.y, r.w, r.h)).toBeGreaterThanOrEqual(0);
  });

  it("comes back from the region it sent: a reconnecting teacher sees what it showed", () => {
    const c = panBy(zoomAbout(FIT, 3, { x: 0.4, y: 0.3 }, A4, TEACHER), 50, -20, A4, TEACHER);
    const r = regionOf(c, A4, TEACHER);
    const back = cameraOf(r, A4, TEACHER);
    expect(back.zoom).toBeCloseTo(c.zoom, 2);
    expect(back.cx).toBeCloseTo(c.cx, 3);
    expect(back.cy).toBeCloseTo(c.cy, 3);
  });

  it("a double tap fits the page's width around the line tapped", () => {
    const c = fitWidthAt(0.5, A4, TEACHER);
    const r = regionOf(c, A4, TEACHER)!;
    expect(r.x).toBe(0);
    expect(r.w).toBe(1);
    expect(r.y + r.h / 2).toBeCloseTo(0.5, 3);
    // At the top of the page the region stays on the page.
    expect(regionOf(fitWidthAt(0, A4, TEACHER), A4, TEACHER)!.y).toBe(0);
  });
});
