// Closing supply-rewards epochs, releasing vested rewards and forfeiting unvested ones
// (docs/rewards.md, "Closing" and "I/O"). The pure rules (config, schedule, weights, split,
// vesting) decide the numbers; this file reads their inputs, stores them and moves the money.
//
// Every step selects by state and writes with a conditional statement, so overlapping runs, a
// run that stops half-way and a late run all end in the same place: an epoch row moves
// computing → paying → closed once; each line is paid under the ledger key
// `reward:<epoch>:<node>` with its paid_at in the same batch.
import type { Client, InStatement } from '@libsql/client/web';
import { sha256Hex } from '../auth/encoding.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import { accountId, platformAccount } from '../ledger/accounts.ts';
import { forfeit, supplyReward, vestingRelease } from '../ledger/rules.ts';
import { postTransaction, postTransactions } from '../ledger/store.ts';
import { CLOSE_DELAY_MS, DEFAULT_CLOSE_BUDGET_S, DEFAULT_CLOSE_MAX_STEPS, rewardsConfig, type RewardsConfig } from './config.ts';

export { CLOSE_DELAY_MS };
import { inputsCanonicalJson } from './inputs-canonical.ts';
import { rewardsParams } from './params.ts';
import { nodeInputsChunk } from './inputs.ts';
import { emission, epochBounds } from './schedule.ts';
import { splitEpoch } from './split.ts';
import { releasedBy, vestingSplit } from './vesting.ts';
import type { NodeInputs } from './weights.ts';

export const REWARD_ASSET = 'GRID' as const;
export const POOL_ID = accountId(platformAccount(REWARD_ASSET, 'rewards_pool'));
/** How long a passed capacity challenge keeps a node verified, as the challenge rules read it. */
const DEFAULT_VERIFIED_TTL_S = 7 * 86_400;

/** The genesis mint's ledger key (POST /v1/admin/rewards/genesis): no epoch closes before it. */
export const GENESIS_KEY = 'genesis:rewards';

export interface CloseOptions {
  /** The most chunk steps (an inputs chunk, the split, a payments chunk) this call takes; default REWARDS_CLOSE_MAX_STEPS. */
  maxSteps?: number;
  /** No step starts after this many ms of the call; default REWARDS_CLOSE_BUDGET_S. */
  budgetMs?: number;
  /** Run the forfeit sweep now; by default it runs in minute FORFEIT_SWEEP_MINUTE of each hour. */
  forfeitSweep?: boolean;
}

/** The minute of each hour in which the cron sweeps for forfeits. */
export const FORFEIT_SWEEP_MINUTE = 7;

export interface CloseResult {
  /** The epoch worked on, or null when none was due. */
  epoch: number | null;
  status: 'computing' | 'paying' | 'closed' | null;
  steps: number;
  /** Lines paid by this call. */
  paid: number;
  /** Vesting releases posted by this call. */
  released: number;
  /** Lines forfeited by this call (only when it swept). */
  forfeited: number;
}


function positive(text: string | undefined, fallback: number, max: number): number {
  const v = text === undefined || !/^[0-9]{1,9}$/.test(text.trim()) ? NaN : Number(text.trim());
  return v >= 1 && v <= max ? v : fallback;
}

function verifiedTtlMs(env: Bindings): number {
  const s = Number(env.VERIFIED_TTL_S);
  return (Number.isFinite(s) && s > 0 ? s : DEFAULT_VERIFIED_TTL_S) * 1000;
}

const big = (v: unknown): bigint => (v === null || v === undefined ? 0n : BigInt(v as bigint | number | string));

/**
 * The each-minute cron's rewards step: works on the oldest epoch whose end has passed and that is
 * not closed (never one before REWARDS_START, never more than one epoch per call), for at most
 * `maxSteps` chunk steps started within `budgetMs`; then releases vested rewards and, once an hour, forfeits the unvested
 * rewards of nodes caught deceiving. Returns what it did.
 */
