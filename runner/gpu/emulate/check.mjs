// Checks the CUDA build of runner/gpu/capacity.cu without a GPU: clang compiles it as CUDA
// (host side) against the stand-in headers here, emulate.cu runs its kernels as CPU loops and
// cuBLASLt as a plain GEMM, and every answer must equal the g++ host build's byte for byte. The
// GEMM span is lowered so that n ≥ 555 runs in tiles; n not a multiple of 4 takes the plain kernel.
// What this cannot check: nvcc, the kernels on a device, the real cuBLASLt, memory and speed.
//
//   node runner/gpu/emulate/check.mjs          (needs g++ and clang++ with CUDA support; CLANGXX=…)
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const source = path.join(here, '..', 'capacity.cu');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gridlease-emulate-'));
const found = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
const clang = [process.env.CLANGXX, 'clang++', ...[19, 18, 17, 16, 15, 14].map((v) => `clang++-${v}`)].find((c) => c && found(c));
if (!clang) {
  console.error('no clang++ found (set CLANGXX): clang compiles the CUDA build for this check');
  process.exit(2);
}

const host = path.join(dir, 'host');
const emulated = path.join(dir, 'emulated');
execFileSync('g++', ['-x', 'c++', '-std=c++17', '-O2', '-DGRIDLEASE_HOST_ONLY', '-o', host, source], { stdio: 'inherit' });
const cuda = ['-x', 'cuda', '-nocudainc', '-nocudalib', '-std=c++17', '-O2', '-Wall', '-Wextra', '-Wno-unknown-cuda-version', `-I${here}`];
// The device side only has to compile (to PTX): it cannot run here.
execFileSync(clang, [...cuda, '--cuda-device-only', '--cuda-gpu-arch=sm_80', '-S', '-o', path.join(dir, 'capacity.ptx'), source], { stdio: 'inherit' });
execFileSync(clang, [...cuda, '--cuda-host-only', '-DGRIDLEASE_GEMM_SPAN=307200', '-o', emulated, path.join(here, 'emulate.cu')], { stdio: 'inherit' });

const hex = (label) => createHash('sha256').update(label).digest('hex');
const deadline = '2099-01-01T00:00:00.000Z';
const cases = [
  [16, 2, 16],
  [37, 2, 16],
  [64, 3, 64],
  [256, 1, 1024],
  [256, 3, 16],
  [555, 1, 256],
  [1000, 2, 1024],
  [1024, 1, 4096],
  [1, 1, 16],
];
const lines = [];
cases.forEach(([n, gpuCount, leafSize], i) => {
  const id = `case-${i}`;
  lines.push({ op: 'commit', challenge: { kind: 'capacity', challenge_id: id, seed: hex(`seed ${i}`), n, gpu_count: gpuCount, leaf_size: leafSize, deadline } });
  lines.push({ op: 'open', request: { challenge_id: id, open_seed: hex(`open ${i}`), count: 64, deadline } });
});
lines.push({ op: 'open', request: { challenge_id: 'case-0', open_seed: hex('again'), count: 1, deadline } });
const input = lines.map((l) => `${JSON.stringify(l)}\n`).join('');

const answers = (bin) => {
  const r = spawnSync(bin, [], { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  const end = r.status === 0 ? '' : ` (exited ${r.status ?? r.signal})`;
  return { out: r.stdout.trim().split('\n'), err: r.stderr.trim() + end, failed: r.status !== 0 };
};
const expected = answers(host);
const got = answers(emulated);
let failures = 0;
expected.out.forEach((line, i) => {
  if (got.out[i] !== line) {
    failures++;
    console.error(`request ${i} differs:\n  host:     ${line.slice(0, 160)}\n  emulated: ${(got.out[i] ?? '(none)').slice(0, 160)}`);
  }
});
if (got.out.length !== expected.out.length || expected.failed || got.failed) failures++;
fs.rmSync(dir, { recursive: true, force: true });
console.log(`${failures ? 'FAILED' : 'ok'}: ${expected.out.length} answers compared, emulated CUDA build (${clang}) ${got.err}`);
process.exit(failures ? 1 : 0);
