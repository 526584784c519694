import { env } from 'cloudflare:workers';
import { createExecutionContext, createScheduledController, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { eq, inArray } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { leases, nodes, orders } from '../../src/db/schema.ts';
import { lease as leaseStub } from '../../src/durable/lease.ts';
import { regionBook } from '../../src/durable/region-book.ts';
import worker from '../../src/index.ts';
import { floorBucketName } from '../../src/routes/dev.ts';
import { connection } from '../../src/db/client.ts';
import { postOrThrow } from '../../src/ledger/api.ts';
import { hold } from '../../src/ledger/rules.ts';
import type { BidOrder } from '../../src/market/orders.ts';
import { UNPLACED_AFTER_MS } from '../../src/market/sweep.ts';
import { ORIGIN, accessToken, call, db, expectError, idem, json, machine, makeAdmin, registerNode, signUp, fund, balances, type TestAccount } from './support.ts';
import { GPU_NAMES, beat, bindings, buy as buyIn, collectorOf as collectorIn, expectEscrowBalanced, onlineNode as onlineNodeIn, pause, place, placed, sell as sellIn, workload } from './trading.ts';

// Each test trades in its own book (region × model), so tests never meet each other's orders.
const REGION = 'ap-southeast';
const buy = (model: string, o: Record<string, unknown> = {}) => buyIn(REGION, model, o);
const sell = (model: string, nodeId: string, o: Record<string, unknown> = {}) => sellIn(REGION, model, nodeId, o);
const onlineNode = (provider: TestAccount, model: string, count: number) => onlineNodeIn(REGION, provider, model, count);
const collectorOf = (nodeId: string) => collectorIn(REGION, nodeId);

describe('buy orders and escrow', () => {
  it('holds the maximum cost, rests, lists, and releases everything on cancel', async () => {
    const renter = await signUp();
    await fund(renter, 'USD', '100.00');
    const { order, leases: fills } = await placed(renter, buy('a100-40gb'));
    expect(fills).toEqual([]);
    expect(order).toMatchObject({ side: 'buy', status: 'open', gpus: 2, price: '2.50', hold_amount: '5.00', pay_with: 'USD', remaining_gpus: 2, tif: 'gtc' });
    expect(Date.parse(order.expires_at) - Date.parse(order.created_at)).toBe(86_400_000);
    expect(await balances(renter)).toMatchObject({ USD: { available: '95.00', held: '5.00' } });

    const open = await json(await call('/v1/orders?status=open', { auth: renter.apiKey }));
    expect(open.data.map((o: { id: string }) => o.id)).toEqual([order.id]);
    expect((await json(await call('/v1/orders?status=cancelled', { auth: renter.apiKey }))).data).toEqual([]);
    expect((await json(await call(`/v1/orders/${order.id}`, { auth: renter.apiKey }))).order.status).toBe('open');
    expect((await regionBook(bindings, REGION, 'a100-40gb').snapshot()).bestBid).toBe(2_500_000);

    const cancelled = await call(`/v1/orders/${order.id}`, { method: 'DELETE', auth: renter.apiKey });
    expect(cancelled.status).toBe(200);
    expect((await json(cancelled)).order).toMatchObject({ status: 'cancelled', remaining_gpus: 2 });
    expect(await balances(renter)).toMatchObject({ USD: { available: '100.00', held: '0.00' } });
    expect((await regionBook(bindings, REGION, 'a100-40gb').snapshot()).bestBid).toBeNull();
    const listed = await json(await call('/v1/orders?status=cancelled', { auth: renter.apiKey }));
    expect(listed.data).toMatchObject([{ id: order.id, status: 'cancelled' }]);
    expect(listed.data[0].closed_at).not.toBeNull();
    // Cancelling again changes nothing more.
    expect((await call(`/v1/orders/${order.id}`, { method: 'DELETE', auth: renter.apiKey })).status).toBe(200);
    expect(await balances(renter)).toMatchObject({ USD: { available: '100.00', held: '0.00' } });
  });

  it('prices a GRID bid at the configured rate with its discount', async () => {
    const renter = await signUp();
    await fund(renter, 'GRID', '100.00');
    // 2.00 × 1 GPU × 1 h = $2.00; 10% off = $1.80; at $0.25 per GRID = 7.2 GRID.
    const { order } = await placed(renter, buy('l40-48gb', { gpus: 1, price: '2.00', pay_with: 'GRID' }));
    expect(order.hold_amount).toBe('7.20');
    expect(await balances(renter)).toMatchObject({ GRID: { available: '92.80', held: '7.20' } });
  });

  it('refuses a bid without the funds with 402, and nothing rests', async () => {
    const renter = await signUp();
    await fund(renter, 'USD', '4.99');
    const res = await place(renter, buy('a6000-48gb'));
    await expectError(res, 402, 'insufficient_funds');
    expect(await balances(renter)).toMatchObject({ USD: { available: '4.99', held: '0.00' } });
    expect((await json(await call('/v1/orders', { auth: renter.apiKey }))).data).toEqual([]);
    expect((await regionBook(bindings, REGION, 'a6000-48gb').snapshot()).resting).toBe(0);
  });

  it('answers a retry with the first order and holds once; another body under the same key is a 409', async () => {
    const renter = await signUp();
    await fund(renter, 'USD', '20.00');
    const key = idem();
    const first = await place(renter, buy('a10-24gb'), key);
    expect(first.status).toBe(201);
    const again = await place(renter, buy('a10-24gb'), key);
    expect(again.status).toBe(200);
    expect((await json(again)).order.id).toBe((await json(first)).order.id);
    await expectError(await place(renter, buy('a10-24gb', { price: '2.40' }), key), 409, 'idempotency_conflict');
    await expectError(await place(renter, buy('a10-24gb'), {}), 400, 'missing_idempotency_key');
    expect(await balances(renter)).toMatchObject({ USD: { available: '15.00', held: '5.00' } });
    expect((await regionBook(bindings, REGION, 'a10-24gb').snapshot()).resting).toBe(1);
  });

  it('cancels an IOC bid that finds nothing and releases its hold at once', async () => {
    const renter = await signUp();
    await fund(renter, 'USDC', '10.00');
    const { order, leases: fills } = await placed(renter, buy('l4-24gb', { tif: 'ioc', pay_with: 'USDC' }));
    expect(fills).toEqual([]);
    expect(order.status).toBe('cancelled');
    expect(await balances(renter)).toMatchObject({ USDC: { available: '10.00', held: '0.00' } });
    expect((await json(await call(`/v1/orders/${order.id}`, { auth: renter.apiKey }))).order.status).toBe('cancelled');
  });

  it('expires a resting bid by alarm and releases its hold', async () => {
    const renter = await signUp();
    await fund(renter, 'USD', '10.00');
    const { order } = await placed(renter, buy('rtx-3090-24gb', { expires_at: new Date(Date.now() + 1_500).toISOString() }));
    expect(await balances(renter)).toMatchObject({ USD: { held: '5.00' } });
    await pause(1_600);
    // The alarm fires by itself at the expiry; run it now in case it has not yet.
    await runDurableObjectAlarm(regionBook(bindings, REGION, 'rtx-3090-24gb'));
    expect(await balances(renter)).toMatchObject({ USD: { available: '10.00', held: '0.00' } });
    expect((await json(await call(`/v1/orders/${order.id}`, { auth: renter.apiKey }))).order.status).toBe('expired');
  });
});

describe('fills and leases', () => {
  it('fills at the resting price, releases the improvement, creates one lease and tells the node to start it', async () => {
    const model = 'h100-80gb';
    const [renter, provider, stranger] = await Promise.all([signUp(), signUp(['provider']), signUp()]);
    await fund(renter, 'USD', '50.00');
    const node = await onlineNode(provider, model, 4);
    const ask = await placed(provider, sell(model, node.nodeId, { gpus: 4 }));
    expect(ask.order).toMatchObject({ side: 'sell', status: 'open', remaining_gpus: 4, node_id: node.nodeId });

    const { order, leases: fills } = await placed(renter, buy(model));
    expect(order).toMatchObject({ status: 'filled', remaining_gpus: 0 });
    expect(fills).toHaveLength(1);
    expect(fills[0]).toMatchObject({ state: 'provisioning', price: '2.00', gpus: 2, duration_s: 3600 });
    // Held $5.00 at the limit; the fill costs $4.00; $1.00 comes back at once.
    expect(await balances(renter)).toMatchObject({ USD: { available: '46.00', held: '4.00' } });
    await expectEscrowBalanced([renter]);

    const mine = await json(await call(`/v1/leases/${fills[0].id}`, { auth: renter.apiKey }));
    expect(mine.lease).toMatchObject({
      id: fills[0].id, state: 'provisioning', role: 'renter', node_id: node.nodeId, gpus: 2, gpu_indices: [0, 1], price: '2.00', duration_s: 3600,
      asset: 'USD', amount: '4.00', bid_id: order.id, ask_id: null, workload,
    });
    const theirs = await json(await call(`/v1/leases/${fills[0].id}`, { auth: provider.apiKey }));
    expect(theirs.lease).toMatchObject({ role: 'provider', ask_id: ask.order.id, bid_id: null, workload: null });
    await expectError(await call(`/v1/leases/${fills[0].id}`, { auth: stranger.apiKey }), 404, 'not_found');
    expect((await json(await call('/v1/leases?role=provider', { auth: provider.apiKey }))).data.map((l: { id: string }) => l.id)).toEqual([fills[0].id]);

    // The ask keeps what is left; the provider's order shows it.
    const askNow = await json(await call(`/v1/orders/${ask.order.id}`, { auth: provider.apiKey }));
    expect(askNow.order).toMatchObject({ status: 'open', remaining_gpus: 2 });
    expect(askNow.leases.map((l: { id: string }) => l.id)).toEqual([fills[0].id]);

    // The runner gets start_lease on its next heartbeat, with the GPUs the lease holds.
    const reply = await beat(node, 2);
    expect(reply.commands).toMatchObject([{ type: 'start_lease', lease_id: fills[0].id, gpu_indices: [0, 1], workload }]);
    expect(reply.commands[0].lease_token.split('.')).toHaveLength(3);

    // A second bid takes the other two GPUs; a third finds none and rests.
    const second = await placed(renter, buy(model));
    expect((await json(await call(`/v1/leases/${second.leases[0].id}`, { auth: renter.apiKey }))).lease.gpu_indices).toEqual([2, 3]);
    const third = await placed(renter, buy(model));
    expect(third.order.status).toBe('open');
    expect((await json(await call(`/v1/orders/${ask.order.id}`, { auth: provider.apiKey }))).order).toMatchObject({ status: 'filled', remaining_gpus: 0 });
    expect((await json(await call('/v1/orders?status=filled', { auth: provider.apiKey }))).data.map((o: { id: string }) => o.id)).toEqual([ask.order.id]);
    await expectEscrowBalanced([renter]);

    // Creating a lease again (an outbox retry) changes nothing.
    const terms = (await leaseStub(bindings, fills[0].id).get())!.terms;
    await leaseStub(bindings, fills[0].id).create(terms);
    expect(await db().select().from(leases).where(eq(leases.tradeId, terms.tradeId))).toHaveLength(1);
    expect(await balances(renter)).toMatchObject({ USD: { held: '13.00' } });
  });

  it('sweeps resting bids best first when an ask arrives, each at the bid’s price', async () => {
    const model = 'l40s-48gb';
    const [r1, r2, provider] = await Promise.all([signUp(), signUp(), signUp(['provider'])]);
    await fund(r1, 'USD', '20.00');
    await fund(r2, 'GRID', '100.00');
    const low = await placed(r1, buy(model, { gpus: 1, price: '2.10' }));
    const high = await placed(r2, buy(model, { gpus: 1, price: '2.40', pay_with: 'GRID' }));
    const node = await onlineNode(provider, model, 2);
    const { order, leases: fills } = await placed(provider, sell(model, node.nodeId, { price: '2.00' }));
    expect(fills.map((l: { price: string }) => l.price)).toEqual(['2.40', '2.10']);
    expect(order).toMatchObject({ status: 'filled', remaining_gpus: 0 });
    expect((await json(await call(`/v1/orders/${high.order.id}`, { auth: r2.apiKey }))).order.status).toBe('filled');
    expect((await json(await call(`/v1/orders/${low.order.id}`, { auth: r1.apiKey }))).order.status).toBe('filled');
    // Filled at the bids' own prices: nothing to release; the whole hold now belongs to the lease.
    expect(await balances(r1)).toMatchObject({ USD: { held: '2.10' } });
    expect(await balances(r2)).toMatchObject({ GRID: { held: high.order.hold_amount } });
    await expectEscrowBalanced([r1, r2]);
  });

  it('never trades an account with itself', async () => {
    const model = 'v100-32gb';
    const trader = await signUp(['renter', 'provider']);
    await fund(trader, 'USD', '20.00');
    const node = await onlineNode(trader, model, 2);
    await placed(trader, sell(model, node.nodeId));
    const { order, leases: fills } = await placed(trader, buy(model));
    expect(fills).toEqual([]);
    expect(order.status).toBe('open');
  });
});

describe('sell orders', () => {
  it('offers only free GPUs of the caller’s own online node, of its model', async () => {
    const model = 'rtx-4090-24gb';
    const [provider, other] = await Promise.all([signUp(['provider']), signUp(['provider'])]);
    const node = await onlineNode(provider, model, 2);
    await placed(provider, sell(model, node.nodeId, { gpus: 1 }));
    await expectError(await place(provider, sell(model, node.nodeId, { gpus: 2 })), 409, 'conflict');
    await expectError(await place(other, sell(model, node.nodeId, { gpus: 1 })), 404, 'not_found');
    await expectError(await place(provider, sell('h100-80gb', node.nodeId, { gpus: 1 })), 400, 'validation_failed');
    await expectError(await place(provider, sell(model, node.nodeId, { gpus: 3 })), 409, 'conflict');
    await expectError(await place(provider, sell(model, node.nodeId, { region: 'us-east' })), 400, 'validation_failed');
    await expectError(await place(provider, sell(model, node.nodeId, { min_duration_s: 7200, max_duration_s: 3600 })), 400, 'validation_failed');
    await expectError(await place(provider, sell(model, 'node_does_not_exist')), 404, 'not_found');
    const mine = await json(await call('/v1/orders', { auth: provider.apiKey }));
    expect(mine.data).toHaveLength(1);
    expect((await regionBook(bindings, REGION, model).snapshot()).depth.asks).toEqual([[2_000_000, 1]]);
    // A second ask for the GPU still free is fine.
    await placed(provider, sell(model, node.nodeId, { gpus: 1, price: '2.20' }));

    const registered = await registerNode(provider, machine([{ name: GPU_NAMES[model]!, memory_mib: 24_564 }]), REGION);
    await expectError(await place(provider, sell(model, registered.nodeId, { gpus: 1 })), 409, 'conflict');
  });

  it('stops matching an offline node’s ask, and matches it again when the node is back', async () => {
    const model = 't4-16gb';
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '20.00');
    const node = await onlineNode(provider, model, 2);
    const ask = await placed(provider, sell(model, node.nodeId));

    // Silence past the grace period: the Collector reports the node offline, the book hears it.
    const longAgo = Date.now() - 600_000;
    await runInDurableObject(collectorOf(node.nodeId), (instance: unknown) => {
      (instance as { nodes: Map<string, { lastSeenMs: number }> }).nodes.get(node.nodeId)!.lastSeenMs = longAgo;
    });
    await db().update(nodes).set({ lastHeartbeatAt: longAgo }).where(eq(nodes.id, node.nodeId));
    await runDurableObjectAlarm(collectorOf(node.nodeId));
    expect((await db().select().from(nodes).where(eq(nodes.id, node.nodeId)))[0]!.status).toBe('offline');

    const bid = await placed(renter, buy(model));
    expect(bid.order.status).toBe('open');
    expect(bid.leases).toEqual([]);

    // Back online: the waiting bid fills against the ask.
    await pause(60);
    await beat(node, 2);
    const now = await json(await call(`/v1/orders/${bid.order.id}`, { auth: renter.apiKey }));
    expect(now.order.status).toBe('filled');
    expect(now.leases).toHaveLength(1);
    expect((await json(await call(`/v1/orders/${ask.order.id}`, { auth: provider.apiKey }))).order.status).toBe('filled');
    await expectEscrowBalanced([renter]);
  });
});

