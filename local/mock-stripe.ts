// A local MOCK of the Stripe API (not Stripe): the Checkout Session calls Gridlease makes
// through the official `stripe` SDK, a stand-in hosted checkout page, and signed
// `checkout.session.completed` webhooks with Stripe's retry behaviour. For `npm start`
// and tests only, since Stripe cannot be reached here and stripe-mock cannot be installed.
//
//   node local/mock-stripe.ts [--port 12111] [--api-key sk_test_local] [--webhook-secret whsec_local]
//                             [--webhook-url http://127.0.0.1:8787/v1/webhooks/stripe] [--retry-attempts 5] [--retry-base-ms 500]
//   (or MOCK_STRIPE_PORT, MOCK_STRIPE_API_KEY, MOCK_STRIPE_WEBHOOK_SECRET, MOCK_STRIPE_WEBHOOK_URL)
//
// SDK client: new Stripe(key, { host: '127.0.0.1', port, protocol: 'http', httpClient: Stripe.createFetchHttpClient() }).
// API routes (Authorization: Bearer <apiKey>, or Basic with the key as user name):
//   POST /v1/checkout/sessions              create (form-encoded, bracket notation; see mock-stripe/sessions.ts;
//                                           stricter than Stripe: mode=payment, price_data and cancel_url required)
//   GET  /v1/checkout/sessions/:id          retrieve (404 resource_missing if unknown)
//   POST /v1/checkout/sessions/:id/expire   expire an open session (sends checkout.session.expired)
// Browser routes: GET /checkout/:id (the page), POST /checkout/:id/pay (303 to success_url),
// POST /checkout/:id/cancel (303 to cancel_url). Errors are Stripe's {error:{type,message,code,param}}:
// 401 for a missing or wrong key (type invalid_request_error, as Stripe sends it), 400
// invalid_request_error with `param`, 400 idempotency_error, 404 for unknown routes.
// Idempotency-Key: a successful POST is saved for its key; the same key and parameters
// replay it (header Idempotent-Replayed: true), other parameters or endpoint get 400
// idempotency_error. Failed validation saves nothing, as at Stripe. (stripe-node 23 sends a
// random key with every POST even when maxNetworkRetries is 0.)
// Webhooks (mock-stripe/webhooks.ts): `completeSession` resolves once its event is delivered
// or given up; the pay form does not wait (the browser is redirected first, as with Stripe);
// `idle()` waits for every delivery in progress; `deliveries()` lists every attempt.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { fingerprint, parseForm, StripeApiError, type FormObject } from './mock-stripe/form.ts';
import { authenticate, decodeSegment, digest, header, IdempotencyStore, isLoopback, readBody, redirect, sendHtml, sendJson } from './mock-stripe/http.ts';
import { checkoutPage, messagePage, successRedirect } from './mock-stripe/page.ts';
import { buildSession, markPaid, randomId, type CheckoutLineItem, type CheckoutSession } from './mock-stripe/sessions.ts';
import { WebhookDeliverer, type DeliveryAttempt, type StripeEvent } from './mock-stripe/webhooks.ts';

export type { CheckoutSession, DeliveryAttempt, StripeEvent };
export { signatureHeader } from './mock-stripe/webhooks.ts';

export interface MockStripeOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** A loopback address; default 127.0.0.1. */
  host?: string;
  /** The secret key clients must present, e.g. sk_test_local (live keys are refused). */
  apiKey: string;
  /** whsec_… secret that signs webhook events. */
  webhookSecret: string;
  /** Where events are POSTed; without one, events are recorded but not sent. */
  webhookUrl?: string;
  /** Delivery attempts per event (default 5) and the first retry delay, doubled each time (default 500 ms). */
  retry?: { attempts?: number; baseDelayMs?: number };
  /** Receives one JSON-able record per notable happening. Default: nothing. */
  log?: (line: Record<string, unknown>) => void;
}

