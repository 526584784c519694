// The runner's side of the API: registration with a one-time join token, heartbeats with the
// node token, lease events. Node tokens are JWTs for the runner audience carrying the node's
// token version; re-registering or revoking bumps the version and older tokens stop working.
import { createRoute, z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { and, eq, inArray, isNull, ne, sql } from 'drizzle-orm';
import type { AppEnv } from '../app-env.ts';
import { sha256Hex } from '../auth/encoding.ts';
import { limitCredentialAttempts } from '../auth/rate-limit.ts';
import { keyRing, signNodeToken, verifyNodeToken, type NodeClaims } from '../auth/tokens.ts';
import { matchGpuModel } from '../catalog/gpus.ts';
import { isRegion } from '../catalog/regions.ts';
import { errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import {
  HeartbeatRequestSchema,
  HeartbeatResponseSchema,
  LeaseEventSchema,
  LOG_MAX_BATCH_CHARS,
  LogBatchRequestSchema,
  LogBatchResponseSchema,
  PublicHostRequestSchema,
  RegisterRequestSchema,
  RegisterResponseSchema,
} from '../contracts/runner.ts';
import { joinTokens, nodeGpus, nodes } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { newId } from '../ids.ts';
import { heartbeatConfig } from '../heartbeats/config.ts';
import { lease } from '../durable/lease.ts';
import { isUsableNodeKey } from '../nodes/identity.ts';
import { collectorFor, sameGpuSet } from '../nodes/registry.ts';
import { publishNodeTrust } from '../nodes/trust.ts';
import { log } from '../http/log.ts';
import { challengeConfig } from '../inspections/challenge-terms.ts';
import { issueBoth } from '../inspections/issue.ts';
import { describeUrlProblem, hostProblem } from '../webhooks/url.ts';

const NODE_TOKEN_TTL_S = 90 * 86_400;
const NODE_BEARER = [{ nodeToken: [] }];

export type RunnerEnv = AppEnv & { Variables: AppEnv['Variables'] & { node: NodeClaims } };

const CHALLENGE = { headers: { 'WWW-Authenticate': 'Bearer realm="gridlease-runner"' } };
const REVOKED_MESSAGE = 'node token was revoked (the node was revoked or registered again); run `gridlease-runner join` again';

/**
 * Verifies the node token's signature and then that its version is still the node's current
 * one, where that is known: `database` reads libSQL (lease events: rare, and they move money);
 * `collector` leaves it to the node's Collector, which holds the version in memory and is
 * told of every re-registration and revocation (heartbeats: too many for a read each).
 */
export function nodeAuth(current: 'database' | 'collector'): MiddlewareHandler<RunnerEnv> {
  return async function nodeAuth(c, next) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
    if (!match) throw new ApiError('unauthorized', 'missing node token', CHALLENGE);
    const result = await verifyNodeToken(await keyRing(c.env.JWT_PRIVATE_KEYS), match[1]!, { issuer: c.env.JWT_ISSUER, now: Date.now() });
    if (!result.ok) throw new ApiError('unauthorized', `node token is ${result.reason}`, CHALLENGE);
    if (current === 'database') {
      const [row] = await c.get('db').select({ version: nodes.tokenVersion, status: nodes.status }).from(nodes).where(eq(nodes.id, result.claims.nodeId));
      if (!row || row.status === 'revoked' || row.version !== result.claims.version) throw new ApiError('unauthorized', REVOKED_MESSAGE, CHALLENGE);
    }
    c.set('node', result.claims);
    await next();
  };
}

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/register',
    tags: ['runner'],
    summary: 'Register a machine with a one-time join token; returns the node token',
    request: { body: jsonBodyOf(RegisterRequestSchema) },
    responses: { 201: jsonContent(RegisterResponseSchema, 'Registered'), ...errorResponses(400, 401, 409, 429) },
  }),
  async (c) => {
    const body = c.req.valid('json');
    await limitCredentialAttempts(c, 'join', null);
    if (!isRegion(body.region)) throw new ApiError('validation_failed', `unknown region "${body.region}"; see GET /v1/catalog/regions`);
    // The server decides what each card is; the runner's own mapping is only a hint.
    const gpus = body.machine.gpus.map((g) => ({ ...g, model: matchGpuModel(g.name, g.memory_mib)?.id ?? null }));
    if (!gpus.some((g) => g.model !== null)) {
      throw new ApiError('validation_failed', `no GPU on this machine is in the catalog (${[...new Set(gpus.map((g) => g.name))].join(', ')})`);
    }
    if (new Set(gpus.map((g) => g.index)).size !== gpus.length || new Set(gpus.map((g) => g.uuid)).size !== gpus.length) {
      throw new ApiError('validation_failed', 'GPU indices and UUIDs must be unique');
    }
    if (!(await isUsableNodeKey(body.public_key))) throw new ApiError('validation_failed', 'public_key is not a usable Ed25519 public key');

    const db = c.get('db');
    const now = Date.now();
    const [token] = await db.select().from(joinTokens).where(eq(joinTokens.hash, await sha256Hex(body.join_token)));
    if (!token) throw new ApiError('unauthorized', 'join token is invalid');
    if (token.usedAt !== null) throw new ApiError('unauthorized', 'join token was already used; create a new one');
    if (token.expiresAt <= now) throw new ApiError('unauthorized', 'join token has expired; create a new one');

    // The same cards registered again by their owner are the same node: re-registration
    // keeps the node and its history, and invalidates the old token.
    const uuids = gpus.map((g) => g.uuid);
    const claimed = await db
      .select({ nodeId: nodeGpus.nodeId, accountId: nodes.accountId, region: nodes.region, tokenVersion: nodes.tokenVersion })
      .from(nodeGpus)
      .innerJoin(nodes, eq(nodes.id, nodeGpus.nodeId))
      .where(and(inArray(nodeGpus.uuid, uuids), ne(nodes.status, 'revoked')));
    if (claimed.some((r) => r.accountId !== token.accountId)) throw new ApiError('conflict', 'these GPUs are registered to another account');
    const existing = [...new Set(claimed.map((r) => r.nodeId))];
    if (existing.length > 1) throw new ApiError('conflict', `these GPUs belong to several nodes (${existing.join(', ')}); revoke them first`);
    const nodeId = existing[0] ?? newId('node');

    const [used] = await db
      .update(joinTokens)
      .set({ usedAt: now, nodeId })
      .where(and(eq(joinTokens.id, token.id), isNull(joinTokens.usedAt)))
      .returning();
    if (!used) throw new ApiError('unauthorized', 'join token was already used; create a new one');

    // A node moving to another region leaves its old region's Collector trusting the version it
    // last saw: that Collector is told first, so no failure after this point leaves the old
    // token working there (the version is the one the update below gives the node).
    const previous = claimed.find((r) => r.nodeId === nodeId);
    if (previous && previous.region !== body.region) {
      await collectorFor(c.env, nodeId, previous.region).stub.revoke(nodeId, previous.tokenVersion + 1);
    }

    // Verification vouches for the cards inspected: other cards (count, models or UUIDs) are unverified.
    const gpusChanged = existing[0] ? !sameGpuSet(await db.select().from(nodeGpus).where(eq(nodeGpus.nodeId, nodeId)), gpus) : false;
    const { gpus: _gpus, ...machine } = body.machine;
    const [node] = existing[0]
      ? await db
          .update(nodes)
          .set({
            region: body.region,
            hostname: body.machine.hostname,
            machine,
            status: 'registered',
            tokenVersion: sql`${nodes.tokenVersion} + 1`,
            publicKey: body.public_key,
            ...(gpusChanged ? { verified: false } : {}),
          })
          .where(eq(nodes.id, nodeId))
          .returning()
      : await db
          .insert(nodes)
          .values({ id: nodeId, accountId: token.accountId, region: body.region, hostname: body.machine.hostname, machine, publicKey: body.public_key })
          .returning();
    await db.batch([
      db.delete(nodeGpus).where(eq(nodeGpus.nodeId, nodeId)),
      db.insert(nodeGpus).values(gpus.map((g) => ({ nodeId, index: g.index, uuid: g.uuid, name: g.name, model: g.model, memoryMib: g.memory_mib, driver: g.driver }))),
    ]);
    await collectorFor(c.env, nodeId, node!.region).stub.revoke(nodeId, node!.tokenVersion);
    if (gpusChanged) {
      // The join token is spent, so a failure here must not fail the join: the node's next
      // heartbeat batch sends its books the trust libSQL now holds.
      await publishNodeTrust(c.env, nodeId).catch((err) => log('warn', 'node trust not published after a change of GPUs', { node_id: nodeId, error: String(err) }));
    }

    // Every (re-)registration is challenged; the join token is spent, so a failure is only logged.
    if (challengeConfig(c.env).onJoin) {
      await issueBoth(c.env, db, { id: nodeId, region: node!.region }, now).catch((err) =>
        log('warn', 'challenges not issued at registration', { node_id: nodeId, error: String(err) }),
      );
    }

    const nodeToken = await signNodeToken(
      await keyRing(c.env.JWT_PRIVATE_KEYS),
      { nodeId, region: node!.region, version: node!.tokenVersion },
      { issuer: c.env.JWT_ISSUER, ttlSeconds: NODE_TOKEN_TTL_S, now },
    );
    c.header('Cache-Control', 'no-store');
    return c.json({ node_id: nodeId, node_token: nodeToken, heartbeat_interval_s: heartbeatConfig(c.env).intervalS }, 201);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/heartbeats',
    tags: ['runner'],
    summary: "A node's heartbeat; the reply carries its pending commands",
    security: NODE_BEARER,
    middleware: [nodeAuth('collector')] as const,
    request: { body: jsonBodyOf(HeartbeatRequestSchema) },
    responses: { 202: jsonContent(HeartbeatResponseSchema, 'Taken'), ...errorResponses(400, 401, 403, 413, 429) },
  }),
  async (c) => {
    const hb = c.req.valid('json');
    const node = (c as unknown as Context<RunnerEnv>).get('node');
    if (hb.node_id !== node.nodeId) throw new ApiError('forbidden', 'this node token belongs to another node');
    const { stub, shard } = collectorFor(c.env, node.nodeId, node.region);
    const outcome = await stub.heartbeat({ region: node.region, shard, tokenVersion: node.version, hb });
    switch (outcome.status) {
      case 'revoked':
        throw new ApiError('unauthorized', REVOKED_MESSAGE, CHALLENGE);
      case 'too_fast': {
        const retryAfter = Math.max(1, Math.ceil(outcome.retryAfterMs / 1000));
        throw new ApiError('rate_limited', `heartbeats too frequent; next in ${retryAfter} s`, { headers: { 'Retry-After': String(retryAfter) } });
      }
      default:
        return c.json({ accepted: outcome.status === 'accepted', commands: outcome.commands, next_interval_s: outcome.nextIntervalS }, 202);
    }
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/leases/{id}/events',
    tags: ['runner'],
    summary: 'Lease events from the runner (started, failed, exited)',
    security: NODE_BEARER,
    middleware: [nodeAuth('database')] as const,
    request: { params: z.object({ id: z.string().max(64) }), body: jsonBodyOf(LeaseEventSchema) },
    responses: { 202: jsonContent(z.object({ received: z.literal(true) }), 'Recorded'), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const ev = c.req.valid('json');
    const node = (c as unknown as Context<RunnerEnv>).get('node');
    const id = c.req.valid('param').id;
    const outcome = await lease(c.env, id).event(node.nodeId, ev);
    if (!outcome.ok) throw new ApiError('not_found', `no lease ${id} on this node`);
    return c.json({ received: true as const }, 202);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/leases/{id}/logs',
    tags: ['runner'],
    summary: "A batch of a workload's log lines, in seq order; answers the seq it expects next",
    description:
      'Lines below the stored next seq are dropped as a retry; a first seq above it counts the gap as lost. 409 lease_ended once the lease ended more than LOG_LATE_S ago; 429 with Retry-After over the per-lease rate (keep the lines and retry).',
    security: NODE_BEARER,
    middleware: [nodeAuth('database')] as const,
    request: { params: z.object({ id: z.string().max(64) }), body: jsonBodyOf(LogBatchRequestSchema) },
    responses: { 200: jsonContent(LogBatchResponseSchema, 'Stored'), ...errorResponses(400, 401, 404, 409, 413, 429) },
  }),
  async (c) => {
    const { lines } = c.req.valid('json');
    const chars = lines.reduce((s, l) => s + l.text.length, 0);
    if (chars > LOG_MAX_BATCH_CHARS) throw new ApiError('payload_too_large', `a batch holds at most ${LOG_MAX_BATCH_CHARS} characters of text; this one has ${chars}`);
    const node = (c as unknown as Context<RunnerEnv>).get('node');
    const id = c.req.valid('param').id;
    const outcome = await lease(c.env, id).appendLogs(node.nodeId, lines);
    if (outcome.ok) return c.json({ next_seq: outcome.nextSeq }, 200);
    switch (outcome.reason) {
      case 'not_found':
        throw new ApiError('not_found', `no lease ${id} on this node`);
      case 'out_of_order':
        throw new ApiError('validation_failed', 'lines must be in strictly increasing seq order');
      case 'lease_ended':
        throw new ApiError('lease_ended', `lease ${id} ended; its log takes no more lines`);
      case 'rate_limited':
        throw new ApiError('rate_limited', `lease ${id} is over its log rate; retry after ${outcome.retryAfterS} s`, { headers: { 'Retry-After': String(outcome.retryAfterS) } });
    }
  },
);

