// Inspector bonds: the role is earned by bonding GRID, lost below the minimum, and an
// unbonding stays bonded until the cron releases it after the cool-down.
import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { connection } from '../../src/db/client.ts';
import { accounts } from '../../src/db/schema.ts';
import { releaseMaturedUnbondings } from '../../src/inspections/bonds.ts';
import { accessToken, balances, call, db, expectError, fund, json, signUp, type TestAccount } from './support.ts';

const COOLDOWN_MS = 14 * 86_400 * 1000;

function bond(account: TestAccount, amount: unknown, key: string | null = crypto.randomUUID(), extra: Record<string, unknown> = {}) {
  return call('/v1/inspectors/bond', { auth: account.apiKey, headers: key === null ? {} : { 'idempotency-key': key }, body: { amount, ...extra } });
}

function unbond(account: TestAccount, amount: unknown, key: string = crypto.randomUUID()) {
  return call('/v1/inspectors/unbond', { auth: account.apiKey, headers: { 'idempotency-key': key }, body: { amount } });
}

async function roles(account: TestAccount): Promise<string[]> {
  return (await json(await call('/v1/accounts/me', { auth: account.apiKey }))).account.roles;
}

async function me(account: TestAccount) {
  const res = await call('/v1/inspectors/me', { auth: account.apiKey });
  expect(res.status).toBe(200);
  return json(res);
}

/** The account's ledger transactions: how many, and each one's entries summed per asset. */
async function ledgerOf(account: TestAccount) {
  const money = connection(env).money;
  const txs = await money.execute({
    sql: `SELECT transaction_id, asset, SUM(amount) AS total FROM ledger_entries
          WHERE transaction_id IN (SELECT transaction_id FROM ledger_entries WHERE owner_id = ?) GROUP BY transaction_id, asset`,
    args: [account.id],
  });
  const negative = await money.execute({ sql: 'SELECT COUNT(*) AS n FROM ledger_entries WHERE owner_id = ? AND balance_after < 0', args: [account.id] });
  return {
    transactions: new Set(txs.rows.map((r) => String(r.transaction_id))).size,
    unbalanced: txs.rows.filter((r) => BigInt(r.total as bigint) !== 0n).length,
    negative: Number(negative.rows[0]!.n),
  };
}

async function expectLedgerSound(account: TestAccount) {
  const l = await ledgerOf(account);
  expect(l.unbalanced).toBe(0);
  expect(l.negative).toBe(0);
}

async function inspectorCandidate(grid = '5000') {
  const account = await signUp(['provider']);
  await fund(account, 'GRID', grid);
  return account;
}

