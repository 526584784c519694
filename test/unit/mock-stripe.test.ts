// Specification of the local mock Stripe API (local/mock-stripe.ts), exercised through the
// official `stripe` SDK (fetch HTTP client, host/port/protocol pointed at the mock) and, for
// the checkout page and protocol edges, raw fetch. Webhooks go to a small receiver server in
// the test and are verified with the SDK's constructEventAsync. Every test has its own mock
// and receiver on random ports.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import Stripe from 'stripe';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startMockStripe, type MockStripe, type MockStripeOptions } from '../../local/mock-stripe.ts';

const API_KEY = 'sk_test_local';
const WEBHOOK_SECRET = 'whsec_test_mock_secret';
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startMock(opts: Partial<MockStripeOptions> = {}): Promise<MockStripe> {
  const mock = await startMockStripe({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, port: 0, retry: { attempts: 5, baseDelayMs: 5 }, ...opts });
  cleanups.push(() => mock.close());
  return mock;
}

function sdk(mock: MockStripe, key = API_KEY): Stripe {
  return new Stripe(key, { ...mock.apiBase, httpClient: Stripe.createFetchHttpClient(), maxNetworkRetries: 0 });
}

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook endpoint answering with `statuses` in turn (then 200), recording each request. */
async function startReceiver(statuses: number[] = []) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(statuses.shift() ?? 200, { 'content-type': 'application/json' }).end('{"received":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${port}/v1/webhooks/stripe`, received };
}

const webhooks = Stripe.webhooks;
const verify = (r: Received, secret = WEBHOOK_SECRET) =>
  webhooks.constructEventAsync(r.body, r.headers['stripe-signature'] as string, secret, 300, Stripe.createSubtleCryptoProvider());

function depositParams(overrides: Record<string, unknown> = {}): Stripe.Checkout.SessionCreateParams {
  return {
    mode: 'payment',
    line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 2500, product_data: { name: 'Gridlease deposit' } } }],
    client_reference_id: 'acct_123',
    metadata: { deposit_id: 'dep_123', account_id: 'acct_123' },
    success_url: 'http://127.0.0.1:8787/deposits/success?session_id={CHECKOUT_SESSION_ID}',
    cancel_url: 'http://127.0.0.1:8787/deposits/cancel',
    ...overrides,
  } as Stripe.Checkout.SessionCreateParams;
}

async function rejection(promise: Promise<unknown>): Promise<any> {
  return promise.then(
    () => {
      throw new Error('expected the promise to reject');
    },
    (e: unknown) => e,
  );
}

