// Supply rewards (docs/rewards.md): the genesis mint, closing epochs (inputs, split, payments),
// overlapping and interrupted closes, vesting releases, and the public and provider routes.
//
// The tests run in order on the hour-long epochs 2 to 6 (and 10) after REWARDS_START (the minute this
// run began, vitest.worker.config.ts): nothing else writes there. An hour of heartbeats, sell
// orders and capacity challenges through the API would take an hour, so those rows are written
// straight into the database (node_metrics_minute, orders, node_challenges), as the heartbeat
// queue, the book's outbox and the challenge cron would write them; the nodes themselves are
// registered through the API.
import { rewardsParams } from '../../src/rewards/params.ts';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { money as money$ } from '../../src/contracts/money.ts';
import { connection } from '../../src/db/client.ts';
import { inspections, leases, nodeChallenges, nodeMetricsMinute, orders } from '../../src/db/schema.ts';
import type { Bindings } from '../../src/env.ts';
import { CLOSE_DELAY_MS, closeDueEpochs, inputsHash } from '../../src/rewards/close.ts';
import { rewardsConfig } from '../../src/rewards/config.ts';
import { nodeInputsChunk } from '../../src/rewards/inputs.ts';
import { emission, epochBounds } from '../../src/rewards/schedule.ts';
import { splitEpoch } from '../../src/rewards/split.ts';
import { releasedBy } from '../../src/rewards/vesting.ts';
import { mintGenesis } from '../../src/routes/rewards.ts';
import { supplyReward } from '../../src/ledger/rules.ts';
import { postTransaction } from '../../src/ledger/store.ts';
import { call, db, expectError, json, machine, makeAdmin, registerNode, signUp, type TestAccount } from './support.ts';

const bindings = env as unknown as Bindings;
const config = rewardsConfig(bindings);
const money = () => connection(bindings).money;
const H100 = { name: 'NVIDIA H100 80GB HBM3' };
const bounds = (n: number) => epochBounds(config, n);
/** When the cron may close epoch n. */
const closeAt = (n: number) => bounds(n).endMs + CLOSE_DELAY_MS + 1_000;
const big = (v: unknown) => BigInt(v as bigint | number);

// Lines and epochs are read as numbers (every value here is far below 2^53), balances as bigint.
const rows = () => connection(bindings).client;

async function epochRow(n: number) {
  return (await rows().execute({ sql: 'SELECT * FROM reward_epochs WHERE epoch = ?', args: [n] })).rows[0];
}

async function linesOf(n: number) {
  return (await rows().execute({ sql: 'SELECT * FROM reward_lines WHERE epoch = ? ORDER BY node_id', args: [n] })).rows;
}

/** Runs the cron step at `now` until epoch n is closed (every earlier epoch closes first). */
async function closeThrough(n: number, now = closeAt(n), env: Bindings = bindings) {
  for (let i = 0; i < 200; i++) {
    if ((await epochRow(n))?.status === 'closed') return;
    await closeDueEpochs(env, now);
  }
  throw new Error(`epoch ${n} did not close`);
}

async function accountBalance(owner: string, kind: string): Promise<bigint> {
  const rs = await money().execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [`${owner}:GRID:${kind}`] });
  return big(rs.rows[0]?.balance ?? 0n);
}

async function expectLedgerBalanced() {
  const rs = await money().execute('SELECT asset, SUM(balance) AS total FROM ledger_accounts GROUP BY asset');
  for (const r of rs.rows) expect([r.asset, big(r.total)]).toEqual([r.asset, 0n]);
}

/** A confirmed heartbeat minute for every minute of epoch n (what the heartbeat queue writes). */
async function upAllEpoch(nodeId: string, n: number) {
  const { startMs, endMs } = bounds(n);
  const rows = [];
  for (let m = startMs / 60_000; m < endMs / 60_000; m++) {
    rows.push({ nodeId, minute: m, heartbeats: 6, utilSum: 0, utilSamples: 6, powerSumW: 0, powerSamples: 6 });
  }
  await db().insert(nodeMetricsMinute).values(rows).onConflictDoNothing();
}

/** A sell order of the node's GPUs that was open from before epoch 2 to the end of epoch `until`, now expired. */
async function offered(provider: TestAccount, nodeId: string, gpus: number, until = 10) {
  const id = `ord_${crypto.randomUUID().replaceAll('-', '')}`;
  await db()
    .insert(orders)
    .values({
      id, accountId: provider.id, idempotencyKey: id, requestHash: 'x', side: 'sell', region: 'us-east', gpuModel: 'h100-80gb', gpus,
      price: 2_000_000, tif: 'gtc', nodeId, book: {}, status: 'expired',
      createdAt: bounds(2).startMs - 60_000, expiresAt: bounds(until).endMs, closedAt: bounds(until).endMs,
    });
}

