// Inspections by bonded inspectors in workerd: real accounts bond GRID and register Ed25519 keys,
// a node answers real challenges (challenge-support.ts), and inspectors commit and reveal signed
// verdicts through the routes; the ledger is read back to check who was paid and who was slashed.
//
// The inspector pool is every account in the shared database holding the role by bond with a
// registered key, and only these tests register keys: each builds the pool it needs and retires
// it afterwards (its keys deleted), so draws here only ever see the test's own inspectors. They
// run in inspections.test.ts, one after another with every other test that decides challenges.
import { env } from 'cloudflare:workers';
import { compactVerify, createLocalJWKSet } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/contracts/canonical-json.ts';
import type { CapacityChallenge, IdentityChallenge } from '../../src/contracts/inspections.ts';
import { VERDICT_DOMAIN, verdictFields, type Verdict } from '../../src/contracts/inspector-verdicts.ts';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { connection } from '../../src/db/client.ts';
import { toHex } from '../../src/inspections/encoding.ts';
import { runInspectionCron } from '../../src/inspections/inspections.ts';
import { verdictCommitment } from '../../src/inspections/panel.ts';
import { webCryptoSha256 } from '../../src/inspections/sha256.ts';
import { balances, call, expectError, fund, json, makeAdmin, signUp, type TestAccount } from './support.ts';
import { answer, answerCapacity, identityAnswer, issue, join as joinIn, keyPair, type Key, type TestNode } from './challenge-support.ts';
import { bindings } from './trading.ts';

// This file places no orders; the region and model only describe the machine.
const REGION = 'ap-southeast';
const MODEL = 'rtx-3090-24gb';
const join = (provider: TestAccount) => joinIn(provider, { region: REGION, model: MODEL });

// The Worker's terms (wrangler.toml), in GRID.
const MIN_BOND = '1000';
const REWARD = 1_000_000n; // INSPECTION_REWARD 1
const WRONG_SLASH = 50_000_000n; // INSPECTION_WRONG_SLASH 50
const MISS_SLASH = 5_000_000n; // INSPECTION_MISS_SLASH 5
const MICRO = 1_000_000n;
const POOL_ID = 'platform:GRID:rewards_pool';
const GENESIS_ID = 'platform:GRID:genesis';

