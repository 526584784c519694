// `--solver cpu|gpu`: which ChallengeSolver answers capacity challenges on this machine.
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
  return createCpuSolver();
}

/** One line for `status`. */
export function describeSolver(name: SolverName): string {
  if (name === 'gpu') return 'gpu (not available yet; `start` refuses it)';
  return `cpu (reference solver in TypeScript: capacity challenges up to n = ${createCpuSolver().maxN})`;
}
