// Property-based tests of the supply rewards' pure rules (src/rewards/, docs/rewards.md) over
// random fleets, configurations and epochs. REWARDS_PROPERTY_RUNS overrides the number of runs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GPU_MODEL_IDS } from '../../src/catalog/gpus.ts';
import { FIXED_ONE, retentionFor, rewardsConfig, type RewardsConfig } from '../../src/rewards/config.ts';
import { POW_ONE, emission, emittedThrough, powFixed, scheduleTotal } from '../../src/rewards/schedule.ts';
import { splitEpoch, taperFor, type SplitResult } from '../../src/rewards/split.ts';
import { releasedBy, vestingSplit } from '../../src/rewards/vesting.ts';
import { eligible, weight, type NodeInputs } from '../../src/rewards/weights.ts';

const NUM_RUNS = Number(process.env.REWARDS_PROPERTY_RUNS ?? 200);
const base = rewardsConfig({});
const EPOCH_S = 3600;

const arbConfig: fc.Arbitrary<RewardsConfig> = fc
  .record({
    ownerCapPpm: fc.oneof(fc.constant(100_000), fc.integer({ min: 0, max: 1_000_000 })),
    taperFloorPpm: fc.integer({ min: 0, max: 1_000_000 }),
    taperFullUtilPpm: fc.integer({ min: 1, max: 1_000_000 }),
    minUptimePpm: fc.integer({ min: 0, max: 1_000_000 }),
    leaseBonusPpm: fc.integer({ min: 0, max: 2_000_000 }),
    stakeBonusPpm: fc.integer({ min: 0, max: 2_000_000 }),
    stakePerGpu: fc.bigInt({ min: 1n, max: 10_000_000_000n }),
  })
  .map((over) => ({ ...base, ...over }));

/** A node of a fleet: mostly eligible, some not (low uptime, no GPUs, unverified, unknown model). */
const arbNode = (owners: number): fc.Arbitrary<Omit<NodeInputs, 'nodeId'>> =>
  fc
    .record({
      owner: fc.integer({ min: 0, max: owners - 1 }),
      gpuModel: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...GPU_MODEL_IDS) }, { weight: 1, arbitrary: fc.constantFrom(null, 'unknown-gpu') }),
      gpusOffered: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: fc.constant(0) }),
      confirmedS: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 3420, max: 4000 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 3600 }) }),
      leasedFrac: fc.integer({ min: 0, max: 1100 }),
      verified: fc.oneof({ weight: 8, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      stake: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 5_000_000_000n })),
    })
    .map((r) => ({
      ownerId: `o${r.owner}`,
      gpuModel: r.gpuModel,
      gpusOffered: r.gpusOffered,
      confirmedS: r.confirmedS,
      leasedGpuS: Math.floor((r.gpusOffered * EPOCH_S * r.leasedFrac) / 1000),
      verified: r.verified,
      stake: r.stake,
    }));

const arbFleet = fc
  .integer({ min: 1, max: 15 })
  .chain((owners) => fc.array(arbNode(owners), { minLength: 0, maxLength: 40 }))
  .map((nodes) => nodes.map((n, i) => ({ ...n, nodeId: `node-${String(i).padStart(3, '0')}` })));

const arbAmounts = fc.record({ emission: fc.bigInt({ min: 0n, max: 20_000_000_000n }), inspectorPay: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 21_000_000_000n })) });

const p0 = (emission: bigint, pay: bigint) => (emission > pay ? emission - pay : 0n);
const capOf = (c: RewardsConfig, r: SplitResult) => (r.providersEmission * BigInt(c.ownerCapPpm)) / 1_000_000n;
function ownerTotals(r: SplitResult): Map<string, { amount: bigint; weight: bigint; lines: number }> {
  const m = new Map<string, { amount: bigint; weight: bigint; lines: number }>();
  for (const l of r.lines) {
    const t = m.get(l.ownerId) ?? { amount: 0n, weight: 0n, lines: 0 };
    m.set(l.ownerId, { amount: t.amount + l.amount, weight: t.weight + l.weight, lines: t.lines + 1 });
  }
  return m;
}
const abs = (x: bigint) => (x < 0n ? -x : x);