describe('bad input changes nothing', () => {
  it('answers each mistake with its own 4xx', async () => {
    const renter = await signUp();
    await fund(renter, 'USD', '100.00');
    const model = 'a100-80gb';
    const cases: Array<[string, unknown, number, string]> = [
      ['zero GPUs', buy(model, { gpus: 0 }), 400, 'validation_failed'],
      ['negative GPUs', buy(model, { gpus: -2 }), 400, 'validation_failed'],
      ['fractional GPUs', buy(model, { gpus: 1.5 }), 400, 'validation_failed'],
      ['more GPUs than any node has', buy(model, { gpus: 17 }), 400, 'validation_failed'],
      ['unknown GPU model', buy('gtx-1050-2gb'), 400, 'validation_failed'],
      ['unknown region', buy(model, { region: 'moon-base' }), 400, 'validation_failed'],
      ['price with seven decimals', buy(model, { price: '2.5000001' }), 400, 'validation_failed'],
      ['negative price', buy(model, { price: '-2.50' }), 400, 'validation_failed'],
      ['zero price', buy(model, { price: '0' }), 400, 'validation_failed'],
      ['numeric price', buy(model, { price: 2.5 }), 400, 'validation_failed'],
      ['absurd price', buy(model, { price: '1000000' }), 400, 'validation_failed'],
      ['duration too short', buy(model, { duration_s: 10 }), 400, 'validation_failed'],
      ['duration too long', buy(model, { duration_s: 31 * 86_400 }), 400, 'validation_failed'],
      ['expires_at in the past', buy(model, { expires_at: new Date(Date.now() - 1000).toISOString() }), 400, 'validation_failed'],
      ['expires_at next year', buy(model, { expires_at: new Date(Date.now() + 60 * 86_400_000).toISOString() }), 400, 'validation_failed'],
      ['expires_at not a date', buy(model, { expires_at: 'tomorrow' }), 400, 'validation_failed'],
      ['unknown tif', buy(model, { tif: 'fok' }), 400, 'validation_failed'],
      ['unknown asset', buy(model, { pay_with: 'BTC' }), 400, 'validation_failed'],
      ['no workload', { ...buy(model), workload: undefined }, 400, 'validation_failed'],
      ['unknown field', buy(model, { leverage: 10 }), 400, 'validation_failed'],
      ['unknown side', buy(model, { side: 'short' }), 400, 'validation_failed'],
      ['min_reliability above 1', buy(model, { min_reliability: 1.5 }), 400, 'validation_failed'],
    ];
    for (const [what, body, status, code] of cases) {
      const res = await place(renter, body);
      try {
        await expectError(res, status, code);
      } catch (err) {
        throw new Error(`${what}: ${(err as Error).message}`);
      }
    }
    const broken = await call('/v1/orders', { auth: renter.apiKey, body: '{"side": "buy",', headers: idem() });
    await expectError(broken, 400, 'invalid_json');
    expect(await balances(renter)).toMatchObject({ USD: { available: '100.00', held: '0.00' } });
    expect((await json(await call('/v1/orders', { auth: renter.apiKey }))).data).toEqual([]);
    expect((await regionBook(bindings, REGION, model).snapshot()).resting).toBe(0);
  });

  it('refuses every order of a suspended account, even with a token issued before, and holds nothing', async () => {
    const [admin, renter, provider] = await Promise.all([signUp(), signUp(), signUp(['provider'])]);
    await makeAdmin(admin);
    await fund(renter, 'USD', '3.00');
    const model = 'v100-16gb';
    const node = await onlineNode(provider, model, 2);
    const [renterToken, providerToken] = await Promise.all([accessToken(renter), accessToken(provider)]);
    const setStatus = async (who: TestAccount, status: string) =>
      expect((await call(`/v1/admin/accounts/${who.id}/status`, { auth: admin.apiKey, body: { status, reason: 'chargeback review' } })).status).toBe(200);
    await setStatus(renter, 'suspended');
    await setStatus(provider, 'suspended');

    const asRenter = (body: unknown) => call('/v1/orders', { auth: renterToken, body, headers: idem() });
    await expectError(await asRenter(buy(model, { gpus: 1, price: '1.00' })), 403, 'forbidden');
    // Suspension is reported ahead of the funds this bid lacks (402 otherwise).
    await expectError(await asRenter(buy(model, { gpus: 2, price: '9.00' })), 403, 'forbidden');
    await expectError(await call('/v1/orders', { auth: providerToken, body: sell(model, node.nodeId, { gpus: 1 }), headers: idem() }), 403, 'forbidden');
    // An API key of a suspended account is refused before the route.
    await expectError(await place(renter, buy(model, { gpus: 1, price: '1.00' })), 401, 'unauthorized');

    await setStatus(renter, 'active');
    await setStatus(provider, 'active');
    expect(await balances(renter)).toMatchObject({ USD: { available: '3.00', held: '0.00' } });
    expect((await json(await call('/v1/orders', { auth: renter.apiKey }))).data).toEqual([]);
    expect((await json(await call('/v1/orders', { auth: provider.apiKey }))).data).toEqual([]);
    expect((await regionBook(bindings, REGION, model).snapshot()).resting).toBe(0);
    // Active again: the same tokens trade.
    expect((await asRenter(buy(model, { gpus: 1, price: '1.00' }))).status).toBe(201);
    expect((await call('/v1/orders', { auth: providerToken, body: sell(model, node.nodeId, { gpus: 1, price: '1.00' }), headers: idem() })).status).toBe(201);
    await expectEscrowBalanced([renter]);
  });

  it('hides other accounts’ orders: reading or cancelling one is a 404', async () => {
    const [owner, other] = await Promise.all([signUp(), signUp()]);
    await fund(owner, 'USD', '10.00');
    const { order } = await placed(owner, buy('rtx-3090-24gb', { gpus: 1, price: '1.00' }));
    await expectError(await call(`/v1/orders/${order.id}`, { auth: other.apiKey }), 404, 'not_found');
    await expectError(await call(`/v1/orders/${order.id}`, { method: 'DELETE', auth: other.apiKey }), 404, 'not_found');
    await expectError(await call('/v1/orders/ord_nope', { method: 'DELETE', auth: owner.apiKey }), 404, 'not_found');
    expect((await json(await call(`/v1/orders/${order.id}`, { auth: owner.apiKey }))).order.status).toBe('open');
    await expectError(await call('/v1/orders?status=lost', { auth: owner.apiKey }), 400, 'validation_failed');
    await expectError(await call('/v1/orders'), 401, 'unauthorized');
  });
});

