// What a decided challenge does to its node. The decision and its effect on the node are one
// batch: the challenge's status moves only from the status it was read in, and the node's row
// changes only where that move happened (matched by a fresh `decision` id), so a retry or a race
// decides and penalises at most once. Then the books are told and, on a failure, the node's asks
// are cancelled; both are idempotent.
import type { InStatement } from '@libsql/client/web';
import { connection } from '../db/client.ts';
import { regionBook } from '../durable/region-book.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import { newId } from '../ids.ts';
import type { BookOrder } from '../market/orders.ts';
import { publishNodeTrust } from '../nodes/trust.ts';
import { challengeConfig, FAIL_RELIABILITY_PPM, PASS_RELIABILITY_PPM } from './challenge-terms.ts';
import { openInspection } from './inspections.ts';

export type Decision = 'passed' | 'failed' | 'expired';

export interface DecideInput {
  challengeId: string;
  nodeId: string;
  from: 'issued' | 'committed';
  decision: Decision;
  reasons: string[];
  /** The identity answer, stored with the decision. */
  answer?: { body: unknown; signature: string };
  /** A capacity challenge's openings, stored with the decision (its public report re-checks them). */
  openings?: unknown;
  /** The node key that verified the answer. */
  nodePublicKey?: string;
}

/** The latest decided challenge of a kind has passed, and one passed within the window. */
const latestPassed = (kind: 'identity' | 'capacity') => `
  (SELECT status FROM node_challenges WHERE node_id = ?1 AND kind = '${kind}' AND decided_at IS NOT NULL
    ORDER BY decided_at DESC, issued_at DESC LIMIT 1) = 'passed'
  AND EXISTS (SELECT 1 FROM node_challenges WHERE node_id = ?1 AND kind = '${kind}' AND status = 'passed' AND decided_at >= ?2)`;

/** Records the decision and its effect on the node; false when the challenge had already moved on (nothing changed). */
export async function decideChallenge(env: Bindings, input: DecideInput, now = Date.now()): Promise<boolean> {
  const config = challengeConfig(env);
  const decision = newId('dcs');
  const decided = { sql: `SELECT 1 FROM node_challenges WHERE id = ? AND decision = ?`, args: [input.challengeId, decision] };
  const statements: InStatement[] = [
    {
      sql: `UPDATE node_challenges SET status = ?, reasons = ?, decided_at = ?, decision = ?,
              answer = coalesce(?, answer), answer_signature = coalesce(?, answer_signature),
              openings = coalesce(?, openings), node_public_key = coalesce(?, node_public_key)
            WHERE id = ? AND status = ?`,
      args: [
        input.decision,
        JSON.stringify(input.reasons),
        now,
        decision,
        input.answer ? JSON.stringify(input.answer.body) : null,
        input.answer?.signature ?? null,
        input.openings === undefined ? null : JSON.stringify(input.openings),
        input.nodePublicKey ?? null,
        input.challengeId,
        input.from,
      ],
    },
    input.decision === 'passed'
      ? {
          sql: `UPDATE nodes SET verified = 1, verified_at = ?3, verified_until = ?4, reliability_ppm = min(1000000, reliability_ppm + ?5)
                WHERE id = ?1 AND EXISTS (SELECT 1 FROM node_challenges WHERE id = ?6 AND decision = ?7)
                  AND ${latestPassed('capacity')} AND ${latestPassed('identity')}`,
          args: [input.nodeId, now - config.verifyWindowMs, now, now + config.verifiedTtlMs, PASS_RELIABILITY_PPM, input.challengeId, decision],
        }
      : {
          sql: `UPDATE nodes SET verified = 0, verified_until = NULL, reliability_ppm = max(0, reliability_ppm - ?)
                WHERE id = ? AND EXISTS (${decided.sql})`,
          args: [FAIL_RELIABILITY_PPM, input.nodeId, ...decided.args],
        },
  ];
  const [moved, node] = await connection(env).client.batch(statements, 'write');
  if (moved!.rowsAffected === 0) return false;
  log('info', 'node challenge decided', { challenge_id: input.challengeId, node_id: input.nodeId, decision: input.decision, node_changed: node!.rowsAffected > 0 });
  await afterDecision(env, input.nodeId, input.decision !== 'passed', now);
  await inspectDecision(env, input.challengeId, now);
  return true;
}

/**
 * Puts a decided challenge to the inspectors (inspections.ts); its report is public once that
 * inspection is decided. A failure is logged: the each-minute cron opens what is missing.
 */
export async function inspectDecision(env: Bindings, challengeId: string, now = Date.now()): Promise<void> {
  try {
    await openInspection(env, challengeId, now);
  } catch (err) {
    log('warn', 'inspection of a decided challenge not opened; the cron retries', { challenge_id: challengeId, error: String(err) });
  }
}

/** Tells the books the node's trust and, after a failure, cancels its asks. Failures are logged: the decision stands. */
async function afterDecision(env: Bindings, nodeId: string, failed: boolean, now: number): Promise<void> {
  try {
    await publishNodeTrust(env, nodeId);
    if (failed) await cancelNodeAsks(env, nodeId, now);
  } catch (err) {
    log('warn', 'effects of a node challenge not completed', { node_id: nodeId, error: String(err) });
  }
}

/** Cancels the node's asks that could still match: open, or fully leased and not yet expired. */
export async function cancelNodeAsks(env: Bindings, nodeId: string, now = Date.now()): Promise<number> {
  const rows = (
    await connection(env).client.execute({
      sql: `SELECT id, account_id, region, gpu_model, book FROM orders
            WHERE side = 'sell' AND node_id = ? AND (status = 'open' OR (status = 'filled' AND expires_at > ?))`,
      args: [nodeId, now],
    })
  ).rows;
  for (const r of rows) {
    await regionBook(env, String(r.region), String(r.gpu_model)).cancel(String(r.id), String(r.account_id), JSON.parse(String(r.book)) as BookOrder);
  }
  if (rows.length > 0) log('info', 'asks of a node that failed a challenge cancelled', { node_id: nodeId, orders: rows.length });
  return rows.length;
}

/** True when the node's latest decided capacity challenge failed (or expired): it may not sell until one passes. */
export async function capacityFailed(env: Bindings, nodeId: string): Promise<boolean> {
  const rs = await connection(env).client.execute({
    sql: `SELECT status FROM node_challenges WHERE node_id = ? AND kind = 'capacity' AND decided_at IS NOT NULL ORDER BY decided_at DESC, issued_at DESC LIMIT 1`,
    args: [nodeId],
  });
  const status = rs.rows[0]?.status;
  return status === 'failed' || status === 'expired';
}
