// Turning pages by keys and swipes, the same on both pages. Arrows follow the reading direction:
// in a right-to-left lesson the right arrow and a swipe to the right go back.

/** How far a swipe must travel, in CSS pixels, to turn a page. */
const SWIPE_PX = 60;

/** The turn a key asks for: 1, -1, or 0 for a key that turns nothing. `space` makes the space bar
 * turn too (the console; a student's space bar is left to the focused button). */
export function keyTurn(key: string, rtl: boolean, space = false): -1 | 0 | 1 {
  if (key === "ArrowRight" || key === "PageDown" || (space && key === " ")) return rtl ? -1 : 1;
  if (key === "ArrowLeft" || key === "PageUp") return rtl ? 1 : -1;
  return 0;
}

/** The turn a horizontal swipe of `dx` pixels asks for: a swipe to the left reads on. */
export function swipeTurn(dx: number, rtl: boolean): -1 | 0 | 1 {
  if (Math.abs(dx) <= SWIPE_PX) return 0;
  return dx < 0 !== rtl ? 1 : -1;
}

function rtl(): boolean {
  return document.dir === "rtl";
}

/** Turns pages with the keyboard, except while typing in a field or while `enabled` says no. */
export function bindPageKeys(
  turn: (delta: number) => void,
  options: { enabled?: () => boolean; space?: boolean } = {},
): void {
  document.addEventListener("keydown", (ev) => {
    if (options.enabled && !options.enabled()) return;
    if (ev.target instanceof Element && ev.target.closest("input, select, textarea")) return;
    const delta = keyTurn(ev.key, rtl(), options.space);
    if (!delta) return;
    turn(delta);
    ev.preventDefault();
  });
}

/** Turns pages with a swipe across `el`; a swipe starts only while `enabled` says yes. */
export function bindSwipe(el: HTMLElement, turn: (delta: number) => void, enabled: () => boolean = () => true): void {
  let from: number | null = null;
  el.addEventListener("pointerdown", (ev) => {
    from = enabled() ? ev.clientX : null;
  });
  el.addEventListener("pointerup", (ev) => {
    if (from === null) return;
    const delta = swipeTurn(ev.clientX - from, rtl());
    from = null;
    if (delta) turn(delta);
  });
}
