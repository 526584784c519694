// Wire contracts between the Worker and gridlease-runner. Both import this file; the runner
// bundles it, so it may import only zod (plain `zod`, not the OpenAPI flavour) and pure modules.
import { z } from 'zod';
import { IMAGE_REFERENCE_RULE, MAX_IMAGE_REFERENCE, isImageReference } from './image-reference.ts';
import { NODE_PUBLIC_KEY_PATTERN } from './signed-message.ts';
import { ChallengeSchema } from './inspections.ts';

export const RUNNER_AUDIENCE = 'gridlease-runner';
/** Default heartbeat period; the server may ask for another in each reply. */
export const HEARTBEAT_INTERVAL_S = 10;
export const MAX_GPUS_PER_NODE = 16;

export const DetectedGpuSchema = z
  .object({
    index: z.number().int().min(0).max(63),
    uuid: z.string().regex(/^GPU-[0-9a-fA-F-]{8,64}$/, 'uuid must look like GPU-xxxxxxxx-…'),
    name: z.string().min(1).max(128),
    memory_mib: z.number().int().min(0).max(4_194_304),
    driver: z.string().max(64),
    /** Catalog model id, or null when the card is not in the catalog (not listable). */
    model: z.string().max(64).nullable(),
  })
  .strict();
export type DetectedGpu = z.infer<typeof DetectedGpuSchema>;

export const MachineSchema = z
  .object({
    hostname: z.string().min(1).max(253),
    os: z.string().max(64),
    arch: z.string().max(32),
    cpu_cores: z.number().int().min(1).max(4096),
    ram_mib: z.number().int().min(0).max(1 << 30),
    disk_free_gib: z.number().int().min(0).max(1 << 30),
    gpus: z.array(DetectedGpuSchema).min(1).max(MAX_GPUS_PER_NODE),
    runner_version: z.string().max(32),
  })
  .strict();
export type Machine = z.infer<typeof MachineSchema>;

export const RegisterRequestSchema = z
  .object({
    join_token: z.string().min(1).max(200),
    region: z.string().min(1).max(32),
    machine: MachineSchema,
    /**
     * The node's Ed25519 public key, raw 32 bytes in base64url; it signs the node's answers to
     * inspections. Required: a node that cannot sign can never be verified.
     */
    public_key: z.string().regex(NODE_PUBLIC_KEY_PATTERN, 'must be an Ed25519 public key: 32 bytes in base64url without padding'),
  })
  .strict();
export type RegisterRequest = z.infer<typeof RegisterRequestSchema>;

export const RegisterResponseSchema = z.object({
  node_id: z.string(),
  node_token: z.string(),
  heartbeat_interval_s: z.number().int(),
});
export type RegisterResponse = z.infer<typeof RegisterResponseSchema>;

const nullablePct = z.number().min(0).max(100).nullable();
export const GpuMetricsSchema = z
  .object({
    index: z.number().int().min(0).max(63),
    utilization_pct: nullablePct,
    memory_used_mib: z.number().int().min(0).max(4_194_304).nullable(),
    temperature_c: z.number().min(-50).max(200).nullable(),
    power_w: z.number().min(0).max(5_000).nullable(),
  })
  .strict();
export type GpuMetrics = z.infer<typeof GpuMetricsSchema>;

export const LEASE_STATES = ['starting', 'running', 'exited', 'failed', 'stopped'] as const;

export const HeartbeatRequestSchema = z
  .object({
    node_id: z.string().min(1).max(64),
    /** Random per runner process start; with `seq` it orders heartbeats and drops replays. */
    boot_id: z.string().uuid(),
    seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    sent_at: z.string().datetime(),
    draining: z.boolean(),
    gpus: z.array(GpuMetricsSchema).max(MAX_GPUS_PER_NODE),
    leases: z.array(z.object({ lease_id: z.string().max(64), state: z.enum(LEASE_STATES) }).strict()).max(MAX_GPUS_PER_NODE),
    /** Ids of commands executed since the last heartbeat; they are not sent again. */
    acks: z.array(z.string().max(64)).max(100),
  })
  .strict();
export type HeartbeatRequest = z.infer<typeof HeartbeatRequestSchema>;

/** Env keys the runner sets for the lease; the NVIDIA ones are read on the host by the GPU runtime. */
export const RESERVED_ENV_KEY = /^(?:NVIDIA_|GRIDLEASE_|CUDA_VISIBLE_DEVICES$)/i;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
// NUL cannot cross execve; other C0 controls and DEL/C1 serve no workload and can forge output.
// Tabs and line breaks stay: multi-line secrets (PEM keys) are common, and -e passes them verbatim.
const ENV_VALUE = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$/;

export const WorkloadSchema = z
  .object({
    image: z.string().max(MAX_IMAGE_REFERENCE).refine(isImageReference, IMAGE_REFERENCE_RULE),
    // Elements follow the image (and `--`), so docker passes them to the container as they are.
    command: z.array(z.string().max(4096).refine((s) => !s.includes('\u0000'), 'must not contain NUL')).max(64),
    // Keys are checked here rather than by a key schema, so the 400 says which rule they break.
    env: z
      .record(z.string(), z.string().max(8192).regex(ENV_VALUE, 'must not contain NUL or control characters other than tab and line breaks'))
      .superRefine((env, ctx) => {
        for (const key of Object.keys(env)) {
          const message = !ENV_KEY.test(key)
            ? 'env names are letters, digits and _, not starting with a digit'
            : RESERVED_ENV_KEY.test(key)
              ? 'NVIDIA_*, GRIDLEASE_* and CUDA_VISIBLE_DEVICES are set by the runner'
              : null;
          if (message) ctx.addIssue({ code: 'custom', path: [key], message });
        }
      }),
    ports: z
      .array(z.number().int().min(1).max(65_535))
      .max(16)
      .refine((ports) => new Set(ports).size === ports.length, 'each port once'),
  })
  .strict();