export async function closeDueEpochs(env: Bindings, now = Date.now(), opts: CloseOptions = {}): Promise<CloseResult> {
  const config = rewardsConfig(env);
  const { money } = connection(env);
  const result: CloseResult = { epoch: null, status: null, steps: 0, paid: 0, released: 0, forfeited: 0 };
  const maxSteps = opts.maxSteps ?? positive(env.REWARDS_CLOSE_MAX_STEPS, DEFAULT_CLOSE_MAX_STEPS, 10_000);
  const budgetMs = opts.budgetMs ?? positive(env.REWARDS_CLOSE_BUDGET_S, DEFAULT_CLOSE_BUDGET_S, 840) * 1000;
  // Wall time as the Worker sees it: Date.now() moves across the awaits of each step's I/O.
  const stopAt = Date.now() + budgetMs;

  const epoch = await dueEpoch(money, config, now);
  if (epoch !== null) {
    result.epoch = epoch;
    const ttl = verifiedTtlMs(env);
    while (result.steps < maxSteps && Date.now() < stopAt) {
      const row = (await money.execute({ sql: 'SELECT status, cursor FROM reward_epochs WHERE epoch = ?', args: [epoch] })).rows[0];
      const status = (row?.status ?? null) as CloseResult['status'];
      result.status = status;
      if (status === null || status === 'closed') break;
      result.steps++;
      if (status === 'computing') {
        const cursor = row!.cursor === null ? null : String(row!.cursor);
        const more = await gatherChunk(money, config, epoch, cursor, ttl);
        if (!more) await computeSplit(money, config, epoch, now);
      } else {
        const paid = await payChunk(money, config, epoch, now);
        if (paid === null) break; // the pool could not pay: a later run retries
        result.paid += paid;
      }
    }
  }
  result.released = await releaseVested(money, config, now);
  const sweep = opts.forfeitSweep ?? Math.floor(now / 60_000) % 60 === FORFEIT_SWEEP_MINUTE;
  if (sweep) result.forfeited = await forfeitSweep(money, config, now);
  return result;
}

/**
 * The oldest unclosed epoch that ended CLOSE_DELAY_MS ago, its row created (computing) when it has
 * none yet; none before the genesis mint (the pool holds only what inspectors are paid from).
 */
async function dueEpoch(money: Client, config: RewardsConfig, now: number): Promise<number | null> {
  // Only the newest row can be unclosed: a row is added only once every earlier one is closed.
  const [genesis, newest] = await money.batch(
    [{ sql: 'SELECT 1 FROM ledger_transactions WHERE idempotency_key = ?', args: [GENESIS_KEY] }, 'SELECT epoch, status FROM reward_epochs ORDER BY epoch DESC LIMIT 1'],
    'read',
  );
  if (genesis!.rows.length === 0) return null;
  const last = newest!.rows[0];
  if (last && last.status !== 'closed') return Number(last.epoch);
  const epoch = last ? Number(last.epoch) + 1 : 0;
  if (epoch < 0 || epochBounds(config, epoch).endMs + CLOSE_DELAY_MS > now) return null;
  await money.execute({
    sql: "INSERT INTO reward_epochs (epoch, status, started_at) VALUES (?, 'computing', ?) ON CONFLICT (epoch) DO NOTHING",
    args: [epoch, now],
  });
  return epoch;
}

/**
 * One chunk of inputs after the cursor: the lines inserted (on conflict nothing) and the cursor
 * moved, in one batch, only if the cursor is still where this run read it. Returns whether there
 * may be more nodes (a full chunk).
 */
