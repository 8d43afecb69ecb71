// Drawing the part of a page a screen shows into a canvas of its own: with pdf.js, or from a scanned
// page's JPEG. Only the part in the box is drawn, at the box's resolution, so a page zoomed eight
// times costs the pixels of the screen, not sixty-four pages' worth. pdf.js (most of the scripts a
// student loads) is loaded only for a page that needs it (`pdfopen.ts`).
import type { PDFDocumentProxy, RenderTask } from "pdfjs-dist";
import type { DocSource } from "./docfetch";
import { place, visible, type Region, type Size } from "./region";

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
export async function openPdf(source: DocSource): Promise<PDFDocumentProxy> {
  return (await preloadPdfJs()).open(source);
}

/** A draw that may be cancelled (a draw ahead, when the reader turns elsewhere). */
export interface Run {
  cancelled: boolean;
  task: RenderTask | null;
}

/** A drawn part of a page: the canvas, the page's size in points, the region it covers and the
 * frame it was drawn for. */
export interface Drawn {
  canvas: HTMLCanvasElement;
  page: Size;
  covers: Region;
  frame: Frame;
}

/** Whether two frames draw the same pixels. */
export function sameFrame(a: Frame, b: Frame): boolean {
  const r = a.region;
  const q = b.region;
  const regions = r === q || (!!r && !!q && r.x === q.x && r.y === q.y && r.w === q.w && r.h === q.h);
  return regions && a.box.w === b.box.w && a.box.h === b.box.h && a.dpr === b.dpr;
}

/** Where a page is drawn: the box's size in CSS pixels, the region to fit, the screen's pixel ratio. */
export interface Frame {
  box: Size;
  region: Region | null;
  dpr: number;
}

/** Resolves when the page has nothing more pressing to do (a frame drawn, input handled). */
export function idle(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof requestIdleCallback === "function") requestIdleCallback(() => resolve(), { timeout: 1000 });
    else setTimeout(resolve, 0);
  });
}

/**
 * A scanned page's canvas's 2D context, kept in memory rather than on the GPU (`willReadFrequently`),
 * as pdf.js makes its own when it is given only the canvas. A page is drawn off-screen and then
 * swapped in; WebKitGTK (the app's webview) on software GL showed such a GPU canvas white on screen
 * although it held the page, until the window was resized. (A context made here first, with the
 * defaults, had been what pdf.js drew into.) Chromium draws a page turn as fast either way
 * (docs/BENCHMARKS.md, "The app").
 */
function context(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  return canvas.getContext("2d", { willReadFrequently: true })!;
}

/** The canvas for the part of a page of this size that the frame shows, and that part. */
function target(page: Size, frame: Frame): { canvas: HTMLCanvasElement; covers: Region; scale: number; left: number; top: number } {
  const p = place(frame.region, page, frame.box);
  const covers = visible(p, page, frame.box);
  const scale = p.scale * frame.dpr;
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(covers.w * page.w * scale));
  canvas.height = Math.max(1, Math.round(covers.h * page.h * scale));
  return { canvas, covers, scale, left: covers.x * page.w * scale, top: covers.y * page.h * scale };
}

/** Draws what the frame shows of page `n` with pdf.js; null when cancelled. */
export async function drawPdf(
  doc: PDFDocumentProxy,
  n: number,
  frame: Frame,
  tasks: Set<RenderTask>,
  run?: Run,
): Promise<Drawn | null> {
  const page = await doc.getPage(n);
  if (run?.cancelled) return null;
  const base = page.getViewport({ scale: 1 });
  const size = { w: base.width, h: base.height };
  const t = target(size, frame);
  const viewport = page.getViewport({ scale: t.scale, offsetX: -t.left, offsetY: -t.top });
  // pdf.js makes the canvas's context itself, opaque and kept in memory (see `context`).
  const task = page.render({ canvas: t.canvas, viewport });
  tasks.add(task);
  if (run) run.task = task;
  try {
    await task.promise;
  } catch {
    return null; // cancelled
  } finally {
    tasks.delete(task);
  }
  return { canvas: t.canvas, page: size, covers: t.covers, frame };
}

/** Draws what the frame shows of a scanned page from its JPEG's bytes (throws when they do not decode). */
export async function drawScan(bytes: Uint8Array, width: number, height: number, frame: Frame): Promise<Drawn> {
  const image = await createImageBitmap(new Blob([bytes.slice()], { type: "image/jpeg" }));
  try {
    const size = { w: width, h: height };
    const t = target(size, frame);
    const ctx = context(t.canvas);
    ctx.imageSmoothingQuality = "high";
    const sx = image.width / width;
    const sy = image.height / height;
    const c = t.covers;
    ctx.drawImage(image, c.x * width * sx, c.y * height * sy, c.w * width * sx, c.h * height * sy, 0, 0, t.canvas.width, t.canvas.height);
    return { canvas: t.canvas, page: size, covers: c, frame };
  } finally {
    image.close();
  }
}
