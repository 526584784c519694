import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { accountById } from '../db/accounts.ts';
import type { AccountRow } from '../db/schema.ts';
import { ApiError } from '../http/errors.ts';
import { log } from '../http/log.ts';
import { authenticateApiKey, looksLikeApiKey } from './api-keys.ts';
import type { Role, Scope } from './principal.ts';
import { keyRing, verifyAccessToken } from './tokens.ts';

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="gridlease"' };

function unauthorized(message: string): ApiError {
  return new ApiError('unauthorized', message, { headers: CHALLENGE });
}

/**
 * Accepts `Authorization: Bearer <access token or API key>` and sets `principal`. A suspended
 * account's API key is refused unless `allowSuspended` (routes that only stop spending).
 */
export function authenticate(opts: { allowSuspended?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async function authenticate(c, next) {
    const header = c.req.header('authorization');
    if (!header) throw unauthorized('missing Authorization header');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('Authorization must be "Bearer <token>"');
    const token = match[1]!;
    const now = Date.now();

    if (looksLikeApiKey(token)) {
      const result = await authenticateApiKey(c.get('db'), token, now, opts);
      if (!result.ok) {
        throw unauthorized(result.reason === 'suspended' ? 'account is suspended' : `API key is ${result.reason === 'unknown' ? 'invalid' : result.reason}`);
      }
      c.set('principal', result.principal);
      // Fetched with the key in one query; routes reading the caller's account reuse it.
      c.set('account', result.account);
      if (result.touch) {
        const requestId = c.get('requestId');
        c.executionCtx.waitUntil(
          result.touch().catch((err: unknown) => log('warn', 'api key last-used update failed', { request_id: requestId, error: String(err) })),
        );
      }
    } else {
      const result = await verifyAccessToken(await keyRing(c.env.JWT_PRIVATE_KEYS), token, { issuer: c.env.JWT_ISSUER, now });
      if (!result.ok) throw unauthorized(result.reason === 'expired' ? 'access token has expired' : 'access token is invalid');
      c.set('principal', result.principal);
    }
    await next();
  };
}

export function requireScope(scope: Scope): MiddlewareHandler<AppEnv> {
  return async function requireScope(c, next) {
    if (!c.get('principal').scopes.has(scope)) throw new ApiError('forbidden', `this credential lacks the "${scope}" scope`);
    await next();
  };
}

export function requireRole(role: Role): MiddlewareHandler<AppEnv> {
  return async function requireRole(c, next) {
    if (!c.get('principal').roles.includes(role)) throw new ApiError('forbidden', `this action needs the "${role}" role`);
    await next();
  };
}

/**
 * For routes that move money: an access token outlives a suspension by up to its lifetime,
 * so the account row is checked (API-key requests already read it with the key).
 */
export function requireActiveAccount(): MiddlewareHandler<AppEnv> {
  return async function requireActiveAccount(c, next) {
    const account = c.get('account') ?? (await accountById(c.get('db'), c.get('principal').accountId));
    assertActive(account);
    c.set('account', account);
    await next();
  };
}

/**
 * The role as the account holds it now: an access token carries the roles it was issued with,
 * and an operator's demotion or suspension must take effect at once, not when the token expires.
 */
export function requireCurrentRole(role: Role): MiddlewareHandler<AppEnv> {
  return async function requireCurrentRole(c, next) {
    const account = c.get('account') ?? (await accountById(c.get('db'), c.get('principal').accountId));
    assertActive(account);
    if (!account.roles.includes(role)) throw new ApiError('forbidden', `this action needs the "${role}" role`);
    c.set('account', account);
    await next();
  };
}

/** The caller's account, read by whatever query had it at hand: 401 if gone, 403 if suspended. */
export function assertActive<A extends Pick<AccountRow, 'status'>>(account: A | undefined): asserts account is A {
  if (!account) throw new ApiError('unauthorized', 'account no longer exists');
  if (account.status !== 'active') throw new ApiError('forbidden', 'account is suspended');
}

/**
 * For routes whose write the database itself refuses for an account that is not active (a
 * trigger on the table): checks the account only when the request already holds it (API-key
 * requests read it with the key), so an access token costs no read before the write. The
 * route maps the database's refusal with `refuseInactiveAccount`.
 */
export function refuseKnownInactiveAccount(): MiddlewareHandler<AppEnv> {
  return async function refuseKnownInactiveAccount(c, next) {
    const account = c.get('account');
    if (account) assertActive(account);
    await next();
  };
}

/**
 * Throws the refusal for a write the database turned down because the caller's account is not
 * active: 401 if it is gone, 403 if suspended (still 403 if it was reactivated since).
 */
export async function refuseInactiveAccount(c: Context<AppEnv>): Promise<never> {
  assertActive(await accountById(c.get('db'), c.get('principal').accountId));
  throw new ApiError('forbidden', 'account is suspended');
}
