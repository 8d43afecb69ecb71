// Zooming and panning a page by hand: a pinch (two fingers), the wheel with Ctrl (or a trackpad's
// pinch), a drag while zoomed, a double tap (the page's width around that line, or the whole page
// again), and the keys + - 0. The teacher's moves are what students follow; a student moves only in
// free mode. The geometry is `region.ts`.
import type { PdfView } from "./pdfview";
import { FIT, cameraOf, fitWidthAt, panBy, regionOf, zoomAbout, type Camera, type Region } from "./region";

/** Two taps closer than this (ms, CSS px) are a double tap. */
const DOUBLE_TAP_MS = 300;
const DOUBLE_TAP_PX = 30;

/** What the page's owner says about the gestures. */
export interface ZoomHooks {
  /** Whether gestures move the view now. */
  enabled: () => boolean;
  /** Whether a one-finger drag pans (not while the teacher draws or marks). */
  canPan: () => boolean;
  /** The view moved by hand: the region it shows now (null: the whole page). */
  changed: (region: Region | null) => void;
}

/** The camera over one page view, moved by the gestures on its stage. */
export class ZoomControl {
  private camera: Camera = FIT;
  private readonly pointers = new Map<number, { x: number; y: number }>();
  private pinch: { dist: number; mid: { x: number; y: number } } | null = null;
  private drag: { x: number; y: number } | null = null;
  private lastTap: { at: number; x: number; y: number } | null = null;
  /** Where the one finger on the page came down: its lift is a tap if it has not moved. */
  private tapFrom: { id: number; x: number; y: number } | null = null;

  constructor(
    private readonly view: PdfView,
    stage: HTMLElement,
    private readonly hooks: ZoomHooks,
  ) {
    stage.addEventListener("wheel", (ev) => this.wheel(ev), { passive: false });
    // In the capture phase, so that every other listener on the page (a swipe's) already counts the
    // finger that just came down.
    stage.addEventListener("pointerdown", (ev) => this.down(ev), { capture: true });
    stage.addEventListener("pointermove", (ev) => this.move(ev));
    for (const end of ["pointerup", "pointercancel", "pointerleave"]) stage.addEventListener(end, (ev) => this.up(ev as PointerEvent));
    stage.addEventListener("dblclick", (ev) => {
      if (this.hooks.enabled() && ev.target instanceof Node && this.view.root.contains(ev.target)) this.doubleTap(ev);
    });
  }

  /** Whether the page is zoomed in (a one-finger drag then pans instead of turning the page). */
  get zoomed(): boolean {
    return this.camera.zoom > 1.001;
  }

  /** How many fingers (or buttons held) are on the page now. */
  get fingers(): number {
    return this.pointers.size;
  }

  /** The region shown now (null: the whole page). */
  get region(): Region | null {
    return regionOf(this.camera, this.view.pageSize, this.view.box);
  }

  /** Shows `region` (someone else's: the teacher's, or a snapshot's) without reporting it. */
  follow(region: Region | null): void {
    this.camera = cameraOf(region, this.view.pageSize, this.view.box);
    this.view.setRegion(region);
  }

  /** Zooms about the centre of what is shown (the + and - keys and buttons). */
  zoomBy(factor: number): void {
    this.set(zoomAbout(this.camera, factor, { x: this.camera.cx, y: this.camera.cy }, this.view.pageSize, this.view.box));
  }

  /** Shows the whole page. */
  reset(): void {
    this.set(FIT);
  }

  private set(camera: Camera): void {
    const before = this.region;
    this.camera = camera;
    const region = this.region;
    this.view.setRegion(region);
    const same = before === region || (!!before && !!region && JSON.stringify(before) === JSON.stringify(region));
    if (!same) this.hooks.changed(region);
  }

  private wheel(ev: WheelEvent): void {
    if (!this.hooks.enabled()) return;
    const page = this.view.pageSize;
    const box = this.view.box;
    if (ev.ctrlKey) {
      // A trackpad's pinch arrives as the wheel with Ctrl; so does Ctrl and the mouse wheel.
      ev.preventDefault();
      const unit = ev.deltaMode === 1 ? 16 : 1;
      this.set(zoomAbout(this.camera, Math.exp(-ev.deltaY * unit * 0.01), this.view.toPage(ev), page, box));
    } else if (this.zoomed) {
      ev.preventDefault();
      this.set(panBy(this.camera, -ev.deltaX, -ev.deltaY, page, box));
    }
  }

