import { describe, expect, it } from 'vitest';
import type { CapacityChallenge } from '../../../src/contracts/inspections.ts';
import { createCpuSolver } from '../../../runner/src/inspections/cpu-solver.ts';
import { DEFAULT_GPU_SOLVER_IMAGE, dockerSolverCommand } from '../../../runner/src/inspections/gpu-solver.ts';
import type { ChallengeSolver } from '../../../runner/src/inspections/solver.ts';
import { createSolver, describeSolver, gpuSolverCommand } from '../../../runner/src/inspections/solvers.ts';
import { MAX_CAPACITY_N } from '../../../src/inspections/sizing.ts';

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
  it('run --solver gpu as the GPU solver process, whose command the environment can replace', async () => {
    const gpu = createSolver('gpu', { GRIDLEASE_GPU_SOLVER_CMD: '/nonexistent/gridlease-capacity --verbose' });
    expect(gpu).toMatchObject({ name: 'gpu', maxN: MAX_CAPACITY_N });
    await expect(gpu.commit(challenge)).rejects.toMatchObject({ name: 'SolverError', code: 'invalid', message: expect.stringContaining('could not be run') });
    expect(gpuSolverCommand({})).toEqual(dockerSolverCommand(DEFAULT_GPU_SOLVER_IMAGE));
    expect(gpuSolverCommand({ GRIDLEASE_GPU_SOLVER_IMAGE: 'registry.example/capacity:2' })).toEqual(dockerSolverCommand('registry.example/capacity:2'));
    expect(gpuSolverCommand({ GRIDLEASE_GPU_SOLVER_CMD: ' /opt/capacity  -q ', GRIDLEASE_GPU_SOLVER_IMAGE: 'ignored' })).toEqual(['/opt/capacity', '-q']);
    expect(DEFAULT_GPU_SOLVER_IMAGE).toBe('gridlease/capacity-solver:0.1.0');
    expect(describeSolver('gpu', { GRIDLEASE_GPU_SOLVER_CMD: '/opt/capacity' })).toBe('gpu (CUDA solver, capacity challenges up to n = 133120: /opt/capacity)');
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
