import { z } from '@hono/zod-openapi';
import type { Bindings } from '../env.ts';
import type { nodeGpus, nodes } from '../db/schema.ts';
import { collectorName, heartbeatConfig, shardOf } from '../heartbeats/config.ts';
import { iso } from '../contracts/money.ts';

type NodeRow = typeof nodes.$inferSelect;
type GpuRow = typeof nodeGpus.$inferSelect;

/** The Collector shard that takes a node's heartbeats and holds its mailbox. */
export function collectorFor(env: Bindings, nodeId: string, region: string) {
  const { shards } = heartbeatConfig(env);
  const shard = shardOf(nodeId, shards);
  return { stub: env.COLLECTOR.getByName(collectorName(region, shard)), shard };
}

export const NodeGpuSchema = z
  .object({ index: z.number().int(), uuid: z.string(), name: z.string(), model: z.string().nullable(), memory_mib: z.number().int(), driver: z.string() })
  .openapi('NodeGpu');

export const NodeSchema = z
  .object({
    id: z.string(),
    region: z.string(),
    hostname: z.string(),
    status: z.enum(['registered', 'online', 'offline', 'draining', 'revoked']),
    gpus: z.array(NodeGpuSchema),
    machine: z.record(z.string(), z.unknown()),
    reliability: z.number().openapi({ description: '0–1' }),
    verified: z.boolean(),
    last_heartbeat_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('Node');

export function publicNode(row: NodeRow, gpus: GpuRow[]) {
  return {
    id: row.id,
    region: row.region,
    hostname: row.hostname,
    status: row.status,
    gpus: gpus
      .filter((g) => g.nodeId === row.id)
      .sort((a, b) => a.index - b.index)
      .map((g) => ({ index: g.index, uuid: g.uuid, name: g.name, model: g.model, memory_mib: g.memoryMib, driver: g.driver })),
    machine: row.machine,
    reliability: row.reliabilityPpm / 1_000_000,
    verified: row.verified,
    last_heartbeat_at: iso(row.lastHeartbeatAt),
    created_at: iso(row.createdAt)!,
  };
}
