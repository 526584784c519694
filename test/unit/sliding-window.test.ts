import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseLimit, parseRate, takeCount, takeSlot, type SlidingWindow, type WindowCounter } from '../../src/auth/sliding-window.ts';

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

describe('sliding-window counter (large limits)', () => {
  const rate = { limit: 100, windowMs: 60_000 };

  it('allows `limit` hits in a fresh window, then refuses until the window has slid far enough', () => {
    let counter: WindowCounter | undefined;
    for (let i = 0; i < 100; i++) {
      const d = takeCount(counter, { ...rate, now: 60_000 + i });
      expect(d.allowed).toBe(true);
      counter = d.counter;
    }
    const refused = takeCount(counter, { ...rate, now: 60_500 });
    expect(refused.allowed).toBe(false);
    // When the current window ends at 120,000 its 100 hits weigh fully; a moment later they
    // weigh less than the limit.
    expect(refused.retryAfterMs).toBe(120_000 - 60_500 + 1);
    expect(refused.counter).toEqual(counter);
    expect(takeCount(counter, { ...rate, now: 120_000 }).allowed).toBe(false);
    expect(takeCount(counter, { ...rate, now: 120_001 }).allowed).toBe(true);
    // Half a window on, half of them still count: 50 more fit.
    let later = counter;
    for (let i = 0; i < 50; i++) {
      const d = takeCount(later, { ...rate, now: 150_000 });
      expect(d.allowed).toBe(true);
      later = d.counter;
    }
    const full = takeCount(later, { ...rate, now: 150_000 });
    expect(full.allowed).toBe(false);
    // Each 600 ms frees one of the previous window's hits.
    expect(full.retryAfterMs).toBe(1);
    expect(takeCount(later, { ...rate, now: 150_600 }).allowed).toBe(true);
    // Two windows on, nothing of it is left.
    expect(takeCount(counter, { ...rate, now: 180_000 }).counter).toEqual({ start: 180_000, current: 1, previous: 0 });
  });

  it('never lets more than twice the limit through in any window, and lets the limit through at a steady pace', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 400 }), fc.integer({ min: 1, max: 50 }), (gaps, limit) => {
        let counter: WindowCounter | undefined;
        let now = 1_000_000;
        const allowed: number[] = [];
        for (const gap of gaps) {
          now += gap;
          const d = takeCount(counter, { limit, windowMs: 60_000, now });
          if (d.allowed) allowed.push(now);
          else {
            // Asked to wait, the caller is let in after exactly that wait, and not a moment before.
            expect(d.retryAfterMs).toBeGreaterThan(0);
            expect(takeCount(d.counter, { limit, windowMs: 60_000, now: now + d.retryAfterMs }).allowed).toBe(true);
            if (d.retryAfterMs > 1) expect(takeCount(d.counter, { limit, windowMs: 60_000, now: now + d.retryAfterMs - 1 }).allowed).toBe(false);
          }
          counter = d.counter;
        }
        for (const t of allowed) expect(allowed.filter((u) => u >= t && u < t + 60_000).length).toBeLessThanOrEqual(2 * limit);
      }),
    );
    // One hit per (window / limit) is always allowed.
    let counter: WindowCounter | undefined;
    for (let i = 0; i < 500; i++) {
      const d = takeCount(counter, { ...rate, now: 1_000_000 + i * 600 });
      expect(d.allowed).toBe(true);
      counter = d.counter;
    }
  });
});
