// Provider stake per node (docs/rewards.md, "Stake"): staking and unstaking through the API, the
// cool-down release by the cron step, the stake in a node's reward inputs and weight, and the
// slash (with the forfeit of unvested rewards) when a real capacity inspection fails. Imported by
// inspections.test.ts: the slash and the forfeit move the rewards pool, whose exact balance the
// inspector tests check.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { connection } from '../../src/db/client.ts';
import { inspections, nodeMetricsMinute, rewardLines } from '../../src/db/schema.ts';
import type { Bindings } from '../../src/env.ts';
import { decideInspection } from '../../src/inspections/inspections.ts';
import { mint, supplyReward } from '../../src/ledger/rules.ts';
import { postTransaction } from '../../src/ledger/store.ts';
import { rewardsConfig } from '../../src/rewards/config.ts';
import { nodeInputsChunk } from '../../src/rewards/inputs.ts';
import { releaseMaturedUnstakes, slashNodeStake, stakeConfig } from '../../src/rewards/stakes.ts';
import { weight } from '../../src/rewards/weights.ts';
import { call, db, expectError, fund, json, registerNode, signUp, type TestAccount } from './support.ts';

const bindings = env as unknown as Bindings;
const money = () => connection(bindings).money;
const big = (v: unknown) => BigInt((v ?? 0n) as bigint | number);
const GRID = (n: number) => BigInt(n) * 1_000_000n;
const POOL_ID = 'platform:GRID:rewards_pool';

async function balanceOf(id: string): Promise<bigint> {
  const rs = await money().execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [id] });
  return big(rs.rows[0]?.balance);
}

async function expectLedgerBalanced() {
  const rs = await money().execute('SELECT asset, SUM(balance) AS total FROM ledger_accounts GROUP BY asset');
  for (const r of rs.rows) expect([String(r.asset), big(r.total)]).toEqual([String(r.asset), 0n]);
}

const post = (who: TestAccount, path: string, amount: string, key: string = crypto.randomUUID()) =>
  call(path, { auth: who.apiKey, headers: { 'idempotency-key': key }, body: { amount } });
const stakeOf = async (who: TestAccount, nodeId: string) => json(await call(`/v1/nodes/${nodeId}/stake`, { auth: who.apiKey }));

async function provider(grid = '1000') {
  const p = await signUp(['provider']);
  await fund(p, 'GRID', grid);
  const { nodeId } = await registerNode(p);
  return { p, nodeId };
}

