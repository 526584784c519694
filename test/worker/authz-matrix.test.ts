// Who may call what: every operation of /openapi.json against every kind of caller, with the
// answer each must get. The table is one compact row per operation; `cases` expands it.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/auth/principal.ts';
import { buildWorld, type World } from './authz-world.ts';
import { call, expectError, heartbeat, json, machine, registerNode, uniqueEmail, PASSWORD, type TestAccount } from './support.ts';
import { leased } from './lease-support.ts';
import { onlineNode, placed, sell, workload } from './trading.ts';

/** A status, and for an error the code the body must carry. */
type Answer = number | [number, string];
type Owned = keyof World['ids'];

interface Row {
  route: string;
  /**
   * public: no credential; user: API key or access token; node: a runner's node token;
   * absent: documented as `user`, but mounted only on a development server.
   */
  auth: 'public' | 'user' | 'node' | 'absent';
  scope?: Scope;
  role?: 'admin' | 'provider';
  /** The path's `{id}` is this resource, which belongs to someone; others must not reach it. */
  owned?: Owned;
  /** What the entitled caller (the owner, or the operator) gets; null: not sent, see `why`. */
  ok: Answer | null;
  why?: string;
  /** What another account (or another node) gets for the owned resource. */
  other?: Answer;
  /** What the other party gets: the lease's provider, the ask's buyer, the node's renter. */
  party?: Answer;
  /** What a suspended account's API key gets (refused at authentication unless stated). */
  suspended?: Answer;
  /**
   * The route spends, moves money or acts for the platform: an access token issued before its
   * account was suspended must be refused (403) too. Admin routes are all of this kind.
   */
  active?: true;
  /** `nodeId`: the node the caller's node token names (the lease's node for other callers). */
  body?: (w: World, nodeId: string) => unknown;
  query?: string;
  /** A list route: the owner's list holds this resource, another account's does not. */
  lists?: Owned;
  /** A create route keyed by idempotency: another account replaying the owner's key gets its own. */
  replays?: 'deposit' | 'withdrawal';
  /** Bodies asking for more than the caller may have, each refused with its answer. */
  overreach?: Array<{ caller: string; credential: (w: World) => string | undefined; body: (w: World) => unknown; expect: Answer }>;
  /** The entitled call destroys its resource: it gets one of its own (and, if not the usual, its owner). */
  fresh?: (w: World) => Promise<{ id: string; owner?: TestAccount }>;
}

const NOT_FOUND: Answer = [404, 'not_found'];
const UNAUTHORIZED: Answer = [401, 'unauthorized'];
const FORBIDDEN: Answer = [403, 'forbidden'];
const INVALID: Answer = [400, 'validation_failed'];
const now = () => new Date().toISOString();