describe('orders stranded between the hold and the book', () => {
  it('are cancelled by the minute sweep with their holds released; placed orders are left alone', async () => {
    const model = 'rtx-6000-ada-48gb';
    const renter = await signUp();
    await fund(renter, 'USD', '20.00');
    const { order: resting } = await placed(renter, buy(model));
    // What a request leaves behind when it dies after its escrow batch: the row and the hold, no book.
    const now = Date.now();
    const stranded: BidOrder = {
      id: `ord_stranded${now}`, accountId: renter.id, side: 'buy', region: REGION, gpuModel: model, gpus: 2, price: 2_500_000,
      durationS: 3600, minReliability: 0, verifiedOnly: false, tif: 'gtc', expiresAt: now + 3_600_000, payWith: 'USD',
      holdAmount: '5000000', gridUsdRate: '250000', gridDiscountBps: '1000', workload,
    };
    await db().insert(orders).values({
      id: stranded.id, accountId: renter.id, idempotencyKey: `key-${stranded.id}`, requestHash: 'x', side: 'buy', region: REGION,
      gpuModel: model, gpus: 2, price: 2_500_000, tif: 'gtc', durationS: 3600, payWith: 'USD', holdAmount: 5_000_000,
      minReliabilityPpm: 0, verifiedOnly: false, workload, book: stranded as unknown as Record<string, unknown>, expiresAt: stranded.expiresAt, createdAt: now,
    });
    await postOrThrow(connection(bindings).money, hold({ owner: renter.id, asset: 'USD', amount: 5_000_000n, idempotencyKey: `order:${stranded.id}:hold`, reference: stranded.id, memo: 'bid escrow' }));
    expect(await balances(renter)).toMatchObject({ USD: { available: '10.00', held: '10.00' } });

    // The handler awaits all its work itself (it hands nothing to waitUntil).
    const sweep = (at: number) => worker.scheduled(createScheduledController({ scheduledTime: at, cron: '* * * * *' }), bindings);
    // Younger than a minute: its request could still be running.
    await sweep(now + UNPLACED_AFTER_MS - 1_000);
    expect((await db().select().from(orders).where(eq(orders.id, stranded.id)))[0]!.status).toBe('open');

    await sweep(now + UNPLACED_AFTER_MS + 1_000);
    expect((await db().select().from(orders).where(eq(orders.id, stranded.id)))[0]!.status).toBe('cancelled');
    expect(await balances(renter)).toMatchObject({ USD: { available: '15.00', held: '5.00' } });
    // The order placed through the API is untouched, in libSQL and in the book.
    expect((await json(await call(`/v1/orders/${resting.id}`, { auth: renter.apiKey }))).order).toMatchObject({ status: 'open', remaining_gpus: 2 });
    expect((await regionBook(bindings, REGION, model).snapshot()).resting).toBe(1);
    // The book now knows it as cancelled: reading it, or placing it again, cannot revive it.
    expect((await json(await call(`/v1/orders/${stranded.id}`, { auth: renter.apiKey }))).order.status).toBe('cancelled');
    const again = await regionBook(bindings, REGION, model).place(stranded);
    expect(again).toMatchObject({ ok: true, replayed: true, order: { status: 'cancelled' } });
    // A later sweep changes nothing more.
    await sweep(now + 3 * UNPLACED_AFTER_MS);
    expect(await balances(renter)).toMatchObject({ USD: { available: '15.00', held: '5.00' } });
    await expectEscrowBalanced([renter]);
  });
});

