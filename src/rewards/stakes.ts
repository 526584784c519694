// Provider stake per node (docs/rewards.md, "Stake"): GRID bonded for a node's GPUs raises its
// reward weight up to REWARDS_STAKE_PER_GPU per GPU, and is slashed into the rewards pool when a
// capacity inspection proves deception. Unstaking waits REWARDS_UNSTAKE_COOLDOWN_S, still
// slashable; the cron step here releases matured unstakes, one idempotent ledger transaction each.
//
// The rows (node_stakes, src/db/schema.ts) make a node's active stake
//
//   active = Σ amount of its `stake` rows − Σ amount of its `unstake` rows, whatever their status
//
// (pending and released unstakes, pending unstakes taken whole by a slash, and the slash's own
// `unstake` row of status `slashed`), and its slashable stake active + Σ pending unstakes.
import type { Client, InStatement } from '@libsql/client/web';
import { sha256Hex } from '../auth/encoding.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import { derivedId } from '../ids.ts';
import { accountId, userAccount } from '../ledger/accounts.ts';
import { stakeSlash, unstake } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import type { Asset } from '../money/assets.ts';
import { forfeitUnvested } from './close.ts';
import { rewardsConfig } from './config.ts';

export const STAKE_ASSET: Asset = 'GRID';
const PPM = 1_000_000n;
const DEFAULT_COOLDOWN_S = 14 * 86_400;
const RELEASE_PER_RUN = 200;

export interface StakeVars {
  REWARDS_UNSTAKE_COOLDOWN_S?: string;
  REWARDS_STAKE_SLASH_PPM?: string;
}

export interface StakeConfig {
  cooldownMs: number;
  /** Of a node's slashable stake, the part a failed capacity inspection takes (ppm). */
  slashPpm: bigint;
}

/** Unset or invalid values fall back to the defaults (14 days; the whole stake). */
export function stakeConfig(env: StakeVars): StakeConfig {
  const cooldown = Number(env.REWARDS_UNSTAKE_COOLDOWN_S);
  const ppm = Number(env.REWARDS_STAKE_SLASH_PPM);
  return {
    cooldownMs: (env.REWARDS_UNSTAKE_COOLDOWN_S && Number.isInteger(cooldown) && cooldown >= 0 ? cooldown : DEFAULT_COOLDOWN_S) * 1000,
    slashPpm: env.REWARDS_STAKE_SLASH_PPM && Number.isInteger(ppm) && ppm >= 0 && ppm <= 1_000_000 ? BigInt(ppm) : PPM,
  };
}

export function stakedAccountId(owner: string): string {
  return accountId(userAccount(owner, STAKE_ASSET, 'staked'));
}

/** The SQL value of a node's active stake; its one argument is the node id. */
export const ACTIVE_STAKE = `(SELECT COALESCE(SUM(CASE WHEN kind = 'stake' THEN amount ELSE -amount END), 0) FROM node_stakes WHERE node_id = ?)`;
/** The SQL value of a node's pending unstakes; its one argument is the node id. */
export const PENDING_UNSTAKES = `(SELECT COALESCE(SUM(amount), 0) FROM node_stakes WHERE node_id = ? AND kind = 'unstake' AND status = 'pending')`;

export interface UnstakeRequest {
  id: string;
  nodeId: string;
  owner: string;
  idempotencyKey: string;
  requestHash: string;
  amount: bigint;
  now: number;
  cooldownMs: number;
}

/**
 * Records an unstake only if the node's active stake covers it; a repeated key inserts nothing.
 * No money moves yet: it stays staked, and slashable, until `release_at`.
 */
export function unstakeStatement(r: UnstakeRequest): InStatement {
  return {
    sql: `INSERT INTO node_stakes (id, node_id, account_id, kind, idempotency_key, request_hash, amount, status, release_at, created_at)
          SELECT ?, ?, ?, 'unstake', ?, ?, ?, 'pending', ?, ? WHERE ${ACTIVE_STAKE} >= ?
          ON CONFLICT (account_id, kind, idempotency_key) DO NOTHING`,
    args: [r.id, r.nodeId, r.owner, r.idempotencyKey, r.requestHash, r.amount, r.now + r.cooldownMs, r.now, r.nodeId, r.amount],
  };
}

