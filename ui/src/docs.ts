// Documents: fetched once over HTTPS with the participant's token, kept by sha256 (PROTOCOL.md §9).
import type { Doc } from "./generated/Doc";
import type { Platform } from "./platform";

/** The bytes of a lesson's document, from the cache when its sha256 is there. */
export async function loadDoc(doc: Doc, bearer: string, platform: Platform): Promise<ArrayBuffer> {
  const cached = await platform.cachedDoc(doc.sha256);
  if (cached) return cached;
  const res = await fetch(`/v1/docs/${encodeURIComponent(doc.id)}`, {
    headers: { Authorization: `Bearer ${bearer}` },
  });
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
  const bytes = await res.arrayBuffer();
  await platform.cacheDoc(doc.sha256, bytes);
  return bytes;
}
