// Renders one page of a PDF, fitted to its box, with the teacher's pointer and highlight drawn over
// it in page-normalized coordinates (0..1), so every screen shows them at the same spot. A scanned
// page is drawn from its own JPEG; pdf.js (most of the scripts a student loads) is loaded only for a
// page that needs it (`pdfopen.ts`).
import type { PDFDocumentProxy, RenderTask } from "pdfjs-dist";
import { BACKGROUND, RETRY_MS, type ChunkedDoc, type DocSource } from "./docfetch";
import type { ScanIndex } from "./generated/ScanIndex";

/** How long after a document opens over the network its neighbouring pages start being drawn
 * ahead: as long as its background download waits, the minute in which a class joins together over
 * one access point (a turn in that minute fetches its page then, about 1 s for 30 tablets on
 * 20 Mbit/s, instead of every tablet fetching the next page while the others fetch their first). */
const DRAW_AHEAD_AFTER_MS = BACKGROUND.startAfterMs;

/** pdf.js, loaded on first need and once. */
let pdfjs: Promise<typeof import("./pdfopen")> | null = null;

/** Starts loading pdf.js (and its worker) now, for a view that will need it: the teacher's console,
 * or a document whose pages are not all scans. */
export function preloadPdfJs(): Promise<typeof import("./pdfopen")> {
  pdfjs ??= import("./pdfopen").then((m) => {
    m.worker();
    return m;
  });
  pdfjs.catch(() => {
    pdfjs = null; // a failed load (the link dropped) is tried again by the next page that needs it
  });
  return pdfjs;
}

/** Opens a document with pdf.js. */
async function open(source: DocSource): Promise<PDFDocumentProxy> {
  return (await preloadPdfJs()).open(source);
}

/** A draw ahead that a turn elsewhere may cancel. */
interface Run {
  cancelled: boolean;
  task: RenderTask | null;
}

/** Resolves when the page has nothing more pressing to do (a frame drawn, input handled). */
function idle(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof requestIdleCallback === "function") requestIdleCallback(() => resolve(), { timeout: 1000 });
    else setTimeout(resolve, 0);
  });
}

/** A normalized point on the page. */
export interface Point {
  x: number;
  y: number;
}

/** A page view: a canvas, a pointer dot and a highlight box in one positioned box. */
export class PdfView {
  readonly root: HTMLElement;
  private canvas: HTMLCanvasElement;
  /** Pages drawn at the current size: the one shown and its neighbours. */
  private readonly ahead = new Map<number, HTMLCanvasElement>();
  /** Neighbours being drawn ahead now: a turn to one of them takes its draw over, and a turn
   * anywhere else cancels them, so the page asked for never waits behind one nobody asked for. */
  private readonly aheadRuns = new Map<number, { run: Run; canvas: Promise<HTMLCanvasElement | null> }>();
  private readonly tasks = new Set<RenderTask>();
  private readonly pointer: HTMLElement;
  private readonly mark: HTMLElement;
  private readonly draft: HTMLElement;
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
  /** The page on screen once its pixels are drawn (for tests and acks). */
  shownPage = 0;
  /** How a page is sized: whole in the box (the teacher's console), or as wide as the box when the
   * box is wider than the page's shape (a student's landscape tablet), scrolling down the page and
   * keeping the teacher's pointer and highlight in view. */
  fit: "page" | "width" = "page";
  /** Called after a page is on screen; `ahead` when it had been drawn before it was asked for. */
  onRendered: (page: number, ahead: boolean) => void = () => {};

  constructor(container: HTMLElement) {
    this.root = document.createElement("div");
    this.root.className = "page";
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    this.pointer = document.createElement("div");
    this.pointer.className = "laser";
    this.pointer.hidden = true;
    this.mark = document.createElement("div");
    this.mark.className = "mark";
    this.mark.hidden = true;
    this.draft = document.createElement("div");
    this.draft.className = "mark draft";
    this.draft.hidden = true;
    this.root.append(this.canvas, this.mark, this.draft, this.pointer);
    container.append(this.root);
    new ResizeObserver(() => this.rerender()).observe(container);
  }

