// Order spam and search fan-out: the least order value, the open-order cap, the placement rate
// per account and the offer-search rate per client IP. The suite runs with the caps raised
// (vitest.worker.config.ts); each test reads the configured value and brings its own account
// or address to it, so no other test is throttled.
import { runInDurableObject } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { accountWriteBucket, ipWriteBucket, offerSearchBucket, reportReadBucket, orderPlacementBucket } from '../../src/auth/rate-limit.ts';
import { parseRate } from '../../src/auth/sliding-window.ts';
import { orders } from '../../src/db/schema.ts';
import type { AskOrder } from '../../src/market/orders.ts';
import { balances, call, db, expectError, fund, json, signUp, type TestAccount } from './support.ts';
import { bindings, buy, onlineNode, place, placed, sell } from './trading.ts';

// Books no other test file trades in: bids rest in one, asks in the other, so nothing here fills.
const REGION = 'ap-southeast';
const MODEL = 'rtx-3080-10gb';
const ASK_MODEL = 'rtx-4080-16gb';

const rowsOf = async (account: TestAccount) => db().select({ id: orders.id, status: orders.status }).from(orders).where(eq(orders.accountId, account.id));

/** Fills a rate-limit bucket as if `count` requests had just been counted in it. */
async function spend(bucket: string, count: number) {
  await runInDurableObject(bindings.RATE_LIMITER.getByName(bucket), async (_limiter, state) => {
    await state.storage.put('window', { hits: Array.from({ length: count }, () => Date.now()) });
  });
}

describe('the least order value', () => {
  it('is the wrangler default of 0.001 USD, and this suite runs with it', () => {
    expect(bindings.ORDER_MIN_VALUE).toBe('0.001');
  });

  it('refuses a buy whose maximum cost, or a sell whose hour, is worth less, with a 400 naming price and nothing held', async () => {
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '1.00');
    const node = await onlineNode(REGION, provider, ASK_MODEL, 2);
    // 1 GPU × 60 s at 0.05 per hour = 0.000834, under 0.001.
    const small = await expectError(await place(renter, buy(REGION, MODEL, { gpus: 1, price: '0.05', duration_s: 60 })), 400, 'validation_failed');
    expect(small.message).toMatch(/^invalid body: price: .*0\.000834.*0\.001/);
    await expectError(await place(renter, buy(REGION, MODEL, { gpus: 1, price: '0.000001', duration_s: 3600, pay_with: 'GRID' })), 400, 'validation_failed');
    // 2 GPUs at 0.0004 per hour = 0.0008 per hour.
    await expectError(await place(provider, sell(REGION, ASK_MODEL, node.nodeId, { gpus: 2, price: '0.0004' })), 400, 'validation_failed');
    expect(await balances(renter)).toMatchObject({ USD: { available: '1.00', held: '0.00' } });
    expect(await rowsOf(renter)).toEqual([]);
    expect(await rowsOf(provider)).toEqual([]);

    // Exactly the least value is accepted: 1 GPU × 60 s at 0.06 per hour; 2 GPUs at 0.0005 per hour.
    expect((await placed(renter, buy(REGION, MODEL, { gpus: 1, price: '0.06', duration_s: 60 }))).order.hold_amount).toBe('0.001');
    expect((await placed(provider, sell(REGION, ASK_MODEL, node.nodeId, { gpus: 2, price: '0.0005' }))).order.status).toBe('open');
  });
});

