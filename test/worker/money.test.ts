import { describe, expect, it } from 'vitest';
import { balances, call, entryCount, expectError, fund, idem, json, makeAdmin, signUp } from './support.ts';
import { buy, placed } from './trading.ts';

describe('GET /v1/balances', () => {
  it('lists every asset, zero until money arrives', async () => {
    const account = await signUp();
    expect(await balances(account)).toEqual({
      USD: { available: '0.00', held: '0.00' },
      USDC: { available: '0.00', held: '0.00' },
      GRID: { available: '0.00', held: '0.00' },
    });
    await fund(account, 'USDC', '12.345678');
    expect((await balances(account)).USDC).toEqual({ available: '12.345678', held: '0.00' });
  });
});

describe('GET /v1/ledger/entries', () => {
  it('pages through the caller’s entries newest first, and only theirs', async () => {
    const account = await signUp();
    const other = await signUp();
    for (const amount of ['1.00', '2.00', '3.00']) await fund(account, 'USD', amount);
    await fund(account, 'GRID', '4.00');
    await fund(other, 'USD', '99.00');

    const first = await json(await call('/v1/ledger/entries?limit=2', { auth: account.apiKey }));
    expect(first.data.map((e: { amount: string }) => e.amount)).toEqual(['4.00', '3.00']);
    expect(first.data[0]).toMatchObject({ kind: 'faucet', asset: 'GRID', account: 'available', balance_after: '4.00' });
    const second = await json(await call(`/v1/ledger/entries?limit=2&cursor=${first.next_cursor}`, { auth: account.apiKey }));
    expect(second.data.map((e: { amount: string }) => e.amount)).toEqual(['2.00', '1.00']);
    expect(second.next_cursor).toBeNull();

    const usd = await json(await call('/v1/ledger/entries?asset=USD', { auth: account.apiKey }));
    expect(usd.data.map((e: { balance_after: string }) => e.balance_after)).toEqual(['6.00', '3.00', '1.00']);
    await expectError(await call('/v1/ledger/entries?cursor=abc', { auth: account.apiKey }), 400, 'validation_failed');
  });

  it('narrows to the transactions about one order, lease, deposit or withdrawal with ?reference, the caller’s only', async () => {
    const renter = await signUp();
    const other = await signUp();
    await fund(renter, 'USD', '10.00');
    await fund(other, 'USD', '10.00');
    // Far below any ask, so both rest and only their escrow holds move money.
    const bid = (price: string) => buy('us-east', 't4-16gb', { gpus: 1, price, duration_s: 3600 });
    const { order: first } = await placed(renter, bid('0.05'));
    await placed(renter, bid('0.07'));
    const { order: theirs } = await placed(other, bid('0.05'));

    const mine = await json(await call(`/v1/ledger/entries?reference=${first.id}`, { auth: renter.apiKey }));
    const shape = (e: { kind: string; account: string; amount: string; reference: string }) => `${e.kind} ${e.account} ${e.amount} ${e.reference}`;
    expect(mine.data.map(shape).sort()).toEqual([`hold available -0.05 ${first.id}`, `hold held 0.05 ${first.id}`]);
    expect(mine.next_cursor).toBeNull();
    const paged = await json(await call(`/v1/ledger/entries?reference=${first.id}&limit=1`, { auth: renter.apiKey }));
    const rest = await json(await call(`/v1/ledger/entries?reference=${first.id}&limit=1&cursor=${paged.next_cursor}`, { auth: renter.apiKey }));
    expect([...paged.data, ...rest.data].map(shape)).toEqual(mine.data.map(shape));
    expect(rest.next_cursor).toBeNull();

    // Another account's order: nothing, as if it did not exist.
    expect((await json(await call(`/v1/ledger/entries?reference=${theirs.id}`, { auth: renter.apiKey }))).data).toEqual([]);
    for (const bad of ['', 'ord%20x', 'x'.repeat(201), "ord_1'--"]) {
      await expectError(await call(`/v1/ledger/entries?reference=${bad}`, { auth: renter.apiKey }), 400, 'validation_failed');
    }
  });
});

