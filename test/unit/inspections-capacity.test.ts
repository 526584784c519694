// The capacity challenge's pure building blocks: the Philox generator and the matrices drawn
// from it, the exact int32 product, the Merkle commitment, and sizing from the catalog.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GPU_MODELS, gpuModel } from '../../src/catalog/gpus.ts';
import { toHex } from '../../src/inspections/encoding.ts';
import {
  MAX_EXACT_N,
  assertSize,
  dot,
  fillLine,
  generateLines,
  matrixEntry,
  matrixKey,
  multiply,
  type PhiloxKey,
} from '../../src/inspections/matrices.ts';
import { buildMerkleTree, leafHash, merklePath, merklePathLength, merkleRoot, nodeHash, verifyMerklePath } from '../../src/inspections/merkle.ts';
import { openingPositions } from '../../src/inspections/openings.ts';
import { philox4x32 } from '../../src/inspections/philox.ts';
import { webCryptoSha256 as sha256, type Sha256 } from '../../src/inspections/sha256.ts';
import {
  MAX_CAPACITY_N,
  capacitySize,
  capacityTable,
  modelVramBytes,
  passProbability,
  proverDeadlineMs,
} from '../../src/inspections/sizing.ts';

const SEED = Uint8Array.from({ length: 32 }, (_, i) => i);
const OPEN_SEED = Uint8Array.from({ length: 32 }, (_, i) => 32 + i);
const nodeSha256: Sha256 = async (data) => new Uint8Array(createHash('sha256').update(data).digest());
const hex = (words: Uint32Array) => [...words].map((w) => w.toString(16).padStart(8, '0'));

