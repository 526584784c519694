// `verify-epoch` against epoch reports built here the way the platform builds them: inputs of a
// random fleet, the split and vesting from the pure rules (src/rewards/), inputs_hash from
// src/rewards/close.ts, served by a fake API paged like GET /v1/rewards/epochs/{n}. One changed
// amount, weight, input or total must turn exit 0 into exit 1, naming the check.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEpoch } from '../../../runner/src/verify-epoch.ts';
import { formatAmount } from '../../../src/money/amount.ts';
import { rewardsConfig, type RewardsConfig } from '../../../src/rewards/config.ts';
import { emission, epochBounds } from '../../../src/rewards/schedule.ts';
import { splitEpoch } from '../../../src/rewards/split.ts';
import { vestingSplit } from '../../../src/rewards/vesting.ts';
import { modelWeights, type NodeInputs } from '../../../src/rewards/weights.ts';
import { FakeApi, apiError, tempDir } from './helpers.ts';

// The platform's own inputsHash (src/rewards/close.ts). That module also holds the Worker's I/O,
// whose types (Fetcher, Env) this project's Node type-check does not have: imported by a path the
// type-checker does not follow, so the test still compares against the code that closes epochs.
const CLOSE_MODULE = '../../../src/rewards/close.ts';
const inputsHash = async (lines: NodeInputs[]): Promise<string> =>
  ((await import(/* @vite-ignore */ CLOSE_MODULE)) as { inputsHash: (l: NodeInputs[]) => Promise<string> }).inputsHash(lines);

const config = rewardsConfig({ REWARDS_START: '2026-12-01T00:00:00Z', REWARDS_OWNER_CAP_PPM: '150000' });
const EPOCH = 7;
const epochS = config.epochMs / 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A seeded PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A fleet of `size` nodes over a few owners: most eligible, some not verified, short of uptime,
 * offering nothing or of an unknown model; one owner holds many large GPUs, so the cap bites.
 */
function fleet(size: number, seed: number): NodeInputs[] {
  const r = prng(seed);
  const models = modelWeights().map(([m]) => m);
  const nodes: NodeInputs[] = [];
  for (let i = 0; i < size; i++) {
    const big = i % 4 === 0;
    const gpus = big ? 8 : 1 + Math.floor(r() * 4);
    const kind = r();
    nodes.push({
      nodeId: `node_${(i * 7919 + seed).toString(32).padStart(6, '0')}${Math.floor(r() * 1e6).toString(32)}`,
      ownerId: big ? 'acc_whale' : `acc_${Math.floor(r() * 6)}`,
      gpuModel: kind < 0.04 ? 'mystery-gpu' : big ? 'h200-141gb' : models[Math.floor(r() * models.length)]!,
      gpusOffered: kind > 0.04 && kind < 0.08 ? 0 : gpus,
      confirmedS: kind > 0.08 && kind < 0.16 ? Math.floor(epochS * 0.5) : epochS - 60 * Math.floor(r() * 3),
      leasedGpuS: Math.floor(r() * gpus * epochS * 0.6),
      verified: !(kind > 0.16 && kind < 0.22),
      stake: 0n,
    });
  }
  return nodes;
}

interface Report {
  epoch: number;
  start: string;
  end: string;
  emission: string;
  inspector_pay: string;
  taper_ppm: number;
  utilisation_ppm: number;
  providers_emission: string;
  paid: string;
  returned: string;
  line_count: number;
  inputs_hash: string;
  closed_at: string;
  scheduled_emission?: string | null;
  pool_balance?: string | null;
  parameters?: object | null;
  lines: Record<string, any>[];
  next_cursor: string | null;
}

