import { createRoute, z } from '@hono/zod-openapi';
import { and, count, desc, eq, isNull } from 'drizzle-orm';
import { mintApiKey, publicApiKey } from '../auth/api-keys.ts';
import { guard } from '../auth/guard.ts';
import { ApiKeySchema, CreateApiKeyBody, NewApiKeySchema } from '../contracts/accounts.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { apiKeys } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';

/** Active keys an account may hold; enough for per-machine keys, small enough to audit. */
export const MAX_ACTIVE_KEYS = 50;
const DAY_MS = 86_400_000;

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/',
    tags: ['api-keys'],
    summary: 'Create an API key (the secret is shown once)',
    security: BEARER,
    middleware: guard('keys:write'),
    request: { body: jsonBodyOf(CreateApiKeyBody) },
    responses: {
      201: jsonContent(z.object({ api_key: NewApiKeySchema }), 'Key created'),
      ...errorResponses(400, 401, 403, 409),
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    const principal = c.get('principal');
    const scopes = body.scopes ? [...new Set(body.scopes)] : [...principal.scopes];
    // A credential can hand out only what it holds itself.
    const beyond = scopes.filter((s) => !principal.scopes.has(s));
    if (beyond.length > 0) throw new ApiError('forbidden', `cannot grant scopes this credential lacks: ${beyond.join(', ')}`);

    const db = c.get('db');
    const [active] = await db
      .select({ n: count() })
      .from(apiKeys)
      .where(and(eq(apiKeys.accountId, principal.accountId), isNull(apiKeys.revokedAt)));
    if ((active?.n ?? 0) >= MAX_ACTIVE_KEYS) throw new ApiError('conflict', `an account may hold at most ${MAX_ACTIVE_KEYS} active keys`);

    const expiresAt = body.expires_in_days ? Date.now() + body.expires_in_days * DAY_MS : null;
    const key = await mintApiKey(principal.accountId, body.name, scopes, expiresAt);
    const [row] = await db.insert(apiKeys).values(key.row).returning();
    return c.json({ api_key: { ...publicApiKey(row!), key: key.secret } }, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['api-keys'],
    summary: "The caller's API keys, newest first (never the secrets)",
    security: BEARER,
    middleware: guard('keys:read'),
    responses: {
      200: jsonContent(z.object({ data: z.array(ApiKeySchema) }), 'Keys'),
      ...errorResponses(401, 403),
    },
  }),
  async (c) => {
    const rows = await c
      .get('db')
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.accountId, c.get('principal').accountId))
      .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
    return c.json({ data: rows.map(publicApiKey) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}',
    tags: ['api-keys'],
    summary: 'Revoke an API key; it stops working on the next request',
    security: BEARER,
    middleware: guard('keys:write'),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: {
      200: jsonContent(z.object({ api_key: ApiKeySchema }), 'Key revoked (idempotent)'),
      ...errorResponses(401, 403, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const db = c.get('db');
    const owned = and(eq(apiKeys.id, id), eq(apiKeys.accountId, c.get('principal').accountId));
    // Revoking twice keeps the first revocation time.
    await db.update(apiKeys).set({ revokedAt: Date.now() }).where(and(owned, isNull(apiKeys.revokedAt)));
    const [row] = await db.select().from(apiKeys).where(owned);
    if (!row) throw new ApiError('not_found', 'no such API key');
    return c.json({ api_key: publicApiKey(row) }, 200);
  },
);

export default app;
