import { describe, expect, it } from "vitest";
import { TABLES, pickLang, setLang, t } from "./strings";

describe("strings", () => {
  it("has every English string in Arabic, with the same placeholders", () => {
    for (const [key, en] of Object.entries(TABLES.en)) {
      const ar = TABLES.ar[key as keyof typeof TABLES.en];
      expect(ar, key).toBeTruthy();
      const holes = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
      expect(holes(ar), key).toEqual(holes(en));
    }
  });
  it("picks Arabic from the link, the stored choice or the browser", () => {
    expect(pickLang("?lang=ar", null, ["en-US"])).toBe("ar");
    expect(pickLang("", "ar", ["en-US"])).toBe("ar");
    expect(pickLang("", null, ["ar-SA", "en"])).toBe("ar");
    expect(pickLang("", null, ["fr-FR"])).toBe("en");
  });
  it("fills placeholders", () => {
    setLang("en");
    expect(t("page", { page: 3, pages: 604 })).toBe("Page 3 of 604");
    setLang("ar");
    expect(t("page", { page: 3, pages: 604 })).toBe("صفحة 3 من 604");
    setLang("en");
  });
});
