// The wire shape of a node's order-processing check, shared by the owner's and the operators' routes.
import { z } from '@hono/zod-openapi';
import type { NodeOrderProcessing } from '../inspections/order-processing.ts';

export const OrderProcessingSchema = z
  .object({
    node_id: z.string(),
    leases: z.number().int(),
    passed: z.number().int(),
    median_start_latency_ms: z.number().int().nullable(),
    audits: z.array(
      z.object({
        lease_id: z.string(),
        state: z.string(),
        start_latency_ms: z.number().int().nullable(),
        /** Micro-units of the lease's asset, as decimal strings of integers. */
        billed_micro: z.string(),
        expected_micro: z.string(),
        findings: z.array(z.string()),
      }),
    ),
  })
  .openapi('OrderProcessing');

export function orderProcessingWire(nodeId: string, r: NodeOrderProcessing): z.infer<typeof OrderProcessingSchema> {
  return {
    node_id: nodeId,
    leases: r.leases,
    passed: r.passed,
    median_start_latency_ms: r.medianStartLatencyMs,
    audits: r.audits.map((a) => ({
      lease_id: a.leaseId,
      state: a.state,
      start_latency_ms: a.startLatencyMs,
      billed_micro: a.billed.toString(),
      expected_micro: a.expected.toString(),
      findings: a.findings,
    })),
  };
}