async function gatherChunk(money: Client, config: RewardsConfig, epoch: number, cursor: string | null, ttlMs: number): Promise<boolean> {
  const window = epochBounds(config, epoch);
  const epochS = config.epochMs / 1000;
  const inputs = await nodeInputsChunk(money, window, epochS, { after: cursor, limit: config.closeChunk, verifiedTtlMs: ttlMs });
  if (inputs.length === 0) return false;
  const statements: InStatement[] = inputs.map((i) => ({
    sql: `INSERT INTO reward_lines (epoch, node_id, owner_id, gpu_model, gpus_offered, confirmed_s, leased_gpu_s, verified, stake)
          SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM reward_epochs WHERE epoch = ? AND status = 'computing')
          ON CONFLICT (epoch, node_id) DO NOTHING`,
    args: [epoch, i.nodeId, i.ownerId, i.gpuModel, i.gpusOffered, i.confirmedS, i.leasedGpuS, i.verified ? 1 : 0, i.stake, epoch],
  }));
  statements.push({
    sql: "UPDATE reward_epochs SET cursor = ? WHERE epoch = ? AND status = 'computing' AND cursor IS ?",
    args: [inputs[inputs.length - 1]!.nodeId, epoch, cursor],
  });
  await money.batch(statements, 'write');
  return inputs.length === config.closeChunk;
}

function inputsOf(r: Record<string, unknown>): NodeInputs {
  return {
    nodeId: String(r.node_id),
    ownerId: String(r.owner_id),
    gpuModel: r.gpu_model === null ? null : String(r.gpu_model),
    gpusOffered: Number(r.gpus_offered),
    confirmedS: Number(r.confirmed_s),
    leasedGpuS: Number(r.leased_gpu_s),
    verified: Number(r.verified) === 1,
    stake: big(r.stake),
  };
}

/** SHA-256 (hex) of the epoch's canonical inputs (inputs-canonical.ts). */
export async function inputsHash(lines: readonly NodeInputs[]): Promise<string> {
  return sha256Hex(inputsCanonicalJson(lines));
}

/**
 * Inspection rewards paid within the window: ledger `reward` transactions keyed `inspection:…`
 * (the rewards pool's side of each), found through the key's unique index.
 */
export async function inspectorPayWithin(money: Client, startMs: number, endMs: number): Promise<bigint> {
  const rs = await money.execute({
    sql: `SELECT COALESCE(-SUM(e.amount), 0) AS paid FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
          WHERE t.idempotency_key >= 'inspection:' AND t.idempotency_key < 'inspection;' AND t.kind = 'reward'
            AND t.created_at >= ? AND t.created_at < ? AND e.account_id = ?`,
    args: [startMs, endMs, POOL_ID],
  });
  return big(rs.rows[0]?.paid);
}

async function poolBalance(money: Client): Promise<bigint> {
  const rs = await money.execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [POOL_ID] });
  return big(rs.rows[0]?.balance);
}

/** Lines are read, and their numbers written, this many at a time. */
const SPLIT_PAGE = 10_000;

/** The epoch's stored inputs in node id order, read a page at a time. */
async function storedInputs(money: Client, epoch: number): Promise<NodeInputs[]> {
  const out: NodeInputs[] = [];
  let after = '';
  for (;;) {
    const rows = (
      await money.execute({
        sql: `SELECT node_id, owner_id, gpu_model, gpus_offered, confirmed_s, leased_gpu_s, verified, stake FROM reward_lines
              WHERE epoch = ? AND node_id > ? ORDER BY node_id LIMIT ?`,
        args: [epoch, after, SPLIT_PAGE],
      })
    ).rows;
    for (const r of rows) out.push(inputsOf(r as unknown as Record<string, unknown>));
    if (rows.length < SPLIT_PAGE) return out;
    after = out[out.length - 1]!.nodeId;
  }
}

/**
 * The split over every stored line (read in pages), written in one batch with the status change computing →
 * paying, guarded by the status: of two runs computing at once, one batch applies.
 */
