// A document fetched in chunks, so that the first page appears after only the bytes it needs
// (docs/WIFI.md, "Documents on a thin link"). pdf.js asks for the ranges a page needs; those come
// first, in as few requests as possible. The rest follows in the background, one chunk at a time,
// paced so that a class joining together does not fill the classroom's link. Every byte crosses the
// network once: chunks fetched for a page are never fetched again. When the whole document is in,
// it is checked against its sha256 and kept, so the next lesson loads it from the device. `openDoc`
// is that whole path, once for both platforms: they differ only in where they keep documents and how
// bytes reach them (`DocIO`).

import type { Doc } from "./generated/Doc";
import type { ScanIndex } from "./generated/ScanIndex";

/** What a document is loaded from: its bytes, or a chunked download that pdf.js reads as it needs,
 * with the pages that are one full-page JPEG (drawn from that image's bytes alone) when known. */
export type DocSource = { bytes: ArrayBuffer } | { chunks: ChunkedDoc; scans?: ScanIndex | null };

/** The largest page image believed (as the server's limit). */
const MAX_SCAN_BYTES = 32 * 1024 * 1024;

/** The server's list of scanned pages (PROTOCOL-ADDITIONS.md, section D), if it fits a document of
 * `pages` pages and `total` bytes; null (draw every page with pdf.js) if it does not. */
export function checkScans(index: unknown, pages: number, total: number): ScanIndex | null {
  const list = (index as Partial<ScanIndex> | null)?.pages;
  if (!Array.isArray(list) || list.length !== pages) return null;
  const fits = (e: unknown) =>
    e === null ||
    (Array.isArray(e) &&
      e.length === 4 &&
      e.every((v) => Number.isSafeInteger(v) && v >= 0) &&
      e[0] + e[1] <= total &&
      e[1] > 0 &&
      e[1] <= MAX_SCAN_BYTES &&
      e[2] >= 1 &&
      e[3] >= 1 &&
      e[2] <= 14_400 &&
      e[3] <= 14_400);
  return list.every(fits) ? { pages: list } : null;
}

/** Fetches bytes [begin, end) of the document; resolves with them and the document's length, or
 * with the whole document (`whole`) from a server that ignores ranges. */
export type RangeFetch = (begin: number, end: number) => Promise<{ bytes: Uint8Array; total: number; whole?: boolean }>;

/** The largest document a server accepts (PROTOCOL.md §9): a length beyond it is not believed. */
export const MAX_DOC_BYTES = 200 * 1024 * 1024;

/** How the background fetch is paced. */
export interface Pace {
  /** Wait this long after opening before fetching what no page asked for. */
  startAfterMs: number;
  /** Then at most this many bytes a second. */
  bytesPerSecond: number;
}

/** Chunks of one document: which are here, and the bytes of those that are. */
export class ChunkedDoc {
  readonly total: number;
  private readonly have: Uint8Array;
  private readonly data: Uint8Array;
  /** Chunks being fetched, by index: a second ask waits for the same request. */
  private readonly inflight = new Map<number, Promise<void>>();
  private stopped = false;
  /** Bytes that crossed the network for this document. */
  fetched = 0;

  private constructor(
    private readonly fetchRange: RangeFetch,
    readonly chunkSize: number,
    first: { bytes: Uint8Array; total: number },
  ) {
    if (!Number.isSafeInteger(first.total) || first.total < first.bytes.length || first.total > MAX_DOC_BYTES) {
      throw new Error(`the server gave a document length of ${first.total} bytes`);
    }
    this.total = first.total;
    this.have = new Uint8Array(Math.ceil(first.total / chunkSize));
    this.data = new Uint8Array(first.total);
    this.store(0, first.bytes);
    this.fetched = first.bytes.length;
  }

  /** Fetches the first chunk, which says how long the document is. */
  static async open(fetchRange: RangeFetch, chunkSize: number): Promise<ChunkedDoc> {
    const first = await fetchRange(0, chunkSize);
    return new ChunkedDoc(fetchRange, chunkSize, first);
  }

  /** The bytes fetched so far from the start, contiguous (pdf.js's initial data). */
  get prefix(): Uint8Array {
    let n = 0;
    while (n < this.have.length && this.have[n]) n++;
    return this.data.subarray(0, Math.min(n * this.chunkSize, this.total));
  }

