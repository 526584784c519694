import { parseAmount } from './amount.ts';
import type { PricingConfig } from './quote.ts';

/** Reads GRID_USD_RATE and GRID_DISCOUNT_BPS; a misconfiguration fails loudly, never prices at zero. */
export function pricingConfig(env: { GRID_USD_RATE: string; GRID_DISCOUNT_BPS: string }): PricingConfig {
  const rate = parseAmount(env.GRID_USD_RATE);
  const bps = /^[0-9]{1,4}$/.test(env.GRID_DISCOUNT_BPS) ? BigInt(env.GRID_DISCOUNT_BPS) : -1n;
  if (!rate.ok) throw new Error(`GRID_USD_RATE must be a positive decimal, got "${env.GRID_USD_RATE}"`);
  if (bps < 0n || bps >= 10_000n) throw new Error(`GRID_DISCOUNT_BPS must be 0–9999, got "${env.GRID_DISCOUNT_BPS}"`);
  return { gridUsdRate: rate.value, gridDiscountBps: bps };
}
