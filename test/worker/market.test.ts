import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { regionBook } from '../../src/durable/region-book.ts';
import type { Bindings } from '../../src/env.ts';
import { MicroCache, type CachedReply } from '../../src/market/micro-cache.ts';
import type { AskOrder, BidOrder } from '../../src/market/orders.ts';
import { bookAsk, bookBid } from './trading.ts';
import { call, expectError, json } from './support.ts';

// Every book here is in a region no other test file trades in, and each test has its own GPU model.
const REGION = 'eu-west';
const HOUR = 3_600_000;
const bindings = env as unknown as Bindings;
const book = (model: string) => regionBook(bindings, REGION, model);

const ask = (model: string, price: number, gpus: number, o: Partial<AskOrder> = {}) => bookAsk(REGION, model, price, gpus, o);
const bid = (model: string, price: number, gpus: number, durationS = 3600, o: Partial<BidOrder> = {}) => bookBid(REGION, model, price, gpus, durationS, o);

/**
 * One trade of `gpus` × `durationS` at `price`, at time `at`: an ask, then a bid taking all of it.
 * The ask expires soon after `at`: a trade backdated past the provisioning timeout makes a lease
 * that fails at once, and its GPUs must not reopen an ask for the next trade's bid.
 */
async function trade(model: string, price: number, gpus: number, durationS: number, at = Date.now()) {
  const b = book(model);
  await b.place(ask(model, price, gpus, { expiresAt: at + 60_000 }), at);
  const placed = await b.place(bid(model, price, gpus, durationS), at);
  if (!placed.ok || placed.fills.length !== 1) throw new Error(`expected one fill, got ${JSON.stringify(placed)}`);
  return placed.fills[0]!;
}

