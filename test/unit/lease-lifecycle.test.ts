// The lease lifecycle against a model ledger: random inputs in random order (runner events,
// confirmations, terminate, extensions, time passing), and steps that fail or whose answer is
// lost (carried out, never recorded, so carried out again). The Lease object runs its entry
// points one at a time, so these sequences are every interleaving it can see.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LeaseConfig } from '../../src/leases/config.ts';
import { isTerminal, newRecord, nextStep, plan, receive, stepDone, type LeaseInput, type LeaseRecord, type LeaseStep } from '../../src/leases/lifecycle.ts';
import type { LeaseTerms } from '../../src/market/orders.ts';

const config: LeaseConfig = { provisionTimeoutMs: 120_000, graceMs: 45_000, settleEveryMs: 60_000, feeBps: 500n };
const T0 = 1_800_000_000_000;

function terms(amount: bigint, durationS: number): LeaseTerms {
  return {
    leaseId: 'lse_test', tradeId: 'trd_test', bidId: 'ord_bid', askId: 'ord_ask', renterId: 'acc_renter', providerId: 'acc_provider', nodeId: 'node_a',
    region: 'us-east', gpuModel: 'h100-80gb', gpus: 2, gpuIndices: [0, 1], price: 2_000_000, durationS, asset: 'USD', amount: amount.toString(),
    improvement: '0', gridUsdRate: '250000', gridDiscountBps: '1000', maxDurationS: durationS * 4,
    workload: { image: 'ghcr.io/acme/train:1', command: [], env: {}, ports: [] }, createdAt: T0,
  };
}

/** The ledger as the shell posts to it: every posting under a key, applied once. */
class ModelLedger {
  readonly keys = new Set<string>();
  available: bigint;
  held: bigint;
  provider = 0n;
  fees = 0n;
  captured = 0n;
  refunded = 0n;
  extensionHolds = new Map<string, bigint>();
  penalties = 0;
  rowFailed = false;

  constructor(available: bigint, held: bigint) {
    this.available = available;
    this.held = held;
  }

  private once(key: string, apply: () => void): void {
    if (this.keys.has(key)) return;
    apply();
    this.keys.add(key);
  }

  perform(step: LeaseStep, rec: LeaseRecord): { ok: true } | { ok: false; problem: string } {
    switch (step.kind) {
      case 'hold_extension':
        if (!this.keys.has(step.key) && this.available < step.amount) return { ok: false, problem: 'insufficient_funds' };
        this.once(step.key, () => {
          this.available -= step.amount;
          this.held += step.amount;
          this.extensionHolds.set(step.key, step.amount);
        });
        break;
      case 'release_extension':
        this.once(`${step.key}:release`, () => {
          this.held -= step.amount;
          this.available += step.amount;
        });
        break;
      case 'settle':
        this.once(`settle:${step.settlement.n}`, () => {
          const amount = BigInt(step.settlement.amount);
          const fee = BigInt(step.settlement.fee);
          this.held -= amount;
          this.captured += amount;
          this.provider += amount - fee;
          this.fees += fee;
        });
        break;
      case 'refund':
        if (step.amount > 0n) this.once('refund', () => {
          this.held -= step.amount;
          this.available += step.amount;
          this.refunded += step.amount;
        });
        break;
      case 'sweep':
        for (const [key, amount] of this.extensionHolds) {
          if (rec.extensions.some((e) => e.key === key)) continue;
          this.once(`${key}:release`, () => {
            this.held -= amount;
            this.available += amount;
          });
        }
        break;
      case 'penalise':
        if (!this.rowFailed) {
          this.rowFailed = true;
          this.penalties += 1;
        }
        break;
      default:
        break;
    }
    expect(this.held).toBeGreaterThanOrEqual(0n);
    expect(this.available).toBeGreaterThanOrEqual(0n);
    return { ok: true };
  }
}

type Fate = 'ok' | 'fail' | 'lost';

/** One run of the shell: plan, then steps one at a time until none is due or one fails. */
function run(rec: LeaseRecord, ledger: ModelLedger, now: number, fates: Fate[]): LeaseRecord {
  rec = plan(rec, now, config);
  for (let i = 0; i < 64; i++) {
    const step = nextStep(rec, now, config);
    if (!step) break;
    const fate = fates.shift() ?? 'ok';
    if (fate === 'fail') break;
    const outcome = ledger.perform(step, rec);
    if (fate === 'lost') break;
    rec = plan(stepDone(rec, step, outcome, now), now, config);
  }
  return rec;
}

const inputArb = fc.oneof(
  fc.record({ kind: fc.constant('started' as const), dt: fc.integer({ min: 0, max: 5_000 }) }),
  fc.record({ kind: fc.constant('exited' as const), dt: fc.integer({ min: 0, max: 5_000 }) }),
  fc.record({ kind: fc.constant('failed' as const), dt: fc.integer({ min: 0, max: 5_000 }) }),
  fc.record({ kind: fc.constant('confirm' as const), dt: fc.integer({ min: 0, max: 30_000 }) }),
  fc.record({ kind: fc.constant('terminate' as const), dt: fc.integer({ min: 0, max: 5_000 }) }),
  fc.record({ kind: fc.constant('extend' as const), dt: fc.integer({ min: 0, max: 5_000 }), key: fc.integer({ min: 1, max: 3 }), seconds: fc.integer({ min: 60, max: 1_800 }) }),
  fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: 1_000, max: 90_000 }) }),
);

