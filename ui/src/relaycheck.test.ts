// The browser's checks of a relay against signatures made by the teacher's server in Rust: the
// known signature below is asserted on the Rust side too (src-server/protocol/src/sign.rs), so the two
// cannot drift apart.
import { describe, expect, it } from "vitest";
import { RelayCheck, beatDigest, canonicalJson, signedMessage, stateHash, titleSigned } from "./relaycheck";
import type { LessonState } from "./generated/LessonState";
import { AT, BEAT, PK, base64url, signingKey } from "./signedfakes";
import type { ServerMsg } from "./generated/ServerMsg";

const subtle = globalThis.crypto.subtle;

/** Page 2 of no document, the pointer at (0.25, 0.5), a highlight and a stroke kept, a laser stroke
 * being drawn: the state the Rust test signs. */
const STROKE = { id: 2, x: 0.1, y: 0.2, w: 0.05, h: 0.05, ink: { color: "red" as const, width: 4, points: [[1000, 2000, 50], [1500, 2500, 70]] as [number, number, number][] } };
const LIVE = { id: 3, page: 2, color: "red" as const, width: 4, laser: true, points: [[5000, 5000, 50]] as [number, number, number][] };
const STATE: LessonState = { doc: null, page: 2, pos: { x: 0.25, y: 0.5 }, zoom: 1, view: null, highlight: null, mode: "follow", notice: null, ended: false, marks: { "2": [{ id: 1, x: 0.125, y: 0.5, w: 0.75, h: 0.0625 }, STROKE] }, live: LIVE };
/** The tests' key's signature of STATE in room "r1", epoch 5, seq 3. */
const SIG = "SlWewHyYKU7K8I94pIqWjg7f-ckaaqpG62FF1dsQfp6_e_YbSgF_AVAML4vNScJCtgUUJ_fkL23JiKJMjgZUAQ";

/** A beat signed by the teacher's key (or another). */
async function beat(seq: number, n: number, at: number, teacher: boolean, epoch = 5, key?: CryptoKey) {
  const message = signedMessage(2, "r1", epoch, seq, n, await beatDigest(at, teacher, subtle));
  const sig = base64url(await subtle.sign({ name: "Ed25519" }, key ?? (await signingKey), message.slice()));
  return { seq, n, at, teacher, signed: { epoch, sig } };
}

const welcome = (seq: number, state: LessonState, sig: string, epoch = 5, b: unknown = BEAT): ServerMsg =>
  ({ t: "welcome", v: 1, you: { id: "p1", role: "student", name: "A" }, token: "t", room: { id: "r1", title: "T" }, seq, state, heartbeat_ms: 10000, time: 0, teacher_online: true, signed: { epoch, sig }, beat: b }) as ServerMsg;

describe("canonical JSON", () => {
  it("sorts keys and writes numbers as RFC 8785 (and Rust's serde_jcs) do", () => {
    expect(canonicalJson({ ...STATE, marks: {}, live: null })).toBe('{"doc":null,"ended":false,"highlight":null,"live":null,"marks":{},"mode":"follow","notice":null,"page":2,"pos":{"x":0.25,"y":0.5},"view":null,"zoom":1}');
    expect(canonicalJson({ b: [1, { d: 1e21, c: "é\u2028" }], a: undefined })).toBe('{"b":[1,{"c":"é\u2028","d":1e+21}]}');
  });
});

