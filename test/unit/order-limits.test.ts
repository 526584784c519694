import { describe, expect, it } from 'vitest';
import { DEFAULT_ORDER_MAX_OPEN, DEFAULT_ORDER_MIN_VALUE, orderLimits, orderValue, orderValueProblem } from '../../src/auth/order-limits.ts';

describe('order limits', () => {
  it('read ORDER_MIN_VALUE as a decimal USD amount and ORDER_MAX_OPEN as a positive count, else the defaults', () => {
    expect(orderLimits({ ORDER_MIN_VALUE: '0.25', ORDER_MAX_OPEN: '7' })).toEqual({ minValue: 250_000n, maxOpen: 7 });
    expect(orderLimits({ ORDER_MAX_OPEN: 'off' })).toEqual({ minValue: DEFAULT_ORDER_MIN_VALUE, maxOpen: null });
    for (const bad of [{}, { ORDER_MIN_VALUE: '', ORDER_MAX_OPEN: '' }, { ORDER_MIN_VALUE: '1e3', ORDER_MAX_OPEN: '-1' }, { ORDER_MIN_VALUE: '-1', ORDER_MAX_OPEN: '1.5' }]) {
      expect(orderLimits(bad)).toEqual({ minValue: DEFAULT_ORDER_MIN_VALUE, maxOpen: DEFAULT_ORDER_MAX_OPEN });
    }
  });

  it("value a buy at its maximum cost in USD (rounded up) and a sell at its GPUs' hour", () => {
    expect(orderValue({ side: 'buy', price: 2_500_000n, gpus: 2, durationS: 3600 })).toBe(5_000_000n);
    expect(orderValue({ side: 'buy', price: 50_000n, gpus: 1, durationS: 60 })).toBe(834n);
    expect(orderValue({ side: 'sell', price: 500n, gpus: 2 })).toBe(1_000n);
  });

  it('refuse an order worth less than the least value, in words, and accept one worth exactly that', () => {
    const limits = { minValue: 1_000n, maxOpen: 10 };
    expect(orderValueProblem({ side: 'buy', price: 50_000n, gpus: 1, durationS: 60 }, limits)).toBe(
      'the order is worth 0.000834 USD (price × gpus × duration_s); the least accepted is 0.001',
    );
    expect(orderValueProblem({ side: 'sell', price: 499n, gpus: 2 }, limits)).toMatch(/0\.000998 USD \(price × gpus per hour\)/);
    expect(orderValueProblem({ side: 'buy', price: 60_000n, gpus: 1, durationS: 60 }, limits)).toBeNull();
    expect(orderValueProblem({ side: 'sell', price: 500n, gpus: 2 }, limits)).toBeNull();
  });
});
