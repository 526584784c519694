// Mounted at /v1/leases (src/index.ts). A renter's view of the GPUs its lease holds, minute by
// minute, from the heartbeat roll-ups in gpu_metrics_minute. Only the lease's own GPUs and only
// whole minutes inside the lease: the node's other GPUs, and the same GPUs before or after, may
// be someone else's.
import { createRoute, z } from '@hono/zod-openapi';
import { and, asc, between, eq, inArray } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { BEARER, errorResponses, jsonContent } from '../contracts/common.ts';
import { limitQuery } from '../db/pagination.ts';
import { gpuMetricsMinute, leases } from '../db/schema.ts';
import { lease, type LeaseRecord } from '../durable/lease.ts';
import { leaseMetricsSeries, leaseMetricsWindow, MAX_LEASE_METRICS_MINUTES } from '../heartbeats/gpu-metrics.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';

const app = router();

const GpuMinuteSchema = z
  .object({
    index: z.number().int().openapi({ description: 'The GPU index on the node, one of the lease’s gpu_indices' }),
    utilization_pct: z.number().nullable().openapi({ description: 'Average over the minute’s heartbeats, 0.1 precision; null if none reported it', example: 87.5 }),
    memory_used_mib: z.number().int().nullable().openapi({ description: 'Maximum over the minute; null if none reported it', example: 40_000 }),
    temperature_c: z.number().nullable().openapi({ description: 'Maximum over the minute; null if none reported it', example: 71 }),
    power_w: z.number().nullable().openapi({ description: 'Average over the minute’s heartbeats, 0.1 precision; null if none reported it', example: 301.2 }),
  })
  .openapi('LeaseGpuMinute');

const MinuteSchema = z
  .object({
    minute: z.string().openapi({ description: 'Start of the minute (UTC)', example: '2026-12-07T07:01:00.000Z' }),
    gpus: z.array(GpuMinuteSchema).openapi({ description: 'Every GPU of the lease, by index' }),
  })
  .openapi('LeaseMetricsMinute');

const LeaseMetricsSchema = z
  .object({
    lease_id: z.string(),
    gpu_indices: z.array(z.number().int()),
    data: z.array(MinuteSchema).openapi({ description: 'Oldest minute first; minutes with no heartbeat are absent' }),
  })
  .openapi('LeaseMetrics');

const MetricsQuery = z
  .object({
    minutes: limitQuery(MAX_LEASE_METRICS_MINUTES, 60).openapi({
      description: 'How many of the lease’s last whole minutes (ending at its end, or now) to return',
    }),
  })
  .strict();

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/metrics',
    tags: ['leases'],
    summary: 'Per-minute utilisation, memory, temperature and power of your lease’s GPUs (404 unless you rent it)',
    security: BEARER,
    middleware: guard('leases:read'),
    request: { params: z.object({ id: z.string().max(64) }), query: MetricsQuery },
    responses: { 200: jsonContent(LeaseMetricsSchema, 'Metrics'), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const me = c.get('principal').accountId;
    const id = c.req.valid('param').id;
    const { minutes } = c.req.valid('query');
    const db = c.get('db');
    // The renter only: the provider sees its node's metrics on the node.
    const [row] = await db.select().from(leases).where(and(eq(leases.id, id), eq(leases.renterId, me)));
    if (!row) throw new ApiError('not_found', `no lease ${id} of yours`);
    const rec = (await lease(c.env, id).get()) as LeaseRecord | null;
    const window = rec ? leaseMetricsWindow(rec, Date.now(), minutes) : null;
    const rows =
      window && row.gpuIndices.length > 0
        ? await db
            .select()
            .from(gpuMetricsMinute)
            .where(and(eq(gpuMetricsMinute.nodeId, row.nodeId), between(gpuMetricsMinute.minute, window.from, window.to), inArray(gpuMetricsMinute.gpuIndex, row.gpuIndices)))
            .orderBy(asc(gpuMetricsMinute.minute), asc(gpuMetricsMinute.gpuIndex))
        : [];
    return c.json({ lease_id: row.id, gpu_indices: row.gpuIndices, data: leaseMetricsSeries(rows, row.gpuIndices) }, 200);
  },
);

export default app;