describe('POST /v1/inspectors/bond', () => {
  it('grants the inspector role only once the bond reaches the minimum', async () => {
    const a = await inspectorCandidate();
    const below = await bond(a, '999.999999');
    expect(below.status).toBe(201);
    expect((await json(below)).bond).toMatchObject({ kind: 'bond', amount: '999.999999', status: 'bonded' });
    expect(await roles(a)).not.toContain('inspector');
    expect(await me(a)).toMatchObject({ bonded: '999.999999', active: '999.999999', min_bond: '1000.00', inspector: false });

    expect((await bond(a, '0.000001')).status).toBe(201);
    expect(await roles(a)).toEqual(['provider', 'inspector']);
    expect(await me(a)).toMatchObject({ bonded: '1000.00', inspector: true });

    expect((await bond(a, '500')).status).toBe(201);
    expect(await roles(a)).toEqual(['provider', 'inspector']);
    expect((await balances(a)).GRID).toEqual({ available: '3500.00', held: '0.00' });
    await expectLedgerSound(a);
  });

  it('grants the role to one bond above the minimum', async () => {
    const a = await inspectorCandidate();
    expect((await bond(a, '2500.50')).status).toBe(201);
    expect(await roles(a)).toContain('inspector');
    expect(await me(a)).toMatchObject({ bonded: '2500.50', unbonding: '0.00', inspector: true });
  });

  it('answers a repeated key with the first bond and posts one ledger transaction', async () => {
    const a = await inspectorCandidate();
    const key = crypto.randomUUID();
    const first = await bond(a, '1200', key);
    expect(first.status).toBe(201);
    const before = await ledgerOf(a);
    const again = await bond(a, '1200', key);
    expect(again.status).toBe(200);
    expect((await json(again)).bond).toEqual((await json(first)).bond);
    expect((await ledgerOf(a)).transactions).toBe(before.transactions);
    expect((await balances(a)).GRID!.available).toBe('3800.00');

    await expectError(await bond(a, '1300', key), 409, 'idempotency_conflict');
    expect((await balances(a)).GRID!.available).toBe('3800.00');
    expect((await me(a)).bonded).toBe('1200.00');
  });

  it.each([
    ['negative', '-5'],
    ['zero', '0'],
    ['too many decimals', '1000.0000001'],
    ['a number, not a string', 1000],
    ['an exponent', '1e3'],
  ])('refuses %s with a 400 and changes nothing', async (_, amount) => {
    const a = await inspectorCandidate();
    await expectError(await bond(a, amount), 400, 'validation_failed');
    expect((await balances(a)).GRID!.available).toBe('5000.00');
    expect((await me(a)).bonded).toBe('0.00');
  });

  it('refuses unknown fields and a missing Idempotency-Key, and changes nothing', async () => {
    const a = await inspectorCandidate();
    await expectError(await bond(a, '1000', crypto.randomUUID(), { asset: 'USD' }), 400, 'validation_failed');
    await expectError(await bond(a, '1000', null), 400, 'missing_idempotency_key');
    expect((await balances(a)).GRID!.available).toBe('5000.00');
    expect(await roles(a)).not.toContain('inspector');
  });

  it('refuses a bond larger than the available GRID with a 402 and changes nothing', async () => {
    const a = await inspectorCandidate('999');
    await expectError(await bond(a, '1000'), 402, 'insufficient_funds');
    expect((await balances(a)).GRID!.available).toBe('999.00');
    expect(await me(a)).toMatchObject({ bonded: '0.00', inspector: false });
    expect((await ledgerOf(a)).transactions).toBe(1);
  });

  it('refuses a suspended account (403 with a token issued before, 401 with its API key) and moves nothing', async () => {
    const a = await inspectorCandidate();
    const token = await accessToken(a);
    await db().update(accounts).set({ status: 'suspended' }).where(eq(accounts.id, a.id));
    const viaToken = await call('/v1/inspectors/bond', { auth: token, headers: { 'idempotency-key': crypto.randomUUID() }, body: { amount: '1000' } });
    await expectError(viaToken, 403, 'forbidden');
    await expectError(await bond(a, '1000'), 401, 'unauthorized');
    const money = connection(env).money;
    const rs = await money.execute({ sql: "SELECT COUNT(*) AS n FROM ledger_accounts WHERE owner_id = ? AND kind = 'bonded'", args: [a.id] });
    expect(Number(rs.rows[0]!.n)).toBe(0);
    const [row] = await db().select({ roles: accounts.roles }).from(accounts).where(eq(accounts.id, a.id));
    expect(row!.roles).not.toContain('inspector');
  });

  it('keeps the bond out of escrow: held stays zero', async () => {
    const a = await inspectorCandidate();
    await bond(a, '1000');
    expect((await balances(a)).GRID).toEqual({ available: '4000.00', held: '0.00' });
  });

  it('shows the bond in the ledger as its own account, bonded', async () => {
    const a = await inspectorCandidate();
    await bond(a, '1000');
    const { data } = await json(await call('/v1/ledger/entries?limit=5', { auth: a.apiKey }));
    const movement = data.filter((e: { kind: string }) => e.kind === 'bond');
    expect(movement.map((e: { account: string; amount: string }) => [e.account, e.amount]).sort()).toEqual([
      ['available', '-1000.00'],
      ['bonded', '1000.00'],
    ]);
  });
});