describe('the open-order cap', () => {
  it('refuses the order past ORDER_MAX_OPEN with a 409, holding nothing, and lets a retry and a later order through', async () => {
    const cap = Number(bindings.ORDER_MAX_OPEN);
    expect(cap).toBeGreaterThan(1);
    const renter = await signUp(['renter', 'provider']);
    await fund(renter, 'USD', '10.00');
    // cap − 1 asks already open (recorded as an order row is; no book needs to know them for the count).
    const now = Date.now();
    const seeded = Array.from({ length: cap - 1 }, (_, i) => {
      const id = `ord_seed${now}x${i}`;
      const book: AskOrder = {
        side: 'sell', id, accountId: renter.id, nodeId: `node_seed${now}`, region: REGION, gpuModel: MODEL, gpus: 1, price: 9_000_000,
        minDurationS: 60, maxDurationS: 3600, expiresAt: now + 3_600_000, reliability: 1, verified: false, nodeGpuIndices: [0],
      };
      return {
        id, accountId: renter.id, idempotencyKey: `seed-${id}`, requestHash: 'x', side: 'sell', region: REGION, gpuModel: MODEL, gpus: 1,
        price: 9_000_000, tif: 'gtc', nodeId: book.nodeId, minDurationS: 60, maxDurationS: 3600, book: book as unknown as Record<string, unknown>,
        expiresAt: book.expiresAt, createdAt: now,
      } satisfies typeof orders.$inferInsert;
    });
    for (let i = 0; i < seeded.length; i += 100) await db().insert(orders).values(seeded.slice(i, i + 100));

    const key = { 'idempotency-key': crypto.randomUUID() };
    const last = await place(renter, buy(REGION, MODEL, { gpus: 1, price: '1.00' }), key);
    expect(last.status).toBe(201);
    const { order } = await json(last);
    const over = await expectError(await place(renter, buy(REGION, MODEL, { gpus: 1, price: '1.00' })), 409, 'conflict');
    expect(over.message).toContain(`${cap} open orders`);
    expect(await balances(renter)).toMatchObject({ USD: { available: '9.00', held: '1.00' } });
    expect(await rowsOf(renter)).toHaveLength(cap);
    // The same request again is answered as before, not refused.
    expect((await place(renter, buy(REGION, MODEL, { gpus: 1, price: '1.00' }), key)).status).toBe(200);

    // Once one closes, there is room again.
    expect((await call(`/v1/orders/${order.id}`, { method: 'DELETE', auth: renter.apiKey })).status).toBe(200);
    expect((await place(renter, buy(REGION, MODEL, { gpus: 1, price: '1.00' }))).status).toBe(201);
  });
});

describe('the placement rate', () => {
  it('answers 429 with Retry-After past ORDER_RATE_LIMIT per account, holding nothing; other accounts are not held back', async () => {
    const rate = parseRate(bindings.ORDER_RATE_LIMIT, { limit: 0, windowMs: 0 });
    expect(rate.limit).toBeGreaterThan(1);
    const [renter, other] = await Promise.all([signUp(), signUp()]);
    await Promise.all([fund(renter, 'USD', '10.00'), fund(other, 'USD', '10.00')]);
    await spend(orderPlacementBucket(renter.id), rate.limit - 1);

    expect((await place(renter, buy(REGION, MODEL, { gpus: 1, price: '1.00' }))).status).toBe(201);
    const limited = await place(renter, buy(REGION, MODEL, { gpus: 1, price: '1.00' }));
    await expectError(limited, 429, 'rate_limited');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(rate.windowMs / 1000);
    expect(await balances(renter)).toMatchObject({ USD: { available: '9.00', held: '1.00' } });
    expect(await rowsOf(renter)).toHaveLength(1);
    expect((await place(other, buy(REGION, MODEL, { gpus: 1, price: '1.00' }))).status).toBe(201);
  });
});

describe('writes per account', () => {
  it('answer 429 with Retry-After past WRITE_RATE_LIMIT on any private write route, changing nothing; reads and other accounts go on', async () => {
    const rate = parseRate(bindings.WRITE_RATE_LIMIT, { limit: 0, windowMs: 0 });
    expect(rate.limit).toBeGreaterThan(1);
    const [renter, other] = await Promise.all([signUp(), signUp()]);
    const keys = async (a: TestAccount) => (await json(await call('/v1/api-keys', { auth: a.apiKey }))).data.length as number;
    const before = await keys(renter);
    await spend(accountWriteBucket(renter.id), rate.limit - 1);
    const newKey = (a: TestAccount) => call('/v1/api-keys', { method: 'POST', auth: a.apiKey, body: { name: 'limited', scopes: ['account:read'] } });
    expect((await newKey(renter)).status).toBe(201);
    const limited = await newKey(renter);
    await expectError(limited, 429, 'rate_limited');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(rate.windowMs / 1000);
    // Another write route of the same account is held back too; nothing was created.
    await expectError(await call('/v1/webhook-endpoints', { method: 'POST', auth: renter.apiKey, body: { url: 'https://hooks.example.com/x', events: ['lease.running'] } }), 429, 'rate_limited');
    expect(await keys(renter)).toBe(before + 1);
    expect((await call('/v1/balances', { auth: renter.apiKey })).status).toBe(200);
    expect((await newKey(other)).status).toBe(201);
  });
});

