// A DockerExecutor driving the fake docker CLI (test/fixtures/docker), with a LeaseManager that
// records the events it reports, and the docker argv of every call.
import fs from 'node:fs';
import path from 'node:path';
import type { LeaseEvent } from '../../../src/contracts/runner.ts';
import { DockerExecutor, type DockerExecutorOptions } from '../../../runner/src/executors/docker.ts';
import { LeaseManager, type StartLease } from '../../../runner/src/leases.ts';
import { memoryLogger } from '../../../runner/src/log.ts';
import { DOCKER_DIR, tempDir } from './helpers.ts';

export const ENDS_AT = '2099-01-01T00:00:00.000Z';

export function dockerRunner(extra: Record<string, string> = {}, options: DockerExecutorOptions = {}) {
  const dir = tempDir();
  const logFile = path.join(dir, 'docker.log');
  const env = { ...process.env, PATH: `${DOCKER_DIR}${path.delimiter}${process.env.PATH}`, FAKE_DOCKER_LOG: logFile, FAKE_DOCKER_STATE: dir, FAKE_DOCKER_NODE: process.execPath, ...extra };
  const executor = new DockerExecutor({ env, ...options });
  const events: { leaseId: string; event: LeaseEvent }[] = [];
  const log = memoryLogger();
  const leases = new LeaseManager({ executor, events: { report: (leaseId, event) => events.push({ leaseId, event }) }, log, graceMs: 5_000 });
  const docker = (): { argv: string[]; env: Record<string, string | null> }[] =>
    fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
  const calls = (): string[][] => docker().map((c) => c.argv);
  const exitContainer = (name: string, code: number) => fs.writeFileSync(path.join(dir, `${name}.exit`), String(code));
  return { dir, executor, events, leases, calls, docker, exitContainer, log };
}

export const startLease = (over: Partial<StartLease> = {}): StartLease => ({
  id: 'cmd_1',
  type: 'start_lease',
  lease_id: 'lse_42',
  workload: { image: 'ghcr.io/acme/train:1.2', command: ['python', 'train.py', '--epochs', '3'], env: { HF_TOKEN: 'hf_x', MODE: 'a b' }, ports: [8080, 22] },
  gpu_indices: [1, 3],
  ends_at: ENDS_AT,
  lease_token: 'lt_1',
  ...over,
});
