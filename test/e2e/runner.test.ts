// The bundled gridlease-runner against the local platform, with a fake nvidia-smi on an
// eight-GPU machine: join, start, online with the right GPUs, heartbeats through the queue
// into the roll-ups, a command from the mailbox run on exactly its GPUs, and offline after
// the grace period once the runner is killed; the challenges issued at join answered and the
// node verified.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, freePort, launch, type Platform } from '../support/platform.ts';

const RUNNER = join(ROOT, 'runner', 'dist', 'gridlease-runner.js');
const FAKE_SMI = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'fake-nvidia-smi');
const A100X8 = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'a100x8-header-units.csv');
const A100X8_METRICS = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'metrics-a100x8-header-units.csv');

const work = mkdtempSync(join(tmpdir(), 'gridlease-runner-e2e-'));
let platform: Platform | undefined;
afterAll(async () => {
  await platform?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function api(path: string, init: { method?: string; body?: unknown; auth?: string } = {}) {
  const res = await fetch(`${platform!.url}${path}`, {
    method: init.method ?? (init.body ? 'POST' : 'GET'),
    headers: { 'content-type': 'application/json', ...(init.auth ? { authorization: `Bearer ${init.auth}` } : {}) },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('gridlease-runner on the local platform', () => {
  it('joins, heartbeats through the queue, runs commands on its GPUs, and goes offline when killed', async () => {
    platform = await launch({
      dataDir: join(work, 'data'),
      port: await freePort(),
      libsqlPort: await freePort(),
      env: { HEARTBEAT_INTERVAL_S: '1', HEARTBEAT_MIN_INTERVAL_S: '0.5', HEARTBEAT_FLUSH_S: '1', NODE_GRACE_S: '4' },
    });
    const signup = await api('/v1/accounts', { body: { email: `runner.${Date.now()}@example.com`, password: 'Provider-Lathe-2291', roles: ['provider'] } });
    const key = signup.body.api_key.key as string;
    const { join_token } = (await api('/v1/nodes/join-tokens', { method: 'POST', auth: key })).body;

    const config = join(work, 'runner', 'runner.json');
    const env = { ...process.env, GRIDLEASE_CONFIG: config, GRIDLEASE_NVIDIA_SMI: FAKE_SMI, FAKE_SMI_GPUS: A100X8, FAKE_SMI_METRICS: A100X8_METRICS };
    const joined = spawnSync(process.execPath, [RUNNER, 'join', '--api', platform.url, '--token', join_token, '--region', 'us-east'], { env, encoding: 'utf8' });
    expect(joined.status, joined.stderr).toBe(0);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    const nodeId = JSON.parse(readFileSync(config, 'utf8')).node_id as string;

    const runner = spawn(process.execPath, [RUNNER, 'start', '--executor', 'process'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    runner.stdout.on('data', (d) => (log += d));
    runner.stderr.on('data', (d) => (log += d));
    try {
      await expect
        .poll(async () => (await api(`/v1/nodes/${nodeId}`, { auth: key })).body.node?.status, { timeout: 20_000, interval: 500 })
        .toBe('online');
      const { node, metrics } = (await api(`/v1/nodes/${nodeId}`, { auth: key })).body;
      expect(node.gpus).toHaveLength(8);
      // The key the runner made at join is the one registered: its owner sees the fingerprint status prints.
      const status = spawnSync(process.execPath, [RUNNER, 'status'], { env, encoding: 'utf8' });
      expect(node.key_fingerprint).toMatch(/^[0-9a-f]{16}$/);
      expect(status.stdout).toContain(`node_key: ed25519, fingerprint ${node.key_fingerprint}`);
      expect(new Set(node.gpus.map((g: { model: string }) => g.model))).toEqual(new Set(['a100-80gb']));
      await expect.poll(async () => (await api(`/v1/nodes/${nodeId}`, { auth: key })).body.metrics.length, { timeout: 10_000 }).toBeGreaterThan(0);
      expect(metrics).toBeDefined();

      // The challenges issued at join (identity, and capacity on all eight GPUs at the local
      // platform's liveness size) are answered at once, signed, and the node becomes verified.
      await expect.poll(async () => (await api(`/v1/nodes/${nodeId}`, { auth: key })).body.node.verified, { timeout: 30_000, interval: 500 }).toBe(true);
      const verified = (await api(`/v1/nodes/${nodeId}`, { auth: key })).body.node;
      expect(Date.parse(verified.verified_until)).toBeGreaterThan(Date.now());
      expect(log).toMatch(/identity: passed/);
      expect(log).toMatch(/capacity: passed/);

      // An operator puts a workload in the node's mailbox; the runner runs it on GPUs 1 and 3 only.
      const admin = await api('/v1/accounts', { body: { email: `ops.${Date.now()}@example.com`, password: 'Operator-Quill-7720', roles: ['renter'] } });
      const adminKey = admin.body.api_key.key as string;
      const { createClient } = await import('@libsql/client/node');
      const dbClient = createClient({ url: `file:${join(work, 'data', 'gridlease.db')}` });
      await dbClient.execute({ sql: `UPDATE accounts SET roles = '["renter","admin"]' WHERE id = ?`, args: [admin.body.account.id] });
      dbClient.close();
      const out = join(work, 'gpus.txt');
      const command = {
        id: 'cmd_e2e_1',
        type: 'start_lease',
        lease_id: 'lease_e2e_1',
        workload: {
          image: 'local/process',
          command: [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(out)}, process.env.CUDA_VISIBLE_DEVICES ?? 'unset')`],
          env: {},
          ports: [],
        },
        gpu_indices: [1, 3],
        ends_at: new Date(Date.now() + 60_000).toISOString(),
        lease_token: 'lease-token',
      };
      expect((await api(`/v1/admin/nodes/${nodeId}/commands`, { body: command, auth: adminKey })).status).toBe(202);
      await expect.poll(() => existsSync(out) && readFileSync(out, 'utf8'), { timeout: 15_000, interval: 250 }).toBe('1,3');
    } finally {
      runner.kill('SIGKILL');
    }

    // Killed without a goodbye: the Collector's alarm notices the silence.
    await expect
      .poll(async () => (await api(`/v1/nodes/${nodeId}`, { auth: key })).body.node.status, { timeout: 20_000, interval: 500 })
      .toBe('offline');
    expect(log).not.toMatch(/TypeError|ReferenceError/);
  });
});
