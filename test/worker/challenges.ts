// Platform challenges end to end in workerd: a node registered through the real route with its own
// Ed25519 key answers identity and capacity challenges; the capacity answers are computed here
// with the pure protocol (real products, roots and openings), never a faked verifier.
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import type { CapacityChallenge, IdentityChallenge, OpeningRequest } from '../../src/contracts/inspections.ts';
import { nodeChallenges, nodes, orders } from '../../src/db/schema.ts';
import { regionBook } from '../../src/durable/region-book.ts';
import { FAIL_RELIABILITY_PPM, PASS_RELIABILITY_PPM } from '../../src/inspections/challenge-terms.ts';
import { runChallengeCron } from '../../src/inspections/cron.ts';
import { call, db, expectError, fund, joinToken, json, makeAdmin, signUp, type TestAccount } from './support.ts';
import { beat, bindings, buy, placed, place, sell } from './trading.ts';
import { answer, answerCapacity, fetchWith, identityAnswer, issue, join as joinIn, keyPair, signCommitment, solve, type TestNode } from './challenge-support.ts';

// A book of this file's own: test files share Durable Object instances.
const REGION = 'us-west';
const MODEL = 'rtx-3090-24gb';
const join = (provider: TestAccount, gpus = 1, challengeOnJoin = false) => joinIn(provider, { region: REGION, model: MODEL, gpus, challengeOnJoin });

async function admin() {
  const account = await signUp(['provider']);
  await makeAdmin(account);
  return account;
}

const challengeRow = async (id: string) => (await db().select().from(nodeChallenges).where(eq(nodeChallenges.id, id)))[0]!;
const nodeRow = async (id: string) => (await db().select().from(nodes).where(eq(nodes.id, id)))[0]!;
async function passIdentity(node: TestNode, operator: TestAccount) {
  const issued = await issue(operator, node.nodeId, 'identity');
  const res = await answer(node, `${issued.id}/identity`, await identityAnswer(node, issued.challenge));
  expect(res.status).toBe(200);
  expect(await json(res)).toEqual({ challenge_id: issued.id, outcome: 'passed', reasons: [] });
  return issued;
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

  it('closes the open challenges of a node that registers again, without a decision or a penalty', async () => {
    const provider = await signUp(['provider']);
    const node = await join(provider, 1, true);
    const first = await db().select().from(nodeChallenges).where(eq(nodeChallenges.nodeId, node.nodeId));
    const before = await nodeRow(node.nodeId);
    const key = await keyPair();
    const again = await fetchWith({ CHALLENGE_ON_JOIN: 'true' }, '/v1/runner/register', { join_token: await joinToken(provider), region: REGION, machine: node.machine, public_key: key.publicKey });
    const registered = await json(again);
    expect(registered.node_id).toBe(node.nodeId);
    for (const old of first) expect(await challengeRow(old.id)).toMatchObject({ status: 'expired', decidedAt: null, reasons: ['superseded by a newer challenge'] });
    const open = (await db().select().from(nodeChallenges).where(eq(nodeChallenges.nodeId, node.nodeId))).filter((r) => r.status === 'issued');
    expect(open.map((r) => r.kind).sort()).toEqual(['capacity', 'identity']);
    expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(before.reliabilityPpm);
    // A superseded challenge no longer takes answers; it is not the node's latest result either.
    const renewed = { ...node, token: registered.node_token, key };
    const old = first.find((r) => r.kind === 'identity')!;
    await expectError(await answer(renewed, `${old.id}/identity`, await identityAnswer(renewed, old.challenge as IdentityChallenge)), 409, 'conflict');
    await beat(renewed, 1);
    await placed(provider, sell(REGION, MODEL, node.nodeId, { gpus: 1 }));
  });

  it('lets only operators issue challenges, to nodes that exist', async () => {
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    const node = await join(provider);
    await expectError(await call(`/v1/admin/nodes/${node.nodeId}/challenges`, { auth: provider.apiKey, body: { kind: 'identity' } }), 403, 'forbidden');
    await expectError(await call('/v1/admin/nodes/node_nobody/challenges', { auth: operator.apiKey, body: { kind: 'identity' } }), 404, 'not_found');
    await expectError(await call(`/v1/admin/nodes/${node.nodeId}/challenges`, { auth: operator.apiKey, body: { kind: 'inventory' } }), 400, 'validation_failed');
    expect(await db().select().from(nodeChallenges).where(eq(nodeChallenges.nodeId, node.nodeId))).toEqual([]);
  });
});

