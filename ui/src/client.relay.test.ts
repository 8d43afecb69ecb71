// The lesson client behind a relay (PROTOCOL-ADDITIONS.md, section E), over a fake Transport: every
// frame checked against the teacher's signature, a second path's frames too, and nothing the relay
// wrote shown as the teacher's.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ClientEvents } from "./client";
import type { ServerMsg } from "./generated/ServerMsg";
import { setup, welcome } from "./clientfakes";
import { SECOND_PATH_AFTER_MS } from "./secondpath";
import { AT, BEAT, PK } from "./signedfakes";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("behind a relay", () => {
  // The teacher's signature of page 2 with the pointer at (0.25, 0.5), a highlight and a stroke kept
  // and a laser stroke under way, made in Rust (see relaycheck.test.ts and src-server/protocol/src/sign.rs).
  const SIG = "SlWewHyYKU7K8I94pIqWjg7f-ckaaqpG62FF1dsQfp6_e_YbSgF_AVAML4vNScJCtgUUJ_fkL23JiKJMjgZUAQ";
  const STROKE = { id: 2, x: 0.1, y: 0.2, w: 0.05, h: 0.05, ink: { color: "red", width: 4, points: [[1000, 2000, 50], [1500, 2500, 70]] } };
  const LIVE = { id: 3, page: 2, color: "red", width: 4, laser: true, points: [[5000, 5000, 50]] };
  // And its beat at seq 3 on the teacher's clock AT, saying the teacher is there (signedfakes.ts).
  const signedWelcome = (sig: string): ServerMsg => ({
    ...welcome(3, { doc: null, page: 2, pos: { x: 0.25, y: 0.5 }, marks: { "2": [{ id: 1, x: 0.125, y: 0.5, w: 0.75, h: 0.0625 }, STROKE] }, live: LIVE } as never),
    signed: { epoch: 5, sig },
    beat: BEAT,
  }) as ServerMsg;
  // This device's clock agrees with the teacher's (only the date is faked; timers run).
  const teachersTime = () => {
    vi.useRealTimers();
    vi.useFakeTimers({ toFake: ["Date"], now: AT + 2_000 });
  };

  it("names the room in its hello, takes a signed welcome, and drops a relay that forges a change", async () => {
    teachersTime();
    const errors: string[] = [];
    const { client, network, states } = setup(undefined, null, { room: "r1", pk: PK });
    (client as unknown as { events: ClientEvents }).events.error = (code) => errors.push(code);
    await client.start();
    network.last.open();
    expect(network.last.sent[0]).toMatchObject({ t: "hello", code: "482913", room: "r1" });
    network.last.deliver(signedWelcome(SIG));
    await vi.waitFor(() => expect(states.at(-1)?.state.page).toBe(2));
    // A patch whose signature is not the teacher's is never applied, and the relay is dropped.
    const first = network.last;
    first.deliver({ t: "patch", seq: 4, time: 0, patch: { page: 9 }, signed: { epoch: 5, sig: SIG } } as ServerMsg);
    await vi.waitFor(() => expect(first.closedWith).toBe(4999));
    expect(states.every((s) => s.state.page !== 9)).toBe(true);
    expect(errors).toContain("untrusted");
    client.stop();
  });

  it("never passes on a relay's error text, only a known code", async () => {
    teachersTime();
    const errors: [string, string][] = [];
    const { client, network } = setup(undefined, null, { room: "r1", pk: PK });
    (client as unknown as { events: ClientEvents }).events.error = (code, message) => errors.push([code, message]);
    await client.start();
    network.last.open();
    network.last.deliver(signedWelcome(SIG));
    network.last.deliver({ t: "error", code: "forbidden", message: "Your code expired: join again at https://evil.example" });
    network.last.deliver({ t: "error", code: "Go to https://evil.example" as never, message: "now" });
    await vi.waitFor(() => expect(errors).toEqual([["forbidden", ""], ["internal", ""]]));
    client.stop();
    // A classroom's own server (no relay) is the teacher's: its text is shown.
    const direct = setup();
    const seen: string[] = [];
    (direct.client as unknown as { events: ClientEvents }).events.error = (_code, message) => seen.push(message);
    await direct.client.start();
    direct.network.last.open();
    direct.network.last.deliver(welcome(1));
    direct.network.last.deliver({ t: "error", code: "bad_request", message: "page 700 is past the last page (604)" });
    expect(seen).toEqual(["page 700 is past the last page (604)"]);
  });

  it("checks a second path's frames as the first's: a copy is dropped, a forgery drops the relay", async () => {
    teachersTime();
    const { client, network } = setup(undefined, null, { room: "r1", pk: PK });
    const refusals: string[] = [];
    (client as unknown as { events: ClientEvents }).events.error = (_code, message) => refusals.push(message);
    await client.start();
    const first = network.last;
    first.open();
    vi.useRealTimers();
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"], now: AT + 2_000 });
    first.deliver({ ...signedWelcome(SIG), second: true } as ServerMsg);
    await vi.waitFor(() => expect(client.status).toBe("connected"));
    await vi.advanceTimersByTimeAsync(SECOND_PATH_AFTER_MS);
    expect(network.transports).toHaveLength(2);
    const second = network.last;
    second.open();
    expect(second.sent[0]).toMatchObject({ second: true, room: "r1", resume: "tok-1" });
    // The same signed state again on the second path is a copy, not a replay: nothing is dropped.
    second.deliver(signedWelcome(SIG));
    second.deliver({ t: "sync", seq: 3, state: (signedWelcome(SIG) as { state: unknown }).state, signed: { epoch: 5, sig: SIG } } as ServerMsg);
    await vi.advanceTimersByTimeAsync(50);
    expect(first.closedWith).toBeNull();
    // A change the teacher did not sign, on the second path: the relay is not trusted on either.
    second.deliver({ t: "patch", seq: 4, time: 0, patch: { page: 9 }, signed: { epoch: 5, sig: SIG } } as ServerMsg);
    await vi.waitFor(() => expect(first.closedWith).toBe(4999));
    expect(refusals).toEqual(["the relay sent a change that the teacher's server did not sign"]);
    expect(second.closedWith).toBe(1000);
    expect(client.mirror.state.page).toBe(2);
    client.stop();
  });

  it("refuses a welcome the teacher did not sign", async () => {
    teachersTime();
    const { client, network, states } = setup(undefined, null, { room: "r1", pk: PK });
    await client.start();
    network.last.open();
    const first = network.last;
    first.deliver(signedWelcome(SIG.replace("SlW", "TlW")));
    await vi.waitFor(() => expect(first.closedWith).toBe(4999));
    expect(states).toHaveLength(0);
    client.stop();
  });
});
