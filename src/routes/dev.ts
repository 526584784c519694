import { createRoute, z } from '@hono/zod-openapi';
import { guard } from '../auth/guard.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { AssetSchema, MoneyString, amountSchema, money } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import { ApiError } from '../http/errors.ts';
import { requireIdempotencyKey } from '../http/idempotency.ts';
import { router } from '../http/router.ts';
import { postOrThrow } from '../ledger/api.ts';
import { credit } from '../ledger/rules.ts';
import { balancesOf } from '../ledger/store.ts';
import { MICRO } from '../money/amount.ts';

/** Test money for local development. Mounted only when ENVIRONMENT=development. */
const FAUCET_MAX = 1_000_000n * MICRO;

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/faucet',
    tags: ['development'],
    summary: 'Credit test money (development only; 404 elsewhere)',
    security: BEARER,
    middleware: [...guard('funds:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { body: jsonBodyOf(z.object({ asset: AssetSchema, amount: amountSchema() }).strict().openapi('FaucetRequest')) },
    responses: {
      201: jsonContent(z.object({ transaction_id: z.string(), asset: AssetSchema, available: MoneyString, held: MoneyString }), 'Credited'),
      ...errorResponses(400, 401, 403, 409),
    },
  }),
  async (c) => {
    const { asset, amount } = c.req.valid('json');
    if (amount > FAUCET_MAX) throw new ApiError('validation_failed', 'the faucet gives at most 1000000 per request');
    const owner = c.get('principal').accountId;
    const client = connection(c.env).money;
    const { transaction } = await postOrThrow(
      client,
      credit({ owner, asset, amount, source: 'faucet', idempotencyKey: `faucet:${owner}:${c.get('idempotencyKey')}`, reference: null }),
    );
    const [balance] = await balancesOf(client, owner, [asset]);
    return c.json({ transaction_id: transaction.id, asset, available: money(balance!.available), held: money(balance!.held) }, 201);
  },
);

export default app;
