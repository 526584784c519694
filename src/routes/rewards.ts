// Supply rewards (docs/rewards.md). Operators: the genesis mint into the rewards pool. Public
// (any origin, no credentials): the schedule and each closed epoch's report. Providers: their
// nodes' rewards per epoch.
import type { Client } from '@libsql/client/web';
import { createRoute, z } from '@hono/zod-openapi';
import { cors } from 'hono/cors';
import { guard } from '../auth/guard.ts';
import { BEARER, errorResponses, jsonContent } from '../contracts/common.ts';
import { MoneyString, money } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import { limitQuery, wholeNumber } from '../db/pagination.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { newId } from '../ids.ts';
import { accountId as ledgerAccountId, platformAccount } from '../ledger/accounts.ts';
import { postOrThrow } from '../ledger/api.ts';
import { mint } from '../ledger/rules.ts';
import type { LedgerTransaction } from '../ledger/store.ts';
import { parseAmount } from '../money/amount.ts';
import { GENESIS_KEY, POOL_ID, REWARD_ASSET } from '../rewards/close.ts';
import { rewardsConfig } from '../rewards/config.ts';
import { rewardsParams } from '../rewards/params.ts';
import { emission, epochBounds, epochOf } from '../rewards/schedule.ts';

const app = router();
const publicCors = cors({ origin: '*', allowMethods: ['GET', 'HEAD', 'OPTIONS'], maxAge: 86_400 });
app.use('/rewards/schedule', publicCors);
app.use('/rewards/epochs/*', publicCors);

const iso = (ms: number) => new Date(ms).toISOString();
const big = (v: unknown): bigint => (v === null || v === undefined ? 0n : BigInt(v as bigint | number | string));

const GENESIS = ledgerAccountId(platformAccount(REWARD_ASSET, 'genesis'));
const SUPPLY_EXCEEDED = '{supply exceeded';

/**
 * The rewards pool's genesis mint: `allocation` GRID micro-units, genesis → rewards_pool, under the
 * fixed ledger key `genesis:rewards` (so once, ever), with an audit row that is inserted only
 * while everything minted stays within `supply` (the batch fails, changing nothing, otherwise).
 * A second call replays the first transaction.
 */
export async function mintGenesis(
  client: Client,
  a: { actor: string; allocation: bigint; supply: bigint; now?: number },
): Promise<{ transaction: LedgerTransaction; replayed: boolean }> {
  const now = a.now ?? Date.now();
  const reason = 'genesis allocation of the rewards pool';
  const guardRow = {
    sql: `INSERT INTO audit_log (id, actor_account_id, action, target, reason, created_at)
          SELECT ?, ?, ?, 'platform:GRID:rewards_pool', ?, ?
          WHERE -(SELECT balance FROM ledger_accounts WHERE id = ?) <= ?`,
    args: [newId('aud'), a.actor, `ledger.mint GRID ${money(a.allocation)} (genesis)`, reason, now, GENESIS, a.supply],
  };
  const check = { sql: `SELECT CASE WHEN changes() = 0 THEN json('${SUPPLY_EXCEEDED}') END`, args: [] };
  return postOrThrow(client, mint({ asset: REWARD_ASSET, amount: a.allocation, idempotencyKey: GENESIS_KEY, reference: null, memo: reason }), {
    now,
    alongside: [guardRow, check],
  }).catch((err: unknown) => {
    if (err instanceof ApiError || !String((err as Error)?.message ?? err).includes('malformed JSON')) throw err;
    throw new ApiError('conflict', `minting ${money(a.allocation)} GRID would exceed the total supply of ${money(a.supply)}`);
  });
}

const GenesisResponse = z
  .object({ transaction_id: z.string(), amount: MoneyString, minted_total: MoneyString, total_supply: MoneyString })
  .openapi('RewardsGenesis');

app.openapi(
  createRoute({
    method: 'post',
    path: '/admin/rewards/genesis',
    tags: ['admin'],
    summary: "Mint the rewards pool's genesis allocation (REWARDS_ALLOCATION_PPM of GRID_TOTAL_SUPPLY), once; audited",
    security: BEARER,
    middleware: guard('funds:write', 'admin'),
    responses: {
      201: jsonContent(GenesisResponse, 'Minted'),
      200: jsonContent(GenesisResponse, 'Already minted: the same transaction'),
      ...errorResponses(401, 403, 409),
    },
  }),
  async (c) => {
    const config = rewardsConfig(c.env);
    const supply = parseAmount(c.env.GRID_TOTAL_SUPPLY ?? '');
    if (!supply.ok) throw new Error('GRID_TOTAL_SUPPLY is not an amount');
    const { money: client } = connection(c.env);
    const { transaction, replayed } = await mintGenesis(client, { actor: c.get('principal').accountId, allocation: config.allocation, supply: supply.value });
    const minted = await client.execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [GENESIS] });
    const amount = transaction.entries.find((e) => e.accountKind === 'rewards_pool')?.amount ?? config.allocation;
    return c.json(
      { transaction_id: transaction.id, amount: money(amount), minted_total: money(-big(minted.rows[0]?.balance)), total_supply: money(supply.value) },
      replayed ? 200 : 201,
    );
  },
);