describe('Philox-4x32-10', () => {
  // Random123's kat_vectors: counter (4 words), key (2 words) → output (4 words).
  it.each([
    [[0, 0, 0, 0], [0, 0], ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], ['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], ['d16cfe09', '94fdcceb', '5001e420', '24126ea1']],
  ])('matches the Random123 known answer for counter %j, key %j', (c, k, want) => {
    const out = new Uint32Array(4);
    philox4x32(c[0]!, c[1]!, c[2]!, c[3]!, k[0]!, k[1]!, out);
    expect(hex(out)).toEqual(want);
  });
});

describe('capacity matrices', () => {
  // Reference values for other implementations (a CUDA generator must print the same); they
  // were also reproduced by an independent implementation written from the specification.
  it.each([
    [0, 'A', ['9e532421', '760737cc'], [28, -21, -93, 94, -14, 103, 14, -103, -74, 42, -120, -102, -76, -82, 44, 48]],
    [0, 'B', ['938a718a', '97d7b594'], [-52, 5, -12, 101, -125, 75, 103, -63, 23, 16, 83, -79, 97, -54, -51, -63]],
    [1, 'A', ['9a4b7fd2', 'cbe2d966'], [-85, 110, -125, 81, -50, 60, 126, 88, 55, 30, 0, 114, 8, -29, 34, -14]],
  ] as const)('derives GPU %i matrix %s of seed 00..1f with the published key and first line', async (gpu, matrix, key, line) => {
    const k = await matrixKey(SEED, gpu, matrix, sha256);
    expect([k.k0, k.k1].map((w) => w.toString(16).padStart(8, '0'))).toEqual(key);
    const out = new Int8Array(16);
    fillLine(k, 0, 16, out);
    expect([...out]).toEqual(line);
  });

  it('derives the published opening positions from the open seed', async () => {
    expect(await openingPositions(SEED, OPEN_SEED, 0, 64, 4, sha256)).toEqual([
      { row: 28, col: 6 },
      { row: 2, col: 37 },
      { row: 52, col: 59 },
      { row: 19, col: 43 },
    ]);
  });

  it('gives every GPU and both matrices their own key, and every seed byte matters', async () => {
    const keys = new Set<string>();
    for (let gpu = 0; gpu < 16; gpu++) for (const m of ['A', 'B'] as const) keys.add(JSON.stringify(await matrixKey(SEED, gpu, m, sha256)));
    for (let i = 0; i < 32; i++) {
      const seed = SEED.slice();
      seed[i]! ^= 1;
      keys.add(JSON.stringify(await matrixKey(seed, 0, 'A', sha256)));
    }
    expect(keys.size).toBe(32 + 32);
  });

  it('reads any entry by random access exactly as the sequential line generation writes it', async () => {
    const key = await matrixKey(SEED, 3, 'B', sha256);
    for (const n of [1, 5, 16, 17, 37, 100]) {
      const lines = generateLines(key, n);
      for (let r = 0; r < n; r += Math.max(1, n >> 3)) for (let k = 0; k < n; k++) expect(matrixEntry(key, r, k)).toBe(lines[r * n + k]);
    }
  });

  it('keeps a line independent of n: a longer line extends a shorter one', async () => {
    const key = await matrixKey(SEED, 0, 'A', sha256);
    const short = new Int8Array(20);
    const long = new Int8Array(300);
    fillLine(key, 7, 20, short);
    fillLine(key, 7, 300, long);
    expect([...long.subarray(0, 20)]).toEqual([...short]);
  });

  it('draws entries in [-127, 127] only, with every value of that range present', () => {
    const lines = generateLines({ k0: 1, k1: 2 }, 256);
    const seen = new Set(lines);
    expect(Math.min(...seen)).toBe(-127);
    expect(Math.max(...seen)).toBe(127);
    expect(seen.size).toBe(255);
  });
});

describe('exact int32 product', () => {
  it('multiplies a known 2×2 and 3×3 product (A by rows, B by columns)', () => {
    // A = [[1, 2], [3, 4]], B = [[5, 6], [7, 8]]: B's columns are [5, 7] and [6, 8].
    expect([...multiply(Int8Array.of(1, 2, 3, 4), Int8Array.of(5, 7, 6, 8), 2)]).toEqual([19, 22, 43, 50]);
    // A = I·(-127), B's columns are e1·127, e2·(-1), e3·0.
    const a = Int8Array.of(-127, 0, 0, 0, -127, 0, 0, 0, -127);
    const b = Int8Array.of(127, 0, 0, 0, -1, 0, 0, 0, 0);
    expect([...multiply(a, b, 3)]).toEqual([-16129, 0, 0, 0, 127, 0, 0, 0, 0]);
  });

  it('agrees with the textbook triple loop over random-access entries', async () => {
    const n = 24;
    const [ka, kb]: [PhiloxKey, PhiloxKey] = await Promise.all([matrixKey(SEED, 2, 'A', sha256), matrixKey(SEED, 2, 'B', sha256)]);
    const c = multiply(generateLines(ka, n), generateLines(kb, n), n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let k = 0; k < n; k++) sum += matrixEntry(ka, i, k) * matrixEntry(kb, j, k);
        expect(c[i * n + j]).toBe(sum);
      }
  });

  it('bounds n at 133,144, where the largest possible dot product still fits an int32', () => {
    expect(MAX_EXACT_N).toBe(133_144);
    const ones = new Int8Array(MAX_EXACT_N).fill(127);
    const negative = new Int8Array(MAX_EXACT_N).fill(-127);
    const high = dot(ones, 0, ones, 0, MAX_EXACT_N);
    const low = dot(ones, 0, negative, 0, MAX_EXACT_N);
    expect(high).toBe(127 * 127 * 133_144);
    expect(high).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(Int32Array.of(high, low)).toEqual(Int32Array.of(2_147_479_576, -2_147_479_576));
    expect(127 * 127 * (MAX_EXACT_N + 1)).toBeGreaterThan(2 ** 31 - 1);
  });

  it('refuses sizes whose int32 sums could overflow, and sizes that are not positive integers', () => {
    expect(() => assertSize(MAX_EXACT_N)).not.toThrow();
    for (const n of [MAX_EXACT_N + 1, 0, -4, 1.5, Number.NaN, 1e12]) expect(() => assertSize(n)).toThrow(RangeError);
    expect(() => generateLines({ k0: 0, k1: 0 }, MAX_EXACT_N + 1)).toThrow(RangeError);
    expect(() => multiply(new Int8Array(4), new Int8Array(9), 2)).toThrow(RangeError);
  });
});

