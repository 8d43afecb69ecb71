// The document area both pages share: a pdf.js page view in the stage, the placeholder that says
// what is happening (no document yet, loading, or why loading failed), and the page label. A
// document is downloaded and parsed once, however many changes arrive while it loads.
import { reason } from "./common";
import type { Doc } from "./generated/Doc";
import type { DocSource } from "./docfetch";
import { PdfView } from "./pdfview";
import { t } from "./strings";

/** Where the pane draws. */
export interface PaneElements {
  /** The box the page is fitted in. */
  stage: HTMLElement;
  /** Says what is happening while no page is shown. */
  placeholder: Pick<HTMLElement, "hidden" | "textContent">;
  pageLabel: Pick<HTMLElement, "textContent">;
}

/** The document on screen and the page of it shown. */
export class DocPane {
  readonly view: PdfView;
  /** The document being fetched and parsed, shared by every call that needs it. */
  private loading: { sha: string; done: Promise<void> } | null = null;

  constructor(
    private readonly els: PaneElements,
    /** A document (the platform's cached bytes, or a chunked download, with this participant's bearer). */
    private readonly openDoc: (doc: Doc) => Promise<DocSource>,
  ) {
    this.view = new PdfView(els.stage);
  }

  /** Makes `doc` the loaded document. False when there is none, when it failed to load (the next
   * call tries again; the placeholder says why), or when a newer document was loaded meanwhile. */
  async ready(doc: Doc | null): Promise<boolean> {
    const { placeholder } = this.els;
    if (!doc) {
      placeholder.hidden = false;
      placeholder.textContent = t("noDocument");
      this.view.root.hidden = true;
      this.els.pageLabel.textContent = "";
      return false;
    }
    if (this.view.key === doc.sha256) return true;
    placeholder.hidden = false;
    placeholder.textContent = t("loadingDoc");
    if (this.loading?.sha !== doc.sha256) {
      const sha = doc.sha256;
      this.loading = { sha, done: this.openDoc(doc).then((source) => this.view.load(sha, source)) };
    }
    const loading = this.loading;
    try {
      await loading.done;
    } catch (e) {
      if (this.loading === loading) this.loading = null;
      placeholder.textContent = `${t("loadingDoc")} (${reason(e)})`;
      return false;
    }
    return this.view.key === doc.sha256;
  }

  /** Draws page `page` (of `pages`) of the loaded document and labels it. */
  async showPage(page: number, pages: number): Promise<void> {
    this.els.placeholder.hidden = true;
    this.view.root.hidden = false;
    const label = t("page", { page, pages });
    this.els.pageLabel.textContent = label;
    await this.view.show(page, label);
  }
}
