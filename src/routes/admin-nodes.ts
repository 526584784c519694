import { createRoute, z } from '@hono/zod-openapi';
import { eq } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { CommandSchema } from '../contracts/runner.ts';
import { nodes } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { CannotChallenge, issueChallenge } from '../inspections/issue.ts';
import { auditNodeLeases } from '../inspections/node-audit.ts';
import { OrderProcessingSchema, orderProcessingWire } from './order-processing-wire.ts';
import { ChallengeSummarySchema, challengeSummary, collectorFor } from '../nodes/registry.ts';

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/nodes/{id}/commands',
    tags: ['admin'],
    summary: "Put a command in a node's mailbox (operators); it rides on heartbeat replies until acknowledged",
    security: BEARER,
    middleware: guard('nodes:write', 'admin'),
    request: { params: z.object({ id: z.string().max(64) }), body: jsonBodyOf(CommandSchema) },
    responses: { 202: jsonContent(z.object({ queued: z.literal(true), command_id: z.string() }), 'Queued'), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const command = c.req.valid('json');
    const [node] = await c.get('db').select({ id: nodes.id, region: nodes.region, status: nodes.status }).from(nodes).where(eq(nodes.id, c.req.valid('param').id));
    if (!node || node.status === 'revoked') throw new ApiError('not_found', 'no such node');
    await collectorFor(c.env, node.id, node.region).stub.enqueueCommand(node.id, command);
    return c.json({ queued: true as const, command_id: command.id }, 202);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/nodes/{id}/challenges',
    tags: ['admin'],
    summary: 'Challenge a node now (operators): an identity or a capacity challenge through its mailbox',
    security: BEARER,
    middleware: guard('nodes:write', 'admin'),
    request: { params: z.object({ id: z.string().max(64) }), body: jsonBodyOf(z.object({ kind: z.enum(['identity', 'capacity']) }).strict()) },
    responses: { 201: jsonContent(z.object({ challenge: ChallengeSummarySchema }), 'Issued'), ...errorResponses(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    const db = c.get('db');
    const [node] = await db.select({ id: nodes.id, region: nodes.region, status: nodes.status }).from(nodes).where(eq(nodes.id, c.req.valid('param').id));
    if (!node || node.status === 'revoked') throw new ApiError('not_found', 'no such node');
    try {
      const row = await issueChallenge(c.env, db, node, c.req.valid('json').kind);
      return c.json({ challenge: challengeSummary(row) }, 201);
    } catch (err) {
      if (err instanceof CannotChallenge) throw new ApiError('conflict', err.message);
      throw err;
    }
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/nodes/{id}/order-processing',
    tags: ['admin'],
    summary: "How a node served and billed its recent leases (operators): each lease's record checked against the billing rules",
    security: BEARER,
    middleware: guard('nodes:read', 'admin'),
    request: { params: z.object({ id: z.string().max(64) }), query: z.object({ limit: z.string().regex(/^[1-9][0-9]?$/, 'a whole number from 1 to 99').optional() }).strict() },
    responses: { 200: jsonContent(OrderProcessingSchema, 'The check'), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const [node] = await c.get('db').select({ id: nodes.id }).from(nodes).where(eq(nodes.id, c.req.valid('param').id));
    if (!node) throw new ApiError('not_found', 'no such node');
    const limit = Number(c.req.valid('query').limit ?? 20);
    return c.json(orderProcessingWire(node.id, await auditNodeLeases(c.env, node.id, limit)), 200);
  },
);

export default app;
