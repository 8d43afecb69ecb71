// Partial syncs (PROTOCOL-ADDITIONS O): a sync that carries only the pages whose marks changed is merged
// over the client's own state, checked behind a relay as the whole state it stands for, and refused
// (a whole one asked for) when the client cannot merge it.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setup, welcome } from "./clientfakes";
import type { LessonState } from "./generated/LessonState";
import type { Mark } from "./generated/Mark";
import type { ServerMsg } from "./generated/ServerMsg";
import { emptyState } from "./lesson";
import { expand } from "./partial";
import { RelayCheck, signedMessage, stateHash } from "./relaycheck";
import { AT, BEAT, PK, base64url, signingKey } from "./signedfakes";

const subtle = globalThis.crypto.subtle;

const box = (id: number, y = 0.1): Mark => ({ id, x: 0.1, y, w: 0.5, h: 0.05 });
/** A lesson with marks on pages 1, 2 and 3. */
const MINE: LessonState = { ...emptyState(), page: 3, marks: { "1": [box(1)], "2": [box(2), box(3)], "3": [box(4)] } };

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("expand", () => {
  it("keeps the pages it does not name, takes those it does, and drops a named page without marks", () => {
    const sent: LessonState = { ...emptyState(), page: 4, marks: { "2": [box(2)], "4": [box(5)] } };
    const frame: ServerMsg = { t: "sync", seq: 9, state: sent, partial: { since: 6, pages: [2, 3, 4] } };
    const out = expand(frame, MINE, 7);
    expect(out).toEqual({ t: "sync", seq: 9, state: { ...sent, marks: { "1": [box(1)], "2": [box(2)], "4": [box(5)] } } });
    // The page it did not name is the very list the client had: its digest is not computed again.
    expect(out?.t === "sync" && out.state.marks["1"]).toBe(MINE.marks["1"]);
    // Any other frame, and a whole sync, pass as they came.
    const whole: ServerMsg = { t: "sync", seq: 9, state: sent };
    expect(expand(whole, MINE, 7)).toBe(whole);
  });

  it("cannot merge over an older state, another epoch, or pages that are not pages", () => {
    const sent: LessonState = { ...emptyState(), marks: {} };
    const frame = (since: number, pages: unknown[], epoch?: number): ServerMsg =>
      ({ t: "sync", seq: 9, state: sent, partial: { since, pages }, ...(epoch ? { signed: { epoch, sig: "x" } } : {}) }) as ServerMsg;
    expect(expand(frame(8, [2]), MINE, 7)).toBeNull();
    expect(expand(frame(6, [2], 5), MINE, 7, 5)).not.toBeNull();
    expect(expand(frame(6, [2], 4), MINE, 7, 5)).toBeNull();
    expect(expand(frame(6, [2]), MINE, 7, 5)).toBeNull(); // unsigned behind a relay
    expect(expand(frame(6, [2], 5), MINE, 7, null)).toBeNull(); // no state taken yet
    for (const bad of [["__proto__"], [0], [1.5], ["2"]]) expect(expand(frame(6, bad), MINE, 7)).toBeNull();
  });
});

