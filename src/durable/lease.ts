// Lease: one per lease, created by the RegionBook from one fill. A thin shell around the pure
// lifecycle (src/leases/lifecycle.ts), which decides the lease's life and names each step;
// this object stores the record and keeps time with its alarm, and src/leases/steps.ts carries
// out the steps against libSQL, the book, the node's mailbox and the webhook queue.
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
import type { LeaseEvent } from '../contracts/runner.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import type { HeartbeatBatch } from '../heartbeats/batch.ts';
import { log } from '../http/log.ts';
import { leaseConfig } from '../leases/config.ts';
import { isTerminal, type LeaseRecord } from '../leases/lifecycle.ts';
import { LeaseCore, type EventOutcome, type ExtendOutcome, type LeasePorts, type LeaseStorage } from '../leases/steps.ts';
import type { LeaseTerms } from '../market/orders.ts';
import { collectorFor } from '../nodes/registry.ts';
import { publishNodeTrust } from '../nodes/trust.ts';
import { emitEvent } from '../webhooks/emit.ts';
import { regionBook } from './region-book.ts';
import { LeaseLog, type LeaseView, type LogPage, type StoredLine } from './lease-log.ts';
import type { LogLine } from '../contracts/runner.ts';

export { LEASE_STATES, type LeaseRecord, type LeaseState } from '../leases/lifecycle.ts';
export type { EventOutcome, ExtendOutcome } from '../leases/steps.ts';


export function lease(env: Bindings, leaseId: string) {
  return env.LEASE.getByName(leaseId);
}

export type LogAppendOutcome =
  | { ok: true; nextSeq: number }
  | { ok: false; reason: 'not_found' | 'out_of_order' | 'lease_ended' }
  | { ok: false; reason: 'rate_limited'; retryAfterS: number };

/** When a lease ended (its last state change), or null while it lives. */
export function endedAt(rec: LeaseRecord): number | null {
  return isTerminal(rec.state) ? (rec.history.at(-1)?.at ?? rec.stoppedAt ?? rec.terms.createdAt) : null;
}
export class Lease extends DurableObject<Bindings> {
  /** The lifecycle's entry points, in one queue (src/leases/steps.ts). */
  private readonly core: LeaseCore;
  /**
   * The workload's log: its own tables in this object's storage. Appends and reads touch only
   * that storage (synchronously), never the lifecycle, so they do not wait in the queue.
   */
  private readonly log: LeaseLog;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.log = new LeaseLog(ctx.storage.sql, () => this.logView());
    const storage: LeaseStorage = {
      get: () => ctx.storage.get<LeaseRecord>('lease'),
      put: (rec) => ctx.storage.put('lease', rec),
      setAlarm: (at) => (at === null ? ctx.storage.deleteAlarm() : ctx.storage.setAlarm(at)),
    };
    this.core = new LeaseCore(storage, () => this.ports(), leaseConfig(env), (rec) => {
      const ended = endedAt(rec);
      return ended !== null && this.log.hasLines() ? [this.log.retainUntil(ended)] : [];
    });
  }

  private load(): Promise<LeaseRecord | null> {
    return this.core.load();
  }

  private logView(): LeaseView {
    const rec = this.core.record;
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

  create(terms: LeaseTerms): Promise<LeaseRecord> {
    return this.core.create(terms);
  }

  get(): Promise<LeaseRecord | null> {
    return this.core.load();
  }

  event(nodeId: string, ev: LeaseEvent, now?: number): Promise<EventOutcome> {
    return this.core.event(nodeId, ev, now);
  }

  confirm(nodeId: string, points: number[], now?: number): Promise<void> {
    return this.core.confirm(nodeId, points, now);
  }

  terminate(now?: number): Promise<LeaseRecord['state']> {
    return this.core.terminate(now);
  }

  extend(key: string, seconds: number, amount: bigint, now?: number): Promise<ExtendOutcome> {
    return this.core.extend(key, seconds, amount, now);
  }

  override async alarm(): Promise<void> {
    await this.core.alarm((now) => this.purgeLogsIfDue(now));
  }

  private ports(): LeasePorts {
    const env = this.env;
    const { money, client } = connection(env);
    return {
      money,
      client,
      now: () => Date.now(),
      mail: async (nodeId, region, command) => {
        await collectorFor(env, nodeId, region).stub.enqueueCommand(nodeId, command);
      },
      returnGpus: async (t, at, nodeSilent) => {
        await regionBook(env, t.region, t.gpuModel).leaseEnded(t.leaseId, at, { nodeSilent });
      },
      publishTrust: async (nodeId) => {
        await publishNodeTrust(env, nodeId);
      },
      emit: async (event) => {
        await emitEvent(env, event);
      },
      leaseToken: async (t, expiresAt) =>
        signLeaseToken(await keyRing(env.JWT_PRIVATE_KEYS), { leaseId: t.leaseId, nodeId: t.nodeId }, { issuer: env.JWT_ISSUER, expiresAt, now: Date.now() }),
      warn: (msg, fields) => log('warn', msg, fields),
    };
  }
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


