// The GPU solver on a real GPU, in one run: what the host-build and emulation checks cannot show
// (nvcc's build, the kernels on the device, the real cuBLASLt, memory, speed).
//
//   1. Small challenges through the runner's own GPU solver plumbing (createGpuSolver, speaking
//      JSON lines to the nvcc-built runner/gpu/capacity.cu) and through the reference CPU solver:
//      commitments and openings must be byte for byte the same, and pass the platform's verifier.
//   2. A full-size challenge for each model nvidia-smi reports: n from the catalog's VRAM
//      (capacitySize), the commitment timed against the catalog's deadline (proverDeadlineMs),
//      the openings timed against theirs, and the answer checked by the platform's verifier
//      (checkCapacityAnswer, as the Worker runs it).
//
// Build and run on the GPU machine (nvcc and cuBLAS there; Node carried):
//   nvcc -O3 -std=c++17 -arch=native -o /tmp/capacity runner/gpu/capacity.cu -lcublasLt
//   node runner/dist/device-check.js --solver /tmp/capacity [--out FILE] [--skip-full]
// runner/dist/device-check.js is bundled by `node runner/gpu/build-device-check.ts`.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GPU_MODELS } from '../../src/catalog/gpus.ts';
import type { CapacityChallenge, OpeningRequest } from '../../src/contracts/inspections.ts';
import { checkCapacityAnswer } from '../../src/inspections/capacity-wire.ts';
import { leafSizeFor } from '../../src/inspections/challenge-terms.ts';
import { capacitySize, modelVramBytes, openingDeadlineMs, proverDeadlineMs } from '../../src/inspections/sizing.ts';
import { nodeSha256 } from '../src/inspect-crypto.ts';
import { createCpuSolver } from '../src/inspections/cpu-solver.ts';
import { createGpuSolver, type GpuSolver } from '../src/inspections/gpu-solver.ts';
import { GPU_QUERY, parseGpuList } from '../src/nvidia-smi.ts';

const { values } = parseArgs({ options: { solver: { type: 'string' }, out: { type: 'string' }, 'skip-full': { type: 'boolean' }, 'no-smi': { type: 'boolean' } } });
if (!values.solver) {
  console.error('usage: device-check --solver PATH [--out FILE] [--skip-full] [--no-smi]');
  process.exit(2);
}
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  console.log(line);
};
const hex = (label: string) => createHash('sha256').update(label).digest('hex');
const far = () => new Date(Date.now() + 3_600_000).toISOString();
const ms = (t0: number) => performance.now() - t0;
let failures = 0;

// nvidia-smi's GPUs; --no-smi (a machine without one) runs the small cases on one "GPU" only.
const gpus = values['no-smi'] ? [] : parseGpuList(execFileSync('nvidia-smi', GPU_QUERY, { encoding: 'utf8' })).rows;
const deviceCount = Math.max(1, gpus.length);
say(`GPUs: ${gpus.length === 0 ? 'none reported (--no-smi)' : gpus.map((g) => `${g.index}: ${g.name}, ${g.memory_mib} MiB, driver ${g.driver}`).join('; ')}`);

