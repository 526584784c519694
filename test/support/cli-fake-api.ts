// A small node:http stand-in for the Gridlease API, for the SDK's and the CLI's unit tests: each
// test routes "METHOD /path" to a handler and reads back what the client sent.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export type Handler = (req: Received, res: ServerResponse) => void | Promise<void>;

export interface FakeApi {
  url: string;
  received: Received[];
  /** Routes `METHOD /path` (path without the query) to `handler`; a later call replaces it. */
  on(route: string, handler: Handler): void;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req_fake', ...headers });
  res.end(JSON.stringify(body));
}

/** The API's error shape. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, requestId = 'req_test123'): void {
  sendJson(res, status, { error: { code, message, request_id: requestId } }, { 'x-request-id': requestId });
}

export async function startFakeApi(): Promise<FakeApi> {
  const routes = new Map<string, Handler>();
  const received: Received[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    const r: Received = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body: text ? JSON.parse(text) : undefined };
    received.push(r);
    const handler = routes.get(`${r.method} ${r.path}`);
    if (!handler) return sendError(res, 404, 'not_found', `no route ${r.method} ${r.path}`);
    try {
      await handler(r, res);
    } catch (err) {
      if (!res.headersSent) sendError(res, 500, 'internal', (err as Error).message);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    on: (route, handler) => void routes.set(route, handler),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