/** A capacity challenge passed an hour before epoch 2 (valid for VERIFIED_TTL_S). */
async function passedCapacity(nodeId: string) {
  const at = bounds(2).startMs - 3_600_000;
  await db()
    .insert(nodeChallenges)
    .values({ id: `chl_${crypto.randomUUID().replaceAll('-', '')}`, nodeId, kind: 'capacity', challenge: {}, status: 'passed', issuedAt: at - 60_000, deadline: at, decidedAt: at, decision: 'passed' });
}

/** Recomputes the split from the stored inputs, as anyone can from the report. */
function recompute(row: Record<string, unknown>, lines: Record<string, unknown>[]) {
  const inputs = lines.map((l) => ({
    nodeId: String(l.node_id), ownerId: String(l.owner_id), gpuModel: l.gpu_model === null ? null : String(l.gpu_model),
    gpusOffered: Number(l.gpus_offered), confirmedS: Number(l.confirmed_s), leasedGpuS: Number(l.leased_gpu_s), verified: Number(l.verified) === 1, stake: big(l.stake),
  }));
  return { inputs, split: splitEpoch(config, config.epochMs / 1000, big(row.emission), big(row.inspector_pay), inputs) };
}

let operator: TestAccount;
let honest1: TestAccount;
let honest2: TestAccount;
let farmer: TestAccount;
const node: Record<'a' | 'b' | 'farm' | 'unverified', string> = { a: '', b: '', farm: '', unverified: '' };

beforeAll(async () => {
  [operator, honest1, honest2, farmer] = await Promise.all([signUp(['renter']), signUp(['provider']), signUp(['provider']), signUp(['provider'])]);
  await makeAdmin(operator);
  node.a = (await registerNode(honest1, machine([H100, H100]))).nodeId;
  node.b = (await registerNode(honest2, machine([H100]))).nodeId;
  node.farm = (await registerNode(farmer, machine([H100]))).nodeId;
  node.unverified = (await registerNode(farmer, machine([H100]))).nodeId;
  await offered(honest1, node.a, 2);
  await offered(honest2, node.b, 1);
  await offered(farmer, node.unverified, 1);
  await passedCapacity(node.a);
  await passedCapacity(node.b);
  await passedCapacity(node.farm);
});

/** A lease row as the book's fill writes it. */
async function leased(provider: TestAccount, nodeId: string, gpus: number, createdAt: number, durationS: number, state = 'running') {
  const id = `lse_${crypto.randomUUID().replaceAll('-', '')}`;
  await db().insert(leases).values({
    id, tradeId: id, bidId: 'ord_bid', askId: 'ord_ask', renterId: operator.id, providerId: provider.id, nodeId, region: 'us-east', gpuModel: 'h100-80gb',
    gpus, gpuIndices: [0], price: 2_000_000, durationS, asset: 'USD', amount: 1_000_000, state, createdAt,
  });
}

