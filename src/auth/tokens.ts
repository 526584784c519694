import { SignJWT, importJWK, jwtVerify, errors, type JWK, type JWTPayload } from 'jose';
import { isRole, isScope, type Principal, type Role, type Scope } from './principal.ts';

export const ACCESS_AUDIENCE = 'gridlease-api';
const ALG = 'ES256';

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export interface KeyRing {
  /** The first key signs; every key verifies, so a rotated-out key's tokens live out their expiry. */
  signing: SigningKey;
  byKid: Map<string, SigningKey>;
  jwks: { keys: JWK[] };
  /**
   * Tokens this isolate has already verified with this ring, with their expiry. A hit skips
   * the signature check (the costliest step of an authenticated read) but never the expiry.
   * Keyed by the whole token, so a forged token can never hit.
   */
  verified: Map<string, { principal: Principal; expMs: number; notBeforeMs: number }>;
}

const VERIFIED_CACHE_MAX = 10_000;

const rings = new Map<string, Promise<KeyRing>>();

/** Parses `JWT_PRIVATE_KEYS` (a JSON array of private EC P-256 JWKs with `kid`) once per isolate. */
export function keyRing(secret: string): Promise<KeyRing> {
  let ring = rings.get(secret);
  if (!ring) {
    ring = buildRing(secret);
    rings.set(secret, ring);
    ring.catch(() => rings.delete(secret));
  }
  return ring;
}

async function buildRing(secret: string): Promise<KeyRing> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    throw new Error('JWT_PRIVATE_KEYS is not valid JSON');
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown })?.keys;
  if (!Array.isArray(list) || list.length === 0) throw new Error('JWT_PRIVATE_KEYS must be a non-empty array of JWKs');
  const keys: SigningKey[] = [];
  for (const jwk of list as JWK[]) {
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d || !jwk.kid) {
      throw new Error('each key in JWT_PRIVATE_KEYS must be a private EC P-256 JWK with a kid');
    }
    const privateKey = (await importJWK({ ...jwk, alg: ALG }, ALG)) as CryptoKey;
    const { d: _d, key_ops: _ops, ext: _ext, ...pub } = jwk;
    const publicKey = (await importJWK({ ...pub, alg: ALG }, ALG)) as CryptoKey;
    keys.push({ kid: jwk.kid, privateKey, publicKey, publicJwk: { ...pub, alg: ALG, use: 'sig' } });
  }
  return {
    signing: keys[0]!,
    byKid: new Map(keys.map((k) => [k.kid, k])),
    jwks: { keys: keys.map((k) => k.publicJwk) },
    verified: new Map(),
  };
}

export interface AccessClaims {
  accountId: string;
  roles: readonly Role[];
  scopes: readonly Scope[];
  apiKeyId: string | null;
}

export async function signAccessToken(
  ring: KeyRing,
  claims: AccessClaims,
  opts: { issuer: string; ttlSeconds: number; now: number },
): Promise<string> {
  const iat = Math.floor(opts.now / 1000);
  const jwt = new SignJWT({
    roles: claims.roles,
    scope: claims.scopes.join(' '),
    ...(claims.apiKeyId ? { akid: claims.apiKeyId } : {}),
  })
    .setProtectedHeader({ alg: ALG, kid: ring.signing.kid, typ: 'at+jwt' })
    .setIssuer(opts.issuer)
    .setAudience(ACCESS_AUDIENCE)
    .setSubject(claims.accountId)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + opts.ttlSeconds)
    .setJti(crypto.randomUUID());
  return jwt.sign(ring.signing.privateKey);
}

export type TokenFailure = 'expired' | 'invalid';

/**
 * Verifies signature, algorithm (pinned: `none` and HMAC are refused), issuer,
 * audience and time claims. Returns a failure reason instead of throwing.
 */
export async function verifyAccessToken(
  ring: KeyRing,
  token: string,
  opts: { issuer: string; now: number },
): Promise<{ ok: true; principal: Principal } | { ok: false; reason: TokenFailure }> {
  const cached = ring.verified.get(token);
  if (cached) {
    if (opts.now >= cached.expMs) {
      ring.verified.delete(token);
      return { ok: false, reason: 'expired' };
    }
    if (opts.now >= cached.notBeforeMs) return { ok: true, principal: cached.principal };
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(
      token,
      (header) => {
        const key = header.kid ? ring.byKid.get(header.kid) : undefined;
        if (!key) throw new errors.JWKSNoMatchingKey();
        return key.publicKey;
      },
      {
        algorithms: [ALG],
        issuer: opts.issuer,
        audience: ACCESS_AUDIENCE,
        typ: 'at+jwt',
        currentDate: new Date(opts.now),
        requiredClaims: ['sub', 'exp', 'iat'],
      },
    ));
  } catch (err) {
    return { ok: false, reason: err instanceof errors.JWTExpired ? 'expired' : 'invalid' };
  }
  const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is Role => typeof r === 'string' && isRole(r)) : [];
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(isScope) : [];
  const principal: Principal = {
    accountId: payload.sub!,
    roles,
    scopes: new Set(scopes),
    via: 'jwt',
    apiKeyId: typeof payload.akid === 'string' ? payload.akid : null,
  };
  if (ring.verified.size >= VERIFIED_CACHE_MAX) ring.verified.delete(ring.verified.keys().next().value!);
  ring.verified.set(token, { principal, expMs: payload.exp! * 1000, notBeforeMs: (payload.nbf ?? payload.iat ?? 0) * 1000 });
  return { ok: true, principal };
}