const solver: GpuSolver = createGpuSolver({ command: [values.solver], commitTimeoutMs: 20 * 60_000, openTimeoutMs: 5 * 60_000 });
try {
  // ── 1. Small sizes: GPU solver = CPU reference, byte for byte ──────────────────────────
  say('\n| n | GPUs | leaf | GPU solver ms | CPU solver ms | identical | verifier |');
  say('|---:|---:|---:|---:|---:|---|---|');
  const cases: Array<[number, number, number]> = [[16, 2, 16], [37, 2, 16], [64, 3, 64], [256, 1, 1024], [256, 3, 16], [555, 1, 256], [1000, 2, 1024], [1024, 1, 4096], [1, 1, 16]];
  for (const [i, [n, wanted, leaf]] of cases.entries()) {
    const gpuCount = Math.min(wanted, deviceCount);
    const challenge: CapacityChallenge = { kind: 'capacity', challenge_id: `chl_device_${i}`, seed: hex(`seed ${i}`), n, gpu_count: gpuCount, leaf_size: leaf, deadline: far() };
    const request: OpeningRequest = { challenge_id: challenge.challenge_id, open_seed: hex(`open ${i}`), count: 64, deadline: far() };
    let t = performance.now();
    const gpuCommit = await solver.commit(challenge);
    const gpuOpen = await solver.open(request);
    const gpuMs = ms(t);
    const cpu = createCpuSolver();
    t = performance.now();
    const cpuCommit = await cpu.commit(challenge);
    const cpuOpen = await cpu.open(request);
    const cpuMs = ms(t);
    const same = JSON.stringify(gpuCommit) === JSON.stringify(cpuCommit) && JSON.stringify(gpuOpen) === JSON.stringify(cpuOpen);
    const verdict = await checkCapacityAnswer(challenge, request, gpuCommit, gpuOpen, nodeSha256);
    if (!same || !verdict.ok) failures++;
    say(`| ${n} | ${gpuCount} | ${leaf} | ${gpuMs.toFixed(1)} | ${cpuMs.toFixed(1)} | ${same ? 'yes' : 'NO'} | ${verdict.ok ? 'passed' : `FAILED ${JSON.stringify(verdict.failures?.slice(0, 2))}`} |`);
  }

  // ── 2. Full size for the card, timed against the catalog ───────────────────────────────
  if (!values['skip-full'] && gpus.length > 0) {
    const model = GPU_MODELS.find((m) => m.names.includes(gpus[0]!.name));
    if (!model) {
      failures++;
      say(`\nfull size: "${gpus[0]!.name}" is not in the catalog`);
    } else {
      const n = capacitySize(modelVramBytes(model));
      const leaf = leafSizeFor(n);
      const proverMs = proverDeadlineMs(model, n);
      const openMs = openingDeadlineMs(n, gpus.length);
      const challenge: CapacityChallenge = { kind: 'capacity', challenge_id: 'chl_device_full', seed: randomBytes(32).toString('hex'), n, gpu_count: gpus.length, leaf_size: leaf, deadline: new Date(Date.now() + 20 * 60_000).toISOString() };
      const request: OpeningRequest = { challenge_id: challenge.challenge_id, open_seed: randomBytes(32).toString('hex'), count: 64, deadline: far() };
      let t = performance.now();
      const commitment = await solver.commit(challenge);
      const commitMs = ms(t);
      t = performance.now();
      const openings = await solver.open(request);
      const openedMs = ms(t);
      t = performance.now();
      const verdict = await checkCapacityAnswer(challenge, request, commitment, openings, nodeSha256);
      const verifyMs = ms(t);
      const macs = n ** 3;
      if (!verdict.ok || commitMs > proverMs || openedMs > openMs) failures++;
      say(`\nFull size, ${model.id} (catalog: ${model.vramGb} GB, ${model.int8Tops} INT8 TOPS), ${gpus.length} GPU(s): n = ${n}, leaf ${leaf}, A + B + C = ${((6 * n * n) / 1e9).toFixed(1)} GB per GPU`);
      say('| step | measured | deadline | within | |');
      say('|---|---:|---:|---|---|');
      say(`| commit (generate, multiply, hash) | ${(commitMs / 1000).toFixed(2)} s | ${(proverMs / 1000).toFixed(2)} s | ${commitMs <= proverMs ? 'yes' : 'NO'} | ${((2 * macs) / (commitMs / 1000) / 1e12).toFixed(0)} TOPS effective |`);
      say(`| open (64 per GPU) | ${(openedMs / 1000).toFixed(2)} s | ${(openMs / 1000).toFixed(2)} s | ${openedMs <= openMs ? 'yes' : 'NO'} | |`);
      say(`| platform verifier (node:crypto) | ${verifyMs.toFixed(0)} ms | | | ${verdict.ok ? 'passed' : `FAILED ${JSON.stringify(verdict.failures?.slice(0, 2))}`} |`);
    }
  }
} catch (err) {
  failures++;
  say(`\nFAILED: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await solver.close();
}
say(`\n${failures === 0 ? 'ok' : `${failures} failure(s)`}`);
if (values.out) writeFileSync(values.out, `${lines.join('\n')}\n`);
process.exit(failures === 0 ? 0 : 1);
