// Worked examples of the supply rewards' pure rules (src/rewards/, docs/rewards.md), with exact
// numbers; the random checks are in rewards-properties.test.ts.
import { describe, expect, it } from 'vitest';
import { FIXED_ONE, retentionFor, rewardsConfig } from '../../src/rewards/config.ts';
import { POW_ONE, emission, emittedThrough, epochBounds, epochOf, powFixed, scheduleTotal } from '../../src/rewards/schedule.ts';
import { splitEpoch, taperFor } from '../../src/rewards/split.ts';
import { releasedBy, vestingSplit } from '../../src/rewards/vesting.ts';
import { MODEL_WEIGHTS_PPM, eligible, modelWeightPpm, weight, type NodeInputs } from '../../src/rewards/weights.ts';

const config = rewardsConfig({});
const GRID = 1_000_000n;
const node = (over: Partial<NodeInputs> = {}): NodeInputs => ({
  nodeId: 'n',
  ownerId: 'o',
  gpuModel: 'h100-80gb',
  gpusOffered: 1,
  confirmedS: 3600,
  leasedGpuS: 0,
  verified: true,
  stake: 0n,
  ...over,
});

describe('rewardsConfig', () => {
  it('defaults to docs/rewards.md', () => {
    expect(config).toEqual({
      startMs: Date.parse('2026-12-01T00:00:00Z'),
      epochMs: 3_600_000,
      initialPerEpoch: 6_000n * GRID,
      retention: retentionFor(0.12, 3_600_000),
      allocation: 400_000_000n * GRID,
      minUptimePpm: 950_000,
      leaseBonusPpm: 500_000,
      stakeBonusPpm: 250_000,
      stakePerGpu: 200n * GRID,
      taperFloorPpm: 200_000,
      taperFullUtilPpm: 800_000,
      ownerCapPpm: 100_000,
      immediatePpm: 250_000,
      vestingMs: 90 * 86_400_000,
      closeChunk: 500,
    });
  });

  it('reads valid values and falls back on invalid ones', () => {
    const c = rewardsConfig({
      REWARDS_START: '2027-01-01T00:00:00Z',
      REWARDS_EPOCH_S: '600',
      REWARDS_INITIAL_PER_EPOCH: '12.5',
      REWARDS_DECAY_PER_YEAR: '0',
      REWARDS_ALLOCATION_PPM: '500000',
      GRID_TOTAL_SUPPLY: '2000',
      REWARDS_OWNER_CAP_PPM: '1000000',
      REWARDS_VESTING_S: '0',
      REWARDS_CLOSE_CHUNK: '7',
    });
    expect(c).toMatchObject({ startMs: Date.parse('2027-01-01T00:00:00Z'), epochMs: 600_000, initialPerEpoch: 12_500_000n, retention: FIXED_ONE, allocation: 1_000n * GRID, ownerCapPpm: 1_000_000, vestingMs: 0, closeChunk: 7 });
    const bad = rewardsConfig({
      REWARDS_START: 'tomorrow',
      REWARDS_EPOCH_S: '-5',
      REWARDS_INITIAL_PER_EPOCH: '1e9',
      REWARDS_DECAY_PER_YEAR: '1.5',
      REWARDS_ALLOCATION_PPM: '1000001',
      REWARDS_MIN_UPTIME_PPM: 'x',
      REWARDS_STAKE_PER_GPU: '0',
      REWARDS_TAPER_FULL_UTIL_PPM: '0',
      REWARDS_CLOSE_CHUNK: '0',
      GRID_TOTAL_SUPPLY: '-1',
    });
    expect(bad).toEqual(config);
  });

  it('retentionFor: (1 − d)^(epoch / 365 days) as an integer of 10^18', () => {
    const f = retentionFor(0.12, 3_600_000);
    expect(f).toBe(999_985_407_255_846_145n);
    // 8,760 hourly epochs make a 365-day year: f^8760 ≈ 0.88 to within the fixed point's error.
    const year = (powFixed(f, 8760) * 10n ** 12n) / POW_ONE;
    expect(year >= 879_999_999_990n && year <= 880_000_000_010n).toBe(true);
    expect(retentionFor(0, 3_600_000)).toBe(FIXED_ONE);
    expect(() => retentionFor(1, 3_600_000)).toThrow(RangeError);
  });
});

