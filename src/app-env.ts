import type { Bindings } from './env';
import type { Principal } from './auth/principal';
import type { Database } from './db/client';
import type { AccountRow } from './db/schema';

/** Hono's environment for every sub-app: bindings plus per-request variables. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    requestId: string;
    principal: Principal;
    db: Database;
    /** The caller's account row, when authentication already read it (API keys). */
    account: AccountRow | undefined;
  };
}
