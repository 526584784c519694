import { createRoute, z } from '@hono/zod-openapi';
import { eq, sql } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { AccountSchema } from '../contracts/accounts.ts';
import { BEARER, errorResponses, jsonContent } from '../contracts/common.ts';
import { PageQuery, newestFirst } from '../db/pagination.ts';
import { accounts } from '../db/schema.ts';
import { newId } from '../ids.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { publicAccount } from './accounts.ts';

const app = router();

app.openapi(
  createRoute({
    method: 'get',
    path: '/accounts',
    tags: ['admin'],
    summary: 'All accounts, newest first (operators only)',
    security: BEARER,
    middleware: guard('account:read', 'admin'),
    request: { query: PageQuery },
    responses: {
      200: jsonContent(z.object({ data: z.array(AccountSchema), next_cursor: z.string().nullable() }), 'Accounts'),
      ...errorResponses(400, 401, 403),
    },
  }),
  async (c) => {
    const { page, nextCursor } = await newestFirst(c.get('db'), accounts, undefined, c.req.valid('query'));
    return c.json({ data: page.map(publicAccount), next_cursor: nextCursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/accounts/{id}/status',
    tags: ['admin'],
    summary: 'Suspend or reactivate an account (operators only)',
    security: BEARER,
    middleware: guard('account:write', 'admin'),
    request: {
      params: z.object({ id: z.string().max(64) }),
      body: {
        required: true,
        content: { 'application/json': { schema: z.object({ status: z.enum(['active', 'suspended']), reason: z.string().trim().min(3).max(500) }).strict() } },
      },
    },
    responses: {
      200: jsonContent(z.object({ account: AccountSchema }), 'Updated account'),
      ...errorResponses(400, 401, 403, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const { status, reason } = c.req.valid('json');
    const actor = c.get('principal').accountId;
    if (id === actor) throw new ApiError('conflict', 'operators cannot change their own status');
    const db = c.get('db');
    const [[row]] = await db.batch([
      db.update(accounts).set({ status }).where(eq(accounts.id, id)).returning(),
      // Recorded in the same transaction, and only when the account exists.
      db.run(sql`INSERT INTO audit_log (id, actor_account_id, action, target, reason, created_at)
        SELECT ${newId('aud')}, ${actor}, ${`account.${status}`}, id, ${reason}, ${Date.now()} FROM accounts WHERE id = ${id}`),
    ]);
    if (!row) throw new ApiError('not_found', 'no such account');
    return c.json({ account: publicAccount(row) }, 200);
  },
);

export default app;
