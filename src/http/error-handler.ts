import type { ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { AppEnv } from '../app-env.ts';
import { ApiError } from './errors.ts';
import { log } from './log.ts';

function requestIdOf(c: Parameters<ErrorHandler<AppEnv>>[1]): string {
  return c.get('requestId') ?? 'unknown';
}

/** The one place an error becomes a response; nothing internal crosses it. */
export const onError: ErrorHandler<AppEnv> = (err, c) => {
  const requestId = requestIdOf(c);
  let apiError: ApiError;
  if (err instanceof ApiError) {
    apiError = err;
  } else if (err instanceof HTTPException && err.status < 500) {
    apiError = new ApiError(err.status === 413 ? 'payload_too_large' : 'bad_request', err.message || 'bad request');
  } else {
    log('error', 'unhandled error', {
      request_id: requestId,
      method: c.req.method,
      path: c.req.path,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    apiError = new ApiError('internal', 'internal error; quote the request id when reporting it');
  }
  const res = c.json(apiError.toBody(requestId), apiError.status);
  for (const [name, value] of Object.entries(apiError.headers)) res.headers.set(name, value);
  res.headers.set('x-request-id', requestId);
  return res;
};

export const notFound: NotFoundHandler<AppEnv> = (c) => {
  const body = new ApiError('not_found', `no route for ${c.req.method} ${c.req.path}`).toBody(requestIdOf(c));
  return c.json(body, 404);
};