describe('schedule', () => {
  it('numbers epochs from the start', () => {
    const t0 = config.startMs;
    expect(epochOf(config, t0 - 1)).toBe(-1);
    expect(epochOf(config, t0)).toBe(0);
    expect(epochOf(config, t0 + 3_599_999)).toBe(0);
    expect(epochOf(config, t0 + 3_600_000)).toBe(1);
    expect(epochBounds(config, 2)).toEqual({ startMs: t0 + 7_200_000, endMs: t0 + 10_800_000 });
  });

  it('emits the default schedule: 6,000 GRID first, about 49.34M in year one, the 400M allocation in year 29', () => {
    expect(scheduleTotal(config)).toBe(411_163_242_275_783n);
    expect(emission(config, -1)).toBe(0n);
    expect(emission(config, 0)).toBe(6_000_000_000n);
    expect(emission(config, 1)).toBe(5_999_912_444n);
    expect(emission(config, 8_759)).toBe(5_280_077_051n);
    expect(emittedThrough(config, 8_759)).toBe(49_339_589_073_093n);
    // The epoch that reaches the allocation emits what is left; later ones nothing.
    expect(emittedThrough(config, 247_132)).toBe(400_000_000_000_000n);
    expect(emittedThrough(config, 247_131) < 400_000_000_000_000n).toBe(true);
    expect(emission(config, 247_132)).toBe(39_248_786n);
    expect(emission(config, 247_133)).toBe(0n);
    expect(emittedThrough(config, 10_000_000)).toBe(config.allocation);
  });

  it('with no decay emits E0 each epoch until the allocation is spent', () => {
    const c = rewardsConfig({ REWARDS_DECAY_PER_YEAR: '0', REWARDS_INITIAL_PER_EPOCH: '300', GRID_TOTAL_SUPPLY: '1000', REWARDS_ALLOCATION_PPM: '1000000' });
    expect([0, 1, 2, 3, 4].map((n) => emission(c, n))).toEqual([300n * GRID, 300n * GRID, 300n * GRID, 100n * GRID, 0n]);
  });
});

describe('weights', () => {
  it('model weights are √(int8/1513)·√(vram/80) rounded to ppm', () => {
    expect(MODEL_WEIGHTS_PPM).toMatchObject({ 'h100-80gb': 1_000_000, 'h200-141gb': 1_395_190, 'a100-80gb': 642_204, 'a100-40gb': 454_107, 'rtx-4090-24gb': 361_754, 't4-16gb': 131_089, 'v100-16gb': 86_038 });
    expect(modelWeightPpm(null)).toBe(0);
    expect(modelWeightPpm('toString')).toBe(0);
    expect(modelWeightPpm('no-such-gpu')).toBe(0);
  });

  it('weighs base, lease bonus and stake bonus as in the doc', () => {
    // 2 H100s, all hour online, one GPU leased all hour, half the full stake:
    // base 2,000,000 + lease 2,000,000·0.5·0.5 + stake 2,000,000·0.25·0.5.
    expect(weight(config, 3600, node({ gpusOffered: 2, leasedGpuS: 3600, stake: 200n * GRID }))).toBe(2_750_000n);
    // Full lease and more than the full stake: the bonuses stop at their maximum.
    expect(weight(config, 3600, node({ leasedGpuS: 99_999, stake: 10_000n * GRID, confirmedS: 9_999 }))).toBe(1_750_000n);
    // An A100-80GB online 95% of the hour: ⌊642,204 · 0.95⌋.
    expect(weight(config, 3600, node({ gpuModel: 'a100-80gb', confirmedS: 3420 }))).toBe(610_093n);
  });

  it('eligibility: uptime, GPUs offered, verified, a catalog model', () => {
    expect(eligible(config, 3600, node({ confirmedS: 3420 }))).toBe(true);
    expect(eligible(config, 3600, node({ confirmedS: 3419 }))).toBe(false);
    expect(eligible(config, 3600, node({ gpusOffered: 0 }))).toBe(false);
    expect(eligible(config, 3600, node({ verified: false }))).toBe(false);
    expect(eligible(config, 3600, node({ gpuModel: null }))).toBe(false);
    expect(weight(config, 3600, node({ verified: false }))).toBe(0n);
  });

  it('with no uptime threshold, a node with no confirmed second is not eligible and gets no line', () => {
    const open = { ...config, minUptimePpm: 0 };
    expect(eligible(open, 3600, node({ confirmedS: 0 }))).toBe(false);
    expect(eligible(open, 3600, node({ confirmedS: 1 }))).toBe(true);
    const r = splitEpoch(open, 3600, 1000n * GRID, 0n, [node({ nodeId: 'a', confirmedS: 0 }), node({ nodeId: 'b' })]);
    expect(r.lines.map((l) => l.nodeId)).toEqual(['b']);
    expect(r.lines[0]!.weight).toBeGreaterThan(0n);
  });
});

