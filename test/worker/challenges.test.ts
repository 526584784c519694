// Platform challenges end to end in workerd: a node registered through the real route with its own
// Ed25519 key answers identity and capacity challenges; the capacity answers are computed here
// with the pure protocol (real products, roots and openings), never a faked verifier.
import { env } from 'cloudflare:workers';
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import worker from '../../src/index.ts';
import {
  COMMITMENT_DOMAIN,
  commitmentFields,
  IDENTITY_DOMAIN,
  identityFields,
  type CapacityChallenge,
  type IdentityAnswer,
  type IdentityChallenge,
  type OpeningRequest,
} from '../../src/contracts/inspections.ts';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { nodeChallenges, nodes, orders } from '../../src/db/schema.ts';
import { regionBook } from '../../src/durable/region-book.ts';
import { challengeParams, encodeOpenings } from '../../src/inspections/capacity-wire.ts';
import { FAIL_RELIABILITY_PPM, PASS_RELIABILITY_PPM } from '../../src/inspections/challenge-terms.ts';
import { runChallengeCron } from '../../src/inspections/cron.ts';
import { fromHex, toHex } from '../../src/inspections/encoding.ts';
import { generateLines, matrixKey, multiply } from '../../src/inspections/matrices.ts';
import { buildMerkleTree, merklePath, merkleRoot, type MerkleTree } from '../../src/inspections/merkle.ts';
import { leafBytes, leafCountFor, leafOf, openingPositions } from '../../src/inspections/openings.ts';
import { webCryptoSha256 } from '../../src/inspections/sha256.ts';
import { call, db, expectError, fund, joinToken, json, machine, makeAdmin, ORIGIN, signUp, type TestAccount } from './support.ts';
import { beat, bindings, buy, GPU_NAMES, placed, place, sell } from './trading.ts';

// A book of this file's own: test files share Durable Object instances.
const REGION = 'us-west';
const MODEL = 'rtx-3090-24gb';

const b64u = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');

async function keyPair() {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const publicKey = b64u(new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer));
  const sign = async (message: Uint8Array) => b64u(new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, message)));
  return { publicKey, sign };
}
type Key = Awaited<ReturnType<typeof keyPair>>;

interface TestNode {
  nodeId: string;
  token: string;
  region: string;
  machine: ReturnType<typeof machine>;
  key: Key;
}

