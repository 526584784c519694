// Orders expire by the book's alarm on the local platform (workerd's real alarms, not a test
// helper firing them): a resting bid whose expires_at passes is closed as `expired` and its hold
// released, with nobody asking about it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiClient, signUp } from '../support/e2e.ts';
import { freePort, launch, type Platform } from '../support/platform.ts';

const work = mkdtempSync(join(tmpdir(), 'gridlease-expiry-e2e-'));
let platform: Platform | undefined;
afterAll(async () => {
  await platform?.stop();
  rmSync(work, { recursive: true, force: true });
});
const api = apiClient(() => platform!.url);

describe('order expiry on the local platform', () => {
  it('closes a resting bid as expired at its expires_at and releases its hold', { timeout: 90_000 }, async () => {
    platform = await launch({ dataDir: join(work, 'data'), port: await freePort(), libsqlPort: await freePort() });
    const renter = await signUp(api, 'expiry', ['renter']);
    expect((await api('/v1/dev/faucet', { auth: renter.key, key: true, body: { asset: 'USD', amount: '10.00' } })).status).toBe(201);
    const placed = await api('/v1/orders', {
      auth: renter.key,
      key: true,
      body: { side: 'buy', region: 'us-east', gpu_model: 'h100-80gb', gpus: 1, price: '0.50', duration_s: 600, expires_at: new Date(Date.now() + 3_000).toISOString(), pay_with: 'USD', workload: { image: 'docker.io/library/busybox:1.36', command: ['true'], env: {}, ports: [] } },
    });
    expect(placed.status, JSON.stringify(placed.body)).toBe(201);
    expect(placed.body.order.status).toBe('open');
    const id = placed.body.order.id as string;
    await expect.poll(async () => (await api(`/v1/orders/${id}`, { auth: renter.key })).body.order?.status ?? (await api(`/v1/orders/${id}`, { auth: renter.key })).body.status, { timeout: 30_000, interval: 500 }).toBe('expired');
    const balances = (await api('/v1/balances', { auth: renter.key })).body.data as Array<{ asset: string; available: string; held: string }>;
    expect(balances.find((b) => b.asset === 'USD')).toMatchObject({ available: '10.00', held: '0.00' });
  });
});
