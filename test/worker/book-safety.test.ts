// A book must never sell what cannot be delivered (an offline node, a node whose trust fell),
// must carry out its effects for one order in the order they happened, and must refuse what
// it does not implement.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { nodes } from '../../src/db/schema.ts';
import { regionBook, type RegionBook } from '../../src/durable/region-book.ts';
import { publishNodeTrust } from '../../src/nodes/trust.ts';
import { call, db, expectError, fund, json, signUp, type TestAccount } from './support.ts';
import { beat, bindings, bookAsk, bookBid, buy as buyIn, collectorOf as collectorIn, onlineNode as onlineNodeIn, pause, place, placed, sell as sellIn } from './trading.ts';

// This file trades in its own region; each test in its own GPU model's book.
const REGION = 'us-west';
const buy = (model: string, o: Record<string, unknown> = {}) => buyIn(REGION, model, o);
const sell = (model: string, nodeId: string, o: Record<string, unknown> = {}) => sellIn(REGION, model, nodeId, o);
const onlineNode = (provider: TestAccount, model: string, count: number) => onlineNodeIn(REGION, provider, model, count);

/** Silence past the grace period, through the real pipeline: the Collector reports the node offline. */
async function silence(node: { nodeId: string }) {
  const longAgo = Date.now() - 600_000;
  const collector = collectorIn(REGION, node.nodeId);
  await runInDurableObject(collector, (instance: unknown) => {
    (instance as { nodes: Map<string, { lastSeenMs: number }> }).nodes.get(node.nodeId)!.lastSeenMs = longAgo;
  });
  await db().update(nodes).set({ lastHeartbeatAt: longAgo }).where(eq(nodes.id, node.nodeId));
  await runDurableObjectAlarm(collector);
  expect((await db().select().from(nodes).where(eq(nodes.id, node.nodeId)))[0]!.status).toBe('offline');
}

const orderOf = async (account: TestAccount, id: string) => (await json(await call(`/v1/orders/${id}`, { auth: account.apiKey }))).order;

describe('a node that goes silent stops selling', () => {
  it('matches no new bid to a node whose fully leased ask reopens while it is offline, and matches again once it is back', async () => {
    const model = 'rtx-3090-24gb';
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '50.00');
    const node = await onlineNode(provider, model, 2);
    const ask = await placed(provider, sell(model, node.nodeId));
    const first = await placed(renter, buy(model));
    expect(first.leases).toHaveLength(1);
    expect((await orderOf(provider, ask.order.id)).status).toBe('filled');

    // Its only ask is fully leased when the node goes silent.
    await silence(node);
    // The lease ends (here the renter stops it while it provisions): its GPUs go back to the ask.
    const stopped = await call(`/v1/leases/${first.leases[0].id}/terminate`, { method: 'POST', auth: renter.apiKey });
    expect(stopped.status).toBe(200);
    await runDurableObjectAlarm(bindings.LEASE.getByName(first.leases[0].id));
    expect((await regionBook(bindings, REGION, model).snapshot()).depth.asks).toEqual([[2_000_000, 2]]);

    // A bid now must wait: the ask is back, but its node is not.
    const second = await placed(renter, buy(model));
    expect(second.leases).toEqual([]);
    expect(second.order.status).toBe('open');

    // The node heartbeats again: the waiting bid fills against its ask.
    await pause(60);
    await beat(node, 2);
    const now = await json(await call(`/v1/orders/${second.order.id}`, { auth: renter.apiKey }));
    expect(now.order.status).toBe('filled');
    expect(now.leases).toHaveLength(1);
  });

  it('keeps an ask of a node whose lease failed from silence out of matching until the node heartbeats', async () => {
    const book = regionBook(bindings, 'test-silent', crypto.randomUUID());
    const ask = bookAsk('test-silent', 'm', 2_000_000, 2);
    await book.place(ask);
    const first = await book.place(bookBid('test-silent', 'm', 2_000_000, 2));
    expect(first.ok && first.fills).toHaveLength(1);
    const leaseId = first.ok ? first.fills[0]!.leaseId : '';

    expect(await book.leaseEnded(leaseId, Date.now(), { nodeSilent: true })).toBe(0);
    const waiting = await book.place(bookBid('test-silent', 'm', 2_000_000, 2));
    expect(waiting).toMatchObject({ ok: true, order: { status: 'open' }, fills: [] });

    expect(await book.setNodes({ online: [ask.nodeId], offline: [] })).toBe(1);
    expect((await book.orders([waiting.ok ? waiting.order.id : '']))[0]!.status).toBe('filled');
  });
});

type Effect = { kind: 'lease'; terms: { leaseId: string } } | { kind: 'status'; orderId: string; status: string };