/**
 * Why renters could not reach `host`, or null. Development and test servers take local
 * addresses (everything runs on one machine there); elsewhere they would be a broken promise,
 * or an address inside somebody else's network.
 */
export function publicHostProblem(host: string, environment: string): string | null {
  if (environment === 'development' || environment === 'test') return null;
  const bare = host.startsWith('[') ? host : host.includes(':') ? `[${host}]` : host;
  const problem = hostProblem(bare);
  return problem ? `public_host ${describeUrlProblem(problem)}` : null;
}

app.openapi(
  createRoute({
    method: 'put',
    path: '/public-host',
    tags: ['runner'],
    summary: "How renters reach this node's workloads (gridlease-runner --public-host); null when they cannot",
    security: NODE_BEARER,
    middleware: [nodeAuth('database')] as const,
    request: { body: jsonBodyOf(PublicHostRequestSchema) },
    responses: { 200: jsonContent(z.object({ public_host: z.string().nullable() }), 'Stored'), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const raw = c.req.valid('json').public_host;
    const host = raw === null ? null : raw.toLowerCase().replace(/\.$/, '');
    if (host !== null) {
      const problem = publicHostProblem(host, c.env.ENVIRONMENT);
      if (problem) throw new ApiError('validation_failed', problem);
    }
    const node = (c as unknown as Context<RunnerEnv>).get('node');
    await c.get('db').update(nodes).set({ publicHost: host }).where(eq(nodes.id, node.nodeId));
    return c.json({ public_host: host }, 200);
  },
);

export default app;