export interface MockStripe {
  /** e.g. http://127.0.0.1:12111 */
  url: string;
  port: number;
  /** The SDK's host/port/protocol config for this mock. */
  apiBase: { host: string; port: number; protocol: 'http' };
  setWebhookUrl(url: string): void;
  /** Marks an open session paid and resolves once its event is delivered or given up; no-op if already paid. */
  completeSession(id: string): Promise<void>;
  /** Copies of every session, oldest first. */
  sessions(): CheckoutSession[];
  /** Every delivery attempt so far, in order. */
  deliveries(): DeliveryAttempt[];
  /** Every event emitted so far. */
  events(): StripeEvent[];
  /** Resolves when no webhook delivery is in progress (including pending retries). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** The API version stripe-node 23 pins; used for events when a request sent no Stripe-Version. */
const DEFAULT_API_VERSION = '2026-10-28.endive';

interface SessionRecord {
  session: CheckoutSession;
  lineItems: CheckoutLineItem[];
  apiVersion: string;
}
interface Reply {
  status: number;
  body: unknown;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export async function startMockStripe(opts: MockStripeOptions): Promise<MockStripe> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`mock Stripe binds to loopback addresses only, not ${host}`);
  if (typeof opts.apiKey !== 'string' || opts.apiKey === '') throw new Error('mock Stripe needs an apiKey (e.g. sk_test_local)');
  if (/^(sk|rk)_live_/.test(opts.apiKey)) throw new Error('mock Stripe refuses live keys; use a test key such as sk_test_local');
  if (typeof opts.webhookSecret !== 'string' || opts.webhookSecret === '') throw new Error('mock Stripe needs a webhookSecret (e.g. whsec_local)');
  const expectedKey = digest(opts.apiKey);
  const userLog = opts.log ?? (() => {});
  const log = (line: Record<string, unknown>) => {
    try {
      userLog({ time: new Date().toISOString(), component: 'mock-stripe', level: 'info', ...line });
    } catch {
      // a failing logger must not break the mock
    }
  };
  let webhookUrl = opts.webhookUrl;
  const deliverer = new WebhookDeliverer({
    secret: opts.webhookSecret,
    attempts: Math.max(1, opts.retry?.attempts ?? 5),
    baseDelayMs: Math.max(0, opts.retry?.baseDelayMs ?? 500),
    webhookUrl: () => webhookUrl,
    log,
  });
  const records = new Map<string, SessionRecord>();
  const saved = new IdempotencyStore();
  const events: StripeEvent[] = [];
  let baseUrl = '';

