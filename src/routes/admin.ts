import { createRoute, z } from '@hono/zod-openapi';
import { and, eq, gt, or, sql } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { AccountSchema } from '../contracts/accounts.ts';
import { BEARER, errorResponses, jsonContent } from '../contracts/common.ts';
import { PageQuery, newestFirst } from '../db/pagination.ts';
import type { Database } from '../db/client.ts';
import { accounts, orders } from '../db/schema.ts';
import { regionBook } from '../durable/region-book.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import type { BookOrder } from '../market/orders.ts';
import { newId } from '../ids.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { publicAccount } from './accounts.ts';

const app = router();

/**
 * Cancels every order of a suspended account that libSQL lists as open, in its book: a resting
 * order stops matching and a bid's escrow is released. The status update committed first, so
 * no new order row can appear (the orders trigger refuses it); an order whose request is still
 * on its way to the book is recorded there as cancelled, and its late placement finds it so.
 */
async function cancelOpenOrders(env: Bindings, db: Database, accountId: string): Promise<void> {
  const open = await db
    .select({ id: orders.id, region: orders.region, gpuModel: orders.gpuModel, book: orders.book })
    .from(orders)
    // Fully leased asks too: they would reopen, and match, as their leases end.
    .where(and(eq(orders.accountId, accountId), or(eq(orders.status, 'open'), and(eq(orders.side, 'sell'), eq(orders.status, 'filled'), gt(orders.expiresAt, Date.now())))));
  const byBook = new Map<string, typeof open>();
  for (const o of open) byBook.set(`${o.region}:${o.gpuModel}`, [...(byBook.get(`${o.region}:${o.gpuModel}`) ?? []), o]);
  // Books in parallel; one book's orders one at a time, as that book would take them anyway.
  await Promise.all(
    [...byBook.values()].map(async (rows) => {
      const book = regionBook(env, rows[0]!.region, rows[0]!.gpuModel);
      for (const o of rows) await book.cancel(o.id, accountId, o.book as unknown as BookOrder);
    }),
  );
  if (open.length > 0) log('info', 'suspended account: open orders cancelled', { account_id: accountId, orders: open.length });
}

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
    // Suspending again re-runs this, so an operator's retry finishes a cancellation cut short.
    if (status === 'suspended') await cancelOpenOrders(c.env, db, id);
    return c.json({ account: publicAccount(row) }, 200);
  },
);

export default app;
