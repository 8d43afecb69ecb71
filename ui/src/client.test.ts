import { describe, expect, it } from "vitest";
import { backoff } from "./client";

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
