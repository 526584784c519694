// The inspectors' side of an inspection (docs/inspections.md, "Inspectors"): the transcript an
// assigned inspector re-checks, the verdict it signs, and the commit–reveal that keeps verdicts
// independent. Shared by the Worker and `gridlease-runner inspect`; pure, so both bundle it.
import { z } from 'zod';
import { NODE_PUBLIC_KEY_PATTERN, NODE_SIGNATURE_PATTERN } from './signed-message.ts';

/** The domain of an inspector's signed verdict (`signedMessage(VERDICT_DOMAIN, verdictFields(v))`). */
export const VERDICT_DOMAIN = 'inspection.verdict';
/** Prefixed to the salt and the signed verdict's bytes in a commitment's hash. */
export const VERDICT_COMMIT_DOMAIN = 'gridlease/inspection/v1/verdict-commit\n';

export const MAX_VERDICT_REASONS = 16;
export const MAX_VERDICT_EVIDENCE = 16;
export const MAX_VERDICT_REASON = 200;
const HEX32 = /^[0-9a-f]{64}$/;
const id = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -');

export const InspectorKeyBodySchema = z
  .object({ public_key: z.string().regex(NODE_PUBLIC_KEY_PATTERN, 'the raw 32-byte Ed25519 public key, base64url without padding') })
  .strict();

/** One lease's public record and what the ledger shows was refunded (null: not refunded yet). */
export const OrderProcessingLeaseSchema = z.object({ record: z.record(z.string(), z.unknown()), refunded: z.string().nullable() }).strict();

/**
 * What an inspector re-checks: the challenge as sent, the node's key and signed answers, and for
 * a capacity challenge its openings, plus the node's recent leases. Never the platform's decision.
 */
export const TranscriptSchema = z
  .object({
    inspection_id: id,
    kind: z.enum(['identity', 'capacity']),
    node_id: id,
    node_public_key: z.string().nullable(),
    challenge: z.record(z.string(), z.unknown()),
    /** Identity: the GPU UUIDs registered for the node when the challenge was decided. */
    registered_gpu_uuids: z.array(z.string().max(128)).max(16),
    identity: z.object({ answer: z.unknown(), signature: z.string().nullable() }).strict().nullable(),
    capacity: z.object({ commitment: z.unknown(), signature: z.string().nullable(), opening_request: z.unknown(), openings: z.unknown() }).strict().nullable(),
    order_processing: z
      .object({
        at: z.number().int(),
        provision_timeout_ms: z.number().int(),
        fee_bps: z.number().int(),
        leases: z.array(OrderProcessingLeaseSchema).max(20),
      })
      .strict(),
  })
  .strict();
export type Transcript = z.infer<typeof TranscriptSchema>;

export const VerdictSchema = z
  .object({
    inspection_id: id,
    /** The inspector's account id. */
    inspector_id: id,
    verdict: z.enum(['pass', 'fail']),
    reasons: z.array(z.string().max(MAX_VERDICT_REASON).regex(/^[^\u0000-\u001f\u007f]*$/u, 'no control characters')).max(MAX_VERDICT_REASONS),
    /** Entries recomputed: the transcript's openings and the inspector's own picks inside the opened leaves. */
    entries_checked: z.number().int().min(0).max(1_000_000),
    /** Leases of the order-processing record re-audited, and the findings among them. */
    leases_checked: z.number().int().min(0).max(20),
    lease_findings: z.number().int().min(0).max(10_000),
    /**
     * Entries of C found wrong (inside the transcript's opened leaves): each can be recomputed by
     * anyone in O(n), so one that holds decides the inspection as failed, whatever the platform's
     * own openings showed.
     */
    evidence: z
      .array(z.object({ gpu: z.number().int().min(0).max(15), row: z.number().int().min(0).max(133_144), col: z.number().int().min(0).max(133_144) }).strict())
      .max(MAX_VERDICT_EVIDENCE)
      .optional(),
  })
  .strict();
export type Verdict = z.infer<typeof VerdictSchema>;

export const VerdictCommitmentBodySchema = z.object({ commitment: z.string().regex(HEX32, '64 lowercase hex characters') }).strict();

export const VerdictRevealBodySchema = z
  .object({
    verdict: VerdictSchema,
    salt: z.string().regex(HEX32, '64 lowercase hex characters (32 random bytes)'),
    signature: z.string().regex(NODE_SIGNATURE_PATTERN, "the inspector key's Ed25519 signature, base64url"),
  })
  .strict();
export type VerdictReveal = z.infer<typeof VerdictRevealBodySchema>;

export const AssignmentSchema = z
  .object({
    inspection_id: z.string(),
    phase: z.enum(['commit', 'reveal']),
    commit_deadline: z.string().datetime(),
    reveal_deadline: z.string().datetime(),
    committed: z.boolean(),
    revealed: z.boolean(),
    /** What to re-check; null once the caller has committed (its verdict is made, and polls stay small). */
    transcript: TranscriptSchema.nullable(),
  })
  .strict();
export type Assignment = z.infer<typeof AssignmentSchema>;

/** The fields an inspector signs: reasons travel as their JSON text, which has no raw control characters. */
export function verdictFields(v: Verdict): Record<string, string> {
  return {
    inspection_id: v.inspection_id,
    inspector_id: v.inspector_id,
    verdict: v.verdict,
    reasons: JSON.stringify(v.reasons),
    entries_checked: String(v.entries_checked),
    leases_checked: String(v.leases_checked),
    lease_findings: String(v.lease_findings),
    evidence: JSON.stringify((v.evidence ?? []).map((e) => [e.gpu, e.row, e.col])),
  };
}

/** At most this many inspections in one batch of commitments or reveals. */
export const MAX_VERDICT_BATCH = 50;

export const VerdictCommitmentBatchSchema = z
  .object({
    items: z
      .array(z.object({ inspection_id: id }).extend(VerdictCommitmentBodySchema.shape).strict())
      .min(1)
      .max(MAX_VERDICT_BATCH),
  })
  .strict();
export type VerdictCommitmentBatch = z.infer<typeof VerdictCommitmentBatchSchema>;

export const VerdictRevealBatchSchema = z
  .object({
    items: z
      .array(z.object({ inspection_id: id }).extend(VerdictRevealBodySchema.shape).strict())
      .min(1)
      .max(MAX_VERDICT_BATCH),
  })
  .strict();
export type VerdictRevealBatch = z.infer<typeof VerdictRevealBatchSchema>;

/** One item's refusal inside a batch's 200: the code and message the single route would have answered. */
export const BatchItemErrorSchema = z.object({ code: z.string(), message: z.string() }).strict();
