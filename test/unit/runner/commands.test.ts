import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandProcessor } from '../../../runner/src/commands.ts';
import type { Challenge } from '../../../src/contracts/inspections.ts';
import type { StartLease } from '../../../runner/src/leases.ts';
import { memoryLogger } from '../../../runner/src/log.ts';
import { CommandState } from '../../../runner/src/state.ts';
import { tempDir } from './helpers.ts';

const start = (id: string, lease_id = 'lse_1') => ({
  id,
  type: 'start_lease',
  lease_id,
  workload: { image: 'img', command: [], env: {}, ports: [] },
  gpu_indices: [0],
  ends_at: '2099-01-01T00:00:00Z',
  lease_token: 'lt',
});

function setup(file: string | null = null) {
  const calls: string[] = [];
  const challenges = { answer: async (c: Challenge) => void calls.push(`answer ${c.kind} ${c.challenge_id}`) };
  const log = memoryLogger();
  const state = CommandState.load(file, 'node_1');
  const leases = {
    start: async (c: StartLease) => void calls.push(`start ${c.lease_id}`),
    stop: async (id: string, reason: string) => void calls.push(`stop ${id} ${reason}`),
    extend: async (id: string, endsAt: Date) => void calls.push(`extend ${id} ${endsAt.toISOString()}`),
    refuse: async (id: string, reason: string) => void calls.push(`refuse ${id} ${reason}`),
  };
  return { calls, log, state, processor: new CommandProcessor(state, leases, log, challenges) };
}

describe('commands', () => {
  it('run each id once and are acked', async () => {
    const { calls, state, processor } = setup();
    await processor.handle([start('c1'), start('c1')]);
    await processor.handle([
      start('c1'),
      { id: 'c2', type: 'extend_lease', lease_id: 'lse_1', ends_at: '2099-01-02T00:00:00Z' },
      { id: 'c2', type: 'extend_lease', lease_id: 'lse_1', ends_at: '2099-01-02T00:00:00Z' },
    ]);
    await processor.handle([start('c1'), { id: 'c2b', type: 'stop_lease', lease_id: 'lse_1', reason: 'renter stopped it' }]);
    expect(calls).toEqual(['start lse_1', 'extend lse_1 2099-01-02T00:00:00.000Z', 'stop lse_1 renter stopped it']);
    expect(state.pendingAcks()).toEqual(['c1', 'c2', 'c2b']);
    state.acknowledged(['c1', 'c2', 'c2b']);
    // Resent after the ack was delivered (the server lost it): acked again, not run again.
    await processor.handle([start('c1')]);
    expect(calls).toHaveLength(3);
    expect(state.pendingAcks()).toEqual(['c1']);
  });

  it('are not run again after a restart (state file)', async () => {
    const file = path.join(tempDir(), 'runner.state.json');
    const before = setup(file);
    await before.processor.handle([start('c1')]);
    const after = setup(file);
    await after.processor.handle([start('c1'), start('c3', 'lse_3')]);
    expect(after.calls).toEqual(['start lse_3']);
    expect(after.state.pendingAcks()).toEqual(['c1', 'c3']);
  });

  it('hand a challenge to the responder at once and ack it; unknown commands are acked without running; a malformed start fails its lease', async () => {
    const { calls, log, state, processor } = setup();
    await processor.handle([
      { id: 'c1', type: 'challenge', challenge: { kind: 'identity', challenge_id: 'ch_1', nonce: 'ab'.repeat(32), deadline: '2030-01-01T00:00:00.000Z' } },
      { id: 'c2', type: 'reboot_everything' },
      { id: 'c3', type: 'start_lease', lease_id: 'lse_x' }, // malformed
      { type: 'stop_lease' }, // no id: cannot be acked
      { id: 'c4', type: 'challenge', challenge: { kind: 'identity', challenge_id: '../../etc/passwd', nonce: 'ab'.repeat(32), deadline: '2030-01-01T00:00:00.000Z' } },
    ]);
    expect(calls).toEqual(['answer identity ch_1', 'refuse lse_x malformed start_lease (workload: Invalid input: expected object, received undefined)']);
    expect(state.pendingAcks()).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(log.lines).toEqual([
      'info challenge ch_1 identity: received, answering',
      'warn command c2: ignored, type "reboot_everything" is not understood by this runner (update it?)',
      expect.stringMatching(/^warn command c3: ignored, malformed \(workload: /),
      'warn ignored a command without a usable id',
      expect.stringMatching(/^warn command c4: ignored, malformed \(challenge/),
    ]);
  });
});
