/** A sliding-window log: exact, and small because `limit` is small (tens). */
export interface SlidingWindow {
  hits: number[];
}

export interface WindowDecision {
  allowed: boolean;
  remaining: number;
  /** When the caller may try again; 0 when allowed. */
  retryAfterMs: number;
  window: SlidingWindow;
}

export function takeSlot(window: SlidingWindow, opts: { limit: number; windowMs: number; now: number }): WindowDecision {
  const since = opts.now - opts.windowMs;
  const hits = window.hits.filter((t) => t > since);
  if (hits.length >= opts.limit) {
    return { allowed: false, remaining: 0, retryAfterMs: hits[0]! + opts.windowMs - opts.now, window: { hits } };
  }
  hits.push(opts.now);
  return { allowed: true, remaining: opts.limit - hits.length, retryAfterMs: 0, window: { hits } };
}

/** Parses a limit written as `count/seconds`, e.g. `10/60`. */
export function parseRate(text: string | undefined, fallback: { limit: number; windowMs: number }) {
  const m = text ? /^(\d+)\/(\d+)$/.exec(text.trim()) : null;
  if (!m) return fallback;
  return { limit: Number(m[1]), windowMs: Number(m[2]) * 1000 };
}

/** As parseRate, but `off` turns the limit off (benchmarks, a trusted deployment): null. */
export function parseLimit(text: string | undefined, fallback: { limit: number; windowMs: number }) {
  return text?.trim().toLowerCase() === 'off' ? null : parseRate(text, fallback);
}

/**
 * A sliding-window counter: the count of the current fixed window plus the previous window's,
 * weighted by how much of it the sliding window still covers. Constant size whatever the
 * limit (a log of thousands of hits would be rewritten on every hit), at the price of being
 * approximate: it assumes the previous window's hits were spread evenly.
 */
export interface WindowCounter {
  /** Start of the current fixed window (ms, a multiple of the window's length). */
  start: number;
  current: number;
  previous: number;
}

export interface CounterDecision {
  allowed: boolean;
  retryAfterMs: number;
  counter: WindowCounter;
}

export function takeCount(counter: WindowCounter | undefined, opts: { limit: number; windowMs: number; now: number }): CounterDecision {
  const { limit, windowMs, now } = opts;
  const start = Math.floor(now / windowMs) * windowMs;
  let c: WindowCounter;
  if (!counter || counter.start > start) c = { start, current: 0, previous: 0 };
  else if (counter.start === start) c = { ...counter };
  else c = { start, current: 0, previous: counter.start === start - windowMs ? counter.current : 0 };
  // In whole milliseconds, so the decision and the wait agree exactly: the estimate
  // previous × (1 − d / window) + current, times the window, against limit × window.
  const d = now - start;
  if (c.previous * (windowMs - d) + c.current * windowMs >= limit * windowMs) {
    // Free once the estimate falls below the limit: within this window as the previous one's
    // share slides out, or else in the next, where this window's count is the one sliding out.
    const within = limit > c.current && c.previous > 0 ? windowMs - Math.ceil(((limit - c.current) * windowMs) / c.previous) + 1 : Infinity;
    const next = Math.max(0, windowMs - Math.ceil((limit * windowMs) / c.current) + 1);
    const wait = within < windowMs ? start + within - now : start + windowMs + next - now;
    return { allowed: false, retryAfterMs: Math.max(1, wait), counter: c };
  }
  c.current += 1;
  return { allowed: true, retryAfterMs: 0, counter: c };
}
