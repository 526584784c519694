import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { authenticate, requireRole, requireScope } from './middleware.ts';
import type { Role, Scope } from './principal.ts';

/** Middleware list for a private route: who may call it, by scope and optionally role. */
export function guard(scope: Scope | null, role?: Role): MiddlewareHandler<AppEnv>[] {
  const chain = [authenticate()];
  if (scope) chain.push(requireScope(scope));
  if (role) chain.push(requireRole(role));
  return chain;
}
