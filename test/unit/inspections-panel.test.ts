// The inspectors' pure parts: the seeded, bond-weighted draw; verdict commitments; decoys that
// an honest checker tells apart only by doing the work; and the transcript check itself, on an
// honest CPU-solver answer and on tampered ones.
import { createHash, generateKeyPairSync, sign as edSign, verify as edVerify, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCpuSolver } from '../../runner/src/inspections/cpu-solver.ts';
import type { CapacityChallenge, OpeningRequest } from '../../src/contracts/inspections.ts';
import { COMMITMENT_DOMAIN, commitmentFields } from '../../src/contracts/inspections.ts';
import type { Transcript, Verdict } from '../../src/contracts/inspector-verdicts.ts';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { buildDecoyTranscript } from '../../src/inspections/decoys.ts';
import { assignmentResult, drawPanel, drawSeed, majority, payConfig, verdictCommitment, type Candidate } from '../../src/inspections/panel.ts';
import type { Sha256 } from '../../src/inspections/sha256.ts';
import { checkTranscript, confirmEvidence, type VerifySignature } from '../../src/inspections/transcript-check.ts';
import { multiply } from '../../src/inspections/matrices.ts';
import { openingPositions } from '../../src/inspections/openings.ts';
import { fromHex } from '../../src/inspections/encoding.ts';

const sha256: Sha256 = async (data) => new Uint8Array(createHash('sha256').update(data).digest());
const hex32 = (label: string) => createHash('sha256').update(label).digest('hex');
const MICRO = 1_000_000n;
const DEADLINE = '2026-12-07T03:00:00.000Z';

function nodeKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x!;
  return { publicKey: raw, sign: async (message: Uint8Array) => edSign(null, message, privateKey).toString('base64url') };
}

