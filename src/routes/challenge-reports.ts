// Public reports of decided platform challenges: no credentials, any origin, cacheable (a decided
// challenge never changes), shown once the challenge's inspection is decided. Each report is signed by the platform (src/inspections/report.ts), so
// a copy kept anywhere can be re-checked offline with `gridlease-runner verify-report`.
import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq, isNotNull, sql } from 'drizzle-orm';
import { limitReportReads } from '../auth/rate-limit.ts';
import { cors } from 'hono/cors';
import { keyRing } from '../auth/tokens.ts';
import { errorResponses, jsonContent } from '../contracts/common.ts';
import { olderThan, PageQuery, toPage } from '../db/pagination.ts';
import { nodeChallenges, nodes } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { challengeReportReleased, releasedSql } from '../inspections/inspections.ts';
import { buildReport, signReport } from '../inspections/report.ts';

const CACHE = 'public, max-age=300';
const params = z.object({ id: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -') });

const app = router();
const publicCors = cors({ origin: '*', allowMethods: ['GET', 'HEAD', 'OPTIONS'], maxAge: 86_400 });
app.use('/challenges/:id/report', publicCors);
app.use('/nodes/:id/reports', publicCors);

const ReportResponse = z
  .object({
    report: z.record(z.string(), z.unknown()).openapi({ description: 'The report; its canonical JSON is the JWS payload' }),
    jws: z.string().openapi({ description: 'Compact JWS (ES256, kid of /.well-known/jwks.json) over the canonical report' }),
  })
  .openapi('ChallengeReport');

app.openapi(
  createRoute({
    method: 'get',
    path: '/challenges/{id}/report',
    tags: ['inspections'],
    summary: "A decided challenge's platform-signed report, re-checkable offline",
    request: { params },
    responses: { 200: jsonContent(ReportResponse, 'The report and its signature'), ...errorResponses(400, 404, 429) },
  }),
  async (c) => {
    await limitReportReads(c);
    const { id } = c.req.valid('param');
    const db = c.get('db');
    const [found] = await db
      .select({ row: nodeChallenges, key: nodes.publicKey })
      .from(nodeChallenges)
      .leftJoin(nodes, eq(nodes.id, nodeChallenges.nodeId))
      .where(eq(nodeChallenges.id, id));
    const report = found ? buildReport(found.row, found.key ?? null) : null;
    // Undecided and superseded challenges are not reported: there is no decision to show yet (or
    // ever); nor is a decided one until its inspection is decided, so no inspector can copy it.
    if (!report || !(await challengeReportReleased(c.env, id, report ? found!.row.decidedAt! : 0))) throw new ApiError('not_found', `no decided challenge ${id}`);
    const jws = await signReport(await keyRing(c.env.JWT_PRIVATE_KEYS), report);
    c.header('Cache-Control', CACHE);
    return c.json({ report: report as unknown as Record<string, unknown>, jws }, 200);
  },
);

const ReportSummary = z
  .object({
    id: z.string(),
    kind: z.enum(['identity', 'capacity']),
    status: z.enum(['passed', 'failed', 'expired']),
    decided_at: z.string().datetime(),
  })
  .openapi('ChallengeReportSummary');

app.openapi(
  createRoute({
    method: 'get',
    path: '/nodes/{id}/reports',
    tags: ['inspections'],
    summary: "A node's decided challenges, newest decision first; each has a report",
    request: { params, query: PageQuery },
    responses: {
      200: jsonContent(z.object({ data: z.array(ReportSummary), next_cursor: z.string().nullable() }).openapi('ChallengeReportList'), 'Decided challenges'),
      ...errorResponses(400, 429),
    },
  }),
  async (c) => {
    await limitReportReads(c);
    const { id } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const db = c.get('db');
    // Any well-formed id answers, known or not: the list must not tell which node ids exist (a
    // decoy inspection's node is made up).
    const decided = and(
      eq(nodeChallenges.nodeId, id),
      isNotNull(nodeChallenges.decidedAt),
      sql`${releasedSql(nodeChallenges.id, nodeChallenges.decidedAt, Date.now())}`,
    );
    const order = { createdAt: nodeChallenges.decidedAt, id: nodeChallenges.id };
    let after;
    if (cursor) {
      const [ref] = await db.select({ decidedAt: nodeChallenges.decidedAt, id: nodeChallenges.id }).from(nodeChallenges).where(and(decided, eq(nodeChallenges.id, cursor)));
      if (!ref) throw new ApiError('validation_failed', 'invalid query: cursor: unknown cursor');
      after = olderThan(order, { createdAt: ref.decidedAt!, id: ref.id });
    }
    const rows = await db
      .select({ id: nodeChallenges.id, kind: nodeChallenges.kind, status: nodeChallenges.status, decidedAt: nodeChallenges.decidedAt })
      .from(nodeChallenges)
      .where(and(decided, after))
      .orderBy(desc(nodeChallenges.decidedAt), desc(nodeChallenges.id))
      .limit(limit + 1);
    const { page, nextCursor } = toPage(rows, limit);
    c.header('Cache-Control', 'public, max-age=30');
    return c.json(
      {
        data: page.map((r) => ({ id: r.id, kind: r.kind, status: r.status as 'passed' | 'failed' | 'expired', decided_at: new Date(r.decidedAt!).toISOString() })),
        next_cursor: nextCursor,
      },
      200,
    );
  },
);

export default app;
