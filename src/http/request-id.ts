import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';

// A caller-supplied id is kept only when it is short and plain, so it cannot be
// used to inject text into logs.
const CALLER_ID = /^[A-Za-z0-9._-]{8,128}$/;

export function requestId(): MiddlewareHandler<AppEnv> {
  return async function requestId(c, next) {
    const given = c.req.header('x-request-id');
    const id = given && CALLER_ID.test(given) ? given : `req_${crypto.randomUUID().replaceAll('-', '')}`;
    c.set('requestId', id);
    c.header('x-request-id', id);
    await next();
    // Responses built by onError replace the headers set above.
    c.res.headers.set('x-request-id', id);
  };
}
