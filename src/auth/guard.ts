import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { authenticate, requireCurrentRole, requireRole, requireScope } from './middleware.ts';
import { isWrite, limitAccountWrites } from './rate-limit.ts';
import type { Role, Scope } from './principal.ts';

/**
 * Middleware list for a private route: who may call it, by scope and optionally role.
 * `allowSuspended` admits a suspended account's API key (only for routes that stop spending).
 * Writes count against the account's WRITE_RATE_LIMIT once the caller is known to be allowed.
 */
export function guard(scope: Scope | null, role?: Role, opts: { allowSuspended?: boolean } = {}): MiddlewareHandler<AppEnv>[] {
  const chain = [authenticate(opts)];
  if (scope) chain.push(requireScope(scope));
  if (role) chain.push(requireRole(role));
  // An operator acts for the platform: its suspension or demotion must end that at once.
  if (role === 'admin') chain.push(requireCurrentRole(role));
  chain.push(async (c, next) => {
    if (isWrite(c.req.method)) await limitAccountWrites(c, c.get('principal').accountId);
    await next();
  });
  return chain;
}
