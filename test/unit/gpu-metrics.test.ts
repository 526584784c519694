import { describe, expect, it } from 'vitest';
import { buildBatch, chunkPending, recordHeartbeat, type NodeSeen, type PendingNode } from '../../src/heartbeats/accumulator.ts';
import { HeartbeatBatchSchema, type GpuMinute } from '../../src/heartbeats/batch.ts';
import { addGpuReading, leaseMetricsSeries, leaseMetricsWindow, prunesOldGpuMinutes, type GpuMinuteRow } from '../../src/heartbeats/gpu-metrics.ts';
import type { HeartbeatRequest } from '../../src/contracts/runner.ts';

const policy = { minIntervalMs: 2_000, maxSkewMs: 300_000, maxCreditedGapMs: 15_000 };
const MIN = 60_000;
// 2026-12-07T07:00:00Z, a whole minute.
const T0 = Date.UTC(2026, 11, 7, 7, 0, 0);
const M0 = T0 / MIN;

const fresh = (): NodeSeen => ({ tokenVersion: 1, bootId: null, retiredBoots: [], lastSeq: -1, lastSeenMs: null, draining: false, reportedOffline: false });
const hb = (seq: number, at: number, gpus: HeartbeatRequest['gpus']): HeartbeatRequest => ({
  node_id: 'node_a',
  boot_id: '2f1c7a52-8f0e-4b7e-9d0a-3c1f5e6a7b80',
  seq,
  sent_at: new Date(at).toISOString(),
  draining: false,
  gpus,
  leases: [],
  acks: [],
});

describe('per-GPU minute roll-ups', () => {
  it('sums averages and keeps maxima per GPU, apart from the other GPUs', () => {
    const seen = fresh();
    let p = recordHeartbeat(seen, undefined, hb(1, T0 + 5_000, [
      { index: 0, utilization_pct: 80, memory_used_mib: 1_000, temperature_c: 60, power_w: 300 },
      { index: 1, utilization_pct: 10, memory_used_mib: 9_000, temperature_c: 90, power_w: 100 },
    ]), T0 + 5_000, policy);
    p = recordHeartbeat(seen, p, hb(2, T0 + 15_000, [
      { index: 0, utilization_pct: 95, memory_used_mib: 3_000, temperature_c: 55, power_w: 302.4 },
      { index: 1, utilization_pct: 20, memory_used_mib: 8_000, temperature_c: 80, power_w: 120 },
    ]), T0 + 15_000, policy);
    const gpus = p.minutes.get(M0)!.gpus;
    expect(gpus).toEqual([
      { index: 0, samples: 2, util_sum: 175, util_samples: 2, mem_max_mib: 3_000, temp_max_c: 60, power_sum_w: 602.4, power_samples: 2 },
      { index: 1, samples: 2, util_sum: 30, util_samples: 2, mem_max_mib: 9_000, temp_max_c: 90, power_sum_w: 220, power_samples: 2 },
    ]);
  });

  it('leaves a metric no heartbeat reported as null or without samples, never 0', () => {
    const gpus: GpuMinute[] = [];
    addGpuReading(gpus, { index: 3, utilization_pct: null, memory_used_mib: null, temperature_c: null, power_w: null });
    addGpuReading(gpus, { index: 3, utilization_pct: null, memory_used_mib: 0, temperature_c: -5, power_w: null });
    expect(gpus).toEqual([{ index: 3, samples: 2, util_sum: 0, util_samples: 0, mem_max_mib: 0, temp_max_c: -5, power_sum_w: 0, power_samples: 0 }]);
  });

  it('puts the per-GPU roll-ups in the batch, and reads batches flushed before they existed', () => {
    const seen = fresh();
    const p = recordHeartbeat(seen, undefined, hb(1, T0, [{ index: 2, utilization_pct: 50, memory_used_mib: 10, temperature_c: 40, power_w: 70 }]), T0, policy);
    const batch = buildBatch('r:0:e:1', 'us-east', 0, T0, new Map([['node_a', p]]), []);
    expect(HeartbeatBatchSchema.parse(JSON.parse(JSON.stringify(batch))).nodes[0]!.minutes[0]!.gpus).toHaveLength(1);
    const old = { ...batch, nodes: batch.nodes.map((n) => ({ ...n, minutes: n.minutes.map(({ gpus: _, ...m }) => m) })) };
    expect(HeartbeatBatchSchema.parse(old).nodes[0]!.minutes[0]!.gpus).toEqual([]);
  });
});

describe('splitting a flush into queue messages', () => {
  const node = (gpus: number, minutes = 1): PendingNode => ({
    lastSeenMs: T0,
    heartbeats: 1,
    uptime: {},
    draining: false,
    leases: new Map(),
    minutes: new Map(
      Array.from({ length: minutes }, (_, k) => [
        M0 + k,
        { minute: M0 + k, heartbeats: 1, util_sum: 0, util_samples: 0, mem_used_max_mib: null, temp_max_c: null, power_sum_w: 0, power_samples: 0,
          gpus: Array.from({ length: gpus }, (_, index) => ({ index, samples: 1, util_sum: 99.9, util_samples: 1, mem_max_mib: 81_000, temp_max_c: 71.5, power_sum_w: 699.9, power_samples: 1 })) },
      ]),
    ),
  });

  it('caps nodes and per-GPU minutes per message, never splitting a node', () => {
    const pending: Array<[string, PendingNode]> = Array.from({ length: 10 }, (_, i) => [`n${i}`, node(8, 2)]);
    // 16 GPU minutes each: 3 fit under 50.
    expect(chunkPending(pending, 1_000, 50).map((c) => c.length)).toEqual([3, 3, 3, 1]);
    expect(chunkPending(pending, 4, 1_000).map((c) => c.length)).toEqual([4, 4, 2]);
    // A node over the budget goes alone rather than being dropped.
    expect(chunkPending([['big', node(16, 3)], ['small', node(1)]], 1_000, 10).map((c) => c.map(([id]) => id))).toEqual([['big'], ['small']]);
    expect(chunkPending([], 1_000, 10)).toEqual([]);
  });

  it('keeps a full message of GPU minutes well under a megabyte of JSON', () => {
    // The Collector's budget: 1,000 nodes, 4,000 GPU minutes (16 GPUs × 2 minutes for 125 nodes).
    const pending: Array<[string, PendingNode]> = Array.from({ length: 1_000 }, (_, i) => [`node_${crypto.randomUUID()}`, node(16, 2)]);
    const [first] = chunkPending(pending, 1_000, 4_000);
    const body = JSON.stringify(buildBatch('r:0:e:1', 'us-east', 0, T0, new Map(first), []));
    expect(body.length).toBeLessThan(800_000);
  });
});