/** Replaces the book's effect runner: records what it carries out, and fails what `fail` says to, once each. */
async function fakeEffects(book: DurableObjectStub<RegionBook>, fail: (e: Effect) => boolean) {
  const applied: string[] = [];
  await runInDurableObject(book, (instance: unknown) => {
    const failed = new Set<string>();
    (instance as { apply: (e: Effect) => Promise<null> }).apply = async (e: Effect) => {
      const name = e.kind === 'lease' ? `lease ${e.terms.leaseId}` : `${e.orderId} ${e.status}`;
      if (fail(e) && !failed.has(name)) {
        failed.add(name);
        throw new Error(`libSQL away for ${name}`);
      }
      applied.push(name);
      return null;
    };
  });
  return applied;
}

/** Makes every backing-off effect due now, then runs the book's alarm. */
async function retryNow(book: DurableObjectStub<RegionBook>) {
  await runInDurableObject(book, (_: unknown, state: DurableObjectState) => {
    state.storage.sql.exec('UPDATE effects SET not_before = 0');
  });
  await runDurableObjectAlarm(book);
}

describe('the book’s outbox', () => {
  it('applies one order’s effects in order: a retried `filled` is never overtaken by the later `open`', async () => {
    const book = regionBook(bindings, 'test-outbox', crypto.randomUUID());
    const ask = bookAsk('test-outbox', 'm', 2_000_000, 2);
    const applied = await fakeEffects(book, (e) => e.kind === 'status' && e.orderId === ask.id && e.status === 'filled');
    await book.place(ask);
    const filled = await book.place(bookBid('test-outbox', 'm', 2_000_000, 2));
    const leaseId = filled.ok ? filled.fills[0]!.leaseId : '';
    expect(applied).toEqual([`lease ${leaseId}`]);

    // The lease ends while the ask's `filled` is backing off: the ask reopens.
    await book.leaseEnded(leaseId);
    expect((await book.orders([ask.id]))[0]!.status).toBe('open');
    // Its `open` waits behind its `filled`; another order's effects do not.
    const other = bookBid('test-outbox', 'm', 1_000_000, 1);
    await book.place(other);
    await book.cancel(other.id, other.accountId);
    expect(applied).toEqual([`lease ${leaseId}`, `${other.id} cancelled`]);

    await retryNow(book);
    expect(applied).toEqual([`lease ${leaseId}`, `${other.id} cancelled`, `${ask.id} filled`, `${ask.id} open`]);
    await runInDurableObject(book, (_: unknown, state: DurableObjectState) => {
      expect(state.storage.sql.exec('SELECT count(*) AS n FROM effects').one().n).toBe(0);
    });
  });
});

describe('a book restarted from its storage', () => {
  it('sets an alarm for effects an instance left behind when it stopped in the middle of a drain', async () => {
    const book = regionBook(bindings, 'test-outbox', crypto.randomUUID());
    // A resting bid far from expiry: the only alarm is half a day away.
    await book.place(bookBid('test-outbox', 'm', 1_000_000, 1, 3600, { expiresAt: Date.now() + 43_200_000 }));
    const effect = { kind: 'status', orderId: 'ord_left', status: 'cancelled', at: Date.now(), release: null };
    await runInDurableObject(book, (_: unknown, state: DurableObjectState) => {
      // What a drain that never finished leaves: an effect due now, nothing set to carry it out.
      state.storage.sql.exec("INSERT INTO effects (body, key, not_before) VALUES (?, 'order:ord_left', ?)", JSON.stringify(effect), Date.now());
    });
    await evictDurableObject(book);
    await book.snapshot();
    await runInDurableObject(book, async (_: unknown, state: DurableObjectState) => {
      const alarm = await state.storage.getAlarm();
      expect(alarm).not.toBeNull();
      expect(alarm!).toBeLessThanOrEqual(Date.now() + 1_000);
    });
    await runDurableObjectAlarm(book);
    await runInDurableObject(book, (_: unknown, state: DurableObjectState) => {
      expect(state.storage.sql.exec('SELECT count(*) AS n FROM effects').one().n).toBe(0);
    });
  });

  it('keeps an alarm within 30 s while a drain runs, so a reset mid-drain is carried on even if no call comes', async () => {
    const book = regionBook(bindings, 'test-outbox', crypto.randomUUID());
    const bid = bookBid('test-outbox', 'm', 1_000_000, 1, 3600, { expiresAt: Date.now() + 43_200_000 });
    await book.place(bid);
    // The effect store hangs: the cancel's drain never ends (as if the object were reset in it).
    await runInDurableObject(book, async (instance: unknown, state: DurableObjectState) => {
      const b = instance as { apply: () => Promise<null>; cancel: (id: string, accountId: string) => Promise<unknown> };
      b.apply = () => new Promise<null>(() => {});
      void b.cancel(bid.id, bid.accountId);
      await scheduler.wait(20);
      const alarm = await state.storage.getAlarm();
      expect(alarm).not.toBeNull();
      expect(alarm!).toBeLessThanOrEqual(Date.now() + 30_000);
      expect(state.storage.sql.exec('SELECT count(*) AS n FROM effects').one().n).toBe(1);
    });
    // The object is reset; nobody calls it. Its alarm carries out the cancel's release.
    await evictDurableObject(book);
    expect(await runDurableObjectAlarm(book)).toBe(true);
    await runInDurableObject(book, (_: unknown, state: DurableObjectState) => {
      expect(state.storage.sql.exec('SELECT count(*) AS n FROM effects').one().n).toBe(0);
    });
  });

  it('matches in the same time priority as before: an ask whose node came back stays behind the asks that waited', async () => {
    const book = regionBook(bindings, 'test-priority', crypto.randomUUID());
    const first = bookAsk('test-priority', 'm', 2_000_000, 1);
    const second = bookAsk('test-priority', 'm', 2_000_000, 1);
    await book.place(first);
    await book.place(second);
    // The first ask's node goes away and comes back: it queues behind the second.
    await book.setNodes({ online: [], offline: [first.nodeId] });
    await book.setNodes({ online: [first.nodeId], offline: [] });
    await evictDurableObject(book);
    const bid = await book.place(bookBid('test-priority', 'm', 2_000_000, 1));
    expect(bid.ok && bid.fills.map((f) => f.askId)).toEqual([second.id]);
  });
});

