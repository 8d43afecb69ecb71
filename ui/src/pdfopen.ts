// pdf.js, in a script of its own that a device loads only when it draws a page pdf.js must draw
// (a scanned page is drawn from its JPEG without it): opening a document from its bytes or from a
// chunked download, with one worker for every document.
import * as pdfjs from "pdfjs-dist";
import workerUrl from "pdfjs-dist/build/pdf.worker.min.mjs?url";
import type { PDFDocumentProxy } from "pdfjs-dist";
import { RETRY_MS, type ChunkedDoc, type DocSource } from "./docfetch";

pdfjs.GlobalWorkerOptions.workerSrc = workerUrl;

/** pdf.js's worker, started once pdf.js loads: every document shares it. */
let sharedWorker: pdfjs.PDFWorker | null = null;

/** The shared worker, started on first call. */
export function worker(): pdfjs.PDFWorker {
  sharedWorker ??= new pdfjs.PDFWorker();
  return sharedWorker;
}

/** Hands pdf.js the ranges it asks for from a chunked download (every byte fetched once). */
class ChunkedTransport extends pdfjs.PDFDataRangeTransport {
  private aborted = false;

  constructor(private readonly chunks: ChunkedDoc) {
    super(chunks.total, chunks.prefix);
  }

  /** pdf.js waits for every range it asked for, so a failed one is asked for again (the link comes
   * back, or the document is closed and this transport aborted). */
  override requestDataRange(begin: number, end: number): void {
    const attempt = (tries: number) => {
      if (this.aborted) return;
      this.chunks.ensure(begin, end).then(
        (bytes) => {
          if (!this.aborted) this.onDataRange(begin, bytes.slice());
        },
        (e) => {
          console.error(`fetching bytes ${begin}-${end}:`, e);
          setTimeout(() => attempt(tries + 1), Math.min(10_000, RETRY_MS * 2 ** Math.min(tries, 3)));
        },
      );
    };
    attempt(0);
  }

  override abort(): void {
    this.aborted = true;
    this.chunks.stop();
  }
}

/** Opens a document with pdf.js: from its bytes, or reading a chunked download's ranges as it needs. */
export function open(source: DocSource): Promise<PDFDocumentProxy> {
  const params =
    "bytes" in source
      ? { data: new Uint8Array(source.bytes.slice(0)), worker: worker() }
      : {
          worker: worker(),
          range: new ChunkedTransport(source.chunks),
          length: source.chunks.total,
          rangeChunkSize: source.chunks.chunkSize,
          // Only what a page needs: the rest is the chunked download's to fetch, at its pace.
          disableAutoFetch: true,
          disableStream: true,
        };
  return pdfjs.getDocument(params).promise;
}

