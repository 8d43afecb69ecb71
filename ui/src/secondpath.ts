// A student's second path (PROTOCOL-ADDITIONS N): a second connection to the same server, opened
// with the student's resume token once the first is in, that carries the same changes. A packet lost
// on one TCP connection holds everything behind it for about a round trip; the same change on the
// other connection is rarely lost too, so the student takes each change from whichever path brings
// it first. The second path only listens: its frames go through the client's own checks, and only
// those that move the lesson forward are taken.
import type { ServerMsg } from "./generated/ServerMsg";
import type { Network, Transport } from "./platform/contract";

/** How long to wait before opening a second path again after it closed while the first stayed. */
export const SECOND_PATH_RETRY_MS = 5000;

/** How many times a second path refused with 4400 is opened again, after 1, 2 and 4 s. Behind a load
 * balancer that spreads connections over relays without keeping a student on one, the second path
 * can reach a relay where its student is not, which refuses it; another try most often reaches the
 * student's own (one in two with two relays). */
export const SECOND_PATH_REFUSED_TRIES = 3;

/** How long after the first path's welcome the second is opened: a student joining over a thin link
 * fetches the page it must show first (issue 24's goal is 3 s), and a lesson's changes gain from
 * the second path only once they flow. */
export const SECOND_PATH_AFTER_MS = 3000;

/** What a second path needs of the client that owns it. */
export interface SecondPathOwner {
  network: Pick<Network, "connect">;
  url?: string;
  device: string;
  /** Behind a relay: the room on the teacher's server. */
  room?: string;
  /** Whether a patch or snapshot is one the client has already, or one it cannot take yet: true
   * drops it unread. */
  stale(frame: ServerMsg): boolean;
  /** Takes a frame of the second path that may move the lesson forward (a patch, a sync, a beat). */
  deliver(frame: ServerMsg, live: () => boolean): void;
}

/**
 * Whether a frame is a copy of what the client has already (PROTOCOL-ADDITIONS N): a patch or a
 * snapshot of the lesson's epoch (`epoch`: the one the client follows, or null where there are none)
 * at or before its seq. With two paths the slower one brings every change again, and its snapshots
 * may be older than the lesson shown; they are dropped unread, not refused as a replay. A snapshot
 * of another epoch is never a copy: the teacher's server started one afresh, perhaps at the same seq.
 */
export function isCopy(frame: ServerMsg, seq: number, epoch: number | null): boolean {
  if (frame.t !== "patch" && frame.t !== "sync") return false;
  const its = frame.signed ? Number(frame.signed.epoch) : null;
  return its === epoch && Number(frame.seq) <= seq;
}

/** The second connection of one student, while its first is in. */
export class SecondPath {
  private transport: Transport | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private pinger: ReturnType<typeof setInterval> | null = null;
  private token: string | null = null;
  /** Refusals with 4400 since the last `start` or welcome on this path. */
  private refused = 0;

  constructor(private readonly owner: SecondPathOwner) {}

  /** Whether a second path is open (its welcome came). */
  open = false;

  /** Whether the student has a second path, or is opening one: copies are then expected. */
  get active(): boolean {
    return this.token !== null;
  }

  /** Opens the second path with this resume token a little after the first path's welcome
   * (`SECOND_PATH_AFTER_MS`), replacing any. */
  start(token: string): void {
    this.stop();
    this.token = token;
    this.refused = 0;
    this.later(SECOND_PATH_AFTER_MS);
  }

  /** Closes it (the first path closed, or the client stopped); it is not opened again until `start`. */
  stop(): void {
    this.token = null;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.drop(1000, "");
  }

  private later(ms: number): void {
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect();
    }, ms);
  }

  private drop(code: number, reason: string): void {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
    const transport = this.transport;
    this.transport = null;
    this.open = false;
    transport?.close(code, reason);
  }

  private connect(): void {
    const token = this.token;
    if (token === null) return;
    const { network, url, device, room } = this.owner;
    const transport = network.connect(url);
    this.transport = transport;
    const live = () => this.transport === transport;
    let heard = Date.now();
    transport.onOpen(() => {
      if (live()) transport.send({ t: "hello", v: 1, role: "student", resume: token, device, room, second: true, partial_sync: true });
    });
    transport.onFrame((frame) => {
      if (!live()) return;
      heard = Date.now();
      if (frame.t === "welcome") {
        this.open = true;
        this.refused = 0;
        this.ping(transport, Number(frame.heartbeat_ms) || 10000, () => heard);
        // Its state is taken as a snapshot when it is newer than the lesson shown.
        const { seq, state, signed } = frame;
        const sync: ServerMsg = { t: "sync", seq, state, signed };
        if (!this.owner.stale(sync)) this.owner.deliver(sync, live);
        return;
      }
      if (frame.t === "beat" || ((frame.t === "patch" || frame.t === "sync") && !this.owner.stale(frame))) {
        this.owner.deliver(frame, live);
      }
    });
    transport.onClose((code) => {
      if (!live()) return;
      this.drop(1000, "");
      // 4400 from a server that offered a second path: most often a load balancer that sent it to a
      // relay where the student is not. Tried again a few times, sooner each time than a drop.
      if (code === 4400 && this.refused < SECOND_PATH_REFUSED_TRIES) {
        this.later(1000 * 2 ** this.refused++);
        return;
      }
      // Refused for what it is (4400 again: this server takes none, or the first path is gone; 4029:
      // too many opened this minute), replaced, or the lesson is over: the first path's next welcome
      // decides. Otherwise (a drop, or no answer to its pings) try again in a while, as long as the
      // first path stays.
      if ([4000, 4001, 4003, 4029, 4400, 4409].includes(code)) return;
      this.later(SECOND_PATH_RETRY_MS);
    });
  }

  /** Pings the second path every heartbeat; one heard from for none of two is dead, and is opened
   * again (a half-open connection would otherwise count as a path for ever). */
  private ping(transport: Transport, heartbeatMs: number, heard: () => number): void {
    if (this.pinger) clearInterval(this.pinger);
    let id = 0;
    this.pinger = setInterval(() => {
      if (this.transport !== transport) return;
      if (Date.now() - heard() >= 2 * heartbeatMs) {
        this.drop(4999, "no answer on the second path");
        this.later(SECOND_PATH_RETRY_MS);
        return;
      }
      transport.send({ t: "ping", id: ++id });
    }, heartbeatMs);
  }
}
