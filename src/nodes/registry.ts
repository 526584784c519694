import { z } from '@hono/zod-openapi';
import type { Bindings } from '../env.ts';
import type { nodeChallenges, nodeGpus, nodes } from '../db/schema.ts';
import { collectorName, heartbeatConfig, shardOf } from '../heartbeats/config.ts';
import { iso } from '../contracts/money.ts';
import { nodeKeyFingerprint } from './identity.ts';

type NodeRow = typeof nodes.$inferSelect;
type GpuRow = typeof nodeGpus.$inferSelect;

/** The Collector shard that takes a node's heartbeats and holds its mailbox. */
export function collectorFor(env: Bindings, nodeId: string, region: string) {
  const { shards } = heartbeatConfig(env);
  const shard = shardOf(nodeId, shards);
  return { stub: env.COLLECTOR.getByName(collectorName(region, shard)), shard };
}

/** True when both list the same cards (UUIDs) as the same catalog models, in any order. */
export function sameGpuSet(a: ReadonlyArray<{ uuid: string; model: string | null }>, b: ReadonlyArray<{ uuid: string; model: string | null }>): boolean {
  const key = (gpus: ReadonlyArray<{ uuid: string; model: string | null }>) => JSON.stringify(gpus.map((g) => [g.uuid, g.model]).sort());
  return a.length === b.length && key(a) === key(b);
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
    verified_at: z.string().nullable().openapi({ description: 'When the node last passed identity and capacity challenges' }),
    verified_until: z.string().nullable().openapi({ description: 'When that verification lapses unless passed again; null when never verified or cleared by a failure' }),
    public_key: z.string().nullable().openapi({ description: "The node's Ed25519 public key (raw, base64url), registered at join; null for nodes from before node keys" }),
    key_fingerprint: z.string().nullable().openapi({ description: 'First 16 hex of SHA-256 over the raw public key, as `gridlease-runner status` prints it' }),
    last_heartbeat_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('Node');

export async function publicNode(row: NodeRow, gpus: GpuRow[]) {
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
    verified_at: iso(row.verifiedAt),
    verified_until: iso(row.verifiedUntil),
    public_key: row.publicKey,
    key_fingerprint: row.publicKey === null ? null : await nodeKeyFingerprint(row.publicKey),
    last_heartbeat_at: iso(row.lastHeartbeatAt),
    created_at: iso(row.createdAt)!,
  };
}

export const ChallengeSummarySchema = z
  .object({
    id: z.string(),
    kind: z.enum(['identity', 'capacity']),
    status: z.enum(['issued', 'committed', 'passed', 'failed', 'expired']),
    issued_at: z.string(),
    deadline: z.string(),
    decided_at: z.string().nullable(),
    reasons: z.array(z.string()),
    challenge: z.record(z.string(), z.unknown()).openapi({ description: 'Exactly what the node was sent' }),
  })
  .openapi('NodeChallenge');

export function challengeSummary(row: typeof nodeChallenges.$inferSelect) {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    issued_at: iso(row.issuedAt)!,
    deadline: iso(row.deadline)!,
    decided_at: iso(row.decidedAt),
    reasons: row.reasons ?? [],
    challenge: row.challenge,
  };
}
