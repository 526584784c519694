import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { and, eq } from 'drizzle-orm';
import type { AppEnv } from '../app-env.ts';
import { sha256Hex } from '../auth/encoding.ts';
import { guard } from '../auth/guard.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { AssetSchema, MoneyString, amountSchema, iso, money } from '../contracts/money.ts';
import { isUniqueViolation } from '../db/errors.ts';
import { PageQuery, newestFirst } from '../db/pagination.ts';
import { deposits } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { idempotencyConflict, requireIdempotencyKey } from '../http/idempotency.ts';
import { log } from '../http/log.ts';
import { router } from '../http/router.ts';
import { newId } from '../ids.ts';
import { MICRO } from '../money/amount.ts';
import type { Asset } from '../money/assets.ts';
import { stripeClient } from '../payments/stripe.ts';

type DepositRow = typeof deposits.$inferSelect;
const METHOD_ASSET = { card: 'USD', usdc: 'USDC', grid: 'GRID' } as const satisfies Record<DepositRow['method'], Asset>;
const CARD_MIN = 1n * MICRO;
const CARD_MAX = 10_000n * MICRO;
const CENT = MICRO / 100n;

const CreateDepositBody = z
  .object({ asset: AssetSchema, amount: amountSchema(), method: z.enum(['card', 'usdc', 'grid']) })
  .strict()
  .openapi('CreateDeposit');

const DepositSchema = z
  .object({
    id: z.string(),
    asset: AssetSchema,
    method: z.enum(['card', 'usdc', 'grid']),
    amount: MoneyString,
    credited_amount: MoneyString.nullable(),
    status: z.enum(['pending', 'credited', 'failed']),
    checkout_url: z.string().nullable().openapi({ description: 'card: where the renter pays' }),
    chain: z.string().nullable(),
    address: z.string().nullable().openapi({ description: 'usdc/grid: send the tokens here …' }),
    memo: z.string().nullable().openapi({ description: '… with this memo, which identifies your account' }),
    confirmations_required: z.number().int().nullable(),
    created_at: z.string(),
    credited_at: z.string().nullable(),
  })
  .openapi('Deposit');

function depositAddress(env: AppEnv['Bindings'], asset: Asset): string {
  return asset === 'GRID' ? env.GRID_DEPOSIT_ADDRESS : env.USDC_DEPOSIT_ADDRESS;
}

export function publicDeposit(env: AppEnv['Bindings'], row: DepositRow) {
  const onChain = row.method !== 'card';
  return {
    id: row.id,
    asset: row.asset as Asset,
    method: row.method,
    amount: money(row.amount),
    credited_amount: row.creditedAmount === null ? null : money(row.creditedAmount),
    status: row.status,
    checkout_url: row.checkoutUrl,
    chain: onChain ? env.CHAIN_NAME : null,
    address: onChain ? depositAddress(env, row.asset as Asset) : null,
    memo: onChain ? row.accountId : null,
    confirmations_required: onChain ? Number(env.CHAIN_CONFIRMATIONS) : null,
    created_at: iso(row.createdAt)!,
    credited_at: iso(row.creditedAt),
  };
}

function requestHash(body: z.infer<typeof CreateDepositBody>): Promise<string> {
  return sha256Hex(JSON.stringify([body.asset, body.amount.toString(), body.method]));
}

/** Creates (or, for a retry, finds) the deposit row; a key reused for another request is a 409. */
async function depositFor(c: Context<AppEnv>, body: z.infer<typeof CreateDepositBody>): Promise<{ row: DepositRow; created: boolean }> {
  const db = c.get('db');
  const accountId = c.get('principal').accountId;
  const key = c.get('idempotencyKey');
  const hash = await requestHash(body);
  try {
    const [row] = await db
      .insert(deposits)
      .values({ id: newId('dep'), accountId, idempotencyKey: key, requestHash: hash, asset: body.asset, method: body.method, amount: Number(body.amount) })
      .returning();
    return { row: row!, created: true };
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const [row] = await db.select().from(deposits).where(and(eq(deposits.accountId, accountId), eq(deposits.idempotencyKey, key)));
    if (!row || row.requestHash !== hash) throw idempotencyConflict();
    return { row, created: false };
  }
}

