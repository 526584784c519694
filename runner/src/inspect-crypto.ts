// node:crypto for the pure inspection modules (they take SHA-256, Ed25519 verification and
// randomness injected): shared by `gridlease-runner inspect` and `verify-report`.
import crypto from 'node:crypto';
import type { Sha256 } from '../../src/inspections/sha256.ts';
import type { VerifySignature } from '../../src/inspections/transcript-check.ts';

export const nodeSha256: Sha256 = async (data) => new Uint8Array(crypto.createHash('sha256').update(data).digest());

/** Ed25519 over `message` with a raw 32-byte public key (base64url); false for anything unreadable. */
export function ed25519Verifies(publicKey: string, message: Uint8Array, signature: string): boolean {
  try {
    const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
    return crypto.verify(null, message, key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

export const nodeVerify: VerifySignature = async (publicKey, message, signature) => ed25519Verifies(publicKey, message, signature);

/** Uniform in [0, 1) from the OS's CSPRNG (48 bits): an inspector's own picks must not be guessable. */
export function cryptoRandom(): number {
  return crypto.randomBytes(6).readUIntBE(0, 6) / 2 ** 48;
}

export const randomHex = (bytes = 32): string => crypto.randomBytes(bytes).toString('hex');
