// A lease's workload logs, for its renter only (404 for anyone else, the provider included: the
// output may hold the renter's secrets). Lines live in the Lease object (src/durable/lease-log.ts).
// Mounted at /v1/leases (src/index.ts).
import { createRoute, z } from '@hono/zod-openapi';
import { and, eq } from 'drizzle-orm';
import { guard } from '../auth/guard.ts';
import { BEARER, errorResponses, jsonContent } from '../contracts/common.ts';
import { LOG_MAX_LINE_CHARS } from '../contracts/runner.ts';
import { limitQuery, wholeNumber } from '../db/pagination.ts';
import { leases } from '../db/schema.ts';
import { endedAt, lease, type LeaseRecord } from '../durable/lease.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import type { AppEnv } from '../app-env.ts';
import type { Context } from 'hono';

const app = router();

export const LogLineWire = z
  .object({
    seq: z.number().int(),
    at: z.string(),
    stream: z.enum(['stdout', 'stderr']),
    text: z.string().openapi({ description: `Up to ${LOG_MAX_LINE_CHARS} characters, control characters included: escape them before printing to a terminal` }),
    partial: z.boolean().optional().openapi({ description: 'The line was cut; it continues in the next seq' }),
  })
  .openapi('LogLine');

const LogPageSchema = z
  .object({
    data: z.array(LogLineWire),
    next_seq: z.number().int().openapi({ description: 'Pass as `since` to continue after this page' }),
    ended: z.boolean(),
    exit_code: z.number().int().nullable(),
    lost: z.number().int().openapi({ description: 'Lines the node could not deliver (its spool overflowed); their seqs are missing' }),
    dropped: z.number().int().openapi({ description: 'The oldest lines, dropped beyond the size kept per lease' }),
  })
  .openapi('LeaseLogs');

const Params = z.object({ id: z.string().max(64) });
const SEQ_MAX = 1_000_000_000_000;

/** The lease's record when `me` rented it; 404 otherwise (as for a lease that does not exist). */
async function rented(c: Context<AppEnv>, id: string): Promise<LeaseRecord> {
  const me = c.get('principal').accountId;
  const [row] = await c.get('db').select({ id: leases.id }).from(leases).where(and(eq(leases.id, id), eq(leases.renterId, me)));
  const rec = row ? ((await lease(c.env, id).get()) as LeaseRecord | null) : null;
  if (!rec) throw new ApiError('not_found', `no lease ${id}`);
  return rec;
}

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/logs',
    tags: ['leases'],
    summary: "The workload's output (stdout and stderr lines in order), for the lease's renter",
    description: 'From `since` (a seq) up to `limit` lines, or the last `tail` lines at or after `since`. Kept for 7 days after the lease ends, the newest 8 MiB.',
    security: BEARER,
    middleware: guard('leases:read'),
    request: {
      params: Params,
      query: z.object({ since: wholeNumber(SEQ_MAX).optional(), tail: limitQuery(5000, 100).optional(), limit: limitQuery(5000, 1000) }).strict(),
    },
    responses: { 200: jsonContent(LogPageSchema, 'Lines'), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const q = c.req.valid('query');
    const rec = await rented(c, id);
    // `tail` has a default for the document only: absent, the page runs forward from `since`.
    const tail = c.req.query('tail') === undefined ? undefined : q.tail;
    const page = await lease(c.env, id).readLogs({ since: q.since, tail, limit: q.limit });
    if (!page) throw new ApiError('not_found', `no lease ${id}`);
    return c.json(
      { data: page.lines, next_seq: page.nextSeq, ended: endedAt(rec) !== null, exit_code: rec.exitCode, lost: page.lost, dropped: page.dropped },
      200,
    );
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/logs/stream',
    tags: ['leases'],
    summary: "Follow the workload's output live (Server-Sent Events), for the lease's renter",
    description:
      'Events: `log` (data: a LogLine, id: its seq) from `since` (or after Last-Event-ID) on, then live; `end` (data: {"exit_code"}) once the lease ended and its last lines are out, then the stream closes. A follower that stops reading is disconnected: reconnect with Last-Event-ID to resume. 429 beyond 8 followers per lease.',
    security: BEARER,
    middleware: guard('leases:read'),
    request: { params: Params, query: z.object({ since: wholeNumber(SEQ_MAX).optional() }).strict() },
    responses: {
      200: { description: 'An event stream', content: { 'text/event-stream': { schema: z.string() } } },
      ...errorResponses(400, 401, 403, 404, 429),
    },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    await rented(c, id);
    const lastId = c.req.header('last-event-id');
    if (lastId !== undefined && !/^(0|[1-9][0-9]{0,14})$/.test(lastId.trim())) throw new ApiError('validation_failed', 'Last-Event-ID must be the id of an event of this stream');
    const since = lastId !== undefined ? Number(lastId.trim()) + 1 : (c.req.valid('query').since ?? 0);
    const res = await lease(c.env, id).fetch(new Request(`https://lease/logs/stream?since=${since}`));
    if (res.status === 429) throw new ApiError('rate_limited', 'this lease already has as many log followers as it allows', { headers: { 'Retry-After': '5' } });
    if (res.status !== 200) throw new ApiError('not_found', `no lease ${id}`);
    return new Response(res.body, { status: 200, headers: res.headers });
  },
);

export default app;
