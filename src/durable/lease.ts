// Lease: one per lease, created by the RegionBook from one fill. A thin shell around the pure
// lifecycle (src/leases/lifecycle.ts), which decides the lease's life and names each step;
// this object stores the record, carries out the steps, and keeps time with its alarm.
//
// Every entry point (create, runner events, heartbeat confirmations, terminate, extend, the
// alarm) runs through one queue: one at a time, each to the end of its steps, so none of them
// ever sees another half-done across an await on libSQL, the book or the node's mailbox. A step
// is recorded only after it is carried out, each under an idempotency key of its own (ledger
// keys, command ids, the lease row's state), so a step whose answer was lost (an eviction, a
// timeout) is carried out again with no second effect. A failing step stops the run; the alarm
// retries it. Creating a lease never ends it: a fill replayed after its provisioning deadline is
// failed by the alarm, never inside the book's call (which would call back into the book).
import { DurableObject } from 'cloudflare:workers';
import type { Client } from '@libsql/client/web';
import { keyRing, signLeaseToken } from '../auth/tokens.ts';
import type { Command, LeaseEvent } from '../contracts/runner.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import type { HeartbeatBatch } from '../heartbeats/batch.ts';
import { log } from '../http/log.ts';
import { capture, hold, release, type RuleResult } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import { leaseConfig, type LeaseConfig } from '../leases/config.ts';
import { isTerminal, newRecord, nextStep, plan, receive, stepDone, upgradeRecord, wakeAt, type LeaseInput, type LeaseRecord, type LeaseStep, type StepOutcome } from '../leases/lifecycle.ts';
import type { LeaseTerms } from '../market/orders.ts';
import { collectorFor } from '../nodes/registry.ts';
import { publishNodeTrust } from '../nodes/trust.ts';
import { emitEvent } from '../webhooks/emit.ts';
import { regionBook } from './region-book.ts';
import { LeaseLog, type LeaseView, type LogPage, type StoredLine } from './lease-log.ts';
import type { LogLine } from '../contracts/runner.ts';

export { LEASE_STATES, type LeaseRecord, type LeaseState } from '../leases/lifecycle.ts';

/** How much a node's reliability drops when a lease on it fails (parts per million). */
const RELIABILITY_PENALTY_PPM = 50_000;
const RETRY_MS = 5_000;
/** Steps one run carries out at most; the rest continue from an alarm at once. */
const STEPS_PER_RUN = 64;

export function lease(env: Bindings, leaseId: string) {
  return env.LEASE.getByName(leaseId);
}

export type EventOutcome = { ok: true; state: LeaseRecord['state'] } | { ok: false; reason: 'not_found' };
export type LogAppendOutcome =
  | { ok: true; nextSeq: number }
  | { ok: false; reason: 'not_found' | 'out_of_order' | 'lease_ended' }
  | { ok: false; reason: 'rate_limited'; retryAfterS: number };

/** When a lease ended (its last state change), or null while it lives. */
export function endedAt(rec: LeaseRecord): number | null {
  return isTerminal(rec.state) ? (rec.history.at(-1)?.at ?? rec.stoppedAt ?? rec.terms.createdAt) : null;
}
export type ExtendOutcome =
  | { ok: true; record: LeaseRecord }
  | { ok: false; reason: 'ended' | 'too_long' | 'insufficient_funds' | 'pending' };

