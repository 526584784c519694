import { describe, expect, it } from 'vitest';
import { DockerExecutor } from '../../../runner/src/executors/docker.ts';
import { ENDS_AT, dockerRunner, startLease } from './docker-fixture.ts';
import { waitFor } from './helpers.ts';

const PORTS = { portRange: { first: 40_000, last: 40_099 }, portIsFree: async () => true };
const setup = (extra: Record<string, string> = {}, options: { memory?: string; cpus?: string } = {}) => dockerRunner(extra, { ...PORTS, ...options });

describe('docker executor', () => {
  it('runs a detached, labelled container on exactly the leased GPUs, then waits, reports and removes it', async () => {
    const { leases, calls, events, exitContainer } = setup({}, { memory: '64g', cpus: '16' });
    await leases.start(startLease());
    expect(calls()[0]).toEqual([
      'run', '-d',
      '--name', 'gridlease-lse_42',
      '--label', 'gridlease.lease=lse_42',
      '--label', `gridlease.ends_at=${ENDS_AT}`,
      '--label', 'gridlease.ports={"22":40001,"8080":40000}',
      '--gpus', '"device=1,3"',
      '--restart', 'no',
      '--network', 'bridge', '--ipc', 'private', '--security-opt', 'no-new-privileges', '--cap-drop', 'ALL',
      '--cap-add', 'CHOWN', '--cap-add', 'DAC_OVERRIDE', '--cap-add', 'FOWNER', '--cap-add', 'SETGID', '--cap-add', 'SETUID',
      '--log-driver', 'local', '--log-opt', 'max-size=20m', '--log-opt', 'max-file=5',
      '--pids-limit', '16384',
      '--memory', '64g',
      '--cpus', '16',
      '-p', '40000:8080',
      '-p', '40001:22',
      '-e', 'HF_TOKEN=hf_x',
      '-e', 'MODE=a b',
      '-e', 'NVIDIA_VISIBLE_DEVICES=1,3',
      '-e', 'GRIDLEASE_LEASE_ID=lse_42',
      '-e', `GRIDLEASE_LEASE_ENDS_AT=${ENDS_AT}`,
      '--', 'ghcr.io/acme/train:1.2', 'python', 'train.py', '--epochs', '3',
    ]);
    expect(events[0]).toEqual({ leaseId: 'lse_42', event: { type: 'started', at: expect.any(String), ports: { '8080': 40_000, '22': 40_001 } } });
    await waitFor(() => calls().some((c) => c[0] === 'wait'), 5_000, 'docker wait');
    expect(calls().find((c) => c[0] === 'wait')).toEqual(['wait', 'gridlease-lse_42']);

    exitContainer('gridlease-lse_42', 3);
    await leases.exited('lse_42');
    expect(events[1]!.event).toMatchObject({ type: 'exited', exit_code: 3 });
    await waitFor(() => calls().some((c) => c[0] === 'rm'), 5_000, 'docker rm');
    expect(calls().find((c) => c[0] === 'rm')).toEqual(['rm', '-f', '-v', 'gridlease-lse_42']);
  });

  it('stops with docker stop and the grace in seconds', async () => {
    const { leases, calls, events } = setup();
    await leases.start(startLease({ gpu_indices: [0], workload: { image: 'alpine', command: [], env: {}, ports: [] } }));
    expect(calls()[0]).toContain('"device=0"');
    await leases.stop('lse_42', 'stop_lease');
    expect(calls()).toContainEqual(['stop', '-t', '5', 'gridlease-lse_42']);
    expect(events.map((e) => e.event)).toMatchObject([{ type: 'started' }, { type: 'exited', exit_code: 143 }]);
    expect(events[0]!.event).not.toHaveProperty('ports');
    expect(leases.snapshot()).toEqual([{ lease_id: 'lse_42', state: 'stopped' }]);
  });

  it('reports failed with docker’s message when docker run fails, and cleans up', async () => {
    const { leases, calls, events } = setup({ FAKE_DOCKER_RUN_FAIL: 'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].' });
    await leases.start(startLease());
    expect(events).toEqual([
      { leaseId: 'lse_42', event: { type: 'failed', at: expect.any(String), reason: 'docker run failed: docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].' } },
    ]);
    expect(calls()[1]).toEqual(['rm', '-f', '-v', 'gridlease-lse_42']);
  });

  it('leaves containers running on shutdown, and a later runner adopts them by label and enforces their end', async () => {
    const first = setup();
    await first.leases.start(startLease());
    await waitFor(() => first.calls().some((c) => c[0] === 'wait'), 5_000, 'docker wait');
    await first.leases.shutdown(false);
    expect(first.calls().map((c) => c[0])).toEqual(['run', 'wait']); // no stop, no rm
    expect(first.events.map((e) => e.event.type)).toEqual(['started']);
    expect(first.leases.snapshot()).toEqual([{ lease_id: 'lse_42', state: 'running' }]); // for the final heartbeat

    const past = new Date(Date.now() - 1000).toISOString();
    const second = setup({ FAKE_DOCKER_PS: `gridlease-lse_42\tlse_42\t${past}` });
    await second.leases.adopt();
    expect(second.calls()[0]).toEqual(['ps', '-a', '--filter', 'label=gridlease.lease', '--format', '{{.Names}}\t{{.Label "gridlease.lease"}}\t{{.Label "gridlease.ends_at"}}\t{{.Label "gridlease.ports"}}']);
    await waitFor(() => second.events.find((e) => e.event.type === 'exited'), 5_000, 'the adopted lease to be stopped');
    expect(second.calls()).toContainEqual(['stop', '-t', '5', 'gridlease-lse_42']);
    expect(second.leases.snapshot()).toEqual([{ lease_id: 'lse_42', state: 'stopped' }]);
  });

  it('stops containers on shutdown when asked to', async () => {
    const { leases, calls } = setup();
    await leases.start(startLease());
    await leases.shutdown(true);
    expect(calls()).toContainEqual(['stop', '-t', '5', 'gridlease-lse_42']);
    expect(leases.snapshot()).toEqual([{ lease_id: 'lse_42', state: 'stopped' }]);
  });

  it('says clearly when docker is missing', async () => {
    const executor = new DockerExecutor({ bin: '/nonexistent/docker' });
    await expect(executor.check()).rejects.toThrow('docker not found (/nonexistent/docker): install Docker and the NVIDIA Container Toolkit, or use --executor process');
  });
});
