// Supply rewards' configuration (docs/rewards.md). Pure: the environment's strings come in,
// integers go out. Unset or invalid values fall back to the defaults. The only float in the
// rewards rules is `retentionFor`, evaluated once here; everything downstream is bigint.
import { MICRO, parseAmount } from '../money/amount.ts';

export interface RewardsVars {
  REWARDS_START?: string;
  REWARDS_EPOCH_S?: string;
  REWARDS_INITIAL_PER_EPOCH?: string;
  REWARDS_DECAY_PER_YEAR?: string;
  REWARDS_ALLOCATION_PPM?: string;
  REWARDS_MIN_UPTIME_PPM?: string;
  REWARDS_LEASE_BONUS_PPM?: string;
  REWARDS_STAKE_BONUS_PPM?: string;
  REWARDS_STAKE_PER_GPU?: string;
  REWARDS_TAPER_FLOOR_PPM?: string;
  REWARDS_TAPER_FULL_UTIL_PPM?: string;
  REWARDS_OWNER_CAP_PPM?: string;
  REWARDS_IMMEDIATE_PPM?: string;
  REWARDS_VESTING_S?: string;
  REWARDS_CLOSE_CHUNK?: string;
  GRID_TOTAL_SUPPLY?: string;
}

export interface RewardsConfig {
  /** Epoch 0 starts here (Unix ms). */
  startMs: number;
  epochMs: number;
  /** E0, GRID micro-units. */
  initialPerEpoch: bigint;
  /** The per-epoch retention f as an integer of 10^18 (10^18 = no decay). */
  retention: bigint;
  /** The rewards pool's genesis allocation, GRID micro-units: the most the schedule ever emits. */
  allocation: bigint;
  minUptimePpm: number;
  leaseBonusPpm: number;
  stakeBonusPpm: number;
  /** GRID micro-units of stake per offered GPU for the full stake bonus (> 0). */
  stakePerGpu: bigint;
  taperFloorPpm: number;
  /** Paid utilisation at which the taper reaches zero before the floor (> 0). */
  taperFullUtilPpm: number;
  ownerCapPpm: number;
  immediatePpm: number;
  vestingMs: number;
  closeChunk: number;
}

/** 10^18: fixed-point one for the retention and its powers. */
export const FIXED_ONE = 10n ** 18n;
export const PPM = 1_000_000;
/** The year the decay rate is quoted per: 365 days. */
export const YEAR_MS = 365 * 86_400_000;

export const REWARDS_DEFAULTS = {
  start: '2026-12-01T00:00:00Z',
  epochS: 3_600,
  initialPerEpoch: 6_000n * MICRO,
  decayPerYear: 0.12,
  allocationPpm: 400_000,
  totalSupply: 1_000_000_000n,
  minUptimePpm: 950_000,
  leaseBonusPpm: 500_000,
  stakeBonusPpm: 250_000,
  stakePerGpu: 200n * MICRO,
  taperFloorPpm: 200_000,
  taperFullUtilPpm: 800_000,
  ownerCapPpm: 100_000,
  immediatePpm: 250_000,
  vestingS: 90 * 86_400,
  closeChunk: 500,
} as const;

/**
 * The per-epoch retention f = (1 − decayPerYear)^(epochMs / YEAR_MS) as an integer of 10^18.
 *
 * This is the one float computation of the rewards rules, done once at configuration time, and
 * the result is published as the integer (GET /v1/rewards/schedule), so nobody recomputing an
 * epoch needs floats. It is evaluated as 10^18 − round(g · 10^18) with
 * g = −expm1(log1p(−decay) · epochMs / YEAR_MS), the per-epoch decay: g is small (≈ 1.46·10⁻⁵ for
 * the defaults), so its double has ~16 significant digits and g · 10^18 is accurate to well under
 * one unit; computing (1 − d)^x directly would lose the last ~2 decimal digits of f to the
 * spacing of doubles near 1. Math.expm1/log1p are not required to be correctly rounded, so two
 * engines could in principle disagree by a unit in the last place: hence the published integer.
 * decayPerYear must be in [0, 1); 0 gives exactly 10^18.
 */
