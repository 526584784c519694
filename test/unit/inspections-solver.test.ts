// The capacity challenge end to end: the runner's reference CPU solver commits and opens, and the
// verifier's check (checkCapacityAnswer) accepts honest answers and refuses skipped work, another
// seed or GPU, and tampered openings.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCpuSolver } from '../../runner/src/inspections/cpu-solver.ts';
import { SolverError, type ChallengeSolver } from '../../runner/src/inspections/solver.ts';
import type { CapacityChallenge, OpeningRequest, OpeningsAnswer } from '../../src/contracts/inspections.ts';
import { checkCapacityAnswer } from '../../src/inspections/capacity-wire.ts';
import { fromBase64, fromHex, toBase64, toHex } from '../../src/inspections/encoding.ts';
import { multiply } from '../../src/inspections/matrices.ts';
import { openingPositions } from '../../src/inspections/openings.ts';
import { webCryptoSha256 as sha256, type Sha256 } from '../../src/inspections/sha256.ts';
import { passProbability } from '../../src/inspections/sizing.ts';

const bytes32 = (label: string) => new Uint8Array(createHash('sha256').update(label).digest());
const DEADLINE = '2026-12-07T03:00:00.000Z';

function challengeFor(n: number, gpuCount: number, leafSize = 256, label = `challenge-${n}-${gpuCount}`): CapacityChallenge {
  return { kind: 'capacity', challenge_id: label, seed: toHex(bytes32(label)), n, gpu_count: gpuCount, leaf_size: leafSize, deadline: DEADLINE };
}

const requestFor = (challenge: CapacityChallenge, count = 16, openSeed = bytes32(`open-${challenge.challenge_id}`)): OpeningRequest => ({
  challenge_id: challenge.challenge_id,
  open_seed: toHex(openSeed),
  count,
  deadline: DEADLINE,
});

// node:crypto for the many-run property: Web Crypto in Node costs far more per call.
const nodeSha256: Sha256 = async (data) => new Uint8Array(createHash('sha256').update(data).digest());

async function run(solver: ChallengeSolver, challenge: CapacityChallenge, request = requestFor(challenge), verifierSha256 = sha256) {
  const commitment = await solver.commit(challenge);
  const answer = await solver.open(request);
  const verdict = await checkCapacityAnswer(challenge, request, commitment, answer, verifierSha256);
  return { commitment, answer, verdict };
}

const clone = <T>(value: T): T => structuredClone(value);

describe('an honest CPU solver', () => {
  it.each([
    [64, 1],
    [64, 3],
    [256, 1],
    [256, 3],
  ])('passes a challenge of n = %i on %i GPUs', async (n, gpuCount) => {
    const { commitment, answer, verdict } = await run(createCpuSolver(), challengeFor(n, gpuCount));
    expect(verdict).toEqual({ ok: true, failures: [] });
    expect(commitment.roots).toHaveLength(gpuCount);
    expect(new Set(commitment.roots).size).toBe(gpuCount);
    expect(answer.gpus.map((g) => g.length)).toEqual(Array(gpuCount).fill(16));
  });

  it('passes with a short last leaf (n = 37, leaves of 16 entries) and with 1024-entry leaves', async () => {
    expect((await run(createCpuSolver(), challengeFor(37, 2, 16))).verdict.ok).toBe(true);
    expect((await run(createCpuSolver(), challengeFor(64, 1, 1024))).verdict.ok).toBe(true);
  });

  it('commits to the published roots for seed 00..1f, n = 16, leaves of 16, on two GPUs', async () => {
    const seed = toHex(Uint8Array.from({ length: 32 }, (_, i) => i));
    const commitment = await createCpuSolver().commit({ ...challengeFor(16, 2, 16), challenge_id: 'golden', seed });
    expect(commitment).toEqual({
      challenge_id: 'golden',
      roots: [
        '26a77cc0966055a87d69de07fe9fda08b8b70b1d888d743a16050c513c5aa0e4',
        '1cc7a4e2e8782ba617c05cd7c2c74311dfbccc2c9709fa221e3fb38956af119e',
      ],
    });
  });

  it('gives byte-identical answers on every run, whatever the hash implementation', async () => {
    const challenge = challengeFor(64, 2);
    const first = await run(createCpuSolver(), challenge);
    const second = await run(createCpuSolver({ sha256 }), challenge);
    expect(second.commitment).toEqual(first.commitment);
    expect(second.answer).toEqual(first.answer);
  });

  it('refuses a challenge above its size, an opening it never committed to, and malformed input', async () => {
    const solver = createCpuSolver({ maxN: 128 });
    await expect(solver.commit(challengeFor(256, 1))).rejects.toMatchObject({ code: 'too_large' });
    await expect(solver.open(requestFor(challengeFor(64, 1)))).rejects.toMatchObject({ code: 'unknown_challenge' });
    await expect(solver.commit({ ...challengeFor(64, 1), n: 10 ** 9 })).rejects.toBeInstanceOf(SolverError);
    await expect(solver.open({ ...requestFor(challengeFor(64, 1)), count: 10 ** 6 })).rejects.toMatchObject({ code: 'invalid' });
  });

  it('opens a challenge once: the products are forgotten after the openings', async () => {
    const solver = createCpuSolver();
    const challenge = challengeFor(64, 1);
    await run(solver, challenge);
    await expect(solver.open(requestFor(challenge))).rejects.toMatchObject({ code: 'unknown_challenge' });
  });
});

