import { describe, expect, it } from 'vitest';
import { buildBatch, judgeHeartbeat, overdue, recordHeartbeat, RETIRED_BOOTS, type NodeSeen } from '../../src/heartbeats/accumulator.ts';
import { HeartbeatBatchSchema } from '../../src/heartbeats/batch.ts';
import { heartbeatConfig, shardOf } from '../../src/heartbeats/config.ts';
import type { HeartbeatRequest } from '../../src/contracts/runner.ts';

const policy = { minIntervalMs: 2_000, maxSkewMs: 300_000, maxCreditedGapMs: 15_000 };
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const BOOT = '2f1c7a52-8f0e-4b7e-9d0a-3c1f5e6a7b80';

const fresh = (): NodeSeen => ({ tokenVersion: 1, bootId: null, retiredBoots: [], lastSeq: -1, lastSeenMs: null, draining: false, reportedOffline: false });
const hb = (seq: number, at: number, extra: Partial<HeartbeatRequest> = {}): HeartbeatRequest => ({
  node_id: 'node_a',
  boot_id: BOOT,
  seq,
  sent_at: new Date(at).toISOString(),
  draining: false,
  gpus: [
    { index: 0, utilization_pct: 80, memory_used_mib: 1000, temperature_c: 60, power_w: 300 },
    { index: 1, utilization_pct: null, memory_used_mib: null, temperature_c: 70, power_w: null },
  ],
  leases: [],
  acks: [],
  ...extra,
});

describe('judging heartbeats', () => {
  it('accepts the next sequence number and ignores replays and older ones', () => {
    const seen = fresh();
    expect(judgeHeartbeat(seen, hb(5, T0), T0, policy)).toEqual({ kind: 'accept' });
    recordHeartbeat(seen, undefined, hb(5, T0), T0, policy);
    expect(judgeHeartbeat(seen, hb(5, T0 + 10_000), T0 + 10_000, policy)).toEqual({ kind: 'ignore', why: 'replay' });
    expect(judgeHeartbeat(seen, hb(4, T0 + 10_000), T0 + 10_000, policy)).toEqual({ kind: 'ignore', why: 'out_of_order' });
    expect(judgeHeartbeat(seen, hb(6, T0 + 10_000), T0 + 10_000, policy)).toEqual({ kind: 'accept' });
  });

  it('accepts a restarted runner (new boot id) from sequence zero', () => {
    const seen = fresh();
    recordHeartbeat(seen, undefined, hb(40, T0), T0, policy);
    expect(judgeHeartbeat(seen, hb(0, T0 + 10_000, { boot_id: crypto.randomUUID() }), T0 + 10_000, policy)).toEqual({ kind: 'accept' });
  });

  it('ignores a late heartbeat of a boot the runner has left, and remembers the last few boots', () => {
    const seen = fresh();
    const first = hb(7, T0);
    recordHeartbeat(seen, undefined, first, T0, policy);
    const boots = Array.from({ length: RETIRED_BOOTS + 1 }, () => crypto.randomUUID());
    let t = T0;
    for (const boot_id of boots) {
      t += 10_000;
      recordHeartbeat(seen, undefined, hb(0, t, { boot_id }), t, policy);
      // The heartbeat sent before the restart, delivered now, counts for nothing.
      if (boot_id === boots[0]) expect(judgeHeartbeat(seen, { ...first, sent_at: new Date(t).toISOString() }, t + 10_000, policy)).toEqual({ kind: 'ignore', why: 'old_boot' });
    }
    expect(seen.retiredBoots).toEqual([first.boot_id, ...boots.slice(0, -1)].slice(-RETIRED_BOOTS));
    // The current boot goes on; a boot never seen is a restart.
    expect(judgeHeartbeat(seen, hb(1, t + 10_000, { boot_id: boots.at(-1)! }), t + 10_000, policy)).toEqual({ kind: 'accept' });
    expect(judgeHeartbeat(seen, hb(0, t + 10_000, { boot_id: crypto.randomUUID() }), t + 10_000, policy)).toEqual({ kind: 'accept' });
    expect(judgeHeartbeat(seen, hb(3, t + 10_000, { boot_id: boots.at(-2)! }), t + 10_000, policy)).toEqual({ kind: 'ignore', why: 'old_boot' });
  });

  it('ignores heartbeats sent long ago or from the future', () => {
    expect(judgeHeartbeat(fresh(), hb(1, T0 - 301_000), T0, policy)).toEqual({ kind: 'ignore', why: 'stale' });
    expect(judgeHeartbeat(fresh(), hb(1, T0 + 301_000), T0, policy)).toEqual({ kind: 'ignore', why: 'stale' });
  });

  it('refuses a node heartbeating faster than allowed, saying when to retry', () => {
    const seen = fresh();
    recordHeartbeat(seen, undefined, hb(1, T0), T0, policy);
    expect(judgeHeartbeat(seen, hb(2, T0 + 500), T0 + 500, policy)).toEqual({ kind: 'too_fast', retryAfterMs: 1_500 });
  });
});

