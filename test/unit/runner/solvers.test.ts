import { describe, expect, it } from 'vitest';
import type { CapacityChallenge } from '../../../src/contracts/inspections.ts';
import { RunnerError } from '../../../runner/src/errors.ts';
import { createCpuSolver } from '../../../runner/src/inspections/cpu-solver.ts';
import type { ChallengeSolver } from '../../../runner/src/inspections/solver.ts';
import { createSolver, describeSolver } from '../../../runner/src/inspections/solvers.ts';

const challenge: CapacityChallenge = {
  kind: 'capacity',
  challenge_id: 'chl_turns',
  seed: '3c'.repeat(32),
  n: 256,
  gpu_count: 2,
  leaf_size: 16,
  deadline: '2099-01-01T00:00:00.000Z',
};

/** Commits and counts the event-loop turns that other work (a heartbeat timer) got meanwhile. */
async function commitCountingTurns(solver: ChallengeSolver) {
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const commitment = await solver.commit(challenge);
  running = false;
  return { commitment, turns };
}

describe('challenge solvers', () => {
  it('refuse --solver gpu until a GPU solver ships, with a clear message', () => {
    expect(() => createSolver('gpu')).toThrow(RunnerError);
    expect(() => createSolver('gpu')).toThrow('the GPU challenge solver is not available yet: use --solver cpu');
    expect(describeSolver('cpu')).toBe('cpu (reference solver in TypeScript: capacity challenges up to n = 1024)');
  });

  it('the runner’s cpu solver gives the reference bytes and lets timers run while it works', async () => {
    const reference = await commitCountingTurns(createCpuSolver());
    const runner = await commitCountingTurns(createSolver('cpu'));
    expect(runner.commitment).toEqual(reference.commitment);
    // The plain solver holds the thread for the whole challenge; the runner's yields while hashing.
    expect(reference.turns).toBe(0);
    expect(runner.turns).toBeGreaterThan(2);
  });
});