const ScheduleResponse = z
  .object({
    start: z.string().datetime(),
    epoch_s: z.number().int(),
    initial_per_epoch: MoneyString.openapi({ description: 'E0, GRID' }),
    retention: z.string().openapi({ description: 'The per-epoch retention f as an integer of 10^18 (decimal string)', example: '999985419532049664' }),
    decay_per_year: z.string().nullable().openapi({ description: 'As configured; f above is what the schedule uses' }),
    allocation: MoneyString,
    min_uptime_ppm: z.number().int(),
    lease_bonus_ppm: z.number().int(),
    stake_bonus_ppm: z.number().int(),
    stake_per_gpu: MoneyString,
    taper_floor_ppm: z.number().int(),
    taper_full_util_ppm: z.number().int(),
    owner_cap_ppm: z.number().int(),
    immediate_ppm: z.number().int(),
    vesting_s: z.number().int(),
    close_chunk: z.number().int(),
    current_epoch: z.number().int().nullable().openapi({ description: 'null before the start' }),
    current_epoch_start: z.string().datetime().nullable(),
    current_epoch_end: z.string().datetime().nullable(),
    current_emission: MoneyString.openapi({ description: 'E(current epoch), before the pool balance and inspector pay' }),
    emitted: MoneyString.openapi({ description: 'Σ paid over closed epochs' }),
    closed_epochs: z.number().int(),
    pool_balance: MoneyString,
  })
  .openapi('RewardsSchedule');

app.openapi(
  createRoute({
    method: 'get',
    path: '/rewards/schedule',
    tags: ['rewards'],
    summary: "The emission schedule's parameters, the current epoch and its emission, what has been emitted and what the pool holds",
    responses: { 200: jsonContent(ScheduleResponse, 'The schedule') },
  }),
  async (c) => {
    const config = rewardsConfig(c.env);
    const now = Date.now();
    const current = epochOf(config, now);
    const { money: client } = connection(c.env);
    const [totals, pool] = await client.batch(
      [
        "SELECT COALESCE(SUM(paid), 0) AS paid, COUNT(*) AS n FROM reward_epochs WHERE status = 'closed'",
        { sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [POOL_ID] },
      ],
      'read',
    );
    const bounds = current >= 0 ? epochBounds(config, current) : null;
    c.header('Cache-Control', 'public, max-age=30');
    return c.json(
      {
        ...rewardsParams(config),
        decay_per_year: c.env.REWARDS_DECAY_PER_YEAR ?? null,
        close_chunk: config.closeChunk,
        current_epoch: current >= 0 ? current : null,
        current_epoch_start: bounds ? iso(bounds.startMs) : null,
        current_epoch_end: bounds ? iso(bounds.endMs) : null,
        current_emission: money(current >= 0 ? emission(config, current) : 0n),
        emitted: money(big(totals!.rows[0]?.paid)),
        closed_epochs: Number(totals!.rows[0]?.n ?? 0),
        pool_balance: money(big(pool!.rows[0]?.balance)),
      },
      200,
    );
  },
);

const EpochLine = z
  .object({
    node_id: z.string(),
    owner_id: z.string(),
    gpu_model: z.string().nullable(),
    gpus_offered: z.number().int(),
    confirmed_s: z.number().int(),
    leased_gpu_s: z.number().int(),
    verified: z.boolean(),
    stake: MoneyString,
    eligible: z.boolean(),
    weight: z.string().openapi({ description: 'Integer (ppm of one H100-80GB for the whole epoch)' }),
    amount: MoneyString,
    immediate: MoneyString,
    vesting: MoneyString,
  })
  .openapi('RewardEpochLine');

