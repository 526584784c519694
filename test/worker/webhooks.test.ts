import { env as workerEnv } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import { toHex } from '../../src/auth/encoding.ts';
import type { Bindings } from '../../src/env.ts';
import type { QueueMessage, QueueTransport } from '../../src/queue/transport.ts';
import { signLikeQStash } from '../../src/queue/signature.ts';
import { deliverWebhook } from '../../src/webhooks/deliver.ts';
import { emitEvent, type WebhookEvent } from '../../src/webhooks/emit.ts';
import { call, expectError, json, signUp, type TestAccount } from './support.ts';

const env = workerEnv as unknown as Bindings;
const SINK = inject('webhookSinkUrl');
const QUEUE_URL = 'https://api.gridlease.test/internal/queue/webhooks';

interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A fresh path on the sink; `/fail-<n>/…` answers 500 to its first n requests. */
const sinkPath = (prefix = '') => `${prefix}/hooks/${crypto.randomUUID()}`;
const received = async (path: string): Promise<Received[]> => (await fetch(`${SINK}/received?path=${encodeURIComponent(path)}`)).json();

async function addEndpoint(account: TestAccount, body: Record<string, unknown>): Promise<Response> {
  return call('/v1/webhook-endpoints', { auth: account.apiKey, body });
}

async function endpointAt(account: TestAccount, path: string, events: string[] = ['lease.running']) {
  const res = await addEndpoint(account, { url: SINK + path, events });
  if (res.status !== 201) throw new Error(`endpoint: ${res.status} ${await res.text()}`);
  const body = await json(res);
  return { id: body.endpoint.id as string, secret: body.secret as string, path };
}

const leaseRunning = (account: TestAccount, leaseId = `lea_${crypto.randomUUID().slice(0, 8)}`): WebhookEvent => ({
  id: `evt_${leaseId}_running`,
  accountId: account.id,
  type: 'lease.running',
  data: { lease_id: leaseId, started_at: '2026-11-20T10:00:00.000Z' },
});

/** Keeps messages instead of delivering them, so a test decides when (and how) they arrive. */
function holdingTransport(): QueueTransport & { messages: QueueMessage[] } {
  const messages: QueueMessage[] = [];
  return { name: 'local', messages, publish: async (m) => void messages.push(m) };
}

async function deliverSigned(body: string, opts: { retried?: number; key?: string; url?: string; sentBody?: string } = {}) {
  const signature = await signLikeQStash(opts.key ?? 'sig_test_current_0123456789', opts.url ?? QUEUE_URL, body, Math.floor(Date.now() / 1000));
  return call('/internal/queue/webhooks', { body: opts.sentBody ?? body, headers: { 'upstash-signature': signature, 'upstash-retried': String(opts.retried ?? 0) } });
}

async function deliveriesOf(account: TestAccount, endpointId: string) {
  return (await json(await call(`/v1/webhook-endpoints/${endpointId}`, { auth: account.apiKey }))).deliveries;
}

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return toHex(new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(message))));
}

