import { createRoute, z } from '@hono/zod-openapi';
import { guard } from '../auth/guard.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { AssetSchema, MoneyString, amountSchema, money } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import { ApiError } from '../http/errors.ts';
import { requireIdempotencyKey } from '../http/idempotency.ts';
import { router } from '../http/router.ts';
import { postOrThrow } from '../ledger/api.ts';
import { credit } from '../ledger/rules.ts';
import { balancesOf } from '../ledger/store.ts';
import { costUsd, type AskOrder, type BidOrder, type BookOrder } from '../market/orders.ts';
import { MICRO } from '../money/amount.ts';

/** Test money for local development. Mounted only when ENVIRONMENT=development. */
const FAUCET_MAX = 1_000_000n * MICRO;

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/faucet',
    tags: ['development'],
    summary: 'Credit test money (development only; 404 elsewhere)',
    security: BEARER,
    middleware: [...guard('funds:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { body: jsonBodyOf(z.object({ asset: AssetSchema, amount: amountSchema() }).strict().openapi('FaucetRequest')) },
    responses: {
      201: jsonContent(z.object({ transaction_id: z.string(), asset: AssetSchema, available: MoneyString, held: MoneyString }), 'Credited'),
      ...errorResponses(400, 401, 403, 409),
    },
  }),
  async (c) => {
    const { asset, amount } = c.req.valid('json');
    if (amount > FAUCET_MAX) throw new ApiError('validation_failed', 'the faucet gives at most 1000000 per request');
    const owner = c.get('principal').accountId;
    const client = connection(c.env).money;
    const { transaction } = await postOrThrow(
      client,
      credit({ owner, asset, amount, source: 'faucet', idempotencyKey: `faucet:${owner}:${c.get('idempotencyKey')}`, reference: null }),
    );
    const [balance] = await balancesOf(client, owner, [asset]);
    return c.json({ transaction_id: transaction.id, asset, available: money(balance!.available), held: money(balance!.held) }, 201);
  },
);

// ── Benchmark of one RegionBook ───────────────────────────────────────────────────────

const BenchBookBody = z
  .object({
    orders: z.number().int().min(1).max(200_000),
    concurrency: z.number().int().min(1).max(64).default(8),
    seed: z.number().int().optional(),
  })
  .strict()
  .openapi('BenchBookRequest');

const LatencySummary = z.object({ count: z.number().int(), p50_ms: z.number(), p99_ms: z.number(), max_ms: z.number() });

const BenchBookResult = z
  .object({
    orders: z.number().int().openapi({ description: 'Operations: placements and cancels' }),
    seconds: z.number(),
    orders_per_s: z.number(),
    p50_ms: z.number(),
    p99_ms: z.number(),
    max_ms: z.number(),
    errors: z.number().int(),
    place: LatencySummary,
    cancel: LatencySummary,
  })
  .openapi('BenchBookResult');

/** mulberry32: a small seeded generator, so two runs with one seed send the same stream. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function summary(latencies: number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
  return { count: sorted.length, p50_ms: at(50), p99_ms: at(99), max_ms: sorted.at(-1) ?? 0 };
}

const BENCH_WORKLOAD = { image: 'busybox', command: [], env: {}, ports: [] };
/** Far beyond any run: an expiring bid would release a hold the ledger never made. */
const BENCH_EXPIRY_MS = 10 * 365 * 86_400_000;
const ASKS_PER_NODE = 4;
const NODE_GPUS = 16;