export class Lease extends DurableObject<Bindings> {
  private record: LeaseRecord | null | undefined;
  private readonly config: LeaseConfig;
  /** The tail of the queue every entry point waits in. */
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * The workload's log: its own tables in this object's storage. Appends and reads touch only
   * that storage (synchronously), never the lifecycle, so they do not wait in the queue.
   */
  private readonly log: LeaseLog;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.config = leaseConfig(env);
    this.log = new LeaseLog(ctx.storage.sql, () => this.logView());
  }

  private logView(): LeaseView {
    const rec = this.record;
    return rec ? { endedAt: endedAt(rec), exitCode: rec.exitCode } : { endedAt: null, exitCode: null };
  }

  /** A batch of the workload's log lines from the runner of `nodeId` (src/contracts/runner.ts). */
  async appendLogs(nodeId: string, lines: LogLine[], now?: number): Promise<LogAppendOutcome> {
    const rec = await this.load();
    if (!rec || rec.terms.nodeId !== nodeId) return { ok: false, reason: 'not_found' };
    const decision = this.log.append(lines, now ?? Date.now());
    if (!decision.ok) return decision;
    const ended = endedAt(rec);
    // A line that came after the end is purged with the rest; the lifecycle may have no alarm left.
    if (ended !== null && (await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(this.log.retainUntil(ended));
    return { ok: true, nextSeq: decision.meta.nextSeq };
  }

  /** The log's lines from `since` (or its last `tail`); null when there is no such lease. */
  async readLogs(opts: { since?: number; tail?: number; limit: number }): Promise<LogPage | null> {
    if (!(await this.load())) return null;
    return this.log.read(opts, Date.now());
  }

  /** Deletes the log once the lease ended more than its retention ago; true when it did. */
  async purgeLogsIfDue(now: number): Promise<boolean> {
    const rec = await this.load();
    const ended = rec ? endedAt(rec) : null;
    if (ended === null || now < this.log.retainUntil(ended)) return false;
    this.log.purge();
    return true;
  }

  /** The last lines, shown with the lease once it ended. */
  async logTail(n: number): Promise<StoredLine[]> {
    if (!(await this.load())) return [];
    return this.log.tail(n, Date.now());
  }

  /** GET /logs/stream?since=N: the log as Server-Sent Events (the route checked who asks). */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== '/logs/stream' || request.method !== 'GET') return new Response('not found', { status: 404 });
    if (!(await this.load())) return new Response('not found', { status: 404 });
    const since = Number(url.searchParams.get('since') ?? '0');
    const res = this.log.follow(Number.isSafeInteger(since) && since >= 0 ? since : 0);
    return res ?? new Response('too many followers', { status: 429, headers: { 'retry-after': '5' } });
  }

  /** Runs `fn` after every call before it has finished, and before any after it starts. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async load(): Promise<LeaseRecord | null> {
    if (this.record === undefined) {
      const stored = await this.ctx.storage.get<LeaseRecord>('lease');
      this.record = stored ? upgradeRecord(stored) : null;
    }
    return this.record;
  }

  private async save(rec: LeaseRecord): Promise<void> {
    rec.updatedAt = Date.now();
    await this.ctx.storage.put('lease', rec);
    this.record = rec;
  }

  /**
   * Creates the lease once and carries out its creation steps (the libSQL row with the price
   * improvement's release, start_lease in the node's mailbox). Asking again (the book's retry)
   * answers at once: whatever is left belongs to the alarm, so the book never waits on a lease
   * that is itself waiting on the book.
   */
  async create(terms: LeaseTerms): Promise<LeaseRecord> {
    const known = await this.load();
    if (known) {
      if (known.terms.tradeId !== terms.tradeId) throw new Error(`lease ${terms.leaseId} already belongs to trade ${known.terms.tradeId}`);
      return known;
    }
    return this.serial(async () => {
      let rec = await this.load();
      if (!rec) {
        rec = newRecord(terms);
        await this.save(rec);
        // Should anything below fail, the alarm finishes it.
        await this.ctx.storage.setAlarm(Date.now() + RETRY_MS);
      }
      return this.run(Date.now(), (step) => step.kind === 'book' || step.kind === 'command');
    });
  }

  async get(): Promise<LeaseRecord | null> {
    return this.load();
  }

  /** A lease event from the runner of `nodeId`; events for another node's lease are refused. */
  async event(nodeId: string, ev: LeaseEvent, now?: number): Promise<EventOutcome> {
    return this.serial(async () => {
      const rec = await this.load();
      if (!rec || rec.terms.nodeId !== nodeId) return { ok: false, reason: 'not_found' } as const;
      const after = await this.input({ kind: 'event', event: ev }, now ?? Date.now());
      return { ok: true, state: after.state } as const;
    });
  }

  /** Heartbeat confirmations from a flushed batch; redelivered batches change nothing. */
  async confirm(nodeId: string, points: number[], now?: number): Promise<void> {
    await this.serial(async () => {
      const rec = await this.load();
      if (!rec || rec.terms.nodeId !== nodeId) return;
      await this.input({ kind: 'confirm', points: points.slice(0, 10_000) }, now ?? Date.now());
    });
  }

  /** The renter ends the lease now: a provisioning lease is cancelled free, a running one billed to now. */
  async terminate(now?: number): Promise<LeaseRecord['state']> {
    return this.serial(async () => {
      if (!(await this.load())) throw new Error('no lease');
      return (await this.input({ kind: 'terminate' }, now ?? Date.now())).state;
    });
  }

  /**
   * Adds paid time. The lease holds its cost itself under `key` (the same key is the same
   * extension), then applies it if the lease is still live, or releases the hold: a hold never
   * stays behind unapplied, whatever happens to the caller.
   */
  async extend(key: string, seconds: number, amount: bigint, now?: number): Promise<ExtendOutcome> {
    return this.serial(async () => {
      const rec = await this.load();
      if (!rec) throw new Error('no lease');
      const at = now ?? Date.now();
      const { rec: next, reply, changed } = receive(rec, { kind: 'extend', key, seconds, amount }, at, this.config);
      if (changed) await this.save(next);
      if (reply.kind === 'extension' && reply.outcome !== 'accepted') return { ok: false, reason: reply.outcome };
      const after = await this.run(at);
      const request = after.extensionRequests.find((e) => e.key === key)!;
      if (request.status === 'applied') return { ok: true, record: after };
      if (request.status === 'refused') return { ok: false, reason: 'insufficient_funds' };
      if (request.status === 'holding') return { ok: false, reason: 'pending' };
      return { ok: false, reason: 'ended' };
    });
  }

  override async alarm(): Promise<void> {
    await this.serial(async () => {
      if (!(await this.load())) return;
      await this.purgeLogsIfDue(Date.now());
      await this.run(Date.now());
    });
  }

  /** Applies an input, saves, and carries out what follows. Runs inside the queue. */
  private async input(input: LeaseInput, now: number): Promise<LeaseRecord> {
    const { rec, changed } = receive((await this.load())!, input, now, this.config);
    if (changed) await this.save(rec);
    return this.run(now);
  }

  /**
   * Carries out due steps one at a time, each recorded as soon as it is done, then sets the
   * alarm for the next thing time will decide. `only` limits a run to some steps (creation).
   */
  private async run(now: number, only?: (step: LeaseStep) => boolean): Promise<LeaseRecord> {
    let rec = (await this.load())!;
    // Creation only creates: whatever time has decided meanwhile is the alarm's to apply.
    const planned = only ? rec : plan(rec, now, this.config);
    if (planned !== rec) await this.save((rec = planned));
    let retry = false;
    let more = false;
    for (let i = 0; ; i++) {
      const step = nextStep(rec, now, this.config);
      if (!step || (only && !only(step))) break;
      if (i === STEPS_PER_RUN) {
        more = true;
        break;
      }
      let outcome: StepOutcome;
      try {
        outcome = await this.perform(step, rec);
      } catch (err) {
        log('warn', 'lease step failed; retrying', { lease_id: rec.terms.leaseId, state: rec.state, step: step.kind, error: String(err) });
        retry = true;
        break;
      }
      const done = stepDone(rec, step, outcome, Date.now());
      await this.save((rec = only ? done : plan(done, now, this.config)));
    }
    const times = [wakeAt(rec, now, this.config) ?? Infinity];
    const ended = endedAt(rec);
    if (ended !== null && this.log.hasLines()) times.push(this.log.retainUntil(ended));
    if (retry) times.push(now + RETRY_MS);
    if (more || (only && nextStep(rec, now, this.config))) times.push(now);
    const at = Math.min(...times);
    if (at === Infinity) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(Math.max(Date.now() + 1, at));
    return rec;
  }

  /** Carries out one step; throws when it may succeed later, answers `ok: false` when it never will. */
  private async perform(step: LeaseStep, rec: LeaseRecord): Promise<StepOutcome> {
    const t = rec.terms;
    const { money, client } = connection(this.env);
    switch (step.kind) {
      case 'book':
        await this.book(t);
        return { ok: true };
      case 'command':
        await this.command(t);
        return { ok: true };
      case 'hold_extension': {
        const posted = await post(money, hold({ owner: t.renterId, asset: t.asset, amount: step.amount, idempotencyKey: step.key, reference: t.leaseId, memo: `extend lease by ${step.seconds} s` }));
        return posted === 'insufficient_funds' ? { ok: false, problem: posted } : { ok: true };
      }
      case 'release_extension':
        await post(money, release({ owner: t.renterId, asset: t.asset, amount: step.amount, idempotencyKey: `${step.key}:release`, reference: t.leaseId, memo: 'extension not applied: the lease is over' }));
        return { ok: true };
      case 'settle': {
        const p = step.settlement;
        await post(money, capture({ payer: t.renterId, payee: t.providerId, asset: t.asset, amount: BigInt(p.amount), fee: BigInt(p.fee), idempotencyKey: `lease:${t.leaseId}:settle:${p.n}`, reference: t.leaseId, memo: `lease settlement ${p.n}` }));
        return { ok: true };
      }
      case 'stop':
        await this.mail({ id: `stop_${t.leaseId}`, type: 'stop_lease', lease_id: t.leaseId, reason: step.reason.slice(0, 500) });
        return { ok: true };
      case 'penalise':
        // Once per lease: the row's move to `failed` and the penalty commit together, and a
        // repeated step finds the row already failed.
        await money.batch(
          [
            { sql: "UPDATE leases SET state = 'failed' WHERE id = ? AND state != 'failed'", args: [t.leaseId] },
            { sql: 'UPDATE nodes SET reliability_ppm = max(0, reliability_ppm - ?) WHERE id = ? AND changes() = 1', args: [RELIABILITY_PENALTY_PPM, t.nodeId] },
          ],
          'write',
        );
        return { ok: true };
      case 'return_gpus':
        // A node silent past the grace is offline in the book before its GPUs come back.
        await regionBook(this.env, t.region, t.gpuModel).leaseEnded(t.leaseId, Date.now(), { nodeSilent: step.nodeSilent });
        return { ok: true };
      case 'refund':
        if (step.amount > 0n) {
          await post(money, release({ owner: t.renterId, asset: t.asset, amount: step.amount, idempotencyKey: `lease:${t.leaseId}:refund`, reference: t.leaseId, memo: `lease ${rec.state}: unused escrow` }));
        }
        return { ok: true };
      case 'sweep':
        await this.sweepExtensionHolds(money, rec);
        return { ok: true };
      case 'publish_trust':
        // Books match on the node's current reliability, which the penalty just lowered.
        await publishNodeTrust(this.env, t.nodeId);
        return { ok: true };
      case 'sync':
        await client.execute({
          sql: 'UPDATE leases SET state = ?, duration_s = ?, amount = ? WHERE id = ?',
          args: [rec.state, rec.terms.durationS, BigInt(rec.terms.amount), t.leaseId],
        });
        return { ok: true };
      case 'extend_command':
        await this.mail({ id: `extend_${t.leaseId}_${step.n}`, type: 'extend_lease', lease_id: t.leaseId, ends_at: new Date(step.endsAt).toISOString() });
        return { ok: true };
      case 'notify':
        await emitEvent(this.env, { id: step.id, accountId: t.renterId, type: step.type, data: step.data });
        return { ok: true };
    }
  }

  private async mail(command: Command): Promise<void> {
    const t = this.record!.terms;
    await collectorFor(this.env, t.nodeId, t.region).stub.enqueueCommand(t.nodeId, command);
  }

  /**
   * Extension holds in the ledger that this lease never applied (their request stopped between
   * the hold and the lease) go back to the renter, each once.
   */
  private async sweepExtensionHolds(money: Client, rec: LeaseRecord): Promise<void> {
    const t = rec.terms;
    const prefix = `lease:${t.leaseId}:extend:`;
    const rs = await money.execute({
      sql: `SELECT tx.idempotency_key AS k, e.amount AS amount FROM ledger_transactions tx JOIN ledger_entries e ON e.transaction_id = tx.id
            WHERE tx.reference = ? AND tx.kind = 'hold' AND substr(tx.idempotency_key, 1, ?) = ? AND e.account_kind = 'held' AND e.owner_id = ?
              AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.idempotency_key = tx.idempotency_key || ':release')`,
      args: [t.leaseId, prefix.length, prefix, t.renterId],
    });
    const applied = new Set(rec.extensions.map((e) => e.key));
    for (const row of rs.rows) {
      const key = String(row.k);
      if (applied.has(key)) continue;
      await post(money, release({ owner: t.renterId, asset: t.asset, amount: BigInt(row.amount as number | bigint), idempotencyKey: `${key}:release`, reference: t.leaseId, memo: 'extension not applied' }));
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
    const rule = release({ owner: t.renterId, asset: t.asset, amount: improvement, idempotencyKey: `lease:${t.leaseId}:improvement`, reference: t.leaseId, memo: 'price improvement on fill' });
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
    await this.mail({
      id: `start_${t.leaseId}`,
      type: 'start_lease',
      lease_id: t.leaseId,
      workload: t.workload,
      gpu_indices: t.gpuIndices,
      ends_at: new Date(endsAt).toISOString(),
      duration_s: t.durationS,
      lease_token: token,
    });
  }
}

