// Fakes for the lesson client's tests: a Transport the test drives, a network of them, and a
// client set up over it. No browser, no server.
import { LessonClient, type ClientEvents, type Credentials, type LinkStatus, type StopReason } from "./client";
import type { ClientMsg } from "./generated/ClientMsg";
import type { LessonState } from "./generated/LessonState";
import type { ServerMsg } from "./generated/ServerMsg";
import { emptyState } from "./lesson";
import type { Network, Transport } from "./platform/contract";

/** A connection the test drives: it opens, delivers frames and closes when told to. */
export class FakeTransport implements Transport {
  readonly sent: ClientMsg[] = [];
  isOpen = false;
  closedWith: number | null = null;
  private opened = () => {};
  private received: (frame: ServerMsg) => void = () => {};
  private closed: (code: number, reason: string) => void = () => {};

  constructor(readonly url: string | undefined) {}
  send(frame: ClientMsg): boolean {
    if (!this.isOpen) return false;
    this.sent.push(frame);
    return true;
  }
  close(code = 1000): void {
    this.closedWith = code;
    this.isOpen = false;
  }
  onOpen(cb: () => void): void {
    this.opened = cb;
  }
  onFrame(cb: (frame: ServerMsg) => void): void {
    this.received = cb;
  }
  onClose(cb: (code: number, reason: string) => void): void {
    this.closed = cb;
  }
  open(): void {
    this.isOpen = true;
    this.opened();
  }
  deliver(frame: ServerMsg): void {
    this.received(frame);
  }
  serverClose(code: number, reason = ""): void {
    this.isOpen = false;
    this.closed(code, reason);
  }
}

export class FakeNetwork implements Pick<Network, "connect" | "online" | "onOnline"> {
  readonly transports: FakeTransport[] = [];
  up = true;
  private listeners: (() => void)[] = [];
  connect(url?: string): Transport {
    const t = new FakeTransport(url);
    this.transports.push(t);
    return t;
  }
  online(): boolean {
    return this.up;
  }
  onOnline(cb: () => void): () => void {
    this.listeners.push(cb);
    return () => (this.listeners = this.listeners.filter((l) => l !== cb));
  }
  comeBack(): void {
    this.up = true;
    for (const l of this.listeners) l();
  }
  get last(): FakeTransport {
    return this.transports[this.transports.length - 1];
  }
}

export const doc = { id: "d1", title: "Mushaf", pages: 604, sha256: "ab" };

export function welcome(seq: number, state: Partial<LessonState> = {}, token = "tok-1"): ServerMsg {
  return {
    t: "welcome",
    v: 1,
    you: { id: "p7", role: "student", name: "Aisha" },
    token,
    room: { id: "r1", title: "Quran, level 2" },
    seq,
    state: { ...emptyState(), doc, ...state },
    heartbeat_ms: 10000,
    time: 0,
    teacher_online: true,
  };
}

export function setup(
  credentials: Credentials = { role: "student", code: "482913", name: "Aisha" },
  stored: string | null = null,
  relay?: { room: string; pk: string },
) {
  const network = new FakeNetwork();
  const saved: (string | null)[] = [];
  let token = stored;
  const states: { state: LessonState; seq: number; patch: boolean }[] = [];
  const statuses: { status: LinkStatus; stop?: StopReason; reason?: string }[] = [];
  const events: ClientEvents = {
    state: (state, seq, patch) => states.push({ state, seq, patch: !!patch }),
    status: (status, detail) => statuses.push({ status, stop: detail.stop, ...(detail.reason ? { reason: detail.reason } : {}) }),
  };
  const client = new LessonClient(
    {
      network,
      relay,
      device: "student-tab-0007",
      credentials,
      tokens: {
        load: async () => token,
        save: async (t) => {
          token = t;
          saved.push(t);
        },
      },
    },
    events,
  );
  return { client, network, saved, states, statuses, token: () => token };
}