const TABLE: Row[] = [
  { route: 'GET /livez', auth: 'public', ok: 200 },
  { route: 'GET /healthz', auth: 'public', ok: 200 },
  { route: 'GET /.well-known/jwks.json', auth: 'public', ok: 200 },
  {
    route: 'POST /v1/accounts',
    auth: 'public',
    ok: 201,
    body: () => ({ email: uniqueEmail('matrix'), password: PASSWORD, roles: ['renter'] }),
    // Operators are made by hand, inspectors by their bond: neither at sign-up.
    overreach: (['admin', 'inspector'] as const).map((role) => ({
      caller: `anonymous signing up as ${role}`,
      credential: () => undefined,
      body: () => ({ email: uniqueEmail('matrix'), password: PASSWORD, roles: ['renter', role] }),
      expect: INVALID,
    })),
  },
  { route: 'POST /v1/auth/token', auth: 'public', ok: 200, body: (w) => ({ grant_type: 'password', email: w.renter.email, password: w.renter.password }) },
  { route: 'GET /v1/accounts/me', auth: 'user', active: true, scope: 'account:read', ok: 200 },

  {
    route: 'POST /v1/api-keys',
    auth: 'user',
    scope: 'keys:write',
    ok: 201,
    body: () => ({ name: 'matrix', scopes: ['account:read'] }),
    // A credential hands out only what it holds.
    overreach: [
      { caller: 'a key without funds:write asking for it', credential: (w) => w.narrowKeys['funds:write'], body: () => ({ name: 'wider', scopes: ['funds:write'] }), expect: FORBIDDEN },
      { caller: 'a token without funds:write asking for it', credential: (w) => w.narrowTokens['funds:write'], body: () => ({ name: 'wider', scopes: ['funds:write'] }), expect: FORBIDDEN },
    ],
  },
  { route: 'GET /v1/api-keys', auth: 'user', scope: 'keys:read', ok: 200, lists: 'apiKey' },
  {
    route: 'DELETE /v1/api-keys/{id}',
    auth: 'user',
    scope: 'keys:write',
    owned: 'apiKey',
    ok: 200,
    fresh: async (w) => ({ id: (await json(await call('/v1/api-keys', { auth: w.renter.apiKey, body: { name: 'doomed', scopes: ['account:read'] } }))).api_key.id }),
  },

  { route: 'GET /v1/admin/accounts', auth: 'user', scope: 'account:read', role: 'admin', ok: 200 },
  { route: 'POST /v1/admin/accounts/{id}/status', auth: 'user', scope: 'account:write', role: 'admin', ok: NOT_FOUND, body: () => ({ status: 'suspended', reason: 'matrix' }) },

  { route: 'GET /v1/balances', auth: 'user', scope: 'funds:read', ok: 200 },
  { route: 'GET /v1/ledger/entries', auth: 'user', scope: 'funds:read', ok: 200 },
  { route: 'POST /v1/deposits', auth: 'user', active: true, scope: 'funds:write', ok: 201, body: () => ({ asset: 'USDC', amount: '1.00', method: 'usdc' }), replays: 'deposit' },
  { route: 'GET /v1/deposits', auth: 'user', scope: 'funds:read', ok: 200, lists: 'deposit' },
  { route: 'GET /v1/deposits/{id}', auth: 'user', scope: 'funds:read', owned: 'deposit', ok: 200 },
  {
    route: 'POST /v1/withdrawals',
    auth: 'user',
    active: true,
    scope: 'funds:write',
    ok: [402, 'insufficient_funds'],
    body: () => ({ asset: 'USDC', amount: '1.00', destination: '0x' + 'ab'.repeat(20) }),
    replays: 'withdrawal',
  },
  { route: 'GET /v1/withdrawals', auth: 'user', scope: 'funds:read', ok: 200, lists: 'withdrawal' },
  { route: 'GET /v1/withdrawals/{id}', auth: 'user', scope: 'funds:read', owned: 'withdrawal', ok: 200 },
  { route: 'GET /v1/quote', auth: 'public', ok: 200, query: '?asset=USDC&usd=10.00' },
  { route: 'POST /v1/webhooks/stripe', auth: 'public', ok: [400, 'invalid_signature'], body: () => ({ id: 'evt_x', type: 'payment_intent.succeeded' }) },
  { route: 'POST /v1/webhooks/chain', auth: 'public', ok: [400, 'invalid_signature'], body: () => ({ tx_hash: '0x' + 'ab'.repeat(32) }) },

  { route: 'POST /v1/webhook-endpoints', auth: 'user', scope: 'account:write', ok: 201, body: () => ({ url: 'https://hooks.example.com/m', events: ['lease.running'] }) },
  { route: 'GET /v1/webhook-endpoints', auth: 'user', scope: 'account:read', ok: 200, lists: 'webhook' },
  { route: 'GET /v1/webhook-endpoints/{id}', auth: 'user', scope: 'account:read', owned: 'webhook', ok: 200 },
  {
    route: 'DELETE /v1/webhook-endpoints/{id}',
    auth: 'user',
    scope: 'account:write',
    owned: 'webhook',
    ok: 200,
    fresh: async (w) => ({
      id: (await json(await call('/v1/webhook-endpoints', { auth: w.renter.apiKey, body: { url: 'https://hooks.example.com/doomed', events: ['lease.running'] } }))).endpoint.id,
    }),
  },

  { route: 'GET /v1/admin/platform-balances', auth: 'user', scope: 'funds:read', role: 'admin', ok: 200 },
  { route: 'POST /v1/admin/adjustments', auth: 'user', scope: 'funds:write', role: 'admin', ok: NOT_FOUND, body: () => ({ account_id: 'acc_nobody', asset: 'USD', amount: '1.00', reason: 'matrix' }) },
  { route: 'GET /v1/admin/withdrawals', auth: 'user', scope: 'funds:read', role: 'admin', ok: 200 },
  { route: 'POST /v1/admin/withdrawals/{id}/settle', auth: 'user', scope: 'funds:write', role: 'admin', ok: NOT_FOUND, body: () => ({ outcome: 'paid' }) },
  {
    route: 'POST /v1/admin/nodes/{id}/commands',
    auth: 'user',
    scope: 'nodes:write',
    role: 'admin',
    ok: NOT_FOUND,
    body: () => ({ id: 'cmd_matrix', type: 'challenge', challenge: { kind: 'identity', challenge_id: 'chl_1', nonce: 'ab'.repeat(32), deadline: new Date(Date.now() + 60_000).toISOString() } }),
  },
  { route: 'POST /v1/admin/nodes/{id}/challenges', auth: 'user', scope: 'nodes:write', role: 'admin', ok: NOT_FOUND, body: () => ({ kind: 'identity' }) },
  { route: 'GET /v1/admin/nodes/{id}/order-processing', auth: 'user', scope: 'nodes:read', role: 'admin', ok: NOT_FOUND },

  { route: 'GET /v1/catalog/gpus', auth: 'public', ok: 200 },
  { route: 'GET /v1/catalog/regions', auth: 'public', ok: 200 },

  { route: 'POST /v1/nodes/join-tokens', auth: 'user', active: true, scope: 'nodes:write', role: 'provider', ok: 201 },
  { route: 'GET /v1/nodes', auth: 'user', scope: 'nodes:read', ok: 200, lists: 'node' },
  { route: 'GET /v1/nodes/{id}', auth: 'user', scope: 'nodes:read', owned: 'node', ok: 200 },
  { route: 'GET /v1/nodes/{id}/order-processing', auth: 'user', scope: 'nodes:read', owned: 'node', ok: 200 },
  {
    route: 'POST /v1/nodes/{id}/revoke',
    auth: 'user',
    scope: 'nodes:write',
    role: 'provider',
    owned: 'node',
    ok: 200,
    // The node's renter is no provider: the role stops it before the node is looked up.
    party: FORBIDDEN,
    fresh: async (w) => ({ id: (await registerNode(w.provider, machine(), 'us-east')).nodeId }),
  },
  { route: 'POST /v1/nodes/{id}/stake', auth: 'user', active: true, scope: 'funds:write', owned: 'node', ok: [402, 'insufficient_funds'], body: () => ({ amount: '1.00' }) },
  { route: 'GET /v1/nodes/{id}/stake', auth: 'user', scope: 'funds:read', owned: 'node', ok: 200 },
  { route: 'POST /v1/nodes/{id}/unstake', auth: 'user', active: true, scope: 'funds:write', owned: 'node', ok: [409, 'conflict'], body: () => ({ amount: '1.00' }) },

  { route: 'POST /v1/inspectors/bond', auth: 'user', active: true, scope: 'funds:write', ok: [402, 'insufficient_funds'], body: () => ({ amount: '1000.00' }) },
  { route: 'POST /v1/inspectors/unbond', auth: 'user', active: true, scope: 'funds:write', ok: [409, 'conflict'], body: () => ({ amount: '1000.00' }) },
  { route: 'GET /v1/inspectors/me', auth: 'user', scope: 'funds:read', ok: 200 },
  { route: 'GET /v1/challenges/{id}/report', auth: 'public', ok: NOT_FOUND },
  { route: 'GET /v1/nodes/{id}/reports', auth: 'public', owned: 'node', ok: 200 },
  { route: 'PUT /v1/inspectors/key', auth: 'user', active: true, scope: 'inspections:write', ok: 200, body: (w) => ({ public_key: w.inspectorKey }) },
  { route: 'GET /v1/inspectors/assignments', auth: 'user', scope: 'inspections:read', ok: 200 },
  { route: 'POST /v1/inspections/{id}/commitment', auth: 'user', active: true, scope: 'inspections:write', ok: NOT_FOUND, body: () => ({ commitment: 'ab'.repeat(32) }) },
  { route: 'POST /v1/inspections/{id}/verdict', auth: 'user', active: true, scope: 'inspections:write', ok: NOT_FOUND, body: (w) => verdictBody(w, 'insp_nobody') },
  // Batches answer 200 with a refusal per item.
  {
    route: 'POST /v1/inspections/commitments',
    auth: 'user',
    active: true,
    scope: 'inspections:write',
    ok: 200,
    body: () => ({ items: [{ inspection_id: 'insp_nobody', commitment: 'ab'.repeat(32) }] }),
  },
  {
    route: 'POST /v1/inspections/verdicts',
    auth: 'user',
    active: true,
    scope: 'inspections:write',
    ok: 200,
    body: (w) => ({ items: [{ inspection_id: 'insp_nobody', ...verdictBody(w, 'insp_nobody') }] }),
  },
  { route: 'GET /v1/inspections/{id}', auth: 'public', ok: NOT_FOUND },
  { route: 'GET /v1/nodes/{id}/inspections', auth: 'public', owned: 'node', ok: 200 },
  // The operator's calls stop at validation: a decoy or a mint would change what other files count.
  { route: 'POST /v1/admin/inspections/decoys', auth: 'user', scope: 'inspections:write', role: 'admin', ok: INVALID, body: () => ({ expect: 'maybe' }) },
  { route: 'POST /v1/admin/rewards-pool/mint', auth: 'user', scope: 'funds:write', role: 'admin', ok: INVALID, body: () => ({ amount: 'lots', reason: 'matrix' }) },
  { route: 'POST /v1/admin/rewards/genesis', auth: 'user', scope: 'funds:write', role: 'admin', ok: null, why: 'mints once for the whole database; test/worker/rewards owns it' },
  { route: 'GET /v1/rewards/schedule', auth: 'public', ok: 200 },
  // An epoch no run reaches: whether epoch 0 is closed depends on other files.
  { route: 'GET /v1/rewards/epochs/{n}', auth: 'public', ok: NOT_FOUND },
  { route: 'GET /v1/rewards', auth: 'user', scope: 'funds:read', ok: 200 },

  // The leased node's identity challenge: its own node gets past the ownership check (to the
  // answer's own checks, as the test holds no node key to sign with); another node must not.
  {
    route: 'POST /v1/runner/challenges/{id}/identity',
    auth: 'node',
    owned: 'challenge',
    ok: INVALID,
    body: () => ({
      answer: { challenge_id: 'chl_another', nonce: 'ab'.repeat(32), gpu_uuids: [`GPU-${crypto.randomUUID()}`], driver: '550.54.15', at: now() },
      signature: 'A'.repeat(86),
    }),
  },
  {
    route: 'POST /v1/runner/challenges/{id}/commitment',
    auth: 'node',
    owned: 'challenge',
    ok: [409, 'conflict'],
    body: (w) => ({ commitment: { challenge_id: w.ids.challenge, roots: ['ab'.repeat(32)] }, signature: 'A'.repeat(86) }),
  },
  { route: 'POST /v1/runner/challenges/{id}/openings', auth: 'node', owned: 'challenge', ok: [409, 'conflict'], body: (w) => ({ challenge_id: w.ids.challenge, gpus: [[]] }) },
  { route: 'POST /v1/runner/register', auth: 'public', ok: UNAUTHORIZED, body: () => ({ join_token: 'gljt_nobody', region: 'us-east', machine: machine(), public_key: 'A'.repeat(43) }) },
  { route: 'POST /v1/runner/heartbeats', auth: 'node', ok: 202, other: FORBIDDEN, body: (_, nodeId) => heartbeat(nodeId, Date.now()) },
  { route: 'POST /v1/runner/leases/{id}/events', auth: 'node', owned: 'lease', ok: 202, body: () => ({ type: 'started', at: now(), ports: { '8888': 30_001 } }) },
  { route: 'POST /v1/runner/leases/{id}/logs', auth: 'node', owned: 'lease', ok: 200, body: () => ({ lines: [{ seq: 0, at: now(), stream: 'stdout', text: 'hello' }] }) },
  { route: 'PUT /v1/runner/public-host', auth: 'node', ok: 200, body: () => ({ public_host: null }) },

  {
    route: 'POST /v1/orders',
    auth: 'user',
    active: true,
    scope: 'orders:write',
    ok: [402, 'insufficient_funds'],
    body: () => ({ side: 'buy', region: 'eu-central', gpu_model: 'rtx-3080-10gb', gpus: 1, price: '0.50', duration_s: 3600, pay_with: 'USD', workload }),
  },
  { route: 'GET /v1/orders', auth: 'user', scope: 'orders:read', ok: 200, lists: 'order' },
  { route: 'GET /v1/orders/{id}', auth: 'user', scope: 'orders:read', owned: 'order', ok: 200 },
  {
    route: 'DELETE /v1/orders/{id}',
    auth: 'user',
    scope: 'orders:write',
    owned: 'order',
    ok: 200,
    fresh: async (w) => {
      const node = await onlineNode('eu-central', w.provider, 'rtx-3080-10gb', 1);
      return { id: (await placed(w.provider, sell('eu-central', 'rtx-3080-10gb', node.nodeId, { price: '90.00', gpus: 1 }))).order.id };
    },
  },
  { route: 'GET /v1/leases/{id}/logs', auth: 'user', scope: 'leases:read', owned: 'lease', ok: 200 },
  { route: 'GET /v1/leases/{id}/logs/stream', auth: 'user', scope: 'leases:read', owned: 'lease', ok: 200 },
  { route: 'GET /v1/leases/{id}/metrics', auth: 'user', scope: 'leases:read', owned: 'lease', ok: 200 },
  { route: 'GET /v1/leases', auth: 'user', scope: 'leases:read', ok: 200, lists: 'lease' },
  { route: 'GET /v1/leases/{id}', auth: 'user', scope: 'leases:read', owned: 'lease', ok: 200, party: 200 },
  {
    route: 'POST /v1/leases/{id}/terminate',
    auth: 'user',
    scope: 'leases:write',
    owned: 'lease',
    ok: 200,
    // A suspended renter may still stop spending: the key gets through, and the lease is not theirs.
    suspended: NOT_FOUND,
    fresh: async () => {
      const s = await leased('rtx-3080-10gb', { price: '1.13' });
      return { id: s.leaseId, owner: s.renter };
    },
  },
  { route: 'POST /v1/leases/{id}/extend', auth: 'user', active: true, scope: 'leases:write', owned: 'lease', ok: 200, body: () => ({ duration_s: 600 }) },

  { route: 'GET /v1/offers', auth: 'public', ok: 200 },
  { route: 'GET /v1/market/stream', auth: 'public', ok: [426, 'upgrade_required'] },
  { route: 'GET /v1/market/summary', auth: 'public', ok: 200 },
  { route: 'GET /v1/market/{region}/{gpu_model}/book', auth: 'public', ok: 200 },
  { route: 'GET /v1/market/{region}/{gpu_model}/trades', auth: 'public', ok: 200 },
  { route: 'GET /v1/market/{region}/{gpu_model}/candles', auth: 'public', ok: 200 },
  { route: 'POST /internal/queue/heartbeats', auth: 'public', ok: UNAUTHORIZED, body: () => ({}) },
  { route: 'POST /internal/queue/webhooks', auth: 'public', ok: UNAUTHORIZED, body: () => ({}) },
  // Test money exists only on a development server; here the routes are absent for everyone.
  { route: 'POST /v1/dev/faucet', auth: 'absent', ok: NOT_FOUND, body: () => ({ asset: 'USD', amount: '1.00' }) },
  { route: 'POST /v1/dev/bench/book', auth: 'absent', ok: NOT_FOUND, body: () => ({}) },
  { route: 'POST /v1/dev/bench/floor', auth: 'absent', ok: NOT_FOUND },
  { route: 'GET /widget.js', auth: 'public', ok: 200 },
  { route: 'GET /widget/{file}', auth: 'public', ok: NOT_FOUND },
  { route: 'GET /embed/price', auth: 'public', ok: 200, query: '?region=eu-central&gpu_model=rtx-3080-10gb' },
];