describe('the book survives eviction', () => {
  it('keeps every open order, its priority and its escrow across a restart', async () => {
    const model = 'a100-80gb';
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '100.00');
    const node = await onlineNode(provider, model, 8);
    const early = await placed(provider, sell(model, node.nodeId, { gpus: 2, price: '3.00' }));
    const late = await placed(provider, sell(model, node.nodeId, { gpus: 2, price: '3.00' }));
    await placed(renter, buy(model, { gpus: 1, price: '1.00' }));
    const book = regionBook(bindings, REGION, model);
    const before = await book.snapshot();
    await evictDurableObject(book);
    expect(await book.snapshot()).toEqual(before);
    const fill = await placed(renter, buy(model, { gpus: 1, price: '3.00' }));
    expect(fill.leases).toHaveLength(1);
    const leaseRows = await db().select().from(leases).where(inArray(leases.askId, [early.order.id, late.order.id]));
    expect(leaseRows.map((l) => l.askId)).toEqual([early.order.id]);
    await expectEscrowBalanced([renter]);
  });

  it('replaces the node index of a book made before it covered asks only, and still counts a node’s offered GPUs through it', async () => {
    const model = 'h200-141gb';
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '100.00');
    const node = await onlineNode(provider, model, 4);
    await placed(provider, sell(model, node.nodeId, { gpus: 3, price: '9.00' }));
    await placed(renter, buy(model, { gpus: 1, price: '1.00' }));
    const book = regionBook(bindings, REGION, model);
    const nodeIndexes = () =>
      runInDurableObject(book, (_instance: unknown, state: DurableObjectState) =>
        state.storage.sql
          .exec<{ name: string; sql: string }>("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'orders_node%'")
          .toArray()
          .map((r) => `${r.name}: ${r.sql}`),
      );
    const asksOnly = 'orders_node_asks: CREATE INDEX orders_node_asks ON orders (node_id, status) WHERE node_id IS NOT NULL';
    expect(await nodeIndexes()).toEqual([asksOnly]);

    // The book as it was stored before: the index over every order, bids included.
    await runInDurableObject(book, (_instance: unknown, state: DurableObjectState) => {
      state.storage.sql.exec('DROP INDEX orders_node_asks');
      state.storage.sql.exec('CREATE INDEX orders_node ON orders (node_id, status)');
    });
    await evictDurableObject(book);
    expect(await nodeIndexes()).toEqual([asksOnly]);

    // 3 of the node's 4 GPUs are offered: one more is free, two are not.
    await expectError(await place(provider, sell(model, node.nodeId, { gpus: 2, price: '9.00' })), 409, 'conflict');
    expect((await placed(provider, sell(model, node.nodeId, { gpus: 1, price: '9.00' }))).order.status).toBe('open');
    expect((await book.snapshot()).bestBid).toBe(1_000_000);
  });
});

