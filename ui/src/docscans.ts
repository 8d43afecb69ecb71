// The list of a document's scanned pages (docs/PROTOCOL-ADDITIONS.md, section D), judged before
// anything is drawn from it: a page drawn from its JPEG's bytes must name bytes of the document.

import type { ScanIndex } from "./generated/ScanIndex";

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