describe('rewards: inputs', () => {
  it('reads uptime, GPUs offered (sells and leases, capped by the node), leased GPU-seconds and verification from SQL', async () => {
    const e = 20;
    const { startMs, endMs } = bounds(e);
    const provider = await signUp(['provider']);
    const busy = (await registerNode(provider, machine([H100, H100]))).nodeId;
    const shaky = (await registerNode(provider, machine([H100]))).nodeId;
    const silent = (await registerNode(provider, machine([H100]))).nodeId;
    // busy: up half the epoch, one GPU leased from the middle for two hours, another lease that failed.
    const minutes = [];
    for (let m = startMs / 60_000; m < startMs / 60_000 + 30; m++) minutes.push({ nodeId: busy, minute: m, heartbeats: 6, utilSum: 0, utilSamples: 6, powerSumW: 0, powerSamples: 6 });
    await db().insert(nodeMetricsMinute).values(minutes);
    await leased(provider, busy, 1, startMs + 1_800_000, 7_200);
    await leased(provider, busy, 2, startMs, 3_600, 'failed');
    // A lease that ended before the epoch does not count.
    await leased(provider, busy, 2, startMs - 7_200_000, 3_600);
    await passedCapacity(busy);
    // shaky: up all epoch with a sell of three GPUs (more than it has) and a passed capacity challenge, but an identity challenge expired within the epoch.
    await upAllEpoch(shaky, e);
    await offered(provider, shaky, 3, e);
    await passedCapacity(shaky);
    await db().insert(nodeChallenges).values({ id: `chl_${crypto.randomUUID().replaceAll('-', '')}`, nodeId: shaky, kind: 'identity', challenge: {}, status: 'expired', issuedAt: startMs, deadline: startMs + 60_000, decidedAt: startMs + 60_000 });
    // silent: no confirmed minute in the epoch: no line at all.
    await offered(provider, silent, 1, e);
    const all = await nodeInputsChunk(money(), { startMs, endMs }, 3600, { after: null, limit: 1000, verifiedTtlMs: 7 * 86_400_000 });
    const mine = Object.fromEntries(all.filter((i) => i.ownerId === provider.id).map((i) => [i.nodeId, i]));
    expect(Object.keys(mine).sort()).toEqual([busy, shaky].sort());
    expect(mine[busy]).toEqual({ nodeId: busy, ownerId: provider.id, gpuModel: 'h100-80gb', gpusOffered: 1, confirmedS: 1800, leasedGpuS: 1800, verified: true, stake: 0n });
    expect(mine[shaky]).toMatchObject({ gpusOffered: 1, confirmedS: 3600, leasedGpuS: 0, verified: false });
    // In node id order, a chunk at a time after a cursor.
    const ids = all.map((i) => i.nodeId);
    expect(ids).toEqual([...ids].sort());
    const after = await nodeInputsChunk(money(), { startMs, endMs }, 3600, { after: ids[0]!, limit: 1, verifiedTtlMs: 7 * 86_400_000 });
    expect(after.map((i) => i.nodeId)).toEqual(ids.slice(1, 2));
  });
});

describe('rewards: the genesis mint', () => {
  it('closes no epoch before the genesis mint, and refuses an allocation beyond the supply, minting nothing', async () => {
    expect(await closeDueEpochs(bindings, closeAt(2))).toMatchObject({ epoch: null, steps: 0 });
    expect(await epochRow(0)).toBeUndefined();
    await expect(mintGenesis(money(), { actor: operator.id, allocation: 2_000_000n, supply: 1_000_000n })).rejects.toMatchObject({ code: 'conflict' });
    const txs = await money().execute("SELECT COUNT(*) AS n FROM ledger_transactions WHERE idempotency_key = 'genesis:rewards'");
    expect(Number(txs.rows[0]!.n)).toBe(0);
  });

  it('mints the allocation into the rewards pool once; a second call answers 200 with the same transaction; non-operators get 403', async () => {
    await expectError(await call('/v1/admin/rewards/genesis', { method: 'POST', auth: honest1.apiKey }), 403, 'forbidden');
    const first = await call('/v1/admin/rewards/genesis', { method: 'POST', auth: operator.apiKey });
    expect(first.status).toBe(201);
    const body = await json(first);
    expect(body).toMatchObject({ amount: '400000000.00', total_supply: '1000000000.00' });
    const again = await call('/v1/admin/rewards/genesis', { method: 'POST', auth: operator.apiKey });
    expect(again.status).toBe(200);
    expect((await json(again)).transaction_id).toBe(body.transaction_id);
    const txs = await money().execute("SELECT id, kind FROM ledger_transactions WHERE idempotency_key = 'genesis:rewards'");
    expect(txs.rows.map((r) => [r.id, r.kind])).toEqual([[body.transaction_id, 'mint']]);
    const audit = await money().execute({ sql: "SELECT COUNT(*) AS n FROM audit_log WHERE actor_account_id = ? AND action LIKE '%(genesis)'", args: [operator.id] });
    expect(Number(audit.rows[0]!.n)).toBe(1);
    await expectLedgerBalanced();
  });
});

