// The GPU challenge solver (runner/src/inspections/gpu-solver.ts) and its program
// (runner/gpu/capacity.cu). There is no GPU here: the program's host build (g++ with
// GRIDLEASE_HOST_ONLY, the same functions run as loops on the CPU) must give the TypeScript
// reference solver's bytes exactly, and fake solver processes drive the plumbing's failures.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuSolver } from '../../../runner/src/inspections/cpu-solver.ts';
import { createGpuSolver, dockerSolverCommand, type GpuSolver, type GpuSolverOptions } from '../../../runner/src/inspections/gpu-solver.ts';
import { SolverError } from '../../../runner/src/inspections/solver.ts';
import type { CapacityChallenge, OpeningRequest } from '../../../src/contracts/inspections.ts';
import { checkCapacityAnswer } from '../../../src/inspections/capacity-wire.ts';
import { toHex } from '../../../src/inspections/encoding.ts';
import type { Sha256 } from '../../../src/inspections/sha256.ts';
import { MAX_CAPACITY_N } from '../../../src/inspections/sizing.ts';
import { ROOT, tempDir } from './helpers.ts';

const run = promisify(execFile);
const SOURCE = path.join(ROOT, 'runner/gpu/capacity.cu');
const DEADLINE = '2099-01-01T00:00:00.000Z';
const nodeSha256: Sha256 = async (data) => new Uint8Array(createHash('sha256').update(data).digest());
const bytes32 = (label: string) => new Uint8Array(createHash('sha256').update(label).digest());
const SEED_00_1F = toHex(Uint8Array.from({ length: 32 }, (_, i) => i));
const OPEN_SEED_20_3F = toHex(Uint8Array.from({ length: 32 }, (_, i) => 32 + i));

let dir = '';
let hostBuild = '';
let harness = '';

/** Reads the program's own functions: it includes capacity.cu with its main renamed. */
const HARNESS = (source: string) => `#define main capacity_main
#include ${JSON.stringify(source)}
#undef main
int main() {
  const uint32_t kat[3][6] = {{0, 0, 0, 0, 0, 0}, {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                              {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u}};
  std::printf("{\\"philox\\":[");
  for (int i = 0; i < 3; i++) {
    uint32_t x[4] = {kat[i][0], kat[i][1], kat[i][2], kat[i][3]};
    philox4x32(x, kat[i][4], kat[i][5]);
    std::printf("%s[\\"%08x\\",\\"%08x\\",\\"%08x\\",\\"%08x\\"]", i ? "," : "", x[0], x[1], x[2], x[3]);
  }
  uint8_t seed[32], open_seed[32];
  for (int i = 0; i < 32; i++) seed[i] = (uint8_t)i, open_seed[i] = (uint8_t)(32 + i);
  std::printf("],\\"lines\\":[");
  const int gpus[3] = {0, 0, 1};
  const char matrices[3] = {'A', 'B', 'A'};
  for (int i = 0; i < 3; i++) {
    PhiloxKey key = matrix_key(seed, gpus[i], matrices[i]);
    int8_t line[16];
    generate_item(0, key, 16, line);
    std::printf("%s{\\"key\\":[\\"%08x\\",\\"%08x\\"],\\"line\\":[", i ? "," : "", key.k0, key.k1);
    for (int k = 0; k < 16; k++) std::printf("%s%d", k ? "," : "", line[k]);
    std::printf("]}");
  }
  std::printf("],\\"positions\\":[");
  PhiloxKey okey = open_key(seed, open_seed, 0);
  for (uint32_t t = 0; t < 4; t++) {
    uint32_t x[4] = {t, 0, 0, 0};
    philox4x32(x, okey.k0, okey.k1);
    std::printf("%s{\\"row\\":%u,\\"col\\":%u}", t ? "," : "", x[0] % 64, x[1] % 64);
  }
  Sha256 s;
  sha256_init(s);
  sha256_update(s, (const uint8_t*)"abc", 3);
  uint8_t digest[32];
  sha256_final(s, digest);
  std::string hex;
  append_hex(hex, digest, 32);
  std::printf("],\\"sha256_abc\\":\\"%s\\"}\\n", hex.c_str());
  return 0;
}
`;

