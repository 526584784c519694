import { createRoute, z } from '@hono/zod-openapi';
import { accountById } from '../db/accounts.ts';
import { mintApiKey, publicApiKey } from '../auth/api-keys.ts';
import { guard } from '../auth/guard.ts';
import { hashPassword, passwordProblem } from '../auth/password.ts';
import { SCOPES, isRole } from '../auth/principal.ts';
import { limitCredentialAttempts } from '../auth/rate-limit.ts';
import { AccountSchema, CreateAccountBody, NewApiKeySchema } from '../contracts/accounts.ts';
import { BEARER, errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { isUniqueViolation } from '../db/errors.ts';
import { accounts, apiKeys, type AccountRow } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { newId } from '../ids.ts';

export function publicAccount(row: AccountRow) {
  return {
    id: row.id,
    email: row.email,
    roles: row.roles.filter(isRole),
    status: row.status,
    created_at: new Date(row.createdAt).toISOString(),
  };
}

const app = router();

app.openapi(
  createRoute({
    method: 'post',
    path: '/',
    tags: ['accounts'],
    summary: 'Create an account; returns its first API key (shown once)',
    request: { body: jsonBodyOf(CreateAccountBody) },
    responses: {
      201: jsonContent(z.object({ account: AccountSchema, api_key: NewApiKeySchema }), 'Account created'),
      ...errorResponses(400, 409, 413, 415, 429),
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    await limitCredentialAttempts(c, 'signup', null);
    const problem = passwordProblem(body.password, body.email);
    if (problem) throw new ApiError('validation_failed', problem, { details: [{ path: 'password', message: problem }] });

    const db = c.get('db');
    const accountId = newId('acc');
    const roles = [...new Set(body.roles)];
    const key = await mintApiKey(accountId, 'default', SCOPES, null);
    const passwordHash = await hashPassword(body.password);
    let created;
    try {
      // One batch, one transaction: an account never exists without its first key.
      created = await db.batch([
        db.insert(accounts).values({ id: accountId, email: body.email, passwordHash, roles }).returning(),
        db.insert(apiKeys).values(key.row).returning(),
      ]);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ApiError('conflict', 'an account with this email already exists');
      throw err;
    }
    const [[account], [keyRow]] = created;
    return c.json({ account: publicAccount(account!), api_key: { ...publicApiKey(keyRow!), key: key.secret } }, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/me',
    tags: ['accounts'],
    summary: 'The authenticated account',
    security: BEARER,
    middleware: guard('account:read'),
    responses: {
      200: jsonContent(z.object({ account: AccountSchema }), 'The account'),
      ...errorResponses(401, 403),
    },
  }),
  async (c) => {
    const row = c.get('account') ?? (await accountById(c.get('db'), c.get('principal').accountId));
    if (!row) throw new ApiError('unauthorized', 'account no longer exists');
    // An access token outlives a suspension by up to its lifetime; the account row does not.
    if (row.status !== 'active') throw new ApiError('forbidden', 'account is suspended');
    return c.json({ account: publicAccount(row) }, 200);
  },
);

export default app;
