// Pure heartbeat bookkeeping for a Collector shard: which heartbeats count, and what the next
// batch says about each node. No I/O, no clock: `now` is passed in.
import type { HeartbeatRequest } from '../contracts/runner.ts';
import type { HeartbeatBatch, MinuteRollup } from './batch.ts';
import { addGpuReading } from './gpu-metrics.ts';

export interface NodeSeen {
  /** The node token version this shard last accepted; older tokens are refused. */
  tokenVersion: number;
  bootId: string | null;
  /**
   * The node's boots before `bootId`, newest last (at most RETIRED_BOOTS): a heartbeat of one of
   * them arriving late, after the runner restarted, is not counted a second time.
   */
  retiredBoots: string[];
  lastSeq: number;
  lastSeenMs: number | null;
  draining: boolean;
  /** Whether the last batch reported the node offline (so it is reported once). */
  reportedOffline: boolean;
}

export interface HeartbeatPolicy {
  /** A node may not heartbeat more often than this. */
  minIntervalMs: number;
  /** Heartbeats whose sent_at is further than this from now are replays or broken clocks. */
  maxSkewMs: number;
  /** Uptime between two heartbeats is counted up to this gap (interval plus slack). */
  maxCreditedGapMs: number;
}

/** Boots remembered per node: a late heartbeat comes from one of the last few. */
export const RETIRED_BOOTS = 4;

/** The node's current boot joins its retired ones (the oldest beyond RETIRED_BOOTS forgotten). */
export function retireBoot(seen: NodeSeen): void {
  if (seen.bootId !== null) seen.retiredBoots = [...seen.retiredBoots, seen.bootId].slice(-RETIRED_BOOTS);
}

export type HeartbeatVerdict =
  | { kind: 'accept' }
  | { kind: 'ignore'; why: 'replay' | 'out_of_order' | 'stale' | 'old_boot' }
  | { kind: 'too_fast'; retryAfterMs: number };

export function judgeHeartbeat(seen: NodeSeen, hb: HeartbeatRequest, now: number, policy: HeartbeatPolicy): HeartbeatVerdict {
  const sentAt = Date.parse(hb.sent_at);
  if (!Number.isFinite(sentAt) || Math.abs(now - sentAt) > policy.maxSkewMs) return { kind: 'ignore', why: 'stale' };
  if (seen.bootId === hb.boot_id && hb.seq <= seen.lastSeq) return { kind: 'ignore', why: hb.seq === seen.lastSeq ? 'replay' : 'out_of_order' };
  // A boot the node has left: a heartbeat sent before it restarted, delivered late or again.
  if (seen.bootId !== hb.boot_id && seen.retiredBoots.includes(hb.boot_id)) return { kind: 'ignore', why: 'old_boot' };
  if (seen.lastSeenMs !== null && now - seen.lastSeenMs < policy.minIntervalMs) {
    return { kind: 'too_fast', retryAfterMs: policy.minIntervalMs - (now - seen.lastSeenMs) };
  }
  return { kind: 'accept' };
}

export interface PendingNode {
  lastSeenMs: number;
  heartbeats: number;
  uptime: Record<string, number>;
  draining: boolean;
  minutes: Map<number, MinuteRollup>;
  /** Per lease the node reported running: when each such heartbeat arrived (ms). */
  leases: Map<string, number[]>;
}

