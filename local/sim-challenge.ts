// A simulated node's answer to a platform challenge, as gridlease-runner gives it: a signed
// identity answer, or the capacity product on every GPU (the CPU reference solver, at the local
// platform's small size), a signed commitment, then the openings the platform asks for. Used by
// the demo's simulated nodes and the soak's (bench/soak-runners.ts).
import { COMMITMENT_DOMAIN, commitmentFields, IDENTITY_DOMAIN, identityFields, type Challenge } from '../src/contracts/inspections.ts';
import { signedMessage } from '../src/contracts/signed-message.ts';
import { signNodeMessage } from '../runner/src/identity.ts';
import { createCpuSolver } from '../runner/src/inspections/cpu-solver.ts';

export interface SimChallengeNode {
  id: string;
  token: string;
  privateKey: Parameters<typeof signNodeMessage>[0];
  gpuUuids: string[];
}

/** POSTs `body` to `path` with the node's token; answers the parsed JSON (throws on a refusal). */
export type NodePost = (path: string, body: unknown, token: string) => Promise<any>;

/** Answers `challenge` for `node`; `solver` replaces the honest CPU solver (a cheating node). */
export async function answerChallenge(node: SimChallengeNode, challenge: Challenge, post: NodePost, solver = createCpuSolver()): Promise<{ outcome: string; reasons: string[] }> {
  const base = `/v1/runner/challenges/${challenge.challenge_id}`;
  if (challenge.kind === 'identity') {
    const answer = { challenge_id: challenge.challenge_id, nonce: challenge.nonce, gpu_uuids: node.gpuUuids, driver: '550.54.15', at: new Date().toISOString() };
    const signature = signNodeMessage(node.privateKey, signedMessage(IDENTITY_DOMAIN, identityFields(node.id, answer)));
    return post(`${base}/identity`, { answer, signature }, node.token);
  }
  const commitment = await solver.commit(challenge);
  const signature = signNodeMessage(node.privateKey, signedMessage(COMMITMENT_DOMAIN, commitmentFields(node.id, challenge, commitment)));
  const request = await post(`${base}/commitment`, { commitment, signature }, node.token);
  return post(`${base}/openings`, await solver.open(request), node.token);
}
