// Inspections by bonded inspectors (docs/inspections.md, "Inspectors"): every decided challenge
// (and now and then a decoy) is put to a panel of 2N+1 inspectors drawn from a published seed;
// each commits to a signed verdict, then reveals it; the outcome is recomputed from the
// transcript (a decoy's is known), the majority is recorded beside it, and each inspector is paid
// from the rewards pool or slashed from its bond, once per inspection, through the ledger.
//
// Every step is a conditional statement on the row's state, so retries, overlapping requests and
// cron runs apply each effect once: the inspection is inserted once per challenge (unique index),
// decided once (`status = 'open'`), and each assignment settled once (`settled_at IS NULL`, and
// its ledger key `inspection:<id>:<account>`).
import type { Client, InStatement } from '@libsql/client/web';
import { sql } from 'drizzle-orm';
import { toBase64Url } from '../auth/encoding.ts';
import { CapacityChallengeSchema, type OpeningRequest } from '../contracts/inspections.ts';
import { TranscriptSchema, VerdictSchema, type Transcript, type VerdictReveal } from '../contracts/inspector-verdicts.ts';
import { signedMessage } from '../contracts/signed-message.ts';
import { VERDICT_DOMAIN, verdictFields } from '../contracts/inspector-verdicts.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { ApiError } from '../http/errors.ts';
import { log } from '../http/log.ts';
import { newId } from '../ids.ts';
import { leaseConfig } from '../leases/config.ts';
import { reward, slash } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import { verifyNodeSignature } from '../nodes/identity.ts';
import { punishFailedInspection } from '../rewards/stakes.ts';
import { BOND_ASSET, bondConfig, bondedAccountId, roleStatement } from './bonds.ts';
import { capacityChallenge, challengeConfig, leafSizeFor, openingRequest } from './challenge-terms.ts';
import { buildDecoyTranscript } from './decoys.ts';
import { toHex } from './encoding.ts';
import { orderProcessingRecord } from './node-audit.ts';
import { assignmentResult, drawPanel, drawSeed, majority, payConfig, verdictCommitment, type Candidate } from './panel.ts';
import { nodeSha256 } from './node-sha256.ts';
import { checkTranscript, confirmEvidence } from './transcript-check.ts';

const POOL_MAX = 1_000;
/** Decoys are made at most this large: building one is O(m·leaf·n) per GPU in the Worker. */
const DECOY_MAX_N = 512;

const randomHex = (bytes = 32) => toHex(crypto.getRandomValues(new Uint8Array(bytes)));
const json = (value: unknown) => JSON.stringify(value);

/**
 * Inspectors who may be drawn: active accounts holding the role by their bond (read from the
 * database, never a token), with a registered key, other than the node's owner, and whose key is
 * not the node's.
 */
async function candidatePool(money: Client, env: Bindings, exclude: { ownerId: string | null; nodeKey: string | null }, only: string | null = null): Promise<Candidate[]> {
  const { minBond } = bondConfig(env);
  const rs = await money.execute({
    sql: `SELECT a.id AS account_id,
            COALESCE((SELECT balance FROM ledger_accounts WHERE id = a.id || ':${BOND_ASSET}:bonded'), 0)
              - COALESCE((SELECT SUM(amount) FROM inspector_bonds b WHERE b.account_id = a.id AND b.kind = 'unbond' AND b.status = 'pending'), 0) AS active
          FROM accounts a JOIN inspector_keys k ON k.account_id = a.id
          WHERE a.status = 'active' AND EXISTS (SELECT 1 FROM json_each(a.roles) WHERE value = 'inspector')
            AND a.id <> ? AND k.public_key <> ? AND (? IS NULL OR a.id = ?)
          ORDER BY a.id LIMIT ?`,
    args: [exclude.ownerId ?? '', exclude.nodeKey ?? '', only, only, POOL_MAX],
  });
  return rs.rows.map((r) => ({ accountId: String(r.account_id), active: BigInt(r.active as bigint) })).filter((c) => c.active >= minBond);
}

interface NewInspection {
  id: string;
  challengeId: string | null;
  nodeId: string;
  kind: 'identity' | 'capacity';
  decoy: boolean;
  expect: 'pass' | 'fail' | null;
  transcript: Transcript;
  ownerId: string | null;
  nodeKey: string | null;
  challengeSeed: string;
  nodeSignature: string;
}

