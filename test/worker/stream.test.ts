import { evictDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { regionBook } from '../../src/durable/region-book.ts';
import type { Bindings } from '../../src/env.ts';
import { PING, PONG } from '../../src/market/stream.ts';
import { bookAsk, bookBid } from './trading.ts';
import { call, expectError } from './support.ts';

// Every book here is in a region no other test file trades in, and each test has its own GPU model.
const REGION = 'us-west';
const bindings = env as unknown as Bindings;
const book = (model: string) => regionBook(bindings, REGION, model);
const uniqueIp = () => `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;

const ask = (model: string, price: number, gpus: number) => bookAsk(REGION, model, price, gpus);
const bid = (model: string, price: number, gpus: number, durationS = 3600) => bookBid(REGION, model, price, gpus, durationS);

interface Subscriber {
  ws: WebSocket;
  /** Every frame received, as text, in order. */
  frames: string[];
  messages(): any[];
  /** Waits until `count` messages matching `match` have arrived (or fails after 5 s). */
  until(match: (m: any) => boolean, count?: number): Promise<any[]>;
}

function upgrade(query: string, ip = uniqueIp()) {
  return call(`/v1/market/stream${query}`, { headers: { upgrade: 'websocket', 'cf-connecting-ip': ip } });
}

async function subscribe(books: string[]): Promise<Subscriber> {
  const res = await upgrade(`?books=${books.join(',')}`);
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const frames: string[] = [];
  ws.addEventListener('message', (e) => {
    frames.push(e.data as string);
  });
  ws.accept();
  const messages = () => frames.map((f) => JSON.parse(f));
  return {
    ws,
    frames,
    messages,
    async until(match, count = 1) {
      const deadline = Date.now() + 5000;
      for (;;) {
        const found = messages().filter(match);
        if (found.length >= count) return found;
        if (Date.now() > deadline) throw new Error(`timed out; received ${JSON.stringify(messages())}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

const of = (type: string, bookName?: string) => (m: any) => m.type === type && (bookName === undefined || m.book === bookName);

describe('market stream', () => {
  it('sends a snapshot of the book on connect, then quotes when the best prices move and each trade', async () => {
    const model = 'h200-141gb';
    const name = `${REGION}:${model}`;
    const seller = ask(model, 2_500_000, 2);
    await book(model).place(seller);
    const s = await subscribe([name]);
    const [snapshot] = await s.until(of('snapshot'));
    expect(snapshot).toEqual({
      type: 'snapshot',
      book: name,
      best_bid: null,
      best_ask: '2.50',
      last: null,
      change_24h: null,
      volume_24h_gpu_hours: '0.00',
      at: expect.any(String),
    });

    const resting = bid(model, 2_000_000, 1);
    await book(model).place(resting);
    const [quote] = await s.until(of('quote'));
    expect(quote).toEqual({ type: 'quote', book: name, best_bid: '2.00', best_ask: '2.50', at: expect.any(String) });

    const taker = bid(model, 2_500_000, 2, 1800);
    const placed = await book(model).place(taker);
    if (!placed.ok) throw new Error('placement failed');
    const [trade] = await s.until(of('trade'));
    expect(trade).toEqual({ type: 'trade', book: name, id: placed.fills[0]!.tradeId, price: '2.50', gpus: 2, duration_s: 1800, at: expect.any(String) });
    // The ask is used up: the best ask is gone, announced after the trade.
    const quotes = await s.until(of('quote'), 2);
    expect(quotes[1]).toMatchObject({ best_bid: '2.00', best_ask: null });
    const kinds = s.messages().map((m) => m.type);
    expect(kinds.indexOf('trade')).toBeLessThan(kinds.lastIndexOf('quote'));

    // A change that moves no best price and trades nothing sends nothing.
    const before = s.frames.length;
    await book(model).place(bid(model, 1_000_000, 1));
    await book(model).place(bid(model, 2_000_000, 3));
    await book(model).place(bid(model, 2_100_000, 1));
    await s.until(of('quote'), 3);
    expect(s.messages().slice(before)).toEqual([{ type: 'quote', book: name, best_bid: '2.10', best_ask: null, at: expect.any(String) }]);

    const all = s.frames.join('\n');
    for (const id of [seller.id, seller.nodeId, seller.accountId, resting.id, resting.accountId, taker.id, placed.fills[0]!.leaseId]) expect(all).not.toContain(id);
    s.ws.close();
  });

  it('carries several books on one connection, each message naming its book', async () => {
    const [m1, m2] = ['a100-40gb', 'l40s-48gb'];
    const s = await subscribe([`${REGION}:${m1}`, `${REGION}:${m2}`]);
    const snapshots = await s.until(of('snapshot'), 2);
    expect(snapshots.map((m) => m.book).sort()).toEqual([`${REGION}:${m1}`, `${REGION}:${m2}`]);

    await book(m1).place(ask(m1, 3_000_000, 1));
    await book(m2).place(ask(m2, 1_500_000, 1));
    await book(m2).place(bid(m2, 1_500_000, 1));
    expect((await s.until(of('quote', `${REGION}:${m1}`)))[0]).toMatchObject({ best_ask: '3.00' });
    expect((await s.until(of('trade', `${REGION}:${m2}`)))[0]).toMatchObject({ price: '1.50', gpus: 1 });
    expect(s.messages().filter(of('trade', `${REGION}:${m1}`))).toEqual([]);

    // The joined socket answers pings itself.
    s.ws.send(PING);
    await s.until((m) => m.type === 'pong');
    expect(s.frames).toContain(PONG);
    s.ws.close();
  });

  it('keeps subscribers across eviction of the book (hibernated sockets) and answers pings without waking it', async () => {
    const model = 'a6000-48gb';
    const s = await subscribe([`${REGION}:${model}`]);
    await s.until(of('snapshot'));
    await book(model).place(ask(model, 1_800_000, 1));
    await s.until(of('quote'));
    await evictDurableObject(book(model));

    s.ws.send(PING);
    await s.until((m) => m.type === 'pong');
    await book(model).place(bid(model, 1_800_000, 1));
    expect((await s.until(of('trade')))[0]).toMatchObject({ price: '1.80', book: `${REGION}:${model}` });
    s.ws.close();
  });

  it('refuses plain HTTP with 426', async () => {
    const res = await call(`/v1/market/stream?books=${REGION}:h100-80gb`);
    await expectError(res, 426, 'upgrade_required');
    expect(res.headers.get('upgrade')).toBe('websocket');
  });

  it('refuses unknown, malformed, missing and too many books with 400', async () => {
    for (const query of ['', '?books=', `?books=${REGION}:h100-81gb`, '?books=mars:h100-80gb', `?books=${REGION}`, `?books=${REGION}:h100-80gb:x`]) {
      await expectError(await upgrade(query), 400, 'validation_failed');
    }
    const models = ['h100-80gb', 'a100-80gb', 'a100-40gb', 'l40s-48gb', 'l4-24gb'];
    const regions = ['us-east', 'us-west', 'eu-central', 'eu-west', 'ap-southeast'];
    const many = regions.flatMap((r) => models.map((m) => `${r}:${m}`)).slice(0, 21);
    expect((await expectError(await upgrade(`?books=${many.join(',')}`), 400, 'validation_failed')).message).toContain('at most 20');
  });

  it('limits connection attempts per client IP with 429 and Retry-After', async () => {
    const ip = uniqueIp();
    // STREAM_IP_RATE_LIMIT is 5/60 in the test configuration; bad attempts count too.
    for (let i = 0; i < 5; i++) await expectError(await upgrade('?books=nowhere:x', ip), 400, 'validation_failed');
    const res = await upgrade(`?books=${REGION}:h100-80gb`, ip);
    await expectError(res, 429, 'rate_limited');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not affected.
    await expectError(await upgrade('?books=nowhere:x'), 400, 'validation_failed');
  });
});
