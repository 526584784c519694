// Local-only secrets, made on first start and kept in the data folder (mode 0600) so
// tokens and signatures survive restarts. Production sets each with `wrangler secret put`.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalSecrets {
  JWT_PRIVATE_KEYS: string;
  /** Shared by the local mock Stripe (signing) and the Worker (verifying). */
  STRIPE_WEBHOOK_SECRET: string;
  /** Signs simulated chain-watcher notifications (`npm run dev:chain-deposit`). */
  CHAIN_WEBHOOK_SECRETS: string;
  /** The local queue transport signs like QStash with these. */
  QSTASH_CURRENT_SIGNING_KEY: string;
  QSTASH_NEXT_SIGNING_KEY: string;
}

export async function generateSigningJwk(kid: string): Promise<JsonWebKey & { kid: string; alg: string }> {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  return { ...(await crypto.subtle.exportKey('jwk', pair.privateKey)), kid, alg: 'ES256' };
}

export async function loadOrCreateSecrets(dataDir: string): Promise<LocalSecrets> {
  const file = join(dataDir, 'secrets.json');
  const saved: Partial<LocalSecrets> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const secrets: LocalSecrets = {
    JWT_PRIVATE_KEYS: saved.JWT_PRIVATE_KEYS ?? JSON.stringify([await generateSigningJwk(`local-${new Date().toISOString().slice(0, 10)}`)]),
    STRIPE_WEBHOOK_SECRET: saved.STRIPE_WEBHOOK_SECRET ?? `whsec_${randomBytes(24).toString('hex')}`,
    CHAIN_WEBHOOK_SECRETS: saved.CHAIN_WEBHOOK_SECRETS ?? randomBytes(32).toString('hex'),
    QSTASH_CURRENT_SIGNING_KEY: saved.QSTASH_CURRENT_SIGNING_KEY ?? `sig_${randomBytes(24).toString('hex')}`,
    QSTASH_NEXT_SIGNING_KEY: saved.QSTASH_NEXT_SIGNING_KEY ?? `sig_${randomBytes(24).toString('hex')}`,
  };
  if (JSON.stringify(saved) !== JSON.stringify(secrets)) writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