/** Posts a ledger transaction: its key makes a repeat a no-op. Insufficient funds is answered; anything else throws. */
async function post(money: Client, rule: RuleResult): Promise<'posted' | 'insufficient_funds'> {
  if (!rule.ok) throw new Error(`ledger rule refused: ${rule.problem}`);
  const posted = await postTransaction(money, rule.spec);
  if (posted.ok) return 'posted';
  if (posted.reason === 'insufficient_funds') return 'insufficient_funds';
  throw new Error(`ledger refused: ${posted.reason}`);
}


/** Leases per node that one heartbeat batch may confirm (a node has at most 16 GPUs). */
const LEASES_PER_NODE = 16;
/** Lease objects called at once while confirming a batch. */
const CONFIRM_CONCURRENCY = 8;

/**
 * Hands each lease the heartbeats that confirmed it. Only live leases that belong to the
 * reporting node are called (a node cannot make the platform wake leases it does not hold),
 * at most LEASES_PER_NODE per node; a lease that fails does not stop the others. Returns the
 * number that failed (the caller has the batch redelivered; confirming twice changes nothing).
 */
export async function confirmLeaseBatch(env: Bindings, client: Client, batch: HeartbeatBatch): Promise<number> {
  const wanted: Array<{ nodeId: string; leaseId: string; seen: number[] }> = [];
  for (const n of batch.nodes) {
    const ids = new Set<string>();
    for (const l of n.leases) {
      if (l.seen.length === 0 || ids.has(l.lease_id) || ids.size >= LEASES_PER_NODE || !/^lse_[A-Za-z0-9]{1,60}$/.test(l.lease_id)) continue;
      ids.add(l.lease_id);
      wanted.push({ nodeId: n.node_id, leaseId: l.lease_id, seen: l.seen });
    }
  }
  if (wanted.length === 0) return 0;
  const owner = new Map<string, string>();
  for (let i = 0; i < wanted.length; i += 500) {
    const chunk = wanted.slice(i, i + 500);
    const rs = await client.execute({
      sql: `SELECT id, node_id FROM leases WHERE id IN (${chunk.map(() => '?').join(',')}) AND state IN ('provisioning', 'running', 'completed', 'failed')`,
      args: chunk.map((w) => w.leaseId),
    });
    for (const r of rs.rows) owner.set(String(r.id), String(r.node_id));
  }
  const mine = wanted.filter((w) => owner.get(w.leaseId) === w.nodeId);
  let failed = 0;
  for (let i = 0; i < mine.length; i += CONFIRM_CONCURRENCY) {
    const results = await Promise.allSettled(mine.slice(i, i + CONFIRM_CONCURRENCY).map((w) => lease(env, w.leaseId).confirm(w.nodeId, w.seen)));
    results.forEach((r, j) => {
      if (r.status === 'fulfilled') return;
      failed += 1;
      log('error', 'lease confirmation failed', { lease_id: mine[i + j]!.leaseId, error: String(r.reason) });
    });
  }
  return failed;
}


