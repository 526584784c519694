import { env, exports } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import app from '../../src/index.ts';
import { call, expectError, json, signUp, uniqueEmail, ORIGIN, PASSWORD } from './support.ts';

describe('request ids', () => {
  it('puts an x-request-id on every response, errors included', async () => {
    for (const res of [await call('/livez'), await call('/nope'), await call('/v1/accounts/me')]) {
      expect(res.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    }
  });

  it('keeps a well-formed caller-supplied id and replaces a malformed one', async () => {
    const kept = await call('/livez', { headers: { 'x-request-id': 'trace-1234abcd' } });
    expect(kept.headers.get('x-request-id')).toBe('trace-1234abcd');
    const replaced = await call('/livez', { headers: { 'x-request-id': '<script>alert(1)</script>' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^req_/);
  });
});

describe('bad requests get a 4xx in the error shape and change nothing', () => {
  it('answers an unknown route with 404 not_found', async () => {
    await expectError(await call('/v1/no-such-thing'), 404, 'not_found');
  });

  it('answers malformed JSON with 400 invalid_json', async () => {
    const email = uniqueEmail();
    const res = await call('/v1/accounts', { body: `{"email":"${email}", "password":` });
    await expectError(res, 400, 'invalid_json');
  });

  it('answers a body that is not UTF-8 with 400 invalid_json, and the next body still parses', async () => {
    const email = uniqueEmail();
    const bytes = new TextEncoder().encode(JSON.stringify({ email, password: PASSWORD, roles: ['renter'] }));
    const broken = new Uint8Array([...bytes.slice(0, 10), 0xff, 0xfe, ...bytes.slice(10)]);
    const res = await exports.default.fetch(
      new Request(`${ORIGIN}/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: broken }),
    );
    await expectError(res, 400, 'invalid_json');
    const created = await call('/v1/accounts', { body: { email, password: PASSWORD, roles: ['renter'] } });
    expect(created.status).toBe(201);
  });

  it('answers a non-JSON content type with 415', async () => {
    const res = await call('/v1/accounts', {
      body: 'email=a@b.c',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await expectError(res, 415, 'unsupported_media_type');
  });

  it('answers a missing body with 400 validation_failed', async () => {
    await expectError(await call('/v1/accounts', { method: 'POST' }), 400, 'validation_failed');
  });

  it('rejects unknown fields in strict bodies, naming them', async () => {
    const email = uniqueEmail();
    const res = await call('/v1/accounts', { body: { email, password: PASSWORD, roles: ['renter'], is_admin: true } });
    const error = await expectError(res, 400, 'validation_failed');
    expect(error.message).toContain('is_admin');
    // Nothing was created: the same email can still sign up.
    expect((await call('/v1/accounts', { body: { email, password: PASSWORD, roles: ['renter'] } })).status).toBe(201);
  });

  it('rejects a body over the documented limit with 413, by bytes received', async () => {
    const big = JSON.stringify({ email: uniqueEmail(), password: 'x'.repeat(70_000), roles: ['renter'] });
    await expectError(await call('/v1/accounts', { body: big }), 413, 'payload_too_large');
    // Without Content-Length (streamed), the limit still holds.
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const res = await exports.default.fetch(
      new Request(`${ORIGIN}/v1/accounts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stream,
        // @ts-expect-error duplex is required for streamed bodies
        duplex: 'half',
      }),
    );
    await expectError(res, 413, 'payload_too_large');
  });

  it('takes a capacity challenge’s openings, larger than any other body, on their own route only', async () => {
    const openings = JSON.stringify({ challenge_id: 'chl_x', gpus: [[{ leaf_index: 0, leaf: 'A'.repeat(200_000), path: [] }]] });
    // Past the size check: refused for want of a node token, not for its size.
    await expectError(await call('/v1/runner/challenges/chl_x/openings', { body: openings }), 401, 'unauthorized');
    await expectError(await call('/v1/runner/challenges/chl_x/commitment', { body: openings }), 413, 'payload_too_large');
  });
});

describe('unexpected errors', () => {
  it('answers 500 internal without internal detail and logs it with the request id', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const account = await signUp();
    // A broken signing-key secret is an operator mistake the client must not see.
    const brokenEnv = { ...env, JWT_PRIVATE_KEYS: '{not json' };
    const res = await app.fetch(
      new Request('https://api.gridlease.test/v1/auth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'api_key', api_key: account.apiKey }),
      }),
      brokenEnv,
      { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext,
    );
    const error = await expectError(res, 500, 'internal');
    const text = JSON.stringify(error);
    expect(text).not.toContain('JWT_PRIVATE_KEYS');
    expect(text).not.toMatch(/at .*\.(ts|js):\d+/);
    const logged = errors.mock.calls.map((args) => String(args[0])).find((line) => line.includes(error.request_id));
    expect(logged).toBeDefined();
    expect(JSON.parse(logged!)).toMatchObject({ level: 'error', request_id: error.request_id });
    errors.mockRestore();
  });
});

describe('health', () => {
  it('reports the Worker and the database', async () => {
    const res = await call('/healthz');
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ status: 'ok', db: 'ok' });
  });

  it('answers 503 when the database is unreachable', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    const res = await app.fetch(new Request('https://api.gridlease.test/healthz'), { ...env, LIBSQL_URL: 'http://127.0.0.1:9' }, {
      waitUntil() {},
      passThroughOnException() {},
      props: {},
    } as unknown as ExecutionContext);
    expect(res.status).toBe(503);
    expect(await json(res)).toEqual({ status: 'unavailable', db: 'unreachable' });
    vi.restoreAllMocks();
  });
});

describe('CORS', () => {
  it('is open on public routes', async () => {
    const res = await call('/.well-known/jwks.json', { headers: { origin: 'https://blog.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('sends no CORS headers on private routes, so browsers on other sites cannot read them', async () => {
    const account = await signUp();
    const res = await call('/v1/accounts/me', { auth: account.apiKey, headers: { origin: 'https://evil.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await call('/v1/accounts/me', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('API documentation', () => {
  it('serves an OpenAPI document generated from the route schemas', async () => {
    const res = await call('/openapi.json');
    expect(res.status).toBe(200);
    const doc = await json(res);
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/accounts', '/v1/accounts/me', '/v1/auth/token', '/v1/api-keys', '/v1/api-keys/{id}', '/healthz']),
    );
    expect(doc.components.schemas.Error).toBeDefined();
    expect(doc.paths['/v1/accounts'].post.requestBody.content['application/json'].schema).toBeDefined();
  });

  it('serves an interactive page at /docs', async () => {
    const res = await call('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('/openapi.json');
  });
});
