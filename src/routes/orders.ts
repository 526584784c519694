// Orders: a buy holds its maximum cost in escrow before it reaches the book; a sell offers
// GPUs of one of the caller's online nodes. The RegionBook for region × GPU model matches;
// fills become leases. See docs/api.md ("Orders").
import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq, type SQL } from 'drizzle-orm';
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { sha256Hex } from '../auth/encoding.ts';
import { guard } from '../auth/guard.ts';
import { orderLimits, orderValueProblem } from '../auth/order-limits.ts';
import { limitOrderPlacement } from '../auth/rate-limit.ts';
import { assertActive, refuseInactiveAccount, refuseKnownInactiveAccount } from '../auth/middleware.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { iso, money } from '../contracts/money.ts';
import { DEFAULT_ORDER_TTL_MS, LeaseSummarySchema, MAX_ORDER_TTL_MS, ORDER_STATUSES, OrderSchema, PlaceOrderBody, type PlaceOrderInput } from '../contracts/orders.ts';
import type { Workload } from '../contracts/runner.ts';
import { connection } from '../db/client.ts';
import { PageQuery, olderThan, toPage } from '../db/pagination.ts';
import { ORDER_ACCOUNT_NOT_ACTIVE, isRaised } from '../db/errors.ts';
import { accounts, nodeGpus, nodes, orders } from '../db/schema.ts';
import { regionBook, type FillView, type OrderState } from '../durable/region-book.ts';
import type { Bindings } from '../env.ts';
import { ApiError } from '../http/errors.ts';
import { capacityFailed } from '../inspections/effects.ts';
import { idempotencyConflict, requireIdempotencyKey } from '../http/idempotency.ts';
import { router } from '../http/router.ts';
import { derivedId } from '../ids.ts';
import { postOrThrow } from '../ledger/api.ts';
import { hold } from '../ledger/rules.ts';
import { maxCost, type AskOrder, type BidOrder, type BookOrder } from '../market/orders.ts';
import type { Asset } from '../money/assets.ts';
import { pricingConfig } from '../money/config.ts';

type OrderRow = typeof orders.$inferSelect;

const app = router();

export function publicOrder(row: OrderRow, live?: OrderState | null) {
  const status = live?.status ?? row.status;
  return {
    id: row.id,
    side: row.side,
    region: row.region,
    gpu_model: row.gpuModel,
    gpus: row.gpus,
    price: money(row.price),
    tif: row.tif,
    status,
    remaining_gpus: live ? live.freeGpus : status === 'open' ? row.gpus : 0,
    expires_at: iso(row.expiresAt)!,
    created_at: iso(row.createdAt)!,
    closed_at: iso(row.closedAt),
    duration_s: row.durationS,
    pay_with: (row.payWith as Asset | null) ?? null,
    hold_amount: row.holdAmount === null ? null : money(row.holdAmount),
    min_reliability: row.minReliabilityPpm === null ? null : row.minReliabilityPpm / 1_000_000,
    verified_only: row.verifiedOnly,
    workload: (row.workload as Workload | null) ?? null,
    node_id: row.nodeId,
    min_duration_s: row.minDurationS,
    max_duration_s: row.maxDurationS,
  };
}

const leaseSummary = (f: FillView) => ({
  id: f.leaseId,
  state: 'provisioning',
  price: money(f.price),
  gpus: f.gpus,
  duration_s: f.durationS,
  created_at: iso(f.at)!,
});

