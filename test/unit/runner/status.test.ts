// `status`'s rewards lines: the node's lines in the newest closed epochs, read from the public
// epoch reports (the node token cannot call GET /v1/rewards), one report page per epoch however
// large the epoch, and never a change of the exit status.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConfig } from '../../../runner/src/config.ts';
import { parseOptions } from '../../../runner/src/options.ts';
import { cursorBefore, status } from '../../../runner/src/status.ts';
import { FakeApi, apiError, tempDir } from './helpers.ts';

const NODE = 'node_m4k9x2b7q';
const line = (node_id: string, o: Record<string, unknown> = {}) => ({
  node_id,
  owner_id: 'acc_1',
  gpu_model: 'h100-80gb',
  gpus_offered: 8,
  confirmed_s: 3600,
  leased_gpu_s: 0,
  verified: true,
  stake: '0.00',
  eligible: true,
  weight: '8000000',
  amount: '12.50',
  immediate: '3.125',
  vesting: '9.375',
  ...o,
});

function report(epoch: number, lines: ReturnType<typeof line>[]) {
  return {
    epoch,
    start: new Date(Date.UTC(2026, 11, 1, epoch)).toISOString(),
    end: new Date(Date.UTC(2026, 11, 1, epoch + 1)).toISOString(),
    emission: '6000.00',
    inspector_pay: '0.00',
    taper_ppm: 1_000_000,
    utilisation_ppm: 0,
    providers_emission: '6000.00',
    paid: '6000.00',
    returned: '0.00',
    line_count: lines.length,
    inputs_hash: '0'.repeat(64),
    closed_at: new Date(Date.UTC(2026, 11, 1, epoch + 1, 3)).toISOString(),
    lines: [...lines].sort((a, b) => (a.node_id < b.node_id ? -1 : 1)),
    next_cursor: null,
  };
}

const schedule = (closed: number) => ({
  start: '2026-12-01T00:00:00.000Z',
  epoch_s: 3600,
  initial_per_epoch: '6000.00',
  retention: '999985407255846145',
  decay_per_year: null,
  allocation: '400000000.00',
  min_uptime_ppm: 950_000,
  lease_bonus_ppm: 500_000,
  stake_bonus_ppm: 250_000,
  stake_per_gpu: '200.00',
  taper_floor_ppm: 200_000,
  taper_full_util_ppm: 800_000,
  owner_cap_ppm: 100_000,
  immediate_ppm: 250_000,
  vesting_s: 7_776_000,
  close_chunk: 500,
  current_epoch: closed + 1,
  current_epoch_start: null,
  current_epoch_end: null,
  current_emission: '6000.00',
  emitted: '0.00',
  closed_epochs: closed,
  pool_balance: '400000000.00',
});

/** Many other nodes around NODE, so that a whole epoch is pages long. */
const crowd = Array.from({ length: 2500 }, (_, i) => line(`node_${i.toString(32).padStart(9, '0')}`));

let api: FakeApi;
let closed = 0;
let epochs = new Map<number, ReturnType<typeof report>>();
let file: string;

beforeAll(async () => {
  api = await new FakeApi().listen();
  api.handler = (req) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/healthz') return { status: 200, body: { ok: true } };
    if (url.pathname === '/v1/rewards/schedule') return closed < 0 ? undefined : { status: 200, body: schedule(closed) };
    const m = /^\/v1\/rewards\/epochs\/(\d+)$/.exec(url.pathname);
    const r = m ? epochs.get(Number(m[1])) : undefined;
    if (!r) return { status: 404, body: apiError('not_found', `epoch ${m?.[1]} is not closed`) };
    if (!Array.isArray(r.lines)) return { status: 200, body: r };
    // Paged like the route: node_id > cursor, limit (default 500, at most 1000), next_cursor the last id.
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 500), 1000);
    const after = r.lines.filter((l) => l.node_id > (url.searchParams.get('cursor') ?? ''));
    const lines = after.slice(0, limit);
    return { status: 200, body: { ...r, lines, next_cursor: after.length > limit ? lines[lines.length - 1]!.node_id : null } };
  };
  file = path.join(tempDir(), 'runner.json');
  writeConfig(file, { api: api.url, node_id: NODE, node_token: 'nt_secret', region: 'eu-west' });
});
afterAll(() => api.close());

