// The capacity challenge's matrices. Per claimed GPU g, A_g and B_g are n×n with int8 entries in
// [-127, 127] drawn from Philox-4x32-10 keyed by the challenge seed, and C_g = A_g·B_g is
// accumulated in int32: exact while 127²·n < 2³¹, which is what int8 tensor-core GEMM
// (CUDA_R_8I inputs, CUDA_R_32I accumulation) computes, so every honest GPU gives the same bytes.
//
// A "line" is a row of A or a column of B: the k-th entry of line r is byte (k mod 16) of
// Philox(counter = (r, ⌊k/16⌋, 0, 0), key), bytes taken little-endian from words x0..x3, read as a
// two's-complement int8, with -128 turned into 0. Both operands are thus generated k-contiguous
// and any one entry costs one Philox block.
import { philox4x32 } from './philox.ts';
import { ascii, concatBytes, type Sha256 } from './sha256.ts';

/** Largest n with 127²·n ≤ 2³¹ − 1: no int32 dot product of two lines can overflow. */
export const MAX_EXACT_N = Math.floor(0x7fffffff / (127 * 127)); // 133,144
export const SEED_BYTES = 32;
/** The prefix of every matrix key derivation; a new protocol version changes it. */
export const MATRIX_KEY_DOMAIN = 'gridlease/capacity/v1/matrix';

export type MatrixName = 'A' | 'B';
/** A Philox key: two uint32. */
export interface PhiloxKey {
  k0: number;
  k1: number;
}

export function assertSize(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_EXACT_N) {
    throw new RangeError(`n must be an integer in [1, ${MAX_EXACT_N}] so that int32 sums are exact; got ${n}`);
  }
}

/** First 8 bytes of a digest as two little-endian uint32. */
export function keyFromDigest(digest: Uint8Array): PhiloxKey {
  const view = new DataView(digest.buffer, digest.byteOffset, digest.byteLength);
  return { k0: view.getUint32(0, true), k1: view.getUint32(4, true) };
}

/** key(seed, g, M) = first 8 bytes of SHA-256(MATRIX_KEY_DOMAIN ‖ seed ‖ u8 'A'|'B' ‖ u8 g). */
export async function matrixKey(seed: Uint8Array, gpu: number, matrix: MatrixName, sha256: Sha256): Promise<PhiloxKey> {
  if (seed.length !== SEED_BYTES) throw new RangeError(`seed must be ${SEED_BYTES} bytes`);
  if (!Number.isInteger(gpu) || gpu < 0 || gpu > 255) throw new RangeError('gpu must be in [0, 255]');
  const digest = await sha256(concatBytes(ascii(MATRIX_KEY_DOMAIN), seed, Uint8Array.of(matrix.charCodeAt(0), gpu)));
  return keyFromDigest(digest);
}

const block = new Uint32Array(4);

/** One entry, by random access: A[r][k] for A's key, B[k][r] for B's key. */
export function matrixEntry(key: PhiloxKey, line: number, k: number): number {
  philox4x32(line, Math.floor(k / 16), 0, 0, key.k0, key.k1, block);
  const byte = (block[(k >> 2) & 3]! >>> (8 * (k & 3))) & 0xff;
  return byte === 0x80 ? 0 : (byte << 24) >> 24;
}

/** Writes line `line` (n entries) into out[offset..offset+n). */
export function fillLine(key: PhiloxKey, line: number, n: number, out: Int8Array, offset = 0): void {
  const whole = n >>> 4;
  let at = offset;
  for (let b = 0; b < whole; b++) {
    philox4x32(line, b, 0, 0, key.k0, key.k1, block);
    for (let w = 0; w < 4; w++) {
      const word = block[w]!;
      for (let s = 0; s < 32; s += 8) {
        const byte = (word >>> s) & 0xff;
        // Int8Array stores modulo 256: 0x81..0xff become -127..-1.
        out[at++] = byte === 0x80 ? 0 : byte;
      }
    }
  }
  const rest = n & 15;
  if (rest === 0) return;
  philox4x32(line, whole, 0, 0, key.k0, key.k1, block);
  for (let t = 0; t < rest; t++) {
    const byte = (block[t >> 2]! >>> (8 * (t & 3))) & 0xff;
    out[at++] = byte === 0x80 ? 0 : byte;
  }
}

/** All n lines, line-major: A row-major, or B column-major (Bᵀ row-major). */
export function generateLines(key: PhiloxKey, n: number): Int8Array {
  assertSize(n);
  const out = new Int8Array(n * n);
  for (let r = 0; r < n; r++) fillLine(key, r, n, out, r * n);
  return out;
}

/** Σ a[aAt+k]·b[bAt+k] for k < n: exact in a double, and in int32 for n ≤ MAX_EXACT_N. */
export function dot(a: Int8Array, aAt: number, b: Int8Array, bAt: number, n: number): number {
  let sum = 0;
  for (let k = 0; k < n; k++) sum += a[aAt + k]! * b[bAt + k]!;
  return sum;
}

/**
 * The reference product C = A·B in row-major int32, from A's rows and B's columns (both
 * line-major): each C[i][j] is a dot of two contiguous lines, which keeps the inner loop in cache.
 */
export function multiply(aRows: Int8Array, bColumns: Int8Array, n: number): Int32Array {
  assertSize(n);
  if (aRows.length !== n * n || bColumns.length !== n * n) throw new RangeError('matrices must be n×n');
  const c = new Int32Array(n * n);
  for (let i = 0; i < n; i++) {
    const at = i * n;
    for (let j = 0; j < n; j++) c[at + j] = dot(aRows, at, bColumns, j * n, n);
  }
  return c;
}
