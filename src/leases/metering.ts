// Metering: which seconds of a lease are billable. Pure: no Workers imports, no I/O, no clock.
//
// A lease is billed only for time that heartbeats confirm: each heartbeat listing the lease as
// running (and the runner's `started` report) is a confirmation point; the time between two
// consecutive points counts when they are at most the grace period apart, and a longer gap
// counts for nothing. Points are kept as merged spans (runs of points no more than `grace`
// apart), so adding a point twice, or out of order, changes nothing, and a month-long lease
// needs a handful of spans rather than every heartbeat.
//
// Money is computed once from the total: price × gpus × confirmed ms / 3,600,000, rounded down
// (never a sum of rounded pieces), in the lease's asset at the rate locked when it was bought.

export type Span = [start: number, end: number];

/** Adds a confirmation point; returns the new sorted, merged spans. */
export function addPoint(spans: readonly Span[], point: number, graceMs: number): Span[] {
  const out: Span[] = [];
  let merged: [number, number] = [point, point];
  for (const s of spans) {
    if (s[1] + graceMs < merged[0] || merged[1] + graceMs < s[0]) out.push(s);
    else merged = [Math.min(merged[0], s[0]), Math.max(merged[1], s[1])];
  }
  out.push(merged);
  return out.sort((a, b) => a[0] - b[0]);
}

/** Confirmed milliseconds within [from, to). */
export function confirmedMs(spans: readonly Span[], from: number, to: number): number {
  let total = 0;
  for (const [a, b] of spans) {
    const start = Math.max(a, from);
    const end = Math.min(b, to);
    if (end > start) total += end - start;
  }
  return total;
}

/** The last confirmation point, or null. */
export function lastPoint(spans: readonly Span[]): number | null {
  return spans.length === 0 ? null : spans[spans.length - 1]![1];
}

export interface Rate {
  /** Micro-USD per GPU-hour. */
  price: number;
  gpus: number;
  asset: 'USD' | 'USDC' | 'GRID';
  /** The GRID rate (micro-USD per GRID) and discount (bps) locked at purchase. */
  gridUsdRate: bigint;
  gridDiscountBps: bigint;
}

const MS_PER_HOUR = 3_600_000n;
const BPS = 10_000n;
const MICRO = 1_000_000n;

/** What `ms` confirmed milliseconds cost in the lease's asset, rounded down once. */
export function billFor(rate: Rate, ms: number): bigint {
  const usdNumerator = BigInt(rate.price) * BigInt(rate.gpus) * BigInt(Math.max(0, Math.floor(ms)));
  if (rate.asset !== 'GRID') return usdNumerator / MS_PER_HOUR;
  return (usdNumerator * (BPS - rate.gridDiscountBps) * MICRO) / (MS_PER_HOUR * BPS * rate.gridUsdRate);
}

/** The platform fee on a cumulative billed amount, rounded down once. */
export function feeFor(billed: bigint, feeBps: bigint): bigint {
  return (billed * feeBps) / BPS;
}
