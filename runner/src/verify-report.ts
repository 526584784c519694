// `gridlease-runner verify-report`: re-checks a platform challenge report or an inspection report
// offline. The platform's ES256 signature (its published JWKS), the node's Ed25519 signatures, and
// for capacity the openings themselves, re-run with the same pure verifier the platform uses; for an
// inspection also the transcript's recomputation, the draw and every verdict (inspect-report.ts).
// Only node:* and the bundled pure modules: anyone can run it without trusting the platform's verdict.
import { configApi, fetchText, parseJson, readFile, Usage, type Check, type VerifyIo } from './verify-common.ts';
import crypto from 'node:crypto';
import fs from 'node:fs';
import util from 'node:util';
import { z } from 'zod';
import { canonicalBytes } from '../../src/contracts/canonical-json.ts';
import {
  CapacityChallengeSchema,
  CapacityCommitmentSchema,
  COMMITMENT_DOMAIN,
  commitmentFields,
  IDENTITY_DOMAIN,
  identityFields,
  IdentityAnswerSchema,
  IdentityChallengeSchema,
  OpeningRequestSchema,
} from '../../src/contracts/inspections.ts';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { checkCapacityAnswer } from '../../src/inspections/capacity-wire.ts';
import { readConfig } from './config.ts';
import { EXIT } from './errors.ts';
import { INSPECTION_REPORT_TYP, InspectionReportSchema, inspectionChecks, type InspectionReportView } from './inspect-report.ts';
import { ed25519Verifies, nodeSha256 } from './inspect-crypto.ts';

export const VERIFY_REPORT_USAGE = 'usage: gridlease-runner verify-report <challenge-id|insp_…|url|file> [--api URL] [--jwks file|url] [--json]';
const REPORT_TYP = 'gridlease-challenge-report';
const CHALLENGE_ID = /^[A-Za-z0-9_-]{1,64}$/;

const ReportSchema = z
  .object({
    version: z.literal(1),
    challenge_id: z.string(),
    node_id: z.string(),
    node_public_key: z.string().nullable(),
    kind: z.enum(['identity', 'capacity']),
    challenge: z.record(z.string(), z.unknown()),
    issued_at: z.string(),
    decided_at: z.string(),
    status: z.enum(['passed', 'failed', 'expired']),
    reasons: z.array(z.string()),
    identity: z.object({ answer: z.unknown(), signature: z.string().nullable() }).strict().optional(),
    capacity: z.object({ commitment: z.unknown(), signature: z.string().nullable(), opening_request: z.unknown(), openings: z.unknown() }).strict().optional(),
  })
  .strict();
type Report = z.infer<typeof ReportSchema>;

export type { VerifyIo };

/** Runs the command; returns the exit code (0 all holds, 1 something does not, 2 usage). */
export async function verifyReport(argv: readonly string[], io: VerifyIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    if (err instanceof Usage) {
      io.err(`gridlease-runner: ${err.message}\n${VERIFY_REPORT_USAGE}`);
      return EXIT.usage;
    }
    io.err(`gridlease-runner: ${(err as Error).message}`);
    return EXIT.error;
  }
}

