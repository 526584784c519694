// The lease's life, decided without I/O: (record, input, now) → new record, and (record, now) →
// the next step to carry out. Pure: no Workers imports, no clock (`now` is passed in), no `this`.
//
//   provisioning ──started──▶ running ──end of paid time / renter terminates / workload exits──▶ completed
//        │                       └──failed report / no confirming heartbeat for the grace──▶ failed
//        ├──failed report / not started within the provisioning timeout──▶ failed (nothing billed)
//        └──renter terminates──▶ cancelled (nothing billed)
//
// Everything outside the record (libSQL rows, ledger postings, the node's mailbox, the book,
// webhooks) is a step: `nextStep` names the first one due, the shell (src/durable/lease.ts)
// carries it out with an idempotency key of its own, and `stepDone` records it. The shell runs
// one input or step at a time, so nothing here ever sees a half-applied step; a step whose
// outcome was lost is simply carried out again under the same key.
//
// Step order matters: the lease's own steps (booking, commands, money, the book) come before the
// renter's webhooks, so a failing webhook never holds up a paid extension or a refund.
import type { LeaseEvent } from '../contracts/runner.ts';
import type { WebhookEventType } from '../contracts/webhooks.ts';
import type { LeaseTerms } from '../market/orders.ts';
import { formatAmount } from '../money/amount.ts';
import type { LeaseConfig } from './config.ts';
import { addPoint, billFor, confirmedMs, feeFor, lastPoint, type Rate, type Span } from './metering.ts';

export const LEASE_STATES = ['provisioning', 'running', 'completed', 'failed', 'cancelled'] as const;
export type LeaseState = (typeof LEASE_STATES)[number];
export const TERMINAL: readonly LeaseState[] = ['completed', 'failed', 'cancelled'];
export const isTerminal = (s: LeaseState) => TERMINAL.includes(s);

export interface Settlement {
  n: number;
  amount: string;
  fee: string;
  dueAt: number;
}

/**
 * An extension the renter asked for. Its cost is held under `key` by the lease itself, then
 * applied if the lease is still live, or released if it ended meanwhile: a hold never outlives
 * the lease unapplied.
 */
export interface ExtensionRequest {
  key: string;
  seconds: number;
  amount: string;
  at: number;
  status: 'holding' | 'applied' | 'refused' | 'releasing' | 'released';
}

export interface LeaseRecord {
  terms: LeaseTerms;
  state: LeaseState;
  history: Array<{ state: LeaseState; at: number; reason?: string }>;
  /** When the runner reported the workload started; billing counts from here. */
  startedAt: number | null;
  /** startedAt + the paid duration. */
  endsAt: number | null;
  /** When billing stopped (terminated, exited, failed, or the paid end). */
  stoppedAt: number | null;
  /** Heartbeat-confirmed time (see metering.ts). */
  spans: Span[];
  /** What the runner reported for reaching the workload (container port → host port). */
  ports: Record<string, number> | null;
  exitCode: number | null;
  /** The lease failed because heartbeats stopped: the book takes the node offline with the GPUs. */
  endedBySilence?: boolean;
  /** Cumulative amounts settled to the provider and as fee (decimal strings). */
  billed: string;
  fee: string;
  settlements: number;
  /** A settlement decided but not yet known to be posted; posting it again is a no-op. */
  pendingSettlement: Settlement | null;
  /** The last settlements posted: when each was due (end of its period) and when it was posted. */
  settlementLog: Array<Settlement & { postedAt: number }>;
  nextSettleAt: number | null;
  /**
   * The final settlement waits until then, or until a confirmation at or after `stoppedAt`:
   * heartbeats confirming the last seconds before any end arrive a flush later.
   */
  finalAfter: number | null;
  /** Extensions applied, by their hold key, each once. */
  extensions: Array<{ key: string; seconds: number; amount: string; at: number }>;
  extensionRequests: ExtensionRequest[];
  /** extend_lease commands put in the node's mailbox (one per applied extension). */
  extendsSent: number;
  /** Webhook events already handed to the webhook queue. */
  emitted: WebhookEventType[];
  steps: {
    booked: boolean;
    commanded: boolean;
    stopped: boolean;
    refunded: boolean;
    /** Extension holds found in the ledger but never applied are released (after the refund). */
    swept: boolean;
    gpusReturned: boolean;
    /** The node's reliability penalty for a failed lease (applied once, by the lease row's state). */
    reliability: boolean;
    /** The node's current trust values pushed to the books after the penalty. */
    trust: boolean;
    /** The libSQL row shows `state`, duration and amount. */
    synced: boolean;
  };
  updatedAt: number;
}

