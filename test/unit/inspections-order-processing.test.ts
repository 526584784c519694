// The order-processing check against leases the lifecycle itself produced: honest records pass
// whatever happened to them; each kind of tampering is named.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { auditLease, summarise } from '../../src/inspections/order-processing.ts';
import type { LeaseConfig } from '../../src/leases/config.ts';
import { newRecord, nextStep, plan, receive, stepDone, type LeaseInput, type LeaseRecord } from '../../src/leases/lifecycle.ts';
import type { LeaseTerms } from '../../src/market/orders.ts';

const config: LeaseConfig = { provisionTimeoutMs: 120_000, graceMs: 45_000, settleEveryMs: 60_000, feeBps: 500n };
const T0 = 1_800_000_000_000;

const terms = (): LeaseTerms => ({
  leaseId: 'lse_audit', tradeId: 'trd_audit', bidId: 'ord_b', askId: 'ord_a', renterId: 'acc_r', providerId: 'acc_p', nodeId: 'node_a',
  region: 'us-east', gpuModel: 'h100-80gb', gpus: 2, gpuIndices: [0, 1], price: 2_000_000, durationS: 1_800, asset: 'USD', amount: '2000000',
  improvement: '0', gridUsdRate: '250000', gridDiscountBps: '1000', maxDurationS: 7_200,
  workload: { image: 'ghcr.io/acme/train:1', command: [], env: {}, ports: [] }, createdAt: T0,
});

/** Runs every due step (all succeed), as the Lease object would; returns the record and what was refunded. */
function settle(rec: LeaseRecord, now: number, refunded: { amount: bigint }): LeaseRecord {
  rec = plan(rec, now, config);
  for (let i = 0; i < 64; i++) {
    const step = nextStep(rec, now, config);
    if (!step) break;
    if (step.kind === 'refund') refunded.amount += step.amount;
    rec = plan(stepDone(rec, step, { ok: true }, now), now, config);
  }
  return rec;
}

/** A lease that starts `latencyMs` after its fill, is confirmed every 10 s for `runMs`, then ends as `end` says. */
function lease(latencyMs: number, runMs: number, end: 'terminate' | 'exited' | 'silence'): { rec: LeaseRecord; now: number; refunded: bigint } {
  const refunded = { amount: 0n };
  let now = T0 + latencyMs;
  let rec = settle(newRecord(terms()), T0, refunded);
  rec = settle(receive(rec, { kind: 'event', event: { type: 'started', at: new Date(now).toISOString() } }, now, config).rec, now, refunded);
  const started = now;
  for (let t = started + 10_000; t <= started + runMs; t += 10_000) {
    now = t;
    rec = settle(receive(rec, { kind: 'confirm', points: [t] }, now, config).rec, now, refunded);
  }
  const input: LeaseInput | null = end === 'terminate' ? { kind: 'terminate' } : end === 'exited' ? { kind: 'event', event: { type: 'exited', at: new Date(now).toISOString(), exit_code: 0 } } : null;
  if (input) rec = settle(receive(rec, input, now, config).rec, now, refunded);
  now += 120_000;
  rec = settle(rec, now, refunded);
  return { rec, now, refunded: refunded.amount };
}

describe('the order-processing check', () => {
  it('passes leases the lifecycle settled, however they ended', () => {
    for (const end of ['terminate', 'exited', 'silence'] as const) {
      const { rec, now, refunded } = lease(5_000, 300_000, end);
      expect(rec.steps.refunded).toBe(true);
      const audit = auditLease(rec, config, now, refunded);
      expect({ end, findings: audit.findings }).toEqual({ end, findings: [] });
      expect(audit.billed).toBe(audit.expected);
      expect(audit.startLatencyMs).toBe(5_000);
    }
  });

  it('passes any honest lease (random start, run length and end)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 119_000 }), fc.integer({ min: 0, max: 1_900_000 }), fc.constantFrom('terminate', 'exited', 'silence' as const), (latency, run, end) => {
        const { rec, now, refunded } = lease(latency, run, end);
        expect(auditLease(rec, config, now, refunded).findings).toEqual([]);
      }),
      { seed: 1207, numRuns: 60 },
    );
  });

  it('names a record billed beyond its confirmed time, a fee off the rules, settlements that do not add up and a short refund', () => {
    const { rec, now, refunded } = lease(5_000, 300_000, 'terminate');
    const overbilled = { ...rec, billed: (BigInt(rec.billed) + 1_000n).toString() };
    expect(auditLease(overbilled, config, now, refunded).findings).toEqual(
      expect.arrayContaining([expect.stringMatching(/confirmed time is worth/), expect.stringMatching(/^fee /), expect.stringMatching(/^settlements add up/)]),
    );
    expect(auditLease(rec, config, now, refunded - 1n).findings).toEqual([expect.stringMatching(/^refunded /)]);
    const beyond = { ...rec, billed: '3000000' };
    expect(auditLease(beyond, config, now, refunded).findings).toEqual(expect.arrayContaining([expect.stringMatching(/more than the 2000000 held/)]));
  });

  it('names a start past the provisioning timeout and a silence billed past its last confirmation', () => {
    const late = lease(5_000, 60_000, 'terminate');
    const startedLate = { ...late.rec, startedAt: late.rec.terms.createdAt + 200_000 };
    expect(auditLease(startedLate, config, late.now).findings).toEqual(expect.arrayContaining([expect.stringMatching(/past the 120 s provisioning timeout/)]));
    const silent = lease(5_000, 60_000, 'silence');
    expect(silent.rec.state).toBe('failed');
    const stretched = { ...silent.rec, stoppedAt: silent.rec.stoppedAt! + 30_000 };
    expect(auditLease(stretched, config, silent.now).findings).toEqual(expect.arrayContaining([expect.stringMatching(/did not stop at its last confirmation/)]));
  });

  it('summarises a node: leases, how many passed, and the median start latency', () => {
    const audits = [lease(2_000, 60_000, 'terminate'), lease(4_000, 60_000, 'exited'), lease(10_000, 60_000, 'silence')].map((l) => auditLease(l.rec, config, l.now, l.refunded));
    audits[2]!.findings.push('tampered');
    expect(summarise(audits)).toMatchObject({ leases: 3, passed: 2, medianStartLatencyMs: 4_000 });
    expect(summarise([]).medianStartLatencyMs).toBeNull();
  });
});
