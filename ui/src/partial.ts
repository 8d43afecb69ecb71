// A `sync` that carries only the pages whose marks changed (docs/PROTOCOL-ADDITIONS.md, section O):
// merged over the state the client holds into the whole state it stands for, before any check, so a
// relay's signature is checked over exactly what will be shown.
import type { LessonState } from "./generated/LessonState";
import type { ServerMsg } from "./generated/ServerMsg";

/**
 * `frame` as a whole frame: itself unless it is a partial sync, else the sync with every page's marks
 * from `mine` but the pages it carries. Null when it cannot be merged (the client's state is older
 * than the sync's `since`, or behind a relay of another epoch, or a page is not a page): the client then
 * asks for a whole state. `epoch` is the epoch of the client's state behind a relay, else undefined.
 */
export function expand(frame: ServerMsg, mine: LessonState, seq: number, epoch?: number | null): ServerMsg | null {
  if (frame.t !== "sync" || !frame.partial) return frame;
  const { since, pages } = frame.partial;
  if (typeof since !== "number" || typeof frame.state !== "object" || frame.state === null || seq < since) return null;
  if (epoch !== undefined && (epoch === null || Number(frame.signed?.epoch) !== epoch)) return null;
  if (!Array.isArray(pages) || !pages.every((p) => Number.isInteger(p) && p > 0 && p <= 0xffffffff)) return null;
  // A new object over the same lists: a list's digest, kept per list (relaycheck), is not computed again.
  const marks: LessonState["marks"] = { ...mine.marks };
  for (const page of pages) {
    const key = String(page);
    const list = frame.state.marks?.[key];
    if (list && list.length > 0) marks[key] = list;
    else delete marks[key];
  }
  return { t: "sync", seq: frame.seq, state: { ...frame.state, marks }, signed: frame.signed };
}