export type LeaseInput =
  | { kind: 'event'; event: LeaseEvent }
  | { kind: 'confirm'; points: number[] }
  | { kind: 'terminate' }
  | { kind: 'extend'; key: string; seconds: number; amount: bigint };

export type LeaseStep =
  | { kind: 'book' }
  | { kind: 'command' }
  | { kind: 'hold_extension'; key: string; amount: bigint; seconds: number }
  | { kind: 'release_extension'; key: string; amount: bigint }
  | { kind: 'settle'; settlement: Settlement }
  | { kind: 'stop'; reason: string }
  | { kind: 'penalise' }
  | { kind: 'return_gpus'; nodeSilent: boolean }
  | { kind: 'refund'; amount: bigint }
  | { kind: 'sweep' }
  | { kind: 'publish_trust' }
  | { kind: 'sync' }
  | { kind: 'extend_command'; n: number; endsAt: number }
  | { kind: 'notify'; type: WebhookEventType; id: string; data: Record<string, unknown> };

/** A step either happened, or was refused for good (only a hold can be: not enough money). */
export type StepOutcome = { ok: true } | { ok: false; problem: string };

export function newRecord(terms: LeaseTerms): LeaseRecord {
  return {
    terms,
    state: 'provisioning',
    history: [{ state: 'provisioning', at: terms.createdAt }],
    startedAt: null,
    endsAt: null,
    stoppedAt: null,
    spans: [],
    ports: null,
    exitCode: null,
    billed: '0',
    fee: '0',
    settlements: 0,
    pendingSettlement: null,
    settlementLog: [],
    nextSettleAt: null,
    finalAfter: null,
    extensions: [],
    extensionRequests: [],
    extendsSent: 0,
    emitted: [],
    steps: { booked: false, commanded: false, stopped: false, refunded: false, swept: false, gpusReturned: false, reliability: false, trust: false, synced: true },
    updatedAt: 0,
  };
}

/** Fills fields that records stored by earlier versions lack, so they run under these rules. */
export function upgradeRecord(stored: LeaseRecord): LeaseRecord {
  const rec = structuredClone(stored);
  rec.extensionRequests ??= rec.extensions.map((e) => ({ ...e, status: 'applied' as const }));
  rec.extendsSent ??= rec.steps.synced ? rec.extensions.length : 0;
  const steps = rec.steps as Partial<LeaseRecord['steps']>;
  steps.swept ??= rec.steps.gpusReturned;
  steps.trust ??= rec.steps.reliability;
  return rec;
}

const provisionDeadline = (rec: LeaseRecord, c: LeaseConfig) => rec.terms.createdAt + c.provisionTimeoutMs;

function transition(rec: LeaseRecord, state: LeaseState, at: number, reason?: string): void {
  rec.state = state;
  rec.history.push({ state, at, ...(reason ? { reason } : {}) });
  rec.steps.synced = false;
}

/** Running → ended: billing stops at `stoppedAt`; the final settlement waits for the last flush. */
function stopRunning(rec: LeaseRecord, state: 'completed' | 'failed', stoppedAt: number, at: number, reason: string, c: LeaseConfig): void {
  rec.stoppedAt = Math.max(stoppedAt, rec.startedAt!);
  rec.finalAfter = rec.stoppedAt + c.graceMs;
  transition(rec, state, at, reason);
}

export type InputReply =
  | { kind: 'state'; state: LeaseState }
  | { kind: 'not_running' }
  | { kind: 'extension'; outcome: 'accepted' | 'ended' | 'too_long' };