describe('provider stake per node', () => {
  it('stakes, unstakes with a cool-down, and the cron releases the unstake', async () => {
    const { p, nodeId } = await provider();
    const key = crypto.randomUUID();
    const first = await post(p, `/v1/nodes/${nodeId}/stake`, '300', key);
    expect(first.status).toBe(201);
    const staked = (await json(first)).stake;
    expect(staked).toMatchObject({ node_id: nodeId, kind: 'stake', amount: '300.00', status: 'staked' });
    // The same key again: the first stake, no second movement.
    const again = await post(p, `/v1/nodes/${nodeId}/stake`, '300', key);
    expect(again.status).toBe(200);
    expect((await json(again)).stake.id).toBe(staked.id);
    expect(await balanceOf(`${p.id}:GRID:available`)).toBe(GRID(700));
    expect(await balanceOf(`${p.id}:GRID:staked`)).toBe(GRID(300));
    // A stake is not a bond: the inspector role never sees it.
    expect(await balanceOf(`${p.id}:GRID:bonded`)).toBe(0n);
    expect((await json(await call('/v1/inspectors/me', { auth: p.apiKey }))).inspector).toBe(false);

    const ukey = crypto.randomUUID();
    const unstaked = await post(p, `/v1/nodes/${nodeId}/unstake`, '100', ukey);
    expect(unstaked.status).toBe(201);
    const u = (await json(unstaked)).unstake;
    expect(u).toMatchObject({ kind: 'unstake', amount: '100.00', status: 'pending', released_at: null });
    const cooldownMs = stakeConfig(bindings).cooldownMs;
    expect(Date.parse(u.release_at) - Date.parse(u.created_at)).toBe(cooldownMs);
    expect((await post(p, `/v1/nodes/${nodeId}/unstake`, '100', ukey)).status).toBe(200);
    // Beyond the active stake (200 left): refused.
    await expectError(await post(p, `/v1/nodes/${nodeId}/unstake`, '200.01'), 409, 'conflict');
    expect(await stakeOf(p, nodeId)).toMatchObject({ node_id: nodeId, active: '200.00', unstaking: '100.00', unstake_cooldown_s: cooldownMs / 1000 });
    expect((await stakeOf(p, nodeId)).unstakes.map((x: { id: string }) => x.id)).toEqual([u.id]);
    // Still staked, in the ledger, until the cool-down ends.
    expect(await releaseMaturedUnstakes(money(), Date.now())).not.toContain(u.id);
    expect(await balanceOf(`${p.id}:GRID:staked`)).toBe(GRID(300));
    const later = Date.parse(u.release_at) + 1_000;
    const [a, b] = await Promise.all([releaseMaturedUnstakes(money(), later), releaseMaturedUnstakes(money(), later)]);
    expect([...a, ...b].filter((id) => id === u.id)).toEqual([u.id]);
    expect(await releaseMaturedUnstakes(money(), later)).not.toContain(u.id);
    expect(await balanceOf(`${p.id}:GRID:available`)).toBe(GRID(800));
    expect(await balanceOf(`${p.id}:GRID:staked`)).toBe(GRID(200));
    const txs = await money().execute({ sql: `SELECT kind FROM ledger_transactions WHERE idempotency_key = ?`, args: [`unstake:${u.id}`] });
    expect(txs.rows.map((r) => r.kind)).toEqual(['unstake']);
    expect(await stakeOf(p, nodeId)).toMatchObject({ active: '200.00', unstaking: '0.00', unstakes: [] });
    await expectLedgerBalanced();
  });

  it("answers 404 for another account's node, and refuses more than is available", async () => {
    const { p, nodeId } = await provider('10');
    const other = await signUp(['provider']);
    await fund(other, 'GRID', '100');
    await expectError(await post(other, `/v1/nodes/${nodeId}/stake`, '1'), 404, 'not_found');
    await expectError(await post(other, `/v1/nodes/${nodeId}/unstake`, '1'), 404, 'not_found');
    await expectError(await call(`/v1/nodes/${nodeId}/stake`, { auth: other.apiKey }), 404, 'not_found');
    await expectError(await post(p, '/v1/nodes/node_doesnotexist/stake', '1'), 404, 'not_found');
    expect((await post(p, `/v1/nodes/${nodeId}/stake`, '10.01')).status).toBe(402);
    await expectError(await post(p, `/v1/nodes/${nodeId}/unstake`, '1'), 409, 'conflict');
    expect(await balanceOf(`${other.id}:GRID:staked`)).toBe(0n);
  });

  it('refuses a new stake on a revoked node (409, nothing moves), still answers a retry of an earlier stake, and lets the stake be unstaked', async () => {
    const { p, nodeId } = await provider('10');
    const key = crypto.randomUUID();
    expect((await post(p, `/v1/nodes/${nodeId}/stake`, '4', key)).status).toBe(201);
    expect((await call(`/v1/nodes/${nodeId}/revoke`, { method: 'POST', auth: p.apiKey })).status).toBe(200);
    await expectError(await post(p, `/v1/nodes/${nodeId}/stake`, '1'), 409, 'conflict');
    expect(await balanceOf(`${p.id}:GRID:staked`)).toBe(GRID(4));
    expect(await balanceOf(`${p.id}:GRID:available`)).toBe(GRID(6));
    expect((await post(p, `/v1/nodes/${nodeId}/stake`, '4', key)).status).toBe(200);
    expect((await post(p, `/v1/nodes/${nodeId}/unstake`, '4')).status).toBe(201);
    const { data } = await json(await call('/v1/ledger/entries?asset=GRID', { auth: p.apiKey }));
    expect(data.filter((e: any) => e.kind === 'stake').map((e: any) => [e.account, e.amount])).toEqual([['staked', '4.00'], ['available', '-4.00']]);
    await expectLedgerBalanced();
  });

  it("counts the active stake in the node's reward inputs, and its weight gets the stake bonus", async () => {
    const { p, nodeId } = await provider();
    expect((await post(p, `/v1/nodes/${nodeId}/stake`, '150')).status).toBe(201);
    expect((await post(p, `/v1/nodes/${nodeId}/stake`, '100')).status).toBe(201);
    expect((await post(p, `/v1/nodes/${nodeId}/unstake`, '50')).status).toBe(201);
    // An epoch far ahead, so that no rewards close ever reaches it: one confirmed minute in it.
    const config = rewardsConfig(bindings);
    const epochS = config.epochMs / 1000;
    const startMs = Math.floor((Date.now() + 1_000 * 86_400_000) / config.epochMs) * config.epochMs;
    await db().insert(nodeMetricsMinute).values({ nodeId, minute: startMs / 60_000, heartbeats: 6, utilSum: 0, utilSamples: 6, powerSumW: 0, powerSamples: 6 });
    const lines = await nodeInputsChunk(connection(bindings).client, { startMs, endMs: startMs + config.epochMs }, epochS, {
      after: nodeId.slice(0, -1),
      limit: 50,
      verifiedTtlMs: 86_400_000,
    });
    const line = lines.find((l) => l.nodeId === nodeId)!;
    expect(line.stake).toBe(GRID(200));
    // As if eligible, with one H100 offered all epoch: the stake (200 of the 200 per GPU) adds the full bonus.
    const eligible = { ...line, gpuModel: 'h100-80gb', gpusOffered: 1, confirmedS: epochS, leasedGpuS: 0, verified: true };
    const staked = weight(config, epochS, eligible);
    const unstaked = weight(config, epochS, { ...eligible, stake: 0n });
    expect(unstaked).toBe(1_000_000n);
    const expected = (1_000_000n * (1_000_000n + BigInt(config.stakeBonusPpm) * (GRID(200) < config.stakePerGpu ? GRID(200) : config.stakePerGpu) / config.stakePerGpu)) / 1_000_000n;
    expect(staked).toBe(expected);
    expect(staked).toBeGreaterThan(unstaked);
  });

  it('a failed capacity inspection slashes the stake into the pool once and forfeits unvested rewards', async () => {
    const { p, nodeId } = await provider();
    expect((await post(p, `/v1/nodes/${nodeId}/stake`, '500')).status).toBe(201);
    const pendingRes = await post(p, `/v1/nodes/${nodeId}/unstake`, '100');
    expect(pendingRes.status).toBe(201);
    const pending = (await json(pendingRes)).unstake;
    // A paid supply reward of the node, still vesting (as an epoch's close pays one).
    const now = Date.now();
    const config = rewardsConfig(bindings);
    const epoch = Math.floor((now - config.startMs) / config.epochMs);
    const minted = mint({ asset: 'GRID', amount: GRID(40), idempotencyKey: `test-mint:${crypto.randomUUID()}`, reference: null });
    const paid = supplyReward({ owner: p.id, asset: 'GRID', immediate: 0n, vesting: GRID(40), idempotencyKey: `test-supply:${epoch}:${nodeId}`, reference: nodeId });
    if (!minted.ok || !paid.ok) throw new Error('rules');
    expect((await postTransaction(money(), minted.spec)).ok).toBe(true);
    expect((await postTransaction(money(), paid.spec)).ok).toBe(true);
    await db().insert(rewardLines).values({
      epoch, nodeId, ownerId: p.id, gpuModel: 'h100-80gb', gpusOffered: 1, confirmedS: 3600, leasedGpuS: 0, verified: true, stake: 0,
      eligible: true, weight: 1_000_000, amount: 40_000_000, immediate: 0, vesting: 40_000_000, paidAt: now, releasedAt: now,
    });
    const pool0 = await balanceOf(POOL_ID);
    // An open, real capacity inspection whose transcript cannot hold: it is decided `fail`.
    const id = `insp_${crypto.randomUUID().replaceAll('-', '')}`;
    await db().insert(inspections).values({
      id, nodeId, kind: 'capacity', transcript: {}, draw: {}, status: 'open', commitDeadline: now, revealDeadline: now, createdAt: now - 60_000,
    });
    const decided = await Promise.all([decideInspection(bindings, id, now + 1_000), decideInspection(bindings, id, now + 1_000)]);
    expect(decided.filter(Boolean)).toHaveLength(1);
    expect(await decideInspection(bindings, id, now + 2_000)).toBe(false);
    const row = (await money().execute({ sql: 'SELECT outcome FROM inspections WHERE id = ?', args: [id] })).rows[0]!;
    expect(row.outcome).toBe('fail');

    // All 500 (the pending 100 included) went to the pool, once; and the 40 still vesting.
    expect(await balanceOf(`${p.id}:GRID:staked`)).toBe(0n);
    expect(await balanceOf(`${p.id}:GRID:vesting`)).toBe(0n);
    expect(await balanceOf(`${p.id}:GRID:available`)).toBe(GRID(500));
    expect(await balanceOf(POOL_ID)).toBe(pool0 + GRID(540));
    const slashes = await money().execute({ sql: 'SELECT kind FROM ledger_transactions WHERE idempotency_key = ?', args: [`stake-slash:${id}`] });
    expect(slashes.rows.map((r) => r.kind)).toEqual(['stake_slash']);
    const line = (await money().execute({ sql: 'SELECT forfeited FROM reward_lines WHERE epoch = ? AND node_id = ?', args: [epoch, nodeId] })).rows[0]!;
    expect(big(line.forfeited)).toBe(GRID(40));
    const rows = await money().execute({ sql: `SELECT id, kind, amount, status FROM node_stakes WHERE node_id = ? AND kind = 'unstake' ORDER BY amount`, args: [nodeId] });
    expect(rows.rows.map((r) => [r.id === pending.id, String(r.status), big(r.amount)])).toEqual([
      [true, 'slashed', GRID(100)],
      [false, 'slashed', GRID(400)],
    ]);
    expect(await stakeOf(p, nodeId)).toMatchObject({ active: '0.00', unstaking: '0.00', unstakes: [] });
    // The slashed unstake is never released; nothing is left to unstake.
    expect(await releaseMaturedUnstakes(money(), Date.parse(pending.release_at) + 1_000)).not.toContain(pending.id);
    await expectError(await post(p, `/v1/nodes/${nodeId}/unstake`, '1'), 409, 'conflict');
    expect(await balanceOf(`${p.id}:GRID:available`)).toBe(GRID(500));
    await expectLedgerBalanced();
  });

  it('a partial slash (REWARDS_STAKE_SLASH_PPM) takes its share of the active stake and of each pending unstake', async () => {
    const { p, nodeId } = await provider();
    expect((await post(p, `/v1/nodes/${nodeId}/stake`, '300')).status).toBe(201);
    const u = (await json(await post(p, `/v1/nodes/${nodeId}/unstake`, '100'))).unstake;
    const half = { ...bindings, REWARDS_STAKE_SLASH_PPM: '500000' } as Bindings;
    const inspectionId = `insp_${crypto.randomUUID().replaceAll('-', '')}`;
    const pool0 = await balanceOf(POOL_ID);
    expect(await slashNodeStake(half, nodeId, inspectionId)).toBe(GRID(150));
    expect(await slashNodeStake(half, nodeId, inspectionId)).toBe(0n);
    expect(await balanceOf(POOL_ID)).toBe(pool0 + GRID(150));
    expect(await balanceOf(`${p.id}:GRID:staked`)).toBe(GRID(150));
    expect(await stakeOf(p, nodeId)).toMatchObject({ active: '100.00', unstaking: '50.00' });
    // The rest of the pending unstake is released after its cool-down.
    expect(await releaseMaturedUnstakes(money(), Date.parse(u.release_at) + 1_000)).toContain(u.id);
    expect(await balanceOf(`${p.id}:GRID:available`)).toBe(GRID(750));
    expect(await balanceOf(`${p.id}:GRID:staked`)).toBe(GRID(100));
    expect(await stakeOf(p, nodeId)).toMatchObject({ active: '100.00', unstaking: '0.00' });
    await expectLedgerBalanced();
  });

  it("a decoy's fail slashes nothing", async () => {
    const { p, nodeId } = await provider();
    expect((await post(p, `/v1/nodes/${nodeId}/stake`, '100')).status).toBe(201);
    const now = Date.now();
    const id = `insp_${crypto.randomUUID().replaceAll('-', '')}`;
    await db().insert(inspections).values({
      id, nodeId, kind: 'capacity', decoy: true, expect: 'fail', transcript: {}, draw: {}, status: 'open', commitDeadline: now, revealDeadline: now, createdAt: now,
    });
    expect(await decideInspection(bindings, id, now + 1_000)).toBe(true);
    expect(await balanceOf(`${p.id}:GRID:staked`)).toBe(GRID(100));
    expect(await stakeOf(p, nodeId)).toMatchObject({ active: '100.00' });
    await expectLedgerBalanced();
  });
});
