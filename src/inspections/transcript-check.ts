// An inspector's independent check of a transcript (src/contracts/inspector-verdicts.ts): the
// node's signatures, the challenge's answer recomputed from the seed, entries of its own choosing
// inside the opened leaves, and the node's recent leases re-audited by the billing rules. The
// Worker runs the same function to decide an inspection by recomputation. Pure: signatures,
// hashing and randomness are injected, so it runs in workerd and in the runner (Node 18).
import { COMMITMENT_DOMAIN, commitmentFields, IDENTITY_DOMAIN, identityFields, CapacityChallengeSchema, CapacityCommitmentSchema, IdentityAnswerSchema, IdentityChallengeSchema, OpeningRequestSchema, OpeningsAnswerSchema } from '../contracts/inspections.ts';
import type { Transcript } from '../contracts/inspector-verdicts.ts';
import { MAX_VERDICT_EVIDENCE, MAX_VERDICT_REASON, MAX_VERDICT_REASONS } from '../contracts/inspector-verdicts.ts';
import { signedMessage } from '../contracts/signed-message.ts';
import type { LeaseConfig } from '../leases/config.ts';
import type { LeaseRecord } from '../leases/lifecycle.ts';
import { challengeParams, checkCapacityAnswer, decodeOpenings } from './capacity-wire.ts';
import { dot, fillLine, matrixKey } from './matrices.ts';
import { leafEntries, readLeafEntry } from './openings.ts';
import { auditLease } from './order-processing.ts';
import type { Sha256 } from './sha256.ts';

export type VerifySignature = (publicKey: string, message: Uint8Array, signature: string) => Promise<boolean>;

export interface TranscriptCheckDeps {
  sha256: Sha256;
  verify: VerifySignature;
  /** Uniform in [0, 1): picks the inspector's own entries. */
  random: () => number;
  /** Entries per GPU recomputed at positions of the checker's own choosing inside the opened leaves. */
  ownEntriesPerGpu: number;
}

export interface WrongEntry {
  gpu: number;
  row: number;
  col: number;
}

export interface TranscriptVerdict {
  verdict: 'pass' | 'fail';
  reasons: string[];
  /** Entries found wrong under valid paths: the verdict's evidence (at most MAX_VERDICT_EVIDENCE). */
  evidence: WrongEntry[];
  entriesChecked: number;
  leasesChecked: number;
  leaseFindings: number;
}

const clip = (reasons: string[]) => reasons.slice(0, MAX_VERDICT_REASONS).map((r) => r.replace(/[\u0000-\u001f\u007f]/gu, ' ').slice(0, MAX_VERDICT_REASON));

/** Never throws: whatever cannot be read is a reason to fail. */
export async function checkTranscript(t: Transcript, deps: TranscriptCheckDeps): Promise<TranscriptVerdict> {
  const reasons: string[] = [];
  const evidence: WrongEntry[] = [];
  let entriesChecked = 0;
  try {
    if (t.kind === 'identity') await checkIdentity(t, deps, reasons);
    else entriesChecked = await checkCapacity(t, deps, reasons, evidence);
  } catch {
    reasons.push('the transcript could not be checked');
  }
  const leases = auditLeases(t);
  return {
    verdict: reasons.length === 0 ? 'pass' : 'fail',
    reasons: clip(reasons),
    evidence: evidence.slice(0, MAX_VERDICT_EVIDENCE),
    entriesChecked,
    leasesChecked: leases.checked,
    leaseFindings: leases.findings,
  };
}

async function checkIdentity(t: Transcript, deps: TranscriptCheckDeps, reasons: string[]): Promise<void> {
  const challenge = IdentityChallengeSchema.safeParse(t.challenge);
  if (!challenge.success) return void reasons.push('the challenge is malformed');
  const answer = IdentityAnswerSchema.safeParse(t.identity?.answer);
  if (!t.identity || !answer.success || !t.identity.signature || !t.node_public_key) return void reasons.push('no signed answer');
  if (answer.data.challenge_id !== challenge.data.challenge_id) return void reasons.push('the answer is for another challenge');
  if (!(await deps.verify(t.node_public_key, signedMessage(IDENTITY_DOMAIN, identityFields(t.node_id, answer.data)), t.identity.signature))) {
    return void reasons.push("the answer's signature does not verify with the node's key");
  }
  if (answer.data.nonce !== challenge.data.nonce) reasons.push('the nonce is not the challenge’s');
  const sent = new Set(answer.data.gpu_uuids);
  const registered = t.registered_gpu_uuids;
  if (sent.size !== answer.data.gpu_uuids.length || sent.size !== registered.length || registered.some((u) => !sent.has(u))) {
    reasons.push(`the GPUs present (${answer.data.gpu_uuids.length}) are not the ${registered.length} registered`);
  }
}

