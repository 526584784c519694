import { createRoute, z } from '@hono/zod-openapi';
import { and, asc, eq } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { AssetSchema, MoneyString, amountSchema, money } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import { limitQuery } from '../db/pagination.ts';
import { accounts, withdrawals } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { requireIdempotencyKey } from '../http/idempotency.ts';
import { router } from '../http/router.ts';
import { newId } from '../ids.ts';
import { PLATFORM } from '../ledger/accounts.ts';
import { postOrThrow } from '../ledger/api.ts';
import { adjustment, withdrawalFailed, withdrawalPaid } from '../ledger/rules.ts';
import type { Asset } from '../money/assets.ts';
import { WithdrawalSchema, publicWithdrawal } from './withdrawals.ts';

const app = router();

/** Money an operator moves for an account is checked by a second person: never their own. */
function refuseOwnAccount(actor: string, owner: string, action: string): void {
  if (actor === owner) throw new ApiError('forbidden', `operators may not ${action}; ask another operator`);
}

app.openapi(
  createRoute({
    method: 'get',
    path: '/platform-balances',
    tags: ['admin'],
    summary: "The platform's own ledger accounts (fees, clearing, withdrawals in flight, …)",
    security: BEARER,
    middleware: guard('funds:read', 'admin'),
    responses: {
      200: jsonContent(z.object({ data: z.array(z.object({ asset: AssetSchema, kind: z.string(), balance: MoneyString })) }), 'Balances'),
      ...errorResponses(401, 403),
    },
  }),
  async (c) => {
    const rs = await connection(c.env).money.execute({
      sql: 'SELECT asset, kind, balance FROM ledger_accounts WHERE owner_id = ? ORDER BY asset, kind',
      args: [PLATFORM],
    });
    return c.json({ data: rs.rows.map((r) => ({ asset: r.asset as Asset, kind: String(r.kind), balance: money(r.balance as bigint) })) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/adjustments',
    tags: ['admin'],
    summary: "Correct a user's available balance: a new ledger transaction with a reason, never an edit",
    security: BEARER,
    middleware: [...guard('funds:write', 'admin'), requireIdempotencyKey()],
    request: {
      body: jsonBodyOf(
        z
          .object({
            account_id: z.string().max(64),
            asset: AssetSchema,
            amount: amountSchema({ allowNegative: true }).openapi({ description: 'Signed: negative takes money away' }),
            reason: z.string().trim().min(3).max(500),
          })
          .strict()
          .openapi('Adjustment'),
      ),
    },
    responses: {
      201: jsonContent(z.object({ transaction_id: z.string() }), 'Adjusted'),
      200: jsonContent(z.object({ transaction_id: z.string() }), 'The same request again'),
      ...errorResponses(400, 401, 402, 403, 404, 409),
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    const actor = c.get('principal').accountId;
    refuseOwnAccount(actor, body.account_id, 'adjust their own balance');
    const db = c.get('db');
    const [target] = await db.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, body.account_id));
    if (!target) throw new ApiError('not_found', 'no such account');
    const now = Date.now();
    const key = `adjustment:${actor}:${c.get('idempotencyKey')}`;
    const { transaction, replayed } = await postOrThrow(
      connection(c.env).money,
      adjustment({ owner: body.account_id, asset: body.asset, amount: body.amount, idempotencyKey: key, reference: null, memo: body.reason }),
      {
        now,
        alongside: [
          {
            sql: 'INSERT INTO audit_log (id, actor_account_id, action, target, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)',
            args: [newId('aud'), actor, `ledger.adjustment ${body.asset} ${money(body.amount)}`, body.account_id, body.reason, now],
          },
        ],
      },
    );
    return c.json({ transaction_id: transaction.id }, replayed ? 200 : 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/withdrawals',
    tags: ['admin'],
    summary: 'Withdrawals waiting for a payout, oldest first',
    security: BEARER,
    middleware: guard('funds:read', 'admin'),
    request: { query: z.object({ limit: limitQuery(200, 100) }).strict() },
    responses: { 200: jsonContent(z.object({ data: z.array(WithdrawalSchema.extend({ account_id: z.string() })) }), 'Pending withdrawals'), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const rows = await c
      .get('db')
      .select()
      .from(withdrawals)
      .where(eq(withdrawals.status, 'pending'))
      .orderBy(asc(withdrawals.createdAt), asc(withdrawals.id))
      .limit(c.req.valid('query').limit);
    return c.json({ data: rows.map((r) => ({ ...publicWithdrawal(r), account_id: r.accountId })) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/withdrawals/{id}/settle',
    tags: ['admin'],
    summary: 'Record a payout as paid, or as failed (which returns the money to the user)',
    security: BEARER,
    middleware: [...guard('funds:write', 'admin'), requireIdempotencyKey()],
    request: {
      params: z.object({ id: z.string().max(64) }),
      body: jsonBodyOf(
        z
          .object({
            outcome: z.enum(['paid', 'failed']),
            payout_ref: z.string().trim().min(1).max(128).optional(),
            reason: z.string().trim().min(3).max(500).optional(),
          })
          .strict()
          .openapi('SettleWithdrawal'),
      ),
    },
    responses: { 200: jsonContent(z.object({ withdrawal: WithdrawalSchema }), 'Settled'), ...errorResponses(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    if (body.outcome === 'failed' && !body.reason) throw new ApiError('validation_failed', 'invalid body: reason: a failed payout needs a reason');
    const db = c.get('db');
    const [row] = await db.select().from(withdrawals).where(eq(withdrawals.id, id));
    if (!row) throw new ApiError('not_found', 'no such withdrawal');
    refuseOwnAccount(c.get('principal').accountId, row.accountId, 'settle their own withdrawal');
    const now = Date.now();
    const asset = row.asset as Asset;
    const amount = BigInt(row.amount);
    // One settlement per withdrawal, whatever the outcome: a second, different one conflicts.
    const key = `withdrawal:${id}:settle`;
    const rule =
      body.outcome === 'paid'
        ? withdrawalPaid({ asset, amount, idempotencyKey: key, reference: id })
        : withdrawalFailed({ owner: row.accountId, asset, amount, idempotencyKey: key, reference: id });
    await postOrThrow(connection(c.env).money, rule, {
      now,
      alongside: [
        {
          sql: "UPDATE withdrawals SET status = ?, payout_ref = ?, failure_reason = ?, settled_at = ? WHERE id = ? AND status = 'pending'",
          args: [body.outcome, body.payout_ref ?? null, body.outcome === 'failed' ? body.reason! : null, now, id],
        },
      ],
    });
    const [settled] = await db.select().from(withdrawals).where(and(eq(withdrawals.id, id)));
    return c.json({ withdrawal: publicWithdrawal(settled!) }, 200);
  },
);

export default app;