/** Draws the panel and inserts the inspection with its assignments in one batch; false when the challenge already has one. */
async function insertInspection(env: Bindings, input: NewInspection, now: number): Promise<boolean> {
  const { money } = connection(env);
  const config = payConfig(env);
  const pool = await candidatePool(money, env, { ownerId: input.ownerId, nodeKey: input.nodeKey });
  const platformRandom = randomHex();
  const seed = await drawSeed({ inspectionId: input.id, challengeSeed: input.challengeSeed, nodeSignature: input.nodeSignature, platformRandom }, nodeSha256);
  const panel = await drawPanel(seed, pool, config.panelSize, config.weightCap, nodeSha256);
  const draw = {
    seed,
    inputs: { inspection_id: input.id, challenge_seed: input.challengeSeed, node_signature: input.nodeSignature, platform_random: platformRandom },
    size: config.panelSize,
    weight_cap: config.weightCap.toString(),
    pool: pool.map((c) => ({ account_id: c.accountId, active: c.active.toString() })),
    panel: panel.map((d) => d.accountId),
  };
  const statements: InStatement[] = [
    {
      sql: `INSERT INTO inspections (id, challenge_id, node_id, kind, decoy, expect, transcript, draw, status, commit_deadline, reveal_deadline, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?) ON CONFLICT DO NOTHING`,
      args: [input.id, input.challengeId, input.nodeId, input.kind, input.decoy ? 1 : 0, input.expect, json(input.transcript), json(draw), now + config.commitMs, now + config.commitMs + config.revealMs, now],
    },
    ...panel.map((d) => ({
      sql: `INSERT INTO inspection_assignments (inspection_id, account_id, weight) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM inspections WHERE id = ?)`,
      args: [input.id, d.accountId, d.weight, input.id],
    })),
  ];
  const [inserted] = await money.batch(statements, 'write');
  if (inserted!.rowsAffected === 0) return false;
  log('info', 'inspection opened', { inspection_id: input.id, node_id: input.nodeId, decoy: input.decoy, panel: panel.length, pool: pool.length });
  // No inspector to ask: decided at once, by recomputation, so the report is out without waiting.
  if (panel.length === 0) await decideInspection(env, input.id, now);
  return true;
}

/**
 * Opens the inspection of a decided challenge (once; a second call finds it and does nothing).
 * Challenges closed without a decision (superseded, never delivered) are not inspected.
 */
export async function openInspection(env: Bindings, challengeId: string, now = Date.now()): Promise<string | null> {
  const { client } = connection(env);
  const rs = await client.execute({
    sql: `SELECT c.*, n.account_id AS owner_id, n.public_key AS current_key,
            (SELECT json_group_array(uuid) FROM (SELECT uuid FROM node_gpus WHERE node_id = c.node_id ORDER BY gpu_index)) AS uuids,
            (SELECT id FROM inspections WHERE challenge_id = c.id) AS inspection_id
          FROM node_challenges c LEFT JOIN nodes n ON n.id = c.node_id WHERE c.id = ?`,
    args: [challengeId],
  });
  const r = rs.rows[0];
  if (!r || r.decided_at === null || r.decision === null) return null;
  if (r.inspection_id !== null) return String(r.inspection_id);
  const parse = (v: unknown) => (v === null || v === undefined ? null : (JSON.parse(String(v)) as Record<string, unknown>));
  const challenge = parse(r.challenge)!;
  const kind = String(r.kind) as 'identity' | 'capacity';
  const id = newId('insp');
  const nodeId = String(r.node_id);
  const nodeKey = (r.node_public_key ?? r.current_key ?? null) as string | null;
  const transcript: Transcript = {
    inspection_id: id,
    kind,
    node_id: nodeId,
    node_public_key: nodeKey,
    challenge,
    registered_gpu_uuids: kind === 'identity' ? (JSON.parse(String(r.uuids ?? '[]')) as string[]) : [],
    identity: kind === 'identity' ? { answer: parse(r.answer), signature: (r.answer_signature as string | null) ?? null } : null,
    capacity:
      kind === 'capacity'
        ? { commitment: parse(r.commitment), signature: (r.commitment_signature as string | null) ?? null, opening_request: parse(r.opening_request), openings: parse(r.openings) }
        : null,
    order_processing: await orderProcessingRecord(env, nodeId, now),
  };
  const nodeSignature = String((kind === 'identity' ? r.answer_signature : r.commitment_signature) ?? '');
  const challengeSeed = String(challenge.seed ?? challenge.nonce ?? '');
  const created = await insertInspection(
    env,
    { id, challengeId, nodeId, kind, decoy: false, expect: null, transcript, ownerId: (r.owner_id as string | null) ?? null, nodeKey, challengeSeed, nodeSignature },
    now,
  );
  if (!created) return null;
  const config = payConfig(env);
  if (config.decoyPpm > 0 && Math.random() * 1_000_000 < config.decoyPpm) {
    await plantDecoy(env, Math.random() < 0.5 ? 'pass' : 'fail', now).catch((err) => log('warn', 'decoy not planted', { error: String(err) }));
  }
  return id;
}