describe('rewards: closing an epoch', () => {
  it('pays two honest nodes in proportion to weight, and nothing to a node that offers nothing or is unverified', async () => {
    for (const id of Object.values(node)) await upAllEpoch(id, 2);
    const before = { a: await accountBalance(honest1.id, 'available'), b: await accountBalance(honest2.id, 'available') };
    await closeThrough(2);
    const row = (await epochRow(2))!;
    const lines = await linesOf(2);
    const byNode = Object.fromEntries(lines.map((l) => [String(l.node_id), l]));
    expect(Object.keys(byNode).sort()).toEqual(Object.values(node).sort());
    expect(byNode[node.a]).toMatchObject({ gpus_offered: 2, confirmed_s: 3600, verified: 1, eligible: 1, gpu_model: 'h100-80gb' });
    expect(byNode[node.b]).toMatchObject({ gpus_offered: 1, confirmed_s: 3600, verified: 1, eligible: 1 });
    expect(byNode[node.farm]).toMatchObject({ gpus_offered: 0, verified: 1, eligible: 0, amount: 0 });
    expect(byNode[node.unverified]).toMatchObject({ gpus_offered: 1, verified: 0, eligible: 0, amount: 0 });
    // Two H100s against one, same uptime, no leases: twice the weight, twice the pay (to the micro-unit floor).
    const [wa, wb] = [big(byNode[node.a]!.weight), big(byNode[node.b]!.weight)];
    expect(wa).toBe(2n * wb);
    const p = big(row.providers_emission);
    expect(big(row.emission)).toBe(emission(config, 2));
    expect(big(byNode[node.a]!.amount)).toBe((p * wa) / (wa + wb));
    expect(big(byNode[node.b]!.amount)).toBe((p * wb) / (wa + wb));
    // Anyone can recompute the split and the hash from the stored inputs.
    const { inputs, split } = recompute(row, lines);
    expect(split.lines.map((l) => [l.nodeId, l.amount])).toEqual(lines.filter((l) => Number(l.eligible) === 1).map((l) => [String(l.node_id), big(l.amount)]));
    expect(row.inputs_hash).toBe(await inputsHash(inputs));
    // Paid: immediate to available, the rest to vesting, under reward:<epoch>:<node>.
    for (const [who, id, was] of [[honest1, node.a, before.a], [honest2, node.b, before.b]] as const) {
      const l = byNode[id]!;
      expect(big(l.immediate) + big(l.vesting)).toBe(big(l.amount));
      expect(await accountBalance(who.id, 'available')).toBe(was + big(l.immediate));
      expect(await accountBalance(who.id, 'vesting')).toBe(big(l.vesting));
      const tx = await money().execute({ sql: 'SELECT id, kind FROM ledger_transactions WHERE idempotency_key = ?', args: [`reward:2:${id}`] });
      expect(tx.rows.map((r) => [r.id, r.kind])).toEqual([[l.transaction_id, 'supply_reward']]);
    }
    expect(await accountBalance(farmer.id, 'vesting')).toBe(0n);
    await expectLedgerBalanced();
  });

  it('adds up: every closed epoch emits exactly inspector pay + paid + returned, and the pool paid exactly `paid`', async () => {
    const rs = await money().execute("SELECT * FROM reward_epochs WHERE status = 'closed' ORDER BY epoch");
    expect(rs.rows.length).toBeGreaterThanOrEqual(3);
    for (const e of rs.rows) {
      const emitted = big(e.emission);
      const inspectors = big(e.inspector_pay) < emitted ? big(e.inspector_pay) : emitted;
      expect(inspectors + big(e.paid) + big(e.returned)).toBe(emitted);
      const lines = await money().execute({ sql: 'SELECT COALESCE(SUM(amount), 0) AS s FROM reward_lines WHERE epoch = ? AND paid_at IS NOT NULL', args: [e.epoch!] });
      expect(big(lines.rows[0]!.s)).toBe(big(e.paid));
      const pool = await money().execute({
        sql: `SELECT COALESCE(-SUM(e.amount), 0) AS s FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
              WHERE t.kind = 'supply_reward' AND t.idempotency_key LIKE ? AND e.account_kind = 'rewards_pool'`,
        args: [`reward:${e.epoch}:%`],
      });
      expect(big(pool.rows[0]!.s)).toBe(big(e.paid));
    }
  });

  it('pays each line once when closes overlap', async () => {
    await upAllEpoch(node.a, 3);
    await upAllEpoch(node.b, 3);
    const now = closeAt(3);
    for (let i = 0; i < 20 && (await epochRow(3))?.status !== 'closed'; i++) {
      await Promise.all([closeDueEpochs(bindings, now), closeDueEpochs(bindings, now), closeDueEpochs(bindings, now)]);
    }
    const row = (await epochRow(3))!;
    expect(row.status).toBe('closed');
    const lines = await linesOf(3);
    expect(lines.map((l) => String(l.node_id))).toEqual([node.a, node.b].sort());
    const txs = await money().execute("SELECT idempotency_key, id FROM ledger_transactions WHERE idempotency_key LIKE 'reward:3:%' ORDER BY idempotency_key");
    expect(txs.rows.map((r) => [r.idempotency_key, r.id])).toEqual(lines.map((l) => [`reward:3:${l.node_id}`, l.transaction_id]));
    expect(lines.reduce((s, l) => s + big(l.amount), 0n)).toBe(big(row.paid));
    expect(big(row.paid)).toBeGreaterThan(0n);
    await expectLedgerBalanced();
  });

  it('finishes exactly after a run that stops after one chunk, and after one that stops half-way through paying', async () => {
    for (const id of Object.values(node)) await upAllEpoch(id, 4);
    const oneByOne = { ...bindings, REWARDS_CLOSE_CHUNK: '1' } as Bindings;
    const now = closeAt(4);
    const first = await closeDueEpochs(oneByOne, now, { maxSteps: 1 });
    expect(first).toMatchObject({ epoch: 4, status: 'computing', steps: 1 });
    expect((await linesOf(4)).length).toBe(1);
    expect((await epochRow(4))!.cursor).toBe([...Object.values(node)].sort()[0]);
    // Runs until it is paying, then pays one line and stops.
    for (let i = 0; i < 10 && (await epochRow(4))!.status === 'computing'; i++) await closeDueEpochs(oneByOne, now, { maxSteps: 1 });
    expect((await epochRow(4))!.status).toBe('paying');
    await closeDueEpochs(oneByOne, now, { maxSteps: 1 });
    expect((await linesOf(4)).filter((l) => l.paid_at !== null).length).toBe(1);
    await closeThrough(4, now, oneByOne);
    const row = (await epochRow(4))!;
    const lines = await linesOf(4);
    expect(lines.length).toBe(4);
    const { split } = recompute(row, lines);
    expect(split.paid).toBe(big(row.paid));
    expect(lines.filter((l) => big(l.amount) > 0n).map((l) => String(l.node_id))).toEqual([node.a, node.b].sort());
    const txs = await money().execute("SELECT COUNT(*) AS n FROM ledger_transactions WHERE idempotency_key LIKE 'reward:4:%'");
    expect(Number(txs.rows[0]!.n)).toBe(2);
    for (const l of lines.filter((l) => big(l.amount) > 0n)) expect(l.transaction_id).toBeTruthy();
    await expectLedgerBalanced();
  });
});

