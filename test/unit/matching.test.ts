import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OrderBook, type AskInput, type BidInput, type RestoredOrder, type SubmitResult, type Trade } from '../../src/market/engine.ts';

const NOW = 1_000_000;
const HOUR = 3600;
let n = 0;
const ask = (o: Partial<AskInput> = {}): AskInput => ({
  id: `ask_${++n}`,
  accountId: 'provider_a',
  nodeId: 'node_a',
  gpus: 8,
  price: 2_000_000,
  minDurationS: 60,
  maxDurationS: 30 * 86_400,
  expiresAt: NOW + 86_400_000,
  reliability: 0.99,
  verified: true,
  ...o,
});
const bid = (o: Partial<BidInput> = {}): BidInput => ({
  id: `bid_${++n}`,
  accountId: 'renter_r',
  gpus: 2,
  price: 2_500_000,
  durationS: HOUR,
  minReliability: 0,
  verifiedOnly: false,
  tif: 'gtc',
  expiresAt: NOW + 86_400_000,
  ...o,
});

describe('matching', () => {
  it('fills a bid against the cheapest ask at the ask’s price', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'dear', price: 2_400_000 }), NOW);
    book.submitAsk(ask({ id: 'cheap', price: 2_100_000, nodeId: 'node_b' }), NOW);
    const r = book.submitBid(bid({ price: 2_500_000 }), NOW);
    expect(r.ok && r.trades).toEqual([expect.objectContaining({ askId: 'cheap', price: 2_100_000, gpus: 2, maker: 'sell', nodeId: 'node_b' })]);
  });

  it('gives ties to the earlier order', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'first', nodeId: 'n1' }), NOW);
    book.submitAsk(ask({ id: 'second', nodeId: 'n2' }), NOW + 1);
    const r = book.submitBid(bid(), NOW + 2);
    expect(r.ok && r.trades[0]!.askId).toBe('first');
  });

  it('consumes an ask GPU by GPU across several bids until it runs out', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'a', gpus: 5 }), NOW);
    expect(book.submitBid(bid({ gpus: 2 }), NOW)).toMatchObject({ ok: true, trades: [{ askId: 'a', gpus: 2 }] });
    expect(book.submitBid(bid({ gpus: 4 }), NOW)).toMatchObject({ ok: true, trades: [], resting: true });
    expect(book.submitBid(bid({ gpus: 3 }), NOW)).toMatchObject({ ok: true, trades: [{ askId: 'a', gpus: 3 }] });
    expect(book.resting('a')).toBeNull();
  });

  it('sweeps resting bids best-first with an incoming ask, at each bid’s price', () => {
    const book = new OrderBook();
    book.submitBid(bid({ id: 'low', price: 2_100_000, gpus: 2 }), NOW);
    book.submitBid(bid({ id: 'high', price: 2_900_000, gpus: 4 }), NOW);
    book.submitBid(bid({ id: 'mid', price: 2_500_000, gpus: 4 }), NOW);
    const r = book.submitAsk(ask({ gpus: 9, price: 2_000_000 }), NOW);
    expect(r.ok && r.trades.map((t) => [t.bidId, t.price, t.maker])).toEqual([
      ['high', 2_900_000, 'buy'],
      ['mid', 2_500_000, 'buy'],
    ]);
    // 1 GPU left: the 2-GPU bid cannot fit, so the rest of the ask rests.
    expect(r.ok && r.remainingGpus).toBe(1);
    expect(book.resting('low')).toEqual({ side: 'buy', freeGpus: 2 });
  });

  it('never matches an account with itself', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'mine', accountId: 'same' }), NOW);
    book.submitAsk(ask({ id: 'theirs', accountId: 'other', price: 2_300_000, nodeId: 'n2' }), NOW);
    const r = book.submitBid(bid({ accountId: 'same' }), NOW);
    expect(r.ok && r.trades[0]!.askId).toBe('theirs');
  });

  it('respects the bid’s limit, reliability, verification and the ask’s durations', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'unverified', verified: false, price: 1_000_000, nodeId: 'n1' }), NOW);
    book.submitAsk(ask({ id: 'flaky', reliability: 0.8, price: 1_100_000, nodeId: 'n2' }), NOW);
    book.submitAsk(ask({ id: 'short', maxDurationS: 600, price: 1_200_000, nodeId: 'n3' }), NOW);
    book.submitAsk(ask({ id: 'ok', price: 1_300_000, nodeId: 'n4' }), NOW);
    expect(book.submitBid(bid({ price: 900_000, tif: 'ioc' }), NOW)).toMatchObject({ trades: [] });
    const r = book.submitBid(bid({ verifiedOnly: true, minReliability: 0.95, durationS: HOUR }), NOW);
    expect(r.ok && r.trades[0]!.askId).toBe('ok');
  });

  it('cancels an IOC bid that cannot fill now, and rests a GTC one', () => {
    const book = new OrderBook();
    expect(book.submitBid(bid({ id: 'ioc', tif: 'ioc' }), NOW)).toEqual({ ok: true, trades: [], resting: false, remainingGpus: 2 });
    expect(book.resting('ioc')).toBeNull();
    expect(book.submitBid(bid({ id: 'gtc' }), NOW)).toMatchObject({ resting: true });
  });

  it('lets orders expire and never matches an expired one', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'soon', expiresAt: NOW + 10 }), NOW);
    book.submitBid(bid({ id: 'b', expiresAt: NOW + 20 }), NOW + 100).ok;
    expect(book.resting('soon')).toBeNull();
    expect(book.resting('b')).toBeNull();
    book.submitBid(bid({ id: 'c', expiresAt: NOW + 50 }), NOW);
    expect(book.nextExpiry()).toBe(NOW + 50);
    expect(book.expire(NOW + 60)).toEqual(['c']);
    expect(book.size).toBe(0);
  });

  it('stops matching an offline node’s ask until it is back', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'a', nodeId: 'n1' }), NOW);
    expect(book.setNodeOnline('n1', false, NOW)).toEqual([]);
    expect(book.submitBid(bid({ id: 'b1' }), NOW)).toMatchObject({ trades: [], resting: true });
    book.cancel('b1');
    book.setNodeOnline('n1', true, NOW);
    expect(book.submitBid(bid(), NOW)).toMatchObject({ trades: [{ askId: 'a' }] });
  });

  it('does not reopen GPUs returned to an offline node’s ask onto waiting bids until the node is back', () => {
    const book = new OrderBook();
    const a = ask({ id: 'a', nodeId: 'n1', gpus: 2 });
    book.submitAsk(a, NOW);
    expect(book.submitBid(bid({ id: 'b1', gpus: 2 }), NOW)).toMatchObject({ trades: [{ askId: 'a' }] });
    book.setNodeOnline('n1', false, NOW);
    book.submitBid(bid({ id: 'b2', gpus: 2 }), NOW);
    expect(book.returnGpus('a', 2, a, NOW + 1)).toEqual([]);
    expect(book.resting('b2')).toEqual({ side: 'buy', freeGpus: 2 });
    expect(book.setNodeOnline('n1', true, NOW + 2).map((t) => t.bidId)).toEqual(['b2']);
  });

  it('restores many resting orders at once into the same book as one by one, time priority included', () => {
    const orders: RestoredOrder[] = [];
    for (let i = 0; i < 400; i++) {
      const price = 1_000_000 + ((i * 7919) % 37) * 10_000;
      if (i % 3 === 0) orders.push({ side: 'sell', input: ask({ id: `a${i}`, nodeId: `n${i % 7}`, price: price + 400_000, gpus: 4 }), freeGpus: 1 + (i % 4) });
      else orders.push({ side: 'buy', input: bid({ id: `b${i}`, price, gpus: 1 + (i % 3) }) });
    }
    const one = new OrderBook();
    for (const o of orders) one.restore(o);
    const all = new OrderBook();
    all.restoreAll(orders);
    expect(all.depth(100)).toEqual(one.depth(100));
    expect(all.size).toBe(one.size);
    // Then both match the same stream the same way.
    for (let i = 0; i < 60; i++) {
      const next = i % 2 === 0 ? ask({ id: `x${i}`, nodeId: `m${i}`, price: 1_100_000 + i * 10_000, gpus: 3 }) : bid({ id: `y${i}`, price: 1_450_000 + i * 5_000, gpus: 1 + (i % 4) });
      const a = i % 2 === 0 ? one.submitAsk(next as AskInput, NOW) : one.submitBid(next as BidInput, NOW);
      const b = i % 2 === 0 ? all.submitAsk(next as AskInput, NOW) : all.submitBid(next as BidInput, NOW);
      expect(b).toEqual(a);
    }
  });

  it('matches on a node’s current trust once told, not on what its asks carried when placed', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'a', nodeId: 'n1', reliability: 0.99, verified: true }), NOW);
    expect(book.setNodeTrust('n1', { reliability: 0.5, verified: false }, NOW)).toEqual([]);
    expect(book.submitBid(bid({ id: 'picky', minReliability: 0.9 }), NOW)).toMatchObject({ trades: [], resting: true });
    expect(book.submitBid(bid({ id: 'verified', verifiedOnly: true }), NOW)).toMatchObject({ trades: [], resting: true });
    expect(book.openAsks(NOW)).toMatchObject([{ id: 'a', reliability: 0.5, verified: false }]);
    // A new ask of the node (placed with what the node had then) matches on what the book was told.
    book.submitAsk(ask({ id: 'a2', nodeId: 'n1', reliability: 0.99, verified: true }), NOW);
    expect(book.resting('a2')).toEqual({ side: 'sell', freeGpus: 8 });
    expect(book.submitBid(bid({ id: 'easy' }), NOW)).toMatchObject({ trades: [{ askId: 'a' }] });
  });

  it('matches the bids that waited for more trust once a node gains it, best first', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'a', nodeId: 'n1', gpus: 3, reliability: 0.7, verified: false }), NOW);
    book.submitBid(bid({ id: 'reliable', gpus: 2, price: 2_500_000, minReliability: 0.9 }), NOW);
    book.submitBid(bid({ id: 'verified', gpus: 1, price: 3_000_000, verifiedOnly: true }), NOW);
    // Less trust matches nothing new and leaves the ask's place in the queue.
    expect(book.setNodeTrust('n1', { reliability: 0.6, verified: false }, NOW)).toEqual([]);
    expect(book.setNodeTrust('n1', { reliability: 0.95, verified: true }, NOW + 1).map((t) => [t.bidId, t.price])).toEqual([
      ['verified', 3_000_000],
      ['reliable', 2_500_000],
    ]);
    expect(book.resting('a')).toBeNull();
  });

  it('matches an ask against the bids that waited while its node was offline, once it is back', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'a', nodeId: 'n1', gpus: 4, price: 2_000_000 }), NOW);
    book.setNodeOnline('n1', false, NOW);
    book.submitBid(bid({ id: 'b1', gpus: 2, price: 2_500_000 }), NOW);
    book.submitBid(bid({ id: 'b2', gpus: 1, price: 3_000_000 }), NOW);
    expect(book.bestBid()).toBe(3_000_000);
    // Best bid first, each at the bid's (resting) price; the ask keeps its last free GPU.
    const trades = book.setNodeOnline('n1', true, NOW + 1);
    expect(trades.map((t) => [t.bidId, t.price, t.maker])).toEqual([['b2', 3_000_000, 'buy'], ['b1', 2_500_000, 'buy']]);
    expect(book.resting('a')).toEqual({ side: 'sell', freeGpus: 1 });
    expect(book.setNodeOnline('n1', true, NOW + 2)).toEqual([]);
  });

  it('reports orders a match found expired, so their holds can be released', () => {
    const book = new OrderBook();
    book.submitBid(bid({ id: 'old', gpus: 1, price: 3_000_000, expiresAt: NOW + 10 }), NOW);
    book.submitAsk(ask({ id: 'a', price: 1_000_000 }), NOW + 20);
    expect(book.resting('old')).toBeNull();
    expect(book.takeExpired()).toEqual(['old']);
    expect(book.takeExpired()).toEqual([]);
  });

  it('cancels resting orders once, refuses duplicate ids, and reports depth without ids', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'a1', price: 3_000_000, gpus: 4 }), NOW);
    book.submitAsk(ask({ id: 'a2', price: 3_000_000, gpus: 2, nodeId: 'n2' }), NOW);
    book.submitBid(bid({ id: 'b1', price: 1_000_000 }), NOW);
    expect(book.submitBid(bid({ id: 'b1' }), NOW)).toEqual({ ok: false, reason: 'duplicate_id' });
    expect(book.depth()).toEqual({ bids: [[1_000_000, 2]], asks: [[3_000_000, 6]] });
    expect(book.cancel('a1')).toBe(true);
    expect(book.cancel('a1')).toBe(false);
    expect(book.depth().asks).toEqual([[3_000_000, 2]]);
    expect(book.bestAsk()).toBe(3_000_000);
    expect(book.bestBid()).toBe(1_000_000);
  });

  it('rests an ask whose free GPUs no bid can use, without trading', () => {
    const book = new OrderBook();
    for (let i = 0; i < 50; i++) book.submitBid(bid({ id: `two_${i}`, gpus: 2, price: 2_000_000 + i }), NOW);
    expect(book.submitAsk(ask({ id: 'one', gpus: 1, price: 1_000_000 }), NOW)).toEqual({ ok: true, trades: [], resting: true, remainingGpus: 1 });
    expect(book.size).toBe(51);
  });

  it('still finds a fitting order deeper in the book after cancels and fills', () => {
    const book = new OrderBook();
    book.submitBid(bid({ id: 'big_best', gpus: 3, price: 2_900_000 }), NOW);
    book.submitBid(bid({ id: 'small_best', gpus: 1, price: 2_900_000 }), NOW);
    book.submitBid(bid({ id: 'big_mid', gpus: 2, price: 2_500_000 }), NOW);
    book.submitBid(bid({ id: 'small_deep', gpus: 1, price: 2_100_000 }), NOW);
    book.cancel('small_best');
    // 2 GPUs: the 3-GPU bid is too big; the 2-GPU one takes both.
    let r = book.submitAsk(ask({ id: 'a1', gpus: 2, price: 2_000_000, nodeId: 'n1' }), NOW);
    expect(r.ok && r.trades.map((t) => t.bidId)).toEqual(['big_mid']);
    // 1 GPU: skips the 3-GPU level entirely and reaches the deep 1-GPU bid.
    r = book.submitAsk(ask({ id: 'a2', gpus: 1, price: 2_000_000, nodeId: 'n2' }), NOW);
    expect(r.ok && r.trades.map((t) => [t.bidId, t.price])).toEqual([['small_deep', 2_100_000]]);
    expect(book.depth().bids).toEqual([[2_900_000, 3]]);
  });

  it('tracks a resting ask’s free GPUs through partial fills and returned GPUs', () => {
    const book = new OrderBook();
    const original = ask({ id: 'cheap', gpus: 5, price: 1_000_000, nodeId: 'n1' });
    book.submitAsk(original, NOW);
    book.submitAsk(ask({ id: 'dear', gpus: 8, price: 3_000_000, nodeId: 'n2' }), NOW);
    expect(book.submitBid(bid({ gpus: 4, price: 5_000_000 }), NOW)).toMatchObject({ trades: [{ askId: 'cheap' }] });
    // 1 GPU left on the cheap ask: a 2-GPU bid goes to the dear one, a 1-GPU bid to the cheap.
    expect(book.submitBid(bid({ gpus: 2, price: 5_000_000 }), NOW)).toMatchObject({ trades: [{ askId: 'dear' }] });
    book.restoreGpus('cheap', 3, original, NOW);
    expect(book.resting('cheap')).toEqual({ side: 'sell', freeGpus: 4 });
    expect(book.submitBid(bid({ gpus: 4, price: 5_000_000 }), NOW)).toMatchObject({ trades: [{ askId: 'cheap' }] });
    expect(book.resting('cheap')).toBeNull();
    // Fully sold, then returned: it rests again at the back of its level.
    book.restoreGpus('cheap', 2, original, NOW);
    expect(book.submitBid(bid({ gpus: 2, price: 5_000_000 }), NOW)).toMatchObject({ trades: [{ askId: 'cheap', price: 1_000_000 }] });
  });

  it('matches orders bigger than the histogram’s top bucket by their exact size', () => {
    const book = new OrderBook();
    book.submitAsk(ask({ id: 'a40', gpus: 40, nodeId: 'n1' }), NOW);
    expect(book.submitBid(bid({ gpus: 41, tif: 'ioc' }), NOW)).toMatchObject({ trades: [] });
    expect(book.submitBid(bid({ gpus: 35 }), NOW)).toMatchObject({ trades: [{ askId: 'a40', gpus: 35 }] });
    book.submitBid(bid({ id: 'b33', gpus: 33, price: 2_000_000 }), NOW);
    book.submitBid(bid({ id: 'b32', gpus: 32, price: 1_900_000 }), NOW);
    const r = book.submitAsk(ask({ gpus: 32, price: 1_000_000, nodeId: 'n2' }), NOW);
    expect(r.ok && r.trades.map((t) => t.bidId)).toEqual(['b32']);
  });
});

