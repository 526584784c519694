// Helpers for Lease tests: a leased setup in its own book, time moved by rewriting the
// record's clocks, runner reports and heartbeat confirmations.
import { runInDurableObject } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { expect } from 'vitest';
import { ledgerEntries, ledgerTransactions } from '../../src/db/schema.ts';
import { lease, type LeaseRecord } from '../../src/durable/lease.ts';
import { call, db, fund, json, signUp, type TestAccount } from './support.ts';
import { bindings, onlineNode, placed, buy, sell } from './trading.ts';

// Lease tests trade in their own region; each test in its own GPU model's book.
export const REGION = 'eu-central';
export const HOUR_MS = 3_600_000;

export interface Setup {
  renter: TestAccount;
  provider: TestAccount;
  node: { nodeId: string; token: string; region: string };
  leaseId: string;
  askId: string;
}

/** A renter with $50, a provider's online node, and a 1-hour lease on 2 GPUs at $2.00 ($4.00). */
export async function leased(model: string, pay: { asset?: 'USD' | 'GRID'; funds?: string; maxDurationS?: number; price?: string } = {}): Promise<Setup> {
  const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
  await fund(renter, pay.asset ?? 'USD', pay.funds ?? '50.00');
  const node = await onlineNode(REGION, provider, model, 2);
  const price = pay.price ?? '2.00';
  const ask = await placed(provider, sell(REGION, model, node.nodeId, { price, ...(pay.maxDurationS ? { max_duration_s: pay.maxDurationS } : {}) }));
  const bid = await placed(renter, buy(REGION, model, { price, pay_with: pay.asset ?? 'USD' }));
  expect(bid.leases).toHaveLength(1);
  // On this test's own node (not an earlier ask in the same book).
  expect((await json(await call(`/v1/leases/${bid.leases[0].id}`, { auth: renter.apiKey }))).lease.node_id).toBe(node.nodeId);
  return { renter, provider, node, leaseId: bid.leases[0].id, askId: ask.order.id };
}

export const stub = (id: string) => lease(bindings, id);
export const record = async (id: string) => (await stub(id).get()) as unknown as LeaseRecord;

/** Moves the lease `ms` into the past: as if that much time had gone by since each of its events. */
export async function elapse(id: string, ms: number): Promise<void> {
  await runInDurableObject(stub(id), async (instance: unknown, state: DurableObjectState) => {
    const rec = (await state.storage.get<LeaseRecord>('lease'))!;
    const back = (t: number | null) => (t === null ? null : t - ms);
    rec.terms.createdAt -= ms;
    rec.history = rec.history.map((h) => ({ ...h, at: h.at - ms }));
    rec.startedAt = back(rec.startedAt);
    rec.endsAt = back(rec.endsAt);
    rec.stoppedAt = back(rec.stoppedAt);
    rec.nextSettleAt = back(rec.nextSettleAt);
    rec.finalAfter = back(rec.finalAfter);
    rec.spans = rec.spans.map(([a, b]) => [a - ms, b - ms]);
    await state.storage.put('lease', rec);
    (instance as { core: { record: LeaseRecord } }).core.record = rec;
  });
}

export async function report(s: Setup, body: Record<string, unknown>) {
  return call(`/v1/runner/leases/${s.leaseId}/events`, { auth: s.node.token, body: { at: new Date().toISOString(), ...body } });
}

/** Heartbeat confirmations every 10 s over [from, to]. */
export async function confirmEvery10s(s: Setup, from: number, to: number) {
  const points: number[] = [];
  for (let t = from; t <= to; t += 10_000) points.push(t);
  await stub(s.leaseId).confirm(s.node.nodeId, points);
}

export async function ledgerOf(leaseId: string) {
  return db()
    .select({ kind: ledgerTransactions.kind, owner: ledgerEntries.ownerId, accountKind: ledgerEntries.accountKind, amount: ledgerEntries.amount })
    .from(ledgerEntries)
    .innerJoin(ledgerTransactions, eq(ledgerTransactions.id, ledgerEntries.transactionId))
    .where(eq(ledgerTransactions.reference, leaseId));
}

