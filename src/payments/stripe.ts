import Stripe from 'stripe';
import type { Bindings } from '../env.ts';

const clients = new Map<string, Stripe>();

/**
 * The official SDK with its fetch client (Workers have no Node http). STRIPE_API_BASE points
 * it elsewhere than api.stripe.com: the local mock in development and tests.
 */
export function stripeClient(env: Bindings): Stripe | null {
  const key = env.STRIPE_SECRET_KEY;
  if (!key) return null;
  const base = env.STRIPE_API_BASE || '';
  const cacheKey = `${key}\n${base}`;
  let client = clients.get(cacheKey);
  if (!client) {
    const target = base ? new URL(base) : null;
    client = new Stripe(key, {
      httpClient: Stripe.createFetchHttpClient(),
      maxNetworkRetries: 2,
      timeout: 10_000,
      telemetry: false,
      ...(target
        ? { host: target.hostname, port: target.port || (target.protocol === 'https:' ? 443 : 80), protocol: target.protocol === 'https:' ? 'https' : 'http' }
        : {}),
    });
    clients.set(cacheKey, client);
  }
  return client;
}

export const subtleCrypto = Stripe.createSubtleCryptoProvider();

/** Stripe's own tolerance for webhook timestamps. */
export const STRIPE_TOLERANCE_S = 300;