describe('rewards: payments in batches', () => {
  it('pays a chunk in one batch; a batch that meets a line another run paid falls back to one by one and pays each line once', async () => {
    await upAllEpoch(node.a, 5);
    await upAllEpoch(node.b, 5);
    const now = closeAt(5);
    // No step starts once the budget is spent.
    expect(await closeDueEpochs(bindings, now, { budgetMs: 0 })).toMatchObject({ epoch: 5, steps: 0, paid: 0 });
    for (let i = 0; i < 10 && (await epochRow(5))!.status !== 'paying'; i++) await closeDueEpochs(bindings, now, { maxSteps: 1 });
    expect((await epochRow(5))!.status).toBe('paying');
    const [first] = (await linesOf(5)).filter((l) => big(l.amount) > 0n);
    // Another run posted the first line's reward and stopped before marking the line: the chunk's
    // batch meets its key, writes nothing, and the lines are paid one by one (the first replayed).
    const rule = supplyReward({
      owner: String(first!.owner_id), asset: 'GRID', immediate: big(first!.immediate), vesting: big(first!.vesting),
      idempotencyKey: `reward:5:${first!.node_id}`, reference: String(first!.node_id), memo: 'supply reward, epoch 5',
    });
    if (!rule.ok) throw new Error(rule.problem);
    const posted = await postTransaction(money(), rule.spec, { now });
    if (!posted.ok) throw new Error(posted.reason);
    // The payments chunk, then the step that finds nothing left and closes.
    expect(await closeDueEpochs(bindings, now, { maxSteps: 2 })).toMatchObject({ epoch: 5, steps: 2, paid: 1 });
    expect((await epochRow(5))!.status).toBe('closed');
    const lines = (await linesOf(5)).filter((l) => big(l.amount) > 0n);
    expect(lines.length).toBe(2);
    expect(lines.find((l) => l.node_id === first!.node_id)!.transaction_id).toBe(posted.transaction.id);
    const txs = await money().execute("SELECT idempotency_key, id FROM ledger_transactions WHERE idempotency_key LIKE 'reward:5:%' ORDER BY idempotency_key");
    expect(txs.rows.map((r) => [r.idempotency_key, r.id])).toEqual(lines.map((l) => [`reward:5:${l.node_id}`, l.transaction_id]));
    await expectLedgerBalanced();
  });

  it('pays a whole chunk in one batch: every line its own transaction, marked with its id', async () => {
    await upAllEpoch(node.a, 6);
    await upAllEpoch(node.b, 6);
    const now = closeAt(6);
    for (let i = 0; i < 10 && (await epochRow(6))?.status !== 'paying'; i++) await closeDueEpochs(bindings, now, { maxSteps: 1 });
    const result = await closeDueEpochs(bindings, now, { maxSteps: 1 });
    expect(result).toMatchObject({ epoch: 6, status: 'paying', steps: 1, paid: 2 });
    const lines = (await linesOf(6)).filter((l) => big(l.amount) > 0n);
    const txs = await money().execute("SELECT t.idempotency_key, t.id, -e.amount AS paid FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id WHERE t.idempotency_key LIKE 'reward:6:%' AND e.account_kind = 'rewards_pool' ORDER BY t.idempotency_key");
    expect(txs.rows.map((r) => [r.idempotency_key, r.id, big(r.paid)])).toEqual(lines.map((l) => [`reward:6:${l.node_id}`, l.transaction_id, big(l.amount)]));
    await closeThrough(6, now);
    await expectLedgerBalanced();
  });
});

