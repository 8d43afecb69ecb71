// The part of a page a screen shows (docs/PROTOCOL-ADDITIONS.md section K), as pure geometry so it is
// unit-tested without a browser. A region is a rectangle normalized to the page (0..1). The teacher's
// screen is a camera over the page (a zoom and a centre); what it shows is a region, and that is what
// students follow: each fits the region to its own screen, centred, so nothing the teacher sees is
// cut off, whatever the shape of the student's screen.
import type { Region } from "./generated/Region";

export type { Region };

/** The largest zoom (PROTOCOL.md §4): a region is never smaller than an eighth of the page. */
export const MAX_ZOOM = 8;

/** A size in any unit: a page's in points, a box's in CSS pixels. */
export interface Size {
  w: number;
  h: number;
}

/** Where a page is drawn in a box: its scale (box units per page unit) and its top-left corner. */
export interface Placement {
  scale: number;
  left: number;
  top: number;
}

/** The whole page. */
export const WHOLE: Region = { x: 0, y: 0, w: 1, h: 1 };

/** Places a page so that `region` (null: the whole page) fits the box, centred. */
export function place(region: Region | null, page: Size, box: Size): Placement {
  const r = region ?? WHOLE;
  const scale = Math.min(box.w / (r.w * page.w), box.h / (r.h * page.h));
  return {
    scale,
    left: box.w / 2 - (r.x + r.w / 2) * page.w * scale,
    top: box.h / 2 - (r.y + r.h / 2) * page.h * scale,
  };
}

/** The part of the page a placement shows in the box, clipped to the page. */
export function visible(p: Placement, page: Size, box: Size): Region {
  const x0 = clamp01(-p.left / (page.w * p.scale));
  const y0 = clamp01(-p.top / (page.h * p.scale));
  const x1 = clamp01((box.w - p.left) / (page.w * p.scale));
  const y1 = clamp01((box.h - p.top) / (page.h * p.scale));
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

/** A view of the page: how far it is zoomed (1: the whole page fits) and the page point at the centre. */
export interface Camera {
  zoom: number;
  cx: number;
  cy: number;
}

/** The camera that shows the whole page. */
export const FIT: Camera = { zoom: 1, cx: 0.5, cy: 0.5 };

/** The size, in page units, of what a camera at `zoom` shows in the box. */
function span(zoom: number, page: Size, box: Size): Size {
  const fit = Math.min(box.w / page.w, box.h / page.h);
  return { w: box.w / (page.w * fit * zoom), h: box.h / (page.h * fit * zoom) };
}

/** Keeps a camera's zoom in 1..MAX_ZOOM and its view on the page (centred where the page is narrower). */
export function settle(c: Camera, page: Size, box: Size): Camera {
  const zoom = Math.min(MAX_ZOOM, Math.max(1, Number.isFinite(c.zoom) ? c.zoom : 1));
  const s = span(zoom, page, box);
  const keep = (v: number, extent: number) => (extent >= 1 ? 0.5 : Math.min(1 - extent / 2, Math.max(extent / 2, v)));
  return { zoom, cx: keep(c.cx, s.w), cy: keep(c.cy, s.h) };
}

/** The region a camera shows (null for the whole page), rounded so it travels short. */
export function regionOf(c: Camera, page: Size, box: Size): Region | null {
  const { zoom, cx, cy } = settle(c, page, box);
  if (zoom <= 1 + 1e-6) return null;
  const s = span(zoom, page, box);
  const w = round(Math.min(1, s.w));
  const h = round(Math.min(1, s.h));
  const x = Math.min(1 - w, Math.max(0, round(cx - w / 2)));
  const y = Math.min(1 - h, Math.max(0, round(cy - h / 2)));
  return { x, y, w, h };
}

/** The camera that shows `region` (null: the whole page) fitted to this box. */
export function cameraOf(region: Region | null, page: Size, box: Size): Camera {
  if (!region) return FIT;
  const fit = Math.min(box.w / page.w, box.h / page.h);
  const p = place(region, page, box);
  return settle({ zoom: p.scale / fit, cx: region.x + region.w / 2, cy: region.y + region.h / 2 }, page, box);
}

/** Zooms by `factor` keeping the page point `at` under the same spot of the screen. */
export function zoomAbout(c: Camera, factor: number, at: { x: number; y: number }, page: Size, box: Size): Camera {
  const zoom = Math.min(MAX_ZOOM, Math.max(1, c.zoom * factor));
  const k = c.zoom / zoom;
  return settle({ zoom, cx: at.x + (c.cx - at.x) * k, cy: at.y + (c.cy - at.y) * k }, page, box);
}

/** Moves the view by a drag of (dx, dy) box units. */
export function panBy(c: Camera, dx: number, dy: number, page: Size, box: Size): Camera {
  const p = place(regionOf(c, page, box), page, box);
  return settle({ ...c, cx: c.cx - dx / (page.w * p.scale), cy: c.cy - dy / (page.h * p.scale) }, page, box);
}

/** The camera a double tap at page height `y` asks for: the page's width, around that line. */
export function fitWidthAt(y: number, page: Size, box: Size): Camera {
  const fit = Math.min(box.w / page.w, box.h / page.h);
  return settle({ zoom: box.w / page.w / fit, cx: 0.5, cy: y }, page, box);
}

function clamp01(v: number): number {
  return Math.min(1, Math.max(0, v));
}

function round(v: number): number {
  return Math.round(v * 10_000) / 10_000;
}