/** A decoy inspection: a made-up capacity answer from a made-up node, known good or known bad. */
export async function plantDecoy(env: Bindings, expect: 'pass' | 'fail', now = Date.now()): Promise<string> {
  const challengeCfg = challengeConfig(env);
  const n = Math.min(challengeCfg.capacityMaxN ?? DECOY_MAX_N, DECOY_MAX_N);
  const gpuCount = 1 + Math.floor(Math.random() * 4);
  const id = newId('insp');
  const nodeId = newId('node');
  const challengeId = newId('chl');
  // Looks like a challenge issued a few seconds ago and answered in time.
  const issuedAt = now - 5_000 - Math.floor(Math.random() * 20_000);
  const challenge = capacityChallenge(challengeId, randomHex(), { n, gpuCount, leafSize: leafSizeFor(n), commitMs: 2_000 + challengeCfg.allowanceMs }, issuedAt);
  const request: OpeningRequest = openingRequest(CapacityChallengeSchema.parse(challenge), randomHex(), issuedAt + 1_000 + Math.floor(Math.random() * 2_000), challengeCfg.allowanceMs);
  const keys = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const publicKey = toBase64Url(new Uint8Array((await crypto.subtle.exportKey('raw', keys.publicKey)) as ArrayBuffer));
  const transcript = await buildDecoyTranscript(
    { inspectionId: id, nodeId, nodePublicKey: publicKey, challenge, request, expect, order: noLeases(env, now) },
    {
      sha256: nodeSha256,
      sign: async (message) => toBase64Url(new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, keys.privateKey, message as Uint8Array<ArrayBuffer>))),
      randomBytes: (length) => crypto.getRandomValues(new Uint8Array(length)),
      random: Math.random,
    },
  );
  await insertInspection(
    env,
    { id, challengeId: null, nodeId, kind: 'capacity', decoy: true, expect, transcript, ownerId: null, nodeKey: publicKey, challengeSeed: challenge.seed, nodeSignature: transcript.capacity!.signature! },
    now,
  );
  return id;
}

/** The order-processing part of a node without leases, under the same terms as a real one's. */
function noLeases(env: Bindings, now: number): Transcript['order_processing'] {
  const config = leaseConfig(env);
  return { at: now, provision_timeout_ms: config.provisionTimeoutMs, fee_bps: Number(config.feeBps), leases: [] };
}

// ── Inspectors' requests ────────────────────────────────────────────────────────────

export interface AssignmentRow {
  inspectionId: string;
  commitDeadline: number;
  revealDeadline: number;
  status: 'open' | 'decided';
  committedAt: number | null;
  revealedAt: number | null;
  commitment: string | null;
  /** The stored transcript's JSON text (served as is, never parsed here); null once the caller has committed. */
  transcriptJson: string | null;
  pending: number;
}

// The transcript only while the caller has yet to commit: a poll then carries each one once.
const assignmentSql = `SELECT i.id, i.commit_deadline, i.reveal_deadline, i.status, CASE WHEN a.committed_at IS NULL THEN i.transcript END AS transcript,
    a.commitment, a.committed_at, a.revealed_at,
    (SELECT count(*) FROM inspection_assignments x WHERE x.inspection_id = i.id AND x.committed_at IS NULL) AS pending
  FROM inspection_assignments a JOIN inspections i ON i.id = a.inspection_id`;

function assignmentOf(r: Record<string, unknown>): AssignmentRow {
  return {
    inspectionId: String(r.id),
    commitDeadline: Number(r.commit_deadline),
    revealDeadline: Number(r.reveal_deadline),
    status: r.status as 'open' | 'decided',
    committedAt: r.committed_at === null ? null : Number(r.committed_at),
    revealedAt: r.revealed_at === null ? null : Number(r.revealed_at),
    commitment: (r.commitment as string | null) ?? null,
    transcriptJson: r.transcript === null || r.transcript === undefined ? null : String(r.transcript),
    pending: Number(r.pending),
  };
}

/** Reveals open once every panel member has committed, or at the commit deadline. */
export const revealOpen = (a: Pick<AssignmentRow, 'pending' | 'commitDeadline'>, now: number) => a.pending === 0 || now > a.commitDeadline;

/** The caller's open assignments, oldest first. */
export async function openAssignments(env: Bindings, accountId: string, limit: number, now = Date.now()): Promise<AssignmentRow[]> {
  const rs = await connection(env).client.execute({
    sql: `${assignmentSql} WHERE a.account_id = ? AND i.status = 'open' AND a.revealed_at IS NULL AND i.reveal_deadline >= ?
          ORDER BY i.created_at, i.id LIMIT ?`,
    args: [accountId, now, limit],
  });
  return rs.rows.map((r) => assignmentOf(r as unknown as Record<string, unknown>));
}

