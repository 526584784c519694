// GET /v1/market/stream: live trades and best prices over a WebSocket, public like the rest of
// the market data. Each RegionBook accepts its subscribers itself (hibernation API). A
// connection to one book is handed to that book; a connection to several is joined here: the
// Worker opens one socket per book and relays their messages into the client's one socket, so
// several widgets on a page can share a connection while every book still hibernates.
import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { limitStreamConnections } from '../auth/rate-limit.ts';
import { errorResponses } from '../contracts/common.ts';
import { regionBook } from '../durable/region-book.ts';
import type { Bindings } from '../env.ts';
import { ApiError } from '../http/errors.ts';
import { router, validationError } from '../http/router.ts';
import { PING, PONG, parseStreamBooks, type StreamBook } from '../market/stream.ts';

const app = router();

/** Plain HTTP gets 426 before anything is counted; every upgrade attempt counts against the IP. */
const upgradeOnly: MiddlewareHandler<AppEnv> = async function upgradeOnly(c, next) {
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
    throw new ApiError('upgrade_required', 'the market stream is a WebSocket: send Upgrade: websocket', { headers: { Upgrade: 'websocket' } });
  }
  await limitStreamConnections(c);
  await next();
};

app.use('/', upgradeOnly);

async function connect(env: Bindings, book: StreamBook): Promise<WebSocket> {
  const url = `https://book.internal/stream?book=${encodeURIComponent(book.name)}`;
  const res = await regionBook(env, book.region, book.gpuModel).fetch(url, { headers: { Upgrade: 'websocket' } });
  if (!res.webSocket) throw new Error(`book ${book.name} refused the stream: ${res.status}`);
  return res.webSocket;
}

/** Joins the books' sockets into one; when either end closes, the rest follow. */
function join(upstreams: WebSocket[]): WebSocket {
  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  const closeAll = (code = 1000, reason = '') => {
    for (const ws of [server, ...upstreams]) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closed.
      }
    }
  };
  for (const up of upstreams) {
    up.accept();
    up.addEventListener('message', (e) => {
      try {
        server.send(e.data);
      } catch {
        closeAll(1011, 'client gone');
      }
    });
    up.addEventListener('close', () => closeAll(1012, 'book restarting; reconnect'));
    up.addEventListener('error', () => closeAll(1011, 'book stream failed'));
  }
  server.addEventListener('message', (e) => {
    if (e.data === PING) server.send(PONG);
  });
  server.addEventListener('close', () => closeAll());
  server.addEventListener('error', () => closeAll());
  return client;
}

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['market'],
    summary: 'Live trades and best prices of up to 20 books over one WebSocket (see docs/api.md, "Live market stream")',
    request: {
      query: z
        .object({ books: z.string().openapi({ example: 'us-east:h100-80gb,eu-west:a100-80gb', description: 'region:gpu_model, comma-separated, at most 20' }) })
        .strict(),
    },
    responses: { 101: { description: 'Switching to the WebSocket protocol' }, ...errorResponses(400, 426, 429) },
  }),
  async (c) => {
    const parsed = parseStreamBooks(c.req.valid('query').books);
    if (!parsed.ok) throw validationError([{ path: ['books'], message: parsed.problem }], 'query');
    const sockets = parsed.books.length === 1 ? null : await Promise.all(parsed.books.map((b) => connect(c.env, b)));
    // A fresh Response: the one from a book has immutable headers, and middleware adds some.
    return new Response(null, { status: 101, webSocket: sockets ? join(sockets) : await connect(c.env, parsed.books[0]!) }) as never;
  },
);

export default app;