describe('recording heartbeats', () => {
  it('credits uptime only for gaps short enough to prove the node stayed up', () => {
    const seen = fresh();
    let p = recordHeartbeat(seen, undefined, hb(1, T0), T0, policy);
    p = recordHeartbeat(seen, p, hb(2, T0 + 10_000), T0 + 10_000, policy);
    p = recordHeartbeat(seen, p, hb(3, T0 + 40_000), T0 + 40_000, policy); // a 30 s gap proves nothing
    p = recordHeartbeat(seen, p, hb(4, T0 + 50_000), T0 + 50_000, policy);
    expect(p.uptime).toEqual({ '2026-11-25': 20 });
    expect(p.heartbeats).toBe(4);
  });

  it('rolls metrics up per minute, skipping unknown values', () => {
    const seen = fresh();
    let p = recordHeartbeat(seen, undefined, hb(1, T0), T0, policy);
    p = recordHeartbeat(seen, p, hb(2, T0 + 10_000), T0 + 10_000, policy);
    const minute = p.minutes.get(Math.floor(T0 / 60_000))!;
    expect(minute).toMatchObject({ heartbeats: 2, util_sum: 160, util_samples: 2, mem_used_max_mib: 1000, temp_max_c: 70, power_sum_w: 600, power_samples: 2 });
  });

  it('reports a silent node offline once', () => {
    const seen = fresh();
    recordHeartbeat(seen, undefined, hb(1, T0), T0, policy);
    const nodes = new Map([['node_a', seen]]);
    expect(overdue(nodes, T0 + 40_000, 45_000)).toEqual([]);
    expect(overdue(nodes, T0 + 46_000, 45_000)).toEqual([{ node_id: 'node_a', last_seen: T0 }]);
    seen.reportedOffline = true;
    expect(overdue(nodes, T0 + 90_000, 45_000)).toEqual([]);
  });

  it('builds batches the callback accepts', () => {
    const seen = fresh();
    const p = recordHeartbeat(seen, undefined, hb(1, T0), T0, policy);
    const batch = buildBatch('us-east:0:abc:1', 'us-east', 0, T0, new Map([['node_a', p]]), []);
    expect(HeartbeatBatchSchema.parse(batch)).toEqual(batch);
  });
});

describe('heartbeat configuration', () => {
  it('spreads nodes over shards stably', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4_000; i++) counts[shardOf(`node_${i}`, 4)]! += 1;
    for (const n of counts) expect(n).toBeGreaterThan(800);
    expect(shardOf('node_x', 4)).toBe(shardOf('node_x', 4));
  });

  it('reads knobs with safe defaults', () => {
    expect(heartbeatConfig({})).toMatchObject({ shards: 4, intervalS: 10, flushMs: 5_000, graceMs: 45_000 });
    expect(heartbeatConfig({ COLLECTOR_SHARDS: 'lots', NODE_GRACE_S: '-1' })).toMatchObject({ shards: 4, graceMs: 45_000 });
  });
});
