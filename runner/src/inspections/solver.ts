// What answers a capacity challenge on this machine. The reference CPU solver (cpu-solver.ts)
// handles small sizes; a GPU solver plugs in behind the same interface and must produce the
// same bytes, since every root and opening is checked against the CPU reference.
import type { CapacityChallenge, CapacityCommitment, OpeningRequest, OpeningsAnswer } from '../../../src/contracts/inspections.ts';

export interface ChallengeSolver {
  readonly name: string;
  /** The largest n it accepts; a larger challenge is refused with a SolverError. */
  readonly maxN: number;
  /** Computes C_g on every GPU, keeps what `open` needs, and returns the roots. */
  commit(challenge: CapacityChallenge): Promise<CapacityCommitment>;
  /** Opens the committed products at the positions derived from the request; forgets the challenge. */
  open(request: OpeningRequest): Promise<OpeningsAnswer>;
}

export type SolverErrorCode = 'too_large' | 'unknown_challenge' | 'invalid';

export class SolverError extends Error {
  readonly code: SolverErrorCode;
  constructor(code: SolverErrorCode, message: string) {
    super(message);
    this.name = 'SolverError';
    this.code = code;
  }
}
