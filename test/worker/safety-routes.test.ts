// Operators acting on their own money, suspensions that stop an account trading, and list
// query parameters that must be refused with a 400 rather than reach the database.
import { eq } from 'drizzle-orm';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { orders } from '../../src/db/schema.ts';
import { regionBook } from '../../src/durable/region-book.ts';
import { balances, call, db, expectError, fund, idem, json, makeAdmin, signUp, type TestAccount } from './support.ts';
import { bindings, buy, expectEscrowBalanced, onlineNode, placed, sell } from './trading.ts';

// Books no other test file trades in.
const REGION = 'us-east';
const RENTER_BOOK = 'rtx-4080-16gb';
const PROVIDER_BOOK = 'rtx-3080-10gb';
const destination = '0x' + 'cd'.repeat(20);

async function operator(): Promise<TestAccount> {
  const admin = await signUp();
  await makeAdmin(admin);
  return admin;
}

const statusOf = async (id: string) => (await db().select({ status: orders.status }).from(orders).where(eq(orders.id, id)))[0]!.status;

describe('operators and their own account', () => {
  it('may not adjust their own balance', async () => {
    const admin = await operator();
    const body = { account_id: admin.id, asset: 'USD', amount: '500.00', reason: 'bonus' };
    const error = await expectError(await call('/v1/admin/adjustments', { auth: admin.apiKey, headers: idem(), body }), 403, 'forbidden');
    expect(error.message).toContain('own');
    expect((await balances(admin)).USD).toEqual({ available: '0.00', held: '0.00' });
    // Another operator may.
    const other = await operator();
    expect((await call('/v1/admin/adjustments', { auth: other.apiKey, headers: idem(), body })).status).toBe(201);
    expect((await balances(admin)).USD!.available).toBe('500.00');
  });

  it('may not settle their own withdrawal', async () => {
    const admin = await operator();
    await fund(admin, 'USDC', '30.00');
    const { withdrawal } = await json(await call('/v1/withdrawals', { auth: admin.apiKey, headers: idem(), body: { asset: 'USDC', amount: '20.00', destination } }));
    for (const body of [{ outcome: 'paid', payout_ref: 'tx-self' }, { outcome: 'failed', reason: 'changed my mind' }]) {
      await expectError(await call(`/v1/admin/withdrawals/${withdrawal.id}/settle`, { auth: admin.apiKey, headers: idem(), body }), 403, 'forbidden');
    }
    expect((await json(await call(`/v1/withdrawals/${withdrawal.id}`, { auth: admin.apiKey }))).withdrawal.status).toBe('pending');
    expect((await balances(admin)).USDC!.available).toBe('10.00');
    const other = await operator();
    const settled = await call(`/v1/admin/withdrawals/${withdrawal.id}/settle`, { auth: other.apiKey, headers: idem(), body: { outcome: 'paid', payout_ref: 'tx-1' } });
    expect((await json(settled)).withdrawal.status).toBe('paid');
  });
});

