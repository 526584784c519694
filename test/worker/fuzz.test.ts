// Fuzzes every operation of /openapi.json with requests built from its own schemas, valid and
// mutated, and holds each answer to the contract: never a 5xx, every 4xx in the one error shape,
// and a refused request moves nothing (the caller's balances, orders and leases, and the ledger's
// zero sum per asset).
//
// Replay: the cases come from a fixed seed (SEED below, or a FUZZ_SEED binding where one reaches
// the Worker); a failure prints the seed, the route, the case number and the request.
import { env, exports } from 'cloudflare:workers';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connection } from '../../src/db/client.ts';
import { ERROR_CODES } from '../../src/http/errors.ts';
import { AUTH_KINDS, BODY_KINDS, IDEMPOTENCY_KINDS, OTHER_METHODS, build, describeBuilt, materialArbitrary, type Built, type CaseKind } from './fuzz-cases.ts';
import { ROUTES, type Caller, type FuzzContext, type RouteGen } from './fuzz-routes.ts';
import { arbitraryOf, resolve, type OpenApiDoc } from './fuzz-schema.ts';
import { elapse, leased } from './lease-support.ts';
import { ORIGIN, call, fund, json, makeAdmin, registerNode, signUp, type TestAccount } from './support.ts';

const SEED = seedOf((env as unknown as Record<string, unknown>).FUZZ_SEED ?? (globalThis as { process?: { env?: Record<string, string> } }).process?.env?.FUZZ_SEED) ?? 20_261_207;
/** Per request: long enough for a cold Durable Object, short enough that a hang fails. */
const ANSWER_TIMEOUT_MS = 10_000;
const MIN_CASES = 8;
const MAX_CASES = 20;

function seedOf(raw: unknown): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED must be an integer, not ${JSON.stringify(raw)}`);
  return n;
}

/** Each route draws from its own seed, so adding a route does not change another's cases. */
function routeSeed(key: string): number {
  let h = SEED | 0;
  for (const ch of key) h = Math.imul(h ^ ch.charCodeAt(0), 16_777_619);
  return h >>> 0;
}

let doc: OpenApiDoc;
let ctx: FuzzContext;
const stats = new Map<string, { cases: number; ok: number; refused: number; failures: number }>();

function operations(d: OpenApiDoc): string[] {
  return Object.entries(d.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
}

function kindsFor(method: string, op: any, gen: RouteGen): CaseKind[] {
  const params: any[] = op.parameters ?? [];
  const hasPath = params.some((p) => p.in === 'path');
  const kinds: CaseKind[] = ['valid'];
  if (method === 'POST' || method === 'PUT') kinds.push(...BODY_KINDS.filter((k) => k !== 'valid'));
  if (gen.idempotent) kinds.push(...IDEMPOTENCY_KINDS);
  if (gen.as !== 'none') kinds.push(...AUTH_KINDS);
  kinds.push('odd-query', 'wrong-method');
  if (hasPath) kinds.push('odd-path', 'odd-path');
  const filler: CaseKind[] = hasPath ? ['valid', 'odd-query', 'odd-path'] : ['valid', 'odd-query'];
  for (let i = 0; kinds.length < MIN_CASES; i++) kinds.push(filler[i % filler.length]!);
  return kinds.slice(0, MAX_CASES);
}

function callerAccount(as: Caller): TestAccount | undefined {
  if (as === 'none') return undefined;
  return as === 'node' ? ctx.provider : as === 'leaseNode' ? ctx.leaseProvider : ctx[as];
}

function credential(as: Caller): string | undefined {
  if (as === 'node') return ctx.node.token;
  if (as === 'leaseNode') return ctx.leaseNode.token;
  return callerAccount(as)?.apiKey;
}

const money = () => connection(env as never).money;
const rows = () => connection(env as never).client;

/** What a refused request must leave as it was: cheap, the caller's own rows and the ledger's sums. */
async function snapshot(account: TestAccount | undefined) {
  const sums = (await money().execute('SELECT asset, SUM(balance) AS total FROM ledger_accounts GROUP BY asset')).rows.map((r) => [String(r.asset), String(r.total)]);
  if (!account) return { sums };
  const [balances, orders, leases] = await Promise.all([
    call('/v1/balances', { auth: account.apiKey }).then((r) => r.text()),
    rows().execute({ sql: 'SELECT count(*) AS n FROM orders WHERE account_id = ?', args: [account.id] }),
    rows().execute({ sql: 'SELECT id, state FROM leases WHERE renter_id = ? OR provider_id = ? ORDER BY id', args: [account.id, account.id] }),
  ]);
  return { sums, balances, orders: String(orders.rows[0]?.n), leases: leases.rows.map((r) => `${r.id}:${r.state}`).join(',') };
}

/**
 * A snapshot once the caller's state has stopped moving: a request that succeeded may finish its
 * work (a lease's refund, a book's placement) just after it answers, and that is not the next case's doing.
 */
async function settledSnapshot(account: TestAccount | undefined) {
  let last = JSON.stringify(await snapshot(account));
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const next = JSON.stringify(await snapshot(account));
    if (next === last) return JSON.parse(next) as Awaited<ReturnType<typeof snapshot>>;
    last = next;
  }
  throw new Error('the caller\'s state kept changing for 2 s after a successful request');
}

interface Answer {
  status: number;
  requestId: string | null;
  contentType: string;
  text: string;
}

/** Credentials that are no one's: key-shaped, token-shaped, malformed, oversized. */
const GARBAGE_AUTH = [
  'Bearer gl_live_not-a-real-key',
  'Basic Zm9vOmJhcg==',
  'Bearer a.b.c',
  'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhY2NfeCIsInNjb3BlIjoiYWRtaW4ifQ.',
  'Bearer eyJhbGciOiJFZERTQSIsImtpZCI6InRlc3QtY3VycmVudCJ9.e30.AAAA',
  `Bearer ${'k'.repeat(10_000)}`,
  'Bearer',
  'Bearer  %ZZ',
];

function timeout<T>(ms: number, what: string): Promise<T> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms: ${what}`)), ms));
}