/** The fields that make two requests with one Idempotency-Key "the same request". */
function canonicalRequest(b: PlaceOrderInput): string {
  return JSON.stringify(b, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * A sell's reads in one round trip: an earlier order under this Idempotency-Key, the caller's
 * account status, the node and its GPUs. A retry is answered even if the node has gone
 * offline since; otherwise the sell is checked against the node, and the node's GPU indices of
 * the model are returned.
 */
async function sellReads(c: Context<AppEnv>, body: Extract<PlaceOrderInput, { side: 'sell' }>, key: string) {
  const db = c.get('db');
  const accountId = c.get('principal').accountId;
  const [existing, accountRows, nodeRows, gpus] = await db.batch([
    db.select().from(orders).where(and(eq(orders.accountId, accountId), eq(orders.idempotencyKey, key))),
    db.select({ status: accounts.status }).from(accounts).where(eq(accounts.id, accountId)),
    db
      .select({ id: nodes.id, accountId: nodes.accountId, region: nodes.region, status: nodes.status, reliabilityPpm: nodes.reliabilityPpm, verified: nodes.verified })
      .from(nodes)
      .where(eq(nodes.id, body.node_id)),
    db.select({ index: nodeGpus.index, model: nodeGpus.model }).from(nodeGpus).where(eq(nodeGpus.nodeId, body.node_id)),
  ]);
  assertActive(accountRows[0]);
  if (existing[0]) return { existing: existing[0] };
  const node = nodeRows[0];
  if (!node || node.accountId !== accountId) throw new ApiError('not_found', `no node ${body.node_id} of yours`);
  if (node.region !== body.region) throw new ApiError('validation_failed', `invalid body: region: node ${node.id} is in ${node.region}`);
  if (node.status !== 'online') throw new ApiError('conflict', `node ${node.id} is ${node.status}; only an online node can sell`);
  if (await capacityFailed(c.env, node.id)) {
    throw new ApiError('conflict', `node ${node.id} failed its capacity challenge; it cannot sell until it passes one`);
  }
  const indices = gpus.filter((g) => g.model === body.gpu_model).map((g) => g.index);
  if (indices.length === 0) {
    const models = [...new Set(gpus.map((g) => g.model ?? 'unlisted'))].join(', ');
    throw new ApiError('validation_failed', `invalid body: gpu_model: node ${node.id} has ${models} GPUs, not ${body.gpu_model}`);
  }
  if (body.gpus > indices.length) throw new ApiError('conflict', `node ${node.id} has ${indices.length} ${body.gpu_model} GPUs; cannot offer ${body.gpus}`);
  return { node: { indices, reliability: node.reliabilityPpm / 1_000_000, verified: node.verified } };
}

/**
 * Refuses a new order from an account that already has the most open orders allowed. A retry
 * of an order already recorded is let through to be answered as before. Soft by the requests
 * in flight at once, which the placement rate bounds.
 */
async function refuseOverOpenCap(c: Context<AppEnv>, accountId: string, key: string): Promise<void> {
  const { maxOpen } = orderLimits(c.env);
  if (maxOpen === null) return;
  const rs = await connection(c.env).client.execute({
    sql: `SELECT (SELECT count(*) FROM (SELECT 1 FROM orders WHERE account_id = ? AND status = 'open' LIMIT ?)) AS open,
                 EXISTS (SELECT 1 FROM orders WHERE account_id = ? AND idempotency_key = ?) AS known`,
    args: [accountId, maxOpen, accountId, key],
  });
  const row = rs.rows[0]!;
  if (Number(row.known) === 1 || Number(row.open) < maxOpen) return;
  throw new ApiError('conflict', `you have ${maxOpen} open orders, the most allowed; cancel one or wait for one to fill or expire`);
}

async function findByKey(c: Context<AppEnv>, accountId: string, key: string): Promise<OrderRow | undefined> {
  const [row] = await c.get('db').select().from(orders).where(and(eq(orders.accountId, accountId), eq(orders.idempotencyKey, key)));
  return row;
}

/** Places (or places again: the book ignores a known id) an order already recorded in libSQL. */
async function drive(env: Bindings, row: OrderRow) {
  const outcome = await regionBook(env, row.region, row.gpuModel).place(row.book as unknown as BookOrder);
  return outcome;
}

app.openapi(
  createRoute({
    method: 'post',
    path: '/',
    tags: ['orders'],
    summary: 'Place an order: a buy holds its maximum cost in escrow; fills create leases',
    description:
      'A buy wants `gpus` GPUs of `gpu_model` on one node for `duration_s` at most at `price` per GPU-hour; price × gpus × duration is held in `pay_with` ' +
      '(GRID at the configured rate with its discount) before it reaches the book, and a fill at a better price releases the difference at once. ' +
      'A sell offers GPUs of one of your online nodes. Needs an Idempotency-Key: the same request again returns the first result. ' +
      'An order worth less than the configured minimum is a 400, one over the open-order cap a 409, and placements above the rate a 429 with Retry-After (docs/api.md, "Limits").',
    security: BEARER,
    middleware: [...guard('orders:write'), requireIdempotencyKey(), refuseKnownInactiveAccount()],
    request: { body: jsonBodyOf(PlaceOrderBody) },
    responses: {
      201: jsonContent(z.object({ order: OrderSchema, leases: z.array(LeaseSummarySchema) }), 'Placed (and possibly filled)'),
      200: jsonContent(z.object({ order: OrderSchema, leases: z.array(LeaseSummarySchema) }), 'The same request again: the first order, as it is now'),
      ...errorResponses(400, 401, 402, 403, 404, 409, 429),
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    const accountId = c.get('principal').accountId;
    const key = c.get('idempotencyKey');
    const now = Date.now();
    const expiresAt = body.expires_at === undefined ? now + DEFAULT_ORDER_TTL_MS : Date.parse(body.expires_at);
    if (expiresAt <= now) throw new ApiError('validation_failed', 'invalid body: expires_at: must be in the future');
    if (expiresAt > now + MAX_ORDER_TTL_MS) throw new ApiError('validation_failed', 'invalid body: expires_at: must be within 30 days');
    if (body.side === 'sell' && body.min_duration_s > body.max_duration_s) {
      throw new ApiError('validation_failed', 'invalid body: min_duration_s: must not exceed max_duration_s');
    }
    const valueProblem = orderValueProblem(
      body.side === 'buy'
        ? { side: 'buy', price: body.price, gpus: body.gpus, durationS: body.duration_s }
        : { side: 'sell', price: body.price, gpus: body.gpus },
      orderLimits(c.env),
    );
    if (valueProblem) throw new ApiError('validation_failed', `invalid body: price: ${valueProblem}`);
    // Both before anything is written: a refused order holds nothing and leaves no row.
    await Promise.all([limitOrderPlacement(c, accountId), refuseOverOpenCap(c, accountId, key)]);
    const requestHash = await sha256Hex(canonicalRequest(body));

    // A buy's retry is caught by the order row's unique Idempotency-Key in its write below; a
    // sell is looked up with its node first (sellReads).
    const sell = body.side === 'sell' ? await sellReads(c, body, key) : null;
    if (sell?.existing) return replay(c, sell.existing, requestHash);

    const id = await derivedId('ord', accountId, key);
    const base = {
      id,
      accountId,
      gpus: body.gpus,
      price: Number(body.price),
      expiresAt,
      region: body.region,
      gpuModel: body.gpu_model,
    };
    let order: BookOrder;
    let holdAmount: bigint | null = null;
    if (body.side === 'buy') {
      const pricing = pricingConfig(c.env);
      holdAmount = maxCost({ price: base.price, gpus: body.gpus, durationS: body.duration_s, payWith: body.pay_with }, pricing);
      order = {
        ...base,
        side: 'buy',
        durationS: body.duration_s,
        minReliability: body.min_reliability,
        verifiedOnly: body.verified_only,
        tif: body.tif,
        payWith: body.pay_with,
        holdAmount: holdAmount.toString(),
        gridUsdRate: pricing.gridUsdRate.toString(),
        gridDiscountBps: pricing.gridDiscountBps.toString(),
        workload: body.workload,
      } satisfies BidOrder;
    } else {
      const node = sell!.node!;
      order = {
        ...base,
        side: 'sell',
        nodeId: body.node_id,
        minDurationS: body.min_duration_s,
        maxDurationS: body.max_duration_s,
        reliability: node.reliability,
        verified: node.verified,
        nodeGpuIndices: node.indices,
      } satisfies AskOrder;
    }

    const insert = {
      sql: `INSERT INTO orders (id, account_id, idempotency_key, request_hash, side, region, gpu_model, gpus, price, tif, duration_s, pay_with,
              hold_amount, min_reliability_ppm, verified_only, workload, node_id, min_duration_s, max_duration_s, book, status, expires_at, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)`,
      args: [
        id, accountId, key, requestHash, body.side, body.region, body.gpu_model, body.gpus, body.price, body.tif,
        body.side === 'buy' ? body.duration_s : null,
        body.side === 'buy' ? body.pay_with : null,
        holdAmount,
        body.side === 'buy' ? Math.round(body.min_reliability * 1_000_000) : null,
        body.side === 'buy' ? (body.verified_only ? 1 : 0) : null,
        body.side === 'buy' ? JSON.stringify(body.workload) : null,
        body.side === 'sell' ? body.node_id : null,
        body.side === 'sell' ? body.min_duration_s : null,
        body.side === 'sell' ? body.max_duration_s : null,
        JSON.stringify(order),
        expiresAt,
        now,
      ],
    };
    const { money: client } = connection(c.env);
    try {
      if (order.side === 'buy') {
        // The hold and the order row commit together: no order without money behind it. The
        // row goes first, so its trigger refuses an inactive account before funds are looked at.
        const { replayed } = await postOrThrow(
          client,
          hold({ owner: accountId, asset: order.payWith, amount: holdAmount!, idempotencyKey: `order:${id}:hold`, reference: id, memo: 'bid escrow' }),
          { now, first: [insert] },
        );
        if (replayed) {
          const first = await findByKey(c, accountId, key);
          if (!first) throw new Error(`order ${id}: hold replayed but the order row is missing`);
          return replay(c, first, requestHash);
        }
      } else {
        await client.execute(insert);
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (isRaised(err, ORDER_ACCOUNT_NOT_ACTIVE)) await refuseInactiveAccount(c);
      // An earlier or concurrent request with the same key got there first: answer as a replay of it.
      const raced = await findByKey(c, accountId, key);
      if (raced) return replay(c, raced, requestHash);
      throw err;
    }

    const outcome = await regionBook(c.env, body.region, body.gpu_model).place(order);
    if (!outcome.ok) {
      // Refused by the book (only a sell can be: its node's GPUs are all offered or leased).
      await client.execute({ sql: 'DELETE FROM orders WHERE id = ?', args: [id] });
      if (outcome.reason === 'insufficient_gpus') {
        throw new ApiError('conflict', `node ${order.side === 'sell' ? order.nodeId : ''} has ${outcome.freeGpus} GPUs not yet offered or leased; cannot offer ${body.gpus}`);
      }
      throw new ApiError('validation_failed', 'invalid body: the book refused the order');
    }
    // Answered from what is in hand: the row is exactly what was just inserted.
    const row: OrderRow = {
      id,
      accountId,
      idempotencyKey: key,
      requestHash,
      side: body.side,
      region: body.region,
      gpuModel: body.gpu_model,
      gpus: body.gpus,
      price: Number(body.price),
      tif: body.tif,
      durationS: body.side === 'buy' ? body.duration_s : null,
      payWith: body.side === 'buy' ? body.pay_with : null,
      holdAmount: holdAmount === null ? null : Number(holdAmount),
      minReliabilityPpm: body.side === 'buy' ? Math.round(body.min_reliability * 1_000_000) : null,
      verifiedOnly: body.side === 'buy' ? body.verified_only : null,
      workload: body.side === 'buy' ? body.workload : null,
      nodeId: body.side === 'sell' ? body.node_id : null,
      minDurationS: body.side === 'sell' ? body.min_duration_s : null,
      maxDurationS: body.side === 'sell' ? body.max_duration_s : null,
      book: order as unknown as Record<string, unknown>,
      status: 'open',
      expiresAt,
      createdAt: now,
      closedAt: outcome.order.status === 'open' ? null : now,
    };
    return c.json({ order: publicOrder(row, outcome.order), leases: outcome.fills.map(leaseSummary) }, 201);
  },
);

async function replay(c: Context<AppEnv>, row: OrderRow, requestHash: string) {
  if (row.requestHash !== requestHash) throw idempotencyConflict();
  const outcome = await drive(c.env, row);
  if (!outcome.ok) throw new ApiError('conflict', 'the book refused this order');
  const [fresh] = await c.get('db').select().from(orders).where(eq(orders.id, row.id));
  return c.json({ order: publicOrder(fresh ?? row, outcome.order), leases: outcome.fills.map(leaseSummary) }, 200);
}

const ListQuery = PageQuery.extend({
  status: z.enum(ORDER_STATUSES).optional(),
  side: z.enum(['buy', 'sell']).optional(),
}).strict();

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['orders'],
    summary: "The caller's orders, newest first; filter by status and side",
    security: BEARER,
    middleware: guard('orders:read'),
    request: { query: ListQuery },
    responses: { 200: jsonContent(z.object({ data: z.array(OrderSchema), next_cursor: z.string().nullable() }), 'Orders'), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const q = c.req.valid('query');
    const db = c.get('db');
    const where: SQL[] = [eq(orders.accountId, c.get('principal').accountId)];
    if (q.status) where.push(eq(orders.status, q.status));
    if (q.side) where.push(eq(orders.side, q.side));
    if (q.cursor) {
      const [ref] = await db.select({ id: orders.id, createdAt: orders.createdAt }).from(orders).where(and(...where, eq(orders.id, q.cursor)));
      if (!ref) throw new ApiError('validation_failed', 'invalid query: cursor: unknown cursor');
      where.push(olderThan(orders, ref));
    }
    const rows = await db.select().from(orders).where(and(...where)).orderBy(desc(orders.createdAt), desc(orders.id)).limit(q.limit + 1);
    const { page, nextCursor } = toPage(rows, q.limit);
    const live = await liveStates(c.env, page.filter((r) => r.status === 'open'));
    return c.json({ data: page.map((r) => publicOrder(r, live.get(r.id))), next_cursor: nextCursor }, 200);
  },
);

/** The books' own view of open orders (free GPUs, a fill not yet recorded here), one call per book. */
async function liveStates(env: Bindings, rows: OrderRow[]): Promise<Map<string, OrderState>> {
  const byBook = new Map<string, OrderRow[]>();
  for (const r of rows) byBook.set(`${r.region}:${r.gpuModel}`, [...(byBook.get(`${r.region}:${r.gpuModel}`) ?? []), r]);
  const states = await Promise.all([...byBook.values()].map((rs) => regionBook(env, rs[0]!.region, rs[0]!.gpuModel).orders(rs.map((r) => r.id))));
  return new Map(states.flat().map((s) => [s.id, s]));
}

async function ownOrder(c: Context<AppEnv>, id: string): Promise<OrderRow> {
  const [row] = await c.get('db').select().from(orders).where(and(eq(orders.id, id), eq(orders.accountId, c.get('principal').accountId)));
  if (!row) throw new ApiError('not_found', `no order ${id}`);
  return row;
}

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    tags: ['orders'],
    summary: 'One of your orders as the book sees it now, with the leases it created (404 for anyone else)',
    security: BEARER,
    middleware: guard('orders:read'),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: { 200: jsonContent(z.object({ order: OrderSchema, leases: z.array(LeaseSummarySchema) }), 'Order'), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const row = await ownOrder(c, c.req.valid('param').id);
    const book = regionBook(c.env, row.region, row.gpuModel);
    let [state] = await book.orders([row.id]);
    let fills: FillView[] = [];
    if (!state && row.status === 'open') {
      // Recorded here but never reached the book (its placement failed half-way): place it now.
      const outcome = await drive(c.env, row);
      if (outcome.ok) ({ order: state, fills } = outcome);
    } else if (state) fills = await book.fills(row.id);
    return c.json({ order: publicOrder(row, state), leases: fills.map(leaseSummary) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}',
    tags: ['orders'],
    summary: "Cancel an open order (or withdraw a fully leased ask, so it does not reopen as its leases end); a buy's escrow is released (404 for anyone else's order, 409 once it is closed)",
    security: BEARER,
    middleware: guard('orders:write'),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: { 200: jsonContent(z.object({ order: OrderSchema }), 'Cancelled'), ...errorResponses(401, 403, 404, 409) },
  }),
  async (c) => {
    const row = await ownOrder(c, c.req.valid('param').id);
    const state = await regionBook(c.env, row.region, row.gpuModel).cancel(row.id, row.accountId, row.book as unknown as BookOrder);
    if (!state) throw new ApiError('not_found', `no order ${row.id}`);
    if (state.status !== 'cancelled') throw new ApiError('conflict', `order ${row.id} is already ${state.status}`);
    const [fresh] = await c.get('db').select().from(orders).where(eq(orders.id, row.id));
    return c.json({ order: publicOrder(fresh ?? row, state) }, 200);
  },
);

export default app;