describe('webhook endpoints', () => {
  it('are created with a whsec_ secret that is shown once, then listed newest first and fetched without it', async () => {
    const renter = await signUp();
    const res = await addEndpoint(renter, { url: 'https://Hooks.Example.com/gridlease', events: ['lease.running', 'lease.failed'], description: 'ops pager' });
    expect(res.status).toBe(201);
    const created = await json(res);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created.endpoint).toEqual({
      id: expect.stringMatching(/^whe_/),
      url: 'https://hooks.example.com/gridlease',
      events: ['lease.running', 'lease.failed'],
      description: 'ops pager',
      created_at: expect.any(String),
    });
    const second = await json(await addEndpoint(renter, { url: 'https://hooks.example.com/other', events: ['order.filled'] }));

    const list = await json(await call('/v1/webhook-endpoints', { auth: renter.apiKey }));
    expect(list.data.map((e: { id: string }) => e.id)).toEqual([second.endpoint.id, created.endpoint.id]);
    const one = await json(await call(`/v1/webhook-endpoints/${created.endpoint.id}`, { auth: renter.apiKey }));
    expect(one).toEqual({ endpoint: created.endpoint, deliveries: [] });
    expect(JSON.stringify(list)).not.toContain(created.secret);
    expect(JSON.stringify(one)).not.toContain('whsec_');
  });

  it("are private: another account gets 404 for them, cannot delete them and does not list them", async () => {
    const owner = await signUp();
    const other = await signUp();
    const { id } = await endpointAt(owner, sinkPath());
    await expectError(await call(`/v1/webhook-endpoints/${id}`, { auth: other.apiKey }), 404, 'not_found');
    await expectError(await call(`/v1/webhook-endpoints/${id}`, { method: 'DELETE', auth: other.apiKey }), 404, 'not_found');
    expect((await json(await call('/v1/webhook-endpoints', { auth: other.apiKey }))).data).toEqual([]);
    expect((await call(`/v1/webhook-endpoints/${id}`, { auth: owner.apiKey })).status).toBe(200);
  });

  it('are deleted by their owner, after which they are gone', async () => {
    const renter = await signUp();
    const { id } = await endpointAt(renter, sinkPath());
    const res = await call(`/v1/webhook-endpoints/${id}`, { method: 'DELETE', auth: renter.apiKey });
    expect(res.status).toBe(200);
    expect((await json(res)).endpoint.id).toBe(id);
    await expectError(await call(`/v1/webhook-endpoints/${id}`, { auth: renter.apiKey }), 404, 'not_found');
    await expectError(await call(`/v1/webhook-endpoints/${id}`, { method: 'DELETE', auth: renter.apiKey }), 404, 'not_found');
    expect((await json(await call('/v1/webhook-endpoints', { auth: renter.apiKey }))).data).toEqual([]);
  });

  it('are limited to 10 per account; deleting one makes room', async () => {
    const renter = await signUp();
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push((await endpointAt(renter, sinkPath())).id);
    const refused = await expectError(await addEndpoint(renter, { url: `${SINK}${sinkPath()}`, events: ['order.filled'] }), 409, 'conflict');
    expect(refused.message).toContain('10');
    await call(`/v1/webhook-endpoints/${ids[0]}`, { method: 'DELETE', auth: renter.apiKey });
    expect((await addEndpoint(renter, { url: `${SINK}${sinkPath()}`, events: ['order.filled'] })).status).toBe(201);
    // Another account's count is its own.
    expect((await addEndpoint(await signUp(), { url: `${SINK}${sinkPath()}`, events: ['order.filled'] })).status).toBe(201);
  });

  it.each([
    [{ url: 'https://hooks.example.com/h', events: [] }, 'events: must list at least one event type'],
    [{ url: 'https://hooks.example.com/h', events: ['lease.exploded'] }, 'events.0'],
    [{ url: 'https://hooks.example.com/h', events: ['lease.running', 'lease.running'] }, 'events: must not list an event type twice'],
    [{ url: 'https://hooks.example.com/h', events: 'lease.running' }, 'events'],
    [{ url: 'https://hooks.example.com/h' }, 'events'],
    [{ url: 'https://hooks.example.com/h', events: ['lease.running'], secret: 'mine' }, 'unknown field(s): secret'],
    [{ events: ['lease.running'] }, 'url'],
    [{ url: 'hooks.example.com/h', events: ['lease.running'] }, 'url: must be an absolute URL'],
    [{ url: 'ftp://hooks.example.com/h', events: ['lease.running'] }, 'url: must be an http or https URL'],
    [{ url: 'https://me:pw@hooks.example.com/h', events: ['lease.running'] }, 'url: must not contain a user name or password'],
    [{ url: `https://hooks.example.com/${'a'.repeat(2048)}`, events: ['lease.running'] }, 'url: must be at most 2048 characters'],
  ])('refuse %j with a 400 naming the problem', async (body, problem) => {
    const error = await expectError(await addEndpoint(await signUp(), body), 400, 'validation_failed');
    expect(error.message).toContain(problem);
  });

  it('accept http and loopback URLs on this test server (production refuses them: see test/unit/webhooks.test.ts)', async () => {
    const res = await addEndpoint(await signUp(), { url: `${SINK}/hooks/local`, events: ['order.filled'] });
    expect(res.status).toBe(201);
  });
});