/** The method a case sends: the operation's, or for 'wrong-method' another one on the same path. */
function methodOf(method: string, kind: CaseKind, b: Built): string {
  return kind === 'wrong-method' ? OTHER_METHODS.filter((m) => m !== method)[b.path.length % (OTHER_METHODS.length - 1)]! : method;
}

async function send(method: string, b: Built, gen: RouteGen, kind: CaseKind, as: Caller): Promise<Answer> {
  const headers = new Headers(b.headers);
  const cred = credential(as);
  if (kind === 'garbage-auth') headers.set('authorization', GARBAGE_AUTH[b.path.length % GARBAGE_AUTH.length]!);
  else if (kind !== 'no-auth' && cred) headers.set('authorization', `Bearer ${cred}`);
  if (gen.stream && kind === 'valid') headers.set('upgrade', 'websocket');
  // A caller-chosen request id must be kept only when plain, and never break the answer.
  if (kind === 'no-auth') headers.set('x-request-id', b.path.length % 2 ? 'x'.repeat(500) : 'ok-id; evil <script>');
  // Another method on the same path: a 405 or 404 in the error shape, or that method's own route.
  const sent = methodOf(method, kind, b);
  const request = new Request(ORIGIN + b.path + b.query, { method: sent, headers, body: sent === 'GET' ? undefined : b.body });
  const res = await Promise.race([exports.default.fetch(request), timeout<Response>(ANSWER_TIMEOUT_MS, 'headers')]);
  const contentType = res.headers.get('content-type') ?? '';
  const base = { status: res.status, requestId: res.headers.get('x-request-id'), contentType };
  // A stream that opened is the answer; its body never ends.
  if (res.webSocket) {
    res.webSocket.accept();
    res.webSocket.close(1000, 'fuzz');
    return { ...base, text: '' };
  }
  if (contentType.startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { ...base, text: '' };
  }
  return { ...base, text: await Promise.race([res.text(), timeout<string>(ANSWER_TIMEOUT_MS, 'body')]) };
}

