// SHA-256 is injected so the pure protocol runs on Web Crypto (workerd, Node ≥ 20) and in the
// runner, whose Node 18 floor has no global `crypto`, on node:crypto.

export type Sha256 = (data: Uint8Array) => Promise<Uint8Array>;

export const webCryptoSha256: Sha256 = async (data) =>
  new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
