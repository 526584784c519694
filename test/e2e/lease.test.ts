// Leases end to end: the bundled gridlease-runner with a fake nvidia-smi and the process
// executor on two machines, against the local platform. A renter buys on each; one lease runs
// its paid minute and completes with balances exact to the micro-unit; the other machine's
// runner is killed mid-lease and that lease fails within the grace period plus a flush, billed
// only for confirmed seconds and refunded the rest.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, freePort, launch, type Platform } from '../support/platform.ts';
import { startWebhookSink, type WebhookSink } from '../support/webhook-sink.ts';
import { signatureHeader } from '../../src/webhooks/signature.ts';

const RUNNER = join(ROOT, 'runner', 'dist', 'gridlease-runner.js');
const SMI = join(ROOT, 'test', 'fixtures', 'nvidia-smi');
const GRACE_S = 4;
const FLUSH_S = 1;

const work = mkdtempSync(join(tmpdir(), 'gridlease-lease-e2e-'));
let platform: Platform | undefined;
let sink: WebhookSink | undefined;
const runners: ChildProcess[] = [];
afterAll(async () => {
  for (const r of runners) r.kill('SIGKILL');
  await platform?.stop();
  await sink?.close();
  rmSync(work, { recursive: true, force: true });
});

async function api(path: string, init: { method?: string; body?: unknown; auth?: string; key?: string } = {}) {
  const res = await fetch(`${platform!.url}${path}`, {
    method: init.method ?? (init.body ? 'POST' : 'GET'),
    headers: {
      'content-type': 'application/json',
      ...(init.auth ? { authorization: `Bearer ${init.auth}` } : {}),
      ...(init.key ? { 'idempotency-key': init.key } : {}),
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function account(roles: string[]) {
  const res = await api('/v1/accounts', { body: { email: `${roles[0]}.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Lease-Harbor-4417', roles } });
  expect(res.status).toBe(201);
  return { id: res.body.account.id as string, key: res.body.api_key.key as string };
}

/** Joins a machine with the given nvidia-smi fixture and starts its runner with the process executor. */
async function machine(providerKey: string, name: string, gpus: string, metrics: string) {
  const { join_token } = (await api('/v1/nodes/join-tokens', { method: 'POST', auth: providerKey })).body;
  const config = join(work, name, 'runner.json');
  const env = { ...process.env, GRIDLEASE_CONFIG: config, GRIDLEASE_NVIDIA_SMI: join(SMI, 'fake-nvidia-smi'), FAKE_SMI_GPUS: join(SMI, gpus), FAKE_SMI_METRICS: join(SMI, metrics) };
  const joined = spawnSync(process.execPath, [RUNNER, 'join', '--api', platform!.url, '--token', join_token, '--region', 'us-west'], { env, encoding: 'utf8' });
  expect(joined.status, joined.stderr).toBe(0);
  const nodeId = JSON.parse(readFileSync(config, 'utf8')).node_id as string;
  const child = spawn(process.execPath, [RUNNER, 'start', '--executor', 'process'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  runners.push(child);
  await expect.poll(async () => (await api(`/v1/nodes/${nodeId}`, { auth: providerKey })).body.node?.status, { timeout: 20_000, interval: 250 }).toBe('online');
  return { nodeId, child, log: () => log };
}

// Runs until stopped, or until its runner is gone: the SIGKILLed runner below cannot stop it, and
// a dead machine's workloads do not outlive it either.
const workload = { image: 'local/process', command: [process.execPath, '-e', 'const p = process.ppid; setInterval(() => { if (process.ppid !== p) process.exit(0); }, 250)'], env: {}, ports: [] };
const micro = (s: string) => BigInt(Math.round(Number(s) * 1e6));

describe('leases on real runners', () => {
  it('completes a paid minute with exact balances, and fails a killed machine’s lease within the grace', async () => {
    platform = await launch({
      dataDir: join(work, 'data'),
      port: await freePort(),
      libsqlPort: await freePort(),
      env: { HEARTBEAT_INTERVAL_S: '1', HEARTBEAT_MIN_INTERVAL_S: '0.5', HEARTBEAT_FLUSH_S: String(FLUSH_S), NODE_GRACE_S: String(GRACE_S), LEASE_SETTLE_S: '5' },
    });
    const [provider, renter] = await Promise.all([account(['provider']), account(['renter'])]);
    expect((await api('/v1/dev/faucet', { body: { asset: 'USD', amount: '100.00' }, auth: renter.key, key: crypto.randomUUID() })).status).toBe(201);
    sink = await startWebhookSink();
    const hook = await api('/v1/webhook-endpoints', {
      auth: renter.key,
      body: { url: `${sink.url}/renter-hooks`, events: ['order.filled', 'lease.running', 'lease.completed', 'lease.failed'] },
    });
    expect(hook.status, JSON.stringify(hook.body)).toBe(201);
    const hooks = async () =>
      ((await (await fetch(`${sink!.url}/received?path=/renter-hooks`)).json()) as Array<{ headers: Record<string, string>; body: string }>).map((r) => ({
        ...r,
        event: JSON.parse(r.body) as { id: string; type: string; data: Record<string, unknown> },
      }));
    const [a100, h100] = await Promise.all([
      machine(provider.key, 'a100', 'a100x8-header-units.csv', 'metrics-a100x8-header-units.csv'),
      machine(provider.key, 'h100', 'h100.csv', 'metrics-h100.csv'),
    ]);

    // $3.60 per GPU-hour is $0.001 per GPU-second.
    const sell = (nodeId: string, model: string, gpus: number) =>
      api('/v1/orders', { auth: provider.key, key: crypto.randomUUID(), body: { side: 'sell', region: 'us-west', gpu_model: model, gpus, price: '3.60', node_id: nodeId } });
    const buy = (model: string, gpus: number, duration_s: number) =>
      api('/v1/orders', { auth: renter.key, key: crypto.randomUUID(), body: { side: 'buy', region: 'us-west', gpu_model: model, gpus, price: '3.60', duration_s, pay_with: 'USD', workload } });
    expect((await sell(a100.nodeId, 'a100-80gb', 2)).status).toBe(201);
    expect((await sell(h100.nodeId, 'h100-80gb', 1)).status).toBe(201);
    const minute = await buy('a100-80gb', 2, 60);
    const doomed = await buy('h100-80gb', 1, 300);
    expect(minute.status, JSON.stringify(minute.body)).toBe(201);
    expect(doomed.status, JSON.stringify(doomed.body)).toBe(201);
    const [minuteId, doomedId] = [minute.body.leases[0].id as string, doomed.body.leases[0].id as string];
    const leaseOf = async (id: string) => (await api(`/v1/leases/${id}`, { auth: renter.key })).body.lease;

    // Both start on their machines.
    await expect.poll(async () => (await leaseOf(minuteId)).state, { timeout: 20_000, interval: 250 }).toBe('running');
    await expect.poll(async () => (await leaseOf(doomedId)).state, { timeout: 20_000, interval: 250 }).toBe('running');

    // The H100 machine dies without a word a few seconds in.
    await new Promise((r) => setTimeout(r, 5_000));
    h100.child.kill('SIGKILL');
    const killedAt = Date.now();
    await expect.poll(async () => (await leaseOf(doomedId)).state, { timeout: 30_000, interval: 250 }).toBe('failed');
    const detectedAfterS = (Date.now() - killedAt) / 1000;
    expect(detectedAfterS, `failure seen ${detectedAfterS} s after the kill`).toBeLessThanOrEqual(GRACE_S + FLUSH_S + 5);
    const failed = await leaseOf(doomedId);
    expect(failed.history.at(-1).reason).toMatch(/no heartbeat/);
    // Charged about the five confirmed seconds of one GPU ($0.001 each), never the silence.
    expect(micro(failed.billed)).toBeGreaterThanOrEqual(3_000n);
    expect(micro(failed.billed)).toBeLessThanOrEqual(8_000n);

    // The A100 lease runs its paid minute; the runner stops it at the end by itself.
    await expect.poll(async () => (await leaseOf(minuteId)).state, { timeout: 90_000, interval: 500 }).toBe('completed');
    await expect.poll(async () => (await api('/v1/balances', { auth: renter.key })).body.data.find((b: { asset: string }) => b.asset === 'USD').held, { timeout: 15_000, interval: 500 }).toBe('0.00');
    const done = await leaseOf(minuteId);
    const billedMinute = micro(done.billed);
    // 2 GPUs × 60 s × $0.001 = $0.12 at most; at least the 55 s the heartbeats surely confirmed.
    expect(billedMinute).toBeLessThanOrEqual(120_000n);
    expect(billedMinute).toBeGreaterThanOrEqual(110_000n);

    // Exact to the micro-unit: the renter paid what was billed; the provider got it less 5%.
    const totalBilled = billedMinute + micro(failed.billed);
    const usd = async (key: string) => (await api('/v1/balances', { auth: key })).body.data.find((b: { asset: string }) => b.asset === 'USD');
    expect(micro((await usd(renter.key)).available)).toBe(100_000_000n - totalBilled);
    const fee = (b: bigint) => (b * 500n) / 10_000n;
    expect(micro((await usd(provider.key)).available)).toBe(billedMinute - fee(billedMinute) + micro(failed.billed) - fee(micro(failed.billed)));
    expect(a100.log()).not.toMatch(/TypeError|ReferenceError/);

    // The renter heard about all of it by webhook, each event once, each signed.
    await expect.poll(async () => (await hooks()).length, { timeout: 15_000, interval: 500 }).toBe(6);
    const got = await hooks();
    const typesOf = (leaseId: string) => got.filter((h) => h.event.data.lease_id === leaseId).map((h) => h.event.type).sort();
    expect(typesOf(minuteId)).toEqual(['lease.completed', 'lease.running', 'order.filled']);
    expect(typesOf(doomedId)).toEqual(['lease.failed', 'lease.running', 'order.filled']);
    const failedHook = got.find((h) => h.event.type === 'lease.failed')!;
    expect(failedHook.event.data).toMatchObject({ lease_id: doomedId, billed: failed.billed });
    const t = Number(/t=(\d+)/.exec(failedHook.headers['gridlease-signature']!)![1]);
    expect(failedHook.headers['gridlease-signature']).toBe(await signatureHeader(hook.body.secret, failedHook.body, t));
  }, 180_000);
});