describe('suspending an account', () => {
  const suspend = async (admin: TestAccount, who: TestAccount) => {
    const res = await call(`/v1/admin/accounts/${who.id}/status`, { auth: admin.apiKey, body: { status: 'suspended', reason: 'fraud review' } });
    expect(res.status).toBe(200);
  };

  it("cancels the renter's resting bids, releasing their escrow, so a crossing ask does not fill them", async () => {
    const [admin, renter, provider] = await Promise.all([operator(), signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '20.00');
    const a = await placed(renter, buy(REGION, RENTER_BOOK, { gpus: 1, price: '3.00' }));
    const b = await placed(renter, buy(REGION, RENTER_BOOK, { gpus: 1, price: '2.00', pay_with: 'USD' }));
    expect((await balances(renter)).USD).toEqual({ available: '15.00', held: '5.00' });

    await suspend(admin, renter);
    expect(await statusOf(a.order.id)).toBe('cancelled');
    expect(await statusOf(b.order.id)).toBe('cancelled');
    expect((await regionBook(bindings, REGION, RENTER_BOOK).orders([a.order.id, b.order.id])).map((o) => o.status)).toEqual(['cancelled', 'cancelled']);

    const node = await onlineNode(REGION, provider, RENTER_BOOK, 2);
    const ask = await placed(provider, sell(REGION, RENTER_BOOK, node.nodeId, { gpus: 2, price: '1.00' }));
    expect(ask.leases).toEqual([]);
    expect(ask.order).toMatchObject({ status: 'open', remaining_gpus: 2 });

    // Reactivated, the account finds its money back and nothing resting.
    await call(`/v1/admin/accounts/${renter.id}/status`, { auth: admin.apiKey, body: { status: 'active', reason: 'cleared' } });
    expect((await balances(renter)).USD).toEqual({ available: '20.00', held: '0.00' });
    await expectEscrowBalanced([renter]);
  });

  it("cancels the provider's resting asks, and an order still on its way to the book cannot be placed after", async () => {
    const [admin, renter, provider] = await Promise.all([operator(), signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '20.00');
    const node = await onlineNode(REGION, provider, PROVIDER_BOOK, 4);
    const ask = await placed(provider, sell(REGION, PROVIDER_BOOK, node.nodeId, { gpus: 2, price: '1.00' }));
    // An ask recorded in libSQL whose request has not reached the book yet.
    const [row] = await db().select().from(orders).where(eq(orders.id, ask.order.id));
    const late: Record<string, unknown> = { ...row!.book, id: `ord_late${Date.now()}` };
    await db().insert(orders).values({
      id: String(late.id), accountId: provider.id, idempotencyKey: `key-${String(late.id)}`, requestHash: 'x', side: 'sell', region: REGION,
      gpuModel: PROVIDER_BOOK, gpus: 2, price: 1_000_000, tif: 'gtc', nodeId: node.nodeId, minDurationS: 60, maxDurationS: 86_400,
      book: late, expiresAt: Number(late.expiresAt), createdAt: Date.now(),
    });

    await suspend(admin, provider);
    const book = regionBook(bindings, REGION, PROVIDER_BOOK);
    expect((await book.orders([ask.order.id, String(late.id)])).map((o) => o.status)).toEqual(['cancelled', 'cancelled']);
    // The request arriving now finds it cancelled, not resting.
    expect(await book.place(late as never)).toMatchObject({ ok: true, replayed: true, order: { status: 'cancelled' } });

    const bid = await placed(renter, buy(REGION, PROVIDER_BOOK, { gpus: 1, price: '1.50' }));
    expect(bid.leases).toEqual([]);
    expect(bid.order.status).toBe('open');
    await expect.poll(() => statusOf(ask.order.id)).toBe('cancelled');
  });

  it("withdraws the provider's fully leased asks, so they do not reopen when their leases end", async () => {
    const model = 'a10-24gb';
    const [admin, renter, provider] = await Promise.all([operator(), signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '20.00');
    const node = await onlineNode(REGION, provider, model, 2);
    const ask = await placed(provider, sell(REGION, model, node.nodeId, { gpus: 2, price: '1.00' }));
    const first = await placed(renter, buy(REGION, model, { gpus: 2, price: '1.00' }));
    expect(first.leases).toHaveLength(1);
    expect(await statusOf(ask.order.id)).toBe('filled');

    await suspend(admin, provider);
    const book = regionBook(bindings, REGION, model);
    expect((await book.orders([ask.order.id])).map((o) => o.status)).toEqual(['cancelled']);
    // The lease ends and its GPUs come back: to no ask.
    await call(`/v1/leases/${first.leases[0].id}/terminate`, { method: 'POST', auth: renter.apiKey });
    await runDurableObjectAlarm(bindings.LEASE.getByName(first.leases[0].id));
    expect((await book.snapshot()).depth.asks).toEqual([]);
    const second = await placed(renter, buy(REGION, model, { gpus: 1, price: '1.00' }));
    expect(second.leases).toEqual([]);
    await expect.poll(() => statusOf(ask.order.id)).toBe('cancelled');
  });
});

describe('withdrawing a fully leased ask', () => {
  it('cancels it, leaves its lease running, and it does not reopen when the lease ends', async () => {
    const model = 'l40-48gb';
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '20.00');
    const node = await onlineNode(REGION, provider, model, 2);
    const ask = await placed(provider, sell(REGION, model, node.nodeId, { gpus: 2, price: '1.00' }));
    const first = await placed(renter, buy(REGION, model, { gpus: 2, price: '1.00' }));
    const res = await call(`/v1/orders/${ask.order.id}`, { method: 'DELETE', auth: provider.apiKey });
    expect(res.status).toBe(200);
    expect((await json(res)).order.status).toBe('cancelled');
    expect((await json(await call(`/v1/leases/${first.leases[0].id}`, { auth: renter.apiKey }))).lease.state).toBe('provisioning');
    await call(`/v1/leases/${first.leases[0].id}/terminate`, { method: 'POST', auth: renter.apiKey });
    await runDurableObjectAlarm(bindings.LEASE.getByName(first.leases[0].id));
    expect((await regionBook(bindings, REGION, model).snapshot()).depth.asks).toEqual([]);
    // Asking again answers the same.
    expect((await json(await call(`/v1/orders/${ask.order.id}`, { method: 'DELETE', auth: provider.apiKey }))).order.status).toBe('cancelled');
  });
});

describe('list query parameters', () => {
  it('refuse a ledger cursor outside int64, or any non-canonical number, with 400 (never 5xx)', async () => {
    const account = await signUp();
    await fund(account, 'USD', '1.00');
    for (const query of ['cursor=9999999999999999999', 'cursor=9223372036854775808', 'cursor=0', 'cursor=-1', 'cursor=1.5', 'cursor=1e3', 'cursor=', 'limit=1e1', 'limit=0x10', 'limit=+5', 'limit=', 'limit=201', 'limit=0', 'limit=05']) {
      const res = await call(`/v1/ledger/entries?${query}`, { auth: account.apiKey });
      const error = await expectError(res, 400, 'validation_failed');
      expect([query, error.message]).toEqual([query, expect.stringMatching(/cursor|limit/)]);
    }
    const max = await call('/v1/ledger/entries?cursor=9223372036854775807&limit=200', { auth: account.apiKey });
    expect(max.status).toBe(200);
    expect((await json(max)).data).toHaveLength(1);
  });

  it('refuse malformed cursors and limits on every paged list with 400', async () => {
    const admin = await operator();
    const paths = ['/v1/orders', '/v1/withdrawals', '/v1/deposits', '/v1/admin/accounts', '/v1/admin/withdrawals', '/v1/offers'];
    for (const path of paths) {
      for (const query of ['limit=1e1', 'limit=0x10', 'limit=9999999999999999999999', 'limit=-1']) {
        await expectError(await call(`${path}?${query}`, { auth: admin.apiKey }), 400, 'validation_failed');
      }
      expect((await call(`${path}?limit=2`, { auth: admin.apiKey })).status).toBe(200);
    }
    for (const path of ['/v1/orders', '/v1/withdrawals', '/v1/admin/accounts']) {
      for (const cursor of ['acc_x%27%20OR%201=1', 'x'.repeat(65), '%00']) {
        await expectError(await call(`${path}?cursor=${cursor}`, { auth: admin.apiKey }), 400, 'validation_failed');
      }
    }
  });
});
