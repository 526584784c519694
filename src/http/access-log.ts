import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { log } from './log.ts';

/**
 * One structured line per request; LOG_REQUESTS=false turns it off (e.g. for load tests).
 * The line is written after the response has been handed back, so no caller waits for it.
 */
export function accessLog(): MiddlewareHandler<AppEnv> {
  return async function accessLog(c, next) {
    const started = Date.now();
    await next();
    if (c.env.LOG_REQUESTS === 'false') return;
    const level = c.res.status >= 500 ? 'error' : 'info';
    const fields = {
      request_id: c.get('requestId'),
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Date.now() - started,
    };
    afterResponse(c, () => log(level, 'request', fields));
  };
}

/** Runs `task` once the current response is on its way (at once where there is no execution context). */
function afterResponse(c: Context<AppEnv>, task: () => void): void {
  let ctx: { waitUntil(promise: Promise<unknown>): void };
  try {
    ctx = c.executionCtx;
  } catch {
    task();
    return;
  }
  ctx.waitUntil(
    new Promise<void>((resolve) =>
      setTimeout(() => {
        try {
          task();
        } finally {
          resolve();
        }
      }, 0),
    ),
  );
}