export interface NodeStakeState {
  active: bigint;
  pending: bigint;
}

export async function nodeStakeState(money: Client, nodeId: string): Promise<NodeStakeState> {
  const rs = await money.execute({ sql: `SELECT ${ACTIVE_STAKE} AS active, ${PENDING_UNSTAKES} AS pending`, args: [nodeId, nodeId] });
  const r = rs.rows[0]!;
  return { active: BigInt(r.active as bigint), pending: BigInt(r.pending as bigint) };
}

/** Fails a batch in which the value checked is not the one expected: json() of a malformed text is an error. */
const STALE = '{stale stake';
const isStale = (err: unknown) => String((err as Error)?.message ?? err).includes('malformed JSON');

/**
 * The stakes' part of the each-minute cron: matured unstakes go back to available. A pending
 * unstake a slash took meanwhile is no longer `pending` and is not released.
 */
export async function releaseMaturedUnstakes(money: Client, now = Date.now()): Promise<string[]> {
  const released: string[] = [];
  const due = await money.execute({
    sql: `SELECT id, account_id, amount FROM node_stakes WHERE status = 'pending' AND release_at <= ? ORDER BY release_at LIMIT ?`,
    args: [now, RELEASE_PER_RUN],
  });
  for (const r of due.rows) {
    const id = String(r.id);
    const owner = String(r.account_id);
    const amount = BigInt(r.amount as bigint);
    const key = `unstake:${id}`;
    const rule = unstake({ owner, asset: STAKE_ASSET, amount, idempotencyKey: key, reference: id });
    if (!rule.ok) {
      log('error', 'unstake not releasable', { unstake_id: id, problem: rule.problem });
      continue;
    }
    // Released only if the row is still pending with the amount read (a slash may have cut it).
    const markReleased: InStatement = {
      sql: `UPDATE node_stakes SET status = 'released', released_at = ?,
              transaction_id = (SELECT id FROM ledger_transactions WHERE idempotency_key = ?)
            WHERE id = ? AND status = 'pending' AND amount = ?`,
      args: [now, key, id, amount],
    };
    const unlessChanged: InStatement = { sql: `SELECT CASE WHEN changes() = 0 THEN json('${STALE}') END`, args: [] };
    try {
      const posted = await postTransaction(money, rule.spec, { now, alongside: [markReleased, unlessChanged] });
      if (!posted.ok) {
        log('error', 'unstake release refused by the ledger', { unstake_id: id, reason: posted.reason });
        continue;
      }
      // A replay: another run moved the money, and marked the row in the same batch.
      if (!posted.replayed) released.push(id);
    } catch (err) {
      if (!isStale(err)) log('warn', 'unstake not released; the next run retries', { unstake_id: id, error: String(err) });
    }
  }
  return released;
}

/**
 * Slashes REWARDS_STAKE_SLASH_PPM of the node's slashable stake (active + pending unstakes) into
 * the rewards pool, keyed `stake-slash:<inspection id>`: the active part, and of each pending
 * unstake its share (one taken whole becomes `slashed`; one taken in part keeps the rest pending),
 * with the rows changed in the same batch as the ledger transaction. The batch fails, and nothing
 * moves, if the node's stake changed since it was read. Returns the amount slashed (0 when
 * nothing was staked, or when this inspection's slash was made before).
 */
