// What the API accepts as a workload (the schema is shared: the runner checks it again).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WorkloadSchema } from '../../../src/contracts/runner.ts';
import { GOOD_IMAGES, HOSTILE_IMAGES, RANDOM_RUNS, RESERVED_ENV_KEYS, SAFE_IMAGE_SHAPE, randomImage } from './hostile-workloads.ts';

const ok = { image: 'ghcr.io/acme/train:1.2', command: ['python', 'train.py'], env: { EPOCHS: '3' }, ports: [8888] };
const issuesOf = (workload: unknown) => {
  const r = WorkloadSchema.safeParse(workload);
  return r.success ? [] : r.error.issues.map((i) => i.path.map(String).join('.'));
};

describe('workload schema', () => {
  it('accepts ordinary image references, with registry, port, tag and digest', () => {
    for (const image of GOOD_IMAGES) expect([image, issuesOf({ ...ok, image })]).toEqual([image, []]);
  });

  it('refuses every image of the hostile corpus, naming the image field', () => {
    for (const image of HOSTILE_IMAGES) expect([image, issuesOf({ ...ok, image })]).toEqual([image, ['image']]);
  });

  it('accepts, of 1,000 random strings, only lowercase option-free references', () => {
    let accepted = 0;
    fc.assert(
      fc.property(randomImage, (image) => {
        if (!WorkloadSchema.safeParse({ ...ok, image }).success) return true;
        accepted++;
        return SAFE_IMAGE_SHAPE.test(image) && !image.startsWith('-');
      }),
      RANDOM_RUNS,
    );
    expect(accepted).toBeLessThan(RANDOM_RUNS.numRuns / 2); // the generator does reach the refusals
  });

  it('refuses env keys that would steer the GPU runtime or overwrite the lease’s own variables', () => {
    for (const key of RESERVED_ENV_KEYS) expect([key, issuesOf({ ...ok, env: { [key]: 'all' } })]).toEqual([key, [`env.${key}`]]);
    expect(issuesOf({ ...ok, env: { CUDA_HOME: '/usr/local/cuda', NVIDIA: 'x', MY_GRIDLEASE_ID: 'y' } })).toEqual([]);
  });

  it('refuses NUL and control characters in env values, keeping tabs and line breaks (PEM keys)', () => {
    expect(issuesOf({ ...ok, env: { KEY: '-----BEGIN KEY-----\r\nabc\n\t-----END KEY-----\n' } })).toEqual([]);
    for (const value of ['a\u0000b', '\u001b[2J', 'a\u0007', 'x\u007f', '\u0085']) {
      expect([value, issuesOf({ ...ok, env: { KEY: value } })]).toEqual([value, ['env.KEY']]);
    }
    expect(issuesOf({ ...ok, env: { 'A=B': 'x' } })).toEqual(['env.A=B']);
    expect(issuesOf({ ...ok, env: { '-e': 'x' } })).toEqual(['env.-e']);
  });

  it('refuses NUL in command elements, and passes anything else (it follows the image)', () => {
    expect(issuesOf({ ...ok, command: ['sh', '-c', 'echo a\nb', '--privileged'] })).toEqual([]);
    expect(issuesOf({ ...ok, command: ['sh', 'a\u0000b'] })).toEqual(['command.1']);
  });

  it('refuses the same port twice', () => {
    expect(issuesOf({ ...ok, ports: [8888, 22, 8888] })).toEqual(['ports']);
    expect(issuesOf({ ...ok, ports: [0] })).toEqual(['ports.0']);
  });
});
