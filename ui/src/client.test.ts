// The lesson client over a fake Transport: hello, welcome, patches in order, resync on a gap,
// reconnect and resume, offline queues, stop codes, dead-link detection. No browser, no server.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LessonClient, backoff } from "./client";
import { retryable, stopText } from "./reconnect";
import { emptyState } from "./lesson";
import { FakeNetwork, doc, setup, welcome } from "./clientfakes";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("reconnect backoff", () => {
  it("tries at once, then grows with jitter and never waits more than 5 s", () => {
    expect(backoff(0)).toBe(0);
    expect(backoff(1, () => 0)).toBe(125);
    expect(backoff(1, () => 1)).toBe(250);
    for (let a = 1; a < 40; a++) {
      for (const r of [0, 0.5, 0.999]) expect(backoff(a, () => r)).toBeLessThanOrEqual(5000);
    }
    expect(backoff(30, () => 0)).toBe(2500);
  });
});

describe("LessonClient over a Transport", () => {
  it("says hello with the code, mirrors the lesson, resyncs on a gap and resumes after a drop", async () => {
    const { client, network, saved, states, statuses } = setup();
    await client.start();
    const first = network.last;
    expect(first.url).toBeUndefined(); // the platform's default: this server's /v1/ws
    first.open();
    expect(first.sent).toEqual([{ t: "hello", v: 1, role: "student", code: "482913", name: "Aisha", device: "student-tab-0007", partial_sync: true }]);

    first.deliver(welcome(10, { page: 3 }));
    expect(client.status).toBe("connected");
    expect(client.token).toBe("tok-1");
    expect(saved).toEqual(["tok-1"]);
    expect(states.at(-1)).toMatchObject({ seq: 10, patch: false, state: { page: 3 } });

    first.deliver({ t: "patch", seq: 11, time: 0, patch: { page: 4 } });
    expect(states.at(-1)).toMatchObject({ seq: 11, patch: true, state: { page: 4 } });
    first.deliver({ t: "patch", seq: 11, time: 0, patch: { page: 9 } }); // stale: ignored
    expect(client.mirror.state.page).toBe(4);

    // A gap asks for one snapshot, however many patches arrive before it.
    first.deliver({ t: "patch", seq: 13, time: 0, patch: { page: 6 } });
    first.deliver({ t: "patch", seq: 14, time: 0, patch: { page: 7 } });
    expect(first.sent.filter((m) => m.t === "resync")).toEqual([{ t: "resync" }]);
    expect(client.mirror.state.page).toBe(4);
    first.deliver({ t: "sync", seq: 14, state: { ...emptyState(), doc, page: 7 } });
    expect(states.at(-1)).toMatchObject({ seq: 14, patch: false, state: { page: 7 } });

    // The link drops: the client says so, reconnects at once and resumes with its token.
    first.serverClose(1006);
    expect(statuses.at(-1)?.status).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(0);
    expect(network.transports).toHaveLength(2);
    const second = network.last;
    second.open();
    expect(second.sent).toEqual([{ t: "hello", v: 1, role: "student", resume: "tok-1", device: "student-tab-0007", partial_sync: true }]);
    // Frames from the dead connection no longer count.
    first.deliver({ t: "patch", seq: 15, time: 0, patch: { page: 99 } });
    expect(client.mirror.seq).toBe(14);
    second.deliver(welcome(20, { page: 8 }));
    expect(statuses.at(-1)?.status).toBe("connected");
    expect(client.mirror.state.page).toBe(8);
  });

  it("resumes with a stored token from the start", async () => {
    const { client, network } = setup({ role: "teacher", key: "k".repeat(32) }, "tok-9");
    await client.start();
    network.last.open();
    expect(network.last.sent[0]).toEqual({ t: "hello", v: 1, role: "teacher", resume: "tok-9", device: "student-tab-0007", partial_sync: true });
  });

  it("queues acks, hands and views while offline and sends only the latest of each once welcomed", async () => {
    const { client, network } = setup();
    await client.start();
    client.ack(3);
    client.ack(5);
    await vi.advanceTimersByTimeAsync(100); // the ack throttle lets the later one through
    client.hand(true);
    client.hand(false);
    client.view(12);
    const t = network.last;
    t.open();
    expect(t.sent.map((m) => m.t)).toEqual(["hello"]);
    t.deliver(welcome(5));
    expect(t.sent.slice(1)).toEqual([{ t: "ack", seq: 5 }, { t: "hand", up: false }, { t: "view", page: 12 }]);
  });

  it("sends acks at most ten a second, cumulatively", async () => {
    const { client, network } = setup();
    await client.start();
    const t = network.last;
    t.open();
    t.deliver(welcome(1));
    client.ack(2);
    client.ack(3);
    client.ack(4);
    client.ack(4);
    expect(t.sent.filter((m) => m.t === "ack")).toEqual([{ t: "ack", seq: 2 }]);
    await vi.advanceTimersByTimeAsync(100);
    expect(t.sent.filter((m) => m.t === "ack")).toEqual([{ t: "ack", seq: 2 }, { t: "ack", seq: 4 }]);
  });

  it("sends typed teacher requests with fresh ids", async () => {
    const { client, network } = setup({ role: "teacher", key: "k".repeat(32) });
    await client.start();
    const t = network.last;
    t.open();
    expect(t.sent[0]).toEqual({ t: "hello", v: 1, role: "teacher", key: "k".repeat(32), device: "student-tab-0007", partial_sync: true });
    t.deliver(welcome(1));
    const a = client.set({ page: 2, highlight: null });
    const b = client.request({ t: "kick", who: "p7" });
    const c = client.request({ t: "end" });
    expect(new Set([a, b, c]).size).toBe(3);
    expect(t.sent.slice(1)).toEqual([
      { t: "set", id: a, patch: { page: 2, highlight: null } },
      { t: "kick", id: b, who: "p7" },
      { t: "end", id: c },
    ]);
  });

  it("forgets a stale token and tries the code again; stops and forgets it when kicked", async () => {
    const { client, network, statuses, token } = setup(undefined, "old-token");
    await client.start();
    network.last.open();
    network.last.serverClose(4001);
    expect(token()).toBeNull();
    const again = network.last;
    expect(network.transports).toHaveLength(2);
    again.open();
    expect(again.sent[0]).toMatchObject({ t: "hello", code: "482913" });
    again.deliver(welcome(1, {}, "new-token"));
    expect(token()).toBe("new-token");
    again.serverClose(4003);
    expect(statuses.at(-1)).toEqual({ status: "stopped", stop: "kicked" });
    expect(token()).toBeNull();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(network.transports).toHaveLength(2);
  });

  it("stops on a bad code without a token, and on a replaced connection", async () => {
    const bad = setup();
    await bad.client.start();
    bad.network.last.serverClose(4001);
    expect(bad.statuses.at(-1)).toEqual({ status: "stopped", stop: "credentials" });
    const replaced = setup();
    await replaced.client.start();
    replaced.network.last.open();
    replaced.network.last.deliver(welcome(1));
    replaced.network.last.serverClose(4409);
    expect(replaced.statuses.at(-1)).toEqual({ status: "stopped", stop: "replaced" });
    expect(replaced.token()).toBe("tok-1"); // kept: only an end or a kick revokes it
  });

  it("stops on a certificate the app's bridge refused, and tells a relay's bad certificate from another class", async () => {
    const { client, network, statuses } = setup();
    await client.start();
    network.last.serverClose(1015, "expired");
    expect(statuses.at(-1)).toEqual({ status: "stopped", stop: "untrusted", reason: "expired" });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(network.transports.length).toBe(1); // not retried behind "reconnecting": the page offers "try again"
    // A link that pins the fingerprint: another machine answered. One checked by name: say what is wrong.
    expect(stopText("untrusted", "expired", true)).toContain("does not match");
    expect(stopText("untrusted", "expired", false)).toContain("has expired");
    expect(stopText("untrusted", "not_yet_valid", false)).toContain("date and time");
    expect(retryable("untrusted", false) && !retryable("untrusted", true) && !retryable("kicked", false)).toBe(true);
    // Only a known key chooses a sentence: text a peer wrote is never shown.
    const forged = stopText("untrusted", "Your class moved: https://evil.example", false);
    expect(forged).not.toContain("evil");
    expect(forged).toBe(stopText("untrusted", "invalid", false));
  });

  it("treats a missing pong as a dead link and reconnects without waiting for the close", async () => {
    const { client, network } = setup();
    await client.start();
    const t = network.last;
    t.open();
    t.deliver(welcome(1));
    await vi.advanceTimersByTimeAsync(10_000);
    const ping = t.sent.find((m) => m.t === "ping");
    expect(ping).toBeDefined();
    t.deliver({ t: "pong", id: ping && "id" in ping ? ping.id : null, time: 0 });
    await vi.advanceTimersByTimeAsync(10_000); // the next ping goes out, and no pong comes
    expect(t.sent.filter((m) => m.t === "ping")).toHaveLength(2);
    expect(network.transports).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.closedWith).toBe(4999);
    expect(network.transports.length).toBeGreaterThanOrEqual(2);
    expect(client.status).toBe("reconnecting");
  });

  it("tells a lossy link from a dead one: a late pong while patches arrive is loss; silence is death within two heartbeats", async () => {
    const { client, network } = setup();
    await client.start();
    const t = network.last;
    t.open();
    t.deliver(welcome(1));
    // A ping goes out at 10 s; its pong is held up by loss, but patches keep arriving.
    for (let i = 0; i < 16; i++) {
      await vi.advanceTimersByTimeAsync(2_500);
      t.deliver({ t: "patch", seq: 2 + i, time: 0, patch: { page: 2 + (i % 5) } });
    }
    expect(t.closedWith).toBeNull();
    expect(network.transports).toHaveLength(1);
    // Then nothing at all: the link is declared dead within two heartbeats of the last frame.
    await vi.advanceTimersByTimeAsync(20_000);
    expect(t.closedWith).toBe(4999);
    expect(client.status).toBe("reconnecting");
  });

  it("says offline while the network is down and retries at once when it is back", async () => {
    const { client, network, statuses } = setup();
    await client.start();
    network.last.open();
    network.last.deliver(welcome(1));
    for (let i = 0; i < 4; i++) {
      network.up = false;
      network.last.serverClose(1006);
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(statuses.at(-1)?.status).toBe("offline");
    const before = network.transports.length;
    network.comeBack();
    expect(network.transports).toHaveLength(before + 1);
    expect(client.status).toBe("reconnecting");
  });

  it("stops for good: closes with 1000, ignores the close that follows, never reconnects", async () => {
    const { client, network, statuses, token } = setup();
    await client.start();
    const t = network.last;
    t.open();
    t.deliver(welcome(1));
    client.stop();
    expect(t.closedWith).toBe(1000);
    t.serverClose(1000);
    expect(statuses.at(-1)).toEqual({ status: "stopped", stop: undefined });
    expect(token()).toBe("tok-1");
    network.comeBack();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(network.transports).toHaveLength(1);
  });
});

