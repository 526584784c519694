// What a Collector flushes through the queue: one message per shard every few seconds,
// summarising every heartbeat it accepted since the last flush.
import { z } from 'zod';

/** One GPU's readings in one minute; the maxima stay null until some heartbeat reports them. */
const GpuMinuteSchema = z
  .object({
    index: z.number().int().min(0).max(63),
    samples: z.number().int().min(0),
    util_sum: z.number().min(0),
    util_samples: z.number().int().min(0),
    mem_max_mib: z.number().int().min(0).nullable(),
    temp_max_c: z.number().nullable(),
    power_sum_w: z.number().min(0),
    power_samples: z.number().int().min(0),
  })
  .strict();
export type GpuMinute = z.infer<typeof GpuMinuteSchema>;

const MinuteSchema = z
  .object({
    minute: z.number().int().min(0),
    heartbeats: z.number().int().min(0),
    util_sum: z.number().min(0),
    util_samples: z.number().int().min(0),
    mem_used_max_mib: z.number().int().min(0).nullable(),
    temp_max_c: z.number().nullable(),
    power_sum_w: z.number().min(0),
    power_samples: z.number().int().min(0),
    /** Per GPU, for renters' lease metrics; absent in batches flushed before it existed. */
    gpus: z.array(GpuMinuteSchema).max(64).default([]),
  })
  .strict();
export type MinuteRollup = z.infer<typeof MinuteSchema>;

export const HeartbeatBatchSchema = z
  .object({
    /** Unique per flush; the receiver applies each id once. */
    batch_id: z.string().min(1).max(200),
    region: z.string(),
    shard: z.number().int().min(0),
    flushed_at: z.number().int(),
    nodes: z
      .array(
        z
          .object({
            node_id: z.string(),
            last_seen: z.number().int(),
            heartbeats: z.number().int().min(0),
            /** Seconds of heartbeat-confirmed uptime since the last flush, by UTC day. */
            uptime: z.record(z.string().regex(/^\d{4}-\d{2}-\d{2}$/), z.number().min(0)),
            draining: z.boolean(),
            minutes: z.array(MinuteSchema),
            /** Leases the node reported running, with when each confirming heartbeat arrived. */
            leases: z
              .array(z.object({ lease_id: z.string().max(64), seen: z.array(z.number().int()).max(1_000) }).strict())
              .max(64)
              .default([]),
          })
          .strict(),
      )
      .max(100_000),
    /** Nodes whose last heartbeat is older than the grace period. */
    offline: z.array(z.object({ node_id: z.string(), last_seen: z.number().int() }).strict()).max(100_000),
  })
  .strict();
export type HeartbeatBatch = z.infer<typeof HeartbeatBatchSchema>;