describe('amounts on the wire', () => {
  const bad: Array<[string, unknown]> = [
    ['seven decimals', '1.0000001'],
    ['zero', '0'],
    ['zero with decimals', '0.000000'],
    ['negative', '-5.00'],
    ['an exponent', '1e3'],
    ['a number instead of a string', 10],
    ['spaces', ' 10.00'],
    ['a trailing dot', '10.'],
    ['a leading plus', '+10'],
    ['too large', '1000000000.000001'],
  ];

  it.each(bad)('refuses %s with a 400, moving nothing', async (_what, amount) => {
    const account = await signUp();
    await fund(account, 'USDC', '100.00');
    const before = await balances(account);
    const res = await call('/v1/withdrawals', {
      auth: account.apiKey,
      headers: idem(),
      body: { asset: 'USDC', amount, destination: '0x' + 'ab'.repeat(20) },
    });
    await expectError(res, 400, 'validation_failed');
    expect(await balances(account)).toEqual(before);
    expect(await entryCount(account)).toBe(1);
  });

  it('refuses an unknown asset and unknown fields', async () => {
    const account = await signUp();
    await fund(account, 'USDC', '100.00');
    const destination = '0x' + 'ab'.repeat(20);
    await expectError(await call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'EUR', amount: '1.00', destination } }), 400, 'validation_failed');
    const extra = await call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'USDC', amount: '1.00', destination, fee: '0' } });
    expect((await expectError(extra, 400, 'validation_failed')).message).toContain('fee');
    expect((await balances(account)).USDC!.available).toBe('100.00');
  });

  it('requires an Idempotency-Key on money-moving requests', async () => {
    const account = await signUp();
    await fund(account, 'USDC', '100.00');
    const body = { asset: 'USDC', amount: '1.00', destination: '0x' + 'ab'.repeat(20) };
    await expectError(await call('/v1/withdrawals', { auth: account.apiKey, body }), 400, 'missing_idempotency_key');
    await expectError(await call('/v1/withdrawals', { auth: account.apiKey, body, headers: { 'idempotency-key': 'has space' } }), 400, 'missing_idempotency_key');
    await expectError(await call('/v1/deposits', { auth: account.apiKey, body: { asset: 'USDC', amount: '5.00', method: 'usdc' } }), 400, 'missing_idempotency_key');
    expect((await balances(account)).USDC!.available).toBe('100.00');
  });
});

describe('withdrawals', () => {
  const destination = '0x' + 'cd'.repeat(20);

  it('take the money out of the available balance at once, once per key', async () => {
    const account = await signUp();
    await fund(account, 'USDC', '100.00');
    const headers = idem();
    const first = await call('/v1/withdrawals', { auth: account.apiKey, headers, body: { asset: 'USDC', amount: '40.00', destination } });
    expect(first.status).toBe(201);
    const { withdrawal } = await json(first);
    expect(withdrawal).toMatchObject({ asset: 'USDC', amount: '40.00', destination, status: 'pending' });
    expect((await balances(account)).USDC).toEqual({ available: '60.00', held: '0.00' });

    const again = await call('/v1/withdrawals', { auth: account.apiKey, headers, body: { asset: 'USDC', amount: '40.00', destination } });
    expect(again.status).toBe(200);
    expect((await json(again)).withdrawal.id).toBe(withdrawal.id);
    const otherBody = await call('/v1/withdrawals', { auth: account.apiKey, headers, body: { asset: 'USDC', amount: '41.00', destination } });
    await expectError(otherBody, 409, 'idempotency_conflict');
    const otherDestination = await call('/v1/withdrawals', { auth: account.apiKey, headers, body: { asset: 'USDC', amount: '40.00', destination: '0x' + 'ef'.repeat(20) } });
    await expectError(otherDestination, 409, 'idempotency_conflict');
    expect((await balances(account)).USDC).toEqual({ available: '60.00', held: '0.00' });

    const listed = await json(await call('/v1/withdrawals', { auth: account.apiKey }));
    expect(listed.data.map((w: { id: string }) => w.id)).toEqual([withdrawal.id]);
  });

  it('answer 402 when the balance is short, creating nothing', async () => {
    const account = await signUp();
    await fund(account, 'GRID', '5.00');
    const res = await call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'GRID', amount: '5.000001', destination } });
    await expectError(res, 402, 'insufficient_funds');
    expect((await json(await call('/v1/withdrawals', { auth: account.apiKey }))).data).toEqual([]);
    expect((await balances(account)).GRID!.available).toBe('5.00');
  });

  it('never overdraw under concurrent requests', async () => {
    const account = await signUp();
    await fund(account, 'USDC', '100.00');
    const results = await Promise.all(
      Array.from({ length: 5 }, () => call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'USDC', amount: '30.00', destination } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 201, 402, 402]);
    expect((await balances(account)).USDC!.available).toBe('10.00');
  });

  it('check the destination against the asset', async () => {
    const account = await signUp();
    await fund(account, 'USD', '10.00');
    await expectError(await call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'USD', amount: '1.00', destination } }), 400, 'validation_failed');
    const ok = await call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'USD', amount: '1.00', destination: 'DE89370400440532013000' } });
    expect(ok.status).toBe(201);
  });

  it("are 404 to other accounts", async () => {
    const account = await signUp();
    const other = await signUp();
    await fund(account, 'USDC', '10.00');
    const { withdrawal } = await json(await call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'USDC', amount: '1.00', destination } }));
    await expectError(await call(`/v1/withdrawals/${withdrawal.id}`, { auth: other.apiKey }), 404, 'not_found');
    expect((await call(`/v1/withdrawals/${withdrawal.id}`, { auth: account.apiKey })).status).toBe(200);
  });

  it('are settled once by an operator: failed returns the money, paid moves it out', async () => {
    const admin = await signUp();
    await makeAdmin(admin);
    const account = await signUp();
    await fund(account, 'USDC', '50.00');
    const a = (await json(await call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'USDC', amount: '20.00', destination } }))).withdrawal;
    const b = (await json(await call('/v1/withdrawals', { auth: account.apiKey, headers: idem(), body: { asset: 'USDC', amount: '10.00', destination } }))).withdrawal;
    expect((await balances(account)).USDC!.available).toBe('20.00');

    const queue = await json(await call('/v1/admin/withdrawals', { auth: admin.apiKey }));
    expect(queue.data.map((w: { id: string }) => w.id)).toEqual(expect.arrayContaining([a.id, b.id]));

    const failed = await call(`/v1/admin/withdrawals/${a.id}/settle`, { auth: admin.apiKey, headers: idem(), body: { outcome: 'failed', reason: 'bank rejected' } });
    expect((await json(failed)).withdrawal).toMatchObject({ status: 'failed', failure_reason: 'bank rejected' });
    expect((await balances(account)).USDC!.available).toBe('40.00');
    const paid = await call(`/v1/admin/withdrawals/${b.id}/settle`, { auth: admin.apiKey, headers: idem(), body: { outcome: 'paid', payout_ref: 'tx-123' } });
    expect((await json(paid)).withdrawal).toMatchObject({ status: 'paid', payout_ref: 'tx-123' });
    expect((await balances(account)).USDC!.available).toBe('40.00');

    // Settling again the same way changes nothing; the other way is refused.
    expect((await call(`/v1/admin/withdrawals/${b.id}/settle`, { auth: admin.apiKey, headers: idem(), body: { outcome: 'paid', payout_ref: 'tx-123' } })).status).toBe(200);
    await expectError(await call(`/v1/admin/withdrawals/${b.id}/settle`, { auth: admin.apiKey, headers: idem(), body: { outcome: 'failed', reason: 'oops' } }), 409, 'idempotency_conflict');
    expect((await balances(account)).USDC!.available).toBe('40.00');
    await expectError(await call('/v1/admin/withdrawals/wdr_nope/settle', { auth: admin.apiKey, headers: idem(), body: { outcome: 'paid' } }), 404, 'not_found');
  });
});

