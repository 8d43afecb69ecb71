// A document's manifest (docs/PROTOCOL-ADDITIONS.md, section J): its pieces and their SHA-256,
// and its scanned pages, signed by the teacher's server through the manifest's own hash in the
// state. A device behind a relay trusts no byte the relay gives it: it takes the manifest only if
// its hash is the signed one, then checks each piece as it arrives, so a page is drawn from checked
// bytes long before the whole document is in. The same rules as `lectern_protocol::manifest`.

import type { DocManifest } from "./generated/DocManifest";
import type { ScanIndex } from "./generated/ScanIndex";
import { checkScans } from "./docscans";

/** The largest piece a manifest may name (a page image, as the server's limit, and its gap). */
const MAX_PIECE = 33 * 1024 * 1024;
/** The largest document (PROTOCOL.md §9). */
const MAX_SIZE = 200 * 1024 * 1024;

/** Hex of bytes. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hex SHA-256 of bytes, with WebCrypto. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice())));
}

/** A checked manifest: where each piece starts and what it hashes to. */
export class Pieces {
  /** Where each piece starts, and the document's end last. */
  readonly offsets: number[];

  private constructor(
    offsets: number[],
    private readonly hashes: Uint8Array,
    /** The scanned pages, or null when the list does not fit (every page is drawn by pdf.js). */
    readonly scans: ScanIndex | null,
  ) {
    this.offsets = offsets;
  }

  /** Reads manifest `bytes` fetched from anyone: taken only if their SHA-256 is `signed` (the
   * state's `doc.manifest`) and they describe a document of `pages` pages; else throws. */
  static async check(bytes: Uint8Array, signed: string, pages: number): Promise<Pieces> {
    if ((await sha256Hex(bytes)) !== signed) throw new Error("the document's manifest is not the one the teacher signed");
    const m = JSON.parse(new TextDecoder().decode(bytes)) as Partial<DocManifest>;
    const raw = Uint8Array.from(atob(String(m.hashes ?? "")), (c) => c.charCodeAt(0));
    const pieces = Array.isArray(m.pieces) ? m.pieces : [];
    const size = Number(m.size);
    if (m.v !== 1 || !Number.isSafeInteger(size) || size > MAX_SIZE || raw.length !== pieces.length * 32) {
      throw new Error("the document's manifest does not fit the document");
    }
    const offsets: number[] = [];
    let at = 0;
    for (const len of pieces) {
      if (!Number.isSafeInteger(len) || len <= 0 || len > MAX_PIECE) throw new Error("the document's manifest names a bad piece");
      offsets.push(at);
      at += len;
    }
    offsets.push(at);
    if (at !== size) throw new Error("the document's manifest does not add up");
    return new Pieces(offsets, raw, checkScans({ pages: m.scans }, pages, size));
  }

  /** The document's length. */
  get size(): number {
    return this.offsets[this.offsets.length - 1];
  }

  /** How many pieces. */
  get count(): number {
    return this.offsets.length - 1;
  }

  /** The piece holding byte `at` (the last piece for the document's end). */
  indexOf(at: number): number {
    let lo = 0;
    let hi = this.count;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (this.offsets[mid] <= at) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /** Checks `bytes` that start at `begin`: whole pieces, each with its hash; throws on the first
   * that is not. */
  async verify(begin: number, bytes: Uint8Array): Promise<void> {
    let i = this.indexOf(begin);
    const end = begin + bytes.length;
    if (this.offsets[i] !== begin || (end !== this.size && this.offsets[this.indexOf(end)] !== end)) {
      throw new Error(`bytes ${begin}-${end} are not whole pieces of the document`);
    }
    const checks: Promise<void>[] = [];
    for (; this.offsets[i] < end; i++) {
      const [a, b, k] = [this.offsets[i] - begin, this.offsets[i + 1] - begin, i];
      checks.push(
        crypto.subtle.digest("SHA-256", bytes.slice(a, b)).then((d) => {
          const want = this.hashes.subarray(k * 32, k * 32 + 32);
          const got = new Uint8Array(d);
          if (!got.every((v, j) => v === want[j])) throw new Error(`piece ${k} of the document is not the one the teacher chose`);
        }),
      );
    }
    await Promise.all(checks);
  }
}
