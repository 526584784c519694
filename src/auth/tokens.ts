import { SignJWT, importJWK, jwtVerify, errors, type JWK, type JWTPayload } from 'jose';
import { RUNNER_AUDIENCE } from '../contracts/runner.ts';
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
  verified: Map<string, { payload: JWTPayload; audience: string; expMs: number; notBeforeMs: number }>;
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

interface VerifyOptions {
  issuer: string;
  audience: string;
  typ: string;
  now: number;
}

/**
 * Verifies signature, algorithm (pinned: `none` and HMAC are refused), issuer, audience,
 * type and time claims, remembering the result per token. Returns a failure reason
 * instead of throwing.
 */
async function verifySigned(ring: KeyRing, token: string, opts: VerifyOptions): Promise<{ ok: true; payload: JWTPayload } | { ok: false; reason: TokenFailure }> {
  const cached = ring.verified.get(token);
  if (cached && cached.audience === opts.audience) {
    if (opts.now >= cached.expMs) {
      ring.verified.delete(token);
      return { ok: false, reason: 'expired' };
    }
    if (opts.now >= cached.notBeforeMs) return { ok: true, payload: cached.payload };
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
        audience: opts.audience,
        typ: opts.typ,
        currentDate: new Date(opts.now),
        requiredClaims: ['sub', 'exp', 'iat'],
      },
    ));
  } catch (err) {
    return { ok: false, reason: err instanceof errors.JWTExpired ? 'expired' : 'invalid' };
  }
  if (ring.verified.size >= VERIFIED_CACHE_MAX) ring.verified.delete(ring.verified.keys().next().value!);
  ring.verified.set(token, { payload, audience: opts.audience, expMs: payload.exp! * 1000, notBeforeMs: (payload.nbf ?? payload.iat ?? 0) * 1000 });
  return { ok: true, payload };
}

export async function verifyAccessToken(
  ring: KeyRing,
  token: string,
  opts: { issuer: string; now: number },
): Promise<{ ok: true; principal: Principal } | { ok: false; reason: TokenFailure }> {
  const result = await verifySigned(ring, token, { ...opts, audience: ACCESS_AUDIENCE, typ: 'at+jwt' });
  if (!result.ok) return result;
  const { payload } = result;
  const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is Role => typeof r === 'string' && isRole(r)) : [];
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(isScope) : [];
  return {
    ok: true,
    principal: {
      accountId: payload.sub!,
      roles,
      scopes: new Set(scopes),
      via: 'jwt',
      apiKeyId: typeof payload.akid === 'string' ? payload.akid : null,
    },
  };
}

/** What a node token says: which node, in which region, at which token version. */
export interface NodeClaims {
  nodeId: string;
  region: string;
  version: number;
}

const NODE_TYP = 'node+jwt';

export async function signNodeToken(ring: KeyRing, claims: NodeClaims, opts: { issuer: string; ttlSeconds: number; now: number }): Promise<string> {
  const iat = Math.floor(opts.now / 1000);
  return new SignJWT({ region: claims.region, ver: claims.version })
    .setProtectedHeader({ alg: ALG, kid: ring.signing.kid, typ: NODE_TYP })
    .setIssuer(opts.issuer)
    .setAudience(RUNNER_AUDIENCE)
    .setSubject(claims.nodeId)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + opts.ttlSeconds)
    .setJti(crypto.randomUUID())
    .sign(ring.signing.privateKey);
}

/** Signature and claims only; whether the version is still current is the Collector's call. */
export async function verifyNodeToken(
  ring: KeyRing,
  token: string,
  opts: { issuer: string; now: number },
): Promise<{ ok: true; claims: NodeClaims } | { ok: false; reason: TokenFailure }> {
  const result = await verifySigned(ring, token, { ...opts, audience: RUNNER_AUDIENCE, typ: NODE_TYP });
  if (!result.ok) return result;
  const { payload } = result;
  if (typeof payload.region !== 'string' || typeof payload.ver !== 'number') return { ok: false, reason: 'invalid' };
  return { ok: true, claims: { nodeId: payload.sub!, region: payload.region, version: payload.ver } };
}

const LEASE_TYP = 'lease+jwt';

/**
 * A lease token: handed to the runner with `start_lease` so the workload (and anything it
 * calls) can prove which lease it is running under. Bound to the lease and its node.
 */
export async function signLeaseToken(
  ring: KeyRing,
  claims: { leaseId: string; nodeId: string },
  opts: { issuer: string; expiresAt: number; now: number },
): Promise<string> {
  const iat = Math.floor(opts.now / 1000);
  return new SignJWT({ nid: claims.nodeId })
    .setProtectedHeader({ alg: ALG, kid: ring.signing.kid, typ: LEASE_TYP })
    .setIssuer(opts.issuer)
    .setAudience(RUNNER_AUDIENCE)
    .setSubject(claims.leaseId)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(Math.ceil(opts.expiresAt / 1000))
    .setJti(crypto.randomUUID())
    .sign(ring.signing.privateKey);
}