describe('time priority across a restart', () => {
  it('restores orders at their stored priority, queues new ones behind the highest, and keeps a requeued ask behind', () => {
    const first = ask({ nodeId: 'node_1', gpus: 1 });
    const second = ask({ nodeId: 'node_2', gpus: 1 });
    const live = new OrderBook();
    live.submitAsk(first, NOW);
    live.submitAsk(second, NOW);
    // node_1 goes away and comes back: its ask re-queues behind the other.
    live.setNodeOnline('node_1', false, NOW);
    live.setNodeOnline('node_1', true, NOW);
    expect(live.takeRequeued()).toEqual([first.id]);
    expect(live.takeRequeued()).toEqual([]);
    expect(live.queueOrder().asks).toEqual([second.id, first.id]);

    // Rebuilt from what a shell stores (rows in priority order), it queues the same way.
    const stored = [second, first].map((a): RestoredOrder => ({ side: 'sell', input: a, freeGpus: 1, priority: live.priorityOf(a.id) }));
    const again = new OrderBook();
    again.restoreAll(stored);
    expect(again.queueOrder().asks).toEqual([second.id, first.id]);
    // A new order goes behind both, with a priority above theirs.
    const third = ask({ nodeId: 'node_3', gpus: 1 });
    again.submitAsk(third, NOW);
    expect(again.priorityOf(third.id)!).toBeGreaterThan(again.priorityOf(first.id)!);
    expect(again.queueOrder().asks).toEqual([second.id, first.id, third.id]);
    // The first match goes to the ask that waited.
    expect(again.submitBid(bid({ gpus: 1 }), NOW)).toMatchObject({ ok: true, trades: [{ askId: second.id }] });

    // A row with no stored priority (null) restores in the order given.
    const plain = new OrderBook();
    plain.restoreAll([{ side: 'sell', input: first, freeGpus: 1, priority: null }, { side: 'sell', input: second, freeGpus: 1, priority: null }]);
    expect(plain.queueOrder().asks).toEqual([first.id, second.id]);
    expect(plain.priorityOf(first.id)).toBe(1);
  });
});

