// Vesting of supply rewards (docs/rewards.md, Vesting). Pure bigint.
import { PPM, type RewardsConfig } from './config.ts';

/** immediate = ⌊amount · REWARDS_IMMEDIATE_PPM / 10^6⌋, vesting = the rest; negative amounts count as 0. */
export function vestingSplit(config: RewardsConfig, amount: bigint): { immediate: bigint; vesting: bigint } {
  const a = amount > 0n ? amount : 0n;
  const immediate = (a * BigInt(config.immediatePpm)) / BigInt(PPM);
  return { immediate, vesting: a - immediate };
}

/**
 * How much of `vesting` is released by tMs: ⌊vesting · min(1, (t − end) / duration)⌋ with times
 * in whole milliseconds (floored); 0 up to the epoch's end, all of it from end + duration on (at
 * once at the end when the duration is 0). Non-decreasing in t.
 */
export function releasedBy(config: RewardsConfig, vesting: bigint, epochEndMs: number, tMs: number): bigint {
  if (vesting <= 0n) return 0n;
  const elapsed = Math.floor(tMs) - Math.floor(epochEndMs);
  if (config.vestingMs <= 0) return elapsed >= 0 ? vesting : 0n;
  if (elapsed <= 0) return 0n;
  if (elapsed >= config.vestingMs) return vesting;
  return (vesting * BigInt(elapsed)) / BigInt(config.vestingMs);
}
