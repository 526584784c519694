// Wire schemas for orders and leases.
import { z } from '@hono/zod-openapi';
import { GPU_MODEL_IDS } from '../catalog/gpus.ts';
import { REGION_IDS } from '../catalog/regions.ts';
import { MICRO } from '../money/amount.ts';
import { AssetSchema, MoneyString, amountSchema } from './money.ts';
import { MAX_GPUS_PER_NODE, WorkloadSchema } from './runner.ts';

export const MIN_DURATION_S = 60;
export const MAX_DURATION_S = 30 * 86_400;
/** The longest an order may rest. */
export const MAX_ORDER_TTL_MS = 30 * 86_400_000;
export const DEFAULT_ORDER_TTL_MS = 86_400_000;
/** The highest price per GPU-hour accepted: keeps every cost far inside exact integer range. */
export const MAX_PRICE = 1_000n * MICRO;

const Region = z.enum(REGION_IDS as [string, ...string[]]).openapi({ example: 'us-east' });
const GpuModelId = z.enum(GPU_MODEL_IDS as [string, ...string[]]).openapi({ example: 'h100-80gb' });
const Gpus = z
  .number()
  .int()
  .min(1, 'must be at least 1')
  .max(MAX_GPUS_PER_NODE, `no node has more than ${MAX_GPUS_PER_NODE} GPUs`)
  .openapi({ example: 2 });
const Price = amountSchema().refine((v) => v <= MAX_PRICE, `must be at most ${MAX_PRICE / MICRO} per GPU-hour`);
const Duration = z.number().int().min(MIN_DURATION_S, `must be at least ${MIN_DURATION_S} s`).max(MAX_DURATION_S, `must be at most ${MAX_DURATION_S} s (30 days)`);
const ExpiresAt = z.iso.datetime({ offset: true }).optional().openapi({ description: 'When a gtc order stops resting; default 24 h from now' });

const common = {
  region: Region,
  gpu_model: GpuModelId,
  gpus: Gpus,
  price: Price.openapi({ type: 'string', example: '2.35', description: 'USD per GPU-hour, at most 6 decimals' }),
  tif: z.enum(['gtc', 'ioc']).default('gtc'),
  expires_at: ExpiresAt,
};

export const BuyOrderBody = z
  .object({
    side: z.literal('buy'),
    ...common,
    duration_s: Duration,
    pay_with: AssetSchema,
    workload: WorkloadSchema,
    min_reliability: z.number().min(0).max(1).default(0),
    verified_only: z.boolean().default(false),
  })
  .strict()
  .openapi('BuyOrder');

export const SellOrderBody = z
  .object({
    side: z.literal('sell'),
    ...common,
    // A sell rests until it expires: an ask's GPUs are offered for its whole life, and leases
    // that end give their GPUs back to it, which an immediate-or-cancel ask could not take.
    tif: z.literal('gtc', { error: 'must be gtc: a sell rests until expires_at (ioc is for buy orders only)' }).default('gtc'),
    node_id: z.string().min(1).max(64),
    min_duration_s: Duration.default(MIN_DURATION_S),
    max_duration_s: Duration.default(MAX_DURATION_S),
  })
  .strict()
  .openapi('SellOrder');

export const PlaceOrderBody = z.discriminatedUnion('side', [BuyOrderBody, SellOrderBody]);
export type PlaceOrderInput = z.infer<typeof PlaceOrderBody>;

export const ORDER_STATUSES = ['open', 'filled', 'cancelled', 'expired'] as const;