describe('POST /v1/inspectors/unbond', () => {
  it('withdraws the role at once but keeps the money bonded until the cool-down ends, then the cron releases it once', async () => {
    const a = await inspectorCandidate();
    await bond(a, '1500');
    const res = await unbond(a, '600');
    expect(res.status).toBe(201);
    const { unbonding } = await json(res);
    expect(unbonding).toMatchObject({ kind: 'unbond', amount: '600.00', status: 'pending', released_at: null });
    const releaseAt = Date.parse(unbonding.release_at);
    expect(releaseAt - Date.parse(unbonding.created_at)).toBe(COOLDOWN_MS);

    expect(await roles(a)).not.toContain('inspector');
    expect(await me(a)).toMatchObject({ bonded: '1500.00', unbonding: '600.00', active: '900.00', inspector: false });
    expect((await balances(a)).GRID!.available).toBe('3500.00');

    // Not yet due: nothing moves.
    expect((await releaseMaturedUnbondings(connection(env).money, releaseAt - 1)).released).not.toContain(unbonding.id);
    expect((await balances(a)).GRID!.available).toBe('3500.00');

    const before = await ledgerOf(a);
    expect((await releaseMaturedUnbondings(connection(env).money, releaseAt + 60_000)).released).toContain(unbonding.id);
    expect((await releaseMaturedUnbondings(connection(env).money, releaseAt + 120_000)).released).not.toContain(unbonding.id);
    expect((await ledgerOf(a)).transactions).toBe(before.transactions + 1);
    expect((await balances(a)).GRID!.available).toBe('4100.00');
    expect(await me(a)).toMatchObject({ bonded: '900.00', unbonding: '0.00', unbondings: [] });
    await expectLedgerSound(a);
  });

  it('keeps the role while what remains is at least the minimum', async () => {
    const a = await inspectorCandidate();
    await bond(a, '1500');
    expect((await unbond(a, '500')).status).toBe(201);
    expect(await roles(a)).toContain('inspector');
  });

  it('refuses to unbond more than is bonded less what is already unbonding (409)', async () => {
    const a = await inspectorCandidate();
    await bond(a, '1000');
    await expectError(await unbond(a, '1000.000001'), 409, 'conflict');
    expect((await unbond(a, '700')).status).toBe(201);
    await expectError(await unbond(a, '300.01'), 409, 'conflict');
    expect(await me(a)).toMatchObject({ bonded: '1000.00', unbonding: '700.00' });
  });

  it('lets only as many concurrent unbondings through as the bond covers', async () => {
    const a = await inspectorCandidate();
    await bond(a, '1000');
    const results = await Promise.all(Array.from({ length: 5 }, () => unbond(a, '400')));
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409]);
    expect(await me(a)).toMatchObject({ bonded: '1000.00', unbonding: '800.00', active: '200.00' });
  });

  it('answers a repeated key with the first unbonding; another amount under it is a 409', async () => {
    const a = await inspectorCandidate();
    await bond(a, '1000');
    const key = crypto.randomUUID();
    const first = await unbond(a, '100', key);
    expect(first.status).toBe(201);
    const again = await unbond(a, '100', key);
    expect(again.status).toBe(200);
    expect((await json(again)).unbonding).toEqual((await json(first)).unbonding);
    await expectError(await unbond(a, '200', key), 409, 'idempotency_conflict');
    expect((await me(a)).unbonding).toBe('100.00');
  });

  it('refuses a bad amount with a 400', async () => {
    const a = await inspectorCandidate();
    await bond(a, '1000');
    for (const amount of ['-1', '0', 'ten', 5]) await expectError(await unbond(a, amount), 400, 'validation_failed');
    expect((await me(a)).unbonding).toBe('0.00');
  });
});

describe('credentials', () => {
  it('needs a credential on every route', async () => {
    await expectError(await call('/v1/inspectors/me'), 401, 'unauthorized');
    for (const path of ['/v1/inspectors/bond', '/v1/inspectors/unbond']) {
      await expectError(await call(path, { headers: { 'idempotency-key': crypto.randomUUID() }, body: { amount: '1000' } }), 401, 'unauthorized');
    }
  });

  it('needs funds:write to bond or unbond and funds:read to look, and a read-only key moves nothing', async () => {
    const a = await inspectorCandidate();
    const minted = await call('/v1/api-keys', { auth: a.apiKey, body: { name: 'read only', scopes: ['funds:read'] } });
    expect(minted.status).toBe(201);
    const readOnly = (await json(minted)).api_key.key;
    const asReader = (path: string) => call(path, { auth: readOnly, headers: { 'idempotency-key': crypto.randomUUID() }, body: { amount: '1000' } });
    await expectError(await asReader('/v1/inspectors/bond'), 403, 'forbidden');
    await expectError(await asReader('/v1/inspectors/unbond'), 403, 'forbidden');
    expect((await call('/v1/inspectors/me', { auth: readOnly })).status).toBe(200);
    expect((await balances(a)).GRID!.available).toBe('5000.00');

    const none = await call('/v1/api-keys', { auth: a.apiKey, body: { name: 'orders only', scopes: ['orders:read'] } });
    await expectError(await call('/v1/inspectors/me', { auth: (await json(none)).api_key.key }), 403, 'forbidden');
  });
});
