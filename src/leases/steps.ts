// The Lease object without the Durable Object around it: its entry points in one queue
// (LeaseCore), the loop that carries out the lifecycle's due steps one at a time (runLease), and
// what each step does to the world outside the record (performStep). The Durable Object
// (src/durable/lease.ts) supplies its storage and the Worker's bindings; the fault harness
// (test/faults/) supplies a simulated storage that can be evicted at any await, ports that fail
// or lose answers, and a libSQL client that does the same, and so runs exactly this code.
//
// Every step is repeatable: ledger postings under keys of their own, mailbox commands by id, the
// book's GPU return by lease id, the libSQL row by its state. A step is recorded (stepDone) only
// after it is carried out, so a step whose answer was lost is carried out again with no second
// effect.
import type { Client } from '@libsql/client/web';
import type { Command } from '../contracts/runner.ts';
import type { WebhookEventType } from '../contracts/webhooks.ts';
import { capture, hold, release, type RuleResult } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import type { LeaseTerms } from '../market/orders.ts';
import type { LeaseConfig } from './config.ts';
import type { LeaseEvent } from '../contracts/runner.ts';
import { newRecord, nextStep, plan, receive, stepDone, upgradeRecord, wakeAt, type LeaseInput, type LeaseRecord, type LeaseStep, type StepOutcome } from './lifecycle.ts';

/** How much a node's reliability drops when a lease on it fails (parts per million). */
export const RELIABILITY_PENALTY_PPM = 50_000;
/** How long a failed step waits before the alarm tries it again. */
export const RETRY_MS = 5_000;
/** Steps one run carries out at most; the rest continue from an alarm at once. */
export const STEPS_PER_RUN = 64;

/** The world outside the lease's record. */
export interface LeasePorts {
  /** libSQL with integers as bigint (the ledger). */
  money: Client;
  /** libSQL for plain rows. */
  client: Client;
  now(): number;
  /** Puts a command in the node's mailbox; the same id twice is one command. */
  mail(nodeId: string, region: string, command: Command): Promise<void>;
  /** Gives the lease's GPUs back to its book (once per lease, however often asked). */
  returnGpus(t: LeaseTerms, at: number, nodeSilent: boolean): Promise<void>;
  /** Pushes the node's current reliability and verification to the books. */
  publishTrust(nodeId: string): Promise<void>;
  /** Hands a webhook event to the renter's endpoints; the same id twice is one event. */
  emit(event: { id: string; accountId: string; type: WebhookEventType; data: Record<string, unknown> }): Promise<void>;
  /** The token the runner's workload uses for this lease, valid until `expiresAt`. */
  leaseToken(t: LeaseTerms, expiresAt: number): Promise<string>;
  warn(msg: string, fields: Record<string, unknown>): void;
}

/** The lease object's own storage. */
export interface LeaseHost {
  load(): Promise<LeaseRecord>;
  save(rec: LeaseRecord): Promise<void>;
  /** null deletes the alarm. */
  setAlarm(at: number | null): Promise<void>;
  /** Other times the object must wake for (the log's retention), given the record. */
  wakeAlso(rec: LeaseRecord): number[];
}

/**
 * Carries out due steps one at a time, each recorded as soon as it is done, then sets the alarm
 * for the next thing time will decide. `only` limits a run to some steps (creation).
 */
export async function runLease(host: LeaseHost, ports: LeasePorts, config: LeaseConfig, now: number, only?: (step: LeaseStep) => boolean): Promise<LeaseRecord> {
  let rec = await host.load();
  // Creation only creates: whatever time has decided meanwhile is the alarm's to apply.
  const planned = only ? rec : plan(rec, now, config);
  if (planned !== rec) await host.save((rec = planned));
  let retry = false;
  let more = false;
  for (let i = 0; ; i++) {
    const step = nextStep(rec, now, config);
    if (!step || (only && !only(step))) break;
    if (i === STEPS_PER_RUN) {
      more = true;
      break;
    }
    let outcome: StepOutcome;
    try {
      outcome = await performStep(step, rec, ports, config);
    } catch (err) {
      ports.warn('lease step failed; retrying', { lease_id: rec.terms.leaseId, state: rec.state, step: step.kind, error: String(err) });
      retry = true;
      break;
    }
    const done = stepDone(rec, step, outcome, ports.now());
    await host.save((rec = only ? done : plan(done, now, config)));
  }
  const times = [wakeAt(rec, now, config) ?? Infinity, ...host.wakeAlso(rec)];
  if (retry) times.push(now + RETRY_MS);
  if (more || (only && nextStep(rec, now, config))) times.push(now);
  const at = Math.min(...times);
  await host.setAlarm(at === Infinity ? null : Math.max(ports.now() + 1, at));
  return rec;
}