describe('platform challenges: refusals change nothing', () => {
  async function setup(gpus = 1) {
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    const node = await join(provider, gpus);
    return { operator, provider, node };
  }

  /** The row and the node as they are, to compare after a refusal. */
  const snapshot = async (challengeId: string, nodeId: string) => ({ challenge: await challengeRow(challengeId), node: await nodeRow(nodeId) });

  it('refuses an identity answer signed by another key, or over other bytes, with 401, and the challenge can still pass', async () => {
    const { operator, node } = await setup();
    const issued = await issue(operator, node.nodeId, 'identity');
    const before = await snapshot(issued.id, node.nodeId);
    const forged = await identityAnswer(node, issued.challenge, {}, await keyPair());
    await expectError(await answer(node, `${issued.id}/identity`, forged), 401, 'unauthorized');
    // Signed as another node id: the bytes signed are not this answer's.
    const otherBytes = await identityAnswer(node, issued.challenge, {}, node.key, 'node_someone_else');
    await expectError(await answer(node, `${issued.id}/identity`, otherBytes), 401, 'unauthorized');
    // A valid signature moved onto a changed answer.
    const signed = await identityAnswer(node, issued.challenge);
    await expectError(await answer(node, `${issued.id}/identity`, { ...signed, answer: { ...signed.answer, driver: '999.1' } }), 401, 'unauthorized');
    expect(await snapshot(issued.id, node.nodeId)).toEqual(before);

    expect((await json(await answer(node, `${issued.id}/identity`, signed))).outcome).toBe('passed');
    // The same answer again is refused: already answered.
    await expectError(await answer(node, `${issued.id}/identity`, signed), 409, 'conflict');
  });

  it('fails an identity answer with a wrong nonce or other GPU UUIDs, lowering reliability once', async () => {
    const { operator, node } = await setup(2);
    for (const change of [
      (ch: IdentityChallenge) => ({ nonce: ch.nonce.replace(/^./, ch.nonce[0] === 'a' ? 'b' : 'a') }),
      () => ({ gpu_uuids: [node.machine.gpus[0]!.uuid, `GPU-${crypto.randomUUID()}`] }),
      () => ({ gpu_uuids: [node.machine.gpus[0]!.uuid] }),
      () => ({ gpu_uuids: [node.machine.gpus[0]!.uuid, node.machine.gpus[0]!.uuid] }),
    ]) {
      const issued = await issue(operator, node.nodeId, 'identity');
      const before = await nodeRow(node.nodeId);
      const res = await answer(node, `${issued.id}/identity`, await identityAnswer(node, issued.challenge, change(issued.challenge)));
      expect(res.status).toBe(200);
      const outcome = await json(res);
      expect(outcome.outcome).toBe('failed');
      expect(outcome.reasons.length).toBeGreaterThan(0);
      expect(await challengeRow(issued.id)).toMatchObject({ status: 'failed', reasons: outcome.reasons });
      expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(Math.max(0, before.reliabilityPpm - FAIL_RELIABILITY_PPM));
      // A retry is refused and penalises nothing more.
      await expectError(await answer(node, `${issued.id}/identity`, await identityAnswer(node, issued.challenge)), 409, 'conflict');
      expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(Math.max(0, before.reliabilityPpm - FAIL_RELIABILITY_PPM));
    }
  });

  it("answers 404 for another node's challenge or an unknown one, and 409 for the wrong kind, changing nothing", async () => {
    const { operator, provider, node } = await setup();
    const other = await join(provider);
    const theirs = await issue(operator, other.nodeId, 'identity');
    const before = await snapshot(theirs.id, other.nodeId);
    await expectError(await answer(node, `${theirs.id}/identity`, await identityAnswer(node, theirs.challenge)), 404, 'not_found');
    await expectError(await answer(node, 'chl_unknown/identity', await identityAnswer(node, { ...theirs.challenge, challenge_id: 'chl_unknown' })), 404, 'not_found');
    const capacity = await issue(operator, other.nodeId, 'capacity');
    const solved = await solve(capacity.challenge);
    await expectError(await answer(node, `${capacity.id}/commitment`, await signCommitment(node, capacity.challenge, solved.commitment)), 404, 'not_found');
    await expectError(await answer(other, `${capacity.id}/identity`, await identityAnswer(other, { ...capacity.challenge, nonce: '0'.repeat(64) })), 409, 'conflict');
    await expectError(await answer(other, `${theirs.id}/commitment`, await signCommitment(other, capacity.challenge, { ...solved.commitment, challenge_id: theirs.id })), 409, 'conflict');
    expect(await snapshot(theirs.id, other.nodeId)).toEqual(before);
    expect((await challengeRow(capacity.id)).status).toBe('issued');
    // No node token, or a malformed body: refused before anything is read.
    await expectError(await call(`/v1/runner/challenges/${theirs.id}/identity`, { body: await identityAnswer(other, theirs.challenge) }), 401, 'unauthorized');
    await expectError(await answer(other, `${theirs.id}/identity`, { answer: { challenge_id: theirs.id }, signature: 'x' }), 400, 'validation_failed');
  });

  it('refuses a forged or second commitment; a replayed one changes nothing and the open seed stays', async () => {
    const { operator, node } = await setup(2);
    const issued = await issue(operator, node.nodeId, 'capacity');
    const ch = issued.challenge as CapacityChallenge;
    const solved = await solve(ch);
    const before = await snapshot(issued.id, node.nodeId);
    await expectError(await answer(node, `${issued.id}/commitment`, await signCommitment(node, ch, solved.commitment, await keyPair())), 401, 'unauthorized');
    const signed = await signCommitment(node, ch, solved.commitment);
    // The roots swapped after signing: other bytes.
    await expectError(await answer(node, `${issued.id}/commitment`, { ...signed, commitment: { ...signed.commitment, roots: [...signed.commitment.roots].reverse() } }), 401, 'unauthorized');
    await expectError(await answer(node, `${issued.id}/commitment`, await signCommitment(node, ch, { ...solved.commitment, roots: solved.commitment.roots.slice(0, 1) })), 400, 'validation_failed');
    expect(await snapshot(issued.id, node.nodeId)).toEqual(before);

    const first = await answer(node, `${issued.id}/commitment`, signed);
    expect(first.status).toBe(200);
    const request = (await json(first)) as OpeningRequest;
    expect(request).toMatchObject({ challenge_id: issued.id, count: 64 });
    const committed = await challengeRow(issued.id);
    expect(committed).toMatchObject({ status: 'committed', openSeed: request.open_seed, commitment: solved.commitment });

    await expectError(await answer(node, `${issued.id}/commitment`, signed), 409, 'conflict');
    const other = await solve(ch, (c) => (c[0] = c[0]! + 1));
    await expectError(await answer(node, `${issued.id}/commitment`, await signCommitment(node, ch, other.commitment)), 409, 'conflict');
    expect(await challengeRow(issued.id)).toEqual(committed);
    // The honest openings still pass.
    expect((await json(await answer(node, `${issued.id}/openings`, await solved.open(request)))).outcome).toBe('passed');
  });

  it('refuses tampered openings with 400 and keeps the challenge open until a correct answer', async () => {
    const { operator, node } = await setup();
    const issued = await issue(operator, node.nodeId, 'capacity');
    const solved = await solve(issued.challenge);
    await expectError(await answer(node, `${issued.id}/openings`, await solved.open({ challenge_id: issued.id, open_seed: '0'.repeat(64), count: 64, deadline: issued.challenge.deadline })), 409, 'conflict');
    const request = (await json(await answer(node, `${issued.id}/commitment`, await signCommitment(node, issued.challenge, solved.commitment)))) as OpeningRequest;
    const honest = await solved.open(request);
    const leaf = Uint8Array.from(atob(honest.gpus[0]![0]!.leaf), (ch) => ch.charCodeAt(0));
    leaf[0]! ^= 0x01;
    const tampered = { ...honest, gpus: [[{ ...honest.gpus[0]![0]!, leaf: btoa(String.fromCharCode(...leaf)) }, ...honest.gpus[0]!.slice(1)]] };
    const before = await snapshot(issued.id, node.nodeId);
    await expectError(await answer(node, `${issued.id}/openings`, tampered), 400, 'validation_failed');
    await expectError(await answer(node, `${issued.id}/openings`, { ...honest, gpus: [honest.gpus[0]!.slice(1)] }), 400, 'validation_failed');
    expect(await snapshot(issued.id, node.nodeId)).toEqual(before);
    expect((await json(await answer(node, `${issued.id}/openings`, honest))).outcome).toBe('passed');
  });

  it('expires a late commitment or late openings (a failure) and refuses the answer', async () => {
    const { operator, node } = await setup();
    const late = await issue(operator, node.nodeId, 'capacity');
    const solved = await solve(late.challenge);
    await db().update(nodeChallenges).set({ deadline: Date.now() - 1 }).where(eq(nodeChallenges.id, late.id));
    const before = await nodeRow(node.nodeId);
    await expectError(await answer(node, `${late.id}/commitment`, await signCommitment(node, late.challenge, solved.commitment)), 409, 'conflict');
    expect(await challengeRow(late.id)).toMatchObject({ status: 'expired', openSeed: null });
    expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(before.reliabilityPpm - FAIL_RELIABILITY_PPM);

    const slow = await issue(operator, node.nodeId, 'capacity');
    const solvedSlow = await solve(slow.challenge);
    const request = (await json(await answer(node, `${slow.id}/commitment`, await signCommitment(node, slow.challenge, solvedSlow.commitment)))) as OpeningRequest;
    await db().update(nodeChallenges).set({ openDeadline: Date.now() - 1 }).where(eq(nodeChallenges.id, slow.id));
    await expectError(await answer(node, `${slow.id}/openings`, await solvedSlow.open(request)), 409, 'conflict');
    expect((await challengeRow(slow.id)).status).toBe('expired');
    expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(before.reliabilityPpm - 2 * FAIL_RELIABILITY_PPM);

    const identity = await issue(operator, node.nodeId, 'identity');
    await db().update(nodeChallenges).set({ deadline: Date.now() - 1 }).where(eq(nodeChallenges.id, identity.id));
    await expectError(await answer(node, `${identity.id}/identity`, await identityAnswer(node, identity.challenge)), 409, 'conflict');
    expect((await challengeRow(identity.id)).status).toBe('expired');
  });

  it('refuses answers from a node without a key (registered before node keys)', async () => {
    const { operator, node } = await setup();
    const issued = await issue(operator, node.nodeId, 'identity');
    await db().update(nodes).set({ publicKey: null }).where(eq(nodes.id, node.nodeId));
    const error = await expectError(await answer(node, `${issued.id}/identity`, await identityAnswer(node, issued.challenge)), 409, 'conflict');
    expect(error.message).toBe('node has no key; join again');
    expect((await challengeRow(issued.id)).status).toBe('issued');
  });
});