/** The Worker's real fetch handler with some variables changed. */
async function fetchWith(vars: Record<string, string>, path: string, body: unknown, auth?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) };
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(ORIGIN + path, { method: 'POST', headers, body: JSON.stringify(body) }), { ...bindings, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** Registers through the real route; `challengeOnJoin` runs the Worker with CHALLENGE_ON_JOIN on. */
async function join(provider: TestAccount, gpus = 1, challengeOnJoin = false): Promise<TestNode> {
  const key = await keyPair();
  const m = machine(Array.from({ length: gpus }, () => ({ name: GPU_NAMES[MODEL]!, memory_mib: 24_576 })));
  const body = { join_token: await joinToken(provider), region: REGION, machine: m, public_key: key.publicKey };
  const res = await fetchWith({ CHALLENGE_ON_JOIN: challengeOnJoin ? 'true' : 'false' }, '/v1/runner/register', body);
  expect(res.status).toBe(201);
  const registered = await json(res);
  return { nodeId: registered.node_id, token: registered.node_token, region: REGION, machine: m, key };
}

async function admin() {
  const account = await signUp(['provider']);
  await makeAdmin(account);
  return account;
}

async function issue(operator: TestAccount, nodeId: string, kind: 'identity' | 'capacity') {
  const res = await call(`/v1/admin/nodes/${nodeId}/challenges`, { auth: operator.apiKey, body: { kind } });
  expect(res.status).toBe(201);
  return (await json(res)).challenge as { id: string; status: string; challenge: any };
}

const challengeRow = async (id: string) => (await db().select().from(nodeChallenges).where(eq(nodeChallenges.id, id)))[0]!;
const nodeRow = async (id: string) => (await db().select().from(nodes).where(eq(nodes.id, id)))[0]!;
/**
 * 64 openings with their leaves and paths outgrow the API's default 64 KiB body limit (about
 * 45 KiB per GPU even at n = 64), so answers go to a Worker with the limit the openings route needs.
 */
const OPENINGS_BODY_LIMIT = { BODY_LIMIT_BYTES: String(8 * 1024 * 1024) };
const answer = (node: TestNode, path: string, body: unknown, token = node.token) => fetchWith(OPENINGS_BODY_LIMIT, `/v1/runner/challenges/${path}`, body, token);

async function identityAnswer(node: TestNode, ch: IdentityChallenge, o: Partial<IdentityAnswer> = {}, key = node.key, signedAs = node.nodeId) {
  const a: IdentityAnswer = { challenge_id: ch.challenge_id, nonce: ch.nonce, gpu_uuids: node.machine.gpus.map((g) => g.uuid), driver: '550.54.15', at: new Date().toISOString(), ...o };
  return { answer: a, signature: await key.sign(signedMessage(IDENTITY_DOMAIN, identityFields(signedAs, a))) };
}

/** The honest computation, with an optional corruption of C before it is committed. */
async function solve(ch: CapacityChallenge, corrupt?: (c: Int32Array) => void) {
  const { seed, n, leafSize } = challengeParams(ch);
  const products: Int32Array[] = [];
  const trees: MerkleTree[] = [];
  for (let gpu = 0; gpu < ch.gpu_count; gpu++) {
    const c = multiply(generateLines(await matrixKey(seed, gpu, 'A', webCryptoSha256), n), generateLines(await matrixKey(seed, gpu, 'B', webCryptoSha256), n), n);
    corrupt?.(c);
    products.push(c);
    trees.push(await buildMerkleTree(leafCountFor(n, leafSize), (i) => leafBytes(c, n, leafSize, i), webCryptoSha256));
  }
  const commitment = { challenge_id: ch.challenge_id, roots: trees.map((t) => toHex(merkleRoot(t))) };
  const open = async (request: OpeningRequest) => {
    const gpus = [];
    for (let gpu = 0; gpu < ch.gpu_count; gpu++) {
      const positions = await openingPositions(seed, fromHex(request.open_seed)!, gpu, n, request.count, webCryptoSha256);
      gpus.push(
        positions.map((p) => {
          const { leafIndex } = leafOf(n, leafSize, p);
          return { leafIndex, leaf: leafBytes(products[gpu]!, n, leafSize, leafIndex), path: merklePath(trees[gpu]!, leafIndex) };
        }),
      );
    }
    return encodeOpenings(ch.challenge_id, gpus);
  };
  return { commitment, open };
}

async function signCommitment(node: TestNode, ch: CapacityChallenge, commitment: { challenge_id: string; roots: string[] }, key = node.key) {
  return { commitment, signature: await key.sign(signedMessage(COMMITMENT_DOMAIN, commitmentFields(node.nodeId, ch, commitment))) };
}

async function passIdentity(node: TestNode, operator: TestAccount) {
  const issued = await issue(operator, node.nodeId, 'identity');
  const res = await answer(node, `${issued.id}/identity`, await identityAnswer(node, issued.challenge));
  expect(res.status).toBe(200);
  expect(await json(res)).toEqual({ challenge_id: issued.id, outcome: 'passed', reasons: [] });
  return issued;
}

/** Commits honestly (or with a corrupted C) and answers the opening request. */
async function answerCapacity(node: TestNode, ch: CapacityChallenge, corrupt?: (c: Int32Array) => void) {
  const solved = await solve(ch, corrupt);
  const committed = await answer(node, `${ch.challenge_id}/commitment`, await signCommitment(node, ch, solved.commitment));
  expect(committed.status).toBe(200);
  const request = (await json(committed)) as OpeningRequest;
  return { request, solved, res: await answer(node, `${ch.challenge_id}/openings`, await solved.open(request)) };
}

describe('platform challenges: the honest node', () => {
  it('passes identity and capacity, becomes verified until the TTL, and verified_only bids now match its ask', async () => {
    const [operator, provider, renter] = await Promise.all([admin(), signUp(['provider']), signUp()]);
    await fund(renter, 'USD', '50.00');
    const node = await join(provider);
    await beat(node, 1);
    await placed(provider, sell(REGION, MODEL, node.nodeId, { gpus: 1 }));
    const before = await nodeRow(node.nodeId);
    expect(before.verified).toBe(false);

    await passIdentity(node, operator);
    expect((await nodeRow(node.nodeId)).verified).toBe(false); // capacity not yet passed
    const issued = await issue(operator, node.nodeId, 'capacity');
    expect(issued.challenge).toMatchObject({ kind: 'capacity', n: 64, gpu_count: 1, leaf_size: 256 });
    // The command is in the node's mailbox, under the challenge's id.
    const reply = await beat(node, 2);
    expect(reply.commands).toEqual(expect.arrayContaining([{ id: `challenge_${issued.id}`, type: 'challenge', challenge: issued.challenge }]));

    const { res } = await answerCapacity(node, issued.challenge);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ challenge_id: issued.id, outcome: 'passed', reasons: [] });

    const after = await nodeRow(node.nodeId);
    expect(after.verified).toBe(true);
    expect(after.verifiedUntil! - after.verifiedAt!).toBe(7 * 86_400_000);
    expect(after.reliabilityPpm).toBe(before.reliabilityPpm + PASS_RELIABILITY_PPM);
    const shown = await json(await call(`/v1/nodes/${node.nodeId}`, { auth: provider.apiKey }));
    expect(shown.node).toMatchObject({ verified: true, verified_at: new Date(after.verifiedAt!).toISOString(), verified_until: new Date(after.verifiedUntil!).toISOString() });
    expect(shown.challenges.map((ch: { kind: string; status: string }) => [ch.kind, ch.status])).toEqual([['capacity', 'passed'], ['identity', 'passed']]);

    expect((await regionBook(bindings, REGION, MODEL).openAsks()).filter((a) => a.nodeId === node.nodeId).map((a) => a.verified)).toEqual([true]);
    const picky = await placed(renter, buy(REGION, MODEL, { gpus: 1, verified_only: true }));
    expect(picky.leases).toHaveLength(1);
  });

  it('challenges a node at registration with both kinds, row first, then the mailbox', async () => {
    const provider = await signUp(['provider']);
    const node = await join(provider, 2, true);
    const rows = await db().select().from(nodeChallenges).where(eq(nodeChallenges.nodeId, node.nodeId));
    expect(rows.map((r) => [r.kind, r.status]).sort()).toEqual([['capacity', 'issued'], ['identity', 'issued']]);
    expect(rows.find((r) => r.kind === 'capacity')!.challenge).toMatchObject({ gpu_count: 2, n: 64 });
    const reply = await beat(node, 1);
    expect(reply.commands.map((c: { id: string }) => c.id).sort()).toEqual(rows.map((r) => `challenge_${r.id}`).sort());
  });
});
