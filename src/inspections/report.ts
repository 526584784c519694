// A decided platform challenge as a self-contained, platform-signed report: everything anyone
// needs to re-check the decision offline (the challenge as sent, the node's key and signed
// answers, the openings), signed by the platform as a compact JWS over the report's canonical
// bytes with the key ring that signs access tokens (`/.well-known/jwks.json` verifies it).
import { CompactSign } from 'jose';
import { canonicalBytes } from '../contracts/canonical-json.ts';
import type { KeyRing } from '../auth/tokens.ts';
import type { nodeChallenges } from '../db/schema.ts';

export const REPORT_VERSION = 1;
/** The JWS `typ` of a challenge report, so that it can never pass for a token (or a token for it). */
export const REPORT_TYP = 'gridlease-challenge-report';

type Json = Record<string, unknown>;
type ChallengeRow = typeof nodeChallenges.$inferSelect;

export interface ChallengeReport {
  version: typeof REPORT_VERSION;
  challenge_id: string;
  node_id: string;
  /** The node's Ed25519 key that signed the answers (base64url), null if it never answered. */
  node_public_key: string | null;
  kind: 'identity' | 'capacity';
  challenge: Json;
  issued_at: string;
  decided_at: string;
  status: 'passed' | 'failed' | 'expired';
  reasons: string[];
  identity?: { answer: Json | null; signature: string | null };
  capacity?: { commitment: Json | null; signature: string | null; opening_request: Json | null; openings: Json | null };
}

/** The report of a decided challenge; null while it is undecided or when it closed without a decision (superseded). */
export function buildReport(row: ChallengeRow, currentNodeKey: string | null): ChallengeReport | null {
  if (row.decidedAt === null || (row.status !== 'passed' && row.status !== 'failed' && row.status !== 'expired')) return null;
  const base = {
    version: REPORT_VERSION,
    challenge_id: row.id,
    node_id: row.nodeId,
    // Kept at the decision; a challenge expired unanswered has none, and the node's key then is the best witness.
    node_public_key: row.nodePublicKey ?? currentNodeKey,
    kind: row.kind,
    challenge: row.challenge,
    issued_at: new Date(row.issuedAt).toISOString(),
    decided_at: new Date(row.decidedAt).toISOString(),
    status: row.status,
    reasons: row.reasons ?? [],
  } as const;
  if (row.kind === 'identity') return { ...base, identity: { answer: row.answer ?? null, signature: row.answerSignature ?? null } };
  return {
    ...base,
    capacity: { commitment: row.commitment ?? null, signature: row.commitmentSignature ?? null, opening_request: row.openingRequest ?? null, openings: row.openings ?? null },
  };
}

/** The report signed as a compact JWS whose payload is its canonical bytes. */
export async function signReport(ring: KeyRing, report: ChallengeReport): Promise<string> {
  return new CompactSign(canonicalBytes(report)).setProtectedHeader({ alg: 'ES256', kid: ring.signing.kid, typ: REPORT_TYP }).sign(ring.signing.privateKey);
}
