// Wire contracts of the capacity challenge, shared by the Worker and gridlease-runner; the runner
// bundles this file, so it imports only zod and pure modules. Every size is bounded so that a
// hostile message cannot make either side allocate or loop without limit.
import { z } from 'zod';
import { MAX_EXACT_N } from '../inspections/matrices.ts';
import { MAX_LEAVES } from '../inspections/merkle.ts';
import { isLeafSize, MAX_GPU_COUNT, MAX_LEAF_SIZE, MAX_OPENINGS, MIN_LEAF_SIZE } from '../inspections/openings.ts';

/** A Merkle path is at most ⌈log₂ MAX_LEAVES⌉ hashes. */
export const MAX_PATH_LENGTH = 31;
/** A leaf of MAX_LEAF_SIZE int32 values in padded base64. */
export const MAX_LEAF_BASE64 = 4 * Math.ceil((MAX_LEAF_SIZE * 4) / 3);

const challengeId = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -');
/** 32 bytes as 64 lower-case hex digits: seeds, roots and path hashes. */
const hex32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes as 64 lower-case hex digits');
const base64 = z
  .string()
  .max(MAX_LEAF_BASE64)
  .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'padded base64');

/** Sent to the node: compute C_g = A_g·B_g on every claimed GPU and commit before `deadline`. */
export const CapacityChallengeSchema = z
  .object({
    kind: z.literal('capacity'),
    challenge_id: challengeId,
    seed: hex32,
    n: z.number().int().min(1).max(MAX_EXACT_N),
    gpu_count: z.number().int().min(1).max(MAX_GPU_COUNT),
    leaf_size: z
      .number()
      .int()
      .refine(isLeafSize, `a power of two in [${MIN_LEAF_SIZE}, ${MAX_LEAF_SIZE}]`),
    deadline: z.string().datetime(),
  })
  .strict()
  .refine((c) => Math.ceil((c.n * c.n) / c.leaf_size) <= MAX_LEAVES, { message: 'too many leaves', path: ['leaf_size'] });
export type CapacityChallenge = z.infer<typeof CapacityChallengeSchema>;

/** The node's answer to sign: one Merkle root per GPU, in GPU order. */
export const CapacityCommitmentSchema = z
  .object({
    challenge_id: challengeId,
    roots: z.array(hex32).min(1).max(MAX_GPU_COUNT),
  })
  .strict();
export type CapacityCommitment = z.infer<typeof CapacityCommitmentSchema>;

/** Sent after the commitment: open `count` entries per GPU, at positions derived from `open_seed`. */
export const OpeningRequestSchema = z
  .object({
    challenge_id: challengeId,
    open_seed: hex32,
    count: z.number().int().min(1).max(MAX_OPENINGS),
    deadline: z.string().datetime(),
  })
  .strict();
export type OpeningRequest = z.infer<typeof OpeningRequestSchema>;

export const OpeningSchema = z
  .object({
    leaf_index: z.number().int().min(0).max(MAX_LEAVES - 1),
    /** The leaf's int32 little-endian values. */
    leaf: base64,
    /** Sibling hashes from the leaf up. */
    path: z.array(hex32).max(MAX_PATH_LENGTH),
  })
  .strict();
export type OpeningWire = z.infer<typeof OpeningSchema>;

/** `gpus[g][t]` opens the t-th derived position of GPU g. */
export const OpeningsAnswerSchema = z
  .object({
    challenge_id: challengeId,
    gpus: z.array(z.array(OpeningSchema).max(MAX_OPENINGS)).min(1).max(MAX_GPU_COUNT),
  })
  .strict();
export type OpeningsAnswer = z.infer<typeof OpeningsAnswerSchema>;

// ── Delivery: challenges reach a node through its mailbox and are answered at once ──────────
//
//   mailbox  { type: 'challenge', challenge: IdentityChallenge | CapacityChallenge }
//   identity   POST /v1/runner/challenges/{id}/identity     SignedIdentityAnswer      → 200 ChallengeOutcome
//   capacity   POST /v1/runner/challenges/{id}/commitment   SignedCommitment          → 200 OpeningRequest
//              POST /v1/runner/challenges/{id}/openings     OpeningsAnswer            → 200 ChallengeOutcome
//
// Signed answers use src/contracts/signed-message.ts with the node's Ed25519 key; the messages
// are built by the functions below, on both sides, so they can never disagree.

/** Sent to the node: prove who it is and which GPUs it has, now. */
export const IdentityChallengeSchema = z
  .object({
    kind: z.literal('identity'),
    challenge_id: challengeId,
    nonce: hex32,
    deadline: z.string().datetime(),
  })
  .strict();
export type IdentityChallenge = z.infer<typeof IdentityChallengeSchema>;

export const ChallengeSchema = z.union([IdentityChallengeSchema, CapacityChallengeSchema]);
export type Challenge = z.infer<typeof ChallengeSchema>;

const gpuUuid = z.string().regex(/^GPU-[0-9a-fA-F-]{8,64}$/);

/** What the node says of itself, at `at`, for one nonce. */
export const IdentityAnswerSchema = z
  .object({
    challenge_id: challengeId,
    nonce: hex32,
    /** The GPUs' UUIDs as detected now, in index order. */
    gpu_uuids: z.array(gpuUuid).min(1).max(MAX_GPU_COUNT),
    driver: z.string().max(64).regex(/^[A-Za-z0-9._-]*$/),
    at: z.string().datetime(),
  })
  .strict();
export type IdentityAnswer = z.infer<typeof IdentityAnswerSchema>;

/** Ed25519 signature, base64url without padding (64 bytes). */
const signature = z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/, 'an Ed25519 signature in base64url');

export const SignedIdentityAnswerSchema = z.object({ answer: IdentityAnswerSchema, signature }).strict();
export type SignedIdentityAnswer = z.infer<typeof SignedIdentityAnswerSchema>;

export const SignedCommitmentSchema = z.object({ commitment: CapacityCommitmentSchema, signature }).strict();
export type SignedCommitment = z.infer<typeof SignedCommitmentSchema>;

/** The platform's verdict on one challenge, as the node is told it. */
export const ChallengeOutcomeSchema = z
  .object({
    challenge_id: challengeId,
    outcome: z.enum(['passed', 'failed']),
    /** Why it failed, one line each (at most a few). */
    reasons: z.array(z.string().max(300)).max(16),
  })
  .strict();
export type ChallengeOutcome = z.infer<typeof ChallengeOutcomeSchema>;

/** Signed-message domains: one per kind of answer. */
export const IDENTITY_DOMAIN = 'node.identity';
export const COMMITMENT_DOMAIN = 'node.capacity-commitment';

/** The fields a node signs for an identity answer (with the node id it answers as). */
export function identityFields(nodeId: string, a: IdentityAnswer): Record<string, string> {
  return { node_id: nodeId, challenge_id: a.challenge_id, nonce: a.nonce, gpu_uuids: a.gpu_uuids.join(','), driver: a.driver, at: a.at };
}

/** The fields a node signs for a capacity commitment: the challenge's terms and its roots. */
export function commitmentFields(nodeId: string, c: CapacityChallenge, commitment: CapacityCommitment): Record<string, string> {
  return {
    node_id: nodeId,
    challenge_id: c.challenge_id,
    seed: c.seed,
    n: String(c.n),
    gpu_count: String(c.gpu_count),
    leaf_size: String(c.leaf_size),
    roots: commitment.roots.join(','),
  };
}
