// The RegionBook's outbox: what a committed change means in other stores (a Lease object for
// each fill, an order's status and a bid's released escrow in libSQL), written in the same
// storage transaction as the change and carried out afterwards, retried by alarm until done.
//
// Effects of one order (or one lease) apply in the order they were written: only the oldest
// effect of each key is ever due, so a `filled` that is backing off cannot be overtaken by the
// ask's later `open`. A failure holds back only its own key; the rest of the book goes on.
import type { Bindings } from '../env.ts';
import { connection } from '../db/client.ts';
import { log } from '../http/log.ts';
import { release as releaseRule } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import type { BidOrder, LeaseTerms } from '../market/orders.ts';

export type OrderStatus = 'open' | 'filled' | 'cancelled' | 'expired';

export type BookEffect =
  | { kind: 'lease'; terms: LeaseTerms }
  | { kind: 'status'; orderId: string; status: OrderStatus; at: number; release: { owner: string; asset: string; amount: string } | null };

/** Effects with the same key apply strictly in sequence. */
export function effectKey(effect: BookEffect): string {
  return effect.kind === 'lease' ? `lease:${effect.terms.leaseId}` : `order:${effect.orderId}`;
}

const MAX_BACKOFF_MS = 60_000;
/**
 * A drain makes sure the alarm is no further off than this, so that if the object is reset
 * before the drain ends (nothing then runs it on), the alarm carries out what is left even
 * when no call comes. At most one alarm per this period per busy book; one that fires into a
 * running drain waits for it.
 */
const DRAIN_WATCHDOG_MS = 30_000;
const BATCH = 50;
/** The oldest effect of each key: the only ones that may run. */
const HEADS = 'FROM effects e WHERE NOT EXISTS (SELECT 1 FROM effects p WHERE p.key = e.key AND p.seq < e.seq)';

export class BookOutbox {
  private draining: Promise<void> | null = null;
  private dirty = false;
  /** When the alarm is set for, kept in memory so placing an order reads no storage for it. */
  private alarmAt: number | null = null;

  private readonly storage: DurableObjectStorage;
  /** Carries out one effect: a string names a permanent refusal, a throw a transient failure. */
  private readonly apply: (effect: BookEffect) => Promise<string | null>;

  constructor(storage: DurableObjectStorage, apply: (effect: BookEffect) => Promise<string | null>) {
    this.storage = storage;
    this.apply = apply;
  }

  async load(): Promise<void> {
    this.alarmAt = await this.storage.getAlarm();
    // An instance stopped in the middle of a drain (a reset, an eviction) left effects that no
    // alarm may be set for: a drain sets one only when an effect fails, and the alarm set for
    // an order's expiry may be half an hour off. Whatever is waiting is due now.
    const due = this.storage.sql.exec<{ t: number | null }>(`SELECT min(e.not_before) AS t ${HEADS}`).one().t;
    if (due !== null) await this.alarmBy(Math.max(due, Date.now()));
  }

  /** Call inside the change's storage transaction. */
  enqueue(effect: BookEffect, now: number): void {
    this.storage.sql.exec('INSERT INTO effects (body, key, not_before) VALUES (?, ?, ?)', JSON.stringify(effect), effectKey(effect), now);
    this.dirty = true;
  }

  /** The alarm fired: it is no longer set, and whatever is due runs at the next `settle`. */
  alarmFired(): void {
    this.alarmAt = null;
    this.dirty = true;
  }

  /**
   * Carries out pending effects now; whatever fails is left for the alarm, which is moved
   * earlier when an effect or `expiry` (a new resting order's) needs it sooner.
   */
  async settle(expiry: number | null = null): Promise<void> {
    if (this.dirty) {
      this.draining ??= this.drain().finally(() => {
        this.draining = null;
      });
      await this.draining;
    }
    // While a drain runs, the effects it will carry out are its business (its watchdog alarm
    // aside). A drain that fails sets the alarm itself.
    const retry = this.draining ? null : this.storage.sql.exec<{ t: number | null }>(`SELECT min(e.not_before) AS t ${HEADS}`).one().t;
    await this.alarmBy(Math.min(expiry ?? Infinity, retry ?? Infinity));
  }

  private async alarmBy(at: number): Promise<void> {
    if (at === Infinity || (this.alarmAt !== null && this.alarmAt <= at)) return;
    await this.storage.setAlarm(at);
    this.alarmAt = at;
  }

  private async drain(): Promise<void> {
    const sql = this.storage.sql;
    await this.alarmBy(Date.now() + DRAIN_WATCHDOG_MS);
    while (this.dirty) {
      this.dirty = false;
      const now = Date.now();
      const due = sql.exec<{ seq: number; body: string; attempts: number }>(`SELECT e.seq, e.body, e.attempts ${HEADS} AND e.not_before <= ? ORDER BY e.seq LIMIT ${BATCH}`, now).toArray();
      for (const e of due) {
        const effect = JSON.parse(e.body) as BookEffect;
        try {
          const problem = await this.apply(effect);
          if (problem) {
            // Not transient: retrying cannot help. Kept for an operator, and logged loudly.
            log('error', 'book effect refused', { seq: e.seq, kind: effect.kind, problem });
            sql.exec('INSERT INTO dead_effects (seq, body, error, at) VALUES (?, ?, ?, ?)', e.seq, e.body, problem, now);
          }
          sql.exec('DELETE FROM effects WHERE seq = ?', e.seq);
          // The next effect of the same key may be due now.
          this.dirty = true;
        } catch (err) {
          const wait = Math.min(MAX_BACKOFF_MS, 500 * 2 ** e.attempts);
          log('warn', 'book effect failed; retrying', { seq: e.seq, kind: effect.kind, attempts: e.attempts + 1, error: String(err) });
          sql.exec('UPDATE effects SET attempts = attempts + 1, not_before = ? WHERE seq = ?', Date.now() + wait, e.seq);
          await this.alarmBy(Date.now() + wait);
        }
      }
    }
  }
}

/** Carries out one effect; a string names a permanent refusal, a throw a transient failure. */
export async function applyBookEffect(env: Bindings, effect: BookEffect): Promise<string | null> {
  if (effect.kind === 'lease') {
    await env.LEASE.getByName(effect.terms.leaseId).create(effect.terms);
    return null;
  }
  const { money } = connection(env);
  const update = {
    sql: "UPDATE orders SET status = ?, closed_at = CASE WHEN ? = 'open' THEN NULL ELSE ? END WHERE id = ?",
    args: [effect.status, effect.status, effect.at, effect.orderId],
  };
  if (!effect.release || BigInt(effect.release.amount) === 0n) {
    await money.execute(update);
    return null;
  }
  const rule = releaseRule({
    owner: effect.release.owner,
    asset: effect.release.asset as BidOrder['payWith'],
    amount: BigInt(effect.release.amount),
    idempotencyKey: `order:${effect.orderId}:release`,
    reference: effect.orderId,
    memo: `order ${effect.status}`,
  });
  if (!rule.ok) return rule.problem;
  const posted = await postTransaction(money, rule.spec, { alongside: [update] });
  return posted.ok ? null : posted.reason;
}