  function emit(rec: SessionRecord, type: string): Promise<void> {
    const event: StripeEvent = {
      id: randomId('evt_', 18),
      object: 'event',
      api_version: rec.apiVersion,
      created: nowSeconds(),
      data: { object: structuredClone(rec.session) },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
    events.push(event);
    log({ event: 'event_created', eventId: event.id, type, sessionId: rec.session.id });
    return deliverer.deliver(event);
  }

  /** Open sessions past expires_at become expired (and send checkout.session.expired) when next touched. */
  function refresh(rec: SessionRecord): SessionRecord {
    if (rec.session.status === 'open' && nowSeconds() >= rec.session.expires_at) expire(rec);
    return rec;
  }
  function expire(rec: SessionRecord): void {
    rec.session.status = 'expired';
    rec.session.url = null;
    void emit(rec, 'checkout.session.expired');
  }
  /** Pays an open session and sends the event; undefined (no event) if it is not open. */
  function complete(rec: SessionRecord): Promise<void> | undefined {
    if (refresh(rec).session.status !== 'open') return undefined;
    markPaid(rec.session);
    log({ event: 'session_completed', sessionId: rec.session.id, amount_total: rec.session.amount_total, currency: rec.session.currency });
    return emit(rec, 'checkout.session.completed');
  }

  function lookup(id: string): SessionRecord {
    const rec = records.get(id);
    if (rec === undefined) throw new StripeApiError(404, 'invalid_request_error', `No such checkout.session: '${id}'`, { code: 'resource_missing', param: 'session' });
    return refresh(rec);
  }

  function route(method: string, parts: string[], params: FormObject, apiVersion: string): Reply {
    const [, resource, sub, id, action] = parts;
    if (resource === 'checkout' && sub === 'sessions') {
      if (method === 'POST' && parts.length === 3) {
        const { session, lineItems } = buildSession(params, nowSeconds());
        session.url = `${baseUrl}/checkout/${session.id}`;
        records.set(session.id, { session, lineItems, apiVersion });
        log({ event: 'session_created', sessionId: session.id, amount_total: session.amount_total, currency: session.currency, client_reference_id: session.client_reference_id });
        return { status: 200, body: session };
      }
      if (method === 'GET' && parts.length === 4) return { status: 200, body: lookup(id as string).session };
      if (method === 'POST' && parts.length === 5 && action === 'expire') {
        const rec = lookup(id as string);
        if (rec.session.status !== 'open') throw new StripeApiError(400, 'invalid_request_error', 'Only Checkout Sessions with a status in ["open"] can be expired.', { param: 'session' });
        expire(rec);
        return { status: 200, body: rec.session };
      }
    }
    throw unrecognized(method, `/${parts.join('/')}`);
  }

  const unrecognized = (method: string, path: string) =>
    new StripeApiError(404, 'invalid_request_error', `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/. (This is the local mock Stripe API.)`);

  async function api(req: IncomingMessage, res: ServerResponse, method: string, path: string, requestId: string): Promise<void> {
    const headers: Record<string, string> = { 'request-id': requestId };
    try {
      const body = await readBody(req);
      const versionHeader = header(req, 'stripe-version');
      if (versionHeader !== undefined) {
        if (!/^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$/.test(versionHeader)) throw new StripeApiError(400, 'invalid_request_error', `Invalid Stripe API version: ${versionHeader}`);
        headers['stripe-version'] = versionHeader;
      }
      authenticate(req, expectedKey);
      const contentType = header(req, 'content-type') ?? '';
      if (body !== '' && !contentType.startsWith('application/x-www-form-urlencoded')) {
        throw new StripeApiError(400, 'invalid_request_error', `Invalid request: v1 bodies must be application/x-www-form-urlencoded, not '${contentType}'`);
      }
      const url = new URL(`http://mock${path}`);
      const params = parseForm(method === 'GET' ? url.search.slice(1) : body);
      const parts = url.pathname.split('/').slice(1).map(decodeSegment);
      const key = method === 'POST' ? header(req, 'idempotency-key') : undefined;
      if (key === undefined) {
        const reply = route(method, parts, params, versionHeader ?? DEFAULT_API_VERSION);
        sendJson(res, reply.status, JSON.stringify(reply.body, null, 2), headers);
        return;
      }
      headers['idempotency-key'] = key;
      const endpoint = `${method} ${url.pathname}`;
      const print = fingerprint(params);
      const previous = saved.replay(key, endpoint, print);
      if (previous !== undefined) {
        log({ event: 'idempotent_replay', key, endpoint, originalRequest: previous.requestId });
        sendJson(res, previous.status, previous.body, { ...headers, 'idempotent-replayed': 'true', 'original-request': previous.requestId });
        return;
      }
      const reply = route(method, parts, params, versionHeader ?? DEFAULT_API_VERSION);
      const text = JSON.stringify(reply.body, null, 2);
      saved.save(key, { endpoint, fingerprint: print, status: reply.status, body: text, requestId });
      sendJson(res, reply.status, text, headers);
    } catch (err) {
      const known = err instanceof StripeApiError ? err : undefined;
      if (known === undefined) log({ level: 'error', event: 'internal_error', method, path, message: String(err), stack: (err as Error)?.stack });
      else log({ level: 'warn', event: 'api_error', method, path, status: known.status, type: known.type, code: known.code, param: known.param, message: known.message });
      const body = known?.body() ?? { error: { type: 'api_error', message: `The mock Stripe API failed: ${String(err)}` } };
      sendJson(res, known?.status ?? 500, JSON.stringify(body, null, 2), headers);
    }
  }

  async function checkout(req: IncomingMessage, res: ServerResponse, method: string, id: string, action: string | undefined): Promise<void> {
    await readBody(req).catch(() => ''); // the forms post nothing of interest
    const rec = records.get(id);
    if (rec === undefined) return sendHtml(res, 404, messagePage(`No such Checkout Session: ${id}`));
    refresh(rec);
    if (action === undefined && (method === 'GET' || method === 'HEAD')) return sendHtml(res, 200, checkoutPage(rec.session, rec.lineItems));
    if (action === 'pay' && method === 'POST') {
      if (rec.session.status === 'expired') return sendHtml(res, 409, messagePage('This Checkout Session has expired and can no longer be paid.'));
      void complete(rec); // the event is sent in the background, as Stripe does
      return redirect(res, successRedirect(rec.session));
    }
    if (action === 'cancel' && method === 'POST') return redirect(res, rec.session.cancel_url);
    return sendHtml(res, 405, messagePage(`${method} is not allowed here`));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomId('req_', 10);
    const method = req.method ?? 'GET';
    const rawPath = req.url ?? '/';
    const pathname = rawPath.split('?')[0] as string;
    if (pathname === '/v1' || pathname.startsWith('/v1/')) return api(req, res, method, rawPath.startsWith('/') ? rawPath : `/${rawPath}`, requestId);
    const page = /^\/checkout\/([^/]+)(?:\/(pay|cancel))?\/?$/.exec(pathname);
    if (page !== null) return checkout(req, res, method, decodeSegment(page[1] as string), page[2]);
    req.resume();
    if (pathname === '/' && method === 'GET') return sendHtml(res, 200, messagePage(`Mock Stripe API (local). ${records.size} Checkout Session(s). Point the stripe SDK at ${baseUrl}.`));
    sendJson(res, 404, JSON.stringify(unrecognized(method, pathname).body(), null, 2), { 'request-id': requestId });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log({ level: 'error', event: 'internal_error', path: req.url, message: String(err) });
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, JSON.stringify({ error: { type: 'api_error', message: 'The mock Stripe API failed' } }), {});
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  const port = opts.port ?? 0;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new Error(`mock Stripe: port ${port} on ${host} is already in use (pass --port or set MOCK_STRIPE_PORT to another port)`);
    throw new Error(`mock Stripe: cannot listen on ${host}:${port}: ${e.message}`);
  }
  server.on('error', (err) => log({ level: 'error', event: 'server_error', message: err.message }));
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  log({ event: 'listening', url: baseUrl, webhookUrl: webhookUrl ?? null });

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    port: boundPort,
    apiBase: { host, port: boundPort, protocol: 'http' },
    setWebhookUrl(url: string) {
      webhookUrl = url;
    },
    async completeSession(id: string) {
      const rec = records.get(id);
      if (rec === undefined) throw new Error(`mock Stripe: no such Checkout Session ${id}`);
      if (refresh(rec).session.status === 'expired') throw new Error(`mock Stripe: Checkout Session ${id} has expired`);
      await complete(rec);
    },
    sessions: () => [...records.values()].map((rec) => structuredClone(rec.session)),
    deliveries: () => deliverer.attempts.map((a) => ({ ...a })),
    events: () => structuredClone(events),
    idle: () => deliverer.idle(),
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), 1_000);
        await deliverer.close();
        await stopped;
        clearTimeout(force);
      })();
      return closing;
    },
  };
}

