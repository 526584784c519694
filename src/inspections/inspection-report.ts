// A decided inspection as a self-contained, platform-signed report: the transcript the inspectors
// re-checked, the draw that chose them (seed inputs, pool, panel), every commitment and signed
// verdict, and the outcome with its basis. `gridlease-runner verify-report` re-checks all of it
// offline: the node's signatures and openings, the draw, each verdict's commitment and signature.
import { CompactSign } from 'jose';
import { canonicalBytes } from '../contracts/canonical-json.ts';
import type { KeyRing } from '../auth/tokens.ts';
import { money } from '../contracts/money.ts';
import type { inspectionAssignments, inspections } from '../db/schema.ts';

export const INSPECTION_REPORT_VERSION = 1;
/** The JWS `typ` of an inspection report: it can never pass for a token or a challenge report. */
export const INSPECTION_REPORT_TYP = 'gridlease-inspection-report';

type InspectionRow = typeof inspections.$inferSelect;
type AssignmentRow = typeof inspectionAssignments.$inferSelect;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface InspectionReport {
  version: typeof INSPECTION_REPORT_VERSION;
  inspection_id: string;
  kind: 'identity' | 'capacity';
  decoy: boolean;
  node_id: string;
  /** The platform's decision on the challenge itself (null for a decoy). */
  challenge: { id: string; status: string; reasons: string[]; issued_at: string; decided_at: string | null } | null;
  transcript: Record<string, unknown>;
  draw: Record<string, unknown>;
  verdicts: Array<{
    inspector_id: string;
    weight: string;
    commitment: string | null;
    committed_at: string | null;
    verdict: Record<string, unknown> | null;
    salt: string | null;
    signature: string | null;
    public_key: string | null;
    revealed_at: string | null;
    result: string | null;
    /** GRID paid (result paid) or slashed (wrong, missed), as a decimal string. */
    amount: string | null;
  }>;
  outcome: 'pass' | 'fail';
  basis: 'recomputation' | 'decoy';
  majority: 'pass' | 'fail' | null;
  reasons: string[];
  created_at: string;
  commit_deadline: string;
  reveal_deadline: string;
  decided_at: string;
}

/** The report of a decided inspection; null while it is open. */
export function buildInspectionReport(
  row: InspectionRow,
  assignments: readonly AssignmentRow[],
  challenge: { id: string; status: string; reasons: string[] | null; issuedAt: number; decidedAt: number | null } | null,
): InspectionReport | null {
  if (row.status !== 'decided' || row.outcome === null || row.basis === null || row.decidedAt === null) return null;
  return {
    version: INSPECTION_REPORT_VERSION,
    inspection_id: row.id,
    kind: row.kind,
    decoy: row.decoy,
    node_id: row.nodeId,
    challenge: challenge
      ? { id: challenge.id, status: challenge.status, reasons: challenge.reasons ?? [], issued_at: iso(challenge.issuedAt)!, decided_at: iso(challenge.decidedAt) }
      : null,
    transcript: row.transcript,
    draw: row.draw,
    verdicts: [...assignments]
      .sort((a, b) => (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0))
      .map((a) => ({
        inspector_id: a.accountId,
        weight: String(a.weight),
        commitment: a.commitment,
        committed_at: iso(a.committedAt),
        verdict: a.verdict ?? null,
        salt: a.salt,
        signature: a.signature,
        public_key: a.publicKey,
        revealed_at: iso(a.revealedAt),
        result: a.result,
        amount: a.amount === null ? null : money(BigInt(a.amount)),
      })),
    outcome: row.outcome,
    basis: row.basis,
    majority: row.majority ?? null,
    reasons: row.reasons ?? [],
    created_at: iso(row.createdAt)!,
    commit_deadline: iso(row.commitDeadline)!,
    reveal_deadline: iso(row.revealDeadline)!,
    decided_at: iso(row.decidedAt)!,
  };
}

export async function signInspectionReport(ring: KeyRing, report: InspectionReport): Promise<string> {
  return new CompactSign(canonicalBytes(report)).setProtectedHeader({ alg: 'ES256', kid: ring.signing.kid, typ: INSPECTION_REPORT_TYP }).sign(ring.signing.privateKey);
}