async function computeSplit(money: Client, config: RewardsConfig, epoch: number, now: number): Promise<void> {
  const window = epochBounds(config, epoch);
  const epochS = config.epochMs / 1000;
  const lines = await storedInputs(money, epoch);
  const scheduled = emission(config, epoch);
  const pool = await poolBalance(money);
  const emitted = scheduled < pool ? scheduled : pool > 0n ? pool : 0n;
  const inspectorPay = await inspectorPayWithin(money, window.startMs, window.endMs);
  const split = splitEpoch(config, epochS, emitted, inspectorPay, lines);
  const byNode = new Map(split.lines.map((l) => [l.nodeId, l]));
  const values = lines.map((i) => {
    const l = byNode.get(i.nodeId);
    const amount = l?.amount ?? 0n;
    const { immediate, vesting } = vestingSplit(config, amount);
    return [i.nodeId, l ? 1 : 0, (l?.weight ?? 0n).toString(), amount.toString(), immediate.toString(), vesting.toString()];
  });
  const hash = await inputsHash(lines);
  const updates: InStatement[] = [];
  for (let at = 0; at < values.length; at += SPLIT_PAGE) {
    updates.push({
      // Materialised first: SQLite then indexes the values itself and looks each line up once.
      // Joined to json_each directly, it scanned the whole array for every line (quadratic:
      // 86 s at 10,000 lines, bench/rewards.ts).
      sql: `WITH v AS MATERIALIZED (
              SELECT j.value ->> 0 AS node_id, j.value ->> 1 AS eligible, CAST(j.value ->> 2 AS INTEGER) AS weight, CAST(j.value ->> 3 AS INTEGER) AS amount,
                     CAST(j.value ->> 4 AS INTEGER) AS immediate, CAST(j.value ->> 5 AS INTEGER) AS vesting
              FROM json_each(?) AS j)
            UPDATE reward_lines SET eligible = v.eligible, weight = v.weight, amount = v.amount, immediate = v.immediate, vesting = v.vesting
            FROM v
            WHERE reward_lines.epoch = ? AND reward_lines.node_id = v.node_id
              AND EXISTS (SELECT 1 FROM reward_epochs WHERE epoch = ? AND status = 'computing')`,
      args: [JSON.stringify(values.slice(at, at + SPLIT_PAGE)), epoch, epoch],
    });
  }
  await money.batch(
    [
      ...updates,
      {
        sql: `UPDATE reward_epochs SET status = 'paying', emission = ?, inspector_pay = ?, taper_ppm = ?, utilisation_ppm = ?,
                providers_emission = ?, paid = ?, returned = ?, lines = ?, inputs_hash = ?, scheduled_emission = ?, pool_balance = ?, params = ?
              WHERE epoch = ? AND status = 'computing'`,
        args: [
          emitted,
          inspectorPay,
          split.taperPpm,
          split.utilisationPpm,
          split.providersEmission,
          split.paid,
          split.returned,
          lines.length,
          hash,
          scheduled,
          pool,
          JSON.stringify(rewardsParams(config)),
          epoch,
        ],
      },
    ],
    'write',
  );
}

/**
 * Pays up to a chunk of unpaid lines: all of them in one batch, each its own ledger transaction
 * with the line's paid_at and transaction_id. When that batch is refused (a line another run
 * paid meanwhile, or a pool that cannot pay them all) the lines are paid one by one: a replay only
 * marks its line, and the first the pool cannot pay stops the chunk. Closes the epoch when none is
 * left. Returns lines paid, or null when the pool could not pay one (the epoch stays `paying` for
 * a later run).
 */