describe('Merkle commitment', () => {
  const leaves = (count: number) => Array.from({ length: count }, (_, i) => Uint8Array.from({ length: 8 + (i % 5) }, (_, j) => (i * 31 + j) & 0xff));

  it('roots one leaf at its leaf hash with an empty path', async () => {
    const [leaf] = leaves(1);
    const tree = await buildMerkleTree(1, () => leaf!, sha256);
    expect(toHex(merkleRoot(tree))).toBe(toHex(await leafHash(leaf!, sha256)));
    expect(merklePath(tree, 0)).toEqual([]);
    expect(await verifyMerklePath(merkleRoot(tree), 1, 0, leaf!, [], sha256)).toBe(true);
  });

  it('promotes an odd last node unchanged: three leaves root at H(1 ‖ H(1 ‖ l0 ‖ l1) ‖ l2)', async () => {
    const ls = leaves(3);
    const [h0, h1, h2] = await Promise.all(ls.map((l) => leafHash(l, sha256)));
    const want = await nodeHash(await nodeHash(h0!, h1!, sha256), h2!, sha256);
    const tree = await buildMerkleTree(3, (i) => ls[i]!, sha256);
    expect(toHex(merkleRoot(tree))).toBe(toHex(want));
    expect(merklePath(tree, 2)).toHaveLength(1);
  });

  it('verifies every leaf of trees of 1 to 20, 33 and 64 leaves, and fails on any flipped bit', async () => {
    // node:crypto here: thousands of hashes, and Web Crypto in Node costs far more per call.
    const sha256 = nodeSha256;
    for (const count of [...Array.from({ length: 20 }, (_, i) => i + 1), 33, 64]) {
      const ls = leaves(count);
      const tree = await buildMerkleTree(count, (i) => ls[i]!, sha256);
      const root = merkleRoot(tree);
      for (let i = 0; i < count; i++) {
        const path = merklePath(tree, i);
        expect(path).toHaveLength(merklePathLength(count, i));
        expect(await verifyMerklePath(root, count, i, ls[i]!, path, sha256)).toBe(true);
        const flipped = ls[i]!.slice();
        flipped[i % flipped.length]! ^= 0x10;
        expect(await verifyMerklePath(root, count, i, flipped, path, sha256)).toBe(false);
        for (let p = 0; p < path.length; p++) {
          const bad = path.map((h) => h.slice());
          bad[p]![(i + p) % 32]! ^= 1;
          expect(await verifyMerklePath(root, count, i, ls[i]!, bad, sha256)).toBe(false);
        }
        if (count > 1) expect(await verifyMerklePath(root, count, (i + 1) % count, ls[i]!, path, sha256)).toBe(false);
      }
      const badRoot = root.slice();
      badRoot[31]! ^= 0x80;
      expect(await verifyMerklePath(badRoot, count, 0, ls[0]!, merklePath(tree, 0), sha256)).toBe(false);
    }
  });

  it('refuses paths of the wrong length and out-of-range indices without throwing', async () => {
    const ls = leaves(5);
    const tree = await buildMerkleTree(5, (i) => ls[i]!, sha256);
    const root = merkleRoot(tree);
    const path = merklePath(tree, 1);
    expect(await verifyMerklePath(root, 5, 1, ls[1]!, path.slice(1), sha256)).toBe(false);
    expect(await verifyMerklePath(root, 5, 1, ls[1]!, [...path, path[0]!], sha256)).toBe(false);
    expect(await verifyMerklePath(root, 5, 5, ls[1]!, path, sha256)).toBe(false);
    expect(await verifyMerklePath(root, 5, -1, ls[1]!, path, sha256)).toBe(false);
    expect(await verifyMerklePath(root, 2 ** 40, 1, ls[1]!, path, sha256)).toBe(false);
    expect(await verifyMerklePath(root.subarray(1), 5, 1, ls[1]!, path, sha256)).toBe(false);
  });

  it('keeps a leaf from passing for an inner node (domain-separated hashes)', async () => {
    const ls = leaves(2);
    const tree = await buildMerkleTree(2, (i) => ls[i]!, sha256);
    // The two leaf hashes concatenated, presented as a one-leaf tree, do not give the same root.
    const forged = await buildMerkleTree(1, () => tree.levels[0]!, sha256);
    expect(toHex(merkleRoot(forged))).not.toBe(toHex(merkleRoot(tree)));
  });
});

