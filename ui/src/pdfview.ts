// Shows one page of a document in its box: the region of the page asked for (the teacher's, or the
// whole page) fitted and centred, with the teacher's pointer and highlight drawn over it in
// page-normalized coordinates (0..1), so every screen shows them at the same spot of the page. Only
// the part of the page in the box is drawn (`pagedraw.ts`); the next pages are drawn ahead in idle
// time, and the page asked for never waits behind them.
import type { PDFDocumentProxy, RenderTask } from "pdfjs-dist";
import { BACKGROUND, RETRY_MS, type DocSource } from "./docfetch";
import type { ScanIndex } from "./generated/ScanIndex";
import { drawPdf, drawScan, idle, openPdf, sameFrame, type Drawn, type Frame, type Run } from "./pagedraw";
import type { LiveInk } from "./generated/LiveInk";
import type { Mark } from "./generated/Mark";
import { PageOverlay } from "./overlay";
import { place, type Region, type Size } from "./region";

export { preloadPdfJs } from "./pagedraw";

/** How long after a document opens over the network its neighbouring pages start being drawn
 * ahead: as long as its background download waits, the minute in which a class joins together over
 * one access point (a turn in that minute fetches its page then, about 1 s for 30 tablets on
 * 20 Mbit/s, instead of every tablet fetching the next page while the others fetch their first). */
const DRAW_AHEAD_AFTER_MS = BACKGROUND.startAfterMs;

/** How long a region must hold still before it is drawn sharp again (while it moves, the drawn
 * part is scaled and moved with it at once). */
const REDRAW_AFTER_MS = 120;

/** A page's shape before its first draw tells it (A4). */
const A4: Size = { w: 595, h: 842 };

/** A normalized point on the page. */
export interface Point {
  x: number;
  y: number;
}

/** A page view: the drawn part of the page, a pointer dot and a highlight box in one box the size of
 * the whole page, placed so that the region shown fits the container. */
export class PdfView {
  readonly root: HTMLElement;
  private shown: Drawn;
  /** Pages drawn for the current region and box: the one shown and its neighbours. */
  private readonly ahead = new Map<number, Drawn>();
  /** Neighbours being drawn ahead now: a turn to one of them takes its draw over, and a turn
   * anywhere else cancels them, so the page asked for never waits behind one nobody asked for. */
  private readonly aheadRuns = new Map<number, { run: Run; drawn: Promise<Drawn | null> }>();
  private readonly tasks = new Set<RenderTask>();
  /** The pointer, highlight, marks and ink over the page. */
  private readonly overlay: PageOverlay;
  private doc: PDFDocumentProxy | null = null;
  /** pdf.js opening a document whose shown pages so far were scans. */
  private opening: Promise<PDFDocumentProxy> | null = null;
  /** Where the loaded document's bytes come from. */
  private source: DocSource | null = null;
  /** The loaded document's scanned pages, drawn from their JPEGs (chunked documents only). */
  private scans: ScanIndex | null = null;
  /** The loaded document's page count (pdf.js's, or the scan list's before pdf.js opens it). */
  private numPages = 0;
  private docKey: string | null = null;
  private wantedKey: string | null = null;
  /** The draw of `page` under way, if any. */
  private inflight: Promise<void> | null = null;
  private page = 0;
  private renderSerial = 0;
  /** When the document was loaded: drawing ahead waits a little after that (see `drawAhead`). */
  private loadedAt = 0;
  /** The region of the page shown (null: the whole page). */
  private region: Region | null = null;
  private redrawTimer: ReturnType<typeof setTimeout> | null = null;
  /** The page on screen once its pixels are drawn (for tests and acks). */
  shownPage = 0;
  /** Called after a page is on screen; `ahead` when it had been drawn before it was asked for. */
  onRendered: (page: number, ahead: boolean) => void = () => {};