async function payChunk(money: Client, config: RewardsConfig, epoch: number, now: number): Promise<number | null> {
  const rs = await money.execute({
    sql: `SELECT node_id, owner_id, immediate, vesting FROM reward_lines
          WHERE epoch = ? AND paid_at IS NULL AND amount > 0 ORDER BY node_id LIMIT ?`,
    args: [epoch, config.closeChunk],
  });
  if (rs.rows.length === 0) {
    await money.execute({ sql: "UPDATE reward_epochs SET status = 'closed', closed_at = ? WHERE epoch = ? AND status = 'paying'", args: [now, epoch] });
    return 0;
  }
  const items = rs.rows.map((r) => {
    const nodeId = String(r.node_id);
    const key = `reward:${epoch}:${nodeId}`;
    const rule = supplyReward({
      owner: String(r.owner_id),
      asset: REWARD_ASSET,
      immediate: big(r.immediate),
      vesting: big(r.vesting),
      idempotencyKey: key,
      reference: nodeId,
      memo: `supply reward, epoch ${epoch}`,
    });
    if (!rule.ok) throw new Error(`supply reward refused by the rules: ${rule.problem}`);
    return { nodeId, key, spec: rule.spec };
  });
  const batch = await postTransactions(
    money,
    items.map(({ nodeId, spec }) => ({
      spec,
      alongside: (txId: string): InStatement[] => [
        { sql: 'UPDATE reward_lines SET paid_at = ?, released_at = ?, transaction_id = ? WHERE epoch = ? AND node_id = ? AND paid_at IS NULL', args: [now, now, txId, epoch, nodeId] },
      ],
    })),
    { now },
  );
  if (batch.ok) return items.length;

  let paid = 0;
  for (const { nodeId, key, spec } of items) {
    const mark: InStatement = {
      sql: `UPDATE reward_lines SET paid_at = ?, released_at = ?, transaction_id = (SELECT id FROM ledger_transactions WHERE idempotency_key = ?)
            WHERE epoch = ? AND node_id = ? AND paid_at IS NULL`,
      args: [now, now, key, epoch, nodeId],
    };
    const posted = await postTransaction(money, spec, { now, alongside: [mark] });
    if (!posted.ok) {
      log('warn', 'supply reward not paid; a later run retries', { epoch, node_id: nodeId, reason: posted.reason });
      return null;
    }
    if (posted.replayed) await money.execute(mark);
    else paid++;
  }
  return paid;
}

/** Fails a batch whose previous statement changed no row: json() of a malformed text is an error. */
const STALE = '{stale row';
const unlessChanged: InStatement = { sql: `SELECT CASE WHEN changes() = 0 THEN json('${STALE}') END`, args: [] };
const isStale = (err: unknown) => String((err as Error)?.message ?? err).includes('malformed JSON');

/** A line's vesting is released at most this often (and at once when vesting is shorter). */
export const RELEASE_INTERVAL_MS = 86_400_000;

/**
 * Releases vested rewards: for up to a chunk of paid lines with vesting left, least recently
 * released first and none released within RELEASE_INTERVAL_MS (or the vesting period, if
 * shorter), posts vesting → available for releasedBy(now) − released.
 *
 * The ledger key is `vesting:<epoch>:<node>:<released before>`: `released` only grows, so each
 * value is the start of exactly one release, and two runs starting from the same value share a
 * key (the second replays, or is refused when it computed another amount at another time). The
 * line's `released` moves in the same batch by a conditional UPDATE from the value read, and the
 * batch fails (nothing moves) when that UPDATE changes no row, e.g. after a forfeit.
 */
async function releaseVested(money: Client, config: RewardsConfig, now: number): Promise<number> {
  const rs = await money.execute({
    sql: `SELECT epoch, node_id, owner_id, vesting, released FROM reward_lines
          WHERE vesting > released + forfeited AND paid_at IS NOT NULL AND released_at <= ? ORDER BY released_at LIMIT ?`,
    args: [now - Math.min(RELEASE_INTERVAL_MS, config.vestingMs), config.closeChunk],
  });
  let posted = 0;
  for (const r of rs.rows) {
    const epoch = Number(r.epoch);
    const nodeId = String(r.node_id);
    const vesting = big(r.vesting);
    const before = big(r.released);
    const due = releasedBy(config, vesting, epochBounds(config, epoch).endMs, now);
    if (due <= before) {
      // Nothing new (rounding): move it to the back of the queue.
      await money.execute({ sql: 'UPDATE reward_lines SET released_at = ? WHERE epoch = ? AND node_id = ? AND released = ?', args: [now, epoch, nodeId, before] });
      continue;
    }
    const rule = vestingRelease({
      owner: String(r.owner_id),
      asset: REWARD_ASSET,
      amount: due - before,
      idempotencyKey: `vesting:${epoch}:${nodeId}:${before}`,
      reference: nodeId,
      memo: `vested supply reward, epoch ${epoch}`,
    });
    if (!rule.ok) continue;
    const update: InStatement = {
      sql: 'UPDATE reward_lines SET released = ?, released_at = ? WHERE epoch = ? AND node_id = ? AND released = ? AND forfeited = 0',
      args: [due, now, epoch, nodeId, before],
    };
    try {
      const res = await postTransaction(money, rule.spec, { now, alongside: [update, unlessChanged] });
      if (res.ok && !res.replayed) posted++;
    } catch (err) {
      if (!isStale(err)) log('warn', 'vesting release failed; a later run retries', { epoch, node_id: nodeId, error: String(err) });
    }
  }
  return posted;
}

