// The order-processing check: whether a node's leases were served and billed by the rules,
// recomputed from each lease's own record. Pure: no Workers imports, no I/O, `now` passed in.
//
// What a lease's record proves and what is recomputed from it:
// - start latency: from the fill (`createdAt`) to the runner's `started` report, against the
//   provisioning timeout;
// - billing: `billed` equals the price of the heartbeat-confirmed time up to the billing end
//   (metering.ts), never more than the amount held; the fee is the fee of `billed`;
// - settlements: the logged settlements add up to `billed` (while the log holds them all) and
//   each was posted no earlier than it was due;
// - the end: a lease failed by silence stops billing at its last confirmation; once refunded, the
//   rest of the hold (`amount − billed`) went back, which the caller checks against the ledger.
import type { LeaseConfig } from '../leases/config.ts';
import { isTerminal, type LeaseRecord } from '../leases/lifecycle.ts';
import { billFor, confirmedMs, feeFor, lastPoint, type Rate } from '../leases/metering.ts';

/** The settlement log keeps this many entries; older ones cannot be summed. */
export const SETTLEMENT_LOG_KEPT = 20;

export interface LeaseAudit {
  leaseId: string;
  state: LeaseRecord['state'];
  /** From the fill to the runner's start report (ms); null when it never started. */
  startLatencyMs: number | null;
  /** What the record says was billed, and what its confirmed time is worth. */
  billed: bigint;
  expected: bigint;
  /** One line per rule the record breaks; empty when it follows them all. */
  findings: string[];
}

const rateOf = (rec: LeaseRecord): Rate => ({
  price: rec.terms.price,
  gpus: rec.terms.gpus,
  asset: rec.terms.asset,
  gridUsdRate: BigInt(rec.terms.gridUsdRate),
  gridDiscountBps: BigInt(rec.terms.gridDiscountBps),
});

const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** Checks one lease's record; `refunded` is what the ledger shows went back to the renter (null: not looked up). */
export function auditLease(rec: LeaseRecord, config: LeaseConfig, now: number, refunded: bigint | null = null): LeaseAudit {
  const findings: string[] = [];
  const amount = BigInt(rec.terms.amount);
  const billed = BigInt(rec.billed);
  const startLatencyMs = rec.startedAt === null ? null : rec.startedAt - rec.terms.createdAt;
  if (startLatencyMs !== null && startLatencyMs > config.provisionTimeoutMs) {
    findings.push(`started ${Math.round(startLatencyMs / 1000)} s after the fill, past the ${config.provisionTimeoutMs / 1000} s provisioning timeout`);
  }

  // The billing end: where billing stopped, or now for a running lease (periodic settlements lag).
  let expected = 0n;
  if (rec.startedAt !== null) {
    const end = rec.stoppedAt !== null ? Math.min(rec.stoppedAt, rec.endsAt ?? rec.stoppedAt) : Math.min(now, rec.endsAt ?? now);
    expected = min(billFor(rateOf(rec), confirmedMs(rec.spans, rec.startedAt, end)), amount);
  }
  if (billed > amount) findings.push(`billed ${billed} is more than the ${amount} held for the lease`);
  const final = rec.steps.refunded;
  if (final && billed !== expected) findings.push(`billed ${billed}, but its confirmed time is worth ${expected}`);
  if (!final && billed > expected) findings.push(`billed ${billed} so far, more than its confirmed time is worth (${expected})`);
  if (BigInt(rec.fee) !== feeFor(billed, config.feeBps) && rec.pendingSettlement === null) {
    findings.push(`fee ${rec.fee} is not the fee of ${billed} at ${config.feeBps} bps`);
  }

  if (rec.settlements <= SETTLEMENT_LOG_KEPT && rec.pendingSettlement === null) {
    const logged = rec.settlementLog.reduce((sum, s) => sum + BigInt(s.amount), 0n);
    if (logged !== billed) findings.push(`settlements add up to ${logged}, not the ${billed} billed`);
  }
  for (const s of rec.settlementLog) if (s.postedAt < s.dueAt) findings.push(`settlement ${s.n} was posted before it was due`);

  if (rec.state === 'failed' && rec.startedAt !== null && rec.stoppedAt !== null && rec.history.at(-1)?.reason?.startsWith('no heartbeat')) {
    const last = lastPoint(rec.spans) ?? rec.startedAt;
    if (rec.stoppedAt !== last) findings.push('failed from silence, but billing did not stop at its last confirmation');
  }
  if (final && refunded !== null && refunded !== amount - billed) {
    findings.push(`refunded ${refunded}, but ${amount - billed} of the hold was left`);
  }
  if (isTerminal(rec.state) && !final && rec.finalAfter !== null && now > rec.finalAfter + 3_600_000) {
    findings.push('ended more than an hour ago and still not settled');
  }
  return { leaseId: rec.terms.leaseId, state: rec.state, startLatencyMs, billed, expected, findings };
}

export interface NodeOrderProcessing {
  leases: number;
  passed: number;
  /** Median start latency of the leases that started (ms), or null. */
  medianStartLatencyMs: number | null;
  audits: LeaseAudit[];
}

/** The node-level summary of its leases' audits. */
export function summarise(audits: LeaseAudit[]): NodeOrderProcessing {
  const latencies = audits.map((a) => a.startLatencyMs).filter((l): l is number => l !== null).sort((a, b) => a - b);
  const mid = latencies.length === 0 ? null : latencies.length % 2 === 1 ? latencies[(latencies.length - 1) / 2]! : Math.round((latencies[latencies.length / 2 - 1]! + latencies[latencies.length / 2]!) / 2);
  return { leases: audits.length, passed: audits.filter((a) => a.findings.length === 0).length, medianStartLatencyMs: mid, audits };
}
