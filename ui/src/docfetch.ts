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
import { checkScans } from "./docscans";
import { Pieces, sha256Hex } from "./docverify";

export { checkScans };

/** What a document is loaded from: its bytes, or a chunked download that pdf.js reads as it needs,
 * with the pages that are one full-page JPEG (drawn from that image's bytes alone) when known. */
export type DocSource = { bytes: ArrayBuffer } | { chunks: ChunkedDoc; scans?: ScanIndex | null };

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

/** How a document is cut: the units it is fetched (and, behind a relay, checked) in. */
interface Layout {
  /** How many units. */
  readonly count: number;
  /** Where unit `i` starts; `start(count)` is the document's length. */
  start(i: number): number;
  /** The unit holding byte `at`. */
  indexOf(at: number): number;
  /** Throws unless `bytes` from `begin` are whole units with the bytes the teacher chose. */
  verify?(begin: number, bytes: Uint8Array): Promise<void>;
}

/** Units of `size` bytes, unchecked: a classroom server's own document, over its pinned TLS. */
function uniform(total: number, size: number): Layout {
  return {
    count: Math.ceil(total / size),
    start: (i) => Math.min(i * size, total),
    indexOf: (at) => Math.floor(at / size),
  };
}

/** A document's pieces as its signed manifest names them, each checked as it arrives. */
function checked(pieces: Pieces): Layout {
  return {
    count: pieces.count,
    start: (i) => pieces.offsets[Math.min(i, pieces.count)],
    indexOf: (at) => pieces.indexOf(at),
    verify: (begin, bytes) => pieces.verify(begin, bytes),
  };
}

/** Units of one document: which are here, and the bytes of those that are. */
export class ChunkedDoc {
  readonly total: number;
  private readonly have: Uint8Array;
  private readonly data: Uint8Array;
  /** Units being fetched, by index: a second ask waits for the same request. */
  private readonly inflight = new Map<number, Promise<void>>();
  private stopped = false;
  /** Requests under way, and those waiting for one of them to end (see `IN_FLIGHT`). */
  private active = 0;
  private readonly queued: (() => void)[] = [];
  /** Bytes that crossed the network for this document. */
  fetched = 0;

  private constructor(
    private readonly fetchRange: RangeFetch,
    /** The range size pdf.js is told (a hint: what it asks for is fetched as whole units). */
    readonly chunkSize: number,
    total: number,
    private readonly layout: Layout,
  ) {
    if (!Number.isSafeInteger(total) || total < 0 || total > MAX_DOC_BYTES) {
      throw new Error(`the server gave a document length of ${total} bytes`);
    }
    this.total = total;
    this.have = new Uint8Array(layout.count);
    this.data = new Uint8Array(total);
  }

  /** Fetches the first chunk, which says how long the document is. */
  static async open(fetchRange: RangeFetch, chunkSize: number): Promise<ChunkedDoc> {
    const first = await fetchRange(0, chunkSize);
    if (!Number.isSafeInteger(first.total) || first.total < first.bytes.length) {
      throw new Error(`the server gave a document length of ${first.total} bytes`);
    }
    const doc = new ChunkedDoc(fetchRange, chunkSize, first.total, uniform(first.total, chunkSize));
    doc.store(0, first.bytes);
    doc.fetched = first.bytes.length;
    return doc;
  }

  /** A document whose pieces its signed manifest names: nothing is fetched yet, and every piece
   * is checked before it is kept (a relay, or anyone in between, cannot change a byte). */
  static checked(fetchRange: RangeFetch, pieces: Pieces): ChunkedDoc {
    return new ChunkedDoc(fetchRange, CHUNK, pieces.size, checked(pieces));
  }

  /** The bytes fetched so far from the start, contiguous (pdf.js's initial data). */
  get prefix(): Uint8Array {
    let n = 0;
    while (n < this.have.length && this.have[n]) n++;
    return this.data.subarray(0, this.layout.start(n));
  }