const money = () => connection(env).money;
const big = (v: unknown) => BigInt(String(v ?? 0));
const grid = (micro: bigint) => {
  const whole = micro / MICRO;
  let frac = (micro % MICRO).toString().padStart(6, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${whole}.${frac}`;
};

interface Inspector {
  account: TestAccount;
  key: Key;
}

/** Accounts whose keys this file registered: retired after each test. */
const registered: string[] = [];

afterEach(async () => {
  if (registered.length === 0) return;
  await money().execute({ sql: `DELETE FROM inspector_keys WHERE account_id IN (SELECT value FROM json_each(?))`, args: [JSON.stringify(registered)] });
  registered.length = 0;
});

const putKey = (account: TestAccount, publicKey: string) => call('/v1/inspectors/key', { method: 'PUT', auth: account.apiKey, body: { public_key: publicKey } });

/** An account that bonds GRID (the role by its bond) and registers its own inspector key. */
async function inspector(bond = MIN_BOND, account?: TestAccount): Promise<Inspector> {
  const a = account ?? (await signUp(['provider']));
  await fund(a, 'GRID', '5000');
  const bonded = await call('/v1/inspectors/bond', { auth: a.apiKey, headers: { 'idempotency-key': crypto.randomUUID() }, body: { amount: bond } });
  expect(bonded.status).toBe(201);
  const key = await keyPair();
  registered.push(a.id);
  const res = await putKey(a, key.publicKey);
  expect(res.status).toBe(200);
  expect((await json(res)).public_key).toBe(key.publicKey);
  return { account: a, key };
}

async function admin() {
  const a = await signUp(['provider']);
  await makeAdmin(a);
  return a;
}

function mint(actor: TestAccount, amount: string, key: string = crypto.randomUUID()) {
  return call('/v1/admin/rewards-pool/mint', { auth: actor.apiKey, headers: { 'idempotency-key': key }, body: { amount, reason: 'inspection rewards' } });
}

async function balanceOf(id: string): Promise<bigint> {
  const rs = await money().execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [id] });
  return big(rs.rows[0]?.balance);
}

/** What a test compares before and after: available and bonded GRID of each, and the pool. */
async function holdings(people: Inspector[]) {
  const out: Record<string, { available: bigint; bonded: bigint }> = {};
  for (const p of people) out[p.account.id] = { available: await balanceOf(`${p.account.id}:GRID:available`), bonded: await balanceOf(`${p.account.id}:GRID:bonded`) };
  return { people: out, pool: await balanceOf(POOL_ID) };
}

/** Every ledger account summed per asset: double entry keeps each at zero. */
async function expectLedgerBalanced() {
  const rs = await money().execute('SELECT asset, SUM(balance) AS total FROM ledger_accounts GROUP BY asset');
  expect(rs.rows.length).toBeGreaterThan(0);
  for (const r of rs.rows) expect([String(r.asset), big(r.total)]).toEqual([String(r.asset), 0n]);
}

async function inspectionRow(id: string) {
  const rs = await money().execute({ sql: 'SELECT * FROM inspections WHERE id = ?', args: [id] });
  return rs.rows[0] as unknown as Record<string, unknown>;
}

async function assignmentRows(id: string) {
  const rs = await money().execute({ sql: 'SELECT * FROM inspection_assignments WHERE inspection_id = ? ORDER BY account_id', args: [id] });
  return rs.rows.map((r) => ({ ...(r as unknown as Record<string, unknown>) }));
}

const panelOf = async (id: string) => (await assignmentRows(id)).map((r) => String(r.account_id)).sort();
const ids = (people: Inspector[]) => people.map((p) => p.account.id).sort();

/** Ledger transactions posted under an inspection assignment's key. */
async function settlementsOf(inspectionId: string, accountId: string) {
  const rs = await money().execute({ sql: 'SELECT id, kind FROM ledger_transactions WHERE idempotency_key = ?', args: [`inspection:${inspectionId}:${accountId}`] });
  return rs.rows.map((r) => String(r.kind));
}

async function inspectionOfChallenge(challengeId: string): Promise<string> {
  const rs = await money().execute({ sql: 'SELECT id FROM inspections WHERE challenge_id = ?', args: [challengeId] });
  expect(rs.rows).toHaveLength(1);
  return String(rs.rows[0]!.id);
}

/** A signed verdict, its salt and its commitment, as an inspector's client makes them. */
async function verdictFor(who: Inspector, inspectionId: string, verdict: 'pass' | 'fail', o: Partial<Verdict> = {}, signer: Key = who.key) {
  const v: Verdict = { inspection_id: inspectionId, inspector_id: who.account.id, verdict, reasons: verdict === 'fail' ? ['an opened entry is wrong'] : [], entries_checked: 8, leases_checked: 0, lease_findings: 0, ...o };
  const salt = toHex(crypto.getRandomValues(new Uint8Array(32)));
  return { commitment: await verdictCommitment(salt, v, webCryptoSha256), reveal: { verdict: v, salt, signature: await signer.sign(signedMessage(VERDICT_DOMAIN, verdictFields(v))) } };
}

const commit = (who: Inspector, inspectionId: string, body: unknown) => call(`/v1/inspections/${inspectionId}/commitment`, { auth: who.account.apiKey, body });
const reveal = (who: Inspector, inspectionId: string, body: unknown) => call(`/v1/inspections/${inspectionId}/verdict`, { auth: who.account.apiKey, body });

/** Commits to a fresh signed verdict; returns it, to reveal later. */
async function commitTo(who: Inspector, inspectionId: string, verdict: 'pass' | 'fail') {
  const v = await verdictFor(who, inspectionId, verdict);
  const c = await commit(who, inspectionId, { commitment: v.commitment });
  expect(c.status).toBe(200);
  return v;
}

async function revealOk(who: Inspector, inspectionId: string, v: Awaited<ReturnType<typeof verdictFor>>, decided: boolean) {
  const res = await reveal(who, inspectionId, v.reveal);
  expect(res.status).toBe(200);
  expect(await json(res)).toEqual({ inspection_id: inspectionId, decided });
}

async function assignments(who: Inspector) {
  const res = await call('/v1/inspectors/assignments', { auth: who.account.apiKey });
  expect(res.status).toBe(200);
  return (await json(res)).data as Array<{ inspection_id: string; phase: string; committed: boolean; revealed: boolean; transcript: Record<string, any> }>;
}

/** The public report, its JWS checked against the published keys. */
async function verifiedInspectionReport(id: string) {
  const res = await call(`/v1/inspections/${id}`);
  expect(res.status).toBe(200);
  const { report, jws } = await json(res);
  const jwks = await json(await call('/.well-known/jwks.json'));
  const { payload, protectedHeader } = await compactVerify(jws, createLocalJWKSet(jwks), { algorithms: ['ES256'] });
  expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'gridlease-inspection-report' });
  expect(new TextDecoder().decode(payload)).toBe(canonicalJson(report));
  return report;
}

async function plantDecoy(operator: TestAccount, expectOutcome: 'pass' | 'fail'): Promise<string> {
  const res = await call('/v1/admin/inspections/decoys', { auth: operator.apiKey, body: { expect: expectOutcome } });
  expect(res.status).toBe(201);
  return (await json(res)).inspection_id;
}

/** Enough GRID in the pool for the rewards of a test. */
async function fundPool(operator: TestAccount, amount = '100') {
  const res = await mint(operator, amount);
  expect(res.status).toBe(201);
}

async function passIdentity(operator: TestAccount, node: TestNode) {
  const issued = await issue(operator, node.nodeId, 'identity');
  const res = await answer(node, `${issued.id}/identity`, await identityAnswer(node, issued.challenge as IdentityChallenge));
  expect(res.status).toBe(200);
  expect((await json(res)).outcome).toBe('passed');
  return issued.id;
}

describe('inspections: the whole loop', () => {
  it('opens an inspection of a decided capacity challenge, pays the two right inspectors from the pool, slashes the wrong one, and publishes the reports', async () => {
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    const minted = await mint(operator, '500');
    expect(minted.status).toBe(201);
    const a = await inspector();
    const b = await inspector('1200');
    const c = await inspector();
    const node = await join(provider);

    const issued = await issue(operator, node.nodeId, 'capacity');
    const { res } = await answerCapacity(node, issued.challenge as CapacityChallenge);
    expect(res.status).toBe(200);
    expect((await json(res)).outcome).toBe('passed');
    const inspectionId = await inspectionOfChallenge(issued.id);
    expect(await panelOf(inspectionId)).toEqual(ids([a, b, c]));

    // Each inspector sees it, in the commit phase, with the transcript but not the platform's decision.
    for (const who of [a, b, c]) {
      const mine = (await assignments(who)).filter((x) => x.inspection_id === inspectionId);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ phase: 'commit', committed: false, revealed: false });
      const t = mine[0]!.transcript;
      expect(t).toMatchObject({ inspection_id: inspectionId, kind: 'capacity', node_id: node.nodeId, node_public_key: node.key.publicKey });
      expect(t.challenge.challenge_id).toBe(issued.id);
      expect(t.capacity.openings).toBeTruthy();
      expect(Object.keys(t)).not.toContain('status');
      expect(Object.keys(t)).not.toContain('reasons');
      const text = JSON.stringify(t);
      expect(text).not.toContain('"status"');
      expect(text).not.toContain('"reasons"');
      expect(text).not.toContain('passed');
    }
    // The challenge's own report waits for the inspection, and an open inspection has no report.
    await expectError(await call(`/v1/challenges/${issued.id}/report`), 404, 'not_found');
    await expectError(await call(`/v1/inspections/${inspectionId}`), 404, 'not_found');
    await expectError(await call('/v1/inspections/insp_nobody'), 404, 'not_found');
    await expectError(await call('/v1/inspections/bad%20id'), 400, 'validation_failed');
    expect((await json(await call(`/v1/nodes/${node.nodeId}/inspections`))).data).toEqual([]);

    const before = await holdings([a, b, c]);
    const va = await commitTo(a, inspectionId, 'pass');
    const vb = await commitTo(b, inspectionId, 'pass');
    const vc = await commitTo(c, inspectionId, 'fail');
    // All committed: every one is now in the reveal phase.
    // Once committed, polls leave the transcript out: the verdict is made.
    expect((await assignments(a)).find((x) => x.inspection_id === inspectionId)).toMatchObject({ phase: 'reveal', committed: true, revealed: false, transcript: null });
    await revealOk(a, inspectionId, va, false);
    await revealOk(c, inspectionId, vc, false);
    expect((await inspectionRow(inspectionId)).status).toBe('open');
    await expectError(await call(`/v1/challenges/${issued.id}/report`), 404, 'not_found');
    await revealOk(b, inspectionId, vb, true);

    const row = await inspectionRow(inspectionId);
    expect(row).toMatchObject({ status: 'decided', outcome: 'pass', basis: 'recomputation', majority: 'pass' });
    expect(row.settled_at).not.toBeNull();
    const after = await holdings([a, b, c]);
    expect(after.people[a.account.id]).toEqual({ available: before.people[a.account.id]!.available + REWARD, bonded: before.people[a.account.id]!.bonded });
    expect(after.people[b.account.id]).toEqual({ available: before.people[b.account.id]!.available + REWARD, bonded: before.people[b.account.id]!.bonded });
    expect(after.people[c.account.id]).toEqual({ available: before.people[c.account.id]!.available, bonded: before.people[c.account.id]!.bonded - WRONG_SLASH });
    expect(after.pool).toBe(before.pool - 2n * REWARD + WRONG_SLASH);
    expect((await balances(a.account)).GRID!.available).toBe('4001.00');
    expect((await json(await call('/v1/inspectors/me', { auth: c.account.apiKey }))).bonded).toBe('950.00');
    // Below the minimum after the slash: the role goes with it; the others keep theirs.
    const rolesOf = async (who: Inspector) => (await json(await call('/v1/accounts/me', { auth: who.account.apiKey }))).account.roles as string[];
    expect(await rolesOf(c)).not.toContain('inspector');
    expect(await rolesOf(a)).toContain('inspector');
    for (const who of [a, b]) expect(await settlementsOf(inspectionId, who.account.id)).toEqual(['reward']);
    expect(await settlementsOf(inspectionId, c.account.id)).toEqual(['slash']);
    await expectLedgerBalanced();

    const report = await verifiedInspectionReport(inspectionId);
    expect(report).toMatchObject({ inspection_id: inspectionId, kind: 'capacity', decoy: false, node_id: node.nodeId, outcome: 'pass', basis: 'recomputation', majority: 'pass' });
    expect(report.challenge).toMatchObject({ id: issued.id, status: 'passed' });
    expect(report.draw.panel.slice().sort()).toEqual(ids([a, b, c]));
    const byInspector = Object.fromEntries(report.verdicts.map((v: any) => [v.inspector_id, v]));
    expect(Object.keys(byInspector).sort()).toEqual(ids([a, b, c]));
    expect(byInspector[a.account.id]).toMatchObject({ result: 'paid', amount: '1.00', commitment: va.commitment, salt: va.reveal.salt, signature: va.reveal.signature, public_key: a.key.publicKey, verdict: va.reveal.verdict });
    expect(byInspector[b.account.id]).toMatchObject({ result: 'paid', amount: '1.00', verdict: { verdict: 'pass' } });
    expect(byInspector[c.account.id]).toMatchObject({ result: 'wrong', amount: '50.00', verdict: { verdict: 'fail' } });

    const list = await call(`/v1/nodes/${node.nodeId}/inspections`);
    expect(list.status).toBe(200);
    expect(await json(list)).toEqual({
      data: [{ id: inspectionId, kind: 'capacity', decoy: false, outcome: 'pass', majority: 'pass', decided_at: new Date(Number(row.decided_at)).toISOString() }],
      next_cursor: null,
    });
    expect((await call(`/v1/challenges/${issued.id}/report`)).status).toBe(200);
    // Decided: no longer an open assignment.
    expect((await assignments(a)).map((x) => x.inspection_id)).not.toContain(inspectionId);
  });
});

describe('inspections: deadlines and the cron', () => {
  it('slashes an assigned inspector that never commits once the cron decides at the reveal deadline, and a second run moves nothing', async () => {
    const operator = await admin();
    await fundPool(operator);
    const [a, b, lazy] = [await inspector(), await inspector(), await inspector()];
    const inspectionId = await plantDecoy(operator, 'pass');
    expect(await panelOf(inspectionId)).toEqual(ids([a, b, lazy]));
    const va = await commitTo(a, inspectionId, 'pass');
    const vb = await commitTo(b, inspectionId, 'pass');
    const row = await inspectionRow(inspectionId);
    // The lazy one never commits: reveals open at the commit deadline, which the test passes by
    // making it the past in the database (the deadlines are fixed per file by the bindings).
    expect((await expectError(await reveal(a, inspectionId, va.reveal), 409, 'conflict')).message).toContain('open once every inspector has committed');
    await money().execute({ sql: 'UPDATE inspections SET commit_deadline = ? WHERE id = ?', args: [Date.now() - 1_000, inspectionId] });
    await revealOk(a, inspectionId, va, false);
    await revealOk(b, inspectionId, vb, false);
    expect((await inspectionRow(inspectionId)).status).toBe('open');

    const before = await holdings([a, b, lazy]);
    const revealDeadline = Number(row.reveal_deadline);
    // Not yet due: nothing is decided.
    expect((await runInspectionCron(bindings, revealDeadline - 1)).decided).not.toContain(inspectionId);
    expect((await inspectionRow(inspectionId)).status).toBe('open');
    const first = await runInspectionCron(bindings, revealDeadline + 1);
    expect(first.decided).toContain(inspectionId);
    expect(await inspectionRow(inspectionId)).toMatchObject({ status: 'decided', outcome: 'pass', basis: 'decoy', majority: 'pass' });
    const after = await holdings([a, b, lazy]);
    expect(after.people[lazy.account.id]).toEqual({ available: before.people[lazy.account.id]!.available, bonded: before.people[lazy.account.id]!.bonded - MISS_SLASH });
    for (const who of [a, b]) expect(after.people[who.account.id]!.available).toBe(before.people[who.account.id]!.available + REWARD);
    expect(after.pool).toBe(before.pool - 2n * REWARD + MISS_SLASH);
    expect((await assignmentRows(inspectionId)).find((r) => r.account_id === lazy.account.id)).toMatchObject({ result: 'missed', amount: MISS_SLASH, committed_at: null });

    const second = await runInspectionCron(bindings, revealDeadline + 60_000);
    expect(second.decided).not.toContain(inspectionId);
    expect(await holdings([a, b, lazy])).toEqual(after);
    for (const who of [a, b, lazy]) expect(await settlementsOf(inspectionId, who.account.id)).toHaveLength(1);
    // As if a run had posted the money but lost the assignments' rows: the next run finds each
    // ledger transaction under its key and only marks the rows again (rows reset in the database).
    await money().execute({ sql: 'UPDATE inspection_assignments SET result = NULL, amount = NULL, transaction_id = NULL, settled_at = NULL WHERE inspection_id = ?', args: [inspectionId] });
    await money().execute({ sql: 'UPDATE inspections SET settled_at = NULL WHERE id = ?', args: [inspectionId] });
    expect((await runInspectionCron(bindings, revealDeadline + 120_000)).settled).toBeGreaterThanOrEqual(3);
    expect(await holdings([a, b, lazy])).toEqual(after);
    const remarked = await assignmentRows(inspectionId);
    expect(remarked.map((r) => [String(r.account_id), r.result, big(r.amount), r.transaction_id !== null])).toEqual(
      [
        [a.account.id, 'paid', REWARD, true],
        [b.account.id, 'paid', REWARD, true],
        [lazy.account.id, 'missed', MISS_SLASH, true],
      ].sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1)),
    );
    expect((await inspectionRow(inspectionId)).settled_at).not.toBeNull();
    const report = await verifiedInspectionReport(inspectionId);
    const lazyVerdict = report.verdicts.find((v: any) => v.inspector_id === lazy.account.id);
    expect(lazyVerdict).toMatchObject({ result: 'missed', amount: '5.00', commitment: null, verdict: null });
    await expectLedgerBalanced();
  });

  it('settles once when two cron runs overlap', async () => {
    const operator = await admin();
    await fundPool(operator);
    const [a, b, c] = [await inspector(), await inspector(), await inspector()];
    const inspectionId = await plantDecoy(operator, 'fail');
    expect(await panelOf(inspectionId)).toEqual(ids([a, b, c]));
    const va = await commitTo(a, inspectionId, 'fail');
    await money().execute({ sql: 'UPDATE inspections SET commit_deadline = ? WHERE id = ?', args: [Date.now() - 1_000, inspectionId] });
    await revealOk(a, inspectionId, va, false);
    const before = await holdings([a, b, c]);
    const at = Number((await inspectionRow(inspectionId)).reveal_deadline) + 1;
    const runs = await Promise.all([runInspectionCron(bindings, at), runInspectionCron(bindings, at)]);
    expect(runs.filter((r) => r.decided.includes(inspectionId))).toHaveLength(1);
    const after = await holdings([a, b, c]);
    expect(after.people[a.account.id]).toEqual({ available: before.people[a.account.id]!.available + REWARD, bonded: before.people[a.account.id]!.bonded });
    for (const who of [b, c]) expect(after.people[who.account.id]).toEqual({ available: before.people[who.account.id]!.available, bonded: before.people[who.account.id]!.bonded - MISS_SLASH });
    expect(after.pool).toBe(before.pool - REWARD + 2n * MISS_SLASH);
    for (const who of [a, b, c]) expect(await settlementsOf(inspectionId, who.account.id)).toHaveLength(1);
    expect((await assignmentRows(inspectionId)).every((r) => r.settled_at !== null)).toBe(true);
    await expectLedgerBalanced();
  });
});

describe('inspections: refusals change nothing', () => {
  /** A decoy with a panel of three, and a fourth bonded inspector who registered its key too late to be drawn. */
  async function setup() {
    const operator = await admin();
    await fundPool(operator);
    const [a, b, c] = [await inspector(), await inspector(), await inspector()];
    const inspectionId = await plantDecoy(operator, 'pass');
    expect(await panelOf(inspectionId)).toEqual(ids([a, b, c]));
    const outsider = await inspector();
    return { operator, a, b, c, outsider, inspectionId };
  }

  const state = async (inspectionId: string, people: Inspector[]) => ({ inspection: await inspectionRow(inspectionId), rows: await assignmentRows(inspectionId), money: await holdings(people) });

  it('refuses a commitment to an inspection not assigned (404), a second commitment (409) and one after the commit deadline (409)', async () => {
    const { a, b, c, outsider, inspectionId } = await setup();
    const people = [a, b, c, outsider];
    const before = await state(inspectionId, people);
    const vo = await verdictFor(outsider, inspectionId, 'pass');
    await expectError(await commit(outsider, inspectionId, { commitment: vo.commitment }), 404, 'not_found');
    await expectError(await commit(a, 'insp_nobody', { commitment: vo.commitment }), 404, 'not_found');
    expect(await state(inspectionId, people)).toEqual(before);

    // Two commitments at once: one is taken.
    const va = await verdictFor(a, inspectionId, 'pass');
    const vaOther = await verdictFor(a, inspectionId, 'fail');
    const raced = await Promise.all([commit(a, inspectionId, { commitment: va.commitment }), commit(a, inspectionId, { commitment: vaOther.commitment })]);
    expect(raced.map((r) => r.status).sort()).toEqual([200, 409]);
    const taken = raced[0]!.status === 200 ? va : vaOther;
    const committed = await state(inspectionId, people);
    const other = await verdictFor(a, inspectionId, 'fail');
    expect((await expectError(await commit(a, inspectionId, { commitment: other.commitment }), 409, 'conflict')).message).toContain('already committed');
    expect(await state(inspectionId, people)).toEqual(committed);
    expect(committed.rows.find((r) => r.account_id === a.account.id)!.commitment).toBe(taken.commitment);

    // The commit deadline is fixed per file by the bindings: moved into the past in the database.
    await money().execute({ sql: 'UPDATE inspections SET commit_deadline = ? WHERE id = ?', args: [Date.now() - 1_000, inspectionId] });
    const late = await state(inspectionId, people);
    const vb = await verdictFor(b, inspectionId, 'pass');
    expect((await expectError(await commit(b, inspectionId, { commitment: vb.commitment }), 409, 'conflict')).message).toContain('commit deadline');
    expect(await state(inspectionId, people)).toEqual(late);
    expect(late.rows.find((r) => r.account_id === b.account.id)!.committed_at).toBeNull();
  });

  it('refuses a reveal before every inspector committed and before the commit deadline (409)', async () => {
    const { a, b, c, inspectionId } = await setup();
    const va = await commitTo(a, inspectionId, 'pass');
    await commitTo(b, inspectionId, 'pass');
    const before = await state(inspectionId, [a, b, c]);
    expect((await expectError(await reveal(a, inspectionId, va.reveal), 409, 'conflict')).message).toContain('open once every inspector has committed');
    // Nor can one that never committed reveal.
    const vc = await verdictFor(c, inspectionId, 'pass');
    const uncommitted = await expectError(await reveal(c, inspectionId, vc.reveal), 409, 'conflict');
    expect(uncommitted.message).toContain('commit first');
    expect(await state(inspectionId, [a, b, c])).toEqual(before);
    expect((await assignments(a)).find((x) => x.inspection_id === inspectionId)).toMatchObject({ phase: 'commit', committed: true, revealed: false });
    // The last commitment opens the reveals.
    expect((await commit(c, inspectionId, { commitment: vc.commitment })).status).toBe(200);
    await revealOk(a, inspectionId, va, false);
  });

  it('refuses a reveal that does not match the commitment (400), one signed by another key (401), malformed ones (400), a second reveal (409), and one after the reveal deadline (409)', async () => {
    const { a, b, c, inspectionId } = await setup();
    const people = [a, b, c];
    const va = await commitTo(a, inspectionId, 'pass');
    const vb = await commitTo(b, inspectionId, 'pass');
    // Signed by another key, committed to as such: the commitment matches, the signature does not.
    const vc = await verdictFor(c, inspectionId, 'pass', {}, await keyPair());
    expect((await commit(c, inspectionId, { commitment: vc.commitment })).status).toBe(200);
    const before = await state(inspectionId, people);

    // Another verdict than the one committed to, validly signed.
    const flipped = await verdictFor(a, inspectionId, 'fail');
    expect((await expectError(await reveal(a, inspectionId, { ...flipped.reveal, salt: va.reveal.salt }), 400, 'validation_failed')).message).toContain('do not match the commitment');
    // The committed verdict with another salt.
    expect((await expectError(await reveal(a, inspectionId, { ...va.reveal, salt: toHex(crypto.getRandomValues(new Uint8Array(32))) }), 400, 'validation_failed')).message).toContain('do not match the commitment');
    // Someone else's verdict (matching their commitment, not this account's).
    expect((await expectError(await reveal(a, inspectionId, vb.reveal), 400, 'validation_failed')).message).toContain('inspector_id');
    expect((await expectError(await reveal(c, inspectionId, vc.reveal), 401, 'unauthorized')).message).toContain('signature does not verify');
    // A valid signature by the right key, but over another verdict than the one revealed.
    const signedOther = await verdictFor(a, inspectionId, 'pass', { entries_checked: 9 });
    expect((await expectError(await reveal(a, inspectionId, { ...va.reveal, signature: signedOther.reveal.signature }), 401, 'unauthorized')).message).toContain('signature does not verify');
    for (const body of [
      {},
      { ...va.reveal, salt: 'zz' },
      { ...va.reveal, extra: true },
      { ...va.reveal, verdict: { ...va.reveal.verdict, verdict: 'maybe' } },
      { ...va.reveal, signature: 'not a signature!' },
    ]) {
      await expectError(await reveal(a, inspectionId, body), 400, 'validation_failed');
    }
    for (const body of [{}, { commitment: 'AB'.repeat(32) }, { commitment: 'ab'.repeat(31) }, { commitment: va.commitment, extra: 1 }]) {
      await expectError(await commit(a, inspectionId, body), 400, 'validation_failed');
    }
    await expectError(await reveal(a, inspectionId, '{"verdict":'), 400, 'invalid_json');
    await expectError(await commit(a, inspectionId, 'not json'), 400, 'invalid_json');
    await expectError(await reveal(a, 'bad%20id', va.reveal), 400, 'validation_failed');
    expect(await state(inspectionId, people)).toEqual(before);

    // Reveals are open (everyone committed), but a reveal needs this account's own commitment.
    await revealOk(a, inspectionId, va, false);
    const revealed = await state(inspectionId, people);
    expect((await expectError(await reveal(a, inspectionId, va.reveal), 409, 'conflict')).message).toContain('already revealed');
    expect(await state(inspectionId, people)).toEqual(revealed);

    // The reveal deadline is fixed per file by the bindings: moved into the past in the database.
    await money().execute({ sql: 'UPDATE inspections SET reveal_deadline = ? WHERE id = ?', args: [Date.now() - 1_000, inspectionId] });
    const late = await state(inspectionId, people);
    expect((await expectError(await reveal(b, inspectionId, vb.reveal), 409, 'conflict')).message).toContain('reveal deadline');
    expect(await state(inspectionId, people)).toEqual(late);
    expect(late.rows.find((r) => r.account_id === b.account.id)!.revealed_at).toBeNull();
  });

  it('refuses an inspector whose active bond fell below the minimum after it was drawn (403)', async () => {
    const { a, b, c, inspectionId } = await setup();
    const va = await commitTo(a, inspectionId, 'pass');
    await commitTo(b, inspectionId, 'pass');
    const vc = await verdictFor(c, inspectionId, 'pass');
    for (const who of [a, c]) {
      const res = await call('/v1/inspectors/unbond', { auth: who.account.apiKey, headers: { 'idempotency-key': crypto.randomUUID() }, body: { amount: '1' } });
      expect(res.status).toBe(201);
    }
    const before = await state(inspectionId, [a, b, c]);
    await expectError(await commit(c, inspectionId, { commitment: vc.commitment }), 403, 'forbidden');
    await money().execute({ sql: 'UPDATE inspections SET commit_deadline = ? WHERE id = ?', args: [Date.now() - 1_000, inspectionId] });
    const opened = await state(inspectionId, [a, b, c]);
    await expectError(await reveal(a, inspectionId, va.reveal), 403, 'forbidden');
    expect(await state(inspectionId, [a, b, c])).toEqual(opened);
    expect(opened.rows).toEqual(before.rows);
    expect(opened.money).toEqual(before.money);
  });

  it('never draws the owner of the node, even when it is the heaviest inspector', async () => {
    const operator = await admin();
    const owner = await inspector('4000');
    const others = [await inspector(), await inspector(), await inspector()];
    const node = await join(owner.account);
    for (let i = 0; i < 4; i++) {
      const challengeId = await passIdentity(operator, node);
      const inspectionId = await inspectionOfChallenge(challengeId);
      const panel = await panelOf(inspectionId);
      expect(panel).toEqual(ids(others));
      const draw = JSON.parse(String((await inspectionRow(inspectionId)).draw));
      expect(draw.pool.map((p: { account_id: string }) => p.account_id).sort()).toEqual(ids(others));
    }
    // The owner has no assignment on its own node.
    expect((await assignments(owner)).filter((x) => x.transcript.node_id === node.nodeId)).toEqual([]);
  });

  it("refuses an inspector key that is a node's key or another account's (409), and keeps the key it had", async () => {
    const provider = await signUp(['provider']);
    const node = await join(provider);
    const [a, b] = [await inspector(), await inspector()];
    expect((await expectError(await putKey(a.account, node.key.publicKey), 409, 'conflict')).message).toContain('node key');
    expect((await expectError(await putKey(a.account, b.key.publicKey), 409, 'conflict')).message).toContain('another account');
    // An account with no key yet cannot take another's either.
    const fresh = await signUp(['provider']);
    expect((await expectError(await putKey(fresh, a.key.publicKey), 409, 'conflict')).message).toContain('another account');
    await expectError(await putKey(fresh, 'not-a-key'), 400, 'validation_failed');
    const rs = await money().execute({ sql: 'SELECT account_id, public_key FROM inspector_keys WHERE account_id IN (?, ?, ?) ORDER BY account_id', args: [a.account.id, b.account.id, fresh.id] });
    expect(rs.rows.map((r) => [String(r.account_id), String(r.public_key)])).toEqual(
      [[a.account.id, a.key.publicKey], [b.account.id, b.key.publicKey]].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    );
    // The same key again is fine; a new one of its own replaces it.
    expect((await putKey(a.account, a.key.publicKey)).status).toBe(200);
    const next = await keyPair();
    expect((await putKey(a.account, next.publicKey)).status).toBe(200);
  });
});

describe('inspections: an inspector\'s evidence', () => {
  it('fails a node whose opened leaves hold a wrong entry the openings missed: the inspector who found it is paid, those who passed it slashed', async () => {
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    await fundPool(operator);
    const a = await inspector();
    const b = await inspector();
    const finder = await inspector();
    const node = await join(provider);

    // The last entry of every leaf is off by one; the platform opens one entry per leaf it picks,
    // so a challenge whose openings all miss those entries passes (retried until one does).
    let issued: Awaited<ReturnType<typeof issue>> | undefined;
    let request: { open_seed: string } | undefined;
    let leafSize = 0;
    for (let attempt = 0; attempt < 12 && !request; attempt++) {
      const next = await issue(operator, node.nodeId, 'capacity');
      const ch = next.challenge as CapacityChallenge;
      leafSize = ch.leaf_size;
      const answered = await answerCapacity(node, ch, (c) => {
        for (let at = leafSize - 1; at < c.length; at += leafSize) c[at] = c[at]! + 1;
      });
      if ((await json(answered.res)).outcome === 'passed') {
        issued = next;
        request = answered.request;
      }
    }
    expect(request, 'no challenge of twelve missed every bent entry').toBeDefined();
    const inspectionId = await inspectionOfChallenge(issued!.id);
    expect(await panelOf(inspectionId)).toEqual(ids([a, b, finder]));

    // The finder points at the last entry of an opened leaf (from the transcript's first opening).
    const t = (await assignments(finder)).find((x) => x.inspection_id === inspectionId)!.transcript;
    const n = t.challenge.n as number;
    const leafIndex = t.capacity.openings.gpus[0][0].leaf_index as number;
    const flat = leafIndex * leafSize + Math.min(leafSize, n * n - leafIndex * leafSize) - 1;
    const evidence = [{ gpu: 0, row: Math.floor(flat / n), col: flat % n }];
    const va = await commitTo(a, inspectionId, 'pass');
    const vb = await commitTo(b, inspectionId, 'pass');
    const vf = await verdictFor(finder, inspectionId, 'fail', { evidence, reasons: ['GPU 0: an entry of an opened leaf is wrong'] });
    expect((await commit(finder, inspectionId, { commitment: vf.commitment })).status).toBe(200);
    const before = await holdings([a, b, finder]);
    await revealOk(a, inspectionId, va, false);
    await revealOk(b, inspectionId, vb, false);
    await revealOk(finder, inspectionId, vf, true);

    // Recomputed from the evidence: the outcome is fail though two of three said pass.
    const row = await inspectionRow(inspectionId);
    expect(row).toMatchObject({ status: 'decided', outcome: 'fail', majority: 'pass' });
    expect(JSON.parse(String(row.reasons))).toEqual([`GPU 0: C[${evidence[0]!.row}][${evidence[0]!.col}] in an opened leaf is wrong (an inspector's evidence, recomputed)`]);
    const after = await holdings([a, b, finder]);
    expect(after.people[finder.account.id]!.available).toBe(before.people[finder.account.id]!.available + REWARD);
    for (const who of [a, b]) expect(after.people[who.account.id]!.bonded).toBe(before.people[who.account.id]!.bonded - WRONG_SLASH);
    await expectLedgerBalanced();
  });

  it('does not fail a node on evidence that does not hold: the one who claimed it is slashed', async () => {
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    await fundPool(operator);
    const a = await inspector();
    const b = await inspector();
    const liar = await inspector();
    const node = await join(provider);
    const issued = await issue(operator, node.nodeId, 'capacity');
    expect((await json((await answerCapacity(node, issued.challenge as CapacityChallenge)).res)).outcome).toBe('passed');
    const inspectionId = await inspectionOfChallenge(issued.id);
    const t = (await assignments(liar)).find((x) => x.inspection_id === inspectionId)!.transcript;
    const n = t.challenge.n as number;
    const leafIndex = t.capacity.openings.gpus[0][0].leaf_index as number;
    const flat = leafIndex * (t.challenge.leaf_size as number);
    const va = await commitTo(a, inspectionId, 'pass');
    const vb = await commitTo(b, inspectionId, 'pass');
    const vl = await verdictFor(liar, inspectionId, 'fail', { evidence: [{ gpu: 0, row: Math.floor(flat / n), col: flat % n }] });
    expect((await commit(liar, inspectionId, { commitment: vl.commitment })).status).toBe(200);
    const before = await holdings([a, b, liar]);
    await revealOk(a, inspectionId, va, false);
    await revealOk(b, inspectionId, vb, false);
    await revealOk(liar, inspectionId, vl, true);
    expect(await inspectionRow(inspectionId)).toMatchObject({ outcome: 'pass', majority: 'pass' });
    const after = await holdings([a, b, liar]);
    expect(after.people[liar.account.id]!.bonded).toBe(before.people[liar.account.id]!.bonded - WRONG_SLASH);
    for (const who of [a, b]) expect(after.people[who.account.id]!.available).toBe(before.people[who.account.id]!.available + REWARD);
  });
});

