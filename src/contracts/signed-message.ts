// The bytes a node (or anyone holding a Gridlease key) signs. Shared by the Worker, which
// verifies, and the runner, which signs; pure, so both bundle it. One message can never be read
// as another: a fixed version line, then the domain (what kind of message it is), then the
// fields sorted by key, one `key=value` line each. Keys are a closed alphabet without `=` and
// values hold no line break, so the lines split back into exactly the fields that were signed.

export const SIGNED_MESSAGE_VERSION = 'gridlease-signed-v1';

const DOMAIN = /^[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*$/;
const KEY = /^[a-z][a-z0-9_]*$/;
// Control characters include the line breaks; lone surrogates would encode to U+FFFD and so
// collide with a real U+FFFD.
const VALUE = /^[^\u0000-\u001f\u007f]*$/u;
const LONE_SURROGATE = /\p{Surrogate}/u;
const MAX_DOMAIN = 64;
const MAX_KEY = 64;
const MAX_VALUE = 4096;
const MAX_FIELDS = 64;

export type SignedFields = Readonly<Record<string, string>>;

/** Why `signedMessage(domain, fields)` would refuse these, or null when they can be signed. */
export function signedMessageProblem(domain: string, fields: SignedFields): string | null {
  if (typeof domain !== 'string' || domain.length > MAX_DOMAIN || !DOMAIN.test(domain)) return 'domain must be lowercase words joined by . _ or -';
  const keys = Object.keys(fields);
  if (keys.length > MAX_FIELDS) return `at most ${MAX_FIELDS} fields`;
  for (const key of keys) {
    if (key.length > MAX_KEY || !KEY.test(key)) return `field name "${key.slice(0, MAX_KEY)}" must be lowercase letters, digits and _`;
    const value = fields[key];
    if (typeof value !== 'string') return `field ${key} must be a string`;
    if (value.length > MAX_VALUE) return `field ${key} is longer than ${MAX_VALUE} characters`;
    if (!VALUE.test(value) || LONE_SURROGATE.test(value)) return `field ${key} must not contain control characters or line breaks`;
  }
  return null;
}

/** The canonical UTF-8 bytes for `domain` and `fields`; throws a TypeError on what cannot be signed. */
export function signedMessage(domain: string, fields: SignedFields): Uint8Array {
  const problem = signedMessageProblem(domain, fields);
  if (problem) throw new TypeError(`cannot sign this message: ${problem}`);
  // Keys are ASCII, so the default (UTF-16 code unit) order is byte order.
  const lines = Object.keys(fields)
    .sort()
    .map((key) => `${key}=${fields[key]}\n`);
  return new TextEncoder().encode(`${SIGNED_MESSAGE_VERSION}\n${domain}\n${lines.join('')}`);
}

/** Standard base64url without padding, exactly 32 bytes: the last character carries 2 zero bits. */
export const NODE_PUBLIC_KEY_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
/** Exactly 64 bytes (an Ed25519 signature): the last character carries 4 zero bits. */
export const NODE_SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{85}[AQgw]$/;
/** Hex characters of SHA-256(raw public key) shown as a key's fingerprint. */
export const NODE_KEY_FINGERPRINT_HEX = 16;
