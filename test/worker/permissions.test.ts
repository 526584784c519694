import { describe, expect, it } from 'vitest';
import { accessToken, call, expectError, json, makeAdmin, signUp } from './support.ts';

/** Every private route, with the scope (and role) it needs. New routes are added here. */
const PRIVATE_ROUTES = [
  { method: 'GET', path: '/v1/accounts/me', scope: 'account:read' },
  { method: 'GET', path: '/v1/api-keys', scope: 'keys:read' },
  { method: 'POST', path: '/v1/api-keys', scope: 'keys:write', body: { name: 'k' } },
  { method: 'DELETE', path: '/v1/api-keys/key_doesnotexist', scope: 'keys:write' },
  { method: 'GET', path: '/v1/admin/accounts', scope: 'account:read', role: 'admin' },
  { method: 'POST', path: '/v1/admin/accounts/acc_x/status', scope: 'account:write', role: 'admin', body: { status: 'suspended', reason: 'test' } },
  { method: 'GET', path: '/v1/balances', scope: 'funds:read' },
  { method: 'GET', path: '/v1/ledger/entries', scope: 'funds:read' },
  { method: 'POST', path: '/v1/deposits', scope: 'funds:write', body: { asset: 'USDC', amount: '1.00', method: 'usdc' } },
  { method: 'GET', path: '/v1/deposits', scope: 'funds:read' },
  { method: 'GET', path: '/v1/deposits/dep_x', scope: 'funds:read' },
  { method: 'POST', path: '/v1/withdrawals', scope: 'funds:write', body: { asset: 'USDC', amount: '1.00', destination: '0x' + 'ab'.repeat(20) } },
  { method: 'GET', path: '/v1/withdrawals', scope: 'funds:read' },
  { method: 'GET', path: '/v1/withdrawals/wdr_x', scope: 'funds:read' },
  { method: 'GET', path: '/v1/admin/platform-balances', scope: 'funds:read', role: 'admin' },
  { method: 'POST', path: '/v1/admin/adjustments', scope: 'funds:write', role: 'admin', body: { account_id: 'acc_x', asset: 'USD', amount: '1.00', reason: 'test' } },
  { method: 'GET', path: '/v1/admin/withdrawals', scope: 'funds:read', role: 'admin' },
  { method: 'POST', path: '/v1/admin/withdrawals/wdr_x/settle', scope: 'funds:write', role: 'admin', body: { outcome: 'paid' } },
  { method: 'POST', path: '/v1/webhook-endpoints', scope: 'account:write', body: { url: 'https://hooks.example.com/h', events: ['lease.running'] } },
  { method: 'GET', path: '/v1/webhook-endpoints', scope: 'account:read' },
  { method: 'GET', path: '/v1/webhook-endpoints/whe_x', scope: 'account:read' },
  { method: 'DELETE', path: '/v1/webhook-endpoints/whe_x', scope: 'account:write' },
  { method: 'GET', path: '/v1/nodes/node_x/order-processing', scope: 'nodes:read' },
  { method: 'GET', path: '/v1/leases/lse_x/logs', scope: 'leases:read' },
  { method: 'GET', path: '/v1/leases/lse_x/logs/stream', scope: 'leases:read' },
  { method: 'GET', path: '/v1/leases/lse_x/metrics', scope: 'leases:read' },
  { method: 'POST', path: '/v1/nodes/node_x/stake', scope: 'funds:write', body: { amount: '1.00' } },
  { method: 'POST', path: '/v1/nodes/node_x/unstake', scope: 'funds:write', body: { amount: '1.00' } },
  { method: 'GET', path: '/v1/nodes/node_x/stake', scope: 'funds:read' },
  { method: 'GET', path: '/v1/admin/nodes/node_x/order-processing', scope: 'nodes:read', role: 'admin' },
  { method: 'POST', path: '/v1/admin/nodes/node_x/challenges', scope: 'nodes:write', role: 'admin', body: { kind: 'identity' } },
  { method: 'POST', path: '/v1/inspectors/bond', scope: 'funds:write', body: { amount: '1000.00' } },
  { method: 'POST', path: '/v1/inspectors/unbond', scope: 'funds:write', body: { amount: '1000.00' } },
  { method: 'GET', path: '/v1/inspectors/me', scope: 'funds:read' },
  { method: 'PUT', path: '/v1/inspectors/key', scope: 'inspections:write', body: { public_key: 'A'.repeat(43) } },
  { method: 'GET', path: '/v1/inspectors/assignments', scope: 'inspections:read' },
  { method: 'POST', path: '/v1/inspections/insp_x/commitment', scope: 'inspections:write', body: { commitment: 'ab'.repeat(32) } },
  {
    method: 'POST',
    path: '/v1/inspections/insp_x/verdict',
    scope: 'inspections:write',
    body: {
      verdict: { inspection_id: 'insp_x', inspector_id: 'acc_x', verdict: 'pass', reasons: [], entries_checked: 1, leases_checked: 0, lease_findings: 0 },
      salt: 'ab'.repeat(32),
      signature: 'A'.repeat(86),
    },
  },
  { method: 'POST', path: '/v1/inspections/commitments', scope: 'inspections:write', body: { items: [{ inspection_id: 'insp_x', commitment: 'ab'.repeat(32) }] } },
  {
    method: 'POST',
    path: '/v1/inspections/verdicts',
    scope: 'inspections:write',
    body: {
      items: [
        {
          inspection_id: 'insp_x',
          verdict: { inspection_id: 'insp_x', inspector_id: 'acc_x', verdict: 'pass', reasons: [], entries_checked: 1, leases_checked: 0, lease_findings: 0 },
          salt: 'ab'.repeat(32),
          signature: 'A'.repeat(86),
        },
      ],
    },
  },
  { method: 'POST', path: '/v1/admin/inspections/decoys', scope: 'inspections:write', role: 'admin', body: { expect: 'fail' } },
  { method: 'POST', path: '/v1/admin/rewards-pool/mint', scope: 'funds:write', role: 'admin', body: { amount: '1.00', reason: 'test' } },
  { method: 'POST', path: '/v1/admin/rewards/genesis', scope: 'funds:write', role: 'admin' },
  { method: 'GET', path: '/v1/rewards', scope: 'funds:read' },
] as const;

