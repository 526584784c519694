import { MICRO } from './amount.ts';
import type { Asset } from './assets.ts';

/** Basis points: 10,000 = 100%. */
export const BPS = 10_000n;

export interface PricingConfig {
  /** USD value of one GRID, in micro-USD (e.g. 250_000n = $0.25). */
  gridUsdRate: bigint;
  /** Discount for paying in GRID, in basis points (1_000n = 10%). */
  gridDiscountBps: bigint;
}

/**
 * What `usd` micro-USD costs when paid in `asset`. USD and USDC are 1:1; GRID converts
 * at the configured rate after the discount. Rounded up to the micro-unit, so the platform
 * never receives less than the discounted price.
 */
export function quote(usd: bigint, asset: Asset, config: PricingConfig): bigint {
  if (asset !== 'GRID') return usd;
  const discounted = usd * (BPS - config.gridDiscountBps);
  const divisor = BPS * config.gridUsdRate;
  return ceilDiv(discounted * MICRO, divisor);
}

export function ceilDiv(a: bigint, b: bigint): bigint {
  if (b <= 0n) throw new RangeError('divisor must be positive');
  if (a <= 0n) return -((-a) / b);
  return (a + b - 1n) / b;
}
