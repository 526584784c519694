import { createRoute, z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { limitQuery } from '../db/pagination.ts';
import type { AppEnv } from '../app-env.ts';
import { GPU_MODEL_IDS, gpuModel } from '../catalog/gpus.ts';
import { REGION_IDS, isRegion } from '../catalog/regions.ts';
import { errorResponses, jsonContent } from '../contracts/common.ts';
import { iso } from '../contracts/money.ts';
import { CANDLE_INTERVALS, regionBook, type CandleInterval } from '../durable/region-book.ts';
import { ApiError } from '../http/errors.ts';
import { log } from '../http/log.ts';
import { router, validationError } from '../http/router.ts';
import { candleWindow, gpuHours, priceChange, wirePrice, wirePriceOrNull } from '../market/market-data.ts';
import { MicroCache } from '../market/micro-cache.ts';

const app = router();

// Short enough that a new trade shows within seconds, long enough that a busy page polling
// the summary (one RPC per book) is answered by the edge rather than by every book.
const MAX_AGE_S = 2;
const CACHE_CONTROL = `public, max-age=${MAX_AGE_S}, s-maxage=${MAX_AGE_S}`;

/** This isolate's copy of recent 200 replies, in front of the Workers cache. */
const memory = new MicroCache();
/** Headers that describe one response, not the data: never stored in memory. */
const PER_RESPONSE = new Set(['x-request-id', 'age', 'date', 'cf-cache-status', 'cache-status']);

function remember(url: string, res: Response, body: Uint8Array, storedAt: number, now: number): void {
  const headers = [...res.headers].filter(([name]) => !PER_RESPONSE.has(name.toLowerCase()));
  memory.put(url, { status: res.status, headers, body, storedAt, expiresAt: storedAt + MAX_AGE_S * 1000 }, now);
}

function executionCtxOf(c: Context<AppEnv>) {
  try {
    return c.executionCtx;
  } catch {
    return null;
  }
}

/**
 * Answers a GET from this isolate's memory when it answered the same URL (or read it from the
 * Workers cache) less than max-age ago. Mounted before the request's database setup, which a
 * stored reply does not need. Labelled with an RFC 9211 Cache-Status; cf-cache-status stays the
 * Workers cache's own.
 */
export function marketMemoryCache(): MiddlewareHandler<AppEnv> {
  return async function marketMemoryCache(c, next) {
    if (c.req.method !== 'GET' || c.req.header('upgrade')) return next();
    const now = Date.now();
    const hit = memory.get(c.req.url, now);
    if (!hit) return next();
    const headers = new Headers(hit.headers as [string, string][]);
    headers.set('Age', String(Math.floor((now - hit.storedAt) / 1000)));
    headers.set('Cache-Status', `gridlease-isolate; hit; ttl=${Math.ceil((hit.expiresAt - now) / 1000)}`);
    return new Response(hit.body, { status: hit.status, headers });
  };
}

/** Answers repeat GETs from the Workers cache for as long as Cache-Control allows, and fills the memory in front of it. */
function edgeCache(): MiddlewareHandler<AppEnv> {
  return async function edgeCache(c, next) {
    const cache = c.req.method === 'GET' && typeof caches !== 'undefined' ? caches.default : null;
    // No later than the data is read, so an entry's age is never understated.
    const startedAt = Date.now();
    if (cache) {
      const hit = await cache.match(c.req.url);
      if (hit) {
        const body = new Uint8Array(await hit.arrayBuffer());
        // Age counts whole seconds, so the data may be up to Age + 1 s old.
        const age = Number(hit.headers.get('age'));
        if (hit.status === 200 && hit.headers.has('age') && Number.isInteger(age) && age >= 0) remember(c.req.url, hit, body, startedAt - (age + 1) * 1000, startedAt);
        // A copy: cached responses have immutable headers, and later middleware sets some.
        return new Response(body, hit);
      }
    }
    await next();
    // A 4xx depends only on the URL, so it may be cached as briefly as data; a 5xx may not.
    if (c.res.status >= 500) return;
    c.res.headers.set('Cache-Control', CACHE_CONTROL);
    if (c.req.method !== 'GET' || c.res.status !== 200) return;
    const body = new Uint8Array(await c.res.clone().arrayBuffer());
    remember(c.req.url, c.res, body, startedAt, Date.now());
    const ctx = executionCtxOf(c);
    if (cache && ctx) {
      ctx.waitUntil(cache.put(c.req.url, new Response(body, c.res)).catch((err) => log('warn', 'market cache put failed', { error: String(err) })));
    }
  };
}

app.use('*', edgeCache());

const Price = z.string().nullable().openapi({ example: '2.35', description: 'USD per GPU-hour, decimal string' });
const Timestamp = z.iso
  .datetime({ offset: true })
  .transform((text, ctx) => {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: 'is not a valid date' });
      return z.NEVER;
    }
    return ms;
  })
  .openapi({ type: 'string', format: 'date-time', example: '2025-01-01T00:00:00Z' });