describe('Checkout Sessions API', () => {
  it('creates an open, unpaid session with a checkout URL, the amount and the metadata; retrieve returns it', async () => {
    const mock = await startMock();
    const stripe = sdk(mock);
    const session = await stripe.checkout.sessions.create(
      depositParams({
        line_items: [
          { quantity: 2, price_data: { currency: 'USD', unit_amount: 1250, product_data: { name: 'GPU hours' } } },
          { quantity: 1, price_data: { currency: 'usd', unit_amount: 99, product_data: { name: 'Fee', description: 'card fee' } } },
        ],
      }),
    );
    expect(session).toMatchObject({
      object: 'checkout.session',
      amount_total: 2599,
      amount_subtotal: 2599,
      currency: 'usd',
      client_reference_id: 'acct_123',
      metadata: { deposit_id: 'dep_123', account_id: 'acct_123' },
      mode: 'payment',
      payment_status: 'unpaid',
      status: 'open',
      livemode: false,
      payment_intent: null,
      success_url: 'http://127.0.0.1:8787/deposits/success?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'http://127.0.0.1:8787/deposits/cancel',
    });
    expect(session.id).toMatch(/^cs_test_[A-Za-z0-9]+$/);
    expect(session.url).toBe(`${mock.url}/checkout/${session.id}`);
    expect(session.expires_at - session.created).toBe(24 * 3600);
    expect(Math.abs(session.created - Date.now() / 1000)).toBeLessThan(5);

    const again = await stripe.checkout.sessions.retrieve(session.id);
    expect(again.id).toBe(session.id);
    expect(again.amount_total).toBe(2599);
    expect(mock.sessions().map((s) => s.id)).toEqual([session.id]);

    const missing = await rejection(stripe.checkout.sessions.retrieve('cs_test_nope'));
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  it('refuses a wrong or missing API key with 401 (StripeAuthenticationError)', async () => {
    const mock = await startMock();
    const err = await rejection(sdk(mock, 'sk_test_wrong_key_1234').checkout.sessions.create(depositParams()));
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(err.statusCode).toBe(401);
    expect(err.message).toMatch(/^Invalid API Key provided: sk_test_\*+1234$/);

    const res = await fetch(`${mock.url}/v1/checkout/sessions/cs_test_x`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringMatching(/did not provide an API key/) });
    expect(mock.sessions()).toEqual([]);
  });

  const invalidCases: [string, Record<string, unknown>, string][] = [
    ['no mode', { mode: undefined }, 'mode'],
    ['a subscription', { mode: 'subscription' }, 'mode'],
    ['no line items', { line_items: undefined }, 'line_items'],
    ['no currency', { line_items: [{ quantity: 1, price_data: { unit_amount: 100, product_data: { name: 'x' } } }] }, 'line_items[0][price_data][currency]'],
    ['an unknown currency', { line_items: [{ quantity: 1, price_data: { currency: 'zzz', unit_amount: 100, product_data: { name: 'x' } } }] }, 'line_items[0][price_data][currency]'],
    ['no unit amount', { line_items: [{ quantity: 1, price_data: { currency: 'usd', product_data: { name: 'x' } } }] }, 'line_items[0][price_data][unit_amount]'],
    ['a zero unit amount', { line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 0, product_data: { name: 'x' } } }] }, 'line_items[0][price_data][unit_amount]'],
    ['a fractional unit amount', { line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 12.5, product_data: { name: 'x' } } }] }, 'line_items[0][price_data][unit_amount]'],
    ['no product name', { line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 100, product_data: {} } }] }, 'line_items[0][price_data][product_data]'],
    ['an empty product name', { line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 100, product_data: { name: '' } } }] }, 'line_items[0][price_data][product_data][name]'],
    ['no quantity', { line_items: [{ price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'x' } } }] }, 'line_items[0][quantity]'],
    ['a second item with no quantity', { line_items: [depositParams().line_items![0], { price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'x' } } }] }, 'line_items[1][quantity]'],
    ['less than $0.50', { line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 49, product_data: { name: 'x' } } }] }, 'line_items'],
    ['no success_url', { success_url: undefined }, 'success_url'],
    ['a relative success_url', { success_url: '/deposits/success' }, 'success_url'],
    ['no cancel_url', { cancel_url: undefined }, 'cancel_url'],
    ['an unknown parameter', { amount: 2500 }, 'amount'],
    ['an unknown line item parameter', { line_items: [{ quantity: 1, amount: 5, price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'x' } } }] }, 'line_items[0][amount]'],
    ['a non-string metadata value', { metadata: { deposit: { nested: 'x' } } }, 'metadata[deposit]'],
  ];
  it.each(invalidCases)('refuses %s with 400 invalid_request_error naming the param', async (_name, overrides, param) => {
    const mock = await startMock();
    const err = await rejection(sdk(mock).checkout.sessions.create(depositParams(overrides)));
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err).toMatchObject({ statusCode: 400, rawType: 'invalid_request_error', param });
    expect(typeof err.message).toBe('string');
    expect(mock.sessions()).toEqual([]);
  });

  it('replays the first result for a reused Idempotency-Key and refuses it with other parameters', async () => {
    const mock = await startMock();
    const stripe = sdk(mock);
    const first = await stripe.checkout.sessions.create(depositParams(), { idempotencyKey: 'deposit-dep_123' });
    const replay = await stripe.checkout.sessions.create(depositParams(), { idempotencyKey: 'deposit-dep_123' });
    expect(replay.id).toBe(first.id);
    // lastResponse is the raw fetch Response with the fetch HTTP client.
    expect((replay.lastResponse as unknown as Response).headers.get('idempotent-replayed')).toBe('true');
    expect(mock.sessions()).toHaveLength(1);

    const conflict = await rejection(stripe.checkout.sessions.create(depositParams({ metadata: { deposit_id: 'dep_999' } }), { idempotencyKey: 'deposit-dep_123' }));
    expect(conflict).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(conflict).toMatchObject({ statusCode: 400, rawType: 'idempotency_error' });

    // A failed request saves nothing: the key stays free for a corrected request.
    const failed = await rejection(stripe.checkout.sessions.create(depositParams({ success_url: undefined }), { idempotencyKey: 'k2' }));
    expect(failed).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    const fixed = await stripe.checkout.sessions.create(depositParams(), { idempotencyKey: 'k2' });
    expect(fixed.id).not.toBe(first.id);
    expect(mock.sessions()).toHaveLength(2);
  });

  it('answers unknown routes and malformed bodies with Stripe-shaped errors and keeps serving', async () => {
    const mock = await startMock();
    const auth = { authorization: `Bearer ${API_KEY}` };
    const notFound = await fetch(`${mock.url}/v1/charges`, { headers: auth });
    expect(notFound.status).toBe(404);
    expect(((await notFound.json()) as any).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringMatching(/Unrecognized request URL \(GET: \/v1\/charges\)/) });
    expect((await fetch(`${mock.url}/nope`)).status).toBe(404);

    for (const body of ['line_items[0=x', 'a=1&a[b]=2', '%%%=%zz&mode[]=', 'x'.repeat(2 * 1024 * 1024)]) {
      const res = await fetch(`${mock.url}/v1/checkout/sessions`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error.type).toBe('invalid_request_error');
    }
    const json = await fetch(`${mock.url}/v1/checkout/sessions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    expect(json.status).toBe(400);
    expect((await sdk(mock).checkout.sessions.create(depositParams())).status).toBe('open');
  });
});

describe('webhook events', () => {
  it('delivers one signed checkout.session.completed event that constructEventAsync verifies', async () => {
    const receiver = await startReceiver();
    const mock = await startMock({ webhookUrl: receiver.url });
    const stripe = sdk(mock);
    const session = await stripe.checkout.sessions.create(depositParams());
    await mock.completeSession(session.id);

    expect(receiver.received).toHaveLength(1);
    const [delivery] = receiver.received as [Received];
    expect(delivery.headers['content-type']).toMatch(/^application\/json/);
    expect(delivery.headers['stripe-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const event = await verify(delivery);
    expect(event).toMatchObject({ object: 'event', type: 'checkout.session.completed', livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null } });
    expect(event.id).toMatch(/^evt_/);
    expect(event.api_version).toBe(Stripe.API_VERSION);
    const paid = event.data.object as Stripe.Checkout.Session;
    expect(paid).toMatchObject({ id: session.id, payment_status: 'paid', status: 'complete', amount_total: 2500, metadata: { deposit_id: 'dep_123' }, client_reference_id: 'acct_123' });
    expect(paid.payment_intent).toMatch(/^pi_/);

    const forged = await rejection(verify(delivery, 'whsec_some_other_secret'));
    expect(forged).toBeInstanceOf(Stripe.errors.StripeSignatureVerificationError);
    const tampered = await rejection(verify({ ...delivery, body: delivery.body.replace('2500', '250000') }));
    expect(tampered).toBeInstanceOf(Stripe.errors.StripeSignatureVerificationError);

    expect(mock.deliveries()).toEqual([{ eventId: event.id, attempt: 1, status: 200 }]);
    expect((await stripe.checkout.sessions.retrieve(session.id)).payment_status).toBe('paid');
  });

  it('retries a failing endpoint with the same event, signed afresh each time', async () => {
    const receiver = await startReceiver([500, 500]);
    const mock = await startMock({ webhookUrl: receiver.url, retry: { attempts: 5, baseDelayMs: 20 } });
    const session = await sdk(mock).checkout.sessions.create(depositParams());
    const started = Date.now();
    await mock.completeSession(session.id);
    expect(Date.now() - started).toBeGreaterThanOrEqual(20 + 40 - 5); // back-off 20 ms, then 40 ms

    expect(receiver.received).toHaveLength(3);
    const events = await Promise.all(receiver.received.map((r) => verify(r)));
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
    expect(new Set(receiver.received.map((r) => r.body)).size).toBe(1); // byte-identical body
    expect(mock.deliveries()).toEqual([
      { eventId: events[0]!.id, attempt: 1, status: 500 },
      { eventId: events[0]!.id, attempt: 2, status: 500 },
      { eventId: events[0]!.id, attempt: 3, status: 200 },
    ]);
  });

  it('gives up after the configured attempts, and records network errors as status null', async () => {
    const receiver = await startReceiver([503, 503, 503, 503]);
    const mock = await startMock({ webhookUrl: receiver.url, retry: { attempts: 3, baseDelayMs: 1 } });
    const stripe = sdk(mock);
    const first = await stripe.checkout.sessions.create(depositParams());
    await mock.completeSession(first.id);
    expect(mock.deliveries().map((d) => d.status)).toEqual([503, 503, 503]);

    mock.setWebhookUrl('http://127.0.0.1:1/unreachable');
    const second = await stripe.checkout.sessions.create(depositParams());
    await mock.completeSession(second.id);
    const failed = mock.deliveries().slice(3);
    expect(failed.map((d) => [d.attempt, d.status])).toEqual([
      [1, null],
      [2, null],
      [3, null],
    ]);
    expect(receiver.received).toHaveLength(3);
  });

  it('sends one event however often a session is paid', async () => {
    const receiver = await startReceiver();
    const mock = await startMock({ webhookUrl: receiver.url });
    const session = await sdk(mock).checkout.sessions.create(depositParams());
    await mock.completeSession(session.id);
    await mock.completeSession(session.id);
    const pay = await fetch(`${mock.url}/checkout/${session.id}/pay`, { method: 'POST', redirect: 'manual' });
    expect(pay.status).toBe(303);
    await mock.idle();
    expect(receiver.received).toHaveLength(1);
    expect(mock.events()).toHaveLength(1);
  });
});

describe('hosted checkout page', () => {
  it('shows the amount, and its Pay form completes the session and redirects to success_url', async () => {
    const receiver = await startReceiver();
    const mock = await startMock({ webhookUrl: receiver.url });
    const stripe = sdk(mock);
    const session = await stripe.checkout.sessions.create(depositParams({ line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 123456, product_data: { name: 'Deposit <script>' } } }] }));

    const page = await fetch(session.url as string);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<title>Mock Stripe Checkout (local)</title>');
    expect(html).toContain('$1,234.56');
    expect(html).toContain('Deposit &lt;script&gt;');
    const action = /<form method="post" action="([^"]+\/pay)"/.exec(html)?.[1];
    expect(action).toBe(`/checkout/${session.id}/pay`);
    expect(html).toMatch(/action="[^"]+\/cancel"/);

    const cancel = await fetch(new URL(`/checkout/${session.id}/cancel`, mock.url), { method: 'POST', redirect: 'manual' });
    expect(cancel.status).toBe(303);
    expect(cancel.headers.get('location')).toBe('http://127.0.0.1:8787/deposits/cancel');
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');

    const pay = await fetch(new URL(action as string, mock.url), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(pay.status).toBe(303);
    expect(pay.headers.get('location')).toBe(`http://127.0.0.1:8787/deposits/success?session_id=${session.id}`);
    await mock.idle();
    expect(receiver.received).toHaveLength(1);
    expect((await verify(receiver.received[0]!)).type).toBe('checkout.session.completed');
    const after = await stripe.checkout.sessions.retrieve(session.id);
    expect(after).toMatchObject({ status: 'complete', payment_status: 'paid', url: null });
    expect(await (await fetch(`${mock.url}/checkout/${session.id}`)).text()).toContain('complete');
    expect((await fetch(`${mock.url}/checkout/cs_test_unknown`)).status).toBe(404);
  });
});

