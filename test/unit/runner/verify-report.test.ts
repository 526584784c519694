// `verify-report` against reports built and signed here exactly as the platform does (its key
// ring, buildReport, signReport), with a real capacity answer from the CPU solver and a real
// node key. One changed byte anywhere that matters must turn exit 0 into exit 1, naming the check.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey, signNodeMessage } from '../../../runner/src/identity.ts';
import { createCpuSolver } from '../../../runner/src/inspections/cpu-solver.ts';
import { verifyReport } from '../../../runner/src/verify-report.ts';
import { keyRing, type KeyRing } from '../../../src/auth/tokens.ts';
import {
  COMMITMENT_DOMAIN,
  commitmentFields,
  IDENTITY_DOMAIN,
  identityFields,
  type CapacityChallenge,
  type IdentityAnswer,
  type OpeningRequest,
} from '../../../src/contracts/inspections.ts';
import { signedMessage } from '../../../src/contracts/signed-message.ts';
import type { nodeChallenges } from '../../../src/db/schema.ts';
import { buildReport, signReport, type ChallengeReport } from '../../../src/inspections/report.ts';
import type { inspectionAssignments, inspections } from '../../../src/db/schema.ts';
import { VERDICT_DOMAIN, verdictFields, type Transcript, type Verdict } from '../../../src/contracts/inspector-verdicts.ts';
import { buildDecoyTranscript } from '../../../src/inspections/decoys.ts';
import { buildInspectionReport, signInspectionReport, type InspectionReport } from '../../../src/inspections/inspection-report.ts';
import { assignmentResult, drawPanel, drawSeed, majority, verdictCommitment } from '../../../src/inspections/panel.ts';
import { tempDir } from './helpers.ts';

type ChallengeRow = typeof nodeChallenges.$inferSelect;
const hex = () => crypto.randomBytes(32).toString('hex');
const later = new Date(Date.now() + 60_000).toISOString();
const node = generateNodeKey();
const NODE_ID = 'node_reported';

let ring: KeyRing;
let dir: string;
let jwksFile: string;
let capacity: ChallengeReport;
let identity: ChallengeReport;

function row(o: Partial<ChallengeRow>): ChallengeRow {
  return {
    id: 'chl_x', nodeId: NODE_ID, kind: 'capacity', challenge: {}, status: 'passed', issuedAt: 1_700_000_000_000, deadline: 1_700_000_060_000,
    commitment: null, commitmentSignature: null, openSeed: null, openingRequest: null, openDeadline: null, answer: null, answerSignature: null,
    openings: null, nodePublicKey: node.publicKey, reasons: [], decision: 'dcs_x', decidedAt: 1_700_000_030_000, ...o,
  };
}