const EpochReport = z
  .object({
    epoch: z.number().int(),
    start: z.string().datetime(),
    end: z.string().datetime(),
    emission: MoneyString,
    inspector_pay: MoneyString,
    taper_ppm: z.number().int(),
    utilisation_ppm: z.number().int(),
    providers_emission: MoneyString,
    paid: MoneyString,
    returned: MoneyString,
    line_count: z.number().int(),
    inputs_hash: z.string().openapi({ description: 'SHA-256 (hex) of the canonical JSON array of every line’s inputs (node_id, owner_id, gpu_model, gpus_offered, confirmed_s, leased_gpu_s, verified, stake as micro-units text), by node id' }),
    closed_at: z.string().datetime(),
    scheduled_emission: MoneyString.nullable().openapi({ description: 'E(n) of the schedule; the emission is the smaller of it and pool_balance (null for epochs closed before these were kept)' }),
    pool_balance: MoneyString.nullable().openapi({ description: "The rewards pool's balance when the split was computed" }),
    parameters: z.record(z.string(), z.unknown()).nullable().openapi({ description: 'The rules’ parameters this epoch was split under (the schedule’s parameter fields)' }),
    lines: z.array(EpochLine),
    next_cursor: z.string().nullable().openapi({ description: 'Pass as ?cursor= for the next page of lines (by node id)' }),
  })
  .openapi('RewardEpochReport');