/** The contract every answer keeps; returns what is wrong, or nothing. */
function problemWith(a: Answer): string | undefined {
  if (a.status >= 500) return `status ${a.status}: ${a.text.slice(0, 300)}`;
  if (a.status < 400) return undefined;
  let body: any;
  try {
    body = JSON.parse(a.text);
  } catch {
    return `${a.status} body is not JSON (${a.contentType}): ${a.text.slice(0, 200)}`;
  }
  const e = body?.error;
  if (!e || typeof e !== 'object') return `${a.status} without {"error":…}: ${a.text.slice(0, 200)}`;
  if (!(ERROR_CODES as readonly string[]).includes(e.code)) return `${a.status} with unknown code ${JSON.stringify(e.code)}`;
  if (typeof e.message !== 'string' || !e.message) return `${a.status} ${e.code} without a message`;
  if (typeof e.request_id !== 'string' || !e.request_id) return `${a.status} ${e.code} without a request_id`;
  if (a.requestId !== null && e.request_id !== a.requestId) return `${a.status} ${e.code}: request_id ${e.request_id} is not x-request-id ${a.requestId}`;
  if (!a.contentType.startsWith('application/json')) return `${a.status} ${e.code} sent as ${a.contentType}`;
  return undefined;
}

async function fuzzRoute(key: string): Promise<string[]> {
  const gen = ROUTES[key]!;
  const [method, template] = key.split(' ') as [string, string];
  const op = doc.paths[template]?.[method.toLowerCase()];
  if (!op) return [`${key}: in the fuzz table but not in /openapi.json`];

  const params: any[] = (op.parameters ?? []).map((p: any) => resolve(doc, p));
  const realIds = gen.ids?.(ctx) ?? {};
  const pathArbs: Record<string, fc.Arbitrary<string>> = {};
  const queryArbs: Record<string, fc.Arbitrary<string>> = {};
  for (const p of params) {
    const drawn = arbitraryOf(doc, p.schema).map((v) => String(v));
    if (p.in === 'path') {
      const real = realIds[p.name] ?? [];
      const random = fc.oneof(drawn, fc.constantFrom('does-not-exist', 'ord_00000000000000000000000000000000', '5f0c1d9e-3b7a-4c2e-9f1d-2a6b8c4e7d10'));
      pathArbs[p.name] = real.length ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...real) }, { weight: 1, arbitrary: random }) : random;
    } else if (p.in === 'query') queryArbs[p.name] = drawn;
  }
  const bodySchema = op.requestBody?.content?.['application/json']?.schema;
  const extra = gen.fields?.(ctx) ?? {};
  const bodyArb = bodySchema
    ? arbitraryOf(doc, bodySchema).map((b) => (b && typeof b === 'object' && !Array.isArray(b) ? { ...b, ...extra } : b))
    : method === 'POST' || method === 'PUT'
      ? fc.oneof(fc.constant(undefined), fc.object({ maxDepth: 2, maxKeys: 4 }))
      : fc.constant(undefined);

  const kinds = kindsFor(method, op, gen);
  const seed = routeSeed(key);
  const materials = fc.sample(materialArbitrary(bodyArb, pathArbs, queryArbs), { seed, numRuns: kinds.length });
  const account = callerAccount(gen.as);
  const failures: string[] = [];
  const stat = { cases: 0, ok: 0, refused: 0, failures: 0 };
  stats.set(key, stat);
  let validKey: string | undefined;
  let previousAnswered = true;

  for (const [i, kind] of kinds.entries()) {
    // The valid case uses the real ids, where the table names some, and no made-up cursor.
    const material =
      kind === 'valid'
        ? { ...materials[i]!, path: { ...materials[i]!.path, ...Object.fromEntries(Object.entries(realIds).map(([k, v]) => [k, v[0]!])) }, query: Object.fromEntries(Object.entries(materials[i]!.query).filter(([k]) => k !== 'cursor')) }
        : materials[i]!;
    // Keys are fresh per case, except the reuse case, which repeats the valid case's key with another body.
    // Deterministic, so that a replay sends the same headers; each run has a fresh database.
    let idemKey = gen.idempotent ? `fuzz-${seed}-${i}` : undefined;
    if (kind === 'valid') validKey = idemKey;
    if (kind === 'reused-idempotency-key' && validKey) idemKey = validKey;
    const start = gen.valid && (kind === 'valid' || i % 2 === 0) ? { ...material, body: gen.valid(ctx) } : material;
    const built = build(kind === 'reused-idempotency-key' ? 'extra-field' : kind, template, start, idemKey);
    const before = previousAnswered ? await settledSnapshot(account) : await snapshot(account);
    const where = `seed=${SEED} route="${key}" case=${i} kind=${kind}\n    ${describeBuilt(methodOf(method, kind, built), built)}`;
    stat.cases++;
    let answer: Answer;
    try {
      answer = await send(method, built, gen, kind, gen.as);
    } catch (err) {
      previousAnswered = true;
      failures.push(`${where}\n    ${(err as Error).message}`);
      stat.failures++;
      continue;
    }
    const problems: string[] = [];
    const problem = problemWith(answer);
    if (problem) problems.push(problem);
    previousAnswered = answer.status < 400;
    if (answer.status < 400) stat.ok++;
    else stat.refused++;
    const after = await snapshot(account);
    for (const [asset, total] of after.sums) if (total !== '0') problems.push(`ledger ${asset} sums to ${total}, not 0`);
    if (answer.status >= 400 && answer.status < 500 && JSON.stringify(after) !== JSON.stringify(before)) {
      problems.push(`refused with ${answer.status} but changed state:\n      before ${JSON.stringify(before)}\n      after  ${JSON.stringify(after)}`);
    }
    if (problems.length) {
      stat.failures++;
      failures.push(`${where}\n    → ${answer.status}: ${problems.join('; ')}`);
    }
  }
  return failures;
}