  /** Whether every unit is here. */
  get complete(): boolean {
    return this.have.every((h) => h === 1);
  }

  /** The whole document, once complete. */
  get bytes(): Uint8Array | null {
    return this.complete ? this.data : null;
  }

  /** Makes sure bytes [begin, end) are here: the missing units, in one request per run of them. */
  async ensure(begin: number, end: number): Promise<Uint8Array> {
    end = Math.min(end, this.total);
    const first = this.layout.indexOf(begin);
    const last = end > begin ? Math.min(this.have.length, this.layout.indexOf(end - 1) + 1) : first;
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
    return this.data.subarray(begin, end);
  }

  /** Fetches the units nobody asked for, from the start, at the given pace; resolves once the
   * document is complete (or the fetch was stopped). `onChunk` hears of each unit that arrives. */
  async background(pace: Pace, onChunk: (begin: number) => void = () => {}): Promise<void> {
    await sleep(pace.startAfterMs);
    for (let c = 0; c < this.have.length && !this.stopped; c++) {
      if (this.have[c]) continue;
      const started = Date.now();
      const [begin, end] = [this.layout.start(c), this.layout.start(c + 1)];
      try {
        await this.ensure(begin, end);
      } catch {
        // The link dropped or the server refused: come back to this unit after a pause.
        await sleep(RETRY_MS);
        c--;
        continue;
      }
      onChunk(begin);
      const budgetMs = ((end - begin) / Math.max(1, pace.bytesPerSecond)) * 1000;
      await sleep(Math.max(0, budgetMs - (Date.now() - started)));
    }
  }

  /** Stops the background fetch (another document was chosen). */
  stop(): void {
    this.stopped = true;
  }

  private fetchRun(firstUnit: number, endUnit: number): Promise<void> {
    const begin = this.layout.start(firstUnit);
    const end = this.layout.start(endUnit);
    const done = this.limited(() => this.fetchRange(begin, end)).then(async ({ bytes, total, whole }) => {
      this.fetched += bytes.length;
      if (whole && bytes.length === this.total) {
        await this.layout.verify?.(0, bytes);
        return this.store(0, bytes);
      }
      // Exactly what was asked, of the same document: anything else would hand pdf.js wrong bytes.
      if (total !== this.total || bytes.length !== end - begin) {
        throw new Error(`asked for bytes ${begin}-${end} of ${this.total}, got ${bytes.length} of ${total}`);
      }
      await this.layout.verify?.(begin, bytes);
      this.store(begin, bytes);
    });
    const settled = done.finally(() => {
      for (let c = firstUnit; c < endUnit; c++) if (this.inflight.get(c) === settled) this.inflight.delete(c);
    });
    for (let c = firstUnit; c < endUnit; c++) this.inflight.set(c, settled);
    return settled;
  }

  /** Runs `fetch` once fewer than `IN_FLIGHT` requests are under way. */
  private async limited<T>(fetch: () => Promise<T>): Promise<T> {
    while (this.active >= IN_FLIGHT) await new Promise<void>((r) => this.queued.push(r));
    this.active++;
    try {
      return await fetch();
    } finally {
      this.active--;
      this.queued.shift()?.();
    }
  }

