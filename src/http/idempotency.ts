import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { ApiError } from './errors.ts';

// Visible ASCII, as Stripe and the IETF Idempotency-Key draft allow; long enough for UUIDs.
const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Money-moving POSTs need an `Idempotency-Key` header: a retry with the same key and body
 * returns the first result and moves nothing; the same key with another body is a 409.
 */
export function requireIdempotencyKey(): MiddlewareHandler<AppEnv> {
  return async function requireIdempotencyKey(c, next) {
    const key = c.req.header('idempotency-key');
    if (key === undefined) throw new ApiError('missing_idempotency_key', 'this request moves money and needs an Idempotency-Key header');
    if (!KEY.test(key)) throw new ApiError('missing_idempotency_key', 'Idempotency-Key must be 1–255 visible ASCII characters');
    c.set('idempotencyKey', key);
    await next();
  };
}

export function idempotencyConflict(): ApiError {
  return new ApiError('idempotency_conflict', 'this Idempotency-Key was already used for a different request');
}
