// Helpers for platform challenge tests: a node registered through the real route with its own
// Ed25519 key, and its answers computed with the pure protocol (real products, roots and
// openings), never a faked verifier.
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { expect } from 'vitest';
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
import { challengeParams, encodeOpenings } from '../../src/inspections/capacity-wire.ts';
import { fromHex, toHex } from '../../src/inspections/encoding.ts';
import { generateLines, matrixKey, multiply } from '../../src/inspections/matrices.ts';
import { buildMerkleTree, merklePath, merkleRoot, type MerkleTree } from '../../src/inspections/merkle.ts';
import { leafBytes, leafCountFor, leafOf, openingPositions } from '../../src/inspections/openings.ts';
import { webCryptoSha256 } from '../../src/inspections/sha256.ts';
import { call, joinToken, json, machine, ORIGIN, type TestAccount } from './support.ts';
import { bindings, GPU_NAMES } from './trading.ts';

const b64u = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');

export async function keyPair() {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const publicKey = b64u(new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer));
  const sign = async (message: Uint8Array) => b64u(new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, message)));
  return { publicKey, sign };
}
export type Key = Awaited<ReturnType<typeof keyPair>>;

export interface TestNode {
  nodeId: string;
  token: string;
  region: string;
  machine: ReturnType<typeof machine>;
  key: Key;
}

/** The Worker's real fetch handler with some variables changed. */
export async function fetchWith(vars: Record<string, string>, path: string, body: unknown, auth?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) };
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(ORIGIN + path, { method: 'POST', headers, body: JSON.stringify(body) }), { ...bindings, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** Registers through the real route; `challengeOnJoin` runs the Worker with CHALLENGE_ON_JOIN on. */
export async function join(provider: TestAccount, o: { region: string; model: string; gpus?: number; challengeOnJoin?: boolean }): Promise<TestNode> {
  const key = await keyPair();
  const m = machine(Array.from({ length: o.gpus ?? 1 }, () => ({ name: GPU_NAMES[o.model]!, memory_mib: 24_576 })));
  const body = { join_token: await joinToken(provider), region: o.region, machine: m, public_key: key.publicKey };
  const res = await fetchWith({ CHALLENGE_ON_JOIN: o.challengeOnJoin ? 'true' : 'false' }, '/v1/runner/register', body);
  expect(res.status).toBe(201);
  const registered = await json(res);
  return { nodeId: registered.node_id, token: registered.node_token, region: o.region, machine: m, key };
}

export async function issue(operator: TestAccount, nodeId: string, kind: 'identity' | 'capacity') {
  const res = await call(`/v1/admin/nodes/${nodeId}/challenges`, { auth: operator.apiKey, body: { kind } });
  expect(res.status).toBe(201);
  return (await json(res)).challenge as { id: string; status: string; challenge: any };
}

/** An answer to `/v1/runner/challenges/<path>` with the node's token (or another). */
export const answer = (node: TestNode, path: string, body: unknown, token = node.token) => call(`/v1/runner/challenges/${path}`, { body, auth: token });

export async function identityAnswer(node: TestNode, ch: IdentityChallenge, o: Partial<IdentityAnswer> = {}, key = node.key, signedAs = node.nodeId) {
  const a: IdentityAnswer = { challenge_id: ch.challenge_id, nonce: ch.nonce, gpu_uuids: node.machine.gpus.map((g) => g.uuid), driver: '550.54.15', at: new Date().toISOString(), ...o };
  return { answer: a, signature: await key.sign(signedMessage(IDENTITY_DOMAIN, identityFields(signedAs, a))) };
}

/** The honest computation, with an optional corruption of C before it is committed. */
export async function solve(ch: CapacityChallenge, corrupt?: (c: Int32Array) => void) {
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

export async function signCommitment(node: TestNode, ch: CapacityChallenge, commitment: { challenge_id: string; roots: string[] }, key = node.key) {
  return { commitment, signature: await key.sign(signedMessage(COMMITMENT_DOMAIN, commitmentFields(node.nodeId, ch, commitment))) };
}

/** Commits honestly (or with a corrupted C) and answers the opening request. */
export async function answerCapacity(node: TestNode, ch: CapacityChallenge, corrupt?: (c: Int32Array) => void) {
  const solved = await solve(ch, corrupt);
  const committed = await answer(node, `${ch.challenge_id}/commitment`, await signCommitment(node, ch, solved.commitment));
  expect(committed.status).toBe(200);
  const request = (await json(committed)) as OpeningRequest;
  return { request, solved, res: await answer(node, `${ch.challenge_id}/openings`, await solved.open(request)) };
}