app.openapi(
  createRoute({
    method: 'post',
    path: '/bench/book',
    tags: ['development'],
    summary: 'Drive one fresh RegionBook from inside the Worker and report its throughput (development only; 404 elsewhere)',
    description:
      'A seeded stream of resting limit orders that never cross (bids 1.00–1.99, asks 2.00–2.99) and cancels of earlier resting asks (~20%), ' +
      '`concurrency` RPCs in flight, against a new book named `bench:<uuid>`: no real book, lease or balance is touched. ' +
      "Bench orders never expire; a cancelled ask's status still goes to libSQL through the outbox (an UPDATE that matches no row), as a real cancel's does.",
    security: BEARER,
    middleware: [...guard('orders:write'), requireActiveAccount()],
    request: { body: jsonBodyOf(BenchBookBody) },
    responses: { 200: jsonContent(BenchBookResult, 'Measured'), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const { orders: total, concurrency, seed } = c.req.valid('json');
    const accountId = c.get('principal').accountId;
    const book = c.env.REGION_BOOK.getByName(`bench:${crypto.randomUUID()}`);
    const random = seeded(seed ?? 1);
    const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
    const gpuIndices = Array.from({ length: NODE_GPUS }, (_, i) => i);
    const expiresAt = Date.now() + BENCH_EXPIRY_MS;
    /** Asks whose placement has been answered and that no cancel has claimed yet. */
    const resting: string[] = [];
    const placeMs: number[] = [];
    const cancelMs: number[] = [];
    let asks = 0;
    let errors = 0;

    // Each node carries at most ASKS_PER_NODE asks of at most 4 GPUs: never more than its 16.
    const nextOp = (i: number): { kind: 'place'; order: BookOrder } | { kind: 'cancel'; id: string } => {
      if (resting.length > 0 && random() < 0.2) {
        const k = Math.floor(random() * resting.length);
        const id = resting[k]!;
        resting[k] = resting.at(-1)!;
        resting.pop();
        return { kind: 'cancel', id };
      }
      const base = { id: `ord_bench_${i}`, accountId, region: 'us-east', gpuModel: 'h100-80gb', gpus: between(1, 4), expiresAt };
      if (random() < 0.5) {
        const price = between(100, 199) * 10_000;
        const bid: BidOrder = {
          ...base,
          side: 'buy',
          price,
          durationS: 3600,
          minReliability: 0,
          verifiedOnly: false,
          tif: 'gtc',
          payWith: 'USD',
          holdAmount: costUsd(price, base.gpus, 3600).toString(),
          gridUsdRate: '250000',
          gridDiscountBps: '1000',
          workload: BENCH_WORKLOAD,
        };
        return { kind: 'place', order: bid };
      }
      const ask: AskOrder = {
        ...base,
        side: 'sell',
        price: between(200, 299) * 10_000,
        nodeId: `bench_node_${Math.floor(asks++ / ASKS_PER_NODE)}`,
        minDurationS: 60,
        maxDurationS: 30 * 86_400,
        reliability: 0.99,
        verified: false,
        nodeGpuIndices: gpuIndices,
      };
      return { kind: 'place', order: ask };
    };

    let issued = 0;
    const worker = async () => {
      while (issued < total) {
        const op = nextOp(issued++);
        const started = performance.now();
        try {
          if (op.kind === 'place') {
            const outcome = await book.place(op.order);
            placeMs.push(performance.now() - started);
            if (!outcome.ok || outcome.order.status !== 'open') errors++;
            else if (op.order.side === 'sell') resting.push(op.order.id);
          } else {
            const state = await book.cancel(op.id, accountId);
            cancelMs.push(performance.now() - started);
            if (state?.status !== 'cancelled') errors++;
          }
        } catch {
          errors++;
        }
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
    const seconds = (performance.now() - started) / 1000;
    const all = summary([...placeMs, ...cancelMs]);
    return c.json(
      {
        orders: total,
        seconds,
        orders_per_s: seconds > 0 ? total / seconds : 0,
        p50_ms: all.p50_ms,
        p99_ms: all.p99_ms,
        max_ms: all.max_ms,
        errors,
        place: summary(placeMs),
        cancel: summary(cancelMs),
      },
      200,
    );
  },
);

// ── The least a buy does: the floor under POST /v1/orders ──────────────────────────────

/**
 * The Durable Object the floor writes to: a rate-limit bucket of the caller's own, which keeps
 * only its last millisecond of hits, so the floor's state never grows (bids resting in a book
 * would, and their heap would slow the rows measured after them).
 */
export const floorBucketName = (accountId: string) => `bench:floor:${accountId}`;

app.openapi(
  createRoute({
    method: 'post',
    path: '/bench/floor',
    tags: ['development'],
    summary: 'The I/O every buy needs and nothing else, to measure what POST /v1/orders costs beyond it (development only; 404 elsewhere)',
    description:
      "The same authentication as `POST /v1/orders`, then one libSQL write transaction in one round trip (`BEGIN IMMEDIATE`, `SELECT 1`, `COMMIT`: " +
      "the shape of a buy's escrow hold, with no row written), then one Durable Object call that commits one small write before answering, " +
      "as a book storing a bid does (to a rate-limit bucket of the caller's own, `bench:floor:<account>`, which keeps only its last millisecond). " +
      'No balance, order, lease or book is touched.',
    security: BEARER,
    middleware: [...guard('orders:write')],
    responses: {
      201: jsonContent(z.object({ ok: z.literal(true) }).openapi('BenchFloorResult'), 'Both writes committed'),
      ...errorResponses(401, 403),
    },
  }),
  async (c) => {
    const accountId = c.get('principal').accountId;
    await connection(c.env).money.batch([{ sql: 'SELECT 1', args: [] }], 'write');
    await c.env.RATE_LIMITER.getByName(floorBucketName(accountId)).hit(1_000_000, 1);
    return c.json({ ok: true as const }, 201);
  },
);

export default app;