  /** Whether every chunk is here. */
  get complete(): boolean {
    return this.have.every((h) => h === 1);
  }

  /** The whole document, once complete. */
  get bytes(): Uint8Array | null {
    return this.complete ? this.data : null;
  }

  /** Makes sure bytes [begin, end) are here: the missing chunks, in one request per run of them. */
  async ensure(begin: number, end: number): Promise<Uint8Array> {
    const first = Math.floor(begin / this.chunkSize);
    const last = Math.min(this.have.length, Math.ceil(Math.min(end, this.total) / this.chunkSize));
    const waits: Promise<void>[] = [];
    let run = -1;
    const flush = (upTo: number) => {
      if (run >= 0) waits.push(this.fetchRun(run, upTo));
      run = -1;
    };
    for (let c = first; c < last; c++) {
      const pending = this.inflight.get(c);
      if (this.have[c]) flush(c);
      else if (pending) {
        flush(c);
        waits.push(pending);
      } else if (run < 0) run = c;
    }
    flush(last);
    await Promise.all(waits);
    for (let c = first; c < last; c++) if (!this.have[c]) throw new Error(`bytes ${begin}-${end} did not arrive`);
    return this.data.subarray(begin, Math.min(end, this.total));
  }

  /** Fetches the chunks nobody asked for, from the start, at the given pace; resolves once the
   * document is complete (or the fetch was stopped). `onChunk` hears of each chunk that arrives. */
  async background(pace: Pace, onChunk: (begin: number) => void = () => {}): Promise<void> {
    await sleep(pace.startAfterMs);
    for (let c = 0; c < this.have.length && !this.stopped; c++) {
      if (this.have[c]) continue;
      const started = Date.now();
      try {
        await this.ensure(c * this.chunkSize, (c + 1) * this.chunkSize);
      } catch {
        // The link dropped or the server refused: come back to this chunk after a pause.
        await sleep(RETRY_MS);
        c--;
        continue;
      }
      onChunk(c * this.chunkSize);
      const budgetMs = (this.chunkSize / Math.max(1, pace.bytesPerSecond)) * 1000;
      await sleep(Math.max(0, budgetMs - (Date.now() - started)));
    }
  }

  /** Stops the background fetch (another document was chosen). */
  stop(): void {
    this.stopped = true;
  }

  private fetchRun(firstChunk: number, endChunk: number): Promise<void> {
    const begin = firstChunk * this.chunkSize;
    const end = Math.min(endChunk * this.chunkSize, this.total);
    const done = this.fetchRange(begin, end).then(({ bytes, total, whole }) => {
      this.fetched += bytes.length;
      if (whole && bytes.length === this.total) return this.store(0, bytes);
      // Exactly what was asked, of the same document: anything else would hand pdf.js wrong bytes.
      if (total !== this.total || bytes.length !== end - begin) {
        throw new Error(`asked for bytes ${begin}-${end} of ${this.total}, got ${bytes.length} of ${total}`);
      }
      this.store(begin, bytes);
    });
    const settled = done.finally(() => {
      for (let c = firstChunk; c < endChunk; c++) if (this.inflight.get(c) === settled) this.inflight.delete(c);
    });
    for (let c = firstChunk; c < endChunk; c++) this.inflight.set(c, settled);
    return settled;
  }

  private store(begin: number, bytes: Uint8Array): void {
    if (begin + bytes.length > this.total) throw new Error("the server sent more than the document holds");
    this.data.set(bytes, begin);
    const from = Math.floor(begin / this.chunkSize);
    const to = begin + bytes.length === this.total ? this.have.length : Math.floor((begin + bytes.length) / this.chunkSize);
    for (let c = from; c < to; c++) this.have[c] = 1;
  }
}

/** Range size. Small, because pdf.js reads many small objects spread through a book (checking the
 * last page walks the page dictionaries before it, each next to its page's image): a 64 KiB range
 * for each would move most of those images for nothing. Measured on the thin-link rig: 64 KiB,
 * 16 KiB and 4 KiB moved about 1 MB, 420 kB and 235 kB per student before the first page. */
export const CHUNK = 4 * 1024;

