// Every queue callback is verified the same way, whichever transport sent it: the official
// @upstash/qstash Receiver with the current and next signing key (a rotation in progress),
// the exact URL the message was addressed to, and the raw body before anything parses it.
import type { Context } from 'hono';
import { Receiver } from '@upstash/qstash';
import type { AppEnv } from '../app-env.ts';
import { ApiError } from '../http/errors.ts';

/** Returns the verified raw body, or throws 401 (bad signature) / 503 (no keys configured). */
export async function verifiedQueueBody(c: Context<AppEnv>): Promise<string> {
  const signature = c.req.header('upstash-signature');
  const currentSigningKey = c.env.QSTASH_CURRENT_SIGNING_KEY;
  if (!currentSigningKey) throw new ApiError('service_unavailable', 'queue signing keys are not configured');
  if (!signature) throw new ApiError('unauthorized', 'missing Upstash-Signature');
  const raw = await c.req.text();
  try {
    await new Receiver({ currentSigningKey, nextSigningKey: c.env.QSTASH_NEXT_SIGNING_KEY || currentSigningKey, devMode: false }).verify({
      signature,
      body: raw,
      url: c.req.url,
    });
  } catch {
    throw new ApiError('unauthorized', 'queue signature is invalid');
  }
  return raw;
}

/** How often the queue has already retried this message (`Upstash-Retried`; 0 on the first attempt). */
export function queueRetried(c: Context<AppEnv>): number {
  const n = Number(c.req.header('upstash-retried') ?? '0');
  return Number.isInteger(n) && n >= 0 ? n : 0;
}