describe('inspections: decoys', () => {
  it('slashes the inspector that passes a decoy made to fail and pays those that fail it', async () => {
    const operator = await admin();
    await fundPool(operator);
    const [stamper, careful1, careful2] = [await inspector(), await inspector(), await inspector()];
    const inspectionId = await plantDecoy(operator, 'fail');
    expect(await panelOf(inspectionId)).toEqual(ids([stamper, careful1, careful2]));
    const shown = (await assignments(stamper)).find((x) => x.inspection_id === inspectionId)!;
    expect(shown).toMatchObject({ phase: 'commit', transcript: { kind: 'capacity', inspection_id: inspectionId } });
    expect(JSON.stringify(shown.transcript)).not.toContain('decoy');
    const before = await holdings([stamper, careful1, careful2]);
    const vs = await commitTo(stamper, inspectionId, 'pass');
    const v1 = await commitTo(careful1, inspectionId, 'fail');
    const v2 = await commitTo(careful2, inspectionId, 'fail');
    await revealOk(stamper, inspectionId, vs, false);
    await revealOk(careful1, inspectionId, v1, false);
    await revealOk(careful2, inspectionId, v2, true);
    const after = await holdings([stamper, careful1, careful2]);
    expect(after.people[stamper.account.id]).toEqual({ available: before.people[stamper.account.id]!.available, bonded: before.people[stamper.account.id]!.bonded - WRONG_SLASH });
    for (const who of [careful1, careful2]) expect(after.people[who.account.id]).toEqual({ available: before.people[who.account.id]!.available + REWARD, bonded: before.people[who.account.id]!.bonded });
    expect(after.pool).toBe(before.pool - 2n * REWARD + WRONG_SLASH);
    const report = await verifiedInspectionReport(inspectionId);
    expect(report).toMatchObject({ decoy: true, outcome: 'fail', basis: 'decoy', majority: 'fail', challenge: null });
    const results = Object.fromEntries(report.verdicts.map((v: any) => [v.inspector_id, [v.result, v.amount]]));
    expect(results).toEqual({ [stamper.account.id]: ['wrong', '50.00'], [careful1.account.id]: ['paid', '1.00'], [careful2.account.id]: ['paid', '1.00'] });
    await expectLedgerBalanced();
  });
});

