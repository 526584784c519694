import { env } from 'cloudflare:workers';
import { evictDurableObject, runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { BookOrder, RegionBook } from '../../src/durable/region-book.ts';

const books = (env as unknown as { REGION_BOOK: DurableObjectNamespace<RegionBook> }).REGION_BOOK;
const far = () => Date.now() + 86_400_000;

function ask(id: string, o: Partial<BookOrder> = {}): BookOrder {
  return { side: 'sell', id, accountId: 'acc_provider', nodeId: `node_${id}`, gpus: 4, price: 2_000_000, minDurationS: 60, maxDurationS: 86_400, expiresAt: far(), reliability: 0.99, verified: true, ...o } as BookOrder;
}
function bid(id: string, o: Partial<BookOrder> = {}): BookOrder {
  return { side: 'buy', id, accountId: 'acc_renter', gpus: 2, price: 2_500_000, durationS: 3_600, minReliability: 0, verifiedOnly: false, tif: 'gtc', expiresAt: far(), ...o } as BookOrder;
}

describe('RegionBook', () => {
  it('records orders and trades, consuming an ask across fills', async () => {
    const book = books.getByName(`us-east:h100-80gb:${crypto.randomUUID()}`);
    expect(await book.place(ask('a1'))).toMatchObject({ ok: true, resting: true, trades: [] });
    const fill = await book.place(bid('b1'));
    expect(fill).toMatchObject({ ok: true, resting: false, trades: [{ id: 'trd_b1_0', askId: 'a1', gpus: 2, price: 2_000_000 }] });
    expect(await book.order('a1')).toEqual({ status: 'open', freeGpus: 2 });
    expect(await book.order('b1')).toEqual({ status: 'filled', freeGpus: 0 });
    await book.place(bid('b2'));
    expect(await book.order('a1')).toEqual({ status: 'filled', freeGpus: 0 });
    expect((await book.place(bid('b2'))).reason).toBe('duplicate_id');
  });

  it('loses nothing when evicted: the rebuilt book keeps every open order and its priority', async () => {
    const book = books.getByName(`eu-central:a100-80gb:${crypto.randomUUID()}`);
    await book.place(ask('early', { price: 2_000_000, gpus: 2 }));
    await book.place(ask('late', { price: 2_000_000, gpus: 8 }));
    await book.place(ask('dear', { price: 3_000_000 }));
    await book.place(bid('resting-bid', { price: 1_000_000 }));
    await book.place(bid('eat-early', { gpus: 1 }));
    const before = await book.snapshot();

    await evictDurableObject(book);
    expect(await book.snapshot()).toEqual(before);
    // Time priority survived: the earlier ask at the same price still fills first.
    const next = await book.place(bid('after-restart', { gpus: 1 }));
    expect(next.trades[0]!.askId).toBe('early');
    expect(await book.order('early')).toEqual({ status: 'filled', freeGpus: 0 });
    expect(await book.order('resting-bid')).toEqual({ status: 'open', freeGpus: 2 });
  });

  it('records an IOC bid that cannot fill as cancelled, and cancels resting orders once', async () => {
    const book = books.getByName(`us-west:l4-24gb:${crypto.randomUUID()}`);
    expect(await book.place(bid('ioc', { tif: 'ioc' }))).toMatchObject({ ok: true, resting: false, trades: [] });
    expect(await book.order('ioc')).toEqual({ status: 'cancelled', freeGpus: 2 });
    await book.place(bid('gtc'));
    expect(await book.cancel('gtc')).toBe(true);
    expect(await book.cancel('gtc')).toBe(false);
    expect(await book.order('gtc')).toMatchObject({ status: 'cancelled' });
    expect((await book.snapshot()).resting).toBe(0);
  });

  it('expires orders by alarm', async () => {
    const book = books.getByName(`us-east:t4-16gb:${crypto.randomUUID()}`);
    await book.place(bid('short', { expiresAt: Date.now() + 40 }));
    await book.place(bid('long'));
    await new Promise((r) => setTimeout(r, 60));
    expect(await runDurableObjectAlarm(book)).toBe(true);
    expect(await book.order('short')).toMatchObject({ status: 'expired' });
    expect(await book.order('long')).toMatchObject({ status: 'open' });
  });
});