export function retentionFor(decayPerYear: number, epochMs: number): bigint {
  if (!(decayPerYear >= 0 && decayPerYear < 1) || !(epochMs > 0)) throw new RangeError('decay must be in [0, 1) and the epoch positive');
  if (decayPerYear === 0) return FIXED_ONE;
  const g = -Math.expm1(Math.log1p(-decayPerYear) * (epochMs / YEAR_MS));
  const cut = BigInt(Math.round(g * 1e18));
  const f = FIXED_ONE - cut;
  return f < 0n ? 0n : f > FIXED_ONE ? FIXED_ONE : f;
}

function integer(text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined || !/^[0-9]{1,15}$/.test(text.trim())) return fallback;
  const value = Number(text.trim());
  return value >= min && value <= max ? value : fallback;
}

function grid(text: string | undefined, fallback: bigint): bigint {
  const parsed = parseAmount((text ?? '').trim());
  return parsed.ok ? parsed.value : fallback;
}

function decay(text: string | undefined): number {
  // A plain decimal in [0, 1): "0.12", "0", ".5" is not accepted.
  if (text === undefined || !/^0(\.[0-9]{1,12})?$/.test(text.trim())) return REWARDS_DEFAULTS.decayPerYear;
  return Number(text.trim());
}

function start(text: string | undefined): number {
  const fallback = Date.parse(REWARDS_DEFAULTS.start);
  // ISO 8601 date-time with an explicit zone, so the start does not depend on the host's zone.
  if (text === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(text.trim())) return fallback;
  const ms = Date.parse(text.trim());
  return Number.isFinite(ms) ? ms : fallback;
}

/** The rewards configuration from the environment; unset or invalid values fall back to docs/rewards.md's defaults. */
export function rewardsConfig(env: RewardsVars): RewardsConfig {
  const d = REWARDS_DEFAULTS;
  const epochS = integer(env.REWARDS_EPOCH_S, d.epochS, 60, 366 * 86_400);
  const epochMs = epochS * 1000;
  const supplyText = env.GRID_TOTAL_SUPPLY?.trim();
  const supply = supplyText !== undefined && /^[1-9][0-9]{0,14}$/.test(supplyText) ? BigInt(supplyText) : d.totalSupply;
  const allocationPpm = integer(env.REWARDS_ALLOCATION_PPM, d.allocationPpm, 0, PPM);
  return {
    startMs: start(env.REWARDS_START),
    epochMs,
    initialPerEpoch: grid(env.REWARDS_INITIAL_PER_EPOCH, d.initialPerEpoch),
    retention: retentionFor(decay(env.REWARDS_DECAY_PER_YEAR), epochMs),
    allocation: (supply * MICRO * BigInt(allocationPpm)) / BigInt(PPM),
    minUptimePpm: integer(env.REWARDS_MIN_UPTIME_PPM, d.minUptimePpm, 0, PPM),
    leaseBonusPpm: integer(env.REWARDS_LEASE_BONUS_PPM, d.leaseBonusPpm, 0, 10 * PPM),
    stakeBonusPpm: integer(env.REWARDS_STAKE_BONUS_PPM, d.stakeBonusPpm, 0, 10 * PPM),
    stakePerGpu: grid(env.REWARDS_STAKE_PER_GPU, d.stakePerGpu),
    taperFloorPpm: integer(env.REWARDS_TAPER_FLOOR_PPM, d.taperFloorPpm, 0, PPM),
    taperFullUtilPpm: integer(env.REWARDS_TAPER_FULL_UTIL_PPM, d.taperFullUtilPpm, 1, PPM),
    ownerCapPpm: integer(env.REWARDS_OWNER_CAP_PPM, d.ownerCapPpm, 0, PPM),
    immediatePpm: integer(env.REWARDS_IMMEDIATE_PPM, d.immediatePpm, 0, PPM),
    vestingMs: integer(env.REWARDS_VESTING_S, d.vestingS, 0, 10 * 366 * 86_400) * 1000,
    closeChunk: integer(env.REWARDS_CLOSE_CHUNK, d.closeChunk, 1, 10_000),
  };
}

/**
 * An epoch closes this long after its end: heartbeat roll-ups of its last minutes reach
 * node_metrics_minute within HEARTBEAT_FLUSH_S and the queue's delivery.
 */
export const CLOSE_DELAY_MS = 120_000;

/**
 * A run's limits. The each-minute cron's runs should not overlap (they would only share the work),
 * and a Worker has a subrequest limit per invocation: a step is about two libSQL requests.
 */
export const DEFAULT_CLOSE_BUDGET_S = 40;
export const DEFAULT_CLOSE_MAX_STEPS = 200;
