// Limits that keep one account from filling the books: a least order value, a cap on open
// orders and (with src/auth/rate-limit.ts) a placement rate. Pure: no Workers imports, no I/O.
import { formatAmount, parseAmount } from '../money/amount.ts';
import { costUsd } from '../market/orders.ts';

export interface OrderLimits {
  /** Micro-USD: the least a buy may hold at most (its maximum cost) and a sell may be worth per hour. */
  minValue: bigint;
  /** Open orders one account may have at once, both sides together; null when turned off. */
  maxOpen: number | null;
}

/** About the cheapest real order: one inexpensive GPU for the shortest duration. */
export const DEFAULT_ORDER_MIN_VALUE = 1_000n;
export const DEFAULT_ORDER_MAX_OPEN = 200;

export function orderLimits(env: { ORDER_MIN_VALUE?: string; ORDER_MAX_OPEN?: string }): OrderLimits {
  const min = env.ORDER_MIN_VALUE ? parseAmount(env.ORDER_MIN_VALUE) : null;
  const maxOpen = Number(env.ORDER_MAX_OPEN);
  return {
    minValue: min?.ok ? min.value : DEFAULT_ORDER_MIN_VALUE,
    maxOpen:
      env.ORDER_MAX_OPEN?.trim().toLowerCase() === 'off'
        ? null
        : env.ORDER_MAX_OPEN && Number.isSafeInteger(maxOpen) && maxOpen > 0
          ? maxOpen
          : DEFAULT_ORDER_MAX_OPEN,
  };
}

export type ValuedOrder =
  | { side: 'buy'; price: bigint; gpus: number; durationS: number }
  | { side: 'sell'; price: bigint; gpus: number };

/**
 * What an order is worth in micro-USD for the minimum: a buy, its maximum cost (what it holds,
 * before any GRID discount); a sell, its GPUs for one hour at its price.
 */
export function orderValue(order: ValuedOrder): bigint {
  return order.side === 'buy' ? costUsd(order.price, order.gpus, order.durationS) : order.price * BigInt(order.gpus);
}

/** Why an order is too small to place, in words, or null. */
export function orderValueProblem(order: ValuedOrder, limits: OrderLimits): string | null {
  const value = orderValue(order);
  if (value >= limits.minValue) return null;
  const what = order.side === 'buy' ? 'price × gpus × duration_s' : 'price × gpus per hour';
  return `the order is worth ${formatAmount(value)} USD (${what}); the least accepted is ${formatAmount(limits.minValue)}`;
}
