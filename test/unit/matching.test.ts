import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OrderBook, type AskInput, type BidInput } from '../../src/market/engine.ts';

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
    book.setNodeOnline('n1', false);
    expect(book.submitBid(bid({ id: 'b1' }), NOW)).toMatchObject({ trades: [], resting: true });
    book.cancel('b1');
    book.setNodeOnline('n1', true);
    expect(book.submitBid(bid(), NOW)).toMatchObject({ trades: [{ askId: 'a' }] });
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