function parseCli(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const m = /^--(port|host|api-key|webhook-secret|webhook-url|retry-attempts|retry-base-ms)(?:=(.*))?$/.exec(arg);
    if (m === null) throw new Error(`unknown argument ${arg}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    out[m[1] as string] = value;
  }
  return out;
}

function intArg(raw: string | undefined, name: string, fallback: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`${name} must be an integer 0-${max}, got "${raw}"`);
  return n;
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const env = process.env;
  const mock = await startMockStripe({
    port: intArg(cli.port ?? env.MOCK_STRIPE_PORT, 'port', 12111, 65_535),
    host: cli.host ?? env.MOCK_STRIPE_HOST ?? '127.0.0.1',
    apiKey: cli['api-key'] ?? env.MOCK_STRIPE_API_KEY ?? 'sk_test_local',
    webhookSecret: cli['webhook-secret'] ?? env.MOCK_STRIPE_WEBHOOK_SECRET ?? 'whsec_local',
    webhookUrl: cli['webhook-url'] ?? (env.MOCK_STRIPE_WEBHOOK_URL || undefined),
    retry: { attempts: intArg(cli['retry-attempts'], 'retry-attempts', 5, 100), baseDelayMs: intArg(cli['retry-base-ms'], 'retry-base-ms', 500, 3_600_000) },
    log: (line) => console.error(JSON.stringify(line)),
  });
  console.log(mock.url);
  console.error(`Mock Stripe API (local mock, not Stripe) at ${mock.url}`);
  const stop = () => void mock.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    console.error(message.startsWith('mock Stripe') ? message : `mock Stripe: ${message}`);
    process.exit(1);
  });
}