async function compile(output: string, source: string) {
  try {
    await run('g++', ['-x', 'c++', '-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', '-DGRIDLEASE_HOST_ONLY', '-o', output, source], { timeout: 120_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('g++ is needed to build the host build of runner/gpu/capacity.cu for these tests (apt-get install g++)');
    throw new Error(`g++ failed on ${source}:\n${e.stderr ?? e.message}`);
  }
}

beforeAll(async () => {
  dir = tempDir('gridlease-gpu-solver-');
  hostBuild = path.join(dir, 'capacity');
  harness = path.join(dir, 'harness');
  const harnessSource = path.join(dir, 'harness.cpp');
  fs.writeFileSync(harnessSource, HARNESS(SOURCE));
  await Promise.all([compile(hostBuild, SOURCE), compile(harness, harnessSource)]);
});

const open: GpuSolver[] = [];
afterAll(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

function solver(options: GpuSolverOptions): GpuSolver {
  const s = createGpuSolver(options);
  open.push(s);
  return s;
}

function challengeFor(n: number, gpuCount: number, leafSize: number, seed: string, id = `c-${n}-${gpuCount}-${leafSize}-${seed.slice(0, 8)}`): CapacityChallenge {
  return { kind: 'capacity', challenge_id: id, seed, n, gpu_count: gpuCount, leaf_size: leafSize, deadline: DEADLINE };
}

const requestFor = (challenge: CapacityChallenge, count: number, openSeed = toHex(bytes32(`open-${challenge.challenge_id}`))): OpeningRequest => ({
  challenge_id: challenge.challenge_id,
  open_seed: openSeed,
  count,
  deadline: DEADLINE,
});

describe('the host build of capacity.cu', () => {
  it('reproduces the published reference values: Philox known answers, keys and first lines of seed 00..1f, opening positions', async () => {
    const { stdout } = await run(harness, [], { timeout: 10_000 });
    expect(JSON.parse(stdout)).toEqual({
      philox: [
        ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8'],
        ['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd'],
        ['d16cfe09', '94fdcceb', '5001e420', '24126ea1'],
      ],
      lines: [
        { key: ['9e532421', '760737cc'], line: [28, -21, -93, 94, -14, 103, 14, -103, -74, 42, -120, -102, -76, -82, 44, 48] },
        { key: ['938a718a', '97d7b594'], line: [-52, 5, -12, 101, -125, 75, 103, -63, 23, 16, 83, -79, 97, -54, -51, -63] },
        { key: ['9a4b7fd2', 'cbe2d966'], line: [-85, 110, -125, 81, -50, 60, 126, 88, 55, 30, 0, 114, 8, -29, 34, -14] },
      ],
      positions: [
        { row: 28, col: 6 },
        { row: 2, col: 37 },
        { row: 52, col: 59 },
        { row: 19, col: 43 },
      ],
      sha256_abc: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    });
  });

  it('commits to the published roots for seed 00..1f, n = 16, leaves of 16, on two GPUs', async () => {
    const gpu = solver({ command: [hostBuild] });
    const commitment = await gpu.commit({ ...challengeFor(16, 2, 16, SEED_00_1F), challenge_id: 'golden' });
    expect(commitment).toEqual({
      challenge_id: 'golden',
      roots: ['26a77cc0966055a87d69de07fe9fda08b8b70b1d888d743a16050c513c5aa0e4', '1cc7a4e2e8782ba617c05cd7c2c74311dfbccc2c9709fa221e3fb38956af119e'],
    });
  });

  // n, GPUs, leaf size, seed, openings per GPU
  const cases: [number, number, number, string, number][] = [
    [16, 1, 16, SEED_00_1F, 16],
    [16, 2, 16, SEED_00_1F, 64],
    [16, 3, 64, SEED_00_1F, 8],
    [16, 2, 4096, toHex(bytes32('one leaf')), 4],
    [64, 1, 16, SEED_00_1F, 64],
    [64, 2, 256, toHex(bytes32('sixty-four')), 16],
    [64, 3, 1024, SEED_00_1F, 32],
    [256, 1, 4096, toHex(bytes32('two-five-six')), 16],
    [256, 2, 16, SEED_00_1F, 256],
    [256, 3, 1024, toHex(bytes32('three gpus')), 64],
    [37, 2, 16, toHex(bytes32('short last leaf')), 64],
    [1, 1, 16, toHex(bytes32('one entry')), 3],
  ];

  it('gives the CPU reference solver’s commitment and openings byte for byte, and they pass the verifier’s check', async () => {
    const gpu = solver({ command: [hostBuild] });
    for (const [n, gpus, leafSize, seed, count] of cases) {
      const challenge = challengeFor(n, gpus, leafSize, seed);
      const request = requestFor(challenge, count, seed === SEED_00_1F ? OPEN_SEED_20_3F : undefined);
      const cpu = createCpuSolver();
      const expectedCommitment = await cpu.commit(challenge);
      const expectedOpenings = await cpu.open(request);
      const commitment = await gpu.commit(challenge);
      const openings = await gpu.open(request);
      const label = `n = ${n}, ${gpus} GPUs, leaves of ${leafSize}`;
      expect(JSON.stringify(commitment), label).toBe(JSON.stringify(expectedCommitment));
      expect(JSON.stringify(openings), label).toBe(JSON.stringify(expectedOpenings));
      expect(await checkCapacityAnswer(challenge, request, commitment, openings, nodeSha256), label).toEqual({ ok: true, failures: [] });
    }
  });

  it('refuses with the protocol’s codes: an opening it never committed to, a size above its build, malformed input', async () => {
    const gpu = solver({ command: [hostBuild], maxN: 4096 });
    const challenge = challengeFor(16, 1, 16, SEED_00_1F, 'refusals');
    await expect(gpu.open(requestFor(challenge, 4))).rejects.toMatchObject({ name: 'SolverError', code: 'unknown_challenge' });
    // The host build multiplies naively and stops at n = 2048; the CUDA build refuses what its VRAM cannot hold.
    await expect(gpu.commit(challengeFor(3000, 1, 1024, SEED_00_1F))).rejects.toMatchObject({ code: 'too_large', message: expect.stringContaining('host build') });
    await expect(gpu.commit(challengeFor(8192, 1, 1024, SEED_00_1F))).rejects.toMatchObject({ code: 'too_large', message: expect.stringContaining('above this solver') });
    await expect(gpu.commit({ ...challenge, n: 10 ** 9 })).rejects.toMatchObject({ code: 'invalid' });
    await expect(gpu.open({ ...requestFor(challenge, 4), count: 10 ** 6 })).rejects.toMatchObject({ code: 'invalid' });
    // Opened once, then forgotten.
    await gpu.commit(challenge);
    await gpu.open(requestFor(challenge, 4));
    await expect(gpu.open(requestFor(challenge, 4))).rejects.toMatchObject({ code: 'unknown_challenge' });
  });

  it('answers malformed and overlong request lines with a refusal and keeps serving', async () => {
    const lines = ['not json', '{"op":"commit"}', '{"op":"fly"}', `{"op":"commit","challenge":${'['.repeat(50)}`, 'x'.repeat(70_000), ''];
    const input = `${lines.join('\n')}\n{"op":"commit","challenge":${JSON.stringify(challengeFor(16, 2, 16, SEED_00_1F, 'golden'))}}\n`;
    const child = execFile(hostBuild, [], { timeout: 10_000 });
    child.stdin!.end(input);
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer | string) => (stdout += String(chunk)));
    await new Promise((resolve) => child.on('close', resolve));
    const answers = stdout.trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean; code?: string; commitment?: { roots: string[] } });
    expect(answers.map((a) => a.code ?? 'ok')).toEqual(['invalid', 'invalid', 'invalid', 'invalid', 'invalid', 'ok']);
    expect(answers[5]!.commitment!.roots[0]).toBe('26a77cc0966055a87d69de07fe9fda08b8b70b1d888d743a16050c513c5aa0e4');
  });
});