  private down(ev: PointerEvent): void {
    // A pen writes; it never pinches or pans (a palm and a pen on the glass are not two fingers).
    if (!this.hooks.enabled() || ev.pointerType === "pen") return;
    this.pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
    this.tapFrom = this.pointers.size === 1 ? { id: ev.pointerId, x: ev.clientX, y: ev.clientY } : null;
    if (this.pointers.size === 2) {
      this.pinch = this.pinchNow();
      this.drag = null;
    } else if (this.pointers.size === 1 && this.zoomed && this.hooks.canPan() && ev.pointerType !== "pen") {
      this.drag = { x: ev.clientX, y: ev.clientY };
    }
  }

  private move(ev: PointerEvent): void {
    if (!this.pointers.has(ev.pointerId)) return;
    this.pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
    const page = this.view.pageSize;
    const box = this.view.box;
    if (this.pinch && this.pointers.size === 2) {
      const now = this.pinchNow();
      const at = this.view.toPage({ clientX: now.mid.x, clientY: now.mid.y });
      let c = zoomAbout(this.camera, now.dist / this.pinch.dist, at, page, box);
      c = panBy(c, now.mid.x - this.pinch.mid.x, now.mid.y - this.pinch.mid.y, page, box);
      this.pinch = now;
      this.set(c);
    } else if (this.drag) {
      const c = panBy(this.camera, ev.clientX - this.drag.x, ev.clientY - this.drag.y, page, box);
      this.drag = { x: ev.clientX, y: ev.clientY };
      this.set(c);
    }
  }

  private up(ev: PointerEvent): void {
    if (!this.pointers.delete(ev.pointerId)) return;
    if (this.pointers.size < 2) this.pinch = null;
    if (this.pointers.size === 0) this.drag = null;
    // A double tap with a finger (a mouse's double click is `dblclick`): two lifts of one finger
    // that did not move, close in time and place.
    const from = this.tapFrom;
    this.tapFrom = null;
    if (ev.type !== "pointerup" || ev.pointerType !== "touch") return;
    if (!from || from.id !== ev.pointerId || Math.hypot(ev.clientX - from.x, ev.clientY - from.y) > 10) {
      this.lastTap = null;
      return;
    }
    const tap = { at: ev.timeStamp, x: ev.clientX, y: ev.clientY };
    const last = this.lastTap;
    if (last && tap.at - last.at < DOUBLE_TAP_MS && Math.hypot(tap.x - last.x, tap.y - last.y) < DOUBLE_TAP_PX) {
      this.lastTap = null;
      this.doubleTap(ev);
    } else {
      this.lastTap = tap;
    }
  }

  /** Zoomed: the whole page again. Not zoomed: the page's width around the line tapped (or twice
   * as close, on a screen where the width is the whole page already). */
  private doubleTap(ev: { clientX: number; clientY: number }): void {
    if (this.zoomed) return this.reset();
    const at = this.view.toPage(ev);
    const width = fitWidthAt(at.y, this.view.pageSize, this.view.box);
    this.set(width.zoom > 1.05 ? width : zoomAbout(this.camera, 2, at, this.view.pageSize, this.view.box));
  }

  private pinchNow(): { dist: number; mid: { x: number; y: number } } {
    const [a, b] = [...this.pointers.values()];
    return { dist: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)), mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
  }
}

/** Binds + - 0 to zoom in, out, and the whole page (not while typing in a field). */
export function bindZoomKeys(zoom: ZoomControl, enabled: () => boolean): void {
  document.addEventListener("keydown", (ev) => {
    if (!enabled() || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target instanceof Element && ev.target.closest("input, select, textarea")) return;
    if (ev.key === "+" || ev.key === "=") zoom.zoomBy(1.25);
    else if (ev.key === "-") zoom.zoomBy(0.8);
    else if (ev.key === "0") zoom.reset();
    else return;
    ev.preventDefault();
  });
}
