// Leases, readable by their renter and their provider (404 for anyone else). The libSQL row
// says who may see a lease; the Lease object holds its live state.
import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq, or, type SQL } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { BEARER, errorResponses, jsonContent } from '../contracts/common.ts';
import { iso, money } from '../contracts/money.ts';
import { LeaseSchema } from '../contracts/orders.ts';
import { PageQuery, olderThan, toPage } from '../db/pagination.ts';
import { leases } from '../db/schema.ts';
import { LEASE_STATES, endedAt, lease, type LeaseRecord } from '../durable/lease.ts';
import { inArray } from 'drizzle-orm';
import type { Database } from '../db/client.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { requireIdempotencyKey } from '../http/idempotency.ts';
import { sha256Hex } from '../auth/encoding.ts';
import { jsonBodyOf } from '../contracts/common.ts';
import { MAX_DURATION_S, MIN_DURATION_S } from '../contracts/orders.ts';
import { nodes } from '../db/schema.ts';
import { costUsd } from '../market/orders.ts';
import { quote } from '../money/quote.ts';
import type { Asset } from '../money/assets.ts';

type LeaseRow = typeof leases.$inferSelect;

const app = router();
/** Log lines shown with an ended lease. */
const LAST_LINES = 20;

type StoredLine = Awaited<ReturnType<ReturnType<typeof lease>['logTail']>>[number];

/** Where each workload port answers, for the renter of a running lease. */
export function endpointsOf(rec: LeaseRecord | null, publicHost: string | null) {
  if (!rec || rec.state !== 'running' || !rec.ports) return { endpoints: [], endpoints_state: 'not_running' as const };
  const ports = Object.entries(rec.ports);
  if (ports.length === 0) return { endpoints: [], endpoints_state: 'no_ports' as const };
  if (!publicHost) return { endpoints: [], endpoints_state: 'no_public_host' as const };
  const host = publicHost.includes(':') ? `[${publicHost}]` : publicHost;
  return {
    endpoints: ports
      .map(([port, hostPort]) => ({ port: Number(port), host: publicHost, host_port: hostPort, url: `http://${host}:${hostPort}` }))
      .sort((a, b) => a.port - b.port),
    endpoints_state: 'ready' as const,
  };
}

function publicLease(row: LeaseRow, viewer: string, rec: LeaseRecord | null, publicHost: string | null, lastLines: StoredLine[] | null = null) {
  const renter = row.renterId === viewer;
  const reach = renter ? endpointsOf(rec, publicHost) : { endpoints: [], endpoints_state: null };
  return {
    id: row.id,
    state: rec?.state ?? (row.state as LeaseRecord['state']),
    role: renter ? ('renter' as const) : ('provider' as const),
    region: row.region,
    gpu_model: row.gpuModel,
    gpus: row.gpus,
    gpu_indices: row.gpuIndices,
    node_id: row.nodeId,
    price: money(row.price),
    duration_s: rec?.terms.durationS ?? row.durationS,
    asset: row.asset as Asset,
    amount: rec ? money(BigInt(rec.terms.amount)) : money(row.amount),
    bid_id: renter ? row.bidId : null,
    ask_id: renter ? null : row.askId,
    workload: renter && rec ? rec.terms.workload : null,
    ports: renter && rec ? rec.ports : null,
    endpoints: reach.endpoints,
    endpoints_state: reach.endpoints_state,
    last_lines: renter && rec && endedAt(rec) !== null ? (lastLines ?? []) : null,
    started_at: iso(rec?.startedAt),
    ends_at: iso(rec?.endsAt),
    stopped_at: iso(rec?.stoppedAt),
    exit_code: rec?.exitCode ?? null,
    billed: money(BigInt(rec?.billed ?? '0')),
    settlements: (rec?.settlementLog ?? []).map((x) => ({
      n: x.n,
      amount: money(BigInt(x.amount)),
      ...(renter ? {} : { fee: money(BigInt(x.fee)) }),
      due_at: iso(x.dueAt)!,
      posted_at: iso(x.postedAt)!,
    })),
    created_at: iso(row.createdAt)!,
    history: (rec?.history ?? []).map((h) => ({ state: h.state, at: iso(h.at)!, ...(h.reason ? { reason: h.reason } : {}) })),
  };
}

const ListQuery = PageQuery.extend({ role: z.enum(['renter', 'provider']).optional(), state: z.enum(LEASE_STATES).optional() }).strict();

async function nodeHost(db: Database, nodeId: string): Promise<string | null> {
  const [node] = await db.select({ host: nodes.publicHost }).from(nodes).where(eq(nodes.id, nodeId));
  return node?.host ?? null;
}

