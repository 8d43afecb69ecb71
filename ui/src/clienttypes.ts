// What the lesson client is made of and tells its page: its options, the credentials of a first
// hello, where its resume token is kept, and the events it raises. The client is in `client.ts`.
import type { KnockEntry } from "./generated/KnockEntry";
import type { LessonState } from "./generated/LessonState";
import type { Patch } from "./generated/Patch";
import type { RosterEntry } from "./generated/RosterEntry";
import type { ServerMsg } from "./generated/ServerMsg";
import type { Network } from "./platform/contract";
import type { StopReason } from "./reconnect";

/** The connection as a person should see it. */
export type LinkStatus = "connecting" | "waiting" | "connected" | "reconnecting" | "offline" | "stopped";

/** What the client tells its page. */
export interface ClientEvents {
  /** The state changed (a welcome, a sync or a patch); `patch` is set for a patch. */
  state(state: LessonState, seq: number, patch?: Patch): void;
  /** The connection status changed; a stop carries the close frame's reason, as the server or the
   * app's bridge gave it. */
  status(status: LinkStatus, detail: { lastSync: number | null; stop?: StopReason; reason?: string; attempt: number }): void;
  /** A welcome arrived: who we are, the room, and (teacher) the roster. */
  welcome?(msg: Extract<ServerMsg, { t: "welcome" }>): void;
  /** Roster changes (teacher). */
  roster?(changes: RosterEntry[]): void;
  /** Everyone waiting to be let in, whenever the list changes (teacher). */
  knocks?(list: KnockEntry[]): void;
  /** The teacher went on or off line. */
  teacher?(online: boolean): void;
  /** Someone is trying wrong join codes (teacher): how many, and whether code joins now wait. */
  guessing?(wrong: number, waitingRoom: boolean): void;
  /** The waiting room is on or off (teacher; after the welcome, and whenever it changes). */
  waitingRoom?(on: boolean): void;
  /** An error frame from the server. */
  error?(code: string, message: string, id?: number | null): void;
  /** A request with an id was answered `ok`. */
  ok?(id: number, seq: number | null): void;
}

/**
 * How to say hello the first time (a resume token replaces code or key once we have one). A student
 * without a code (`null`) knocks and waits for the teacher to let it in.
 */
export type Credentials =
  | { role: "student"; code: string | null; name: string }
  | { role: "teacher"; key: string };

/** Where the client keeps its resume token, so that it survives a reload. */
export interface TokenStore {
  load(): Promise<string | null>;
  save(token: string | null): Promise<void>;
}

/** What a client is made of. */
export interface ClientOptions {
  /** Opens connections and says when the network comes back. */
  network: Pick<Network, "connect" | "online" | "onOnline">;
  /** The lesson's WebSocket URL; the network's default when absent. */
  url?: string;
  /** This device's id (§3). */
  device: string;
  credentials: Credentials;
  tokens: TokenStore;
  /** Joining through a relay (PROTOCOL-ADDITIONS.md, section E): the room on the teacher's server,
   * and the teacher's public key every state must be signed with. */
  relay?: { room: string; pk: string };
}
