// Inspectors and inspections (docs/inspections.md, "Inspectors"). Private: an inspector's key, its
// assignments, its commitments and reveals. Public (any origin, no credentials): decided
// inspections' signed reports and a node's list of them. Operators: decoys and the pool's mint.
import { createRoute, z } from '@hono/zod-openapi';
import { and, asc, desc, eq, isNotNull } from 'drizzle-orm';
import { cors } from 'hono/cors';
import { guard } from '../auth/guard.ts';
import { requireActiveAccount } from '../auth/middleware.ts';
import { limitReportReads } from '../auth/rate-limit.ts';
import { keyRing } from '../auth/tokens.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import {
  AssignmentSchema,
  BatchItemErrorSchema,
  InspectorKeyBodySchema,
  VerdictCommitmentBatchSchema,
  VerdictCommitmentBodySchema,
  VerdictRevealBatchSchema,
  VerdictRevealBodySchema,
} from '../contracts/inspector-verdicts.ts';
import { MoneyString, amountSchema, money } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import { limitQuery, olderThan, PageQuery, toPage } from '../db/pagination.ts';
import { inspectionAssignments, inspections, inspectorKeys, nodeChallenges, nodes } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { requireIdempotencyKey } from '../http/idempotency.ts';
import { router } from '../http/router.ts';
import { newId } from '../ids.ts';
import { buildInspectionReport, signInspectionReport } from '../inspections/inspection-report.ts';
import { commitVerdict, commitVerdicts, openAssignments, plantDecoy, revealOpen, revealVerdict, revealVerdicts, type BatchRefusal } from '../inspections/inspections.ts';
import { isUsableNodeKey } from '../nodes/identity.ts';
import { platformAccount, accountId as ledgerAccountId } from '../ledger/accounts.ts';
import { postOrThrow } from '../ledger/api.ts';
import { mint } from '../ledger/rules.ts';
import { parseAmount } from '../money/amount.ts';

const app = router();
const publicCors = cors({ origin: '*', allowMethods: ['GET', 'HEAD', 'OPTIONS'], maxAge: 86_400 });
// The batch routes are private: they share the public report's path shape, not its CORS.
const BATCH_PATHS = new Set(['commitments', 'verdicts']);
app.use('/inspections/:id', (c, next) => (BATCH_PATHS.has(c.req.param('id')) ? next() : publicCors(c, next)));
app.use('/nodes/:id/inspections', publicCors);

