// The terms of the platform's challenges to a node: sizes, deadlines and configuration. Pure: no
// I/O, no clock (`now` is passed in), no randomness (seeds and nonces are passed in).
import { gpuModel, type GpuModel } from '../catalog/gpus.ts';
import type { CapacityChallenge, IdentityChallenge, OpeningRequest } from '../contracts/inspections.ts';
import { DEFAULT_LEAF_SIZE, DEFAULT_OPENINGS, MAX_GPU_COUNT, MIN_LEAF_SIZE } from './openings.ts';
import { capacitySize, modelVramBytes, openingDeadlineMs, proverDeadlineMs } from './sizing.ts';

/** An identity answer is a signature over a few fields: it takes the runner no time at all. */
export const IDENTITY_ANSWER_MS = 5_000;
/** Reliability moves per decided challenge (parts per million). */
export const PASS_RELIABILITY_PPM = 10_000;
export const FAIL_RELIABILITY_PPM = 100_000;

export interface ChallengeConfig {
  /** Largest capacity n sent, or null for the full size of the claimed model. */
  capacityMaxN: number | null;
  /** Added to every deadline: mailbox delivery (up to a heartbeat interval) and the network. */
  allowanceMs: number;
  verifiedTtlMs: number;
  /** Both kinds must have passed within this window for the node to become verified. */
  verifyWindowMs: number;
  /** The cron re-challenges nodes whose verification ends within this window (or has ended). */
  rechallengeBeforeMs: number;
  /** At most this many nodes re-challenged per cron run. */
  rechallengePerRun: number;
  /** Challenge every node as it registers (off only where tests assert exact mailboxes). */
  onJoin: boolean;
}

export interface ChallengeVars {
  CAPACITY_MAX_N?: string;
  CHALLENGE_ALLOWANCE_S?: string;
  VERIFIED_TTL_S?: string;
  VERIFY_WINDOW_S?: string;
  RECHALLENGE_BEFORE_S?: string;
  RECHALLENGE_PER_RUN?: string;
  CHALLENGE_ON_JOIN?: string;
}

const positive = (text: string | undefined, fallback: number) => {
  const value = Number(text);
  return text !== undefined && text.trim() !== '' && Number.isFinite(value) && value > 0 ? value : fallback;
};

export function challengeConfig(env: ChallengeVars): ChallengeConfig {
  const cap = Number(env.CAPACITY_MAX_N);
  return {
    // Empty or 0: no cap (production). A cap makes the check liveness-grade only.
    capacityMaxN: env.CAPACITY_MAX_N && Number.isInteger(cap) && cap > 0 ? cap : null,
    allowanceMs: positive(env.CHALLENGE_ALLOWANCE_S, 30) * 1000,
    verifiedTtlMs: positive(env.VERIFIED_TTL_S, 7 * 86_400) * 1000,
    verifyWindowMs: positive(env.VERIFY_WINDOW_S, 3_600) * 1000,
    rechallengeBeforeMs: positive(env.RECHALLENGE_BEFORE_S, 6 * 86_400) * 1000,
    rechallengePerRun: Math.floor(positive(env.RECHALLENGE_PER_RUN, 20)),
    onJoin: env.CHALLENGE_ON_JOIN !== 'false',
  };
}

/** A leaf of DEFAULT_LEAF_SIZE entries, or smaller so that a small C still has about 16 leaves. */
export function leafSizeFor(n: number): number {
  let size = DEFAULT_LEAF_SIZE;
  while (size > MIN_LEAF_SIZE && size * 16 > n * n) size /= 2;
  return size;
}

export interface NodeGpuClaim {
  model: string | null;
  memoryMib: number;
}

export interface CapacityTerms {
  n: number;
  gpuCount: number;
  leafSize: number;
  /** Milliseconds from issue to the commitment's deadline. */
  commitMs: number;
}

/**
 * The capacity challenge for a node's claimed GPUs: n fills the smallest card's VRAM (catalog
 * VRAM, or the reported memory for a card not in the catalog), capped by `capacityMaxN`; the
 * deadline is the slowest catalog model's. Null when nothing can be challenged.
 */
export function capacityTerms(gpus: readonly NodeGpuClaim[], config: Pick<ChallengeConfig, 'capacityMaxN' | 'allowanceMs'>): CapacityTerms | null {
  if (gpus.length === 0 || gpus.length > MAX_GPU_COUNT) return null;
  const models = gpus.map((g) => (g.model ? gpuModel(g.model) : null)).filter((m): m is GpuModel => m !== null);
  if (models.length === 0) return null;
  const slowest = models.reduce((a, b) => (b.int8Tops < a.int8Tops ? b : a));
  let n = Math.min(...gpus.map((g) => capacitySize(g.model && gpuModel(g.model) ? modelVramBytes(gpuModel(g.model)!) : g.memoryMib * 2 ** 20)));
  if (config.capacityMaxN !== null) n = Math.min(n, config.capacityMaxN);
  if (n < 1) return null;
  return { n, gpuCount: gpus.length, leafSize: leafSizeFor(n), commitMs: proverDeadlineMs(slowest, n) + config.allowanceMs };
}

const at = (ms: number) => new Date(ms).toISOString();

export function identityChallenge(id: string, nonceHex: string, now: number, allowanceMs: number): IdentityChallenge {
  return { kind: 'identity', challenge_id: id, nonce: nonceHex, deadline: at(now + IDENTITY_ANSWER_MS + allowanceMs) };
}

export function capacityChallenge(id: string, seedHex: string, terms: CapacityTerms, now: number): CapacityChallenge {
  return { kind: 'capacity', challenge_id: id, seed: seedHex, n: terms.n, gpu_count: terms.gpuCount, leaf_size: terms.leafSize, deadline: at(now + terms.commitMs) };
}

/** The opening request sent once the roots are in; its deadline is the answer's upload time. */
export function openingRequest(challenge: CapacityChallenge, openSeedHex: string, now: number, allowanceMs: number): OpeningRequest {
  const ms = openingDeadlineMs(challenge.n, challenge.gpu_count, DEFAULT_OPENINGS, challenge.leaf_size) + allowanceMs;
  return { challenge_id: challenge.challenge_id, open_seed: openSeedHex, count: DEFAULT_OPENINGS, deadline: at(now + ms) };
}

/** `count` distinct items of `items`, chosen uniformly with `random` in [0, 1) (partial Fisher–Yates). */
export function chooseAtRandom<T>(items: readonly T[], count: number, random: () => number): T[] {
  const pool = [...items];
  const k = Math.min(Math.max(0, Math.floor(count)), pool.length);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, k);
}

/** Reliability after a decision, within [0, 1,000,000]. */
export const reliabilityAfter = (ppm: number, outcome: 'passed' | 'failed') =>
  Math.max(0, Math.min(1_000_000, ppm + (outcome === 'passed' ? PASS_RELIABILITY_PPM : -FAIL_RELIABILITY_PPM)));
