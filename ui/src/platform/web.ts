// The browser's platform: localStorage for small values, the Cache API for documents (kept by sha256,
// so a document is fetched once however many lessons use it).
import type { Platform } from "./index";

const CACHE = "lectern-docs-v1";

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null; // private mode, or storage disabled
  }
}

export const web: Platform = {
  get(key) {
    return storage()?.getItem(`lectern.${key}`) ?? null;
  },
  set(key, value) {
    const s = storage();
    if (!s) return;
    try {
      if (value === null) s.removeItem(`lectern.${key}`);
      else s.setItem(`lectern.${key}`, value);
    } catch {
      // Storage full or refused: the lesson goes on; only a rejoin after a reload is lost.
    }
  },
  async cachedDoc(sha256) {
    if (!("caches" in window)) return null;
    try {
      const hit = await (await caches.open(CACHE)).match(`/lectern-doc/${sha256}`);
      return hit ? await hit.arrayBuffer() : null;
    } catch {
      return null;
    }
  },
  async cacheDoc(sha256, bytes) {
    if (!("caches" in window)) return;
    try {
      await (await caches.open(CACHE)).put(`/lectern-doc/${sha256}`, new Response(bytes.slice(0)));
    } catch {
      // A full or disabled cache only costs a download next time.
    }
  },
  async copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      return false;
    }
  },
};