describe('rewards: vesting', () => {
  it('releases vested rewards linearly after the epoch, each part once, and the vesting balance matches the lines', async () => {
    const line = (await linesOf(2)).find((l) => l.node_id === node.a)!;
    const vesting = big(line.vesting);
    expect(vesting).toBeGreaterThan(0n);
    const t = Number(line.paid_at) + 86_400_000;
    const available0 = await accountBalance(honest1.id, 'available');
    await Promise.all([closeDueEpochs(bindings, t), closeDueEpochs(bindings, t)]);
    const after = (await linesOf(2)).find((l) => l.node_id === node.a)!;
    const due = releasedBy(config, vesting, bounds(2).endMs, t);
    expect(due).toBeGreaterThan(0n);
    expect(due).toBeLessThan(vesting);
    expect(big(after.released)).toBe(due);
    expect(await accountBalance(honest1.id, 'available')).toBe(available0 + due);
    // Again at the same time: released within the day, nothing more.
    await closeDueEpochs(bindings, t);
    expect(big((await linesOf(2)).find((l) => l.node_id === node.a)!.released)).toBe(due);

    // Past the vesting period: everything released, every line of this owner.
    await closeDueEpochs(bindings, bounds(4).endMs + 3 * 86_400_000);
    const mine = await money().execute({ sql: 'SELECT vesting, released, forfeited FROM reward_lines WHERE owner_id = ? AND paid_at IS NOT NULL', args: [honest1.id] });
    for (const l of mine.rows) expect(big(l.released)).toBe(big(l.vesting));
    expect(await accountBalance(honest1.id, 'vesting')).toBe(0n);
    const releases = await money().execute({ sql: "SELECT COUNT(*) AS n FROM ledger_transactions WHERE idempotency_key LIKE ?", args: [`vesting:2:${node.a}:%`] });
    expect(Number(releases.rows[0]!.n)).toBe(2);
    await expectLedgerBalanced();
  });
});

