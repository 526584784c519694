// The emission schedule (docs/rewards.md, Schedule): epochs and what each emits. Pure bigint
// fixed point; the only float (the retention f) was computed once in rewardsConfig.
//
// Exact definition (GRID micro-units, every division floors):
//
//   f     = the configured retention, an integer of 10^18
//   P(k)  = f^k in 10^36 fixed point by exponentiation by squaring, scanning k's bits from the
//           lowest: result = 10^36, base = f · 10^18; for each bit: if set,
//           result = ⌊result·base/10^36⌋; then base = ⌊base·base/10^36⌋. (P(0) = 10^36.)
//   S     = ⌊E0 · 10^18 / (10^18 − f)⌋          the whole infinite schedule, E0 / (1 − f)
//   T(k)  = ⌊S · P(k) / 10^36⌋                    what the infinite schedule has left after k epochs
//   raw(n)= T(n) − T(n+1)                         ≈ E0 · f^n (within 2 micro-units, tested)
//   emittedThrough(n) = min(S − T(n+1), allocation)       (0 for n < 0)
//   E(n)  = emittedThrough(n) − emittedThrough(n − 1)
//
// So Σ E(0..n) = emittedThrough(n) exactly and in O(log n), and the schedule never emits more
// than the genesis allocation (the epoch that would cross it emits what is left, later epochs
// nothing). E(n) is the difference of two floors rather than ⌊E0 · f^n⌋ itself: a sum of floors
// has no closed form, a telescoping difference does. It is non-increasing while consecutive
// emissions differ by at least 2 micro-units (E0 · (1 − f) · f^n ≥ 2, i.e. while E(n) ≥
// 2 / (1 − f) micro ≈ 0.14 GRID for the defaults, decades after the allocation runs out); past
// that it may step up by one micro-unit. The powers carry 36 decimals although f has 18: T
// multiplies P by S ≈ E0 / (1 − f), so P's rounding (a few units per squaring) is scaled up by
// 1 / (1 − f); at 10^18 a slow decay with short epochs (1 − f ≈ 10⁻⁹) would make that noise as
// large as the step between consecutive emissions. With no decay (f = 10^18), E(n) = E0 until the
// allocation is spent.
import { FIXED_ONE, type RewardsConfig } from './config.ts';

/** One in the powers' fixed point: 10^36. */
export const POW_ONE = 10n ** 36n;

/** f^k (f an integer of 10^18) as an integer of 10^36, exponentiation by squaring, flooring at every multiplication (see above). */
export function powFixed(f: bigint, k: number): bigint {
  if (!Number.isSafeInteger(k) || k < 0) throw new RangeError('the exponent must be a non-negative integer');
  let result = POW_ONE;
  let base = f * FIXED_ONE;
  let e = k;
  while (e > 0) {
    if (e % 2 === 1) result = (result * base) / POW_ONE;
    base = (base * base) / POW_ONE;
    e = Math.floor(e / 2);
  }
  return result;
}

/** The epoch containing tMs: ⌊(t − start) / len⌋, or −1 before the start. */
export function epochOf(config: RewardsConfig, tMs: number): number {
  if (tMs < config.startMs) return -1;
  return Math.floor((tMs - config.startMs) / config.epochMs);
}

/** Epoch n covers [startMs, endMs). */
export function epochBounds(config: RewardsConfig, n: number): { startMs: number; endMs: number } {
  return { startMs: config.startMs + n * config.epochMs, endMs: config.startMs + (n + 1) * config.epochMs };
}

/** S = ⌊E0 · 10^18 / (10^18 − f)⌋: the infinite schedule's total, before the allocation's cap; null when f = 10^18 (no decay). */
export function scheduleTotal(config: RewardsConfig): bigint | null {
  if (config.retention >= FIXED_ONE) return null;
  return (config.initialPerEpoch * FIXED_ONE) / (FIXED_ONE - config.retention);
}

/** Σ E(0..n) before the allocation's cap. */
function rawThrough(config: RewardsConfig, n: number): bigint {
  const total = scheduleTotal(config);
  if (total === null) return BigInt(n + 1) * config.initialPerEpoch;
  return total - (total * powFixed(config.retention, n + 1)) / POW_ONE;
}

/** Σ E(0..n), exactly, in O(log n); 0 for n < 0; never above the allocation. */
export function emittedThrough(config: RewardsConfig, n: number): bigint {
  if (!Number.isSafeInteger(n)) throw new RangeError('the epoch must be an integer');
  if (n < 0) return 0n;
  const raw = rawThrough(config, n);
  return raw < config.allocation ? raw : config.allocation;
}

/** E(n), GRID micro-units: emittedThrough(n) − emittedThrough(n − 1); 0 for n < 0. */
export function emission(config: RewardsConfig, n: number): bigint {
  if (n < 0) return 0n;
  return emittedThrough(config, n) - emittedThrough(config, n - 1);
}