describe('inspections: batches of commitments and reveals', () => {
  type Made = Awaited<ReturnType<typeof verdictFor>>;
  const commitBatch = (who: Inspector, items: Array<{ inspection_id: string; commitment: string }>) => call('/v1/inspections/commitments', { auth: who.account.apiKey, body: { items } });
  const revealBatch = (who: Inspector, items: Array<{ inspection_id: string } & Made['reveal']>) => call('/v1/inspections/verdicts', { auth: who.account.apiKey, body: { items } });
  const results = async (res: Response) => {
    expect(res.status).toBe(200);
    return (await json(res)).results as Array<{ inspection_id: string; ok: boolean; error?: { code: string; message: string }; decided?: boolean; reveal_from?: string }>;
  };
  /** One item's outcome, as [id, 'ok'] or [id, code, a word of the message]. */
  const summary = (rs: Awaited<ReturnType<typeof results>>) => rs.map((r) => (r.ok ? [r.inspection_id, 'ok'] : [r.inspection_id, r.error!.code]));
  const rowOf = async (inspectionId: string, who: Inspector) => (await assignmentRows(inspectionId)).find((r) => r.account_id === who.account.id)!;

  /** Two decoys with the same panel of three, and a fourth bonded inspector drawn for neither. */
  async function setup(first: 'pass' | 'fail' = 'pass', second: 'pass' | 'fail' = 'fail') {
    const operator = await admin();
    await fundPool(operator);
    const [a, b, c] = [await inspector(), await inspector(), await inspector()];
    const one = await plantDecoy(operator, first);
    const two = await plantDecoy(operator, second);
    for (const id of [one, two]) expect(await panelOf(id)).toEqual(ids([a, b, c]));
    const outsider = await inspector();
    return { a, b, c, outsider, one, two };
  }

  it('answers each item on its own, in order: the good ones are committed and revealed, the refused ones (not assigned, a second commitment, twice in one batch, a bad signature, not the commitment) change nothing', async () => {
    const { a, b, c, outsider, one, two } = await setup();
    const people = [a, b, c, outsider];
    // a commits to `one` through the single route first: the batch's commitment to it is a second one.
    const va1 = await commitTo(a, one, 'pass');
    const va2 = await verdictFor(a, two, 'fail');
    const other = await verdictFor(a, one, 'fail');
    const beforeOne = await rowOf(one, a);
    const committed = await results(
      await commitBatch(a, [
        { inspection_id: two, commitment: va2.commitment },
        { inspection_id: 'insp_nobody', commitment: va2.commitment },
        { inspection_id: one, commitment: other.commitment },
        { inspection_id: two, commitment: other.commitment },
      ]),
    );
    expect(summary(committed)).toEqual([
      [two, 'ok'],
      ['insp_nobody', 'not_found'],
      [one, 'conflict'],
      [two, 'conflict'],
    ]);
    expect(committed[2]!.error!.message).toContain('already committed');
    expect(committed[3]!.error!.message).toContain('already in this request');
    expect(committed[0]).toMatchObject({ inspection_id: two, ok: true, committed_at: expect.any(String), reveal_from: expect.any(String) });
    expect(await rowOf(one, a)).toEqual(beforeOne);
    expect((await rowOf(two, a)).commitment).toBe(va2.commitment);
    // The outsider is assigned neither: every item is a 404, and nothing is written.
    const vo = await verdictFor(outsider, one, 'pass');
    expect(summary(await results(await commitBatch(outsider, [{ inspection_id: one, commitment: vo.commitment }, { inspection_id: two, commitment: vo.commitment }])))).toEqual([
      [one, 'not_found'],
      [two, 'not_found'],
    ]);

    // b commits to both in one batch; c signs `one` with another key (its commitment matches, its signature will not).
    const vb1 = await verdictFor(b, one, 'pass');
    const vb2 = await verdictFor(b, two, 'fail');
    expect(summary(await results(await commitBatch(b, [{ inspection_id: one, commitment: vb1.commitment }, { inspection_id: two, commitment: vb2.commitment }])))).toEqual([
      [one, 'ok'],
      [two, 'ok'],
    ]);
    const vc1 = await verdictFor(c, one, 'pass', {}, await keyPair());
    const vc2 = await verdictFor(c, two, 'fail');
    const last = await results(await commitBatch(c, [{ inspection_id: one, commitment: vc1.commitment }, { inspection_id: two, commitment: vc2.commitment }]));
    expect(summary(last)).toEqual([
      [one, 'ok'],
      [two, 'ok'],
    ]);
    // The last of each panel to commit opens its reveals at once.
    for (const r of last) expect(Date.parse(r.reveal_from!)).toBeLessThanOrEqual(Date.now());

    const before = { one: await assignmentRows(one), two: await assignmentRows(two), money: await holdings(people) };
    // c: a bad signature on `one` and a reveal of `two` that is not its commitment (another salt).
    const refusedC = await results(
      await revealBatch(c, [
        { inspection_id: one, ...vc1.reveal },
        { inspection_id: two, ...vc2.reveal, salt: toHex(crypto.getRandomValues(new Uint8Array(32))) },
      ]),
    );
    expect(summary(refusedC)).toEqual([
      [one, 'unauthorized'],
      [two, 'validation_failed'],
    ]);
    expect(refusedC[0]!.error!.message).toContain('signature does not verify');
    expect(refusedC[1]!.error!.message).toContain('do not match the commitment');
    expect({ one: await assignmentRows(one), two: await assignmentRows(two), money: await holdings(people) }).toEqual(before);

    // a: `one` revealed, `two` with someone else's verdict refused, `one` again in the same batch refused.
    const mixed = await results(
      await revealBatch(a, [
        { inspection_id: one, ...va1.reveal },
        { inspection_id: two, ...vb2.reveal },
        { inspection_id: one, ...va1.reveal },
      ]),
    );
    expect(summary(mixed)).toEqual([
      [one, 'ok'],
      [two, 'validation_failed'],
      [one, 'conflict'],
    ]);
    expect(mixed[0]).toEqual({ inspection_id: one, ok: true, decided: false });
    expect(mixed[1]!.error!.message).toContain('inspector_id');
    expect((await rowOf(one, a)).revealed_at).not.toBeNull();
    expect(await rowOf(two, a)).toEqual(before.two.find((r) => r.account_id === a.account.id));
    // A second reveal, now through the batch route alone.
    const again = await results(await revealBatch(a, [{ inspection_id: one, ...va1.reveal }]));
    expect(again[0]!.error).toMatchObject({ code: 'conflict', message: expect.stringContaining('already revealed') });
    expect((await inspectionRow(one)).status).toBe('open');
    expect((await inspectionRow(two)).status).toBe('open');
    await expectLedgerBalanced();
  });

  it('decides every inspection whose last reveal is in the batch, and pays its panel', async () => {
    const { a, b, c, one, two } = await setup('pass', 'fail');
    const made = new Map<Inspector, [Made, Made]>();
    for (const who of [a, b, c]) {
      const pair: [Made, Made] = [await verdictFor(who, one, 'pass'), await verdictFor(who, two, 'fail')];
      made.set(who, pair);
      const res = await results(await commitBatch(who, [{ inspection_id: one, commitment: pair[0].commitment }, { inspection_id: two, commitment: pair[1].commitment }]));
      expect(summary(res)).toEqual([
        [one, 'ok'],
        [two, 'ok'],
      ]);
    }
    const before = await holdings([a, b, c]);
    const both = (who: Inspector) => revealBatch(who, [{ inspection_id: one, ...made.get(who)![0].reveal }, { inspection_id: two, ...made.get(who)![1].reveal }]);
    for (const who of [a, b]) expect((await results(await both(who))).map((r) => r.decided)).toEqual([false, false]);
    expect((await inspectionRow(one)).status).toBe('open');
    expect(await results(await both(c))).toEqual([
      { inspection_id: one, ok: true, decided: true },
      { inspection_id: two, ok: true, decided: true },
    ]);
    expect(await inspectionRow(one)).toMatchObject({ status: 'decided', outcome: 'pass', majority: 'pass' });
    expect(await inspectionRow(two)).toMatchObject({ status: 'decided', outcome: 'fail', majority: 'fail' });
    const after = await holdings([a, b, c]);
    for (const who of [a, b, c]) expect(after.people[who.account.id]).toEqual({ available: before.people[who.account.id]!.available + 2n * REWARD, bonded: before.people[who.account.id]!.bonded });
    expect(after.pool).toBe(before.pool - 6n * REWARD);
    for (const id of [one, two]) for (const who of [a, b, c]) expect(await settlementsOf(id, who.account.id)).toHaveLength(1);
    await expectLedgerBalanced();
  });

  it('takes 1 to 50 items: 51, none or a malformed item is a 400 for the whole batch, changing nothing', async () => {
    const { a, one } = await setup();
    const v = await verdictFor(a, one, 'pass');
    const before = await assignmentRows(one);
    const item = { inspection_id: one, commitment: v.commitment };
    await expectError(await commitBatch(a, Array.from({ length: 51 }, () => item)), 400, 'validation_failed');
    await expectError(await commitBatch(a, []), 400, 'validation_failed');
    await expectError(await commitBatch(a, [item, { inspection_id: one, commitment: 'AB'.repeat(32) }]), 400, 'validation_failed');
    await expectError(await call('/v1/inspections/commitments', { auth: a.account.apiKey, body: { items: [item], extra: 1 } }), 400, 'validation_failed');
    await expectError(await revealBatch(a, Array.from({ length: 51 }, () => ({ inspection_id: one, ...v.reveal }))), 400, 'validation_failed');
    await expectError(await revealBatch(a, [{ inspection_id: one, ...v.reveal, salt: 'zz' }]), 400, 'validation_failed');
    await expectError(await call('/v1/inspections/verdicts', { auth: a.account.apiKey, body: '{"items":' }), 400, 'invalid_json');
    expect(await assignmentRows(one)).toEqual(before);
    // 50 is taken: the first is committed, the 49 repeats are refused as already in this request.
    const fifty = await results(await commitBatch(a, Array.from({ length: 50 }, () => item)));
    expect(fifty).toHaveLength(50);
    expect(summary(fifty.slice(0, 2))).toEqual([
      [one, 'ok'],
      [one, 'conflict'],
    ]);
    expect(fifty.filter((r) => r.ok)).toHaveLength(1);
    expect((await rowOf(one, a)).commitment).toBe(v.commitment);
  });

  it('refuses the whole batch (403) when the inspector is no longer in good standing', async () => {
    const { a, one, two } = await setup();
    const v1 = await verdictFor(a, one, 'pass');
    const res = await call('/v1/inspectors/unbond', { auth: a.account.apiKey, headers: { 'idempotency-key': crypto.randomUUID() }, body: { amount: '1' } });
    expect(res.status).toBe(201);
    const before = [await assignmentRows(one), await assignmentRows(two)];
    await expectError(await commitBatch(a, [{ inspection_id: one, commitment: v1.commitment }, { inspection_id: 'insp_nobody', commitment: v1.commitment }]), 403, 'forbidden');
    await expectError(await revealBatch(a, [{ inspection_id: two, ...v1.reveal }]), 403, 'forbidden');
    expect([await assignmentRows(one), await assignmentRows(two)]).toEqual(before);
  });
});

