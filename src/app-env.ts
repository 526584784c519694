import type { Bindings } from './env.ts';
import type { Principal } from './auth/principal.ts';
import type { Database } from './db/client.ts';
import type { AccountRow } from './db/schema.ts';

/** Hono's environment for every sub-app: bindings plus per-request variables. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    requestId: string;
    principal: Principal;
    db: Database;
    /** The caller's account row, when authentication already read it (API keys). */
    account: AccountRow | undefined;
    /** Set by requireIdempotencyKey on money-moving routes. */
    idempotencyKey: string;
  };
}
