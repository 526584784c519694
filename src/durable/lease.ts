// Lease: one per lease, created by the RegionBook from one fill. It records the terms (renter,
// provider, node, GPU indices, price, duration, asset, workload) and drives the lease's life:
//
//   provisioning ──started──▶ running ──end of paid time / renter terminates / workload exits──▶ completed
//        │                       └──failed report / no confirming heartbeat for the grace──▶ failed
//        ├──failed report / not started within the provisioning timeout──▶ failed (nothing billed)
//        └──renter terminates──▶ cancelled (nothing billed)
//
// Time is driven by this object's alarm, never by a request noticing: the provisioning
// deadline, the heartbeat grace, the end of the paid duration and periodic settlement.
// Billing counts only heartbeat-confirmed time (src/leases/metering.ts) and is settled from the
// renter's escrow to the provider (minus the platform fee) every LEASE_SETTLE_S and at the end,
// when the rest of the hold goes back to the renter.
//
// Everything outside this object is a step with its own flag and idempotency key, carried out
// after the state is saved and retried by the alarm until done: the creation steps (libSQL row
// with the improvement release; start_lease in the node's mailbox), each settlement (its amount
// is saved before it is posted, so a retry posts the same one), and the ending steps (final
// settlement and refund, stop_lease, the GPUs back to the book, the node's reliability on a
// failure, the libSQL row's state). Eviction at any point loses nothing.
import { DurableObject } from 'cloudflare:workers';
import { keyRing, signLeaseToken } from '../auth/tokens.ts';
import type { Command, LeaseEvent } from '../contracts/runner.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import { capture, release } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import { leaseConfig, type LeaseConfig } from '../leases/config.ts';
import { addPoint, billFor, confirmedMs, feeFor, lastPoint, type Rate, type Span } from '../leases/metering.ts';
import type { LeaseTerms } from '../market/orders.ts';
import { collectorFor } from '../nodes/registry.ts';
import type { WebhookEventType } from '../contracts/webhooks.ts';
import { formatAmount } from '../money/amount.ts';
import { emitEvent } from '../webhooks/emit.ts';
import { regionBook } from './region-book.ts';

export const LEASE_STATES = ['provisioning', 'running', 'completed', 'failed', 'cancelled'] as const;
export type LeaseState = (typeof LEASE_STATES)[number];
const TERMINAL: readonly LeaseState[] = ['completed', 'failed', 'cancelled'];

/** How much a node's reliability drops when a lease on it fails (parts per million). */
const RELIABILITY_PENALTY_PPM = 50_000;
const RETRY_MS = 5_000;

export interface LeaseRecord {
  terms: LeaseTerms;
  state: LeaseState;
  history: Array<{ state: LeaseState; at: number; reason?: string }>;
  /** When the runner reported the workload started; billing counts from here. */
  startedAt: number | null;
  /** startedAt + the paid duration. */
  endsAt: number | null;
  /** When billing stopped early (terminated, exited, failed). */
  stoppedAt: number | null;
  /** Heartbeat-confirmed time (see metering.ts). */
  spans: Span[];
  /** What the runner reported for reaching the workload (container port → host port). */
  ports: Record<string, number> | null;
  exitCode: number | null;
  /** Cumulative amounts settled to the provider and as fee (decimal strings). */
  billed: string;
  fee: string;
  settlements: number;
  /** A settlement saved but not yet known to be posted. */
  pendingSettlement: { n: number; amount: string; fee: string; dueAt: number } | null;
  /** The last settlements posted: when each was due (end of its period) and when it was posted. */
  settlementLog: Array<{ n: number; amount: string; fee: string; dueAt: number; postedAt: number }>;
  nextSettleAt: number | null;
  /**
   * The final settlement waits until then (or a confirmation at or after `endsAt`): heartbeats
   * confirming the last seconds of a lease that ran to its end arrive a flush later.
   */
  finalAfter: number | null;
  /** Extensions applied, by their Idempotency-Key, each once. */
  extensions: Array<{ key: string; seconds: number; amount: string; at: number }>;
  /** Webhook events already handed to emitEvent. */
  emitted: WebhookEventType[];
  /** Steps done (see the file comment). */
  steps: {
    booked: boolean;
    commanded: boolean;
    refunded: boolean;
    stopped: boolean;
    gpusReturned: boolean;
    reliability: boolean;
    /** The libSQL row shows `state`. */
    synced: boolean;
  };
  updatedAt: number;
}

