import { env } from 'cloudflare:workers';
import { SignJWT, base64url, importJWK, type JWK } from 'jose';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { apiKeys } from '../../src/db/schema.ts';
import { accessToken, call, db, expectError, json, signUp } from './support.ts';

const ISSUER = 'https://api.gridlease.test';
const keys = JSON.parse((env as unknown as { JWT_PRIVATE_KEYS: string }).JWT_PRIVATE_KEYS) as JWK[];

async function forge(
  account: { id: string },
  overrides: { key?: JWK; kid?: string; aud?: string; iss?: string; exp?: number; alg?: string } = {},
): Promise<string> {
  const jwk = overrides.key ?? keys[0]!;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ roles: ['renter'], scope: 'account:read' })
    .setProtectedHeader({ alg: 'ES256', kid: overrides.kid ?? jwk.kid, typ: 'at+jwt' })
    .setIssuer(overrides.iss ?? ISSUER)
    .setAudience(overrides.aud ?? 'gridlease-api')
    .setSubject(account.id)
    .setIssuedAt(now - 60)
    .setExpirationTime(overrides.exp ?? now + 300)
    .sign(await importJWK(jwk, 'ES256'));
}

describe('POST /v1/auth/token', () => {
  it('issues a short-lived Bearer token for email and password', async () => {
    const account = await signUp();
    const res = await call('/v1/auth/token', { body: { grant_type: 'password', email: account.email.toUpperCase(), password: account.password } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await json(res);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    const [header, payload] = body.access_token.split('.').slice(0, 2).map((p: string) => JSON.parse(new TextDecoder().decode(base64url.decode(p))));
    expect(header).toMatchObject({ alg: 'ES256', kid: 'test-current' });
    expect(payload).toMatchObject({ sub: account.id, iss: ISSUER, aud: 'gridlease-api' });
    expect(payload.exp - payload.iat).toBe(900);
  });

  it('issues a token for an API key, carrying only that key’s scopes', async () => {
    const account = await signUp();
    const created = await json(await call('/v1/api-keys', { auth: account.apiKey, body: { name: 'read-only', scopes: ['account:read'] } }));
    const res = await call('/v1/auth/token', { body: { grant_type: 'api_key', api_key: created.api_key.key } });
    expect(res.status).toBe(200);
    const token = (await json(res)).access_token;
    expect((await call('/v1/accounts/me', { auth: token })).status).toBe(200);
    await expectError(await call('/v1/api-keys', { auth: token }), 403, 'forbidden');
  });

  it('gives the same answer for a wrong password and an unknown email', async () => {
    const account = await signUp();
    const wrong = await expectError(
      await call('/v1/auth/token', { body: { grant_type: 'password', email: account.email, password: 'Wrong-password-123' } }),
      401,
      'unauthorized',
    );
    const unknown = await expectError(
      await call('/v1/auth/token', { body: { grant_type: 'password', email: `nobody-${account.email}`, password: 'Wrong-password-123' } }),
      401,
      'unauthorized',
    );
    expect(unknown.message).toBe(wrong.message);
  });

  it('rate-limits repeated attempts on one account with 429 and Retry-After', async () => {
    const account = await signUp();
    const attempt = () => call('/v1/auth/token', { body: { grant_type: 'password', email: account.email, password: 'Guess-number-0001' } });
    for (let i = 0; i < 10; i++) expect((await attempt()).status).toBe(401);
    const limited = await attempt();
    await expectError(limited, 429, 'rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Even the right password waits out the window: the limit is on attempts, not failures.
    const right = await call('/v1/auth/token', { body: { grant_type: 'password', email: account.email, password: account.password } });
    expect(right.status).toBe(429);
  });
});

describe('access tokens are verified strictly', () => {
  it('accepts a token signed by the rotated-out key still in the key ring', async () => {
    const account = await signUp();
    const token = await forge(account, { key: keys[1] });
    expect((await call('/v1/accounts/me', { auth: token })).status).toBe(200);
  });

  it('publishes every verification key, and no private part, at /.well-known/jwks.json', async () => {
    const body = await json(await call('/.well-known/jwks.json'));
    expect(body.keys.map((k: JWK) => k.kid)).toEqual(['test-current', 'test-previous']);
    for (const key of body.keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }
  });

  it('refuses an expired token', async () => {
    const account = await signUp();
    const token = await forge(account, { exp: Math.floor(Date.now() / 1000) - 10 });
    const error = await expectError(await call('/v1/accounts/me', { auth: token }), 401, 'unauthorized');
    expect(error.message).toContain('expired');
  });

  it('refuses a token signed with another key under a known kid', async () => {
    const account = await signUp();
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const other = { ...((await crypto.subtle.exportKey('jwk', (pair as CryptoKeyPair).privateKey)) as JWK), kid: 'test-current' };
    await expectError(await call('/v1/accounts/me', { auth: await forge(account, { key: other }) }), 401, 'unauthorized');
  });

  it('refuses alg "none"', async () => {
    const account = await signUp();
    const enc = (o: object) => base64url.encode(JSON.stringify(o));
    const now = Math.floor(Date.now() / 1000);
    const token = `${enc({ alg: 'none', typ: 'at+jwt', kid: 'test-current' })}.${enc({ sub: account.id, iss: ISSUER, aud: 'gridlease-api', iat: now, exp: now + 300, scope: 'account:read' })}.`;
    await expectError(await call('/v1/accounts/me', { auth: token }), 401, 'unauthorized');
  });

  it('refuses an HS256 token keyed with the public key', async () => {
    const account = await signUp();
    const jwks = await json(await call('/.well-known/jwks.json'));
    const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ scope: 'account:read' })
      .setProtectedHeader({ alg: 'HS256', kid: 'test-current', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience('gridlease-api')
      .setSubject(account.id)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(secret);
    await expectError(await call('/v1/accounts/me', { auth: token }), 401, 'unauthorized');
  });

  it('refuses a wrong audience and a wrong issuer', async () => {
    const account = await signUp();
    await expectError(await call('/v1/accounts/me', { auth: await forge(account, { aud: 'gridlease-runner' }) }), 401, 'unauthorized');
    await expectError(await call('/v1/accounts/me', { auth: await forge(account, { iss: 'https://evil.example' }) }), 401, 'unauthorized');
  });

  it('refuses an Authorization header that is not a Bearer credential', async () => {
    const account = await signUp();
    await expectError(await call('/v1/accounts/me', { headers: { authorization: `Basic ${btoa('a:b')}` } }), 401, 'unauthorized');
    const res = await call('/v1/accounts/me', { headers: { authorization: `Token ${account.apiKey}` } });
    await expectError(res, 401, 'unauthorized');
    expect(res.headers.get('www-authenticate')).toContain('Bearer');
  });
});

describe('API keys', () => {
  it('stops working on the very next request after revocation', async () => {
    const account = await signUp();
    const second = await json(await call('/v1/api-keys', { auth: account.apiKey, body: { name: 'ci' } }));
    expect((await call('/v1/accounts/me', { auth: second.api_key.key })).status).toBe(200);
    const revoked = await call(`/v1/api-keys/${second.api_key.id}`, { method: 'DELETE', auth: account.apiKey });
    expect(revoked.status).toBe(200);
    expect((await json(revoked)).api_key.revoked_at).not.toBeNull();
    const error = await expectError(await call('/v1/accounts/me', { auth: second.api_key.key }), 401, 'unauthorized');
    expect(error.message).toContain('revoked');
    await expectError(await call('/v1/auth/token', { body: { grant_type: 'api_key', api_key: second.api_key.key } }), 401, 'unauthorized');
  });

  it('stores only a hash of the key', async () => {
    const account = await signUp();
    const [row] = await db().select().from(apiKeys).where(eq(apiKeys.id, account.apiKeyId));
    expect(JSON.stringify(row)).not.toContain(account.apiKey);
    expect(row!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('records when a key was last used', async () => {
    const account = await signUp();
    const lastUsed = async () => (await db().select().from(apiKeys).where(eq(apiKeys.id, account.apiKeyId)))[0]!.lastUsedAt;
    expect(await lastUsed()).toBeNull();
    await call('/v1/accounts/me', { auth: account.apiKey });
    await expect.poll(lastUsed).not.toBeNull();
    const listed = await json(await call('/v1/api-keys', { auth: account.apiKey }));
    expect(Date.parse(listed.data[0].last_used_at)).toBe(await lastUsed());
  });

  it('refuses an expired key', async () => {
    const account = await signUp();
    const created = await json(await call('/v1/api-keys', { auth: account.apiKey, body: { name: 'temp', expires_in_days: 1 } }));
    expect(created.api_key.expires_at).not.toBeNull();
    await db().update(apiKeys).set({ expiresAt: Date.now() - 1000 }).where(eq(apiKeys.id, created.api_key.id));
    const error = await expectError(await call('/v1/accounts/me', { auth: created.api_key.key }), 401, 'unauthorized');
    expect(error.message).toContain('expired');
  });

  it('cannot grant scopes the creating credential lacks', async () => {
    const account = await signUp();
    const narrow = await json(await call('/v1/api-keys', { auth: account.apiKey, body: { name: 'keys only', scopes: ['keys:write', 'keys:read'] } }));
    const res = await call('/v1/api-keys', { auth: narrow.api_key.key, body: { name: 'escalate', scopes: ['funds:write'] } });
    await expectError(res, 403, 'forbidden');
    const ok = await call('/v1/api-keys', { auth: narrow.api_key.key, body: { name: 'same', scopes: ['keys:read'] } });
    expect(ok.status).toBe(201);
  });

  it("answers 404 for another account's key and leaves it working", async () => {
    const alice = await signUp();
    const mallory = await signUp();
    await expectError(await call(`/v1/api-keys/${alice.apiKeyId}`, { method: 'DELETE', auth: mallory.apiKey }), 404, 'not_found');
    expect((await call('/v1/accounts/me', { auth: alice.apiKey })).status).toBe(200);
    const mine = await json(await call('/v1/api-keys', { auth: mallory.apiKey }));
    expect(mine.data.map((k: { id: string }) => k.id)).toEqual([mallory.apiKeyId]);
  });

  it('works as a token exchanged through a password login too', async () => {
    const account = await signUp();
    const token = await accessToken(account);
    const res = await call('/v1/api-keys', { auth: token, body: { name: 'from-token' } });
    expect(res.status).toBe(201);
  });
});