const BookParams = z.object({
  region: z.string().openapi({ param: { name: 'region', in: 'path' }, example: 'us-east' }),
  gpu_model: z.string().openapi({ param: { name: 'gpu_model', in: 'path' }, example: 'h100-80gb' }),
});

/** The book for catalog ids; anything else is a 404, never a new empty book. */
function bookOf(c: Context<AppEnv>, region: string, model: string) {
  if (!isRegion(region)) throw new ApiError('not_found', `unknown region "${region}"; see /v1/catalog/regions`);
  if (!gpuModel(model)) throw new ApiError('not_found', `unknown gpu_model "${model}"; see /v1/catalog/gpus`);
  return regionBook(c.env, region, model);
}

const SummarySchema = z
  .object({
    region: z.string(),
    gpu_model: z.string(),
    best_bid: Price,
    best_ask: Price,
    last_price: Price,
    volume_24h_gpu_hours: z.string().openapi({ example: '96.00' }),
    change_24h: z.string().nullable().openapi({ example: '-0.05', description: 'Last price minus the price 24 hours ago' }),
    change_24h_pct: z.number().nullable().openapi({ example: -2.08 }),
    trades_24h: z.number().int(),
  })
  .openapi('MarketBookSummary');

app.openapi(
  createRoute({
    method: 'get',
    path: '/summary',
    tags: ['market'],
    summary: 'Best bid, best ask, last price and 24-hour volume and change of every book with activity',
    responses: { 200: jsonContent(z.object({ data: z.array(SummarySchema) }).openapi('MarketSummary'), 'Summary') },
  }),
  async (c) => {
    const now = Date.now();
    const books = REGION_IDS.flatMap((region) => GPU_MODEL_IDS.map((model) => ({ region, model })));
    const stats = await Promise.all(books.map(({ region, model }) => regionBook(c.env, region, model).stats(now)));
    const data = books.flatMap(({ region, model }, i) => {
      const s = stats[i]!;
      if (s.bestBid === null && s.bestAsk === null && s.last === null) return [];
      const { change, pct } = priceChange(s.last, s.reference);
      return [
        {
          region,
          gpu_model: model,
          best_bid: wirePriceOrNull(s.bestBid),
          best_ask: wirePriceOrNull(s.bestAsk),
          last_price: wirePriceOrNull(s.last),
          volume_24h_gpu_hours: gpuHours(s.volume24hGpuS),
          change_24h: change,
          change_24h_pct: pct,
          trades_24h: s.trades24h,
        },
      ];
    });
    return c.json({ data }, 200);
  },
);

const Level = z.object({ price: z.string().openapi({ example: '2.35' }), gpus: z.number().int() }).openapi('MarketDepthLevel');

app.openapi(
  createRoute({
    method: 'get',
    path: '/{region}/{gpu_model}/book',
    tags: ['market'],
    summary: 'Resting GPUs per price level, best first (no order, account or node ids)',
    request: { params: BookParams, query: z.object({ levels: limitQuery(100, 20) }).strict() },
    responses: {
      200: jsonContent(
        z
          .object({ region: z.string(), gpu_model: z.string(), bids: z.array(Level), asks: z.array(Level), best_bid: Price, best_ask: Price })
          .openapi('MarketBook'),
        'Order book',
      ),
      ...errorResponses(400, 404),
    },
  }),
  async (c) => {
    const { region, gpu_model } = c.req.valid('param');
    const { levels } = c.req.valid('query');
    const snap = await bookOf(c, region, gpu_model).snapshot(levels);
    const level = ([price, gpus]: number[]) => ({ price: wirePrice(price!), gpus: gpus! });
    return c.json(
      {
        region,
        gpu_model,
        bids: snap.depth.bids.map(level),
        asks: snap.depth.asks.map(level),
        best_bid: wirePriceOrNull(snap.bestBid),
        best_ask: wirePriceOrNull(snap.bestAsk),
      },
      200,
    );
  },
);