  /** Keeps bytes from `begin`, and marks the units they hold whole as here. */
  private store(begin: number, bytes: Uint8Array): void {
    const end = begin + bytes.length;
    if (end > this.total) throw new Error("the server sent more than the document holds");
    this.data.set(bytes, begin);
    for (let c = this.layout.indexOf(begin); c < this.have.length && this.layout.start(c + 1) <= end; c++) {
      if (this.layout.start(c) >= begin) this.have[c] = 1;
    }
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
  fetchRest(chunks, keep, pace);
  // The list of scanned pages is a help, not a need: a server slow to make it is not waited for.
  const timeout = sleep(SCAN_WAIT_MS).then(() => null);
  return { chunks, scans: await Promise.race([scans(chunks.total).catch(() => null), timeout]) };
}

/** Fetches the rest of `chunks` in the background at `pace`, and hands it to `keep` once whole. */
function fetchRest(chunks: ChunkedDoc, keep: (bytes: Uint8Array) => Promise<void>, pace: Pace): void {
  inBackground = chunks;
  void chunks.background(pace).then(async () => {
    const bytes = chunks.bytes;
    if (bytes) await keep(bytes);
  });
}

/** Opens a document behind a relay in checked pieces: its manifest, taken only if it is the one the
 * teacher signed (`doc.manifest`), names every piece's hash and the scanned pages; each piece is
 * checked as it arrives, so a page is drawn from checked bytes while the rest is on its way. */
export async function openChecked(io: DocIO, doc: Doc & { manifest: string }, bearer: string, pace = BACKGROUND): Promise<DocSource> {
  inBackground?.stop();
  inBackground = null;
  // A relay may not have the manifest yet (the teacher's server is putting the document there):
  // asked again a few times. A manifest that came and is wrong is not asked for again.
  let manifest: ArrayBuffer | null = null;
  for (let tries = 0; !manifest; tries++) {
    manifest = await io.manifest(doc, bearer).catch((e: unknown) => {
      if (tries >= MANIFEST_TRIES) throw e;
      return null;
    });
    if (!manifest) await sleep(RETRY_MS);
  }
  const pieces = await Pieces.check(new Uint8Array(manifest), doc.manifest, doc.pages);
  const chunks = ChunkedDoc.checked(io.fetchRange(doc, bearer, true), pieces);
  fetchRest(chunks, (bytes) => io.keep(doc, bytes, false), pace);
  return { chunks, scans: pieces.scans };
}

/** A document's bytes if they are the ones its sha256 names; else an error (a relay, or anyone in
 * between, changed them), and nothing is drawn from them. */
export async function checkedWhole(bytes: ArrayBuffer, sha256: string): Promise<{ bytes: ArrayBuffer }> {
  if ((await sha256Hex(new Uint8Array(bytes))) !== sha256) throw new Error("the document's bytes are not the ones the teacher chose");
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
  /** Byte ranges of the document; `checked` (behind a relay): ranges of whole pieces the platform
   * may check against the signed manifest itself before handing them over (the app's Rust does; the
   * view checks them either way). */
  fetchRange(doc: Doc, bearer: string, checked?: boolean): RangeFetch;
  /** The server's list of scanned pages as it came (`checkScans` judges it). */
  scanIndex(doc: Doc, bearer: string): Promise<unknown>;
  /** The document's manifest as it came (`Pieces.check` judges it). */
  manifest(doc: Doc, bearer: string): Promise<ArrayBuffer>;
}

/** A document (the contract's `Server.openDoc`): from this device, or else fetched with `io`, in
 * chunks; or, from a server not `trusted` (a relay), in pieces checked against the manifest the
 * teacher signed, or (a document without one) only whole and checked against its sha256 before
 * anything is drawn. */
export async function openDoc(io: DocIO, doc: Doc, bearer: string, untrusted = false): Promise<DocSource> {
  const cached = await io.cached(doc);
  if (cached) return { bytes: cached };
  if (untrusted && doc.manifest) {
    try {
      return await openChecked(io, { ...doc, manifest: doc.manifest }, bearer);
    } catch (e) {
      // No manifest to be had, or not the signed one: the document is taken whole and checked.
      console.error(`document ${doc.id}: its pieces cannot be checked (${String(e)}); fetching it whole`);
    }
  }
  if (untrusted) {
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

/** Requests one document has under way at once: pdf.js's ranges, a scanned page and the
 * background fetch together stay under what a relay allows one student (4, one left for the lists). */
export const IN_FLIGHT = 3;

/** How many times a manifest a relay could not give is asked for again. */
const MANIFEST_TRIES = 5;

/** How long a failed range waits before it is asked for again. */
export const RETRY_MS = 2000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
