// Public market data on the wire: prices, volumes and changes as exact decimal strings, and the
// time window a candle request covers. Pure: no Workers imports, no I/O, no clock (`now` is
// passed in).
import { MICRO, formatAmount } from '../money/amount.ts';

const SECONDS_PER_HOUR = 3600n;

/** Candles a request returns when it names no window: the last this many intervals. */
export const DEFAULT_CANDLE_INTERVALS = 500;

/** A price in micro-USD per GPU-hour as a decimal string: 2350000 → "2.35". */
export function wirePrice(micro: number): string {
  return formatAmount(BigInt(micro));
}

export function wirePriceOrNull(micro: number | null): string | null {
  return micro === null ? null : wirePrice(micro);
}

/**
 * GPU-seconds as GPU-hours with at most 6 decimals (half up): 5400 → "1.50".
 * Integer arithmetic throughout, so large volumes lose nothing to floats.
 */
export function gpuHours(gpuSeconds: number): string {
  const micro = (BigInt(gpuSeconds) * MICRO + SECONDS_PER_HOUR / 2n) / SECONDS_PER_HOUR;
  return formatAmount(micro);
}

export interface PriceChange {
  /** last − reference as a signed decimal string. */
  change: string | null;
  /** The change as a percentage of the reference, rounded half away from zero to 2 decimals. */
  pct: number | null;
}

export function priceChange(last: number | null, reference: number | null): PriceChange {
  if (last === null || reference === null) return { change: null, pct: null };
  const diff = BigInt(last) - BigInt(reference);
  const ref = BigInt(reference);
  if (ref <= 0n) return { change: formatAmount(diff), pct: null };
  // Hundredths of a percent: diff / ref × 10,000, rounded in integers before becoming a number.
  const scaled = diff * 10_000n;
  const magnitude = ((scaled < 0n ? -scaled : scaled) * 2n + ref) / (2n * ref);
  const hundredths = scaled < 0n ? -magnitude : magnitude;
  return { change: formatAmount(diff), pct: Number(hundredths) / 100 };
}

export type CandleWindow = { ok: true; from: number; to: number } | { ok: false; problem: 'from_not_before_to' };

/**
 * The [from, to) window of a candle request. Without `to` it ends with the interval now is in
 * (so the candle still forming is included); without `from` it starts DEFAULT_CANDLE_INTERVALS
 * intervals before `to`.
 */
export function candleWindow(intervalMs: number, from: number | undefined, to: number | undefined, now: number): CandleWindow {
  const end = to ?? (Math.floor(now / intervalMs) + 1) * intervalMs;
  const start = from ?? end - DEFAULT_CANDLE_INTERVALS * intervalMs;
  if (start >= end) return { ok: false, problem: 'from_not_before_to' };
  return { ok: true, from: start, to: end };
}