describe('pruning old rows', () => {
  it('prunes once an hour per node: in batches holding an hour’s first minute', () => {
    expect(prunesOldGpuMinutes([M0])).toBe(true);
    expect(prunesOldGpuMinutes([M0 + 1, M0 + 2])).toBe(false);
    expect(prunesOldGpuMinutes([M0 + 59, M0 + 60])).toBe(true);
    expect(prunesOldGpuMinutes([])).toBe(false);
  });
});

describe('the minutes a lease may read', () => {
  it('is empty before the lease starts, and while it has run under a whole minute', () => {
    expect(leaseMetricsWindow({ startedAt: null, endsAt: null, stoppedAt: null }, T0, 60)).toBeNull();
    expect(leaseMetricsWindow({ startedAt: T0 + 10_000, endsAt: T0 + 3_600_000, stoppedAt: null }, T0 + 70_000, 60)).toBeNull();
  });

  it('holds only whole minutes inside the lease, ending at now while it runs', () => {
    // Started 07:00:10: 07:00 also holds earlier readings; at 07:05:30 the minute 07:05 is not over.
    expect(leaseMetricsWindow({ startedAt: T0 + 10_000, endsAt: T0 + 3_600_000, stoppedAt: null }, T0 + 5 * MIN + 30_000, 60)).toEqual({ from: M0 + 1, to: M0 + 4 });
    // Started on a minute boundary: that minute is the lease's.
    expect(leaseMetricsWindow({ startedAt: T0, endsAt: T0 + 3_600_000, stoppedAt: null }, T0 + 2 * MIN, 60)).toEqual({ from: M0, to: M0 + 1 });
  });

  it('ends where the lease stopped, or at its paid end, not at now', () => {
    const stopped = { startedAt: T0, endsAt: T0 + 3_600_000, stoppedAt: T0 + 10 * MIN + 1 };
    expect(leaseMetricsWindow(stopped, T0 + 86_400_000, 60)).toEqual({ from: M0, to: M0 + 9 });
    const overdue = { startedAt: T0, endsAt: T0 + 30 * MIN, stoppedAt: null };
    expect(leaseMetricsWindow(overdue, T0 + 45 * MIN, 60)).toEqual({ from: M0, to: M0 + 29 });
  });

  it('returns the last `minutes` of a longer lease', () => {
    expect(leaseMetricsWindow({ startedAt: T0, endsAt: T0 + 86_400_000, stoppedAt: null }, T0 + 300 * MIN, 60)).toEqual({ from: M0 + 240, to: M0 + 299 });
    expect(leaseMetricsWindow({ startedAt: T0, endsAt: T0 + 86_400_000, stoppedAt: null }, T0 + 300 * MIN, 1)).toEqual({ from: M0 + 299, to: M0 + 299 });
  });
});

describe('a lease’s series', () => {
  const row = (minute: number, gpuIndex: number, o: Partial<GpuMinuteRow> = {}): GpuMinuteRow => ({
    minute, gpuIndex, utilSum: 175, utilSamples: 2, memMaxMib: 3_000, tempMaxC: 60, powerSumW: 602.4, powerSamples: 2, ...o,
  });

  it('averages utilisation and power, reports memory and temperature maxima, oldest minute first', () => {
    const series = leaseMetricsSeries([row(M0 + 1, 0), row(M0, 0, { utilSum: 100, utilSamples: 3, powerSumW: 1000, powerSamples: 3 })], [0]);
    expect(series).toEqual([
      { minute: '2026-12-07T07:00:00.000Z', gpus: [{ index: 0, utilization_pct: 33.3, memory_used_mib: 3_000, temperature_c: 60, power_w: 333.3 }] },
      { minute: '2026-12-07T07:01:00.000Z', gpus: [{ index: 0, utilization_pct: 87.5, memory_used_mib: 3_000, temperature_c: 60, power_w: 301.2 }] },
    ]);
  });

  it('drops other GPUs of the node and lists every leased GPU, null where it reported nothing', () => {
    const series = leaseMetricsSeries([row(M0, 3), row(M0, 1, { utilSamples: 0, utilSum: 0, memMaxMib: null, tempMaxC: null, powerSamples: 0, powerSumW: 0 }), row(M0 + 1, 2)], [1, 0]);
    expect(series).toEqual([
      {
        minute: '2026-12-07T07:00:00.000Z',
        gpus: [
          { index: 0, utilization_pct: null, memory_used_mib: null, temperature_c: null, power_w: null },
          { index: 1, utilization_pct: null, memory_used_mib: null, temperature_c: null, power_w: null },
        ],
      },
    ]);
  });
});
