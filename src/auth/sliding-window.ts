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