beforeAll(async () => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  ring = await keyRing(JSON.stringify([{ ...(await exportJWK(privateKey)), kid: 'report-key-1' }]));
  dir = tempDir();
  jwksFile = path.join(dir, 'jwks.json');
  fs.writeFileSync(jwksFile, JSON.stringify(ring.jwks));

  const ch: CapacityChallenge = { kind: 'capacity', challenge_id: 'chl_capacity', seed: hex(), n: 64, gpu_count: 1, leaf_size: 256, deadline: later };
  const solver = createCpuSolver();
  const commitment = await solver.commit(ch);
  const request: OpeningRequest = { challenge_id: ch.challenge_id, open_seed: hex(), count: 8, deadline: later };
  const openings = await solver.open(request);
  const commitmentSignature = signNodeMessage(node.privateKey, signedMessage(COMMITMENT_DOMAIN, commitmentFields(NODE_ID, ch, commitment)));
  capacity = buildReport(row({ id: ch.challenge_id, challenge: ch, commitment, commitmentSignature, openingRequest: request, openings: openings as unknown as Record<string, unknown> }), null)!;

  const nonce = hex();
  const answer: IdentityAnswer = { challenge_id: 'chl_identity', nonce, gpu_uuids: [`GPU-${crypto.randomUUID()}`], driver: '550.54.15', at: later };
  const answerSignature = signNodeMessage(node.privateKey, signedMessage(IDENTITY_DOMAIN, identityFields(NODE_ID, answer)));
  identity = buildReport(row({ id: 'chl_identity', kind: 'identity', challenge: { kind: 'identity', challenge_id: 'chl_identity', nonce, deadline: later }, answer, answerSignature }), null)!;
});

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
/** Flips one character of a hex or base64url string (the first, so no padding bit hides it). */
const flip = (s: string) => (s[0] === 'a' ? 'b' : 'a') + s.slice(1);

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await verifyReport(args, { env: {}, configPath: path.join(dir, 'none.json'), out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Writes `content` (an API answer {report, jws} unless a string) and verifies it with the test JWKS. */
async function check(content: unknown, jwks = jwksFile) {
  const file = path.join(dir, `${crypto.randomUUID()}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return run([file, '--jwks', jwks]);
}
const signed = async (report: ChallengeReport) => ({ report, jws: await signReport(ring, report) });

describe('verify-report', () => {
  it('holds for an honest capacity report and an honest identity report (exit 0)', async () => {
    const cap = await check(await signed(capacity));
    expect(cap.code).toBe(0);
    expect(cap.out).toContain('challenge chl_capacity (capacity) of node node_reported: passed');
    expect(cap.out).toMatch(/✓ openings: re-checked: all 8 openings per GPU/);
    expect(cap.out).toContain('the report holds');
    const id = await check(await signed(identity));
    expect(id.code).toBe(0);
    expect(id.out).toContain('✓ decision: passed: the answered nonce is the challenge’s');
  });

  it('holds for an honest failed capacity report: the openings re-check as wrong, as it says', async () => {
    const ch: CapacityChallenge = { kind: 'capacity', challenge_id: 'chl_failed', seed: hex(), n: 64, gpu_count: 1, leaf_size: 256, deadline: later };
    const cheat = createCpuSolver({ product: (_a, _b, n) => new Int32Array(n * n).fill(7) });
    const commitment = await cheat.commit(ch);
    const request: OpeningRequest = { challenge_id: ch.challenge_id, open_seed: hex(), count: 8, deadline: later };
    const openings = (await cheat.open(request)) as unknown as Record<string, unknown>;
    const commitmentSignature = signNodeMessage(node.privateKey, signedMessage(COMMITMENT_DOMAIN, commitmentFields(NODE_ID, ch, commitment)));
    const failed = buildReport(row({ id: ch.challenge_id, challenge: ch, status: 'failed', reasons: ['GPU 0 opening 0: C[0][0] is 7, not 12'], commitment, commitmentSignature, openingRequest: request, openings }), null)!;
    const res = await check(await signed(failed));
    expect(res.code).toBe(0);
    expect(res.out).toContain(': failed, decided');
    expect(res.out).toMatch(/✓ openings: re-checked: they do not verify \(GPU 0: value/);
    const flipped = await check(await signed({ ...failed, status: 'passed', reasons: [] }));
    expect(flipped.code).toBe(1);
    expect(flipped.out).toContain('✗ openings: the report says passed, but the openings do not verify');
  });

  it('recovers the report from a bare JWS and prints JSON with --json', async () => {
    const { jws } = await signed(capacity);
    const file = path.join(dir, 'bare.jws');
    fs.writeFileSync(file, `${jws}\n`);
    const res = await run([file, '--jwks', jwksFile, '--json']);
    expect(res.code).toBe(0);
    const parsed = JSON.parse(res.out);
    expect(parsed).toMatchObject({ ok: true, challenge_id: 'chl_capacity', kind: 'capacity', status: 'passed' });
    expect(parsed.checks.map((c: { name: string }) => c.name)).toEqual(['platform signature', 'signed content', 'node signature', 'openings']);
  });

  it('fails a report changed after signing: a root, a leaf, the status (exit 1, signed content)', async () => {
    const good = await signed(capacity);
    const edits: ((r: any) => void)[] = [(r) => (r.capacity.commitment.roots[0] = flip(r.capacity.commitment.roots[0])), (r) => (r.capacity.openings.gpus[0][0].leaf = flip(r.capacity.openings.gpus[0][0].leaf)), (r) => (r.status = 'failed')];
    for (const edit of edits) {
      const changed = clone(good);
      edit(changed.report);
      const res = await check(changed);
      expect(res.code).toBe(1);
      expect(res.out).toContain('✗ signed content: the report differs from what the platform signed');
    }
  });

  it('fails a changed platform signature, and a key id the JWKS does not hold', async () => {
    const good = await signed(capacity);
    const [h, p, s] = good.jws.split('.');
    const res = await check({ ...good, jws: `${h}.${p}.${flip(s!)}` });
    expect(res.code).toBe(1);
    expect(res.out).toContain('✗ platform signature: does not verify with key report-key-1');
    const other = path.join(dir, 'other-jwks.json');
    fs.writeFileSync(other, JSON.stringify({ keys: ring.jwks.keys.map((k) => ({ ...k, kid: 'someone-else' })) }));
    const unknown = await check(good, other);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain('✗ platform signature: no key with kid "report-key-1" in the JWKS');
  });

  // Even a report the platform signed must hold up: a signed lie is caught by the node's own signatures and the openings.
  it('fails a signed report whose root, node signature, leaf or verdict is not what the node sent', async () => {
    const cases: [string, (r: any) => void, string][] = [
      ['root', (r) => (r.capacity.commitment.roots[0] = flip(r.capacity.commitment.roots[0])), "✗ node signature: the commitment's signature does not verify"],
      ['signature', (r) => (r.capacity.signature = flip(r.capacity.signature)), "✗ node signature: the commitment's signature does not verify"],
      ['leaf', (r) => (r.capacity.openings.gpus[0][0].leaf = flip(r.capacity.openings.gpus[0][0].leaf)), '✗ openings: the report says passed, but the openings do not verify (GPU 0: path'],
      ['status', (r) => (r.status = 'failed'), '✗ openings: the report says failed, but every opening verifies'],
    ];
    for (const [, edit, expected] of cases) {
      const lie = clone(capacity);
      edit(lie);
      const res = await check(await signed(lie));
      expect(res.code).toBe(1);
      expect(res.out).toContain(expected);
    }
    const nonce = clone(identity) as any;
    nonce.identity.answer.nonce = flip(nonce.identity.answer.nonce);
    expect((await check(await signed(nonce))).out).toContain("✗ node signature: the answer's signature does not verify");
  });

  it('fails a malformed file with a clear message (exit 1); a missing file or argument is a usage error (exit 2)', async () => {
    const garbage = await check('this is not a report');
    expect(garbage.code).toBe(1);
    expect(garbage.out).toContain('✗ input: not a challenge or inspection report');
    const missing = await run([path.join(dir, 'nothing-here.json'), '--jwks', jwksFile]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no such file, URL, challenge or inspection id');
    expect((await run([])).code).toBe(2);
    const noKeys = await run([path.join(dir, 'jwks.json')]);
    expect(noKeys.code).toBe(2);
    expect(noKeys.err).toContain('pass --jwks');
  });
});

// ── Inspection reports ──────────────────────────────────────────────────────────────
// Built with the platform's own buildInspectionReport and signInspectionReport: a real
// CPU-solver transcript, a real seeded draw over a pool, and verdicts committed and signed by
// each inspector's own Ed25519 key. The same key ring signs, with typ gridlease-inspection-report.

type InspectionRow = typeof inspections.$inferSelect;
type AssignmentRow = typeof inspectionAssignments.$inferSelect;
const nodeSha = async (data: Uint8Array) => new Uint8Array(crypto.createHash('sha256').update(data).digest());
const INSPECTION = 'insp_report';
const POOL = ['acc_a', 'acc_b', 'acc_c', 'acc_d', 'acc_e'];
const inspectorKeys = new Map(POOL.map((id) => [id, generateNodeKey()]));

async function inspectionTranscript(id: string): Promise<Transcript> {
  const ch: CapacityChallenge = { kind: 'capacity', challenge_id: `chl_${id}`, seed: hex(), n: 64, gpu_count: 2, leaf_size: 256, deadline: later };
  const solver = createCpuSolver();
  const commitment = await solver.commit(ch);
  const request: OpeningRequest = { challenge_id: ch.challenge_id, open_seed: hex(), count: 8, deadline: later };
  const openings = await solver.open(request);
  return {
    inspection_id: id,
    kind: 'capacity',
    node_id: NODE_ID,
    node_public_key: node.publicKey,
    challenge: ch as unknown as Record<string, unknown>,
    registered_gpu_uuids: [],
    identity: null,
    capacity: { commitment, signature: signNodeMessage(node.privateKey, signedMessage(COMMITMENT_DOMAIN, commitmentFields(NODE_ID, ch, commitment))), opening_request: request, openings },
    order_processing: { at: 1_700_000_030_000, provision_timeout_ms: 120_000, fee_bps: 500, leases: [] },
  };
}

/** A decided inspection as the Worker stores it: the draw over POOL, and each panel member's revealed verdict (`votes` overrides some). */
async function inspectionReport(
  transcript: Transcript,
  o: { outcome?: 'pass' | 'fail'; decoy?: boolean; votes?: Record<number, 'pass' | 'fail' | null> } = {},
): Promise<InspectionReport> {
  const id = transcript.inspection_id;
  const outcome = o.outcome ?? 'pass';
  const inputs = { inspectionId: id, challengeSeed: String(transcript.challenge.seed), nodeSignature: transcript.capacity!.signature!, platformRandom: hex() };
  const seed = await drawSeed(inputs, nodeSha);
  const pool = POOL.map((accountId, i) => ({ accountId, active: BigInt(1_000 + 3_000 * i) * 1_000_000n }));
  const cap = 10_000n * 1_000_000n;
  const panel = await drawPanel(seed, pool, 3, cap, nodeSha);
  const draw = {
    seed,
    inputs: { inspection_id: id, challenge_seed: inputs.challengeSeed, node_signature: inputs.nodeSignature, platform_random: inputs.platformRandom },
    size: 3,
    weight_cap: cap.toString(),
    pool: pool.map((c) => ({ account_id: c.accountId, active: c.active.toString() })),
    panel: panel.map((d) => d.accountId),
  };
  const votes: ('pass' | 'fail' | null)[] = [];
  const assignments: AssignmentRow[] = [];
  for (const [i, d] of panel.entries()) {
    const vote = o.votes && i in o.votes ? o.votes[i]! : outcome;
    votes.push(vote);
    const base: AssignmentRow = {
      inspectionId: id, accountId: d.accountId, weight: Number(d.weight), commitment: null, committedAt: null, verdict: null, salt: null, signature: null,
      publicKey: null, revealedAt: null, result: assignmentResult(vote, outcome), amount: vote === outcome ? 1_000_000 : vote === null ? 5_000_000 : 50_000_000, transactionId: null, settledAt: 1_700_000_090_000,
    };
    if (vote === null) {
      assignments.push(base);
      continue;
    }
    const verdict: Verdict = { inspection_id: id, inspector_id: d.accountId, verdict: vote, reasons: vote === 'fail' ? ['GPU 0 opening 1: C[1][2] is 7, not 12'] : [], entries_checked: 48, leases_checked: 0, lease_findings: 0 };
    const salt = hex();
    const key = inspectorKeys.get(d.accountId)!;
    assignments.push({
      ...base,
      commitment: await verdictCommitment(salt, verdict, nodeSha),
      committedAt: 1_700_000_040_000,
      verdict: verdict as unknown as Record<string, unknown>,
      salt,
      signature: signNodeMessage(key.privateKey, signedMessage(VERDICT_DOMAIN, verdictFields(verdict))),
      publicKey: key.publicKey,
      revealedAt: 1_700_000_050_000,
    });
  }
  const row: InspectionRow = {
    id, challengeId: o.decoy ? null : String(transcript.challenge.challenge_id), nodeId: NODE_ID, kind: 'capacity', decoy: o.decoy ?? false, expect: o.decoy ? outcome : null,
    transcript: transcript as unknown as Record<string, unknown>, draw, status: 'decided', commitDeadline: 1_700_000_045_000, revealDeadline: 1_700_000_060_000,
    outcome, basis: o.decoy ? 'decoy' : 'recomputation', majority: majority(votes.filter((v): v is 'pass' | 'fail' => v !== null)), reasons: [],
    createdAt: 1_700_000_031_000, decidedAt: 1_700_000_060_000, settledAt: 1_700_000_090_000,
  };
  const challenge = o.decoy ? null : { id: row.challengeId!, status: outcome === 'pass' ? 'passed' : 'failed', reasons: [], issuedAt: 1_700_000_000_000, decidedAt: 1_700_000_030_000 };
  return buildInspectionReport(row, assignments, challenge)!;
}

const signedInspection = async (report: InspectionReport) => ({ report, jws: await signInspectionReport(ring, report) });

describe('verify-report: inspection reports', () => {
  let transcript: Transcript;
  let good: InspectionReport;
  beforeAll(async () => {
    transcript = await inspectionTranscript(INSPECTION);
    good = await inspectionReport(transcript, { votes: { 2: 'fail' } });
  });

  it('holds for an honest inspection: signature, transcript recomputed, draw, panel, every verdict, majority (exit 0)', async () => {
    const res = await check(await signedInspection(good));
    expect(res.code, res.out).toBe(0);
    const lines = res.out.split('\n');
    expect(lines[0]).toBe(`inspection ${INSPECTION} (capacity) of node ${NODE_ID}: pass by recomputation, majority pass, decided 2023-11-14T22:14:20.000Z`);
    expect(res.out).toContain('✓ platform signature: ES256, key report-key-1');
    expect(res.out).toMatch(/✓ transcript: recomputed \(48 entries, own picks included; 0 leases\): pass, as the outcome says/);
    expect(res.out).toMatch(/✓ draw: seed = SHA-256 of its inputs; 3 of 5 drawn/);
    expect(res.out).toContain("✓ panel: the 3 verdicts are the panel's, at their drawn weights");
    const failing = good.verdicts.find((v) => (v.verdict as Verdict).verdict === 'fail')!;
    expect(res.out).toContain(`✓ verdict ${failing.inspector_id}: fail: matches its commitment, signed by its key; wrong 50.00 GRID`);
    expect(res.out).toContain('✓ majority: pass of 3 revealed');
    expect(res.out).toContain('the report holds');
    expect(res.out).not.toContain('✗');
  });

  it('prints JSON with --json, and fetches an insp_ id from {api}/v1/inspections/{id}', async () => {
    const body = JSON.stringify(await signedInspection(good));
    const seen: string[] = [];
    const fakeFetch = (async (url: string) => {
      seen.push(String(url));
      return new Response(String(url).endsWith('/.well-known/jwks.json') ? JSON.stringify(ring.jwks) : body, { status: 200 });
    }) as unknown as typeof fetch;
    const out: string[] = [];
    const code = await verifyReport([INSPECTION, '--api', 'https://api.example', '--json'], { env: {}, configPath: path.join(dir, 'none.json'), out: (l) => out.push(l), err: () => {}, fetch: fakeFetch });
    expect(code).toBe(0);
    expect(seen).toEqual([`https://api.example/v1/inspections/${INSPECTION}`, 'https://api.example/.well-known/jwks.json']);
    const parsed = JSON.parse(out.join('\n'));
    expect(parsed).toMatchObject({ ok: true, inspection_id: INSPECTION, kind: 'capacity', decoy: false, outcome: 'pass' });
    expect(parsed.checks.map((c: { name: string }) => c.name)).toEqual(['platform signature', 'signed content', 'transcript', 'draw', 'panel', ...good.verdicts.map((v) => `verdict ${v.inspector_id}`), 'majority']);
  });

  it('fails when one byte of the report changed after signing, anywhere (exit 1, signed content)', async () => {
    const signedGood = await signedInspection(good);
    const edits: ((r: any) => void)[] = [
      (r) => (r.transcript.capacity.openings.gpus[1][0].leaf = flip(r.transcript.capacity.openings.gpus[1][0].leaf)),
      (r) => (r.draw.seed = flip(r.draw.seed)),
      (r) => (r.draw.pool[0].active = `${r.draw.pool[0].active}0`),
      (r) => (r.verdicts[0].salt = flip(r.verdicts[0].salt)),
      (r) => (r.verdicts[1].verdict.entries_checked += 1),
      (r) => (r.outcome = 'fail'),
      (r) => (r.decided_at = r.decided_at.replace('2023', '2024')),
    ];
    for (const edit of edits) {
      const changed = clone(signedGood);
      edit(changed.report);
      const res = await check(changed);
      expect(res.code).toBe(1);
      expect(res.out).toContain('✗ signed content: the report differs from what the platform signed');
    }
    // The JWS alone (its payload) still holds.
    const file = path.join(dir, 'inspection.jws');
    fs.writeFileSync(file, signedGood.jws);
    expect((await run([file, '--jwks', jwksFile])).code).toBe(0);
  });

  // Signed by the platform, but not true: each is caught by recomputation.
  it('fails a signed report whose verdict commitment, signature or result is wrong', async () => {
    const wrongCommitment = clone(good);
    wrongCommitment.verdicts[0]!.commitment = flip(wrongCommitment.verdicts[0]!.commitment!);
    const res = await check(await signedInspection(wrongCommitment));
    expect(res.code).toBe(1);
    expect(res.out).toContain(`✗ verdict ${good.verdicts[0]!.inspector_id}: the verdict and salt do not hash to its commitment`);

    const otherVerdict = clone(good);
    const v1 = otherVerdict.verdicts[1]!.verdict as any;
    v1.verdict = v1.verdict === 'pass' ? 'fail' : 'pass';
    expect((await check(await signedInspection(otherVerdict))).out).toContain(`✗ verdict ${good.verdicts[1]!.inspector_id}: the verdict and salt do not hash to its commitment`);

    const otherKey = clone(good);
    otherKey.verdicts[0]!.public_key = generateNodeKey().publicKey;
    expect((await check(await signedInspection(otherKey))).out).toContain(`✗ verdict ${good.verdicts[0]!.inspector_id}: its signature does not verify with the inspector's key`);

    const paidWrong = clone(good);
    const failing = paidWrong.verdicts.find((v) => (v.verdict as Verdict).verdict === 'fail')!;
    failing.result = 'paid';
    expect((await check(await signedInspection(paidWrong))).out).toContain(`✗ verdict ${failing.inspector_id}: fail against the outcome pass is wrong, but the result is paid`);

    const majorityLie = clone(good);
    majorityLie.majority = 'fail';
    expect((await check(await signedInspection(majorityLie))).out).toContain("✗ majority: the revealed verdicts' majority is pass, not fail");
  });

  it('fails a signed report whose panel does not match the draw', async () => {
    const otherPanel = clone(good);
    const draw = otherPanel.draw as { panel: string[] };
    const outsider = POOL.find((id) => !draw.panel.includes(id))!;
    draw.panel = [outsider, ...draw.panel.slice(1)];
    const res = await check(await signedInspection(otherPanel));
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/✗ draw: the seed and pool draw \[.*\], not the published \[acc_/);
    expect(res.out).toMatch(/✗ panel: the verdicts are from \[.*\], not the panel/);

    const reordered = clone(good);
    (reordered.draw as { panel: string[] }).panel.reverse();
    expect((await check(await signedInspection(reordered))).out).toContain('✗ draw: the seed and pool draw');

    const reseeded = clone(good);
    (reseeded.draw as { inputs: { platform_random: string } }).inputs.platform_random = hex();
    expect((await check(await signedInspection(reseeded))).out).toContain('✗ draw: SHA-256 of its inputs is not its seed');
  });

  it('fails a signed outcome the transcript does not support, and a cheating transcript passed', async () => {
    const flipped = await inspectionReport(transcript, { outcome: 'fail' });
    const res = await check(await signedInspection(flipped));
    expect(res.code).toBe(1);
    expect(res.out).toContain('✗ transcript: the outcome is fail, but recomputing the transcript gives pass');
    // Signed verdicts, draw and all hold: only the recomputation catches it.
    expect(res.out).toMatch(/✓ draw:/);
  });

  it('a decoy made to fail holds as failed and not as passed; a decoy made to pass holds as passed', async () => {
    const decoyKey = generateNodeKey();
    const make = async (id: string, expect: 'pass' | 'fail') => {
      const challenge: CapacityChallenge = { kind: 'capacity', challenge_id: `chl_${id}`, seed: hex(), n: 64, gpu_count: 2, leaf_size: 256, deadline: later };
      const request: OpeningRequest = { challenge_id: challenge.challenge_id, open_seed: hex(), count: 8, deadline: later };
      const t = await buildDecoyTranscript(
        { inspectionId: id, nodeId: NODE_ID, nodePublicKey: decoyKey.publicKey, challenge, request, expect, order: { at: 0, provision_timeout_ms: 120_000, fee_bps: 500, leases: [] } },
        { sha256: nodeSha, sign: async (m) => signNodeMessage(decoyKey.privateKey, m), randomBytes: (n) => new Uint8Array(crypto.randomBytes(n)), random: Math.random },
      );
      return { ...t, node_public_key: decoyKey.publicKey };
    };
    const bad = await make('insp_decoy_bad', 'fail');
    const failed = await check(await signedInspection(await inspectionReport(bad, { outcome: 'fail', decoy: true })));
    expect(failed.code, failed.out).toBe(0);
    expect(failed.out).toContain('(capacity, decoy)');
    expect(failed.out).toMatch(/✓ transcript: recomputed .*: fail, as the outcome says \(GPU \d opening \d+: C/);
    const lie = await check(await signedInspection(await inspectionReport(bad, { outcome: 'pass', decoy: true })));
    expect(lie.code).toBe(1);
    expect(lie.out).toContain('✗ transcript: the outcome is pass, but recomputing the transcript gives fail');
    const okDecoy = await check(await signedInspection(await inspectionReport(await make('insp_decoy_ok', 'pass'), { outcome: 'pass', decoy: true, votes: { 0: null } })));
    expect(okDecoy.code, okDecoy.out).toBe(0);
    expect(okDecoy.out).toMatch(/✓ verdict acc_\w: none revealed: missed/);
    expect(okDecoy.out).toContain('✓ majority: pass of 2 revealed');
  });
});
