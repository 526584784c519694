// Pure display helpers: no DOM, no clock. Prices stay decimal strings until Intl formats them.
import type { Candle } from './market.ts';

export interface Formats {
  price: Intl.NumberFormat;
  change: Intl.NumberFormat;
  percent: Intl.NumberFormat;
}

const built = new Map<string, Formats>();

/**
 * Number formats for a locale, built once per page and locale: the first currency format costs
 * tens of milliseconds (the browser loads its locale data), so widgets ask only when they have a
 * price to show. An invalid locale falls back to the browser's default.
 */
export function formatsFor(locale: string | undefined): Formats {
  const key = locale || '';
  let f = built.get(key);
  if (!f) {
    const make = (loc: string | undefined): Formats => ({
      price: new Intl.NumberFormat(loc, { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 6 }),
      change: new Intl.NumberFormat(loc, { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 6, signDisplay: 'exceptZero' }),
      percent: new Intl.NumberFormat(loc, { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 2, signDisplay: 'exceptZero' }),
    });
    try {
      f = make(key || undefined);
    } catch {
      f = make(undefined);
    }
    built.set(key, f);
  }
  return f;
}

// Intl formats a numeric string exactly (no float rounding) where supported (ES2023).
const asNumber = (decimal: string) => decimal as unknown as number;

export function formatPrice(f: Formats, decimal: string | null): string {
  return decimal === null ? '—' : f.price.format(asNumber(decimal));
}

export type Direction = 'up' | 'down' | 'flat';

export function direction(change: string | null): Direction {
  if (change === null || /^-?0*(\.0*)?$/.test(change)) return 'flat';
  return change.startsWith('-') ? 'down' : 'up';
}

/** "+$0.05 (+2.1%)"; "—" when there is no price 24 hours ago to compare with. */
export function formatChange(f: Formats, change: string | null, pct: number | null): string {
  if (change === null) return '—';
  const money = f.change.format(asNumber(change));
  return pct === null ? money : `${money} (${f.percent.format(pct / 100)})`;
}

/**
 * An SVG path through the closes of the candles inside [from, to), scaled to width × height with
 * the highest close at the top, held flat to the right edge (the price stands until the next
 * trade). Empty when no candle falls inside.
 */
export function sparklinePath(candles: readonly Candle[], from: number, to: number, width: number, height: number): string {
  const points = candles
    .map((k) => ({ t: Date.parse(k.start), v: Number(k.close) }))
    .filter((p) => p.t >= from && p.t < to && Number.isFinite(p.v))
    .sort((a, b) => a.t - b.t);
  if (points.length === 0) return '';
  const vs = points.map((p) => p.v);
  const lo = Math.min(...vs);
  const span = Math.max(...vs) - lo;
  const pad = 2;
  const x = (t: number) => ((t - from) / (to - from)) * width;
  const y = (v: number) => (span === 0 ? height / 2 : pad + (1 - (v - lo) / span) * (height - 2 * pad));
  const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)} ${y(p.v).toFixed(1)}`).join('');
  return `${line}L${width} ${y(points[points.length - 1]!.v).toFixed(1)}`;
}