export interface BatchRefusal {
  inspectionId: string;
  ok: false;
  error: ApiError;
}
export type BatchResult<T> = ({ inspectionId: string; ok: true } & T) | BatchRefusal;

/** At most this many items in one batch request. */
export const MAX_BATCH_ITEMS = 50;

interface Loaded {
  /** Active bond at least the minimum, a registered key, the role and an active account. */
  standing: boolean;
  publicKey: string | null;
  rows: Map<string, AssignmentRow>;
}

/**
 * One statement for a whole request: the caller's standing (active bond, key) and its assignment
 * to each of the inspections (a row per id; the assignment's columns null when there is none).
 */
async function loadAssignments(env: Bindings, accountId: string, inspectionIds: string[]): Promise<Loaded> {
  const { minBond } = bondConfig(env);
  const rs = await connection(env).money.execute({
    sql: `SELECT s.active, s.public_key, s.in_role, j.value AS item_id, i.id, i.commit_deadline, i.reveal_deadline, i.status,
            a.commitment, a.committed_at, a.revealed_at, NULL AS transcript,
            (SELECT count(*) FROM inspection_assignments x WHERE x.inspection_id = i.id AND x.committed_at IS NULL) AS pending
          FROM (SELECT k.public_key,
                  (acc.status = 'active' AND EXISTS (SELECT 1 FROM json_each(acc.roles) WHERE value = 'inspector')) AS in_role,
                  COALESCE((SELECT balance FROM ledger_accounts WHERE id = acc.id || ':${BOND_ASSET}:bonded'), 0)
                    - COALESCE((SELECT SUM(amount) FROM inspector_bonds b WHERE b.account_id = acc.id AND b.kind = 'unbond' AND b.status = 'pending'), 0) AS active
                FROM accounts acc LEFT JOIN inspector_keys k ON k.account_id = acc.id WHERE acc.id = ?) s
          LEFT JOIN json_each(?) j
          LEFT JOIN inspection_assignments a ON a.inspection_id = j.value AND a.account_id = ?
          LEFT JOIN inspections i ON i.id = a.inspection_id`,
    args: [accountId, JSON.stringify(inspectionIds), accountId],
  });
  const first = rs.rows[0];
  const publicKey = (first?.public_key as string | null | undefined) ?? null;
  const standing = !!first && publicKey !== null && Number(first.in_role) === 1 && BigInt(first.active as bigint) >= minBond;
  const rows = new Map<string, AssignmentRow>();
  for (const r of rs.rows) if (r.id !== null && r.id !== undefined) rows.set(String(r.id), assignmentOf(r as unknown as Record<string, unknown>));
  return { standing, publicKey, rows };
}

const NOT_STANDING = 'this account is not an inspector in good standing: its active bond is below the minimum (or it has no key)';

/**
 * The checks every item shares: assigned to the caller (404), the caller in good standing (403,
 * once for the request, and only when something is assigned: an id not assigned is a 404 either
 * way), the inspection open (409), not twice in the request (409).
 */
function precheck(loaded: Loaded, inspectionIds: string[]): Array<AssignmentRow | ApiError> {
  if (!loaded.standing && inspectionIds.some((id) => loaded.rows.has(id))) throw new ApiError('forbidden', NOT_STANDING);
  const seen = new Set<string>();
  return inspectionIds.map((id) => {
    const a = loaded.rows.get(id);
    if (!a) return new ApiError('not_found', `no inspection ${id} assigned to this account`);
    if (a.status !== 'open') return new ApiError('conflict', `inspection ${id} is decided`);
    if (seen.has(id)) return new ApiError('conflict', `inspection ${id} is already in this request`);
    seen.add(id);
    return a;
  });
}

const refused = (inspectionId: string, error: ApiError): BatchRefusal => ({ inspectionId, ok: false, error });

/**
 * Commits verdicts to several inspections: one read for all of them, one write batch of
 * conditional updates. Each item is refused on its own (and changes nothing) for exactly the
 * reasons of a single commitment; a caller not in good standing is refused as a whole (403).
 */
