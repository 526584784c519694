// The pure terms of platform challenges: sizes, leaf sizes, deadlines, configuration and the
// random choice of nodes to re-challenge.
import { describe, expect, it } from 'vitest';
import { gpuModel } from '../../src/catalog/gpus.ts';
import { CapacityChallengeSchema, IdentityChallengeSchema, OpeningRequestSchema } from '../../src/contracts/inspections.ts';
import {
  capacityChallenge,
  capacityTerms,
  challengeConfig,
  chooseAtRandom,
  identityChallenge,
  IDENTITY_ANSWER_MS,
  leafSizeFor,
  openingRequest,
  reliabilityAfter,
} from '../../src/inspections/challenge-terms.ts';
import { DEFAULT_OPENINGS } from '../../src/inspections/openings.ts';
import { capacitySize, modelVramBytes, openingDeadlineMs, proverDeadlineMs } from '../../src/inspections/sizing.ts';

const NOW = Date.UTC(2026, 0, 1);
const SEED = 'ab'.repeat(32);
const h100 = { model: 'h100-80gb', memoryMib: 81_559 };
const a100 = { model: 'a100-40gb', memoryMib: 40_960 };
const noCap = { capacityMaxN: null, allowanceMs: 30_000 };

describe('challenge configuration', () => {
  it('defaults to no cap, a 30 s allowance, 7 days verified, a 1 hour window, six days ahead (a re-inspection about daily) and 20 per run', () => {
    expect(challengeConfig({})).toEqual({
      capacityMaxN: null,
      allowanceMs: 30_000,
      verifiedTtlMs: 7 * 86_400_000,
      verifyWindowMs: 3_600_000,
      rechallengeBeforeMs: 6 * 86_400_000,
      rechallengePerRun: 20,
      onJoin: true,
    });
  });

  it('reads each variable, and falls back on empty, zero, negative or garbage values', () => {
    expect(challengeConfig({ CAPACITY_MAX_N: '256', CHALLENGE_ALLOWANCE_S: '5', VERIFIED_TTL_S: '60', VERIFY_WINDOW_S: '10', RECHALLENGE_BEFORE_S: '30', RECHALLENGE_PER_RUN: '3', CHALLENGE_ON_JOIN: 'false' })).toEqual({
      capacityMaxN: 256, allowanceMs: 5_000, verifiedTtlMs: 60_000, verifyWindowMs: 10_000, rechallengeBeforeMs: 30_000, rechallengePerRun: 3, onJoin: false,
    });
    for (const bad of ['', '0', '-5', 'many', '1.5']) expect(challengeConfig({ CAPACITY_MAX_N: bad }).capacityMaxN).toBeNull();
    expect(challengeConfig({ CHALLENGE_ALLOWANCE_S: '-1', RECHALLENGE_PER_RUN: 'x' })).toMatchObject({ allowanceMs: 30_000, rechallengePerRun: 20 });
  });
});

describe('capacity terms', () => {
  it('size n for the claimed model and every GPU, with the model deadline plus the allowance', () => {
    const n = capacitySize(modelVramBytes(gpuModel('h100-80gb')!));
    expect(capacityTerms([h100, h100], noCap)).toEqual({ n, gpuCount: 2, leafSize: 1024, commitMs: proverDeadlineMs(gpuModel('h100-80gb')!, n) + 30_000 });
  });

  it('take the smallest card for n and the slowest for the deadline on a mixed node', () => {
    const terms = capacityTerms([h100, a100], noCap)!;
    expect(terms.n).toBe(capacitySize(modelVramBytes(gpuModel('a100-40gb')!)));
    expect(terms.commitMs).toBe(proverDeadlineMs(gpuModel('a100-40gb')!, terms.n) + 30_000);
  });

  it('cap n where CAPACITY_MAX_N says, with smaller leaves for a small product', () => {
    expect(capacityTerms([h100], { capacityMaxN: 256, allowanceMs: 0 })).toMatchObject({ n: 256, leafSize: 1024 });
    expect(capacityTerms([h100], { capacityMaxN: 64, allowanceMs: 0 })).toMatchObject({ n: 64, leafSize: 256 });
  });

  it('refuse nodes with no catalog GPU, no GPU, or more than a challenge covers', () => {
    expect(capacityTerms([{ model: null, memoryMib: 8_000 }], noCap)).toBeNull();
    expect(capacityTerms([], noCap)).toBeNull();
    expect(capacityTerms(Array.from({ length: 17 }, () => h100), noCap)).toBeNull();
  });

  it('choose leaves of 1024 entries, or about n²/16 for small n, never under 16', () => {
    expect([1, 4, 16, 32, 64, 128, 256, 1024, 106_240].map(leafSizeFor)).toEqual([16, 16, 16, 64, 256, 1024, 1024, 1024, 1024]);
  });
});

describe('challenge messages', () => {
  it('are valid wire shapes with deadlines from now', () => {
    const identity = identityChallenge('chl_1', SEED, NOW, 30_000);
    expect(IdentityChallengeSchema.parse(identity)).toEqual(identity);
    expect(Date.parse(identity.deadline)).toBe(NOW + IDENTITY_ANSWER_MS + 30_000);

    const terms = capacityTerms([h100], { capacityMaxN: 256, allowanceMs: 30_000 })!;
    const capacity = capacityChallenge('chl_2', SEED, terms, NOW);
    expect(CapacityChallengeSchema.parse(capacity)).toEqual(capacity);
    expect(Date.parse(capacity.deadline)).toBe(NOW + terms.commitMs);

    const request = openingRequest(capacity, 'cd'.repeat(32), NOW + 1_000, 30_000);
    expect(OpeningRequestSchema.parse(request)).toEqual(request);
    expect(request).toMatchObject({ challenge_id: 'chl_2', count: DEFAULT_OPENINGS });
    expect(Date.parse(request.deadline)).toBe(NOW + 1_000 + openingDeadlineMs(256, 1, DEFAULT_OPENINGS, 1024) + 30_000);
  });
});

describe('re-challenge choice and reliability', () => {
  it('chooses at most k distinct items, each one reachable', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    expect(chooseAtRandom(items, 10, Math.random).sort()).toEqual(items);
    expect(chooseAtRandom(items, 0, Math.random)).toEqual([]);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const picked = chooseAtRandom(items, 2, Math.random);
      expect(new Set(picked).size).toBe(2);
      picked.forEach((p) => seen.add(p));
    }
    expect([...seen].sort()).toEqual(items);
    expect(chooseAtRandom(items, 2, () => 0.999)).toEqual(['e', 'a']);
  });

  it('moves reliability within [0, 1]', () => {
    expect(reliabilityAfter(995_000, 'passed')).toBe(1_000_000);
    expect(reliabilityAfter(900_000, 'passed')).toBe(910_000);
    expect(reliabilityAfter(50_000, 'failed')).toBe(0);
  });
});