export async function slashNodeStake(env: Bindings, nodeId: string, inspectionId: string, now = Date.now()): Promise<bigint> {
  const { money } = connection(env);
  const key = `stake-slash:${inspectionId}`;
  const done = await money.execute({ sql: 'SELECT 1 FROM ledger_transactions WHERE idempotency_key = ?', args: [key] });
  if (done.rows.length > 0) return 0n;
  const node = await money.execute({ sql: 'SELECT account_id FROM nodes WHERE id = ?', args: [nodeId] });
  if (!node.rows[0]) return 0n;
  const owner = String(node.rows[0].account_id);
  const { slashPpm } = stakeConfig(env);
  const { active, pending } = await nodeStakeState(money, nodeId);
  const rows = await money.execute({
    sql: `SELECT id, amount FROM node_stakes WHERE node_id = ? AND kind = 'unstake' AND status = 'pending' ORDER BY id`,
    args: [nodeId],
  });
  const activeCut = active > 0n ? (active * slashPpm) / PPM : 0n;
  let recorded = activeCut;
  let total = activeCut;
  const changes: InStatement[] = [];
  for (const r of rows.rows) {
    const amount = BigInt(r.amount as bigint);
    const cut = (amount * slashPpm) / PPM;
    if (cut === 0n) continue;
    total += cut;
    if (cut === amount) {
      changes.push({
        sql: `UPDATE node_stakes SET status = 'slashed', transaction_id = (SELECT id FROM ledger_transactions WHERE idempotency_key = ?) WHERE id = ? AND status = 'pending'`,
        args: [key, String(r.id)],
      });
    } else {
      recorded += cut;
      changes.push({ sql: `UPDATE node_stakes SET amount = amount - ? WHERE id = ? AND status = 'pending'`, args: [cut, String(r.id)] });
    }
  }
  if (total === 0n) return 0n;
  const rule = stakeSlash({ owner, asset: STAKE_ASSET, amount: total, idempotencyKey: key, reference: inspectionId, memo: `node ${nodeId}: failed capacity inspection` });
  if (!rule.ok) throw new Error(`stake slash refused by the rules: ${rule.problem}`);
  const guard: InStatement = {
    sql: `SELECT CASE WHEN ${ACTIVE_STAKE} = ? AND ${PENDING_UNSTAKES} = ? THEN NULL ELSE json('${STALE}') END`,
    args: [nodeId, active, nodeId, pending],
  };
  if (recorded > 0n) {
    const id = await derivedId('nsl', owner, key);
    changes.push({
      sql: `INSERT INTO node_stakes (id, node_id, account_id, kind, idempotency_key, request_hash, amount, status, transaction_id, created_at)
            VALUES (?, ?, ?, 'unstake', ?, ?, ?, 'slashed', (SELECT id FROM ledger_transactions WHERE idempotency_key = ?), ?)`,
      args: [id, nodeId, owner, key, await sha256Hex(JSON.stringify(['stake-slash', inspectionId])), recorded, key, now],
    });
  }
  const posted = await postTransaction(money, rule.spec, { now, first: [guard], alongside: changes });
  if (!posted.ok) {
    log('error', 'stake slash refused by the ledger', { node_id: nodeId, inspection_id: inspectionId, reason: posted.reason });
    return 0n;
  }
  if (posted.replayed) return 0n;
  log('info', 'node stake slashed', { node_id: nodeId, inspection_id: inspectionId, amount: total.toString() });
  return total;
}

/**
 * What a decided inspection's `fail` costs the node beyond its challenge: when it is a real (not
 * decoy) capacity inspection, its stake is slashed and its unvested supply rewards forfeited.
 * Never throws: the decision stands whatever happens here (the hourly forfeit sweep retries the
 * forfeit; a slash that failed is logged for an operator).
 */
export async function punishFailedInspection(env: Bindings, inspectionId: string, now = Date.now()): Promise<void> {
  let nodeId: string | undefined;
  try {
    const { money } = connection(env);
    const rs = await money.execute({
      sql: `SELECT node_id, decided_at FROM inspections WHERE id = ? AND kind = 'capacity' AND decoy = 0 AND status = 'decided' AND outcome = 'fail'`,
      args: [inspectionId],
    });
    const r = rs.rows[0];
    if (!r) return;
    nodeId = String(r.node_id);
    const decidedAt = Number(r.decided_at);
    // A stake that moved between the read and the batch fails it; read again, a few times.
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await slashNodeStake(env, nodeId, inspectionId, now);
        break;
      } catch (err) {
        if (!isStale(err) || attempt === 3) {
          log('error', 'node stake not slashed', { node_id: nodeId, inspection_id: inspectionId, error: String(err) });
          break;
        }
      }
    }
    await forfeitUnvested(money, rewardsConfig(env), nodeId, decidedAt, now);
  } catch (err) {
    log('error', 'failed inspection not punished', { node_id: nodeId, inspection_id: inspectionId, error: String(err) });
  }
}