function toInput(a: { kind: string; key?: number; seconds?: number }, now: number): LeaseInput | null {
  const at = new Date(now).toISOString();
  switch (a.kind) {
    case 'started': return { kind: 'event', event: { type: 'started', at } };
    case 'exited': return { kind: 'event', event: { type: 'exited', at, exit_code: 0 } };
    case 'failed': return { kind: 'event', event: { type: 'failed', at, reason: 'boom' } };
    case 'confirm': return { kind: 'confirm', points: [now] };
    case 'terminate': return { kind: 'terminate' };
    case 'extend': return { kind: 'extend', key: `ext:${a.key}`, seconds: a.seconds!, amount: (4_000_000n * BigInt(a.seconds!)) / 3_600n };
    default: return null;
  }
}

describe('the lease lifecycle under random interleavings and lost answers', () => {
  it('keeps renter debit = provider credit + fee, refund = amount − billed, and nothing held once ended', () => {
    fc.assert(
      fc.property(
        fc.array(inputArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.constantFrom<Fate>('ok', 'ok', 'ok', 'fail', 'lost'), { maxLength: 200 }),
        fc.integer({ min: 0, max: 20_000_000 }),
        (inputs, fates, spare) => {
          const amount = 2_000_000n; // 30 minutes of 2 GPUs at $2/h
          const ledger = new ModelLedger(BigInt(spare), amount);
          let rec = newRecord(terms(amount, 1_800));
          let now = T0;
          rec = run(rec, ledger, now, fates);
          for (const a of inputs) {
            now += a.dt;
            const input = toInput(a, now);
            if (input) rec = receive(rec, input, now, config).rec;
            rec = run(rec, ledger, now, fates);
            // Never more settled than the record knows of, and at most the one pending settlement more.
            const pending = rec.pendingSettlement ? BigInt(rec.pendingSettlement.amount) : 0n;
            expect(ledger.captured - BigInt(rec.billed)).toBeGreaterThanOrEqual(0n);
            expect(ledger.captured - BigInt(rec.billed)).toBeLessThanOrEqual(pending);
            expect(BigInt(rec.billed)).toBeLessThanOrEqual(BigInt(rec.terms.amount));
          }
          // Whatever happened, the renter stops the lease and time runs out: every step succeeds.
          rec = receive(rec, { kind: 'terminate' }, now, config).rec;
          for (let i = 0; i < 10 && !(rec.steps.refunded && rec.steps.swept && rec.extensionRequests.every((e) => e.status !== 'holding' && e.status !== 'releasing')); i++) {
            now += 60_000;
            rec = run(rec, ledger, now, []);
          }
          expect(isTerminal(rec.state)).toBe(true);
          expect(rec.steps.refunded).toBe(true);
          expect(ledger.captured).toBe(BigInt(rec.billed));
          expect(ledger.provider + ledger.fees).toBe(ledger.captured);
          expect(ledger.refunded).toBe(BigInt(rec.terms.amount) - BigInt(rec.billed));
          expect(ledger.held).toBe(0n);
          expect(ledger.available + ledger.captured).toBe(BigInt(spare) + amount);
          expect(ledger.penalties).toBe(rec.state === 'failed' ? 1 : 0);
          // Applied extensions are exactly the holds kept; every other hold went back.
          const applied = rec.extensions.reduce((a, e) => a + BigInt(e.amount), 0n);
          expect(BigInt(rec.terms.amount)).toBe(amount + applied);
        },
      ),
      { seed: 20261207, numRuns: 400 },
    );
  });

  it('never ends a lease while only creation steps run, even past the provisioning deadline', () => {
    const rec = newRecord({ ...terms(1_000_000n, 600), createdAt: T0 - 300_000 });
    expect(nextStep(rec, T0, config)).toEqual({ kind: 'book' });
    const booked = stepDone(rec, { kind: 'book' }, { ok: true }, T0);
    // Past the deadline the runner is not asked to start it; the plan (the alarm's) fails it.
    expect(nextStep(booked, T0, config)?.kind).not.toBe('command');
    expect(booked.state).toBe('provisioning');
    expect(plan(booked, T0, config).state).toBe('failed');
  });

  it('applies a settlement once, by its number', () => {
    let rec = receive(newRecord(terms(2_000_000n, 1_800)), { kind: 'event', event: { type: 'started', at: new Date(T0).toISOString() } }, T0, config).rec;
    rec = { ...rec, steps: { ...rec.steps, booked: true, commanded: true } };
    rec = receive(rec, { kind: 'confirm', points: [T0 + 30_000, T0 + 60_000] }, T0 + 60_000, config).rec;
    rec = plan(rec, T0 + 60_000, config);
    const step = nextStep(rec, T0 + 60_000, config);
    expect(step?.kind).toBe('settle');
    const once = stepDone(rec, step!, { ok: true }, T0 + 60_000);
    const twice = stepDone(once, step!, { ok: true }, T0 + 60_000);
    expect(once.billed).toBe('66666');
    expect(twice.billed).toBe(once.billed);
    expect(twice.settlements).toBe(1);
  });

  it('puts the renter’s webhooks after every step of the lease’s own', () => {
    let rec = newRecord(terms(2_000_000n, 1_800));
    rec = stepDone(stepDone(rec, { kind: 'book' }, { ok: true }, T0), { kind: 'command' }, { ok: true }, T0);
    rec = receive(rec, { kind: 'event', event: { type: 'started', at: new Date(T0).toISOString() } }, T0, config).rec;
    rec = receive(rec, { kind: 'extend', key: 'k', seconds: 600, amount: 666_666n }, T0, config).rec;
    const order: string[] = [];
    for (let i = 0; i < 10; i++) {
      const step = nextStep(rec, T0, config);
      if (!step) break;
      order.push(step.kind);
      rec = stepDone(rec, step, { ok: true }, T0);
    }
    expect(order).toEqual(['hold_extension', 'sync', 'extend_command', 'notify', 'notify']);
  });
});