describe('a dishonest solver', () => {
  it('fails exactly when an opening lands on a skipped row, about (1 − q)^m of the time', async () => {
    // Half the rows are never computed (left zero); 4 openings on one GPU pass with probability 1/16.
    const skipped = (row: number) => row % 2 === 1;
    const lazy = (a: Int8Array, b: Int8Array, n: number) => {
      const c = multiply(a, b, n);
      for (let i = 0; i < n; i++) if (skipped(i)) c.fill(0, i * n, (i + 1) * n);
      return c;
    };
    const challenge = challengeFor(64, 1, 64);
    const seed = fromHex(challenge.seed)!;
    let runs = 0;
    let passes = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (openSeed) => {
        const request = requestFor(challenge, 4, openSeed);
        const { verdict } = await run(createCpuSolver({ product: lazy }), challenge, request, nodeSha256);
        const positions = await openingPositions(seed, openSeed, 0, 64, 4, nodeSha256);
        runs++;
        if (verdict.ok) passes++;
        expect(verdict.ok).toBe(positions.every((p) => !skipped(p.row)));
        for (const failure of verdict.failures) expect(failure).toMatchObject({ reason: 'value', gpu: 0, got: 0 });
      }),
      { seed: 17, numRuns: 240 },
    );
    // Expected 240/16 = 15 passes; the bounds are more than four standard deviations apart.
    expect(passProbability(0.5, 4)).toBe(1 / 16);
    expect(runs).toBe(240);
    expect(passes).toBeGreaterThanOrEqual(3);
    expect(passes).toBeLessThanOrEqual(32);
  });

  it('fails when one GPU skips a tenth of its entries and the others are honest', async () => {
    const sloppy = (a: Int8Array, b: Int8Array, n: number, gpu: number) => {
      const c = multiply(a, b, n);
      if (gpu === 1) for (let e = 0; e < c.length; e += 10) c[e] = c[e]! + 1;
      return c;
    };
    const challenge = challengeFor(64, 3);
    const { verdict } = await run(createCpuSolver({ product: sloppy }), challenge, requestFor(challenge, 128));
    expect(verdict.ok).toBe(false);
    expect(new Set(verdict.failures.map((f) => ('gpu' in f ? f.gpu : -1)))).toEqual(new Set([1]));
    expect(verdict.failures.every((f) => f.reason === 'value')).toBe(true);
  });

  it('fails when it computes with another seed', async () => {
    const challenge = challengeFor(64, 2);
    const solver = createCpuSolver();
    const otherSeed = { ...challenge, seed: toHex(bytes32('another seed')) };
    const commitment = await solver.commit(otherSeed);
    const request = requestFor(challenge);
    const verdict = await checkCapacityAnswer(challenge, request, commitment, await solver.open(request), sha256);
    expect(verdict.ok).toBe(false);
    // Its positions follow its own seed too, so most openings name the wrong leaf; the rest the wrong value.
    expect(verdict.failures).toHaveLength(2 * 16);
    expect(verdict.failures.every((f) => f.reason === 'value' || f.reason === 'leaf_index')).toBe(true);
  });

  it('fails on every GPU but the first when one card computes GPU 0 and copies it to the others', async () => {
    let first: Int32Array | null = null;
    const oneCard = (a: Int8Array, b: Int8Array, n: number, gpu: number) => {
      if (gpu === 0) first = multiply(a, b, n);
      return first!.slice();
    };
    const { verdict } = await run(createCpuSolver({ product: oneCard }), challengeFor(64, 3));
    expect(verdict.ok).toBe(false);
    expect(new Set(verdict.failures.map((f) => ('gpu' in f ? f.gpu : -1)))).toEqual(new Set([1, 2]));
  });
});