describe.each(PRIVATE_ROUTES)('$method $path', (route) => {
  const send = (auth?: string) =>
    call(route.path, { method: route.method, auth, body: 'body' in route ? route.body : undefined, headers: { 'idempotency-key': crypto.randomUUID() } });

  it('answers 401 without credentials', async () => {
    const res = await send();
    await expectError(res, 401, 'unauthorized');
    expect(res.headers.get('www-authenticate')).toContain('Bearer');
  });

  it('answers 401 for a garbage token and for an unknown API key', async () => {
    await expectError(await send('not-a-token'), 401, 'unauthorized');
    await expectError(await send(`glk_${'0'.repeat(40)}`), 401, 'unauthorized');
  });

  it(`answers 403 to a key without "${route.scope}"`, async () => {
    const account = await signUp();
    if ('role' in route) await makeAdmin(account);
    const other = route.scope === 'account:read' ? 'keys:read' : 'account:read';
    const key = (await json(await call('/v1/api-keys', { auth: account.apiKey, body: { name: 'narrow', scopes: [other] } }))).api_key.key;
    await expectError(await send(key), 403, 'forbidden');
  });

  if ('role' in route) {
    it(`answers 403 to an account without the ${route.role} role`, async () => {
      const account = await signUp(['renter', 'provider']);
      await expectError(await send(account.apiKey), 403, 'forbidden');
      await expectError(await send(await accessToken(account)), 403, 'forbidden');
    });
  }
});

describe('operators', () => {
  it('list accounts page by page', async () => {
    const admin = await signUp();
    await makeAdmin(admin);
    await signUp();
    await signUp();
    const first = await json(await call('/v1/admin/accounts?limit=2', { auth: admin.apiKey }));
    expect(first.data).toHaveLength(2);
    expect(first.next_cursor).toBe(first.data[1].id);
    const second = await json(await call(`/v1/admin/accounts?limit=2&cursor=${first.next_cursor}`, { auth: admin.apiKey }));
    expect(second.data[0].id).not.toBe(first.data[0].id);
    expect(second.data[0].created_at <= first.data[1].created_at).toBe(true);
    await expectError(await call('/v1/admin/accounts?limit=0', { auth: admin.apiKey }), 400, 'validation_failed');
    await expectError(await call('/v1/admin/accounts?sort=email', { auth: admin.apiKey }), 400, 'validation_failed');
  });

  it('suspend an account, which locks out its keys and its password login', async () => {
    const admin = await signUp();
    await makeAdmin(admin);
    const user = await signUp();
    const token = await accessToken(user);
    const res = await call(`/v1/admin/accounts/${user.id}/status`, { auth: admin.apiKey, body: { status: 'suspended', reason: 'chargeback fraud' } });
    expect(res.status).toBe(200);
    expect((await json(res)).account.status).toBe('suspended');
    await expectError(await call('/v1/accounts/me', { auth: user.apiKey }), 401, 'unauthorized');
    // A token issued before the suspension still verifies, but the account it names is locked.
    await expectError(await call('/v1/accounts/me', { auth: token }), 403, 'forbidden');
    await expectError(
      await call('/v1/auth/token', { body: { grant_type: 'password', email: user.email, password: user.password } }),
      403,
      'forbidden',
    );
    const back = await call(`/v1/admin/accounts/${user.id}/status`, { auth: admin.apiKey, body: { status: 'active', reason: 'resolved' } });
    expect(back.status).toBe(200);
    expect((await call('/v1/accounts/me', { auth: user.apiKey })).status).toBe(200);
  });

  it('get 404 for an unknown account and need a reason', async () => {
    const admin = await signUp();
    await makeAdmin(admin);
    await expectError(await call('/v1/admin/accounts/acc_nope/status', { auth: admin.apiKey, body: { status: 'suspended', reason: 'spam' } }), 404, 'not_found');
    await expectError(await call(`/v1/admin/accounts/${admin.id}/status`, { auth: admin.apiKey, body: { status: 'suspended' } }), 400, 'validation_failed');
  });
});