describe('emitEvent', () => {
  it('delivers a signed event to each subscribed endpoint of the account, once however often it is emitted', async () => {
    const renter = await signUp();
    const subscribed = await endpointAt(renter, sinkPath(), ['lease.running', 'lease.failed']);
    const otherType = await endpointAt(renter, sinkPath(), ['order.filled']);
    const otherAccount = await endpointAt(await signUp(), sinkPath(), ['lease.running']);
    const event = leaseRunning(renter);

    expect(await emitEvent(env, event)).toEqual({ recorded: 1, published: 1 });
    const [request, ...more] = await received(subscribed.path);
    expect(more).toEqual([]);
    expect(request!.method).toBe('POST');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['gridlease-event-id']).toBe(event.id);
    expect(request!.headers['gridlease-event-type']).toBe('lease.running');
    expect(JSON.parse(request!.body)).toEqual({ id: event.id, type: 'lease.running', created_at: expect.any(String), data: event.data });

    const signature = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(request!.headers['gridlease-signature']!);
    expect(signature).not.toBeNull();
    const [, t, v1] = signature!;
    expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(60);
    expect(v1).toBe(await hmacHex(subscribed.secret, `${t}.${request!.body}`));
    expect(v1).not.toBe(await hmacHex(otherType.secret, `${t}.${request!.body}`));

    expect(await received(otherType.path)).toEqual([]);
    expect(await received(otherAccount.path)).toEqual([]);

    // The same event again records nothing and sends nothing; a repeated queue message neither.
    expect(await emitEvent(env, event)).toEqual({ recorded: 0, published: 0 });
    const [delivery] = await deliveriesOf(renter, subscribed.id);
    expect(delivery).toMatchObject({ event_id: event.id, event_type: 'lease.running', state: 'delivered', attempts: 1, last_status: 200, last_error: null });
    expect(delivery.delivered_at).not.toBeNull();
    expect(await json(await deliverSigned(JSON.stringify({ delivery_id: delivery.id })))).toEqual({ outcome: 'duplicate' });
    expect(await received(subscribed.path)).toHaveLength(1);
  });

  it('does nothing for an account without endpoints for the type', async () => {
    const renter = await signUp();
    expect(await emitEvent(env, leaseRunning(renter))).toEqual({ recorded: 0, published: 0 });
    await endpointAt(renter, sinkPath(), ['lease.completed']);
    expect(await emitEvent(env, leaseRunning(renter))).toEqual({ recorded: 0, published: 0 });
  });

  it('has a failing endpoint retried by the queue until it accepts, each attempt shown', async () => {
    const renter = await signUp();
    const endpoint = await endpointAt(renter, sinkPath('/fail-2'));
    const event = leaseRunning(renter);
    expect(await emitEvent(env, event)).toEqual({ recorded: 1, published: 1 });
    const requests = await received(endpoint.path);
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((r) => r.body)).size).toBe(1);
    expect(requests.every((r) => r.headers['gridlease-event-id'] === event.id)).toBe(true);
    expect(await deliveriesOf(renter, endpoint.id)).toEqual([
      expect.objectContaining({ event_id: event.id, state: 'delivered', attempts: 3, last_status: 200, last_error: null }),
    ]);
  });

  it('publishes again, on the next emit, a delivery whose publish failed', async () => {
    const renter = await signUp();
    const endpoint = await endpointAt(renter, sinkPath());
    const event = leaseRunning(renter);
    const down: QueueTransport = { name: 'local', publish: async () => Promise.reject(new Error('queue unreachable')) };
    await expect(emitEvent(env, event, down)).rejects.toThrow(/not published.*queue unreachable/);
    expect(await deliveriesOf(renter, endpoint.id)).toEqual([expect.objectContaining({ state: 'pending', attempts: 0 })]);
    expect(await received(endpoint.path)).toEqual([]);

    expect(await emitEvent(env, event)).toEqual({ recorded: 0, published: 1 });
    expect(await received(endpoint.path)).toHaveLength(1);
    expect(await emitEvent(env, event)).toEqual({ recorded: 0, published: 0 });
  });

  it('drops a queued delivery whose endpoint was deleted', async () => {
    const renter = await signUp();
    const endpoint = await endpointAt(renter, sinkPath());
    const queue = holdingTransport();
    expect(await emitEvent(env, leaseRunning(renter), queue)).toEqual({ recorded: 1, published: 1 });
    await call(`/v1/webhook-endpoints/${endpoint.id}`, { method: 'DELETE', auth: renter.apiKey });
    const res = await deliverSigned(JSON.stringify(queue.messages[0]!.body));
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ outcome: 'gone' });
    expect(await received(endpoint.path)).toEqual([]);
  });
});