/** Returns the entries recomputed. */
async function checkCapacity(t: Transcript, deps: TranscriptCheckDeps, reasons: string[], evidence: WrongEntry[]): Promise<number> {
  const challenge = CapacityChallengeSchema.safeParse(t.challenge);
  if (!challenge.success) return void reasons.push('the challenge is malformed'), 0;
  const c = t.capacity;
  const commitment = CapacityCommitmentSchema.safeParse(c?.commitment);
  if (!c || !commitment.success || !c.signature || !t.node_public_key) return void reasons.push('no signed commitment'), 0;
  if (!(await deps.verify(t.node_public_key, signedMessage(COMMITMENT_DOMAIN, commitmentFields(t.node_id, challenge.data, commitment.data)), c.signature))) {
    return void reasons.push("the commitment's signature does not verify with the node's key"), 0;
  }
  const request = OpeningRequestSchema.safeParse(c.opening_request);
  if (!request.success) return void reasons.push('no opening request'), 0;
  const openings = OpeningsAnswerSchema.safeParse(c.openings);
  if (!openings.success) return void reasons.push('no openings'), 0;
  const verdict = await checkCapacityAnswer(challenge.data, request.data, commitment.data, openings.data, deps.sha256);
  for (const f of verdict.failures) {
    if (f.reason === 'value') {
      reasons.push(`GPU ${f.gpu} opening ${f.opening}: C[${f.row}][${f.col}] is ${f.got}, not ${f.expected}`);
      evidence.push({ gpu: f.gpu, row: f.row, col: f.col });
    } else reasons.push(`openings: ${f.reason}`);
  }
  let checked = request.data.count * challenge.data.gpu_count;
  if (!verdict.ok) return checked;
  checked += await checkOwnEntries(challenge.data, openings.data, deps, reasons, evidence);
  return checked;
}

/**
 * Entries of the checker's own choosing inside the opened leaves (which the Merkle paths already
 * bound to the signed roots): a prover that filled only the requested positions, or a transcript
 * built around them, fails here. Returns the entries recomputed.
 */
async function checkOwnEntries(
  challenge: ReturnType<typeof CapacityChallengeSchema.parse>,
  answer: ReturnType<typeof OpeningsAnswerSchema.parse>,
  deps: TranscriptCheckDeps,
  reasons: string[],
  evidence: WrongEntry[],
): Promise<number> {
  const openings = decodeOpenings(answer);
  if (!openings || deps.ownEntriesPerGpu <= 0) return 0;
  const { seed, n, leafSize } = challengeParams(challenge);
  const row = new Int8Array(n);
  const col = new Int8Array(n);
  let checked = 0;
  for (let gpu = 0; gpu < openings.length; gpu++) {
    const opened = openings[gpu]!;
    if (opened.length === 0) continue;
    const keyA = await matrixKey(seed, gpu, 'A', deps.sha256);
    const keyB = await matrixKey(seed, gpu, 'B', deps.sha256);
    for (let pick = 0; pick < deps.ownEntriesPerGpu; pick++) {
      const opening = opened[Math.floor(deps.random() * opened.length)]!;
      const offset = Math.floor(deps.random() * leafEntries(n, leafSize, opening.leafIndex));
      const flat = opening.leafIndex * leafSize + offset;
      const r = Math.floor(flat / n);
      const k = flat % n;
      fillLine(keyA, r, n, row);
      fillLine(keyB, k, n, col);
      const expected = dot(row, 0, col, 0, n);
      const got = readLeafEntry(opening.leaf, offset);
      checked++;
      if (got !== expected) {
        reasons.push(`GPU ${gpu}: own check of C[${r}][${k}] in leaf ${opening.leafIndex} is ${got}, not ${expected}`);
        evidence.push({ gpu, row: r, col: k });
        break;
      }
    }
  }
  return checked;
}

/**
 * The wrong entries among an inspector's evidence that hold: each must lie inside one of the
 * transcript's opened leaves (so the signed root binds its value), and its value there must differ
 * from the dot product recomputed from the seed. O(n) each; an entry that cannot be checked (not
 * in an opened leaf, out of range) is dropped. Only meaningful once the openings themselves verify.
 */
export async function confirmEvidence(t: Transcript, evidence: readonly WrongEntry[], sha256: Sha256): Promise<WrongEntry[]> {
  try {
    const challenge = CapacityChallengeSchema.safeParse(t.challenge);
    const answer = OpeningsAnswerSchema.safeParse(t.capacity?.openings);
    if (t.kind !== 'capacity' || !challenge.success || !answer.success) return [];
    const openings = decodeOpenings(answer.data);
    if (!openings) return [];
    const { seed, n, leafSize } = challengeParams(challenge.data);
    const row = new Int8Array(n);
    const col = new Int8Array(n);
    const confirmed: WrongEntry[] = [];
    for (const e of evidence.slice(0, MAX_VERDICT_EVIDENCE)) {
      if (e.gpu >= openings.length || e.row >= n || e.col >= n) continue;
      const flat = e.row * n + e.col;
      const opening = openings[e.gpu]!.find((o) => o.leafIndex === Math.floor(flat / leafSize));
      if (!opening || opening.leaf.length !== leafEntries(n, leafSize, opening.leafIndex) * 4) continue;
      fillLine(await matrixKey(seed, e.gpu, 'A', sha256), e.row, n, row);
      fillLine(await matrixKey(seed, e.gpu, 'B', sha256), e.col, n, col);
      if (readLeafEntry(opening.leaf, flat % leafSize) !== dot(row, 0, col, 0, n)) confirmed.push(e);
    }
    return confirmed;
  } catch {
    return [];
  }
}

/** The order-processing record re-audited: leases checked and the findings among them. */
export function auditLeases(t: Transcript): { checked: number; findings: number; lines: string[] } {
  const op = t.order_processing;
  const config = { provisionTimeoutMs: op.provision_timeout_ms, feeBps: BigInt(op.fee_bps), graceMs: 0, settleEveryMs: 0 } satisfies LeaseConfig;
  let findings = 0;
  const lines: string[] = [];
  for (const lease of op.leases) {
    try {
      const refunded = lease.refunded === null ? null : BigInt(lease.refunded);
      const audit = auditLease(lease.record as unknown as LeaseRecord, config, op.at, refunded);
      findings += audit.findings.length;
      for (const f of audit.findings) lines.push(`${audit.leaseId}: ${f}`);
    } catch {
      findings++;
      lines.push('a lease record could not be read');
    }
  }
  return { checked: op.leases.length, findings, lines };
}
