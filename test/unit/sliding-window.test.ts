import { describe, expect, it } from 'vitest';
import { parseLimit, parseRate, takeSlot, type SlidingWindow } from '../../src/auth/sliding-window.ts';

describe('sliding-window rate limit', () => {
  it('allows `limit` hits per window, then refuses with the time until a slot frees', () => {
    let window: SlidingWindow = { hits: [] };
    const rate = { limit: 3, windowMs: 60_000 };
    for (const now of [1000, 2000, 3000]) {
      const d = takeSlot(window, { ...rate, now });
      expect(d.allowed).toBe(true);
      window = d.window;
    }
    const refused = takeSlot(window, { ...rate, now: 4000 });
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 57_000 });
    // Refused attempts do not extend the window.
    expect(refused.window.hits).toEqual([1000, 2000, 3000]);
    const later = takeSlot(refused.window, { ...rate, now: 61_001 });
    expect(later).toMatchObject({ allowed: true, remaining: 0 });
    expect(later.window.hits).toEqual([2000, 3000, 61_001]);
  });

  it('parses "count/seconds" and falls back on anything else', () => {
    const fallback = { limit: 1, windowMs: 1000 };
    expect(parseRate('10/60', fallback)).toEqual({ limit: 10, windowMs: 60_000 });
    expect(parseRate('ten per minute', fallback)).toBe(fallback);
    expect(parseRate(undefined, fallback)).toBe(fallback);
  });

  it('turns a limit off only when it says "off"', () => {
    const fallback = { limit: 1, windowMs: 1000 };
    expect(parseLimit('off', fallback)).toBeNull();
    expect(parseLimit(' OFF ', fallback)).toBeNull();
    expect(parseLimit('10/60', fallback)).toEqual({ limit: 10, windowMs: 60_000 });
    expect(parseLimit('', fallback)).toBe(fallback);
    expect(parseLimit('of', fallback)).toBe(fallback);
  });
});
