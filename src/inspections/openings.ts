// Commit, then open: the prover commits to C_g with a Merkle root over its row-major int32
// little-endian bytes in leaves of `leafSize` entries (the last leaf may be shorter), then the
// verifier sends a fresh open seed; positions follow from it, and for each the prover returns the
// leaf holding it and the leaf's Merkle path. The verifier recomputes that one entry in O(n) from
// the seed, so a wrong fraction q of C passes m openings with probability (1 − q)^m.
import { assertSize, dot, fillLine, keyFromDigest, matrixKey, MAX_EXACT_N, SEED_BYTES } from './matrices.ts';
import { MAX_LEAVES, verifyMerklePath } from './merkle.ts';
import { philox4x32 } from './philox.ts';
import { ascii, concatBytes, webCryptoSha256, type Sha256 } from './sha256.ts';

/** Entries per leaf by default: 4 KiB of C, a short path and a small answer. */
export const DEFAULT_LEAF_SIZE = 1024;
/** Leaf sizes allowed: powers of two in [16, 4096], so a leaf is at most 16 KiB on the wire. */
export const MIN_LEAF_SIZE = 16;
export const MAX_LEAF_SIZE = 4096;
/** Openings per GPU by default: a 10% wrong C passes with probability 0.9^64 ≈ 0.12%. */
export const DEFAULT_OPENINGS = 64;
export const MAX_OPENINGS = 256;
/** One challenge covers at most this many GPUs (a node's limit, MAX_GPUS_PER_NODE). */
export const MAX_GPU_COUNT = 16;
export const OPEN_KEY_DOMAIN = 'gridlease/capacity/v1/open';

export interface Position {
  row: number;
  col: number;
}

export interface CapacityParams {
  seed: Uint8Array;
  n: number;
  gpuCount: number;
  leafSize: number;
}

export interface Opening {
  leafIndex: number;
  leaf: Uint8Array;
  path: Uint8Array[];
}

export type OpeningFailure =
  | { reason: 'parameters'; message: string }
  | { reason: 'root_count' | 'gpu_count'; expected: number; got: number }
  | { reason: 'opening_count'; gpu: number; expected: number; got: number }
  | { reason: 'leaf_index' | 'leaf_length'; gpu: number; opening: number; expected: number; got: number }
  | { reason: 'path'; gpu: number; opening: number }
  | { reason: 'value'; gpu: number; opening: number; row: number; col: number; expected: number; got: number };

export interface OpeningsVerdict {
  ok: boolean;
  failures: OpeningFailure[];
}

export const isLeafSize = (size: number) =>
  Number.isInteger(size) && size >= MIN_LEAF_SIZE && size <= MAX_LEAF_SIZE && (size & (size - 1)) === 0;

export const leafCountFor = (n: number, leafSize: number) => Math.ceil((n * n) / leafSize);

/** Entries in leaf `leafIndex`: leafSize, except possibly the last. */
export const leafEntries = (n: number, leafSize: number, leafIndex: number) => Math.min(leafSize, n * n - leafIndex * leafSize);

export function leafOf(n: number, leafSize: number, position: Position): { leafIndex: number; offset: number } {
  const flat = position.row * n + position.col;
  return { leafIndex: Math.floor(flat / leafSize), offset: flat % leafSize };
}

/** Leaf `leafIndex` of a row-major C as int32 little-endian bytes. */
export function leafBytes(c: Int32Array, n: number, leafSize: number, leafIndex: number): Uint8Array {
  const start = leafIndex * leafSize;
  const count = leafEntries(n, leafSize, leafIndex);
  const out = new Uint8Array(count * 4);
  const view = new DataView(out.buffer);
  for (let e = 0; e < count; e++) view.setInt32(e * 4, c[start + e]!, true);
  return out;
}

export const readLeafEntry = (leaf: Uint8Array, offset: number) =>
  new DataView(leaf.buffer, leaf.byteOffset, leaf.byteLength).getInt32(offset * 4, true);

/**
 * The `count` positions to open on GPU g: with key = first 8 bytes of SHA-256(OPEN_KEY_DOMAIN ‖
 * seed ‖ openSeed ‖ u8 g), opening t is row = x0 mod n, col = x1 mod n of Philox((t, 0, 0, 0), key).
 * Drawn with replacement, so openings are independent; the modulo bias is below n / 2³² < 0.004%.
 */