describe('the floor under a buy (POST /v1/dev/bench/floor)', () => {
  const inDevelopment = (path: string, auth?: string) =>
    worker.fetch(
      new Request(`${ORIGIN}${path}`, { method: 'POST', headers: auth ? { authorization: `Bearer ${auth}` } : {} }),
      { ...bindings, ENVIRONMENT: 'development' },
      createExecutionContext(),
    );
  const storedWindow = (accountId: string) =>
    runInDurableObject(bindings.RATE_LIMITER.getByName(floorBucketName(accountId)), (_o, state) => state.storage.get<{ hits: number[] }>('window'));

  it('does not exist outside development', async () => {
    const renter = await signUp();
    await expectError(await call('/v1/dev/bench/floor', { method: 'POST', auth: renter.apiKey }), 404, 'not_found');
    expect(await storedWindow(renter.id)).toBeUndefined();
  });

  it('commits one small Durable Object write that survives eviction, and moves no money', async () => {
    const renter = await signUp();
    const money = await balances(renter);
    await expectError(await inDevelopment('/v1/dev/bench/floor'), 401, 'unauthorized');
    expect(await storedWindow(renter.id)).toBeUndefined();
    const token = await accessToken(renter);
    const before = Date.now();
    const res = await inDevelopment('/v1/dev/bench/floor', token);
    expect(res.status).toBe(201);
    expect(await json(res)).toEqual({ ok: true });

    const bucket = bindings.RATE_LIMITER.getByName(floorBucketName(renter.id));
    await evictDurableObject(bucket);
    const stored = await storedWindow(renter.id);
    expect(stored?.hits).toHaveLength(1);
    expect(stored!.hits[0]).toBeGreaterThanOrEqual(before);
    expect(await balances(renter)).toEqual(money);
    expect(await db().select().from(orders).where(eq(orders.accountId, renter.id))).toEqual([]);
  });
});
