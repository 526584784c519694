// Every operation of /openapi.json and how to fuzz it: whose credentials, real ids for its path
// parameters, and whether it needs an Idempotency-Key. fuzz.test.ts fails for an operation the
// document has and this table lacks, and for an entry the document no longer has.
import type { TestAccount } from './support.ts';
import { buy } from './trading.ts';

const ADDRESS = `0x${'3'.repeat(40)}`;

export interface FuzzContext {
  /** Callers with no lease: nothing changes their money in the background. */
  renter: TestAccount;
  provider: TestAccount;
  admin: TestAccount;
  /** The two sides of the one lease (its clocks pushed an hour ahead, so no alarm ends it early). */
  leaseRenter: TestAccount;
  leaseProvider: TestAccount;
  leaseNode: { nodeId: string; token: string };
  /** An account the admin may suspend without breaking other routes' callers. */
  victim: TestAccount;
  /** The provider's node, with no orders. */
  node: { nodeId: string; token: string };
  /** A second node of the provider: the one the revoke route may revoke. */
  spareNode: { nodeId: string; token: string };
  leaseId: string;
  bidId: string;
  askId: string;
  /** A second API key of the renter: the one the revoke route may revoke. */
  spareKeyId: string;
  region: string;
  gpuModel: string;
}

export type Caller = 'none' | 'renter' | 'provider' | 'admin' | 'node' | 'leaseRenter' | 'leaseNode';

export interface RouteGen {
  as: Caller;
  /** Money-moving POSTs: each case sends a fresh key, and the key mutations are tried. */
  idempotent?: boolean;
  /** Real values for path parameters, by name; random ones are drawn besides. */
  ids?: (ctx: FuzzContext) => Record<string, string[]>;
  /** Fields set on the generated valid body, where a real value gets further than a random one. */
  fields?: (ctx: FuzzContext) => Record<string, unknown>;
  /**
   * A body the route accepts, where drawing one from the schema rarely passes the route's own
   * checks (an allowed image, a join token): the valid case sends it, and every other case
   * mutates it or a drawn one in turn.
   */
  valid?: (ctx: FuzzContext) => unknown;
  /** Long-lived answers (SSE, WebSocket): the body is cancelled once the status is known. */
  stream?: boolean;
}

const node = (c: FuzzContext) => ({ id: [c.node.nodeId] });
const lease = (c: FuzzContext) => ({ id: [c.leaseId] });
const book = (c: FuzzContext) => ({ region: [c.region, 'us-east'], gpu_model: [c.gpuModel, 'h100-80gb'] });

