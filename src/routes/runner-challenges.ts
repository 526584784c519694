// A node's answers to platform challenges (src/contracts/inspections.ts, "Delivery"). Refusals
// change nothing, with two exceptions that are the node's own doing: an answer after the
// deadline expires the challenge, and a signed answer that is wrong (nonce, GPUs, or an opened
// value under a valid Merkle path) fails it. A bad signature is refused (401) and fails nothing:
// whoever holds a stolen node token, but not the node's key, cannot fail an honest node.
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { and, eq } from 'drizzle-orm';
import { errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import {
  CapacityChallengeSchema,
  ChallengeOutcomeSchema,
  COMMITMENT_DOMAIN,
  commitmentFields,
  IDENTITY_DOMAIN,
  identityFields,
  IdentityChallengeSchema,
  OpeningRequestSchema,
  OpeningsAnswerSchema,
  SignedCommitmentSchema,
  SignedIdentityAnswerSchema,
  type ChallengeOutcome,
  type OpeningsAnswer,
} from '../contracts/inspections.ts';
import { signedMessage } from '../contracts/signed-message.ts';
import { nodeChallenges, nodeGpus, nodes } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { checkCapacityAnswer } from '../inspections/capacity-wire.ts';
import { nodeSha256 } from '../inspections/node-sha256.ts';
import { challengeConfig, openingRequest } from '../inspections/challenge-terms.ts';
import { decideChallenge, type Decision } from '../inspections/effects.ts';
import { randomHex32, type ChallengeRow } from '../inspections/issue.ts';
import type { OpeningFailure } from '../inspections/openings.ts';
import { verifyNodeSignature } from '../nodes/identity.ts';
import { nodeAuth, type RunnerEnv } from './runner.ts';

const NODE_BEARER = [{ nodeToken: [] }];
const MAX_REASONS = 16;
const params = z.object({ id: z.string().max(64) });

const app = router();

/** The challenge, if it is this node's and of `kind`, with the node's key; every other case is refused. */
async function load(c: Context<RunnerEnv>, kind: 'identity' | 'capacity') {
  const node = c.get('node');
  const id = c.req.param('id')!;
  const db = c.get('db');
  const [[row], [owner]] = await db.batch([
    db.select().from(nodeChallenges).where(eq(nodeChallenges.id, id)),
    db.select({ publicKey: nodes.publicKey }).from(nodes).where(eq(nodes.id, node.nodeId)),
  ]);
  if (!row || row.nodeId !== node.nodeId) throw new ApiError('not_found', `no challenge ${id} for this node`);
  if (row.kind !== kind) throw new ApiError('conflict', `challenge ${id} is a ${row.kind} challenge`);
  if (!owner?.publicKey) throw new ApiError('conflict', 'node has no key; join again');
  return { row, publicKey: owner.publicKey, nodeId: node.nodeId };
}

const answered = (row: ChallengeRow) => new ApiError('conflict', `challenge ${row.id} was already answered (${row.status})`);

/** Expires a challenge answered late (a failure) and refuses the answer. */
async function refuseLate(c: Context<RunnerEnv>, row: ChallengeRow, from: 'issued' | 'committed', now: number): Promise<never> {
  await decideChallenge(c.env, { challengeId: row.id, nodeId: row.nodeId, from, decision: 'expired', reasons: ['answered after the deadline'] }, now);
  throw new ApiError('conflict', `challenge ${row.id} is past its deadline and has expired`);
}

async function decide(
  c: Context<RunnerEnv>,
  row: ChallengeRow,
  from: 'issued' | 'committed',
  reasons: string[],
  now: number,
  publicKey: string,
  answer?: { body: unknown; signature: string },
  openings?: OpeningsAnswer,
) {
  const decision: Decision = reasons.length === 0 ? 'passed' : 'failed';
  // The openings and the key that signed go with the decision: the public report re-checks both.
  const applied = await decideChallenge(c.env, { challengeId: row.id, nodeId: row.nodeId, from, decision, reasons: reasons.slice(0, MAX_REASONS), answer, openings, nodePublicKey: publicKey }, now);
  if (!applied) throw answered(row);
  const outcome: ChallengeOutcome = { challenge_id: row.id, outcome: decision === 'passed' ? 'passed' : 'failed', reasons: reasons.slice(0, MAX_REASONS) };
  return c.json(outcome, 200);
}

const badSignature = () => new ApiError('unauthorized', "signature does not verify with this node's key over this answer");

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/identity',
    tags: ['runner'],
    summary: 'Answer an identity challenge with a signed list of the GPUs present now',
    security: NODE_BEARER,
    middleware: [nodeAuth('database')] as const,
    request: { params, body: jsonBodyOf(SignedIdentityAnswerSchema) },
    responses: { 200: jsonContent(ChallengeOutcomeSchema, 'Decided'), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const ctx = c as unknown as Context<RunnerEnv>;
    const body = c.req.valid('json');
    const now = Date.now();
    const { row, publicKey, nodeId } = await load(ctx, 'identity');
    if (row.status !== 'issued') throw answered(row);
    if (now > row.deadline) return refuseLate(ctx, row, 'issued', now);
    if (body.answer.challenge_id !== row.id) throw new ApiError('validation_failed', 'invalid body: answer.challenge_id: not this challenge');
    if (!(await verifyNodeSignature(publicKey, signedMessage(IDENTITY_DOMAIN, identityFields(nodeId, body.answer)), body.signature))) throw badSignature();

    const challenge = IdentityChallengeSchema.parse(row.challenge);
    const registered = (await c.get('db').select({ uuid: nodeGpus.uuid }).from(nodeGpus).where(eq(nodeGpus.nodeId, nodeId))).map((g) => g.uuid);
    const reasons: string[] = [];
    if (body.answer.nonce !== challenge.nonce) reasons.push('the nonce is not the challenge’s');
    const sent = new Set(body.answer.gpu_uuids);
    if (sent.size !== body.answer.gpu_uuids.length || sent.size !== registered.length || registered.some((u) => !sent.has(u))) {
      reasons.push(`the GPUs present (${body.answer.gpu_uuids.length}) are not the ${registered.length} registered`.slice(0, 300));
    }
    return decide(ctx, row, 'issued', reasons, now, publicKey, { body: body.answer, signature: body.signature });
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/commitment',
    tags: ['runner'],
    summary: "Commit a capacity challenge's Merkle roots (signed); returns the positions to open",
    security: NODE_BEARER,
    middleware: [nodeAuth('database')] as const,
    request: { params, body: jsonBodyOf(SignedCommitmentSchema) },
    responses: { 200: jsonContent(OpeningRequestSchema, 'Committed; open these'), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const ctx = c as unknown as Context<RunnerEnv>;
    const body = c.req.valid('json');
    const now = Date.now();
    const { row, publicKey, nodeId } = await load(ctx, 'capacity');
    if (row.status !== 'issued') throw answered(row);
    if (now > row.deadline) return refuseLate(ctx, row, 'issued', now);
    const challenge = CapacityChallengeSchema.parse(row.challenge);
    if (body.commitment.challenge_id !== row.id) throw new ApiError('validation_failed', 'invalid body: commitment.challenge_id: not this challenge');
    if (body.commitment.roots.length !== challenge.gpu_count) {
      throw new ApiError('validation_failed', `invalid body: commitment.roots: ${challenge.gpu_count} roots expected, one per GPU`);
    }
    if (!(await verifyNodeSignature(publicKey, signedMessage(COMMITMENT_DOMAIN, commitmentFields(nodeId, challenge, body.commitment)), body.signature))) throw badSignature();

    // The open seed is drawn only now: positions known before the roots are fixed would let a prover compute just those.
    const request = openingRequest(challenge, randomHex32(), now, challengeConfig(c.env).allowanceMs);
    const [moved] = await c
      .get('db')
      .update(nodeChallenges)
      .set({
        status: 'committed',
        commitment: body.commitment,
        commitmentSignature: body.signature,
        openSeed: request.open_seed,
        openingRequest: request,
        openDeadline: Date.parse(request.deadline),
      })
      .where(statusIs(row.id, 'issued'))
      .returning({ id: nodeChallenges.id });
    if (!moved) throw answered(row);
    return c.json(request, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/openings',
    tags: ['runner'],
    summary: "Open the committed entries the opening request named; returns the challenge's outcome",
    security: NODE_BEARER,
    middleware: [nodeAuth('database')] as const,
    request: { params, body: jsonBodyOf(OpeningsAnswerSchema) },
    responses: { 200: jsonContent(ChallengeOutcomeSchema, 'Decided'), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const ctx = c as unknown as Context<RunnerEnv>;
    const body = c.req.valid('json');
    const now = Date.now();
    const { row, publicKey } = await load(ctx, 'capacity');
    if (row.status === 'issued') throw new ApiError('conflict', `challenge ${row.id} has no commitment yet; commit first`);
    if (row.status !== 'committed') throw answered(row);
    if (now > (row.openDeadline ?? 0)) return refuseLate(ctx, row, 'committed', now);
    if (body.challenge_id !== row.id) throw new ApiError('validation_failed', 'invalid body: challenge_id: not this challenge');

    const challenge = CapacityChallengeSchema.parse(row.challenge);
    const request = OpeningRequestSchema.parse(row.openingRequest);
    const verdict = await checkCapacityAnswer(challenge, request, row.commitment, body, nodeSha256);
    if (verdict.ok) return decide(ctx, row, 'committed', [], now, publicKey, undefined, body);
    // Only a wrong value under a valid path to the signed root proves the committed product wrong;
    // anything else (a path, an index, a count) may be anyone's garbage and is refused unchanged.
    const wrong = verdict.failures.filter((f) => f.reason === 'value');
    if (wrong.length > 0) return decide(ctx, row, 'committed', wrong.map(describe), now, publicKey, undefined, body);
    throw new ApiError('validation_failed', `invalid body: gpus: the openings do not match the commitment (${verdict.failures.slice(0, 3).map(describe).join('; ')})`);
  },
);

/** A status guard for a conditional update, as drizzle SQL. */
function statusIs(id: string, status: 'issued' | 'committed') {
  return and(eq(nodeChallenges.id, id), eq(nodeChallenges.status, status));
}

function describe(f: OpeningFailure): string {
  switch (f.reason) {
    case 'value':
      return `GPU ${f.gpu} opening ${f.opening}: C[${f.row}][${f.col}] is ${f.got}, not ${f.expected}`;
    case 'path':
      return `GPU ${f.gpu} opening ${f.opening}: the Merkle path does not lead to the committed root`;
    case 'leaf_index':
    case 'leaf_length':
      return `GPU ${f.gpu} opening ${f.opening}: ${f.reason.replace('_', ' ')} ${f.got}, expected ${f.expected}`;
    case 'opening_count':
      return `GPU ${f.gpu}: ${f.got} openings, expected ${f.expected}`;
    case 'root_count':
    case 'gpu_count':
      return `${f.reason.replace('_', ' ')} ${f.got}, expected ${f.expected}`;
    case 'parameters':
      return f.message;
  }
}

export default app;