/** Applies one input; the record is copied, never changed in place. */
export function receive(stored: LeaseRecord, input: LeaseInput, now: number, c: LeaseConfig): { rec: LeaseRecord; reply: InputReply; changed: boolean } {
  const rec = structuredClone(stored);
  const same = { rec: stored, changed: false };
  switch (input.kind) {
    case 'event': {
      const ev = input.event;
      // The runner's clock is trusted only within what we know: not before the lease, not ahead of now.
      const at = Math.min(Math.max(Date.parse(ev.at), rec.terms.createdAt), now);
      if (ev.type === 'started' && rec.state === 'provisioning') {
        transition(rec, 'running', at);
        rec.startedAt = at;
        rec.endsAt = at + rec.terms.durationS * 1000;
        rec.spans = addPoint(rec.spans, at, c.graceMs);
        rec.ports = ev.ports ?? null;
        rec.nextSettleAt = now + c.settleEveryMs;
      } else if (ev.type === 'failed' && rec.state === 'provisioning') {
        transition(rec, 'failed', at, `runner reported: ${ev.reason}`.slice(0, 500));
      } else if (ev.type === 'failed' && rec.state === 'running') {
        stopRunning(rec, 'failed', at, at, `runner reported: ${ev.reason}`.slice(0, 500), c);
      } else if (ev.type === 'exited' && rec.state === 'running') {
        rec.exitCode = ev.exit_code;
        // Exiting at or after the paid end is the normal end; earlier, the workload finished by itself.
        const end = Math.min(at, rec.endsAt!);
        stopRunning(rec, 'completed', end, at, at >= rec.endsAt! ? 'paid duration over' : `workload exited with code ${ev.exit_code}`, c);
      } else {
        // A repeated or late event (a retry): nothing changes.
        return { ...same, reply: { kind: 'state', state: rec.state } };
      }
      return { rec, changed: true, reply: { kind: 'state', state: rec.state } };
    }
    case 'confirm': {
      // Confirmations count until the final settlement, which may wait for the last of them.
      if (rec.steps.refunded) return { ...same, reply: { kind: 'state', state: rec.state } };
      let spans = rec.spans;
      for (const p of input.points) if (Number.isFinite(p) && p >= rec.terms.createdAt && p <= now) spans = addPoint(spans, p, c.graceMs);
      if (JSON.stringify(spans) === JSON.stringify(rec.spans)) return { ...same, reply: { kind: 'state', state: rec.state } };
      rec.spans = spans;
      return { rec, changed: true, reply: { kind: 'state', state: rec.state } };
    }
    case 'terminate': {
      if (rec.state === 'provisioning') transition(rec, 'cancelled', now, 'cancelled by the renter');
      else if (rec.state === 'running') stopRunning(rec, 'completed', Math.min(now, rec.endsAt!), now, 'terminated by the renter', c);
      else return { ...same, reply: { kind: 'state', state: rec.state } };
      return { rec, changed: true, reply: { kind: 'state', state: rec.state } };
    }
    case 'extend': {
      if (rec.extensionRequests.some((e) => e.key === input.key)) return { ...same, reply: { kind: 'extension', outcome: 'accepted' } };
      if (isTerminal(rec.state)) return { ...same, reply: { kind: 'extension', outcome: 'ended' } };
      const asked = rec.extensionRequests.filter((e) => e.status === 'holding').reduce((n, e) => n + e.seconds, 0);
      if (rec.terms.durationS + asked + input.seconds > rec.terms.maxDurationS) return { ...same, reply: { kind: 'extension', outcome: 'too_long' } };
      rec.extensionRequests.push({ key: input.key, seconds: input.seconds, amount: input.amount.toString(), at: now, status: 'holding' });
      return { rec, changed: true, reply: { kind: 'extension', outcome: 'accepted' } };
    }
  }
}

const rateOf = (t: LeaseTerms): Rate => ({ price: t.price, gpus: t.gpus, asset: t.asset, gridUsdRate: BigInt(t.gridUsdRate), gridDiscountBps: BigInt(t.gridDiscountBps) });

/** What confirmed time up to `until` costs, never more than the lease's amount. */
function billedUpTo(rec: LeaseRecord, until: number): bigint {
  if (rec.startedAt === null) return 0n;
  const bill = billFor(rateOf(rec.terms), confirmedMs(rec.spans, rec.startedAt, until));
  const cap = BigInt(rec.terms.amount);
  return bill < cap ? bill : cap;
}

/** Whether the final settlement may be made: the confirmations of the last seconds are in, or no longer awaited. */
export function finalReady(rec: LeaseRecord, now: number): boolean {
  if (!isTerminal(rec.state)) return false;
  if (rec.stoppedAt === null || rec.finalAfter === null) return true;
  return now >= rec.finalAfter || (lastPoint(rec.spans) ?? 0) >= rec.stoppedAt;
}

/** The billing end of a lease that has stopped. */
const finalEnd = (rec: LeaseRecord) => Math.min(rec.endsAt ?? rec.stoppedAt ?? 0, rec.stoppedAt ?? rec.endsAt ?? 0);

