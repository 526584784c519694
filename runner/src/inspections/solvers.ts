// `--solver cpu|gpu`: which ChallengeSolver answers capacity challenges on this machine.
import { createHash } from 'node:crypto';
import type { Sha256 } from '../../../src/inspections/sha256.ts';
import { EXIT, RunnerError } from '../errors.ts';
import { createCpuSolver } from './cpu-solver.ts';
import type { ChallengeSolver } from './solver.ts';

export const SOLVERS = ['cpu', 'gpu'] as const;
export type SolverName = (typeof SOLVERS)[number];

export const isSolverName = (name: string): name is SolverName => (SOLVERS as readonly string[]).includes(name);

/** The solver to run; refuses `gpu` until a GPU solver ships, rather than silently using the CPU. */
export function createSolver(name: SolverName): ChallengeSolver {
  if (name === 'gpu') {
    throw new RunnerError('the GPU challenge solver is not available yet: use --solver cpu (the reference CPU solver answers small capacity challenges)', EXIT.usage);
  }
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
export function describeSolver(name: SolverName): string {
  if (name === 'gpu') return 'gpu (not available yet; `start` refuses it)';
  return `cpu (reference solver in TypeScript: capacity challenges up to n = ${createCpuSolver().maxN})`;
}
