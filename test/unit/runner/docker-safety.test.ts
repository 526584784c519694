// What a hostile renter can make the docker executor do: nothing but run its image, unprivileged,
// on the leased GPUs. The same corpus as the schema tests, at the runner this time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandProcessor } from '../../../runner/src/commands.ts';
import { dockerRunArgs } from '../../../runner/src/executors/docker.ts';
import { CommandState } from '../../../runner/src/state.ts';
import { ENDS_AT, dockerRunner, startLease } from './docker-fixture.ts';
import { HOSTILE_IMAGES, RANDOM_RUNS, RESERVED_ENV_KEYS, SAFE_IMAGE_SHAPE, randomImage } from './hostile-workloads.ts';

const spec = (image: string) => ({ leaseId: 'lse_1', workload: { image, command: [], env: {}, ports: [] }, gpuIndices: [0], endsAt: new Date(ENDS_AT) });
const failures = (events: ReturnType<typeof dockerRunner>['events']) =>
  events.map((e) => (e.event.type === 'failed' ? e.event.reason : `not failed: ${e.event.type}`));

describe('docker executor against hostile workloads', () => {
  it('fails each lease of the hostile image corpus, from the API’s commands, without running docker', async () => {
    const { leases, calls, events, log } = dockerRunner();
    const processor = new CommandProcessor(CommandState.load(null, 'node_1'), leases, log, { answer: async () => undefined });
    await processor.handle(HOSTILE_IMAGES.map((image, i) => startLease({ id: `cmd_${i}`, lease_id: `lse_${i}`, workload: { ...startLease().workload, image } })));
    expect(events.map((e) => e.leaseId)).toEqual(HOSTILE_IMAGES.map((_, i) => `lse_${i}`));
    expect(new Set(failures(events))).toEqual(new Set([expect.stringMatching(/^the workload was refused: workload\.image: must be an image reference/)]));
    expect(calls()).toEqual([]);
    expect(leases.snapshot().every((l) => l.state === 'failed')).toBe(true);
  });

  it('fails them too when a start skips the schema, and never runs docker', async () => {
    const { leases, calls, events } = dockerRunner();
    for (const [i, image] of HOSTILE_IMAGES.entries()) await leases.start(startLease({ lease_id: `lse_${i}`, workload: { ...startLease().workload, image } }));
    expect(failures(events)).toEqual(HOSTILE_IMAGES.map(() => expect.stringMatching(/^the workload was refused: workload\.image: /)));
    expect(calls()).toEqual([]);
  });

  it('fails leases whose env would override the pinned GPU and lease variables, or carries NUL', async () => {
    const { leases, calls, events } = dockerRunner();
    const envs = [...RESERVED_ENV_KEYS.map((k) => ({ [k]: 'all' })), { MODE: 'a\u0000b' }];
    for (const [i, env] of envs.entries()) await leases.start(startLease({ lease_id: `lse_${i}`, workload: { ...startLease().workload, env } }));
    expect(failures(events)).toEqual(envs.map((env) => expect.stringMatching(new RegExp(`^the workload was refused: workload\\.env\\.${Object.keys(env)[0]}: `))));
    expect(calls()).toEqual([]);
  });

  it('fails leases whose ports are not ports, or repeat one', async () => {
    const { leases, calls, events } = dockerRunner();
    const portLists = [[0], [65_536], [8888.5], [-22], [8888, 8888]];
    for (const [i, ports] of portLists.entries()) await leases.start(startLease({ lease_id: `lse_${i}`, workload: { ...startLease().workload, ports } }));
    expect(failures(events)).toEqual(portLists.map(() => expect.stringMatching(/^the workload was refused: workload\.ports/)));
    expect(calls()).toEqual([]);
  });

  it('builds a docker argv only for images the schema accepts, always with `--` right before the image (1,000 random strings)', () => {
    fc.assert(
      fc.property(randomImage, (image) => {
        let argv: string[];
        try {
          argv = dockerRunArgs(spec(image), {});
        } catch {
          return true;
        }
        return argv.at(-2) === '--' && argv.at(-1) === image && SAFE_IMAGE_SHAPE.test(image) && argv.indexOf('--') === argv.length - 2;
      }),
      RANDOM_RUNS,
    );
    for (const image of HOSTILE_IMAGES) expect(() => dockerRunArgs(spec(image), {})).toThrow('workload.image');
  });
});

describe('docker executor confinement', () => {
  it('runs a hostile workload unprivileged, on its GPUs only, with options ended before the image: the whole argv', async () => {
    const { leases, calls, events } = dockerRunner({}, { memory: '64g', cpus: '16', portRange: { first: 40_000, last: 40_009 }, portIsFree: async () => true });
    const workload = {
      image: 'ghcr.io/acme/train:1.2',
      command: ['--privileged', '--volume=/:/host', '--network=host', '-e', 'NVIDIA_VISIBLE_DEVICES=all'],
      env: { DOCKER_HOST: 'tcp://203.0.113.9:2375', LD_PRELOAD: '/tmp/x.so', MODE: '--privileged' },
      ports: [8888, 22],
    };
    await leases.start(startLease({ workload }));
    expect(calls()[0]).toEqual([
      'run', '-d',
      '--name', 'gridlease-lse_42',
      '--label', 'gridlease.lease=lse_42',
      '--label', `gridlease.ends_at=${ENDS_AT}`,
      '--label', 'gridlease.ports={"22":40001,"8888":40000}',
      '--gpus', '"device=1,3"',
      '--restart', 'no',
      '--network', 'bridge',
      '--ipc', 'private',
      '--security-opt', 'no-new-privileges',
      '--cap-drop', 'ALL',
      '--cap-add', 'CHOWN', '--cap-add', 'DAC_OVERRIDE', '--cap-add', 'FOWNER', '--cap-add', 'SETGID', '--cap-add', 'SETUID',
      '--log-driver', 'local', '--log-opt', 'max-size=20m', '--log-opt', 'max-file=5',
      '--pids-limit', '16384',
      '--memory', '64g',
      '--cpus', '16',
      '-p', '40000:8888',
      '-p', '40001:22',
      '-e', 'DOCKER_HOST=tcp://203.0.113.9:2375',
      '-e', 'LD_PRELOAD=/tmp/x.so',
      '-e', 'MODE=--privileged',
      '-e', 'NVIDIA_VISIBLE_DEVICES=1,3',
      '-e', 'GRIDLEASE_LEASE_ID=lse_42',
      '-e', `GRIDLEASE_LEASE_ENDS_AT=${ENDS_AT}`,
      '--',
      'ghcr.io/acme/train:1.2', '--privileged', '--volume=/:/host', '--network=host', '-e', 'NVIDIA_VISIBLE_DEVICES=all',
    ]);
    expect(events[0]!.event).toEqual({ type: 'started', at: expect.any(String), ports: { '8888': 40_000, '22': 40_001 } });
    await leases.shutdown(true);
  });
});
