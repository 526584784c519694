import { fromBase64Url, timingSafeEqual, toBase64Url } from './encoding.ts';

/**
 * PBKDF2-SHA256 through WebCrypto, the slow hash Workers offer natively.
 * 100,000 iterations is the most the Workers runtime accepts; the count is stored
 * with each hash so it can be raised later and old hashes still verify.
 */
export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

// The most common passwords that pass the length rule; a full breach list belongs
// behind a k-anonymity API, which the Worker cannot reach from every environment.
const COMMON = new Set([
  'password1234', 'password12345', 'password123!', '123456789012', 'qwertyuiopas',
  'qwerty123456', '111111111111', '000000000000', 'iloveyou1234', 'letmein12345',
  'administrator', 'changeme1234', 'welcome12345', '1q2w3e4r5t6y', 'passwordpassword',
]);

/** Returns why a password is refused, or null when it is acceptable. */
export function passwordProblem(password: string, email: string): string | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `password must be at least ${PASSWORD_MIN} characters`;
  if (length > PASSWORD_MAX) return `password must be at most ${PASSWORD_MAX} characters`;
  if (new Set(password).size < 5) return 'password must use at least 5 different characters';
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) return 'password is too common';
  const local = email.split('@')[0] ?? '';
  if (local.length >= 4 && lower.includes(local.toLowerCase())) return 'password must not contain the email address';
  return null;
}

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password.normalize('NFKC')), 'PBKDF2', false, [
    'deriveBits',
  ]);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, HASH_BYTES * 8);
  return new Uint8Array(bits);
}

export async function hashPassword(password: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, iterations);
  return `pbkdf2-sha256$${iterations}$${toBase64Url(salt)}$${toBase64Url(hash)}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, iter, salt, hash] = stored.split('$');
  const iterations = Number(iter);
  if (scheme !== 'pbkdf2-sha256' || !Number.isInteger(iterations) || !salt || !hash) return false;
  const actual = await derive(password, fromBase64Url(salt), iterations);
  return timingSafeEqual(actual, fromBase64Url(hash));
}

// Verifying against this when the email is unknown makes that answer take as long
// as a wrong password, so response time does not reveal which emails exist.
const DUMMY_HASH = `pbkdf2-sha256$${PBKDF2_ITERATIONS}$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;

export async function burnPasswordCheck(password: string): Promise<void> {
  await verifyPassword(password, DUMMY_HASH);
}
