import { createRoute, z } from '@hono/zod-openapi';
import { and, eq } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { AssetSchema, MoneyString, amountSchema, iso, money } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import { PageQuery, newestFirst } from '../db/pagination.ts';
import { withdrawals } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { idempotencyConflict, requireIdempotencyKey } from '../http/idempotency.ts';
import { router } from '../http/router.ts';
import { derivedId } from '../ids.ts';
import { postOrThrow } from '../ledger/api.ts';
import { withdrawal } from '../ledger/rules.ts';
import type { Asset } from '../money/assets.ts';
import { sha256Hex } from '../auth/encoding.ts';

export type WithdrawalRow = typeof withdrawals.$inferSelect;

/** Bank payouts take an IBAN; token payouts an EVM address. */
const DESTINATION: { readonly [A in Asset]: { pattern: RegExp; text: string } } = {
  USD: { pattern: /^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/, text: 'an IBAN without spaces' },
  USDC: { pattern: /^0x[0-9a-fA-F]{40}$/, text: 'a 0x address' },
  GRID: { pattern: /^0x[0-9a-fA-F]{40}$/, text: 'a 0x address' },
};

const CreateWithdrawalBody = z
  .object({ asset: AssetSchema, amount: amountSchema(), destination: z.string().trim().min(1).max(64) })
  .strict()
  .openapi('CreateWithdrawal');

export const WithdrawalSchema = z
  .object({
    id: z.string(),
    asset: AssetSchema,
    amount: MoneyString,
    destination: z.string(),
    status: z.enum(['pending', 'paid', 'failed']),
    failure_reason: z.string().nullable(),
    payout_ref: z.string().nullable(),
    created_at: z.string(),
    settled_at: z.string().nullable(),
  })
  .openapi('Withdrawal');

export function publicWithdrawal(row: WithdrawalRow) {
  return {
    id: row.id,
    asset: row.asset as Asset,
    amount: money(row.amount),
    destination: row.destination,
    status: row.status,
    failure_reason: row.failureReason,
    payout_ref: row.payoutRef,
    created_at: iso(row.createdAt)!,
    settled_at: iso(row.settledAt),
  };
}

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/',
    tags: ['money'],
    summary: 'Withdraw: the amount leaves the available balance at once; a failed payout returns it',
    security: BEARER,
    middleware: [...guard('funds:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { body: jsonBodyOf(CreateWithdrawalBody) },
    responses: {
      201: jsonContent(z.object({ withdrawal: WithdrawalSchema }), 'Withdrawal requested'),
      200: jsonContent(z.object({ withdrawal: WithdrawalSchema }), 'The same request again: the first withdrawal'),
      ...errorResponses(400, 401, 402, 403, 409),
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    const rule = DESTINATION[body.asset];
    if (!rule.pattern.test(body.destination)) {
      throw new ApiError('validation_failed', `invalid body: destination: a ${body.asset} withdrawal goes to ${rule.text}`);
    }
    const accountId = c.get('principal').accountId;
    const key = c.get('idempotencyKey');
    const requestHash = await sha256Hex(JSON.stringify([body.asset, body.amount.toString(), body.destination]));
    const id = await derivedId('wdr', accountId, key);
    const now = Date.now();
    const { replayed } = await postOrThrow(
      connection(c.env).money,
      withdrawal({ owner: accountId, asset: body.asset, amount: body.amount, idempotencyKey: `withdrawal:${accountId}:${key}`, reference: id }),
      {
        now,
        alongside: [
          {
            sql: `INSERT INTO withdrawals (id, account_id, idempotency_key, request_hash, asset, amount, destination, status, created_at)
                  VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)`,
            args: [id, accountId, key, requestHash, body.asset, body.amount, body.destination, now],
          },
        ],
      },
    );
    // The ledger's key covers asset and amount; the stored request hash also covers the destination.
    const [row] = await c
      .get('db')
      .select()
      .from(withdrawals)
      .where(and(eq(withdrawals.accountId, accountId), eq(withdrawals.idempotencyKey, key)));
    if (!row) throw new Error('withdrawal row missing after its ledger transaction');
    if (row.requestHash !== requestHash) throw idempotencyConflict();
    return c.json({ withdrawal: publicWithdrawal(row) }, replayed ? 200 : 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['money'],
    summary: "The caller's withdrawals, newest first",
    security: BEARER,
    middleware: guard('funds:read'),
    request: { query: PageQuery },
    responses: { 200: jsonContent(z.object({ data: z.array(WithdrawalSchema), next_cursor: z.string().nullable() }), 'Withdrawals'), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const { page, nextCursor } = await newestFirst(c.get('db'), withdrawals, eq(withdrawals.accountId, c.get('principal').accountId), c.req.valid('query'));
    return c.json({ data: page.map(publicWithdrawal), next_cursor: nextCursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    tags: ['money'],
    summary: 'One withdrawal (404 unless it is yours)',
    security: BEARER,
    middleware: guard('funds:read'),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: { 200: jsonContent(z.object({ withdrawal: WithdrawalSchema }), 'Withdrawal'), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const [row] = await c
      .get('db')
      .select()
      .from(withdrawals)
      .where(and(eq(withdrawals.id, c.req.valid('param').id), eq(withdrawals.accountId, c.get('principal').accountId)));
    if (!row) throw new ApiError('not_found', 'no such withdrawal');
    return c.json({ withdrawal: publicWithdrawal(row) }, 200);
  },
);

export default app;
