// A provider's stake per node (docs/rewards.md, "Stake"): POST /v1/nodes/{id}/stake and
// /unstake, GET /v1/nodes/{id}/stake. Only the node's owner sees or moves its stake; another
// account's node answers 404, as the node routes do.
import { createRoute, z } from '@hono/zod-openapi';
import { and, asc, eq } from 'drizzle-orm';
import { sha256Hex } from '../auth/encoding.ts';
import { guard } from '../auth/guard.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { MoneyString, amountSchema, iso, money } from '../contracts/money.ts';
import { connection, type Database } from '../db/client.ts';
import { nodeStakes, nodes } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { idempotencyConflict, requireIdempotencyKey } from '../http/idempotency.ts';
import { router } from '../http/router.ts';
import { derivedId } from '../ids.ts';
import { postOrThrow } from '../ledger/api.ts';
import { stake } from '../ledger/rules.ts';
import { rewardsConfig } from '../rewards/config.ts';
import { STAKE_ASSET, nodeStakeState, stakeConfig, unstakeStatement } from '../rewards/stakes.ts';

type MovementRow = typeof nodeStakes.$inferSelect;

const Params = z.object({ id: z.string().max(64) });
const AmountBody = z.object({ amount: amountSchema() }).strict().openapi('StakeAmount');

