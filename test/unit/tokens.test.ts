import { describe, expect, it } from 'vitest';
import { generateSigningJwk } from '../../local/secrets.ts';
import { keyRing, signAccessToken, verifyAccessToken } from '../../src/auth/tokens.ts';

const ISSUER = 'https://api.gridlease.test';
const claims = { accountId: 'acc_1', roles: ['renter'] as const, scopes: ['account:read'] as const, apiKeyId: null };

describe('access tokens', () => {
  it('verify after a key rotation until they expire', async () => {
    const oldKey = await generateSigningJwk('2026-10');
    const newKey = await generateSigningJwk('2026-11');
    const before = await keyRing(JSON.stringify([oldKey]));
    const token = await signAccessToken(before, claims, { issuer: ISSUER, ttlSeconds: 900, now: 1_000_000_000 });

    const after = await keyRing(JSON.stringify([newKey, oldKey]));
    const ok = await verifyAccessToken(after, token, { issuer: ISSUER, now: 1_000_000_000 + 899_000 });
    expect(ok).toMatchObject({ ok: true, principal: { accountId: 'acc_1', roles: ['renter'], via: 'jwt' } });
    expect(await verifyAccessToken(after, token, { issuer: ISSUER, now: 1_000_000_000 + 901_000 })).toEqual({ ok: false, reason: 'expired' });

    // Once the old key leaves the ring, its tokens stop verifying.
    const dropped = await keyRing(JSON.stringify([newKey]));
    expect(await verifyAccessToken(dropped, token, { issuer: ISSUER, now: 1_000_000_000 })).toEqual({ ok: false, reason: 'invalid' });
    // New tokens are signed by the first key in the ring.
    const fresh = await signAccessToken(after, claims, { issuer: ISSUER, ttlSeconds: 900, now: 1_000_000_000 });
    expect(JSON.parse(atob(fresh.split('.')[0]!))).toMatchObject({ kid: '2026-11' });
  });

  it('refuses a token from another issuer', async () => {
    const ring = await keyRing(JSON.stringify([await generateSigningJwk('k')]));
    const token = await signAccessToken(ring, claims, { issuer: 'https://other.example', ttlSeconds: 900, now: Date.now() });
    expect(await verifyAccessToken(ring, token, { issuer: ISSUER, now: Date.now() })).toEqual({ ok: false, reason: 'invalid' });
  });

  it('rejects a key ring that is not private P-256 keys with kids', async () => {
    await expect(keyRing('not json')).rejects.toThrow(/not valid JSON/);
    await expect(keyRing('[]')).rejects.toThrow(/non-empty/);
    const { d: _d, ...publicOnly } = await generateSigningJwk('pub');
    await expect(keyRing(JSON.stringify([publicOnly]))).rejects.toThrow(/private EC P-256/);
  });
});