describe('tampered answers', () => {
  const challenge = challengeFor(64, 2, 64, 'tamper');
  const request = requestFor(challenge, 8);
  const honest = run(createCpuSolver(), challenge, request);
  const check = (commitment: unknown, answer: unknown) => checkCapacityAnswer(challenge, request, commitment, answer, sha256);
  const reasons = async (commitment: unknown, answer: unknown) => (await check(commitment, answer)).failures.map((f) => f.reason);

  const editLeaf = (answer: OpeningsAnswer, gpu: number, t: number, edit: (leaf: Uint8Array) => Uint8Array) => {
    const copy = clone(answer);
    copy.gpus[gpu]![t]!.leaf = toBase64(edit(fromBase64(copy.gpus[gpu]![t]!.leaf)!));
    return copy;
  };

  it('is refused when one byte of a leaf is flipped', async () => {
    const { commitment, answer } = await honest;
    for (const at of [0, 17, 255]) {
      const tampered = editLeaf(answer, 1, 3, (leaf) => {
        leaf[at]! ^= 0x01;
        return leaf;
      });
      expect(await reasons(commitment, tampered)).toEqual(['path']);
    }
  });

  it('is refused when a leaf is truncated or extended', async () => {
    const { commitment, answer } = await honest;
    expect(await reasons(commitment, editLeaf(answer, 0, 0, (leaf) => leaf.subarray(0, leaf.length - 4)))).toEqual(['leaf_length']);
    expect(await reasons(commitment, editLeaf(answer, 0, 0, (leaf) => new Uint8Array([...leaf, 0, 0, 0, 0])))).toEqual(['leaf_length']);
  });

  it('is refused when two openings are swapped, or a leaf is moved under another opening', async () => {
    const { commitment, answer } = await honest;
    const gpu = answer.gpus[0]!;
    const t = gpu.findIndex((o) => o.leaf_index !== gpu[0]!.leaf_index);
    const swapped = clone(answer);
    [swapped.gpus[0]![0], swapped.gpus[0]![t]] = [gpu[t]!, gpu[0]!];
    expect(await reasons(commitment, swapped)).toEqual(['leaf_index', 'leaf_index']);
    const moved = clone(answer);
    moved.gpus[0]![0]!.leaf = gpu[t]!.leaf;
    expect(await reasons(commitment, moved)).toEqual(['path']);
  });

  it('is refused when a path hash is changed, dropped or the GPUs are swapped', async () => {
    const { commitment, answer } = await honest;
    const changed = clone(answer);
    const hash = changed.gpus[1]![2]!.path[0]!;
    changed.gpus[1]![2]!.path[0] = (hash[0] === '0' ? '1' : '0') + hash.slice(1);
    expect(await reasons(commitment, changed)).toEqual(['path']);
    const dropped = clone(answer);
    dropped.gpus[1]![2]!.path.pop();
    expect(await reasons(commitment, dropped)).toEqual(['path']);
    const swapped = clone(answer);
    swapped.gpus.reverse();
    expect((await check(commitment, swapped)).ok).toBe(false);
  });

  it('is refused against a wrong root, a missing root or GPU, and missing openings', async () => {
    const { commitment, answer } = await honest;
    const wrongRoot = clone(commitment);
    wrongRoot.roots[0] = toHex(bytes32('not the root'));
    expect(await reasons(wrongRoot, answer)).toEqual(Array(8).fill('path'));
    expect(await reasons({ ...commitment, roots: commitment.roots.slice(1) }, answer)).toEqual(['root_count']);
    expect(await reasons(commitment, { ...answer, gpus: answer.gpus.slice(1) })).toEqual(['gpu_count']);
    const fewer = clone(answer);
    fewer.gpus[1]!.pop();
    expect((await check(commitment, fewer)).failures).toEqual([{ reason: 'opening_count', gpu: 1, expected: 8, got: 7 }]);
  });

  it('is refused when the commitment or openings are for another challenge', async () => {
    const { commitment, answer } = await honest;
    expect(await reasons({ ...commitment, challenge_id: 'other' }, answer)).toEqual(['parameters']);
    expect(await reasons(commitment, { ...answer, challenge_id: 'other' })).toEqual(['parameters']);
  });

  it('is refused, never thrown, when the answer is not the expected shape at all', async () => {
    const { commitment, answer } = await honest;
    const hostile: unknown[] = [null, undefined, 'openings', 42, [], {}, { ...answer, extra: true }, { ...answer, gpus: [[{ leaf_index: 0 }]] }];
    for (const value of hostile) {
      expect(await check(commitment, value)).toMatchObject({ ok: false, failures: [{ reason: 'parameters' }] });
      expect(await check(value, answer)).toMatchObject({ ok: false, failures: [{ reason: 'parameters' }] });
    }
  });
});
