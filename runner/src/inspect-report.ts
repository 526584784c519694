// The checks `verify-report` runs on an inspection report (typ gridlease-inspection-report), once
// the platform's signature and the canonical bytes hold: the transcript recomputed (own entries
// too) against the outcome, the draw redone from its published inputs and pool, and each revealed
// verdict against its commitment and its inspector's key. Pure modules and node:crypto only.
import { z } from 'zod';
import { TranscriptSchema, VERDICT_DOMAIN, VerdictSchema, verdictFields, type Transcript } from '../../src/contracts/inspector-verdicts.ts';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { assignmentResult, drawPanel, drawSeed, majority, verdictCommitment } from '../../src/inspections/panel.ts';
import { checkTranscript, confirmEvidence } from '../../src/inspections/transcript-check.ts';
import { cryptoRandom, ed25519Verifies, nodeSha256, nodeVerify } from './inspect-crypto.ts';

export const INSPECTION_REPORT_TYP = 'gridlease-inspection-report';
/** Entries per GPU this verifier picks itself inside the opened leaves. */
const OWN_ENTRIES = 16;
const HEX64 = /^[0-9a-f]{64}$/;
const DIGITS = /^[0-9]{1,30}$/;

const VerdictEntrySchema = z
  .object({
    inspector_id: z.string(),
    weight: z.string().regex(DIGITS),
    commitment: z.string().nullable(),
    committed_at: z.string().nullable(),
    verdict: z.record(z.string(), z.unknown()).nullable(),
    salt: z.string().nullable(),
    signature: z.string().nullable(),
    public_key: z.string().nullable(),
    revealed_at: z.string().nullable(),
    result: z.enum(['paid', 'wrong', 'missed']).nullable(),
    amount: z.string().nullable(),
  })
  .strict();

export const InspectionReportSchema = z
  .object({
    version: z.literal(1),
    inspection_id: z.string(),
    kind: z.enum(['identity', 'capacity']),
    decoy: z.boolean(),
    node_id: z.string(),
    challenge: z
      .object({ id: z.string(), status: z.string(), reasons: z.array(z.string()), issued_at: z.string(), decided_at: z.string().nullable() })
      .strict()
      .nullable(),
    transcript: z.record(z.string(), z.unknown()),
    draw: z.record(z.string(), z.unknown()),
    verdicts: z.array(VerdictEntrySchema).max(1_000),
    outcome: z.enum(['pass', 'fail']),
    basis: z.enum(['recomputation', 'decoy']),
    majority: z.enum(['pass', 'fail']).nullable(),
    reasons: z.array(z.string()),
    created_at: z.string(),
    commit_deadline: z.string(),
    reveal_deadline: z.string(),
    decided_at: z.string(),
  })
  .strict();
export type InspectionReportView = z.infer<typeof InspectionReportSchema>;

const DrawSchema = z
  .object({
    seed: z.string().regex(HEX64),
    inputs: z.object({ inspection_id: z.string(), challenge_seed: z.string(), node_signature: z.string(), platform_random: z.string() }).strict(),
    size: z.number().int().min(1).max(1_000),
    weight_cap: z.string().regex(DIGITS),
    pool: z.array(z.object({ account_id: z.string(), active: z.string().regex(/^-?[0-9]{1,30}$/) }).strict()).max(1_000),
    panel: z.array(z.string()).max(1_000),
  })
  .strict();

type Mark = (name: string, detail: string) => unknown;

