import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq, gte, inArray, sql } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { sha256Hex, toHex } from '../auth/encoding.ts';
import { BEARER, errorResponses, jsonContent } from '../contracts/common.ts';
import { iso } from '../contracts/money.ts';
import { joinTokens, nodeChallenges, nodeGpus, nodeMetricsMinute, nodes, nodeUptimeDaily } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { newId } from '../ids.ts';
import { ChallengeSummarySchema, NodeSchema, challengeSummary, collectorFor, publicNode } from '../nodes/registry.ts';
import { auditNodeLeases } from '../inspections/node-audit.ts';
import { OrderProcessingSchema, orderProcessingWire } from './order-processing-wire.ts';

const RECENT_CHALLENGES = 10;

export const JOIN_TOKEN_PREFIX = 'glj_';
const JOIN_TOKEN_TTL_MS = 15 * 60_000;

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/join-tokens',
    tags: ['nodes'],
    summary: 'A one-time token for `gridlease-runner join`, valid 15 minutes',
    security: BEARER,
    middleware: [...guard('nodes:write', 'provider'), requireActiveAccount()],
    responses: { 201: jsonContent(z.object({ join_token: z.string(), expires_at: z.string() }), 'Join token (shown once)'), ...errorResponses(401, 403) },
  }),
  async (c) => {
    const token = JOIN_TOKEN_PREFIX + toHex(crypto.getRandomValues(new Uint8Array(20)));
    const expiresAt = Date.now() + JOIN_TOKEN_TTL_MS;
    await c.get('db').insert(joinTokens).values({ id: newId('jtk'), hash: await sha256Hex(token), accountId: c.get('principal').accountId, expiresAt });
    return c.json({ join_token: token, expires_at: iso(expiresAt)! }, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['nodes'],
    summary: "The caller's nodes",
    security: BEARER,
    middleware: guard('nodes:read'),
    responses: { 200: jsonContent(z.object({ data: z.array(NodeSchema) }), 'Nodes'), ...errorResponses(401, 403) },
  }),
  async (c) => {
    const db = c.get('db');
    const rows = await db.select().from(nodes).where(eq(nodes.accountId, c.get('principal').accountId)).orderBy(desc(nodes.createdAt)).limit(500);
    const gpus = rows.length ? await db.select().from(nodeGpus).where(inArray(nodeGpus.nodeId, rows.map((r) => r.id))) : [];
    return c.json({ data: await Promise.all(rows.map((r) => publicNode(r, gpus))) }, 200);
  },
);

const MetricsSchema = z.object({
  minute: z.string(),
  heartbeats: z.number().int(),
  gpu_utilization_pct: z.number().nullable(),
  gpu_memory_used_max_mib: z.number().nullable(),
  gpu_temperature_max_c: z.number().nullable(),
  gpu_power_avg_w: z.number().nullable(),
});

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    tags: ['nodes'],
    summary: 'One node with its last hour of metrics and a week of uptime (404 unless it is yours)',
    security: BEARER,
    middleware: guard('nodes:read'),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: {
      200: jsonContent(
        z.object({
          node: NodeSchema,
          metrics: z.array(MetricsSchema),
          uptime: z.array(z.object({ day: z.string(), seconds: z.number().int(), heartbeats: z.number().int() })),
          challenges: z.array(ChallengeSummarySchema).openapi({ description: 'The latest platform challenges, newest first' }),
        }),
        'Node',
      ),
      ...errorResponses(401, 403, 404),
    },
  }),
  async (c) => {
    const db = c.get('db');
    const { id } = c.req.valid('param');
    const [row] = await db.select().from(nodes).where(and(eq(nodes.id, id), eq(nodes.accountId, c.get('principal').accountId)));
    if (!row) throw new ApiError('not_found', 'no such node');
    const sinceMinute = Math.floor(Date.now() / 60_000) - 60;
    const sinceDay = new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10);
    const [gpus, minutes, days, challenges] = await Promise.all([
      db.select().from(nodeGpus).where(eq(nodeGpus.nodeId, id)),
      db.select().from(nodeMetricsMinute).where(and(eq(nodeMetricsMinute.nodeId, id), gte(nodeMetricsMinute.minute, sinceMinute))).orderBy(nodeMetricsMinute.minute),
      db.select().from(nodeUptimeDaily).where(and(eq(nodeUptimeDaily.nodeId, id), gte(nodeUptimeDaily.day, sinceDay))).orderBy(nodeUptimeDaily.day),
      db.select().from(nodeChallenges).where(eq(nodeChallenges.nodeId, id)).orderBy(desc(nodeChallenges.issuedAt)).limit(RECENT_CHALLENGES),
    ]);
    return c.json(
      {
        node: await publicNode(row, gpus),
        metrics: minutes.map((m) => ({
          minute: new Date(m.minute * 60_000).toISOString(),
          heartbeats: m.heartbeats,
          gpu_utilization_pct: m.utilSamples ? Math.round((m.utilSum / m.utilSamples) * 10) / 10 : null,
          gpu_memory_used_max_mib: m.memUsedMaxMib,
          gpu_temperature_max_c: m.tempMaxC,
          gpu_power_avg_w: m.powerSamples ? Math.round((m.powerSumW / m.powerSamples) * 10) / 10 : null,
        })),
        uptime: days.map((d) => ({ day: d.day, seconds: d.seconds, heartbeats: d.heartbeats })),
        challenges: challenges.map(challengeSummary),
      },
      200,
    );
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/order-processing',
    tags: ['nodes'],
    summary: "How your node served and billed its recent leases: each lease's record checked against the billing rules (404 unless it is yours)",
    security: BEARER,
    middleware: guard('nodes:read'),
    request: { params: z.object({ id: z.string().max(64) }), query: z.object({ limit: z.string().regex(/^[1-9][0-9]?$/, 'a whole number from 1 to 99').optional() }).strict() },
    responses: { 200: jsonContent(OrderProcessingSchema, 'The check'), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const [row] = await c.get('db').select({ id: nodes.id }).from(nodes).where(and(eq(nodes.id, id), eq(nodes.accountId, c.get('principal').accountId)));
    if (!row) throw new ApiError('not_found', 'no such node');
    return c.json(orderProcessingWire(id, await auditNodeLeases(c.env, id, Number(c.req.valid('query').limit ?? 20))), 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/revoke',
    tags: ['nodes'],
    summary: "Revoke a node: its token stops working at once and it is no longer listed",
    security: BEARER,
    middleware: guard('nodes:write', 'provider'),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: { 200: jsonContent(z.object({ node: NodeSchema }), 'Revoked'), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const db = c.get('db');
    const { id } = c.req.valid('param');
    const [row] = await db
      .update(nodes)
      .set({ status: 'revoked', tokenVersion: sql`${nodes.tokenVersion} + 1` })
      .where(and(eq(nodes.id, id), eq(nodes.accountId, c.get('principal').accountId)))
      .returning();
    if (!row) throw new ApiError('not_found', 'no such node');
    await collectorFor(c.env, row.id, row.region).stub.revoke(row.id, row.tokenVersion);
    const gpus = await db.select().from(nodeGpus).where(eq(nodeGpus.nodeId, id));
    return c.json({ node: await publicNode(row, gpus) }, 200);
  },
);

export default app;