async function rewardsOf() {
  api.requests.length = 0;
  const res = await status(parseOptions(['status', '--config', file], {}));
  return { ...res, rewards: res.text.split('\n').filter((l) => l.startsWith('rewards: ')) };
}

describe('status: rewards', () => {
  it('says "no rewards yet" before any epoch has closed, from the schedule alone', async () => {
    closed = 0;
    epochs = new Map();
    const res = await rewardsOf();
    expect(res.ok).toBe(true);
    expect(res.rewards).toEqual(['rewards: no rewards yet (no epoch has closed)']);
    expect(api.requests.map((r) => r.url)).toEqual(['/healthz', '/v1/rewards/schedule']);
  });

  it("shows the node's last 3 closed epochs, one page request each however large the epoch", async () => {
    closed = 6;
    epochs = new Map([
      [5, report(5, [...crowd, line(NODE)])],
      [4, report(4, [...crowd, line(NODE, { eligible: false, verified: false, confirmed_s: 1800, weight: '0', amount: '0.00', immediate: '0.00', vesting: '0.00' })])],
      [3, report(3, crowd)],
      [2, report(2, [line(NODE, { amount: '99.00' })])],
    ]);
    const res = await rewardsOf();
    expect(res.ok).toBe(true);
    expect(res.rewards).toEqual([
      'rewards: epoch 5: 12.50 GRID (3.125 now, 9.375 vesting over 90 days), weight 8000000',
      'rewards: epoch 4: not eligible (not verified: no capacity challenge passed in force, or a challenge failed in the epoch; confirmed uptime 50.0% < 95%)',
      'rewards: epoch 3: no line (no confirmed heartbeat minute in the epoch)',
    ]);
    const urls = api.requests.map((r) => r.url);
    expect(urls).toEqual([
      '/healthz',
      '/v1/rewards/schedule',
      ...[5, 4, 3].map((n) => `/v1/rewards/epochs/${n}?limit=5&cursor=${encodeURIComponent(cursorBefore(NODE))}`),
    ]);
  });

  it('says "no rewards yet" when the node has no line in the last closed epochs', async () => {
    closed = 2;
    epochs = new Map([
      [1, report(1, crowd.slice(0, 10))],
      [0, report(0, [])],
    ]);
    expect((await rewardsOf()).rewards).toEqual(['rewards: no rewards yet (no line for this node in epochs 0–1)']);
    closed = 1;
    expect((await rewardsOf()).rewards).toEqual(['rewards: no rewards yet (no line for this node in epoch 0)']);
  });

  it('an API without the rewards routes, or a report that is not one: "unavailable", the exit status unchanged', async () => {
    closed = -1;
    const none = await rewardsOf();
    expect(none.ok).toBe(true);
    expect(none.rewards).toEqual([`rewards: unavailable (${api.url}/v1/rewards/schedule answered 404: no such route)`]);
    closed = 1;
    epochs = new Map([[0, { broken: true } as never]]);
    const broken = await rewardsOf();
    expect(broken.ok).toBe(true);
    expect(broken.rewards).toEqual(['rewards: unavailable (GET /v1/rewards/epochs/0 did not answer an epoch report)']);
  });

  it('an unreachable API is not asked for rewards', async () => {
    const dir = tempDir();
    const other = path.join(dir, 'runner.json');
    writeConfig(other, { api: 'http://127.0.0.1:9', node_id: NODE, node_token: 'nt_secret', region: 'eu-west' });
    const res = await status(parseOptions(['status', '--config', other], {}));
    expect(res.ok).toBe(false);
    expect(res.text).toContain('rewards: not checked (the API does not answer)');
  });

  it('cursorBefore: just below the id, no other id in between, within the route\'s 64 characters', () => {
    const c = cursorBefore(NODE);
    expect(c.length).toBe(64);
    expect(c < NODE).toBe(true);
    const ids = ['node_m4k9x2b7p', 'node_m4k9x2b7pzzzzzz', 'node_m4k9x2b7q0', 'node_m4k9x2b7r', 'node_m4k9x2b7', NODE];
    expect(ids.filter((id) => id > c && id < NODE)).toEqual([]);
    expect(cursorBefore('node_0')).toMatch(/^node_\/~+$/);
  });
});