/** A trades page's `next_cursor`: the `at` (ms) and id of its last trade. */
const TRADE_CURSOR = /^(\d{1,16})_(trd_[0-9a-z]{1,40})$/;

function tradeCursorOf(cursor: string): { at: number; id: string } {
  const [, at, id] = TRADE_CURSOR.exec(cursor)!;
  return { at: Number(at), id: id! };
}

const TradeSchema = z
  .object({
    id: z.string(),
    price: z.string().openapi({ example: '2.35' }),
    gpus: z.number().int(),
    duration_s: z.number().int(),
    at: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('MarketTrade');

app.openapi(
  createRoute({
    method: 'get',
    path: '/{region}/{gpu_model}/trades',
    tags: ['market'],
    summary: 'Trades newest first; `cursor` (a page\'s `next_cursor`) pages back, `before` starts at a time',
    description:
      'Newest first. `next_cursor` continues exactly after the last trade of a page, even among trades of the same millisecond; ' +
      '`before` (a time) lists the trades older than it. The two do not go together.',
    request: {
      params: BookParams,
      query: z
        .object({
          limit: limitQuery(500, 50),
          before: Timestamp.optional(),
          cursor: z.string().regex(TRADE_CURSOR, 'expected a next_cursor from an earlier page').optional(),
        })
        .strict()
        .refine((q) => q.before === undefined || q.cursor === undefined, { message: 'use before or cursor, not both', path: ['cursor'] }),
    },
    responses: {
      200: jsonContent(z.object({ data: z.array(TradeSchema), next_cursor: z.string().nullable() }).openapi('MarketTrades'), 'Trades'),
      ...errorResponses(400, 404),
    },
  }),
  async (c) => {
    const { region, gpu_model } = c.req.valid('param');
    const { limit, before, cursor } = c.req.valid('query');
    const after = cursor ? tradeCursorOf(cursor) : undefined;
    const trades = await bookOf(c, region, gpu_model).trades(limit + 1, before, after);
    const page = trades.slice(0, limit);
    const last = page.at(-1);
    return c.json(
      {
        data: page.map((t) => ({ id: t.id, price: wirePrice(t.price), gpus: t.gpus, duration_s: t.durationS, at: iso(t.at)! })),
        next_cursor: trades.length > limit && last ? `${last.at}_${last.id}` : null,
      },
      200,
    );
  },
);

const IntervalSchema = z.enum(Object.keys(CANDLE_INTERVALS) as [CandleInterval, ...CandleInterval[]]).openapi({ example: '1h' });

const CandleSchema = z
  .object({
    start: z.string().openapi({ format: 'date-time' }),
    open: z.string(),
    high: z.string(),
    low: z.string(),
    close: z.string(),
    volume_gpu_hours: z.string(),
    trades: z.number().int(),
  })
  .openapi('MarketCandle');

app.openapi(
  createRoute({
    method: 'get',
    path: '/{region}/{gpu_model}/candles',
    tags: ['market'],
    summary: 'OHLC prices and volume per interval, oldest first; by default the last 500 intervals',
    request: {
      params: BookParams,
      query: z
        .object({
          interval: IntervalSchema.default('1h'),
          from: Timestamp.optional(),
          to: Timestamp.optional(),
          limit: limitQuery(1000, 500),
        })
        .strict(),
    },
    responses: {
      200: jsonContent(z.object({ interval: IntervalSchema, data: z.array(CandleSchema) }).openapi('MarketCandles'), 'Candles'),
      ...errorResponses(400, 404),
    },
  }),
  async (c) => {
    const { region, gpu_model } = c.req.valid('param');
    const { interval, from, to, limit } = c.req.valid('query');
    const window = candleWindow(CANDLE_INTERVALS[interval], from, to, Date.now());
    if (!window.ok) throw validationError([{ path: ['from'], message: 'must be before to' }], 'query');
    const candles = await bookOf(c, region, gpu_model).candles(interval, window.from, window.to, limit);
    return c.json(
      {
        interval,
        data: candles.map((k) => ({
          start: iso(k.start)!,
          open: wirePrice(k.open),
          high: wirePrice(k.high),
          low: wirePrice(k.low),
          close: wirePrice(k.close),
          volume_gpu_hours: gpuHours(k.volumeGpuS),
          trades: k.trades,
        })),
      },
      200,
    );
  },
);

export default app;
