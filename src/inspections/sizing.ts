// How big a capacity challenge is for a claimed card, how long its prover may take, and what it
// costs each side. Figures come from the catalog (src/catalog/gpus.ts): VRAM and dense INT8 TOPS.
import { GPU_MODELS, type GpuModel } from '../catalog/gpus.ts';
import { MAX_EXACT_N } from './matrices.ts';
import { DEFAULT_LEAF_SIZE, DEFAULT_OPENINGS } from './openings.ts';

/** Share of the claimed VRAM that A + B + C (6n² bytes) fill; the rest is the CUDA context and workspace. */
export const DEFAULT_VRAM_FRACTION = 0.85;
/** n is a multiple of this (a whole number of GEMM tiles and of 1024-entry leaves). */
export const SIZE_STEP = 256;
/** The largest size a challenge uses: MAX_EXACT_N rounded down to SIZE_STEP. */
export const MAX_CAPACITY_N = Math.floor(MAX_EXACT_N / SIZE_STEP) * SIZE_STEP; // 133,120
/** The prover may take this many times the product's time at the card's peak INT8 rate (GEMMs reach roughly 50–90% of peak). */
export const DEFAULT_SLACK = 2;
/** Bytes per second per GPU allowed for generating A and B and hashing C on the device (6n² bytes). */
export const DEVICE_BYTES_PER_S = 50e9;
/** Fixed allowance for the network both ways and the solver's start (a warm CUDA context). */
export const NETWORK_ALLOWANCE_MS = 2_000;
/** Upload rate assumed for the openings answer (8 Mbit/s). */
export const UPLOAD_BYTES_PER_S = 1e6;

/** The catalog's VRAM in decimal bytes (80 GB = 80·10⁹), at or below what the cards report. */
export const modelVramBytes = (model: GpuModel) => model.vramGb * 1e9;

/**
 * The largest n, a multiple of SIZE_STEP and at most MAX_CAPACITY_N, with 6n² ≤ fraction × VRAM;
 * 0 when even SIZE_STEP does not fit.
 */
export function capacitySize(vramBytes: number, fraction = DEFAULT_VRAM_FRACTION): number {
  if (!(vramBytes > 0) || !(fraction > 0 && fraction <= 1)) return 0;
  const budget = Math.floor((fraction * vramBytes) / 6);
  let n = Math.floor(Math.sqrt(budget));
  while (n * n > budget) n--; // sqrt of a large double may round up
  return Math.min(Math.floor(n / SIZE_STEP) * SIZE_STEP, MAX_CAPACITY_N);
}

export interface DeadlineOptions {
  slack?: number;
  deviceBytesPerS?: number;
  allowanceMs?: number;
}

/**
 * Milliseconds from sending the challenge to receiving the roots: slack × 2n³ operations at the
 * card's dense INT8 peak, plus 6n² bytes at DEVICE_BYTES_PER_S, plus the network allowance. All
 * GPUs of a node run at once, so the count does not change it.
 */
export function proverDeadlineMs(model: GpuModel, n: number, options: DeadlineOptions = {}): number {
  const { slack = DEFAULT_SLACK, deviceBytesPerS = DEVICE_BYTES_PER_S, allowanceMs = NETWORK_ALLOWANCE_MS } = options;
  const computeMs = ((2 * n ** 3) / (model.int8Tops * 1e12)) * 1000;
  const deviceMs = ((6 * n * n) / deviceBytesPerS) * 1000;
  return Math.ceil(slack * computeMs + deviceMs + allowanceMs);
}

/** Approximate wire size of one opening: base64 leaf, hex path hashes, JSON punctuation. */
export function openingBytes(n: number, leafSize = DEFAULT_LEAF_SIZE): number {
  const leaves = Math.ceil((n * n) / leafSize);
  return Math.ceil((leafSize * 4 * 4) / 3) + Math.ceil(Math.log2(Math.max(leaves, 2))) * 67 + 64;
}

/** Milliseconds to answer an opening request: the answer's upload plus the network allowance. */
export function openingDeadlineMs(n: number, gpuCount: number, count = DEFAULT_OPENINGS, leafSize = DEFAULT_LEAF_SIZE): number {
  return Math.ceil(((gpuCount * count * openingBytes(n, leafSize)) / UPLOAD_BYTES_PER_S) * 1000 + NETWORK_ALLOWANCE_MS);
}

export interface CapacityCost {
  model: string;
  n: number;
  /** A + B + C on each GPU. */
  memoryBytes: number;
  /** Multiply-adds per GPU. */
  proverMacs: number;
  /** Multiply-adds per GPU to check `openings` entries, plus the Philox blocks for their lines. */
  verifierMacs: number;
  verifierPhiloxBlocks: number;
  /** verifierMacs / proverMacs = m / n². */
  ratio: number;
  proverDeadlineMs: number;
}

export function capacityCost(model: GpuModel, openings = DEFAULT_OPENINGS, fraction = DEFAULT_VRAM_FRACTION): CapacityCost {
  const n = capacitySize(modelVramBytes(model), fraction);
  return {
    model: model.id,
    n,
    memoryBytes: 6 * n * n,
    proverMacs: n ** 3,
    verifierMacs: openings * n,
    verifierPhiloxBlocks: openings * 2 * Math.ceil(n / 16),
    ratio: (openings * n) / n ** 3,
    proverDeadlineMs: proverDeadlineMs(model, n),
  };
}

/** The challenge size and costs for every catalog model. */
export const capacityTable = (openings = DEFAULT_OPENINGS) => GPU_MODELS.map((m) => capacityCost(m, openings));

/** Probability that a C with a fraction q of wrong entries passes m independent openings. */
export const passProbability = (q: number, m: number) => (1 - q) ** m;
