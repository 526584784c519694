// The node's Ed25519 key: made at every join, kept in the config file next to the node token
// (0600), and used to sign answers the platform checks against the public key it registered.
import crypto from 'node:crypto';
import { NODE_KEY_FINGERPRINT_HEX, NODE_PUBLIC_KEY_PATTERN } from '../../src/contracts/signed-message.ts';
import { RunnerError } from './errors.ts';

export interface NodeKey {
  /** PKCS#8 DER, base64url: what the config file keeps. */
  privateKey: string;
  /** The raw 32-byte public key, base64url: what the platform registers. */
  publicKey: string;
}

export function generateNodeKey(): NodeKey {
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  return { privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url'), publicKey: rawPublicKey(privateKey) };
}

/** The public half of a stored private key; throws a RunnerError when it is not an Ed25519 key. */
export function publicKeyOf(privateKey: string): string {
  return rawPublicKey(loadPrivateKey(privateKey));
}

/** First hex characters of SHA-256 over the raw public key; the Worker shows the same. */
export function keyFingerprint(publicKey: string): string {
  if (!NODE_PUBLIC_KEY_PATTERN.test(publicKey)) throw new RunnerError('the node public key is not 32 bytes of base64url');
  return crypto.createHash('sha256').update(Buffer.from(publicKey, 'base64url')).digest('hex').slice(0, NODE_KEY_FINGERPRINT_HEX);
}

/** Signs `message` (build it with `signedMessage`) with the node key; base64url of 64 bytes. */
export function signNodeMessage(privateKey: string, message: Uint8Array): string {
  return crypto.sign(null, message, loadPrivateKey(privateKey)).toString('base64url');
}

function loadPrivateKey(privateKey: string): crypto.KeyObject {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: Buffer.from(privateKey, 'base64url'), format: 'der', type: 'pkcs8' });
  } catch {
    throw new RunnerError('the node key in the config is unreadable: run `gridlease-runner join` again');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new RunnerError('the node key in the config is not an Ed25519 key: run `gridlease-runner join` again');
  return key;
}

function rawPublicKey(key: crypto.KeyObject): string {
  // The JWK `x` of an OKP key is the raw public key, base64url without padding.
  const { x } = crypto.createPublicKey(key).export({ format: 'jwk' });
  if (typeof x !== 'string' || !NODE_PUBLIC_KEY_PATTERN.test(x)) throw new RunnerError('the node key has no Ed25519 public key');
  return x;
}
