import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { authenticate, requireCurrentRole, requireRole, requireScope } from './middleware.ts';
import type { Role, Scope } from './principal.ts';

/**
 * Middleware list for a private route: who may call it, by scope and optionally role.
 * `allowSuspended` admits a suspended account's API key (only for routes that stop spending).
 */
export function guard(scope: Scope | null, role?: Role, opts: { allowSuspended?: boolean } = {}): MiddlewareHandler<AppEnv>[] {
  const chain = [authenticate(opts)];
  if (scope) chain.push(requireScope(scope));
  if (role) chain.push(requireRole(role));
  // An operator acts for the platform: its suspension or demotion must end that at once.
  if (role === 'admin') chain.push(requireCurrentRole(role));
  return chain;
}
