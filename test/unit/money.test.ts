import { describe, expect, it } from 'vitest';
import { MAX_AMOUNT, formatAmount, parseAmount } from '../../src/money/amount.ts';
import { pricingConfig } from '../../src/money/config.ts';
import { ceilDiv, quote } from '../../src/money/quote.ts';

describe('parseAmount', () => {
  it.each([
    ['2.35', 2_350_000n],
    ['0.000001', 1n],
    ['1000000000', MAX_AMOUNT],
    ['12', 12_000_000n],
    ['0.1', 100_000n],
  ])('reads %s exactly as %s micro-units', (text, micro) => {
    expect(parseAmount(text)).toEqual({ ok: true, value: micro });
  });

  it.each([
    ['1.0000001', 'too_many_decimals'],
    ['1e3', 'not_a_decimal'],
    ['0x10', 'not_a_decimal'],
    ['01.00', 'not_a_decimal'],
    ['.5', 'not_a_decimal'],
    ['5.', 'not_a_decimal'],
    ['', 'not_a_decimal'],
    ['1,000.00', 'not_a_decimal'],
    ['Infinity', 'not_a_decimal'],
    ['-1.00', 'negative'],
    ['0', 'zero'],
    ['0.000000', 'zero'],
    ['1000000000.000001', 'too_large'],
    ['99999999999999999999', 'not_a_decimal'],
  ])('refuses %s (%s)', (text, problem) => {
    expect(parseAmount(text)).toEqual({ ok: false, problem });
  });

  it('allows zero and negatives only when asked', () => {
    expect(parseAmount('0', { allowZero: true })).toEqual({ ok: true, value: 0n });
    expect(parseAmount('-2.5', { allowNegative: true })).toEqual({ ok: true, value: -2_500_000n });
    expect(parseAmount('-0', { allowNegative: true })).toEqual({ ok: false, problem: 'zero' });
  });

  it('round-trips through formatAmount', () => {
    for (const text of ['2.35', '0.000001', '1000000000.00', '-7.123456', '0.00']) {
      const parsed = parseAmount(text, { allowZero: true, allowNegative: true });
      expect(parsed.ok && formatAmount(parsed.value)).toBe(text);
    }
    expect(formatAmount(12_000_000n)).toBe('12.00');
  });
});

describe('quote', () => {
  const config = { gridUsdRate: 250_000n, gridDiscountBps: 1_000n };

  it('charges USD and USDC one to one', () => {
    expect(quote(10_000_000n, 'USD', config)).toBe(10_000_000n);
    expect(quote(10_000_000n, 'USDC', config)).toBe(10_000_000n);
  });

  it('converts to GRID after the discount, rounding up to the micro-unit', () => {
    // $10 at 10% off = $9 = 36 GRID at $0.25.
    expect(quote(10_000_000n, 'GRID', config)).toBe(36_000_000n);
    // $1 at 10% off at $0.30 = 3 GRID exactly; $1 at $0.70 = 1.285714285… → 1.285715.
    expect(quote(1_000_000n, 'GRID', { gridUsdRate: 300_000n, gridDiscountBps: 1_000n })).toBe(3_000_000n);
    expect(quote(1_000_000n, 'GRID', { gridUsdRate: 700_000n, gridDiscountBps: 1_000n })).toBe(1_285_715n);
  });

  it('never undercharges: the GRID paid is worth at least the discounted price', () => {
    for (let usd = 1n; usd < 5_000n; usd += 37n) {
      const grid = quote(usd, 'GRID', { gridUsdRate: 333_333n, gridDiscountBps: 750n });
      // value in micro-USD of the GRID paid, times 10_000 to stay in integers
      expect(grid * 333_333n * 10_000n).toBeGreaterThanOrEqual(usd * (10_000n - 750n) * 1_000_000n);
    }
  });

  it('divides up exactly', () => {
    expect(ceilDiv(10n, 5n)).toBe(2n);
    expect(ceilDiv(11n, 5n)).toBe(3n);
    expect(ceilDiv(0n, 5n)).toBe(0n);
    expect(() => ceilDiv(1n, 0n)).toThrow();
  });

  it('reads its configuration strictly', () => {
    expect(pricingConfig({ GRID_USD_RATE: '0.25', GRID_DISCOUNT_BPS: '1000' })).toEqual(config);
    expect(() => pricingConfig({ GRID_USD_RATE: '0', GRID_DISCOUNT_BPS: '1000' })).toThrow(/GRID_USD_RATE/);
    expect(() => pricingConfig({ GRID_USD_RATE: '0.25', GRID_DISCOUNT_BPS: '10000' })).toThrow(/GRID_DISCOUNT_BPS/);
  });
});