/** Confirmation points kept per lease per flush; more would mean heartbeats far too fast. */
const MAX_POINTS_PER_LEASE = 100;

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Records an accepted heartbeat into the node's state and the shard's pending batch. */
export function recordHeartbeat(seen: NodeSeen, pending: PendingNode | undefined, hb: HeartbeatRequest, now: number, policy: HeartbeatPolicy): PendingNode {
  const p: PendingNode = pending ?? { lastSeenMs: now, heartbeats: 0, uptime: {}, draining: false, minutes: new Map(), leases: new Map() };
  // Uptime counts the time since the previous heartbeat, if it came soon enough to prove
  // the node was up all along; a gap longer than that proves nothing and earns nothing.
  if (seen.lastSeenMs !== null && !seen.reportedOffline) {
    const gap = now - seen.lastSeenMs;
    if (gap > 0 && gap <= policy.maxCreditedGapMs) {
      const day = utcDay(now);
      p.uptime[day] = (p.uptime[day] ?? 0) + gap / 1000;
    }
  }
  p.lastSeenMs = now;
  p.heartbeats += 1;
  p.draining = hb.draining;
  // Each heartbeat that lists a lease as running confirms it alive now: what billing counts.
  for (const l of hb.leases) {
    if (l.state !== 'running') continue;
    const points = p.leases.get(l.lease_id) ?? [];
    if (points.length < MAX_POINTS_PER_LEASE) points.push(now);
    p.leases.set(l.lease_id, points);
  }

  const minute = Math.floor(now / 60_000);
  const m = p.minutes.get(minute) ?? {
    minute,
    heartbeats: 0,
    util_sum: 0,
    util_samples: 0,
    mem_used_max_mib: null,
    temp_max_c: null,
    power_sum_w: 0,
    power_samples: 0,
    gpus: [],
  };
  m.heartbeats += 1;
  for (const g of hb.gpus) {
    if (g.utilization_pct !== null) {
      m.util_sum += g.utilization_pct;
      m.util_samples += 1;
    }
    if (g.memory_used_mib !== null) m.mem_used_max_mib = Math.max(m.mem_used_max_mib ?? 0, g.memory_used_mib);
    if (g.temperature_c !== null) m.temp_max_c = Math.max(m.temp_max_c ?? -Infinity, g.temperature_c);
    if (g.power_w !== null) {
      m.power_sum_w += g.power_w;
      m.power_samples += 1;
    }
    addGpuReading(m.gpus, g);
  }
  p.minutes.set(minute, m);

  if (seen.bootId !== hb.boot_id) retireBoot(seen);
  seen.bootId = hb.boot_id;
  seen.lastSeq = hb.seq;
  seen.lastSeenMs = now;
  seen.draining = hb.draining;
  seen.reportedOffline = false;
  return p;
}

/** Nodes silent for longer than the grace period, not yet reported offline. */
export function overdue(nodes: Map<string, NodeSeen>, now: number, graceMs: number): Array<{ node_id: string; last_seen: number }> {
  const out: Array<{ node_id: string; last_seen: number }> = [];
  for (const [id, seen] of nodes) {
    if (!seen.reportedOffline && seen.lastSeenMs !== null && now - seen.lastSeenMs > graceMs) out.push({ node_id: id, last_seen: seen.lastSeenMs });
  }
  return out;
}

export function buildBatch(
  id: string,
  region: string,
  shard: number,
  now: number,
  pending: Map<string, PendingNode>,
  offline: Array<{ node_id: string; last_seen: number }>,
): HeartbeatBatch {
  return {
    batch_id: id,
    region,
    shard,
    flushed_at: now,
    nodes: [...pending].map(([nodeId, p]) => ({
      node_id: nodeId,
      last_seen: p.lastSeenMs,
      heartbeats: p.heartbeats,
      uptime: Object.fromEntries(Object.entries(p.uptime).map(([d, s]) => [d, Math.round(s)])),
      draining: p.draining,
      minutes: [...p.minutes.values()],
      leases: [...p.leases].map(([lease_id, seen]) => ({ lease_id, seen })),
    })),
    offline,
  };
}

/**
 * Splits pending nodes into queue messages of at most `maxNodes` nodes and about `maxGpuMinutes`
 * per-GPU minute roll-ups (the bulk of a message), keeping each under the queue's size limit. A
 * node is never split; one larger than the budget goes alone.
 */
export function chunkPending(pending: Array<[string, PendingNode]>, maxNodes: number, maxGpuMinutes: number): Array<Array<[string, PendingNode]>> {
  const chunks: Array<Array<[string, PendingNode]>> = [];
  let chunk: Array<[string, PendingNode]> = [];
  let weight = 0;
  for (const entry of pending) {
    let w = 0;
    for (const m of entry[1].minutes.values()) w += m.gpus.length;
    if (chunk.length > 0 && (chunk.length >= maxNodes || weight + w > maxGpuMinutes)) {
      chunks.push(chunk);
      chunk = [];
      weight = 0;
    }
    chunk.push(entry);
    weight += w;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