/** Carries out one step; throws when it may succeed later, answers `ok: false` when it never will. */
export async function performStep(step: LeaseStep, rec: LeaseRecord, ports: LeasePorts, config: LeaseConfig): Promise<StepOutcome> {
  const t = rec.terms;
  const { money, client } = ports;
  switch (step.kind) {
    case 'book':
      await book(money, t);
      return { ok: true };
    case 'command': {
      // The runner enforces this end by itself; the lease's own end (from the start report) is
      // never later, since provisioning only delays the start.
      const endsAt = t.createdAt + config.provisionTimeoutMs + t.durationS * 1000;
      await ports.mail(t.nodeId, t.region, {
        id: `start_${t.leaseId}`,
        type: 'start_lease',
        lease_id: t.leaseId,
        workload: t.workload,
        gpu_indices: t.gpuIndices,
        ends_at: new Date(endsAt).toISOString(),
        duration_s: t.durationS,
        lease_token: await ports.leaseToken(t, endsAt + 3_600_000),
      });
      return { ok: true };
    }
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
      await ports.mail(t.nodeId, t.region, { id: `stop_${t.leaseId}`, type: 'stop_lease', lease_id: t.leaseId, reason: step.reason.slice(0, 500) });
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
      await ports.returnGpus(t, ports.now(), step.nodeSilent);
      return { ok: true };
    case 'refund':
      if (step.amount > 0n) {
        await post(money, release({ owner: t.renterId, asset: t.asset, amount: step.amount, idempotencyKey: `lease:${t.leaseId}:refund`, reference: t.leaseId, memo: `lease ${rec.state}: unused escrow` }));
      }
      return { ok: true };
    case 'sweep':
      await sweepExtensionHolds(money, rec);
      return { ok: true };
    case 'publish_trust':
      // Books match on the node's current reliability, which the penalty just lowered.
      await ports.publishTrust(t.nodeId);
      return { ok: true };
    case 'sync':
      await client.execute({
        sql: 'UPDATE leases SET state = ?, duration_s = ?, amount = ? WHERE id = ?',
        args: [rec.state, rec.terms.durationS, BigInt(rec.terms.amount), t.leaseId],
      });
      return { ok: true };
    case 'extend_command':
      await ports.mail(t.nodeId, t.region, { id: `extend_${t.leaseId}_${step.n}`, type: 'extend_lease', lease_id: t.leaseId, ends_at: new Date(step.endsAt).toISOString() });
      return { ok: true };
    case 'notify':
      await ports.emit({ id: step.id, accountId: t.renterId, type: step.type, data: step.data });
      return { ok: true };
  }
}