/** In run order: routes that end something the context shares (a lease, a node) come last. */
export const ROUTES: Record<string, RouteGen> = {
  'GET /livez': { as: 'none' },
  'GET /healthz': { as: 'none' },
  'GET /.well-known/jwks.json': { as: 'none' },
  'POST /v1/accounts': { as: 'none' },
  'GET /v1/accounts/me': { as: 'renter' },
  'POST /v1/auth/token': { as: 'none', fields: (c) => ({ email: c.renter.email }) },
  'POST /v1/api-keys': { as: 'renter' },
  'GET /v1/api-keys': { as: 'renter' },
  'DELETE /v1/api-keys/{id}': { as: 'renter', ids: (c) => ({ id: [c.spareKeyId] }) },
  'GET /v1/admin/accounts': { as: 'admin' },
  'POST /v1/admin/accounts/{id}/status': { as: 'admin', ids: (c) => ({ id: [c.victim.id] }) },
  'GET /v1/balances': { as: 'renter' },
  'GET /v1/ledger/entries': { as: 'renter' },
  'POST /v1/deposits': { as: 'renter', idempotent: true, valid: () => ({ asset: 'USD', amount: '25.00', method: 'card' }) },
  'GET /v1/deposits': { as: 'renter' },
  'GET /v1/deposits/{id}': { as: 'renter' },
  'POST /v1/withdrawals': { as: 'renter', idempotent: true, valid: () => ({ asset: 'GRID', amount: '1.00', destination: ADDRESS }) },
  'GET /v1/withdrawals': { as: 'renter' },
  'GET /v1/withdrawals/{id}': { as: 'renter' },
  'GET /v1/quote': { as: 'none' },
  'POST /v1/webhooks/stripe': { as: 'none' },
  'POST /v1/webhooks/chain': { as: 'none' },
  'POST /v1/webhook-endpoints': { as: 'renter', valid: () => ({ url: 'https://hooks.example.com/gridlease', events: ['lease.running'] }) },
  'GET /v1/webhook-endpoints': { as: 'renter' },
  'GET /v1/webhook-endpoints/{id}': { as: 'renter' },
  'DELETE /v1/webhook-endpoints/{id}': { as: 'renter' },
  'GET /v1/admin/platform-balances': { as: 'admin' },
  'POST /v1/admin/adjustments': { as: 'admin', idempotent: true, valid: (c) => ({ account_id: c.victim.id, asset: 'USD', amount: '1.00', reason: 'goodwill credit' }) },
  'GET /v1/admin/withdrawals': { as: 'admin' },
  'POST /v1/admin/withdrawals/{id}/settle': { as: 'admin', idempotent: true },
  'POST /v1/admin/nodes/{id}/commands': { as: 'admin', ids: node },
  'POST /v1/admin/nodes/{id}/challenges': { as: 'admin', ids: node },
  'GET /v1/admin/nodes/{id}/order-processing': { as: 'admin', ids: node },
  'GET /v1/catalog/gpus': { as: 'none' },
  'GET /v1/catalog/regions': { as: 'none' },
  'POST /v1/nodes/join-tokens': { as: 'provider' },
  'GET /v1/nodes': { as: 'provider' },
  'GET /v1/nodes/{id}': { as: 'provider', ids: node },
  'GET /v1/nodes/{id}/order-processing': { as: 'provider', ids: node },
  'POST /v1/nodes/{id}/stake': { as: 'provider', idempotent: true, ids: node, valid: () => ({ amount: '10.00' }) },
  'GET /v1/nodes/{id}/stake': { as: 'provider', ids: node },
  'POST /v1/nodes/{id}/unstake': { as: 'provider', idempotent: true, ids: node, valid: () => ({ amount: '1.00' }) },
  'POST /v1/inspectors/bond': { as: 'renter', idempotent: true },
  'POST /v1/inspectors/unbond': { as: 'renter', idempotent: true },
  'GET /v1/inspectors/me': { as: 'renter' },
  'GET /v1/challenges/{id}/report': { as: 'none' },
  'GET /v1/nodes/{id}/reports': { as: 'none', ids: node },
  'PUT /v1/inspectors/key': { as: 'renter' },
  'GET /v1/inspectors/assignments': { as: 'renter' },
  'POST /v1/inspections/{id}/commitment': { as: 'renter' },
  'POST /v1/inspections/{id}/verdict': { as: 'renter' },
  'POST /v1/inspections/commitments': { as: 'renter' },
  'POST /v1/inspections/verdicts': { as: 'renter' },
  'GET /v1/inspections/{id}': { as: 'none' },
  'GET /v1/nodes/{id}/inspections': { as: 'none', ids: node },
  'POST /v1/admin/inspections/decoys': { as: 'admin' },
  'POST /v1/admin/rewards-pool/mint': { as: 'admin', idempotent: true },
  // Mints once for the whole database, which test/worker/rewards owns (its first test closes no
  // epoch before the mint): fuzzed as a caller the route refuses, so nothing here ever mints.
  'POST /v1/admin/rewards/genesis': { as: 'renter' },
  'GET /v1/rewards/schedule': { as: 'none' },
  'GET /v1/rewards/epochs/{n}': { as: 'none', ids: () => ({ n: ['0', '1'] }) },
  'GET /v1/rewards': { as: 'provider' },
  'POST /v1/runner/challenges/{id}/identity': { as: 'node' },
  'POST /v1/runner/challenges/{id}/commitment': { as: 'node' },
  'POST /v1/runner/challenges/{id}/openings': { as: 'node' },
  'POST /v1/runner/register': { as: 'none' },
  'POST /v1/runner/heartbeats': { as: 'node', fields: (c) => ({ node_id: c.node.nodeId }) },
  'PUT /v1/runner/public-host': { as: 'node', fields: () => ({ public_host: 'gpu-box.example.net' }) },
  'GET /v1/offers': { as: 'none' },
  'GET /v1/market/stream': { as: 'none', stream: true },
  'GET /v1/market/summary': { as: 'none' },
  'GET /v1/market/{region}/{gpu_model}/book': { as: 'none', ids: book },
  'GET /v1/market/{region}/{gpu_model}/trades': { as: 'none', ids: book },
  'GET /v1/market/{region}/{gpu_model}/candles': { as: 'none', ids: book },
  'POST /internal/queue/heartbeats': { as: 'none' },
  'POST /internal/queue/webhooks': { as: 'none' },
  'POST /v1/dev/faucet': { as: 'renter', idempotent: true },
  'POST /v1/dev/bench/book': { as: 'renter' },
  'POST /v1/dev/bench/floor': { as: 'renter' },
  'GET /widget.js': { as: 'none' },
  'GET /widget/{file}': { as: 'none' },
  'GET /embed/price': { as: 'none' },
  'POST /v1/nodes/{id}/revoke': { as: 'provider', ids: (c) => ({ id: [c.spareNode.nodeId] }) },
  'POST /v1/orders': {
    as: 'renter',
    idempotent: true,
    // A buy far below any ask: placed and held, never filled, so nothing moves later.
    valid: (c) => buy(c.region, c.gpuModel, { gpus: 1, price: '0.01' }),
  },
  'GET /v1/orders': { as: 'leaseRenter' },
  'GET /v1/orders/{id}': { as: 'leaseRenter', ids: (c) => ({ id: [c.bidId, c.askId] }) },
  'DELETE /v1/orders/{id}': { as: 'leaseRenter', ids: (c) => ({ id: [c.bidId, c.askId] }) },
  'GET /v1/leases/{id}/logs': { as: 'leaseRenter', ids: lease },
  'GET /v1/leases/{id}/logs/stream': { as: 'leaseRenter', ids: lease, stream: true },
  'GET /v1/leases/{id}/metrics': { as: 'leaseRenter', ids: lease },
  'GET /v1/leases': { as: 'leaseRenter' },
  'GET /v1/leases/{id}': { as: 'leaseRenter', ids: lease },
  'POST /v1/leases/{id}/extend': { as: 'leaseRenter', idempotent: true, ids: lease, valid: () => ({ duration_s: 600 }) },
  // The lease ends here; the runner's reports on it come after, and are refused.
  'POST /v1/leases/{id}/terminate': { as: 'leaseRenter', ids: lease },
  'POST /v1/runner/leases/{id}/events': { as: 'leaseNode', ids: lease },
  'POST /v1/runner/leases/{id}/logs': { as: 'leaseNode', ids: lease },
};
