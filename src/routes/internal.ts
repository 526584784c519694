// Queue callbacks. Every delivery is verified first (src/queue/receiver.ts), whichever
// transport sent it.
import { createRoute, z } from '@hono/zod-openapi';
import type { Client, InStatement, InValue } from '@libsql/client/web';
import { errorResponses, jsonContent } from '../contracts/common.ts';
import { connection } from '../db/client.ts';
import { parseRawJson, router } from '../http/router.ts';
import { HeartbeatBatchSchema, type HeartbeatBatch } from '../heartbeats/batch.ts';
import { GPU_METRICS_RETENTION_MIN, prunesOldGpuMinutes } from '../heartbeats/gpu-metrics.ts';
import { regionBook } from '../durable/region-book.ts';
import { booksHoldingNodes } from '../nodes/books.ts';
import { confirmLeaseBatch } from '../durable/lease.ts';
import { queueRetried, verifiedQueueBody } from '../queue/receiver.ts';
import { queueRetries } from '../queue/transport.ts';
import { deliverWebhook } from '../webhooks/deliver.ts';
import { WebhookMessageSchema } from '../webhooks/emit.ts';
import type { Bindings } from '../env.ts';

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/queue/heartbeats',
    tags: ['internal'],
    summary: 'Heartbeat batches from the Collectors, delivered by the queue (QStash-signed)',
    responses: { 200: jsonContent(z.object({ outcome: z.enum(['applied', 'duplicate']) }), 'Applied once'), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const raw = await verifiedQueueBody(c);
    const batch = parseRawJson(raw, HeartbeatBatchSchema);
    const { money } = connection(c.env);
    const applied = await applyBatch(money, batch);
    // Also on a redelivery: telling a book what it already knows changes nothing.
    await tellBooks(c.env, money, [...batch.nodes.map((n) => n.node_id), ...batch.offline.map((o) => o.node_id)]);
    // A lease that fails to take its confirmations is logged, not a reason to refuse the batch:
    // the next batch's points bridge the gap (spans merge within the grace).
    await confirmLeaseBatch(c.env, money, batch);
    return c.json({ outcome: applied ? ('applied' as const) : ('duplicate' as const) }, 200);
  },
);

const DeliveryResult = z.object({
  outcome: z.enum(['delivered', 'retrying', 'failed', 'gone', 'duplicate']),
  status: z.number().int().nullable().optional(),
  error: z.string().nullable().optional(),
});

app.openapi(
  createRoute({
    method: 'post',
    path: '/queue/webhooks',
    tags: ['internal'],
    summary: 'One webhook delivery attempt, scheduled and retried by the queue (QStash-signed)',
    responses: {
      200: jsonContent(DeliveryResult, 'Delivered, given up, or nothing to do (endpoint deleted, already delivered)'),
      502: jsonContent(DeliveryResult, 'The endpoint did not accept it; the queue retries'),
      ...errorResponses(400, 401),
    },
  }),
  async (c) => {
    const raw = await verifiedQueueBody(c);
    const { delivery_id } = parseRawJson(raw, WebhookMessageSchema);
    const result = await deliverWebhook(c.env, delivery_id, { final: queueRetried(c) >= queueRetries(c.env) });
    if (result.outcome === 'retrying') return c.json(result, 502);
    return c.json(result, 200);
  },
);

/** Per-GPU minute rows per INSERT: 1,000 parameters, well inside SQLite's limit. */
const GPU_ROWS_PER_STATEMENT = 100;

/**
 * Applies a batch in one libSQL transaction, guarded by its id: a redelivered batch fails on
 * the primary key before changing anything.
 */