describe('GET /v1/quote', () => {
  it('prices GRID at the configured rate with the discount, rounding up', async () => {
    const res = await call('/v1/quote?asset=GRID&usd=10.00', { headers: { origin: 'https://blog.example' } });
    expect(await json(res)).toEqual({ usd: '10.00', asset: 'GRID', amount: '36.00', grid_usd_rate: '0.25', grid_discount_bps: 1000 });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect((await json(await call('/v1/quote?asset=GRID&usd=0.000001'))).amount).toBe('0.000004');
    expect((await json(await call('/v1/quote?asset=USDC&usd=7.50'))).amount).toBe('7.50');
  });

  it('refuses bad input', async () => {
    await expectError(await call('/v1/quote?asset=GRID&usd=1e2'), 400, 'validation_failed');
    await expectError(await call('/v1/quote?asset=DOGE&usd=1.00'), 400, 'validation_failed');
    await expectError(await call('/v1/quote?asset=GRID'), 400, 'validation_failed');
  });
});

describe('operators', () => {
  it('adjust a balance with a reason as a new transaction, never below zero', async () => {
    const admin = await signUp();
    await makeAdmin(admin);
    const account = await signUp();
    const headers = idem();
    const body = { account_id: account.id, asset: 'GRID', amount: '15.00', reason: 'goodwill credit for outage' };
    expect((await call('/v1/admin/adjustments', { auth: admin.apiKey, headers, body })).status).toBe(201);
    expect((await call('/v1/admin/adjustments', { auth: admin.apiKey, headers, body })).status).toBe(200);
    expect((await balances(account)).GRID!.available).toBe('15.00');
    const entries = await json(await call('/v1/ledger/entries', { auth: account.apiKey }));
    expect(entries.data[0]).toMatchObject({ kind: 'adjustment', amount: '15.00' });

    const over = await call('/v1/admin/adjustments', { auth: admin.apiKey, headers: idem(), body: { ...body, amount: '-15.01' } });
    await expectError(over, 402, 'insufficient_funds');
    expect((await call('/v1/admin/adjustments', { auth: admin.apiKey, headers: idem(), body: { ...body, amount: '-5.00' } })).status).toBe(201);
    expect((await balances(account)).GRID!.available).toBe('10.00');
    await expectError(await call('/v1/admin/adjustments', { auth: admin.apiKey, headers: idem(), body: { ...body, reason: undefined } }), 400, 'validation_failed');

    const platform = await json(await call('/v1/admin/platform-balances', { auth: admin.apiKey }));
    expect(platform.data).toEqual(expect.arrayContaining([expect.objectContaining({ asset: 'GRID', kind: 'adjustments' })]));
  });
});

describe('the faucet', () => {
  it('does not exist outside development', async () => {
    const account = await signUp();
    await expectError(await call('/v1/dev/faucet', { auth: account.apiKey, headers: idem(), body: { asset: 'USD', amount: '10.00' } }), 404, 'not_found');
    expect((await balances(account)).USD!.available).toBe('0.00');
  });
});
