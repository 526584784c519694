// The SDK against a fake API: errors thrown in the API's shape, Idempotency-Keys on writes and
// reused on retries, and a log stream that resumes where it broke off.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGridlease, GridleaseError, type LogEvent, type Schemas } from '../../../sdk/src/index.ts';
import { sendError, sendJson, startFakeApi, type FakeApi } from '../../support/cli-fake-api.ts';

let api: FakeApi;
beforeEach(async () => {
  api = await startFakeApi();
});
afterEach(async () => {
  await api.close();
});

const BALANCES = { data: [{ asset: 'USD', available: '10.00', held: '0.00' }] };

async function caught(p: Promise<unknown>): Promise<GridleaseError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(GridleaseError);
    return err as GridleaseError;
  }
  throw new Error('expected a GridleaseError');
}

describe('errors', () => {
  it('throws the API’s error body as a GridleaseError with code, message, request_id and status', async () => {
    api.on('GET /v1/leases/lse_nope', (_req, res) => sendError(res, 404, 'not_found', 'no lease lse_nope', 'req_abc12345'));
    const client = createGridlease({ baseUrl: api.url, token: 'glk_test' });
    const err = await caught(client.GET('/v1/leases/{id}', { params: { path: { id: 'lse_nope' } } }));
    expect(err.toJSON()).toEqual({ code: 'not_found', message: 'no lease lse_nope', request_id: 'req_abc12345', status: 404 });
    expect(err.message).toBe('no lease lse_nope');
  });

  it('sends the token as a bearer credential and returns data on success', async () => {
    api.on('GET /v1/balances', (_req, res) => sendJson(res, 200, BALANCES));
    const { data } = await createGridlease({ baseUrl: `${api.url}/`, token: 'glk_secret' }).GET('/v1/balances');
    expect(data).toEqual(BALANCES);
    expect(api.received[0]!.headers.authorization).toBe('Bearer glk_secret');
  });

  it('names an answer that is not the API’s shape unexpected_response, with the status and a snippet', async () => {
    api.on('GET /v1/balances', (_req, res) => {
      res.writeHead(418, { 'content-type': 'text/html', 'x-request-id': 'req_proxy01' });
      res.end('<html>teapot</html>');
    });
    const err = await caught(createGridlease({ baseUrl: api.url, token: 't', retries: 0 }).GET('/v1/balances'));
    expect(err.code).toBe('unexpected_response');
    expect(err.status).toBe(418);
    expect(err.request_id).toBe('req_proxy01');
    expect(err.message).toContain('teapot');
  });

  it('turns a connection that fails into network_error with status 0', async () => {
    const url = api.url;
    await api.close();
    const err = await caught(createGridlease({ baseUrl: url, token: 't', retries: 0 }).GET('/v1/balances'));
    expect(err.code).toBe('network_error');
    expect(err.status).toBe(0);
    expect(err.request_id).toBeNull();
    expect(err.message).toContain(url);
    api = await startFakeApi(); // for afterEach
  });

  it('lets a caller’s abort through as an AbortError', async () => {
    api.on('GET /v1/balances', () => {
      // never answers
    });
    const client = createGridlease({ baseUrl: api.url, token: 't' });
    const stop = new AbortController();
    const pending = client.GET('/v1/balances', { signal: stop.signal });
    setTimeout(() => stop.abort(), 20);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('idempotency keys', () => {
  const order: Schemas['BuyOrder'] = { side: 'buy', region: 'us-east', gpu_model: 'h100-80gb', gpus: 1, price: '2.00', duration_s: 3600, pay_with: 'USD', workload: { image: 'x', command: [], env: {}, ports: [] } };

  it('puts a fresh UUID Idempotency-Key on every write and none on reads', async () => {
    api.on('POST /v1/orders', (_req, res) => sendJson(res, 201, { order: { id: 'ord_1' }, leases: [] }));
    api.on('POST /v1/dev/faucet', (_req, res) => sendJson(res, 201, {}));
    api.on('GET /v1/balances', (_req, res) => sendJson(res, 200, BALANCES));
    const client = createGridlease({ baseUrl: api.url, token: 't' });
    await client.POST('/v1/orders', { body: order });
    await client.POST('/v1/orders', { body: order });
    await client.POST('/v1/dev/faucet', { body: { asset: 'USD', amount: '5' } });
    await client.GET('/v1/balances');
    const keys = api.received.map((r) => r.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(keys[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[0]).not.toBe(keys[1]);
    expect(keys[2]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[3]).toBeUndefined();
  });

  it('keeps a key the caller gives, per call or from its own generator', async () => {
    api.on('POST /v1/orders', (_req, res) => sendJson(res, 201, { order: { id: 'ord_1' }, leases: [] }));
    await createGridlease({ baseUrl: api.url, token: 't' }).POST('/v1/orders', { body: order, headers: { 'Idempotency-Key': 'my-key-0001' } });
    let n = 0;
    await createGridlease({ baseUrl: api.url, token: 't', idempotencyKey: () => `gen-${++n}` }).POST('/v1/orders', { body: order });
    expect(api.received.map((r) => r.headers['idempotency-key'])).toEqual(['my-key-0001', 'gen-1']);
  });

  it('retries a write after a 503 with the same key and body, so the order is placed once', async () => {
    let calls = 0;
    api.on('POST /v1/orders', (_req, res) => {
      if (++calls < 3) return sendError(res, 503, 'service_unavailable', 'retry with the same Idempotency-Key');
      sendJson(res, 201, { order: { id: 'ord_1' }, leases: [] });
    });
    const { data } = await createGridlease({ baseUrl: api.url, token: 't', retryDelayMs: 1 }).POST('/v1/orders', { body: order });
    expect(data?.order.id).toBe('ord_1');
    expect(api.received).toHaveLength(3);
    const keys = new Set(api.received.map((r) => r.headers['idempotency-key']));
    expect(keys.size).toBe(1);
    expect(api.received.every((r) => JSON.stringify(r.body) === JSON.stringify(order))).toBe(true);
  });

  it('gives up after its retries and throws the last error', async () => {
    api.on('POST /v1/orders', (_req, res) => sendError(res, 503, 'service_unavailable', 'busy'));
    const err = await caught(createGridlease({ baseUrl: api.url, token: 't', retries: 1, retryDelayMs: 1 }).POST('/v1/orders', { body: order }));
    expect(err.code).toBe('service_unavailable');
    expect(api.received).toHaveLength(2);
  });

  it('does not retry a 4xx', async () => {
    api.on('POST /v1/orders', (_req, res) => sendError(res, 402, 'insufficient_funds', 'not enough USD'));
    const err = await caught(createGridlease({ baseUrl: api.url, token: 't', retryDelayMs: 1 }).POST('/v1/orders', { body: order }));
    expect(err.code).toBe('insufficient_funds');
    expect(api.received).toHaveLength(1);
  });
});

describe('followLogs', () => {
  const line = (seq: number, text: string) => ({ seq, at: '2026-12-07T07:00:00.000Z', stream: 'stdout', text });
  const event = (name: string, data: unknown, id?: number) => `${id !== undefined ? `id: ${id}\n` : ''}event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

  it('resumes after the last line when the server drops the stream, without repeating lines', async () => {
    let connection = 0;
    api.on('GET /v1/leases/lse_1/logs/stream', (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (++connection === 1) {
        // A slow follower is dropped mid-stream.
        res.end(`: hello\n\n${event('log', line(0, 'zero'), 0)}${event('log', line(1, 'one'), 1)}`);
        return;
      }
      // The server replays from `since` inclusively: line 1 again, then the rest.
      const since = Number(req.query.get('since'));
      const lines = [line(1, 'one'), line(2, 'two')].filter((l) => l.seq >= since);
      res.end(lines.map((l) => event('log', l, l.seq)).join('') + event('end', { exit_code: 3 }));
    });
    const client = createGridlease({ baseUrl: api.url, token: 't', retryDelayMs: 1 });
    const events: LogEvent[] = [];
    for await (const ev of client.followLogs('lse_1')) events.push(ev);
    expect(events.map((e) => (e.type === 'line' ? e.line.text : `end ${e.exit_code}`))).toEqual(['zero', 'one', 'two', 'end 3']);
    const second = api.received[1]!;
    expect(second.query.get('since')).toBe('2');
    expect(second.headers['last-event-id']).toBe('1');
    expect(second.headers.accept).toBe('text/event-stream');
  });

  it('throws the API error when the stream is refused', async () => {
    api.on('GET /v1/leases/lse_1/logs/stream', (_req, res) => sendError(res, 429, 'rate_limited', 'too many followers'));
    const client = createGridlease({ baseUrl: api.url, token: 't', retryDelayMs: 1 });
    const err = await caught((async () => {
      for await (const _ of client.followLogs('lse_1')) void _;
    })());
    expect(err.code).toBe('rate_limited');
  });
});