export async function commitVerdicts(
  env: Bindings,
  accountId: string,
  items: Array<{ inspectionId: string; commitment: string }>,
  now = Date.now(),
): Promise<Array<BatchResult<{ committedAt: number; revealFrom: number }>>> {
  const loaded = await loadAssignments(env, accountId, items.map((i) => i.inspectionId));
  const checked = precheck(loaded, items.map((i) => i.inspectionId));
  const results: Array<BatchResult<{ committedAt: number; revealFrom: number }> | null> = [];
  const writes: Array<{ index: number; a: AssignmentRow }> = [];
  items.forEach((item, index) => {
    const a = checked[index]!;
    const id = item.inspectionId;
    if (a instanceof ApiError) return void results.push(refused(id, a));
    if (a.committedAt !== null) return void results.push(refused(id, new ApiError('conflict', `a verdict for inspection ${id} was already committed`)));
    if (now > a.commitDeadline) return void results.push(refused(id, new ApiError('conflict', `the commit deadline of inspection ${id} has passed`)));
    results.push(null);
    writes.push({ index, a });
  });
  if (writes.length === 0) return results as Array<BatchResult<{ committedAt: number; revealFrom: number }>>;
  const statements: InStatement[] = writes.map(({ index }) => ({
    sql: `UPDATE inspection_assignments SET commitment = ?, committed_at = ? WHERE inspection_id = ? AND account_id = ? AND committed_at IS NULL
            AND EXISTS (SELECT 1 FROM inspections WHERE id = ? AND status = 'open' AND commit_deadline >= ?)`,
    args: [items[index]!.commitment, now, items[index]!.inspectionId, accountId, items[index]!.inspectionId, now],
  }));
  // In the same transaction: how many of each panel have yet to commit, after these commitments.
  statements.push({
    sql: `SELECT j.value AS id, (SELECT count(*) FROM inspection_assignments x WHERE x.inspection_id = j.value AND x.committed_at IS NULL) AS pending FROM json_each(?) j`,
    args: [JSON.stringify(writes.map((w) => w.a.inspectionId))],
  });
  const out = await connection(env).money.batch(statements, 'write');
  const pending = new Map(out[out.length - 1]!.rows.map((r) => [String(r.id), Number(r.pending)]));
  writes.forEach(({ index, a }, k) => {
    const id = a.inspectionId;
    results[index] =
      out[k]!.rowsAffected === 0
        ? refused(id, new ApiError('conflict', `a verdict for inspection ${id} was already committed`))
        : { inspectionId: id, ok: true, committedAt: now, revealFrom: pending.get(id) === 0 ? now : a.commitDeadline };
  });
  return results as Array<BatchResult<{ committedAt: number; revealFrom: number }>>;
}

/**
 * Reveals verdicts to several inspections: one read for all of them (with the caller's key), the
 * hash and signature checks, one write batch of conditional updates, and then the decision of each
 * inspection whose last reveal this was. Each item is refused on its own (changing nothing) for
 * exactly the reasons of a single reveal; a caller not in good standing is refused as a whole (403).
 */
export async function revealVerdicts(
  env: Bindings,
  accountId: string,
  items: Array<{ inspectionId: string; body: VerdictReveal }>,
  now = Date.now(),
): Promise<Array<BatchResult<{ decided: boolean }>>> {
  const loaded = await loadAssignments(env, accountId, items.map((i) => i.inspectionId));
  const checked = precheck(loaded, items.map((i) => i.inspectionId));
  const publicKey = loaded.publicKey;
  const results: Array<BatchResult<{ decided: boolean }> | null> = [];
  const writes: Array<{ index: number; a: AssignmentRow }> = [];
  for (const [index, item] of items.entries()) {
    const a = checked[index]!;
    const id = item.inspectionId;
    const error = a instanceof ApiError ? a : await revealRefusal(a, item.body, accountId, publicKey, now);
    if (error) {
      results.push(refused(id, error));
    } else {
      results.push(null);
      writes.push({ index, a: a as AssignmentRow });
    }
  }
  if (writes.length === 0) return results as Array<BatchResult<{ decided: boolean }>>;
  const statements: InStatement[] = writes.map(({ index, a }) => {
    const { verdict, salt, signature } = items[index]!.body;
    return {
      sql: `UPDATE inspection_assignments SET verdict = ?, salt = ?, signature = ?, public_key = ?, revealed_at = ?
            WHERE inspection_id = ? AND account_id = ? AND revealed_at IS NULL AND commitment = ?
              AND EXISTS (SELECT 1 FROM inspections WHERE id = ? AND status = 'open' AND reveal_deadline >= ?)`,
      args: [json(verdict), salt, signature, publicKey, now, a.inspectionId, accountId, a.commitment, a.inspectionId, now],
    };
  });
  // In the same transaction: the panels with no reveal left after these.
  statements.push({
    sql: `SELECT j.value AS id FROM json_each(?) j WHERE NOT EXISTS (SELECT 1 FROM inspection_assignments x WHERE x.inspection_id = j.value AND x.revealed_at IS NULL)`,
    args: [JSON.stringify(writes.map((w) => w.a.inspectionId))],
  });
  const out = await connection(env).money.batch(statements, 'write');
  const complete = new Set(out[out.length - 1]!.rows.map((r) => String(r.id)));
  // The last reveal decides at once (the inspections of one batch side by side: each is its own
  // rows and ledger keys); otherwise the cron decides at the reveal deadline.
  await Promise.all(
    writes.map(async ({ index, a }, k) => {
      const id = a.inspectionId;
      results[index] =
        out[k]!.rowsAffected === 0
          ? refused(id, new ApiError('conflict', `the verdict for inspection ${id} was already revealed`))
          : { inspectionId: id, ok: true, decided: complete.has(id) ? await decideInspection(env, id, now) : false };
    }),
  );
  return results as Array<BatchResult<{ decided: boolean }>>;
}

