// Supply rewards end to end on the local platform (`npm start`'s launcher) with one-minute epochs
// and the cron every 2 s: an operator mints the genesis allocation; two honest providers each run
// the bundled gridlease-runner (process executor, fake nvidia-smi: one H100, and eight A100s),
// become verified and offer GPUs in sell orders; a third machine runs the runner (heartbeats,
// verified) but offers nothing. The first epoch that begins after all three are up closes two
// minutes after its end (CLOSE_DELAY_MS), and its public report pays the two honest nodes in
// proportion to their weights and the idle one nothing; the ledger shows each provider's
// immediate part available and the rest vesting; the split recomputes from the published lines
// (here with splitEpoch, and with `gridlease-runner verify-epoch`); the market page shows the figures.
//
// Settings that differ from the defaults, and why:
// - REWARDS_EPOCH_S 60 (the shortest allowed), REWARDS_START a minute before the run: epoch 0 is
//   already under way, and the test waits for the first epoch that starts after the nodes are
//   verified and offering, so that they are up for all of it (one confirmed heartbeat minute of
//   one, confirmed_s 60 ≥ the default 95%; REWARDS_MIN_UPTIME_PPM stays at its default). That
//   epoch's end plus the two-minute close delay makes the run about four minutes long.
// - REWARDS_OWNER_CAP_PPM 1,000,000: with the default 10% cap each of two owners would be capped
//   (both would get the cap, not shares in proportion to weight).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAmount } from '../../src/money/amount.ts';
import { rewardsConfig } from '../../src/rewards/config.ts';
import { emission as scheduledEmission } from '../../src/rewards/schedule.ts';
import { splitEpoch } from '../../src/rewards/split.ts';
import { vestingSplit } from '../../src/rewards/vesting.ts';
import { apiClient, FAKE_SMI, makeOperator, runnerProcesses, runRunner, signUp, smiFixture } from '../support/e2e.ts';
import { freePort, launch, type Platform } from '../support/platform.ts';

const SMI = smiFixture;

const EPOCH_MS = 60_000;
const START_MS = Math.floor(Date.now() / EPOCH_MS) * EPOCH_MS - EPOCH_MS;
const REWARDS_ENV = {
  REWARDS_START: new Date(START_MS).toISOString(),
  REWARDS_EPOCH_S: String(EPOCH_MS / 1000),
  REWARDS_OWNER_CAP_PPM: '1000000',
};
/** The same configuration the Worker reads (wrangler.toml's values are the defaults). */
const config = rewardsConfig(REWARDS_ENV);

const work = mkdtempSync(join(tmpdir(), 'gridlease-rewards-e2e-'));
const runners = runnerProcesses();
let platform: Platform | undefined;
afterAll(async () => {
  runners.killAll();
  await platform?.stop();
  rmSync(work, { recursive: true, force: true });
});

const api = apiClient(() => platform!.url);
const account = (label: string, roles = ['provider']) => signUp(api, label, roles);

/** Micro-units of a decimal string. */
function micro(text: string): bigint {
  const parsed = parseAmount(text, { allowZero: true });
  if (!parsed.ok) throw new Error(`not an amount: ${text}`);
  return parsed.value;
}

/** Joins a machine whose nvidia-smi lists `gpus` (a CSV file) and starts its runner. */
async function machine(owner: { key: string }, label: string, gpus: string, metrics: string) {
  const env = { ...process.env, GRIDLEASE_CONFIG: join(work, label, 'runner.json'), GRIDLEASE_NVIDIA_SMI: FAKE_SMI, FAKE_SMI_GPUS: gpus, FAKE_SMI_METRICS: metrics };
  const { join_token } = (await api('/v1/nodes/join-tokens', { method: 'POST', auth: owner.key })).body;
  const joined = runRunner(['join', '--api', platform!.url, '--token', join_token, '--region', 'us-east'], env);
  expect(joined.status, joined.stderr).toBe(0);
  const nodeId = JSON.parse(readFileSync(env.GRIDLEASE_CONFIG, 'utf8')).node_id as string;
  const { out } = runners.start(['start', '--executor', 'process'], env);
  return { nodeId, out };
}