describe('rewards: forfeits', () => {
  it('forfeits what is still vesting once a capacity inspection of the node fails, back to the pool, once', async () => {
    await upAllEpoch(node.b, 10);
    await closeThrough(10);
    const line = (await linesOf(10)).find((l) => l.node_id === node.b)!;
    const vesting = big(line.vesting);
    expect(vesting).toBeGreaterThan(0n);
    expect(await accountBalance(honest2.id, 'vesting')).toBe(vesting);
    // A decided, failed capacity inspection of node b, written as the inspection cron decides one.
    const decidedAt = closeAt(10) + 1_000;
    await db().insert(inspections).values({
      id: `insp_${crypto.randomUUID().replaceAll('-', '')}`, nodeId: node.b, kind: 'capacity', transcript: {}, draw: {}, status: 'decided',
      commitDeadline: decidedAt, revealDeadline: decidedAt, outcome: 'fail', basis: 'recomputation', createdAt: decidedAt - 60_000, decidedAt, settledAt: decidedAt,
    });
    const pool0 = await accountBalance('platform', 'rewards_pool');
    const sweep = { forfeitSweep: true };
    // Not swept this minute: nothing yet.
    expect((await closeDueEpochs(bindings, decidedAt + 1_000, { forfeitSweep: false })).forfeited).toBe(0);
    await Promise.all([closeDueEpochs(bindings, decidedAt + 1_000, sweep), closeDueEpochs(bindings, decidedAt + 1_000, sweep)]);
    const after = (await linesOf(10)).find((l) => l.node_id === node.b)!;
    expect([big(after.forfeited), big(after.released)]).toEqual([vesting, 0n]);
    expect(await accountBalance(honest2.id, 'vesting')).toBe(0n);
    const forfeits = await money().execute({ sql: 'SELECT kind FROM ledger_transactions WHERE idempotency_key = ?', args: [`forfeit:10:${node.b}`] });
    expect(forfeits.rows.map((r) => r.kind)).toEqual(['forfeit']);
    // The pool got it back (less anything a later epoch closed by these runs paid out).
    const paidSince = await money().execute({
      sql: `SELECT COALESCE(-SUM(e.amount), 0) AS s FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
            WHERE t.kind = 'supply_reward' AND t.created_at >= ? AND e.account_kind = 'rewards_pool'`,
      args: [decidedAt],
    });
    expect(await accountBalance('platform', 'rewards_pool')).toBe(pool0 + vesting - big(paidSince.rows[0]!.s));
    // Nothing of it is ever released.
    await closeDueEpochs(bindings, bounds(10).endMs + 10 * 86_400_000, sweep);
    expect(big((await linesOf(10)).find((l) => l.node_id === node.b)!.released)).toBe(0n);
    await expectLedgerBalanced();
  });
});