describe('sizing from the catalog', () => {
  it('fills at most 85% of the claimed VRAM with A + B + C, in multiples of 256', () => {
    for (const model of GPU_MODELS) {
      const vram = modelVramBytes(model);
      const n = capacitySize(vram);
      expect(n % 256).toBe(0);
      expect(6 * n * n).toBeLessThanOrEqual(0.85 * vram);
      if (n < MAX_CAPACITY_N) expect(6 * (n + 256) ** 2).toBeGreaterThan(0.85 * vram);
    }
    expect(capacitySize(80e9)).toBe(106_240);
    expect(capacitySize(24e9)).toBe(58_112);
    expect(capacitySize(80e9, 0.5)).toBe(81_408);
  });

  it('caps n at the int32 bound rounded to 256, so an H200 gets 133,120', () => {
    expect(MAX_CAPACITY_N).toBe(133_120);
    expect(capacitySize(modelVramBytes(gpuModel('h200-141gb')!))).toBe(133_120);
    expect(capacitySize(1e15)).toBe(133_120);
  });

  it('gives no size for too little memory or a nonsensical fraction', () => {
    expect(capacitySize(6 * 255 * 255)).toBe(0);
    expect(capacitySize(0)).toBe(0);
    expect(capacitySize(80e9, 0)).toBe(0);
    expect(capacitySize(80e9, 1.5)).toBe(0);
    expect(capacitySize(Number.NaN)).toBe(0);
  });

  it('sets the prover deadline from the dense INT8 rate with 2× slack, device passes and a network allowance', () => {
    const h100 = gpuModel('h100-80gb')!;
    const n = 106_240;
    const want = 2 * ((2 * n ** 3) / 1513e12) * 1000 + ((6 * n * n) / 50e9) * 1000 + 2000;
    expect(proverDeadlineMs(h100, n)).toBe(Math.ceil(want));
    expect(proverDeadlineMs(h100, n, { slack: 1.5, allowanceMs: 0 })).toBeLessThan(proverDeadlineMs(h100, n));
    const t4 = gpuModel('t4-16gb')!;
    expect(proverDeadlineMs(t4, 47_360)).toBeGreaterThan(proverDeadlineMs(gpuModel('rtx-4090-24gb')!, 47_360));
  });

  it('keeps the verifier under a millionth of the prover for every catalog model', () => {
    const table = capacityTable(64);
    expect(table.map((row) => row.model)).toEqual(GPU_MODELS.map((m) => m.id));
    for (const row of table) {
      expect(GPU_MODELS.find((m) => m.id === row.model)!.int8Tops).toBeGreaterThan(0);
      expect(row.verifierMacs).toBe(64 * row.n);
      expect(row.ratio).toBeCloseTo(64 / row.n ** 2, 20);
      expect(row.ratio).toBeLessThan(1e-6);
    }
  });

  it('states the chance that a partly wrong product passes m openings as (1 − q)^m', () => {
    expect(passProbability(0.1, 64)).toBeCloseTo(0.00118, 5);
    expect(passProbability(0.5, 32)).toBeCloseTo(2.3e-10, 11);
    expect(passProbability(0, 64)).toBe(1);
  });
});