/** The whole report as close.ts stores it and the route lists it (all lines, by node id). */
async function buildReport(c: RewardsConfig, n: number, nodes: NodeInputs[], pool: bigint, inspectorPay: bigint): Promise<Report> {
  const sorted = [...nodes].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  const scheduled = emission(c, n);
  const emitted = scheduled < pool ? scheduled : pool;
  const split = splitEpoch(c, epochS, emitted, inspectorPay, sorted);
  const byNode = new Map(split.lines.map((l) => [l.nodeId, l]));
  const bounds = epochBounds(c, n);
  return {
    epoch: n,
    start: iso(bounds.startMs),
    end: iso(bounds.endMs),
    emission: formatAmount(emitted),
    inspector_pay: formatAmount(inspectorPay),
    taper_ppm: split.taperPpm,
    utilisation_ppm: split.utilisationPpm,
    providers_emission: formatAmount(split.providersEmission),
    paid: formatAmount(split.paid),
    returned: formatAmount(split.returned),
    line_count: sorted.length,
    inputs_hash: await inputsHash(sorted),
    closed_at: iso(bounds.endMs + 180_000),
    lines: sorted.map((i) => {
      const l = byNode.get(i.nodeId);
      const amount = l?.amount ?? 0n;
      const v = vestingSplit(c, amount);
      return {
        node_id: i.nodeId,
        owner_id: i.ownerId,
        gpu_model: i.gpuModel,
        gpus_offered: i.gpusOffered,
        confirmed_s: i.confirmedS,
        leased_gpu_s: i.leasedGpuS,
        verified: i.verified,
        stake: formatAmount(i.stake),
        eligible: l !== undefined,
        weight: (l?.weight ?? 0n).toString(),
        amount: formatAmount(amount),
        immediate: formatAmount(v.immediate),
        vesting: formatAmount(v.vesting),
      };
    }),
    next_cursor: null,
  };
}

/** GET /v1/rewards/schedule as the route answers it. */
function scheduleOf(c: RewardsConfig) {
  return {
    start: iso(c.startMs),
    epoch_s: c.epochMs / 1000,
    initial_per_epoch: formatAmount(c.initialPerEpoch),
    retention: c.retention.toString(),
    decay_per_year: null,
    allocation: formatAmount(c.allocation),
    min_uptime_ppm: c.minUptimePpm,
    lease_bonus_ppm: c.leaseBonusPpm,
    stake_bonus_ppm: c.stakeBonusPpm,
    stake_per_gpu: formatAmount(c.stakePerGpu),
    taper_floor_ppm: c.taperFloorPpm,
    taper_full_util_ppm: c.taperFullUtilPpm,
    owner_cap_ppm: c.ownerCapPpm,
    immediate_ppm: c.immediatePpm,
    vesting_s: c.vestingMs / 1000,
    close_chunk: c.closeChunk,
    current_epoch: EPOCH + 2,
    current_epoch_start: null,
    current_epoch_end: null,
    current_emission: '0.00',
    emitted: '0.00',
    closed_epochs: EPOCH + 1,
    pool_balance: '0.00',
  };
}

/** One page as the route pages it: lines with node_id > cursor, at most `limit` (≤ maxLimit), next_cursor the last id. */
function page(report: Report, url: URL, maxLimit: number) {
  const limit = Math.min(Number(url.searchParams.get('limit') ?? 500), maxLimit);
  const cursor = url.searchParams.get('cursor') ?? '';
  const after = report.lines.filter((l) => l.node_id > cursor);
  const lines = after.slice(0, limit);
  return { ...report, lines, next_cursor: after.length > limit ? lines[lines.length - 1]!.node_id : null };
}

let api: FakeApi;
let dir: string;
let honest: Report;
/** What the fake API serves as epoch EPOCH (tests swap it). */
let served: Report;
/** The schedule the fake API answers with: today's parameters. */
let servedConfig: RewardsConfig;
let maxLimit = 1000;