describe('rewards: routes', () => {
  it('are in the OpenAPI document', async () => {
    const doc = await json(await call('/openapi.json'));
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/admin/rewards/genesis', '/v1/rewards/schedule', '/v1/rewards/epochs/{n}', '/v1/rewards']));
  });

  it('GET /v1/rewards/schedule shows every parameter, the current epoch and what has been emitted', async () => {
    const res = await call('/v1/rewards/schedule');
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const body = await json(res);
    expect(body).toMatchObject({
      epoch_s: 3600, initial_per_epoch: '6000.00', retention: config.retention.toString(), allocation: '400000000.00', min_uptime_ppm: 950_000,
      owner_cap_ppm: 1_000_000, vesting_s: 172_800, close_chunk: 50, current_epoch: 0,
    });
    expect(body.current_emission).toBe('6000.00');
    expect(body.closed_epochs).toBeGreaterThanOrEqual(5);
    expect(Number(body.emitted)).toBeGreaterThan(0);
    expect(Number(body.pool_balance)).toBeGreaterThan(399_000_000);
  });

  it('GET /v1/rewards/epochs/{n}: a closed epoch’s report, paged; 404 for one not closed', async () => {
    const res = await call('/v1/rewards/epochs/2');
    expect(res.status).toBe(200);
    const body = await json(res);
    const row = (await epochRow(2))!;
    expect(body).toMatchObject({ epoch: 2, start: new Date(bounds(2).startMs).toISOString(), end: new Date(bounds(2).endMs).toISOString(), taper_ppm: 1_000_000, utilisation_ppm: 0, line_count: 4, inputs_hash: row.inputs_hash, next_cursor: null });
    expect([body.emission, body.paid, body.returned]).toEqual([money$(big(row.emission)), money$(big(row.paid)), money$(big(row.returned))]);
    // What the split used, published with it: E(n), the pool then (the emission is the smaller), and the parameters.
    expect(body.scheduled_emission).toBe(money$(emission(rewardsConfig(bindings), 2)));
    expect(big(row.emission)).toBe([emission(rewardsConfig(bindings), 2), big(row.pool_balance)].reduce((a, b) => (a < b ? a : b)));
    expect(body.pool_balance).toBe(money$(big(row.pool_balance)));
    expect(body.parameters).toEqual(rewardsParams(rewardsConfig(bindings)));
    expect(body.lines.map((l: any) => l.node_id)).toEqual(Object.values(node).sort());
    expect(body.lines.find((l: any) => l.node_id === node.a)).toMatchObject({ owner_id: honest1.id, gpu_model: 'h100-80gb', gpus_offered: 2, confirmed_s: 3600, leased_gpu_s: 0, verified: true, stake: '0.00', eligible: true });
    const page = await json(await call('/v1/rewards/epochs/2?limit=3'));
    expect(page.lines.length).toBe(3);
    const rest = await json(await call(`/v1/rewards/epochs/2?limit=3&cursor=${page.next_cursor}`));
    expect(rest).toMatchObject({ next_cursor: null });
    expect([...page.lines, ...rest.lines].map((l: any) => l.node_id)).toEqual(body.lines.map((l: any) => l.node_id));
    await expectError(await call('/v1/rewards/epochs/100000'), 404, 'not_found');
    // The epoch is decimal digits only: nothing Number() would also read.
    for (const bad of ['0x2', '2e0', '-1', '2.0', '%202']) await expectError(await call(`/v1/rewards/epochs/${bad}`), 400, 'validation_failed');
  });

  it('GET /v1/rewards shows the caller’s own lines and totals', async () => {
    await expectError(await call('/v1/rewards'), 401, 'unauthorized');
    const res = await call('/v1/rewards', { auth: honest1.apiKey });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.data.map((l: any) => [l.epoch, l.node_id])).toEqual([[6, node.a], [5, node.a], [4, node.a], [3, node.a], [2, node.a]]);
    expect(body.data[4]).toMatchObject({ status: 'closed', eligible: true, gpu_model: 'h100-80gb', forfeited: '0.00' });
    expect(body.totals.locked).toBe('0.00');
    expect(body.totals.released).toBe(body.totals.vesting);
    expect(body.rentals).toEqual([]);
    const entries = await json(await call('/v1/ledger/entries?asset=GRID&limit=200', { auth: honest1.apiKey }));
    const accounts = new Set(entries.data.filter((e: any) => e.kind === 'supply_reward').map((e: any) => e.account));
    expect([...accounts].sort()).toEqual(['available', 'vesting']);
    const farmed = await json(await call('/v1/rewards', { auth: farmer.apiKey }));
    expect(farmed.totals.rewards).toBe('0.00');
    expect(farmed.data.every((l: any) => l.amount === '0.00' && l.eligible === false)).toBe(true);
    // Paged one line at a time (two nodes, so pages end inside an epoch), every line comes once, in order.
    const paged: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 20; i++) {
      const page: any = await json(await call(`/v1/rewards?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { auth: farmer.apiKey }));
      paged.push(...page.data.map((l: any) => `${l.epoch}:${l.node_id}`));
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    expect(farmed.data.filter((l: any) => l.epoch === 4).length).toBe(2);
    expect(paged).toEqual(farmed.data.map((l: any) => `${l.epoch}:${l.node_id}`));
    await expectError(await call('/v1/rewards?cursor=4', { auth: farmer.apiKey }), 400, 'validation_failed');
  });
});

describe('rewards: a clock that jumps', () => {
  /** Everything closing can change: epochs, lines, and the ledger's reward and vesting transactions. */
  async function state() {
    const epochs = await money().execute('SELECT epoch, status, paid FROM reward_epochs ORDER BY epoch');
    const lines = await money().execute('SELECT epoch, node_id, amount, released, forfeited, paid_at FROM reward_lines ORDER BY epoch, node_id');
    const txs = await money().execute("SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind IN ('supply_reward', 'vesting_release', 'forfeit')");
    return JSON.stringify([epochs.rows, lines.rows, txs.rows], (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }

  it('back in time, closes, pays and releases nothing; far ahead, closes the next epoch only, in order, never skipping one', async () => {
    const newest = Number((await money().execute('SELECT MAX(epoch) AS n FROM reward_epochs')).rows[0]!.n);
    expect((await epochRow(newest))!.status).toBe('closed');
    const before = await state();
    // Back before the start, and back into an epoch already closed: nothing moves.
    for (const t of [config.startMs - 86_400_000, bounds(newest).startMs, closeAt(newest) - 60_000]) {
      const run = await closeDueEpochs(bindings, t);
      expect(run).toMatchObject({ epoch: null, paid: 0, released: 0, forfeited: 0 });
    }
    expect(await state()).toBe(before);

    // A jump far ahead (a year): the epoch after the newest is the one worked on, never a later one.
    const far = closeAt(newest + 8_760);
    const ahead = await closeDueEpochs(bindings, far, { maxSteps: 1 });
    expect(ahead.epoch).toBe(newest + 1);
    const ids = (await money().execute('SELECT epoch FROM reward_epochs ORDER BY epoch')).rows.map((r) => Number(r.epoch));
    expect(ids.at(-1)).toBe(newest + 1);
    expect(ids.filter((e) => e > newest)).toEqual([newest + 1]);
    await expectLedgerBalanced();
  });
});
