// Chain-watcher notifications are signed like Stripe's webhooks:
//   X-Gridlease-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
// Several secrets may be valid at once (rotation); a stale timestamp is refused, which with
// the once-per-transfer rule makes a replay useless.
import { timingSafeEqual, toHex } from '../auth/encoding.ts';

export const CHAIN_SIGNATURE_HEADER = 'x-gridlease-signature';
export const CHAIN_TOLERANCE_S = 300;

export type SignatureProblem = 'missing' | 'malformed' | 'stale' | 'mismatch';

async function hmac(secret: string, message: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(message)));
}

export async function signChainPayload(secret: string, body: string, timestampS: number): Promise<string> {
  return `t=${timestampS},v1=${toHex(await hmac(secret, `${timestampS}.${body}`))}`;
}

export async function verifyChainSignature(
  header: string | undefined,
  body: string,
  secrets: readonly string[],
  nowS: number,
): Promise<{ ok: true } | { ok: false; problem: SignatureProblem }> {
  if (!header) return { ok: false, problem: 'missing' };
  const parts = new Map<string, string[]>();
  for (const item of header.split(',')) {
    const [k, v] = item.trim().split('=', 2);
    if (!k || !v) return { ok: false, problem: 'malformed' };
    parts.set(k, [...(parts.get(k) ?? []), v]);
  }
  const t = Number(parts.get('t')?.[0]);
  const signatures = (parts.get('v1') ?? []).filter((s) => /^[0-9a-f]{64}$/.test(s));
  if (!Number.isInteger(t) || signatures.length === 0) return { ok: false, problem: 'malformed' };
  if (Math.abs(nowS - t) > CHAIN_TOLERANCE_S) return { ok: false, problem: 'stale' };
  for (const secret of secrets) {
    const expected = await hmac(secret, `${t}.${body}`);
    for (const sig of signatures) {
      const given = Uint8Array.from(sig.match(/../g)!, (h) => parseInt(h, 16));
      if (timingSafeEqual(expected, given)) return { ok: true };
    }
  }
  return { ok: false, problem: 'mismatch' };
}