async function rest(order: AskOrder | BidOrder) {
  const placed = await book(order.gpuModel).place(order);
  if (!placed.ok || placed.order.status !== 'open') throw new Error(`expected a resting order, got ${JSON.stringify(placed)}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MEMORY_HIT = /^gridlease-isolate; hit(;|$)/;
const cacheHit = (res: Response) => MEMORY_HIT.test(res.headers.get('cache-status') ?? '') || res.headers.get('cf-cache-status') === 'HIT';

describe('market summary', () => {
  it('shows best bid and ask, last price, 24-hour volume and change against the price a day ago', async () => {
    const model = 'v100-16gb';
    const now = Date.now();
    await trade(model, 2_400_000, 1, 3600, now - 25 * HOUR);
    await trade(model, 2_300_000, 2, 3600, now - HOUR);
    await trade(model, 2_450_000, 1, 1800, now - 60_000);
    await rest(bid(model, 2_200_000, 1));
    await rest(ask(model, 2_600_000, 4));
    await rest(bid('v100-32gb', 1_000_000, 1));

    const res = await call('/v1/market/summary', { headers: { origin: 'https://charts.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('cache-control')).toBe('public, max-age=2, s-maxage=2');
    const { data } = await json(res);
    const row = (m: string) => data.find((r: { region: string; gpu_model: string }) => r.region === REGION && r.gpu_model === m);
    expect(row(model)).toEqual({
      region: REGION,
      gpu_model: model,
      best_bid: '2.20',
      best_ask: '2.60',
      last_price: '2.45',
      volume_24h_gpu_hours: '2.50',
      change_24h: '0.05',
      change_24h_pct: 2.08,
      trades_24h: 2,
    });
    expect(row('v100-32gb')).toEqual({
      region: REGION,
      gpu_model: 'v100-32gb',
      best_bid: '1.00',
      best_ask: null,
      last_price: null,
      volume_24h_gpu_hours: '0.00',
      change_24h: null,
      change_24h_pct: null,
      trades_24h: 0,
    });
    // Books with no order and no trade ever are left out.
    expect(row('l40-48gb')).toBeUndefined();
    for (const r of data) expect(r.best_bid !== null || r.best_ask !== null || r.last_price !== null).toBe(true);
  });
});

describe('market book', () => {
  it('aggregates resting GPUs per price level, best first, without order, account or node ids', async () => {
    const model = 't4-16gb';
    const orders = [
      ask(model, 2_500_000, 2),
      ask(model, 2_500_000, 3, { accountId: 'acc_market_other_provider' }),
      ask(model, 2_700_000, 1),
      bid(model, 2_000_000, 1),
      bid(model, 2_000_000, 4),
      bid(model, 1_900_000, 2),
    ];
    for (const o of orders) await rest(o);

    const res = await call(`/v1/market/${REGION}/${model}/book`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=2, s-maxage=2');
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      region: REGION,
      gpu_model: model,
      bids: [
        { price: '2.00', gpus: 5 },
        { price: '1.90', gpus: 2 },
      ],
      asks: [
        { price: '2.50', gpus: 5 },
        { price: '2.70', gpus: 1 },
      ],
      best_bid: '2.00',
      best_ask: '2.50',
    });
    for (const o of orders) {
      expect(text).not.toContain(o.id);
      expect(text).not.toContain(o.accountId);
      if (o.side === 'sell') expect(text).not.toContain(o.nodeId);
    }

    const top = await json(await call(`/v1/market/${REGION}/${model}/book?levels=1`));
    expect(top.bids).toEqual([{ price: '2.00', gpus: 5 }]);
    expect(top.asks).toEqual([{ price: '2.50', gpus: 5 }]);
  });
});

describe('market trades', () => {
  it('lists trades newest first with price, size and time only, and pages back with before', async () => {
    const model = 'rtx-3080-10gb';
    const t0 = Date.now() - 10 * 60_000;
    await trade(model, 2_100_000, 1, 3600, t0);
    await trade(model, 2_200_000, 2, 1800, t0 + 1000);
    const newest = await trade(model, 2_300_000, 3, 600, t0 + 2000);

    const all = await json(await call(`/v1/market/${REGION}/${model}/trades`));
    expect(all.data.map((t: { price: string }) => t.price)).toEqual(['2.30', '2.20', '2.10']);
    expect(all.data[0]).toEqual({ id: newest.tradeId, price: '2.30', gpus: 3, duration_s: 600, at: new Date(t0 + 2000).toISOString() });
    for (const t of all.data) expect(Object.keys(t).sort()).toEqual(['at', 'duration_s', 'gpus', 'id', 'price']);

    const first = await json(await call(`/v1/market/${REGION}/${model}/trades?limit=2`));
    expect(first.data.map((t: { price: string }) => t.price)).toEqual(['2.30', '2.20']);
    expect(first.next_cursor).toEqual(expect.any(String));
    const next = await json(await call(`/v1/market/${REGION}/${model}/trades?limit=2&before=${encodeURIComponent(first.data[1].at)}`));
    expect(next.data.map((t: { price: string }) => t.price)).toEqual(['2.10']);
    expect(next.next_cursor).toBeNull();
    expect((await json(await call(`/v1/market/${REGION}/${model}/trades?limit=3`))).next_cursor).toBeNull();
  });

  it('pages with next_cursor through trades of the same millisecond, each exactly once', async () => {
    const model = 'rtx-3090-24gb';
    const at = Date.now() - 5 * 60_000;
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await trade(model, 2_000_000 + i * 10_000, 1, 3600, at)).tradeId);
    ids.add((await trade(model, 1_900_000, 1, 3600, at - 1000)).tradeId);

    const seen: string[] = [];
    const ats: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const query: string = cursor ? `limit=2&cursor=${encodeURIComponent(cursor)}` : 'limit=2';
      const body = await json(await call(`/v1/market/${REGION}/${model}/trades?${query}`));
      seen.push(...body.data.map((t: { id: string }) => t.id));
      ats.push(...body.data.map((t: { at: string }) => t.at));
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toHaveLength(6);
    expect(new Set(seen)).toEqual(ids);
    expect(ats).toEqual([...Array(5).fill(new Date(at).toISOString()), new Date(at - 1000).toISOString()]);
    // `before` with the shared time cannot do this: it skips the rest of that millisecond.
    const byTime = await json(await call(`/v1/market/${REGION}/${model}/trades?limit=2&before=${encodeURIComponent(ats[1]!)}`));
    expect(byTime.data).toHaveLength(1);
  });

  it('shows a new trade within a few seconds of it, through the edge cache', async () => {
    const model = 'rtx-4090-24gb';
    const path = `/v1/market/${REGION}/${model}/trades`;
    await trade(model, 1_500_000, 1, 3600);
    expect((await json(await call(path))).data).toHaveLength(1);
    // Repeat reads within max-age come from a cache: this isolate's memory, or the Workers cache.
    const cached = await call(path);
    expect(cacheHit(cached)).toBe(true);
    expect((await json(cached)).data).toHaveLength(1);

    await trade(model, 1_600_000, 1, 3600);
    await sleep(2_500);
    const fresh = await json(await call(path));
    expect(fresh.data.map((t: { price: string }) => t.price)).toEqual(['1.60', '1.50']);
  });
});

describe('market candles', () => {
  const model = 'rtx-4080-16gb';
  const hour = Math.floor((Date.now() - 3 * HOUR) / HOUR) * HOUR;
  const window = `from=${new Date(hour).toISOString()}&to=${new Date(hour + 2 * HOUR).toISOString()}`;
  const candles = async (query: string) => json(await call(`/v1/market/${REGION}/${model}/candles?${query}`));

  it('gives OHLC and volume per minute and per hour, oldest first', async () => {
    await trade(model, 2_000_000, 1, 3600, hour + 10_000);
    await trade(model, 2_500_000, 2, 1800, hour + 20_000);
    await trade(model, 1_800_000, 1, 900, hour + 70_000);
    await trade(model, 2_200_000, 1, 3600, hour + HOUR + 5_000);

    const minutes = await candles(`interval=1m&${window}`);
    expect(minutes).toEqual({
      interval: '1m',
      data: [
        { start: new Date(hour).toISOString(), open: '2.00', high: '2.50', low: '2.00', close: '2.50', volume_gpu_hours: '2.00', trades: 2 },
        { start: new Date(hour + 60_000).toISOString(), open: '1.80', high: '1.80', low: '1.80', close: '1.80', volume_gpu_hours: '0.25', trades: 1 },
        { start: new Date(hour + HOUR).toISOString(), open: '2.20', high: '2.20', low: '2.20', close: '2.20', volume_gpu_hours: '1.00', trades: 1 },
      ],
    });

    const hours = await candles(`interval=1h&${window}`);
    expect(hours.data).toEqual([
      { start: new Date(hour).toISOString(), open: '2.00', high: '2.50', low: '1.80', close: '1.80', volume_gpu_hours: '2.25', trades: 3 },
      { start: new Date(hour + HOUR).toISOString(), open: '2.20', high: '2.20', low: '2.20', close: '2.20', volume_gpu_hours: '1.00', trades: 1 },
    ]);

    // Without a window: the last 500 hours, up to and including the hour now is in.
    const recent = await candles('interval=1h');
    expect(recent.data.map((k: { start: string }) => k.start)).toEqual([new Date(hour).toISOString(), new Date(hour + HOUR).toISOString()]);
    expect((await candles(`interval=1h&limit=1&${window}`)).data).toHaveLength(1);
  });
});

describe('market data input', () => {
  const base = `/v1/market/${REGION}/a10-24gb`;

  it('answers 404 for a region or GPU model not in the catalog', async () => {
    await expectError(await call('/v1/market/mars-north/h100-80gb/book'), 404, 'not_found');
    await expectError(await call(`/v1/market/${REGION}/h999-1gb/trades`), 404, 'not_found');
    await expectError(await call(`/v1/market/${REGION}/H100-80GB/candles`), 404, 'not_found');
  });

  it.each([
    ['book?levels=0'],
    ['book?levels=abc'],
    ['book?levels=101'],
    ['book?levels=1.5'],
    // Only decimal digits: what Number() would also read is refused, not coerced.
    ['book?levels=0x10'],
    ['book?levels=1e1'],
    ['book?levels=%2010'],
    ['trades?limit=0x20'],
    ['candles?limit=1e2'],
    ['book?depth=5'],
    ['trades?limit=0'],
    ['trades?limit=501'],
    ['trades?before=yesterday'],
    ['trades?cursor=yesterday'],
    ['trades?cursor=123_ord_abc'],
    [`trades?before=2025-01-01T00:00:00Z&cursor=${Date.now()}_trd_abc`],
    ['candles?interval=5m'],
    ['candles?limit=1001'],
    ['candles?from=2025-01-02'],
    ['candles?to=not-a-date'],
    ['candles?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z'],
    ['candles?from=2025-01-01T00:00:00Z&to=2025-01-01T00:00:00Z'],
    [`candles?interval=1m&from=${encodeURIComponent(new Date(Date.now() + 10 * HOUR).toISOString())}`],
  ])('answers 400 validation_failed for %s', async (query) => {
    const res = await call(`${base}/${query}`);
    await expectError(res, 400, 'validation_failed');
  });

  it('needs no credentials, and documents every route in the OpenAPI document', async () => {
    const res = await call(`${base}/book`, { headers: { origin: 'https://charts.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const doc = await json(await call('/openapi.json'));
    for (const path of ['/v1/market/summary', '/v1/market/{region}/{gpu_model}/book', '/v1/market/{region}/{gpu_model}/trades', '/v1/market/{region}/{gpu_model}/candles']) {
      expect(doc.paths[path]?.get).toBeDefined();
    }
    for (const name of ['MarketBookSummary', 'MarketBook', 'MarketTrade', 'MarketCandle']) expect(doc.components.schemas[name]).toBeDefined();
  });
});

describe('market replies from the isolate\'s memory', () => {
  it('answers a repeat read from memory with the same status, body and headers, a new request id, CORS open', async () => {
    const path = `/v1/market/summary?memory=${crypto.randomUUID()}`;
    const first = await call(path, { headers: { origin: 'https://charts.example' } });
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-status')).toBeNull();
    const firstBody = await first.text();

    const again = await call(path, { headers: { origin: 'https://charts.example' } });
    expect(again.status).toBe(200);
    expect(again.headers.get('cache-status')).toMatch(MEMORY_HIT);
    expect(again.headers.get('age')).toBe('0');
    expect(await again.text()).toBe(firstBody);
    for (const name of ['content-type', 'cache-control', 'access-control-allow-origin']) expect(again.headers.get(name), name).toBe(first.headers.get(name));
    expect(again.headers.get('access-control-allow-origin')).toBe('*');
    expect(again.headers.get('x-request-id')).toMatch(/^req_/);
    expect(again.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
    // Served again, the stored body is still whole.
    expect(await (await call(path)).text()).toBe(firstBody);
  });

  it('keys on the full URL: another query string is another entry', async () => {
    const model = 'l4-24gb';
    for (const price of [2_000_000, 2_100_000, 2_200_000]) await rest(ask(model, price, 1));
    const url = (levels: number) => `/v1/market/${REGION}/${model}/book?levels=${levels}`;
    expect((await json(await call(url(1)))).asks).toHaveLength(1);
    const other = await call(url(2));
    expect(other.headers.get('cache-status')).toBeNull();
    expect((await json(other)).asks).toHaveLength(2);
    const repeat = await call(url(1));
    expect(repeat.headers.get('cache-status')).toMatch(MEMORY_HIT);
    expect((await json(repeat)).asks).toHaveLength(1);
  });

  it('never stores an error: every repeat is answered afresh, in the error shape', async () => {
    for (const path of [`/v1/market/${REGION}/h999-1gb/book`, `/v1/market/${REGION}/a10-24gb/book?levels=0`]) {
      const first = await call(path);
      const again = await call(path);
      expect(again.status).toBe(first.status);
      expect(again.headers.get('cache-status'), path).toBeNull();
      expect(again.headers.get('cf-cache-status'), path).toBeNull();
      await expectError(again, first.status, first.status === 404 ? 'not_found' : 'validation_failed');
    }
  });

  it('keeps no reply for a WebSocket upgrade to answer', async () => {
    const path = `/v1/market/summary?memory=${crypto.randomUUID()}`;
    await call(path);
    const upgrade = await call(path, { headers: { upgrade: 'websocket' } });
    expect(upgrade.headers.get('cache-status')).toBeNull();
  });
});

describe('MicroCache', () => {
  const reply = (storedAt: number, bytes = 10): CachedReply => ({
    status: 200,
    headers: [['content-type', 'application/json']],
    body: new Uint8Array(bytes),
    storedAt,
    expiresAt: storedAt + 2_000,
  });

  it('serves an entry until its expiry and never at or after it', () => {
    const cache = new MicroCache();
    cache.put('https://api.test/a', reply(1_000), 1_000);
    expect(cache.get('https://api.test/a', 2_999)?.storedAt).toBe(1_000);
    expect(cache.get('https://api.test/a', 3_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('does not store a reply that has already expired', () => {
    const cache = new MicroCache();
    cache.put('https://api.test/a', reply(1_000), 3_000);
    expect(cache.get('https://api.test/a', 3_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps distinct query strings apart', () => {
    const cache = new MicroCache();
    cache.put('https://api.test/a?x=1', reply(1_000, 1), 1_000);
    cache.put('https://api.test/a?x=2', reply(1_000, 2), 1_000);
    expect(cache.get('https://api.test/a?x=1', 1_500)?.body.byteLength).toBe(1);
    expect(cache.get('https://api.test/a?x=2', 1_500)?.body.byteLength).toBe(2);
    expect(cache.get('https://api.test/a', 1_500)).toBeUndefined();
  });

  it('stays within its byte budget by dropping the oldest entries, and skips replies too large to hold', () => {
    const cache = new MicroCache(3_000, 1_500);
    for (let i = 0; i < 5; i++) cache.put(`https://api.test/${i}`, reply(1_000 + i, 1_000), 1_000 + i);
    expect(cache.size).toBe(2);
    expect(cache.get('https://api.test/0', 1_010)).toBeUndefined();
    expect(cache.get('https://api.test/4', 1_010)).toBeDefined();
    cache.put('https://api.test/big', reply(1_010, 2_000), 1_010);
    expect(cache.get('https://api.test/big', 1_010)).toBeUndefined();
  });
});