beforeAll(async () => {
  dir = tempDir();
  honest = await buildReport(config, EPOCH, fleet(90, 42), 10n ** 15n, 37_500_000n);
  served = honest;
  servedConfig = config;
  api = await new FakeApi().listen();
  api.handler = (req) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/v1/rewards/schedule') return { status: 200, body: scheduleOf(servedConfig) };
    const m = /^\/v1\/rewards\/epochs\/(\d+)$/.exec(url.pathname);
    if (m && Number(m[1]) === served.epoch) return { status: 200, body: page(served, url, maxLimit) };
    if (m) return { status: 404, body: apiError('not_found', `epoch ${m[1]} is not closed`) };
    return undefined;
  };
});
afterAll(() => api.close());

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await verifyEpoch(args, { env, configPath: path.join(dir, 'none.json'), out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Serves `report` and verifies epoch EPOCH from the fake API. */
async function check(report: Report, today: RewardsConfig = config) {
  served = report;
  servedConfig = today;
  try {
    return await run([String(EPOCH), '--api', api.url]);
  } finally {
    served = honest;
    servedConfig = config;
  }
}

describe('verify-epoch', () => {
  it('the fleet exercises the rules: ineligible lines, a taper, a capped owner, inspector pay', () => {
    expect(honest.lines.some((l) => !l.eligible)).toBe(true);
    expect(honest.lines.filter((l) => l.eligible).length).toBeGreaterThan(40);
    expect(honest.taper_ppm).toBeLessThan(1_000_000);
    const whale = honest.lines.filter((l) => l.owner_id === 'acc_whale').reduce((s, l) => s + Number(l.amount), 0);
    const providers = Number(honest.providers_emission);
    expect(whale).toBeLessThanOrEqual(providers * 0.15 + 1e-6);
    expect(whale).toBeGreaterThan(providers * 0.149);
  });

  it('holds for an honest report fetched from the API, following every page (exit 0)', async () => {
    maxLimit = 25;
    try {
      api.requests.length = 0;
      const res = await run([String(EPOCH), '--api', `${api.url}/`]);
      expect(res.err).toBe('');
      expect(res.code).toBe(0);
      expect(res.out).toContain(`epoch ${EPOCH} [2026-12-01T07:00:00.000Z, 2026-12-01T08:00:00.000Z): emission 5999.387132 GRID`);
      expect(res.out).toContain(`✓ lines: 90 lines by node id, 4 pages`);
      expect(res.out).toContain(`✓ inputs hash: SHA-256 of the canonical inputs of all 90 lines: ${honest.inputs_hash}`);
      expect(res.out).toMatch(/✓ emission: = E\(7\) = 5999\.\d+ GRID/);
      for (const name of ['schedule', 'window', 'eligibility', 'weights', 'taper', 'amounts', 'vesting', 'totals']) expect(res.out).toContain(`✓ ${name}: `);
      expect(res.out).not.toContain('✗');
      expect(res.out.split('\n').at(-1)).toBe('the epoch holds');
      const epochs = api.requests.filter((r) => r.url.startsWith(`/v1/rewards/epochs/${EPOCH}`));
      expect(epochs).toHaveLength(4);
      expect(epochs[0]!.url).toBe(`/v1/rewards/epochs/${EPOCH}?limit=1000`);
      expect(epochs.slice(1).map((r) => new URL(r.url, 'http://x').searchParams.get('cursor'))).toEqual([24, 49, 74].map((i) => honest.lines[i]!.node_id));
      expect(api.requests.filter((r) => r.url === '/v1/rewards/schedule')).toHaveLength(1);
    } finally {
      maxLimit = 1000;
    }
  });

  it('prints JSON with --json, and takes a report URL (its API from the URL)', async () => {
    const res = await run([`${api.url}/v1/rewards/epochs/${EPOCH}`, '--json']);
    expect(res.code).toBe(0);
    const parsed = JSON.parse(res.out);
    expect(parsed).toMatchObject({ ok: true, epoch: EPOCH, inputs_hash: honest.inputs_hash });
    expect(parsed.checks.map((c: { name: string }) => c.name)).toEqual(['schedule', 'lines', 'window', 'inputs hash', 'emission', 'eligibility', 'weights', 'taper', 'amounts', 'vesting', 'totals']);
    expect(parsed.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
  });

  it('fails a changed amount (even one that keeps the totals), naming the line (exit 1)', async () => {
    const changed = clone(honest);
    const paid = changed.lines.filter((l) => l.eligible);
    const [a, b] = [paid[0]!, paid[1]!];
    // One micro-unit moved from one node to another: paid and returned unchanged.
    a.amount = formatAmount(BigInt(Math.round(Number(a.amount) * 1e6)) + 1n);
    b.amount = formatAmount(BigInt(Math.round(Number(b.amount) * 1e6)) - 1n);
    for (const l of [a, b]) {
      const v = vestingSplit(config, BigInt(Math.round(Number(l.amount) * 1e6)));
      [l.immediate, l.vesting] = [formatAmount(v.immediate), formatAmount(v.vesting)];
    }
    const res = await check(changed);
    expect(res.code).toBe(1);
    expect(res.out).toContain(`✗ amounts: ${a.node_id} gets ${a.amount} in the report, ${honest.lines.find((l) => l.node_id === a.node_id)!.amount} by the split; ${b.node_id} gets`);
    expect(res.out).toContain('✓ totals: ');
    expect(res.out).toContain('✓ vesting: ');
    expect(res.out.split('\n').at(-1)).toBe('the epoch does NOT hold');
  });

  it('fails a changed weight, a changed vesting part, a changed input, a changed total', async () => {
    const cases: [string, (r: Report) => void, RegExp][] = [
      ['weight', (r) => (r.lines[3]!.weight = String(BigInt(r.lines[3]!.weight) + 1n)), /✗ weights: node_\w+ weighs \d+ in the report, \d+ by the rules/],
      ['vesting', (r) => { const l = r.lines.find((x) => x.eligible)!; l.immediate = formatAmount(BigInt(Math.round(Number(l.immediate) * 1e6)) + 1n); }, /✗ vesting: node_\w+: [\d.]+ now \+ [\d.]+ vesting, the rules say/],
      ['input', (r) => (r.lines.find((x) => x.eligible)!.confirmed_s -= 600), /✗ inputs hash: SHA-256 of the published inputs is [0-9a-f]{64}, the report says/],
      ['eligibility', (r) => { const l = r.lines.find((x) => !x.eligible && x.verified === false)!; l.verified = true; }, /✗ inputs hash: /],
      ['returned', (r) => (r.returned = formatAmount(BigInt(Math.round(Number(r.returned) * 1e6)) + 1n)), /✗ totals: returned [\d.]+, the split returns [\d.]+; emission [\d.]+ ≠ inspector pay/],
      ['paid', (r) => (r.paid = formatAmount(BigInt(Math.round(Number(r.paid) * 1e6)) - 1n)), /✗ totals: paid [\d.]+, but the lines add up to/],
      ['taper', (r) => (r.taper_ppm -= 1), /✗ taper: taper \d+ ppm, recomputed \d+/],
      ['emission over E(n)', (r) => (r.emission = '6001.00'), /✗ emission: 6001\.00 GRID is not min\(E\(7\) = 5999\.\d+ GRID, the pool's balance\)/],
      ['line count', (r) => (r.line_count += 1), /✗ lines: 90 lines, the report says line_count 91/],
      ['window', (r) => (r.start = '2026-12-01T06:00:00.000Z'), /✗ window: \[2026-12-01T06:00:00.000Z, .* is not epoch 7 of the schedule/],
    ];
    for (const [what, edit, expected] of cases) {
      const changed = clone(honest);
      edit(changed);
      const res = await check(changed);
      expect(res.code, what).toBe(1);
      expect(res.out, what).toMatch(expected);
    }
  });

  it('an input changed together with its hash still fails on the recomputed numbers', async () => {
    const changed = clone(honest);
    const l = changed.lines.find((x) => !x.eligible && x.verified === false)!;
    l.verified = true; // now eligible by the rules, but the report still says not and pays nothing
    const { inputsOf } = await import('../../../runner/src/verify-epoch.ts');
    changed.inputs_hash = await inputsHash(changed.lines.map((x) => inputsOf(x as never)));
    const res = await check(changed);
    expect(res.code).toBe(1);
    expect(res.out).toContain('✓ inputs hash: ');
    expect(res.out).toContain(`✗ eligibility: ${l.node_id} is not eligible in the report, the rules say it is`);
    expect(res.out).toMatch(/✗ weights: /);
    expect(res.out).toMatch(/✗ taper: /);
    expect(res.out).toMatch(/✗ amounts: /);
  });

  it('holds when the pool held less than E(n), and with no lines at all', async () => {
    const short = await buildReport(config, EPOCH, fleet(30, 7), 1_234_567_890n, 0n);
    const res = await check(short);
    expect(res.code).toBe(0);
    expect(res.out).toMatch(/✓ emission: 1234\.56789 GRID, less than E\(7\) = 5999\.\d+ GRID: what the pool held/);
    const empty = await buildReport(config, EPOCH, [], 10n ** 15n, 0n);
    const none = await check(empty);
    expect(none.code).toBe(0);
    expect(none.out).toContain('✓ lines: 0 lines by node id, 1 page');
    expect(none.out).toMatch(/✓ totals: emission 5999\.\d+ GRID = inspector pay 0\.00 \+ paid 0\.00 \+ returned 5999\.\d+/);
  });

  it("recomputes under the epoch's own parameters when the report carries them, and checks the emission against the published pool exactly", async () => {
    const { rewardsParams } = await import('../../../src/rewards/params.ts');
    const pool = 2_000_000_000n;
    const r = { ...(await buildReport(config, EPOCH, fleet(20, 5), pool, 0n)), scheduled_emission: formatAmount(emission(config, EPOCH)), pool_balance: formatAmount(pool), parameters: rewardsParams(config) };
    // Today's schedule has since changed: the epoch still recomputes under its own.
    const today = rewardsConfig({ REWARDS_START: '2026-12-01T00:00:00Z', REWARDS_OWNER_CAP_PPM: '50000', REWARDS_IMMEDIATE_PPM: '500000' });
    const res = await check(r, today);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toContain("✓ schedule: the epoch's own parameters");
    expect(res.out).toContain("today's schedule differs in owner_cap_ppm, immediate_ppm");
    expect(res.out).toMatch(/✓ emission: 2000\.00 GRID = min\(E\(7\) = 5999\.\d+ GRID, the pool's 2000\.00 GRID at the split\)/);
    // A pool balance that does not give the emission fails.
    const off = await check({ ...r, pool_balance: '2000.000001' }, today);
    expect(off.code).toBe(1);
    expect(off.out).toMatch(/✗ emission: 2000\.00 GRID is not min/);
  });

  it('inspector pay larger than the emission: all of it is inspector pay, nothing paid', async () => {
    const r = await buildReport(config, EPOCH, fleet(10, 3), 10n ** 15n, 7_000n * 1_000_000n);
    expect(r.paid).toBe('0.00');
    const res = await check(r);
    expect(res.code).toBe(0);
    expect(res.out).toMatch(/✓ totals: emission 5999\.\d+ GRID = inspector pay 5999\.\d+ \+ paid 0\.00 \+ returned 0\.00/);
  });

  it('saves {schedule, report} with --save and verifies the file offline; a bare report needs --schedule', async () => {
    maxLimit = 40;
    const saved = path.join(dir, 'epoch-7.json');
    try {
      expect((await run([String(EPOCH), '--api', api.url, '--save', saved])).code).toBe(0);
    } finally {
      maxLimit = 1000;
    }
    const bundle = JSON.parse(fs.readFileSync(saved, 'utf8'));
    expect(bundle.report.lines).toHaveLength(90);
    expect(bundle.report.next_cursor).toBeNull();
    const before = api.requests.length;
    const offline = await run([saved]);
    expect(offline.code).toBe(0);
    expect(offline.out).toContain('✓ lines: 90 lines by node id, 1 page');
    expect(api.requests.length).toBe(before);

    const bare = path.join(dir, 'bare.json');
    fs.writeFileSync(bare, JSON.stringify(honest));
    const scheduleFile = path.join(dir, 'schedule.json');
    fs.writeFileSync(scheduleFile, JSON.stringify(scheduleOf(config)));
    expect((await run([bare, '--schedule', scheduleFile])).code).toBe(0);
    expect((await run([bare, '--schedule', `${api.url}/v1/rewards/schedule`])).code).toBe(0);
    expect((await run([bare], { GRIDLEASE_API: api.url })).code).toBe(0);
    const noParams = await run([bare]);
    expect(noParams.code).toBe(2);
    expect(noParams.err).toContain('whose parameters? pass --schedule FILE|URL or --api URL');

    // One page saved alone is not the epoch.
    const onePage = path.join(dir, 'page.json');
    fs.writeFileSync(onePage, JSON.stringify(page(honest, new URL('http://x/?limit=10'), 1000)));
    const partial = await run([onePage, '--schedule', scheduleFile]);
    expect(partial.code).toBe(1);
    expect(partial.out).toContain(`✗ lines: incomplete: 10 of 90 lines, the last page read has next_cursor ${honest.lines[9]!.node_id}`);

    // Parameters other than those of the epoch do not reproduce it.
    const other = { ...scheduleOf(config), owner_cap_ppm: 100_000 };
    fs.writeFileSync(scheduleFile, JSON.stringify(other));
    const wrong = await run([bare, '--schedule', scheduleFile]);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toMatch(/✗ amounts: /);
  });

  it('a file that is not a report, or a schedule that is not one, does not hold (exit 1)', async () => {
    const junk = path.join(dir, 'junk.json');
    fs.writeFileSync(junk, '{"hello": 1}');
    const res = await run([junk, '--api', api.url]);
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/✗ report: not an epoch report \(epoch: /);
    const scheduleFile = path.join(dir, 'not-schedule.json');
    fs.writeFileSync(scheduleFile, '[]');
    const bare = path.join(dir, 'bare2.json');
    fs.writeFileSync(bare, JSON.stringify(honest));
    const bad = await run([bare, '--schedule', scheduleFile, '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out)).toMatchObject({ ok: false, checks: [{ name: 'schedule', ok: false }] });
  });

  it('an epoch that is not closed is an error naming the API answer (exit 1)', async () => {
    const res = await run(['8', '--api', api.url]);
    expect(res.code).toBe(1);
    expect(res.err).toBe(`gridlease-runner: ${api.url}/v1/rewards/epochs/8?limit=1000 answered 404: epoch 8 is not closed`);
  });

  it('usage errors exit 2', async () => {
    const cases: [string[], string][] = [
      [[], 'which epoch? give its number, a report URL or a saved report file'],
      [['7', '8', '--api', 'http://127.0.0.1:9'], 'unexpected argument "8"'],
      [['7', '--bogus'], "Unknown option '--bogus'"],
      [['7'], 'no API to ask: pass --api URL (or set GRIDLEASE_API, or join first)'],
      [['7', '--api', 'ftp://x'], '--api must be http(s): ftp://x'],
      [['no-such-report.json'], 'no such file, URL or epoch number: no-such-report.json'],
      [['99999999999', '--api', 'http://127.0.0.1:9'], 'not an epoch number: 99999999999'],
    ];
    for (const [args, message] of cases) {
      const res = await run(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.err, args.join(' ')).toContain(message);
      expect(res.err).toContain('usage: gridlease-runner verify-epoch');
      expect(res.out).toBe('');
    }
  });
});