/** The background fetch of the rest of a document waits out the first minute of a lesson, when a
 * class joins together, then takes at most this much of the link per device (30 tablets: about
 * 6 Mbit/s of a classroom access point). Pages asked for are fetched at once, whatever the pace. */
export const BACKGROUND: Pace = { startAfterMs: 60_000, bytesPerSecond: 24 * 1024 };

/** The document whose rest is being fetched in the background (one at a time). */
let inBackground: ChunkedDoc | null = null;

/** Opens a document that is not on this device yet: whole when it fits in one chunk, else chunked,
 * with the rest fetched in the background and handed to `keep` once whole (which checks it against
 * its sha256 before keeping it). */
export async function openChunked(
  fetchRange: RangeFetch,
  keep: (bytes: Uint8Array) => Promise<void>,
  pace = BACKGROUND,
  scans: (total: number) => Promise<ScanIndex | null> = async () => null,
): Promise<DocSource> {
  inBackground?.stop(); // another document: the old one's rest is not needed now
  inBackground = null;
  const chunks = await ChunkedDoc.open(fetchRange, CHUNK);
  const whole = chunks.bytes;
  if (whole) {
    await keep(whole);
    return { bytes: whole.slice().buffer };
  }
  inBackground = chunks;
  void chunks.background(pace).then(async () => {
    const bytes = chunks.bytes;
    if (bytes) await keep(bytes);
  });
  // The list of scanned pages is a help, not a need: a server slow to make it is not waited for.
  const timeout = sleep(SCAN_WAIT_MS).then(() => null);
  return { chunks, scans: await Promise.race([scans(chunks.total).catch(() => null), timeout]) };
}

/** A document's bytes if they are the ones its sha256 names; else an error (a relay, or anyone in
 * between, changed them), and nothing is drawn from them. */
export async function checkedWhole(bytes: ArrayBuffer, sha256: string): Promise<{ bytes: ArrayBuffer }> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice(0)));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== sha256) throw new Error("the document's bytes are not the ones the teacher chose");
  return { bytes };
}

/** What opening a document needs from the platform: where this device keeps documents, and how the
 * server hands them over (the browser: the Cache API and its own fetch; the app: a folder on disk
 * and Rust, which holds the pinned connection and checks what it keeps). */
export interface DocIO {
  /** The document's bytes if this device keeps them, else null. */
  cached(doc: Doc): Promise<ArrayBuffer | null>;
  /** Keeps a whole document under its sha256; never rejects. Bytes not `checked` against the sha256
   * yet are checked before they are kept, and dropped if they do not match. */
  keep(doc: Doc, bytes: Uint8Array, checked: boolean): Promise<void>;
  /** The whole document, in one request. */
  fetchWhole(doc: Doc, bearer: string): Promise<ArrayBuffer>;
  /** Byte ranges of the document. */
  fetchRange(doc: Doc, bearer: string): RangeFetch;
  /** The server's list of scanned pages as it came (`checkScans` judges it). */
  scanIndex(doc: Doc, bearer: string): Promise<unknown>;
}

/** A document (the contract's `Server.openDoc`): from this device, or else fetched with `io`, in
 * chunks or, with `whole`, only whole and checked against its sha256 before anything is drawn. */
export async function openDoc(io: DocIO, doc: Doc, bearer: string, whole = false): Promise<DocSource> {
  const cached = await io.cached(doc);
  if (cached) return { bytes: cached };
  if (whole) {
    const bytes = await io.fetchWhole(doc, bearer);
    const checked = await checkedWhole(bytes, doc.sha256);
    await io.keep(doc, new Uint8Array(bytes), true);
    return checked;
  }
  // Asked for alongside the first chunk: which pages can be drawn from their own JPEG.
  const index = io.scanIndex(doc, bearer).catch(() => null);
  const scans = async (total: number) => checkScans(await index, doc.pages, total);
  return openChunked(io.fetchRange(doc, bearer), (bytes) => io.keep(doc, bytes, false), BACKGROUND, scans);
}

/** How long the first page waits for the list of scanned pages before pdf.js draws it instead. */
const SCAN_WAIT_MS = 1500;

/** How long a failed range waits before it is asked for again. */
export const RETRY_MS = 2000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