describe("asking to join without a code", () => {
  it("knocks, says it waits, joins once let in, and knocks again if the link dies while waiting", async () => {
    const { client, network, statuses } = setup({ role: "student", code: null, name: "Aisha" });
    await client.start();
    network.last.open();
    expect(network.last.sent).toEqual([{ t: "hello", v: 1, role: "student", knock: true, name: "Aisha", device: "student-tab-0007", partial_sync: true }]);
    network.last.deliver({ t: "waiting", heartbeat_ms: 1000 });
    expect(client.status).toBe("waiting");
    // The server repeats `waiting` every heartbeat; the client keeps waiting as long as it hears it.
    await vi.advanceTimersByTimeAsync(1500);
    network.last.deliver({ t: "waiting", heartbeat_ms: 1000 });
    await vi.advanceTimersByTimeAsync(1500);
    expect(network.transports).toHaveLength(1);
    // Two heartbeats of silence: the link is dead; it reconnects and knocks again.
    await vi.advanceTimersByTimeAsync(600);
    expect(network.transports[0].closedWith).toBe(4999);
    expect(statuses.map((s) => s.status)).toContain("reconnecting");
    expect(network.transports).toHaveLength(2);
    network.last.open();
    expect(network.last.sent[0]).toMatchObject({ knock: true, name: "Aisha" });
    network.last.deliver({ t: "waiting", heartbeat_ms: 1000 });
    network.last.deliver(welcome(3));
    expect(client.status).toBe("connected");
    // Once in, no wait timer is left to kill a live link.
    await vi.advanceTimersByTimeAsync(5000);
    expect(network.transports).toHaveLength(2);
  });

  it("stops with 'denied' when the teacher turns the knock away", async () => {
    const { client, network, statuses } = setup({ role: "student", code: null, name: "Aisha" });
    await client.start();
    network.last.open();
    network.last.deliver({ t: "waiting", heartbeat_ms: 10000 });
    network.last.serverClose(4003);
    expect(statuses.at(-1)).toEqual({ status: "stopped", stop: "denied" });
    expect(client.status).toBe("stopped");
  });

  it("lets a teacher see who waits and let them in", async () => {
    const seen: string[][] = [];
    const network = new FakeNetwork();
    const client = new LessonClient(
      {
        network,
        device: "teacher-device",
        credentials: { role: "teacher", key: "k" },
        tokens: { load: async () => null, save: async () => {} },
      },
      { state: () => {}, status: () => {}, knocks: (list) => seen.push(list.map((k) => k.name)) },
    );
    await client.start();
    network.last.open();
    network.last.deliver(welcome(1));
    network.last.deliver({ t: "knocks", knocks: [{ id: "k1", name: "Aisha", device: "dev-00001" }] });
    expect(seen).toEqual([["Aisha"]]);
    const id = client.request({ t: "admit", knocks: ["k1"] });
    expect(network.last.sent.at(-1)).toEqual({ t: "admit", knocks: ["k1"], id });
  });
});
