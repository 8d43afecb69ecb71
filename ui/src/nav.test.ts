// Page turns by keys and swipes, in both reading directions.
import { describe, expect, it } from "vitest";
import { keyTurn, swipeTurn } from "./nav";

describe("keys", () => {
  it("turn with the arrows in the reading direction, and with Page Up/Down", () => {
    expect(keyTurn("ArrowRight", false)).toBe(1);
    expect(keyTurn("ArrowLeft", false)).toBe(-1);
    expect(keyTurn("ArrowRight", true)).toBe(-1);
    expect(keyTurn("ArrowLeft", true)).toBe(1);
    expect(keyTurn("PageDown", false)).toBe(1);
    expect(keyTurn("PageUp", false)).toBe(-1);
    expect(keyTurn("a", false)).toBe(0);
  });
  it("turn with the space bar only where asked", () => {
    expect(keyTurn(" ", false)).toBe(0);
    expect(keyTurn(" ", false, true)).toBe(1);
  });
});

describe("swipes", () => {
  it("read on to the left (to the right in Arabic), and ignore short moves", () => {
    expect(swipeTurn(-100, false)).toBe(1);
    expect(swipeTurn(100, false)).toBe(-1);
    expect(swipeTurn(-100, true)).toBe(-1);
    expect(swipeTurn(100, true)).toBe(1);
    expect(swipeTurn(40, false)).toBe(0);
    expect(swipeTurn(-60, false)).toBe(0);
  });
});
