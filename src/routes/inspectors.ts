import { createRoute, z } from '@hono/zod-openapi';
import { and, asc, eq } from 'drizzle-orm';
import { sha256Hex } from '../auth/encoding.ts';
import { guard } from '../auth/guard.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { MoneyString, amountSchema, iso, money } from '../contracts/money.ts';
import { connection, type Database } from '../db/client.ts';
import { inspectorBonds } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { idempotencyConflict, requireIdempotencyKey } from '../http/idempotency.ts';
import { router } from '../http/router.ts';
import { derivedId } from '../ids.ts';
import { BOND_ASSET, bondConfig, bondedAccountId, roleStatement, standing, unbondStatement } from '../inspections/bonds.ts';
import { postOrThrow } from '../ledger/api.ts';
import { bond } from '../ledger/rules.ts';

type MovementRow = typeof inspectorBonds.$inferSelect;

const AmountBody = z.object({ amount: amountSchema() }).strict().openapi('BondAmount');

const MovementSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['bond', 'unbond']),
    amount: MoneyString,
    status: z.enum(['bonded', 'pending', 'released']),
    release_at: z.string().nullable(),
    released_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('BondMovement');

const StandingSchema = z
  .object({
    asset: z.literal('GRID'),
    bonded: MoneyString.openapi({ description: 'Everything bonded, pending unbondings included (all of it slashable)' }),
    unbonding: MoneyString.openapi({ description: 'Pending unbondings: still bonded, no longer counted for the role' }),
    active: MoneyString.openapi({ description: 'bonded − unbonding: what counts for the role and may still be unbonded' }),
    min_bond: MoneyString,
    inspector: z.boolean(),
    unbond_cooldown_s: z.number().int(),
    unbondings: z.array(MovementSchema),
  })
  .openapi('InspectorStanding');

function publicMovement(row: MovementRow) {
  return {
    id: row.id,
    kind: row.kind,
    amount: money(row.amount),
    status: row.status,
    release_at: iso(row.releaseAt),
    released_at: iso(row.releasedAt),
    created_at: iso(row.createdAt)!,
  };
}

async function movementByKey(db: Database, accountId: string, kind: 'bond' | 'unbond', key: string) {
  const [row] = await db
    .select()
    .from(inspectorBonds)
    .where(and(eq(inspectorBonds.accountId, accountId), eq(inspectorBonds.kind, kind), eq(inspectorBonds.idempotencyKey, key)));
  return row;
}

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/bond',
    tags: ['inspections'],
    summary: 'Bond GRID: available → bonded; at INSPECTOR_MIN_BOND the account holds the inspector role',
    security: BEARER,
    middleware: [...guard('funds:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { body: jsonBodyOf(AmountBody) },
    responses: {
      201: jsonContent(z.object({ bond: MovementSchema }), 'Bonded'),
      200: jsonContent(z.object({ bond: MovementSchema }), 'The same request again: the first bond'),
      ...errorResponses(400, 401, 402, 403, 409),
    },
  }),
  async (c) => {
    const { amount } = c.req.valid('json');
    const accountId = c.get('principal').accountId;
    const key = c.get('idempotencyKey');
    const config = bondConfig(c.env);
    const id = await derivedId('bnd', accountId, key);
    const ledgerKey = `bond:${accountId}:${await sha256Hex(key)}`;
    const requestHash = await sha256Hex(JSON.stringify(['bond', amount.toString()]));
    const now = Date.now();
    const { replayed } = await postOrThrow(
      connection(c.env).money,
      bond({ owner: accountId, asset: BOND_ASSET, amount, idempotencyKey: ledgerKey, reference: id }),
      {
        now,
        alongside: [
          {
            sql: `INSERT INTO inspector_bonds (id, account_id, kind, idempotency_key, request_hash, amount, status, transaction_id, created_at)
                  VALUES (?, ?, 'bond', ?, ?, ?, 'bonded', (SELECT id FROM ledger_transactions WHERE idempotency_key = ?), ?)`,
            args: [id, accountId, key, requestHash, amount, ledgerKey, now],
          },
          roleStatement(accountId, config.minBond),
        ],
      },
    );
    const row = await movementByKey(c.get('db'), accountId, 'bond', key);
    if (!row) throw new Error('bond row missing after its ledger transaction');
    if (row.requestHash !== requestHash) throw idempotencyConflict();
    return c.json({ bond: publicMovement(row) }, replayed ? 200 : 201);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/unbond',
    tags: ['inspections'],
    summary: 'Start unbonding: the amount stops counting for the role at once and returns to available after INSPECTOR_UNBOND_COOLDOWN_S',
    security: BEARER,
    middleware: [...guard('funds:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { body: jsonBodyOf(AmountBody) },
    responses: {
      201: jsonContent(z.object({ unbonding: MovementSchema }), 'Unbonding started'),
      200: jsonContent(z.object({ unbonding: MovementSchema }), 'The same request again: the first unbonding'),
      ...errorResponses(400, 401, 403, 409),
    },
  }),
  async (c) => {
    const { amount } = c.req.valid('json');
    const accountId = c.get('principal').accountId;
    const key = c.get('idempotencyKey');
    const config = bondConfig(c.env);
    const requestHash = await sha256Hex(JSON.stringify(['unbond', amount.toString()]));
    const request = { id: await derivedId('ubd', accountId, key), owner: accountId, idempotencyKey: key, requestHash, amount, now: Date.now(), cooldownMs: config.cooldownMs };
    const [inserted] = await connection(c.env).money.batch([unbondStatement(request), roleStatement(accountId, config.minBond)], 'write');
    const row = await movementByKey(c.get('db'), accountId, 'unbond', key);
    if (!row) throw new ApiError('conflict', 'amount is more than the bond that is not already unbonding');
    if (row.requestHash !== requestHash) throw idempotencyConflict();
    return c.json({ unbonding: publicMovement(row) }, inserted!.rowsAffected > 0 ? 201 : 200);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/me',
    tags: ['inspections'],
    summary: "The caller's bond: bonded, unbonding (with release times), whether it holds the inspector role, the minimum",
    security: BEARER,
    middleware: guard('funds:read'),
    responses: { 200: jsonContent(StandingSchema, 'Bond standing'), ...errorResponses(401, 403) },
  }),
  async (c) => {
    const accountId = c.get('principal').accountId;
    const config = bondConfig(c.env);
    const rs = await connection(c.env).money.execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [bondedAccountId(accountId)] });
    const bonded = BigInt((rs.rows[0]?.balance as bigint | undefined) ?? 0n);
    const pending = await c
      .get('db')
      .select()
      .from(inspectorBonds)
      .where(and(eq(inspectorBonds.accountId, accountId), eq(inspectorBonds.status, 'pending')))
      .orderBy(asc(inspectorBonds.releaseAt));
    const s = standing(bonded, pending.reduce((sum, r) => sum + BigInt(r.amount), 0n), config.minBond);
    return c.json(
      {
        asset: 'GRID' as const,
        bonded: money(s.bonded),
        unbonding: money(s.unbonding),
        active: money(s.active),
        min_bond: money(config.minBond),
        inspector: s.inspector,
        unbond_cooldown_s: Math.round(config.cooldownMs / 1000),
        unbondings: pending.map(publicMovement),
      },
      200,
    );
  },
);

export default app;
