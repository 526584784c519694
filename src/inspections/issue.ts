// Issuing platform challenges: the row is written first, then the command goes into the node's
// mailbox (id `challenge_<id>`), so an answer always finds its challenge. Terms come from the pure
// src/inspections/challenge-terms.ts; randomness from crypto.getRandomValues.
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Challenge } from '../contracts/inspections.ts';
import type { Database } from '../db/client.ts';
import { nodeChallenges, nodeGpus } from '../db/schema.ts';
import type { Bindings } from '../env.ts';
import { newId } from '../ids.ts';
import { collectorFor } from '../nodes/registry.ts';
import { capacityChallenge, capacityTerms, challengeConfig, identityChallenge } from './challenge-terms.ts';
import { toHex } from './encoding.ts';

export type ChallengeKind = 'identity' | 'capacity';
export type ChallengeRow = typeof nodeChallenges.$inferSelect;

export const randomHex32 = () => toHex(crypto.getRandomValues(new Uint8Array(32)));

export class CannotChallenge extends Error {}

/** Issues one challenge of `kind` to the node and returns its row; throws CannotChallenge when its GPUs cannot be sized. */
export async function issueChallenge(env: Bindings, db: Database, node: { id: string; region: string }, kind: ChallengeKind, now = Date.now()): Promise<ChallengeRow> {
  const config = challengeConfig(env);
  const id = newId('chl');
  let challenge: Challenge;
  if (kind === 'identity') {
    challenge = identityChallenge(id, randomHex32(), now, config.allowanceMs);
  } else {
    const gpus = await db.select({ model: nodeGpus.model, memoryMib: nodeGpus.memoryMib }).from(nodeGpus).where(eq(nodeGpus.nodeId, node.id)).orderBy(asc(nodeGpus.index));
    const terms = capacityTerms(gpus, config);
    if (!terms) throw new CannotChallenge(`node ${node.id} has no GPU a capacity challenge can be sized for`);
    challenge = capacityChallenge(id, randomHex32(), terms, now);
  }
  // One open challenge per kind: an older one (say, from before a re-registration) is closed
  // without a decision, so it neither penalises the node nor counts as its latest result.
  const [, [row]] = await db.batch([
    db
      .update(nodeChallenges)
      .set({ status: 'expired', reasons: ['superseded by a newer challenge'] })
      .where(and(eq(nodeChallenges.nodeId, node.id), eq(nodeChallenges.kind, kind), inArray(nodeChallenges.status, ['issued', 'committed']))),
    db.insert(nodeChallenges).values({ id, nodeId: node.id, kind, challenge, status: 'issued', issuedAt: now, deadline: Date.parse(challenge.deadline) }).returning(),
  ]);
  await collectorFor(env, node.id, node.region).stub.enqueueCommand(node.id, { id: `challenge_${id}`, type: 'challenge', challenge });
  return row!;
}

/** Both kinds, identity first; a kind that cannot be issued is skipped, and the rest still go out. */
export async function issueBoth(env: Bindings, db: Database, node: { id: string; region: string }, now = Date.now()): Promise<ChallengeRow[]> {
  const rows: ChallengeRow[] = [];
  for (const kind of ['identity', 'capacity'] as const) {
    try {
      rows.push(await issueChallenge(env, db, node, kind, now));
    } catch (err) {
      if (!(err instanceof CannotChallenge)) throw err;
    }
  }
  return rows;
}
