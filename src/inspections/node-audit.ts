// Runs the order-processing check (order-processing.ts) over a node's most recent leases: each
// lease's record from its Lease object, and what the ledger shows went back to the renter.
import type { Transcript } from '../contracts/inspector-verdicts.ts';
import { connection } from '../db/client.ts';
import { lease } from '../durable/lease.ts';
import type { Bindings } from '../env.ts';
import { leaseConfig } from '../leases/config.ts';
import type { LeaseRecord } from '../leases/lifecycle.ts';
import { auditLease, summarise, type LeaseAudit, type NodeOrderProcessing } from './order-processing.ts';

/** Leases one check reads at most (one Lease object call each). */
export const AUDIT_LEASES_MAX = 50;

export async function auditNodeLeases(env: Bindings, nodeId: string, limit = 20, now = Date.now()): Promise<NodeOrderProcessing> {
  const { client } = connection(env);
  const rs = await client.execute({
    sql: 'SELECT id FROM leases WHERE node_id = ? ORDER BY created_at DESC, id DESC LIMIT ?',
    args: [nodeId, Math.min(Math.max(limit, 1), AUDIT_LEASES_MAX)],
  });
  const ids = rs.rows.map((r) => String(r.id));
  if (ids.length === 0) return summarise([]);
  // The refund is one ledger release under its own key: what the renter's available gained.
  const refunds = await client.execute({
    sql: `SELECT tx.reference AS lease_id, sum(e.amount) AS amount FROM ledger_transactions tx JOIN ledger_entries e ON e.transaction_id = tx.id
          WHERE tx.idempotency_key IN (SELECT 'lease:' || value || ':refund' FROM json_each(?)) AND e.account_kind = 'available'
          GROUP BY tx.reference`,
    args: [JSON.stringify(ids)],
  });
  const refunded = new Map(refunds.rows.map((r) => [String(r.lease_id), BigInt(r.amount as number | bigint)]));
  const config = leaseConfig(env);
  const audits: LeaseAudit[] = [];
  for (const id of ids) {
    const rec = (await lease(env, id).get()) as LeaseRecord | null;
    if (!rec) continue;
    audits.push(auditLease(rec, config, now, rec.steps.refunded ? (refunded.get(id) ?? 0n) : null));
  }
  return summarise(audits);
}

/** Leases in an inspection's transcript: the node's most recent. */
export const TRANSCRIPT_LEASES = 5;

/**
 * The order-processing part of an inspection's transcript: the node's most recent leases' own
 * records and what the ledger shows was refunded, for inspectors to re-audit (transcript-check.ts).
 */
export async function orderProcessingRecord(env: Bindings, nodeId: string, now = Date.now()): Promise<Transcript['order_processing']> {
  const { client } = connection(env);
  const config = leaseConfig(env);
  const rs = await client.execute({ sql: 'SELECT id FROM leases WHERE node_id = ? ORDER BY created_at DESC, id DESC LIMIT ?', args: [nodeId, TRANSCRIPT_LEASES] });
  const ids = rs.rows.map((r) => String(r.id));
  const refunds = ids.length
    ? await client.execute({
        sql: `SELECT tx.reference AS lease_id, sum(e.amount) AS amount FROM ledger_transactions tx JOIN ledger_entries e ON e.transaction_id = tx.id
              WHERE tx.idempotency_key IN (SELECT 'lease:' || value || ':refund' FROM json_each(?)) AND e.account_kind = 'available'
              GROUP BY tx.reference`,
        args: [JSON.stringify(ids)],
      })
    : { rows: [] };
  const refunded = new Map(refunds.rows.map((r) => [String(r.lease_id), String(r.amount)]));
  const leases: Transcript['order_processing']['leases'] = [];
  for (const id of ids) {
    const rec = (await lease(env, id).get()) as LeaseRecord | null;
    if (!rec) continue;
    // Through JSON, as it will be published: bigints (if any) as decimal strings.
    const record = JSON.parse(JSON.stringify(rec, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>;
    leases.push({ record, refunded: rec.steps.refunded ? (refunded.get(id) ?? '0') : null });
  }
  return { at: now, provision_timeout_ms: config.provisionTimeoutMs, fee_bps: Number(config.feeBps), leases };
}
