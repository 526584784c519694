// A stand-in for renters' webhook endpoints in tests: a node:http server on 127.0.0.1 that
// records every request and answers 200, except under `/fail-<n>/…`, where each distinct path
// answers 500 to its first n requests. Tests read what a path received with
// `GET /received?path=<path>` (a JSON array of {method, path, headers, body}).
import { createServer, type IncomingHttpHeaders } from 'node:http';

export interface SinkRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface WebhookSink {
  /** e.g. http://127.0.0.1:40123 */
  url: string;
  close(): Promise<void>;
}

export async function startWebhookSink(): Promise<WebhookSink> {
  const received = new Map<string, SinkRequest[]>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://sink');
      if (req.method === 'GET' && url.pathname === '/received') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(received.get(url.searchParams.get('path') ?? '') ?? []));
        return;
      }
      const seen = received.get(url.pathname) ?? [];
      seen.push({ method: req.method ?? '', path: url.pathname, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      received.set(url.pathname, seen);
      const failures = Number(/^\/fail-(\d+)\//.exec(url.pathname)?.[1] ?? 0);
      res.statusCode = seen.length <= failures ? 500 : 200;
      res.end(res.statusCode === 200 ? 'ok' : 'failing on purpose');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}