describe('inspections: the rewards pool mint', () => {
  it('mints within the supply once per Idempotency-Key, refuses beyond the supply (409) and non-operators (403), minting nothing', async () => {
    const [operator, someone] = await Promise.all([admin(), signUp(['provider'])]);
    const pool0 = await balanceOf(POOL_ID);
    const genesis0 = await balanceOf(GENESIS_ID);
    const key = crypto.randomUUID();
    const first = await mint(operator, '250.5', key);
    expect(first.status).toBe(201);
    const body = await json(first);
    expect(body).toMatchObject({ total_supply: '1000000000.00', minted_total: grid(-(genesis0 - 250_500_000n)) });
    const again = await mint(operator, '250.5', key);
    expect(again.status).toBe(200);
    expect((await json(again)).transaction_id).toBe(body.transaction_id);
    expect(await balanceOf(POOL_ID)).toBe(pool0 + 250_500_000n);
    expect(await balanceOf(GENESIS_ID)).toBe(genesis0 - 250_500_000n);
    const txs = await money().execute({ sql: `SELECT id, kind FROM ledger_transactions WHERE idempotency_key = ?`, args: [`mint:${operator.id}:${key}`] });
    expect(txs.rows.map((r) => [String(r.id), String(r.kind)])).toEqual([[body.transaction_id, 'mint']]);
    const audits = await money().execute({ sql: `SELECT action FROM audit_log WHERE actor_account_id = ?`, args: [operator.id] });
    expect(audits.rows.map((r) => String(r.action))).toEqual(['ledger.mint GRID 250.50']);
    // Another amount under the same key is a conflict, not a second mint.
    await expectError(await mint(operator, '1', key), 409, 'idempotency_conflict');

    // The supply is 1,000,000,000 and some is minted already: the whole supply again is too much.
    const beyond = await expectError(await mint(operator, '1000000000'), 409, 'conflict');
    expect(beyond.message).toContain('total supply');
    await expectError(await mint(someone, '10'), 403, 'forbidden');
    await expectError(await call('/v1/admin/rewards-pool/mint', { auth: operator.apiKey, body: { amount: '10', reason: 'no key' } }), 400, 'missing_idempotency_key');
    await expectError(await mint(operator, '-5'), 400, 'validation_failed');
    expect(await balanceOf(POOL_ID)).toBe(pool0 + 250_500_000n);
    expect(await balanceOf(GENESIS_ID)).toBe(genesis0 - 250_500_000n);
    const auditsAfter = await money().execute({ sql: `SELECT COUNT(*) AS n FROM audit_log WHERE actor_account_id IN (?, ?)`, args: [operator.id, someone.id] });
    expect(Number(auditsAfter.rows[0]!.n)).toBe(1);
    await expectLedgerBalanced();
  });
});