describe('splitEpoch properties', () => {
  it('conserves: paid + returned = max(0, emission − inspector pay), lines ≥ 0, the taper cut is returned', () => {
    fc.assert(
      fc.property(arbConfig, arbFleet, arbAmounts, (c, nodes, { emission, inspectorPay }) => {
        const r = splitEpoch(c, EPOCH_S, emission, inspectorPay, nodes);
        const total = p0(emission, inspectorPay);
        expect(r.paid + r.returned).toBe(total);
        expect(r.paid).toBe(r.lines.reduce((s, l) => s + l.amount, 0n));
        expect(r.lines.every((l) => l.amount >= 0n && l.weight > 0n)).toBe(true);
        expect(r.paid <= r.providersEmission).toBe(true);
        expect(r.returned >= total - r.providersEmission).toBe(true);
        expect(r.providersEmission).toBe((total * BigInt(r.taperPpm)) / 1_000_000n);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('no owner above the cap; when every owner is capped what they cannot take is returned', () => {
    fc.assert(
      fc.property(arbConfig, arbFleet, arbAmounts, (c, nodes, { emission, inspectorPay }) => {
        const r = splitEpoch(c, EPOCH_S, emission, inspectorPay, nodes);
        const cap = capOf(c, r);
        const owners = ownerTotals(r);
        for (const t of owners.values()) expect(t.amount <= cap).toBe(true);
        const room = cap * BigInt(owners.size);
        if (room < r.providersEmission) {
          // The owners together cannot absorb P: at least P − owners · cap goes back to the pool.
          const taperCut = p0(emission, inspectorPay) - r.providersEmission;
          expect(r.returned - taperCut >= r.providersEmission - room).toBe(true);
          expect(r.returned > 0n).toBe(true);
        }
        // With room for everyone, only floors' remainders are lost: under one micro per line.
        if (c.ownerCapPpm === 1_000_000 && r.lines.length > 0) expect(r.providersEmission - r.paid < BigInt(r.lines.length)).toBe(true);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('pays nodes within an owner in proportion to weight, and uncapped nodes across owners too (1 micro per line)', () => {
    fc.assert(
      fc.property(arbConfig, arbFleet, arbAmounts, (c, nodes, { emission, inspectorPay }) => {
        const r = splitEpoch(c, EPOCH_S, emission, inspectorPay, nodes);
        const owners = ownerTotals(r);
        for (const l of r.lines) {
          const o = owners.get(l.ownerId)!;
          // |amount − total · w / W_o| ≤ lines of the owner + 1 micro.
          expect(abs(l.amount * o.weight - o.amount * l.weight) <= BigInt(o.lines + 1) * o.weight).toBe(true);
        }
        // Owners well below the cap are uncapped: their lines are ⌊R · w / W⌋ for one R/W.
        const cap = capOf(c, r);
        const free = r.lines.filter((l) => owners.get(l.ownerId)!.amount + BigInt(owners.get(l.ownerId)!.lines) < cap);
        for (let i = 1; i < free.length; i++) {
          const a = free[i - 1]!;
          const b = free[i]!;
          const bound = a.weight > b.weight ? a.weight : b.weight;
          expect(abs(a.amount * b.weight - b.amount * a.weight) < bound).toBe(true);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('does not depend on the order of its input', () => {
    fc.assert(
      fc.property(arbConfig, arbFleet, arbAmounts, fc.integer(), (c, nodes, { emission, inspectorPay }, seed) => {
        const shuffled = [...nodes];
        let s = seed >>> 0;
        for (let i = shuffled.length - 1; i > 0; i--) {
          s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
          const j = s % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        expect(splitEpoch(c, EPOCH_S, emission, inspectorPay, shuffled)).toEqual(splitEpoch(c, EPOCH_S, emission, inspectorPay, nodes));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('ineligible nodes (low uptime, no GPUs offered, unverified) get no line and change nothing', () => {
    const arbBad = fc
      .record({ kind: fc.constantFrom('uptime', 'no-gpus', 'unverified'), node: arbNode(20), confirmedS: fc.integer({ min: 0, max: 3600 }) })
      .map(({ kind, node, confirmedS }) => ({ kind, node, confirmedS }));
    fc.assert(
      fc.property(arbConfig, arbFleet, arbAmounts, fc.array(arbBad, { minLength: 1, maxLength: 10 }), (c, nodes, { emission, inspectorPay }, bad) => {
        const extra: NodeInputs[] = bad.flatMap(({ kind, node, confirmedS }, i) => {
          const n: NodeInputs = { ...node, nodeId: `bad-${i}` };
          if (kind === 'uptime') {
            // Strictly below the threshold; with a threshold of 0 nothing is below it.
            const below = Math.floor((c.minUptimePpm * EPOCH_S - 1) / 1_000_000);
            if (c.minUptimePpm === 0) return [];
            return [{ ...n, confirmedS: Math.min(confirmedS, below) }];
          }
          // Uptime farming: online all epoch, offering nothing.
          if (kind === 'no-gpus') return [{ ...n, gpusOffered: 0, confirmedS: EPOCH_S, leasedGpuS: 0, verified: true }];
          return [{ ...n, verified: false }];
        });
        for (const n of extra) expect(eligible(c, EPOCH_S, n)).toBe(false);
        const r = splitEpoch(c, EPOCH_S, emission, inspectorPay, [...nodes, ...extra]);
        expect(r.lines.some((l) => l.nodeId.startsWith('bad-'))).toBe(false);
        expect(r).toEqual(splitEpoch(c, EPOCH_S, emission, inspectorPay, nodes));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("splitting an owner's nodes over two accounts gets at most two caps, and nothing at all when the owner was not capped", () => {
    fc.assert(
      fc.property(arbConfig, arbFleet, arbAmounts, fc.integer({ min: 0, max: 14 }), fc.integer(), (c, nodes, { emission, inspectorPay }, pick, bits) => {
        const owner = `o${pick}`;
        const mine = nodes.filter((n) => n.ownerId === owner);
        fc.pre(mine.length >= 2);
        const split = nodes.map((n, i) => (n.ownerId === owner && (bits >>> (i % 31)) & 1 ? { ...n, ownerId: `${owner}-alt` } : n));
        const one = splitEpoch(c, EPOCH_S, emission, inspectorPay, nodes);
        const two = splitEpoch(c, EPOCH_S, emission, inspectorPay, split);
        const cap = capOf(c, one);
        const before = ownerTotals(one).get(owner);
        const after = (ownerTotals(two).get(owner)?.amount ?? 0n) + (ownerTotals(two).get(`${owner}-alt`)?.amount ?? 0n);
        expect(after <= 2n * cap).toBe(true);
        if (before && before.amount + BigInt(before.lines) < cap) {
          // Not capped as one account: every node's amount is the same either way.
          expect(two.lines.map((l) => l.amount)).toEqual(one.lines.map((l) => l.amount));
          expect(after).toBe(before.amount);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('the taper is non-increasing in paid utilisation and stays within [floor, 1]', () => {
    fc.assert(
      fc.property(arbConfig, fc.bigInt({ min: 1n, max: 10n ** 12n }), fc.bigInt({ min: 0n, max: 10n ** 6n }), fc.bigInt({ min: 0n, max: 10n ** 6n }), (c, offered, x, y) => {
        const lo = (offered * (x < y ? x : y)) / 10n ** 6n;
        const hi = (offered * (x < y ? y : x)) / 10n ** 6n;
        const a = taperFor(c, lo, offered);
        const b = taperFor(c, hi, offered);
        expect(a >= b).toBe(true);
        for (const t of [a, b]) expect(t >= Math.min(c.taperFloorPpm, 1_000_000) && t <= 1_000_000).toBe(true);
      }),
      { numRuns: NUM_RUNS * 5 },
    );
  });

  it('more leased GPU-seconds on one node never raise the taper', () => {
    fc.assert(
      fc.property(arbConfig, arbFleet, fc.nat(), fc.integer({ min: 0, max: 30_000 }), (c, nodes, pick, more) => {
        fc.pre(nodes.length > 0);
        const i = pick % nodes.length;
        const busier = nodes.map((n, j) => (j === i ? { ...n, leasedGpuS: n.leasedGpuS + more } : n));
        const a = splitEpoch(c, EPOCH_S, 1_000_000n, 0n, nodes);
        const b = splitEpoch(c, EPOCH_S, 1_000_000n, 0n, busier);
        expect(b.utilisationPpm >= a.utilisationPpm).toBe(true);
        expect(b.taperPpm <= a.taperPpm).toBe(true);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('weight grows with GPUs, uptime, leases and stake', () => {
    fc.assert(
      fc.property(arbConfig, arbNode(1), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 5000 }), fc.bigInt({ min: 0n, max: 10n ** 9n }), (c, n, g, up, l, s) => {
        const a: NodeInputs = { ...n, nodeId: 'x' };
        const b: NodeInputs = { ...a, gpusOffered: a.gpusOffered + g, confirmedS: a.confirmedS + up, leasedGpuS: a.leasedGpuS + l, stake: a.stake + s };
        // More GPUs at the same leased seconds lowers the lease share, so compare with g = 0 for leases.
        if (g === 0) expect(weight(c, EPOCH_S, b) >= weight(c, EPOCH_S, a)).toBe(true);
        expect(weight(c, EPOCH_S, a) >= 0n).toBe(true);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('schedule properties', () => {
  it('the default schedule: E non-increasing for every n < 100,000 and emittedThrough = Σ E exactly at 66 of them', () => {
    let sum = 0n;
    let prev = emission(base, 0);
    const checks = new Set<number>([0, 1, 2, 8759, 8760, 99_999]);
    let s = 20_261_201;
    for (let k = 0; k < 60; k++) {
      s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
      checks.add(s % 100_000);
    }
    for (let n = 0; n < 100_000; n++) {
      const e = emission(base, n);
      if (e > prev) throw new Error(`E(${n}) = ${e} > E(${n - 1}) = ${prev}`);
      prev = e;
      sum += e;
      if (checks.has(n) && emittedThrough(base, n) !== sum) throw new Error(`emittedThrough(${n}) ≠ Σ E`);
    }
  });

  it('E(n) is ⌊E0 · f^n⌋ to within 2 micro-units (plus the rounding of the powers times S), non-increasing, and emittedThrough telescopes, for random configurations', () => {
    const arbSchedule = fc.record({
      e0: fc.bigInt({ min: 1n, max: 10n ** 13n }),
      decay: fc.oneof(fc.constant(0), fc.double({ min: 0.001, max: 0.9, noNaN: true })),
      epochS: fc.constantFrom(60, 600, 3600, 86_400),
      allocation: fc.oneof(fc.constant(10n ** 18n), fc.bigInt({ min: 0n, max: 10n ** 16n })),
      n: fc.integer({ min: 0, max: 2_000_000 }),
    });
    fc.assert(
      fc.property(arbSchedule, ({ e0, decay, epochS, allocation, n }) => {
        const c: RewardsConfig = { ...base, initialPerEpoch: e0, retention: retentionFor(decay, epochS * 1000), epochMs: epochS * 1000, allocation };
        const e = emission(c, n);
        const next = emission(c, n + 1);
        expect(e >= 0n && next >= 0n).toBe(true);
        expect(emittedThrough(c, n + 1) - emittedThrough(c, n)).toBe(next);
        expect(emittedThrough(c, n) <= allocation).toBe(true);
        const ideal = (e0 * powFixed(c.retention, n)) / POW_ONE;
        // The powers' rounding (≤ 2 units of 10^-36 per multiplication, ~4 per bit of n) scaled by S.
        const noise = ((scheduleTotal(c) ?? 0n) * 4n * BigInt(Math.ceil(Math.log2(n + 2)) + 1)) / POW_ONE + 1n;
        // Monotone wherever consecutive ideal emissions differ by 2 micro-units or more.
        const step = (ideal * (FIXED_ONE - c.retention)) / FIXED_ONE;
        if (emittedThrough(c, n + 1) < allocation) {
          expect(abs(e - ideal) <= 2n + noise).toBe(true);
          if (step >= 2n + 2n * noise || c.retention === FIXED_ONE) expect(next <= e).toBe(true);
        } else {
          expect(next <= e || emittedThrough(c, n) === allocation).toBe(true);
        }
        // A short run of epochs sums exactly.
        let sum = emittedThrough(c, n - 1);
        for (let k = n; k < n + 20; k++) sum += emission(c, k);
        expect(sum).toBe(emittedThrough(c, n + 19));
      }),
      { numRuns: NUM_RUNS * 2 },
    );
  });
});

describe('vesting properties', () => {
  it('immediate + vesting = amount; release is monotone, 0 until the end and all of it after the duration', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 16n }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 0, max: 400 * 86_400_000 }),
        fc.array(fc.integer({ min: -10 * 86_400_000, max: 500 * 86_400_000 }), { minLength: 2, maxLength: 20 }),
        (amount, immediatePpm, vestingMs, offsets) => {
          const c = { ...base, immediatePpm, vestingMs };
          const { immediate, vesting } = vestingSplit(c, amount);
          expect(immediate + vesting).toBe(amount);
          expect(immediate >= 0n && vesting >= 0n).toBe(true);
          const end = base.startMs + 7 * 3_600_000;
          const ts = [...offsets].sort((a, b) => a - b);
          let prev = -1n;
          for (const t of ts) {
            const r = releasedBy(c, vesting, end, end + t);
            expect(r >= prev && r >= 0n && r <= vesting).toBe(true);
            if (t < 0) expect(r).toBe(0n);
            if (t >= vestingMs) expect(r).toBe(vesting);
            prev = r;
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});