/**
 * Forfeits (vesting → rewards_pool) what is still vesting on the node's paid lines of epochs that
 * began at or before `decidedAt`, the time a capacity inspection of the node was decided `fail`
 * (which proves deception). One transaction per line, keyed `forfeit:<epoch>:<node>`, with the
 * line's `forfeited` set in the same batch from the `released` value read (the batch fails,
 * moving nothing, when a release moved it first; a later call forfeits the rest). Returns lines
 * forfeited. The inspection code may call this when it decides such an inspection; the cron's
 * sweep (forfeitSweep) catches any it did not.
 */
export async function forfeitUnvested(money: Client, config: RewardsConfig, nodeId: string, decidedAt: number, now: number): Promise<number> {
  const rs = await money.execute({
    sql: `SELECT epoch, owner_id, vesting, released FROM reward_lines
          WHERE node_id = ? AND epoch <= ? AND vesting > released + forfeited AND paid_at IS NOT NULL ORDER BY epoch`,
    args: [nodeId, Math.floor((decidedAt - config.startMs) / config.epochMs)],
  });
  let done = 0;
  for (const r of rs.rows) {
    const epoch = Number(r.epoch);
    const released = big(r.released);
    const left = big(r.vesting) - released;
    const rule = forfeit({
      owner: String(r.owner_id),
      asset: REWARD_ASSET,
      amount: left,
      idempotencyKey: `forfeit:${epoch}:${nodeId}`,
      reference: nodeId,
      memo: `unvested supply reward forfeited, epoch ${epoch}: failed capacity inspection`,
    });
    if (!rule.ok) continue;
    const update: InStatement = {
      sql: 'UPDATE reward_lines SET forfeited = ? WHERE epoch = ? AND node_id = ? AND released = ? AND forfeited = 0',
      args: [left, epoch, nodeId, released],
    };
    try {
      const res = await postTransaction(money, rule.spec, { now, alongside: [update, unlessChanged] });
      if (res.ok && !res.replayed) done++;
    } catch (err) {
      if (!isStale(err)) log('warn', 'forfeit failed; a later run retries', { epoch, node_id: nodeId, error: String(err) });
    }
  }
  return done;
}

/**
 * The sweep: nodes with a failed, non-decoy capacity inspection decided recently enough that a
 * line of theirs could still be vesting (within the vesting period and an epoch), each forfeited
 * up to its latest such failure. It reads those inspections without an index on decided_at, so
 * the cron runs it once an hour (FORFEIT_SWEEP_MINUTE), not every minute.
 */
async function forfeitSweep(money: Client, config: RewardsConfig, now: number): Promise<number> {
  const rs = await money.execute({
    sql: `SELECT node_id, MAX(decided_at) AS decided_at FROM inspections
          WHERE kind = 'capacity' AND decoy = 0 AND status = 'decided' AND outcome = 'fail' AND decided_at >= ?
          GROUP BY node_id ORDER BY node_id`,
    args: [now - config.vestingMs - config.epochMs],
  });
  let done = 0;
  for (const r of rs.rows) done += await forfeitUnvested(money, config, String(r.node_id), Number(r.decided_at), now);
  return done;
}
