export interface BackoffOptions {
  /** First ceiling, ms (default 1 s). */
  baseMs?: number;
  /** Largest ceiling, ms (default 60 s). */
  maxMs?: number;
  /** Uniform [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * Exponential back-off with full jitter: the n-th consecutive failure waits a uniform random
 * time in [0, min(max, base * 2^n)). `reset()` after a success starts over.
 */
export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 1_000;
    this.maxMs = Math.max(options.maxMs ?? 60_000, this.baseMs);
    this.random = options.random ?? Math.random;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.attempt;
  }

  /** The ceiling for the next delay. */
  ceilingMs(): number {
    // 2^attempt overflows nothing: the exponent stops growing once the cap is reached.
    const exp = Math.min(this.attempt, 30);
    return Math.min(this.maxMs, this.baseMs * 2 ** exp);
  }

  /** Records a failure and returns how long to wait before the next try. */
  next(): number {
    const delay = Math.floor(this.random() * this.ceilingMs());
    this.attempt++;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** `base` ± `fraction` (default ±10 %), so a fleet of runners does not heartbeat in lockstep. */
export function jitter(baseMs: number, random: () => number = Math.random, fraction = 0.1): number {
  return Math.round(baseMs * (1 - fraction + 2 * fraction * random()));
}

/** Retry-After as delta-seconds or an HTTP date; null when absent or unparseable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