/** The lease's libSQL row and its bid marked filled, with the price improvement's release. */
async function book(money: Client, t: LeaseTerms): Promise<void> {
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

/**
 * Extension holds in the ledger that this lease never applied (their request stopped between
 * the hold and the lease) go back to the renter, each once.
 */
async function sweepExtensionHolds(money: Client, rec: LeaseRecord): Promise<void> {
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

/** The lease object's storage: its record under one key, and its alarm. */
export interface LeaseStorage {
  get(): Promise<LeaseRecord | undefined>;
  put(rec: LeaseRecord): Promise<void>;
  /** null deletes the alarm. */
  setAlarm(at: number | null): Promise<void>;
}

export type EventOutcome = { ok: true; state: LeaseRecord['state'] } | { ok: false; reason: 'not_found' };
export type ExtendOutcome =
  | { ok: true; record: LeaseRecord }
  | { ok: false; reason: 'ended' | 'too_long' | 'insufficient_funds' | 'pending' };

/**
 * The lease object's entry points. Every one (create, runner events, heartbeat confirmations,
 * terminate, extend, the alarm) runs through one queue: one at a time, each to the end of its
 * steps, so none of them ever sees another half-done across an await on libSQL, the book or the
 * node's mailbox. A new instance over the same storage (after an eviction) starts from the
 * stored record.
 */
export class LeaseCore {
  /** undefined until loaded; null when there is no lease. */
  record: LeaseRecord | null | undefined;
  /** The tail of the queue every entry point waits in. */
  private queue: Promise<unknown> = Promise.resolve();

  private readonly storage: LeaseStorage;
  private readonly ports: () => LeasePorts;
  private readonly config: LeaseConfig;
  /** Other times the object must wake for (the log's retention), given the record. */
  private readonly wakeAlso: (rec: LeaseRecord) => number[];

  constructor(storage: LeaseStorage, ports: () => LeasePorts, config: LeaseConfig, wakeAlso: (rec: LeaseRecord) => number[] = () => []) {
    this.storage = storage;
    this.ports = ports;
    this.config = config;
    this.wakeAlso = wakeAlso;
  }

  async load(): Promise<LeaseRecord | null> {
    if (this.record === undefined) {
      const stored = await this.storage.get();
      // Another entry point may have loaded (or created) it meanwhile.
      if (this.record === undefined) this.record = stored ? upgradeRecord(stored) : null;
    }
    return this.record;
  }

  private async save(rec: LeaseRecord): Promise<void> {
    rec.updatedAt = this.ports().now();
    await this.storage.put(rec);
    this.record = rec;
  }

  /** Runs `fn` after every call before it has finished, and before any after it starts. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
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
      const now = this.ports().now();
      if (!rec) {
        rec = newRecord(terms);
        await this.save(rec);
        // Should anything below fail, the alarm finishes it.
        await this.storage.setAlarm(now + RETRY_MS);
      }
      return this.run(now, (step) => step.kind === 'book' || step.kind === 'command');
    });
  }

  /** A lease event from the runner of `nodeId`; events for another node's lease are refused. */
  event(nodeId: string, ev: LeaseEvent, now?: number): Promise<EventOutcome> {
    return this.serial(async () => {
      const rec = await this.load();
      if (!rec || rec.terms.nodeId !== nodeId) return { ok: false, reason: 'not_found' } as const;
      const after = await this.input({ kind: 'event', event: ev }, now ?? this.ports().now());
      return { ok: true, state: after.state } as const;
    });
  }

  /** Heartbeat confirmations from a flushed batch; redelivered batches change nothing. */
  async confirm(nodeId: string, points: number[], now?: number): Promise<void> {
    await this.serial(async () => {
      const rec = await this.load();
      if (!rec || rec.terms.nodeId !== nodeId) return;
      await this.input({ kind: 'confirm', points: points.slice(0, 10_000) }, now ?? this.ports().now());
    });
  }

  /** The renter ends the lease now: a provisioning lease is cancelled free, a running one billed to now. */
  terminate(now?: number): Promise<LeaseRecord['state']> {
    return this.serial(async () => {
      if (!(await this.load())) throw new Error('no lease');
      return (await this.input({ kind: 'terminate' }, now ?? this.ports().now())).state;
    });
  }

  /**
   * Adds paid time. The lease holds its cost itself under `key` (the same key is the same
   * extension), then applies it if the lease is still live, or releases the hold: a hold never
   * stays behind unapplied, whatever happens to the caller.
   */
  extend(key: string, seconds: number, amount: bigint, now?: number): Promise<ExtendOutcome> {
    return this.serial(async () => {
      const rec = await this.load();
      if (!rec) throw new Error('no lease');
      const at = now ?? this.ports().now();
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

  /** The alarm: `first` (the log's purge) and then whatever steps are due. */
  async alarm(first?: (now: number) => Promise<unknown>): Promise<void> {
    await this.serial(async () => {
      if (!(await this.load())) return;
      const now = this.ports().now();
      await first?.(now);
      await this.run(now);
    });
  }

  /** Applies an input, saves, and carries out what follows. Runs inside the queue. */
  private async input(input: LeaseInput, now: number): Promise<LeaseRecord> {
    const { rec, changed } = receive((await this.load())!, input, now, this.config);
    if (changed) await this.save(rec);
    return this.run(now);
  }

  private run(now: number, only?: (step: LeaseStep) => boolean): Promise<LeaseRecord> {
    const host: LeaseHost = {
      load: async () => (await this.load())!,
      save: (rec) => this.save(rec),
      setAlarm: (at) => this.storage.setAlarm(at),
      wakeAlso: this.wakeAlso,
    };
    return runLease(host, this.ports(), this.config, now, only);
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