export async function applyBatch(client: Client, b: HeartbeatBatch): Promise<boolean> {
  const now = Date.now();
  const heartbeats = b.nodes.reduce((n, x) => n + x.heartbeats, 0);
  const statements: InStatement[] = [{ sql: 'INSERT INTO heartbeat_batches (id, heartbeats, processed_at) VALUES (?, ?, ?)', args: [b.batch_id, heartbeats, now] }];
  const gpuRows: InValue[][] = [];
  for (const n of b.nodes) {
    statements.push({
      sql: `UPDATE nodes SET status = CASE WHEN ? THEN 'draining' ELSE 'online' END, last_heartbeat_at = max(coalesce(last_heartbeat_at, 0), ?)
            WHERE id = ? AND status != 'revoked'`,
      args: [n.draining ? 1 : 0, n.last_seen, n.node_id],
    });
    for (const m of n.minutes) {
      statements.push({
        sql: `INSERT INTO node_metrics_minute (node_id, minute, heartbeats, util_sum, util_samples, mem_used_max_mib, temp_max_c, power_sum_w, power_samples)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
              ON CONFLICT (node_id, minute) DO UPDATE SET heartbeats = heartbeats + excluded.heartbeats, util_sum = util_sum + excluded.util_sum,
                util_samples = util_samples + excluded.util_samples, mem_used_max_mib = coalesce(max(mem_used_max_mib, excluded.mem_used_max_mib), mem_used_max_mib, excluded.mem_used_max_mib),
                temp_max_c = coalesce(max(temp_max_c, excluded.temp_max_c), temp_max_c, excluded.temp_max_c), power_sum_w = power_sum_w + excluded.power_sum_w,
                power_samples = power_samples + excluded.power_samples`,
        args: [n.node_id, m.minute, m.heartbeats, m.util_sum, m.util_samples, m.mem_used_max_mib, m.temp_max_c, m.power_sum_w, m.power_samples],
      });
    }
    for (const m of n.minutes) for (const g of m.gpus) gpuRows.push([n.node_id, m.minute, g.index, g.samples, g.util_sum, g.util_samples, g.mem_max_mib, g.temp_max_c, g.power_sum_w, g.power_samples]);
    if (prunesOldGpuMinutes(n.minutes.map((m) => m.minute))) {
      statements.push({ sql: 'DELETE FROM gpu_metrics_minute WHERE node_id = ? AND minute < ?', args: [n.node_id, Math.floor(now / 60_000) - GPU_METRICS_RETENTION_MIN] });
    }
    for (const [day, seconds] of Object.entries(n.uptime)) {
      statements.push({
        sql: `INSERT INTO node_uptime_daily (node_id, day, seconds, heartbeats) VALUES (?, ?, ?, ?)
              ON CONFLICT (node_id, day) DO UPDATE SET seconds = seconds + excluded.seconds, heartbeats = heartbeats + excluded.heartbeats`,
        args: [n.node_id, day, Math.round(seconds), n.heartbeats],
      });
    }
  }
  for (let i = 0; i < gpuRows.length; i += GPU_ROWS_PER_STATEMENT) {
    const rows = gpuRows.slice(i, i + GPU_ROWS_PER_STATEMENT);
    // Maxima merge so that NULL (never reported) stays NULL: SQLite's max() is NULL if either is.
    statements.push({
      sql: `INSERT INTO gpu_metrics_minute (node_id, minute, gpu_index, samples, util_sum, util_samples, mem_max_mib, temp_max_c, power_sum_w, power_samples)
            VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
            ON CONFLICT (node_id, minute, gpu_index) DO UPDATE SET samples = samples + excluded.samples, util_sum = util_sum + excluded.util_sum,
              util_samples = util_samples + excluded.util_samples, mem_max_mib = coalesce(max(mem_max_mib, excluded.mem_max_mib), mem_max_mib, excluded.mem_max_mib),
              temp_max_c = coalesce(max(temp_max_c, excluded.temp_max_c), temp_max_c, excluded.temp_max_c), power_sum_w = power_sum_w + excluded.power_sum_w,
              power_samples = power_samples + excluded.power_samples`,
      args: rows.flat(),
    });
  }
  for (const o of b.offline) {
    // Only if no later heartbeat has been applied since.
    statements.push({
      sql: "UPDATE nodes SET status = 'offline' WHERE id = ? AND status IN ('online', 'draining', 'registered') AND coalesce(last_heartbeat_at, 0) <= ?",
      args: [o.node_id, o.last_seen],
    });
  }
  try {
    await client.batch(statements, 'write');
    return true;
  } catch (err) {
    if (String((err as Error).message).includes('heartbeat_batches.id')) return false;
    throw err;
  }
}

/**
 * Tells the RegionBooks holding asks (open, or fully leased and so reopened when a lease ends)
 * or live leases of these nodes whether each node is online, so an offline node's asks stop
 * matching and a returning node's match again, and how far each is trusted now (books also
 * hear that from publishNodeTrust at once; this repairs a publication that was missed). One
 * call per book.
 */
export async function tellBooks(env: Bindings, client: Client, nodeIds: string[]): Promise<void> {
  const books = await booksHoldingNodes(client, nodeIds);
  await Promise.all(
    books.map((b) =>
      regionBook(env, b.region, b.gpuModel).setNodes({
        online: b.nodes.filter((n) => n.status === 'online').map((n) => n.id),
        offline: b.nodes.filter((n) => n.status !== 'online').map((n) => n.id),
        trust: Object.fromEntries(b.nodes.map((n) => [n.id, { reliabilityPpm: n.reliabilityPpm, verified: n.verified }])),
      }),
    ),
  );
}

export default app;