describe('splitEpoch', () => {
  const fleet: NodeInputs[] = [
    node({ nodeId: 'n-a', ownerId: 'o1', gpusOffered: 2, leasedGpuS: 3600, stake: 200n * GRID }),
    node({ nodeId: 'n-b', ownerId: 'o2', gpuModel: 'a100-80gb', confirmedS: 3420 }),
    node({ nodeId: 'n-c', ownerId: 'o3', confirmedS: 3419 }),
    node({ nodeId: 'n-d', ownerId: 'o3', verified: false }),
  ];

  it('tapers by paid utilisation and caps two owners at 10% each, returning the rest', () => {
    // u = 3,600 / 10,800 = 1/3; taper = 1 − ⌈(1/3)/0.8 in ppm⌉ = 583,333 ppm.
    expect(splitEpoch(config, 3600, 6_000n * GRID, 0n, fleet)).toEqual({
      lines: [
        { nodeId: 'n-a', ownerId: 'o1', weight: 2_750_000n, amount: 349_999_800n },
        { nodeId: 'n-b', ownerId: 'o2', weight: 610_093n, amount: 349_999_800n },
      ],
      utilisationPpm: 333_333,
      taperPpm: 583_333,
      providersEmission: 3_499_998_000n,
      paid: 699_999_600n,
      returned: 5_300_000_400n,
    });
  });

  it('without the cap splits by weight after inspector pay, flooring each line', () => {
    const r = splitEpoch({ ...config, ownerCapPpm: 1_000_000 }, 3600, 6_000n * GRID, 1_000n * GRID, fleet);
    // P = 5,000 GRID · 0.583333; lines ⌊P · w / 3,360,093⌋.
    expect(r.providersEmission).toBe(2_916_665_000n);
    expect(r.lines.map((l) => l.amount)).toEqual([2_387_085_342n, 529_579_657n]);
    expect(r.paid).toBe(2_916_664_999n);
    expect(r.returned).toBe(2_083_335_001n);
  });

  it("re-spreads a capped owner's excess over the others by weight", () => {
    // One owner with 3 × 4 H100s and ten owners with one H100 each: the big owner would get 12/22.
    const nodes = Array.from({ length: 13 }, (_, i) =>
      node({ nodeId: `n${String(i).padStart(2, '0')}`, ownerId: i < 3 ? 'big' : `o${i}`, gpusOffered: i < 3 ? 4 : 1 }),
    );
    const r = splitEpoch(config, 3600, 6_000n * GRID, 0n, nodes);
    expect(r.taperPpm).toBe(1_000_000);
    expect(r.lines.slice(0, 3).map((l) => l.amount)).toEqual([200n * GRID, 200n * GRID, 200n * GRID]);
    expect(r.lines.slice(3).every((l) => l.amount === 540n * GRID)).toBe(true);
    expect(r.paid).toBe(6_000n * GRID);
    expect(r.returned).toBe(0n);
  });

  it('inspector pay above the emission leaves nothing; no eligible node returns everything', () => {
    expect(splitEpoch(config, 3600, 10n, 20n, fleet)).toMatchObject({ paid: 0n, returned: 0n, providersEmission: 0n });
    expect(splitEpoch(config, 3600, 10n, 0n, [])).toEqual({ lines: [], utilisationPpm: 0, taperPpm: 1_000_000, providersEmission: 10n, paid: 0n, returned: 10n });
  });

  it('the taper reaches its floor at full utilisation', () => {
    expect(taperFor(config, 0n, 100n)).toBe(1_000_000);
    expect(taperFor(config, 40n, 100n)).toBe(500_000);
    expect(taperFor(config, 80n, 100n)).toBe(200_000);
    expect(taperFor(config, 100n, 100n)).toBe(200_000);
  });
});

describe('vesting', () => {
  it('splits 25% now and releases the rest linearly over 90 days from the epoch end', () => {
    expect(vestingSplit(config, 1_000_003n)).toEqual({ immediate: 250_000n, vesting: 750_003n });
    const end = config.startMs + 3_600_000;
    expect(releasedBy(config, 750_003n, end, end - 1)).toBe(0n);
    expect(releasedBy(config, 750_003n, end, end)).toBe(0n);
    expect(releasedBy(config, 750_003n, end, end + 45 * 86_400_000)).toBe(375_001n);
    expect(releasedBy(config, 750_003n, end, end + 90 * 86_400_000)).toBe(750_003n);
    expect(releasedBy(config, 750_003n, end, end + 900 * 86_400_000)).toBe(750_003n);
  });
});
