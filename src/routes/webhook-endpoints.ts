// Renters' webhook endpoints: where Gridlease POSTs order and lease events (src/webhooks/).
import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq } from 'drizzle-orm';
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { guard } from '../auth/guard.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { iso } from '../contracts/money.ts';
import { WebhookEventTypeSchema, type WebhookEventType } from '../contracts/webhooks.ts';
import { connection } from '../db/client.ts';
import { webhookDeliveries, webhookEndpoints } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { newId } from '../ids.ts';
import { newEndpointSecret } from '../webhooks/signature.ts';
import { checkEndpointUrl, describeUrlProblem, MAX_URL_LENGTH } from '../webhooks/url.ts';

/** Endpoints an account may have. */
export const MAX_ENDPOINTS = 10;
/** Deliveries shown with one endpoint, newest first. */
export const RECENT_DELIVERIES = 50;

const CreateEndpointBody = z
  .object({
    url: z.string().max(MAX_URL_LENGTH, describeUrlProblem('too_long')).openapi({ example: 'https://hooks.example.com/gridlease' }),
    events: z
      .array(WebhookEventTypeSchema)
      .min(1, 'must list at least one event type')
      .refine((events) => new Set(events).size === events.length, 'must not list an event type twice'),
    description: z.string().trim().max(200).optional(),
  })
  .strict()
  .openapi('CreateWebhookEndpoint');

const EndpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(WebhookEventTypeSchema),
    description: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('WebhookEndpoint');

const DeliverySchema = z
  .object({
    id: z.string(),
    event_id: z.string(),
    event_type: WebhookEventTypeSchema,
    state: z.enum(['pending', 'delivered', 'failed']).openapi({ description: 'pending: queued or being retried by the queue; failed: the last retry failed too' }),
    attempts: z.number().int(),
    last_status: z.number().int().nullable().openapi({ description: 'HTTP status of the last attempt; null if it got no response' }),
    last_error: z.string().nullable(),
    last_attempt_at: z.string().nullable(),
    delivered_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('WebhookDelivery');

type EndpointRow = typeof webhookEndpoints.$inferSelect;
type DeliveryRow = typeof webhookDeliveries.$inferSelect;

function publicEndpoint(row: EndpointRow) {
  return { id: row.id, url: row.url, events: row.events as WebhookEventType[], description: row.description, created_at: iso(row.createdAt)! };
}

function publicDelivery(row: DeliveryRow) {
  return {
    id: row.id,
    event_id: row.eventId,
    event_type: row.eventType as WebhookEventType,
    state: row.state,
    attempts: row.attempts,
    last_status: row.lastStatus,
    last_error: row.lastError,
    last_attempt_at: iso(row.lastAttemptAt),
    delivered_at: iso(row.deliveredAt),
    created_at: iso(row.createdAt)!,
  };
}

const IdParam = z.object({ id: z.string().max(64) });

/** The caller's endpoint, or a 404 (another account's endpoint is no different from none). */
async function ownEndpoint(c: Context<AppEnv>, id: string): Promise<EndpointRow> {
  const [row] = await c
    .get('db')
    .select()
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.accountId, c.get('principal').accountId)));
  if (!row) throw new ApiError('not_found', 'no such webhook endpoint');
  return row;
}

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/',
    tags: ['webhooks'],
    summary: 'Add a webhook endpoint; its signing secret is shown once, in this response',
    security: BEARER,
    middleware: guard('account:write'),
    request: { body: jsonBodyOf(CreateEndpointBody) },
    responses: {
      201: jsonContent(z.object({ endpoint: EndpointSchema, secret: z.string().openapi({ example: 'whsec_…' }) }), 'Endpoint added'),
      ...errorResponses(400, 401, 403, 409),
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    const checked = checkEndpointUrl(body.url, c.env.ENVIRONMENT);
    if (!checked.ok) {
      const message = describeUrlProblem(checked.problem);
      throw new ApiError('validation_failed', `invalid body: url: ${message}`, { details: [{ path: 'url', message, reason: checked.problem }] });
    }
    const accountId = c.get('principal').accountId;
    const row: EndpointRow = {
      id: newId('whe'),
      accountId,
      url: checked.url,
      events: body.events,
      description: body.description || null,
      secret: newEndpointSecret(),
      createdAt: Date.now(),
    };
    // Counting and inserting in one statement, so concurrent requests cannot pass the limit.
    const inserted = await connection(c.env).client.execute({
      sql: `INSERT INTO webhook_endpoints (id, account_id, url, events, description, secret, created_at)
            SELECT ?, ?, ?, ?, ?, ?, ? WHERE (SELECT count(*) FROM webhook_endpoints WHERE account_id = ?) < ?`,
      args: [row.id, accountId, row.url, JSON.stringify(row.events), row.description, row.secret, row.createdAt, accountId, MAX_ENDPOINTS],
    });
    if (inserted.rowsAffected === 0) throw new ApiError('conflict', `an account may have at most ${MAX_ENDPOINTS} webhook endpoints; delete one first`);
    return c.json({ endpoint: publicEndpoint(row), secret: row.secret }, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['webhooks'],
    summary: "The caller's webhook endpoints, newest first (never the secrets)",
    security: BEARER,
    middleware: guard('account:read'),
    responses: { 200: jsonContent(z.object({ data: z.array(EndpointSchema) }), 'Endpoints'), ...errorResponses(401, 403) },
  }),
  async (c) => {
    const rows = await c
      .get('db')
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.accountId, c.get('principal').accountId))
      .orderBy(desc(webhookEndpoints.createdAt), desc(webhookEndpoints.id));
    return c.json({ data: rows.map(publicEndpoint) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    tags: ['webhooks'],
    summary: `One endpoint with its last ${RECENT_DELIVERIES} deliveries (404 unless it is yours)`,
    security: BEARER,
    middleware: guard('account:read'),
    request: { params: IdParam },
    responses: {
      200: jsonContent(z.object({ endpoint: EndpointSchema, deliveries: z.array(DeliverySchema) }), 'Endpoint and recent deliveries'),
      ...errorResponses(401, 403, 404),
    },
  }),
  async (c) => {
    const db = c.get('db');
    const row = await ownEndpoint(c, c.req.valid('param').id);
    const deliveries = await db
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.endpointId, row.id))
      .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
      .limit(RECENT_DELIVERIES);
    return c.json({ endpoint: publicEndpoint(row), deliveries: deliveries.map(publicDelivery) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}',
    tags: ['webhooks'],
    summary: 'Delete an endpoint and its delivery log; deliveries still queued are dropped',
    security: BEARER,
    middleware: guard('account:write'),
    request: { params: IdParam },
    responses: { 200: jsonContent(z.object({ endpoint: EndpointSchema }), 'Deleted'), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const db = c.get('db');
    const row = await ownEndpoint(c, c.req.valid('param').id);
    await db.batch([db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, row.id)), db.delete(webhookDeliveries).where(eq(webhookDeliveries.endpointId, row.id))]);
    return c.json({ endpoint: publicEndpoint(row) }, 200);
  },
);

export default app;