/** Why one reveal is refused (before anything is written), or null. */
async function revealRefusal(a: AssignmentRow, body: VerdictReveal, accountId: string, publicKey: string | null, now: number): Promise<ApiError | null> {
  const id = a.inspectionId;
  if (a.committedAt === null || a.commitment === null) return new ApiError('conflict', `no committed verdict for inspection ${id}: commit first`);
  if (a.revealedAt !== null) return new ApiError('conflict', `the verdict for inspection ${id} was already revealed`);
  if (now > a.revealDeadline) return new ApiError('conflict', `the reveal deadline of inspection ${id} has passed`);
  if (!revealOpen(a, now)) return new ApiError('conflict', `reveals of inspection ${id} open once every inspector has committed, or at ${new Date(a.commitDeadline).toISOString()}`);
  const v = body.verdict;
  if (v.inspection_id !== id) return new ApiError('validation_failed', 'invalid body: verdict.inspection_id: not this inspection');
  if (v.inspector_id !== accountId) return new ApiError('validation_failed', 'invalid body: verdict.inspector_id: not this account');
  if ((await verdictCommitment(body.salt, v, nodeSha256)) !== a.commitment) return new ApiError('validation_failed', 'invalid body: the verdict and salt do not match the commitment');
  if (!publicKey || !(await verifyNodeSignature(publicKey, signedMessage(VERDICT_DOMAIN, verdictFields(v)), body.signature))) {
    return new ApiError('unauthorized', "signature does not verify with this inspector's key over this verdict");
  }
  return null;
}

/** One commitment: the batch of one, its refusal thrown. */
export async function commitVerdict(env: Bindings, inspectionId: string, accountId: string, commitment: string, now = Date.now()): Promise<{ committedAt: number; revealFrom: number }> {
  const [r] = await commitVerdicts(env, accountId, [{ inspectionId, commitment }], now);
  if (!r!.ok) throw r!.error;
  return r!;
}

/** One reveal: the batch of one, its refusal thrown. */
export async function revealVerdict(env: Bindings, inspectionId: string, accountId: string, body: VerdictReveal, now = Date.now()): Promise<{ decided: boolean }> {
  const [r] = await revealVerdicts(env, accountId, [{ inspectionId, body }], now);
  if (!r!.ok) throw r!.error;
  return { decided: r!.decided };
}

// ── Decision and settlement ─────────────────────────────────────────────────────────

/**
 * Decides an open inspection: a decoy's outcome is what it was made to be; a real one's is the
 * platform's own recomputation of the transcript (the same check inspectors run). The majority of
 * the revealed verdicts is recorded beside it. Then every assignment is settled. False when it
 * was already decided.
 */