const nodeOf = async (nodeId: string, key: string) => (await api(`/v1/nodes/${nodeId}`, { auth: key })).body.node;

interface Line {
  node_id: string;
  owner_id: string;
  gpu_model: string | null;
  gpus_offered: number;
  confirmed_s: number;
  leased_gpu_s: number;
  verified: boolean;
  stake: string;
  eligible: boolean;
  weight: string;
  amount: string;
  immediate: string;
  vesting: string;
}

describe('supply rewards on the local platform', () => {
  it('pays two verified, offering nodes in proportion to their weights and an idle one nothing, immediate part available and the rest vesting', async () => {
    const libsqlPort = await freePort();
    platform = await launch({
      dataDir: join(work, 'data'),
      port: await freePort(),
      libsqlPort,
      env: {
        HEARTBEAT_INTERVAL_S: '1',
        HEARTBEAT_MIN_INTERVAL_S: '0.5',
        HEARTBEAT_FLUSH_S: '1',
        NODE_GRACE_S: '60',
        CAPACITY_MAX_N: '128',
        GRIDLEASE_CRON_S: '2',
        ...REWARDS_ENV,
      },
    });

    // An operator (the role set in libSQL, as only a local platform allows) mints the genesis allocation.
    const operator = await account('operator', ['renter']);
    await makeOperator(libsqlPort, operator.id);
    const genesis = await api('/v1/admin/rewards/genesis', { method: 'POST', auth: operator.key });
    expect(genesis.status, JSON.stringify(genesis.body)).toBe(201);
    expect(micro(genesis.body.amount)).toBe(config.allocation);

    // Two honest providers and a farmer, each with a machine running gridlease-runner.
    const alice = await account('alice');
    const bob = await account('bob');
    const farmer = await account('farmer');
    const farmerSmi = join(work, 'farmer-smi.csv');
    writeFileSync(farmerSmi, readFileSync(SMI('h100.csv'), 'utf8').replace(/GPU-[0-9a-f-]+/, `GPU-${crypto.randomUUID()}`));
    const [a, b, f] = [
      await machine(alice, 'alice', SMI('h100.csv'), SMI('metrics-h100.csv')),
      await machine(bob, 'bob', SMI('a100x8-header-units.csv'), SMI('metrics-a100x8-header-units.csv')),
      await machine(farmer, 'farmer', farmerSmi, SMI('metrics-h100.csv')),
    ];
    for (const [node, owner] of [[a, alice], [b, bob], [f, farmer]] as const) {
      await expect.poll(async () => (await nodeOf(node.nodeId, owner.key))?.verified, { timeout: 60_000, interval: 500 }).toBe(true);
    }

    // The honest two offer GPUs for the next hour: one H100, and two of the eight A100s. The farmer offers nothing.
    const expires_at = new Date(Date.now() + 3_600_000).toISOString();
    const sells = [
      { owner: alice, body: { side: 'sell', region: 'us-east', gpu_model: 'h100-80gb', gpus: 1, price: '2.40', node_id: a.nodeId, expires_at } },
      { owner: bob, body: { side: 'sell', region: 'us-east', gpu_model: 'a100-80gb', gpus: 2, price: '1.60', node_id: b.nodeId, expires_at } },
    ];
    for (const s of sells) {
      const placed = await api('/v1/orders', { auth: s.owner.key, key: true, body: s.body });
      expect(placed.status, JSON.stringify(placed.body)).toBe(201);
      expect(placed.body.order.status).toBe('open');
    }

    // The first epoch that starts once all of this is in place; it closes 2 minutes after its end.
    const epoch = Math.ceil((Date.now() - START_MS) / EPOCH_MS);
    const report = await expect
      .poll(async () => (await api(`/v1/rewards/epochs/${epoch}`)).status, { timeout: (epoch + 1) * EPOCH_MS + START_MS - Date.now() + 180_000, interval: 2_000 })
      .toBe(200)
      .then(async () => (await api(`/v1/rewards/epochs/${epoch}`)).body);
    for (const n of [a, b, f]) expect(n.out.log).not.toMatch(/TypeError|ReferenceError/);

    const lines = report.lines as Line[];
    expect(report.line_count).toBe(lines.length);
    expect(report.next_cursor).toBeNull();
    const lineOf = (nodeId: string) => lines.find((l) => l.node_id === nodeId);
    const la = lineOf(a.nodeId)!;
    const lb = lineOf(b.nodeId)!;
    expect(la).toMatchObject({ owner_id: alice.id, gpu_model: 'h100-80gb', gpus_offered: 1, confirmed_s: 60, leased_gpu_s: 0, verified: true, eligible: true, weight: '1000000' });
    expect(lb).toMatchObject({ owner_id: bob.id, gpu_model: 'a100-80gb', gpus_offered: 2, confirmed_s: 60, leased_gpu_s: 0, verified: true, eligible: true, weight: String(2 * 642_204) });
    // The farmer: up and verified, but nothing offered, so not eligible and paid nothing.
    const lf = lineOf(f.nodeId);
    if (lf) expect(lf).toMatchObject({ gpus_offered: 0, verified: true, eligible: false, amount: '0.00' });

    // The emission: E(n) of the schedule, all to providers (no inspectors here, nothing leased: taper 100%).
    const emitted = micro(report.emission);
    expect(emitted).toBe(scheduledEmission(config, epoch));
    expect(micro(report.inspector_pay)).toBe(0n);
    expect(report.taper_ppm).toBe(1_000_000);
    const P = micro(report.providers_emission);
    expect(P).toBe(emitted);
    const amounts = lines.map((l) => micro(l.amount));
    const paid = amounts.reduce((s, x) => s + x, 0n);
    expect(paid).toBe(micro(report.paid));
    expect(paid + micro(report.returned) + micro(report.inspector_pay)).toBe(emitted);

    // In proportion to weight, within a micro-unit: amount = ⌊P · w / W⌋ over the eligible weights.
    const weights = lines.filter((l) => l.eligible).map((l) => BigInt(l.weight));
    const W = weights.reduce((s, x) => s + x, 0n);
    for (const l of [la, lb]) expect(micro(l.amount)).toBe((P * BigInt(l.weight)) / W);
    const [amountA, amountB, wA, wB] = [micro(la.amount), micro(lb.amount), BigInt(la.weight), BigInt(lb.weight)];
    const skew = amountA * wB - amountB * wA; // |amountA/wA − amountB/wB| · wA·wB
    expect(skew <= wA * wB && -skew <= wA * wB).toBe(true);
    expect(amountA > 0n && amountB > 0n).toBe(true);

    // The split recomputes from the published lines alone (what `gridlease-runner verify-epoch` does).
    const again = splitEpoch(
      config,
      EPOCH_MS / 1000,
      emitted,
      micro(report.inspector_pay),
      lines.map((l) => ({
        nodeId: l.node_id,
        ownerId: l.owner_id,
        gpuModel: l.gpu_model,
        gpusOffered: l.gpus_offered,
        confirmedS: l.confirmed_s,
        leasedGpuS: l.leased_gpu_s,
        verified: l.verified,
        stake: micro(l.stake),
      })),
    );
    expect(again.paid).toBe(paid);
    expect(again.returned).toBe(micro(report.returned));
    expect(again.taperPpm).toBe(report.taper_ppm);
    expect(Object.fromEntries(again.lines.map((l) => [l.nodeId, [l.weight.toString(), l.amount]]))).toEqual(
      Object.fromEntries(lines.filter((l) => l.eligible).map((l) => [l.node_id, [l.weight, micro(l.amount)]])),
    );
    for (const l of lines) expect([micro(l.immediate), micro(l.vesting)]).toEqual(Object.values(vestingSplit(config, micro(l.amount))));
    // And with the bundled runner, from the public report and schedule only.
    const verified = runRunner(['verify-epoch', String(epoch), '--api', platform.url], process.env);
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);

    // The ledger: each provider's immediate parts are available GRID, the rest vesting (90 days, none released yet).
    // Later epochs keep closing meanwhile, so the figures are read until two reads of the rewards agree.
    for (const [owner, line] of [[alice, la], [bob, lb]] as const) {
      await expect
        .poll(
          async () => {
            const before = (await api('/v1/rewards', { auth: owner.key })).body;
            const grid = (await api('/v1/balances', { auth: owner.key })).body.data.find((x: { asset: string }) => x.asset === 'GRID');
            const after = (await api('/v1/rewards', { auth: owner.key })).body;
            if (JSON.stringify(before.totals) !== JSON.stringify(after.totals)) return 'moving';
            const mine = (after.data as Array<{ epoch: number; node_id: string; amount: string; immediate: string; vesting: string; released: string; status: string }>).find(
              (x) => x.epoch === epoch && x.node_id === line.node_id,
            );
            return {
              line: mine && [mine.status, mine.amount, mine.immediate, mine.vesting, mine.released],
              available: micro(grid?.available ?? '0') === micro(after.totals.immediate),
              locked: micro(after.totals.locked) === micro(after.totals.vesting) && micro(after.totals.vesting) > 0n,
              sums: micro(after.totals.rewards) === micro(after.totals.immediate) + micro(after.totals.vesting),
            };
          },
          { timeout: 20_000, interval: 500 },
        )
        .toEqual({ line: ['closed', line.amount, line.immediate, line.vesting, '0.00'], available: true, locked: true, sums: true });
    }
    const idle = (await api('/v1/rewards', { auth: farmer.key })).body;
    expect(micro(idle.totals.rewards)).toBe(0n);
    expect(micro((await api('/v1/balances', { auth: farmer.key })).body.data.find((x: { asset: string }) => x.asset === 'GRID')?.available ?? '0')).toBe(0n);

    // The schedule counts the closed epochs' payments.
    const schedule = (await api('/v1/rewards/schedule')).body;
    expect(schedule.closed_epochs).toBeGreaterThanOrEqual(epoch + 1);
    expect(micro(schedule.emitted)).toBeGreaterThanOrEqual(paid);

    // The market page shows the same figures: the current epoch, the emission left, the last closed epoch's top line.
    const grid = (v: bigint) => {
      let fraction = (v % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
      if (fraction.length < 2) fraction = fraction.padEnd(2, '0');
      return `${(v / 1_000_000n).toLocaleString('en-US')}.${fraction} GRID`;
    };
    await expect
      .poll(
        async () => {
          const before = (await api('/v1/rewards/schedule')).body;
          const html = await (await fetch(`${platform!.url}/`)).text();
          const after = (await api('/v1/rewards/schedule')).body;
          if (before.closed_epochs !== after.closed_epochs || before.current_epoch !== after.current_epoch) return 'moving';
          const last = (await api(`/v1/rewards/epochs/${after.closed_epochs - 1}`)).body;
          const cell = (id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(html)?.[1];
          const shown = ['current-epoch', 'left', 'last-epoch', 'last-paid', 'last-nodes', 'last-taper'].map((id) => cell(`rewards-${id}`));
          const nodesPaid = (last.lines as Line[]).filter((l) => micro(l.amount) > 0n).length;
          const expected = [String(after.current_epoch), grid(micro(after.allocation) - micro(after.emitted)), String(last.epoch), grid(micro(last.paid)), String(nodesPaid), '100%'];
          return shown.every((x, i) => x === expected[i]) || JSON.stringify({ shown, expected });
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBe(true);
  }, 420_000);
});
