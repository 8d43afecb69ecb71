// How a client tells a live link from a dead one (PROTOCOL.md §7): an app-level ping every heartbeat,
// a link given up when no pong came one heartbeat late and nothing else was heard for as long, and,
// while a knock waits to be let in, two silent heartbeats. Kept apart from the client so its timers
// are in one place, and cleared in one call.

/** What the liveness checks ask of their client. */
export interface LivenessHooks {
  /** Sends a ping with this id. */
  ping(id: number): void;
  /** Behind a relay: why the relay is taken to withhold the teacher's word, or null. */
  withheld(heartbeatMs: number): string | null;
  /** The link is dead (or withholding): drop it and try again. */
  dead(reason: string): void;
}

/** One client's ping timer, its wait timer, and what it last heard. */
export class Liveness {
  /** The server's heartbeat (from its welcome). */
  heartbeatMs = 10000;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private waitTimer: ReturnType<typeof setTimeout> | null = null;
  private awaitingPong: number | null = null;
  /** When the server was last heard from (any frame): a delayed pong behind other frames is loss, not death. */
  private lastHeard = 0;
  private nextPing = 1;

  /** Any frame came from the server. */
  heard(): void {
    this.lastHeard = Date.now();
  }

  /** The pong came. */
  pong(): void {
    this.awaitingPong = null;
  }

  /** Starts pinging every heartbeat (after a welcome), replacing any earlier timer. */
  start(hooks: LivenessHooks): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    let lastPing = 0;
    this.pingTimer = setInterval(() => {
      const now = Date.now();
      const withheld = hooks.withheld(this.heartbeatMs);
      if (withheld) {
        // The relay stopped passing on the teacher's signed beats, or holds back changes: try again.
        console.error(withheld);
        hooks.dead("withholding relay");
        return;
      }
      if (
        this.awaitingPong !== null &&
        now - this.awaitingPong >= this.heartbeatMs &&
        now - this.lastHeard >= this.heartbeatMs
      ) {
        // No pong one heartbeat late, and nothing else heard for as long: the link is dead even if
        // the socket has not noticed (§7). A pong held up by loss while frames still arrive is not.
        // A close handshake cannot finish on a dead link, so do not wait for it: reconnect now.
        hooks.dead("no pong");
        return;
      }
      if (this.awaitingPong === null && now - lastPing >= this.heartbeatMs) {
        lastPing = now;
        this.awaitingPong = now;
        hooks.ping(this.nextPing++);
      }
    }, Math.max(100, this.heartbeatMs / 10));
  }

  /** While a knock waits: `silent` runs when the server has said nothing for two heartbeats. */
  waiting(heartbeatMs: number, silent: () => void): void {
    this.clearWait();
    this.waitTimer = setTimeout(() => {
      this.waitTimer = null;
      silent();
    }, 2 * heartbeatMs);
  }

  /** Stops the wait timer (the welcome came). */
  clearWait(): void {
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
  }

  /** Stops every timer (the link is gone). */
  stop(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.awaitingPong = null;
    this.clearWait();
  }
}