describe('matching, for any order stream', () => {
  const order = fc.oneof(
    fc.record({
      kind: fc.constant('ask' as const),
      account: fc.integer({ min: 0, max: 3 }),
      gpus: fc.integer({ min: 1, max: 8 }),
      price: fc.integer({ min: 1, max: 20 }),
    }),
    fc.record({
      kind: fc.constant('bid' as const),
      account: fc.integer({ min: 0, max: 3 }),
      gpus: fc.integer({ min: 1, max: 8 }),
      price: fc.integer({ min: 1, max: 20 }),
      ioc: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('cancel' as const), index: fc.nat() }),
  );

  it('never overfills an ask, never pays above a bid’s limit, and conserves GPUs', () => {
    fc.assert(
      fc.property(fc.array(order, { maxLength: 200 }), (stream) => {
        const book = new OrderBook();
        const asks = new Map<string, { gpus: number; price: number; account: number; cancelled: boolean }>();
        const bids = new Map<string, { gpus: number; price: number; account: number }>();
        const ids: string[] = [];
        const sold = new Map<string, number>();
        const filled = new Set<string>();
        stream.forEach((o, i) => {
          if (o.kind === 'cancel') {
            const id = ids[o.index % Math.max(ids.length, 1)];
            if (id && book.cancel(id) && asks.has(id)) asks.get(id)!.cancelled = true;
            return;
          }
          const id = `${o.kind}_${i}`;
          ids.push(id);
          const r =
            o.kind === 'ask'
              ? (asks.set(id, { gpus: o.gpus, price: o.price, account: o.account, cancelled: false }),
                book.submitAsk(ask({ id, accountId: `acc_${o.account}`, nodeId: `node_${i}`, gpus: o.gpus, price: o.price }), NOW + i))
              : (bids.set(id, { gpus: o.gpus, price: o.price, account: o.account }),
                book.submitBid(bid({ id, accountId: `acc_${o.account}`, gpus: o.gpus, price: o.price, tif: o.ioc ? 'ioc' : 'gtc' }), NOW + i));
          if (!r.ok) throw new Error(r.reason);
          for (const t of r.trades) {
            const a = asks.get(t.askId)!;
            const b = bids.get(t.bidId)!;
            expect(t.price).toBeLessThanOrEqual(b.price); // never above the bid's limit
            expect(t.price).toBeGreaterThanOrEqual(a.price); // never below the ask's price
            expect(t.price === a.price || t.price === b.price).toBe(true); // at the resting price
            expect(t.gpus).toBe(b.gpus); // a bid fills whole, on one node
            expect(a.account).not.toBe(b.account);
            expect(filled.has(t.bidId)).toBe(false); // a bid fills once
            filled.add(t.bidId);
            sold.set(t.askId, (sold.get(t.askId) ?? 0) + t.gpus);
            expect(sold.get(t.askId)!).toBeLessThanOrEqual(a.gpus); // never overfilled
          }
        });
        // Conservation: every ask's GPUs are sold, still free in the book, or withdrawn.
        for (const [id, a] of asks) {
          const resting = book.resting(id);
          const free = resting ? resting.freeGpus : 0;
          if (!a.cancelled) expect((sold.get(id) ?? 0) + free).toBeLessThanOrEqual(a.gpus);
          if (resting) expect((sold.get(id) ?? 0) + free).toBe(a.gpus);
        }
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * A deliberately naive engine with the same rules: every match scans all resting orders of the
 * other side, sorted by price then arrival. The real engine must agree with it trade for trade.
 */
class ReferenceBook {
  private seq = 0;
  private asks: Array<AskInput & { seq: number; free: number }> = [];
  private bids: Array<BidInput & { seq: number }> = [];
  private offline = new Set<string>();

  private fits(a: AskInput & { free: number }, b: BidInput, now: number): boolean {
    return (
      a.accountId !== b.accountId &&
      a.free >= b.gpus &&
      b.durationS >= a.minDurationS &&
      b.durationS <= a.maxDurationS &&
      a.reliability >= b.minReliability &&
      (!b.verifiedOnly || a.verified) &&
      a.expiresAt > now &&
      !this.offline.has(a.nodeId)
    );
  }

  private trade(a: AskInput, b: BidInput, maker: 'buy' | 'sell', now: number): Trade {
    const price = maker === 'sell' ? a.price : b.price;
    return { bidId: b.id, askId: a.id, buyerId: b.accountId, sellerId: a.accountId, nodeId: a.nodeId, gpus: b.gpus, price, durationS: b.durationS, maker, at: now };
  }

  submitBid(b: BidInput, now: number): SubmitResult {
    const candidates = this.asks.filter((a) => a.price <= b.price && a.expiresAt > now).sort((x, y) => x.price - y.price || x.seq - y.seq);
    const a = candidates.find((c) => this.fits(c, b, now));
    if (a) {
      a.free -= b.gpus;
      if (a.free === 0) this.asks = this.asks.filter((o) => o !== a);
      return { ok: true, trades: [this.trade(a, b, 'sell', now)], resting: false, remainingGpus: 0 };
    }
    const rests = b.tif === 'gtc' && b.expiresAt > now;
    if (rests) this.bids.push({ ...b, seq: ++this.seq });
    return { ok: true, trades: [], resting: rests, remainingGpus: b.gpus };
  }

  submitAsk(input: AskInput, now: number): SubmitResult {
    const a = { ...input, seq: ++this.seq, free: input.gpus };
    const trades: Trade[] = [];
    if (a.expiresAt > now && !this.offline.has(a.nodeId)) {
      const candidates = this.bids.filter((b) => b.price >= a.price && b.expiresAt > now).sort((x, y) => y.price - x.price || x.seq - y.seq);
      for (const b of candidates) {
        if (a.free === 0) break;
        if (!this.fits(a, b, now)) continue;
        trades.push(this.trade(a, b, 'buy', now));
        a.free -= b.gpus;
        this.bids = this.bids.filter((o) => o !== b);
      }
    }
    const rests = a.free > 0 && a.expiresAt > now;
    if (rests) this.asks.push(a);
    return { ok: true, trades, resting: rests, remainingGpus: a.free };
  }

  cancel(id: string): boolean {
    const before = this.asks.length + this.bids.length;
    this.asks = this.asks.filter((a) => a.id !== id);
    this.bids = this.bids.filter((b) => b.id !== id);
    return this.asks.length + this.bids.length < before;
  }

  restoreGpus(askId: string, gpus: number, original: AskInput, now: number): void {
    const live = this.asks.find((a) => a.id === askId);
    if (live) live.free = Math.min(live.gpus, live.free + gpus);
    else if (original.expiresAt > now) this.asks.push({ ...original, seq: ++this.seq, free: Math.min(original.gpus, gpus) });
  }

  setNodeOnline(nodeId: string, online: boolean, now: number): Trade[] {
    if (!online) {
      this.offline.add(nodeId);
      return [];
    }
    if (!this.offline.delete(nodeId)) return [];
    // Back online: each of the node's asks leaves the book and comes back as if new.
    const mine = this.asks.filter((a) => a.nodeId === nodeId);
    this.asks = this.asks.filter((a) => a.nodeId !== nodeId);
    const trades: Trade[] = [];
    for (const a of mine) {
      if (a.expiresAt <= now) continue;
      const result = this.submitAsk({ ...a, gpus: a.free }, now);
      if (!result.ok) throw new Error('the reference refused an ask it had accepted');
      const back = this.asks.at(-1);
      // Keep the original size: only what is free was offered again.
      if (back && back.id === a.id) back.gpus = a.gpus;
      trades.push(...result.trades);
    }
    return trades;
  }

  expire(now: number): void {
    this.asks = this.asks.filter((a) => a.expiresAt > now);
    this.bids = this.bids.filter((b) => b.expiresAt > now);
  }

  /** The book as the public API shows it: depth per level, best prices, size, and each order. */
  view(ids: string[]) {
    const levels = <T extends { price: number }>(os: T[], size: (o: T) => number, desc: boolean) => {
      const m = new Map<number, number>();
      for (const o of os) m.set(o.price, (m.get(o.price) ?? 0) + size(o));
      return [...m].filter(([, t]) => t > 0).sort((x, y) => (desc ? y[0] - x[0] : x[0] - y[0]));
    };
    const asks = levels(this.asks, (a) => a.free, false);
    const bids = levels(this.bids, (b) => b.gpus, true);
    const prices = (os: Array<{ price: number }>, desc: boolean) => os.map((o) => o.price).sort((x, y) => (desc ? y - x : x - y))[0] ?? null;
    const resting = ids.map((id) => {
      const a = this.asks.find((o) => o.id === id);
      if (a) return { side: 'sell', freeGpus: a.free };
      const b = this.bids.find((o) => o.id === id);
      return b ? { side: 'buy', freeGpus: b.gpus } : null;
    });
    return { depth: { bids: bids.slice(0, 1000), asks: asks.slice(0, 1000) }, bestBid: prices(this.bids, true), bestAsk: prices(this.asks, false), size: this.asks.length + this.bids.length, resting };
  }
}

const viewOf = (book: OrderBook, ids: string[]) => ({
  depth: book.depth(1000),
  bestBid: book.bestBid(),
  bestAsk: book.bestAsk(),
  size: book.size,
  resting: ids.map((id) => book.resting(id)),
});

describe('matching, against a naive reference engine', () => {
  // Small domains, so that prices tie, accounts collide, and every constraint bites often.
  const size = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.integer({ min: 28, max: 36 }) });
  const common = {
    account: fc.integer({ min: 0, max: 3 }),
    gpus: size,
    price: fc.integer({ min: 1, max: 12 }),
    ttl: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(1e9)),
  };
  const op = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('ask' as const),
        ...common,
        node: fc.integer({ min: 0, max: 5 }),
        durations: fc.constantFrom([60, 86_400], [60, 600], [3600, 86_400]),
        reliability: fc.constantFrom(0.8, 0.99),
        verified: fc.boolean(),
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('bid' as const),
        ...common,
        durationS: fc.constantFrom(300, 3600, 7200),
        minReliability: fc.constantFrom(0, 0, 0.9),
        verifiedOnly: fc.boolean(),
        ioc: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('cancel' as const), index: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('restore' as const), index: fc.nat(), gpus: fc.integer({ min: 0, max: 8 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('node' as const), node: fc.integer({ min: 0, max: 5 }), online: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const) }) },
  );
  const step = fc.record({ op, dt: fc.integer({ min: 0, max: 3 }) });

  it('produces the same trades and the same book, step by step', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300, size: 'max' }), (stream) => {
        const book = new OrderBook();
        const ref = new ReferenceBook();
        const ids: string[] = [];
        const askInputs = new Map<string, AskInput>();
        const expiresAt = new Map<string, number>();
        let now = NOW;
        stream.forEach(({ op: o, dt }, i) => {
          now += dt;
          switch (o.kind) {
            case 'ask': {
              const input = ask({
                id: `a${i}`,
                accountId: `acc_${o.account}`,
                nodeId: `node_${o.node}`,
                gpus: o.gpus,
                price: o.price,
                minDurationS: o.durations[0]!,
                maxDurationS: o.durations[1]!,
                reliability: o.reliability,
                verified: o.verified,
                expiresAt: now + o.ttl,
              });
              ids.push(input.id);
              expiresAt.set(input.id, input.expiresAt);
              askInputs.set(input.id, input);
              expect(book.submitAsk(input, now)).toEqual(ref.submitAsk(input, now));
              break;
            }
            case 'bid': {
              const input = bid({
                id: `b${i}`,
                accountId: `acc_${o.account}`,
                gpus: o.gpus,
                price: o.price,
                durationS: o.durationS,
                minReliability: o.minReliability,
                verifiedOnly: o.verifiedOnly,
                tif: o.ioc ? 'ioc' : 'gtc',
                expiresAt: now + o.ttl,
              });
              ids.push(input.id);
              expiresAt.set(input.id, input.expiresAt);
              expect(book.submitBid(input, now)).toEqual(ref.submitBid(input, now));
              break;
            }
            case 'cancel': {
              const id = ids[o.index % Math.max(ids.length, 1)];
              if (id) {
                const [x, y] = [book.cancel(id), ref.cancel(id)];
                // Whether an expired order is still there to cancel is up to lazy clean-up.
                if (expiresAt.get(id)! > now) expect(x).toBe(y);
              }
              break;
            }
            case 'restore': {
              // Mostly recent asks, which are the likeliest to be resting and partly filled.
              const askIds = [...askInputs.keys()];
              const id = askIds[askIds.length - 1 - (o.index % Math.min(askIds.length, 5))];
              if (id) {
                book.restoreGpus(id, o.gpus, askInputs.get(id)!, now);
                ref.restoreGpus(id, o.gpus, askInputs.get(id)!, now);
              }
              break;
            }
            case 'node':
              expect(book.setNodeOnline(`node_${o.node}`, o.online, now)).toEqual(ref.setNodeOnline(`node_${o.node}`, o.online, now));
              break;
            case 'expire':
              // After a full sweep, lazy clean-up no longer matters: the books must look alike.
              book.expire(now);
              ref.expire(now);
              expect(viewOf(book, ids)).toEqual(ref.view(ids));
              break;
          }
        });
        book.expire(now);
        ref.expire(now);
        expect(viewOf(book, ids)).toEqual(ref.view(ids));
      }),
      { numRuns: 300 },
    );
  });
});
