import { sha256 } from './auth/encoding.ts';
// Crockford base32: no I, L, O, U, so ids survive being read aloud or retyped.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** Random, prefixed, URL-safe ids such as `acc_3k9x…` (100 random bits). */
export function newId(prefix: string, length = 20): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = `${prefix}_`;
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}

/**
 * An id derived from its parts, for records created under an idempotency key: a retry
 * computes the same id, so everything that references it is the same request again.
 */
export async function derivedId(prefix: string, ...parts: string[]): Promise<string> {
  const digest = await sha256(parts.join('\n'));
  let out = `${prefix}_`;
  for (let i = 0; i < 20; i++) out += ALPHABET[digest[i]! & 31];
  return out;
}
