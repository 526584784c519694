// Supply-rewards inputs (docs/rewards.md, "Inputs per node per epoch" and "I/O"), read from SQL
// only: one statement per chunk of nodes, none per node.
import type { Client } from '@libsql/client/web';
import type { NodeInputs } from './weights.ts';

export interface EpochWindow {
  startMs: number;
  endMs: number;
}

export interface InputsChunkOptions {
  /** Node ids strictly after this one (null: from the first). */
  after: string | null;
  limit: number;
  /** How long a passed capacity challenge keeps a node verified (VERIFIED_TTL_S · 1000). */
  verifiedTtlMs: number;
}

const MINUTE_MS = 60_000;

/**
 * Inputs of the next `limit` nodes (by id, after `after`) that existed before the epoch's end and
 * have at least one confirmed minute in it; a node with none cannot be eligible and gets no line.
 *
 * - confirmedS: 60 × the node's `node_metrics_minute` rows in the epoch's minutes, at most the
 *   epoch's length.
 * - gpusOffered: min(the node's GPUs, GPUs of its sell orders open at some time in the epoch
 *   (created before the end, closed or expiring after the start) + GPUs of its leases overlapping
 *   the epoch). A filled sell and its lease may both count; the node's GPU count caps the sum.
 * - leasedGpuS: Σ gpus × the overlap of [created_at, created_at + duration_s] with the epoch, over
 *   the node's leases that did not fail. An upper bound: a lease row has no end time, so a lease
 *   ended early counts its whole booked duration.
 * - verified: a capacity challenge passed before the epoch's end whose validity (verifiedTtlMs)
 *   reaches its start, and no challenge failed or expired (decided) within the epoch.
 * - stake: the node's active stake at the epoch's end: Σ its stake rows − Σ its unstake rows
 *   (pending, released or slashed: src/rewards/stakes.ts) created before the end.
 * - gpuModel: the catalog model of the node's first GPU (lowest index).
 */
export async function nodeInputsChunk(client: Client, w: EpochWindow, epochS: number, o: InputsChunkOptions): Promise<NodeInputs[]> {
  const startMin = Math.ceil(w.startMs / MINUTE_MS);
  const endMin = Math.ceil(w.endMs / MINUTE_MS);
  const rs = await client.execute({
    sql: `SELECT n.id, n.account_id,
            (SELECT g.model FROM node_gpus g WHERE g.node_id = n.id ORDER BY g.gpu_index LIMIT 1) AS gpu_model,
            (SELECT COUNT(*) FROM node_gpus g WHERE g.node_id = n.id) AS gpus,
            (SELECT COUNT(*) FROM node_metrics_minute m WHERE m.node_id = n.id AND m.minute >= :smin AND m.minute < :emin) AS minutes,
            (SELECT COALESCE(SUM(o.gpus), 0) FROM orders o
              WHERE o.node_id = n.id AND o.side = 'sell' AND o.created_at < :end AND COALESCE(o.closed_at, o.expires_at) > :start) AS sell_gpus,
            (SELECT COALESCE(SUM(l.gpus), 0) FROM leases l
              WHERE l.node_id = n.id AND l.state <> 'failed' AND l.created_at < :end AND l.created_at + l.duration_s * 1000 > :start) AS lease_gpus,
            (SELECT COALESCE(SUM(l.gpus * (MIN(l.created_at + l.duration_s * 1000, :end) - MAX(l.created_at, :start))), 0) FROM leases l
              WHERE l.node_id = n.id AND l.state <> 'failed' AND l.created_at < :end AND l.created_at + l.duration_s * 1000 > :start) AS leased_gpu_ms,
            EXISTS (SELECT 1 FROM node_challenges c WHERE c.node_id = n.id AND c.kind = 'capacity' AND c.status = 'passed'
              AND c.decided_at < :end AND c.decided_at + :ttl >= :start) AS passed,
            EXISTS (SELECT 1 FROM node_challenges c WHERE c.node_id = n.id AND c.status IN ('failed', 'expired')
              AND c.decided_at >= :start AND c.decided_at < :end) AS failed,
            (SELECT COALESCE(SUM(CASE WHEN s.kind = 'stake' THEN s.amount ELSE -s.amount END), 0) FROM node_stakes s
              WHERE s.node_id = n.id AND s.created_at < :end) AS stake
          FROM nodes n
          WHERE n.id > :after AND n.created_at < :end
            AND EXISTS (SELECT 1 FROM node_metrics_minute m WHERE m.node_id = n.id AND m.minute >= :smin AND m.minute < :emin)
          ORDER BY n.id LIMIT :limit`,
    args: { smin: startMin, emin: endMin, start: w.startMs, end: w.endMs, ttl: o.verifiedTtlMs, after: o.after ?? '', limit: o.limit },
  });
  return rs.rows.map((r) => {
    const gpus = Number(r.gpus);
    const offered = Math.min(gpus, Number(r.sell_gpus) + Number(r.lease_gpus));
    return {
      nodeId: String(r.id),
      ownerId: String(r.account_id),
      gpuModel: r.gpu_model === null ? null : String(r.gpu_model),
      gpusOffered: offered,
      confirmedS: Math.min(epochS, 60 * Number(r.minutes)),
      leasedGpuS: Math.floor(Number(r.leased_gpu_ms) / 1000),
      verified: Number(r.passed) === 1 && Number(r.failed) === 0,
      stake: BigInt(r.stake as bigint | number),
    };
  });
}