describe('workloads stay out of the book’s memory', () => {
  const big = { image: 'ghcr.io/acme/train:1.4', command: ['python', 'train.py'], env: { CONFIG_0: 'x'.repeat(8192), CONFIG_1: 'y'.repeat(8192) }, ports: [8888] };

  it('keeps a resting bid’s workload apart from what the book rebuilds, and hands it to the lease its trade creates', async () => {
    const book = regionBook(bindings, 'test-workload', crypto.randomUUID());
    const terms: Array<{ workload: unknown }> = [];
    await runInDurableObject(book, (instance: unknown) => {
      (instance as { apply: (e: { kind: string; terms?: { workload: unknown } }) => Promise<null> }).apply = async (e) => {
        if (e.kind === 'lease') terms.push(e.terms!);
        return null;
      };
    });
    const bid = bookBid('test-workload', 'm', 2_000_000, 1, 3600, { workload: big });
    await book.place(bid);
    await runInDurableObject(book, (instance: unknown, state: DurableObjectState) => {
      const { body } = state.storage.sql.exec<{ body: string }>('SELECT body FROM orders WHERE id = ?', bid.id).one();
      expect(body).not.toContain('CONFIG_0');
      expect(body.length).toBeLessThan(1024);
      (instance as { reload(): void }).reload();
    });
    await book.place(bookAsk('test-workload', 'm', 2_000_000, 1));
    expect(terms.map((t) => t.workload)).toEqual([big]);
    await runInDurableObject(book, (_: unknown, state: DurableObjectState) => {
      expect(state.storage.sql.exec('SELECT count(*) AS n FROM bid_workloads').one().n).toBe(0);
    });
  });

  it('migrates a book stored in the old layout: workloads move out, pending effects keep their order', async () => {
    const book = regionBook(bindings, 'test-layout', crypto.randomUUID());
    const bid = bookBid('test-layout', 'm', 2_000_000, 1, 3600, { workload: big });
    await book.snapshot();
    // The layout before: each order's whole body in `orders`, effects without a key.
    await runInDurableObject(book, (_: unknown, state: DurableObjectState) => {
      const sql = state.storage.sql;
      for (const t of ['orders', 'effects', 'bid_workloads', 'node_trust', 'book_layout']) sql.exec(`DROP TABLE IF EXISTS ${t}`);
      sql.exec(`CREATE TABLE orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, side TEXT NOT NULL,
        account_id TEXT NOT NULL, node_id TEXT, body TEXT NOT NULL, status TEXT NOT NULL, free_gpus INTEGER NOT NULL, created_at INTEGER NOT NULL)`);
      sql.exec('CREATE TABLE effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL)');
      sql.exec("INSERT INTO orders (id, side, account_id, node_id, body, status, free_gpus, created_at) VALUES (?, 'buy', ?, NULL, ?, 'open', 1, 0)", bid.id, bid.accountId, JSON.stringify(bid));
      sql.exec('INSERT INTO effects (body, not_before) VALUES (?, 0)', JSON.stringify({ kind: 'status', orderId: 'ord_a', status: 'filled', at: 0, release: null }));
      sql.exec('INSERT INTO effects (body, not_before) VALUES (?, 0)', JSON.stringify({ kind: 'status', orderId: 'ord_a', status: 'open', at: 0, release: null }));
    });
    await evictDurableObject(book);
    await runInDurableObject(book, (_: unknown, state: DurableObjectState) => {
      const sql = state.storage.sql;
      expect(sql.exec<{ body: string }>('SELECT body FROM orders WHERE id = ?', bid.id).one().body).not.toContain('CONFIG_0');
      expect(JSON.parse(sql.exec<{ workload: string }>('SELECT workload FROM bid_workloads WHERE order_id = ?', bid.id).one().workload)).toEqual(big);
      expect(sql.exec('SELECT key FROM effects ORDER BY seq').toArray()).toEqual([{ key: 'order:ord_a' }, { key: 'order:ord_a' }]);
      // Time priority was insertion order: it is now stored as such.
      expect(sql.exec<{ seq: number; priority: number }>('SELECT seq, priority FROM orders WHERE id = ?', bid.id).one()).toEqual(expect.objectContaining({ priority: expect.any(Number) }));
      expect(sql.exec<{ v: number }>('SELECT max(version) AS v FROM book_layout').one().v).toBe(4);
    });
    expect((await book.snapshot()).bestBid).toBe(2_000_000);
  });
});