/** Decides what time has decided: the provisioning deadline, the paid end, silence, and which settlement is due. */
export function plan(stored: LeaseRecord, now: number, c: LeaseConfig): LeaseRecord {
  const rec = structuredClone(stored);
  if (rec.state === 'provisioning' && now >= provisionDeadline(rec, c)) {
    transition(rec, 'failed', now, `not started within ${c.provisionTimeoutMs / 1000} s`);
  }
  if (rec.state === 'running') {
    const last = lastPoint(rec.spans) ?? rec.startedAt!;
    if (now >= rec.endsAt! && last >= rec.endsAt! - c.graceMs) {
      stopRunning(rec, 'completed', rec.endsAt!, rec.endsAt!, 'paid duration over', c);
    } else if (now - last > c.graceMs) {
      // Billing stops at the last confirmation: the silence after it proves nothing.
      stopRunning(rec, 'failed', last, now, `no heartbeat confirmed the lease for ${Math.round((now - last) / 1000)} s`, c);
      rec.endedBySilence = true;
    }
  }
  if (rec.pendingSettlement) return rec;
  const t = rec.terms;
  let until: number | null = null;
  let dueAt = now;
  if (rec.state === 'running' && rec.nextSettleAt !== null && now >= rec.nextSettleAt) {
    until = Math.min(now, rec.endsAt!);
    dueAt = rec.nextSettleAt;
    rec.nextSettleAt = now + c.settleEveryMs;
  } else if (isTerminal(rec.state) && rec.state !== 'cancelled' && !rec.steps.refunded && finalReady(rec, now)) {
    until = finalEnd(rec);
    // Due when the lease ended: at its failure, or at its (paid or early) end.
    dueAt = rec.state === 'failed' ? rec.history.at(-1)!.at : until;
  }
  if (until !== null) {
    const billedNow = billedUpTo(rec, until);
    const delta = billedNow - BigInt(rec.billed);
    if (delta > 0n) {
      const fee = feeFor(billedNow, c.feeBps) - BigInt(rec.fee);
      rec.pendingSettlement = { n: rec.settlements + 1, amount: delta.toString(), fee: fee.toString(), dueAt };
    }
  }
  return rec;
}

/** The first step due now, or null when there is nothing to do until time moves or an input arrives. */
export function nextStep(rec: LeaseRecord, now: number, c: LeaseConfig): LeaseStep | null {
  const s = rec.steps;
  if (!s.booked) return { kind: 'book' };
  // Past the deadline the runner is not asked to start what is about to fail.
  if (rec.state === 'provisioning' && !s.commanded && now < provisionDeadline(rec, c)) return { kind: 'command' };
  const holding = rec.extensionRequests.find((e) => e.status === 'holding');
  if (holding) return { kind: 'hold_extension', key: holding.key, amount: BigInt(holding.amount), seconds: holding.seconds };
  const releasing = rec.extensionRequests.find((e) => e.status === 'releasing');
  if (releasing) return { kind: 'release_extension', key: releasing.key, amount: BigInt(releasing.amount) };
  if (rec.pendingSettlement) return { kind: 'settle', settlement: rec.pendingSettlement };
  if (isTerminal(rec.state)) {
    // Whatever ended the lease, the runner stops the workload (it ignores an unknown lease).
    if (!s.stopped) return { kind: 'stop', reason: rec.history.at(-1)?.reason ?? rec.state };
    // The node's lowered trust reaches the books before its GPUs do, so a reopened ask never
    // matches a `min_reliability` bid on the old value.
    if (rec.state === 'failed' && !s.reliability) return { kind: 'penalise' };
    if (rec.state === 'failed' && !s.trust) return { kind: 'publish_trust' };
    if (!s.gpusReturned) return { kind: 'return_gpus', nodeSilent: rec.endedBySilence === true };
    if (!s.refunded && finalReady(rec, now)) return { kind: 'refund', amount: BigInt(rec.terms.amount) - BigInt(rec.billed) };
    if (s.refunded && !s.swept) return { kind: 'sweep' };
  }
  if (!s.synced) return { kind: 'sync' };
  // The runner enforces the paid end by itself: it hears of every extension.
  if (rec.state === 'running' && rec.extensions.length > rec.extendsSent) return { kind: 'extend_command', n: rec.extensions.length, endsAt: rec.endsAt! };
  const notice = dueNotices(rec).find((n) => !rec.emitted.includes(n.type));
  return notice ? { kind: 'notify', ...notice } : null;
}

