// Local-only secrets: a JWT signing key made on first start and kept in the data
// folder, so tokens survive restarts. Production sets JWT_PRIVATE_KEYS with `wrangler secret put`.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalSecrets {
  JWT_PRIVATE_KEYS: string;
}

export async function generateSigningJwk(kid: string): Promise<JsonWebKey & { kid: string; alg: string }> {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  return { ...(await crypto.subtle.exportKey('jwk', pair.privateKey)), kid, alg: 'ES256' };
}

export async function loadOrCreateSecrets(dataDir: string): Promise<LocalSecrets> {
  const file = join(dataDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as LocalSecrets;
  const kid = `local-${new Date().toISOString().slice(0, 10)}`;
  const secrets = { JWT_PRIVATE_KEYS: JSON.stringify([await generateSigningJwk(kid)]) };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