describe('the webhook queue callback', () => {
  it('answers 502 while the endpoint fails, so the queue retries, and gives up on its last retry', async () => {
    const renter = await signUp();
    const endpoint = await endpointAt(renter, sinkPath('/fail-99'));
    const queue = holdingTransport();
    await emitEvent(env, leaseRunning(renter), queue);
    const message = JSON.stringify(queue.messages[0]!.body);

    const first = await deliverSigned(message, { retried: 0 });
    expect(first.status).toBe(502);
    expect(await json(first)).toEqual({ outcome: 'retrying', status: 500, error: null });
    // The local transport retries 3 times: the message carrying Upstash-Retried: 3 is the last.
    const last = await deliverSigned(message, { retried: 3 });
    expect(last.status).toBe(200);
    expect(await json(last)).toEqual({ outcome: 'failed', status: 500, error: null });
    expect(await deliveriesOf(renter, endpoint.id)).toEqual([expect.objectContaining({ state: 'failed', attempts: 2, last_status: 500, delivered_at: null })]);
    expect(await json(await deliverSigned(message))).toEqual({ outcome: 'duplicate' });
    expect(await received(endpoint.path)).toHaveLength(2);
  });

  it('records an endpoint that cannot be reached as an error without a status', async () => {
    const renter = await signUp();
    // Nothing listens on port 9 (discard) here; workerd also logs the refused connection.
    const res = await addEndpoint(renter, { url: 'http://127.0.0.1:9/hooks', events: ['lease.running'] });
    const endpoint = (await json(res)).endpoint;
    const queue = holdingTransport();
    await emitEvent(env, leaseRunning(renter), queue);
    const attempt = await deliverSigned(JSON.stringify(queue.messages[0]!.body));
    expect(attempt.status).toBe(502);
    expect((await json(attempt)).status).toBeNull();
    const [delivery] = await deliveriesOf(renter, endpoint.id);
    expect(delivery).toMatchObject({ state: 'pending', attempts: 1, last_status: null });
    expect(delivery.last_error).toMatch(/\S/);
  });

  it('checks the URL rules again before sending, and never sends to a URL they refuse', async () => {
    const renter = await signUp();
    const endpoint = await endpointAt(renter, sinkPath());
    const queue = holdingTransport();
    await emitEvent(env, leaseRunning(renter), queue);
    const deliveryId = (queue.messages[0]!.body as { delivery_id: string }).delivery_id;
    const outcome = await deliverWebhook({ ...env, ENVIRONMENT: 'production' }, deliveryId, { final: false });
    expect(outcome).toEqual({ outcome: 'failed', status: null, error: expect.stringContaining('https') });
    expect(await received(endpoint.path)).toEqual([]);
    expect(await deliveriesOf(renter, endpoint.id)).toEqual([expect.objectContaining({ state: 'failed', attempts: 1 })]);
  });

  it('refuses an unsigned, wrongly signed, re-addressed or altered message with 401, sending nothing', async () => {
    const renter = await signUp();
    const endpoint = await endpointAt(renter, sinkPath());
    const queue = holdingTransport();
    await emitEvent(env, leaseRunning(renter), queue);
    const body = JSON.stringify(queue.messages[0]!.body);
    await expectError(await call('/internal/queue/webhooks', { body }), 401, 'unauthorized');
    await expectError(await deliverSigned(body, { key: 'sig_someone_else' }), 401, 'unauthorized');
    await expectError(await deliverSigned(body, { url: 'https://api.gridlease.test/internal/queue/heartbeats' }), 401, 'unauthorized');
    await expectError(await deliverSigned(body, { sentBody: JSON.stringify({ delivery_id: 'whd_other' }) }), 401, 'unauthorized');
    expect(await received(endpoint.path)).toEqual([]);
    expect(await deliveriesOf(renter, endpoint.id)).toEqual([expect.objectContaining({ state: 'pending', attempts: 0 })]);
    // Signed with the next key (a rotation in progress) it is accepted.
    expect(await json(await deliverSigned(body, { key: 'sig_test_next_9876543210' }))).toMatchObject({ outcome: 'delivered', status: 200 });
  });
});