/** Opens the Stripe Checkout Session; Stripe's own idempotency key makes a retry reuse it. */
async function openCheckout(c: Context<AppEnv>, row: DepositRow): Promise<DepositRow> {
  const stripe = stripeClient(c.env);
  if (!stripe) throw new ApiError('service_unavailable', 'card deposits are not configured on this server');
  const base = c.env.APP_URL || new URL(c.req.url).origin;
  let session;
  try {
    session = await stripe.checkout.sessions.create(
      {
        mode: 'payment',
        client_reference_id: row.id,
        metadata: { deposit_id: row.id, account_id: row.accountId },
        line_items: [
          {
            quantity: 1,
            price_data: { currency: 'usd', unit_amount: Number(BigInt(row.amount) / CENT), product_data: { name: 'Gridlease balance top-up' } },
          },
        ],
        success_url: `${base}/deposits/${row.id}?status=success`,
        cancel_url: `${base}/deposits/${row.id}?status=cancelled`,
      },
      { idempotencyKey: `deposit-${row.id}` },
    );
  } catch (err) {
    log('error', 'stripe checkout session failed', { request_id: c.get('requestId'), deposit_id: row.id, error: String(err) });
    throw new ApiError('service_unavailable', 'the card processor is unavailable; retry with the same Idempotency-Key');
  }
  const [updated] = await c
    .get('db')
    .update(deposits)
    .set({ externalRef: session.id, checkoutUrl: session.url })
    .where(eq(deposits.id, row.id))
    .returning();
  return updated!;
}

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/',
    tags: ['money'],
    summary: 'Start a deposit: a card checkout (USD) or a token transfer (USDC, GRID)',
    description:
      'Card: returns a Stripe Checkout URL; the balance is credited when Stripe confirms payment. USDC/GRID: returns the address and memo to send to; the balance is credited once the transfer has enough confirmations.',
    security: BEARER,
    middleware: [...guard('funds:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { body: jsonBodyOf(CreateDepositBody) },
    responses: {
      201: jsonContent(z.object({ deposit: DepositSchema }), 'Deposit started'),
      200: jsonContent(z.object({ deposit: DepositSchema }), 'The same request again: the first deposit'),
      ...errorResponses(400, 401, 403, 409, 503),
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    if (METHOD_ASSET[body.method] !== body.asset) {
      throw new ApiError('validation_failed', `method ${body.method} deposits ${METHOD_ASSET[body.method]}, not ${body.asset}`);
    }
    if (body.method === 'card') {
      if (body.amount % CENT !== 0n) throw new ApiError('validation_failed', 'card deposits are in whole cents');
      if (body.amount < CARD_MIN || body.amount > CARD_MAX) throw new ApiError('validation_failed', 'card deposits are between 1.00 and 10000.00 USD');
    }
    let { row, created } = await depositFor(c, body);
    if (row.method === 'card' && row.checkoutUrl === null) row = await openCheckout(c, row);
    return c.json({ deposit: publicDeposit(c.env, row) }, created ? 201 : 200);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['money'],
    summary: "The caller's deposits, newest first",
    security: BEARER,
    middleware: guard('funds:read'),
    request: { query: PageQuery },
    responses: { 200: jsonContent(z.object({ data: z.array(DepositSchema), next_cursor: z.string().nullable() }), 'Deposits'), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const { page, nextCursor } = await newestFirst(c.get('db'), deposits, eq(deposits.accountId, c.get('principal').accountId), c.req.valid('query'));
    return c.json({ data: page.map((r) => publicDeposit(c.env, r)), next_cursor: nextCursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    tags: ['money'],
    summary: 'One deposit (404 unless it is yours)',
    security: BEARER,
    middleware: guard('funds:read'),
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: { 200: jsonContent(z.object({ deposit: DepositSchema }), 'Deposit'), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const [row] = await c
      .get('db')
      .select()
      .from(deposits)
      .where(and(eq(deposits.id, c.req.valid('param').id), eq(deposits.accountId, c.get('principal').accountId)));
    if (!row) throw new ApiError('not_found', 'no such deposit');
    return c.json({ deposit: publicDeposit(c.env, row) }, 200);
  },
);

export default app;