async function run(argv: readonly string[], io: VerifyIo): Promise<number> {
  let parsed;
  try {
    parsed = util.parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { api: { type: 'string' }, jwks: { type: 'string' }, json: { type: 'boolean' } } });
  } catch (err) {
    throw new Usage((err as Error).message.split('\n')[0]!);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new Usage(positionals.length === 0 ? 'which report? give a challenge id, an inspection id (insp_…), a URL or a file' : `unexpected argument "${positionals[1]}"`);
  const source = positionals[0]!;
  const api = () => {
    const url = values.api ?? io.env.GRIDLEASE_API ?? configApi(io.configPath);
    if (!url) throw new Usage('no API to ask: pass --api URL (or set GRIDLEASE_API, or join first)');
    return url.replace(/\/+$/, '');
  };

  // The report: an API answer {report, jws} or a bare JWS, from a URL, a file, or the API by id.
  let text: string;
  let apiBase: string | undefined = values.api;
  if (/^https?:\/\//.test(source)) {
    text = await fetchText(io, source);
    apiBase ??= new URL(source).origin;
  } else if (fs.existsSync(source)) {
    text = readFile(source);
  } else if (CHALLENGE_ID.test(source)) {
    apiBase = api();
    // An inspection's public report is GET /v1/inspections/{id}; a challenge's, /v1/challenges/{id}/report.
    const where = source.startsWith('insp_') ? `/v1/inspections/${encodeURIComponent(source)}` : `/v1/challenges/${encodeURIComponent(source)}/report`;
    text = await fetchText(io, `${apiBase}${where}`);
  } else {
    throw new Usage(`no such file, URL, challenge or inspection id: ${source}`);
  }
  const jwksSource = values.jwks ?? (apiBase ? `${apiBase.replace(/\/+$/, '')}/.well-known/jwks.json` : undefined);
  if (!jwksSource) throw new Usage('whose keys? pass --jwks file|url or --api URL');
  const jwks = /^https?:\/\//.test(jwksSource) ? await fetchText(io, jwksSource) : readFile(jwksSource);

  const checks = await verify(text, jwks);
  const ok = checks.every((c) => c.ok);
  const report = checks.report;
  const inspection = checks.inspection;
  if (inspection) {
    if (values.json) {
      io.out(JSON.stringify({ ok, inspection_id: inspection.inspection_id, node_id: inspection.node_id, kind: inspection.kind, decoy: inspection.decoy, outcome: inspection.outcome, checks: [...checks] }));
    } else {
      io.out(
        `inspection ${inspection.inspection_id} (${inspection.kind}${inspection.decoy ? ', decoy' : ''}) of node ${inspection.node_id}: ${inspection.outcome} by ${inspection.basis}, majority ${inspection.majority ?? 'none'}, decided ${inspection.decided_at}`,
      );
      for (const c of checks) io.out(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
      io.out(ok ? 'the report holds' : 'the report does NOT hold');
    }
  } else if (values.json) {
    io.out(JSON.stringify({ ok, challenge_id: report?.challenge_id ?? null, node_id: report?.node_id ?? null, kind: report?.kind ?? null, status: report?.status ?? null, checks: [...checks] }));
  } else {
    if (report) io.out(`challenge ${report.challenge_id} (${report.kind}) of node ${report.node_id}: ${report.status}, decided ${report.decided_at}`);
    for (const c of checks) io.out(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
    io.out(ok ? 'the report holds' : 'the report does NOT hold');
  }
  return ok ? EXIT.ok : EXIT.error;
}

/** Every check, in order; `report` is the report as parsed (absent when it could not be read). */
export async function verify(text: string, jwksText: string): Promise<Check[] & { report?: Report; inspection?: InspectionReportView }> {
  const checks: Check[] & { report?: Report; inspection?: InspectionReportView } = [];
  const fail = (name: string, detail: string) => (checks.push({ name, ok: false, detail }), checks);
  const pass = (name: string, detail: string) => checks.push({ name, ok: true, detail });

  // A malformed input is a report that does not hold (exit 1), not a usage error: it is the content that is wrong.
  let given: unknown;
  let jws: string;
  const trimmed = text.trim();
  if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(trimmed)) jws = trimmed;
  else {
    const body = parseJson(trimmed);
    if (!body || typeof body !== 'object' || typeof (body as { jws?: unknown }).jws !== 'string') return fail('input', 'not a challenge or inspection report: expected {"report", "jws"} or a compact JWS');
    jws = (body as { jws: string }).jws;
    given = (body as { report?: unknown }).report;
  }
  const keys = parseJson(jwksText) as { keys?: unknown } | undefined;
  if (!keys || !Array.isArray(keys.keys)) return fail('keys', 'the JWKS is not a {"keys": [...]} key set');

  // (a) The platform's signature, and that it signed exactly this report.
  const [h, p, s] = jws.split('.') as [string, string, string];
  const header = parseJson(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: unknown; kid?: unknown; typ?: unknown } | undefined;
  if (!header || header.alg !== 'ES256' || (header.typ !== REPORT_TYP && header.typ !== INSPECTION_REPORT_TYP)) return fail('platform signature', `not a report JWS (alg ${String(header?.alg)}, typ ${String(header?.typ)})`);
  const jwk = (keys.keys as { kid?: unknown }[]).find((k) => k && k.kid === header.kid);
  if (!jwk) return fail('platform signature', `no key with kid ${JSON.stringify(header.kid)} in the JWKS`);
  let signed = false;
  try {
    const key = crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
    signed = crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  } catch {
    signed = false;
  }
  if (!signed) return fail('platform signature', `does not verify with key ${String(header.kid)}`);
  pass('platform signature', `ES256, key ${String(header.kid)}`);
  const payload = Buffer.from(p, 'base64url');
  if (given === undefined) given = parseJson(payload.toString('utf8'));
  let canonical: Uint8Array | null = null;
  try {
    canonical = canonicalBytes(given);
  } catch {
    canonical = null;
  }
  if (!canonical || !payload.equals(canonical)) return fail('signed content', 'the report differs from what the platform signed');
  pass('signed content', 'the report is exactly what the platform signed');
  if (header.typ === INSPECTION_REPORT_TYP) {
    const inspection = InspectionReportSchema.safeParse(given);
    if (!inspection.success) return fail('report', `not a version-1 inspection report (${inspection.error.issues[0]?.path.join('.')}: ${inspection.error.issues[0]?.message})`);
    checks.inspection = inspection.data;
    await inspectionChecks(inspection.data, pass, fail);
    return checks;
  }
  const parsed = ReportSchema.safeParse(given);
  if (!parsed.success) return fail('report', `not a version-1 challenge report (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  const report = parsed.data;
  checks.report = report;

  if (report.kind === 'identity') await identityChecks(report, pass, fail);
  else await capacityChecks(report, pass, fail);
  return checks;
}

type Mark = (name: string, detail: string) => unknown;

async function identityChecks(report: Report, pass: Mark, fail: Mark): Promise<void> {
  const challenge = IdentityChallengeSchema.safeParse(report.challenge);
  if (!challenge.success || challenge.data.challenge_id !== report.challenge_id) return void fail('challenge', 'not an identity challenge for this id');
  const answer = IdentityAnswerSchema.safeParse(report.identity?.answer);
  if (!report.identity?.answer) {
    if (report.status === 'expired') return void pass('decision', 'expired: no answer before the deadline');
    return void fail('answer', `a ${report.status} identity report must hold the answer`);
  }
  if (!answer.success || answer.data.challenge_id !== report.challenge_id) return void fail('answer', 'the answer is malformed or for another challenge');
  if (!nodeSigned(report, signedMessage(IDENTITY_DOMAIN, identityFields(report.node_id, answer.data)), report.identity.signature)) return void fail('node signature', "the answer's signature does not verify with the node's key");
  pass('node signature', 'Ed25519 over the identity answer');
  const nonceOk = answer.data.nonce === challenge.data.nonce;
  if (report.status === 'passed' && !nonceOk) return void fail('decision', 'passed, but the answered nonce is not the challenge’s');
  if (report.status === 'passed') return void pass('decision', 'passed: the answered nonce is the challenge’s');
  // A failure for other GPUs cannot be re-checked offline: the registered GPUs are not in the report.
  pass('decision', nonceOk ? `${report.status}: the nonce matches; the GPU list was judged against the node's registration` : `${report.status}: the answered nonce is not the challenge’s`);
}

async function capacityChecks(report: Report, pass: Mark, fail: Mark): Promise<void> {
  const challenge = CapacityChallengeSchema.safeParse(report.challenge);
  if (!challenge.success || challenge.data.challenge_id !== report.challenge_id) return void fail('challenge', 'not a capacity challenge for this id');
  const cap = report.capacity;
  if (!cap?.commitment) {
    if (report.status === 'expired') return void pass('decision', 'expired: no commitment before the deadline');
    return void fail('commitment', `a ${report.status} capacity report must hold the commitment`);
  }
  const commitment = CapacityCommitmentSchema.safeParse(cap.commitment);
  if (!commitment.success || commitment.data.challenge_id !== report.challenge_id) return void fail('commitment', 'the commitment is malformed or for another challenge');
  if (!nodeSigned(report, signedMessage(COMMITMENT_DOMAIN, commitmentFields(report.node_id, challenge.data, commitment.data)), cap.signature)) {
    return void fail('node signature', "the commitment's signature does not verify with the node's key");
  }
  pass('node signature', `Ed25519 over the commitment (${commitment.data.roots.length} root${commitment.data.roots.length === 1 ? '' : 's'})`);
  if (!cap.openings) {
    if (report.status === 'expired') return void pass('decision', 'expired: committed, but no openings before the deadline');
    return void fail('openings', `a ${report.status} capacity report must hold the openings`);
  }
  const request = OpeningRequestSchema.safeParse(cap.opening_request);
  if (!request.success) return void fail('openings', 'the opening request is malformed');
  const verdict = await checkCapacityAnswer(challenge.data, request.data, commitment.data, cap.openings, nodeSha256);
  const first = verdict.ok ? '' : verdict.failures.slice(0, 2).map((f) => ('gpu' in f ? `GPU ${f.gpu}: ${f.reason}` : f.reason === 'parameters' ? f.message : f.reason)).join('; ');
  if (report.status === 'passed' && !verdict.ok) return void fail('openings', `the report says passed, but the openings do not verify (${first})`);
  if (report.status !== 'passed' && verdict.ok) return void fail('openings', `the report says ${report.status}, but every opening verifies`);
  pass('openings', verdict.ok ? `re-checked: all ${request.data.count} openings per GPU match A·B under the signed roots` : `re-checked: they do not verify (${first}), as the report says`);
}

function nodeSigned(report: Report, message: Uint8Array, signature: string | null): boolean {
  return !!report.node_public_key && !!signature && ed25519Verifies(report.node_public_key, message, signature);
}