const verify: VerifySignature = async (publicKey, message, signature) => {
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
    return edVerify(null, message, key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
};

let randomState = 7;
const random = () => ((randomState = (randomState * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
const deps = (own = 8) => ({ sha256, verify, random, ownEntriesPerGpu: own });
const noLeases: Transcript['order_processing'] = { at: 0, provision_timeout_ms: 120_000, fee_bps: 500, leases: [] };

function challengeFor(n: number, gpus: number, label: string): { challenge: CapacityChallenge; request: OpeningRequest } {
  const challenge: CapacityChallenge = { kind: 'capacity', challenge_id: `chl_${label}`, seed: hex32(label), n, gpu_count: gpus, leaf_size: 64, deadline: DEADLINE };
  return { challenge, request: { challenge_id: challenge.challenge_id, open_seed: hex32(`open-${label}`), count: 16, deadline: DEADLINE } };
}

/** An honest node's transcript, answered by the reference CPU solver and signed by its key (or a product the test bends). */
async function honestTranscript(n: number, gpus: number, label: string, bend?: (c: Int32Array, gpu: number) => void): Promise<Transcript> {
  const key = nodeKey();
  const { challenge, request } = challengeFor(n, gpus, label);
  const solver = createCpuSolver(bend ? { product: (a, b, size, gpu) => { const c = multiply(a, b, size); bend(c, gpu); return c; } } : {});
  const commitment = await solver.commit(challenge);
  const openings = await solver.open(request);
  const signature = await key.sign(signedMessage(COMMITMENT_DOMAIN, commitmentFields('node_honest', challenge, commitment)));
  return {
    inspection_id: 'insp_1',
    kind: 'capacity',
    node_id: 'node_honest',
    node_public_key: key.publicKey,
    challenge: challenge as unknown as Record<string, unknown>,
    registered_gpu_uuids: [],
    identity: null,
    capacity: { commitment, signature, opening_request: request, openings },
    order_processing: noLeases,
  };
}

async function decoy(expect: 'pass' | 'fail', label: string): Promise<Transcript> {
  const key = nodeKey();
  const { challenge, request } = challengeFor(48, 2, label);
  return buildDecoyTranscript(
    { inspectionId: 'insp_decoy', nodeId: 'node_decoy', nodePublicKey: key.publicKey, challenge, request, expect, order: noLeases },
    { sha256, sign: key.sign, randomBytes: (length) => new Uint8Array(createHash('sha256').update(`${label}-${random()}`).digest()).slice(0, length), random },
  );
}

describe('the transcript check', () => {
  it('passes an honest answer, its own entries included', async () => {
    const result = await checkTranscript(await honestTranscript(32, 2, 'honest'), deps());
    expect(result).toMatchObject({ verdict: 'pass', reasons: [] });
    expect(result.entriesChecked).toBe(2 * 16 + 2 * 8);
  });

  it('fails a commitment signed by another key, or over other roots', async () => {
    const t = await honestTranscript(16, 1, 'forged');
    const other = { ...t, node_public_key: nodeKey().publicKey };
    expect((await checkTranscript(other, deps())).reasons).toEqual(["the commitment's signature does not verify with the node's key"]);
    const roots = [...(t.capacity!.commitment as { roots: string[] }).roots];
    roots[0] = hex32('other root');
    const moved = { ...t, capacity: { ...t.capacity!, commitment: { ...(t.capacity!.commitment as object), roots } } };
    expect((await checkTranscript(moved, deps())).verdict).toBe('fail');
  });

  it('fails an answer with no openings, and a malformed one, without throwing', async () => {
    const t = await honestTranscript(16, 1, 'no-openings');
    expect((await checkTranscript({ ...t, capacity: { ...t.capacity!, openings: null } }, deps())).reasons).toEqual(['no openings']);
    expect((await checkTranscript({ ...t, challenge: { kind: 'capacity' } }, deps())).reasons).toEqual(['the challenge is malformed']);
  });
});

describe('evidence inside the opened leaves', () => {
  /** A node that computed the requested positions right but another entry of the first opened leaf wrong. */
  async function bentTranscript() {
    const n = 32;
    const { challenge, request } = challengeFor(n, 1, 'bent');
    const positions = await openingPositions(fromHex(challenge.seed)!, fromHex(request.open_seed)!, 0, n, request.count, sha256);
    const opened = new Set(positions.map((p) => p.row * n + p.col));
    const leaf = Math.floor(opened.values().next().value! / 64);
    let flat = leaf * 64;
    while (opened.has(flat)) flat++;
    const wrong = { gpu: 0, row: Math.floor(flat / n), col: flat % n };
    const t = await honestTranscript(n, 1, 'bent', (c) => void (c[flat] = c[flat]! + 7));
    return { t, wrong, rightInLeaf: { gpu: 0, row: Math.floor((leaf * 64 + 63) / n), col: (leaf * 64 + 63) % n }, opened, flat };
  }

  it("passes the platform's openings, but an inspector's own pick finds the wrong entry, and the evidence holds", async () => {
    const { t, wrong } = await bentTranscript();
    expect((await checkTranscript(t, deps(0))).verdict).toBe('pass');
    // Enough own picks to hit the one wrong entry among the leaf's 64.
    const careful = await checkTranscript(t, deps(2_000));
    expect(careful.verdict).toBe('fail');
    expect(careful.evidence).toEqual([wrong]);
    expect(await confirmEvidence(t, careful.evidence, sha256)).toEqual([wrong]);
  });

  it('drops evidence that does not hold: a right entry, one outside every opened leaf, one out of range', async () => {
    const { t, wrong, rightInLeaf, opened, flat } = await bentTranscript();
    const right = rightInLeaf.row * 32 + rightInLeaf.col === flat ? { ...rightInLeaf, col: rightInLeaf.col - 1 } : rightInLeaf;
    const openedLeaves = new Set([...opened].map((f) => Math.floor(f / 64)));
    const outside = [...Array(16).keys()].find((leaf) => !openedLeaves.has(leaf))!;
    const claims = [right, { gpu: 0, row: Math.floor((outside * 64) / 32), col: 0 }, { gpu: 3, row: 0, col: 0 }, { gpu: 0, row: 99, col: 0 }];
    expect(await confirmEvidence(t, claims, sha256)).toEqual([]);
    expect(await confirmEvidence(t, [...claims, wrong], sha256)).toEqual([wrong]);
  });
});

describe('decoys', () => {
  it('a known-good decoy passes every check, own entries inside the opened leaves included', async () => {
    for (const label of ['good-1', 'good-2', 'good-3']) {
      const result = await checkTranscript(await decoy('pass', label), deps(32));
      expect(result, label).toMatchObject({ verdict: 'pass', reasons: [] });
    }
  });

  it('a known-bad decoy fails on a wrong value under a valid path, as a node that skipped work does', async () => {
    for (const label of ['bad-1', 'bad-2', 'bad-3']) {
      const result = await checkTranscript(await decoy('fail', label), deps(0));
      expect(result.verdict, label).toBe('fail');
      expect(result.reasons, label).toHaveLength(1);
      expect(result.reasons[0], label).toMatch(/^GPU \d opening \d+: C\[\d+\]\[\d+\] is -?\d+, not -?\d+$/);
    }
  });

  it('has the shape of an honest transcript: the same keys, path lengths and leaf sizes', async () => {
    const fake = await decoy('pass', 'shape');
    const real = await honestTranscript(48, 2, 'shape-real');
    const shape = (t: Transcript) => {
      const o = t.capacity!.openings as { gpus: Array<Array<{ leaf: string; path: string[] }>> };
      return { keys: Object.keys(t).sort(), gpus: o.gpus.length, opened: o.gpus.map((g) => g.length), leaf: o.gpus[0]![0]!.leaf.length };
    };
    expect(shape(fake)).toEqual(shape(real));
  });
});

describe('the draw', () => {
  const pool: Candidate[] = [
    { accountId: 'acc_a', active: 1_000n * MICRO },
    { accountId: 'acc_b', active: 5_000n * MICRO },
    { accountId: 'acc_c', active: 50_000n * MICRO },
    { accountId: 'acc_d', active: 0n },
    { accountId: 'acc_e', active: 2_000n * MICRO },
  ];
  const cap = 10_000n * MICRO;

  it('is a function of the seed and the pool alone, in any order, and never draws a weight of zero', async () => {
    const seed = hex32('seed');
    const one = await drawPanel(seed, pool, 3, cap, sha256);
    const two = await drawPanel(seed, [...pool].reverse(), 3, cap, sha256);
    expect(one).toEqual(two);
    expect(new Set(one.map((d) => d.accountId)).size).toBe(3);
    expect(one.map((d) => d.accountId)).not.toContain('acc_d');
    expect(await drawPanel(seed, pool, 9, cap, sha256)).toHaveLength(4);
    expect(await drawPanel(seed, [], 3, cap, sha256)).toEqual([]);
  });

  it('draws first in proportion to the capped bond', async () => {
    const first = new Map<string, number>();
    const runs = 3_000;
    for (let i = 0; i < runs; i++) {
      const [d] = await drawPanel(hex32(`s${i}`), pool, 1, cap, sha256);
      first.set(d!.accountId, (first.get(d!.accountId) ?? 0) + 1);
    }
    // Weights 1k, 5k, 10k (50k capped), 2k of 18k.
    const share = (id: string) => (first.get(id) ?? 0) / runs;
    expect(share('acc_c')).toBeGreaterThan(0.5);
    expect(share('acc_c')).toBeLessThan(0.62);
    expect(share('acc_b')).toBeGreaterThan(0.22);
    expect(share('acc_b')).toBeLessThan(0.34);
    expect(share('acc_a')).toBeGreaterThan(0.03);
    expect(share('acc_a')).toBeLessThan(0.09);
  });

  it('takes every input into its seed', async () => {
    const base = { inspectionId: 'insp_1', challengeSeed: hex32('c'), nodeSignature: 'sig', platformRandom: hex32('p') };
    const seeds = new Set([
      await drawSeed(base, sha256),
      await drawSeed({ ...base, inspectionId: 'insp_2' }, sha256),
      await drawSeed({ ...base, challengeSeed: hex32('d') }, sha256),
      await drawSeed({ ...base, nodeSignature: 'sih' }, sha256),
      await drawSeed({ ...base, platformRandom: hex32('q') }, sha256),
    ]);
    expect(seeds.size).toBe(5);
  });
});

describe('verdicts', () => {
  const verdict: Verdict = { inspection_id: 'insp_1', inspector_id: 'acc_a', verdict: 'pass', reasons: [], entries_checked: 48, leases_checked: 0, lease_findings: 0 };

  it('commit to the salt and every field of the verdict', async () => {
    const salt = hex32('salt');
    const c = await verdictCommitment(salt, verdict, sha256);
    expect(c).toMatch(/^[0-9a-f]{64}$/);
    expect(await verdictCommitment(salt, verdict, sha256)).toBe(c);
    expect(await verdictCommitment(hex32('other'), verdict, sha256)).not.toBe(c);
    expect(await verdictCommitment(salt, { ...verdict, verdict: 'fail' }, sha256)).not.toBe(c);
    expect(await verdictCommitment(salt, { ...verdict, reasons: ['x'] }, sha256)).not.toBe(c);
    expect(await verdictCommitment(salt, { ...verdict, entries_checked: 47 }, sha256)).not.toBe(c);
    await expect(verdictCommitment('00', verdict, sha256)).rejects.toThrow(TypeError);
  });

  it('take the majority, none on a tie, and pay only a revealed verdict that matches', () => {
    expect(majority(['pass', 'pass', 'fail'])).toBe('pass');
    expect(majority(['fail'])).toBe('fail');
    expect(majority(['pass', 'fail'])).toBeNull();
    expect(majority([])).toBeNull();
    expect(assignmentResult('pass', 'pass')).toBe('paid');
    expect(assignmentResult('pass', 'fail')).toBe('wrong');
    expect(assignmentResult(null, 'pass')).toBe('missed');
  });

  it('read their configuration with defaults for what is unset or invalid', () => {
    expect(payConfig({})).toMatchObject({ panelSize: 3, reward: MICRO, wrongSlash: 50n * MICRO, missSlash: 5n * MICRO, decoyPpm: 100_000 });
    expect(payConfig({ INSPECTION_N: '2', INSPECTION_REWARD: '0.25', INSPECTION_DECOY_PPM: '0' })).toMatchObject({ panelSize: 5, reward: 250_000n, decoyPpm: 0 });
    expect(payConfig({ INSPECTION_N: '-1', INSPECTION_REWARD: 'lots' })).toMatchObject({ panelSize: 3, reward: MICRO });
  });
});
