// The chunked download over a fake range server: the first page needs only its chunks, each byte
// crosses the network once, the rest follows at the pace asked, and the whole is the document. And
// opening a document over a fake platform's I/O: what is kept is served from the device, what is not
// is fetched once and kept once whole, and a relay's student draws nothing from unchecked bytes.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BACKGROUND, ChunkedDoc, checkScans, openDoc, type DocIO } from "./docfetch";
import type { Doc } from "./generated/Doc";
import { sha256Hex } from "./docverify";

const CHUNK = 1000;
const doc = Uint8Array.from({ length: 10_500 }, (_, i) => i % 251);

/** A server that answers ranges of `doc` and records what it was asked for. */
function server() {
  const asked: [number, number][] = [];
  const fetch = async (begin: number, end: number) => {
    asked.push([begin, end]);
    await Promise.resolve();
    return { bytes: doc.slice(begin, Math.min(end, doc.length)), total: doc.length };
  };
  return { asked, fetch };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("ChunkedDoc", () => {
  it("opens with one chunk, fetches what a page asks for in one request per run, and never twice", async () => {
    const s = server();
    const d = await ChunkedDoc.open(s.fetch, CHUNK);
    expect(d.total).toBe(doc.length);
    expect(s.asked).toEqual([[0, 1000]]);
    expect(d.prefix.length).toBe(1000);
    // A page's objects at the end of the file, and its image in the middle.
    const [tail, image] = await Promise.all([d.ensure(10_000, 10_500), d.ensure(3_500, 6_200)]);
    expect(tail).toEqual(doc.slice(10_000, 10_500));
    expect(image).toEqual(doc.slice(3_500, 6_200));
    expect(s.asked).toEqual([[0, 1000], [10_000, 10_500], [3_000, 7_000]]);
    // The same ranges again, and one that overlaps: only the missing chunk is fetched.
    await d.ensure(3_500, 6_200);
    await d.ensure(6_500, 7_500);
    expect(s.asked.at(-1)).toEqual([7_000, 8_000]);
    expect(d.fetched).toBe(1000 + 500 + 4000 + 1000);
    expect(d.complete).toBe(false);
  });

  it("shares a request in flight instead of asking again", async () => {
    const s = server();
    const d = await ChunkedDoc.open(s.fetch, CHUNK);
    await Promise.all([d.ensure(2_000, 4_000), d.ensure(2_500, 3_500), d.ensure(3_000, 5_000)]);
    expect(s.asked).toEqual([[0, 1000], [2_000, 4_000], [4_000, 5_000]]);
  });

  it("fetches the rest in the background at the pace asked, and ends with the whole document", async () => {
    const s = server();
    const d = await ChunkedDoc.open(s.fetch, CHUNK);
    await d.ensure(5_000, 6_000);
    const done = d.background({ startAfterMs: 60_000, bytesPerSecond: 1000 });
    await vi.advanceTimersByTimeAsync(59_000);
    expect(s.asked).toHaveLength(2); // nothing in the first minute
    await vi.advanceTimersByTimeAsync(1_000 + 2_500);
    const early = s.asked.length;
    expect(early).toBeGreaterThanOrEqual(4);
    expect(early).toBeLessThanOrEqual(6); // about a chunk a second
    await vi.advanceTimersByTimeAsync(20_000);
    await done;
    expect(d.complete).toBe(true);
    expect(d.bytes).toEqual(doc);
    expect(d.fetched).toBe(doc.length); // every byte once
  });

  it("stops when told (another document was chosen)", async () => {
    const s = server();
    const d = await ChunkedDoc.open(s.fetch, CHUNK);
    const done = d.background({ startAfterMs: 0, bytesPerSecond: 1000 });
    await vi.advanceTimersByTimeAsync(1_500);
    d.stop();
    await vi.advanceTimersByTimeAsync(20_000);
    await done;
    expect(d.complete).toBe(false);
    expect(s.asked.length).toBeLessThanOrEqual(4);
  });

  it("refuses a range answer that is not what was asked, and does not believe a huge length", async () => {
    const d = await ChunkedDoc.open(async (b, e) => ({ bytes: new Uint8Array(e - b + (b ? 5000 : 0)), total: 3000 }), CHUNK);
    await expect(d.ensure(2000, 3000)).rejects.toThrow("asked for bytes 2000-3000 of 3000, got 6000 of 3000");
    expect(d.complete).toBe(false);
    const other = await ChunkedDoc.open(async (b, e) => ({ bytes: new Uint8Array(e - b), total: b ? 9999 : 3000 }), CHUNK);
    await expect(other.ensure(2000, 3000)).rejects.toThrow("got 1000 of 9999");
    await expect(ChunkedDoc.open(async () => ({ bytes: new Uint8Array(10), total: 2 ** 40 }), CHUNK)).rejects.toThrow("document length");
  });

  it("takes a whole document from a server that ignores ranges", async () => {
    let calls = 0;
    const d = await ChunkedDoc.open(async (b, e) => {
      calls++;
      return calls === 1 ? { bytes: doc.slice(b, e), total: doc.length } : { bytes: doc.slice(), total: doc.length, whole: true };
    }, CHUNK);
    await d.ensure(5_000, 6_000);
    expect(d.complete).toBe(true);
    expect(d.bytes).toEqual(doc);
  });

  it("comes back to a chunk that failed in the background", async () => {
    const s = server();
    let failOnce = true;
    const d = await ChunkedDoc.open(async (b, e) => {
      if (b === 3_000 && failOnce) {
        failOnce = false;
        throw new Error("link down");
      }
      return s.fetch(b, e);
    }, CHUNK);
    const done = d.background({ startAfterMs: 0, bytesPerSecond: 1_000_000 });
    await vi.advanceTimersByTimeAsync(10_000);
    await done;
    expect(d.bytes).toEqual(doc);
  });
});

describe("checkScans", () => {
  it("takes a list of scanned pages that fits the document", () => {
    const index = { pages: [[100, 50, 595, 842], null, [200, 10, 595, 842]] };
    expect(checkScans(index, 3, 1000)).toEqual(index);
  });
  it("draws every page with pdf.js when the list does not fit the document", () => {
    const page = [100, 50, 595, 842];
    expect(checkScans({ pages: [page] }, 2, 1000)).toBeNull(); // another page count
    expect(checkScans({ pages: [[990, 50, 595, 842]] }, 1, 1000)).toBeNull(); // past the end
    expect(checkScans({ pages: [[-1, 50, 595, 842]] }, 1, 1000)).toBeNull();
    expect(checkScans({ pages: [[0, 0, 595, 842]] }, 1, 1000)).toBeNull(); // no bytes
    expect(checkScans({ pages: [[0, 50, 0, 842]] }, 1, 1000)).toBeNull(); // no width
    expect(checkScans({ pages: [[0, 50, 595]] }, 1, 1000)).toBeNull();
    expect(checkScans({ pages: [["0", 50, 595, 842]] }, 1, 1000)).toBeNull();
    expect(checkScans({ error: "no such document" }, 1, 1000)).toBeNull();
    expect(checkScans(null, 1, 1000)).toBeNull();
  });
});

describe("openDoc", () => {
  // The sha256 of the bytes 1, 2, 3.
  const small: Doc = { id: "d1", title: "Al-Fatiha", pages: 1, sha256: "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81" };
  const book: Doc = { id: "d2", title: "Mushaf", pages: 1, sha256: "0".repeat(64) };

  /** A platform's document I/O: a device that keeps `cache` (by sha256) and a server that holds
   * `bytes`; records what the server was asked for and what was handed to be kept. */
  function fakeIO(
    bytes: Uint8Array,
    cache = new Map<string, Uint8Array>(),
    index = async (): Promise<unknown> => null,
    manifest: Uint8Array = new Uint8Array(0),
  ) {
    const asked: string[] = [];
    const kept: { bytes: Uint8Array; checked: boolean }[] = [];
    const io: DocIO = {
      cached: async (doc) => cache.get(doc.sha256)?.slice().buffer ?? null,
      keep: async (_, b, checked) => void kept.push({ bytes: b.slice(), checked }),
      fetchWhole: async (doc, bearer) => {
        asked.push(`${doc.id} whole ${bearer}`);
        return bytes.slice().buffer;
      },
      fetchRange: (doc, bearer, checked) => async (begin, end) => {
        // (checked: the platform may check the pieces itself, as the app's Rust does)
        asked.push(`${doc.id} ${begin}-${end} ${bearer}${checked ? " checked" : ""}`);
        return { bytes: bytes.slice(begin, Math.min(end, bytes.length)), total: bytes.length };
      },
      scanIndex: (doc, bearer) => {
        asked.push(`${doc.id} scan ${bearer}`);
        return index();
      },
      manifest: async (doc, bearer) => {
        asked.push(`${doc.id} manifest ${bearer}`);
        return manifest.slice().buffer;
      },
    };
    return { io, asked, kept };
  }

  it("serves a document this device keeps without asking the server", async () => {
    const { io, asked } = fakeIO(new Uint8Array(0), new Map([[small.sha256, new Uint8Array([1, 2, 3])]]));
    const got = await openDoc(io, small, "tok");
    expect("bytes" in got && new Uint8Array(got.bytes)).toEqual(new Uint8Array([1, 2, 3]));
    expect(await openDoc(io, small, "tok", true)).toEqual(got);
    expect(asked).toEqual([]);
  });

  it("takes a small document from its first range, and hands it to be checked and kept", async () => {
    const { io, asked, kept } = fakeIO(new Uint8Array([1, 2, 3]));
    const got = await openDoc(io, small, "tok");
    expect("bytes" in got && new Uint8Array(got.bytes)).toEqual(new Uint8Array([1, 2, 3]));
    // The list of scanned pages is asked for alongside the first range.
    expect(asked).toEqual(["d1 scan tok", "d1 0-4096 tok"]);
    expect(kept).toEqual([{ bytes: new Uint8Array([1, 2, 3]), checked: false }]);
  });

  it("behind a relay, takes a document only whole and only if its bytes are the teacher's", async () => {
    const wrong = fakeIO(new Uint8Array([6, 6, 6]));
    await expect(openDoc(wrong.io, small, "tok", true)).rejects.toThrow(/not the ones the teacher chose/);
    expect(wrong.kept).toEqual([]);
    const right = fakeIO(new Uint8Array([1, 2, 3]));
    const got = await openDoc(right.io, small, "tok", true);
    expect("bytes" in got && new Uint8Array(got.bytes)).toEqual(new Uint8Array([1, 2, 3]));
    expect(right.asked).toEqual(["d1 whole tok"]);
    expect(right.kept).toEqual([{ bytes: new Uint8Array([1, 2, 3]), checked: true }]);
  });

  it("opens a large document from its first chunk, with the scanned pages, and keeps it once whole", async () => {
    const { io, asked, kept } = fakeIO(doc, new Map(), async () => ({ pages: [[100, 50, 595, 842]] }));
    const got = await openDoc(io, book, "tok");
    expect("chunks" in got && got.chunks.total).toBe(doc.length);
    expect("chunks" in got && got.scans).toEqual({ pages: [[100, 50, 595, 842]] });
    expect(asked).toEqual(["d2 scan tok", "d2 0-4096 tok"]);
    expect(kept).toEqual([]);
    await vi.advanceTimersByTimeAsync(BACKGROUND.startAfterMs + 10_000);
    expect(kept).toEqual([{ bytes: doc, checked: false }]);
    // A list the server could not give is no reason to wait or to fail.
    const failing = fakeIO(doc, new Map(), async () => Promise.reject(new Error("503")));
    const again = await openDoc(failing.io, book, "tok");
    expect("chunks" in again && again.scans).toBeNull();
  });

  /** A manifest of `bytes` cut into pieces of `lengths`, as the teacher's server writes one, and
   * the document that names its hash. */
  async function described(bytes: Uint8Array, lengths: number[], scans: unknown[]): Promise<{ json: Uint8Array; doc: Doc }> {
    const hashes: number[] = [];
    let at = 0;
    for (const len of lengths) {
      hashes.push(...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice(at, at + len))));
      at += len;
    }
    const b64 = btoa(String.fromCharCode(...hashes));
    const json = new TextEncoder().encode(JSON.stringify({ v: 1, size: bytes.length, pieces: lengths, hashes: b64, scans }));
    return { json, doc: { id: "d3", title: "Mushaf", pages: scans.length, sha256: "0".repeat(64), manifest: await sha256Hex(json) } };
  }

  it("behind a relay, draws a scanned page from its own checked piece, before the rest of the document", async () => {
    const { json, doc: signed } = await described(doc, [3000, 2500, 5000], [null, [3000, 2500, 595, 842]]);
    const { io, asked, kept } = fakeIO(doc, new Map(), async () => null, json);
    const got = await openDoc(io, signed, "tok", true);
    if (!("chunks" in got)) throw new Error("expected a chunked document");
    expect(got.scans).toEqual({ pages: [null, [3000, 2500, 595, 842]] });
    expect(await got.chunks.ensure(3000, 5500)).toEqual(doc.slice(3000, 5500));
    // pdf.js asking for a few bytes of a piece gets them checked: the whole piece is fetched.
    expect(await got.chunks.ensure(100, 200)).toEqual(doc.slice(100, 200));
    expect(asked).toEqual(["d3 manifest tok", "d3 3000-5500 tok checked", "d3 0-3000 tok checked"]);
    await vi.advanceTimersByTimeAsync(BACKGROUND.startAfterMs);
    // The rest comes in the background, checked piece by piece, and is kept once whole.
    await vi.waitFor(() => expect(kept).toEqual([{ bytes: doc, checked: false }]), { timeout: 5000, interval: 100 });
    expect(asked.slice(3)).toEqual(["d3 5500-10500 tok checked"]);
  });

  it("behind a relay, refuses a piece the relay changed and a manifest the teacher did not sign", async () => {
    const { json, doc: signed } = await described(doc, [3000, 2500, 5000], [null, [3000, 2500, 595, 842]]);
    const changed = doc.slice();
    changed[3100] ^= 1;
    const relay = fakeIO(changed, new Map(), async () => null, json);
    const got = await openDoc(relay.io, signed, "tok", true);
    if (!("chunks" in got)) throw new Error("expected a chunked document");
    await expect(got.chunks.ensure(3000, 5500)).rejects.toThrow(/not the one the teacher chose/);
    // The first piece is right, and is drawn from; the changed one was never kept.
    expect(await got.chunks.ensure(0, 3000)).toEqual(doc.slice(0, 3000));
    expect(got.chunks.complete).toBe(false);
    const forged = new TextEncoder().encode(new TextDecoder().decode(json).replace("595", "596"));
    // A manifest that is not the signed one is not used: the document is then taken only whole,
    // and only if it is the teacher's.
    const liar = fakeIO(doc, new Map(), async () => null, forged);
    await expect(openDoc(liar.io, signed, "tok", true)).rejects.toThrow(/not the ones the teacher chose/);
    expect(liar.asked).toEqual(["d3 manifest tok", "d3 whole tok"]);
    const whole = { ...signed, sha256: await sha256Hex(doc) };
    const honest = fakeIO(doc, new Map(), async () => null, forged);
    const got2 = await openDoc(honest.io, whole, "tok", true);
    expect("bytes" in got2 && new Uint8Array(got2.bytes)).toEqual(doc);
  });
});
