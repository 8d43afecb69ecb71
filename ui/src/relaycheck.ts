// Checking a relay (docs/PROTOCOL-ADDITIONS.md, section E), as the Rust client does
// (src-server/src/client/trust.rs): behind a relay, every state taken must carry the teacher's
// Ed25519 signature, for the next seq of the same epoch, and the signed beats must keep coming, must
// be fresh on the teacher's clock, and must not run ahead of what the relay delivers. Whether the
// teacher is there is taken from those beats only, never from the relay's word. What is signed is the state's canonical JSON
// (RFC 8785), which `JSON.stringify` over sorted keys writes exactly, numbers included.
import type { LessonState } from "./generated/LessonState";
import type { ServerMsg } from "./generated/ServerMsg";
import type { Signed } from "./generated/Signed";
import { applyPatch } from "./lesson";

/** The canonical JSON of a value (RFC 8785): object keys sorted by UTF-16 code units, no spaces,
 * numbers and strings as `JSON.stringify` writes them. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Digests (hex) kept while the value is the same object: each page's list, and the whole layer.
 * Applying a patch copies only what it changes (`applyMarks`), so a change costs the same to check
 * whatever the pages hold. */
const digests = new WeakMap<object, string>();

async function hexDigest(value: object, subtle: SubtleCrypto): Promise<string> {
  let hex = digests.get(value);
  if (!hex) {
    const d = new Uint8Array(await subtle.digest("SHA-256", new TextEncoder().encode(canonicalJson(value))));
    hex = Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
    digests.set(value, hex);
  }
  return hex;
}

/** SHA-256 of what is signed of a state: its canonical JSON with `marks` stood for by the hex
 * SHA-256 of `{"<page>": "<hex SHA-256 of that page's list>", …}` (PROTOCOL-ADDITIONS.md section L). */
export async function stateHash(state: LessonState, subtle: SubtleCrypto = crypto.subtle): Promise<Uint8Array> {
  const layer = state.marks ?? {};
  // Only what the teacher's server makes is hashed as marks; anything else (a list that is not a
  // list, a page that is not a page, an empty list) could be drawn without being signed: refused.
  if (!wellFormedLive(state.live)) throw new Error("a stroke the teacher's server does not make");
  let marks = digests.get(layer);
  if (!marks) {
    // Checked once per layer object: a pointer move or a pen step keeps the layer it had.
    if (!wellFormedMarks(layer)) throw new Error("marks the teacher's server does not make");
    const pages: Record<string, string> = {};
    for (const [page, list] of Object.entries(layer)) if (list?.length) pages[page] = await hexDigest(list, subtle);
    marks = await hexDigest(pages, subtle);
    digests.set(layer, marks);
  }
  return new Uint8Array(await subtle.digest("SHA-256", new TextEncoder().encode(canonicalJson({ ...state, marks }))));
}

/** The most mark changes one patch carries, marks and ink points one page keeps, marks and points a
 * lesson keeps, and points a stroke holds (src-server/protocol/src/marks.rs and ink.rs). */
export const MAX_MARK_OPS = 32;
const MAX_MARKS_PER_PAGE = 2000;
const MAX_MARKS = 10_000;
const MAX_POINTS_PER_PAGE = 60_000;
const MAX_POINTS = 200_000;
export const MAX_STROKE_POINTS = 500;
const COLORS = new Set(["black", "red", "blue", "green", "orange"]);

/** Whether `layer` is marks as the teacher's server writes them: pages 1.. by their number, each a
 * non-empty list of rectangles with numbers (and strokes of points on the page), within the caps. */
function wellFormedMarks(layer: unknown): boolean {
  if (typeof layer !== "object" || layer === null || Array.isArray(layer)) return false;
  let total = 0;
  let points = 0;
  for (const [page, list] of Object.entries(layer)) {
    if (!/^[1-9][0-9]{0,9}$/.test(page) || Number(page) > 0xffffffff || !Array.isArray(list) || list.length === 0 || list.length > MAX_MARKS_PER_PAGE) return false;
    total += list.length;
    let here = 0;
    for (const m of list as unknown[]) {
      if (typeof m !== "object" || m === null) return false;
      const r = m as Record<string, unknown>;
      if (!["id", "x", "y", "w", "h"].every((k) => typeof r[k] === "number" && Number.isFinite(r[k]))) return false;
      if (r.ink === undefined) continue;
      const ink = r.ink as Record<string, unknown> | null;
      if (!ink || !wellFormedStroke(ink)) return false;
      here += (ink.points as unknown[]).length;
    }
    if (here > MAX_POINTS_PER_PAGE) return false;
    points += here;
  }
  return total <= MAX_MARKS && points <= MAX_POINTS;
}

