// The challenges' part of the each-minute cron: challenges past their deadline expire (a failure,
// unless the node never heartbeated to receive them), verification past `verified_until` is
// cleared and the books told, and online nodes whose verification ends soon, or that are
// unverified and were not challenged within the window, are challenged again, a few chosen at random each run so that no node
// can predict which minute its check comes. No cursor is needed: every step selects by state,
// and what one run leaves (a limit, a failure) the next run finds again.
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import { publishNodeTrust } from '../nodes/trust.ts';
import { challengeConfig, chooseAtRandom } from './challenge-terms.ts';
import { decideChallenge } from './effects.ts';
import { issueBoth } from './issue.ts';

const EXPIRE_PER_RUN = 200;
const DUE_CANDIDATES = 1_000;

export interface ChallengeCronResult {
  expired: string[];
  /** Closed without a decision: the node never heartbeated to receive them. */
  undelivered: string[];
  unverified: string[];
  rechallenged: string[];
}

export async function runChallengeCron(env: Bindings, now = Date.now(), random: () => number = Math.random): Promise<ChallengeCronResult> {
  const { client, db } = connection(env);
  const config = challengeConfig(env);
  const result: ChallengeCronResult = { expired: [], undelivered: [], unverified: [], rechallenged: [] };

  const overdue = await client.execute({
    sql: `SELECT c.id, c.node_id, c.status, c.issued_at, n.last_heartbeat_at FROM node_challenges c JOIN nodes n ON n.id = c.node_id
          WHERE c.status IN ('issued', 'committed') AND c.deadline < ? AND (c.status = 'issued' OR c.open_deadline < ?)
          ORDER BY c.deadline LIMIT ?`,
    args: [now, now, EXPIRE_PER_RUN],
  });
  for (const r of overdue.rows) {
    const challengeId = String(r.id);
    // A challenge rides a heartbeat reply: a node that has not heartbeated since it was issued
    // (a runner joined and not started yet, or offline) never saw it. It closes without a
    // decision; the node stays unverified and is challenged again once online (below).
    if (r.status === 'issued' && Number(r.last_heartbeat_at ?? 0) < Number(r.issued_at)) {
      const closed = await client.execute({
        sql: `UPDATE node_challenges SET status = 'expired', reasons = ? WHERE id = ? AND status = 'issued'`,
        args: [JSON.stringify(['never delivered: the node did not heartbeat before the deadline']), challengeId],
      });
      if (closed.rowsAffected > 0) result.undelivered.push(challengeId);
      continue;
    }
    const input = { challengeId, nodeId: String(r.node_id), from: r.status as 'issued' | 'committed', decision: 'expired' as const, reasons: ['no answer before the deadline'] };
    if (await decideChallenge(env, input, now)) result.expired.push(input.challengeId);
  }

  // verified_until stays: the node remains due for a re-challenge below.
  const lapsed = await client.execute({ sql: 'UPDATE nodes SET verified = 0 WHERE verified = 1 AND verified_until <= ? RETURNING id', args: [now] });
  for (const r of lapsed.rows) {
    result.unverified.push(String(r.id));
    await publishNodeTrust(env, String(r.id)).catch((err) => log('warn', 'node trust not published after verification lapsed', { node_id: String(r.id), error: String(err) }));
  }

  // Due: verification ending soon, or an unverified node (never passed, failed, or its challenge
  // never delivered) not challenged within the verification window, so it can always pass again.
  const due = await client.execute({
    sql: `SELECT id, region FROM nodes n
          WHERE status = 'online'
            AND ((verified_until IS NOT NULL AND verified_until <= ?)
              OR (verified = 0 AND NOT EXISTS (SELECT 1 FROM node_challenges c WHERE c.node_id = n.id AND c.issued_at > ?)))
            AND NOT EXISTS (SELECT 1 FROM node_challenges c WHERE c.node_id = n.id AND c.status IN ('issued', 'committed'))
          LIMIT ?`,
    args: [now + config.rechallengeBeforeMs, now - config.verifyWindowMs, DUE_CANDIDATES],
  });
  const nodes = due.rows.map((r) => ({ id: String(r.id), region: String(r.region) }));
  for (const node of chooseAtRandom(nodes, config.rechallengePerRun, random)) {
    try {
      if ((await issueBoth(env, db, node, now)).length > 0) result.rechallenged.push(node.id);
    } catch (err) {
      log('warn', 'node not re-challenged', { node_id: node.id, error: String(err) });
    }
  }
  return result;
}