/** Records a step's outcome; a step recorded twice (or out of date) changes nothing. */
export function stepDone(stored: LeaseRecord, step: LeaseStep, outcome: StepOutcome, now: number): LeaseRecord {
  const rec = structuredClone(stored);
  const s = rec.steps;
  switch (step.kind) {
    case 'book': s.booked = true; break;
    case 'command': s.commanded = true; break;
    case 'hold_extension': {
      const req = rec.extensionRequests.find((e) => e.key === step.key);
      if (!req || req.status !== 'holding') break;
      if (!outcome.ok) req.status = 'refused';
      else if (isTerminal(rec.state) || rec.terms.durationS + req.seconds > rec.terms.maxDurationS) req.status = 'releasing';
      else {
        req.status = 'applied';
        rec.terms.durationS += req.seconds;
        rec.terms.amount = (BigInt(rec.terms.amount) + BigInt(req.amount)).toString();
        if (rec.endsAt !== null) rec.endsAt += req.seconds * 1000;
        rec.extensions.push({ key: req.key, seconds: req.seconds, amount: req.amount, at: now });
        s.synced = false;
      }
      break;
    }
    case 'release_extension': {
      const req = rec.extensionRequests.find((e) => e.key === step.key);
      if (req?.status === 'releasing') req.status = 'released';
      break;
    }
    case 'settle': {
      const p = rec.pendingSettlement;
      // Applied once, by its number: a second report of the same posting adds nothing.
      if (!p || p.n !== step.settlement.n) break;
      rec.billed = (BigInt(rec.billed) + BigInt(p.amount)).toString();
      rec.fee = (BigInt(rec.fee) + BigInt(p.fee)).toString();
      rec.settlements = p.n;
      rec.pendingSettlement = null;
      rec.settlementLog = [...rec.settlementLog, { ...p, postedAt: now }].slice(-20);
      break;
    }
    case 'stop': s.stopped = true; break;
    case 'penalise': s.reliability = true; break;
    case 'return_gpus': s.gpusReturned = true; break;
    case 'refund': s.refunded = true; break;
    case 'sweep': s.swept = true; break;
    case 'publish_trust': s.trust = true; break;
    case 'sync': s.synced = true; break;
    case 'extend_command': rec.extendsSent = Math.max(rec.extendsSent, step.n); break;
    case 'notify': if (!rec.emitted.includes(step.type)) rec.emitted.push(step.type); break;
  }
  return rec;
}

/** When time next changes something for the record, without any input (null: never). */
export function wakeAt(rec: LeaseRecord, now: number, c: LeaseConfig): number | null {
  const times: number[] = [];
  if (rec.state === 'provisioning') times.push(provisionDeadline(rec, c));
  if (rec.state === 'running') {
    const last = lastPoint(rec.spans) ?? rec.startedAt!;
    times.push(rec.endsAt!, last + c.graceMs + 1, rec.nextSettleAt ?? now + c.settleEveryMs);
  }
  if (isTerminal(rec.state) && !rec.steps.refunded && rec.finalAfter !== null) times.push(rec.finalAfter);
  return times.length === 0 ? null : Math.min(...times);
}

/** The renter's webhook events this lease owes so far (each is sent once). */
export function dueNotices(rec: LeaseRecord): Array<{ type: WebhookEventType; id: string; data: Record<string, unknown> }> {
  const t = rec.terms;
  const due: Array<{ type: WebhookEventType; id: string; data: Record<string, unknown> }> = [];
  if (rec.steps.booked) {
    due.push({ type: 'order.filled', id: `evt_${t.bidId}_filled`, data: { order_id: t.bidId, lease_id: t.leaseId, price: formatAmount(BigInt(t.price)), gpus: t.gpus, duration_s: t.durationS, asset: t.asset, amount: formatAmount(BigInt(t.amount)) } });
  }
  const lease = () => ({ lease_id: t.leaseId, order_id: t.bidId, state: rec.state, node_id: t.nodeId, gpus: t.gpus, gpu_indices: t.gpuIndices });
  if (rec.startedAt !== null) due.push({ type: 'lease.running', id: `evt_${t.leaseId}_running`, data: { ...lease(), started_at: new Date(rec.startedAt).toISOString(), ports: rec.ports ?? {} } });
  if (rec.steps.refunded && (rec.state === 'completed' || rec.state === 'failed')) {
    const ended = { ...lease(), reason: rec.history.at(-1)?.reason ?? null, billed: formatAmount(BigInt(rec.billed)), refunded: formatAmount(BigInt(t.amount) - BigInt(rec.billed)), asset: t.asset };
    due.push({ type: rec.state === 'completed' ? 'lease.completed' : 'lease.failed', id: `evt_${t.leaseId}_${rec.state}`, data: ended });
  }
  return due;
}
