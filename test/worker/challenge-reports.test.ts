// Public challenge reports in workerd: a node with its own Ed25519 key answers real challenges
// (products, roots and openings computed with the pure protocol), then anyone fetches the signed
// report and checks it against the platform's published keys.
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import worker from '../../src/index.ts';
import { canonicalJson } from '../../src/contracts/canonical-json.ts';
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
import { nodeChallenges } from '../../src/db/schema.ts';
import { challengeParams, checkCapacityAnswer, encodeOpenings } from '../../src/inspections/capacity-wire.ts';
import { fromHex, toHex } from '../../src/inspections/encoding.ts';
import { generateLines, matrixKey, multiply } from '../../src/inspections/matrices.ts';
import { buildMerkleTree, merklePath, merkleRoot, type MerkleTree } from '../../src/inspections/merkle.ts';
import { leafBytes, leafCountFor, leafOf, openingPositions } from '../../src/inspections/openings.ts';
import { webCryptoSha256 } from '../../src/inspections/sha256.ts';
import { call, db, expectError, joinToken, json, machine, makeAdmin, ORIGIN, signUp, type TestAccount } from './support.ts';
import { bindings, GPU_NAMES } from './trading.ts';

// This file places no orders; the region and model only describe the machine.
const REGION = 'eu-central';
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
  machine: ReturnType<typeof machine>;
  key: Key;
}

async function fetchWith(vars: Record<string, string>, path: string, body: unknown, auth?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) };
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(ORIGIN + path, { method: 'POST', headers, body: JSON.stringify(body) }), { ...bindings, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

async function join(provider: TestAccount): Promise<TestNode> {
  const key = await keyPair();
  const m = machine([{ name: GPU_NAMES[MODEL]!, memory_mib: 24_576 }]);
  const body = { join_token: await joinToken(provider), region: REGION, machine: m, public_key: key.publicKey };
  const res = await fetchWith({ CHALLENGE_ON_JOIN: 'false' }, '/v1/runner/register', body);
  expect(res.status).toBe(201);
  const registered = await json(res);
  return { nodeId: registered.node_id, token: registered.node_token, machine: m, key };
}

async function setup() {
  const [operator, provider] = await Promise.all([signUp(['provider']), signUp(['provider'])]);
  await makeAdmin(operator);
  return { operator, node: await join(provider) };
}

async function issue(operator: TestAccount, nodeId: string, kind: 'identity' | 'capacity') {
  const res = await call(`/v1/admin/nodes/${nodeId}/challenges`, { auth: operator.apiKey, body: { kind } });
  expect(res.status).toBe(201);
  return (await json(res)).challenge as { id: string; challenge: any };
}

const BIG_BODY = { BODY_LIMIT_BYTES: String(8 * 1024 * 1024) };
const answer = (node: TestNode, path: string, body: unknown) => fetchWith(BIG_BODY, `/v1/runner/challenges/${path}`, body, node.token);

async function answerIdentity(node: TestNode, ch: IdentityChallenge, o: Partial<IdentityAnswer> = {}) {
  const a: IdentityAnswer = { challenge_id: ch.challenge_id, nonce: ch.nonce, gpu_uuids: node.machine.gpus.map((g) => g.uuid), driver: '550.54.15', at: new Date().toISOString(), ...o };
  const res = await answer(node, `${ch.challenge_id}/identity`, { answer: a, signature: await node.key.sign(signedMessage(IDENTITY_DOMAIN, identityFields(node.nodeId, a))) });
  expect(res.status).toBe(200);
  return json(res);
}

/** Commits (an honest or corrupted C) and answers the opening request with real openings. */
async function answerCapacity(node: TestNode, ch: CapacityChallenge, corrupt?: (c: Int32Array) => void) {
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
  const signature = await node.key.sign(signedMessage(COMMITMENT_DOMAIN, commitmentFields(node.nodeId, ch, commitment)));
  const committed = await answer(node, `${ch.challenge_id}/commitment`, { commitment, signature });
  expect(committed.status).toBe(200);
  const request = (await json(committed)) as OpeningRequest;
  const gpus = [];
  for (let gpu = 0; gpu < ch.gpu_count; gpu++) {
    const positions = await openingPositions(seed, fromHex(request.open_seed)!, gpu, n, request.count, webCryptoSha256);
    gpus.push(positions.map((p) => ({ leafIndex: leafOf(n, leafSize, p).leafIndex, leaf: leafBytes(products[gpu]!, n, leafSize, leafOf(n, leafSize, p).leafIndex), path: merklePath(trees[gpu]!, leafOf(n, leafSize, p).leafIndex) })));
  }
  const res = await answer(node, `${ch.challenge_id}/openings`, encodeOpenings(ch.challenge_id, gpus));
  expect(res.status).toBe(200);
  return json(res);
}

/** Fetches a report and checks its JWS with the published key set; returns the report. */
async function verifiedReport(id: string) {
  const res = await call(`/v1/challenges/${id}/report`);
  expect(res.status).toBe(200);
  expect(res.headers.get('access-control-allow-origin')).toBe('*');
  const { report, jws } = await json(res);
  const jwks = await json(await call('/.well-known/jwks.json'));
  const { payload, protectedHeader } = await compactVerify(jws, createLocalJWKSet(jwks), { algorithms: ['ES256'] });
  expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'gridlease-challenge-report' });
  expect(jwks.keys.map((k: { kid: string }) => k.kid)).toContain(decodeProtectedHeader(jws).kid);
  expect(new TextDecoder().decode(payload)).toBe(canonicalJson(report));
  return report;
}