/** Whether a stroke is one the teacher's server keeps: a colour of the palette, a width, and 1 to
 * 500 points of three whole numbers on the page. */
function wellFormedStroke(s: Record<string, unknown>): boolean {
  const whole = (v: unknown, max: number) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
  return (
    typeof s.color === "string" &&
    COLORS.has(s.color) &&
    whole(s.width, 40) &&
    (s.width as number) >= 1 &&
    Array.isArray(s.points) &&
    s.points.length >= 1 &&
    s.points.length <= MAX_STROKE_POINTS &&
    s.points.every((p) => Array.isArray(p) && p.length === 3 && whole(p[0], 10_000) && whole(p[1], 10_000) && whole(p[2], 100))
  );
}

/** Whether the stroke being drawn is null or one the teacher's server makes. */
function wellFormedLive(live: unknown): boolean {
  if (live === null || live === undefined) return true;
  if (typeof live !== "object") return false;
  const l = live as Record<string, unknown>;
  return typeof l.id === "number" && typeof l.page === "number" && typeof l.laser === "boolean" && wellFormedStroke(l);
}

/** What a beat signs in place of a state's hash: SHA-256 of the teacher's clock (8 bytes,
 * big-endian) and whether a teacher is there (1 byte). */
export async function beatDigest(at: number, teacher: boolean, subtle: SubtleCrypto = crypto.subtle): Promise<Uint8Array> {
  const bytes = new Uint8Array(9);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(at));
  bytes[8] = teacher ? 1 : 0;
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

/** Whether `sig` is the teacher's signature (kind 5, section E) of room `room`'s title, made in
 * `epoch`: behind a relay a page shows the title only then, since whoever writes into Redis could
 * choose it. A welcome's title is checked at its state's epoch, so a title from before the teacher's
 * server restarted with another is not shown again. */
export async function titleSigned(pk: string, room: string, title: string, sig: string | undefined, epoch: number | undefined, subtle: SubtleCrypto = crypto.subtle): Promise<boolean> {
  if (!sig || epoch === undefined || !Number.isSafeInteger(epoch) || epoch < 0 || new TextEncoder().encode(room).length > 255) return false;
  try {
    const key = await subtle.importKey("raw", fromBase64Url(pk).slice(), { name: "Ed25519" }, false, ["verify"]);
    const digest = new Uint8Array(await subtle.digest("SHA-256", new TextEncoder().encode(title)));
    return await subtle.verify({ name: "Ed25519" }, key, fromBase64Url(sig).slice(), signedMessage(5, room, epoch, 0, 0, digest).slice());
  } catch {
    return false;
  }
}