  /** Loads a document (no-op when the same key is loaded). When loads overlap, the last one asked
   * for wins and the others are destroyed. A chunked document whose pages are scans is ready at
   * once: its pages are drawn from their own JPEGs, and pdf.js opens it only for a page that is not. */
  async load(key: string, source: DocSource): Promise<void> {
    if (this.docKey === key) return;
    this.wantedKey = key;
    const scans = "chunks" in source && source.scans ? source.scans : null;
    const doc = scans ? null : await open(source);
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
    this.opening ??= open(source).catch((e: unknown) => {
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

  /** Shows a page (1-based). A page drawn ahead of time is swapped in at once. */
  async show(page: number, label: string): Promise<void> {
    if (!this.numPages) return;
    const n = Math.min(Math.max(1, page), this.numPages);
    this.canvas.setAttribute("aria-label", label);
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

  /** Draws the shown page again into a new canvas (after the window was resized, or when the
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

  /** The scale that fits a page of this size in the box, times the screen's pixel ratio. */
  private scaleFor(width: number, height: number): number {
    // The box's content area: its padding is the margin around the page.
    const box = this.root.parentElement;
    let fit = 1;
    if (box) {
      const cs = getComputedStyle(box);
      const w = box.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      const h = box.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
      if (w > 0 && h > 0) fit = this.fit === "width" && w > h ? w / width : Math.min(w / width, h / height);
    }
    return fit * (window.devicePixelRatio || 1);
  }

  /** Draws a page into a new canvas at the current fit; null if a newer request superseded it. */
  private async draw(n: number, run?: Run): Promise<HTMLCanvasElement | null> {
    const key = this.docKey;
    const scan = this.scans?.pages[n - 1];
    if (scan && this.source && "chunks" in this.source) {
      try {
        return await this.drawScan(this.source.chunks, scan, key);
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
    const page = await doc.getPage(n);
    if (run?.cancelled) return null;
    const base = page.getViewport({ scale: 1 });
    const viewport = page.getViewport({ scale: this.scaleFor(base.width, base.height) });
    const canvas = document.createElement("canvas");
    canvas.width = Math.floor(viewport.width);
    canvas.height = Math.floor(viewport.height);
    const task = page.render({ canvas, canvasContext: canvas.getContext("2d")!, viewport });
    this.tasks.add(task);
    if (run) run.task = task;
    try {
      await task.promise;
    } catch {
      return null; // cancelled
    } finally {
      this.tasks.delete(task);
    }
    return key === this.docKey ? canvas : null;
  }

  /** Draws a scanned page from its JPEG's bytes in the document (fetched once, kept with the rest):
   * a failed fetch is tried again until it comes or the document changes (null); an image that
   * does not decode throws. */
  private async drawScan(chunks: ChunkedDoc, [offset, length, width, height]: [number, number, number, number], key: string | null): Promise<HTMLCanvasElement | null> {
    let bytes: Uint8Array | null = null;
    for (let tries = 0; !bytes; tries++) {
      bytes = await chunks.ensure(offset, offset + length).catch(() => null);
      if (key !== this.docKey) return null;
      if (!bytes) await new Promise((r) => setTimeout(r, Math.min(10_000, RETRY_MS * 2 ** Math.min(tries, 3))));
    }
    const image = await createImageBitmap(new Blob([bytes.slice()], { type: "image/jpeg" }));
    try {
      const scale = this.scaleFor(width, height);
      const canvas = document.createElement("canvas");
      canvas.width = Math.floor(width * scale);
      canvas.height = Math.floor(height * scale);
      const ctx = canvas.getContext("2d")!;
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
      return key === this.docKey ? canvas : null;
    } finally {
      image.close();
    }
  }

  private async render(): Promise<void> {
    const serial = ++this.renderSerial;
    const n = this.page;
    let canvas = this.ahead.get(n) ?? null;
    const ahead = canvas !== null;
    if (!canvas) {
      // A neighbour drawn ahead right now is taken over; every other draw ahead makes way.
      const started = this.aheadRuns.get(n);
      this.stopAhead(n);
      if (started) canvas = await started.canvas;
      if (!canvas && serial === this.renderSerial) canvas = await this.draw(n);
    }
    if (!canvas || serial !== this.renderSerial) return;
    // Swap the finished canvas in, so a page turn never shows a blank page.
    const dpr = window.devicePixelRatio || 1;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", this.canvas.getAttribute("aria-label") ?? "");
    this.canvas.replaceWith(canvas);
    this.canvas = canvas;
    this.root.style.width = `${Math.floor(canvas.width / dpr)}px`;
    this.root.style.height = `${Math.floor(canvas.height / dpr)}px`;
    // A new page scrolled as wide as the screen starts at its top (the pointer, if any, then
    // scrolls it to where the teacher is).
    if (this.fit === "width" && n !== this.shownPage && this.root.parentElement) this.root.parentElement.scrollTop = 0;
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
    this.ahead.set(n, this.canvas);
    const key = this.docKey;
    void (async () => {
      // Right after a document opens, a class is fetching its first pages together over one access
      // point: neighbours that need bytes wait until that is over (DRAW_AHEAD_AFTER_MS).
      const settle = coming ? this.loadedAt + DRAW_AHEAD_AFTER_MS - Date.now() : 0;
      if (settle > 0) await new Promise((r) => setTimeout(r, settle));
      for (const p of keep) {
        await idle();
        if (serial !== this.renderSerial || key !== this.docKey) return;
        if (this.ahead.has(p) || this.aheadRuns.has(p)) continue;
        const run: Run = { cancelled: false, task: null };
        const canvas = this.draw(p, run);
        const entry = { run, canvas };
        this.aheadRuns.set(p, entry);
        const c = await canvas;
        if (this.aheadRuns.get(p) === entry) this.aheadRuns.delete(p);
        if (run.cancelled || key !== this.docKey) return;
        // Kept while it is still a neighbour of the page shown (the reader may have turned meanwhile).
        if (c && Math.abs(p - this.page) <= 2) this.ahead.set(p, c);
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
    this.pointer.hidden = !pos;
    if (pos) {
      this.pointer.style.left = `${pos.x * 100}%`;
      this.pointer.style.top = `${pos.y * 100}%`;
      if (this.fit === "width") this.pointer.scrollIntoView?.({ block: "nearest" });
    }
  }

  /** Draws the highlight when it is on the page shown, or hides it. */
  setHighlight(h: { page: number; x: number; y: number; w: number; h: number } | null): void {
    place(this.mark, h && h.page === this.page ? h : null);
    if (this.fit === "width" && !this.mark.hidden) this.mark.scrollIntoView?.({ block: "nearest" });
  }

  /** Draws the rectangle being dragged (teacher), or hides it. */
  setDraft(h: { x: number; y: number; w: number; h: number } | null): void {
    place(this.draft, h);
  }

  /** A pointer event's position, normalized to the page. */
  toPage(ev: { clientX: number; clientY: number }): Point {
    const r = this.root.getBoundingClientRect();
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    return { x: clamp((ev.clientX - r.left) / r.width), y: clamp((ev.clientY - r.top) / r.height) };
  }
}

function place(el: HTMLElement, h: { x: number; y: number; w: number; h: number } | null): void {
  el.hidden = !h;
  if (!h) return;
  el.style.left = `${h.x * 100}%`;
  el.style.top = `${h.y * 100}%`;
  el.style.width = `${h.w * 100}%`;
  el.style.height = `${h.h * 100}%`;
}