const params = z.object({ id: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -') });
const iso = (ms: number) => new Date(ms).toISOString();

app.openapi(
  createRoute({
    method: 'put',
    path: '/inspectors/key',
    tags: ['inspections'],
    summary: "Register (or replace) the Ed25519 key that signs this account's verdicts",
    security: BEARER,
    middleware: [...guard('inspections:write'), requireActiveAccount()],
    request: { body: jsonBodyOf(InspectorKeyBodySchema) },
    responses: { 200: jsonContent(z.object({ public_key: z.string(), updated_at: z.string() }), 'Registered'), ...errorResponses(400, 401, 403, 409) },
  }),
  async (c) => {
    const { public_key: publicKey } = c.req.valid('json');
    const accountId = c.get('principal').accountId;
    if (!(await isUsableNodeKey(publicKey))) throw new ApiError('validation_failed', 'invalid body: public_key: not an Ed25519 public key');
    const db = c.get('db');
    // A node's key is its own; an inspector key is one account's (one owner, one voice).
    const [node] = await db.select({ id: nodes.id }).from(nodes).where(eq(nodes.publicKey, publicKey)).limit(1);
    if (node) throw new ApiError('conflict', 'this key is a node key; an inspector needs a key of its own');
    const now = Date.now();
    const rs = await connection(c.env).client.execute({
      sql: `INSERT INTO inspector_keys (account_id, public_key, created_at, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (account_id) DO UPDATE SET public_key = excluded.public_key, updated_at = excluded.updated_at
            WHERE NOT EXISTS (SELECT 1 FROM inspector_keys WHERE public_key = excluded.public_key AND account_id <> excluded.account_id)`,
      args: [accountId, publicKey, now, now],
    }).catch(() => ({ rowsAffected: 0 }));
    if (rs.rowsAffected === 0) {
      const [mine] = await db.select().from(inspectorKeys).where(eq(inspectorKeys.accountId, accountId));
      if (mine?.publicKey !== publicKey) throw new ApiError('conflict', 'this key is registered by another account');
    }
    return c.json({ public_key: publicKey, updated_at: iso(now) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/inspectors/assignments',
    tags: ['inspections'],
    summary: "The caller's open inspections: each transcript to re-check, and whether to commit or reveal now",
    security: BEARER,
    middleware: guard('inspections:read'),
    request: { query: z.object({ limit: limitQuery(50, 20) }).strict() },
    responses: { 200: jsonContent(z.object({ data: z.array(AssignmentSchema) }), 'Assignments'), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const now = Date.now();
    const rows = await openAssignments(c.env, c.get('principal').accountId, c.req.valid('query').limit, now);
    // Each transcript is the stored JSON text, spliced in as is: parsing and re-serialising
    // hundreds of kilobytes per assignment would be most of a poll's cost.
    const items = rows.map((a) => {
      const fixed = JSON.stringify({
        inspection_id: a.inspectionId,
        phase: revealOpen(a, now) ? 'reveal' : 'commit',
        commit_deadline: iso(a.commitDeadline),
        reveal_deadline: iso(a.revealDeadline),
        committed: a.committedAt !== null,
        revealed: a.revealedAt !== null,
      });
      return `${fixed.slice(0, -1)},"transcript":${a.transcriptJson ?? 'null'}}`;
    });
    // The same shape as the schema's (the stored transcripts were validated when made): typed as never, as a raw body.
    return c.body(`{"data":[${items.join(',')}]}`, 200, { 'content-type': 'application/json' }) as never;
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/inspections/{id}/commitment',
    tags: ['inspections'],
    summary: 'Commit to a verdict: SHA-256 of the commit domain, a 32-byte salt and the signed verdict (revealed later)',
    security: BEARER,
    middleware: [...guard('inspections:write'), requireActiveAccount()],
    request: { params, body: jsonBodyOf(VerdictCommitmentBodySchema) },
    responses: {
      200: jsonContent(z.object({ inspection_id: z.string(), committed_at: z.string(), reveal_from: z.string() }), 'Committed'),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const now = Date.now();
    const a = await commitVerdict(c.env, id, c.get('principal').accountId, c.req.valid('json').commitment, now);
    return c.json({ inspection_id: id, committed_at: iso(a.committedAt), reveal_from: iso(a.revealFrom) }, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/inspections/{id}/verdict',
    tags: ['inspections'],
    summary: 'Reveal the committed verdict with its salt and the inspector key’s signature',
    security: BEARER,
    middleware: [...guard('inspections:write'), requireActiveAccount()],
    request: { params, body: jsonBodyOf(VerdictRevealBodySchema) },
    responses: { 200: jsonContent(z.object({ inspection_id: z.string(), decided: z.boolean() }), 'Revealed'), ...errorResponses(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const { decided } = await revealVerdict(c.env, id, c.get('principal').accountId, c.req.valid('json'));
    return c.json({ inspection_id: id, decided }, 200);
  },
);

const refusalOf = (r: BatchRefusal) => ({ inspection_id: r.inspectionId, ok: false as const, error: { code: r.error.code, message: r.error.message } });
const Refused = z.object({ inspection_id: z.string(), ok: z.literal(false), error: BatchItemErrorSchema });

app.openapi(
  createRoute({
    method: 'post',
    path: '/inspections/commitments',
    tags: ['inspections'],
    summary: 'Commit to verdicts of up to 50 inspections at once; each item is committed or refused (with the single route’s error) on its own, in request order',
    security: BEARER,
    middleware: [...guard('inspections:write'), requireActiveAccount()],
    request: { body: jsonBodyOf(VerdictCommitmentBatchSchema) },
    responses: {
      200: jsonContent(
        z.object({
          results: z.array(z.union([z.object({ inspection_id: z.string(), ok: z.literal(true), committed_at: z.string(), reveal_from: z.string() }), Refused])),
        }),
        'One result per item',
      ),
      ...errorResponses(400, 401, 403),
    },
  }),
  async (c) => {
    const items = c.req.valid('json').items.map((i) => ({ inspectionId: i.inspection_id, commitment: i.commitment }));
    const results = await commitVerdicts(c.env, c.get('principal').accountId, items);
    return c.json(
      { results: results.map((r) => (r.ok ? { inspection_id: r.inspectionId, ok: true as const, committed_at: iso(r.committedAt), reveal_from: iso(r.revealFrom) } : refusalOf(r))) },
      200,
    );
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/inspections/verdicts',
    tags: ['inspections'],
    summary: 'Reveal the committed verdicts of up to 50 inspections at once; each item is revealed or refused (with the single route’s error) on its own, in request order',
    security: BEARER,
    middleware: [...guard('inspections:write'), requireActiveAccount()],
    request: { body: jsonBodyOf(VerdictRevealBatchSchema) },
    responses: {
      200: jsonContent(z.object({ results: z.array(z.union([z.object({ inspection_id: z.string(), ok: z.literal(true), decided: z.boolean() }), Refused])) }), 'One result per item'),
      ...errorResponses(400, 401, 403),
    },
  }),
  async (c) => {
    const items = c.req.valid('json').items.map(({ inspection_id, ...body }) => ({ inspectionId: inspection_id, body }));
    const results = await revealVerdicts(c.env, c.get('principal').accountId, items);
    return c.json({ results: results.map((r) => (r.ok ? { inspection_id: r.inspectionId, ok: true as const, decided: r.decided } : refusalOf(r))) }, 200);
  },
);

const ReportResponse = z
  .object({
    report: z.record(z.string(), z.unknown()).openapi({ description: 'The report; its canonical JSON is the JWS payload' }),
    jws: z.string().openapi({ description: 'Compact JWS (ES256, kid of /.well-known/jwks.json, typ gridlease-inspection-report) over the canonical report' }),
  })
  .openapi('InspectionReport');

app.openapi(
  createRoute({
    method: 'get',
    path: '/inspections/{id}',
    tags: ['inspections'],
    summary: "A decided inspection's platform-signed report: transcript, draw, verdicts, outcome",
    request: { params },
    responses: { 200: jsonContent(ReportResponse, 'The report and its signature'), ...errorResponses(400, 404, 429) },
  }),
  async (c) => {
    await limitReportReads(c);
    const { id } = c.req.valid('param');
    const db = c.get('db');
    const [row] = await db.select().from(inspections).where(eq(inspections.id, id));
    // An open inspection is not shown: its outcome is not known, and its panel must not be found.
    if (!row || row.status !== 'decided') throw new ApiError('not_found', `no decided inspection ${id}`);
    const assignments = await db.select().from(inspectionAssignments).where(eq(inspectionAssignments.inspectionId, id));
    const [challenge] = row.challengeId ? await db.select().from(nodeChallenges).where(eq(nodeChallenges.id, row.challengeId)) : [];
    const report = buildInspectionReport(row, assignments, challenge ?? null);
    if (!report) throw new ApiError('not_found', `no decided inspection ${id}`);
    const jws = await signInspectionReport(await keyRing(c.env.JWT_PRIVATE_KEYS), report);
    // Settlement may still fill in what each inspector earned: a short cache.
    c.header('Cache-Control', row.settledAt === null ? 'public, max-age=10' : 'public, max-age=300');
    return c.json({ report: report as unknown as Record<string, unknown>, jws }, 200);
  },
);

const InspectionSummary = z
  .object({
    id: z.string(),
    kind: z.enum(['identity', 'capacity']),
    decoy: z.boolean(),
    outcome: z.enum(['pass', 'fail']),
    majority: z.enum(['pass', 'fail']).nullable(),
    decided_at: z.string().datetime(),
  })
  .openapi('InspectionSummary');

app.openapi(
  createRoute({
    method: 'get',
    path: '/nodes/{id}/inspections',
    tags: ['inspections'],
    summary: "A node's decided inspections, newest first; each has a public report",
    request: { params, query: PageQuery },
    responses: {
      200: jsonContent(z.object({ data: z.array(InspectionSummary), next_cursor: z.string().nullable() }).openapi('InspectionList'), 'Decided inspections'),
      ...errorResponses(400, 429),
    },
  }),
  async (c) => {
    await limitReportReads(c);
    const { id } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const db = c.get('db');
    const decided = and(eq(inspections.nodeId, id), eq(inspections.status, 'decided'), isNotNull(inspections.decidedAt));
    const order = { createdAt: inspections.decidedAt, id: inspections.id };
    let after;
    if (cursor) {
      const [ref] = await db.select({ decidedAt: inspections.decidedAt, id: inspections.id }).from(inspections).where(and(decided, eq(inspections.id, cursor)));
      if (!ref) throw new ApiError('validation_failed', 'invalid query: cursor: unknown cursor');
      after = olderThan(order, { createdAt: ref.decidedAt!, id: ref.id });
    }
    // Any well-formed id answers, known or not: the list must not tell which node ids exist.
    const rows = await db
      .select({ id: inspections.id, kind: inspections.kind, decoy: inspections.decoy, outcome: inspections.outcome, majority: inspections.majority, decidedAt: inspections.decidedAt })
      .from(inspections)
      .where(and(decided, after))
      .orderBy(desc(inspections.decidedAt), desc(inspections.id))
      .limit(limit + 1);
    const { page, nextCursor } = toPage(rows, limit);
    c.header('Cache-Control', 'public, max-age=30');
    return c.json(
      {
        data: page.map((r) => ({ id: r.id, kind: r.kind, decoy: r.decoy, outcome: r.outcome!, majority: r.majority ?? null, decided_at: iso(r.decidedAt!) })),
        next_cursor: nextCursor,
      },
      200,
    );
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/admin/inspections/decoys',
    tags: ['admin'],
    summary: 'Plant a decoy inspection now (known good or known bad); the cron plants them at INSPECTION_DECOY_PPM',
    security: BEARER,
    middleware: guard('inspections:write', 'admin'),
    request: { body: jsonBodyOf(z.object({ expect: z.enum(['pass', 'fail']) }).strict().openapi('DecoyRequest')) },
    responses: { 201: jsonContent(z.object({ inspection_id: z.string() }), 'Planted'), ...errorResponses(400, 401, 403) },
  }),
  async (c) => c.json({ inspection_id: await plantDecoy(c.env, c.req.valid('json').expect) }, 201),
);

const GENESIS = ledgerAccountId(platformAccount('GRID', 'genesis'));
const SUPPLY_EXCEEDED = '{supply exceeded';

app.openapi(
  createRoute({
    method: 'post',
    path: '/admin/rewards-pool/mint',
    tags: ['admin'],
    summary: 'Issue GRID into the rewards pool (genesis → rewards_pool), within GRID_TOTAL_SUPPLY; audited, once per Idempotency-Key',
    security: BEARER,
    middleware: [...guard('funds:write', 'admin'), requireIdempotencyKey()],
    request: {
      body: jsonBodyOf(z.object({ amount: amountSchema(), reason: z.string().trim().min(3).max(500) }).strict().openapi('RewardsPoolMint')),
    },
    responses: {
      201: jsonContent(z.object({ transaction_id: z.string(), minted_total: MoneyString, total_supply: MoneyString }), 'Minted'),
      200: jsonContent(z.object({ transaction_id: z.string(), minted_total: MoneyString, total_supply: MoneyString }), 'The same request again'),
      ...errorResponses(400, 401, 403, 409),
    },
  }),
  async (c) => {
    const { amount, reason } = c.req.valid('json');
    const actor = c.get('principal').accountId;
    const supply = parseAmount(c.env.GRID_TOTAL_SUPPLY ?? '');
    if (!supply.ok) throw new Error('GRID_TOTAL_SUPPLY is not an amount');
    const { money: client } = connection(c.env);
    const key = `mint:${actor}:${c.get('idempotencyKey')}`;
    const now = Date.now();
    // The supply guard rides in the same batch: the audit row is inserted only while the total
    // minted (genesis's negative balance, after this mint's postings) stays within the supply,
    // and the batch fails (changing nothing) when it is not.
    const guardRow = {
      sql: `INSERT INTO audit_log (id, actor_account_id, action, target, reason, created_at)
            SELECT ?, ?, ?, 'platform:GRID:rewards_pool', ?, ?
            WHERE -(SELECT balance FROM ledger_accounts WHERE id = ?) <= ?`,
      args: [newId('aud'), actor, `ledger.mint GRID ${money(amount)}`, reason, now, GENESIS, supply.value],
    };
    // Fails the batch when the guard inserted nothing: json() of a malformed text is an error.
    const check = { sql: `SELECT CASE WHEN changes() = 0 THEN json('${SUPPLY_EXCEEDED}') END`, args: [] };
    const { transaction, replayed } = await postOrThrow(client, mint({ asset: 'GRID', amount, idempotencyKey: key, reference: null, memo: reason }), {
      now,
      alongside: [guardRow, check],
    }).catch((err: unknown) => {
      if (err instanceof ApiError || !String((err as Error)?.message ?? err).includes('malformed JSON')) throw err;
      throw new ApiError('conflict', `minting ${money(amount)} GRID would exceed the total supply of ${money(supply.value)}`);
    });
    const minted = await client.execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [GENESIS] });
    const total = -BigInt((minted.rows[0]?.balance as bigint | undefined) ?? 0n);
    return c.json({ transaction_id: transaction.id, minted_total: money(total), total_supply: money(supply.value) }, replayed ? 200 : 201);
  },
);

export default app;