export async function openingPositions(
  seed: Uint8Array,
  openSeed: Uint8Array,
  gpu: number,
  n: number,
  count: number,
  sha256: Sha256,
): Promise<Position[]> {
  assertSize(n);
  if (seed.length !== SEED_BYTES || openSeed.length !== SEED_BYTES) throw new RangeError(`seeds must be ${SEED_BYTES} bytes`);
  const key = keyFromDigest(await sha256(concatBytes(ascii(OPEN_KEY_DOMAIN), seed, openSeed, Uint8Array.of(gpu))));
  const out = new Uint32Array(4);
  const positions: Position[] = [];
  for (let t = 0; t < count; t++) {
    philox4x32(t, 0, 0, 0, key.k0, key.k1, out);
    positions.push({ row: out[0]! % n, col: out[1]! % n });
  }
  return positions;
}

function parameterProblem(params: CapacityParams, openSeed: Uint8Array, count: number): string | null {
  if (!Number.isSafeInteger(params.n) || params.n < 1 || params.n > MAX_EXACT_N) return `n must be in [1, ${MAX_EXACT_N}]`;
  if (!Number.isInteger(params.gpuCount) || params.gpuCount < 1 || params.gpuCount > MAX_GPU_COUNT) return `gpu count must be in [1, ${MAX_GPU_COUNT}]`;
  if (!isLeafSize(params.leafSize)) return `leaf size must be a power of two in [${MIN_LEAF_SIZE}, ${MAX_LEAF_SIZE}]`;
  if (leafCountFor(params.n, params.leafSize) > MAX_LEAVES) return 'too many leaves';
  if (params.seed.length !== SEED_BYTES || openSeed.length !== SEED_BYTES) return `seeds must be ${SEED_BYTES} bytes`;
  if (!Number.isInteger(count) || count < 1 || count > MAX_OPENINGS) return `openings per GPU must be in [1, ${MAX_OPENINGS}]`;
  return null;
}

/**
 * Checks the openings of every GPU against its committed root and the seed: leaf index, leaf
 * length, Merkle path, then the entry itself, recomputed as one dot product of a row of A and a
 * column of B (O(n) per opening). Reports every failure; never throws.
 */
export async function verifyOpenings(
  params: CapacityParams,
  roots: readonly Uint8Array[],
  openSeed: Uint8Array,
  count: number,
  openings: readonly (readonly Opening[])[],
  sha256: Sha256 = webCryptoSha256,
): Promise<OpeningsVerdict> {
  const failures: OpeningFailure[] = [];
  try {
    const problem = parameterProblem(params, openSeed, count);
    if (problem) return { ok: false, failures: [{ reason: 'parameters', message: problem }] };
    const { seed, n, gpuCount, leafSize } = params;
    if (roots.length !== gpuCount) return { ok: false, failures: [{ reason: 'root_count', expected: gpuCount, got: roots.length }] };
    if (openings.length !== gpuCount) return { ok: false, failures: [{ reason: 'gpu_count', expected: gpuCount, got: openings.length }] };
    const leafCount = leafCountFor(n, leafSize);
    const row = new Int8Array(n);
    const col = new Int8Array(n);
    for (let gpu = 0; gpu < gpuCount; gpu++) {
      const answered = openings[gpu]!;
      if (answered.length !== count) {
        failures.push({ reason: 'opening_count', gpu, expected: count, got: answered.length });
        continue;
      }
      const [keyA, keyB, positions] = await Promise.all([
        matrixKey(seed, gpu, 'A', sha256),
        matrixKey(seed, gpu, 'B', sha256),
        openingPositions(seed, openSeed, gpu, n, count, sha256),
      ]);
      for (let t = 0; t < count; t++) {
        const position = positions[t]!;
        const opening = answered[t]!;
        const { leafIndex, offset } = leafOf(n, leafSize, position);
        if (opening.leafIndex !== leafIndex) {
          failures.push({ reason: 'leaf_index', gpu, opening: t, expected: leafIndex, got: opening.leafIndex });
          continue;
        }
        const bytes = leafEntries(n, leafSize, leafIndex) * 4;
        if (opening.leaf.length !== bytes) {
          failures.push({ reason: 'leaf_length', gpu, opening: t, expected: bytes, got: opening.leaf.length });
          continue;
        }
        if (!(await verifyMerklePath(roots[gpu]!, leafCount, leafIndex, opening.leaf, opening.path, sha256))) {
          failures.push({ reason: 'path', gpu, opening: t });
          continue;
        }
        fillLine(keyA, position.row, n, row);
        fillLine(keyB, position.col, n, col);
        const expected = dot(row, 0, col, 0, n);
        const got = readLeafEntry(opening.leaf, offset);
        if (got !== expected) failures.push({ reason: 'value', gpu, opening: t, row: position.row, col: position.col, expected, got });
      }
    }
  } catch {
    // Only a malformed input (not a Uint8Array, a sparse array) gets here; it is refused, not thrown.
    failures.push({ reason: 'parameters', message: 'the openings could not be read' });
  }
  return { ok: failures.length === 0, failures };
}
