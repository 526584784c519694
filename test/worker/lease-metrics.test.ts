import { eq, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { gpuMetricsMinute } from '../../src/db/schema.ts';
import { GPU_METRICS_RETENTION_MIN } from '../../src/heartbeats/gpu-metrics.ts';
import { signLikeQStash } from '../../src/queue/signature.ts';
import { elapse, record } from './lease-support.ts';
import { call, db, expectError, fund, heartbeat, json, signUp } from './support.ts';
import { buy, flush, onlineNode, pause, placed, sell } from './trading.ts';

// This file's own book: a model no other file trades in this region.
const REGION = 'eu-west';
const MODEL = 'rtx-6000-ada-48gb';
const MIN = 60_000;

// Each setup's ask is cheaper than every earlier one's, so a bid meets only its own (earlier
// asks stay in the book, and reopen when their lease ends).
let setups = 0;

/** A renter's running lease on 2 of a 4-GPU node, started 30 minutes ago. */
async function rented(opts: { start?: boolean } = {}) {
  const price = (5 - 0.25 * setups++).toFixed(2);
  const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
  await fund(renter, 'USD', '50.00');
  const node = await onlineNode(REGION, provider, MODEL, 4);
  await placed(provider, sell(REGION, MODEL, node.nodeId, { gpus: 2, price }));
  const bid = await placed(renter, buy(REGION, MODEL, { gpus: 2, price }));
  expect(bid.leases).toHaveLength(1);
  const leaseId: string = bid.leases[0].id;
  const lease = (await json(await call(`/v1/leases/${leaseId}`, { auth: renter.apiKey }))).lease;
  expect(lease.node_id).toBe(node.nodeId);
  const held: number[] = lease.gpu_indices;
  const others = [0, 1, 2, 3].filter((i) => !held.includes(i));
  if (opts.start !== false) {
    const res = await call(`/v1/runner/leases/${leaseId}/events`, { auth: node.token, body: { at: new Date().toISOString(), type: 'started' } });
    expect(res.status).toBe(202);
    await elapse(leaseId, 30 * MIN);
  }
  return { renter, provider, node, leaseId, held, others };
}

const metrics = (leaseId: string, auth?: string, query = '') => call(`/v1/leases/${leaseId}/metrics${query}`, { auth });

const reading = (index: number, utilization_pct: number | null, memory_used_mib: number | null, temperature_c: number | null, power_w: number | null) => ({
  index,
  utilization_pct,
  memory_used_mib,
  temperature_c,
  power_w,
});

/** One GPU's minute roll-up as a Collector flushes it. */
const gpuMinute = (index: number, samples: number, util: number, mem: number, temp: number, power: number) => ({
  index,
  samples,
  util_sum: util * samples,
  util_samples: samples,
  mem_max_mib: mem,
  temp_max_c: temp,
  power_sum_w: power * samples,
  power_samples: samples,
});

/** A heartbeat batch as the queue delivers it, signed, with the given minutes for one node. */
async function deliver(nodeId: string, minutes: Array<{ minute: number; gpus: unknown[] }>, batchId = `test:${crypto.randomUUID()}`) {
  const body = JSON.stringify({
    batch_id: batchId,
    region: REGION,
    shard: 0,
    flushed_at: Date.now(),
    nodes: [
      {
        node_id: nodeId,
        last_seen: Date.now(),
        heartbeats: minutes.length,
        uptime: {},
        draining: false,
        minutes: minutes.map((m) => ({ minute: m.minute, heartbeats: 1, util_sum: 0, util_samples: 0, mem_used_max_mib: null, temp_max_c: null, power_sum_w: 0, power_samples: 0, gpus: m.gpus })),
      },
    ],
    offline: [],
  });
  const url = 'https://api.gridlease.test/internal/queue/heartbeats';
  const res = await call('/internal/queue/heartbeats', { body, headers: { 'upstash-signature': await signLikeQStash('sig_test_current_0123456789', url, body, Math.floor(Date.now() / 1000)) } });
  expect(res.status).toBe(200);
  return (await json(res)).outcome as 'applied' | 'duplicate';
}

/** The whole minutes the lease covers so far: [first, last]. */
async function leaseMinutes(leaseId: string) {
  const r = await record(leaseId);
  return { first: Math.ceil(r.startedAt! / MIN), last: Math.floor(Math.min(Date.now(), r.stoppedAt ?? r.endsAt!) / MIN) - 1 };
}

const iso = (minute: number) => new Date(minute * MIN).toISOString();

describe('a lease’s GPU metrics', () => {
  it('show the renter its own GPUs only, averaged and maxed over the minute’s heartbeats', async () => {
    const s = await rented();
    const [a, b] = s.held as [number, number];
    const [x, y] = s.others as [number, number];
    await db().delete(gpuMetricsMinute).where(eq(gpuMetricsMinute.nodeId, s.node.nodeId));
    // Three heartbeats in one minute, in two flushes: keep clear of the minute's last seconds.
    const into = Date.now() % MIN;
    if (into > MIN - 5_000) await pause(MIN - into + 100);
    const sent = Math.floor(Date.now() / MIN);
    const beats = [
      [reading(a, 80, 1_000, 60, 300), reading(b, null, null, null, null), reading(x, 100, 70_000, 90, 700), reading(y, 100, 70_000, 90, 700)],
      [reading(a, 90, 3_000, 71, 301.2), reading(b, 20, 500, 40, null), reading(x, 100, 70_000, 90, 700)],
      [reading(a, 92.5, 2_000, 65, 302.4), reading(b, 30, 700, 45, 100)],
    ];
    for (const [k, gpus] of beats.entries()) {
      // The Collector refuses heartbeats closer than HEARTBEAT_MIN_INTERVAL_S (50 ms here).
      if (k !== 0) await pause(60);
      const res = await call('/v1/runner/heartbeats', { auth: s.node.token, body: heartbeat(s.node.nodeId, 2 + k, { gpus }) });
      expect(res.status).toBe(202);
      if (k !== 0) await flush(REGION, s.node.nodeId);
    }
    // As if sent 10 minutes ago: the minute is over and well inside the lease.
    const { last } = await leaseMinutes(s.leaseId);
    const minute = last - 10;
    await db().update(gpuMetricsMinute).set({ minute: sql`${gpuMetricsMinute.minute} - ${sent - minute}` }).where(eq(gpuMetricsMinute.nodeId, s.node.nodeId));
    expect(await db().select().from(gpuMetricsMinute).where(eq(gpuMetricsMinute.nodeId, s.node.nodeId))).toHaveLength(4);

    const res = await metrics(s.leaseId, s.renter.apiKey);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      lease_id: s.leaseId,
      gpu_indices: s.held,
      data: [
        {
          minute: iso(minute),
          gpus: [
            { index: a, utilization_pct: 87.5, memory_used_mib: 3_000, temperature_c: 71, power_w: 301.2 },
            { index: b, utilization_pct: 25, memory_used_mib: 700, temperature_c: 45, power_w: 100 },
          ].sort((p, q) => p.index - q.index),
        },
      ],
    });
  });

  it('leave out minutes before the lease started and after it stopped, and return the last `minutes` of it', async () => {
    const s = await rented();
    const [a, b] = s.held as [number, number];
    expect((await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey })).status).toBe(200);
    const { first, last } = await leaseMinutes(s.leaseId);
    expect(last - first).toBeGreaterThanOrEqual(20);
    const both = (util: number) => [gpuMinute(a, 2, util, 100, 50, 200), gpuMinute(b, 2, util, 100, 50, 200)];
    // first - 1 holds the start's partial minute; last + 1 the stop's, then minutes after the lease.
    const at = [first - 5, first - 1, first, first + 1, last, last + 1, last + 2, last + 30];
    expect(await deliver(s.node.nodeId, at.map((minute, k) => ({ minute, gpus: both(k) })))).toBe('applied');

    const all = await json(await metrics(s.leaseId, s.renter.apiKey, '?minutes=1440'));
    expect(all.data.map((d: { minute: string }) => d.minute)).toEqual([iso(first), iso(first + 1), iso(last)]);
    expect(all.data.map((d: { gpus: Array<{ utilization_pct: number }> }) => d.gpus[0]!.utilization_pct)).toEqual([2, 3, 4]);
    const lastOnly = await json(await metrics(s.leaseId, s.renter.apiKey, '?minutes=1'));
    expect(lastOnly.data.map((d: { minute: string }) => d.minute)).toEqual([iso(last)]);
    // The default is the last hour: all of this half-hour lease.
    expect((await json(await metrics(s.leaseId, s.renter.apiKey))).data).toEqual(all.data);
  });

  it('count a duplicated heartbeat batch once', async () => {
    const s = await rented();
    const [a] = s.held as [number];
    const { first } = await leaseMinutes(s.leaseId);
    const id = `test:${crypto.randomUUID()}`;
    const minutes = [{ minute: first + 3, gpus: [gpuMinute(a, 3, 50, 1_000, 60, 200)] }];
    expect(await deliver(s.node.nodeId, minutes, id)).toBe('applied');
    // The same batch again (a queue redelivery), then a later one for the same minute.
    expect(await deliver(s.node.nodeId, minutes, id)).toBe('duplicate');
    expect(await deliver(s.node.nodeId, [{ minute: first + 3, gpus: [gpuMinute(a, 1, 90, 500, 80, 400)] }])).toBe('applied');
    const [row] = await db().select().from(gpuMetricsMinute).where(eq(gpuMetricsMinute.nodeId, s.node.nodeId)).then((rows) => rows.filter((r) => r.minute === first + 3));
    expect(row).toMatchObject({ gpuIndex: a, samples: 4, utilSum: 240, utilSamples: 4, memMaxMib: 1_000, tempMaxC: 80, powerSumW: 1_000, powerSamples: 4 });
    const body = await json(await metrics(s.leaseId, s.renter.apiKey, '?minutes=1440'));
    const gpu = body.data.find((d: { minute: string }) => d.minute === iso(first + 3)).gpus.find((g: { index: number }) => g.index === a);
    expect(gpu).toEqual({ index: a, utilization_pct: 60, memory_used_mib: 1_000, temperature_c: 80, power_w: 250 });
  });

  it('are kept for a week: a node’s older rows go with its first batch of an hour', async () => {
    const s = await rented({ start: false });
    const now = Math.floor(Date.now() / MIN);
    const old = now - GPU_METRICS_RETENTION_MIN - 1;
    const kept = now - GPU_METRICS_RETENTION_MIN + 1;
    await deliver(s.node.nodeId, [old, kept].map((minute) => ({ minute, gpus: [gpuMinute(0, 1, 1, 1, 1, 1)] })));
    const minutes = async () => (await db().select().from(gpuMetricsMinute).where(eq(gpuMetricsMinute.nodeId, s.node.nodeId))).map((r) => r.minute).sort();
    expect(await minutes()).toEqual(expect.arrayContaining([old, kept]));
    // A batch without an hour's first minute leaves them; one with it prunes.
    const notHourly = (now % 60 === 1 ? now + 1 : now - (now % 60) + 1);
    await deliver(s.node.nodeId, [{ minute: notHourly, gpus: [gpuMinute(0, 1, 1, 1, 1, 1)] }]);
    expect(await minutes()).toContain(old);
    const hourly = now - (now % 60);
    await deliver(s.node.nodeId, [{ minute: hourly, gpus: [gpuMinute(0, 1, 1, 1, 1, 1)] }]);
    const after = await minutes();
    expect(after).not.toContain(old);
    expect(after).toEqual(expect.arrayContaining([kept, hourly, notHourly]));
  });

  it('are empty for a lease not started yet', async () => {
    const s = await rented({ start: false });
    expect(await json(await metrics(s.leaseId, s.renter.apiKey))).toEqual({ lease_id: s.leaseId, gpu_indices: s.held, data: [] });
  });
});

