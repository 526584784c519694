// Webhooks we send are signed like the chain watcher's notifications we receive (and like
// Stripe's):
//   Gridlease-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
// The key is the whole endpoint secret string (`whsec_…`) as UTF-8. The timestamp lets a
// receiver refuse replays; docs/api.md has a verification snippet.
import { toBase64Url, toHex } from '../auth/encoding.ts';

export const SIGNATURE_HEADER = 'gridlease-signature';
export const SECRET_PREFIX = 'whsec_';

/** `whsec_` + 32 random bytes, base64url: shown once, when the endpoint is created. */
export function newEndpointSecret(): string {
  return SECRET_PREFIX + toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

export async function signatureHeader(secret: string, body: string, timestampS: number): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${timestampS}.${body}`));
  return `t=${timestampS},v1=${toHex(new Uint8Array(mac))}`;
}