export async function decideInspection(env: Bindings, inspectionId: string, now = Date.now()): Promise<boolean> {
  const { client } = connection(env);
  const rs = await client.execute({ sql: 'SELECT decoy, expect, transcript, status FROM inspections WHERE id = ?', args: [inspectionId] });
  const r = rs.rows[0];
  if (!r || r.status !== 'open') return false;
  let outcome: 'pass' | 'fail';
  let reasons: string[];
  const revealed = await client.execute({ sql: 'SELECT verdict FROM inspection_assignments WHERE inspection_id = ? AND verdict IS NOT NULL', args: [inspectionId] });
  const verdicts = revealed.rows.map((v) => VerdictSchema.parse(JSON.parse(String(v.verdict))));
  if (Number(r.decoy) === 1) {
    outcome = r.expect as 'pass' | 'fail';
    reasons = [outcome === 'pass' ? 'a decoy made to pass' : 'a decoy made to fail'];
  } else {
    const parsed = TranscriptSchema.safeParse(JSON.parse(String(r.transcript)));
    const check = parsed.success
      ? await checkTranscript(parsed.data, { sha256: nodeSha256, verify: verifyNodeSignature, random: Math.random, ownEntriesPerGpu: 0 })
      : { verdict: 'fail' as const, reasons: ['the transcript is malformed'] };
    outcome = check.verdict;
    reasons = check.reasons;
    // The openings hold; an inspector's own picks inside the opened leaves may still have found
    // wrong entries. Each is recomputed here, and one that holds fails the node.
    if (outcome === 'pass' && parsed.success) {
      const claimed = verdicts.filter((v) => v.verdict === 'fail').flatMap((v) => v.evidence ?? []);
      const confirmed = claimed.length > 0 ? await confirmEvidence(parsed.data, claimed, nodeSha256) : [];
      if (confirmed.length > 0) {
        outcome = 'fail';
        reasons = confirmed.map((e) => `GPU ${e.gpu}: C[${e.row}][${e.col}] in an opened leaf is wrong (an inspector's evidence, recomputed)`);
      }
    }
  }
  const votes = verdicts.map((v) => v.verdict);
  const major = majority(votes);
  const moved = await client.execute({
    sql: `UPDATE inspections SET status = 'decided', outcome = ?, basis = ?, majority = ?, reasons = ?, decided_at = ? WHERE id = ? AND status = 'open'`,
    args: [outcome, Number(r.decoy) === 1 ? 'decoy' : 'recomputation', major, json(reasons), now, inspectionId],
  });
  if (moved.rowsAffected === 0) return false;
  if (major !== null && major !== outcome) log('warn', 'inspectors’ majority disagrees with the recomputed outcome', { inspection_id: inspectionId, outcome, majority: major });
  log('info', 'inspection decided', { inspection_id: inspectionId, outcome, majority: major, verdicts: votes.length });
  await settleInspection(env, inspectionId, now);
  // A real capacity inspection's fail proves deception: the node's stake and unvested rewards go (never throws).
  if (outcome === 'fail' && Number(r.decoy) !== 1) await punishFailedInspection(env, inspectionId, now);
  return true;
}

/**
 * Pays or slashes every unsettled assignment of a decided inspection: right verdicts earn the
 * reward from the rewards pool; a wrong verdict, or none revealed by the deadline, costs part of
 * the bond (at most what is bonded). Each under its own ledger key, with the assignment's row in
 * the same batch. An empty pool leaves the payment for a later run. Returns assignments settled.
 */
export async function settleInspection(env: Bindings, inspectionId: string, now = Date.now()): Promise<number> {
  const { money } = connection(env);
  const config = payConfig(env);
  const { minBond } = bondConfig(env);
  const rs = await money.execute({
    sql: `SELECT a.account_id, a.verdict, i.outcome FROM inspection_assignments a JOIN inspections i ON i.id = a.inspection_id
          WHERE a.inspection_id = ? AND i.status = 'decided' AND a.settled_at IS NULL`,
    args: [inspectionId],
  });
  let settled = 0;
  for (const r of rs.rows) {
    const accountId = String(r.account_id);
    const revealed = r.verdict === null ? null : (VerdictSchema.parse(JSON.parse(String(r.verdict))).verdict);
    const result = assignmentResult(revealed, r.outcome as 'pass' | 'fail');
    const key = `inspection:${inspectionId}:${accountId}`;
    try {
      if (await settleOne(money, { inspectionId, accountId, result, key, config, minBond }, now)) settled++;
    } catch (err) {
      log('warn', 'inspection assignment not settled; the next run retries', { inspection_id: inspectionId, account_id: accountId, error: String(err) });
    }
  }
  await money.execute({
    sql: `UPDATE inspections SET settled_at = ? WHERE id = ? AND status = 'decided' AND settled_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM inspection_assignments WHERE inspection_id = ? AND settled_at IS NULL)`,
    args: [now, inspectionId, inspectionId],
  });
  return settled;
}