// ── Plumbing, against fake solver processes ───────────────────────────────────────────────────
// argv: mode, a file that gets one line per start. Modes:
//   ok          answers schema-valid commitments and openings (zero roots, one-entry leaves)
//   die-once    the first process ever started dies on its first request; later ones are ok
//   silent      never answers
//   long        prints a line longer than the test's bound (with or without its newline)
//   garbage     prints a line that is not JSON
//   refuse:CODE refuses every request with CODE
//   bad-schema  answers a commitment and openings that fail the contracts
//   wrong-shape answers valid-looking commitments with one root too many, openings one short
//   twice       answers every request with two lines
const FAKE = `
const fs = require('node:fs');
const [mode, log] = process.argv.slice(2);
const first = !fs.existsSync(log) || fs.readFileSync(log, 'utf8') === '';
fs.appendFileSync(log, 'start\\n');
let buffer = '';
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let at;
  while ((at = buffer.indexOf('\\n')) >= 0) {
    const line = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    answer(JSON.parse(line));
  }
});
const send = (value) => process.stdout.write(JSON.stringify(value) + '\\n');
function ok(req) {
  if (req.op === 'commit') return { ok: true, commitment: { challenge_id: req.challenge.challenge_id, roots: Array(req.challenge.gpu_count).fill('00'.repeat(32)) } };
  return { ok: true, openings: { challenge_id: req.request.challenge_id, gpus: [Array(req.request.count).fill({ leaf_index: 0, leaf: 'AAAAAA==', path: [] })] } };
}
function answer(req) {
  if (mode === 'ok') return setTimeout(() => send(ok(req)), Math.random() * 20);
  if (mode === 'die-once') {
    if (first) { process.stderr.write('out of cheese\\n'); process.exit(3); }
    return send(ok(req));
  }
  if (mode === 'silent') return;
  if (mode === 'long') return process.stdout.write('x'.repeat(5000) + (req.op === 'commit' ? '\\n' : ''));
  if (mode === 'garbage') return process.stdout.write('this is not json\\n');
  if (mode.startsWith('refuse:')) return send({ ok: false, code: mode.slice(7), message: 'refused by the fake' });
  if (mode === 'bad-schema') {
    if (req.op === 'commit') return send({ ok: true, commitment: { challenge_id: req.challenge.challenge_id, roots: ['ZZ'], extra: 1 } });
    return send({ ok: true, openings: { challenge_id: req.request.challenge_id, gpus: [[{ leaf_index: -1, leaf: '!', path: [] }]] } });
  }
  if (mode === 'wrong-shape') {
    const good = ok(req);
    if (req.op === 'commit') good.commitment.roots.push('11'.repeat(32));
    else good.openings.gpus[0].pop();
    return send(good);
  }
  if (mode === 'twice') { send(ok(req)); send(ok(req)); }
}
`;