describe('expiry', () => {
  it('expires an open session through the API and sends checkout.session.expired', async () => {
    const receiver = await startReceiver();
    const mock = await startMock({ webhookUrl: receiver.url });
    const stripe = sdk(mock);
    const session = await stripe.checkout.sessions.create(depositParams());
    const expired = await stripe.checkout.sessions.expire(session.id);
    expect(expired).toMatchObject({ status: 'expired', url: null, payment_status: 'unpaid' });
    await mock.idle();
    expect((await verify(receiver.received[0]!)).type).toBe('checkout.session.expired');
    await expect(mock.completeSession(session.id)).rejects.toThrow(/expired/);
    const again = await rejection(stripe.checkout.sessions.expire(session.id));
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    const pay = await fetch(`${mock.url}/checkout/${session.id}/pay`, { method: 'POST', redirect: 'manual' });
    expect(pay.status).toBe(409);
    expect(receiver.received).toHaveLength(1);
  });

  it('lets an unpaid session lapse at expires_at', async () => {
    const receiver = await startReceiver();
    const mock = await startMock({ webhookUrl: receiver.url });
    const stripe = sdk(mock);
    const expiresAt = Math.floor(Date.now() / 1000) + 1900;
    const session = await stripe.checkout.sessions.create(depositParams({ expires_at: expiresAt }));
    expect(session.expires_at).toBe(expiresAt);
    vi.useFakeTimers({ toFake: ['Date'] });
    cleanups.push(() => void vi.useRealTimers());
    vi.setSystemTime((expiresAt + 1) * 1000);
    expect(await stripe.checkout.sessions.retrieve(session.id)).toMatchObject({ status: 'expired', url: null });
    await mock.idle();
    expect(receiver.received).toHaveLength(1);
    expect((await verify(receiver.received[0]!)).type).toBe('checkout.session.expired');
  });
});

describe('process', () => {
  it('names the port when it is taken', async () => {
    const mock = await startMock();
    await expect(startMockStripe({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, port: mock.port })).rejects.toThrow(`port ${mock.port}`);
    await expect(startMockStripe({ apiKey: 'sk_live_abc', webhookSecret: WEBHOOK_SECRET })).rejects.toThrow(/live keys/);
    await expect(startMockStripe({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, host: '0.0.0.0' })).rejects.toThrow(/loopback/);
  });

  it('runs as a script, prints its URL and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['local/mock-stripe.ts', '--port', '0', '--api-key', API_KEY, '--webhook-secret', WEBHOOK_SECRET], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const url = line.toString().trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(url).port);
    const stripe = new Stripe(API_KEY, { host: '127.0.0.1', port, protocol: 'http', httpClient: Stripe.createFetchHttpClient(), maxNetworkRetries: 0 });
    expect((await stripe.checkout.sessions.create(depositParams())).status).toBe('open');
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(stderr).toContain('Mock Stripe API (local mock, not Stripe)');
    expect(stderr).toContain('"component":"mock-stripe"');
  });
});