describe('platform challenges: a failed capacity challenge', () => {
  it('clears verified, lowers reliability once, tells the books, cancels the asks and refuses sells until a challenge passes', async () => {
    const [operator, provider, renter] = await Promise.all([admin(), signUp(['provider']), signUp()]);
    await fund(renter, 'USD', '50.00');
    const node = await join(provider, 2);
    await beat(node, 1);
    await passIdentity(node, operator);
    const first = await issue(operator, node.nodeId, 'capacity');
    expect((await json((await answerCapacity(node, first.challenge)).res)).outcome).toBe('passed');
    const ask = await placed(provider, sell(REGION, MODEL, node.nodeId, { gpus: 1 }));
    const verified = await nodeRow(node.nodeId);
    expect(verified.verified).toBe(true);

    // The node commits to a product it did not compute: every entry wrong, so every opening shows it.
    const second = await issue(operator, node.nodeId, 'capacity');
    const { res, request, solved } = await answerCapacity(node, second.challenge, (c) => c.fill(7));
    expect(res.status).toBe(200);
    const outcome = await json(res);
    expect(outcome).toMatchObject({ challenge_id: second.id, outcome: 'failed' });
    expect(outcome.reasons[0]).toMatch(/^GPU 0 opening 0: C\[\d+\]\[\d+\] is 7, not -?\d+$/);

    const failed = await nodeRow(node.nodeId);
    expect(failed).toMatchObject({ verified: false, verifiedUntil: null, reliabilityPpm: verified.reliabilityPpm - FAIL_RELIABILITY_PPM });
    expect((await db().select().from(orders).where(eq(orders.id, ask.order.id)))[0]!.status).toBe('cancelled');
    expect((await regionBook(bindings, REGION, MODEL).openAsks()).filter((a) => a.nodeId === node.nodeId)).toEqual([]);
    // A retry of the same openings changes nothing more.
    await expectError(await answer(node, `${second.id}/openings`, await solved.open(request)), 409, 'conflict');
    expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(failed.reliabilityPpm);

    const refused = await expectError(await place(provider, sell(REGION, MODEL, node.nodeId, { gpus: 1 })), 409, 'conflict');
    expect(refused.message).toContain('failed its capacity challenge');

    const third = await issue(operator, node.nodeId, 'capacity');
    expect((await json((await answerCapacity(node, third.challenge)).res)).outcome).toBe('passed');
    expect((await nodeRow(node.nodeId)).verified).toBe(true);
    await placed(provider, sell(REGION, MODEL, node.nodeId, { gpus: 1 }));
  });
});