export type Workload = z.infer<typeof WorkloadSchema>;

export const CommandSchema = z.discriminatedUnion('type', [
  z.object({
    id: z.string(),
    type: z.literal('start_lease'),
    lease_id: z.string(),
    workload: WorkloadSchema,
    gpu_indices: z.array(z.number().int().min(0).max(63)).min(1).max(MAX_GPUS_PER_NODE),
    /** The latest the workload may run, whenever it starts. */
    ends_at: z.string().datetime(),
    /** The paid duration: the runner also stops it this long after it started, if sooner. */
    duration_s: z.number().int().positive().optional(),
    lease_token: z.string(),
  }),
  z.object({ id: z.string(), type: z.literal('stop_lease'), lease_id: z.string(), reason: z.string() }),
  /** The renter paid for more time: the workload now runs until `ends_at`. */
  z.object({ id: z.string(), type: z.literal('extend_lease'), lease_id: z.string(), ends_at: z.string().datetime() }),
  /** Answer at once, to /v1/runner/challenges/{id}/… (src/contracts/inspections.ts). */
  z.object({ id: z.string(), type: z.literal('challenge'), challenge: ChallengeSchema }),
]);
export type Command = z.infer<typeof CommandSchema>;

export const HeartbeatResponseSchema = z.object({
  /** False when the heartbeat was a replay or out of order; it changed nothing. */
  accepted: z.boolean(),
  commands: z.array(CommandSchema),
  next_interval_s: z.number().int().min(1).max(300),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponseSchema>;

export const LeaseEventSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('started'),
      at: z.string().datetime(),
      /** Container port → host port; shown to the renter, so only ports, and at most one per workload port. */
      ports: z
        .record(z.string().regex(/^[1-9][0-9]{0,4}$/), z.number().int().min(1).max(65_535))
        .refine((ports) => Object.keys(ports).length <= 16, 'at most 16 ports')
        .optional(),
    })
    .strict(),
  z.object({ type: z.literal('failed'), at: z.string().datetime(), reason: z.string().max(1000) }).strict(),
  z.object({ type: z.literal('exited'), at: z.string().datetime(), exit_code: z.number().int() }).strict(),
]);
export type LeaseEvent = z.infer<typeof LeaseEventSchema>;

/** The error body every API error has; the runner prints `message`. */
export const ApiErrorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }) });

// ---- Renters reach what they rent: endpoints and logs (docs/api.md, "Endpoints and logs") ----

/** The longest log line kept, in UTF-16 code units; the runner splits longer ones (`partial`). */
export const LOG_MAX_LINE_CHARS = 8192;
/** Lines per POST /v1/runner/leases/{id}/logs at most. */
export const LOG_MAX_BATCH_LINES = 1000;
/** The sum of a batch's `text` lengths at most (UTF-16 code units). */
export const LOG_MAX_BATCH_CHARS = 1_048_576;

export const LogLineSchema = z
  .object({
    /** Per lease, from 0, +1 per line, assigned by the runner; the platform keeps each seq once. */
    seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    at: z.string().datetime(),
    stream: z.enum(['stdout', 'stderr']),
    /**
     * The line without its line break. Bytes that are not UTF-8 arrive as U+FFFD; control
     * characters are kept here and escaped by whoever shows them on a terminal.
     */
    text: z.string().max(LOG_MAX_LINE_CHARS),
    /** True when the line was cut at LOG_MAX_LINE_CHARS and continues in the next seq. */
    partial: z.boolean().optional(),
  })
  .strict();
export type LogLine = z.infer<typeof LogLineSchema>;

/**
 * POST /v1/runner/leases/{lease_id}/logs (node token). Seqs strictly increasing within a batch
 * (400 otherwise). Lines below the stored next_seq are dropped as already stored (a retry). A
 * first seq above it means the runner lost lines (its spool's bound): the platform records the
 * gap and goes on. 404: not a lease of this node. 409 `lease_ended`: the lease ended more than
 * LOG_LATE_S ago. 413: a batch over the limits above. 429 + Retry-After: the lease is over its
 * rate (back-pressure: the runner keeps the lines and retries later).
 */
export const LogBatchRequestSchema = z
  .object({
    lines: z.array(LogLineSchema).min(1).max(LOG_MAX_BATCH_LINES),
  })
  .strict();
export type LogBatchRequest = z.infer<typeof LogBatchRequestSchema>;

export const LogBatchResponseSchema = z.object({
  /** The seq the platform expects next: the runner may forget every line below it. */
  next_seq: z.number().int().min(0),
});
export type LogBatchResponse = z.infer<typeof LogBatchResponseSchema>;

/** Lines are still taken this long after the lease ended (the last lines in flight). */
export const LOG_LATE_S = 120;

/**
 * A DNS name or an IPv4/IPv6 literal (no port, no scheme), as the runner's --public-host takes it.
 * Whether a private or loopback address is allowed is the server's call (production refuses them).
 */
export const PUBLIC_HOST_PATTERN = /^(?=.{1,253}$)(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]{2,45}\]?)$/;

/** PUT /v1/runner/public-host (node token): how renters reach this node's workloads; null: not reachable. */
export const PublicHostRequestSchema = z
  .object({
    public_host: z.string().regex(PUBLIC_HOST_PATTERN, 'public_host must be a DNS name or an IP address, without scheme or port').nullable(),
  })
  .strict();
export type PublicHostRequest = z.infer<typeof PublicHostRequestSchema>;
