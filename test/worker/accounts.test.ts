import { describe, expect, it } from 'vitest';
import { accessToken, call, expectError, json, signUp, uniqueEmail, PASSWORD } from './support.ts';

describe('POST /v1/accounts', () => {
  it('creates an account and returns its first API key once', async () => {
    const email = uniqueEmail('Ada');
    const res = await call('/v1/accounts', { body: { email: `  ${email.toUpperCase()} `, password: PASSWORD, roles: ['renter', 'provider'] } });
    expect(res.status).toBe(201);
    const body = await json(res);
    expect(body.account).toMatchObject({ email: email.toLowerCase(), roles: ['renter', 'provider'], status: 'active' });
    expect(body.account.id).toMatch(/^acc_/);
    expect(body.account).not.toHaveProperty('password_hash');
    expect(body.api_key.key).toMatch(/^glk_[0-9a-f]{40}$/);
    expect(body.api_key.prefix).toBe(body.api_key.key.slice(0, 12));

    const listed = await json(await call('/v1/api-keys', { auth: body.api_key.key }));
    expect(listed.data).toHaveLength(1);
    expect(JSON.stringify(listed)).not.toContain(body.api_key.key);
  });

  it('refuses a second account for the same email, whatever its case', async () => {
    const email = uniqueEmail();
    await signUp(['renter'], email);
    const res = await call('/v1/accounts', { body: { email: email.toUpperCase(), password: PASSWORD, roles: ['provider'] } });
    await expectError(res, 409, 'conflict');
  });

  it('enforces the password policy', async () => {
    const email = uniqueEmail('grace');
    for (const password of ['short', 'aaaaaaaaaaaaaaaa', 'password1234', `${email.split('@')[0]}-2024!`]) {
      const res = await call('/v1/accounts', { body: { email, password, roles: ['renter'] } });
      await expectError(res, 400, 'validation_failed');
    }
  });

  it('refuses roles outside renter and provider, admin included', async () => {
    for (const roles of [['admin'], ['owner'], []]) {
      const res = await call('/v1/accounts', { body: { email: uniqueEmail(), password: PASSWORD, roles } });
      await expectError(res, 400, 'validation_failed');
    }
  });

  it('refuses the inspector role, which needs a bond, naming the field', async () => {
    for (const roles of [['inspector'], ['renter', 'inspector']]) {
      const email = uniqueEmail();
      const error = await expectError(await call('/v1/accounts', { body: { email, password: PASSWORD, roles } }), 400, 'validation_failed');
      expect(error.message).toMatch(/^invalid body: roles.*inspector/);
      // Nothing was created: the email is still free.
      expect((await call('/v1/accounts', { body: { email, password: PASSWORD, roles: ['renter'] } })).status).toBe(201);
    }
  });

  it('refuses an invalid email', async () => {
    const res = await call('/v1/accounts', { body: { email: 'not-an-email', password: PASSWORD, roles: ['renter'] } });
    await expectError(res, 400, 'validation_failed');
  });
});

describe('GET /v1/accounts/me', () => {
  it('returns the caller with an API key and with an access token', async () => {
    const account = await signUp(['provider']);
    for (const auth of [account.apiKey, await accessToken(account)]) {
      const res = await call('/v1/accounts/me', { auth });
      expect(res.status).toBe(200);
      expect((await json(res)).account).toMatchObject({ id: account.id, email: account.email, roles: ['provider'] });
    }
  });
});