describe('live trust signals', () => {
  it('matches on the node’s current reliability and verification, as published to the book', async () => {
    const model = 'a10-24gb';
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '50.00');
    const node = await onlineNode(provider, model, 2);
    // Placed while the node is trusted (0.9).
    const ask = await placed(provider, sell(model, node.nodeId, { gpus: 1 }));

    // A failed lease lowers its reliability, and the book hears of it.
    await db().update(nodes).set({ reliabilityPpm: 500_000 }).where(eq(nodes.id, node.nodeId));
    await publishNodeTrust(bindings, node.nodeId);
    const picky = await placed(renter, buy(model, { gpus: 1, min_reliability: 0.8 }));
    expect(picky.leases).toEqual([]);
    const offers = await json(await call(`/v1/offers?q=${encodeURIComponent(`gpu_model=${model} region=${REGION}`)}`));
    expect(offers.data.find((o: { node_id?: string; id?: string }) => o.id === ask.order.id || o.node_id === node.nodeId)?.reliability).toBe(0.5);

    // Verified by inspection and trusted again: the waiting bid fills.
    await db().update(nodes).set({ reliabilityPpm: 950_000, verified: true }).where(eq(nodes.id, node.nodeId));
    await publishNodeTrust(bindings, node.nodeId);
    expect((await orderOf(renter, picky.order.id)).status).toBe('filled');
  });

  it('hears a trust change with the node’s next heartbeat batch when its publication was missed', async () => {
    const model = 'rtx-4090-24gb';
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '50.00');
    const node = await onlineNode(provider, model, 1);
    await placed(provider, sell(model, node.nodeId, { gpus: 1 }));
    await db().update(nodes).set({ reliabilityPpm: 300_000 }).where(eq(nodes.id, node.nodeId));
    await pause(60);
    await beat(node, 2);
    const picky = await placed(renter, buy(model, { gpus: 1, min_reliability: 0.5 }));
    expect(picky.leases).toEqual([]);
  });

  it('keeps what was published across a restart of the book', async () => {
    const book = regionBook(bindings, 'test-trust', crypto.randomUUID());
    const ask = bookAsk('test-trust', 'm', 2_000_000, 1, { reliability: 0.99, verified: true });
    await book.place(ask);
    await book.setNodeTrust(ask.nodeId, { reliabilityPpm: 400_000, verified: false });
    await runInDurableObject(book, (instance: unknown) => (instance as { reload(): void }).reload());
    expect(await book.place(bookBid('test-trust', 'm', 2_000_000, 1, 3600, { verifiedOnly: true }))).toMatchObject({ ok: true, fills: [] });
    expect(await book.place(bookBid('test-trust', 'm', 2_000_000, 1, 3600, { minReliability: 0.5 }))).toMatchObject({ ok: true, fills: [] });
    expect((await book.openAsks()).map((a) => [a.reliability, a.verified])).toEqual([[0.4, false]]);
  });
});

describe('sell orders', () => {
  it('refuses a sell that is immediate-or-cancel, naming the field', async () => {
    const provider = await signUp(['provider']);
    const node = await onlineNode(provider, 'l4-24gb', 1);
    const err = await expectError(await place(provider, sell('l4-24gb', node.nodeId, { gpus: 1, tif: 'ioc' })), 400, 'validation_failed');
    expect(err.message).toMatch(/tif/);
    const mine = await json(await call('/v1/orders', { auth: provider.apiKey }));
    expect(mine.data).toEqual([]);
  });
});