function verdictBody(w: World, inspectionId: string) {
  return {
    verdict: { inspection_id: inspectionId, inspector_id: w.admin.id, verdict: 'pass', reasons: [], entries_checked: 1, leases_checked: 0, lease_findings: 0 },
    salt: 'ab'.repeat(32),
    signature: 'A'.repeat(86),
  };
}

/** One call of the matrix: who calls, on which resource, and what must come back. */
interface Case {
  caller: string;
  credential: (w: World) => string | undefined;
  expect: Answer;
  /** Which resource fills `{id}`: the shared one, or a fresh one made for this call. */
  resource?: 'shared' | 'fresh';
  /** The node a node token belongs to, when it is not the lease's. */
  nodeId?: (w: World) => string;
  /** Sends a body no schema accepts instead of the row's. */
  badBody?: true;
  /** Sends this body instead of the row's. */
  body?: (w: World) => unknown;
  idempotencyKey?: (w: World) => string;
  /** The body must (or must not) mention this id. */
  mentions?: (w: World) => string;
  omits?: (w: World) => string;
}

const PLACEHOLDERS: Record<string, string> = { id: 'x_nobody', region: 'eu-central', gpu_model: 'rtx-3080-10gb', n: '100000', file: 'nothing.js' };

function casesFor(row: Row): Case[] {
  const cases: Case[] = [...(row.overreach ?? [])];
  const ok = row.ok;
  const read = row.route.startsWith('GET ');
  if (row.auth === 'public') {
    if (ok !== null) cases.push({ caller: 'anonymous', credential: () => undefined, expect: ok });
    return cases;
  }
  if (row.auth === 'absent') {
    return [
      { caller: 'anonymous', credential: () => undefined, expect: NOT_FOUND },
      { caller: 'an entitled API key', credential: (w) => w.admin.apiKey, expect: NOT_FOUND },
    ];
  }
  // Credentials are checked before the body: a stranger learns nothing from validation.
  const garbage: Case[] = row.body ? [{ caller: 'anonymous with a body no schema accepts', credential: () => undefined, expect: UNAUTHORIZED, badBody: true }] : [];
  if (row.auth === 'node') {
    cases.push(
      ...garbage,
      { caller: 'anonymous', credential: () => undefined, expect: UNAUTHORIZED },
      { caller: "the renter's API key", credential: (w) => w.renter.apiKey, expect: UNAUTHORIZED },
      { caller: "the renter's access token", credential: (w) => w.renterToken, expect: UNAUTHORIZED },
      { caller: 'a node token signed by a foreign key', credential: (w) => w.foreignNodeToken, expect: UNAUTHORIZED },
      { caller: 'an unsigned node token (alg none)', credential: (w) => w.unsignedNodeToken, expect: UNAUTHORIZED },
      { caller: 'an old node token (node registered again)', credential: (w) => w.oldNode.token, expect: UNAUTHORIZED, nodeId: (w) => w.oldNode.nodeId },
      { caller: "a revoked node's token", credential: (w) => w.revokedNode.token, expect: UNAUTHORIZED, nodeId: (w) => w.revokedNode.nodeId },
      { caller: "the lease's workload token", credential: (w) => w.leaseToken, expect: UNAUTHORIZED },
    );
    if (ok !== null) cases.push({ caller: "the lease's node", credential: (w) => w.node.token, expect: ok });
    if (row.owned || row.other) {
      cases.push(
        { caller: "another account's node", credential: (w) => w.otherNode.token, expect: row.other ?? NOT_FOUND },
        { caller: "another node of the lease's provider", credential: (w) => w.siblingNode.token, expect: row.other ?? NOT_FOUND },
      );
    }
    return cases;
  }
  cases.push(
    ...garbage,
    { caller: 'anonymous', credential: () => undefined, expect: UNAUTHORIZED },
    { caller: 'an access token signed by a foreign key', credential: (w) => w.foreignToken, expect: UNAUTHORIZED },
    { caller: 'an unsigned access token (alg none)', credential: (w) => w.unsignedToken, expect: UNAUTHORIZED },
    { caller: 'an expired access token', credential: (w) => w.expiredToken, expect: UNAUTHORIZED },
    { caller: 'a revoked API key', credential: (w) => w.revokedKey, expect: UNAUTHORIZED },
    { caller: 'a node token', credential: (w) => w.node.token, expect: UNAUTHORIZED },
    { caller: "a lease's workload token", credential: (w) => w.leaseToken, expect: UNAUTHORIZED },
    { caller: 'an expired API key', credential: (w) => w.expiredKey, expect: UNAUTHORIZED },
    { caller: "a suspended account's API key", credential: (w) => w.suspended.apiKey, expect: row.suspended ?? UNAUTHORIZED },
  );
  // The suspended operator holds every role and scope: what stops its token is the suspension or nothing.
  const stillActive = row.owned ? (row.other ?? NOT_FOUND) : ok;
  const suspendedToken = row.active || row.role === 'admin' ? FORBIDDEN : stillActive;
  if (suspendedToken !== null) cases.push({ caller: "a suspended account's access token", credential: (w) => w.suspendedToken, expect: suspendedToken });
  if (row.scope) {
    cases.push(
      { caller: `a key without ${row.scope}`, credential: (w) => w.narrowKeys[row.scope!], expect: FORBIDDEN },
      { caller: `an access token exchanged for a key without ${row.scope}`, credential: (w) => w.narrowTokens[row.scope!], expect: FORBIDDEN },
    );
  }
  if (row.role === 'admin') {
    cases.push(
      { caller: 'a renter and provider without admin', credential: (w) => w.noAdminKey, expect: FORBIDDEN },
      { caller: "a demoted operator's access token", credential: (w) => w.demotedToken, expect: FORBIDDEN },
    );
  }
  if (row.role === 'provider') cases.push({ caller: 'a renter without provider', credential: (w) => w.renterOnlyKey, expect: FORBIDDEN });
  const ownerOf = (kind: Owned) => (w: World) => (kind === 'node' || kind === 'order' ? w.provider : w.renter);
  if (row.lists) {
    const listed = row.lists;
    const id = (w: World) => w.ids[listed];
    cases.push(
      { caller: 'the owner, whose list holds its resource', credential: (w) => ownerOf(listed)(w).apiKey, expect: 200, mentions: id },
      { caller: "another account, whose list lacks the owner's resource", credential: (w) => w.other.apiKey, expect: 200, omits: id },
    );
  }
  if (row.replays) {
    const kind = row.replays;
    cases.push({
      caller: "another account replaying the owner's idempotency key",
      credential: (w) => w.other.apiKey,
      expect: 201,
      idempotencyKey: (w) => w.idempotencyKeys[kind],
      omits: (w) => w.ids[kind],
    });
  }
  if (row.owned) {
    const owner = ownerOf(row.owned);
    if (ok !== null) cases.push({ caller: 'the owner', credential: (w) => owner(w).apiKey, expect: ok, resource: row.fresh ? 'fresh' : 'shared' });
    if (ok !== null && read) cases.push({ caller: "the owner's access token", credential: (w) => (owner(w) === w.provider ? w.providerToken : w.renterToken), expect: ok });
    cases.push({ caller: 'another account', credential: (w) => w.other.apiKey, expect: row.other ?? NOT_FOUND });
    const party = { lease: (w: World) => w.provider, order: (w: World) => w.renter, node: (w: World) => w.renter }[row.owned as string];
    if (party) cases.push({ caller: 'the other party', credential: (w) => party(w).apiKey, expect: row.party ?? NOT_FOUND });
    if (read) cases.push({ caller: "another account's access token", credential: (w) => w.otherToken, expect: row.other ?? NOT_FOUND });
    cases.push({ caller: 'an operator (admin)', credential: (w) => w.admin.apiKey, expect: row.other ?? NOT_FOUND });
  } else if (ok !== null) {
    cases.push({ caller: 'an entitled API key', credential: (w) => w.admin.apiKey, expect: ok });
    if (read) cases.push({ caller: 'an entitled access token', credential: (w) => w.adminToken, expect: ok });
  }
  return cases;
}