describe('the GPU solver process', () => {
  let fake = '';
  let runs = 0;
  beforeAll(() => {
    fake = path.join(dir, 'fake-solver.cjs');
    fs.writeFileSync(fake, FAKE);
  });

  /** A solver running the fake in `mode`, and how many times it was started. */
  function withFake(mode: string, options: GpuSolverOptions = {}) {
    const log = path.join(dir, `starts-${++runs}.log`);
    const s = solver({ command: [process.execPath, fake, mode, log], killGraceMs: 500, ...options });
    const starts = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0);
    return { s, starts };
  }

  const challenge = challengeFor(64, 1, 256, SEED_00_1F, 'fake');
  const request = requestFor(challenge, 4);

  it('is started once and reused; requests are answered one at a time, in order', async () => {
    const { s, starts } = withFake('ok');
    const ids = ['q1', 'q2', 'q3', 'q4', 'q5'];
    const answers = await Promise.all(ids.map((id) => s.commit({ ...challenge, challenge_id: id })));
    expect(answers.map((a) => a.challenge_id)).toEqual(ids);
    expect((await s.open(request)).gpus[0]).toHaveLength(4);
    expect(starts()).toBe(1);
  });

  it('fails the request in flight when the process dies, with its stderr, and starts a new one for the next', async () => {
    const { s, starts } = withFake('die-once');
    const failed = s.commit(challenge);
    await expect(failed).rejects.toBeInstanceOf(SolverError);
    await expect(failed).rejects.toThrow(/exited \(code 3\).*out of cheese/);
    expect((await s.commit(challenge)).roots).toHaveLength(1);
    expect(starts()).toBe(2);
  });

  it('gives up on a process that never answers, and kills it', async () => {
    const { s, starts } = withFake('silent', { commitTimeoutMs: 300, openTimeoutMs: 200 });
    const began = Date.now();
    await expect(s.commit(challenge)).rejects.toThrow('gave no answer within 300 ms');
    expect(Date.now() - began).toBeLessThan(5_000);
    await expect(s.open(request)).rejects.toThrow('gave no answer within 200 ms');
    expect(starts()).toBe(2);
  });

  it('awaits a commitment until the challenge’s deadline plus a grace, not longer', async () => {
    const { s } = withFake('silent', { lateGraceMs: 250 });
    const deadline = new Date(Date.now() + 100).toISOString();
    await expect(s.commit({ ...challenge, deadline })).rejects.toThrow(/gave no answer within (2|3)\d\d ms/);
    await expect(s.commit({ ...challenge, deadline: '2020-01-01T00:00:00.000Z' })).rejects.toThrow('gave no answer within 250 ms');
  });

  it('refuses a line longer than its bound, with or without a newline, and a line that is not JSON', async () => {
    const long = withFake('long', { maxLineBytes: 1000 });
    await expect(long.s.commit(challenge)).rejects.toThrow('printed a line longer than 1000 bytes');
    await expect(long.s.open(request)).rejects.toThrow('printed a line longer than 1000 bytes');
    expect(long.starts()).toBe(2);
    const garbage = withFake('garbage');
    await expect(garbage.s.commit(challenge)).rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining('not JSON') });
  });

  it('passes the solver’s refusals on as SolverErrors of the same code', async () => {
    for (const code of ['unknown_challenge', 'too_large', 'invalid'] as const) {
      const { s } = withFake(`refuse:${code}`);
      await expect(s.open(request)).rejects.toMatchObject({ name: 'SolverError', code, message: 'refused by the fake' });
    }
    const { s } = withFake('refuse:melted');
    await expect(s.commit(challenge)).rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining('neither ok nor a known refusal') });
  });

  it('refuses answers that fail the contracts or do not fit the request', async () => {
    const bad = withFake('bad-schema');
    await expect(bad.s.commit(challenge)).rejects.toThrow('malformed commitment');
    await expect(bad.s.open(request)).rejects.toThrow('malformed openings');
    const shape = withFake('wrong-shape');
    await expect(shape.s.commit(challenge)).rejects.toThrow('gave 2 roots for 1 GPUs');
    await expect(shape.s.open(request)).rejects.toThrow('did not open 4 entries on every GPU');
    const ok = withFake('ok');
    await expect(ok.s.commit({ ...challenge, gpu_count: 2 })).resolves.toMatchObject({ roots: [expect.any(String), expect.any(String)] });
    await expect(ok.s.open(request)).rejects.toThrow('opened 1 GPUs of 2');
  });

  it('restarts a process that prints a line nobody asked for', async () => {
    const { s, starts } = withFake('twice');
    await expect(s.commit(challenge)).resolves.toMatchObject({ challenge_id: 'fake' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expect(s.commit(challenge)).resolves.toMatchObject({ challenge_id: 'fake' });
    expect(starts()).toBe(2);
  });

  it('reports a command that cannot be run, and refuses work once closed', async () => {
    const missing = solver({ command: [path.join(dir, 'no-such-solver')], warm: true });
    await expect(missing.commit(challenge)).rejects.toThrow(/could not be run .*ENOENT/);
    const { s, starts } = withFake('ok', { warm: true });
    await s.close();
    expect(starts()).toBe(1);
    await expect(s.commit(challenge)).rejects.toThrow('is closed');
  });

  it('runs the solver image through docker with all GPUs and no network by default', () => {
    expect(dockerSolverCommand('img:1')).toEqual(['docker', 'run', '--rm', '-i', '--init', '--gpus', 'all', '--network', 'none', '--read-only', 'img:1', '/capacity']);
    const s = createGpuSolver();
    expect(s.name).toBe('gpu');
    expect(s.maxN).toBe(MAX_CAPACITY_N);
  });
});