describe('writes per client IP', () => {
  it('answer 429 with Retry-After past WRITE_IP_RATE_LIMIT before the caller is known, changing nothing; reads, other addresses and node routes go on', async () => {
    const rate = parseRate(bindings.WRITE_IP_RATE_LIMIT, { limit: 0, windowMs: 0 });
    expect(rate.limit).toBeGreaterThan(1);
    const [ip, elsewhere] = [`198.51.100.${1 + Math.floor(Math.random() * 250)}`, `203.0.113.${1 + Math.floor(Math.random() * 250)}`];
    const renter = await signUp();
    const keys = async () => (await json(await call('/v1/api-keys', { auth: renter.apiKey }))).data.length as number;
    const before = await keys();
    // The counter keeps a fixed window: start well inside one, so the test never straddles two.
    if (Date.now() % rate.windowMs > rate.windowMs - 5_000) await new Promise((r) => setTimeout(r, rate.windowMs - (Date.now() % rate.windowMs) + 10));
    await runInDurableObject(bindings.RATE_LIMITER.getByName(ipWriteBucket(ip)), async (_limiter, state) => {
      await state.storage.put('counter', { start: Math.floor(Date.now() / rate.windowMs) * rate.windowMs, current: rate.limit - 1, previous: 0 });
    });
    const newKey = (from: string) => call('/v1/api-keys', { method: 'POST', auth: renter.apiKey, body: { name: 'from an address', scopes: ['account:read'] }, headers: { 'cf-connecting-ip': from } });
    expect((await newKey(ip)).status).toBe(201);
    const limited = await newKey(ip);
    await expectError(limited, 429, 'rate_limited');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual((2 * rate.windowMs) / 1000);
    // Counted before authentication: made-up credentials from that address get the same answer.
    await expectError(await call('/v1/auth/token', { body: { email: 'nobody@example.com', password: 'not the password' }, headers: { 'cf-connecting-ip': ip } }), 429, 'rate_limited');
    expect(await keys()).toBe(before + 1);
    // Reads from it, and writes from elsewhere, go on.
    expect((await call('/v1/balances', { auth: renter.apiKey, headers: { 'cf-connecting-ip': ip } })).status).toBe(200);
    expect((await newKey(elsewhere)).status).toBe(201);
    // A node's own routes are limited per node, and signed callbacks by their signature.
    await expectError(await call('/v1/runner/heartbeats', { body: {}, auth: 'not-a-node-token', headers: { 'cf-connecting-ip': ip } }), 401, 'unauthorized');
    const callback = await call('/internal/queue/heartbeats', { body: {}, headers: { 'cf-connecting-ip': ip } });
    expect(callback.status).not.toBe(429);
    expect(callback.status).toBeGreaterThanOrEqual(400);
  });
});

describe('offer searches', () => {
  it('answer 429 with Retry-After past OFFERS_IP_RATE_LIMIT per client IP; other addresses still search', async () => {
    const rate = parseRate(bindings.OFFERS_IP_RATE_LIMIT, { limit: 0, windowMs: 0 });
    expect(rate.limit).toBeGreaterThan(1);
    const [ip, elsewhere] = [`198.51.100.${1 + Math.floor(Math.random() * 250)}`, `203.0.113.${1 + Math.floor(Math.random() * 250)}`];
    const search = (from: string) => call(`/v1/offers?q=${encodeURIComponent(`region=${REGION} gpu_model=${MODEL}`)}`, { headers: { 'cf-connecting-ip': from } });
    await spend(offerSearchBucket(ip), rate.limit - 1);
    expect((await search(ip)).status).toBe(200);
    const limited = await search(ip);
    await expectError(limited, 429, 'rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await search(elsewhere)).status).toBe(200);
    // A malformed search is refused before it is counted or reaches a book.
    await expectError(await call('/v1/offers?q=gpus>>1', { headers: { 'cf-connecting-ip': ip } }), 400, 'validation_failed');
  });
});

describe('challenge report reads', () => {
  it('answer 429 with Retry-After past REPORTS_IP_RATE_LIMIT per client IP; other addresses still read', async () => {
    const rate = parseRate(bindings.REPORTS_IP_RATE_LIMIT, { limit: 0, windowMs: 0 });
    expect(rate.limit).toBeGreaterThan(1);
    const [ip, elsewhere] = [`198.51.100.${1 + Math.floor(Math.random() * 250)}`, `203.0.113.${1 + Math.floor(Math.random() * 250)}`];
    const read = (from: string) => call('/v1/nodes/node_unknown/reports', { headers: { 'cf-connecting-ip': from } });
    await spend(reportReadBucket(ip), rate.limit - 1);
    // A node's list answers for any id (an empty page), so the last read within the limit is a 200.
    expect((await read(ip)).status).toBe(200);
    const limited = await read(ip);
    await expectError(limited, 429, 'rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await expectError(await call('/v1/challenges/chl_unknown/report', { headers: { 'cf-connecting-ip': ip } }), 429, 'rate_limited');
    expect((await read(elsewhere)).status).toBe(200);
  });
});
