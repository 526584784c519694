// `--solver cpu|gpu`: which ChallengeSolver answers capacity challenges on this machine.
import { createHash } from 'node:crypto';
import type { Sha256 } from '../../../src/inspections/sha256.ts';
import { MAX_CAPACITY_N } from '../../../src/inspections/sizing.ts';
import { createCpuSolver } from './cpu-solver.ts';
import { createGpuSolver, dockerSolverCommand } from './gpu-solver.ts';
import type { ChallengeSolver } from './solver.ts';

export const SOLVERS = ['cpu', 'gpu'] as const;
export type SolverName = (typeof SOLVERS)[number];

export const isSolverName = (name: string): name is SolverName => (SOLVERS as readonly string[]).includes(name);

/**
 * The GPU solver's argv: GRIDLEASE_GPU_SOLVER_CMD (split at whitespace, no quoting) when set, else
 * `docker run … <image> /capacity` with GRIDLEASE_GPU_SOLVER_IMAGE or the image of this version.
 */
export function gpuSolverCommand(env: NodeJS.ProcessEnv = process.env): string[] {
  const custom = env.GRIDLEASE_GPU_SOLVER_CMD?.trim();
  if (custom) return custom.split(/\s+/);
  return dockerSolverCommand(env.GRIDLEASE_GPU_SOLVER_IMAGE?.trim() || undefined);
}

/** The solver to run. The GPU solver's process starts now, so its CUDA contexts are ready before a challenge comes. */
export function createSolver(name: SolverName, env: NodeJS.ProcessEnv = process.env): ChallengeSolver {
  if (name === 'gpu') return createGpuSolver({ command: gpuSolverCommand(env), warm: true });
  return createCpuSolver({ sha256: yieldingSha256() });
}

/** Hashes between which the event loop gets a turn; a few milliseconds of hashing each. */
const HASHES_PER_TURN = 1024;

/**
 * SHA-256 (the same bytes) that lets timers run every HASHES_PER_TURN hashes. The CPU solver
 * computes in this thread; hashing comes before each GPU's product and throughout its Merkle
 * tree, so heartbeats wait at most one product (about 2 s at n = 1024) rather than a whole
 * challenge (up to 16 of them).
 */
export function yieldingSha256(): Sha256 {
  let calls = 0;
  return async (data) => {
    if (++calls % HASHES_PER_TURN === 1) await new Promise((resolve) => setImmediate(resolve));
    return new Uint8Array(createHash('sha256').update(data).digest());
  };
}

/** One line for `status`. */
export function describeSolver(name: SolverName, env: NodeJS.ProcessEnv = process.env): string {
  if (name === 'gpu') return `gpu (CUDA solver, capacity challenges up to n = ${MAX_CAPACITY_N}: ${gpuSolverCommand(env).join(' ')})`;
  return `cpu (reference solver in TypeScript: capacity challenges up to n = ${createCpuSolver().maxN})`;
}