describe('platform challenges: the cron', () => {
  it('expires an unanswered challenge as a failure, once', async () => {
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    const node = await join(provider);
    const issued = await issue(operator, node.nodeId, 'identity');
    // The node heartbeats, so the challenge reached it, and it does not answer.
    await beat(node, 1);
    const before = await nodeRow(node.nodeId);
    const later = (await challengeRow(issued.id)).deadline + 1;
    expect((await runChallengeCron(bindings, later)).expired).toContain(issued.id);
    expect(await challengeRow(issued.id)).toMatchObject({ status: 'expired', reasons: ['no answer before the deadline'] });
    expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(before.reliabilityPpm - FAIL_RELIABILITY_PPM);
    expect((await runChallengeCron(bindings, later)).expired).not.toContain(issued.id);
    expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(before.reliabilityPpm - FAIL_RELIABILITY_PPM);
  });

  it('closes a challenge the node never received without a penalty, and challenges the node again once it is online', async () => {
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    const node = await join(provider);
    const issued = await issue(operator, node.nodeId, 'capacity');
    const before = await nodeRow(node.nodeId);
    // Joined, not started: no heartbeat before the deadline.
    const later = (await challengeRow(issued.id)).deadline + 1;
    const run = await runChallengeCron(bindings, later, () => 0);
    expect(run.undelivered).toContain(issued.id);
    expect(run.expired).not.toContain(issued.id);
    expect(await challengeRow(issued.id)).toMatchObject({ status: 'expired', decidedAt: null });
    expect((await nodeRow(node.nodeId)).reliabilityPpm).toBe(before.reliabilityPpm);
    // Offline nodes are not challenged; once it heartbeats, the next run challenges it (both kinds).
    expect(run.rechallenged).not.toContain(node.nodeId);
    await beat(node, 1);
    let rechallenged: string[] = [];
    for (let i = 0; i < 50 && !rechallenged.includes(node.nodeId); i++) rechallenged = (await runChallengeCron(bindings, later + 3_600_001, Math.random)).rechallenged;
    expect(rechallenged).toContain(node.nodeId);
    const open = (await db().select().from(nodeChallenges).where(eq(nodeChallenges.nodeId, node.nodeId))).filter((r) => r.status === 'issued');
    expect(open.map((r) => r.kind).sort()).toEqual(['capacity', 'identity']);
  });

  it('re-challenges an online node whose verification ends soon, and clears verified once it has ended', async () => {
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    const node = await join(provider);
    await beat(node, 1);
    await passIdentity(node, operator);
    const capacity = await issue(operator, node.nodeId, 'capacity');
    await answerCapacity(node, capacity.challenge);
    const { verifiedUntil } = await nodeRow(node.nodeId);
    // Well before the window nothing happens; within it, both kinds go out (a certain draw).
    expect((await runChallengeCron(bindings, verifiedUntil! - 2 * 86_400_000, () => 0)).rechallenged).not.toContain(node.nodeId);
    let rechallenged: string[] = [];
    for (let run = 0; run < 50 && !rechallenged.includes(node.nodeId); run++) rechallenged = (await runChallengeCron(bindings, verifiedUntil! - 3_600_000, Math.random)).rechallenged;
    expect(rechallenged).toContain(node.nodeId);
    const open = (await db().select().from(nodeChallenges).where(eq(nodeChallenges.nodeId, node.nodeId))).filter((r) => r.status === 'issued');
    expect(open.map((r) => r.kind).sort()).toEqual(['capacity', 'identity']);
    // Not twice while those are open.
    expect((await runChallengeCron(bindings, verifiedUntil! - 3_600_000, () => 0)).rechallenged).not.toContain(node.nodeId);

    await db().update(nodeChallenges).set({ deadline: verifiedUntil! + 86_400_000 }).where(eq(nodeChallenges.nodeId, node.nodeId));
    expect((await runChallengeCron(bindings, verifiedUntil! + 1)).unverified).toContain(node.nodeId);
    expect(await nodeRow(node.nodeId)).toMatchObject({ verified: false, verifiedUntil });
  });
});