describe('who may read a lease’s metrics', () => {
  it('answers 404 to another account and to the lease’s provider, as for a lease that does not exist', async () => {
    const s = await rented({ start: false });
    const stranger = await signUp(['renter', 'provider']);
    await expectError(await metrics(s.leaseId, stranger.apiKey), 404, 'not_found');
    await expectError(await metrics(s.leaseId, s.provider.apiKey), 404, 'not_found');
    await expectError(await metrics('lease_doesnotexist', s.renter.apiKey), 404, 'not_found');
  });

  it('answers 401 without credentials', async () => {
    const s = await rented({ start: false });
    await expectError(await metrics(s.leaseId), 401, 'unauthorized');
  });

  it('answers 400 to a `minutes` that is not a whole number from 1 to 1440, or an unknown parameter', async () => {
    const s = await rented({ start: false });
    for (const q of ['?minutes=0', '?minutes=1441', '?minutes=1e1', '?minutes=abc', '?minutes=', '?minutes=%2010', '?minutes=010', '?since=5']) {
      await expectError(await metrics(s.leaseId, s.renter.apiKey, q), 400, 'validation_failed');
    }
    expect((await metrics(s.leaseId, s.renter.apiKey, '?minutes=1440')).status).toBe(200);
  });
});

describe('the OpenAPI document', () => {
  it('describes the route and its response as named schemas', async () => {
    const doc = await json(await call('/openapi.json'));
    const op = doc.paths['/v1/leases/{id}/metrics'].get;
    expect(op.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/LeaseMetrics' });
    expect(op.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['id', 'minutes']);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['LeaseMetrics', 'LeaseMetricsMinute', 'LeaseGpuMinute']));
  });
});
