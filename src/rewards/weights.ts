// Node weights for supply rewards (docs/rewards.md, Inputs and Weight). Pure integers.
import { GPU_MODELS } from '../catalog/gpus.ts';
import { PPM, type RewardsConfig } from './config.ts';

const REFERENCE_INT8_TOPS = 1513n; // h100-80gb
const REFERENCE_VRAM_GB = 80n;

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (x * x > n) x -= 1n;
  while ((x + 1n) * (x + 1n) <= n) x += 1n;
  return x;
}

/**
 * √(int8Tops / 1,513) · √(vramGb / 80) in parts per million, rounded to the nearest ppm (halves
 * up), computed exactly in integers: with q = int8Tops · vramGb · 10^12 / (1,513 · 80),
 * round(√q) = ⌊(⌊√⌊4q⌋⌋ + 1) / 2⌋. Catalog figures are integers; a fractional one is taken to
 * three decimals.
 */
export function modelWeightFor(int8Tops: number, vramGb: number): number {
  const tops = BigInt(Math.round(int8Tops * 1000));
  const vram = BigInt(Math.round(vramGb * 1000));
  const num = tops * vram * 10n ** 12n;
  const den = REFERENCE_INT8_TOPS * REFERENCE_VRAM_GB * 1_000_000n;
  return Number((isqrt((4n * num) / den) + 1n) / 2n);
}

/** Catalog model id → weight in ppm of an H100-80GB (1,000,000). */
export const MODEL_WEIGHTS_PPM: Record<string, number> = Object.fromEntries(GPU_MODELS.map((m) => [m.id, modelWeightFor(m.int8Tops, m.vramGb)]));

/** The model's weight in ppm; 0 for an unknown model or none. */
export function modelWeightPpm(model: string | null): number {
  if (model === null || !Object.hasOwn(MODEL_WEIGHTS_PPM, model)) return 0;
  return MODEL_WEIGHTS_PPM[model] ?? 0;
}

/** The table, for reports and docs: [model id, ppm], catalog order. */
export function modelWeights(): [string, number][] {
  return GPU_MODELS.map((m) => [m.id, MODEL_WEIGHTS_PPM[m.id] ?? 0]);
}

export interface NodeInputs {
  nodeId: string;
  ownerId: string;
  gpuModel: string | null;
  gpusOffered: number;
  /** Seconds of the epoch with a confirmed heartbeat minute; counted up to the epoch's length. */
  confirmedS: number;
  /** GPU-seconds leased inside the epoch; counted up to gpusOffered · epochS. */
  leasedGpuS: number;
  verified: boolean;
  /** GRID micro-units bonded for the node's GPUs. */
  stake: bigint;
}

const nonNegInt = (x: number) => (Number.isFinite(x) && x > 0 ? Math.floor(x) : 0);

/** confirmedS counted for the weight: at most the epoch's length. */
export const countedConfirmedS = (epochS: number, i: NodeInputs): number => Math.min(nonNegInt(i.confirmedS), epochS);
/** leasedGpuS counted for the weight and the taper: at most gpusOffered · epochS. */
export const countedLeasedGpuS = (epochS: number, i: NodeInputs): number => Math.min(nonNegInt(i.leasedGpuS), nonNegInt(i.gpusOffered) * epochS);

/**
 * Eligible: confirmed uptime ≥ REWARDS_MIN_UPTIME_PPM of the epoch, GPUs offered, verified, and
 * (beyond the doc's three conditions) a catalog model and a weight above 0: an unknown model, no
 * confirmed second (possible when the uptime threshold is 0) or a weight that floors to 0 would
 * only move the taper and publish a line that can take nothing.
 */
export function eligible(config: RewardsConfig, epochS: number, i: NodeInputs): boolean {
  return meetsConditions(config, epochS, i) && rawWeight(config, epochS, i) > 0n;
}

function meetsConditions(config: RewardsConfig, epochS: number, i: NodeInputs): boolean {
  if (!(epochS > 0)) return false;
  return (
    i.verified &&
    nonNegInt(i.gpusOffered) > 0 &&
    modelWeightPpm(i.gpuModel) > 0 &&
    BigInt(countedConfirmedS(epochS, i)) * BigInt(PPM) >= BigInt(config.minUptimePpm) * BigInt(epochS)
  );
}

/**
 * The node's weight (ppm of one H100-80GB for the whole epoch); 0 when not eligible. Exactly
 *
 *   base  = g · mw · c / E
 *   w     = ⌊ base · (1 + LB/10^6 · L / (g·E) + SB/10^6 · min(s, g·K) / (g·K)) ⌋
 *
 * (g GPUs offered, mw the model weight, c confirmed seconds ≤ E, L leased GPU-seconds ≤ g·E, s the
 * stake, K REWARDS_STAKE_PER_GPU), as one bigint fraction floored once.
 */
export function weight(config: RewardsConfig, epochS: number, i: NodeInputs): bigint {
  return meetsConditions(config, epochS, i) ? rawWeight(config, epochS, i) : 0n;
}

function rawWeight(config: RewardsConfig, epochS: number, i: NodeInputs): bigint {
  const g = BigInt(nonNegInt(i.gpusOffered));
  const mw = BigInt(modelWeightPpm(i.gpuModel));
  const c = BigInt(countedConfirmedS(epochS, i));
  const l = BigInt(countedLeasedGpuS(epochS, i));
  const e = BigInt(epochS);
  const m = BigInt(PPM);
  const sd = g * config.stakePerGpu;
  const stake = i.stake > 0n ? i.stake : 0n;
  const sn = stake < sd ? stake : sd;
  const ge = g * e;
  // base · (m·ge·sd + LB·L·sd + SB·sn·ge) / (m·ge·sd)
  const num = g * mw * c * (m * ge * sd + BigInt(config.leaseBonusPpm) * l * sd + BigInt(config.stakeBonusPpm) * sn * ge);
  const den = e * m * ge * sd;
  return num / den;
}