let world: World;
beforeAll(async () => {
  world = await buildWorld();
}, 120_000);

async function send(row: Row, c: Case): Promise<Response> {
  const [method, template] = row.route.split(' ') as [string, string];
  let id = PLACEHOLDERS.id!;
  let auth = c.credential(world);
  if (row.owned && c.resource === 'fresh') {
    const fresh = await row.fresh!(world);
    id = fresh.id;
    if (fresh.owner) auth = fresh.owner.apiKey;
  } else if (row.owned) {
    id = world.ids[row.owned];
  }
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'id' ? id : PLACEHOLDERS[name]!)) + (row.query ?? '');
  const body = c.badBody ? { unexpected: [1, 2, 3] } : c.body ? c.body(world) : row.body?.(world, c.nodeId?.(world) ?? world.node.nodeId);
  return call(path, { method, auth, body, headers: { 'idempotency-key': c.idempotencyKey?.(world) ?? crypto.randomUUID() } });
}

async function check(res: Response, c: Case, label: string) {
  const expected = c.expect;
  if (typeof expected === 'number') {
    const reads = res.status !== expected || c.mentions || c.omits;
    // A stream (logs, SSE) would not end by itself: its body is dropped unread.
    const text = reads ? await res.text() : await res.body?.cancel();
    expect(res.status, `${label}: ${String(text ?? '').slice(0, 300)}`).toBe(expected);
    if (c.mentions) expect(text, `${label} must mention ${c.mentions(world)}`).toContain(c.mentions(world));
    if (c.omits) expect(text, `${label} must not mention ${c.omits(world)}`).not.toContain(c.omits(world));
    return;
  }
  try {
    await expectError(res, expected[0], expected[1]);
  } catch (err) {
    throw new Error(`${label}: ${(err as Error).message}`);
  }
}