describe('inspections: no inspectors', () => {
  it('decides the inspection of a decided challenge at once when no inspector can be drawn, and releases its report', async () => {
    // No inspector in the pool at all (this file is the only one registering inspector keys).
    await money().execute('DELETE FROM inspector_keys');
    const [operator, provider] = await Promise.all([admin(), signUp(['provider'])]);
    const node = await join(provider);
    const pool0 = await balanceOf(POOL_ID);
    const challengeId = await passIdentity(operator, node);
    const inspectionId = await inspectionOfChallenge(challengeId);
    expect(await assignmentRows(inspectionId)).toEqual([]);
    expect(await inspectionRow(inspectionId)).toMatchObject({ status: 'decided', outcome: 'pass', basis: 'recomputation', majority: null });
    expect((await inspectionRow(inspectionId)).settled_at).not.toBeNull();
    const report = await verifiedInspectionReport(inspectionId);
    expect(report).toMatchObject({ inspection_id: inspectionId, kind: 'identity', decoy: false, outcome: 'pass', majority: null, verdicts: [] });
    expect(report.draw).toMatchObject({ pool: [], panel: [] });
    const released = await call(`/v1/challenges/${challengeId}/report`);
    expect(released.status).toBe(200);
    expect((await json(released)).report).toMatchObject({ challenge_id: challengeId, status: 'passed' });
    expect((await json(await call(`/v1/nodes/${node.nodeId}/inspections`))).data.map((x: { id: string }) => x.id)).toEqual([inspectionId]);
    expect(await balanceOf(POOL_ID)).toBe(pool0);
  });
});