async function settleOne(
  money: Client,
  s: { inspectionId: string; accountId: string; result: 'paid' | 'wrong' | 'missed'; key: string; config: ReturnType<typeof payConfig>; minBond: bigint },
  now: number,
): Promise<boolean> {
  const mark = (amount: bigint): InStatement => ({
    sql: `UPDATE inspection_assignments SET result = ?, amount = ?, settled_at = ?, transaction_id = (SELECT id FROM ledger_transactions WHERE idempotency_key = ?)
          WHERE inspection_id = ? AND account_id = ? AND settled_at IS NULL`,
    args: [s.result, amount, now, s.key, s.inspectionId, s.accountId],
  });
  let amount: bigint;
  let rule;
  if (s.result === 'paid') {
    amount = s.config.reward;
    rule = reward({ owner: s.accountId, asset: BOND_ASSET, amount, idempotencyKey: s.key, reference: s.inspectionId, memo: 'inspection verdict matched the outcome' });
  } else {
    const bonded = await money.execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [bondedAccountId(s.accountId)] });
    const have = BigInt((bonded.rows[0]?.balance as bigint | undefined) ?? 0n);
    const want = s.result === 'wrong' ? s.config.wrongSlash : s.config.missSlash;
    amount = have < want ? have : want;
    rule = slash({ owner: s.accountId, asset: BOND_ASSET, amount, idempotencyKey: s.key, reference: s.inspectionId, memo: s.result === 'wrong' ? 'wrong inspection verdict' : 'no inspection verdict by the deadline' });
  }
  if (amount === 0n) {
    // Nothing to pay (a zero reward) or nothing left to slash: settled, with no money moved.
    await money.execute(mark(0n));
    return true;
  }
  if (!rule.ok) throw new Error(`inspection settlement refused by the rules: ${rule.problem}`);
  const alongside = [mark(amount), ...(s.result === 'paid' ? [] : [roleStatement(s.accountId, s.minBond)])];
  const posted = await postTransaction(money, rule.spec, { now, alongside });
  if (!posted.ok) {
    log('warn', 'inspection settlement refused by the ledger', { inspection_id: s.inspectionId, account_id: s.accountId, result: s.result, reason: posted.reason });
    return false;
  }
  if (posted.replayed) await money.execute(mark(amount));
  return true;
}

// ── The cron ────────────────────────────────────────────────────────────────────────

export interface InspectionCronResult {
  opened: string[];
  decided: string[];
  settled: number;
}

const CRON_BATCH = 100;

/**
 * Opens inspections of decided challenges that have none (an earlier attempt failed), decides
 * those past their reveal deadline, and settles decided ones still unsettled (an empty pool, a
 * failure half-way). Each selects by state, so an overlapping or failed run is picked up by the next.
 */
export async function runInspectionCron(env: Bindings, now = Date.now()): Promise<InspectionCronResult> {
  const { client } = connection(env);
  const result: InspectionCronResult = { opened: [], decided: [], settled: 0 };
  const missing = await client.execute({
    sql: `SELECT c.id FROM node_challenges c WHERE c.decision IS NOT NULL AND c.decided_at > ?
            AND NOT EXISTS (SELECT 1 FROM inspections i WHERE i.challenge_id = c.id) ORDER BY c.decided_at LIMIT ?`,
    args: [now - INSPECTION_LOOKBACK_MS, CRON_BATCH],
  });
  for (const r of missing.rows) {
    try {
      const id = await openInspection(env, String(r.id), now);
      if (id) result.opened.push(id);
    } catch (err) {
      log('warn', 'inspection not opened', { challenge_id: String(r.id), error: String(err) });
    }
  }
  const due = await client.execute({ sql: `SELECT id FROM inspections WHERE status = 'open' AND reveal_deadline < ? ORDER BY reveal_deadline LIMIT ?`, args: [now, CRON_BATCH] });
  for (const r of due.rows) if (await decideInspection(env, String(r.id), now)) result.decided.push(String(r.id));
  const unsettled = await client.execute({ sql: `SELECT id FROM inspections WHERE status = 'decided' AND settled_at IS NULL ORDER BY decided_at LIMIT ?`, args: [CRON_BATCH] });
  for (const r of unsettled.rows) result.settled += await settleInspection(env, String(r.id), now);
  return result;
}

/** Decided challenges older than this get no inspection from the cron (and their reports are shown without one). */
export const INSPECTION_LOOKBACK_MS = 7 * 86_400_000;

/**
 * Whether a challenge's report may be shown: once its inspection is decided, so that no inspector
 * can copy the platform's decision; or, with no inspection at all, once the cron no longer opens
 * one (decided before inspections existed, or longer ago than it looks back).
 */
export async function challengeReportReleased(env: Bindings, challengeId: string, decidedAt: number, now = Date.now()): Promise<boolean> {
  const rs = await connection(env).client.execute({
    sql: `SELECT status FROM inspections WHERE challenge_id = ?`,
    args: [challengeId],
  });
  const status = rs.rows[0]?.status;
  return status === undefined ? decidedAt < now - INSPECTION_LOOKBACK_MS : status === 'decided';
}

/** The same rule as SQL over a challenge's id and decision time, for lists. */
export function releasedSql(idColumn: unknown, decidedAtColumn: unknown, now: number) {
  return sql`(EXISTS (SELECT 1 FROM inspections i WHERE i.challenge_id = ${idColumn} AND i.status = 'decided')
    OR (NOT EXISTS (SELECT 1 FROM inspections i WHERE i.challenge_id = ${idColumn}) AND ${decidedAtColumn} < ${now - INSPECTION_LOOKBACK_MS}))`;
}
