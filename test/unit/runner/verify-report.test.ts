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
    expect(garbage.out).toContain('✗ input: not a challenge report');
    const missing = await run([path.join(dir, 'nothing-here.json'), '--jwks', jwksFile]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no such file, URL or challenge id');
    expect((await run([])).code).toBe(2);
    const noKeys = await run([path.join(dir, 'jwks.json')]);
    expect(noKeys.code).toBe(2);
    expect(noKeys.err).toContain('pass --jwks');
  });
});
