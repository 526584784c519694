// The reference capacity solver: the exact product on the CPU in plain TypeScript. It is what a
// GPU solver's bytes are compared with, and answers liveness-grade challenges (n ≤ 1024, a few
// seconds per GPU in Node) where no GPU solver is available.
import { createHash } from 'node:crypto';
import { CapacityChallengeSchema, OpeningRequestSchema, type CapacityChallenge } from '../../../src/contracts/inspections.ts';
import { challengeParams, encodeOpenings } from '../../../src/inspections/capacity-wire.ts';
import { fromHex, toHex } from '../../../src/inspections/encoding.ts';
import { generateLines, matrixKey, multiply } from '../../../src/inspections/matrices.ts';
import { buildMerkleTree, merklePath, merkleRoot, type MerkleTree } from '../../../src/inspections/merkle.ts';
import { leafBytes, leafCountFor, leafOf, openingPositions, type Opening } from '../../../src/inspections/openings.ts';
import type { Sha256 } from '../../../src/inspections/sha256.ts';
import { SolverError, type ChallengeSolver } from './solver.ts';

export const CPU_SOLVER_MAX_N = 1024;
/** Committed challenges kept for opening; older ones are dropped (each holds 4n² bytes per GPU). */
const KEPT_CHALLENGES = 2;

// node:crypto rather than Web Crypto: the runner supports Node 18, which has no global `crypto`.
const nodeSha256: Sha256 = async (data) => new Uint8Array(createHash('sha256').update(data).digest());

interface Committed {
  challenge: CapacityChallenge;
  products: Int32Array[];
  trees: MerkleTree[];
}

export interface CpuSolverOptions {
  maxN?: number;
  sha256?: Sha256;
  /** The product of one GPU; replaceable so tests can model a dishonest prover. */
  product?: (aRows: Int8Array, bColumns: Int8Array, n: number, gpu: number) => Int32Array;
}

export function createCpuSolver(options: CpuSolverOptions = {}): ChallengeSolver {
  const maxN = options.maxN ?? CPU_SOLVER_MAX_N;
  const sha256 = options.sha256 ?? nodeSha256;
  const product = options.product ?? ((a, b, n) => multiply(a, b, n));
  const committed = new Map<string, Committed>();

  return {
    name: 'cpu',
    maxN,
    async commit(input) {
      const parsed = CapacityChallengeSchema.safeParse(input);
      if (!parsed.success) throw new SolverError('invalid', 'the capacity challenge is malformed');
      const challenge = parsed.data;
      if (challenge.n > maxN) throw new SolverError('too_large', `n = ${challenge.n} is above this solver's ${maxN}`);
      const { seed, n, leafSize } = challengeParams(challenge);
      const products: Int32Array[] = [];
      const trees: MerkleTree[] = [];
      for (let gpu = 0; gpu < challenge.gpu_count; gpu++) {
        const a = generateLines(await matrixKey(seed, gpu, 'A', sha256), n);
        const b = generateLines(await matrixKey(seed, gpu, 'B', sha256), n);
        const c = product(a, b, n, gpu);
        products.push(c);
        trees.push(await buildMerkleTree(leafCountFor(n, leafSize), (leaf) => leafBytes(c, n, leafSize, leaf), sha256));
      }
      committed.delete(challenge.challenge_id);
      committed.set(challenge.challenge_id, { challenge, products, trees });
      for (const id of committed.keys()) if (committed.size > KEPT_CHALLENGES) committed.delete(id);
      return { challenge_id: challenge.challenge_id, roots: trees.map((t) => toHex(merkleRoot(t))) };
    },
    async open(input) {
      const parsed = OpeningRequestSchema.safeParse(input);
      if (!parsed.success) throw new SolverError('invalid', 'the opening request is malformed');
      const request = parsed.data;
      const state = committed.get(request.challenge_id);
      if (!state) throw new SolverError('unknown_challenge', `no commitment for challenge ${request.challenge_id}`);
      committed.delete(request.challenge_id);
      const { seed, n, leafSize } = challengeParams(state.challenge);
      const openSeed = fromHex(request.open_seed)!;
      const gpus: Opening[][] = [];
      for (let gpu = 0; gpu < state.products.length; gpu++) {
        const positions = await openingPositions(seed, openSeed, gpu, n, request.count, sha256);
        gpus.push(
          positions.map((position) => {
            const { leafIndex } = leafOf(n, leafSize, position);
            return { leafIndex, leaf: leafBytes(state.products[gpu]!, n, leafSize, leafIndex), path: merklePath(state.trees[gpu]!, leafIndex) };
          }),
        );
      }
      return encodeOpenings(request.challenge_id, gpus);
    },
  };
}