const MovementSchema = z
  .object({
    id: z.string(),
    node_id: z.string(),
    kind: z.enum(['stake', 'unstake']),
    amount: MoneyString,
    status: z.enum(['staked', 'pending', 'released', 'slashed']),
    release_at: z.string().nullable(),
    released_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('StakeMovement');

const StakeStateSchema = z
  .object({
    node_id: z.string(),
    asset: z.literal('GRID'),
    active: MoneyString.openapi({ description: 'What counts for the reward weight and may still be unstaked' }),
    unstaking: MoneyString.openapi({ description: 'Pending unstakes: no longer counted for the weight, still slashable' }),
    stake_per_gpu: MoneyString.openapi({ description: 'REWARDS_STAKE_PER_GPU: stake beyond this per GPU offered adds no weight' }),
    unstake_cooldown_s: z.number().int(),
    unstakes: z.array(MovementSchema),
  })
  .openapi('NodeStake');

function publicMovement(row: MovementRow) {
  return {
    id: row.id,
    node_id: row.nodeId,
    kind: row.kind,
    amount: money(row.amount),
    status: row.status,
    release_at: iso(row.releaseAt),
    released_at: iso(row.releasedAt),
    created_at: iso(row.createdAt)!,
  };
}

async function ownNode(db: Database, nodeId: string, accountId: string): Promise<{ status: string }> {
  const [row] = await db.select({ status: nodes.status }).from(nodes).where(and(eq(nodes.id, nodeId), eq(nodes.accountId, accountId)));
  if (!row) throw new ApiError('not_found', 'no such node');
  return row;
}

async function movementByKey(db: Database, accountId: string, kind: 'stake' | 'unstake', key: string) {
  const [row] = await db
    .select()
    .from(nodeStakes)
    .where(and(eq(nodeStakes.accountId, accountId), eq(nodeStakes.kind, kind), eq(nodeStakes.idempotencyKey, key)));
  return row;
}

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/stake',
    tags: ['nodes'],
    summary: "Stake GRID for one of your nodes: available → staked; it raises the node's reward weight up to REWARDS_STAKE_PER_GPU per GPU",
    security: BEARER,
    middleware: [...guard('funds:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { params: Params, body: jsonBodyOf(AmountBody) },
    responses: {
      201: jsonContent(z.object({ stake: MovementSchema }), 'Staked'),
      200: jsonContent(z.object({ stake: MovementSchema }), 'The same request again: the first stake'),
      ...errorResponses(400, 401, 402, 403, 404, 409),
    },
  }),
  async (c) => {
    const { id: nodeId } = c.req.valid('param');
    const { amount } = c.req.valid('json');
    const accountId = c.get('principal').accountId;
    const key = c.get('idempotencyKey');
    const node = await ownNode(c.get('db'), nodeId, accountId);
    // A revoked node earns nothing again; its stake can still be unstaked. A retry of a stake made
    // before the revocation still answers with that stake.
    if (node.status === 'revoked' && !(await movementByKey(c.get('db'), accountId, 'stake', key))) {
      throw new ApiError('conflict', 'the node is revoked: it can no longer be staked');
    }
    const id = await derivedId('nsk', accountId, 'stake', key);
    const ledgerKey = `stake:${accountId}:${await sha256Hex(key)}`;
    const requestHash = await sha256Hex(JSON.stringify(['stake', nodeId, amount.toString()]));
    const now = Date.now();
    const { replayed } = await postOrThrow(
      connection(c.env).money,
      stake({ owner: accountId, asset: STAKE_ASSET, amount, idempotencyKey: ledgerKey, reference: nodeId, memo: `stake for node ${nodeId}` }),
      {
        now,
        alongside: [
          {
            sql: `INSERT INTO node_stakes (id, node_id, account_id, kind, idempotency_key, request_hash, amount, status, transaction_id, created_at)
                  VALUES (?, ?, ?, 'stake', ?, ?, ?, 'staked', (SELECT id FROM ledger_transactions WHERE idempotency_key = ?), ?)`,
            args: [id, nodeId, accountId, key, requestHash, amount, ledgerKey, now],
          },
        ],
      },
    );
    const row = await movementByKey(c.get('db'), accountId, 'stake', key);
    if (!row) throw new Error('stake row missing after its ledger transaction');
    if (row.requestHash !== requestHash) throw idempotencyConflict();
    return c.json({ stake: publicMovement(row) }, replayed ? 200 : 201);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/unstake',
    tags: ['nodes'],
    summary: 'Start unstaking: the amount stops counting for the weight at once and returns to available after REWARDS_UNSTAKE_COOLDOWN_S, slashable until then',
    security: BEARER,
    middleware: [...guard('funds:write'), requireIdempotencyKey(), requireActiveAccount()],
    request: { params: Params, body: jsonBodyOf(AmountBody) },
    responses: {
      201: jsonContent(z.object({ unstake: MovementSchema }), 'Unstaking started'),
      200: jsonContent(z.object({ unstake: MovementSchema }), 'The same request again: the first unstake'),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  }),
  async (c) => {
    const { id: nodeId } = c.req.valid('param');
    const { amount } = c.req.valid('json');
    const accountId = c.get('principal').accountId;
    const key = c.get('idempotencyKey');
    await ownNode(c.get('db'), nodeId, accountId);
    const requestHash = await sha256Hex(JSON.stringify(['unstake', nodeId, amount.toString()]));
    const request = {
      id: await derivedId('nus', accountId, 'unstake', key),
      nodeId,
      owner: accountId,
      idempotencyKey: key,
      requestHash,
      amount,
      now: Date.now(),
      cooldownMs: stakeConfig(c.env).cooldownMs,
    };
    const inserted = await connection(c.env).money.execute(unstakeStatement(request));
    const row = await movementByKey(c.get('db'), accountId, 'unstake', key);
    if (!row) throw new ApiError('conflict', "amount is more than the node's active stake");
    if (row.requestHash !== requestHash) throw idempotencyConflict();
    return c.json({ unstake: publicMovement(row) }, inserted.rowsAffected > 0 ? 201 : 200);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/stake',
    tags: ['nodes'],
    summary: "One of your nodes' stake: active, unstaking (with release times), the per-GPU cap and the cool-down",
    security: BEARER,
    middleware: guard('funds:read'),
    request: { params: Params },
    responses: { 200: jsonContent(StakeStateSchema, 'Node stake'), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const { id: nodeId } = c.req.valid('param');
    const accountId = c.get('principal').accountId;
    const db = c.get('db');
    await ownNode(db, nodeId, accountId);
    const state = await nodeStakeState(connection(c.env).money, nodeId);
    const pending = await db
      .select()
      .from(nodeStakes)
      .where(and(eq(nodeStakes.nodeId, nodeId), eq(nodeStakes.kind, 'unstake'), eq(nodeStakes.status, 'pending')))
      .orderBy(asc(nodeStakes.releaseAt));
    return c.json(
      {
        node_id: nodeId,
        asset: 'GRID' as const,
        active: money(state.active),
        unstaking: money(state.pending),
        stake_per_gpu: money(rewardsConfig(c.env).stakePerGpu),
        unstake_cooldown_s: Math.round(stakeConfig(c.env).cooldownMs / 1000),
        unstakes: pending.map(publicMovement),
      },
      200,
    );
  },
);

export default app;
