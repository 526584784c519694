// The capacity challenge's wire shapes refuse hostile sizes, encodings and extra fields before
// anything is allocated or hashed.
import { describe, expect, it } from 'vitest';
import {
  CapacityChallengeSchema,
  CapacityCommitmentSchema,
  MAX_LEAF_BASE64,
  MAX_PATH_LENGTH,
  OpeningRequestSchema,
  OpeningsAnswerSchema,
} from '../../src/contracts/inspections.ts';
import { MAX_GPUS_PER_NODE } from '../../src/contracts/runner.ts';
import { fromBase64, fromHex, toBase64, toHex } from '../../src/inspections/encoding.ts';
import { MAX_LEAVES } from '../../src/inspections/merkle.ts';
import { MAX_GPU_COUNT } from '../../src/inspections/openings.ts';

const hash = 'ab'.repeat(32);
const challenge = {
  kind: 'capacity',
  challenge_id: 'cap_01',
  seed: hash,
  n: 1024,
  gpu_count: 8,
  leaf_size: 1024,
  deadline: '2026-12-07T03:00:00.000Z',
};
const opening = { leaf_index: 3, leaf: toBase64(new Uint8Array(4096)), path: [hash, hash] };
const answer = { challenge_id: 'cap_01', gpus: [[opening], [opening]] };

describe('capacity challenge', () => {
  it('accepts a well-formed challenge', () => {
    expect(CapacityChallengeSchema.parse(challenge)).toEqual(challenge);
  });

  it.each([
    ['n above the int32 bound', { n: 133_145 }],
    ['a huge n', { n: 1e12 }],
    ['n of zero', { n: 0 }],
    ['a fractional n', { n: 64.5 }],
    ['more GPUs than a node has', { gpu_count: 17 }],
    ['no GPUs', { gpu_count: 0 }],
    ['a leaf size that is not a power of two', { leaf_size: 1000 }],
    ['a leaf size above 4096', { leaf_size: 8192 }],
    ['a leaf size below 16', { leaf_size: 8 }],
    ['an upper-case seed', { seed: 'AB'.repeat(32) }],
    ['a short seed', { seed: 'ab'.repeat(31) }],
    ['a challenge id with a slash', { challenge_id: 'a/b' }],
    ['a deadline that is not a timestamp', { deadline: 'soon' }],
    ['another kind', { kind: 'identity' }],
    ['an extra field', { command: 'rm -rf /' }],
  ])('refuses %s', (_, change) => {
    expect(CapacityChallengeSchema.safeParse({ ...challenge, ...change }).success).toBe(false);
  });

  it('allows the largest tree, n at the bound in 16-entry leaves, whose leaf indices still fit an int32', () => {
    expect(CapacityChallengeSchema.safeParse({ ...challenge, n: 133_144, leaf_size: 16 }).success).toBe(true);
    expect(Math.ceil(133_144 ** 2 / 16)).toBeLessThan(MAX_LEAVES);
    expect(Math.ceil(Math.log2(MAX_LEAVES))).toBe(MAX_PATH_LENGTH);
  });
});

describe('commitment and opening request', () => {
  it('accepts roots for up to 16 GPUs and refuses more, none, or malformed roots', () => {
    expect(CapacityCommitmentSchema.safeParse({ challenge_id: 'c', roots: Array(16).fill(hash) }).success).toBe(true);
    expect(CapacityCommitmentSchema.safeParse({ challenge_id: 'c', roots: Array(17).fill(hash) }).success).toBe(false);
    expect(CapacityCommitmentSchema.safeParse({ challenge_id: 'c', roots: [] }).success).toBe(false);
    expect(CapacityCommitmentSchema.safeParse({ challenge_id: 'c', roots: [hash.slice(2)] }).success).toBe(false);
    expect(CapacityCommitmentSchema.safeParse({ challenge_id: 'c', roots: [hash], signature: 'x' }).success).toBe(false);
  });

  it('bounds the number of openings asked for', () => {
    const request = { challenge_id: 'c', open_seed: hash, count: 64, deadline: '2026-12-07T03:00:00.000Z' };
    expect(OpeningRequestSchema.safeParse(request).success).toBe(true);
    for (const count of [0, 257, 1e9, 3.5]) expect(OpeningRequestSchema.safeParse({ ...request, count }).success).toBe(false);
  });
});

describe('openings answer', () => {
  it('accepts a well-formed answer', () => {
    expect(OpeningsAnswerSchema.parse(answer)).toEqual(answer);
  });

  it.each([
    ['more than 16 GPUs', { gpus: Array(17).fill([opening]) }],
    ['no GPUs', { gpus: [] }],
    ['more than 256 openings on a GPU', { gpus: [Array(257).fill(opening)] }],
    ['a path longer than any tree', { gpus: [[{ ...opening, path: Array(MAX_PATH_LENGTH + 1).fill(hash) }]] }],
    ['a leaf larger than 4096 int32 values', { gpus: [[{ ...opening, leaf: 'AAAA'.repeat(MAX_LEAF_BASE64 / 4 + 1) }]] }],
    ['a leaf that is not base64', { gpus: [[{ ...opening, leaf: 'not base64!' }]] }],
    ['unpadded base64', { gpus: [[{ ...opening, leaf: 'AAA' }]] }],
    ['a negative leaf index', { gpus: [[{ ...opening, leaf_index: -1 }]] }],
    ['a leaf index beyond int32', { gpus: [[{ ...opening, leaf_index: 2 ** 31 }]] }],
    ['a path hash of the wrong length', { gpus: [[{ ...opening, path: ['abcd'] }]] }],
    ['an extra field in an opening', { gpus: [[{ ...opening, value: 7 }]] }],
    ['an extra field in the answer', { roots: [hash] }],
  ])('refuses %s', (_, change) => {
    expect(OpeningsAnswerSchema.safeParse({ ...answer, ...change }).success).toBe(false);
  });

  it('bounds a whole answer to 16 GPUs × 256 openings × 16 KiB leaves', () => {
    expect(MAX_GPU_COUNT).toBe(MAX_GPUS_PER_NODE);
    expect(MAX_LEAF_BASE64).toBe(21_848);
    expect(toBase64(new Uint8Array(4 * 4096))).toHaveLength(MAX_LEAF_BASE64);
  });
});

describe('strict encodings', () => {
  it('reads only canonical base64, so one leaf has one spelling', () => {
    expect(fromBase64('AA==')).toEqual(Uint8Array.of(0));
    expect(fromBase64('AB==')).toBeNull();
    expect(fromBase64('AA=')).toBeNull();
    expect(fromBase64('A A=')).toBeNull();
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    expect(fromBase64(toBase64(bytes))).toEqual(bytes);
  });

  it('reads only lower-case hex of whole bytes', () => {
    expect(fromHex('00ff10')).toEqual(Uint8Array.of(0, 255, 16));
    expect(fromHex('00FF')).toBeNull();
    expect(fromHex('abc')).toBeNull();
    expect(fromHex('0x00')).toBeNull();
    expect(toHex(Uint8Array.of(0, 255, 16))).toBe('00ff10');
  });
});