app.openapi(
  createRoute({
    method: 'get',
    path: '/rewards/epochs/{n}',
    tags: ['rewards'],
    summary: "A closed epoch's report: totals, the inputs hash and every node's inputs, weight and amount (lines by node id, paged)",
    request: {
      params: z.object({ n: wholeNumber(1_000_000_000) }),
      query: z.object({ limit: limitQuery(1000, 500), cursor: z.string().min(1).max(64).optional() }).strict(),
    },
    responses: { 200: jsonContent(EpochReport, 'The report'), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { n } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const config = rewardsConfig(c.env);
    const { money: client } = connection(c.env);
    const [epochRs, linesRs] = await client.batch(
      [
        { sql: "SELECT * FROM reward_epochs WHERE epoch = ? AND status = 'closed'", args: [n] },
        // A line whose inputs arrived after the split (late heartbeats) has none of its numbers: not part of the epoch.
        { sql: 'SELECT * FROM reward_lines WHERE epoch = ? AND node_id > ? AND eligible IS NOT NULL ORDER BY node_id LIMIT ?', args: [n, cursor ?? '', limit + 1] },
      ],
      'read',
    );
    const e = epochRs!.rows[0];
    if (!e) throw new ApiError('not_found', `epoch ${n} is not closed`);
    const rows = linesRs!.rows.slice(0, limit);
    const bounds = epochBounds(config, n);
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(
      {
        epoch: n,
        start: iso(bounds.startMs),
        end: iso(bounds.endMs),
        emission: money(big(e.emission)),
        inspector_pay: money(big(e.inspector_pay)),
        taper_ppm: Number(e.taper_ppm),
        utilisation_ppm: Number(e.utilisation_ppm),
        providers_emission: money(big(e.providers_emission)),
        paid: money(big(e.paid)),
        returned: money(big(e.returned)),
        line_count: Number(e.lines),
        inputs_hash: String(e.inputs_hash),
        closed_at: iso(Number(e.closed_at)),
        scheduled_emission: e.scheduled_emission === null ? null : money(big(e.scheduled_emission)),
        pool_balance: e.pool_balance === null ? null : money(big(e.pool_balance)),
        parameters: e.params === null ? null : (JSON.parse(String(e.params)) as Record<string, unknown>),
        lines: rows.map((r) => ({
          node_id: String(r.node_id),
          owner_id: String(r.owner_id),
          gpu_model: r.gpu_model === null ? null : String(r.gpu_model),
          gpus_offered: Number(r.gpus_offered),
          confirmed_s: Number(r.confirmed_s),
          leased_gpu_s: Number(r.leased_gpu_s),
          verified: Number(r.verified) === 1,
          stake: money(big(r.stake)),
          eligible: Number(r.eligible) === 1,
          weight: big(r.weight).toString(),
          amount: money(big(r.amount)),
          immediate: money(big(r.immediate)),
          vesting: money(big(r.vesting)),
        })),
        next_cursor: linesRs!.rows.length > limit ? String(rows[rows.length - 1]!.node_id) : null,
      },
      200,
    );
  },
);

const ProviderLine = z
  .object({
    epoch: z.number().int(),
    node_id: z.string(),
    gpu_model: z.string().nullable(),
    eligible: z.boolean(),
    status: z.enum(['paying', 'closed']),
    amount: MoneyString,
    immediate: MoneyString,
    vesting: MoneyString,
    released: MoneyString,
    forfeited: MoneyString,
    paid_at: z.string().datetime().nullable(),
  })
  .openapi('ProviderRewardLine');

const Totals = z.object({
  rewards: MoneyString.openapi({ description: 'GRID: Σ amount over paid lines' }),
  immediate: MoneyString,
  vesting: MoneyString,
  released: MoneyString,
  forfeited: MoneyString,
  locked: MoneyString.openapi({ description: 'Still vesting: vesting − released − forfeited' }),
});

app.openapi(
  createRoute({
    method: 'get',
    path: '/rewards',
    tags: ['rewards'],
    summary: "The caller's supply rewards: its nodes' lines of decided epochs (newest first, paged by epoch) and totals, and rentals earned",
    security: BEARER,
    middleware: guard('funds:read'),
    request: {
      query: z
        .object({
          limit: limitQuery(500, 100),
          before_epoch: wholeNumber(1_000_000_000).optional().openapi({ description: 'Start with the epochs before this one' }),
          cursor: z
            .string()
            .regex(/^[0-9]{1,10}:[A-Za-z0-9_-]{1,64}$/, 'a next_cursor from an earlier page')
            .optional()
            .openapi({ description: "The previous page's next_cursor" }),
        })
        .strict(),
    },
    responses: {
      200: jsonContent(
        z
          .object({
            data: z.array(ProviderLine),
            next_cursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for the next page; null on the last' }),
            totals: Totals,
            rentals: z.array(z.object({ asset: z.string(), earned: MoneyString })).openapi({ description: 'Σ what lease captures credited to the caller, per asset' }),
          })
          .openapi('ProviderRewards'),
        'Rewards',
      ),
      ...errorResponses(400, 401, 403),
    },
  }),
  async (c) => {
    const owner = c.get('principal').accountId;
    const { limit, before_epoch: before, cursor } = c.req.valid('query');
    // Newest epoch first, node ids ascending within one: the cursor is the last line's (epoch, node).
    const [afterEpoch, afterNode] = cursor ? [Number(cursor.slice(0, cursor.indexOf(':'))), cursor.slice(cursor.indexOf(':') + 1)] : [null, null];
    const { money: client } = connection(c.env);
    const [linesRs, totalsRs, rentalsRs] = await client.batch(
      [
        {
          sql: `SELECT l.*, e.status FROM reward_lines l JOIN reward_epochs e ON e.epoch = l.epoch
                WHERE l.owner_id = ? AND l.epoch < ? AND (? IS NULL OR l.epoch < ? OR (l.epoch = ? AND l.node_id > ?))
                  AND e.status IN ('paying', 'closed') AND l.eligible IS NOT NULL
                ORDER BY l.epoch DESC, l.node_id LIMIT ?`,
          args: [owner, before ?? Number.MAX_SAFE_INTEGER, afterEpoch, afterEpoch, afterEpoch, afterNode, limit + 1],
        },
        {
          sql: `SELECT COALESCE(SUM(amount), 0) AS amount, COALESCE(SUM(immediate), 0) AS immediate, COALESCE(SUM(vesting), 0) AS vesting,
                  COALESCE(SUM(released), 0) AS released, COALESCE(SUM(forfeited), 0) AS forfeited
                FROM reward_lines WHERE owner_id = ? AND paid_at IS NOT NULL`,
          args: [owner],
        },
        {
          sql: `SELECT e.asset, SUM(e.amount) AS earned FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
                WHERE e.owner_id = ? AND e.account_kind = 'available' AND t.kind = 'capture' AND e.amount > 0 GROUP BY e.asset ORDER BY e.asset`,
          args: [owner],
        },
      ],
      'read',
    );
    const more = linesRs!.rows.length > limit;
    const rows = linesRs!.rows.slice(0, limit);
    const last = rows[rows.length - 1];
    const next = more && last ? `${Number(last.epoch)}:${String(last.node_id)}` : null;
    const t = totalsRs!.rows[0]!;
    return c.json(
      {
        data: rows.map((r) => ({
          epoch: Number(r.epoch),
          node_id: String(r.node_id),
          gpu_model: r.gpu_model === null ? null : String(r.gpu_model),
          eligible: Number(r.eligible) === 1,
          status: r.status as 'paying' | 'closed',
          amount: money(big(r.amount)),
          immediate: money(big(r.immediate)),
          vesting: money(big(r.vesting)),
          released: money(big(r.released)),
          forfeited: money(big(r.forfeited)),
          paid_at: r.paid_at === null ? null : iso(Number(r.paid_at)),
        })),
        next_cursor: next,
        totals: {
          rewards: money(big(t.amount)),
          immediate: money(big(t.immediate)),
          vesting: money(big(t.vesting)),
          released: money(big(t.released)),
          forfeited: money(big(t.forfeited)),
          locked: money(big(t.vesting) - big(t.released) - big(t.forfeited)),
        },
        rentals: rentalsRs!.rows.map((r) => ({ asset: String(r.asset), earned: money(big(r.earned)) })),
      },
      200,
    );
  },
);

export default app;
