import type { HeartbeatPolicy } from './accumulator.ts';

/** The longest flush interval allowed: at most this much roll-up data can be lost. */
export const MAX_FLUSH_S = 10;

export interface HeartbeatConfig {
  shards: number;
  intervalS: number;
  flushMs: number;
  graceMs: number;
  policy: HeartbeatPolicy;
}

/** A positive number from a variable, or `fallback` when it is unset, empty or not positive. */
export function positive(text: string | undefined, fallback: number): number {
  const n = Number(text);
  return text !== undefined && text !== '' && Number.isFinite(n) && n > 0 ? n : fallback;
}

export function heartbeatConfig(env: {
  COLLECTOR_SHARDS?: string;
  HEARTBEAT_INTERVAL_S?: string;
  HEARTBEAT_MIN_INTERVAL_S?: string;
  HEARTBEAT_FLUSH_S?: string;
  NODE_GRACE_S?: string;
}): HeartbeatConfig {
  const intervalS = positive(env.HEARTBEAT_INTERVAL_S, 10);
  const graceMs = positive(env.NODE_GRACE_S, 45) * 1000;
  return {
    shards: Math.floor(positive(env.COLLECTOR_SHARDS, 4)),
    intervalS,
    // Accepted heartbeats wait in a Collector's memory until the flush; an evicted Collector
    // loses them, so the window is capped.
    flushMs: Math.min(positive(env.HEARTBEAT_FLUSH_S, 5), MAX_FLUSH_S) * 1000,
    graceMs,
    policy: {
      minIntervalMs: positive(env.HEARTBEAT_MIN_INTERVAL_S, 2) * 1000,
      maxSkewMs: 5 * 60_000,
      maxCreditedGapMs: Math.min(graceMs, intervalS * 1500),
    },
  };
}

/** Stable shard of a node: FNV-1a of its id. */
export function shardOf(nodeId: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < nodeId.length; i++) {
    h ^= nodeId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

export function collectorName(region: string, shard: number): string {
  return `${region}:${shard}`;
}
