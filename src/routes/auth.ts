import { createRoute } from '@hono/zod-openapi';
import { eq } from 'drizzle-orm';
import { authenticateApiKey } from '../auth/api-keys.ts';
import { burnPasswordCheck, verifyPassword } from '../auth/password.ts';
import { SCOPES, isRole, type Principal } from '../auth/principal.ts';
import { limitCredentialAttempts } from '../auth/rate-limit.ts';
import { keyRing, signAccessToken } from '../auth/tokens.ts';
import { TokenBody, TokenSchema } from '../contracts/accounts.ts';
import { errorResponses, jsonBodyOf, jsonContent } from '../contracts/common.ts';
import { accounts } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';

const app = router();

// One answer for unknown email and wrong password, so the endpoint does not reveal which emails exist.
const BAD_CREDENTIALS = 'email or password is incorrect';

app.openapi(
  createRoute({
    method: 'post',
    path: '/token',
    tags: ['auth'],
    summary: 'Exchange email and password, or an API key, for a short-lived access token',
    request: { body: jsonBodyOf(TokenBody) },
    responses: {
      200: jsonContent(TokenSchema, 'Access token'),
      ...errorResponses(400, 401, 413, 415, 429),
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    const db = c.get('db');
    const now = Date.now();
    let principal: Principal;

    if (body.grant_type === 'password') {
      await limitCredentialAttempts(c, 'token', `email:${body.email}`);
      const [row] = await db.select().from(accounts).where(eq(accounts.email, body.email)).limit(1);
      if (!row) {
        await burnPasswordCheck(body.password);
        throw new ApiError('unauthorized', BAD_CREDENTIALS);
      }
      if (!(await verifyPassword(body.password, row.passwordHash))) throw new ApiError('unauthorized', BAD_CREDENTIALS);
      if (row.status !== 'active') throw new ApiError('forbidden', 'account is suspended');
      principal = { accountId: row.id, roles: row.roles.filter(isRole), scopes: new Set(SCOPES), via: 'jwt', apiKeyId: null };
    } else {
      await limitCredentialAttempts(c, 'token', `key:${body.api_key.slice(0, 12)}`);
      const result = await authenticateApiKey(db, body.api_key, now);
      if (!result.ok) throw new ApiError('unauthorized', result.reason === 'suspended' ? 'account is suspended' : 'API key is invalid, revoked or expired');
      principal = result.principal;
    }

    const ttl = Number(c.env.ACCESS_TOKEN_TTL_S) || 900;
    const scopes = [...principal.scopes];
    const token = await signAccessToken(
      await keyRing(c.env.JWT_PRIVATE_KEYS),
      { accountId: principal.accountId, roles: principal.roles, scopes, apiKeyId: principal.apiKeyId },
      { issuer: c.env.JWT_ISSUER, ttlSeconds: ttl, now },
    );
    c.header('Cache-Control', 'no-store');
    return c.json({ access_token: token, token_type: 'Bearer' as const, expires_in: ttl, scope: scopes.join(' ') }, 200);
  },
);

export default app;