const record = async (c: { env: Parameters<typeof lease>[0] }, id: string) => (await lease(c.env, id).get()) as LeaseRecord | null;

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['leases'],
    summary: 'Leases you rent or provide, newest first',
    security: BEARER,
    middleware: guard('leases:read'),
    request: { query: ListQuery },
    responses: { 200: jsonContent(z.object({ data: z.array(LeaseSchema), next_cursor: z.string().nullable() }), 'Leases'), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const q = c.req.valid('query');
    const me = c.get('principal').accountId;
    const db = c.get('db');
    const mine = q.role === 'renter' ? eq(leases.renterId, me) : q.role === 'provider' ? eq(leases.providerId, me) : or(eq(leases.renterId, me), eq(leases.providerId, me))!;
    const where: SQL[] = [mine];
    if (q.state) where.push(eq(leases.state, q.state));
    if (q.cursor) {
      const [ref] = await db.select({ id: leases.id, createdAt: leases.createdAt }).from(leases).where(and(mine, eq(leases.id, q.cursor)));
      if (!ref) throw new ApiError('validation_failed', 'invalid query: cursor: unknown cursor');
      where.push(olderThan(leases, ref));
    }
    const rows = await db.select().from(leases).where(and(...where)).orderBy(desc(leases.createdAt), desc(leases.id)).limit(q.limit + 1);
    const { page, nextCursor } = toPage(rows, q.limit);
    const records = await Promise.all(page.map((r) => record(c, r.id)));
    const nodeIds = [...new Set(page.filter((r) => r.renterId === me).map((r) => r.nodeId))];
    const hosts = new Map(
      nodeIds.length === 0 ? [] : (await db.select({ id: nodes.id, host: nodes.publicHost }).from(nodes).where(inArray(nodes.id, nodeIds))).map((n) => [n.id, n.host]),
    );
    return c.json({ data: page.map((r, i) => publicLease(r, me, records[i]!, hosts.get(r.nodeId) ?? null)), next_cursor: nextCursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    tags: ['leases'],
    summary: 'One lease, for its renter or its provider (404 for anyone else)',
    security: BEARER,
    middleware: guard('leases:read'),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: { 200: jsonContent(z.object({ lease: LeaseSchema }), 'Lease'), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const me = c.get('principal').accountId;
    const id = c.req.valid('param').id;
    const [row] = await c
      .get('db')
      .select()
      .from(leases)
      .where(and(eq(leases.id, id), or(eq(leases.renterId, me), eq(leases.providerId, me))));
    if (!row) throw new ApiError('not_found', `no lease ${id}`);
    const rec = await record(c, id);
    const renter = row.renterId === me;
    const lastLines = renter && rec && endedAt(rec) !== null ? await lease(c.env, id).logTail(LAST_LINES) : null;
    return c.json({ lease: publicLease(row, me, rec, renter ? await nodeHost(c.get('db'), row.nodeId) : null, lastLines) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/terminate',
    tags: ['leases'],
    summary: 'End your lease now: billed to now if running, free if still provisioning; the rest of the escrow comes back',
    security: BEARER,
    // A suspended renter may still stop spending, with an API key or an access token.
    middleware: guard('leases:write', undefined, { allowSuspended: true }),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: { 200: jsonContent(z.object({ lease: LeaseSchema }), 'Ended (or already over)'), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const me = c.get('principal').accountId;
    const id = c.req.valid('param').id;
    const [row] = await c.get('db').select().from(leases).where(and(eq(leases.id, id), eq(leases.renterId, me)));
    if (!row) throw new ApiError('not_found', `no lease ${id} of yours`);
    await lease(c.env, id).terminate();
    return c.json({ lease: publicLease(row, me, await record(c, id), row.renterId === me ? await nodeHost(c.get('db'), row.nodeId) : null) }, 200);
  },
);

const ExtendBody = z.object({ duration_s: z.number().int().min(MIN_DURATION_S).max(MAX_DURATION_S) }).strict().openapi('ExtendLease');

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/extend',
    tags: ['leases'],
    summary: 'Buy more time on your lease: its cost is held first; refused past the ask’s longest duration or once the lease is over',
    security: BEARER,
    middleware: [...guard('leases:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { params: z.object({ id: z.string().max(64) }), body: jsonBodyOf(ExtendBody) },
    responses: { 200: jsonContent(z.object({ lease: LeaseSchema }), 'Extended'), ...errorResponses(400, 401, 402, 403, 404, 409, 503) },
  }),
  async (c) => {
    const me = c.get('principal').accountId;
    const id = c.req.valid('param').id;
    const { duration_s: seconds } = c.req.valid('json');
    const key = c.get('idempotencyKey');
    const [row] = await c.get('db').select().from(leases).where(and(eq(leases.id, id), eq(leases.renterId, me)));
    if (!row) throw new ApiError('not_found', `no lease ${id} of yours`);
    const before = await record(c, id);
    if (!before) throw new ApiError('not_found', `no lease ${id} of yours`);
    const t = before.terms;
    if (t.durationS + seconds > t.maxDurationS && !before.extensions.some((e) => e.key === key)) {
      throw new ApiError('conflict', `the provider offers at most ${t.maxDurationS} s; this lease has ${t.durationS} s`);
    }
    const [node] = await c.get('db').select({ status: nodes.status }).from(nodes).where(eq(nodes.id, t.nodeId));
    if (node?.status !== 'online') throw new ApiError('conflict', `node ${t.nodeId} is ${node?.status ?? 'gone'}; the lease cannot be extended`);
    // The same rate the lease was bought at: USD price, GRID at the locked rate and discount.
    const amount = quote(costUsd(t.price, t.gpus, seconds), t.asset, { gridUsdRate: BigInt(t.gridUsdRate), gridDiscountBps: BigInt(t.gridDiscountBps) });
    // The lease holds the cost itself and owns the hold's fate: applied, or released if the lease
    // ended first. The same Idempotency-Key is the same extension.
    const holdKey = `lease:${id}:extend:${await sha256Hex(key)}`;
    const outcome = await lease(c.env, id).extend(holdKey, seconds, amount);
    if (!outcome.ok) {
      switch (outcome.reason) {
        case 'insufficient_funds':
          throw new ApiError('insufficient_funds', `not enough ${t.asset} available to extend by ${seconds} s`);
        case 'pending':
          throw new ApiError('service_unavailable', 'the extension could not be completed yet; retry with the same Idempotency-Key');
        case 'ended':
          throw new ApiError('conflict', `lease ${id} is over`);
        case 'too_long':
          throw new ApiError('conflict', `the provider offers at most ${t.maxDurationS} s`);
      }
    }
    return c.json({ lease: publicLease(row, me, await record(c, id), row.renterId === me ? await nodeHost(c.get('db'), row.nodeId) : null) }, 200);
  },
);

export default app;
