// Per-GPU minute roll-ups: how heartbeats add into them, and how a lease reads them back. Pure:
// no I/O, no clock (`now` is passed in).
import type { GpuMetrics } from '../contracts/runner.ts';
import type { GpuMinute } from './batch.ts';

/** Rows older than this are pruned (a week: leases' last day is always readable, and then some). */
export const GPU_METRICS_RETENTION_MIN = 7 * 1_440;
/** The most minutes one lease-metrics read returns. */
export const MAX_LEASE_METRICS_MINUTES = 1_440;

const MINUTE_MS = 60_000;

/** Adds one heartbeat's reading of one GPU into its minute roll-up (created if absent). */
export function addGpuReading(gpus: GpuMinute[], g: GpuMetrics): void {
  let m = gpus.find((x) => x.index === g.index);
  if (!m) {
    m = { index: g.index, samples: 0, util_sum: 0, util_samples: 0, mem_max_mib: null, temp_max_c: null, power_sum_w: 0, power_samples: 0 };
    gpus.push(m);
  }
  m.samples += 1;
  if (g.utilization_pct !== null) {
    m.util_sum += g.utilization_pct;
    m.util_samples += 1;
  }
  if (g.memory_used_mib !== null) m.mem_max_mib = Math.max(m.mem_max_mib ?? 0, g.memory_used_mib);
  if (g.temperature_c !== null) m.temp_max_c = Math.max(m.temp_max_c ?? -Infinity, g.temperature_c);
  if (g.power_w !== null) {
    m.power_sum_w += g.power_w;
    m.power_samples += 1;
  }
}

/**
 * Whether a batch carrying these minutes should prune the node's old rows: once per node per
 * hour (the batches holding an hour's first minute), not on every flush.
 */
export function prunesOldGpuMinutes(minutes: readonly number[]): boolean {
  return minutes.some((m) => m % 60 === 0);
}

export interface LeaseTimes {
  startedAt: number | null;
  endsAt: number | null;
  stoppedAt: number | null;
}

/**
 * The minutes (inclusive, minutes since the epoch) a lease's renter may read: the last `minutes`
 * whole minutes between the lease's start and its end (or now). Only whole minutes: a partial
 * first or last minute also holds readings from before or after the lease, which may be another
 * renter's. Null when there is no such minute (not started yet, or shorter than a minute so far).
 */
export function leaseMetricsWindow(t: LeaseTimes, now: number, minutes: number): { from: number; to: number } | null {
  if (t.startedAt === null) return null;
  const end = Math.min(now, t.stoppedAt ?? t.endsAt ?? now);
  const first = Math.ceil(t.startedAt / MINUTE_MS);
  // The last minute that ends by `end`.
  const last = Math.floor(end / MINUTE_MS) - 1;
  if (last < first) return null;
  return { from: Math.max(first, last - minutes + 1), to: last };
}

export interface GpuMinuteRow {
  minute: number;
  gpuIndex: number;
  utilSum: number;
  utilSamples: number;
  memMaxMib: number | null;
  tempMaxC: number | null;
  powerSumW: number;
  powerSamples: number;
}

export interface GpuReading {
  index: number;
  utilization_pct: number | null;
  memory_used_mib: number | null;
  temperature_c: number | null;
  power_w: number | null;
}

const average = (sum: number, samples: number) => (samples > 0 ? Math.round((sum / samples) * 10) / 10 : null);

/**
 * The lease's series, oldest minute first: a minute appears when any of the lease's GPUs has a
 * row, and then lists every one of them (nulls where one reported nothing). Rows of other GPUs
 * are dropped here too, whatever the query returned.
 */
export function leaseMetricsSeries(rows: readonly GpuMinuteRow[], indices: readonly number[]): Array<{ minute: string; gpus: GpuReading[] }> {
  const held = new Set(indices);
  const byMinute = new Map<number, Map<number, GpuMinuteRow>>();
  for (const r of rows) {
    if (!held.has(r.gpuIndex)) continue;
    const m = byMinute.get(r.minute) ?? new Map<number, GpuMinuteRow>();
    m.set(r.gpuIndex, r);
    byMinute.set(r.minute, m);
  }
  const order = [...held].sort((a, b) => a - b);
  return [...byMinute.keys()]
    .sort((a, b) => a - b)
    .map((minute) => ({
      minute: new Date(minute * MINUTE_MS).toISOString(),
      gpus: order.map((index) => {
        const r = byMinute.get(minute)!.get(index);
        return {
          index,
          utilization_pct: r ? average(r.utilSum, r.utilSamples) : null,
          memory_used_mib: r?.memMaxMib ?? null,
          temperature_c: r?.tempMaxC ?? null,
          power_w: r ? average(r.powerSumW, r.powerSamples) : null,
        };
      }),
    }));
}
