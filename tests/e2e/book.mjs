// A scanned book for tests and benchmarks: a PDF whose every page is one full-page JPEG (the same
// scan's bytes, as its own object per page) and its page number as invisible (OCR) text, the shape and size of a
// scanned Mushaf.
import { writeFileSync } from "node:fs";

/** A PDF of `pages` pages, each one full-page JPEG (the same scan's bytes, as its own object per
 * page) and its page number as invisible text: a scanned book's shape and size. */
export function scannedBook(file, pages, jpeg, width, height) {
  const parts = [];
  const offsets = [];
  let length = 0;
  let next = 1;
  const alloc = () => next++;
  const push = (b) => {
    const buf = typeof b === "string" ? Buffer.from(b, "latin1") : b;
    parts.push(buf);
    length += buf.length;
  };
  const obj = (n, body) => {
    offsets[n] = length;
    push(`${n} 0 obj\n`);
    for (const b of [body].flat()) push(b);
    push("\nendobj\n");
  };
  push("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
  const catalog = alloc();
  const font = alloc();
  // A balanced page tree, as scanners and typesetters write it: ten pages a node, ten nodes a level,
  // so a reader finds any page by reading a few nodes, not every page before it.
  const leaves = [];
  for (let i = 0; i < pages; i++) leaves.push({ ref: alloc(), page: i });
  let level = leaves.map((l) => ({ ref: l.ref, count: 1 }));
  const nodes = [];
  while (level.length > 1 || nodes.length === 0) {
    const up = [];
    for (let i = 0; i < level.length; i += 10) {
      const kids = level.slice(i, i + 10);
      const node = { ref: alloc(), kids, count: kids.reduce((n, k) => n + k.count, 0) };
      for (const k of kids) k.parent = node.ref;
      nodes.push(node);
      up.push(node);
    }
    level = up;
  }
  const root = level[0];
  obj(catalog, `<< /Type /Catalog /Pages ${root.ref} 0 R >>`);
  obj(font, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  for (const n of nodes) {
    const parent = n.parent ? ` /Parent ${n.parent} 0 R` : "";
    obj(n.ref, `<< /Type /Pages${parent} /Kids [${n.kids.map((k) => `${k.ref} 0 R`).join(" ")}] /Count ${n.count} >>`);
  }
  const parentOf = new Map();
  for (const n of nodes) for (const k of n.kids) parentOf.set(k.ref, n.ref);
  for (const { ref, page } of leaves) {
    const [content, image] = [alloc(), alloc()];
    obj(ref, `<< /Type /Page /Parent ${parentOf.get(ref)} 0 R /MediaBox [0 0 595 842] /Contents ${content} 0 R /Resources << /XObject << /Im ${image} 0 R >> /Font << /F ${font} 0 R >> >> >>`);
    // The page number as an invisible text layer, as OCR leaves under a scan.
    const draw = `q 595 0 0 842 0 0 cm /Im Do Q BT 3 Tr /F 28 Tf 250 40 Td (Page ${page + 1}) Tj ET`;
    obj(content, `<< /Length ${draw.length} >>\nstream\n${draw}\nendstream`);
    obj(image, [`<< /Type /XObject /Subtype /Image /Width ${width} /Height ${height} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length ${jpeg.length} >>\nstream\n`, jpeg, "\nendstream"]);
  }
  const xref = length;
  push(`xref\n0 ${next}\n0000000000 65535 f \n`);
  for (let n = 1; n < next; n++) push(`${String(offsets[n]).padStart(10, "0")} 00000 n \n`);
  push(`trailer\n<< /Size ${next} /Root ${catalog} 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  writeFileSync(file, Buffer.concat(parts));
  return length;
}