  constructor(private readonly container: HTMLElement) {
    this.root = document.createElement("div");
    this.root.className = "page";
    const canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    this.shown = { canvas, page: A4, covers: { x: 0, y: 0, w: 1, h: 1 }, frame: { box: { w: 0, h: 0 }, region: null, dpr: 1 } };
    this.root.append(canvas);
    this.overlay = new PageOverlay(this.root, () => this.page);
    container.append(this.root);
    new ResizeObserver(() => {
      this.layout();
      if (!this.fits(this.shown)) this.rerender();
    }).observe(container);
  }

  /** Loads a document (no-op when the same key is loaded). When loads overlap, the last one asked
   * for wins and the others are destroyed. A chunked document whose pages are scans is ready at
   * once: its pages are drawn from their own JPEGs, and pdf.js opens it only for a page that is not. */
  async load(key: string, source: DocSource): Promise<void> {
    if (this.docKey === key) return;
    this.wantedKey = key;
    const scans = "chunks" in source && source.scans ? source.scans : null;
    const doc = scans ? null : await openPdf(source);
    if (this.wantedKey !== key) {
      void doc?.destroy(); // a newer document was asked for meanwhile
      return;
    }
    for (const task of this.tasks) task.cancel();
    this.stopAhead(0);
    this.ahead.clear();
    const old = this.doc;
    void this.opening?.then((d) => d.destroy(), () => {});
    this.opening = null;
    this.doc = doc;
    this.source = source;
    this.scans = scans;
    this.numPages = doc?.numPages ?? scans?.pages.length ?? 0;
    this.docKey = key;
    // Only a document still coming over the network waits: drawing ahead from bytes here costs none.
    this.loadedAt = "chunks" in source ? Date.now() : 0;
    this.page = 0;
    this.shownPage = 0;
    this.inflight = null;
    void old?.destroy();
  }

  /** pdf.js's view of the loaded document, opened on first need when its pages were scans. */
  private async pdf(): Promise<PDFDocumentProxy | null> {
    if (this.doc) return this.doc;
    const source = this.source;
    const key = this.docKey;
    if (!source) return null;
    // A failed open is forgotten, so the next page that needs pdf.js tries again.
    this.opening ??= openPdf(source).catch((e: unknown) => {
      this.opening = null;
      throw e;
    });
    const doc = await this.opening;
    if (key !== this.docKey) return null;
    this.doc = doc;
    return doc;
  }

  /** The key of the document loaded now. */
  get key(): string | null {
    return this.docKey;
  }

  /** Whether a document is loaded. */
  get loaded(): boolean {
    return this.docKey !== null;
  }

  /** The shown page's size in points (A4 until it is drawn). */
  get pageSize(): Size {
    return this.shown.page;
  }

