// Public challenge reports in workerd: a node with its own Ed25519 key answers real challenges
// (products, roots and openings computed with the pure protocol), then anyone fetches the signed
// report and checks it against the platform's published keys.
import { eq } from 'drizzle-orm';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/contracts/canonical-json.ts';
import { IDENTITY_DOMAIN, identityFields, type CapacityChallenge, type IdentityAnswer, type IdentityChallenge } from '../../src/contracts/inspections.ts';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { checkCapacityAnswer } from '../../src/inspections/capacity-wire.ts';
import { nodeChallenges } from '../../src/db/schema.ts';
import { call, db, expectError, json, makeAdmin, signUp, type TestAccount } from './support.ts';
import { answer, answerCapacity as answerCapacityIn, identityAnswer, issue, join as joinIn, type TestNode } from './challenge-support.ts';

// This file places no orders; the region and model only describe the machine.
const REGION = 'eu-central';
const MODEL = 'rtx-3090-24gb';
const join = (provider: TestAccount) => joinIn(provider, { region: REGION, model: MODEL });

async function setup() {
  const [operator, provider] = await Promise.all([signUp(['provider']), signUp(['provider'])]);
  await makeAdmin(operator);
  return { operator, node: await join(provider) };
}

async function answerIdentity(node: TestNode, ch: IdentityChallenge, o: Partial<IdentityAnswer> = {}) {
  const res = await answer(node, `${ch.challenge_id}/identity`, await identityAnswer(node, ch, o));
  expect(res.status).toBe(200);
  return json(res);
}

/** Commits (an honest or corrupted C) and answers the opening request with real openings. */
async function answerCapacity(node: TestNode, ch: CapacityChallenge, corrupt?: (c: Int32Array) => void) {
  const { res } = await answerCapacityIn(node, ch, corrupt);
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
    // A node's list answers for any id: it must not tell which node ids exist.
    const nobody = await call('/v1/nodes/node_nobody/reports');
    expect(nobody.status).toBe(200);
    expect(await json(nobody)).toEqual({ data: [], next_cursor: null });
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
