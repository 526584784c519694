import { describe, expect, inject, it } from 'vitest';
import { call, expectError, json, signUp, type TestAccount } from './support.ts';

const SINK = inject('webhookSinkUrl');

/** A fresh path on the sink; `/fail-<n>/…` answers 500 to its first n requests. */
const sinkPath = (prefix = '') => `${prefix}/hooks/${crypto.randomUUID()}`;

async function addEndpoint(account: TestAccount, body: Record<string, unknown>): Promise<Response> {
  return call('/v1/webhook-endpoints', { auth: account.apiKey, body });
}

async function endpointAt(account: TestAccount, path: string, events: string[] = ['lease.running']) {
  const res = await addEndpoint(account, { url: SINK + path, events });
  if (res.status !== 201) throw new Error(`endpoint: ${res.status} ${await res.text()}`);
  const body = await json(res);
  return { id: body.endpoint.id as string, secret: body.secret as string, path };
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