export const OrderSchema = z
  .object({
    id: z.string(),
    side: z.enum(['buy', 'sell']),
    region: z.string(),
    gpu_model: z.string(),
    gpus: z.number().int(),
    price: MoneyString,
    tif: z.enum(['gtc', 'ioc']),
    status: z.enum(ORDER_STATUSES),
    remaining_gpus: z.number().int().openapi({ description: 'GPUs still offered (sell) or wanted (buy)' }),
    expires_at: z.string(),
    created_at: z.string(),
    closed_at: z.string().nullable(),
    duration_s: z.number().int().nullable(),
    pay_with: AssetSchema.nullable(),
    hold_amount: MoneyString.nullable().openapi({ description: 'Held in escrow when placed: the maximum cost, in pay_with' }),
    min_reliability: z.number().nullable(),
    verified_only: z.boolean().nullable(),
    workload: WorkloadSchema.nullable(),
    node_id: z.string().nullable(),
    min_duration_s: z.number().int().nullable(),
    max_duration_s: z.number().int().nullable(),
  })
  .openapi('Order');

export const LeaseSummarySchema = z
  .object({
    id: z.string(),
    state: z.string(),
    price: MoneyString,
    gpus: z.number().int(),
    duration_s: z.number().int(),
    created_at: z.string(),
  })
  .openapi('LeaseSummary');

export const LeaseSchema = z
  .object({
    id: z.string(),
    state: z.enum(['provisioning', 'running', 'completed', 'failed', 'cancelled']),
    role: z.enum(['renter', 'provider']).openapi({ description: "The caller's side of the lease" }),
    region: z.string(),
    gpu_model: z.string(),
    gpus: z.number().int(),
    gpu_indices: z.array(z.number().int()),
    node_id: z.string(),
    price: MoneyString,
    duration_s: z.number().int(),
    asset: AssetSchema,
    amount: MoneyString.openapi({ description: 'The whole cost in asset, held in escrow until settled' }),
    bid_id: z.string().nullable().openapi({ description: "The renter's order (renter only)" }),
    ask_id: z.string().nullable().openapi({ description: "The provider's order (provider only)" }),
    workload: WorkloadSchema.nullable().openapi({ description: 'Renter only' }),
    ports: z.record(z.string(), z.number().int()).nullable().openapi({ description: 'Renter only: container port → host port on the node, once running' }),
    endpoints: z
      .array(
        z
          .object({
            port: z.number().int().openapi({ description: "The workload's port" }),
            host: z.string().openapi({ description: "The node's public host" }),
            host_port: z.number().int(),
            url: z.string().openapi({ description: 'http://host:host_port; the workload decides the protocol it speaks there' }),
          })
          .openapi('LeaseEndpoint'),
      )
      .openapi({ description: 'Renter only: where each workload port answers; empty unless endpoints_state is ready' }),
    endpoints_state: z
      .enum(['ready', 'no_public_host', 'not_running', 'no_ports'])
      .nullable()
      .openapi({ description: "Renter only: ready; no_public_host (the provider did not say how its node is reached: the workload runs but cannot be reached from outside); not_running; no_ports (the workload asked for none). Null for the provider" }),
    last_lines: z
      .array(z.object({ seq: z.number().int(), at: z.string(), stream: z.enum(['stdout', 'stderr']), text: z.string(), partial: z.boolean().optional() }))
      .nullable()
      .openapi({ description: "Renter only, once the lease ended: the workload's last log lines (GET /v1/leases/{id}/logs for all of them)" }),
    started_at: z.string().nullable().openapi({ description: 'When the runner reported the workload started; billing counts from here' }),
    ends_at: z.string().nullable(),
    stopped_at: z.string().nullable(),
    exit_code: z.number().int().nullable(),
    billed: MoneyString.openapi({ description: 'Settled so far from the escrow, in asset' }),
    settlements: z
      .array(z.object({ n: z.number().int(), amount: MoneyString, fee: MoneyString.optional().openapi({ description: 'Provider only' }), due_at: z.string(), posted_at: z.string() }))
      .openapi({ description: 'The last settlements: each period’s amount, when it was due and when it was posted' }),
    created_at: z.string(),
    history: z.array(z.object({ state: z.string(), at: z.string(), reason: z.string().optional() })),
  })
  .openapi('Lease');
