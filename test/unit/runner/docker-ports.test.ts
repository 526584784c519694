// Workload ports are published on free host ports from the runner's range, never one host port
// for two live leases, and the mapping goes to the API in the `started` event.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { dockerRunner, startLease } from './docker-fixture.ts';
import { freePort } from './helpers.ts';

const always = async () => true;
const lease = (n: number, ports: number[]) => startLease({ id: `cmd_${n}`, lease_id: `lse_${n}`, gpu_indices: [n], workload: { image: 'ghcr.io/acme/serve:1', command: [], env: {}, ports } });
const published = (argv: string[]) => argv.flatMap((a, i) => (argv[i - 1] === '-p' ? [a] : []));
/** The container port → host port map a lease's `started` event carried. */
function startedPorts(events: ReturnType<typeof dockerRunner>['events'], leaseId: string): Record<string, number> {
  const found = events.find((e) => e.leaseId === leaseId && e.event.type === 'started');
  if (found?.event.type !== 'started') throw new Error(`${leaseId} did not start: ${JSON.stringify(events)}`);
  return found.event.ports ?? {};
}

describe('docker executor host ports', () => {
  it('gives two leases asking for port 8888 different host ports, and reports each mapping when started', async () => {
    const { leases, calls, events } = dockerRunner({}, { portRange: { first: 40_000, last: 40_009 }, portIsFree: always });
    await Promise.all([leases.start(lease(0, [8888])), leases.start(lease(1, [8888, 22]))]);
    const runs = calls().filter((c) => c[0] === 'run');
    const byLease = Object.fromEntries(runs.map((argv) => [argv[argv.indexOf('--name') + 1], published(argv)]));
    const [a, b] = [startedPorts(events, 'lse_0'), startedPorts(events, 'lse_1')];
    expect(a).toEqual({ '8888': expect.any(Number) });
    expect(b).toEqual({ '8888': expect.any(Number), '22': expect.any(Number) });
    const hostPorts = [a['8888']!, b['8888']!, b['22']!];
    expect(new Set(hostPorts).size).toBe(3);
    expect(hostPorts.every((p) => p >= 40_000 && p <= 40_009)).toBe(true);
    expect(byLease['gridlease-lse_0']).toEqual([`${a['8888']}:8888`]);
    expect(byLease['gridlease-lse_1']).toEqual([`${b['8888']}:8888`, `${b['22']}:22`]);
    await leases.shutdown(true);
  });

  it('skips a host port that something else on the machine listens on', async () => {
    const first = await freePort();
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(first, '0.0.0.0', resolve));
    try {
      const { leases, events } = dockerRunner({}, { portRange: { first, last: first + 20 } });
      await leases.start(lease(0, [8888]));
      const host = startedPorts(events, 'lse_0')['8888'];
      expect(host).toBeGreaterThan(first);
      expect(host).toBeLessThanOrEqual(first + 20);
      await leases.shutdown(true);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('tries other host ports when docker finds one taken that the bind check could not see', async () => {
    const { leases, calls, events } = dockerRunner({ FAKE_DOCKER_BUSY_PORTS: '40300,40301' }, { portRange: { first: 40_300, last: 40_309 }, portIsFree: always });
    await leases.start(lease(0, [8888]));
    expect(startedPorts(events, 'lse_0')).toEqual({ '8888': 40_302 });
    const verbs = calls().filter((c) => c[0] !== 'wait').map((c) => (c[0] === 'run' ? `run ${published(c).join(' ')}` : c.join(' ')));
    expect(verbs).toEqual(['run 40300:8888', 'rm -f -v gridlease-lse_0', 'run 40301:8888', 'rm -f -v gridlease-lse_0', 'run 40302:8888']);
    await leases.shutdown(true);
  });

  it('fails the lease when the range has no free port left, and hands a port out again once its lease is over', async () => {
    const { leases, events, exitContainer } = dockerRunner({}, { portRange: { first: 40_500, last: 40_500 }, portIsFree: always });
    await leases.start(lease(0, [8888]));
    await leases.start(lease(1, [8888]));
    expect(events.map((e) => [e.leaseId, e.event.type === 'failed' ? e.event.reason : e.event.type])).toEqual([
      ['lse_0', 'started'],
      ['lse_1', 'no free host port in 40500-40500 for 1 workload port'],
    ]);
    exitContainer('gridlease-lse_0', 0);
    await leases.exited('lse_0');
    await leases.start(lease(2, [8888]));
    expect(startedPorts(events, 'lse_2')).toEqual({ '8888': 40_500 });
    await leases.shutdown(true);
  });

  it('recovers the host ports of containers adopted after a restart, and does not hand them out again', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const { leases, calls, events } = dockerRunner(
      { FAKE_DOCKER_PS: `gridlease-lse_old\tlse_old\t${future}\t{"8888":40700,"22":40701}` },
      { portRange: { first: 40_700, last: 40_702 }, portIsFree: always },
    );
    await leases.adopt();
    expect(calls()[0]).toEqual(['ps', '-a', '--filter', 'label=gridlease.lease', '--format', '{{.Names}}\t{{.Label "gridlease.lease"}}\t{{.Label "gridlease.ends_at"}}\t{{.Label "gridlease.ports"}}']);
    await leases.start(lease(5, [8888]));
    expect(startedPorts(events, 'lse_5')).toEqual({ '8888': 40_702 });
    await leases.shutdown(true);
  });
});
