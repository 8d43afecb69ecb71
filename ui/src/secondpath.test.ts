// A student's second path (PROTOCOL-ADDITIONS N) over fake Transports: opened when the welcome offers
// it, each change taken from whichever path brings it first, copies dropped unread (never refused as
// a replay), nothing sent on it but its hello, and closed with the first path.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerMsg } from "./generated/ServerMsg";
import { emptyState } from "./lesson";
import { doc, setup, welcome } from "./clientfakes";
import { SECOND_PATH_AFTER_MS, SECOND_PATH_RETRY_MS, isCopy } from "./secondpath";

/** A welcome that offers a second path. */
const offering = (seq: number, page = 1): ServerMsg => ({ ...welcome(seq, { page }), second: true }) as ServerMsg;

const patch = (seq: number, page: number): ServerMsg => ({ t: "patch", seq, time: 0, patch: { page } });

/** A student whose server offers a second path, once both paths are open (the second's welcome
 * not yet delivered). */
async function twoPaths() {
  const { client, network } = setup();
  await client.start();
  const first = network.last;
  first.open();
  first.deliver(offering(10));
  await vi.advanceTimersByTimeAsync(SECOND_PATH_AFTER_MS);
  const second = network.last;
  second.open();
  return { client, network, first, second };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("a second path", () => {
  it("is opened when the welcome offers one, and each change is taken once, from the first path to bring it", async () => {
    const { client, network, states } = setup();
    await client.start();
    const first = network.last;
    first.open();
    first.deliver(offering(10));
    // Not at once: the first page comes first.
    expect(network.transports).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(SECOND_PATH_AFTER_MS);
    expect(network.transports).toHaveLength(2);
    const second = network.last;
    second.open();
    expect(second.sent).toEqual([{ t: "hello", v: 1, role: "student", resume: "tok-1", device: "student-tab-0007", second: true, partial_sync: true }]);
    second.deliver(offering(10));
    expect(client.secondPath).toBe(true);
    const shown = states.length;

    // The second path brings 11 first (the first path lost a packet): it is shown, once.
    second.deliver(patch(11, 4));
    first.deliver(patch(11, 4));
    first.deliver(patch(12, 5));
    second.deliver(patch(12, 5));
    expect(states.slice(shown).map((s) => s.seq)).toEqual([11, 12]);
    expect(client.mirror.state.page).toBe(5);

    // The slower path's snapshot is older than the lesson shown: dropped, nothing asked again.
    first.deliver({ t: "sync", seq: 11, state: { ...emptyState(), doc, page: 4 } });
    expect(client.mirror.state.page).toBe(5);
    expect(first.sent.filter((m) => m.t === "resync")).toEqual([]);

    // What the student says goes on the first path only.
    client.ack(12);
    client.hand(true);
    expect(first.sent.map((m) => m.t).filter((t) => t !== "ping")).toEqual(["hello", "ack", "hand"]);
    expect(second.sent.map((m) => m.t)).toEqual(["hello"]);
    client.stop();
    expect(second.closedWith).toBe(1000);
  });

  it("is not opened when the server offers none", async () => {
    const { client, network } = setup();
    await client.start();
    network.last.open();
    network.last.deliver(welcome(10));
    await vi.advanceTimersByTimeAsync(SECOND_PATH_AFTER_MS);
    expect(network.transports).toHaveLength(1);
    client.stop();
  });

  it("closes with the first path and opens again with its next welcome", async () => {
    const { client, network, first, second } = await twoPaths();
    first.serverClose(1006);
    expect(second.closedWith).toBe(1000);
    await vi.advanceTimersByTimeAsync(0);
    const again = network.last;
    expect(again).not.toBe(second);
    again.open();
    expect(again.sent[0]).toMatchObject({ resume: "tok-1" });
    expect(again.sent[0]).not.toHaveProperty("second");
    again.deliver(offering(12));
    await vi.advanceTimersByTimeAsync(SECOND_PATH_AFTER_MS);
    expect(network.transports).toHaveLength(4);
    network.last.open();
    expect(network.last.sent[0]).toMatchObject({ second: true, resume: "tok-1" });
    client.stop();
  });

  it("is tried again a while after a drop, but not after the server refused it", async () => {
    const { client, network, first, second } = await twoPaths();
    second.serverClose(1006);
    first.deliver({ t: "pong", id: 1, time: 0 }); // (the fake server answers the first path's pings by hand)
    await vi.advanceTimersByTimeAsync(SECOND_PATH_RETRY_MS);
    expect(network.transports).toHaveLength(3);
    const retried = network.last;
    retried.open();
    retried.serverClose(4029); // too many second paths this minute
    for (let i = 0; i < 4; i++) {
      first.deliver({ t: "pong", id: 1, time: 0 });
      await vi.advanceTimersByTimeAsync(SECOND_PATH_RETRY_MS / 2);
    }
    expect(network.transports).toHaveLength(3);
    expect(client.status).toBe("connected");
    client.stop();
  });

  it("is tried again three times, sooner, when a relay behind a balancer has not its student (4400)", async () => {
    const { client, network, first, second } = await twoPaths();
    const pong = () => first.deliver({ t: "pong", id: 1, time: 0 });
    // Three relays in turn refuse it: it is opened again 1, 2 and 4 s later, then no more.
    let refusing = second;
    for (const wait of [1000, 2000, 4000]) {
      refusing.serverClose(4400, "a second path needs its student online: resume on the first one, then open it");
      const before = network.transports.length;
      pong();
      await vi.advanceTimersByTimeAsync(wait - 1);
      expect(network.transports).toHaveLength(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(network.transports).toHaveLength(before + 1);
      refusing = network.last;
      refusing.open();
    }
    refusing.serverClose(4400);
    for (let i = 0; i < 6; i++) {
      pong();
      await vi.advanceTimersByTimeAsync(SECOND_PATH_RETRY_MS / 2);
    }
    expect(network.transports).toHaveLength(5);
    // The next welcome (a reconnect) starts the count again; a try that reaches the student's own
    // relay is a second path.
    first.serverClose(1006);
    await vi.advanceTimersByTimeAsync(0);
    const again = network.last;
    again.open();
    again.deliver({ ...welcome(10), second: true } as ServerMsg);
    await vi.advanceTimersByTimeAsync(SECOND_PATH_AFTER_MS);
    network.last.open();
    network.last.serverClose(4400);
    again.deliver({ t: "pong", id: 1, time: 0 });
    await vi.advanceTimersByTimeAsync(1000);
    const found = network.last;
    found.open();
    found.deliver({ ...welcome(10), second: true } as ServerMsg);
    expect(client.secondPath).toBe(true);
    client.stop();
  });

  it("is opened again when it answers no ping for two heartbeats, and a gap on it asks for nothing", async () => {
    const { client, network, first, second } = await twoPaths();
    second.deliver(offering(10));
    // A patch past the next one on the second path: the first path brings those between.
    second.deliver(patch(13, 9));
    expect(client.mirror.seq).toBe(10);
    expect(first.sent.filter((m) => m.t === "resync")).toEqual([]);
    // The second path goes quiet (half open): pinged, unanswered, dropped and opened again.
    for (let i = 0; i < 3; i++) {
      first.deliver({ t: "pong", id: 1, time: 0 });
      await vi.advanceTimersByTimeAsync(10_000);
    }
    expect(second.sent.some((m) => m.t === "ping")).toBe(true);
    expect(second.closedWith).toBe(4999);
    first.deliver({ t: "pong", id: 1, time: 0 });
    await vi.advanceTimersByTimeAsync(SECOND_PATH_RETRY_MS);
    expect(network.last).not.toBe(second);
    expect(network.last.url).toBe(first.url);
    client.stop();
  });
});

describe("a copy", () => {
  const sync = (seq: number, epoch?: number): ServerMsg =>
    ({ t: "sync", seq, state: emptyState(), ...(epoch === undefined ? {} : { signed: { epoch, sig: "" } }) }) as ServerMsg;
  it("is a patch or snapshot of the epoch followed, at or before the seq shown", () => {
    expect(isCopy(sync(5), 5, null)).toBe(true);
    expect(isCopy(sync(4, 7), 5, 7)).toBe(true);
    expect(isCopy(sync(6, 7), 5, 7)).toBe(false);
    // The teacher's server began a new epoch, perhaps at the same seq: never a copy.
    expect(isCopy(sync(5, 8), 5, 7)).toBe(false);
    expect(isCopy({ t: "beat", seq: 1, n: 1, at: 0, teacher: true, signed: { epoch: 7, sig: "" } } as ServerMsg, 5, 7)).toBe(false);
  });
});