describe("the signed layout", () => {
  it("binds kind, room, epoch, seq, counter and the state's hash in that order", () => {
    const m = signedMessage(1, "r1", 2, 3, 0, new Uint8Array(32).fill(7));
    expect(Array.from(m.slice(0, 18))).toEqual([...new TextEncoder().encode("lectern-sig-v1"), 1, 2, 114, 49]);
    expect(Array.from(m.slice(18, 42))).toEqual([0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(m.length).toBe(18 + 24 + 32);
  });
});

describe("RelayCheck", () => {
  it("shows a room's title only as the teacher's server signed it in Rust (kind 5), in its epoch", async () => {
    const title = "Quran 3B — سورة الملك";
    const sig = "s0o9r0wKs7qaYbDoeQ5YlazihNgs_z4q2zmzHcxgZ3X18QY2g3CyliF-fxQVC1f84JbJbxZNeOAzUIfRGPwXAQ";
    expect(await titleSigned(PK, "r1", title, sig, 5, subtle)).toBe(true);
    expect(await titleSigned(PK, "r1", "Class cancelled: join at https://evil.example", sig, 5, subtle)).toBe(false);
    expect(await titleSigned(PK, "r2", title, sig, 5, subtle)).toBe(false);
    expect(await titleSigned(PK, "r1", title, undefined, 5, subtle)).toBe(false);
    expect(await titleSigned(PK, "r1", title, "not a signature", 5, subtle)).toBe(false);
    // The teacher's server restarted with another title: the old one is not put back.
    expect(await titleSigned(PK, "r1", title, sig, 6, subtle)).toBe(false);
    expect(await titleSigned(PK, "r1", title, sig, undefined, subtle)).toBe(false);
  });

  it("takes the state the teacher's server signed in Rust, and nothing else", async () => {
    const check = new RelayCheck(PK, "r1", subtle, () => AT);
    expect(await check.check(welcome(3, STATE, SIG), 0, null)).toBeNull();
    expect(await check.check(welcome(4, STATE, SIG), 0, null)).toMatch(/did not sign/);
    expect(await check.check(welcome(3, { ...STATE, page: 3 }, SIG), 0, null)).toMatch(/did not sign/);
    expect(await check.check(welcome(3, STATE, SIG, 6), 0, null)).toMatch(/did not sign/);
    expect(await new RelayCheck(PK, "r2", subtle).check(welcome(3, STATE, SIG), 0, null)).toMatch(/did not sign/);
  });

  it("takes a patch only if the state it leads to is signed for the next seq of the same epoch", async () => {
    const { publicKey, privateKey } = (await subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const pk = base64url(await subtle.exportKey("raw", publicKey));
    const sign = async (seq: number, state: LessonState, epoch = 9) => {
      const hash = await stateHash(state, subtle);
      const sig = await subtle.sign({ name: "Ed25519" }, privateKey, signedMessage(1, "r1", epoch, seq, 0, hash).slice());
      return { epoch, sig: base64url(sig) };
    };
    const check = new RelayCheck(pk, "r1", subtle, () => AT);
    const first = await sign(3, STATE);
    expect(await check.check(welcome(3, STATE, first.sig, 9, await beat(3, 1, AT, true, 9, privateKey)), 0, null)).toBeNull();
    const next = { ...STATE, page: 5 };
    const good: ServerMsg = { t: "patch", seq: 4, time: 0, patch: { page: 5 }, signed: await sign(4, next) };
    expect(await check.check(good, 3, STATE)).toBeNull();
    // Altered, replayed under another seq, of another epoch, or unsigned: refused.
    expect(await check.check({ ...good, patch: { page: 6 } } as ServerMsg, 3, STATE)).toMatch(/did not sign/);
    expect(await check.check({ ...good, seq: 5 } as ServerMsg, 4, next)).toMatch(/did not sign/);
    expect(await check.check({ ...good, signed: await sign(4, next, 10) } as ServerMsg, 3, STATE)).toMatch(/did not sign/);
    expect(await check.check({ ...good, signed: null } as ServerMsg, 3, STATE)).toMatch(/did not sign/);
  });

  it("refuses marks a relay slipped beside the signed ones, which the hash would not cover", async () => {
    const check = new RelayCheck(PK, "r1", subtle, () => AT);
    const forgedBox = { id: 9, x: 0, y: 0, w: 1, h: 0.2 };
    for (const marks of [
      { ...STATE.marks, "3": { length: 0, 0: forgedBox } },
      { ...STATE.marks, "3": [] },
      { ...STATE.marks, "03": [forgedBox] },
      { ...STATE.marks, "3": [{ ...forgedBox, x: "0" }] },
      // Ink no teacher's server makes: a colour off the palette, a point off the page, a fraction.
      { ...STATE.marks, "2": [{ ...STROKE, ink: { ...STROKE.ink, color: "pink" } }] },
      { ...STATE.marks, "2": [{ ...STROKE, ink: { ...STROKE.ink, points: [[10_001, 0, 50]] } }] },
      { ...STATE.marks, "2": [{ ...STROKE, ink: { ...STROKE.ink, points: [[0.5, 0, 50]] } }] },
      { ...STATE.marks, "2": [{ ...STROKE, ink: { ...STROKE.ink, points: [] } }] },
    ]) {
      const state = { ...STATE, marks } as unknown as LessonState;
      expect(await check.check(welcome(3, state, SIG), 0, null)).toMatch(/did not sign/);
    }
    for (const live of [{ ...LIVE, laser: "yes" }, { ...LIVE, points: new Array(501).fill([1, 1, 1]) }]) {
      const state = { ...STATE, live } as unknown as LessonState;
      expect(await check.check(welcome(3, state, SIG), 0, null)).toMatch(/did not sign/);
    }
    // The signed state itself is taken.
    expect(await check.check(welcome(3, STATE, SIG), 0, null)).toBeNull();
  });

  it("refuses an older state again, even signed, and a frame it cannot read", async () => {
    const check = new RelayCheck(PK, "r1", subtle, () => AT);
    expect(await check.check(welcome(3, STATE, SIG), 0, null)).toBeNull();
    // The client is at seq 4 now: the signed state at seq 3 is a replay.
    expect(await check.check(welcome(3, STATE, SIG), 4, STATE)).toMatch(/older lesson state/);
    expect(await check.check({ t: "patch", seq: 5, time: 0 } as unknown as ServerMsg, 4, STATE)).toMatch(/did not sign/);
  });

  it("drops unread, not refuses, an older state the client calls a copy (a second path's: section N)", async () => {
    const check = new RelayCheck(PK, "r1", subtle, () => AT);
    const mirror = { seq: 0, state: STATE, synced: false };
    const seen: string[] = [];
    const pass = (f: ServerMsg, copy?: (f: ServerMsg) => boolean) =>
      new Promise<void>((done) => {
        check.pass(f, mirror, () => true, (m) => seen.push(`applied ${m.t}`), (why) => seen.push(why), copy);
        check.pass({ t: "pong" } as unknown as ServerMsg, mirror, () => true, () => done(), () => done());
      });
    await pass(welcome(3, STATE, SIG));
    Object.assign(mirror, { seq: 4, synced: true });
    seen.length = 0;
    // The signed state at seq 3 again, from the slower path: the client says it is a copy, as its
    // turn comes.
    const older = { t: "sync", seq: 3, state: STATE, signed: { epoch: 5, sig: SIG } } as ServerMsg;
    await pass(older, (f) => f.t === "sync" && Number(f.seq) <= mirror.seq);
    expect(seen).toEqual([]);
    expect(check.currentEpoch).toBe(5);
    // Without that word it is a replay, refused.
    await pass(older);
    expect(seen).toEqual(["the relay sent an older lesson state again"]);
  });

  it("counts only beats it could check: a made-up beat is refused and keeps nothing alive", async () => {
    let now = AT;
    const check = new RelayCheck(PK, "r1", subtle, () => now);
    expect(await check.check(welcome(3, STATE, SIG), 0, null)).toBeNull();
    now += 9_000;
    expect(await check.check({ t: "beat", seq: 3, n: 2, at: now, teacher: true, signed: { epoch: 5, sig: "x" } }, 3, STATE)).toMatch(/did not sign/);
    now = AT + 31_000;
    expect(check.withholding(10_000)).toMatch(/heartbeats/);
    // And a relay's heartbeat of an hour changes nothing: by then the teacher's last word is stale.
    now = AT + 91_000;
    expect(check.withholding(3_600_000)).toMatch(/91 s old/);
  });

  it("notices a relay that withholds beats or stays behind them", async () => {
    let now = AT;
    const check = new RelayCheck(PK, "r1", subtle, () => now);
    await check.check(welcome(3, STATE, SIG), 0, null);
    now = AT + 25_000;
    expect(check.withholding(10_000)).toBeNull();
    now = AT + 31_000;
    expect(check.withholding(10_000)).toMatch(/heartbeats/);
    // A beat ahead of the client: the relay must deliver within two heartbeats.
    const fresh = new RelayCheck(PK, "r1", subtle, () => now);
    await fresh.check(welcome(3, STATE, SIG), 0, null);
    expect(await fresh.check({ t: "beat", ...(await beat(9, 2, now, true)) }, 3, STATE)).toBeNull();
    now += 21_000;
    expect(fresh.withholding(10_000)).toMatch(/holding back/);
  });

  it("takes a welcome only with a fresh signed beat of its epoch, as Rust signs it", async () => {
    const at = (now: number) => new RelayCheck(PK, "r1", subtle, () => now);
    expect(await at(AT + 9_000).check(welcome(3, STATE, SIG), 0, null)).toBeNull();
    expect(await at(AT).check(welcome(3, STATE, SIG, 5, null), 0, null)).toMatch(/how current/);
    // The snapshot and its beat replayed together a minute later.
    expect(await at(AT + 60_000).check(welcome(3, STATE, SIG), 0, null)).toMatch(/60 s old/);
    expect(await at(AT - 60_000).check(welcome(3, STATE, SIG), 0, null)).toMatch(/ahead/);
    // A state older than the teacher's latest beat: a replayed snapshot beside a fresh beat.
    expect(await at(AT).check(welcome(3, STATE, SIG, 5, await beat(4, 2, AT, true)), 0, null)).toMatch(/older than/);
    // The relay says the teacher is away in a beat the teacher signed as there.
    expect(await at(AT).check(welcome(3, STATE, SIG, 5, { ...BEAT, teacher: false }), 0, null)).toMatch(/did not sign/);
    // A beat of another epoch says nothing of this one.
    expect(await at(AT).check(welcome(3, STATE, SIG, 5, await beat(3, 1, AT, true, 4)), 0, null)).toMatch(/no current word/);
  });

  it("drops a relay that goes quiet past the freshness bound, or replays an older beat", async () => {
    let now = AT;
    const check = new RelayCheck(PK, "r1", subtle, () => now);
    expect(await check.check(welcome(3, STATE, SIG, 5, await beat(3, 4, AT, false)), 0, null)).toBeNull();
    now = AT + 49_000;
    expect(check.withholding(30_000)).toBeNull();
    now = AT + 51_000;
    expect(check.withholding(30_000)).toMatch(/51 s old/);
    now = AT;
    expect(await check.check(welcome(3, STATE, SIG, 5, await beat(3, 2, AT, true)), 3, STATE)).toMatch(/older heartbeat/);
  });

  it("hears whether the teacher is there from signed beats only, when it changes", async () => {
    let now = AT;
    const check = new RelayCheck(PK, "r1", subtle, () => now);
    const mirror = { seq: 0, state: STATE, synced: false };
    const applied: ServerMsg[] = [];
    const pass = (f: ServerMsg) =>
      new Promise<void>((done) => {
        check.pass(f, mirror, () => true, (m) => applied.push(m), () => applied.push({ t: "error", code: "bad_request", message: "refused" } as ServerMsg));
        check.pass({ t: "pong", t1: 0, t2: 0 } as unknown as ServerMsg, mirror, () => true, () => done(), () => done());
      });
    await pass(welcome(3, STATE, SIG));
    expect(applied.pop()).toMatchObject({ t: "welcome", teacher_online: true });
    Object.assign(mirror, { seq: 3, synced: true });
    // The relay's own word is not taken.
    await pass({ t: "teacher", online: false });
    expect(applied).toEqual([]);
    now += 5_000;
    await pass({ t: "beat", ...(await beat(3, 2, now, false)) });
    expect(applied.map((m) => m.t)).toEqual(["beat", "teacher"]);
    expect(applied[1]).toMatchObject({ online: false });
  });
});