describe('challenge reports', () => {
  it('reports a passed identity challenge with the signed answer, verifiable with the published keys', async () => {
    const { operator, node } = await setup();
    const issued = await issue(operator, node.nodeId, 'identity');
    expect((await answerIdentity(node, issued.challenge)).outcome).toBe('passed');
    const report = await verifiedReport(issued.id);
    expect(report).toMatchObject({ version: 1, challenge_id: issued.id, node_id: node.nodeId, node_public_key: node.key.publicKey, kind: 'identity', challenge: issued.challenge, status: 'passed', reasons: [] });
    expect(report.identity.answer.nonce).toBe(issued.challenge.nonce);
    const pub = await crypto.subtle.importKey('raw', Uint8Array.from(atob(node.key.publicKey.replaceAll('-', '+').replaceAll('_', '/') + '='), (ch) => ch.charCodeAt(0)), { name: 'Ed25519' }, false, ['verify']);
    const sig = Uint8Array.from(atob(report.identity.signature.replaceAll('-', '+').replaceAll('_', '/') + '=='), (ch) => ch.charCodeAt(0));
    expect(await crypto.subtle.verify({ name: 'Ed25519' }, pub, sig, signedMessage(IDENTITY_DOMAIN, identityFields(node.nodeId, report.identity.answer)))).toBe(true);
  });

  it('reports a passed capacity challenge whose stored openings re-check as ok', async () => {
    const { operator, node } = await setup();
    const issued = await issue(operator, node.nodeId, 'capacity');
    expect((await answerCapacity(node, issued.challenge)).outcome).toBe('passed');
    const report = await verifiedReport(issued.id);
    expect(report).toMatchObject({ kind: 'capacity', status: 'passed', reasons: [], node_public_key: node.key.publicKey });
    const { commitment, opening_request, openings } = report.capacity;
    expect(commitment.roots).toHaveLength(1);
    expect((await checkCapacityAnswer(report.challenge, opening_request, commitment, openings)).ok).toBe(true);
  });

  it('reports a failed capacity challenge as failed, with its reasons, and the openings show why', async () => {
    const { operator, node } = await setup();
    const issued = await issue(operator, node.nodeId, 'capacity');
    expect((await answerCapacity(node, issued.challenge, (c) => c.fill(7))).outcome).toBe('failed');
    const report = await verifiedReport(issued.id);
    expect(report.status).toBe('failed');
    expect(report.reasons.length).toBeGreaterThan(0);
    expect(report.reasons[0]).toMatch(/^GPU 0 opening \d+: C\[/);
    const { commitment, opening_request, openings } = report.capacity;
    expect((await checkCapacityAnswer(report.challenge, opening_request, commitment, openings)).ok).toBe(false);
  });

  it('has no report for an unknown or undecided challenge, or a bad id', async () => {
    const { operator, node } = await setup();
    const issued = await issue(operator, node.nodeId, 'identity');
    await expectError(await call(`/v1/challenges/${issued.id}/report`), 404, 'not_found');
    await expectError(await call('/v1/challenges/chl_nobody/report'), 404, 'not_found');
    await expectError(await call('/v1/challenges/bad%20id/report'), 400, 'validation_failed');
    await expectError(await call('/v1/nodes/node_nobody/reports'), 404, 'not_found');
  });

  it("lists a node's decided challenges newest first, page by page, without the undecided one", async () => {
    const { operator, node } = await setup();
    const decided: string[] = [];
    let failedId: string | undefined;
    for (let i = 0; i < 3; i++) {
      const issued = await issue(operator, node.nodeId, 'identity');
      await answerIdentity(node, issued.challenge, i === 1 ? { nonce: 'ab'.repeat(32) } : {});
      decided.unshift(issued.id);
      if (i === 1) failedId = issued.id;
    }
    await issue(operator, node.nodeId, 'identity'); // open: not listed
    // Newest decision first; ties within a millisecond fall back to the id, as the route orders them.
    const rows = await db().select().from(nodeChallenges).where(eq(nodeChallenges.nodeId, node.nodeId));
    const order = rows.filter((r) => r.decidedAt !== null).sort((a, b) => b.decidedAt! - a.decidedAt! || (a.id < b.id ? 1 : -1)).map((r) => r.id);
    expect([...order].sort()).toEqual([...decided].sort());
    decided.splice(0, 3, ...order);
    const first = await call(`/v1/nodes/${node.nodeId}/reports?limit=2`);
    expect(first.status).toBe(200);
    expect(first.headers.get('access-control-allow-origin')).toBe('*');
    const page1 = await json(first);
    expect(page1.data.map((r: { id: string }) => r.id)).toEqual(decided.slice(0, 2));
    expect(page1.data.every((r: { kind: string }) => r.kind === 'identity')).toBe(true);
    const page2 = await json(await call(`/v1/nodes/${node.nodeId}/reports?limit=2&cursor=${page1.next_cursor}`));
    expect(page2).toEqual({ data: [expect.objectContaining({ id: decided[2] })], next_cursor: null });
    await expectError(await call(`/v1/nodes/${node.nodeId}/reports?cursor=chl_nobody`), 400, 'validation_failed');
    const failed = await verifiedReport(failedId!);
    expect(failed).toMatchObject({ status: 'failed', reasons: ['the nonce is not the challenge’s'] });
  });
});
