import { Receiver } from '@upstash/qstash';
import { createServer, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { QStashTransport } from '../../src/queue/qstash.ts';
import { signLikeQStash } from '../../src/queue/signature.ts';

const closers: Array<() => void> = [];
afterEach(() => closers.splice(0).forEach((c) => c()));

describe('the local transport’s signature', () => {
  it('verifies with the official QStash Receiver, and only for its URL and body', async () => {
    const receiver = new Receiver({ currentSigningKey: 'sig_current', nextSigningKey: 'sig_next', devMode: false });
    const url = 'https://api.gridlease.test/internal/queue/heartbeats';
    const body = '{"batch_id":"b1"}';
    const signature = await signLikeQStash('sig_current', url, body, Math.floor(Date.now() / 1000));
    await expect(receiver.verify({ signature, body, url })).resolves.toBe(true);
    await expect(receiver.verify({ signature: await signLikeQStash('sig_next', url, body, Math.floor(Date.now() / 1000)), body, url })).resolves.toBe(true);
    await expect(receiver.verify({ signature, body: '{"batch_id":"b2"}', url })).rejects.toThrow();
    await expect(receiver.verify({ signature, body, url: `${url}x` })).rejects.toThrow();
    await expect(receiver.verify({ signature: await signLikeQStash('sig_other', url, body, Math.floor(Date.now() / 1000)), body, url })).rejects.toThrow();
    await expect(receiver.verify({ signature: await signLikeQStash('sig_current', url, body, Math.floor(Date.now() / 1000) - 3600), body, url })).rejects.toThrow();
  });
});

describe('the QStash transport', () => {
  it('publishes JSON to the callback URL with a deduplication id', async () => {
    const seen: Array<{ method: string; path: string; headers: IncomingMessage['headers']; body: string }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d)).on('end', () => {
        seen.push({ method: req.method!, path: req.url!, headers: req.headers, body });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ messageId: 'msg_1' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    closers.push(() => server.close());
    const port = (server.address() as { port: number }).port;
    const env = { QSTASH_TOKEN: 'qstash_token', QSTASH_URL: `http://127.0.0.1:${port}`, PUBLIC_URL: 'https://api.gridlease.dev' };
    await new QStashTransport(env).publish({ path: '/internal/queue/heartbeats', body: { batch_id: 'b1' }, deduplicationId: 'us-east_0_1' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('POST');
    expect(decodeURIComponent(seen[0]!.path)).toBe('/v2/publish/https://api.gridlease.dev/internal/queue/heartbeats');
    expect(seen[0]!.headers.authorization).toBe('Bearer qstash_token');
    expect(seen[0]!.headers['upstash-deduplication-id']).toBe('us-east_0_1');
    expect(JSON.parse(seen[0]!.body)).toEqual({ batch_id: 'b1' });
  });
});