/** What a signature covers: the layout of section E (kind 1: a state; 2: a beat; 5: a title). */
export function signedMessage(kind: 1 | 2 | 5, room: string, epoch: number, seq: number, n: number, stateHash: Uint8Array): Uint8Array {
  const roomBytes = new TextEncoder().encode(room);
  const tag = new TextEncoder().encode("lectern-sig-v1");
  const out = new Uint8Array(tag.length + 2 + roomBytes.length + 24 + 32);
  out.set(tag, 0);
  let at = tag.length;
  out[at++] = kind;
  out[at++] = roomBytes.length;
  out.set(roomBytes, at);
  at += roomBytes.length;
  const view = new DataView(out.buffer);
  for (const v of [epoch, seq, n]) {
    view.setBigUint64(at, BigInt(v));
    at += 8;
  }
  out.set(stateHash, at);
  return out;
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** A client's copy of the lesson, as far as checking needs it. */
interface Mirror {
  seq: number;
  state: LessonState;
  synced: boolean;
}

/** Beats a relay may miss before it counts as withholding them, and heartbeats it may stay behind. */
const MISSED_BEATS = 3;
const BEHIND_BEATS = 2;
const MAX_HEARTBEAT_MS = 30_000;
/** How old the teacher's latest word may be on this device's clock (or how far ahead of it): two
 * default heartbeats (20 s) and 30 s for the two clocks to disagree. Fixed, not the relay's word
 * (as in the Rust client, `FRESHNESS`). */
export const FRESHNESS_MS = 50_000;

/** The teacher's key and room a client checks a relay against, and what it has seen so far. */
export class RelayCheck {
  private key: Promise<CryptoKey>;
  private epoch: number | null = null;
  private beat = 0;
  private heardBeat: number;
  private behindSince: number | null = null;
  /** The teacher's clock in the last good beat. */
  private beatAt: number | null = null;
  /** Whether the teacher is there, as the last good beat said. */
  teacher: boolean | null = null;
  /** Set by a beat that says the teacher came or went (taken by `pass`). */
  private presenceChanged: boolean | null = null;

  constructor(
    pk: string,
    private readonly room: string,
    private readonly subtle: SubtleCrypto = crypto.subtle,
    private readonly now: () => number = Date.now,
  ) {
    // A browser without Ed25519 in WebCrypto, or a malformed key, checks nothing: every state is then
    // refused.
    this.key = (async () => subtle.importKey("raw", fromBase64Url(pk).slice(), { name: "Ed25519" }, false, ["verify"]))();
    this.key.catch(() => {});
    this.heardBeat = now();
  }

  /** The epoch of the teacher's server the client follows (null before the first state). */
  get currentEpoch(): number | null {
    return this.epoch;
  }

  /** A new link: beats are counted from now. */
  linked(): void {
    this.heardBeat = this.now();
    this.behindSince = null;
  }

  private async verify(kind: 1 | 2, seq: number, n: number, state: LessonState, signed: Signed | null | undefined): Promise<boolean> {
    try {
      const hash = await stateHash(state, this.subtle);
      return await this.verifyDigest(kind, seq, n, hash, signed);
    } catch {
      return false;
    }
  }

  private async verifyDigest(kind: 1 | 2, seq: number, n: number, digest: Uint8Array, signed: Signed | null | undefined): Promise<boolean> {
    if (!signed || new TextEncoder().encode(this.room).length > 255) return false;
    try {
      const message = signedMessage(kind, this.room, Number(signed.epoch), seq, n, digest);
      return await this.subtle.verify({ name: "Ed25519" }, await this.key, fromBase64Url(signed.sig).slice(), message.slice());
    } catch {
      return false;
    }
  }

  private async verifyBeat(beat: { seq: number; n: number; at: number; teacher: boolean; signed: Signed }): Promise<boolean> {
    const digest = await beatDigest(Number(beat.at), !!beat.teacher, this.subtle);
    return this.verifyDigest(2, Number(beat.seq), Number(beat.n), digest, beat.signed);
  }

  /** A beat from too long ago (or too far ahead) on this device's clock: the reason, or null. */
  private stale(at: number): string | null {
    const now = this.now();
    const off = Math.abs(now - at);
    if (off <= FRESHNESS_MS) return null;
    const s = Math.floor(off / 1000);
    return at < now
      ? `the teacher's last word through the relay is ${s} s old by this device's clock: the lesson shown may not be current (or this device's clock, or the teacher's, is wrong)`
      : `the teacher's last word through the relay is ${s} s ahead of this device's clock: set this device's date and time (or the teacher's) right`;
  }

  private inbox: Promise<void> = Promise.resolve();

  /** Checks frames one at a time, in the order they came, against the mirror as it stands when
   * each is reached: `apply` takes a good one, `refuse` gets the reason for a bad one (which is never
   * applied). Nothing happens once `live` says the link is gone, or when `copy` says, as the frame's
   * turn comes, that the client has what it brings (another path brought it first: section N). */
  pass(
    frame: ServerMsg,
    mirror: Mirror,
    live: () => boolean,
    apply: (f: ServerMsg) => void,
    refuse: (reason: string) => void,
    copy: (f: ServerMsg) => boolean = () => false,
    prepare: (f: ServerMsg) => ServerMsg | null = (f) => f,
  ): void {
    this.inbox = this.inbox.then(async () => {
      if (!live() || copy(frame)) return;
      // A partial sync is merged here, at its turn, over the lesson as the frames before it left it
      // (PROTOCOL-ADDITIONS O); null: it cannot be, and a whole state was asked for.
      const whole = prepare(frame);
      if (whole === null) return;
      frame = whole;
      // A frame that breaks the check (a patch without its patch, say) is refused like a forged one,
      // and the chain goes on: one bad frame must not stop every later one.
      const refused = await this.check(frame, mirror.seq, mirror.synced ? mirror.state : null).catch(
        (e: unknown) => `the relay sent a frame that cannot be checked (${String(e)})`,
      );
      if (!live()) return;
      if (refused) {
        console.error(refused);
        refuse(refused);
        return;
      }
      // Behind a relay, whether the teacher is there is the teacher's signed word only: the relay's
      // own `teacher` frames are not taken, and a welcome says what its beat says.
      const presence = this.presenceChanged;
      this.presenceChanged = null;
      if (frame.t === "teacher") return;
      try {
        apply(frame.t === "welcome" ? { ...frame, teacher_online: this.teacher ?? false } : frame);
        if (presence !== null) apply({ t: "teacher", online: presence });
      } catch (e) {
        console.error(e);
      }
    });
  }

  /** Checks a frame before it is applied, given the client's seq and state: the reason it must be
   * refused, or null. */
  async check(msg: ServerMsg, seq: number, state: LessonState | null): Promise<string | null> {
    const forged = (what: string) => `the relay sent ${what} that the teacher's server did not sign`;
    switch (msg.t) {
      case "welcome":
      case "sync": {
        const at = Number(msg.seq);
        if (!(await this.verify(1, at, 0, msg.state, msg.signed))) return forged("a lesson state");
        const epoch = Number(msg.signed!.epoch);
        // Epochs only grow, and within one the seq only grows: an older state, however well signed,
        // is a replay.
        if (this.epoch !== null && (epoch < this.epoch || (epoch === this.epoch && at < seq))) {
          return "the relay sent an older lesson state again";
        }
        if (msg.t === "welcome") {
          // A welcome must say how fresh its state is: the teacher's latest beat, of its epoch, for
          // its seq or an earlier one (a later state is newer than the beat).
          const beat = msg.beat;
          if (!beat || Number(beat.signed.epoch) !== epoch) return "the relay has no current word from the teacher of how current the lesson is";
          if (!(await this.verifyBeat(beat))) return forged("a heartbeat");
          if (Number(beat.seq) > at) return "the relay sent a lesson state older than the teacher's latest heartbeat";
          if (epoch === this.epoch && Number(beat.n) < this.beat) return "the relay sent an older heartbeat of the teacher's again";
          const stale = this.stale(Number(beat.at));
          if (stale) return stale;
          this.beat = Number(beat.n);
          this.beatAt = Number(beat.at);
          this.heardBeat = this.now();
          this.teacher = !!beat.teacher;
        } else if (epoch !== this.epoch) {
          this.beat = 0; // a new epoch counts its beats afresh
        }
        this.epoch = epoch;
        this.behindSince = null;
        return null;
      }
      case "patch": {
        const next = Number(msg.seq);
        if (next !== seq + 1 || !state) return null; // old: ignored; a gap: a sync is asked for
        if (typeof msg.patch !== "object" || msg.patch === null) return forged("a change");
        // More mark changes than a teacher's server sends at once is no patch of it: refused
        // before any is applied.
        const ops = msg.patch.marks;
        if (ops !== undefined && (!Array.isArray(ops) || ops.length > MAX_MARK_OPS)) return forged("a change");
        const after = applyPatch(state, msg.patch);
        if (!msg.signed || this.epoch !== Number(msg.signed.epoch) || !(await this.verify(1, next, 0, after, msg.signed))) {
          return forged("a change");
        }
        return null;
      }
      case "beat": {
        const [at, n] = [Number(msg.seq), Number(msg.n)];
        if (n <= this.beat || this.epoch !== Number(msg.signed?.epoch)) return null; // old, or another epoch's
        if (!(await this.verifyBeat(msg))) return forged("a heartbeat");
        // A relay that holds beats back until they are stale is withholding.
        const stale = this.stale(Number(msg.at));
        if (stale) return stale;
        this.beat = n;
        this.beatAt = Number(msg.at);
        if (at > seq) {
          this.behindSince ??= this.now(); // the relay says it is behind; it must catch up soon
        } else {
          this.behindSince = null;
          this.heardBeat = this.now();
        }
        if (this.teacher !== !!msg.teacher) {
          this.teacher = !!msg.teacher;
          this.presenceChanged = this.teacher;
        }
        return null;
      }
      default:
        return null;
    }
  }

  /** Whether the relay is withholding: no good beat for three heartbeats, behind for two, or the
   * teacher's last word older than the freshness bound. The heartbeat is the relay's word, so it is
   * held to at most 30 s. */
  withholding(heartbeatMs: number): string | null {
    // The teacher's last word may be no older than the freshness bound, whatever the relay says.
    const stale = this.beatAt === null ? null : this.stale(this.beatAt);
    if (stale) return stale;
    heartbeatMs = Math.min(heartbeatMs, MAX_HEARTBEAT_MS);
    const now = this.now();
    if (now - this.heardBeat > MISSED_BEATS * heartbeatMs) return "the relay stopped passing on the teacher's heartbeats";
    if (this.behindSince !== null && now - this.behindSince > BEHIND_BEATS * heartbeatMs) return "the relay is holding back the teacher's changes";
    return null;
  }
}