describe('fuzzing every route of the contract', () => {
  beforeAll(async () => {
    doc = await json(await call('/openapi.json'));
    const s = await leased('rtx-3080-10gb');
    // An hour ahead: the lease can neither time out in provisioning nor settle while the file runs.
    await elapse(s.leaseId, -3_600_000);
    const [renter, provider, admin, victim] = await Promise.all([signUp(['renter']), signUp(['provider']), signUp(['renter']), signUp(['renter'])]);
    const [node, spareNode, spareKey] = await Promise.all([
      registerNode(provider),
      registerNode(provider),
      call('/v1/api-keys', { auth: renter.apiKey, body: { name: 'spare' } }).then(json),
    ]);
    await makeAdmin(admin);
    await Promise.all([fund(renter, 'USD', '50.00'), fund(renter, 'GRID', '100.00'), fund(renter, 'USDC', '20.00'), fund(provider, 'GRID', '1000.00'), fund(s.renter, 'GRID', '100.00')]);
    const lease = await json(await call(`/v1/leases/${s.leaseId}`, { auth: s.renter.apiKey }));
    ctx = {
      renter,
      provider,
      admin,
      leaseRenter: s.renter,
      leaseProvider: s.provider,
      leaseNode: s.node,
      victim,
      node,
      spareNode,
      leaseId: s.leaseId,
      bidId: lease.lease.bid_id ?? s.askId,
      askId: s.askId,
      spareKeyId: spareKey.api_key.id,
      region: s.node.region,
      gpuModel: 'rtx-3080-10gb',
    };
  }, 60_000);

  afterAll(() => {
    const lines = [...stats].map(([key, s]) => `${key.padEnd(52)} ${String(s.cases).padStart(5)} ${String(s.ok).padStart(5)} ${String(s.refused).padStart(7)} ${String(s.failures).padStart(8)}`);
    const total = [...stats.values()].reduce((t, s) => ({ cases: t.cases + s.cases, ok: t.ok + s.ok, refused: t.refused + s.refused, failures: t.failures + s.failures }), { cases: 0, ok: 0, refused: 0, failures: 0 });
    console.log(
      [`fuzz seed ${SEED}: ${stats.size} routes`, `${'route'.padEnd(52)} cases   2xx refused failures`, ...lines, `${'total'.padEnd(52)} ${String(total.cases).padStart(5)} ${String(total.ok).padStart(5)} ${String(total.refused).padStart(7)} ${String(total.failures).padStart(8)}`].join('\n'),
    );
  });

  it('has a generator for every operation in /openapi.json, and an operation for every generator', () => {
    const documented = operations(doc);
    expect(documented.filter((k) => !(k in ROUTES)), 'operations without a fuzz generator (add them to test/worker/fuzz-routes.ts)').toEqual([]);
    expect(Object.keys(ROUTES).filter((k) => !documented.includes(k)), 'fuzz generators for operations the document no longer has').toEqual([]);
  });

  for (const key of Object.keys(ROUTES)) {
    it(`answers ${key} without a 5xx, with the error shape, and refusals change nothing`, async () => {
      const failures = await fuzzRoute(key);
      const replay = `replay: run this file with seed ${SEED} (SEED in test/worker/fuzz.test.ts, or a FUZZ_SEED binding); the case numbers below are per route`;
      expect(failures, [replay, ...failures].join('\n')).toEqual([]);
    }, 120_000);
  }
});