export function lease(env: Bindings, leaseId: string) {
  return env.LEASE.getByName(leaseId);
}

export type EventOutcome = { ok: true; state: LeaseState } | { ok: false; reason: 'not_found' };

export class Lease extends DurableObject<Bindings> {
  private record: LeaseRecord | null | undefined;
  private readonly config: LeaseConfig;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.config = leaseConfig(env);
  }

  private async load(): Promise<LeaseRecord | null> {
    if (this.record === undefined) this.record = (await this.ctx.storage.get<LeaseRecord>('lease')) ?? null;
    return this.record;
  }

  private async save(rec: LeaseRecord): Promise<void> {
    rec.updatedAt = Date.now();
    await this.ctx.storage.put('lease', rec);
    this.record = rec;
  }

  private transition(rec: LeaseRecord, state: LeaseState, at: number, reason?: string): void {
    rec.state = state;
    rec.history.push({ state, at, ...(reason ? { reason } : {}) });
    rec.steps.synced = false;
  }

  /** Creates the lease once; asking again (a retry) finishes whatever step is left. */
  async create(terms: LeaseTerms): Promise<LeaseRecord> {
    let rec = await this.load();
    if (rec && rec.terms.tradeId !== terms.tradeId) throw new Error(`lease ${terms.leaseId} already belongs to trade ${rec.terms.tradeId}`);
    if (!rec) {
      rec = {
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
        emitted: [],
        steps: { booked: false, commanded: false, refunded: false, stopped: false, gpusReturned: false, reliability: false, synced: true },
        updatedAt: 0,
      };
      await this.save(rec);
      await this.ctx.storage.setAlarm(terms.createdAt + this.config.provisionTimeoutMs);
    }
    if (!rec.steps.booked) {
      await this.book(rec.terms);
      rec.steps.booked = true;
      await this.save(rec);
    }
    if (!rec.steps.commanded && rec.state === 'provisioning') {
      await this.command(rec.terms);
      rec.steps.commanded = true;
      await this.save(rec);
    }
    // The renter's webhooks go out from here on; their failures are the alarm's to retry.
    await this.advance(rec, Date.now());
    return rec;
  }

  async get(): Promise<LeaseRecord | null> {
    return this.load();
  }

  /** A lease event from the runner of `nodeId`; events for another node's lease are refused. */
  async event(nodeId: string, ev: LeaseEvent, now = Date.now()): Promise<EventOutcome> {
    const rec = await this.load();
    if (!rec || rec.terms.nodeId !== nodeId) return { ok: false, reason: 'not_found' };
    // The runner's clock is trusted only within what we know: not before the lease, not ahead of now.
    const at = Math.min(Math.max(Date.parse(ev.at), rec.terms.createdAt), now);
    if (ev.type === 'started' && rec.state === 'provisioning') {
      this.transition(rec, 'running', at);
      rec.startedAt = at;
      rec.endsAt = at + rec.terms.durationS * 1000;
      rec.spans = addPoint(rec.spans, at, this.config.graceMs);
      rec.ports = ev.ports ?? null;
      rec.nextSettleAt = now + this.config.settleEveryMs;
    } else if (ev.type === 'failed' && (rec.state === 'provisioning' || rec.state === 'running')) {
      if (rec.state === 'running') rec.stoppedAt = Math.max(at, rec.startedAt!);
      this.transition(rec, 'failed', at, `runner reported: ${ev.reason}`.slice(0, 500));
    } else if (ev.type === 'exited' && rec.state === 'running') {
      rec.stoppedAt = Math.max(at, rec.startedAt!);
      rec.exitCode = ev.exit_code;
      // Exiting at or after the paid end is the normal end; earlier, the workload finished by itself.
      this.transition(rec, 'completed', at, rec.stoppedAt >= rec.endsAt! ? 'paid duration over' : `workload exited with code ${ev.exit_code}`);
    } else {
      // A repeated or late event (a retry): nothing changes.
      return { ok: true, state: rec.state };
    }
    await this.save(rec);
    await this.advance(rec, now);
    return { ok: true, state: rec.state };
  }

  /** Heartbeat confirmations from a flushed batch; redelivered batches change nothing. */
  async confirm(nodeId: string, points: number[], now = Date.now()): Promise<void> {
    const rec = await this.load();
    // Confirmations count until the final settlement, which may wait for the last of them.
    if (!rec || rec.terms.nodeId !== nodeId || rec.steps.refunded) return;
    const before = JSON.stringify(rec.spans);
    for (const p of points) if (p >= rec.terms.createdAt && p <= now) rec.spans = addPoint(rec.spans, p, this.config.graceMs);
    if (JSON.stringify(rec.spans) === before) return;
    await this.save(rec);
    if (rec.finalAfter !== null && (lastPoint(rec.spans) ?? 0) >= rec.endsAt!) await this.advance(rec, now);
  }

  /** The renter ends the lease now: a provisioning lease is cancelled free, a running one billed to now. */
  async terminate(now = Date.now()): Promise<LeaseState> {
    const rec = await this.load();
    if (!rec) throw new Error('no lease');
    if (rec.state === 'provisioning') this.transition(rec, 'cancelled', now, 'cancelled by the renter');
    else if (rec.state === 'running') {
      rec.stoppedAt = now;
      this.transition(rec, 'completed', now, 'terminated by the renter');
    } else return rec.state;
    await this.save(rec);
    await this.advance(rec, now);
    return rec.state;
  }

  /**
   * Adds paid time whose cost the caller has already held in escrow (under `key`). Applied once
   * per key; refused once the lease has ended (the caller then releases that hold).
   */
  async extend(key: string, seconds: number, amount: bigint, now = Date.now()): Promise<{ ok: true; record: LeaseRecord } | { ok: false; reason: 'ended' | 'too_long' }> {
    const rec = await this.load();
    if (!rec) throw new Error('no lease');
    if (rec.extensions.some((e) => e.key === key)) return { ok: true, record: rec };
    if (TERMINAL.includes(rec.state)) return { ok: false, reason: 'ended' };
    if (rec.terms.durationS + seconds > rec.terms.maxDurationS) return { ok: false, reason: 'too_long' };
    rec.terms.durationS += seconds;
    rec.terms.amount = (BigInt(rec.terms.amount) + amount).toString();
    if (rec.endsAt !== null) rec.endsAt += seconds * 1000;
    rec.extensions.push({ key, seconds, amount: amount.toString(), at: now });
    rec.steps.synced = false;
    await this.save(rec);
    await this.advance(rec, now);
    return { ok: true, record: rec };
  }

  override async alarm(): Promise<void> {
    const rec = await this.load();
    if (!rec) return;
    await this.advance(rec, Date.now());
  }

  /** Applies what time has decided, carries out pending steps, and sets the next alarm. */
  private async advance(rec: LeaseRecord, now: number): Promise<void> {
    if (rec.state === 'provisioning' && now >= rec.terms.createdAt + this.config.provisionTimeoutMs) {
      this.transition(rec, 'failed', now, `not started within ${this.config.provisionTimeoutMs / 1000} s`);
      await this.save(rec);
    }
    if (rec.state === 'running') {
      const last = lastPoint(rec.spans) ?? rec.startedAt!;
      if (now >= rec.endsAt! && last >= rec.endsAt! - this.config.graceMs) {
        rec.stoppedAt = rec.endsAt;
        rec.finalAfter = rec.endsAt! + this.config.graceMs;
        this.transition(rec, 'completed', rec.endsAt!, 'paid duration over');
        await this.save(rec);
      } else if (now - last > this.config.graceMs) {
        // Billing stops at the last confirmation: the silence after it proves nothing.
        rec.stoppedAt = last;
        this.transition(rec, 'failed', now, `no heartbeat confirmed the lease for ${Math.round((now - last) / 1000)} s`);
        await this.save(rec);
      }
    }
    let retry = false;
    try {
      if (rec.state === 'running' && rec.nextSettleAt !== null && now >= rec.nextSettleAt) {
        await this.settle(rec, Math.min(now, rec.endsAt!), false, rec.nextSettleAt);
        rec.nextSettleAt = now + this.config.settleEveryMs;
        await this.save(rec);
      }
      if (TERMINAL.includes(rec.state)) await this.finish(rec, now);
      await this.notify(rec);
      if (!rec.steps.synced) {
        await connection(this.env).money.execute({
          sql: 'UPDATE leases SET state = ?, duration_s = ?, amount = ? WHERE id = ?',
          args: [rec.state, rec.terms.durationS, BigInt(rec.terms.amount), rec.terms.leaseId],
        });
        // The runner enforces the paid end by itself: tell it about every extension.
        if (rec.state === 'running' && rec.extensions.length > 0) {
          const command: Command = { id: `extend_${rec.terms.leaseId}_${rec.extensions.length}`, type: 'extend_lease', lease_id: rec.terms.leaseId, ends_at: new Date(rec.endsAt!).toISOString() };
          await collectorFor(this.env, rec.terms.nodeId, rec.terms.region).stub.enqueueCommand(rec.terms.nodeId, command);
        }
        rec.steps.synced = true;
        await this.save(rec);
      }
    } catch (err) {
      log('warn', 'lease step failed; retrying', { lease_id: rec.terms.leaseId, state: rec.state, error: String(err) });
      retry = true;
    }
    await this.schedule(rec, now, retry);
  }

  private async schedule(rec: LeaseRecord, now: number, retry: boolean): Promise<void> {
    const times: number[] = [];
    if (retry) times.push(now + RETRY_MS);
    if (rec.state === 'provisioning') times.push(rec.terms.createdAt + this.config.provisionTimeoutMs);
    if (rec.state === 'running') {
      const last = lastPoint(rec.spans) ?? rec.startedAt!;
      times.push(rec.endsAt!, last + this.config.graceMs + 1, rec.nextSettleAt ?? now + this.config.settleEveryMs);
    }
    if (TERMINAL.includes(rec.state) && !rec.steps.refunded && rec.finalAfter !== null) times.push(rec.finalAfter);
    if (times.length === 0) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Math.max(now + 1, Math.min(...times)));
  }

  /** The renter's webhook events this lease owes, each emitted once (emitEvent dedupes too). */
  private async notify(rec: LeaseRecord): Promise<void> {
    const t = rec.terms;
    const due: Array<[WebhookEventType, string, Record<string, unknown>]> = [];
    if (rec.steps.booked) {
      due.push(['order.filled', `evt_${t.bidId}_filled`, { order_id: t.bidId, lease_id: t.leaseId, price: formatAmount(BigInt(t.price)), gpus: t.gpus, duration_s: t.durationS, asset: t.asset, amount: formatAmount(BigInt(t.amount)) }]);
    }
    const lease = () => ({ lease_id: t.leaseId, order_id: t.bidId, state: rec.state, node_id: t.nodeId, gpus: t.gpus, gpu_indices: t.gpuIndices });
    if (rec.startedAt !== null) due.push(['lease.running', `evt_${t.leaseId}_running`, { ...lease(), started_at: new Date(rec.startedAt).toISOString(), ports: rec.ports ?? {} }]);
    if (rec.steps.refunded && (rec.state === 'completed' || rec.state === 'failed')) {
      const ended = { ...lease(), reason: rec.history.at(-1)?.reason ?? null, billed: formatAmount(BigInt(rec.billed)), refunded: formatAmount(BigInt(t.amount) - BigInt(rec.billed)), asset: t.asset };
      due.push([rec.state === 'completed' ? 'lease.completed' : 'lease.failed', `evt_${t.leaseId}_${rec.state}`, ended]);
    }
    for (const [type, id, data] of due) {
      if (rec.emitted.includes(type)) continue;
      await emitEvent(this.env, { id, accountId: t.renterId, type, data });
      rec.emitted.push(type);
      await this.save(rec);
    }
  }

  private rate(t: LeaseTerms): Rate {
    return { price: t.price, gpus: t.gpus, asset: t.asset, gridUsdRate: BigInt(t.gridUsdRate), gridDiscountBps: BigInt(t.gridDiscountBps) };
  }

  /** Settles confirmed time up to `until` that is not yet settled; one ledger transaction, own key. */
  private async settle(rec: LeaseRecord, until: number, final: boolean, dueAt = until): Promise<void> {
    const t = rec.terms;
    if (!rec.pendingSettlement && rec.startedAt !== null) {
      const end = final ? Math.min(rec.endsAt!, rec.stoppedAt ?? rec.endsAt!) : until;
      const amount = BigInt(t.amount);
      const billedNow = [billFor(this.rate(t), confirmedMs(rec.spans, rec.startedAt, end)), amount].reduce((a, b) => (a < b ? a : b));
      const delta = billedNow - BigInt(rec.billed);
      if (delta > 0n) {
        const feeNow = feeFor(billedNow, this.config.feeBps);
        rec.pendingSettlement = { n: rec.settlements + 1, amount: delta.toString(), fee: (feeNow - BigInt(rec.fee)).toString(), dueAt };
        await this.save(rec);
      }
    }
    const p = rec.pendingSettlement;
    if (!p) return;
    const rule = capture({
      payer: t.renterId,
      payee: t.providerId,
      asset: t.asset,
      amount: BigInt(p.amount),
      fee: BigInt(p.fee),
      idempotencyKey: `lease:${t.leaseId}:settle:${p.n}`,
      reference: t.leaseId,
      memo: `lease settlement ${p.n}`,
    });
    if (!rule.ok) throw new Error(`settlement refused: ${rule.problem}`);
    const posted = await postTransaction(connection(this.env).money, rule.spec);
    if (!posted.ok) throw new Error(`settlement refused: ${posted.reason}`);
    rec.billed = (BigInt(rec.billed) + BigInt(p.amount)).toString();
    rec.fee = (BigInt(rec.fee) + BigInt(p.fee)).toString();
    rec.settlements = p.n;
    rec.pendingSettlement = null;
    rec.settlementLog = [...rec.settlementLog, { n: p.n, amount: p.amount, fee: p.fee, dueAt: p.dueAt, postedAt: Date.now() }].slice(-20);
    await this.save(rec);
  }

  /** The ending steps, each once. */
  private async finish(rec: LeaseRecord, now: number): Promise<void> {
    const t = rec.terms;
    if (!rec.steps.stopped) {
      // Whatever ended the lease, the runner stops the workload (it ignores an unknown lease).
      if (rec.steps.commanded) {
        const command: Command = { id: `stop_${t.leaseId}`, type: 'stop_lease', lease_id: t.leaseId, reason: rec.history.at(-1)?.reason ?? rec.state };
        await collectorFor(this.env, t.nodeId, t.region).stub.enqueueCommand(t.nodeId, command);
      }
      rec.steps.stopped = true;
      await this.save(rec);
    }
    if (!rec.steps.refunded) {
      if (rec.finalAfter !== null && now < rec.finalAfter && (lastPoint(rec.spans) ?? 0) < rec.endsAt!) return;
      // The final settlement is due when the lease ended: at its failure, or at its (paid or early) end.
      const endedAt = rec.state === 'failed' ? rec.history.at(-1)!.at : (rec.stoppedAt ?? rec.endsAt ?? now);
      if (rec.state !== 'cancelled') await this.settle(rec, rec.stoppedAt ?? rec.endsAt ?? now, true, endedAt);
      const rest = BigInt(t.amount) - BigInt(rec.billed);
      if (rest > 0n) {
        const rule = release({ owner: t.renterId, asset: t.asset, amount: rest, idempotencyKey: `lease:${t.leaseId}:refund`, reference: t.leaseId, memo: `lease ${rec.state}: unused escrow` });
        if (!rule.ok) throw new Error(`refund refused: ${rule.problem}`);
        const posted = await postTransaction(connection(this.env).money, rule.spec);
        if (!posted.ok) throw new Error(`refund refused: ${posted.reason}`);
      }
      rec.steps.refunded = true;
      await this.save(rec);
    }
    if (!rec.steps.gpusReturned) {
      await regionBook(this.env, t.region, t.gpuModel).leaseEnded(t.leaseId);
      rec.steps.gpusReturned = true;
      await this.save(rec);
    }
    if (!rec.steps.reliability) {
      if (rec.state === 'failed') {
        await connection(this.env).client.execute({
          sql: 'UPDATE nodes SET reliability_ppm = max(0, reliability_ppm - ?) WHERE id = ?',
          args: [RELIABILITY_PENALTY_PPM, t.nodeId],
        });
      }
      rec.steps.reliability = true;
      await this.save(rec);
    }
  }

  private async book(t: LeaseTerms): Promise<void> {
    const { money } = connection(this.env);
    const statements = [
      {
        sql: `INSERT INTO leases (id, trade_id, bid_id, ask_id, renter_id, provider_id, node_id, region, gpu_model, gpus, gpu_indices, price,
                duration_s, asset, amount, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'provisioning', ?)
              ON CONFLICT (id) DO NOTHING`,
        args: [t.leaseId, t.tradeId, t.bidId, t.askId, t.renterId, t.providerId, t.nodeId, t.region, t.gpuModel, t.gpus, JSON.stringify(t.gpuIndices),
          t.price, t.durationS, t.asset, BigInt(t.amount), t.createdAt],
      },
      { sql: "UPDATE orders SET status = 'filled', closed_at = ? WHERE id = ?", args: [t.createdAt, t.bidId] },
    ];
    const improvement = BigInt(t.improvement);
    if (improvement === 0n) {
      await money.batch(statements, 'write');
      return;
    }
    const rule = release({
      owner: t.renterId,
      asset: t.asset,
      amount: improvement,
      idempotencyKey: `lease:${t.leaseId}:improvement`,
      reference: t.leaseId,
      memo: 'price improvement on fill',
    });
    if (!rule.ok) throw new Error(`lease ${t.leaseId}: improvement release refused: ${rule.problem}`);
    const posted = await postTransaction(money, rule.spec, { alongside: statements, now: t.createdAt });
    if (!posted.ok) throw new Error(`lease ${t.leaseId}: improvement release refused: ${posted.reason}`);
  }

  private async command(t: LeaseTerms): Promise<void> {
    // The runner enforces this end by itself; the lease's own end (from the start report) is
    // never later, since provisioning only delays the start.
    const endsAt = t.createdAt + this.config.provisionTimeoutMs + t.durationS * 1000;
    const token = await signLeaseToken(await keyRing(this.env.JWT_PRIVATE_KEYS), { leaseId: t.leaseId, nodeId: t.nodeId }, {
      issuer: this.env.JWT_ISSUER,
      expiresAt: endsAt + 3_600_000,
      now: Date.now(),
    });
    const command: Command = {
      id: `start_${t.leaseId}`,
      type: 'start_lease',
      lease_id: t.leaseId,
      workload: t.workload,
      gpu_indices: t.gpuIndices,
      ends_at: new Date(endsAt).toISOString(),
      duration_s: t.durationS,
      lease_token: token,
    };
    await collectorFor(this.env, t.nodeId, t.region).stub.enqueueCommand(t.nodeId, command);
  }
}