describe("behind a relay", () => {
  it("checks the merged state against the teacher's signature, and refuses a page the relay changed", async () => {
    const { publicKey, privateKey } = (await subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const pk = base64url(await subtle.exportKey("raw", publicKey));
    const sign = async (seq: number, state: LessonState) => {
      const hash = await stateHash(state, subtle);
      const sig = await subtle.sign({ name: "Ed25519" }, privateKey, signedMessage(1, "r1", 9, seq, 0, hash).slice());
      return { epoch: 9, sig: base64url(sig) };
    };
    const check = new RelayCheck(pk, "r1", subtle);
    expect(await check.check({ t: "sync", seq: 7, state: MINE, signed: await sign(7, MINE) }, 0, null)).toBeNull();
    // The teacher's server: page 2 gets another mark, the teacher turns to page 1.
    const now: LessonState = { ...MINE, page: 1, marks: { ...MINE.marks, "2": [box(2), box(3), box(6)] } };
    const signed = await sign(12, now);
    const partial: ServerMsg = {
      t: "sync",
      seq: 12,
      state: { ...now, marks: { "2": now.marks["2"] } },
      signed,
      partial: { since: 7, pages: [2] },
    };
    const whole = expand(partial, MINE, 7, check.currentEpoch);
    expect(whole).not.toBeNull();
    expect(await check.check(whole as ServerMsg, 7, MINE)).toBeNull();
    // A relay that changes a page it sends, or slips a page it does not name into the state, is
    // caught: the first changes the merged state, the second is left out of it.
    const altered = { ...partial, state: { ...partial.state, marks: { "2": [box(2), box(3), box(6, 0.9)] } } } as ServerMsg;
    expect(await check.check(expand(altered, MINE, 7, 9) as ServerMsg, 7, MINE)).toMatch(/did not sign/);
    const slipped = { ...partial, state: { ...partial.state, marks: { ...partial.state.marks, "1": [box(9)] } } } as ServerMsg;
    const merged = expand(slipped, MINE, 7, 9);
    expect(merged?.t === "sync" && merged.state.marks["1"]).toEqual([box(1)]);
    expect(await check.check(merged as ServerMsg, 7, MINE)).toBeNull();
  });
});

describe("the client behind a relay", () => {
  const sign = async (seq: number, state: LessonState) => {
    const message = signedMessage(1, "r1", 5, seq, 0, await stateHash(state, subtle));
    return { epoch: 5, sig: base64url(await subtle.sign({ name: "Ed25519" }, await signingKey, message.slice())) };
  };

  it("merges a partial sync at its turn, after the frames before it were checked, not when it arrived", async () => {
    vi.useRealTimers();
    vi.useFakeTimers({ toFake: ["Date"], now: AT + 2_000 });
    const { client, network } = setup(undefined, null, { room: "r1", pk: PK });
    await client.start();
    const link = network.last;
    link.open();
    const at3: LessonState = { ...emptyState(), doc: null, page: 2, marks: MINE.marks };
    const at4: LessonState = { ...at3, page: 4 };
    const at5: LessonState = { ...at4, page: 5, marks: { ...MINE.marks, "7": [box(9)] } };
    const frames: ServerMsg[] = [
      { ...(welcome(3, at3) as Extract<ServerMsg, { t: "welcome" }>), signed: await sign(3, at3), beat: BEAT } as ServerMsg,
      { t: "patch", seq: 4, time: 0, patch: { page: 4 }, signed: await sign(4, at4) },
      { t: "sync", seq: 5, state: { ...at5, marks: { "7": [box(9)] } }, signed: await sign(5, at5), partial: { since: 4, pages: [7] } },
    ];
    // A burst, as a link that recovers brings it: each frame arrives before the one before is checked.
    for (const f of frames) link.deliver(f);
    await vi.waitFor(() => expect(client.mirror.seq).toBe(5));
    expect(client.mirror.state.marks).toEqual(at5.marks);
    expect(link.sent.filter((m) => m.t === "resync")).toEqual([]);
    client.stop();
  });
});

describe("the client", () => {
  it("asks partial syncs in its hello, merges them, and asks for a whole state when it cannot", async () => {
    const { client, network, states } = setup();
    await client.start();
    const link = network.last;
    link.open();
    expect(link.sent[0]).toMatchObject({ t: "hello", partial_sync: true });
    link.deliver(welcome(7, { marks: MINE.marks }));
    link.deliver({ t: "sync", seq: 9, state: { ...emptyState(), page: 2, marks: { "3": [box(8)] } }, partial: { since: 7, pages: [1, 3] } });
    expect(client.mirror.seq).toBe(9);
    expect(client.mirror.state.page).toBe(2);
    expect(client.mirror.state.marks).toEqual({ "2": MINE.marks["2"], "3": [box(8)] });
    expect(states.at(-1)).toMatchObject({ seq: 9, patch: false });
    // A partial sync since a seq the client does not have: not shown; a whole state is asked for once.
    link.deliver({ t: "sync", seq: 14, state: { ...emptyState(), page: 5, marks: {} }, partial: { since: 12, pages: [] } });
    link.deliver({ t: "sync", seq: 15, state: { ...emptyState(), page: 6, marks: {} }, partial: { since: 12, pages: [] } });
    expect(client.mirror.seq).toBe(9);
    expect(link.sent.filter((m) => m.t === "resync")).toEqual([{ t: "resync" }]);
    link.deliver({ t: "sync", seq: 15, state: { ...emptyState(), page: 6, marks: {} } });
    expect(client.mirror.state.page).toBe(6);
  });
});
