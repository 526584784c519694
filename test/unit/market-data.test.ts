import { describe, expect, it } from 'vitest';
import { DEFAULT_CANDLE_INTERVALS, candleWindow, gpuHours, priceChange, wirePrice, wirePriceOrNull } from '../../src/market/market-data.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;

describe('wire prices', () => {
  it('formats micro-USD per GPU-hour as a decimal string, and absence as null', () => {
    expect(wirePrice(2_350_000)).toBe('2.35');
    expect(wirePrice(1)).toBe('0.000001');
    expect(wirePriceOrNull(2_000_000)).toBe('2.00');
    expect(wirePriceOrNull(null)).toBeNull();
  });
});

describe('gpuHours', () => {
  it('turns GPU-seconds into GPU-hours exactly where 6 decimals can hold it', () => {
    expect(gpuHours(0)).toBe('0.00');
    expect(gpuHours(3600)).toBe('1.00');
    expect(gpuHours(5400)).toBe('1.50');
    expect(gpuHours(18)).toBe('0.005');
    expect(gpuHours(9)).toBe('0.0025');
  });

  it('rounds the rest half up at the sixth decimal', () => {
    expect(gpuHours(1)).toBe('0.000278');
    expect(gpuHours(3601)).toBe('1.000278');
    expect(gpuHours(7)).toBe('0.001944');
  });

  it('loses nothing on volumes past float precision once multiplied', () => {
    // 2^53 − 1 GPU-seconds: × 1e6 would not survive number arithmetic.
    expect(gpuHours(Number.MAX_SAFE_INTEGER)).toBe('2501999792983.608611');
  });
});

describe('priceChange', () => {
  it('gives the signed difference as a decimal string and the percentage to 2 decimals', () => {
    expect(priceChange(2_450_000, 2_400_000)).toEqual({ change: '0.05', pct: 2.08 });
    expect(priceChange(2_350_000, 2_400_000)).toEqual({ change: '-0.05', pct: -2.08 });
    expect(priceChange(2_000_000, 2_000_000)).toEqual({ change: '0.00', pct: 0 });
    expect(priceChange(4_000_000, 2_000_000)).toEqual({ change: '2.00', pct: 100 });
  });

  it('rounds a percentage exactly half way away from zero', () => {
    // 100 / 2,000,000 = 0.005 %
    expect(priceChange(2_000_100, 2_000_000).pct).toBe(0.01);
    expect(priceChange(1_999_900, 2_000_000).pct).toBe(-0.01);
    expect(priceChange(2_000_099, 2_000_000).pct).toBe(0);
  });

  it('is null when either price is missing, and has no percentage of a zero reference', () => {
    expect(priceChange(null, 2_000_000)).toEqual({ change: null, pct: null });
    expect(priceChange(2_000_000, null)).toEqual({ change: null, pct: null });
    expect(priceChange(null, null)).toEqual({ change: null, pct: null });
    expect(priceChange(1_000_000, 0)).toEqual({ change: '1.00', pct: null });
  });
});

describe('candleWindow', () => {
  const now = Date.UTC(2025, 0, 1, 10, 30, 15);

  it('defaults to the last 500 intervals, ending with the one now is in', () => {
    expect(DEFAULT_CANDLE_INTERVALS).toBe(500);
    const end = Date.UTC(2025, 0, 1, 11);
    expect(candleWindow(HOUR, undefined, undefined, now)).toEqual({ ok: true, from: end - 500 * HOUR, to: end });
    const minuteEnd = Date.UTC(2025, 0, 1, 10, 31);
    expect(candleWindow(MINUTE, undefined, undefined, now)).toEqual({ ok: true, from: minuteEnd - 500 * MINUTE, to: minuteEnd });
  });

  it('includes a candle that starts exactly now', () => {
    const onTheHour = Date.UTC(2025, 0, 1, 10);
    expect(candleWindow(HOUR, undefined, undefined, onTheHour)).toMatchObject({ to: onTheHour + HOUR });
  });

  it('keeps a given bound and fills in the other', () => {
    const from = Date.UTC(2024, 11, 31);
    expect(candleWindow(HOUR, from, undefined, now)).toEqual({ ok: true, from, to: Date.UTC(2025, 0, 1, 11) });
    const to = Date.UTC(2024, 11, 31);
    expect(candleWindow(HOUR, undefined, to, now)).toEqual({ ok: true, from: to - 500 * HOUR, to });
    expect(candleWindow(HOUR, from, from + 1, now)).toEqual({ ok: true, from, to: from + 1 });
  });

  it('refuses a window whose start is not before its end', () => {
    expect(candleWindow(HOUR, now, now, now)).toEqual({ ok: false, problem: 'from_not_before_to' });
    expect(candleWindow(HOUR, now + 1, now, now)).toEqual({ ok: false, problem: 'from_not_before_to' });
    expect(candleWindow(HOUR, now + 2 * HOUR, undefined, now)).toEqual({ ok: false, problem: 'from_not_before_to' });
  });
});
