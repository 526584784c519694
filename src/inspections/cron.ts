// The challenges' part of the each-minute cron: challenges past their deadline expire (a failure),
// verification past `verified_until` is cleared and the books told, and online nodes whose
// verification ends soon are challenged again, a few chosen at random each run so that no node
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
  unverified: string[];
  rechallenged: string[];
}

export async function runChallengeCron(env: Bindings, now = Date.now(), random: () => number = Math.random): Promise<ChallengeCronResult> {
  const { client, db } = connection(env);
  const config = challengeConfig(env);
  const result: ChallengeCronResult = { expired: [], unverified: [], rechallenged: [] };

  const overdue = await client.execute({
    sql: `SELECT id, node_id, status FROM node_challenges
          WHERE status IN ('issued', 'committed') AND deadline < ? AND (status = 'issued' OR open_deadline < ?)
          ORDER BY deadline LIMIT ?`,
    args: [now, now, EXPIRE_PER_RUN],
  });
  for (const r of overdue.rows) {
    const input = { challengeId: String(r.id), nodeId: String(r.node_id), from: r.status as 'issued' | 'committed', decision: 'expired' as const, reasons: ['no answer before the deadline'] };
    if (await decideChallenge(env, input, now)) result.expired.push(input.challengeId);
  }

  // verified_until stays: the node remains due for a re-challenge below.
  const lapsed = await client.execute({ sql: 'UPDATE nodes SET verified = 0 WHERE verified = 1 AND verified_until <= ? RETURNING id', args: [now] });
  for (const r of lapsed.rows) {
    result.unverified.push(String(r.id));
    await publishNodeTrust(env, String(r.id)).catch((err) => log('warn', 'node trust not published after verification lapsed', { node_id: String(r.id), error: String(err) }));
  }

  const due = await client.execute({
    sql: `SELECT id, region FROM nodes n
          WHERE status = 'online' AND verified_until IS NOT NULL AND verified_until <= ?
            AND NOT EXISTS (SELECT 1 FROM node_challenges c WHERE c.node_id = n.id AND c.status IN ('issued', 'committed'))
          LIMIT ?`,
    args: [now + config.rechallengeBeforeMs, DUE_CANDIDATES],
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
