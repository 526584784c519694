import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { log } from './log.ts';

/** One structured line per request; LOG_REQUESTS=false turns it off (e.g. for load tests). */
export function accessLog(): MiddlewareHandler<AppEnv> {
  return async function accessLog(c, next) {
    const started = Date.now();
    await next();
    if (c.env.LOG_REQUESTS === 'false') return;
    log(c.res.status >= 500 ? 'error' : 'info', 'request', {
      request_id: c.get('requestId'),
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Date.now() - started,
    });
  };
}