  /** The size of the box the page is fitted in, in CSS pixels. */
  get box(): Size {
    const cs = getComputedStyle(this.container);
    return {
      w: Math.max(1, this.container.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)),
      h: Math.max(1, this.container.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom)),
    };
  }

  /** Shows `region` of the page (null: the whole page). The drawn part moves with it at once; it is
   * drawn sharp again once the region holds still. */
  setRegion(region: Region | null): void {
    const r = this.region;
    if (r === region || (r && region && r.x === region.x && r.y === region.y && r.w === region.w && r.h === region.h)) return;
    this.region = region;
    this.layout();
    if (this.redrawTimer) clearTimeout(this.redrawTimer);
    this.redrawTimer = setTimeout(() => {
      this.redrawTimer = null;
      if (!this.fits(this.shown)) this.rerender();
    }, REDRAW_AFTER_MS);
  }

  /** Whether a drawn page is what the box would show now. */
  private fits(d: Drawn): boolean {
    return sameFrame(d.frame, this.frame());
  }

  /** Shows a page (1-based). A page drawn ahead of time is swapped in at once. */
  async show(page: number, label: string): Promise<void> {
    if (!this.numPages) return;
    const n = Math.min(Math.max(1, page), this.numPages);
    this.shown.canvas.setAttribute("aria-label", label);
    if (n === this.page && this.shownPage === n) return;
    // The same page is being drawn already (pointer moves arrive while it draws): wait for it.
    if (n === this.page && this.inflight) return this.inflight;
    this.page = n;
    const drawing = this.render();
    this.inflight = drawing;
    try {
      await drawing;
    } finally {
      if (this.inflight === drawing) this.inflight = null;
    }
  }

  /** Draws the shown page again into a new canvas (after the box or the region changed, or when the
   * webview may have lost the old canvas's pixels: WebKitGTK on software GL can leave a canvas
   * unpainted after the page animated while reconnecting). */
  rerender(): void {
    this.stopAhead(0);
    this.ahead.clear();
    if (this.numPages && this.page) {
      const drawing = this.render();
      this.inflight = drawing;
      void drawing.finally(() => {
        if (this.inflight === drawing) this.inflight = null;
      });
    }
  }

  /** Places the page box so that the region fits the container, and the drawn part where it belongs. */
  private layout(): void {
    const cs = getComputedStyle(this.container);
    const p = place(this.region, this.shown.page, this.box);
    const s = this.root.style;
    s.left = `${parseFloat(cs.paddingLeft) + p.left}px`;
    s.top = `${parseFloat(cs.paddingTop) + p.top}px`;
    s.width = `${this.shown.page.w * p.scale}px`;
    s.height = `${this.shown.page.h * p.scale}px`;
    const c = this.shown.covers;
    const cv = this.shown.canvas.style;
    cv.left = `${c.x * 100}%`;
    cv.top = `${c.y * 100}%`;
    cv.width = `${c.w * 100}%`;
    cv.height = `${c.h * 100}%`;
    this.overlay.setPlace(c, this.shown.canvas.width, this.shown.canvas.height);
  }

  /** What a draw now fits, and where. */
  private frame(): Frame {
    return { box: this.box, region: this.region, dpr: window.devicePixelRatio || 1 };
  }

  /** Draws what the box shows of page `n`; null if cancelled or a newer document superseded it. */
  private async draw(n: number, run?: Run): Promise<Drawn | null> {
    const key = this.docKey;
    const frame = this.frame();
    const scan = this.scans?.pages[n - 1];
    if (scan && this.source && "chunks" in this.source) {
      const [offset, length, width, height] = scan;
      try {
        // The JPEG's bytes are fetched once and kept with the rest; a failed fetch is tried again
        // until it comes or the document changes.
        let bytes: Uint8Array | null = null;
        for (let tries = 0; !bytes; tries++) {
          bytes = await this.source.chunks.ensure(offset, offset + length).catch(() => null);
          if (key !== this.docKey || run?.cancelled) return null;
          if (!bytes) await new Promise((r) => setTimeout(r, Math.min(10_000, RETRY_MS * 2 ** Math.min(tries, 3))));
        }
        const drawn = await drawScan(bytes, width, height, frame);
        return key === this.docKey ? drawn : null;
      } catch (e) {
        // The image does not decode here: this page is pdf.js's from now on.
        console.error(`page ${n} from its image:`, e);
        if (key !== this.docKey) return null;
        this.scans = this.scans && { pages: this.scans.pages.map((p, i) => (i === n - 1 ? null : p)) };
      }
    }
    const doc = await this.pdf().catch((e) => {
      console.error("opening the document:", e);
      return null;
    });
    if (!doc || key !== this.docKey || n > doc.numPages || run?.cancelled) return null;
    const drawn = await drawPdf(doc, n, frame, this.tasks, run);
    return key === this.docKey ? drawn : null;
  }

  private async render(): Promise<void> {
    const serial = ++this.renderSerial;
    const n = this.page;
    let drawn = this.ahead.get(n) ?? null;
    if (drawn && !this.fits(drawn)) drawn = null; // drawn for another region or box
    const ahead = drawn !== null;
    if (!drawn) {
      // A neighbour drawn ahead right now is taken over; every other draw ahead makes way.
      const started = this.aheadRuns.get(n);
      this.stopAhead(n);
      if (started) drawn = await started.drawn;
      if (drawn && !this.fits(drawn)) drawn = null; // the region moved while it was drawn
      if (!drawn && serial === this.renderSerial) drawn = await this.draw(n);
    }
    if (!drawn || serial !== this.renderSerial) return;
    // Swap the finished canvas in, so a page turn never shows a blank page.
    const canvas = drawn.canvas;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", this.shown.canvas.getAttribute("aria-label") ?? "");
    this.shown.canvas.replaceWith(canvas);
    this.shown = drawn;
    this.layout();
    this.shownPage = n;
    this.root.dataset.page = String(n);
    this.root.dataset.draws = String(Number(this.root.dataset.draws ?? 0) + 1);
    this.onRendered(n, ahead);
    this.drawAhead(n, serial);
  }

  /** Draws the pages either side of `n` while the reader reads, one at a time when the page is
   * idle, so the next turn is a swap. */
  private drawAhead(n: number, serial: number): void {
    const pages = this.numPages;
    // A document still coming over the network draws only the next page ahead (a class turns
    // forward, and every neighbour is bytes on a shared link); one whose bytes are all here draws both
    // sides, at once: that costs only this device's idle time.
    const source = this.source;
    const coming = source !== null && "chunks" in source && !source.chunks.complete;
    const near = coming ? [n, n + 1] : [n, n + 1, n - 1, n + 2];
    const keep = near.filter((p) => p >= 1 && p <= pages);
    for (const p of [...this.ahead.keys()]) if (!keep.includes(p)) this.ahead.delete(p);
    this.ahead.set(n, this.shown);
    const key = this.docKey;
    void (async () => {
      // Right after a document opens, a class is fetching its first pages together over one access
      // point: neighbours that need bytes wait until that is over (DRAW_AHEAD_AFTER_MS).
      const settle = coming ? this.loadedAt + DRAW_AHEAD_AFTER_MS - Date.now() : 0;
      if (settle > 0) await new Promise((r) => setTimeout(r, settle));
      for (const p of keep) {
        await idle();
        if (serial !== this.renderSerial || key !== this.docKey) return;
        const have = this.ahead.get(p);
        if ((have && this.fits(have)) || this.aheadRuns.has(p)) continue;
        const run: Run = { cancelled: false, task: null };
        const drawn = this.draw(p, run);
        const entry = { run, drawn };
        this.aheadRuns.set(p, entry);
        const d = await drawn;
        if (this.aheadRuns.get(p) === entry) this.aheadRuns.delete(p);
        if (run.cancelled || key !== this.docKey) return;
        // Kept while it is still a neighbour of the page shown (the reader may have turned meanwhile).
        if (d && Math.abs(p - this.page) <= 2) this.ahead.set(p, d);
      }
    })();
  }

  /** Cancels the draws ahead under way, but page `except`'s. */
  private stopAhead(except: number): void {
    for (const [p, { run }] of this.aheadRuns) {
      if (p === except) continue;
      run.cancelled = true;
      run.task?.cancel();
      this.aheadRuns.delete(p);
    }
  }

  /** Places the laser pointer, or hides it. */
  setPointer(pos: Point | null): void {
    this.overlay.setPointer(pos);
  }

  /** Draws the highlight when it is on the page shown (and not one of its marks), or hides it. */
  setHighlight(h: { page: number; x: number; y: number; w: number; h: number } | null): void {
    this.overlay.setHighlight(h);
  }

  /** Draws the marks that stay on the page shown: highlights as boxes, strokes as ink. */
  setMarks(marks: readonly Mark[]): void {
    this.overlay.setMarks(marks);
  }

  /** Draws the stroke being drawn when it is on the page shown, or none. */
  setLive(live: LiveInk | null): void {
    this.overlay.setLive(live);
  }

  /** Draws the rectangle being dragged (teacher), or hides it. */
  setDraft(h: { x: number; y: number; w: number; h: number } | null): void {
    this.overlay.setDraft(h);
  }

  /** A pointer event's position, normalized to the page. */
  toPage(ev: { clientX: number; clientY: number }): Point {
    const r = this.root.getBoundingClientRect();
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    return { x: clamp((ev.clientX - r.left) / r.width), y: clamp((ev.clientY - r.top) / r.height) };
  }
}
