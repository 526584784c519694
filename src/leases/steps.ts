// The Lease object's two loops without the object around them: carrying out the lifecycle's due
// steps one at a time (runLease), and what each step does to the world outside the record
// (performStep). The Durable Object (src/durable/lease.ts) supplies its storage as a LeaseHost
// and the Worker's bindings as LeasePorts; the fault harness (test/faults/) supplies a simulated
// storage that can be evicted at any await and a libSQL client that fails or loses answers, and
// so runs exactly this code.
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
import { nextStep, plan, stepDone, wakeAt, type LeaseRecord, type LeaseStep, type StepOutcome } from './lifecycle.ts';

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

/** Posts a ledger transaction: its key makes a repeat a no-op. Insufficient funds is answered; anything else throws. */
async function post(money: Client, rule: RuleResult): Promise<'posted' | 'insufficient_funds'> {
  if (!rule.ok) throw new Error(`ledger rule refused: ${rule.problem}`);
  const posted = await postTransaction(money, rule.spec);
  if (posted.ok) return 'posted';
  if (posted.reason === 'insufficient_funds') return 'insufficient_funds';
  throw new Error(`ledger refused: ${posted.reason}`);
}