describe('the authorisation matrix', () => {
  it('has one row for every operation of /openapi.json, and none for an operation it lacks', async () => {
    const doc = await json(await call('/openapi.json'));
    const documented = Object.entries<Record<string, unknown>>(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const listed = TABLE.map((r) => r.route);
    expect(listed.filter((r, i) => listed.indexOf(r) !== i), 'routes listed twice').toEqual([]);
    expect(documented.filter((r) => !listed.includes(r)), 'routes missing from the table').toEqual([]);
    expect(listed.filter((r) => !documented.includes(r)), 'rows for routes that do not exist').toEqual([]);
  });

  it('says the same about credentials as the document says', async () => {
    const doc = await json(await call('/openapi.json'));
    for (const row of TABLE) {
      const [method, path] = row.route.split(' ') as [string, string];
      const security = doc.paths[path]?.[method.toLowerCase()]?.security as Array<Record<string, unknown>> | undefined;
      const scheme = security?.length ? Object.keys(security[0]!)[0] : undefined;
      expect(scheme, row.route).toBe({ public: undefined, user: 'bearer', absent: 'bearer', node: 'nodeToken' }[row.auth]);
    }
  });

  for (const row of TABLE) {
    const cases = casesFor(row);
    describe(row.route, () => {
      it.each(cases.map((c) => [c.caller, c] as const))('%s', async (caller, c) => {
        const label = `${row.route} as ${caller}`;
        await check(await send(row, c), c, label);
      });
    });
  }
});
