// The Lectern client (PROTOCOL.md §2–§7): hello or resume, the lesson mirror, resync on a gap,
// app-level pings with dead-link detection, reconnects with backoff and jitter (first try at once,
// then up to 5 s apart), and acks, hands and views queued while offline. Used by both pages; it
// speaks typed frames over the platform's `Transport`, so it runs the same over a WebSocket, over
// the app's IPC, or over a test's fake.
import type { ClientEvents, ClientOptions, LinkStatus } from "./clienttypes";
import type { ClientMsg } from "./generated/ClientMsg";
import type { ServerMsg } from "./generated/ServerMsg";
import type { SetPatch } from "./generated/SetPatch";
import type { You } from "./generated/You";
import { LessonMirror } from "./lesson";
import { expand } from "./partial";
import { Liveness } from "./liveness";
import type { Transport } from "./platform/contract";
import { RelayCheck } from "./relaycheck";
import { ERROR_CODES, STOP_CODES, backoff, type StopReason } from "./reconnect";
import { SecondPath, isCopy } from "./secondpath";

export type { ClientEvents, ClientOptions, Credentials, LinkStatus, TokenStore } from "./clienttypes";
export { backoff, type StopReason } from "./reconnect";

/** One participant's connection to a lesson. */
export class LessonClient {
  readonly mirror = new LessonMirror();
  status: LinkStatus = "connecting";
  lastSync: number | null = null;
  you: You | null = null;
  teacherOnline = true;
  private transport: Transport | null = null;
  private resume: string | null = null;
  private attempt = 0;
  private nextId = 1;
  private queue: ClientMsg[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly live = new Liveness();
  private stopped = false;
  private lastAck = 0;
  /** A resync was asked for and its snapshot has not come yet. */
  private resyncPending = false;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private unlisten: (() => void) | null = null;
  /** Behind a relay: what every frame is checked against. */
  private readonly relay: RelayCheck | null;
  /** A student's second path, when the server offers one (PROTOCOL-ADDITIONS N). */
  private readonly second: SecondPath;

  constructor(
    private readonly options: ClientOptions,
    private readonly events: ClientEvents,
  ) {
    this.relay = options.relay ? new RelayCheck(options.relay.pk, options.relay.room) : null;
    this.second = new SecondPath({
      network: options.network,
      url: options.url,
      device: options.device,
      room: options.relay?.room,
      stale: (frame) => this.staleOnSecond(frame),
      deliver: (frame, live) => this.fromSecond(frame, live),
    });
  }

  /** Whether a second path is open now. */
  get secondPath(): boolean {
    return this.second.open;
  }

  /** The resume token this participant holds now (the bearer for documents), or null. */
  get token(): string | null {
    return this.resume;
  }

  /** Opens the connection (and keeps it open until `stop`), resuming with a stored token if any. */
  async start(): Promise<void> {
    this.stopped = false;
    this.resume = await this.options.tokens.load();
    if (this.stopped) return;
    this.unlisten?.();
    this.unlisten = this.options.network.onOnline(() => this.retryNow());
    this.connect();
  }

  /** Closes for good. */
  stop(): void {
    this.stopped = true;
    this.unlisten?.();
    this.unlisten = null;
    this.clearTimers();
    // Detach first: the close that follows is ours, not the server's word that the lesson ended.
    const transport = this.transport;
    this.transport = null;
    transport?.close(1000);
    this.second.stop();
    this.setStatus("stopped");
  }

  /** Drops the connection as a network failure would; the client reconnects and resumes. */
  dropForTest(): void {
    this.transport?.close(4999, "dropped");
  }

  /** Sends a teacher change; returns its id (the answer comes as `ok` or `error`), or null when it
   * could not be sent (offline: a change is not queued, the state it would change may have moved). */
  set(patch: SetPatch): number | null {
    const id = this.nextId++;
    return this.send({ t: "set", id, patch }, false) ? id : null;
  }

  /** Sends a teacher command that carries an id; returns the id. */
  request(
    msg:
      | { t: "kick"; who: string }
      | { t: "end" }
      | { t: "admit"; knocks: string[] }
      | { t: "deny"; knocks: string[] }
      | { t: "new_code" }
      | { t: "waiting_room"; on: boolean },
  ): number {
    const id = this.nextId++;
    this.send({ ...msg, id }, false);
    return id;
  }

  /** Raises or lowers the hand (queued while offline). */
  hand(up: boolean): void {
    this.send({ t: "hand", up }, true);
  }

  /** Tells the teacher which page a free-browsing student shows (queued while offline). */
  view(page: number | null): void {
    this.send({ t: "view", page }, true);
  }

  /** Acknowledges the state at `seq` is on screen: cumulative, at most 10 a second (§6). */
  ack(seq: number): void {
    if (seq <= this.lastAck) return;
    this.lastAck = seq;
    if (this.ackTimer) return;
    this.send({ t: "ack", seq }, true);
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      if (this.lastAck > seq) this.send({ t: "ack", seq: this.lastAck }, true);
    }, 100);
  }

  private send(msg: ClientMsg, queueOffline: boolean): boolean {
    const sent = this.status === "connected" && !!this.transport?.send(msg);
    if (!sent && queueOffline) {
      // Only the latest of each kind matters (acks are cumulative; hand and view are states).
      this.queue = this.queue.filter((m) => m.t !== msg.t);
      this.queue.push(msg);
    }
    return sent;
  }

  private saveToken(token: string | null): void {
    this.resume = token;
    void this.options.tokens.save(token);
  }

  private connect(): void {
    if (this.stopped) return;
    this.setStatus(this.attempt === 0 && this.lastSync === null ? "connecting" : "reconnecting");
    const transport = this.options.network.connect(this.options.url);
    this.transport = transport;
    transport.onOpen(() => {
      if (this.transport === transport) transport.send(this.hello());
    });
    transport.onFrame((frame) => {
      if (this.transport !== transport) return;
      this.live.heard();
      if (!this.relay) {
        const whole = this.whole(frame);
        if (whole && !this.isCopy(whole, true)) this.onFrame(whole);
        return;
      }
      const refuse = (refused: string) => {
        // Never applied: drop this relay and try again (perhaps another, behind a load balancer).
        this.events.error?.("untrusted", refused, undefined);
        transport.close(4999, "untrusted relay");
        this.onClose(transport, 4999);
      };
      this.relay.pass(frame, this.mirror, () => this.transport === transport, (f) => this.onFrame(f), refuse, (f) => this.isCopy(f, true), (f) => this.whole(f));
    });
    transport.onClose((code, reason) => this.onClose(transport, code, reason));
  }

  /** A frame the second path brought (a patch, a snapshot or a beat), checked as the first's are. */
  private fromSecond(frame: ServerMsg, live: () => boolean): void {
    if (!this.transport) return;
    if (!this.relay) {
      const whole = this.whole(frame);
      if (whole && !this.staleOnSecond(whole)) this.onFrame(whole);
      return;
    }
    const refuse = (refused: string) => {
      // A relay that forges on one path is not trusted on the other: try again from the start.
      this.events.error?.("untrusted", refused, undefined);
      this.abandonLink("untrusted relay");
    };
    this.relay.pass(frame, this.mirror, live, (f) => this.onFrame(f), refuse, (f) => this.staleOnSecond(f), (f) => this.whole(f));
  }

  /** A partial sync merged over the lesson held (PROTOCOL-ADDITIONS O), or null when it cannot be:
   * then the whole state is asked for on the first path. Any other frame as it came. */
  private whole(frame: ServerMsg): ServerMsg | null {
    const epoch = this.relay ? this.relay.currentEpoch : undefined;
    const out = expand(frame, this.mirror.state, this.mirror.seq, epoch);
    if (out === null && !this.resyncPending) {
      this.resyncPending = true;
      this.transport?.send({ t: "resync" });
    }
    return out;
  }

  /** With a second path, a patch or snapshot of this epoch the other path brought first: dropped
   * unread. On the first path (`primary`) the answer to a resync is among them when the second path
   * filled the gap, and the wait for it ends. */
  private isCopy(frame: ServerMsg, primary: boolean): boolean {
    if (!this.second.active || !isCopy(frame, this.mirror.seq, this.relay?.currentEpoch ?? null)) return false;
    if (primary && frame.t === "sync") this.resyncPending = false;
    return true;
  }

  /** A frame of the second path the client has already, or a patch past the next one (the first
   * path brings those between, and asks for a snapshot on a gap of its own). */
  private staleOnSecond(frame: ServerMsg): boolean {
    return this.isCopy(frame, false) || (frame.t === "patch" && Number(frame.seq) > this.mirror.seq + 1);
  }

  private onClose(transport: Transport, code: number, reason = ""): void {
    if (this.transport !== transport) return;
    this.transport = null;
    this.second.stop();
    this.resyncPending = false;
    this.clearTimers();
    const wasWaiting = this.status === "waiting";
    let stop = STOP_CODES[code];
    if (stop === "kicked" && wasWaiting) stop = "denied";
    if (stop === "credentials" && this.resume) {
      // A stale resume token (a new lesson, say): forget it and try the code or key again.
      this.saveToken(null);
      this.attempt = 0;
      this.connect();
      return;
    }
    if (stop) {
      if (stop === "ended" || stop === "kicked") this.saveToken(null);
      this.stopped = true;
      this.unlisten?.();
      this.unlisten = null;
      this.setStatus("stopped", stop, reason);
      return;
    }
    this.scheduleRetry();
  }

  private hello(): ClientMsg {
    const { device, credentials } = this.options;
    // Every hello says the client merges partial syncs (PROTOCOL-ADDITIONS O).
    const partial_sync = true;
    if (this.resume) return { t: "hello", v: 1, role: credentials.role, resume: this.resume, device, room: this.options.relay?.room, partial_sync };
    if (credentials.role === "teacher") return { t: "hello", v: 1, role: "teacher", key: credentials.key, device, partial_sync };
    const { code, name } = credentials;
    const room = this.options.relay?.room;
    if (code === null) return { t: "hello", v: 1, role: "student", knock: true, name, device, room, partial_sync };
    return { t: "hello", v: 1, role: "student", code, name, device, room, partial_sync };
  }

  private onFrame(msg: ServerMsg): void {
    switch (msg.t) {
      case "welcome": {
        this.live.clearWait();
        this.resyncPending = false;
        this.saveToken(msg.token);
        this.you = msg.you;
        this.live.heartbeatMs = Number(msg.heartbeat_ms) || 10000;
        this.teacherOnline = msg.teacher_online;
        this.mirror.snapshot(msg.seq, msg.state);
        this.attempt = 0;
        this.lastSync = Date.now();
        this.events.welcome?.(msg);
        this.setStatus("connected");
        this.events.state(this.mirror.state, this.mirror.seq);
        for (const queued of this.queue.splice(0)) this.transport?.send(queued);
        this.startPings();
        if (msg.second && msg.you.role === "student") this.second.start(msg.token);
        break;
      }
      case "patch": {
        const outcome = this.mirror.patch(msg.seq, msg.patch);
        if (outcome === "applied") {
          this.lastSync = Date.now();
          this.events.state(this.mirror.state, this.mirror.seq, msg.patch);
        } else if (outcome === "gap" && !this.resyncPending) {
          this.resyncPending = true;
          this.transport?.send({ t: "resync" });
        }
        break;
      }
      case "sync":
        this.resyncPending = false;
        this.mirror.snapshot(msg.seq, msg.state);
        this.lastSync = Date.now();
        this.events.state(this.mirror.state, this.mirror.seq);
        break;
      case "roster":
        this.events.roster?.(msg.changes);
        break;
      case "knocks":
        this.events.knocks?.(msg.knocks);
        break;
      case "waiting":
        this.onWaiting(Number(msg.heartbeat_ms) || 10000);
        break;
      case "guessing":
        this.events.guessing?.(Number(msg.wrong), msg.waiting_room);
        break;
      case "waiting_room":
        this.events.waitingRoom?.(msg.on);
        break;
      case "teacher":
        this.teacherOnline = msg.online;
        this.events.teacher?.(msg.online);
        break;
      case "pong":
        this.live.pong();
        this.lastSync = Date.now();
        this.emitStatus();
        break;
      case "ok":
        if (msg.id !== undefined && msg.id !== null) this.events.ok?.(msg.id, msg.seq ?? null);
        break;
      case "error":
        // Behind a relay an error frame is the relay's word, not the teacher's server's: its text is
        // never shown (a relay could write anything there, a link to follow, say), only a known code.
        if (this.relay) this.events.error?.(ERROR_CODES.has(msg.code) ? msg.code : "internal", "", msg.id);
        else this.events.error?.(msg.code, msg.message, msg.id);
        break;
    }
  }

  /** The server holds our knock: say so, and treat two silent heartbeats as a dead link. */
  private onWaiting(heartbeatMs: number): void {
    if (this.status !== "waiting") this.setStatus("waiting");
    this.live.waiting(heartbeatMs, () => {
      const dead = this.transport;
      this.transport = null;
      this.clearTimers();
      dead?.close(4999, "silent while waiting");
      this.scheduleRetry();
    });
  }

  private startPings(): void {
    this.relay?.linked();
    this.live.start({
      ping: (id) => this.transport?.send({ t: "ping", id }),
      withheld: (heartbeatMs) => this.relay?.withholding(heartbeatMs) ?? null,
      dead: (reason) => this.abandonLink(reason),
    });
  }

  /** Drops the link without waiting for its close handshake, and tries again. */
  private abandonLink(reason: string): void {
    const dropped = this.transport;
    this.transport = null;
    this.second.stop();
    this.clearTimers();
    dropped?.close(4999, reason);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const delay = backoff(this.attempt++);
    this.setStatus(this.options.network.online() ? "reconnecting" : "offline");
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private retryNow(): void {
    if (this.stopped || this.transport) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.live.stop();
  }

  private setStatus(status: LinkStatus, stop?: StopReason, reason?: string): void {
    this.status = status;
    this.events.status(status, { lastSync: this.lastSync, stop, reason, attempt: this.attempt });
  }

  private emitStatus(): void {
    this.events.status(this.status, { lastSync: this.lastSync, attempt: this.attempt });
  }
}
