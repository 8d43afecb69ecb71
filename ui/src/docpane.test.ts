// The shared document pane: one download per document however many changes wait for it, a retry
// after a failure, and the newest document winning. pdf.js is stood in for.
import { describe, expect, it, vi } from "vitest";
import { DocPane } from "./docpane";
import { setLang } from "./strings";

vi.mock("./pdfview", () => ({
  PdfView: class {
    root = { hidden: false };
    key: string | null = null;
    wanted: string | null = null;
    shown: number[] = [];
    // As pdf.js's view does: when loads overlap, the last one asked for wins.
    async load(key: string) {
      this.wanted = key;
      await Promise.resolve();
      if (this.wanted === key) this.key = key;
    }
    async show(page: number) {
      this.shown.push(page);
    }
  },
}));

const el = () => ({ hidden: false, textContent: "" });
/** The stage only reaches the stand-in view, which never touches it. */
const stage = {} as HTMLElement;
const doc = (sha: string) => ({ id: sha, title: "Mushaf", pages: 604, sha256: sha });

function pane(fetchDoc: (d: { sha256: string }) => Promise<ArrayBuffer>) {
  setLang("en");
  const els = { stage, placeholder: el(), pageLabel: el() };
  return { els, pane: new DocPane(els, async (d) => ({ bytes: await fetchDoc(d) })) };
}

describe("DocPane", () => {
  it("downloads a document once, however many changes wait for it", async () => {
    const fetchDoc = vi.fn(async () => new ArrayBuffer(1));
    const { pane: p, els } = pane(fetchDoc);
    const waits = [p.ready(doc("a")), p.ready(doc("a")), p.ready(doc("a"))];
    expect(els.placeholder.textContent).toBe("Loading the document…");
    expect(await Promise.all(waits)).toEqual([true, true, true]);
    expect(fetchDoc).toHaveBeenCalledTimes(1);
    await p.showPage(12, 604);
    expect([els.placeholder.hidden, els.pageLabel.textContent]).toEqual([true, "Page 12 of 604"]);
  });
  it("says why a document failed and tries again on the next change", async () => {
    const fetchDoc = vi.fn().mockRejectedValueOnce(new Error("404 Not Found")).mockResolvedValue(new ArrayBuffer(1));
    const { pane: p, els } = pane(fetchDoc);
    expect(await p.ready(doc("a"))).toBe(false);
    expect(els.placeholder.textContent).toContain("404 Not Found");
    expect(await p.ready(doc("a"))).toBe(true);
    expect(fetchDoc).toHaveBeenCalledTimes(2);
  });
  it("lets the newest document win, and says when there is none", async () => {
    const { pane: p, els } = pane(async () => new ArrayBuffer(1));
    const older = p.ready(doc("a"));
    const newer = p.ready(doc("b"));
    expect(await newer).toBe(true);
    expect(await older).toBe(false);
    expect(await p.ready(null)).toBe(false);
    expect([els.placeholder.hidden, els.placeholder.textContent, els.pageLabel.textContent]).toEqual([
      false,
      "Waiting for the teacher to open a document…",
      "",
    ]);
  });
});
