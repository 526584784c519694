import { createRoute, z } from '@hono/zod-openapi';
import { connection } from '../db/client.ts';
import { log } from '../http/log.ts';
import { router } from '../http/router.ts';

const DB_TIMEOUT_MS = 2_000;

const app = router();

app.openapi(
  createRoute({
    method: 'get',
    path: '/livez',
    tags: ['health'],
    summary: 'Liveness: the Worker answers (touches nothing else)',
    responses: { 200: { description: 'Alive', content: { 'text/plain': { schema: z.string() } } } },
  }),
  (c) => c.text('ok', 200),
);

const Health = z.object({ status: z.enum(['ok', 'unavailable']), db: z.enum(['ok', 'unreachable']) }).openapi('Health');

app.openapi(
  createRoute({
    method: 'get',
    path: '/healthz',
    tags: ['health'],
    summary: 'Readiness: the Worker and its libSQL database',
    responses: {
      200: { description: 'Healthy', content: { 'application/json': { schema: Health } } },
      503: { description: 'Database unreachable', content: { 'application/json': { schema: Health } } },
    },
  }),
  async (c) => {
    c.header('Cache-Control', 'no-store');
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        connection(c.env).client.execute('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${DB_TIMEOUT_MS} ms`)), DB_TIMEOUT_MS);
        }),
      ]);
      return c.json({ status: 'ok' as const, db: 'ok' as const }, 200);
    } catch (err) {
      log('warn', 'health check: database unreachable', { request_id: c.get('requestId'), error: String(err) });
      return c.json({ status: 'unavailable' as const, db: 'unreachable' as const }, 503);
    } finally {
      clearTimeout(timer);
    }
  },
);

export default app;
