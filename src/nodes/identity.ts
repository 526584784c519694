// A node's identity: the Ed25519 public key its runner registered at join. Whatever a node signs
// (built with `signedMessage`) is checked here with Web Crypto. Every input may be hostile, so
// nothing here throws: a key or signature that is not exactly what it should be verifies nothing.
import { fromBase64Url, toHex } from '../auth/encoding.ts';
import { NODE_KEY_FINGERPRINT_HEX, NODE_PUBLIC_KEY_PATTERN, NODE_SIGNATURE_PATTERN } from '../contracts/signed-message.ts';

const ED25519 = { name: 'Ed25519' } as const;

/** The raw key, or null unless `publicKey` is the canonical base64url of exactly 32 bytes. */
function publicKeyBytes(publicKey: unknown): Uint8Array<ArrayBuffer> | null {
  return typeof publicKey === 'string' && NODE_PUBLIC_KEY_PATTERN.test(publicKey) ? fromBase64Url(publicKey) : null;
}

/** True when Web Crypto takes `publicKey` as an Ed25519 public key (registration refuses others). */
export async function isUsableNodeKey(publicKey: string): Promise<boolean> {
  const raw = publicKeyBytes(publicKey);
  if (!raw) return false;
  try {
    await crypto.subtle.importKey('raw', raw, ED25519, false, ['verify']);
    return true;
  } catch {
    return false;
  }
}

/**
 * True only when `signature` is the node key's Ed25519 signature over exactly `message`. False
 * (never an exception) for malformed base64url, wrong lengths, keys Web Crypto refuses, and
 * signatures over other bytes.
 */
export async function verifyNodeSignature(publicKey: string, message: Uint8Array, signature: string): Promise<boolean> {
  const raw = publicKeyBytes(publicKey);
  if (!raw || typeof signature !== 'string' || !NODE_SIGNATURE_PATTERN.test(signature) || !(message instanceof Uint8Array)) return false;
  try {
    const key = await crypto.subtle.importKey('raw', raw, ED25519, false, ['verify']);
    return await crypto.subtle.verify(ED25519, key, fromBase64Url(signature), new Uint8Array(message));
  } catch {
    return false;
  }
}

/** First hex characters of SHA-256 over the raw key; `gridlease-runner status` prints the same. */
export async function nodeKeyFingerprint(publicKey: string): Promise<string | null> {
  const raw = publicKeyBytes(publicKey);
  if (!raw) return null;
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', raw))).slice(0, NODE_KEY_FINGERPRINT_HEX);
}
