import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, launch } from '../support/platform.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-e2e-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function post(url: string, body: unknown, auth?: string, idempotencyKey?: string) {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(auth ? { authorization: `Bearer ${auth}` } : {}),
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
    },
    body: JSON.stringify(body),
  });
}

describe('npm start', () => {
  it('runs the platform, stops cleanly on SIGTERM, and keeps its data across restarts', async () => {
    const port = await freePort();
    const libsqlPort = await freePort();
    const first = await launch({ dataDir, port, libsqlPort });
    expect(first.output()).toContain(`http://127.0.0.1:${port}`);
    expect(first.output()).toContain(`http://127.0.0.1:${libsqlPort}`);

    expect(await (await fetch(`${first.url}/healthz`)).json()).toEqual({ status: 'ok', db: 'ok' });
    const email = `e2e.${Date.now()}@example.com`;
    const created = await post(`${first.url}/v1/accounts`, { email, password: 'Orbital-Lathe-5521', roles: ['provider'] });
    expect(created.status).toBe(201);
    const { api_key } = (await created.json()) as { api_key: { key: string } };
    const token = ((await (await post(`${first.url}/v1/auth/token`, { grant_type: 'api_key', api_key: api_key.key })).json()) as { access_token: string }).access_token;
    expect(statSync(join(dataDir, 'secrets.json')).mode & 0o777).toBe(0o600);

    // Money on a development server: the faucet, and a card deposit paid on the mock Stripe
    // checkout page, credited by the signed webhook the mock delivers to the Worker.
    const faucet = await post(`${first.url}/v1/dev/faucet`, { asset: 'GRID', amount: '50.00' }, api_key.key, 'faucet-1');
    expect(faucet.status).toBe(201);
    const deposit = await post(`${first.url}/v1/deposits`, { asset: 'USD', amount: '12.34', method: 'card' }, api_key.key, 'card-1');
    const { deposit: started } = (await deposit.json()) as { deposit: { id: string; checkout_url: string } };
    const paid = await fetch(`${started.checkout_url}/pay`, { method: 'POST', redirect: 'manual' });
    expect(paid.status).toBe(303);
    const landing = await fetch(paid.headers.get('location')!);
    expect(await landing.text()).toContain(started.id);
    await expect
      .poll(async () => {
        const res = await fetch(`${first.url}/v1/balances`, { headers: { authorization: `Bearer ${api_key.key}` } });
        return ((await res.json()) as { data: { asset: string; available: string }[] }).data;
      }, { timeout: 10_000 })
      .toEqual(expect.arrayContaining([{ asset: 'USD', available: '12.34', held: '0.00' }, { asset: 'GRID', available: '50.00', held: '0.00' }]));

    expect(await first.stop()).toBe(0);
    expect(first.output()).toContain('stopped');
    expect(await accepts(port)).toBe(false);
    expect(await accepts(libsqlPort)).toBe(false);

    // Same data folder: the account, its key and the signing key survive.
    const second = await launch({ dataDir, port, libsqlPort });
    try {
      const me = await fetch(`${second.url}/v1/accounts/me`, { headers: { authorization: `Bearer ${api_key.key}` } });
      expect(me.status).toBe(200);
      expect(((await me.json()) as { account: { email: string } }).account.email).toBe(email);
      const viaToken = await fetch(`${second.url}/v1/accounts/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(viaToken.status).toBe(200);
      const duplicate = await post(`${second.url}/v1/accounts`, { email, password: 'Orbital-Lathe-5521', roles: ['renter'] });
      expect(duplicate.status).toBe(409);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });

  it('fails with a clear message, starting nothing, when a port is taken', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    const libsqlPort = await freePort();
    try {
      const err = (await launch({ dataDir, port, libsqlPort }).then(
        () => {
          throw new Error('started despite the taken port');
        },
        (e: unknown) => e,
      )) as { code: number; output: string };
      expect(err.code).toBe(1);
      expect(err.output).toContain(`port ${port}`);
      expect(err.output).toContain('already in use');
      expect(err.output).toContain('PORT');
      expect(await accepts(libsqlPort)).toBe(false);
    } finally {
      blocker.close();
    }
  });
});
