import { createRoute, z } from '@hono/zod-openapi';
import { guard } from '../auth/guard.ts';
import { AssetSchema, MoneyString, iso, money } from '../contracts/money.ts';
import { BEARER, errorResponses, jsonContent } from '../contracts/common.ts';
import { connection } from '../db/client.ts';
import { limitQuery, RowIdCursor } from '../db/pagination.ts';
import { router } from '../http/router.ts';
import { USER_KINDS } from '../ledger/accounts.ts';
import { balancesOf } from '../ledger/store.ts';
import { ASSETS } from '../money/assets.ts';

const app = router();

const BalanceSchema = z.object({ asset: AssetSchema, available: MoneyString, held: MoneyString }).openapi('Balance');

app.openapi(
  createRoute({
    method: 'get',
    path: '/balances',
    tags: ['money'],
    summary: 'Available and held (escrow) balance per asset',
    security: BEARER,
    middleware: guard('funds:read'),
    responses: { 200: jsonContent(z.object({ data: z.array(BalanceSchema) }), 'Balances'), ...errorResponses(401, 403) },
  }),
  async (c) => {
    const balances = await balancesOf(connection(c.env).money, c.get('principal').accountId, ASSETS);
    return c.json({ data: balances.map((b) => ({ asset: b.asset, available: money(b.available), held: money(b.held) })) }, 200);
  },
);

const EntrySchema = z
  .object({
    id: z.string(),
    transaction_id: z.string(),
    kind: z.string().openapi({ description: 'deposit, hold, release, capture, withdrawal, …' }),
    reference: z.string().nullable(),
    asset: AssetSchema,
    account: z.enum(USER_KINDS).openapi({ description: 'bonded: GRID bonded as an inspector; vesting: supply rewards not yet released; staked: GRID staked for nodes' }),
    amount: MoneyString.openapi({ description: 'Signed: negative leaves the account' }),
    balance_after: MoneyString,
    created_at: z.string(),
  })
  .openapi('LedgerEntry');

app.openapi(
  createRoute({
    method: 'get',
    path: '/ledger/entries',
    tags: ['money'],
    summary: "The caller's ledger entries, newest first",
    security: BEARER,
    middleware: guard('funds:read'),
    request: {
      query: z
        .object({
          asset: AssetSchema.optional(),
          reference: z
            .string()
            .regex(/^[A-Za-z0-9_:.-]{1,200}$/, 'reference must be an order, lease, deposit or withdrawal id, or a chain transfer')
            .optional()
            .openapi({ description: 'Only the entries of transactions about this order, lease, deposit or withdrawal (or a chain transfer, `<chain>:<tx hash>:<log index>`)' }),
          limit: limitQuery(200, 50),
          cursor: RowIdCursor.optional(),
        })
        .strict(),
    },
    responses: {
      200: jsonContent(z.object({ data: z.array(EntrySchema), next_cursor: z.string().nullable() }), 'Entries'),
      ...errorResponses(400, 401, 403),
    },
  }),
  async (c) => {
    const { asset, reference, limit, cursor } = c.req.valid('query');
    const args: (string | bigint | number)[] = [c.get('principal').accountId];
    let where = 'e.owner_id = ?';
    if (asset) {
      where += ' AND e.asset = ?';
      args.push(asset);
    }
    if (reference) {
      where += ' AND t.reference = ?';
      args.push(reference);
    }
    if (cursor) {
      where += ' AND e.id < ?';
      args.push(BigInt(cursor));
    }
    // With a reference, its few transactions lead (their index), rather than every entry the
    // caller has: CROSS JOIN keeps SQLite from choosing the other order.
    const from = reference
      ? 'ledger_transactions t CROSS JOIN ledger_entries e ON e.transaction_id = t.id'
      : 'ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id';
    args.push(limit + 1);
    const rs = await connection(c.env).money.execute({
      sql: `SELECT e.id, e.transaction_id, t.kind, t.reference, e.asset, e.account_kind, e.amount, e.balance_after, e.created_at
            FROM ${from} WHERE ${where} ORDER BY e.id DESC LIMIT ?`,
      args,
    });
    const rows = rs.rows.slice(0, limit);
    const data = rows.map((r) => {
      const account = USER_KINDS.find((k) => k === r.account_kind);
      // An entry of the caller's is always on one of the user's own kinds of account.
      if (!account) throw new Error(`ledger entry ${String(r.id)} is on a ${String(r.account_kind)} account of a user`);
      return {
        id: String(r.id),
        transaction_id: String(r.transaction_id),
        kind: String(r.kind),
        reference: r.reference === null ? null : String(r.reference),
        asset: r.asset as (typeof ASSETS)[number],
        account,
        amount: money(r.amount as bigint),
        balance_after: money(r.balance_after as bigint),
        created_at: iso(Number(r.created_at))!,
      };
    });
    return c.json({ data, next_cursor: rs.rows.length > limit ? data.at(-1)!.id : null }, 200);
  },
);

export default app;