const issue = (e: z.ZodError) => `${e.issues[0]?.path.join('.') || 'body'}: ${e.issues[0]?.message}`;
const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Every inspection check after the platform's signature; each passes or fails one line. */
export async function inspectionChecks(report: InspectionReportView, pass: Mark, fail: Mark): Promise<void> {
  // (1) The transcript, recomputed here: its verdict must be the outcome, for a decoy too.
  const parsed = TranscriptSchema.safeParse(report.transcript);
  let transcript: Transcript | null = null;
  if (!parsed.success) fail('transcript', `malformed (${issue(parsed.error)})`);
  else if (parsed.data.inspection_id !== report.inspection_id || parsed.data.node_id !== report.node_id || parsed.data.kind !== report.kind) {
    fail('transcript', 'it is for another inspection, node or kind than the report says');
  } else if (report.challenge && report.challenge.id !== parsed.data.challenge.challenge_id) {
    fail('transcript', `it holds challenge ${String(parsed.data.challenge.challenge_id)}, not ${report.challenge.id}`);
  } else {
    transcript = parsed.data;
    const check = await checkTranscript(transcript, { sha256: nodeSha256, verify: nodeVerify, random: cryptoRandom, ownEntriesPerGpu: OWN_ENTRIES });
    // As the platform decides: wrong entries an inspector found inside the opened leaves, where they hold, fail the node too.
    if (check.verdict === 'pass' && !report.decoy) {
      const claimed = report.verdicts.flatMap((v) => {
        const parsedVerdict = VerdictSchema.safeParse(v.verdict);
        return parsedVerdict.success && parsedVerdict.data.verdict === 'fail' ? (parsedVerdict.data.evidence ?? []) : [];
      });
      const confirmed = claimed.length > 0 ? await confirmEvidence(transcript, claimed, nodeSha256) : [];
      if (confirmed.length > 0) {
        check.verdict = 'fail';
        check.reasons = confirmed.map((e) => `GPU ${e.gpu}: C[${e.row}][${e.col}] in an opened leaf is wrong (an inspector's evidence)`);
      }
    }
    const why = check.reasons.slice(0, 2).join('; ');
    if (check.verdict !== report.outcome) fail('transcript', `the outcome is ${report.outcome}, but recomputing the transcript gives ${check.verdict}${why ? ` (${why})` : ''}`);
    else pass('transcript', `recomputed (${check.entriesChecked} entries, own picks included; ${check.leasesChecked} leases): ${check.verdict}, as the outcome says${why ? ` (${why})` : ''}`);
  }
  if (report.decoy !== (report.basis === 'decoy')) fail('basis', `decoy ${report.decoy} but basis ${report.basis}`);

  // (2) The draw: the seed from its inputs, the panel from the seed and the pool.
  const draw = DrawSchema.safeParse(report.draw);
  const panel: string[] = [];
  const weights = new Map<string, bigint>();
  if (!draw.success) fail('draw', `malformed (${issue(draw.error)})`);
  else {
    const d = draw.data;
    const problems: string[] = [];
    if (d.inputs.inspection_id !== report.inspection_id) problems.push('its inputs name another inspection');
    if (transcript) {
      const challengeSeed = String(transcript.challenge.seed ?? transcript.challenge.nonce ?? '');
      const nodeSignature = (transcript.kind === 'identity' ? transcript.identity?.signature : transcript.capacity?.signature) ?? '';
      if (d.inputs.challenge_seed !== challengeSeed) problems.push("its challenge seed is not the transcript's");
      if (d.inputs.node_signature !== nodeSignature) problems.push("its node signature is not the transcript's");
    }
    const inputs = { inspectionId: d.inputs.inspection_id, challengeSeed: d.inputs.challenge_seed, nodeSignature: d.inputs.node_signature, platformRandom: d.inputs.platform_random };
    if ((await drawSeed(inputs, nodeSha256)) !== d.seed) problems.push('SHA-256 of its inputs is not its seed');
    const cap = BigInt(d.weight_cap);
    const drawn = await drawPanel(d.seed, d.pool.map((c) => ({ accountId: c.account_id, active: BigInt(c.active) })), d.size, cap, nodeSha256);
    for (const x of drawn) (panel.push(x.accountId), weights.set(x.accountId, x.weight));
    if (!same(panel, d.panel)) problems.push(`the seed and pool draw [${panel.join(', ')}], not the published [${d.panel.join(', ')}]`);
    if (problems.length) fail('draw', problems.join('; '));
    else pass('draw', `seed = SHA-256 of its inputs; ${panel.length} of ${d.pool.length} drawn (weight cap ${cap}): ${panel.join(', ') || 'none'}`);
    // The verdicts are the panel's, each at its drawn weight.
    const listed = report.verdicts.map((v) => v.inspector_id);
    const wrongWeight = report.verdicts.filter((v) => weights.has(v.inspector_id) && weights.get(v.inspector_id) !== BigInt(v.weight)).map((v) => v.inspector_id);
    if (!same([...listed].sort(), [...d.panel].sort())) fail('panel', `the verdicts are from [${listed.join(', ')}], not the panel [${d.panel.join(', ')}]`);
    else if (wrongWeight.length) fail('panel', `weights differ from the draw for ${wrongWeight.join(', ')}`);
    else pass('panel', `the ${listed.length} verdict${listed.length === 1 ? '' : 's'} are the panel's, at their drawn weights`);
  }

  // (3) Each verdict: committed before it was revealed, signed by its inspector, settled by the outcome.
  const revealed: ('pass' | 'fail')[] = [];
  for (const entry of report.verdicts) {
    const name = `verdict ${entry.inspector_id}`;
    if (entry.verdict === null) {
      if (entry.salt !== null || entry.signature !== null) fail(name, 'a salt or signature without a verdict');
      else if (entry.result !== null && entry.result !== 'missed') fail(name, `none revealed, but the result is ${entry.result}, not missed`);
      else pass(name, `none revealed${entry.commitment ? ' (committed)' : ''}${entry.result ? `: ${entry.result}` : ''}`);
      continue;
    }
    const v = VerdictSchema.safeParse(entry.verdict);
    if (!v.success) {
      fail(name, `malformed (${issue(v.error)})`);
      continue;
    }
    const verdict = v.data;
    if (verdict.inspection_id !== report.inspection_id || verdict.inspector_id !== entry.inspector_id) {
      fail(name, 'it names another inspection or inspector');
      continue;
    }
    let commitment: string | null = null;
    try {
      commitment = entry.salt ? await verdictCommitment(entry.salt, verdict, nodeSha256) : null;
    } catch {
      commitment = null;
    }
    if (!entry.commitment || commitment !== entry.commitment) {
      fail(name, 'the verdict and salt do not hash to its commitment');
      continue;
    }
    if (!entry.public_key || !entry.signature || !ed25519Verifies(entry.public_key, signedMessage(VERDICT_DOMAIN, verdictFields(verdict)), entry.signature)) {
      fail(name, "its signature does not verify with the inspector's key");
      continue;
    }
    revealed.push(verdict.verdict);
    const expected = assignmentResult(verdict.verdict, report.outcome);
    if (entry.result !== null && entry.result !== expected) {
      fail(name, `${verdict.verdict} against the outcome ${report.outcome} is ${expected}, but the result is ${entry.result}`);
      continue;
    }
    pass(name, `${verdict.verdict}: matches its commitment, signed by its key${entry.result ? `; ${entry.result}${entry.amount ? ` ${entry.amount} GRID` : ''}` : ''}`);
  }
  const major = majority(revealed);
  if (major !== report.majority) fail('majority', `the revealed verdicts' majority is ${major ?? 'none'}, not ${report.majority ?? 'none'}`);
  else pass('majority', `${major ?? 'none'} of ${revealed.length} revealed${major !== null && major !== report.outcome ? ` (disagrees with the outcome ${report.outcome})` : ''}`);
}
